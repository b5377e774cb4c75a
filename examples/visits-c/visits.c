/*
 * examples/visits-c/visits.c
 *	  An nx_sandbox example app in C: an HTTP/1.1 server that counts the
 *	  visits to "/" in its sandbox's own database with libpq, linked
 *	  dynamically (so the server's checks of the ELF interpreter and of
 *	  libpq.so.5 on the host apply to it).
 *
 * Build:  make -C examples/visits-c          (gcc, libpq headers: libpq-dev)
 * Run:    PORT=8000 DATABASE_URL=postgresql://... ./visits-c
 *         (nx_sandbox sets PORT, DATABASE_URL and PG*; without DATABASE_URL
 *         libpq uses PGHOST, PGDATABASE, ... as usual)
 *
 * Glossary:
 *	  head     the request line and header fields, up to the empty line
 *	  conn     one client connection (the router hands one over per client)
 *	  db       the one database connection, opened lazily, reopened after
 *	           it drops
 *
 * It listens on 127.0.0.1:$PORT (the router's connections arrive there,
 * through nx-init) and serves many connections with poll(): request heads
 * are read without blocking, keep-alive and pipelined requests are
 * answered in order, idle or slow clients are dropped after 30 s, and
 * malformed input gets a 400 (or 431, 405, 404), never a crash.  A visit
 * runs one statement,
 *
 *	  INSERT INTO visits (page, count) VALUES ('/', 1)
 *	  ON CONFLICT (page) DO UPDATE SET count = visits.count + 1 ...
 *	  RETURNING count
 *
 * synchronously: the database is next door (a unix socket), so a visit
 * blocks the loop for a fraction of a millisecond.  If the database
 * connection was lost (a restart, pg_terminate_backend), the statement is
 * retried once on a new connection; if the database stays away, the
 * answer is 503 and the next request tries again.
 */
#define _GNU_SOURCE				/* accept4, strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define MAX_CONNS		256		/* more wait in the listen backlog */
#define HEAD_MAX		8192	/* longer request heads get 431 */
#define OUT_MAX			1024	/* every response fits */
#define IDLE_MS			30000	/* a connection silent this long is closed */

#define CREATE_TABLE \
	"CREATE TABLE IF NOT EXISTS visits (" \
	" page text PRIMARY KEY," \
	" count bigint NOT NULL," \
	" last_visit timestamptz NOT NULL DEFAULT now())"
#define COUNT_VISIT \
	"INSERT INTO visits (page, count) VALUES ('/', 1)" \
	" ON CONFLICT (page) DO UPDATE SET count = visits.count + 1, last_visit = now()" \
	" RETURNING count"

typedef struct Conn
{
	int			fd;
	char		in[HEAD_MAX];
	size_t		in_len;
	char		out[OUT_MAX];
	size_t		out_len;
	size_t		out_off;
	bool		close_after;	/* close once out is sent */
	long long	last_ms;		/* last time a byte moved */
} Conn;

static Conn conns[MAX_CONNS];
static int	nconns;
static PGconn *db;
static volatile sig_atomic_t stopping;

/* now_ms returns a monotonic clock in milliseconds. */
static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* on_term asks the loop to end (SIGTERM from nx-init at stop, or ^C). */
static void
on_term(int sig)
{
	(void) sig;
	stopping = 1;
}

/* ignore_notice drops server notices ("relation ... already exists"). */
static void
ignore_notice(void *arg, const char *message)
{
	(void) arg;
	(void) message;
}

/*
 * db_ready returns true when there is an open database connection with
 * the table in place, opening one if needed.  Failures are printed and
 * leave no connection, so the next request tries again.
 */
