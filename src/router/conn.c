/*
 * src/router/conn.c
 *	  Client connections: accept, read and route the first request head,
 *	  wait for the hand-off, then relay bytes both ways until both sides
 *	  are done; or answer with a small error page and close.
 *
 * Routing is per connection: the first request's Host picks the
 * deployment and the whole keep-alive connection stays with it.  One
 * hand-off per connection is what makes a promote zero-downtime (open
 * connections finish on the deployment they started on, new ones take the
 * new route) and what keeps the relay a plain byte pump that never parses
 * the stream again.  Only the first head is rewritten: the router inserts
 * X-Forwarded-For/-Proto/-Host after its request line and drops any such
 * fields (and Forwarded) the client sent.
 *
 * Relaying: read()/write() on non-blocking sockets through one buffer per
 * direction (the baselines found read/write faster than splice for small
 * bodies).  A side is read only while the buffer towards the other side
 * has room, so a slow reader slows its writer down (backpressure) and
 * memory stays bounded.  A FIN is passed on once the buffer before it has
 * drained (half-close).
 */
#define _GNU_SOURCE				/* accept4 */

#include "router.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPTS_PER_WAKEUP	64
#define HEAD_INITIAL_SIZE	4096
#define REPLY_TIMEOUT_MS	5000	/* to write our own response */
#define LINGER_MS			2000	/* to drain the client after it */
#define LINGER_MAX_BYTES	(256 * 1024)
#define DONE_TIMEOUT_MS		10000	/* client still open after the app finished */
#define RETRY_FAST_MS		2		/* ask nx-init this often at first ... */
#define RETRY_FAST_PERIOD_MS 500	/* ... for this long (a wake takes ~20 ms) */
#define RETRY_MAX_DELAY_MS	200		/* then back off up to this */

int			conn_count;
static Conn *conns;				/* every open connection */
static Conn *closed;			/* closed during this loop pass, freed after */
static int	reserve_fd = -1;	/* spare fd to shed connections on EMFILE */

static void conn_close(Conn *conn);
static void conn_reply(Conn *conn, int status, const char *why);
static void conn_relay(Conn *conn, bool read_client, bool read_app);

/* buf_alloc gives `b` an empty buffer of `cap` bytes; false when out of memory. */
static bool
buf_alloc(Buf *b, size_t cap)
{
	b->data = malloc(cap);
	b->cap = b->data ? cap : 0;
	b->start = b->end = 0;
	return b->data != NULL;
}

/* buf_compact makes the free space of `b` contiguous at its end. */
static void
buf_compact(Buf *b)
{
	if (b->start == b->end)
		b->start = b->end = 0;
	else if (b->end == b->cap && b->start > 0)
	{
		memmove(b->data, b->data + b->start, b->end - b->start);
		b->end -= b->start;
		b->start = 0;
	}
}

/* status_text returns the reason phrase of the statuses we send. */
static const char *
status_text(int status)
{
	switch (status)
	{
		case 200:
			return "OK";
		case 400:
			return "Bad Request";
		case 404:
			return "Not Found";
		case 408:
			return "Request Timeout";
		case 431:
			return "Request Header Fields Too Large";
		case 502:
			return "Bad Gateway";
		case 504:
			return "Gateway Timeout";
		default:
			return "Service Unavailable";
	}
}

/*
 * ConnAccept accepts pending connections on a listening socket.  Over
 * --max-connections a connection gets a 503 written at once (if the socket
 * buffer takes it) and is closed, costing the others nothing.
 */
