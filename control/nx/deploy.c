/*
 * control/nx/deploy.c
 *	  Moving production: nx promote, nx rollback (nx.promote, nx.rollback).
 *	  Starting and stopping deployments: lifecycle.c.
 *
 * Promoting a preview that has a database of its own (branch or empty) is
 * asynchronous on the server: a new deployment of the same binary on the
 * production database becomes production once ready.  nx promote (and
 * nx push --promote) wait for that by default, as nx push waits for ready.
 */
#include "nx.h"

#include <stdlib.h>
#include <string.h>

/*
 * nx_promote_deployment calls nx.promote(sandbox, deployment, force).  A
 * preview with a database of its own is promoted asynchronously: the
 * server starts its binary on the production database as a new
 * deployment, which the platform makes production once it is ready.  Then
 * this says so and (with wait) waits for that, up to timeout seconds.
 * Returns the exit code (NX_EXIT_NOT_READY when the new deployment did not
 * make it); *result gets the latest status row of the deployment that is
 * (or is to be) production.
 */
int
nx_promote_deployment(PGconn *conn, const char *sandbox, const char *deployment,
					  bool force, bool wait, double timeout, PGresult **result)
{
	const char *params[3] = {sandbox, deployment, force ? "true" : "false"};
	PGresult   *res = nx_query(conn, "SELECT * FROM nx.promote($1, $2::bigint, $3::boolean)", 3, params);
	int			c_from = PQfnumber(res, "promote_from");
	char	   *target;
	int			rc;

	*result = res;
	if (PQgetvalue(res, 0, PQfnumber(res, "production"))[0] == 't' || c_from < 0 ||
		PQgetisnull(res, 0, c_from))
		return NX_EXIT_OK;
	target = strdup(PQgetvalue(res, 0, PQfnumber(res, "deployment")));
	if (!nx_global.json)
	{
		printf("deployment %s of sandbox %s has a database of its own: its binary starts on the production "
			   "database as deployment %s, which becomes production once ready\n",
			   PQgetvalue(res, 0, c_from), sandbox, target);
		fflush(stdout);
	}
	if (!wait)
	{
		free(target);
		return NX_EXIT_OK;
	}
	PQclear(res);
	*result = NULL;
	rc = nx_wait_deployment(conn, sandbox, target, timeout, true);
	if (rc == NX_EXIT_OK)
		*result = nx_status_row(conn, target);
	free(target);
	return rc;
}

/* cmd_promote: nx promote SANDBOX [DEPLOYMENT] [--force] [--no-wait] [--timeout S] */
int
cmd_promote(int argc, char **argv)
{
	bool		force = false;
	bool		wait = true;
	double		timeout = 60;
	const char *pos[2] = {NULL, NULL};
	int			n = 0;
	PGconn	   *conn;
	PGresult   *res;
	int			rc;

	for (int i = 1; i < argc; i++)
	{
		const char *v;

		if (nx_opt_global(argc, argv, &i, "promote"))
			continue;
		if (nx_opt_flag(argv, i, "--force"))
			force = true;
		else if (nx_opt_flag(argv, i, "--no-wait"))
			wait = false;
		else if (nx_opt_value(argc, argv, &i, "promote", "--timeout", &v))
			timeout = nx_parse_seconds("promote", "--timeout", v);
		else if (argv[i][0] == '-' && argv[i][1] != '\0')
			nx_reject_option("promote", argv[i]);
		else if (n == 2)
			nx_usage_error("promote", "too many arguments");
		else
			pos[n++] = argv[i];
	}
	if (n < 1)
		nx_usage_error("promote", "missing argument SANDBOX");
	nx_global.sandbox = pos[0];
	if (pos[1])
		nx_check_deployment_id("promote", pos[1]);
	conn = nx_connect();
	rc = nx_promote_deployment(conn, pos[0], pos[1], force, wait, timeout, &res);
	if (rc == NX_EXIT_OK)
		nx_print_deployment_row(res, PQgetvalue(res, 0, PQfnumber(res, "production"))[0] == 't'
								? "is production" : "becomes production once ready");
	nx_finish(conn, res);
	return rc;
}

/* cmd_rollback: nx rollback SANDBOX [--force] */
int
cmd_rollback(int argc, char **argv)
{
	bool		force = false;
	const char *params[2] = {NULL, NULL};
	int			n = nx_parse_positional(argc, argv, params, 1, &force);
	PGconn	   *conn;
	PGresult   *res;

	if (n < 1)
		nx_usage_error("rollback", "missing argument SANDBOX");
	nx_global.sandbox = params[0];
	params[1] = force ? "true" : "false";
	conn = nx_connect();
	res = nx_query(conn, "SELECT * FROM nx.rollback($1, $2::boolean)", 2, params);
	nx_print_deployment_row(res, "is production again");
	nx_finish(conn, res);
	return NX_EXIT_OK;
}