static bool
db_ready(void)
{
	const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
	const char *vals[] = {getenv("DATABASE_URL"), "5", "visits-c", NULL};
	PGresult   *res;

	if (db != NULL && PQstatus(db) == CONNECTION_OK)
		return true;
	if (db != NULL)
		PQfinish(db);
	/* a NULL DATABASE_URL is skipped: libpq then reads PGHOST, PGUSER... */
	db = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(db) != CONNECTION_OK)
	{
		fprintf(stderr, "visits-c: cannot connect to the database: %s", PQerrorMessage(db));
		PQfinish(db);
		db = NULL;
		return false;
	}
	PQsetNoticeProcessor(db, ignore_notice, NULL);
	res = PQexec(db, CREATE_TABLE);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		fprintf(stderr, "visits-c: cannot create table visits: %s", PQerrorMessage(db));
		PQclear(res);
		PQfinish(db);
		db = NULL;
		return false;
	}
	PQclear(res);
	fprintf(stderr, "visits-c: connected to database %s as %s\n", PQdb(db), PQuser(db));
	return true;
}

/*
 * count_visit adds one visit and stores the new count in *count; false if
 * the database cannot be reached.  A statement that failed because the
 * connection broke is run once more on a new connection: it did not
 * commit, so nothing is counted twice.
 */
static bool
count_visit(long long *count)
{
	for (int attempt = 0; attempt < 2; attempt++)
	{
		PGresult   *res;

		if (!db_ready())
			return false;
		res = PQexec(db, COUNT_VISIT);
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		{
			*count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
			PQclear(res);
			return true;
		}
		fprintf(stderr, "visits-c: counting failed: %s", PQerrorMessage(db));
		PQclear(res);
		if (PQstatus(db) != CONNECTION_BAD)
			return false;		/* a statement error, not a lost connection */
	}
	return false;
}

/* respond queues one response on the connection. */
static void
respond(Conn *c, int status, const char *reason, const char *extra_headers,
		const char *body, bool head_only)
{
	int			n;

	n = snprintf(c->out, sizeof(c->out),
				 "HTTP/1.1 %d %s\r\n"
				 "Content-Type: text/plain; charset=utf-8\r\n"
				 "Content-Length: %zu\r\n"
				 "%s"
				 "Connection: %s\r\n\r\n%s",
				 status, reason, strlen(body), extra_headers,
				 c->close_after ? "close" : "keep-alive",
				 head_only ? "" : body);
	if (n < 0 || (size_t) n >= sizeof(c->out))
	{
		/* cannot happen with the bodies below; never send a cut response */
		c->out_len = 0;
		c->close_after = true;
		return;
	}
	c->out_len = (size_t) n;
	c->out_off = 0;
}

/*
 * header_value copies into VALUE (SIZE bytes, NUL-terminated, blanks
 * trimmed, cut if longer) the value of the first field NAME
 * (case-insensitive) of HEAD, a NUL-terminated head whose lines end in
 * CRLF; false when there is no such field.
 */
static bool
header_value(const char *head, const char *name, char *value, size_t size)
{
	size_t		name_len = strlen(name);
	const char *line = strstr(head, "\r\n");	/* end of the request line */

	while (line != NULL && line[2] != '\r' && line[2] != '\0')
	{
		const char *field = line + 2;
		const char *end = strstr(field, "\r\n");

		if (end == NULL)
			break;
		line = end;
		if ((size_t) (end - field) > name_len && field[name_len] == ':' &&
			strncasecmp(field, name, name_len) == 0)
		{
			const char *v = field + name_len + 1;
			size_t		len;

			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
				end--;
			len = (size_t) (end - v);
			if (len >= size)
				len = size - 1;
			memcpy(value, v, len);
			value[len] = '\0';
			return true;
		}
	}
	return false;
}

/*
 * parse_request_line splits the first line of HEAD into its three parts,
 * exactly "METHOD SP TARGET SP HTTP/1.x CRLF" with a method of capital
 * letters and a target starting with "/"; false for anything else.
 */
