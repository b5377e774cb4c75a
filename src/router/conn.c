/*
 * src/router/conn.c
 *	  Client connections: accept, read each request head, route it on its
 *	  own Host, forward it with its body to an app socket of that
 *	  deployment (from the pool, or handed over by nx-init), forward the
 *	  response framed exactly, and then read the next request; or answer
 *	  with a small error page and close.  A 101 turns the pair into a byte
 *	  tunnel.
 *
 * Routing is per request: a client (or a pooling proxy in front) may send
 * requests for several hosts on one connection, and each reaches its own
 * deployment, in order (pipelined requests are taken one at a time: the
 * next head is parsed once the previous response has been forwarded).  A
 * promote takes effect for the next request; one in flight finishes where
 * it is.  Every request head is rewritten: X-Forwarded-For/-Proto/-Host
 * are set (a trusted proxy's are kept, the peer appended to its
 * X-Forwarded-For), Forwarded and the hop-by-hop Connection fields are
 * dropped.  Response heads lose their Connection fields, and get
 * "Connection: close" when the router closes the client connection after
 * them.
 *
 * Framing (http_head.c, http_frame.c) is what makes this safe: a body is
 * forwarded byte for byte but never past its end, and anything two HTTP
 * parsers could frame differently is refused (400 for a request, 502 for
 * a response) with the connection closed, so no byte of a smuggled
 * request reaches any app.
 *
 * Streaming: bodies move through one buffer per direction, read only
 * while it has room (backpressure); nothing is held whole, so uploads,
 * long chunked responses and server-sent events stream.
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
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define ACCEPTS_PER_WAKEUP	64
#define HEAD_INITIAL_SIZE	4096
#define REPLY_TIMEOUT_MS	5000	/* to write our own response */
#define LINGER_MS			2000	/* to drain the client after it */
#define LINGER_MAX_BYTES	(256 * 1024)
#define DONE_TIMEOUT_MS		10000	/* tunnel: client still open after the app finished */
#define RETRY_FAST_MS		2		/* ask nx-init this often at first ... */
#define RETRY_FAST_PERIOD_MS 500	/* ... for this long (a wake takes ~20 ms) */
#define RETRY_MAX_DELAY_MS	200		/* then back off up to this */

int			conn_count;
static Conn *conns;				/* every open connection */
static Conn *closed;			/* closed during this loop pass, freed after */
static int	reserve_fd = -1;	/* spare fd to shed connections on EMFILE */
static bool draining;			/* SIGTERM: close each connection after its response */

static void conn_close(Conn *conn);
static void conn_reply(Conn *conn, int status, const char *why);
static void exchange(Conn *conn, bool read_client, bool read_app);
static void tunnel(Conn *conn, bool read_client, bool read_app);
static void read_head(Conn *conn);
static void next_request(Conn *conn);
static void release_idle_app(Conn *conn);

/* buf_alloc gives `b` an empty buffer of `cap` bytes; false when out of memory. */
static bool
buf_alloc(Buf *b, size_t cap)
{
	b->data = malloc(cap);
	b->cap = b->data ? cap : 0;
	b->start = b->end = 0;
	return b->data != NULL;
}

/* buf_grow makes `b` at least `cap` bytes (keeping its content); false when out of memory. */
static bool
buf_grow(Buf *b, size_t cap)
{
	char	   *bigger;

	if (b->cap >= cap)
		return true;
	if ((bigger = realloc(b->data, cap)) == NULL)
		return false;
	b->data = bigger;
	b->cap = cap;
	return true;
}

/* buf_compact makes the free space of `b` contiguous at its end. */
static void
buf_compact(Buf *b)
{
	if (b->start == b->end)
		b->start = b->end = 0;
	else if (b->start > 0 && (b->end == b->cap || b->start >= b->cap / 2))
	{
		memmove(b->data, b->data + b->start, b->end - b->start);
		b->end -= b->start;
		b->start = 0;
	}
}

/* buf_put appends len bytes (the caller made room). */
static void
buf_put(Buf *b, const char *s, size_t len)
{
	memcpy(b->data + b->end, s, len);
	b->end += len;
}

/* buf_puts appends a string (the caller made room). */
static void
buf_puts(Buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
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
		case 405:
			return "Method Not Allowed";
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
 * --max-connections, or over --max-client-connections for the client's
 * address, a connection gets a 503 written at once (if the socket buffer
 * takes it) and is closed, costing the others nothing.
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
		Conn	   *conn = NULL;
		char		peer[64];
		bool		trusted;
		ClientCount *count = NULL;

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
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *) &ss)->sin_addr, peer, sizeof(peer));
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &ss)->sin6_addr, peer, sizeof(peer));
		else
			strcpy(peer, "unknown");
		trusted = ClientTrusted(&ss);
		if (conn_count >= router_settings.max_connections ||
			(!trusted && (count = ClientAdd(peer)) == NULL) ||
			(conn = calloc(1, sizeof(Conn))) == NULL)
		{
			static const char page[] =
				"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
				"Retry-After: 1\r\nContent-Length: 25\r\nConnection: close\r\n\r\n"
				"503 too many connections\n";

			if (conn_count >= router_settings.max_connections)
				RouterLog("503 too many connections (%d): refusing one", conn_count);
			else
				RouterLog("503 too many connections from %s: refusing one", peer);
			ClientRemove(count);
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
		conn->trusted = trusted;
		conn->client_count = count;
		memcpy(conn->peer, peer, sizeof(peer));
		HttpHeadInit(&conn->head, router_settings.head_limit);
		if (!buf_alloc(&conn->in, HEAD_INITIAL_SIZE))
		{
			ClientRemove(count);
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
		router_stats.accepted++;
		EpollSet(fd, &conn->client_tag, EPOLLIN, &conn->client_events);
	}
}