void
ConnAccept(int listen_fd)
{
	int			i;

	for (i = 0; i < ACCEPTS_PER_WAKEUP; i++)
	{
		struct sockaddr_storage ss;
		socklen_t	sslen = sizeof(ss);
		int			fd = accept4(listen_fd, (struct sockaddr *) &ss, &sslen,
								 SOCK_NONBLOCK | SOCK_CLOEXEC);
		int			one = 1;
		Conn	   *conn;

		if (fd < 0)
		{
			if (errno == EMFILE || errno == ENFILE)
			{
				/* the connection would stay in the backlog and wake us forever */
				RouterLog("out of file descriptors: shedding a connection");
				if (reserve_fd >= 0)
					close(reserve_fd);
				fd = accept(listen_fd, NULL, NULL);
				if (fd >= 0)
					close(fd);
				reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			}
			else if (errno == ECONNABORTED || errno == EINTR)
				continue;
			return;
		}
		if (reserve_fd < 0)
			reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (conn_count >= router_settings.max_connections ||
			(conn = calloc(1, sizeof(Conn))) == NULL)
		{
			static const char page[] =
				"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
				"Content-Length: 25\r\nConnection: close\r\n\r\n503 too many connections\n";

			RouterLog("503 too many connections (%d): refusing one", conn_count);
			(void) send(fd, page, sizeof(page) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
			close(fd);
			continue;
		}
		(void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		conn->client_fd = fd;
		conn->app_fd = -1;
		conn->client_tag = (Tag) {TAG_CLIENT, conn};
		conn->app_tag = (Tag) {TAG_APP, conn};
		conn->deployment = -1;
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *) &ss)->sin_addr, conn->peer, sizeof(conn->peer));
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &ss)->sin6_addr, conn->peer, sizeof(conn->peer));
		else
			strcpy(conn->peer, "unknown");
		HttpHeadInit(&conn->head, router_settings.head_limit);
		if (!buf_alloc(&conn->up, HEAD_INITIAL_SIZE))
		{
			close(fd);
			free(conn);
			continue;
		}
		conn->state = CONN_HEAD;
		conn->deadline = NowMs() + router_settings.head_timeout_ms;
		conn->next = conns;
		if (conns)
			conns->prev = conn;
		conns = conn;
		conn_count++;
		EpollSet(fd, &conn->client_tag, EPOLLIN, &conn->client_events);
	}
}

/* set_interest tells epoll what each side of `conn` waits for now. */
static void
set_interest(Conn *conn)
{
	uint32_t	client = 0,
				app = 0;

	switch (conn->state)
	{
		case CONN_HEAD:
		case CONN_LINGER:
			client = EPOLLIN;
			break;
		case CONN_REPLY:
			client = EPOLLOUT;
			break;
		case CONN_RELAY:
			/* read a side only while the buffer after it has room */
			if (!conn->client_eof && conn->up.end - conn->up.start < conn->up.cap)
				client |= EPOLLIN;
			if (conn->down.end > conn->down.start)
				client |= EPOLLOUT;
			if (conn->up.end > conn->up.start)
				app |= EPOLLOUT;
			if (!conn->app_eof && conn->down.end - conn->down.start < conn->down.cap)
				app |= EPOLLIN;
			break;
		case CONN_HANDOFF:
		case CONN_CLOSED:
			break;
	}
	EpollSet(conn->client_fd, &conn->client_tag, client, &conn->client_events);
	if (conn->app_fd >= 0)
		EpollSet(conn->app_fd, &conn->app_tag, app, &conn->app_events);
}

/* release_activity stops counting `conn` as open for its deployment. */
static void
release_activity(Conn *conn)
{
	if (conn->activity)
	{
		ActivityClosed(conn->activity);
		conn->activity = NULL;
	}
}

/* conn_close closes both sockets; the struct is freed after this loop pass. */
static void
conn_close(Conn *conn)
{
	if (conn->state == CONN_CLOSED)
		return;
	HandoffCancel(conn);
	release_activity(conn);
	/*
	 * no EPOLL_CTL_DEL for the client socket: we accepted it and hold its
	 * only reference, so close() unregisters it (the app socket came from
	 * another process and is unregistered explicitly)
	 */
	conn->client_events = 0;
	close(conn->client_fd);
	if (conn->app_fd >= 0)
	{
		EpollDel(conn->app_fd, &conn->app_events);
		close(conn->app_fd);
		conn->app_fd = -1;
	}
	conn->state = CONN_CLOSED;
	if (conn->prev)
		conn->prev->next = conn->next;
	else
		conns = conn->next;
	if (conn->next)
		conn->next->prev = conn->prev;
	conn->next = closed;
	closed = conn;
	conn_count--;
}

/* ConnFreeClosed frees the connections closed during this loop pass. */
void
ConnFreeClosed(void)
{
	while (closed)
	{
		Conn	   *conn = closed;

		closed = conn->next;
		free(conn->up.data);
		free(conn->down.data);
		free(conn);
	}
}

