/*
 * control/nx/lifecycle.c
 *	  A deployment's desired state, named by its sandbox: nx start, stop,
 *	  restart SANDBOX [DEPLOYMENT], and nx remove SANDBOX DEPLOYMENT
 *	  (nx.start, nx.stop, nx.restart, nx.remove).
 *
 * Glossary:
 *	  the app's deployment  without DEPLOYMENT: the sandbox's production
 *				deployment, else its newest one that was not removed (the
 *				one "nx logs SANDBOX" shows).
 *	  id form	"nx restart 42": a first argument that starts with a digit
 *				is a deployment id, as before 0.4.0.  Sandbox names start
 *				with a letter, so the two forms cannot be confused.
 *				remove has no id form: removing is for good, and naming the
 *				sandbox guards against a mistyped id.
 *
 * The deployment is looked up in nx.status first, so that an id of
 * another sandbox is refused before anything changes.
 */
#include "nx.h"

#include <stdlib.h>
#include <string.h>

/* is_id: does the argument look like a deployment id (starts with a digit)? */
static bool
is_id(const char *arg)
{
	return arg[0] >= '0' && arg[0] <= '9';
}

/*
 * resolve_deployment returns (malloc'd) the id of the deployment that
 * sandbox and id (NULL: the app's deployment) name, or ends the run with
 * the error that says why there is none.
 */
static char *
resolve_deployment(PGconn *conn, const char *sandbox, const char *id)
{
	PGresult   *res;
	char	   *found;

	nx_require_sandbox(conn, sandbox);
	if (id == NULL)
	{
		const char *params[1] = {sandbox};

		res = nx_query(conn,
					   "SELECT deployment FROM nx.status WHERE sandbox = $1 "
					   "ORDER BY production DESC, deployment DESC LIMIT 1", 1, params);
		if (PQntuples(res) == 0)
		{
			char		msg[128];

			snprintf(msg, sizeof(msg), "sandbox \"%s\" has no deployment", sandbox);
			nx_report_server_error(conn, "42704", msg, NULL, NULL);
			nx_finish(conn, res);
			nx_exit(NX_EXIT_SERVER);
		}
	}
	else
	{
		const char *params[2] = {sandbox, id};

		res = nx_query(conn,
					   "SELECT deployment FROM nx.status WHERE sandbox = $1 AND deployment = $2::bigint",
					   2, params);
		if (PQntuples(res) == 0)
		{
			PGresult   *removed = nx_query(conn,
										   "SELECT 1 FROM nx.event_log WHERE sandbox = $1 "
										   "AND deployment = $2::bigint AND action = 'remove' LIMIT 1",
										   2, params);
			char		msg[160];

			if (PQntuples(removed) > 0)
			{
				snprintf(msg, sizeof(msg), "deployment %s of sandbox \"%s\" was removed", id, sandbox);
				nx_error("%s", msg);
				nx_error_sqlstate("55000");
				nx_detail("hint", "push the binary again to get a new deployment");
			}
			else
			{
				snprintf(msg, sizeof(msg), "deployment %s is not a deployment of sandbox \"%s\"", id, sandbox);
				nx_report_server_error(conn, "42704", msg, NULL, NULL);
			}
			PQclear(removed);
			nx_finish(conn, res);
			nx_exit(NX_EXIT_SERVER);
		}
	}
	found = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return found;
}

/*
 * cmd_start serves start, stop and restart (argv[0]):
 * nx VERB SANDBOX [DEPLOYMENT] or nx VERB DEPLOYMENT.
 */
int
cmd_start(int argc, char **argv)
{
	const char *pos[2] = {NULL, NULL};
	int			n = nx_parse_positional(argc, argv, pos, 2, NULL);
	const char *sql;
	const char *verb;
	const char *params[1];
	char	   *id = NULL;
	PGconn	   *conn;
	PGresult   *res;

	if (strcmp(argv[0], "start") == 0)
	{
		sql = "SELECT * FROM nx.start($1::bigint)";
		verb = "started";
	}
	else if (strcmp(argv[0], "stop") == 0)
	{
		sql = "SELECT * FROM nx.stop($1::bigint)";
		verb = "stopped";
	}
	else
	{
		sql = "SELECT * FROM nx.restart($1::bigint)";
		verb = "restarted";
	}
	if (n < 1)
		nx_usage_error(argv[0], "missing argument SANDBOX (or a deployment id)");
	if (is_id(pos[0]))
	{
		if (n > 1)
			nx_usage_error(argv[0], "too many arguments: give SANDBOX [DEPLOYMENT], or a deployment id alone");
		nx_check_deployment_id(argv[0], pos[0]);
	}
	else
	{
		nx_global.sandbox = pos[0];
		if (pos[1])
			nx_check_deployment_id(argv[0], pos[1]);
	}
	conn = nx_connect();
	if (is_id(pos[0]))
		id = strdup(pos[0]);
	else
		id = resolve_deployment(conn, pos[0], pos[1]);
	params[0] = id;
	res = nx_query(conn, sql, 1, params);
	nx_print_deployment_row(res, verb);
	nx_finish(conn, res);
	free(id);
	return NX_EXIT_OK;
}

/* cmd_remove: nx remove SANDBOX DEPLOYMENT (nx.remove) */
int
cmd_remove(int argc, char **argv)
{
	const char *pos[2] = {NULL, NULL};
	int			n = nx_parse_positional(argc, argv, pos, 2, NULL);
	const char *params[1];
	char	   *id;
	PGconn	   *conn;
	PGresult   *res;

	if (n < 1)
		nx_usage_error("remove", "missing arguments SANDBOX DEPLOYMENT");
	if (is_id(pos[0]))
		nx_usage_error("remove", "give the sandbox too: nx remove SANDBOX %s", pos[0]);
	if (n < 2)
		nx_usage_error("remove", "missing argument DEPLOYMENT (\"nx status %s\" lists them)", pos[0]);
	nx_check_deployment_id("remove", pos[1]);
	nx_global.sandbox = pos[0];
	conn = nx_connect();
	id = resolve_deployment(conn, pos[0], pos[1]);
	params[0] = id;
	res = nx_query(conn, "SELECT nx.remove($1::bigint)", 1, params);
	if (nx_global.json)
	{
		printf("{\"sandbox\": ");
		nx_json_string(stdout, pos[0]);
		printf(", \"deployment\": %s, \"removed\": true}\n", id);
	}
	else
		printf("deployment %s of sandbox %s removed (stopped, its port and preview URL released)\n",
			   id, pos[0]);
	nx_finish(conn, res);
	free(id);
	return NX_EXIT_OK;
}
