/*
 * src/router/pglink.c
 *	  An asynchronous libpq connection driven by the router's epoll loop
 *	  (see pglink.h): PQconnectStart/PQconnectPoll, PQsendQuery,
 *	  PQconsumeInput, so that a slow or vanished cluster never stops the
 *	  router from serving.  A lost connection is retried with a growing
 *	  delay (100 ms doubling up to 5 s); a connect that takes longer than
 *	  10 s is given up and retried the same way.
 */
#include "pglink.h"

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#define BACKOFF_MIN_MS	100
#define BACKOFF_MAX_MS	5000
#define CONNECT_TIMEOUT_MS 10000

/*
 * PgLinkOneLine copies a libpq message into out as one line: newlines and
 * tabs become spaces, runs of spaces one, trailing space dropped.
 */
void
PgLinkOneLine(char *out, size_t size, const char *in)
{
	size_t		n = 0;

	for (; in && *in && n + 1 < size; in++)
	{
		char		c = (*in == '\n' || *in == '\t') ? ' ' : *in;

		if (c == ' ' && (n == 0 || out[n - 1] == ' '))
			continue;
		out[n++] = c;
	}
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
}

/* log_notice passes the server's notices and warnings to our log, one line each. */
static void
log_notice(void *arg, const char *message)
{
	char		msg[512];

	(void) arg;
	PgLinkOneLine(msg, sizeof(msg), message);
	RouterLog("server says: %s", msg);
}

/*
 * link_watch registers libpq's current socket with epoll.  The socket can
 * change while connecting (another host, an SSL retry): the old one is
 * unregistered first.
 */
static void
link_watch(PgLink *link, uint32_t events)
{
	int			fd = link->pg ? PQsocket(link->pg) : -1;

	if (fd != link->fd && link->fd >= 0)
		EpollDel(link->fd, &link->events);
	link->fd = fd;
	if (fd >= 0)
		EpollSet(fd, &link->tag, events, &link->events);
}

/* link_drop closes the connection, tells the owner and schedules a reconnect. */
static void
link_drop(PgLink *link, const char *why)
{
	char		msg[256];

	PgLinkOneLine(msg, sizeof(msg), why);
	RouterLog("%s lost: %s (retrying in %d ms)", link->name, msg, link->backoff_ms);
	if (link->fd >= 0)
		EpollDel(link->fd, &link->events);
	link->fd = -1;
	if (link->pg)
		PQfinish(link->pg);
	link->pg = NULL;
	link->state = PGLINK_DOWN;
	link->busy = false;
	link->failed = false;
	link->retry_at = NowMs() + link->backoff_ms;
	link->backoff_ms = link->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : link->backoff_ms * 2;
	link->on_drop(link);
}