/*
 * conn_reply answers the client with a small plain-text page and closes
 * the connection once it is written (logging one line), whatever state the
 * connection was in; an app socket, if any, is closed at once.
 */
static void
conn_reply(Conn *conn, int status, const char *why)
{
	char		body[256];
	int			body_len;

	RouterLog("%d %s (client %s, host \"%s\")", status, why, conn->peer,
			  conn->head.has_host ? conn->head.host : "");
	HandoffCancel(conn);
	if (conn->app_fd >= 0)
	{
		EpollDel(conn->app_fd, &conn->app_events);
		close(conn->app_fd);
		conn->app_fd = -1;
	}
	free(conn->down.data);
	if (!buf_alloc(&conn->down, 512))
	{
		conn_close(conn);
		return;
	}
	body_len = snprintf(body, sizeof(body), "%d %s\n", status, why);
	if (body_len >= (int) sizeof(body))
		body_len = sizeof(body) - 1;
	conn->down.end = snprintf(conn->down.data, conn->down.cap,
							  "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
							  "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
							  status, status_text(status), body_len, body);
	if (conn->down.end >= conn->down.cap)
		conn->down.end = conn->down.cap - 1;
	conn->state = CONN_REPLY;
	conn->deadline = NowMs() + REPLY_TIMEOUT_MS;
	conn->retry_at = 0;
	set_interest(conn);
}

/*
 * reply_progress writes our response; once it is out, sends FIN and reads
 * (and drops) what the client still sends for a moment, so that closing
 * with unread bytes does not reset the connection before the client has
 * read the response (a 431 arrives while the client is still sending).
 */
static void
reply_progress(Conn *conn)
{
	if (conn->state == CONN_REPLY)
	{
		while (conn->down.start < conn->down.end)
		{
			ssize_t		n = send(conn->client_fd, conn->down.data + conn->down.start,
								 conn->down.end - conn->down.start, MSG_NOSIGNAL);

			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			if (n <= 0)
			{
				conn_close(conn);
				return;
			}
			conn->down.start += n;
		}
		shutdown(conn->client_fd, SHUT_WR);
		conn->state = CONN_LINGER;
		conn->deadline = NowMs() + LINGER_MS;
		conn->down_bytes = 0;
		set_interest(conn);
		return;
	}
	for (;;)
	{
		char		sink[16384];
		ssize_t		n = read(conn->client_fd, sink, sizeof(sink));

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		conn->down_bytes += n > 0 ? n : 0;
		if (n <= 0 || conn->down_bytes > LINGER_MAX_BYTES)
		{
			conn_close(conn);
			return;
		}
	}
}

/*
 * ask_domain answers Caddy's on-demand TLS question "may I get a
 * certificate for this name?": GET /.nx/ask?domain=NAME, sent with a Host
 * the router does not route (so no app's own paths are taken over), gets
 * 200 when NAME is routed and 404 otherwise.  Returns false when the
 * request is not such a question.
 */
