/*
 * t/apps/frame_app.c
 *	  The framing and pooling tests' app (t/023, t/024): an HTTP/1.1 server
 *	  with keep-alive that names itself in every answer ("frame from
 *	  sandbox S deployment D conn C: METHOD TARGET body=N sum=S xff=...
 *	  xfp=... xfh=..."; C counts the connections it accepted, so a test
 *	  sees how many app connections the router opened).
 *
 * Request bodies: Content-Length or chunked (extensions and trailers
 * read).  Expect: 100-continue is answered with 100 before the body.
 * Special targets: /chunked answers chunked with a trailer, /204 and /304
 * answer without a body (the 304 with a Content-Length), /close answers
 * with Connection: close and closes, /bad answers with a malformed
 * response, /targets lists every request target this sandbox has
 * received (kept in /tmp/targets, so that a test can tell that a smuggled
 * request never reached it).  HEAD gets the head of the GET answer.
 */
#define _GNU_SOURCE				/* memmem */

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_app.h"

static char buf[131072];
static int	conn_no;			/* connections accepted, this one included */
static size_t have;

/* need reads until `n` bytes are buffered; false at end of stream. */
static int
need(int fd, size_t n)
{
	while (have < n)
	{
		ssize_t		r;

		if (n > sizeof(buf))
			return 0;
		r = read(fd, buf + have, sizeof(buf) - have);
		if (r <= 0)
			return 0;
		have += r;
	}
	return 1;
}

/* consume drops the first n buffered bytes. */
static void
consume(size_t n)
{
	memmove(buf, buf + n, have - n);
	have -= n;
}

/* read_line reads one CRLF line (without it) into out; false on error. */
static int
read_line(int fd, char *out, size_t size)
{
	char	   *eol;

	for (;;)
	{
		if ((eol = memmem(buf, have, "\r\n", 2)) != NULL)
			break;
		if (!need(fd, have + 1))
			return 0;
	}
	if ((size_t) (eol - buf) >= size)
		return 0;
	memcpy(out, buf, eol - buf);
	out[eol - buf] = '\0';
	consume(eol - buf + 2);
	return 1;
}

/* body_bytes reads n body bytes, adding them to *sum. */
static int
body_bytes(int fd, long n, unsigned long *sum)
{
	while (n > 0)
	{
		size_t		take;
		size_t		i;

		if (have == 0 && !need(fd, 1))
			return 0;
		take = (size_t) n < have ? (size_t) n : have;
		for (i = 0; i < take; i++)
			*sum += (unsigned char) buf[i];
		consume(take);
		n -= take;
	}
	return 1;
}

/* note_target appends a request target to /tmp/targets. */
static void
note_target(const char *target)
{
	int			fd = open("/tmp/targets", O_WRONLY | O_CREAT | O_APPEND, 0600);

	if (fd >= 0)
	{
		dprintf(fd, "%s\n", target);
		close(fd);
	}
}