/* link_flush_watch flushes queued output and watches for what comes next. */
static void
link_flush_watch(PgLink *link)
{
	int			r = PQflush(link->pg);

	if (r < 0)
	{
		link_drop(link, PQerrorMessage(link->pg));
		return;
	}
	link_watch(link, r == 1 ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

/* PgLinkStart begins connecting (asynchronously). */
void
PgLinkStart(PgLink *link)
{
	/*
	 * application_name (nx-router, nx-router wakes), so that DBAs see who
	 * it is: set before dbname, whose connection string (-d) may override
	 * it
	 */
	const char *const keywords[] = {"application_name", "dbname", NULL};
	const char *const values[] = {link->application_name,
	router_settings.conninfo ? router_settings.conninfo : "", NULL};

	link->tag.kind = TAG_PG;
	link->tag.owner = link;
	if (link->backoff_ms == 0)
	{
		link->backoff_ms = BACKOFF_MIN_MS;
		link->fd = -1;
	}
	link->pg = PQconnectStartParams(keywords, values, 1);
	if (link->pg == NULL)
	{
		link_drop(link, "out of memory");
		return;
	}
	if (PQstatus(link->pg) == CONNECTION_BAD)
	{
		link_drop(link, PQerrorMessage(link->pg));
		return;
	}
	PQsetNoticeProcessor(link->pg, log_notice, NULL);
	link->state = PGLINK_CONNECTING;
	link->connect_started = NowMs();
	link_watch(link, EPOLLOUT);
}

/* PgLinkIdle says whether a query can be sent now. */
bool
PgLinkIdle(const PgLink *link)
{
	return link->state == PGLINK_READY && !link->busy;
}

/*
 * PgLinkSend sends a query (with text parameters when nparams > 0); false
 * when it could not be sent (the connection is then dropped).
 */
bool
PgLinkSend(PgLink *link, const char *sql, int nparams, const char *const *params)
{
	int			ok = nparams > 0 ?
		PQsendQueryParams(link->pg, sql, nparams, NULL, params, NULL, NULL, 0) :
		PQsendQuery(link->pg, sql);

	if (!ok)
	{
		link_drop(link, PQerrorMessage(link->pg));
		return false;
	}
	link->busy = true;
	link_flush_watch(link);
	return link->state == PGLINK_READY;
}

/*
 * PgLinkRestart: the owner found a result it cannot go on from; the
 * connection is dropped once the query's results are read.
 */
void
PgLinkRestart(PgLink *link)
{
	link->failed = true;
}

/*
 * PgLinkEvent advances the connection (while connecting) or reads results
 * and notifications (once connected).
 */
void
PgLinkEvent(PgLink *link, uint32_t events)
{
	PGnotify   *notify;

	if (link->state == PGLINK_CONNECTING)
	{
		switch (PQconnectPoll(link->pg))
		{
			case PGRES_POLLING_READING:
				link_watch(link, EPOLLIN);
				return;
			case PGRES_POLLING_WRITING:
				link_watch(link, EPOLLOUT);
				return;
			case PGRES_POLLING_OK:
				link->state = PGLINK_READY;
				link->backoff_ms = BACKOFF_MIN_MS;
				PQsetnonblocking(link->pg, 1);
				link->on_ready(link);
				return;
			default:
				link_drop(link, PQerrorMessage(link->pg));
				return;
		}
	}
	if (link->state != PGLINK_READY)
		return;
	if ((events & EPOLLOUT) && PQflush(link->pg) < 0)
	{
		link_drop(link, PQerrorMessage(link->pg));
		return;
	}
	if (!PQconsumeInput(link->pg))
	{
		link_drop(link, PQerrorMessage(link->pg));
		return;
	}
	while (link->busy && !PQisBusy(link->pg))
	{
		PGresult   *res = PQgetResult(link->pg);

		if (res == NULL)
		{
			link->busy = false;
			link->on_done(link);
			break;
		}
		link->on_result(link, res);
		PQclear(res);
	}
	while ((notify = PQnotifies(link->pg)) != NULL)
	{
		if (link->on_notify)
			link->on_notify(link);
		PQfreemem(notify);
	}
	if (link->failed)
	{
		/* start over: reconnecting retries with a growing delay */
		link_drop(link, "query failed");
		return;
	}
	if (PQstatus(link->pg) == CONNECTION_BAD)
	{
		link_drop(link, PQerrorMessage(link->pg));
		return;
	}
	if (!link->busy)
		link->on_idle(link);
	if (link->pg != NULL && link->state == PGLINK_READY)
		link_flush_watch(link);
}

/*
 * PgLinkTimers reconnects when the delay has passed, gives up a slow
 * connect, and lets an idle link send what waits.
 */
void
PgLinkTimers(PgLink *link, int64_t now, int64_t *next)
{
	if (link->state == PGLINK_DOWN)
	{
		if (now >= link->retry_at)
			PgLinkStart(link);
		else if (link->retry_at < *next)
			*next = link->retry_at;
	}
	else if (link->state == PGLINK_CONNECTING && now - link->connect_started > CONNECT_TIMEOUT_MS)
		link_drop(link, "timed out connecting");
	else if (PgLinkIdle(link))
		link->on_idle(link);
}