static bool
ask_domain(Conn *conn)
{
	static const char prefix[] = "/.nx/ask?domain=";
	const char *target = conn->up.data + conn->head.target.off;
	size_t		len = conn->head.target.len;
	char		name[HTTP_HOST_MAX + 1];
	size_t		n = 0;
	size_t		i;
	int64_t		deployment;
	RouteState	state;

	if (conn->head.method.len != 3 || memcmp(conn->up.data + conn->head.method.off, "GET", 3) != 0 ||
		len < sizeof(prefix) - 1 || memcmp(target, prefix, sizeof(prefix) - 1) != 0)
		return false;
	for (i = sizeof(prefix) - 1; i < len && target[i] != '&' && target[i] != ':'; i++)
	{
		char		c = target[i];

		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		if (n == HTTP_HOST_MAX || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
		{
			conn_reply(conn, 400, "bad domain in /.nx/ask");
			return true;
		}
		name[n++] = c;
	}
	while (n > 0 && name[n - 1] == '.')
		n--;
	name[n] = '\0';
	if (n > 0 && RoutesLookup(name, &deployment, &state))
		conn_reply(conn, 200, "known host");
	else
		conn_reply(conn, 404, "unknown host");
	return true;
}

/*
 * route_head is called when the first head is complete: it picks the
 * deployment from the Host and asks for the app, or answers 404/503.
 */
static void
route_head(Conn *conn)
{
	int64_t		deployment;
	RouteState	state;

	if (!RoutesLoaded())
	{
		conn_reply(conn, 503, "routes not loaded yet");
		return;
	}
	if (!conn->head.has_host)
	{
		conn_reply(conn, 404, "no Host in the request");
		return;
	}
	if (!RoutesLookup(conn->head.host, &deployment, &state))
	{
		if (!ask_domain(conn))
			conn_reply(conn, 404, "no site at this address");
		return;
	}
	if (state == ROUTE_STOPPED)
	{
		conn_reply(conn, 503, "not running");
		return;
	}
	if (state == ROUTE_ASLEEP)
		RoutesWake(deployment); /* and hold the request until it is up */
	conn->deployment = deployment;
	conn->state = CONN_HANDOFF;
	conn->deadline = 0;
	conn->handoff_started = NowMs();
	conn->ready_deadline = conn->handoff_started + router_settings.ready_timeout_ms;
	conn->retry_delay_ms = RETRY_FAST_MS;
	set_interest(conn);
	HandoffRequest(conn);
}

/* read_head reads from the client until its first head is complete. */
static void
read_head(Conn *conn)
{
	for (;;)
	{
		ssize_t		n;
		HttpHeadResult r;

		if (conn->up.end == conn->up.cap)
		{
			size_t		cap = conn->up.cap * 2;
			char	   *bigger;

			if (cap > conn->head.limit)
				cap = conn->head.limit;
			if (cap <= conn->up.cap || (bigger = realloc(conn->up.data, cap)) == NULL)
			{
				conn_reply(conn, 431, "request head too large");
				return;
			}
			conn->up.data = bigger;
			conn->up.cap = cap;
		}
		n = read(conn->client_fd, conn->up.data + conn->up.end, conn->up.cap - conn->up.end);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0)
		{
			conn_close(conn);	/* gone before asking anything */
			return;
		}
		conn->up.end += n;
		r = HttpHeadParse(&conn->head, conn->up.data, conn->up.end);
		if (r == HTTP_HEAD_NEED_MORE)
			continue;
		if (r == HTTP_HEAD_ERROR_400)
			conn_reply(conn, 400, "malformed request");
		else if (r == HTTP_HEAD_ERROR_431)
			conn_reply(conn, 431, "request head too large");
		else
			route_head(conn);
		return;
	}
}

/*
 * rewrite_head builds what the app receives first: the request line,
 * our X-Forwarded-* fields, the client's fields except forwarded ones, the
 * empty line, then whatever the client sent after the head.  Returns false
 * when out of memory.
 */
static bool
rewrite_head(Conn *conn)
{
	const HttpHead *h = &conn->head;
	const char *in = conn->up.data;
	size_t		extra = 128 + strlen(conn->peer) + h->host_raw.len;
	size_t		need = conn->up.end - h->start + extra;
	Buf			out;
	size_t		p;

	if (!buf_alloc(&out, need > router_settings.buffer_size ? need : router_settings.buffer_size))
		return false;
	memcpy(out.data, in + h->start, h->line_end - h->start);
	out.end = h->line_end - h->start;
	out.end += snprintf(out.data + out.end, out.cap - out.end,
						"X-Forwarded-For: %s\r\nX-Forwarded-Proto: http\r\n"
						"X-Forwarded-Host: %.*s\r\n",
						conn->peer, (int) h->host_raw.len, in + h->host_raw.off);
	/* the fields; the head was validated: every line ends with CRLF */
	for (p = h->line_end; p < h->head_len - 2;)
	{
		const char *nl = memchr(in + p, '\n', h->head_len - p);
		const char *colon = memchr(in + p, ':', nl - (in + p));
		size_t		line_len = nl + 1 - (in + p);

		if (!HttpIsForwardedField(in + p, colon - (in + p)))
		{
			memcpy(out.data + out.end, in + p, line_len);
			out.end += line_len;
		}
		p += line_len;
	}
	memcpy(out.data + out.end, in + h->head_len - 2, conn->up.end - (h->head_len - 2));
	out.end += conn->up.end - (h->head_len - 2);
	free(conn->up.data);
	conn->up = out;
	return true;
}

