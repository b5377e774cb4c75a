/*
 * src/router/wake_report.c
 *	  The router's second connection to the cluster (pglink.c): nx.wake()
 *	  for asleep deployments that requests arrive for, and the traffic
 *	  report (nx.report_activity) every second, which is also the router's
 *	  heartbeat for the supervisor's idle stops.
 *
 * It is apart from the route table's connection (routes.c) because a wake
 * can wait on a lock a user holds (an open transaction around nx.wake of
 * their own deployment) for up to its lock_timeout: on one shared
 * connection that wait delayed every table reload behind it, and so every
 * other site's promote.  One query is in flight at a time; wakes go before
 * the report.
 */
#include "pglink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPORT_INTERVAL_MS 1000
#define MAX_WAKES		256		/* deployments in one nx.wake round trip */

/* what the query in flight is, so that its results go to the right place */
typedef enum WorkKind
{
	WORK_SETUP,
	WORK_WAKE,
	WORK_REPORT
} WorkKind;

static WorkKind work_kind;
static int64_t wakes[MAX_WAKES];	/* deployments to wake, not asked yet */
static int	n_wakes;
static int64_t wakes_sent[MAX_WAKES];	/* those of the nx.wake call in flight */
static int	n_wakes_sent;
static int64_t next_report_at;
static bool full_report_pending = true;	/* after each (re)connect */
static bool report_failed_logged;

static void work_link_ready(PgLink *link);
static void work_link_result(PgLink *link, PGresult *res);
static void work_link_done(PgLink *link);
static void work_link_drop(PgLink *link);
static void work_link_idle(PgLink *link);

static PgLink work_link = {
	.name = "wake and report connection",
	.application_name = "nx-router wakes",
	.on_ready = work_link_ready,
	.on_result = work_link_result,
	.on_done = work_link_done,
	.on_notify = NULL,
	.on_drop = work_link_drop,
	.on_idle = work_link_idle,
};

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

/* send_wakes asks nx.wake() for every deployment waiting to be woken, in one round trip. */
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
	memcpy(wakes_sent, wakes, n_wakes * sizeof(int64_t));
	n_wakes_sent = n_wakes;
	n_wakes = 0;
	work_kind = WORK_WAKE;
	PgLinkSend(&work_link, "SELECT nx.wake(d) FROM pg_catalog.unnest($1::pg_catalog.int8[]) AS d",
			   1, params);
	free(list);
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
	work_kind = WORK_REPORT;
	if (PgLinkSend(&work_link, "SELECT nx.report_activity($1::pg_catalog.bool, $2::pg_catalog.int8[], "
				   "$3::pg_catalog.int4[], $4::pg_catalog.int8[], $5::pg_catalog.int8[], "
				   "$6::pg_catalog.int8[], $7::pg_catalog.int8[])", 7, params))
		full_report_pending = false;
	for (i = 0; i < 6; i++)
		free(arrays[i]);
}

/*
 * work_link_ready: connected; no statement of ours waits on a lock a user
 * can hold for more than a second
 */
static void
work_link_ready(PgLink *link)
{
	work_kind = WORK_SETUP;
	PgLinkSend(link, "SET lock_timeout = '1s'; SET statement_timeout = '5s'", 0, NULL);
}

/* work_link_result logs a failed wake, and a failed report once until one succeeds. */
static void
work_link_result(PgLink *link, PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);
	char		msg[512];

	if (work_kind == WORK_SETUP)
	{
		if (st != PGRES_COMMAND_OK)
			PgLinkRestart(link);
		return;
	}
	if (st != PGRES_TUPLES_OK && (work_kind == WORK_WAKE || !report_failed_logged))
	{
		PgLinkOneLine(msg, sizeof(msg), PQresultErrorMessage(res));
		RouterLog("%s failed: %s", work_kind == WORK_WAKE ? "waking a deployment" : "reporting activity", msg);
		if (work_kind == WORK_REPORT)
			report_failed_logged = true;
	}
	else if (st == PGRES_TUPLES_OK && work_kind == WORK_REPORT)
		report_failed_logged = false;
}

/* work_link_done: a wake's deployments may be asked for again */
static void
work_link_done(PgLink *link)
{
	(void) link;
	if (work_kind == WORK_WAKE)
		wakes_answered();
}

/* work_link_drop: lost, with what was in flight; the next report is a full one */
static void
work_link_drop(PgLink *link)
{
	(void) link;
	if (work_kind == WORK_WAKE)
		wakes_answered();
	full_report_pending = true;
}

/* work_link_idle sends what waits: wakes first, then the report when due. */
static void
work_link_idle(PgLink *link)
{
	(void) link;
	if (n_wakes > 0)
		send_wakes();
	else if (loop_now >= next_report_at)
	{
		next_report_at = loop_now + REPORT_INTERVAL_MS;
		send_report();
	}
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
	if (PgLinkIdle(&work_link))
		work_link_idle(&work_link);
}

/* WakeReportStart begins connecting. */
void
WakeReportStart(void)
{
	PgLinkStart(&work_link);
}

/* WakeReportTimers: reconnects, and the report when it is due. */
void
WakeReportTimers(int64_t now, int64_t *next)
{
	PgLinkTimers(&work_link, now, next);
	if (work_link.state == PGLINK_READY && next_report_at > now && next_report_at < *next)
		*next = next_report_at;
}
