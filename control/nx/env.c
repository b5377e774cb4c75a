/*
 * control/nx/env.c
 *	  nx env SANDBOX list [--show] | set K=V | unset K: the variables every
 *	  deployment of a sandbox gets (nx.env, nx.set_env, nx.unset_env).
 *	  Values are secrets: list shows *** unless --show, and then the value
 *	  is not even fetched from the server.
 */
#include "nx.h"

#include <stdlib.h>
#include <string.h>

/* cmd_env: nx env SANDBOX list [--show] | set K=V | unset K */
int
cmd_env(int argc, char **argv)
{
	const char *pos[3] = {NULL, NULL, NULL};
	int			npos = 0;
	bool		show = false;
	PGconn	   *conn;
	PGresult   *res;

	for (int i = 1; i < argc; i++)
	{
		if (nx_opt_global(argc, argv, &i, "env"))
			continue;
		if (nx_opt_flag(argv, i, "--show"))
		{
			show = true;
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			nx_reject_option("env", argv[i]);
		if (npos == 3)
			nx_usage_error("env", "too many arguments");
		pos[npos++] = argv[i];
	}
	if (npos < 1)
		nx_usage_error("env", "missing argument SANDBOX");
	if (npos < 2)
		nx_usage_error("env", "missing action: list, set K=V or unset K");
	nx_global.sandbox = pos[0];

	if (strcmp(pos[1], "list") == 0 || strcmp(pos[1], "ls") == 0)
	{
		static const char *const cols[] = {"name", "value", "updated_by", "updated_at"};
		const char *params[2] = {pos[0], show ? "true" : "false"};

		if (npos > 2)
			nx_usage_error("env", "list takes no further argument");
		conn = nx_connect();
		nx_require_sandbox(conn, pos[0]);
		res = nx_query(conn,
					   "SELECT name, CASE WHEN $2::boolean THEN value ELSE '***' END AS value, "
					   "updated_by, updated_at FROM nx.env_vars WHERE sandbox = $1 ORDER BY name",
					   2, params);
		if (nx_global.json)
			nx_json_rows(stdout, res);
		else
			nx_print_table(stdout, res, cols, 4);
		nx_finish(conn, res);
		return NX_EXIT_OK;
	}
	if (show)
		nx_usage_error("env", "--show goes with list only");
	if (strcmp(pos[1], "set") == 0)
	{
		char	   *name;
		char	   *eq;
		const char *params[3];

		if (npos < 3)
			nx_usage_error("env", "set needs NAME=VALUE");
		name = strdup(pos[2]);
		eq = strchr(name, '=');
		if (eq == NULL || eq == name)
			nx_usage_error("env", "set needs NAME=VALUE, not \"%s\"", pos[2]);
		*eq = '\0';
		params[0] = pos[0];
		params[1] = name;
		params[2] = eq + 1;
		conn = nx_connect();
		res = nx_query(conn, "SELECT nx.set_env($1, $2, $3)", 3, params);
		if (nx_global.json)
		{
			printf("{\"sandbox\": ");
			nx_json_string(stdout, pos[0]);
			printf(", \"name\": ");
			nx_json_string(stdout, name);
			printf(", \"set\": true}\n");
		}
		else
			printf("set %s in sandbox %s (deployments get it at their next start)\n", name, pos[0]);
		free(name);
		nx_finish(conn, res);
		return NX_EXIT_OK;
	}
	if (strcmp(pos[1], "unset") == 0)
	{
		bool		was_set;

		if (npos < 3)
			nx_usage_error("env", "unset needs NAME");
		conn = nx_connect();
		{
			const char *params[2] = {pos[0], pos[2]};

			res = nx_query(conn, "SELECT nx.unset_env($1, $2)", 2, params);
		}
		was_set = PQgetvalue(res, 0, 0)[0] == 't';
		if (nx_global.json)
		{
			printf("{\"sandbox\": ");
			nx_json_string(stdout, pos[0]);
			printf(", \"name\": ");
			nx_json_string(stdout, pos[2]);
			printf(", \"was_set\": %s}\n", was_set ? "true" : "false");
		}
		else
			printf(was_set ? "unset %s in sandbox %s\n" : "%s was not set in sandbox %s\n",
				   pos[2], pos[0]);
		nx_finish(conn, res);
		return NX_EXIT_OK;
	}
	{
		static const char *const actions[] = {"list", "set", "unset", NULL};

		nx_unknown_word("env", "action", pos[1], actions, "list, set or unset");
	}
}
