/*
 * t/apps/stream_app.c
 *	  The router traffic test's HTTP app (t/021_router_traffic.pl):
 *	    GET /events   text/event-stream, one event every 100 ms, without
 *	                  end (until the client goes away): a client that gets
 *	                  events at all proves the path does not buffer the
 *	                  response to its end
 *	    POST ...      reads the body (Content-Length or chunked) and
 *	                  answers with its byte count and SHA-1
 *	    anything else "answer from deployment <id> ..." naming the request
 *	  HTTP/1.1 keep-alive with pipelining (requests already read stay in
 *	  the buffer for the next turn).  Like common servers' keepalive limit,
 *	  the 50th response on a connection says Connection: close and the
 *	  connection is closed, so that a load generator with keep-alive opens
 *	  new connections (and takes a new route) now and then.
 *
 * One process per connection (fork).
 */
#define _GNU_SOURCE				/* memmem */

#include "http_app.h"
#include "sha1.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define REQUESTS_PER_CONNECTION 50

typedef struct Reader
{
	int			fd;
	char		buf[65536];
	size_t		start;
	size_t		end;
} Reader;

static const char *deployment = "?";

/* fill reads more bytes into the buffer (compacting it first); false at EOF. */
static int
fill(Reader *r)
{
	ssize_t		n;

	if (r->start > 0)
	{
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	if (r->end == sizeof(r->buf))
		return 0;
	n = read(r->fd, r->buf + r->end, sizeof(r->buf) - r->end);
	if (n <= 0)
		return 0;
	r->end += n;
	return 1;
}

/*
 * read_until returns the buffered bytes up to and including `delim`
 * (reading more as needed) as a NUL-terminated copy in out; false on EOF
 * or when it does not fit.
 */
static int
read_until(Reader *r, const char *delim, char *out, size_t size)
{
	for (;;)
	{
		char	   *p = memmem(r->buf + r->start, r->end - r->start, delim, strlen(delim));

		if (p != NULL)
		{
			size_t		n = p + strlen(delim) - (r->buf + r->start);

			if (n >= size)
				return 0;
			memcpy(out, r->buf + r->start, n);
			out[n] = '\0';
			r->start += n;
			return 1;
		}
		if (!fill(r))
			return 0;
	}
}

/* body_bytes consumes n bytes of body into the digest; false on EOF. */
static int
body_bytes(Reader *r, unsigned long long n, Sha1 *sha)
{
	while (n > 0)
	{
		size_t		have = r->end - r->start;

		if (have == 0)
		{
			if (!fill(r))
				return 0;
			continue;
		}
		if (have > n)
			have = n;
		sha1_update(sha, r->buf + r->start, have);
		r->start += have;
		n -= have;
	}
	return 1;
}

/* events streams server-sent events until the client goes away. */
static void
events(int fd)
{
	static const char head[] =
		"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
		"Connection: close\r\n\r\n";
	int			i;

	if (!write_full(fd, head, sizeof(head) - 1))
		return;
	for (i = 1; i <= 6000; i++)		/* at most 10 minutes */
	{
		char		ev[128];
		int			n = snprintf(ev, sizeof(ev), "id: %d\ndata: event %d from deployment %s\n\n",
								 i, i, deployment);

		if (!write_full(fd, ev, n))
			return;
		usleep(100 * 1000);
	}
}

/* upload reads a request body and describes it; false on a broken body. */
static int
upload(Reader *r, const char *head, char *body, size_t size)
{
	char		te[64],
				cl[32],
				line[256];
	unsigned long long total = 0;
	uint8_t		digest[20];
	Sha1		sha;
	int			i,
				n;

	sha1_init(&sha);
	header_value(head, "Transfer-Encoding", te, sizeof(te));
	header_value(head, "Content-Length", cl, sizeof(cl));
	if (strcasecmp(te, "chunked") == 0)
	{
		for (;;)
		{
			unsigned long long chunk;

			if (!read_until(r, "\r\n", line, sizeof(line)))
				return 0;
			chunk = strtoull(line, NULL, 16);
			if (chunk == 0)
				break;
			if (!body_bytes(r, chunk, &sha) || !read_until(r, "\r\n", line, sizeof(line)))
				return 0;
			total += chunk;
		}
		/* trailer fields, up to the empty line */
		do
		{
			if (!read_until(r, "\r\n", line, sizeof(line)))
				return 0;
		} while (strcmp(line, "\r\n") != 0);
	}
	else
	{
		total = strtoull(cl, NULL, 10);
		if (!body_bytes(r, total, &sha))
			return 0;
	}
	sha1_final(&sha, digest);
	n = snprintf(body, size, "upload to deployment %s: bytes=%llu sha1=", deployment, total);
	for (i = 0; i < 20; i++)
		n += snprintf(body + n, size - n, "%02x", digest[i]);
	snprintf(body + n, size - n, "\n");
	return 1;
}

/* serve answers the requests of one connection until it ends. */
static void
serve(int fd)
{
	static Reader r;
	int			count;

	r.fd = fd;
	for (count = 1;; count++)
	{
		char		head[16384],
					method[16] = "",
					target[256] = "",
					conn[32],
					body[512],
					response[1024];
		int			close_after,
					n;

		if (!read_until(&r, "\r\n\r\n", head, sizeof(head)))
			return;
		sscanf(head, "%15s %255s", method, target);
		header_value(head, "Connection", conn, sizeof(conn));
		if (strcmp(method, "GET") == 0 && strcmp(target, "/events") == 0)
		{
			events(fd);
			return;
		}
		if (strcmp(method, "POST") == 0)
		{
			if (!upload(&r, head, body, sizeof(body)))
				return;
		}
		else
			snprintf(body, sizeof(body), "answer from deployment %s: %s %s\n", deployment, method, target);
		close_after = strcasecmp(conn, "close") == 0 || count == REQUESTS_PER_CONNECTION;
		n = snprintf(response, sizeof(response),
					 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n%s",
					 strlen(body), close_after ? "Connection: close\r\n" : "", body);
		if (!write_full(fd, response, n) || close_after)
			return;
	}
}

int
main(void)
{
	if (getenv("NX_DEPLOYMENT"))
		deployment = getenv("NX_DEPLOYMENT");
	return serve_forever("stream_app", 512, serve);
}
