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

static char head[65536];

/* field copies the value of header `name` from the head into out. */
static void
field(const char *name, char *out, size_t size)
{
	char		pattern[64];
	const char *p;
	size_t		n = 0;

	snprintf(pattern, sizeof(pattern), "\r\n%s:", name);
	out[0] = '\0';
	for (p = head; (p = strchr(p, '\r')) != NULL; p++)
		if (strncasecmp(p, pattern, strlen(pattern)) == 0)
			break;
	if (p == NULL)
		return;
	p += strlen(pattern);
	while (*p == ' ')
		p++;
	while (p[n] && p[n] != '\r' && n < size - 1)
		n++;
	memcpy(out, p, n);
	out[n] = '\0';
}

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
		field("Content-Length", cl, sizeof(cl));
		field("X-Forwarded-For", xff, sizeof(xff));
		field("X-Forwarded-Host", xfh, sizeof(xfh));
		field("X-Forwarded-Proto", xfp, sizeof(xfp));
		field("Connection", conn, sizeof(conn));
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
	struct sockaddr_in addr = {.sin_family = AF_INET};
	int			one = 1;
	int			lfd = socket(AF_INET, SOCK_STREAM, 0);

	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_IGN);	/* no zombies */
	addr.sin_port = htons(atoi(getenv("PORT") ? getenv("PORT") : "8000"));
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) < 0 || listen(lfd, 128) < 0)
	{
		perror("echo_app: listen");
		return 1;
	}
	fprintf(stderr, "echo_app: listening\n");
	for (;;)
	{
		int			fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			continue;
		if (fork() == 0)
		{
			close(lfd);
			serve(fd);
			_exit(0);
		}
		close(fd);
	}
}
