/*
 * src/router/routes.c
 *	  The route table: host -> deployment, read through nx.router_routes()
 *	  (the view nx.routes, as the role nx_router may see it) over one libpq
 *	  connection that LISTENs on nx_routes and reloads the table on every
 *	  notification and after every reconnect.  The same connection asks
 *	  nx.wake() for asleep deployments that requests arrive for, and sends
 *	  the traffic report (nx.report_activity) every second.
 *
 * Glossary:
 *	  table		an open-addressing hash table of the hosts, rebuilt whole
 *				from each load and swapped in (no partial states)
 *	  run dir	where the supervisor puts each deployment's init.sock
 *				(<run dir>/d<id>/init.sock): --run-dir, or asked once from
 *				the cluster (data_directory || '/nx/run')
 *
 * Everything is asynchronous (PQconnectStart/PQconnectPoll, PQsendQuery,
 * PQconsumeInput) and driven by the main epoll loop, so a slow or vanished
 * cluster never stops the router from serving.  When the connection is
 * lost the last table stays in use and reconnecting is retried with a
 * growing delay (100 ms doubling up to 5 s).  LISTEN is committed before
 * the SELECT reads the table, in the same round trip: a LISTEN takes effect
 * only when its transaction commits, so in one implicit transaction with
 * the SELECT a change committed between the SELECT's snapshot and that
 * commit would be neither read nor notified.
 * One query is in flight at a time; what waits goes in this order: a table
 * reload, wakes, the report.
 */
#include "router.h"
#include "nx_handoff.h"

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <libpq-fe.h>

#define BACKOFF_MIN_MS	100
#define BACKOFF_MAX_MS	5000
#define CONNECT_TIMEOUT_MS 10000
#define REPORT_INTERVAL_MS 1000
#define MAX_WAKES		256		/* deployments in one nx.wake round trip */

typedef struct Route
{
	char	   *host;			/* NULL: empty slot */
	int64_t		deployment;
	RouteState	state;
} Route;

typedef struct RouteTable
{
	Route	   *slots;
	size_t		mask;			/* slot count - 1 (a power of two) */
	size_t		count;
} RouteTable;

typedef enum PgState
{
	PG_DOWN,					/* waiting to reconnect */
	PG_CONNECTING,
	PG_READY
} PgState;

static RouteTable table;
static bool loaded;
static bool log_next_load = true;	/* say so after start and reconnects */
static char *run_dir;

static PGconn *pg;
static PgState pg_state = PG_DOWN;
static int	pg_fd = -1;
static uint32_t pg_events;
static Tag	pg_tag = {TAG_PG, NULL};
static int64_t pg_retry_at;
static int64_t pg_connect_started;
static int	pg_backoff_ms = BACKOFF_MIN_MS;
static bool query_busy;
static bool reload_pending;

/* what the query in flight is, so that its results go to the right place */
typedef enum QueryKind
{
	QUERY_LOAD,
	QUERY_WAKE,
	QUERY_REPORT
} QueryKind;
static QueryKind query_kind;

static int64_t wakes[MAX_WAKES];	/* deployments to wake, not asked yet */
static int	n_wakes;
static int64_t wakes_sent[MAX_WAKES];	/* those of the nx.wake call in flight */
static int	n_wakes_sent;

static void wakes_answered(void);
static int64_t next_report_at;
static bool full_report_pending = true;	/* after each (re)connect */
static bool report_failed_logged;

/* hash_host is FNV-1a over the host name. */
static uint64_t
hash_host(const char *host)
{
	uint64_t	h = 1469598103934665603ULL;

	for (; *host; host++)
		h = (h ^ (unsigned char) *host) * 1099511628211ULL;
	return h;
}

