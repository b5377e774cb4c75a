/*
 * control/nx/wait.c
 *	  Waiting for a deployment: until it is ready (nx push), or until it is
 *	  production (the promotion of a preview with a database of its own,
 *	  which the platform completes once the new deployment is ready).
 *
 * Glossary:
 *	  given up	 the deployment became failed or crashloop, was stopped or
 *				 removed (a newer promote replaces a pending one), or the
 *				 timeout passed: exit 4, with its last log lines.
 *	  branching	 its database is being copied from production: waited for,
 *				 like pending, starting and crashed (the supervisor starts
 *				 a crashed one again).
 */
#include "nx.h"

#include <stdlib.h>
#include <string.h>

#define LOG_LINES 20

/* add_logs adds the deployment's last lines to the pending error. */
static void
add_logs(PGconn *conn, const char *sandbox, const char *deployment, int lines)
{
	char		nlines[16];
	char		title[128];
	const char *params[3] = {sandbox, deployment, nlines};
	PGresult   *res;

	snprintf(nlines, sizeof(nlines), "%d", lines);
	snprintf(title, sizeof(title), "last log lines of deployment %s (at most %d):", deployment, lines);
	res = PQexecParams(conn, "SELECT line FROM nx.logs($1, $2::bigint, $3::integer)",
					   3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		for (int r = 0; r < PQntuples(res); r++)
			nx_error_log(title, PQgetvalue(res, r, 0));
	PQclear(res);
}

/* nx_status_row: the deployment's nx.status row (none when removed or not yours) */
PGresult *
nx_status_row(PGconn *conn, const char *deployment)
{
	const char *params[1] = {deployment};

	return nx_query(conn, "SELECT * FROM nx.status WHERE deployment = $1::bigint", 1, params);
}

/* field: a column of row 0, by name ("" when absent) */
static const char *
field(const PGresult *res, const char *name)
{
	int			c = PQfnumber(res, name);

	return c < 0 ? "" : PQgetvalue(res, 0, c);
}

/*
 * nx_wait_deployment polls nx.status every 100 ms until deployment (of
 * sandbox) is ready, or with production until it is the production
 * deployment, for at most timeout seconds.  Returns NX_EXIT_OK, or
 * NX_EXIT_NOT_READY with the error made (its status row printed first
 * under --json).
 */
int
nx_wait_deployment(PGconn *conn, const char *sandbox, const char *deployment,
				   double timeout, bool production)
{
	double		deadline = nx_now() + timeout;

	for (;;)
	{
		PGresult   *res = nx_status_row(conn, deployment);
		const char *state;
		bool		done;
		bool		broken;

		if (PQntuples(res) != 1)
		{
			PQclear(res);
			nx_error("deployment %s disappeared while waiting for it (removed, replaced by a newer promote, or its sandbox dropped)",
					 deployment);
			return NX_EXIT_NOT_READY;
		}
		state = field(res, "state");
		done = production ? field(res, "production")[0] == 't'
			: strcmp(state, "ready") == 0;
		broken = strcmp(state, "failed") == 0 || strcmp(state, "crashloop") == 0 ||
			strcmp(field(res, "desired_state"), "running") != 0;
		if (done)
		{
			PQclear(res);
			return NX_EXIT_OK;
		}
		if (broken || nx_now() >= deadline)
		{
			const char *last_error = field(res, "last_error");

			if (nx_global.json)
			{
				nx_json_row(stdout, res, 0);
				fputc('\n', stdout);
			}
			if (strcmp(field(res, "desired_state"), "running") != 0)
				nx_error("deployment %s was stopped while waiting for it to become %s", deployment,
						 production ? "production" : "ready");
			else if (broken)
				nx_error("deployment %s is in state %s%s%s", deployment, state,
						 *last_error ? ": " : "", last_error);
			else
				nx_error("deployment %s is not %s after %g seconds (state %s%s%s)", deployment,
						 production ? "production" : "ready", timeout, state,
						 *last_error ? ": " : "", last_error);
			if (production && !broken)
				nx_detail("hint", "the platform makes it production once it is ready: \"nx status\" shows when");
			PQclear(res);
			add_logs(conn, sandbox, deployment, LOG_LINES);
			return NX_EXIT_NOT_READY;
		}
		PQclear(res);
		nx_sleep_ms(100);
	}
}
