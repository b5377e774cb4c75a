/*
 * src/router/routes.c
 *	  The route table: host -> deployment, read through nx.router_routes()
 *	  (the view nx.routes, as the role nx_router may see it) over a libpq
 *	  connection of its own (pglink.c) that LISTENs on nx_routes and
 *	  reloads the table on every notification and after every reconnect.
 *	  Nothing else goes over it (wakes and the traffic report have theirs,
 *	  wake_report.c), so a reload waits for no other statement.
 *
 * Glossary:
 *	  table		an open-addressing hash table of the hosts, rebuilt whole
 *				from each load and swapped in (no partial states)
 *	  run dir	where the supervisor puts each deployment's init.sock
 *				(<run dir>/d<id>/init.sock): --run-dir, or asked once from
 *				the cluster (data_directory || '/nx/run')
 *
 * When the connection is lost the last table stays in use (the router
 * keeps serving) and reconnecting is retried.  LISTEN is committed before
 * the SELECT reads the table, in the same round trip: a LISTEN takes effect
 * only when its transaction commits, so in one implicit transaction with
 * the SELECT a change committed between the SELECT's snapshot and that
 * commit would be neither read nor notified.
 */
#include "pglink.h"
#include "nx_handoff.h"

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <libpq-fe.h>

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

static RouteTable table;
static bool loaded;
static bool log_next_load = true;	/* say so after start and reconnects */
static char *run_dir;

static bool reload_pending;

static void table_link_ready(PgLink *link);
static void table_link_result(PgLink *link, PGresult *res);
static void table_link_done(PgLink *link);
static void table_link_notify(PgLink *link);
static void table_link_drop(PgLink *link);
static void table_link_idle(PgLink *link);

static PgLink table_link = {
	.name = "route table connection",
	.application_name = "nx-router",
	.on_ready = table_link_ready,
	.on_result = table_link_result,
	.on_done = table_link_done,
	.on_notify = table_link_notify,
	.on_drop = table_link_drop,
	.on_idle = table_link_idle,
};

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
 * send_load asks for the table; after a (re)connect also sets the
 * timeouts, LISTENs and, when --run-dir was not given, asks where the run
 * directory is.
 */
static void
send_load(bool after_connect)
{
	char		sql[512];

	/*
	 * after a (re)connect: no statement of ours waits on a lock for more
	 * than a second (the table is read by every request)
	 */
	snprintf(sql, sizeof(sql), "%s%s%s",
			 after_connect ? "SET lock_timeout = '1s'; SET statement_timeout = '5s'; "
			 "BEGIN; LISTEN nx_routes; COMMIT; " : "",
			 after_connect && run_dir == NULL ?
			 "SELECT pg_catalog.current_setting('data_directory') OPERATOR(pg_catalog.||) '" NX_RUN_DIR_SUFFIX "'; " : "",
			 "SELECT host, deployment, desired_state FROM nx.router_routes()");
	reload_pending = false;
	PgLinkSend(&table_link, sql, 0, NULL);
}

/* table_link_ready: connected; LISTEN and load */
static void
table_link_ready(PgLink *link)
{
	(void) link;
	send_load(true);
}

/*
 * table_link_result takes one result of a load: the run directory, the
 * table, or an error (the connection then starts over).
 */
static void
table_link_result(PgLink *link, PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

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

		PgLinkOneLine(msg, sizeof(msg), PQresultErrorMessage(res));
		RouterLog("loading routes failed: %s", msg);
		PgLinkRestart(link);
	}
}

/* table_link_done: the load is over (a notification may have asked for another) */
static void
table_link_done(PgLink *link)
{
	(void) link;
}

/* table_link_notify: the routes changed: reload as soon as the link is free */
static void
table_link_notify(PgLink *link)
{
	(void) link;
	reload_pending = true;
}

/* table_link_drop: lost; the last table stays in use, say so at the next load */
static void
table_link_drop(PgLink *link)
{
	(void) link;
	log_next_load = true;
	RouterLog("serving the last route table meanwhile");
}

/* table_link_idle: nothing in flight: reload if a notification asked */
static void
table_link_idle(PgLink *link)
{
	(void) link;
	if (reload_pending)
		send_load(false);
}

/* RoutesStart begins connecting to the cluster (both connections). */
void
RoutesStart(void)
{
	if (router_settings.run_dir)
		run_dir = strdup(router_settings.run_dir);
	PgLinkStart(&table_link);
	WakeReportStart();
}

/* RoutesEvent: readiness on one of the cluster connections (tag owner). */
void
RoutesEvent(void *owner, uint32_t events)
{
	PgLinkEvent((PgLink *) owner, events);
}

/* RoutesTimers: reconnects, slow connects, what waits to be sent. */
void
RoutesTimers(int64_t now, int64_t *next)
{
	PgLinkTimers(&table_link, now, next);
	WakeReportTimers(now, next);
}