/* table_free releases a table's slots and names. */
static void
table_free(RouteTable *t)
{
	size_t		i;

	if (t->slots)
		for (i = 0; i <= t->mask; i++)
			free(t->slots[i].host);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/*
 * normalise_host lowercases a host name from the view and drops a trailing
 * dot, the way http_head.c normalises the Host a client sends.
 */
static void
normalise_host(char *host)
{
	size_t		len = strlen(host);
	size_t		i;

	for (i = 0; i < len; i++)
		if (host[i] >= 'A' && host[i] <= 'Z')
			host[i] += 'a' - 'A';
	if (len > 0 && host[len - 1] == '.')
		host[len - 1] = '\0';
}

/* table_find returns the slot of `host`, or the empty slot where it would go. */
static Route *
table_find(const RouteTable *t, const char *host)
{
	size_t		i = hash_host(host) & t->mask;

	while (t->slots[i].host && strcmp(t->slots[i].host, host) != 0)
		i = (i + 1) & t->mask;
	return &t->slots[i];
}

/*
 * load_table builds a new table from a result of
 * SELECT host, deployment, desired_state and swaps it in.
 */
static void
load_table(PGresult *res)
{
	RouteTable	t;
	int			n = PQntuples(res);
	size_t		size = 16;
	int			i;

	while (size < (size_t) n * 2)
		size *= 2;
	t.slots = calloc(size, sizeof(Route));
	if (t.slots == NULL)
	{
		RouterLog("out of memory loading %d routes: keeping the old table", n);
		return;
	}
	t.mask = size - 1;
	t.count = 0;
	for (i = 0; i < n; i++)
	{
		char	   *host;
		Route	   *r;

		if (PQgetisnull(res, i, 0) || PQgetisnull(res, i, 1))
			continue;
		host = strdup(PQgetvalue(res, i, 0));
		if (host == NULL)
			continue;
		normalise_host(host);
		r = table_find(&t, host);
		if (r->host)
		{
			free(host);			/* a duplicate host: the first row wins */
			continue;
		}
		r->host = host;
		r->deployment = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		r->state = strcmp(PQgetvalue(res, i, 2), "running") == 0 ? ROUTE_RUNNING :
			strcmp(PQgetvalue(res, i, 2), "asleep") == 0 ? ROUTE_ASLEEP : ROUTE_STOPPED;
		t.count++;
	}
	table_free(&table);
	table = t;
	if (log_next_load)
		RouterLog("loaded %zu routes", t.count);
	log_next_load = false;
	loaded = true;
	PoolPrune();				/* idle sockets of what is no longer routed */
}

/* RoutesLookup finds the deployment of a (normalised) host. */
bool
RoutesLookup(const char *host, int64_t *deployment, RouteState *state)
{
	Route	   *r;

	if (table.slots == NULL)
		return false;
	r = table_find(&table, host);
	if (r->host == NULL)
		return false;
	*deployment = r->deployment;
	*state = r->state;
	return true;
}

/*
 * RoutesHasDeployment says whether any host routes to `deployment` (a
 * scan of the table: called once per pooled deployment after each load).
 */
bool
RoutesHasDeployment(int64_t deployment)
{
	size_t		i;

	if (table.slots == NULL)
		return false;
	for (i = 0; i <= table.mask; i++)
		if (table.slots[i].host && table.slots[i].deployment == deployment)
			return true;
	return false;
}

/* RoutesLoaded says whether a table has been loaded at least once. */
bool
RoutesLoaded(void)
{
	return loaded && run_dir != NULL;
}

/* RoutesRunDir returns the directory of the deployments' init.sock. */
const char *
RoutesRunDir(void)
{
	return run_dir;
}

/*
 * pg_watch registers libpq's current socket with epoll.  The socket can
 * change while connecting (another host, an SSL retry): the old one is
 * unregistered first.
 */
static void
pg_watch(uint32_t events)
{
	int			fd = pg ? PQsocket(pg) : -1;

	if (fd != pg_fd && pg_fd >= 0)
		EpollDel(pg_fd, &pg_events);
	pg_fd = fd;
	if (fd >= 0)
		EpollSet(fd, &pg_tag, events, &pg_events);
}

/*
 * one_line copies a libpq message into out as one line: newlines and tabs
 * become spaces, runs of spaces one, trailing space dropped.
 */
static void
one_line(char *out, size_t size, const char *in)
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
	one_line(msg, sizeof(msg), message);
	RouterLog("server says: %s", msg);
}

