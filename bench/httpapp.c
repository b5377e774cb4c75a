/*
 * bench/httpapp.c - the upstream app of the router benchmarks
 * (router_proxy.sh, promote_load.sh): a single-threaded epoll HTTP/1.1
 * server that answers every request with the same 13-byte body
 * ("hello, world\n") and a header X-Deployment: $NX_DEPLOYMENT ("host"
 * when unset), so a client can tell which deployment answered.
 * Keep-alive and pipelining (every complete head in the buffer is
 * answered, in order); "Connection: close" in a request closes the
 * connection after its answer.  Request bodies are not supported (GET).
 * The same binary runs on the host (for HAProxy, nginx and the direct
 * case) and, pushed with nx.push, inside a sandbox behind nx-router.
 *
 * Build: gcc -O2 -static -o httpapp httpapp.c
 * Run:   PORT=18250 ./httpapp
 */
#define _GNU_SOURCE				/* accept4, memmem */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BODY "hello, world\n"
#define MAX_CONNS 65536
#define IN_SIZE 8192

typedef struct Client
{
	size_t		len;			/* bytes in buf */
	char		buf[IN_SIZE];
} Client;

static Client *clients[MAX_CONNS];
static char response[256];
static char response_close[256];
static int	response_len,
			response_close_len;

/* wants_close: does this head (up to its end) ask for Connection: close? */
static int
wants_close(const char *head, size_t len)
{
	size_t		i;

	for (i = 0; i + 17 <= len; i++)
		if ((head[i] == '\n') && strncasecmp(head + i + 1, "connection:", 11) == 0)
		{
			const char *v = head + i + 12;

			while (*v == ' ')
				v++;
			return strncasecmp(v, "close", 5) == 0;
		}
	return 0;
}

/* write_all writes n bytes to a non-blocking socket, waiting when full. */
static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0)
	{
		ssize_t		w = write(fd, p, n);

		if (w < 0 && errno == EAGAIN)
		{
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};

			(void) poll(&pfd, 1, 1000);
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return 0;
		p += w;
		n -= w;
	}
	return 1;
}

/* drop closes a connection and forgets it. */
static void
drop(int fd)
{
	free(clients[fd]);
	clients[fd] = NULL;
	close(fd);
}

/* serve reads what is there and answers every complete request head. */
static void
serve(int fd)
{
	Client	   *c = clients[fd];
	char		out[16384];
	size_t		out_len = 0;

	for (;;)
	{
		ssize_t		n = read(fd, c->buf + c->len, IN_SIZE - c->len);
		size_t		start = 0;
		char	   *end;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0)
		{
			drop(fd);
			return;
		}
		c->len += n;
		while ((end = memmem(c->buf + start, c->len - start, "\r\n\r\n", 4)) != NULL)
		{
			size_t		head_len = end + 4 - (c->buf + start);
			int			close_after = wants_close(c->buf + start, head_len);

			if (out_len + sizeof(response) > sizeof(out))
			{
				if (!write_all(fd, out, out_len))
				{
					drop(fd);
					return;
				}
				out_len = 0;
			}
			memcpy(out + out_len, close_after ? response_close : response,
				   close_after ? response_close_len : response_len);
			out_len += close_after ? response_close_len : response_len;
			start += head_len;
			if (close_after)
			{
				write_all(fd, out, out_len);
				drop(fd);
				return;
			}
		}
		memmove(c->buf, c->buf + start, c->len - start);
		c->len -= start;
		if (out_len > 0 && !write_all(fd, out, out_len))
		{
			drop(fd);
			return;
		}
		out_len = 0;
		if (c->len == IN_SIZE)
		{
			drop(fd);			/* a head too large */
			return;
		}
		return;					/* level-triggered: epoll says when there is more */
	}
}

int
main(void)
{
	const char *port = getenv("PORT") ? getenv("PORT") : "8000";
	const char *dep = getenv("NX_DEPLOYMENT") ? getenv("NX_DEPLOYMENT") : "host";
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(port))};
	int			one = 1;
	int			lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int			ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};

	signal(SIGPIPE, SIG_IGN);
	response_len = snprintf(response, sizeof(response),
							"HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nX-Deployment: %s\r\n\r\n%s",
							strlen(BODY), dep, BODY);
	response_close_len = snprintf(response_close, sizeof(response_close),
								  "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nX-Deployment: %s\r\n"
								  "Connection: close\r\n\r\n%s", strlen(BODY), dep, BODY);
	if (lfd < 0 || ep < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) < 0 || listen(lfd, 4096) < 0 ||
		epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
	{
		perror("httpapp: listen");
		return 1;
	}
	fprintf(stderr, "httpapp: listening on port %s\n", port);
	for (;;)
	{
		struct epoll_event events[256];
		int			n = epoll_wait(ep, events, 256, -1),
					i;

		for (i = 0; i < n; i++)
		{
			int			fd = events[i].data.fd;

			if (fd != lfd)
			{
				if (clients[fd])
					serve(fd);
				continue;
			}
			while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
			{
				struct epoll_event cev = {.events = EPOLLIN, .data.fd = fd};

				if (fd >= MAX_CONNS || (clients[fd] = calloc(1, sizeof(Client))) == NULL)
				{
					close(fd);
					continue;
				}
				(void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0)
					drop(fd);
			}
		}
	}
}