/* serve answers the requests of one connection until it ends. */
static void
serve(int fd)
{
	for (;;)
	{
		char	   *end;
		char		head[16384],
					method[16] = "",
					target[256] = "",
					cl[32],
					te[64],
					xff[256],
					xfh[256],
					xfp[64],
					conn[64],
					expect[64],
					body[32768],
					response[40000];
		unsigned long sum = 0;
		long		length = 0;
		size_t		head_len;
		int			n,
					trailers = 0;

		while ((end = memmem(buf, have, "\r\n\r\n", 4)) == NULL)
			if (!need(fd, have + 1))
				return;
		head_len = end + 4 - buf;
		if (head_len >= sizeof(head))
			return;
		memcpy(head, buf, head_len);
		head[head_len - 2] = '\0';
		consume(head_len);
		sscanf(head, "%15s %255s", method, target);
		note_target(target);
		header_value(head, "Content-Length", cl, sizeof(cl));
		header_value(head, "Transfer-Encoding", te, sizeof(te));
		header_value(head, "X-Forwarded-For", xff, sizeof(xff));
		header_value(head, "X-Forwarded-Host", xfh, sizeof(xfh));
		header_value(head, "X-Forwarded-Proto", xfp, sizeof(xfp));
		header_value(head, "Connection", conn, sizeof(conn));
		header_value(head, "Expect", expect, sizeof(expect));
		if (strcasecmp(expect, "100-continue") == 0 &&
			!write_full(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25))
			return;
		if (strcasecmp(te, "chunked") == 0)
		{
			for (;;)
			{
				char		line[4096];
				long		size;

				if (!read_line(fd, line, sizeof(line)))
					return;
				size = strtol(line, NULL, 16);
				if (size == 0)
					break;
				if (!body_bytes(fd, size, &sum) || !read_line(fd, line, sizeof(line)))
					return;
				length += size;
			}
			for (;;)
			{
				char		line[4096];

				if (!read_line(fd, line, sizeof(line)))
					return;
				if (line[0] == '\0')
					break;
				trailers++;
			}
		}
		else
		{
			length = atol(cl);
			if (!body_bytes(fd, length, &sum))
				return;
		}
		if (strcmp(target, "/targets") == 0)
		{
			int			t = open("/tmp/targets", O_RDONLY);
			ssize_t		got = t >= 0 ? read(t, body, sizeof(body) - 1) : 0;

			if (t >= 0)
				close(t);
			n = got > 0 ? (int) got : 0;
			body[n] = '\0';
		}
		else
			n = snprintf(body, sizeof(body),
						 "frame from sandbox %s deployment %s conn %d: %s %s body=%ld sum=%lu trailers=%d "
						 "xff=%s xfp=%s xfh=%s\n",
						 getenv("NX_SANDBOX") ? getenv("NX_SANDBOX") : "?",
						 getenv("NX_DEPLOYMENT") ? getenv("NX_DEPLOYMENT") : "?", conn_no,
						 method, target, length, sum, trailers, xff, xfp, xfh);
		if (strcmp(target, "/chunked") == 0)
			n = snprintf(response, sizeof(response),
						 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
						 "5;ext=1\r\nfirst\r\n%x\r\n%s\r\n0\r\nX-Sum: %lu\r\n\r\n",
						 n, body, sum);
		else if (strcmp(target, "/204") == 0)
			n = snprintf(response, sizeof(response), "HTTP/1.1 204 No Content\r\nX-Conn: %d\r\n\r\n", conn_no);
		else if (strcmp(target, "/304") == 0)
			n = snprintf(response, sizeof(response),
						 "HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\nX-Conn: %d\r\n\r\n", conn_no);
		else if (strcmp(target, "/bad") == 0)
			n = snprintf(response, sizeof(response),
						 "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
		else if (strcmp(target, "/close") == 0)
			n = snprintf(response, sizeof(response),
						 "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", n, body);
		else if (strcmp(method, "HEAD") == 0)
			n = snprintf(response, sizeof(response), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", n);
		else
			n = snprintf(response, sizeof(response),
						 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", n, body);
		if (!write_full(fd, response, n))
			return;
		if (strcasecmp(conn, "close") == 0 || strcmp(target, "/close") == 0)
			return;
	}
}

int
main(void)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	int			one = 1;
	int			lfd = socket(AF_INET, SOCK_STREAM, 0);

	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_IGN);
	addr.sin_port = htons(atoi(getenv("PORT") ? getenv("PORT") : "8000"));
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) < 0 || listen(lfd, 512) < 0)
	{
		perror("frame_app: listen");
		return 1;
	}
	fprintf(stderr, "frame_app: listening\n");
	for (;;)
	{
		int			fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			continue;
		conn_no++;
		if (fork() == 0)
		{
			close(lfd);
			serve(fd);
			_exit(0);
		}
		close(fd);
	}
}