/* pg_drop closes the connection and schedules a reconnect. */
static void
pg_drop(const char *why)
{
	char		msg[256];

	one_line(msg, sizeof(msg), why);
	RouterLog("route table connection lost: %s (retrying in %d ms, serving the last table)",
			  msg, pg_backoff_ms);
	log_next_load = true;
	if (pg_fd >= 0)
		EpollDel(pg_fd, &pg_events);
	pg_fd = -1;
	if (pg)
		PQfinish(pg);
	pg = NULL;
	pg_state = PG_DOWN;
	if (query_busy && query_kind == QUERY_WAKE)
		wakes_answered();
	query_busy = false;
	full_report_pending = true;
	pg_retry_at = NowMs() + pg_backoff_ms;
	pg_backoff_ms = pg_backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : pg_backoff_ms * 2;
}

/* pg_flush_watch flushes queued output and watches for what comes next. */
static void
pg_flush_watch(void)
{
	int			r = PQflush(pg);

	if (r < 0)
	{
		pg_drop(PQerrorMessage(pg));
		return;
	}
	pg_watch(r == 1 ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

/*
 * send_load asks for the table; after a (re)connect also LISTENs and, when
 * --run-dir was not given, asks where the run directory is.
 */
static void
send_load(bool after_connect)
{
	char		sql[512];

	/*
	 * after a (re)connect: no statement of ours waits on a lock a user can
	 * hold (an open transaction around nx.wake of their deployment) for
	 * more than a second; the one connection serves every host
	 */
	snprintf(sql, sizeof(sql), "%s%s%s",
			 after_connect ? "SET lock_timeout = '1s'; SET statement_timeout = '5s'; "
			 "BEGIN; LISTEN nx_routes; COMMIT; " : "",
			 after_connect && run_dir == NULL ?
			 "SELECT pg_catalog.current_setting('data_directory') OPERATOR(pg_catalog.||) '" NX_RUN_DIR_SUFFIX "'; " : "",
			 "SELECT host, deployment, desired_state FROM nx.router_routes()");
	if (!PQsendQuery(pg, sql))
	{
		pg_drop(PQerrorMessage(pg));
		return;
	}
	query_busy = true;
	query_kind = QUERY_LOAD;
	reload_pending = false;
	pg_flush_watch();
}

/*
 * send_wakes asks nx.wake() for every deployment waiting to be woken, in
 * one round trip.
 */
static void
send_wakes(void)
{
	char	   *list = malloc(n_wakes * 21 + 3);
	size_t		len = 0;
	const char *params[1];
	int			i;

	if (list == NULL)
		return;
	list[len++] = '{';
	for (i = 0; i < n_wakes; i++)
		len += sprintf(list + len, "%s%lld", i ? "," : "", (long long) wakes[i]);
	list[len++] = '}';
	list[len] = '\0';
	params[0] = list;
	if (!PQsendQueryParams(pg, "SELECT nx.wake(d) FROM pg_catalog.unnest($1::pg_catalog.int8[]) AS d",
						   1, NULL, params, NULL, NULL, 0))
	{
		free(list);
		pg_drop(PQerrorMessage(pg));
		return;
	}
	free(list);
	memcpy(wakes_sent, wakes, n_wakes * sizeof(int64_t));
	n_wakes_sent = n_wakes;
	n_wakes = 0;
	query_busy = true;
	query_kind = QUERY_WAKE;
	pg_flush_watch();
}

/*
 * send_report sends the traffic counters of the last period (also when
 * there are none: the report is the router's heartbeat, without which the
 * supervisor stops nothing for being idle).
 */
static void
send_report(void)
{
	char	   *arrays[6];
	const char *params[7];
	bool		full = full_report_pending;
	int			i;

	if (!ActivityReport(full, arrays))
		return;
	params[0] = full ? "true" : "false";
	for (i = 0; i < 6; i++)
		params[i + 1] = arrays[i];
	if (!PQsendQueryParams(pg, "SELECT nx.report_activity($1::pg_catalog.bool, $2::pg_catalog.int8[], "
						   "$3::pg_catalog.int4[], $4::pg_catalog.int8[], $5::pg_catalog.int8[], "
						   "$6::pg_catalog.int8[], $7::pg_catalog.int8[])",
						   7, NULL, params, NULL, NULL, 0))
	{
		for (i = 0; i < 6; i++)
			free(arrays[i]);
		pg_drop(PQerrorMessage(pg));
		return;
	}
	for (i = 0; i < 6; i++)
		free(arrays[i]);
	full_report_pending = false;
	query_busy = true;
	query_kind = QUERY_REPORT;
	pg_flush_watch();
}

/* send_next sends what waits, if the connection is free: reload, wakes, report. */
static void
send_next(void)
{
	if (pg_state != PG_READY || query_busy)
		return;
	if (reload_pending)
		send_load(false);
	else if (n_wakes > 0)
		send_wakes();
	else if (loop_now >= next_report_at)
	{
		next_report_at = loop_now + REPORT_INTERVAL_MS;
		send_report();
	}
}

/*
 * wakes_answered: the nx.wake call in flight is over (answered, failed, or
 * the connection is gone): those deployments may be asked for again (the
 * requests still waiting ask on their next retry if the route still says
 * asleep).
 */
static void
wakes_answered(void)
{
	int			i;

	for (i = 0; i < n_wakes_sent; i++)
	{
		Activity   *a = ActivityGet(wakes_sent[i]);

		if (a)
			a->waking = false;
	}
	n_wakes_sent = 0;
}

/*
 * RoutesWake asks the cluster to wake an asleep deployment (nx.wake),
 * unless a wake of it is already queued or in flight: many requests for
 * one sleeping deployment cause one wake.
 */
void
RoutesWake(int64_t deployment)
{
	Activity   *a = ActivityGet(deployment);

	if (a == NULL || a->waking || n_wakes == MAX_WAKES)
		return;					/* a full queue: asked again on the next retry */
	a->waking = true;
	wakes[n_wakes++] = deployment;
	send_next();
}

/* pg_connect_start begins connecting (asynchronously). */
static void
pg_connect_start(void)
{
	/*
	 * application_name nx-router, so that DBAs see who it is: set before
	 * dbname, whose connection string (-d) may override it
	 */
	const char *const keywords[] = {"application_name", "dbname", NULL};
	const char *const values[] = {"nx-router", router_settings.conninfo ? router_settings.conninfo : "", NULL};

	pg = PQconnectStartParams(keywords, values, 1);
	if (pg == NULL)
	{
		pg_drop("out of memory");
		return;
	}
	if (PQstatus(pg) == CONNECTION_BAD)
	{
		pg_drop(PQerrorMessage(pg));
		return;
	}
	PQsetNoticeProcessor(pg, log_notice, NULL);
	pg_state = PG_CONNECTING;
	pg_connect_started = NowMs();
	pg_watch(EPOLLOUT);
}

/*
 * handle_result takes one result of the query in flight.  Only a failed
 * table load drops the connection (to start over); a failed wake or report
 * is logged, and the next one tried as usual.
 */
static void
handle_result(PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	if (query_kind != QUERY_LOAD)
	{
		if (st != PGRES_TUPLES_OK && (query_kind == QUERY_WAKE || !report_failed_logged))
		{
			char		msg[512];

			one_line(msg, sizeof(msg), PQresultErrorMessage(res));
			RouterLog("%s failed: %s", query_kind == QUERY_WAKE ? "waking a deployment" : "reporting activity", msg);
			if (query_kind == QUERY_REPORT)
				report_failed_logged = true;
		}
		else if (st == PGRES_TUPLES_OK && query_kind == QUERY_REPORT)
			report_failed_logged = false;
		return;
	}
	if (st == PGRES_TUPLES_OK && PQnfields(res) == 1 && PQntuples(res) == 1 && run_dir == NULL)
	{
		run_dir = strdup(PQgetvalue(res, 0, 0));
		if (run_dir)
			RouterLog("run directory %s", run_dir);
	}
	else if (st == PGRES_TUPLES_OK && PQnfields(res) == 3)
		load_table(res);
	else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
	{
		char		msg[512];

		one_line(msg, sizeof(msg), PQresultErrorMessage(res));
		RouterLog("loading routes failed: %s", msg);
	}
}

/* RoutesStart begins connecting to the cluster. */
void
RoutesStart(void)
{
	if (router_settings.run_dir)
		run_dir = strdup(router_settings.run_dir);
	pg_connect_start();
}

/*
 * RoutesEvent advances the connection (while connecting) or reads results
 * and notifications (once connected).
 */
void
RoutesEvent(uint32_t events)
{
	PGnotify   *notify;
	bool		failed = false;

	if (pg_state == PG_CONNECTING)
	{
		switch (PQconnectPoll(pg))
		{
			case PGRES_POLLING_READING:
				pg_watch(EPOLLIN);
				return;
			case PGRES_POLLING_WRITING:
				pg_watch(EPOLLOUT);
				return;
			case PGRES_POLLING_OK:
				pg_state = PG_READY;
				pg_backoff_ms = BACKOFF_MIN_MS;
				PQsetnonblocking(pg, 1);
				send_load(true);
				return;
			default:
				pg_drop(PQerrorMessage(pg));
				return;
		}
	}
	if (pg_state != PG_READY)
		return;
	if ((events & EPOLLOUT) && PQflush(pg) < 0)
	{
		pg_drop(PQerrorMessage(pg));
		return;
	}
	if (!PQconsumeInput(pg))
	{
		pg_drop(PQerrorMessage(pg));
		return;
	}
	while (query_busy && !PQisBusy(pg))
	{
		PGresult   *res = PQgetResult(pg);

		if (res == NULL)
		{
			query_busy = false;
			if (query_kind == QUERY_WAKE)
				wakes_answered();
			break;
		}
		if (PQresultStatus(res) == PGRES_FATAL_ERROR && query_kind == QUERY_LOAD)
			failed = true;
		handle_result(res);
		PQclear(res);
	}
	while ((notify = PQnotifies(pg)) != NULL)
	{
		reload_pending = true;
		PQfreemem(notify);
	}
	if (failed)
	{
		/* start over: reconnecting retries with a growing delay */
		pg_drop("query failed");
		return;
	}
	if (PQstatus(pg) == CONNECTION_BAD)
	{
		pg_drop(PQerrorMessage(pg));
		return;
	}
	if (!query_busy)
		send_next();
	if (pg != NULL && pg_state == PG_READY)
		pg_flush_watch();
}

/* RoutesTimers reconnects when the delay has passed, or gives up a slow connect. */
void
RoutesTimers(int64_t now, int64_t *next)
{
	if (pg_state == PG_DOWN)
	{
		if (now >= pg_retry_at)
			pg_connect_start();
		else if (pg_retry_at < *next)
			*next = pg_retry_at;
	}
	else if (pg_state == PG_CONNECTING && now - pg_connect_started > CONNECT_TIMEOUT_MS)
		pg_drop("timed out connecting");
	else if (pg_state == PG_READY)
	{
		send_next();
		if (next_report_at > now && next_report_at < *next)
			*next = next_report_at;
	}
}
