/*
 * control/nx/deploy.c
 *	  Moving production: nx promote, nx rollback (nx.promote, nx.rollback).
 *	  Starting and stopping deployments: lifecycle.c.
 */
#include "nx.h"

/* cmd_promote: nx promote SANDBOX [DEPLOYMENT] [--force] */
int
cmd_promote(int argc, char **argv)
{
	bool		force = false;
	const char *params[3] = {NULL, NULL, NULL};
	int			n = nx_parse_positional(argc, argv, params, 2, &force);
	PGconn	   *conn;
	PGresult   *res;

	if (n < 1)
		nx_usage_error("promote", "missing argument SANDBOX");
	nx_global.sandbox = params[0];
	if (params[1])
		nx_check_deployment_id("promote", params[1]);
	params[2] = force ? "true" : "false";
	conn = nx_connect();
	res = nx_query(conn, "SELECT * FROM nx.promote($1, $2::bigint, $3::boolean)", 3, params);
	nx_print_deployment_row(res, "is production");
	nx_finish(conn, res);
	return NX_EXIT_OK;
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
