/*
 * control/nx/limits.c
 *	  The per-sandbox limits (and the previews' default database) as
 *	  options: one table, read by nx create and nx alter (options, the SQL
 *	  arguments they become, when each takes effect).
 *
 * Glossary:
 *	  column	the argument of nx.create_sandbox / nx.alter_sandbox and the
 *				column of nx.sandbox_info that hold the limit.
 *	  at next start  the limit is applied when a deployment starts (cgroup,
 *				rlimits, /tmp mount): running deployments keep the old
 *				value until "nx restart".  Others apply at once, and the
 *				preview database to deployments pushed from then on.
 *
 * Values travel as parameters: sizes and intervals as text, parsed by the
 * server (pg_size_bytes, interval input: "512MB", "10min"); integers are
 * checked here so that "--pids lots" is a usage error before connecting.
 */
#include "nx.h"

#include <stdio.h>
#include <string.h>

const NxLimit nx_limits[NX_NLIMITS] = {
	{"--memory", NULL, "memory_limit", "text", NX_AT_NEXT_START, "memory"},
	{"--pids", NULL, "pids_limit", "integer", NX_AT_NEXT_START, "pids"},
	{"--open-files", NULL, "open_files_limit", "integer", NX_AT_NEXT_START, "open files"},
	{"--cpu-weight", NULL, "cpu_weight", "integer", NX_AT_NEXT_START, "cpu weight"},
	{"--tmp", "--tmp-size", "tmp_size", "text", NX_AT_NEXT_START, "/tmp size"},
	{"--idle-timeout", NULL, "idle_timeout", "interval", NX_AT_ONCE, "idle timeout"},
	{"--connection-limit", NULL, "connection_limit", "integer", NX_AT_ONCE, "connection limit"},
	{"--database-quota", NULL, "database_quota", "text", NX_AT_ONCE, "database quota"},
	{"--preview-database", NULL, "preview_database", "text", NX_AT_NEXT_PUSH, "preview database"},
};

/*
 * nx_opt_limit: if argv[*i] is a limit option, store its value in
 * values[k] (k its index in nx_limits), advance *i and return true.
 */
bool
nx_opt_limit(int argc, char **argv, int *i, const char *command, const char **values)
{
	for (int k = 0; k < NX_NLIMITS; k++)
	{
		const NxLimit *l = &nx_limits[k];
		const char *v;

		if (!nx_opt_value(argc, argv, i, command, l->option, &v) &&
			!(l->alias && nx_opt_value(argc, argv, i, command, l->alias, &v)))
			continue;
		if (strcmp(l->sqltype, "integer") == 0)
			nx_parse_int(command, l->option, v, 0, 2147483647);
		else if (*v == '\0')
			nx_usage_error(command, "%s needs a value", l->option);
		values[k] = v;
		return true;
	}
	return false;
}

/*
 * nx_limits_sql_args appends ", <column> => $<n>::<type>" for every limit
 * to buf, numbering the parameters from first_param on: the parameters
 * are then values[0..NX_NLIMITS-1] (NULL: not given).
 */
void
nx_limits_sql_args(char *buf, size_t size, int first_param)
{
	for (int k = 0; k < NX_NLIMITS; k++)
	{
		size_t		n = strlen(buf);

		snprintf(buf + n, size - n, ", %s => $%d::%s", nx_limits[k].column,
				 first_param + k, nx_limits[k].sqltype);
	}
}
