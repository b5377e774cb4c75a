/*
 * control/nx/sandbox.c
 *	  nx create SANDBOX [limits] and nx destroy SANDBOX [--keep-database]
 *	  (nx.create_sandbox, nx.drop_sandbox).
 */
#include "nx.h"

#include <string.h>

int
cmd_create(int argc, char **argv)
{
	/* $1 name, $2 memory, $3 pids, $4 open files, $5 cpu weight, $6 tmp size,
	 * $7 idle timeout, $8 connection limit */
	const char *params[8] = {NULL};
	const char *v;

	for (int i = 1; i < argc; i++)
	{
		if (nx_opt_global(argc, argv, &i, "create"))
			continue;
		if (nx_opt_value(argc, argv, &i, "create", "--memory", &params[1]) ||
			nx_opt_value(argc, argv, &i, "create", "--tmp-size", &params[5]) ||
			nx_opt_value(argc, argv, &i, "create", "--idle-timeout", &params[6]))
			continue;
		if (nx_opt_value(argc, argv, &i, "create", "--pids", &v))
		{
			nx_parse_int("create", "--pids", v, 0, 2147483647);
			params[2] = v;
			continue;
		}
		if (nx_opt_value(argc, argv, &i, "create", "--open-files", &v))
		{
			nx_parse_int("create", "--open-files", v, 0, 2147483647);
			params[3] = v;
			continue;
		}
		if (nx_opt_value(argc, argv, &i, "create", "--cpu-weight", &v))
		{
			nx_parse_int("create", "--cpu-weight", v, 0, 2147483647);
			params[4] = v;
			continue;
		}
		if (nx_opt_value(argc, argv, &i, "create", "--connection-limit", &v))
		{
			nx_parse_int("create", "--connection-limit", v, 0, 2147483647);
			params[7] = v;
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			nx_reject_option("create", argv[i]);
		if (params[0])
			nx_usage_error("create", "too many arguments");
		params[0] = argv[i];
	}
	if (params[0] == NULL)
		nx_usage_error("create", "missing argument SANDBOX");
	{
		PGconn	   *conn = nx_connect();
		PGresult   *res = nx_query(conn,
								   "SELECT * FROM nx.create_sandbox($1, $2, $3::integer, $4::integer, "
								   "$5::integer, $6, $7::interval, $8::integer)", 8, params);

		if (nx_global.json)
		{
			nx_json_row(stdout, res, 0);
			fputc('\n', stdout);
		}
		else
			printf("created sandbox %s (database %s, memory %s, production URL %s)\n",
				   PQgetvalue(res, 0, PQfnumber(res, "sandbox")),
				   PQgetvalue(res, 0, PQfnumber(res, "database_name")),
				   PQgetvalue(res, 0, PQfnumber(res, "memory_limit")),
				   PQgetvalue(res, 0, PQfnumber(res, "production_url")));
		nx_finish(conn, res);
	}
	return NX_EXIT_OK;
}

int
cmd_destroy(int argc, char **argv)
{
	const char *params[2] = {NULL, "false"};

	for (int i = 1; i < argc; i++)
	{
		if (nx_opt_global(argc, argv, &i, "destroy"))
			continue;
		if (nx_opt_flag(argv, i, "--keep-database"))
		{
			params[1] = "true";
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			nx_reject_option("destroy", argv[i]);
		if (params[0])
			nx_usage_error("destroy", "too many arguments");
		params[0] = argv[i];
	}
	if (params[0] == NULL)
		nx_usage_error("destroy", "missing argument SANDBOX");
	{
		PGconn	   *conn = nx_connect();
		PGresult   *res = nx_query(conn, "SELECT nx.drop_sandbox($1, $2::boolean)", 2, params);
		bool		keep = strcmp(params[1], "true") == 0;

		if (nx_global.json)
		{
			printf("{\"sandbox\": ");
			nx_json_string(stdout, params[0]);
			printf(", \"destroyed\": true, \"database_kept\": %s}\n", keep ? "true" : "false");
		}
		else
			printf("destroyed sandbox %s\n", params[0]);
		if (!nx_global.json && keep)
			printf("  database nx_%s and its role are kept: nx.drop_kept_database('%s') removes them\n",
				   params[0], params[0]);
		nx_finish(conn, res);
	}
	return NX_EXIT_OK;
}