/*
 * ConnGotApp is called by the hand-off with the app socket for `conn`
 * (connected or still connecting): relaying starts at once.  On loopback
 * the connection is nearly always established by now; if not, sending the
 * head fails with EAGAIN and epoll reports when it can go (a failed
 * connection shows up as an error on that send or the next read).
 */
void
ConnGotApp(Conn *conn, int app_fd)
{
	int			one = 1;

	conn->app_fd = app_fd;
	/* nx-init makes it non-blocking; never trust that a blocking one is not */
	SetNonBlocking(app_fd);
	(void) setsockopt(app_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!rewrite_head(conn) || !buf_alloc(&conn->down, router_settings.buffer_size))
	{
		conn_reply(conn, 503, "out of memory");
		return;
	}
	conn->state = CONN_RELAY;
	conn->retry_at = 0;
	conn->activity = ActivityGet(conn->deployment);
	if (conn->activity)
		ActivityOpened(conn->activity, conn->up.end - conn->up.start);
	conn_relay(conn, false, false);
}

/* ConnHandoffFailed answers `conn` with `status` when no app can be had. */
void
ConnHandoffFailed(Conn *conn, int status, const char *why)
{
	conn_reply(conn, status, why);
}

/*
 * ConnRetryHandoff schedules another CONNECT for `conn`, or answers 503
 * when the app was not ready in time.  It asks every RETRY_FAST_MS at
 * first (a sandbox starting or waking is usually up within tens of
 * milliseconds, and each attempt is one packet, or a failed connect()
 * shared by every connection due in the same loop pass), then backs off.  If the deployment has gone to sleep meanwhile (idle
 * stop raced with this request), it is woken.
 */
void
ConnRetryHandoff(Conn *conn, const char *why)
{
	int64_t		now = NowMs();
	int64_t		deployment;
	RouteState	state;

	if (now + conn->retry_delay_ms > conn->ready_deadline)
	{
		conn_reply(conn, 503, why);
		return;
	}
	if (conn->head.has_host && RoutesLookup(conn->head.host, &deployment, &state) &&
		deployment == conn->deployment && state == ROUTE_ASLEEP)
		RoutesWake(deployment);
	conn->retry_at = now + conn->retry_delay_ms;
	if (now - conn->handoff_started >= RETRY_FAST_PERIOD_MS)
	{
		conn->retry_delay_ms *= 2;
		if (conn->retry_delay_ms > RETRY_MAX_DELAY_MS)
			conn->retry_delay_ms = RETRY_MAX_DELAY_MS;
	}
}

/*
 * app_failed handles an app socket that failed or closed before the app
 * said anything: the client gets a 502; afterwards it just closes.
 */
static void
app_failed(Conn *conn, int err)
{
	char		why[128];

	if (conn->down_bytes == 0 && !conn->client_shut)
	{
		snprintf(why, sizeof(why), "the app of deployment %lld closed the connection%s%s",
				 (long long) conn->deployment, err ? ": " : "", err ? strerror(err) : "");
		conn_reply(conn, 502, why);
	}
	else
		conn_close(conn);
}

/*
 * conn_relay moves whatever bytes can move now in both directions, passes
 * FINs on, and closes the connection when both directions are finished.
 * Only the side epoll reported is read (read_client, read_app): reading
 * the other one would mostly cost a syscall to learn EAGAIN; its turn
 * comes with its own event.
 */
