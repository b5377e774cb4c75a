/*
 * t/apps/http_app.h
 *	  What the test apps that speak HTTP themselves share (echo_app,
 *	  ws_echo, stream_app): listening on $PORT with one process per
 *	  connection, writing a whole buffer, and reading one field of a
 *	  request head.  Header-only, like sha1.h: nx_build_app builds each app
 *	  from its one .c file.
 */
#ifndef NX_TEST_HTTP_APP_H
#define NX_TEST_HTTP_APP_H

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* write_full writes all n bytes; false on error. */
static inline int
write_full(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0)
	{
		ssize_t		w = write(fd, p, n);

		if (w <= 0)
			return 0;
		p += w;
		n -= w;
	}
	return 1;
}

/*
 * header_value finds field `name` in a NUL-terminated head and copies its
 * value (without surrounding blanks) into out; false, and out empty, when
 * absent.
 */
static inline int
header_value(const char *head, const char *name, char *out, size_t size)
{
	const char *p = head;
	size_t		len = strlen(name);

	out[0] = '\0';
	while ((p = strstr(p, "\r\n")) != NULL)
	{
		size_t		n = 0;

		p += 2;
		if (strncasecmp(p, name, len) != 0 || p[len] != ':')
			continue;
		p += len + 1;
		while (*p == ' ' || *p == '\t')
			p++;
		while (p[n] && p[n] != '\r' && n < size - 1)
			n++;
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		memcpy(out, p, n);
		out[n] = '\0';
		return 1;
	}
	return 0;
}

/*
 * serve_forever listens on $PORT (8000 without it) on every address and
 * runs serve(fd) in a child process for each connection.  Returns 1 only
 * when it cannot listen (the app's exit status).
 */
static inline int
serve_forever(const char *app, int backlog, void (*serve) (int fd))
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	int			one = 1;
	int			lfd = socket(AF_INET, SOCK_STREAM, 0);

	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_IGN);	/* no zombies */
	addr.sin_port = htons(atoi(getenv("PORT") ? getenv("PORT") : "8000"));
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) < 0 || listen(lfd, backlog) < 0)
	{
		fprintf(stderr, "%s: listen: %s\n", app, strerror(errno));
		return 1;
	}
	fprintf(stderr, "%s: listening\n", app);
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

#endif							/* NX_TEST_HTTP_APP_H */
