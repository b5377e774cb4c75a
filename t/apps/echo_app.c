/*
 * t/apps/echo_app.c
 *	  The router test's app: an HTTP/1.1 server with keep-alive that
 *	  answers each request with what it received: method, target, body
 *	  length and a checksum of the body, and the X-Forwarded-* fields the
 *	  router added.  GET /hang is accepted and never answered.
 *
 * One process per connection (fork), so a hanging request does not stop
 * the others.  Only what the test needs: Content-Length bodies, heads up
 * to 64 KiB.
 */
#define _GNU_SOURCE				/* memmem */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_app.h"

static char head[65536];

/* serve answers the requests of one connection until it ends. */
static void
serve(int fd)
{
	size_t		have = 0;

	for (;;)
	{
		char	   *end;
		char		method[16] = "",
					target[256] = "",
					cl[32],
					xff[128],
					xfh[256],
					xfp[32],
					conn[32],
					body[1024],
					response[2048];
		unsigned long sum = 0;
		long		length,
					got;
		size_t		head_len;
		int			n;

		while ((end = memmem(head, have, "\r\n\r\n", 4)) == NULL)
		{
			ssize_t		r;

			if (have >= sizeof(head) - 1)
				return;
			r = read(fd, head + have, sizeof(head) - 1 - have);
			if (r <= 0)
				return;
			have += r;
		}
		head_len = end + 4 - head;
		end[2] = '\0';
		sscanf(head, "%15s %255s", method, target);
		header_value(head, "Content-Length", cl, sizeof(cl));
		header_value(head, "X-Forwarded-For", xff, sizeof(xff));
		header_value(head, "X-Forwarded-Host", xfh, sizeof(xfh));
		header_value(head, "X-Forwarded-Proto", xfp, sizeof(xfp));
		header_value(head, "Connection", conn, sizeof(conn));
		if (strcmp(target, "/hang") == 0)
		{
			sleep(120);
			return;
		}
		length = atol(cl);
		/* the body: what came with the head, then the rest */
		got = (long) (have - head_len) < length ? (long) (have - head_len) : length;
		for (n = 0; n < got; n++)
			sum += (unsigned char) head[head_len + n];
		memmove(head, head + head_len + got, have - head_len - got);
		have -= head_len + got;
		while (got < length)
		{
			char		chunk[65536];
			ssize_t		r = read(fd, chunk, length - got < (long) sizeof(chunk) ? (size_t) (length - got) : sizeof(chunk));

			if (r <= 0)
				return;
			for (n = 0; n < r; n++)
				sum += (unsigned char) chunk[n];
			got += r;
		}
		n = snprintf(body, sizeof(body),
					 "echo from deployment %s: %s %s body=%ld sum=%lu xff=%s xfh=%s xfp=%s\n",
					 getenv("NX_DEPLOYMENT") ? getenv("NX_DEPLOYMENT") : "?", method, target,
					 length, sum, xff, xfh, xfp);
		n = snprintf(response, sizeof(response),
					 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s",
					 n, body);
		if (write(fd, response, n) != n)
			return;
		if (strcasecmp(conn, "close") == 0)
			return;
	}
}

int
main(void)
{
	return serve_forever("echo_app", 128, serve);
}
