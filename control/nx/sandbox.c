/*
 * control/nx/sandbox.c
 *	  Sandboxes themselves: nx create SANDBOX [limits] [--owner ROLE],
 *	  nx alter SANDBOX limits, nx destroy SANDBOX [--keep-database]
 *	  (nx.create_sandbox, nx.alter_sandbox, nx.drop_sandbox).  The limit
 *	  options are the table in limits.c.
 */
#include "nx.h"

#include <stdio.h>
#include <string.h>

/* limit_options_listing: "--memory, --pids, ...", for a usage error of alter */
static const char *
limit_options_listing(void)
{
	static char buf[512];

	if (buf[0] == '\0')
		for (int k = 0; k < NX_NLIMITS; k++)
		{
			size_t		n = strlen(buf);

			snprintf(buf + n, sizeof(buf) - n, "%s%s", k ? ", " : "", nx_limits[k].option);
		}
	return buf;
}

/*
 * cmd_create: nx create SANDBOX [limits] [--owner ROLE].  Omitted limits
 * are the server's nx.default_* settings.
 */
int
cmd_create(int argc, char **argv)
{
	const char *name = NULL;
	const char *owner = NULL;
	const char *limits[NX_NLIMITS] = {NULL};
	const char *params[2 + NX_NLIMITS];
	char		sql[1024] = "SELECT * FROM nx.create_sandbox(name => $1, owner => $2::name";

	for (int i = 1; i < argc; i++)
	{
		if (nx_opt_global(argc, argv, &i, "create"))
			continue;
		if (nx_opt_limit(argc, argv, &i, "create", limits) ||
			nx_opt_value(argc, argv, &i, "create", "--owner", &owner))
			continue;
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			nx_reject_option("create", argv[i]);
		if (name)
			nx_usage_error("create", "too many arguments");
		name = argv[i];
	}
	if (name == NULL)
		nx_usage_error("create", "missing argument SANDBOX");
	nx_global.sandbox = name;
	params[0] = name;
	params[1] = owner;
	memcpy(params + 2, limits, sizeof(limits));
	nx_limits_sql_args(sql, sizeof(sql), 3);
	strcat(sql, ")");
	{
		PGconn	   *conn = nx_connect();
		PGresult   *res = nx_query(conn, sql, 2 + NX_NLIMITS, params);

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

/*
 * cmd_alter: nx alter SANDBOX [limits] (nx.alter_sandbox).  Prints each
 * limit that was given, old and new value, and when it takes effect.
 */
int
cmd_alter(int argc, char **argv)
{
	const char *name = NULL;
	const char *limits[NX_NLIMITS] = {NULL};
	const char *params[1 + NX_NLIMITS];
	char		sql[1024] = "SELECT * FROM nx.alter_sandbox(name => $1";
	bool		any = false;
	PGconn	   *conn;
	PGresult   *old;
	PGresult   *res;

	for (int i = 1; i < argc; i++)
	{
		if (nx_opt_global(argc, argv, &i, "alter"))
			continue;
		if (nx_opt_limit(argc, argv, &i, "alter", limits))
			continue;
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			nx_reject_option("alter", argv[i]);
		if (name)
			nx_usage_error("alter", "too many arguments");
		name = argv[i];
	}
	if (name == NULL)
		nx_usage_error("alter", "missing argument SANDBOX");
	for (int k = 0; k < NX_NLIMITS; k++)
		any |= limits[k] != NULL;
	if (!any)
		nx_usage_error("alter", "nothing to change: give one or more of %s", limit_options_listing());
	nx_global.sandbox = name;
	params[0] = name;
	memcpy(params + 1, limits, sizeof(limits));
	nx_limits_sql_args(sql, sizeof(sql), 2);
	strcat(sql, ")");

	conn = nx_connect();
	old = nx_query(conn, "SELECT * FROM nx.sandbox_info WHERE sandbox = $1", 1, params);
	res = nx_query(conn, sql, 1 + NX_NLIMITS, params);
	if (nx_global.json)
	{
		nx_json_row(stdout, res, 0);
		fputc('\n', stdout);
	}
	else
	{
		bool		later = false;

		printf("altered sandbox %s\n", name);
		for (int k = 0; k < NX_NLIMITS; k++)
		{
			const NxLimit *l = &nx_limits[k];
			int			c = PQfnumber(res, l->column);
			char		change[256];

			if (limits[k] == NULL || c < 0)
				continue;
			if (PQntuples(old) == 1 && PQfnumber(old, l->column) >= 0)
				snprintf(change, sizeof(change), "%s -> %s",
						 PQgetvalue(old, 0, PQfnumber(old, l->column)), PQgetvalue(res, 0, c));
			else
				snprintf(change, sizeof(change), "%s", PQgetvalue(res, 0, c));
			printf("  %-17s %-24s %s\n", l->label, change,
				   l->applies == NX_AT_NEXT_START ? "(at each deployment's next start)" :
				   l->applies == NX_AT_NEXT_PUSH ? "(for the next push)" : "(now)");
			later |= l->applies == NX_AT_NEXT_START;
		}
		if (later)
			printf("\"nx restart %s [DEPLOYMENT]\" applies the new limits to a running deployment now\n", name);
	}
	PQclear(old);
	nx_finish(conn, res);
	return NX_EXIT_OK;
}

/* cmd_destroy: nx destroy SANDBOX [--keep-database] (nx.drop_sandbox) */
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
	nx_global.sandbox = params[0];
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
			printf("  database nx_%s and its role are kept: \"nx db drop-kept %s\" removes them\n",
				   params[0], params[0]);
		nx_finish(conn, res);
	}
	return NX_EXIT_OK;
}
