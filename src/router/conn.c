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
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPTS_PER_WAKEUP	64
#define HEAD_INITIAL_SIZE	4096
#define REPLY_TIMEOUT_MS	5000	/* to write our own response */
#define LINGER_MS			2000	/* to drain the client after it */
#define LINGER_MAX_BYTES	(256 * 1024)
#define DONE_TIMEOUT_MS		10000	/* client still open after the app finished */
#define RESP_HEAD			0	/* resp_phase: reading the response head */
#define RESP_BODY			1	/* ... its body */
#define RESP_DONE			2	/* ... all of it read */
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

/*
 * buf_compact makes the free space of `b` contiguous at its end; *fwd (an
 * offset into b between start and end) moves with the bytes.
 */
static void
buf_compact(Buf *b, size_t *fwd)
{
	if (b->start == b->end)
	{
		b->start = b->end = 0;
		*fwd = 0;
	}
	else if (b->end == b->cap && b->start > 0)
	{
		memmove(b->data, b->data + b->start, b->end - b->start);
		b->end -= b->start;
		*fwd -= b->start;
		b->start = 0;
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
			client = EPOLLIN;
			app = EPOLLIN;		/* an idle app that closes or talks is dropped */
			break;
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
			if (conn->down_fwd > conn->down.start)
				client |= EPOLLOUT;
			if (conn->up_fwd > conn->up.start && !conn->up_broken)
				app |= EPOLLOUT;
			if (!conn->app_eof && conn->down.end - conn->down.start < conn->down.cap &&
				conn->resp_phase != RESP_DONE)
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

/*
 * app_detach stops using the app connection of `conn`: it is closed (a
 * pool keeps reusable ones: see pool.c) and no longer counted as open for
 * its deployment.
 */
static void
app_detach(Conn *conn, bool reusable)
{
	if (conn->app_fd < 0)
		return;
	if (conn->activity)
	{
		ActivityClosed(conn->activity);
		conn->activity = NULL;
	}
	EpollDel(conn->app_fd, &conn->app_events);
	if (!reusable || !PoolPut(conn->app_deployment, conn->app_fd))
		close(conn->app_fd);
	conn->app_fd = -1;
	conn->app_deployment = -1;
}

/*
 * app_attach makes `fd` the app connection of `conn` for its current
 * deployment and counts it as open there (an idle client connection
 * holding it keeps the deployment awake, as before pooling).
 */
static void
app_attach(Conn *conn, int fd, bool reused, bool registered)
{
	int			one = 1;

	conn->app_fd = fd;
	conn->app_deployment = conn->deployment;
	conn->app_reused = reused;
	/* registered by the pool: the next EpollSet moves it to our tag */
	conn->app_events = registered ? EPOLL_REGISTERED : 0;
	if (!reused)
	{
		/* nx-init makes it non-blocking; never trust that a blocking one is not */
		SetNonBlocking(fd);
		(void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	conn->activity = ActivityGet(conn->deployment);
	if (conn->activity)
		ActivityOpened(conn->activity, 0);
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
		conn->app_deployment = -1;
		conn->trusted = RouterPeerTrusted(&ss);
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

/* conn_close closes both sockets; the struct is freed after this loop pass. */
static void
conn_close(Conn *conn)
{
	if (conn->state == CONN_CLOSED)
		return;
	HandoffCancel(conn);
	/*
	 * no EPOLL_CTL_DEL for the client socket: we accepted it and hold its
	 * only reference, so close() unregisters it (the app socket came from
	 * another process and is unregistered explicitly)
	 */
	conn->client_events = 0;
	close(conn->client_fd);
	/* an app connection idle between requests goes back to the pool */
	app_detach(conn, conn->state == CONN_HEAD && conn->app_reusable);
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
		free(conn->retry_head);
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
	app_detach(conn, false);
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

/* method_is says whether the current request's method is `m`. */
static bool
method_is(Conn *conn, const char *m)
{
	size_t		len = strlen(m);

	return conn->head.method.len == len &&
		memcmp(conn->up.data + conn->up.start + conn->head.method.off, m, len) == 0;
}

/*
 * is_idempotent: may the request be sent again when a reused app
 * connection closed before answering?  (RFC 9110 section 9.2.2; only
 * requests without a body are kept for that.)
 */
static bool
is_idempotent(Conn *conn)
{
	return method_is(conn, "GET") || method_is(conn, "HEAD") || method_is(conn, "OPTIONS") ||
		method_is(conn, "TRACE") || method_is(conn, "PUT") || method_is(conn, "DELETE");
}

/* is_hop_field: a hop-by-hop field the router sets itself on each hop. */
static bool
is_hop_field(const char *name, size_t len)
{
	return (len == 10 && strncasecmp(name, "connection", 10) == 0) ||
		(len == 10 && strncasecmp(name, "keep-alive", 10) == 0) ||
		(len == 16 && strncasecmp(name, "proxy-connection", 16) == 0);
}

/*
 * rewrite_head builds what the app receives for the current request: the
 * request line, the client's fields except forwarded ones (kept from a
 * trusted proxy) and hop-by-hop ones (kept for an upgrade), our
 * X-Forwarded-* and Connection fields, the empty line, then whatever the
 * client sent after the head.  Sets up_fwd to the end of the new head.
 * Returns false when out of memory.
 */
static bool
rewrite_head(Conn *conn)
{
	const HttpHead *h = &conn->head;
	const char *in = conn->up.data + conn->up.start;
	size_t		avail = conn->up.end - conn->up.start;
	size_t		extra = 256 + strlen(conn->peer) + h->host_raw.len;
	size_t		need = avail + h->head_len + extra;
	bool		keep_hop = conn->upgrade_request;
	Buf			out;
	size_t		p;
	size_t		xff_off = 0,
				xff_len = 0;
	bool		sent_proto = false,
				sent_host = false;
	char	   *xff = NULL;

	if (need < router_settings.buffer_size)
		need = router_settings.buffer_size;
	if (!buf_alloc(&out, need))
		return false;
	if (conn->trusted && h->has_forwarded && (xff = malloc(h->head_len + 1)) == NULL)
	{
		free(out.data);
		return false;
	}
	memcpy(out.data, in + h->start, h->line_end - h->start);
	out.end = h->line_end - h->start;
	/* the fields; the head was validated: every line ends with CRLF */
	for (p = h->line_end; p < h->head_len - 2;)
	{
		const char *nl = memchr(in + p, '\n', h->head_len - p);
		const char *colon = memchr(in + p, ':', nl - (in + p));
		size_t		line_len = nl + 1 - (in + p);
		size_t		name_len = colon - (in + p);
		bool		keep = true;

		if (HttpIsForwardedField(in + p, name_len))
		{
			keep = conn->trusted;
			if (keep && name_len == 15 && strncasecmp(in + p, "x-forwarded-for", 15) == 0)
			{
				/* collected, sent once below with the peer appended */
				const char *v = colon + 1;
				const char *e = nl - 1;

				while (v < e && (*v == ' ' || *v == '\t'))
					v++;
				while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
					e--;
				if (e > v)
				{
					if (xff_len > 0)
					{
						memcpy(xff + xff_len, ", ", 2);
						xff_len += 2;
					}
					memcpy(xff + xff_len, v, e - v);
					xff_len += e - v;
				}
				keep = false;
			}
			else if (keep && name_len == 17 && strncasecmp(in + p, "x-forwarded-proto", 17) == 0)
				sent_proto = true;
			else if (keep && name_len == 16 && strncasecmp(in + p, "x-forwarded-host", 16) == 0)
				sent_host = true;
		}
		else if (!keep_hop && is_hop_field(in + p, name_len))
			keep = false;
		if (keep)
		{
			memcpy(out.data + out.end, in + p, line_len);
			out.end += line_len;
		}
		p += line_len;
	}
	(void) xff_off;
	if (xff_len > 0)
		out.end += snprintf(out.data + out.end, out.cap - out.end,
							"X-Forwarded-For: %.*s, %s\r\n", (int) xff_len, xff, conn->peer);
	else
		out.end += snprintf(out.data + out.end, out.cap - out.end,
							"X-Forwarded-For: %s\r\n", conn->peer);
	free(xff);
	if (!sent_proto)
		out.end += snprintf(out.data + out.end, out.cap - out.end, "X-Forwarded-Proto: http\r\n");
	if (!sent_host)
		out.end += snprintf(out.data + out.end, out.cap - out.end, "X-Forwarded-Host: %.*s\r\n",
							(int) h->host_raw.len, in + h->host_raw.off);
	if (!keep_hop && h->version_minor == 0)
		out.end += snprintf(out.data + out.end, out.cap - out.end, "Connection: keep-alive\r\n");
	memcpy(out.data + out.end, in + h->head_len - 2, avail - (h->head_len - 2));
	out.end += avail - (h->head_len - 2);
	free(conn->up.data);
	conn->up = out;
	conn->up_fwd = out.end - (avail - h->head_len);
	return true;
}

/*
 * rewrite_response_head replaces the response head at down_fwd (resp
 * parsed it) by one without the app's hop-by-hop fields and with our own
 * Connection field, and moves down_fwd past it.  Returns false when out
 * of memory.
 */
static bool
rewrite_response_head(Conn *conn)
{
	const HttpHead *h = &conn->resp;
	char	   *in = conn->down.data + conn->down_fwd;
	char	   *out = malloc(h->head_len + 64);
	size_t		n,
				p;
	size_t		rest = conn->down.end - conn->down_fwd - h->head_len;

	if (out == NULL)
		return false;
	memcpy(out, in, h->line_end);
	n = h->line_end;
	for (p = h->line_end; p < h->head_len - 2;)
	{
		const char *nl = memchr(in + p, '\n', h->head_len - p);
		const char *colon = memchr(in + p, ':', nl - (in + p));
		size_t		line_len = nl + 1 - (in + p);

		if (!is_hop_field(in + p, colon - (in + p)))
		{
			memcpy(out + n, in + p, line_len);
			n += line_len;
		}
		p += line_len;
	}
	if (conn->client_close)
		n += sprintf(out + n, "Connection: close\r\n");
	else if (conn->head.version_minor == 0)
		n += sprintf(out + n, "Connection: keep-alive\r\n");
	memcpy(out + n, "\r\n", 2);
	n += 2;
	if (conn->down_fwd + n + rest > conn->down.cap)
	{
		size_t		cap = conn->down_fwd + n + rest;
		char	   *bigger = realloc(conn->down.data, cap);

		if (bigger == NULL)
		{
			free(out);
			return false;
		}
		conn->down.data = bigger;
		conn->down.cap = cap;
		in = conn->down.data + conn->down_fwd;
	}
	memmove(in + n, in + h->head_len, rest);
	memcpy(in, out, n);
	free(out);
	conn->down.end = conn->down_fwd + n + rest;
	conn->down_fwd += n;
	return true;
}

/*
 * bad_response handles an app answer that cannot be framed: 502 to the
 * client if nothing of the response reached it yet, else the connection is
 * cut; either way the app connection is closed, never reused.
 */
static void
bad_response(Conn *conn, const char *why)
{
	char		msg[160];

	snprintf(msg, sizeof(msg), "%s from the app of deployment %lld", why,
			 (long long) conn->app_deployment);
	conn->app_reusable = false;
	if (!conn->interim_sent)
		conn_reply(conn, 502, msg);
	else
	{
		RouterLog("%s (client %s)", msg, conn->peer);
		conn_close(conn);
	}
}

/*
 * frame_up finds how much of what the client sent belongs to the current
 * request (its body, by its framing); the rest is the next request and
 * waits.  Returns false when the connection was answered or closed.
 */
static bool
frame_up(Conn *conn)
{
	size_t		used;
	HttpFrameResult r;

	if (conn->tunnel)
	{
		conn->up_fwd = conn->up.end;
		return true;
	}
	if (conn->req_done || conn->up_fwd == conn->up.end)
		return true;
	r = HttpBodyFeed(&conn->req_body, conn->up.data + conn->up_fwd,
					 conn->up.end - conn->up_fwd, &used);
	conn->up_fwd += used;
	if (r == HTTP_FRAME_ERROR)
	{
		conn->app_reusable = false;
		conn_reply(conn, 400, "malformed chunked request body");
		return false;
	}
	if (r == HTTP_FRAME_DONE)
		conn->req_done = true;
	return true;
}

/*
 * frame_down parses what the app sent for the current request: interim
 * 1xx heads (passed on), the final head (rewritten), its body by its
 * framing; a 101 to an upgrade request starts the tunnel.  Bytes the app
 * sends past the end of its response are dropped and the app connection
 * is not reused.  Returns false when the connection was answered or
 * closed.
 */
static bool
frame_down(Conn *conn)
{
	for (;;)
	{
		HttpHeadResult hr;
		HttpFrameResult fr;
		HttpBodyKind kind;
		uint64_t	len;
		size_t		used;

		if (conn->tunnel)
		{
			conn->down_fwd = conn->down.end;
			return true;
		}
		if (conn->resp_phase == RESP_DONE)
		{
			if (conn->down.end > conn->down_fwd)
			{
				conn->app_reusable = false;
				conn->down.end = conn->down_fwd;
			}
			return true;
		}
		if (conn->resp_phase == RESP_BODY)
		{
			fr = HttpBodyFeed(&conn->resp_body, conn->down.data + conn->down_fwd,
							  conn->down.end - conn->down_fwd, &used);
			conn->down_fwd += used;
			if (fr == HTTP_FRAME_ERROR)
			{
				RouterLog("malformed chunked response from the app of deployment %lld (client %s)",
						  (long long) conn->app_deployment, conn->peer);
				conn_close(conn);
				return false;
			}
			if (fr == HTTP_FRAME_DONE)
			{
				conn->resp_phase = RESP_DONE;
				continue;
			}
			if (conn->resp_body.kind == HTTP_BODY_CLOSE && conn->app_eof)
				conn->resp_phase = RESP_DONE;
			return true;
		}

		/* RESP_HEAD */
		if (conn->down.end == conn->down_fwd)
			return true;
		hr = HttpHeadParse(&conn->resp, conn->down.data + conn->down_fwd,
						   conn->down.end - conn->down_fwd);
		if (hr == HTTP_HEAD_NEED_MORE)
			return true;
		if (hr != HTTP_HEAD_COMPLETE)
		{
			bad_response(conn, hr == HTTP_HEAD_ERROR_431 ? "response head too large" :
						 "malformed response");
			return false;
		}
		if (conn->resp.status == 101)
		{
			if (!conn->upgrade_request)
			{
				bad_response(conn, "101 to a request without Upgrade");
				return false;
			}
			conn->tunnel = true;
			conn->app_reusable = false;
			conn->client_close = true;
			continue;
		}
		if (conn->resp.status < 200)
		{
			/* interim: passed on as it is, except to HTTP/1.0 clients */
			if (conn->head.version_minor == 0)
			{
				memmove(conn->down.data + conn->down_fwd,
						conn->down.data + conn->down_fwd + conn->resp.head_len,
						conn->down.end - conn->down_fwd - conn->resp.head_len);
				conn->down.end -= conn->resp.head_len;
			}
			else
			{
				conn->down_fwd += conn->resp.head_len;
				conn->interim_sent = true;
			}
			HttpHeadInitResponse(&conn->resp, router_settings.head_limit);
			continue;
		}
		kind = HttpResponseFraming(&conn->resp, conn->head_request, &len);
		if (conn->resp.conn_close || (conn->resp.version_minor == 0 && !conn->resp.conn_keep_alive) ||
			kind == HTTP_BODY_CLOSE)
			conn->app_reusable = false;
		if (kind == HTTP_BODY_CLOSE)
			conn->client_close = true;
		if (!conn->req_done)
		{
			/* answered before the request was all sent: its rest is lost */
			conn->client_close = true;
			conn->app_reusable = false;
		}
		if (!rewrite_response_head(conn))
		{
			conn_close(conn);
			return false;
		}
		HttpBodyInit(&conn->resp_body, kind, len);
		conn->resp_phase = RESP_BODY;
	}
}

/*
 * begin_forward starts forwarding the current request on app_fd: rewrite
 * its head, frame what of the body is already here, and expect a response.
 */
static void
begin_forward(Conn *conn)
{
	uint64_t	len;
	HttpBodyKind kind = HttpRequestFraming(&conn->head, &len);
	bool		keep = conn->app_reused && kind == HTTP_BODY_NONE && is_idempotent(conn) &&
		!conn->upgrade_request;

	free(conn->retry_head);
	conn->retry_head = NULL;
	if (!rewrite_head(conn) ||
		(conn->down.data == NULL && !buf_alloc(&conn->down, router_settings.buffer_size)))
	{
		conn_reply(conn, 503, "out of memory");
		return;
	}
	if (keep && (conn->retry_head = malloc(conn->up_fwd)) != NULL)
	{
		memcpy(conn->retry_head, conn->up.data, conn->up_fwd);
		conn->retry_len = conn->up_fwd;
	}
	HttpBodyInit(&conn->req_body, kind, len);
	conn->req_done = conn->req_body.done;
	HttpHeadInitResponse(&conn->resp, router_settings.head_limit);
	conn->resp_phase = RESP_HEAD;
	conn->down.start = conn->down.end = 0;
	conn->down_fwd = 0;
	conn->down_bytes = 0;
	conn->app_reusable = true;
	conn->up_broken = false;
	conn->interim_sent = false;
	conn->state = CONN_RELAY;
	conn->retry_at = 0;
	conn->deadline = 0;
	ActivityMoved(conn->activity, conn->up_fwd, 0);
	conn_relay(conn, false, false);
}

/*
 * route_request is called when a request head is complete: it picks the
 * deployment from the Host and forwards the request on the app connection
 * the previous request used (same deployment), an idle pooled one, or a
 * new one asked from nx-init; or answers 400/404/503.
 */
static void
route_request(Conn *conn)
{
	int64_t		deployment;
	RouteState	state;
	int			fd;
	bool		registered;

	if (!RoutesLoaded())
	{
		conn_reply(conn, 503, "routes not loaded yet");
		return;
	}
	if (method_is(conn, "CONNECT"))
	{
		conn_reply(conn, 400, "CONNECT is not supported");
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
	conn->deployment = deployment;
	conn->head_request = method_is(conn, "HEAD");
	conn->upgrade_request = conn->head.has_upgrade && conn->head.conn_upgrade;
	conn->client_close = conn->head.conn_close ||
		(conn->head.version_minor == 0 && !conn->head.conn_keep_alive);
	if (conn->app_fd >= 0 && conn->app_deployment != deployment)
		app_detach(conn, conn->app_reusable);
	if (conn->app_fd >= 0)
	{
		begin_forward(conn);
		return;
	}
	if (state == ROUTE_RUNNING && (fd = PoolGet(deployment, &registered)) >= 0)
	{
		app_attach(conn, fd, true, registered);
		begin_forward(conn);
		return;
	}
	if (state == ROUTE_ASLEEP)
		RoutesWake(deployment); /* and hold the request until it is up */
	conn->state = CONN_HANDOFF;
	conn->deadline = 0;
	conn->handoff_started = NowMs();
	conn->ready_deadline = conn->handoff_started + router_settings.ready_timeout_ms;
	conn->retry_delay_ms = RETRY_FAST_MS;
	set_interest(conn);
	HandoffRequest(conn);
}

/*
 * parse_head looks at the bytes already read for a complete request head
 * (pipelined requests are already there); returns true when it acted
 * (routed or answered), false when more bytes are needed.
 */
static bool
parse_head(Conn *conn)
{
	HttpHeadResult r;

	if (conn->up.end == conn->up.start)
		return false;
	r = HttpHeadParse(&conn->head, conn->up.data + conn->up.start, conn->up.end - conn->up.start);
	if (r == HTTP_HEAD_NEED_MORE)
		return false;
	if (r == HTTP_HEAD_ERROR_400)
		conn_reply(conn, 400, "malformed request");
	else if (r == HTTP_HEAD_ERROR_431)
		conn_reply(conn, 431, "request head too large");
	else
		route_request(conn);
	return true;
}

/* read_head reads from the client until a request head is complete. */
static void
read_head(Conn *conn)
{
	for (;;)
	{
		ssize_t		n;

		if (conn->up.end == conn->up.cap)
		{
			size_t		cap = conn->up.cap * 2;
			char	   *bigger;

			buf_compact(&conn->up, &conn->up_fwd);
			if (conn->up.end == conn->up.cap)
			{
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
		}
		n = read(conn->client_fd, conn->up.data + conn->up.end, conn->up.cap - conn->up.end);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0)
		{
			conn_close(conn);	/* gone before asking anything more */
			return;
		}
		conn->up.end += n;
		if (conn->deadline_is_idle)
		{
			/* the next head started: it must come within the head timeout */
			conn->deadline_is_idle = false;
			conn->deadline = loop_now + router_settings.head_timeout_ms;
		}
		if (parse_head(conn))
			return;
	}
}

/*
 * app_idle_event: the app connection kept for the next request became
 * readable while no request was on it: it closed, or it talks out of turn;
 * either way it is dropped.
 */
static void
app_idle_event(Conn *conn)
{
	app_detach(conn, false);
	set_interest(conn);
}

/*
 * finish_request is called once the response has been forwarded
 * completely: the app connection is kept for the next request if it can
 * be, and the next head is parsed (or the connection closed).
 */
static void
finish_request(Conn *conn)
{
	bool		reusable = conn->app_reusable && conn->req_done && !conn->app_eof &&
		conn->up.start == conn->up_fwd && !conn->up_broken && conn->down.end == conn->down_fwd;

	conn->requests++;
	if (!reusable)
		app_detach(conn, false);
	if (conn->client_close || conn->client_eof)
	{
		conn_close(conn);
		return;
	}
	HttpHeadInit(&conn->head, router_settings.head_limit);
	conn->state = CONN_HEAD;
	conn->app_eof = false;
	conn->deadline = loop_now + router_settings.keepalive_timeout_ms;
	conn->deadline_is_idle = true;
	free(conn->retry_head);
	conn->retry_head = NULL;
	if (conn->up.end > conn->up.start)
	{
		conn->deadline_is_idle = false;
		conn->deadline = loop_now + router_settings.head_timeout_ms;
		if (parse_head(conn))
			return;
	}
	set_interest(conn);
}

/*
 * ConnGotApp is called by the hand-off with the app socket for `conn`
 * (connected or still connecting): forwarding starts at once.  On loopback
 * the connection is nearly always established by now; if not, sending the
 * head fails with EAGAIN and epoll reports when it can go (a failed
 * connection shows up as an error on that send or the next read).
 */
void
ConnGotApp(Conn *conn, int app_fd)
{
	app_attach(conn, app_fd, false, false);
	if (conn->retrying)
	{
		conn->retrying = false;
		/* a retried request: its head is already rewritten */
		conn->state = CONN_RELAY;
		conn->retry_at = 0;
		conn_relay(conn, false, false);
		return;
	}
	begin_forward(conn);
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
 * retry_request sends the current request again on a new app connection
 * from nx-init, after a reused one closed before answering (the app may
 * close an idle connection just as the router reuses it).  Only requests
 * kept for that (idempotent, no body: begin_forward) are retried, once.
 */
static bool
retry_request(Conn *conn)
{
	Buf			b;
	size_t		rest = conn->up.end - conn->up_fwd;

	if (conn->retry_head == NULL || !conn->app_reused || conn->down_bytes > 0)
		return false;
	if (!buf_alloc(&b, conn->retry_len + rest > router_settings.buffer_size ?
				   conn->retry_len + rest : router_settings.buffer_size))
		return false;
	memcpy(b.data, conn->retry_head, conn->retry_len);
	memcpy(b.data + conn->retry_len, conn->up.data + conn->up_fwd, rest);
	b.end = conn->retry_len + rest;
	free(conn->up.data);
	conn->up = b;
	conn->up_fwd = conn->retry_len;
	app_detach(conn, false);
	conn->app_eof = false;
	conn->up_broken = false;
	conn->app_reusable = true;
	HttpHeadInitResponse(&conn->resp, router_settings.head_limit);
	conn->resp_phase = RESP_HEAD;
	conn->down.start = conn->down.end = conn->down_fwd = 0;
	conn->state = CONN_HANDOFF;
	conn->retrying = true;
	conn->handoff_started = NowMs();
	conn->ready_deadline = conn->handoff_started + router_settings.ready_timeout_ms;
	conn->retry_delay_ms = RETRY_FAST_MS;
	set_interest(conn);
	HandoffRequest(conn);
	return true;
}

/*
 * app_failed handles an app socket that failed or closed before the app
 * said anything: a request on a reused connection is sent again on a new
 * one when it may be; else the client gets a 502; once the app has
 * answered something, the connection just closes.
 */
static void
app_failed(Conn *conn, int err)
{
	char		why[128];

	if (conn->down_bytes == 0 && !conn->tunnel && retry_request(conn))
		return;
	if (conn->down_bytes == 0 && !conn->client_shut && !conn->interim_sent)
	{
		snprintf(why, sizeof(why), "the app of deployment %lld closed the connection%s%s",
				 (long long) conn->app_deployment, err ? ": " : "", err ? strerror(err) : "");
		conn_reply(conn, 502, why);
	}
	else
		conn_close(conn);
}

/*
 * conn_relay moves whatever bytes can move now in both directions for the
 * current request (or tunnel), and finishes the request once its response
 * has been forwarded.  Only the side epoll reported is read (read_client,
 * read_app): reading the other one would mostly cost a syscall to learn
 * EAGAIN; its turn comes with its own event.
 */
static void
conn_relay(Conn *conn, bool read_client, bool read_app)
{
	ssize_t		n;

	/* client -> app */
	buf_compact(&conn->up, &conn->up_fwd);
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
	if (!frame_up(conn))
		return;
	if (conn->up_fwd > conn->up.start && !conn->up_broken)
	{
		n = send(conn->app_fd, conn->up.data + conn->up.start, conn->up_fwd - conn->up.start,
				 MSG_NOSIGNAL);
		if (n > 0)
			conn->up.start += n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
		{
			if (conn->tunnel)
			{
				conn_close(conn);
				return;
			}
			/* the app stopped reading: its answer may still be there */
			conn->up_broken = true;
			conn->app_reusable = false;
			conn->client_close = true;
		}
	}
	if (conn->client_eof && conn->up.start == conn->up_fwd)
	{
		if (conn->tunnel)
		{
			if (conn->client_shut)
			{
				/* both directions done: close() sends the FIN */
				conn_close(conn);
				return;
			}
			if (!conn->app_shut)
			{
				shutdown(conn->app_fd, SHUT_WR);
				conn->app_shut = true;
			}
		}
		else if (!conn->req_done)
		{
			conn_close(conn);	/* the client gave up in the middle of a request */
			return;
		}
	}

	/* app -> client */
	buf_compact(&conn->down, &conn->down_fwd);
	if (read_app && !conn->app_eof && conn->down.end < conn->down.cap &&
		conn->resp_phase != RESP_DONE)
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
	if (!frame_down(conn))
		return;
	if (conn->down_fwd > conn->down.start)
	{
		n = send(conn->client_fd, conn->down.data + conn->down.start,
				 conn->down_fwd - conn->down.start, MSG_NOSIGNAL);
		if (n > 0)
			conn->down.start += n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
		{
			conn_close(conn);
			return;
		}
	}
	if (conn->tunnel)
	{
		if (conn->app_eof && conn->down.start == conn->down.end && !conn->client_shut)
		{
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
	}
	else if (conn->app_eof && conn->resp_phase != RESP_DONE)
	{
		if (conn->down_bytes == 0)
		{
			app_failed(conn, 0);
			return;
		}
		if (conn->resp_phase == RESP_HEAD)
		{
			bad_response(conn, "incomplete response head");
			return;
		}
		/* cut short: the client must not take it for a whole response */
		RouterLog("the app of deployment %lld closed in the middle of a response (client %s)",
				  (long long) conn->app_deployment, conn->peer);
		conn_close(conn);
		return;
	}
	else if (conn->resp_phase == RESP_DONE && conn->down.start == conn->down_fwd)
	{
		finish_request(conn);
		return;
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
			if (tag->kind == TAG_APP)
				app_idle_event(conn);
			else
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
		if (conn->state == CONN_HEAD && !conn->deadline_is_idle)
			conn_reply(conn, 408, "request head not received in time");
		else
			conn_close(conn);	/* idle keep-alive connections end quietly */
	}
}
