/*
 * t/apps/frame_app.c
 *	  The framing test's app (t/024_router_framing.pl): HTTP/1.1 keep-alive
 *	  with pipelining, request bodies by Content-Length or chunked
 *	  (extensions and trailers read), "Expect: 100-continue" answered with
 *	  an interim 100, and responses of every framing by path:
 *	    /204, /304      no body
 *	    /chunked        a chunked body with an extension and a trailer
 *	    /close          Content-Length, then Connection: close
 *	    /until-close    no length at all: delimited by closing
 *	    /bad            two different Content-Lengths (the router: 502)
 *	    anything else   "frame from deployment D: METHOD TARGET body=N
 *	                    sum=S xff=... xfp=... xfh=...", Content-Length (HEAD:
 *	                    the length only)
 */
#define _GNU_SOURCE				/* memmem */
#include "http_app.h"

static char buf[1 << 20];
static size_t have;

/* fill reads more bytes into buf; false at end of stream. */
static int
fill(int fd)
{
	ssize_t		r;

	if (have == sizeof(buf))
		return 0;
	r = read(fd, buf + have, sizeof(buf) - have);
	if (r <= 0)
		return 0;
	have += r;
	return 1;
}

/* consume drops the first n bytes of buf. */
static void
consume(size_t n)
{
	memmove(buf, buf + n, have - n);
	have -= n;
}

/* read_line reads one CRLF-terminated line into out (without CRLF). */
static int
read_line(int fd, char *out, size_t size)
{
	char	   *e;

	while ((e = memmem(buf, have, "\r\n", 2)) == NULL)
		if (!fill(fd))
			return 0;
	snprintf(out, size, "%.*s", (int) (e - buf), buf);
	consume(e + 2 - buf);
	return 1;
}

/* body_bytes reads n body bytes, adding them to *sum. */
static int
body_bytes(int fd, unsigned long n, unsigned long *sum)
{
	while (n > 0)
	{
		size_t		k;
		size_t		i;

		if (have == 0 && !fill(fd))
			return 0;
		k = have < n ? have : n;
		for (i = 0; i < k; i++)
			*sum += (unsigned char) buf[i];
		consume(k);
		n -= k;
	}
	return 1;
}

static void
serve(int fd)
{
	const char *d = getenv("NX_DEPLOYMENT") ? getenv("NX_DEPLOYMENT") : "?";

	for (;;)
	{
		char		head[65536],
					method[16] = "",
					target[256] = "",
					cl[32],
					te[64],
					expect[64],
					xff[256],
					xfh[256],
					xfp[64],
					trailer[256] = "",
					body[2048],
					out[4096];
		char	   *e;
		unsigned long len = 0,
					sum = 0;
		int			n;

		while ((e = memmem(buf, have, "\r\n\r\n", 4)) == NULL)
			if (!fill(fd))
				return;
		snprintf(head, sizeof(head), "%.*s", (int) (e + 2 - buf), buf);
		consume(e + 4 - buf);
		sscanf(head, "%15s %255s", method, target);
		header_value(head, "Content-Length", cl, sizeof(cl));
		header_value(head, "Transfer-Encoding", te, sizeof(te));
		header_value(head, "Expect", expect, sizeof(expect));
		header_value(head, "X-Forwarded-For", xff, sizeof(xff));
		header_value(head, "X-Forwarded-Host", xfh, sizeof(xfh));
		header_value(head, "X-Forwarded-Proto", xfp, sizeof(xfp));
		if (strcasecmp(expect, "100-continue") == 0 &&
			!write_full(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25))
			return;
		if (strcasecmp(te, "chunked") == 0)
		{
			for (;;)
			{
				char		line[4096];
				unsigned long size;

				if (!read_line(fd, line, sizeof(line)))
					return;
				size = strtoul(line, NULL, 16);
				if (size == 0)
					break;
				if (!body_bytes(fd, size, &sum) || !read_line(fd, line, sizeof(line)))
					return;
				len += size;
			}
			for (;;)
			{
				char		line[4096];

				if (!read_line(fd, line, sizeof(line)))
					return;
				if (line[0] == '\0')
					break;
				snprintf(trailer, sizeof(trailer), "%.200s", line);
			}
		}
		else if (cl[0])
		{
			len = strtoul(cl, NULL, 10);
			if (!body_bytes(fd, len, &sum))
				return;
		}
		if (strcmp(target, "/204") == 0)
			n = snprintf(out, sizeof(out), "HTTP/1.1 204 No Content\r\nX-D: %s\r\n\r\n", d);
		else if (strcmp(target, "/304") == 0)
			n = snprintf(out, sizeof(out), "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 99\r\n\r\n");
		else if (strcmp(target, "/chunked") == 0)
			n = snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
						 "5\r\nhello\r\n7;ext=1\r\n from %s\r\n0\r\nX-Trailer: yes\r\n\r\n", d);
		else if (strcmp(target, "/bad") == 0)
			n = snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy");
		else if (strcmp(target, "/until-close") == 0)
		{
			n = snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\n\r\nuntil close from %s\n", d);
			write_full(fd, out, n);
			return;
		}
		else
		{
			int			bl = snprintf(body, sizeof(body),
									  "frame from deployment %s: %s %s body=%lu sum=%lu trailer=%s xff=%s xfp=%s xfh=%s\n",
									  d, method, target, len, sum, trailer, xff, xfp, xfh);

			n = snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
						 "Content-Length: %d\r\n%s\r\n%s", bl,
						 strcmp(target, "/close") == 0 ? "Connection: close\r\n" : "",
						 strcmp(method, "HEAD") == 0 ? "" : body);
		}
		if (!write_full(fd, out, n) || strcmp(target, "/close") == 0)
			return;
	}
}

int
main(void)
{
	return serve_forever("frame_app", 128, serve);
}