static void
conn_relay(Conn *conn, bool read_client, bool read_app)
{
	ssize_t		n;

	/* client -> app */
	buf_compact(&conn->up);
	if (read_client && !conn->client_eof && conn->up.end < conn->up.cap)
	{
		n = read(conn->client_fd, conn->up.data + conn->up.end, conn->up.cap - conn->up.end);
		if (n > 0)
		{
			conn->up.end += n;
			ActivityMoved(conn->activity, n, 0);
		}
		else if (n == 0)
			conn->client_eof = true;
		else if (errno != EAGAIN && errno != EINTR)
		{
			conn_close(conn);
			return;
		}
	}
	if (conn->up.end > conn->up.start)
	{
		n = send(conn->app_fd, conn->up.data + conn->up.start, conn->up.end - conn->up.start,
				 MSG_NOSIGNAL);
		if (n > 0)
			conn->up.start += n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
		{
			app_failed(conn, errno);
			return;
		}
	}
	if (conn->client_eof && conn->up.start == conn->up.end && !conn->app_shut)
	{
		if (conn->client_shut)
		{
			/* both directions done: close() sends the FIN */
			conn_close(conn);
			return;
		}
		shutdown(conn->app_fd, SHUT_WR);
		conn->app_shut = true;
	}

	/* app -> client */
	buf_compact(&conn->down);
	if (read_app && !conn->app_eof && conn->down.end < conn->down.cap)
	{
		n = read(conn->app_fd, conn->down.data + conn->down.end, conn->down.cap - conn->down.end);
		if (n > 0)
		{
			conn->down.end += n;
			conn->down_bytes += n;
			ActivityMoved(conn->activity, 0, n);
		}
		else if (n == 0)
			conn->app_eof = true;
		else if (errno != EAGAIN && errno != EINTR)
		{
			app_failed(conn, errno);
			return;
		}
	}
	if (conn->down.end > conn->down.start)
	{
		n = send(conn->client_fd, conn->down.data + conn->down.start,
				 conn->down.end - conn->down.start, MSG_NOSIGNAL);
		if (n > 0)
			conn->down.start += n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
		{
			conn_close(conn);
			return;
		}
	}
	if (conn->app_eof && conn->down.start == conn->down.end && !conn->client_shut)
	{
		if (conn->down_bytes == 0)
		{
			app_failed(conn, 0);
			return;
		}
		if (conn->app_shut)
		{
			/* both directions done: close() sends the FIN */
			conn_close(conn);
			return;
		}
		shutdown(conn->client_fd, SHUT_WR);
		conn->client_shut = true;
		conn->deadline = NowMs() + DONE_TIMEOUT_MS;
	}
	conn->last_active = loop_now;
	set_interest(conn);
}

/* ConnEvent handles an epoll event on either side of a connection. */
void
ConnEvent(Tag *tag, uint32_t events)
{
	Conn	   *conn = tag->owner;
	bool		readable = (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0;

	switch (conn->state)
	{
		case CONN_HEAD:
			read_head(conn);
			break;
		case CONN_RELAY:
			conn_relay(conn, tag->kind == TAG_CLIENT && readable,
					   tag->kind == TAG_APP && readable);
			break;
		case CONN_REPLY:
		case CONN_LINGER:
			reply_progress(conn);
			break;
		case CONN_HANDOFF:
		case CONN_CLOSED:
			break;
	}
}

/*
 * ConnTimers acts on the deadlines that passed: a head not complete in
 * time (408, against slowloris), a hand-off to ask again, a relayed
 * connection silent for --idle-timeout (504 if the app never answered), a
 * reply or linger that takes too long, a client that stays open after the
 * app is done.  *next is lowered to the earliest retry still pending.
 */
void
ConnTimers(int64_t now, int64_t *next)
{
	Conn	   *conn,
			   *following;

	for (conn = conns; conn; conn = following)
	{
		following = conn->next;
		if (conn->state == CONN_HANDOFF)
		{
			if (conn->retry_at && now >= conn->retry_at)
			{
				conn->retry_at = 0;
				HandoffRequest(conn);
			}
			else if (conn->retry_at && conn->retry_at < *next)
				*next = conn->retry_at;
			else if (conn->queued && now > conn->ready_deadline + 1000)
				conn_reply(conn, 503, "no answer from the sandbox's nx-init");
			continue;
		}
		if (conn->state == CONN_RELAY && router_settings.idle_timeout_ms > 0 &&
			now - conn->last_active > router_settings.idle_timeout_ms)
		{
			if (conn->down_bytes == 0 && !conn->client_shut)
				conn_reply(conn, 504, "the app did not answer in time");
			else
				conn_close(conn);
			continue;
		}
		if (conn->deadline == 0 || now < conn->deadline)
			continue;
		if (conn->state == CONN_HEAD)
			conn_reply(conn, 408, "request head not received in time");
		else
			conn_close(conn);
	}
}