static bool
parse_request_line(const char *head, char *method, size_t method_size,
				   char *target, size_t target_size, bool *http11)
{
	const char *eol = strstr(head, "\r\n");
	const char *sp1 = strchr(head, ' ');
	const char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	size_t		len;

	if (eol == NULL || sp1 == NULL || sp2 == NULL || sp2 > eol || sp1 == head)
		return false;
	len = (size_t) (sp1 - head);
	if (len >= method_size || strspn(head, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != len)
		return false;
	memcpy(method, head, len);
	method[len] = '\0';
	len = (size_t) (sp2 - sp1 - 1);
	if (len == 0 || len >= target_size || sp1[1] != '/')
		return false;
	for (const char *p = sp1 + 1; p < sp2; p++)
		if ((unsigned char) *p <= ' ' || *p == 0x7f)
			return false;
	memcpy(target, sp1 + 1, len);
	target[len] = '\0';
	if (eol - sp2 - 1 != 8)
		return false;
	if (strncmp(sp2 + 1, "HTTP/1.1", 8) == 0)
		*http11 = true;
	else if (strncmp(sp2 + 1, "HTTP/1.0", 8) == 0)
		*http11 = false;
	else
		return false;
	return true;
}

/*
 * handle_request answers the complete head at the start of c->in (HEAD_LEN
 * bytes, the final CRLFCRLF included) and removes it from the buffer.
 */
static void
handle_request(Conn *c, size_t head_len)
{
	char		head[HEAD_MAX + 1];
	char		method[16];
	char		target[1024];
	char		value[64];
	char		body[64];
	bool		http11;
	bool		head_only;
	char	   *q;

	memcpy(head, c->in, head_len);
	head[head_len] = '\0';
	memmove(c->in, c->in + head_len, c->in_len - head_len);
	c->in_len -= head_len;

	if (memchr(head, '\0', head_len) != NULL ||
		!parse_request_line(head, method, sizeof(method), target, sizeof(target), &http11))
	{
		c->close_after = true;
		respond(c, 400, "Bad Request", "", "bad request\n", false);
		return;
	}
	head_only = strcmp(method, "HEAD") == 0;
	if (header_value(head, "Connection", value, sizeof(value)))
		c->close_after = http11 ? strcasestr(value, "close") != NULL
			: strcasestr(value, "keep-alive") == NULL;
	else
		c->close_after = !http11;
	/* request bodies are not read: answer, then close rather than misparse */
	if (header_value(head, "Transfer-Encoding", value, sizeof(value)) ||
		(header_value(head, "Content-Length", value, sizeof(value)) && strcmp(value, "0") != 0))
		c->close_after = true;

	if ((q = strchr(target, '?')) != NULL)
		*q = '\0';
	if (strcmp(method, "GET") != 0 && !head_only)
		respond(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", "method not allowed\n", false);
	else if (strcmp(target, "/healthz") == 0)
		respond(c, 200, "OK", "", "ok\n", head_only);
	else if (strcmp(target, "/") != 0)
		respond(c, 404, "Not Found", "", "not found\n", head_only);
	else if (head_only)
		respond(c, 200, "OK", "", "", true);	/* HEAD does not count */
	else
	{
		long long	count;

		if (count_visit(&count))
		{
			snprintf(body, sizeof(body), "visits: %lld\n", count);
			respond(c, 200, "OK", "Cache-Control: no-store\r\n", body, false);
		}
		else
			respond(c, 503, "Service Unavailable", "Retry-After: 1\r\n", "database unavailable\n", false);
	}
}

/*
 * process answers every complete request head buffered on the connection
 * while nothing is waiting to be sent (pipelined requests are answered in
 * order); a head that fills the buffer without ending gets 431.
 */
static void
process(Conn *c)
{
	while (c->out_len == 0 && !c->close_after)
	{
		char	   *end = NULL;

		for (size_t i = 0; i + 3 < c->in_len; i++)
			if (memcmp(c->in + i, "\r\n\r\n", 4) == 0)
			{
				end = c->in + i + 4;
				break;
			}
		if (end != NULL)
			handle_request(c, (size_t) (end - c->in));
		else
		{
			if (c->in_len == sizeof(c->in))
			{
				c->close_after = true;
				respond(c, 431, "Request Header Fields Too Large", "", "request head too large\n", false);
			}
			return;
		}
	}
}

/* close_conn closes connection I and moves the last one into its place. */
static void
close_conn(int i)
{
	close(conns[i].fd);
	conns[i] = conns[--nconns];
}

/* on_readable reads what the client sent; false when it is to be closed. */
static bool
on_readable(Conn *c)
{
	ssize_t		n;

	if (c->in_len == sizeof(c->in))
		return true;			/* 431 is being sent */
	n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
	if (n == 0)
		return false;
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
	c->in_len += (size_t) n;
	c->last_ms = now_ms();
	process(c);
	return true;
}

/* on_writable sends what is queued; false when it is to be closed. */
static bool
on_writable(Conn *c)
{
	while (c->out_off < c->out_len)
	{
		ssize_t		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
							 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
		c->out_off += (size_t) n;
		c->last_ms = now_ms();
	}
	c->out_len = c->out_off = 0;
	if (c->close_after)
		return false;
	process(c);					/* a pipelined request may be waiting */
	return true;
}

/* listen_on opens the listening socket on 127.0.0.1:PORT, or exits. */
static int
listen_on(int port)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
	int			one = 1;
	int			fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		bind(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0 || listen(fd, 128) < 0)
	{
		perror("visits-c: listen");
		exit(1);
	}
	return fd;
}

/* accept_all takes every pending connection there is room for. */
static void
accept_all(int lfd, long long *paused_until)
{
	while (nconns < MAX_CONNS)
	{
		int			fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
		{
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			{
				/* out of descriptors: let the backlog wait a moment */
				perror("visits-c: accept");
				*paused_until = now_ms() + 100;
			}
			return;				/* EAGAIN, ECONNABORTED, EINTR, ... */
		}
		conns[nconns].fd = fd;
		conns[nconns].in_len = conns[nconns].out_len = conns[nconns].out_off = 0;
		conns[nconns].close_after = false;
		conns[nconns].last_ms = now_ms();
		nconns++;
	}
}

int
main(void)
{
	const char *port_env = getenv("PORT");
	char	   *end = NULL;
	long		port = port_env ? strtol(port_env, &end, 10) : 0;
	struct sigaction sa = {.sa_handler = on_term};
	static struct pollfd pfds[MAX_CONNS + 1];
	long long	paused_until = 0;
	int			lfd;

	if (port_env == NULL || *end != '\0' || port < 1 || port > 65535)
	{
		fprintf(stderr, "visits-c: PORT must be a port number (nx_sandbox sets it)\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	lfd = listen_on((int) port);
	fprintf(stderr, "visits-c: listening on 127.0.0.1:%ld\n", port);
	(void) db_ready();			/* early, to report problems; not required */

	while (!stopping)
	{
		long long	now = now_ms();
		int			nfds = 0;
		int			listening = nconns < MAX_CONNS && now >= paused_until;

		for (int i = 0; i < nconns; i++)
		{
			pfds[nfds].fd = conns[i].fd;
			pfds[nfds].events = conns[i].out_len > 0 ? POLLOUT : POLLIN;
			pfds[nfds].revents = 0;
			nfds++;
		}
		if (listening)
		{
			pfds[nfds].fd = lfd;
			pfds[nfds].events = POLLIN;
			pfds[nfds].revents = 0;
			nfds++;
		}
		if (poll(pfds, nfds, 1000) < 0)
		{
			if (errno == EINTR)
				continue;
			perror("visits-c: poll");
			return 1;
		}
		/* connections first, from the end, so close_conn's move is safe */
		now = now_ms();
		for (int i = nconns - 1; i >= 0; i--)
		{
			Conn	   *c = &conns[i];
			short		rev = pfds[i].revents;
			bool		keep = true;

			if (rev & (POLLERR | POLLNVAL))
				keep = false;
			else if (rev & POLLOUT)
				keep = on_writable(c);
			else if (rev & (POLLIN | POLLHUP))
				keep = on_readable(c);
			else if (now - c->last_ms > IDLE_MS)
				keep = false;
			/* a response made while reading goes out at once if it can */
			if (keep && c->out_len > 0 && (rev & (POLLIN | POLLHUP)))
				keep = on_writable(c);
			if (!keep)
				close_conn(i);
		}
		if (listening && (pfds[nfds - 1].revents & POLLIN))
			accept_all(lfd, &paused_until);
	}
	fprintf(stderr, "visits-c: stopping\n");
	for (int i = nconns - 1; i >= 0; i--)
		close_conn(i);
	close(lfd);
	if (db != NULL)
		PQfinish(db);
	return 0;
}