/*
 * send_two sends what is left of `head`, then up to `len` bytes of `body`,
 * in one system call; `head` is advanced, and the number of body bytes
 * sent is returned (-1 with errno on error; EAGAIN leaves both as they
 * were).
 */
static ssize_t
send_two(int fd, Buf *head, const char *body, size_t len)
{
	struct iovec iov[2];
	struct msghdr msg = {.msg_iov = iov};
	size_t		head_left = head->end - head->start;
	ssize_t		n;

	if (head_left > 0)
	{
		iov[msg.msg_iovlen].iov_base = head->data + head->start;
		iov[msg.msg_iovlen++].iov_len = head_left;
	}
	if (len > 0)
	{
		iov[msg.msg_iovlen].iov_base = (void *) body;
		iov[msg.msg_iovlen++].iov_len = len;
	}
	if (msg.msg_iovlen == 0)
		return 0;
	n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	if (n < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
	if ((size_t) n <= head_left)
	{
		head->start += n;
		return 0;
	}
	head->start = head->end;
	return n - head_left;
}

/* request_sent: the whole request (head and body) went to the app. */
static bool
request_sent(const Conn *conn)
{
	return conn->req_frame.state == FRAME_DONE && conn->req_pass == 0 &&
		conn->hout.start == conn->hout.end;
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
			/* a head not complete with a full buffer was answered 431 */
			client = EPOLLIN;
			/* an app socket kept for the next request: noticed if it closes */
			app = EPOLLIN | EPOLLRDHUP;
			break;
		case CONN_LINGER:
			client = EPOLLIN;
			break;
		case CONN_REPLY:
			client = EPOLLOUT;
			break;
		case CONN_EXCHANGE:

			/*
			 * the client's body while it has room; the next request waits.
			 * Not wanting to read is not told to epoll until the client
			 * actually sends something (client_muted): in the usual
			 * exchange it sends nothing, and each request saves two
			 * epoll_ctl calls.
			 */
			if (!conn->client_eof && conn->req_frame.state != FRAME_DONE &&
				conn->in.end - conn->in.start < conn->in.cap)
				client |= EPOLLIN;
			else if (!conn->client_muted && !conn->client_eof)
				client |= conn->client_events & EPOLLIN;
			if (conn->rout.end > conn->rout.start || conn->resp_pass > 0)
				client |= EPOLLOUT;
			if (conn->hout.end > conn->hout.start || conn->req_pass > 0)
				app |= EPOLLOUT;
			/* EPOLLRDHUP as between requests: no epoll_ctl per request */
			if (!conn->app_eof && conn->ain.end - conn->ain.start < conn->ain.cap)
				app |= EPOLLIN | EPOLLRDHUP;
			break;
		case CONN_TUNNEL:
			/* read a side only while the buffer after it has room */
			if (!conn->client_eof && conn->in.end - conn->in.start < conn->in.cap)
				client |= EPOLLIN;
			if (conn->ain.end > conn->ain.start || conn->rout.end > conn->rout.start)
				client |= EPOLLOUT;
			if (conn->in.end > conn->in.start || conn->hout.end > conn->hout.start)
				app |= EPOLLOUT;
			if (!conn->app_eof && conn->ain.end - conn->ain.start < conn->ain.cap)
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
 * release_app gives the app socket (and the slot of its deployment's cap)
 * back: to the pool when `reusable`, else closed.
 */
static void
release_app(Conn *conn, bool reusable)
{
	int			fd = conn->app_fd;

	conn->app_fd = -1;
	if (conn->holds_slot)
	{
		conn->holds_slot = false;
		PoolRelease(conn->deployment, fd, reusable, &conn->app_events);
	}
	else if (fd >= 0)
	{
		EpollDel(fd, &conn->app_events);
		close(fd);
	}
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
	release_app(conn, false);
	release_activity(conn);
	ClientRemove(conn->client_count);
	conn->client_count = NULL;
	/*
	 * no EPOLL_CTL_DEL for the client socket: we accepted it and hold its
	 * only reference, so close() unregisters it
	 */
	conn->client_events = 0;
	close(conn->client_fd);
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
		free(conn->in.data);
		free(conn->hout.data);
		free(conn->ain.data);
		free(conn->rout.data);
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
	release_idle_app(conn);
	release_app(conn, false);
	free(conn->rout.data);
	if (!buf_alloc(&conn->rout, 512))
	{
		conn_close(conn);
		return;
	}
	body_len = snprintf(body, sizeof(body), "%d %s\n", status, why);
	if (body_len >= (int) sizeof(body))
		body_len = sizeof(body) - 1;
	conn->rout.end = snprintf(conn->rout.data, conn->rout.cap,
							  "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
							  "%sContent-Length: %d\r\nConnection: close\r\n\r\n%s",
							  status, status_text(status),
							  status == 503 ? "Retry-After: 1\r\n" : "", body_len, body);
	if (conn->rout.end >= conn->rout.cap)
		conn->rout.end = conn->rout.cap - 1;
	conn->state = CONN_REPLY;
	conn->deadline = NowMs() + REPLY_TIMEOUT_MS;
	conn->retry_at = 0;
	set_interest(conn);
}

/*
 * linger closes the client connection gracefully: FIN sent, then what the
 * client still sends is read and dropped for a moment, so that closing
 * with unread bytes does not reset the connection before the client has
 * read the last response.
 */
static void
linger(Conn *conn)
{
	release_app(conn, false);
	shutdown(conn->client_fd, SHUT_WR);
	conn->state = CONN_LINGER;
	conn->deadline = NowMs() + LINGER_MS;
	conn->down_bytes = 0;
	set_interest(conn);
}

/* reply_progress writes our response, then lingers (see linger). */
static void
reply_progress(Conn *conn)
{
	if (conn->state == CONN_REPLY)
	{
		while (conn->rout.start < conn->rout.end)
		{
			ssize_t		n = send(conn->client_fd, conn->rout.data + conn->rout.start,
								 conn->rout.end - conn->rout.start, MSG_NOSIGNAL);

			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			if (n <= 0)
			{
				conn_close(conn);
				return;
			}
			conn->rout.start += n;
		}
		linger(conn);
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
	const char *target = conn->in.data + conn->in.start + conn->head.target.off;
	size_t		len = conn->head.target.len;
	char		name[HTTP_HOST_MAX + 1];
	size_t		n = 0;
	size_t		i;
	int64_t		deployment;
	RouteState	state;

	if (conn->head.method.len != 3 || memcmp(conn->in.data + conn->in.start + conn->head.method.off, "GET", 3) != 0 ||
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


/* name_is_ci compares a field name with `want` (lowercase), ignoring case. */
static bool
name_is_ci(const char *name, size_t len, const char *want)
{
	size_t		i;

	if (len != strlen(want))
		return false;
	for (i = 0; i < len; i++)
	{
		char		c = name[i];

		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		if (c != want[i])
			return false;
	}
	return true;
}

/*
 * next_field steps through the field lines of a validated head in
 * buf[p..end) (end: just before the final CRLF); sets the name and value
 * spans (value trimmed) and returns the offset of the next line.
 */
static size_t
next_field(const char *buf, size_t p, size_t end, HttpSpan *name, HttpSpan *value, size_t *line_len)
{
	const char *nl = memchr(buf + p, '\n', end - p);
	const char *colon = memchr(buf + p, ':', nl - (buf + p));
	size_t		v = colon + 1 - buf,
				v_end = nl - 1 - buf;

	while (v < v_end && (buf[v] == ' ' || buf[v] == '\t'))
		v++;
	while (v_end > v && (buf[v_end - 1] == ' ' || buf[v_end - 1] == '\t'))
		v_end--;
	name->off = p;
	name->len = colon - (buf + p);
	value->off = v;
	value->len = v_end - v;
	*line_len = nl + 1 - (buf + p);
	return p + *line_len;
}

/*
 * build_request_head writes what the app receives for the current request
 * head (at in.data + in.start) into conn->hout: the request line,
 * X-Forwarded-For/-Proto/-Host, "Connection: upgrade" for an upgrade, and
 * the client's fields but the forwarded and hop-by-hop ones.  From a
 * trusted proxy, its X-Forwarded-For values come first (the peer is
 * appended) and its X-Forwarded-Proto/-Host are kept.  Returns false when
 * out of memory.
 */
static bool
build_request_head(Conn *conn)
{
	const HttpHead *h = &conn->head;
	const char *in = conn->in.data + conn->in.start;
	size_t		end = h->head_len - 2;
	size_t		need = 2 * h->head_len + 256 + strlen(conn->peer) + h->host_raw.len;
	HttpSpan	proto = {0, 0},
				fhost = {0, 0};
	Buf		   *out = &conn->hout;
	size_t		p;

	out->start = out->end = 0;
	if (!buf_grow(out, need))
		return false;
	buf_put(out, in + h->start, h->line_end - h->start);
	buf_puts(out, "X-Forwarded-For: ");
	if (conn->trusted)
	{
		/* the proxy's list (all its fields, in order), then the proxy */
		for (p = h->line_end; p < end;)
		{
			HttpSpan	name,
						value;
			size_t		line_len;

			p = next_field(in, p, end, &name, &value, &line_len);
			if (name_is_ci(in + name.off, name.len, "x-forwarded-for") && value.len > 0)
			{
				buf_put(out, in + value.off, value.len);
				buf_puts(out, ", ");
			}
			else if (name_is_ci(in + name.off, name.len, "x-forwarded-proto") && proto.len == 0)
				proto = value;
			else if (name_is_ci(in + name.off, name.len, "x-forwarded-host") && fhost.len == 0)
				fhost = value;
		}
	}
	buf_puts(out, conn->peer);
	buf_puts(out, "\r\nX-Forwarded-Proto: ");
	if (proto.len > 0)
		buf_put(out, in + proto.off, proto.len);
	else
		buf_puts(out, "http");
	buf_puts(out, "\r\nX-Forwarded-Host: ");
	if (fhost.len > 0)
		buf_put(out, in + fhost.off, fhost.len);
	else
		buf_put(out, in + h->host_raw.off, h->host_raw.len);
	buf_puts(out, "\r\n");
	if (conn->req_upgrade)
		buf_puts(out, "Connection: upgrade\r\n");
	for (p = h->line_end; p < end;)
	{
		HttpSpan	name,
					value;
		size_t		line_len;
		size_t		line = p;

		p = next_field(in, p, end, &name, &value, &line_len);
		if (!HttpIsForwardedField(in + name.off, name.len) &&
			!HttpIsConnectionField(in + name.off, name.len))
			buf_put(out, in + line, line_len);
	}
	buf_puts(out, "\r\n");
	return true;
}

/*
 * build_response_head writes the final response head (at ain.data +
 * ain.start) for the client into conn->rout: the status line and fields
 * but the hop-by-hop ones, and what the router does with the client
 * connection after it.
 */
static bool
build_response_head(Conn *conn)
{
	const HttpHead *h = &conn->resp;
	const char *in = conn->ain.data + conn->ain.start;
	size_t		end = h->head_len - 2;
	Buf		   *out = &conn->rout;
	size_t		p;

	out->start = out->end = 0;
	if (!buf_grow(out, h->head_len + 64))
		return false;
	buf_put(out, in, h->line_end);
	for (p = h->line_end; p < end;)
	{
		HttpSpan	name,
					value;
		size_t		line_len;
		size_t		line = p;

		p = next_field(in, p, end, &name, &value, &line_len);
		if (!HttpIsConnectionField(in + name.off, name.len))
			buf_put(out, in + line, line_len);
	}
	if (!conn->keep_client)
		buf_puts(out, "Connection: close\r\n");
	else if (conn->head.version_minor == 0)
		buf_puts(out, "Connection: keep-alive\r\n");
	buf_puts(out, "\r\n");
	return true;
}

/* is_idempotent: may a request with this method be sent twice?  RFC 9110 9.2.2 */
static bool
is_idempotent(const char *m, size_t len)
{
	return (len == 3 && (memcmp(m, "GET", 3) == 0 || memcmp(m, "PUT", 3) == 0)) ||
		(len == 4 && memcmp(m, "HEAD", 4) == 0) ||
		(len == 6 && memcmp(m, "DELETE", 6) == 0) ||
		(len == 7 && memcmp(m, "OPTIONS", 7) == 0) ||
		(len == 5 && memcmp(m, "TRACE", 5) == 0);
}

/*
 * start_exchange begins forwarding the current request over conn->app_fd
 * (from the pool when `reused`, else just handed over).
 */
static void
start_exchange(Conn *conn, bool reused)
{
	int			one = 1;

	conn->app_reused = reused;
	if (!reused)
	{
		/* nx-init makes it non-blocking; never trust that a blocking one is not */
		SetNonBlocking(conn->app_fd);
		(void) setsockopt(conn->app_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	/* `in` grows to a relay buffer only for a body (or a tunnel, later) */
	if ((conn->ain.data == NULL && !buf_alloc(&conn->ain, router_settings.buffer_size)) ||
		((conn->req_body || conn->req_upgrade) && !buf_grow(&conn->in, router_settings.buffer_size)))
	{
		conn_reply(conn, 503, "out of memory");
		return;
	}
	conn->ain.start = conn->ain.end = 0;
	conn->hout.start = 0;
	conn->state = CONN_EXCHANGE;
	conn->retry_at = 0;
	conn->deadline = 0;
	conn->app_eof = false;
	conn->down_bytes = 0;
	conn->resp_final = false;
	conn->resp_pass = 0;
	conn->app_reusable = false;
	HttpResponseHeadInit(&conn->resp, router_settings.buffer_size);
	conn->last_active = loop_now;
	exchange(conn, false, false);
}

/* begin_handoff asks nx-init for an app socket of the request's deployment. */
static void
begin_handoff(Conn *conn)
{
	conn->state = CONN_HANDOFF;
	conn->deadline = 0;
	conn->handoff_started = NowMs();
	conn->ready_deadline = conn->handoff_started + router_settings.ready_timeout_ms;
	conn->retry_delay_ms = RETRY_FAST_MS;
	set_interest(conn);
	HandoffRequest(conn);
}

/*
 * route_request is called when a request head is complete: it checks its
 * framing, picks the deployment from its Host, rewrites the head and takes
 * an app socket (idle from the pool, or asks nx-init), or answers
 * 404/503.
 */
static void
route_request(Conn *conn)
{
	const HttpHead *h = &conn->head;
	const char *base = conn->in.data + conn->in.start;
	int64_t		deployment;
	RouteState	state;
	int			fd;
	int			got;

	if (!RoutesLoaded())
	{
		conn_reply(conn, 503, "routes not loaded yet");
		return;
	}
	if (h->method.len == 7 && memcmp(base + h->method.off, "CONNECT", 7) == 0)
	{
		conn_reply(conn, 405, "CONNECT is not served");
		return;
	}
	if (!h->has_host)
	{
		conn_reply(conn, 404, "no Host in the request");
		return;
	}
	if (!RoutesLookup(h->host, &deployment, &state))
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
	conn->head_request = h->method.len == 4 && memcmp(base + h->method.off, "HEAD", 4) == 0;
	conn->req_upgrade = h->has_upgrade && h->conn_upgrade;
	conn->req_body = HttpRequestBody(h) != HTTP_BODY_NONE;
	conn->retried = false;
	/* HTTP/1.1 keeps the connection unless told not to; 1.0 only when asked */
	conn->keep_client = !draining && !h->conn_close &&
		(h->version_minor == 1 || h->conn_keep_alive);
	if (!build_request_head(conn))
	{
		conn_reply(conn, 503, "out of memory");
		return;
	}
	if (conn->retried == false && !is_idempotent(base + h->method.off, h->method.len))
		conn->retried = true;	/* never sent twice */
	/* the head is consumed; the body (if any) follows it in `in` */
	HttpFrameInit(&conn->req_frame, HttpRequestBody(h), h->content_length);
	conn->in.start += h->head_len;
	conn->req_pass = 0;

	/* the client counts as open on this deployment (idle stop) */
	if (conn->activity == NULL || conn->activity->deployment != deployment)
	{
		release_activity(conn);
		conn->activity = ActivityGet(deployment);
		if (conn->activity)
			ActivityOpened(conn->activity);
	}
	ActivityMoved(conn->activity, h->head_len, 0);
	router_stats.requests++;
	if (conn->app_fd >= 0 && conn->deployment == deployment)
	{
		/* the app socket of the previous request, kept: same deployment */
		router_stats.reused++;
		start_exchange(conn, true);
		return;
	}
	release_idle_app(conn);
	conn->deployment = deployment;
	if (state == ROUTE_ASLEEP)
		RoutesWake(deployment); /* and hold the request until it is up */
	got = PoolAcquire(deployment, &fd, &conn->app_events);
	if (got < 0)
	{
		conn_reply(conn, 503, "too many connections to this app");
		return;
	}
	conn->holds_slot = true;
	if (got == 1)
	{
		router_stats.reused++;
		conn->app_fd = fd;
		start_exchange(conn, true);
		return;
	}
	begin_handoff(conn);
}

/*
 * parse_head parses what `in` holds of the current request head and acts
 * on the result.  Returns true when it is still incomplete.
 */
static bool
parse_head(Conn *conn)
{
	HttpHeadResult r;

	if (conn->in.end == conn->in.start)
		return true;
	if (conn->idle_wait)
	{
		/* the first byte of a head: from now on it must come in time */
		conn->idle_wait = false;
		conn->deadline = loop_now + router_settings.head_timeout_ms;
	}
	r = HttpHeadParse(&conn->head, conn->in.data + conn->in.start, conn->in.end - conn->in.start);
	if (r == HTTP_HEAD_NEED_MORE)
		return true;
	if (r == HTTP_HEAD_ERROR_400)
		conn_reply(conn, 400, "malformed request");
	else if (r == HTTP_HEAD_ERROR_431)
		conn_reply(conn, 431, "request head too large");
	else
		route_request(conn);
	return false;
}

/* read_head reads from the client until a request head is complete. */
static void
read_head(Conn *conn)
{
	for (;;)
	{
		ssize_t		n;

		if (conn->in.end == conn->in.cap)
		{
			/* keep the head at the start of the buffer, grow up to the limit */
			size_t		cap = conn->in.cap * 2;

			if (conn->in.start > 0)
			{
				memmove(conn->in.data, conn->in.data + conn->in.start, conn->in.end - conn->in.start);
				conn->in.end -= conn->in.start;
				conn->in.start = 0;
			}
			else
			{
				if (cap > conn->head.limit)
					cap = conn->head.limit;
				if (cap <= conn->in.cap || !buf_grow(&conn->in, cap))
				{
					conn_reply(conn, 431, "request head too large");
					return;
				}
			}
		}
		n = read(conn->client_fd, conn->in.data + conn->in.end, conn->in.cap - conn->in.end);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0)
		{
			release_idle_app(conn);
			conn_close(conn);	/* gone between requests, or before asking */
			return;
		}
		conn->in.end += n;
		if (!parse_head(conn))
			return;
	}
}

/*
 * next_request makes `conn` wait for its next request head (or parses one
 * it already has: pipelining).
 */
static void
next_request(Conn *conn)
{
	conn->state = CONN_HEAD;
	conn->client_muted = false;
	HttpHeadInit(&conn->head, router_settings.head_limit);
	if (conn->in.start == conn->in.end)
		conn->in.start = conn->in.end = 0;
	conn->idle_wait = true;
	conn->deadline = loop_now + router_settings.keepalive_timeout_ms;
	set_interest(conn);
	if (parse_head(conn))
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
	conn->app_fd = app_fd;
	router_stats.handoffs++;
	ActivityHandedOff(conn->activity);
	start_exchange(conn, false);
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
 * shared by every connection due in the same loop pass), then backs off.
 * If the deployment has gone to sleep meanwhile (idle stop raced with this
 * request), it is woken.
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
	TimersDueBy(conn->retry_at);
	if (now - conn->handoff_started >= RETRY_FAST_PERIOD_MS)
	{
		conn->retry_delay_ms *= 2;
		if (conn->retry_delay_ms > RETRY_MAX_DELAY_MS)
			conn->retry_delay_ms = RETRY_MAX_DELAY_MS;
	}
}

/*
 * app_failed handles an app socket that failed or closed before the
 * response was complete.  Before any byte of a response: a request sent on
 * a reused pooled socket (which the app may have closed just as it was
 * taken) is sent once more on a fresh hand-off when it is idempotent and
 * has no body; otherwise the client gets a 502.  After the response began,
 * the client connection is closed (it cannot be told more).
 */
static void
app_failed(Conn *conn, int err)
{
	char		why[160];

	if (conn->down_bytes == 0 && conn->app_reused && !conn->retried && !conn->req_body)
	{
		/* the request goes again from the start of its head */
		int			fd;
		int			got;

		conn->retried = true;
		release_app(conn, false);
		got = PoolAcquire(conn->deployment, &fd, &conn->app_events);
		if (got < 0)
		{
			conn_reply(conn, 503, "too many connections to this app");
			return;
		}
		if (got == 1)
		{
			/* as old as the one that failed: a fresh one */
			EpollDel(fd, &conn->app_events);
			close(fd);
		}
		conn->holds_slot = true;
		begin_handoff(conn);
		return;
	}
	if (conn->down_bytes == 0)
	{
		snprintf(why, sizeof(why), "the app of deployment %lld closed the connection%s%s",
				 (long long) conn->deployment, err ? ": " : "", err ? strerror(err) : "");
		conn_reply(conn, 502, why);
	}
	else
		conn_close(conn);
}

/* bad_response: the app sent something that is not HTTP: 502, app closed. */
static void
bad_response(Conn *conn, const char *why)
{
	char		msg[160];

	snprintf(msg, sizeof(msg), "malformed response from the app of deployment %lld: %s",
			 (long long) conn->deployment, why);
	if (conn->rout.end > conn->rout.start || (conn->state == CONN_EXCHANGE && conn->resp_final))
		conn_close(conn);
	else
		conn_reply(conn, 502, msg);
}

/*
 * finish_exchange: the response went out whole.  A reusable app socket
 * stays with the client connection for its next request (most go to the
 * same deployment: no pool round trip, and no churn of the pool when more
 * clients are busy than it holds); it goes to the pool when the next
 * request is for another deployment or the client goes away.  Any other
 * app socket is closed.
 */
static void
finish_exchange(Conn *conn)
{
	bool		reuse = conn->app_reusable && request_sent(conn) && !conn->app_eof &&
		conn->ain.start == conn->ain.end;

	conn->requests++;
	if (!conn->keep_client)
	{
		int			unread = -1;

		release_app(conn, reuse);

		/*
		 * A client that asked for the close sends nothing more: with
		 * nothing unread, close() at once ends it cleanly (a FIN after the
		 * response); otherwise linger, so that unread bytes do not reset
		 * the connection before the client has read the response.
		 */
		if ((conn->head.conn_close || (conn->head.version_minor == 0 && !conn->head.conn_keep_alive)) &&
			conn->in.start == conn->in.end &&
			ioctl(conn->client_fd, FIONREAD, &unread) == 0 && unread == 0)
			conn_close(conn);
		else
			linger(conn);
		return;
	}
	if (!reuse)
		release_app(conn, false);
	next_request(conn);
}

/*
 * release_idle_app gives the app socket a client connection kept between
 * requests (clean: its last response was read whole) to the pool.
 */
static void
release_idle_app(Conn *conn)
{
	if (conn->state == CONN_HEAD && conn->app_fd >= 0)
		release_app(conn, true);
}

/*
 * response_head handles a complete response head: an interim 1xx goes to
 * the client as it is and another head follows; a 101 to an upgrade turns
 * the connection into a tunnel; a final one is rewritten and its body
 * framed.  Returns false when `conn` changed state (closed, tunnel).
 */
static bool
response_head(Conn *conn)
{
	HttpHead   *r = &conn->resp;
	HttpBodyKind kind;

	if (r->status == 101)
	{
		if (!conn->req_upgrade)
		{
			bad_response(conn, "101 without an upgrade asked for");
			return false;
		}
		/* the head as it is, then whatever follows, both ways */
		buf_grow(&conn->rout, r->head_len);
		conn->rout.start = conn->rout.end = 0;
		if (conn->rout.cap < r->head_len || !buf_grow(&conn->in, router_settings.buffer_size))
		{
			conn_close(conn);
			return false;
		}
		buf_put(&conn->rout, conn->ain.data + conn->ain.start, r->head_len);
		conn->ain.start += r->head_len;
		conn->state = CONN_TUNNEL;
		conn->deadline = 0;
		tunnel(conn, false, false);
		return false;
	}
	if (r->status < 200)
	{
		/* interim (100 Continue, 103 Early Hints): pass it on as it is */
		conn->rout.start = conn->rout.end = 0;
		if (!buf_grow(&conn->rout, r->head_len))
		{
			conn_close(conn);
			return false;
		}
		buf_put(&conn->rout, conn->ain.data + conn->ain.start, r->head_len);
		conn->ain.start += r->head_len;
		HttpResponseHeadInit(&conn->resp, router_settings.buffer_size);
		return true;
	}
	kind = HttpResponseBody(r, conn->head_request);
	/* the app keeps the socket only if it said nothing else and can frame */
	conn->app_reusable = kind != HTTP_BODY_CLOSE && !r->conn_close && r->version_minor == 1 &&
		conn->head.version_minor == 1 && !conn->req_upgrade;
	/* a body still coming from the client, or no frame: close after */
	if (kind == HTTP_BODY_CLOSE || conn->req_frame.state != FRAME_DONE || draining)
		conn->keep_client = false;
	if (!build_response_head(conn))
	{
		conn_close(conn);
		return false;
	}
	conn->ain.start += r->head_len;
	HttpFrameInit(&conn->resp_frame, kind, r->content_length);
	conn->resp_final = true;
	return true;
}

/*
 * exchange moves what can move now for the current request and its
 * response: the request head and body to the app (never past the body's
 * end: the next request waits in `in`), the response head and body to
 * the client.  Only the side epoll reported is read.
 */
static void
exchange(Conn *conn, bool read_client, bool read_app)
{
	ssize_t		n;

	/* client -> app: the body, framed */
	if (read_client && !conn->client_eof && conn->req_frame.state != FRAME_DONE)
	{
		buf_compact(&conn->in);
		if (conn->in.end < conn->in.cap)
		{
			n = read(conn->client_fd, conn->in.data + conn->in.end, conn->in.cap - conn->in.end);
			if (n > 0)
			{
				conn->in.end += n;
				ActivityMoved(conn->activity, n, 0);
			}
			else if (n == 0 || (errno != EAGAIN && errno != EINTR))
			{
				/* gone in the middle of its request */
				conn_close(conn);
				return;
			}
		}
	}
	if (conn->req_frame.state != FRAME_DONE &&
		conn->in.end > conn->in.start + conn->req_pass)
	{
		conn->req_pass += HttpFrameConsume(&conn->req_frame, conn->in.data + conn->in.start + conn->req_pass,
										   conn->in.end - conn->in.start - conn->req_pass);
		if (conn->req_frame.state == FRAME_ERROR)
		{
			char		why[128];

			snprintf(why, sizeof(why), "malformed request body: %s", conn->req_frame.error);
			if (conn->down_bytes == 0)
				conn_reply(conn, 400, why);
			else
				conn_close(conn);
			return;
		}
	}
	/* the head and what there is of the body, in one call */
	if (conn->hout.start < conn->hout.end || conn->req_pass > 0)
	{
		n = send_two(conn->app_fd, &conn->hout, conn->in.data + conn->in.start, conn->req_pass);
		if (n < 0)
		{
			app_failed(conn, errno);
			return;
		}
		conn->in.start += n;
		conn->req_pass -= n;
	}

	/* app -> client */
	if (read_app && !conn->app_eof)
	{
		buf_compact(&conn->ain);
		if (conn->ain.end < conn->ain.cap)
		{
			n = read(conn->app_fd, conn->ain.data + conn->ain.end, conn->ain.cap - conn->ain.end);
			if (n > 0)
			{
				conn->ain.end += n;
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
	}
	/* response heads (interim ones, then the final one) */
	while (!conn->resp_final && conn->rout.start == conn->rout.end &&
		   conn->ain.end > conn->ain.start)
	{
		HttpHeadResult r = HttpHeadParse(&conn->resp, conn->ain.data + conn->ain.start,
										 conn->ain.end - conn->ain.start);

		if (r == HTTP_HEAD_NEED_MORE)
		{
			if (conn->ain.start == 0 && conn->ain.end == conn->ain.cap)
			{
				bad_response(conn, "head too large");
				return;
			}
			break;
		}
		if (r != HTTP_HEAD_COMPLETE)
		{
			bad_response(conn, "bad head");
			return;
		}
		if (!response_head(conn))
			return;
	}
	if (conn->resp_final && conn->resp_frame.state != FRAME_DONE &&
		conn->ain.end > conn->ain.start + conn->resp_pass)
	{
		conn->resp_pass += HttpFrameConsume(&conn->resp_frame, conn->ain.data + conn->ain.start + conn->resp_pass,
											conn->ain.end - conn->ain.start - conn->resp_pass);
		if (conn->resp_frame.state == FRAME_ERROR)
		{
			RouterLog("malformed response body from the app of deployment %lld: %s (client %s)",
					  (long long) conn->deployment, conn->resp_frame.error, conn->peer);
			conn_close(conn);
			return;
		}
	}
	if (conn->app_eof)
	{
		if (!conn->resp_final)
		{
			if (conn->down_bytes == 0)
				app_failed(conn, 0);
			else
				bad_response(conn, "closed inside the head");
			return;
		}
		HttpFrameEof(&conn->resp_frame);
		if (conn->resp_frame.state == FRAME_ERROR)
		{
			/* truncated: send what came, then close */
			conn->resp_frame.state = FRAME_DONE;
			conn->keep_client = false;
		}
	}

	/* to the client: the head and what there is of the body, in one call */
	if (conn->rout.start < conn->rout.end || conn->resp_pass > 0)
	{
		n = send_two(conn->client_fd, &conn->rout, conn->ain.data + conn->ain.start, conn->resp_pass);
		if (n < 0)
		{
			conn_close(conn);
			return;
		}
		conn->ain.start += n;
		conn->resp_pass -= n;
	}
	conn->last_active = loop_now;
	if (conn->resp_final && conn->resp_frame.state == FRAME_DONE &&
		conn->rout.start == conn->rout.end && conn->resp_pass == 0)
	{
		if (!request_sent(conn))
			conn->keep_client = false;
		finish_exchange(conn);
		return;
	}
	set_interest(conn);
}

/*
 * tunnel moves bytes both ways after a 101 (the response head first),
 * passes FINs on, and closes the connection when both directions are
 * finished.
 */
static void
tunnel(Conn *conn, bool read_client, bool read_app)
{
	ssize_t		n;

	/* client -> app (what is left of the request head first) */
	buf_compact(&conn->in);
	if (read_client && !conn->client_eof && conn->in.end < conn->in.cap)
	{
		n = read(conn->client_fd, conn->in.data + conn->in.end, conn->in.cap - conn->in.end);
		if (n > 0)
		{
			conn->in.end += n;
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
	if (conn->hout.start < conn->hout.end)
	{
		n = send(conn->app_fd, conn->hout.data + conn->hout.start, conn->hout.end - conn->hout.start,
				 MSG_NOSIGNAL);
		if (n > 0)
			conn->hout.start += n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
		{
			conn_close(conn);
			return;
		}
	}
	if (conn->hout.start == conn->hout.end && conn->in.end > conn->in.start)
	{
		n = send(conn->app_fd, conn->in.data + conn->in.start, conn->in.end - conn->in.start,
				 MSG_NOSIGNAL);
		if (n > 0)
			conn->in.start += n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
		{
			conn_close(conn);
			return;
		}
	}
	if (conn->client_eof && conn->in.start == conn->in.end && !conn->app_shut)
	{
		if (conn->client_shut)
		{
			conn_close(conn);
			return;
		}
		shutdown(conn->app_fd, SHUT_WR);
		conn->app_shut = true;
	}

	/* app -> client (the 101 head first) */
	buf_compact(&conn->ain);
	if (read_app && !conn->app_eof && conn->ain.end < conn->ain.cap)
	{
		n = read(conn->app_fd, conn->ain.data + conn->ain.end, conn->ain.cap - conn->ain.end);
		if (n > 0)
		{
			conn->ain.end += n;
			ActivityMoved(conn->activity, 0, n);
		}
		else if (n == 0)
			conn->app_eof = true;
		else if (errno != EAGAIN && errno != EINTR)
		{
			conn_close(conn);
			return;
		}
	}
	if (conn->rout.start < conn->rout.end)
	{
		n = send(conn->client_fd, conn->rout.data + conn->rout.start,
				 conn->rout.end - conn->rout.start, MSG_NOSIGNAL);
		if (n > 0)
			conn->rout.start += n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
		{
			conn_close(conn);
			return;
		}
	}
	if (conn->rout.start == conn->rout.end && conn->ain.end > conn->ain.start)
	{
		n = send(conn->client_fd, conn->ain.data + conn->ain.start,
				 conn->ain.end - conn->ain.start, MSG_NOSIGNAL);
		if (n > 0)
			conn->ain.start += n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
		{
			conn_close(conn);
			return;
		}
	}
	if (conn->app_eof && conn->ain.start == conn->ain.end && conn->rout.start == conn->rout.end &&
		!conn->client_shut)
	{
		if (conn->app_shut)
		{
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
			if (tag->kind == TAG_APP)
			{
				/* the kept app socket closed (or said something unasked) */
				release_app(conn, false);
				set_interest(conn);
			}
			else
				read_head(conn);
			break;
		case CONN_EXCHANGE:
			if (tag->kind == TAG_CLIENT && readable && conn->req_frame.state == FRAME_DONE)
				conn->client_muted = true;	/* pipelined, or gone: read later */
			exchange(conn, tag->kind == TAG_CLIENT && readable,
					 tag->kind == TAG_APP && readable);
			break;
		case CONN_TUNNEL:
			tunnel(conn, tag->kind == TAG_CLIENT && readable,
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
 * ConnDrain (SIGTERM): every response from now on says Connection: close
 * and its connection closes after it; connections idle between requests
 * are closed at once.
 */
void
ConnDrain(void)
{
	Conn	   *conn,
			   *following;

	draining = true;
	for (conn = conns; conn; conn = following)
	{
		following = conn->next;
		if (conn->state == CONN_EXCHANGE && !conn->resp_final)
			conn->keep_client = false;
	}
}

/*
 * ConnTimers acts on the deadlines that passed: a head not complete in
 * time (408, against slowloris), a client idle between requests past
 * --keepalive-timeout (closed), a hand-off to ask again, an exchange or
 * tunnel silent for --idle-timeout (504 if the app never answered), a
 * reply or linger that takes too long, a tunnel client that stays open
 * after the app is done.  *next is lowered to the earliest retry still
 * pending.
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
		if ((conn->state == CONN_EXCHANGE || conn->state == CONN_TUNNEL) &&
			router_settings.idle_timeout_ms > 0 &&
			now - conn->last_active > router_settings.idle_timeout_ms)
		{
			if (conn->state == CONN_EXCHANGE && conn->down_bytes == 0)
				conn_reply(conn, 504, "the app did not answer in time");
			else
				conn_close(conn);
			continue;
		}
		if (conn->deadline == 0 || now < conn->deadline)
			continue;
		if (conn->state == CONN_HEAD && !conn->idle_wait)
			conn_reply(conn, 408, "request head not received in time");
		else
		{
			release_idle_app(conn);
			conn_close(conn);
		}
	}
}
