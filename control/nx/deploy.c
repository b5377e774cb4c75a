/*
 * control/nx/deploy.c
 *	  Moving production and desired states: nx promote, nx rollback,
 *	  nx start / stop / restart.
 */
#include "nx.h"

#include <string.h>

/*
 * parse_positional collects up to max positional arguments; --force sets
 * *force when force is not NULL (promote, rollback) and is refused
 * otherwise.
 */
static int
parse_positional(int argc, char **argv, const char **pos, int max, bool *force)
{
	int			n = 0;

	for (int i = 1; i < argc; i++)
	{
		if (nx_opt_global(argc, argv, &i, argv[0]))
			continue;
		if (force && nx_opt_flag(argv, i, "--force"))
		{
			*force = true;
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			nx_reject_option(argv[0], argv[i]);
		if (n == max)
			nx_usage_error(argv[0], "too many arguments");
		pos[n++] = argv[i];
	}
	return n;
}

/* print_status_row prints one nx.status row: JSON, or a line of text. */
static void
print_status_row(PGresult *res, const char *verb)
{
	if (nx_global.json)
	{
		nx_json_row(stdout, res, 0);
		fputc('\n', stdout);
		return;
	}
	printf("deployment %s of sandbox %s %s (desired state %s, current state %s)\n",
		   PQgetvalue(res, 0, PQfnumber(res, "deployment")),
		   PQgetvalue(res, 0, PQfnumber(res, "sandbox")), verb,
		   PQgetvalue(res, 0, PQfnumber(res, "desired_state")),
		   PQgetvalue(res, 0, PQfnumber(res, "state")));
	if (PQgetvalue(res, 0, PQfnumber(res, "production"))[0] == 't')
		printf("production: %s\n", PQgetvalue(res, 0, PQfnumber(res, "production_url")));
}

int
cmd_promote(int argc, char **argv)
{
	bool		force = false;
	const char *params[3] = {NULL, NULL, NULL};
	int			n = parse_positional(argc, argv, params, 2, &force);
	PGconn	   *conn;
	PGresult   *res;

	if (n < 1)
		nx_usage_error("promote", "missing argument SANDBOX");
	if (params[1])
		nx_check_deployment_id("promote", params[1]);
	params[2] = force ? "true" : "false";
	conn = nx_connect();
	res = nx_query(conn, "SELECT * FROM nx.promote($1, $2::bigint, $3::boolean)", 3, params);
	print_status_row(res, "is production");
	nx_finish(conn, res);
	return NX_EXIT_OK;
}

int
cmd_rollback(int argc, char **argv)
{
	bool		force = false;
	const char *params[2] = {NULL, NULL};
	int			n = parse_positional(argc, argv, params, 1, &force);
	PGconn	   *conn;
	PGresult   *res;

	if (n < 1)
		nx_usage_error("rollback", "missing argument SANDBOX");
	params[1] = force ? "true" : "false";
	conn = nx_connect();
	res = nx_query(conn, "SELECT * FROM nx.rollback($1, $2::boolean)", 2, params);
	print_status_row(res, "is production again");
	nx_finish(conn, res);
	return NX_EXIT_OK;
}

/* cmd_start serves start, stop and restart (argv[0]). */
int
cmd_start(int argc, char **argv)
{
	const char *pos[1] = {NULL};
	int			n = parse_positional(argc, argv, pos, 1, NULL);
	const char *sql;
	const char *verb;
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
		nx_usage_error(argv[0], "missing argument DEPLOYMENT");
	nx_check_deployment_id(argv[0], pos[0]);
	conn = nx_connect();
	res = nx_query(conn, sql, 1, pos);
	print_status_row(res, verb);
	nx_finish(conn, res);
	return NX_EXIT_OK;
}
