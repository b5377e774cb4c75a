/*
 * control/nx/show.c
 *	  Reading state: nx ls (nx.sandbox_info), nx info (one sandbox, with
 *	  its domains), nx status (nx.status) and nx logs (nx.logs, optionally
 *	  followed).
 *
 * Following: nx.logs returns only the last N lines, with no position, so
 * -f re-reads a tail window of FOLLOW_WINDOW lines every 500 ms and prints
 * what follows the longest overlap between the previous window's end and
 * the new window's start.  Limitation (docs/cli.md): when more than the
 * window is written between two polls, lines in between are lost; when a
 * whole window consists of identical lines, new identical lines cannot be
 * told apart from old ones.
 */
#include "nx.h"

#include <stdlib.h>
#include <string.h>

#define FOLLOW_WINDOW 1000

/* cmd_ls: nx ls: your sandboxes (nx.sandbox_info) */
int
cmd_ls(int argc, char **argv)
{
	static const char *const cols[] = {"sandbox", "owner", "production_deployment",
		"production_url", "memory_limit", "pids_limit", "cpu_weight", "tmp_size",
	"idle_timeout"};
	PGconn	   *conn;
	PGresult   *res;

	for (int i = 1; i < argc; i++)
	{
		if (nx_opt_global(argc, argv, &i, "ls"))
			continue;
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			nx_reject_option("ls", argv[i]);
		nx_usage_error("ls", "too many arguments");
	}
	conn = nx_connect();
	res = nx_query(conn, "SELECT * FROM nx.sandbox_info ORDER BY sandbox", 0, NULL);
	if (nx_global.json)
		nx_json_rows(stdout, res);
	else
		nx_print_table(stdout, res, cols, sizeof(cols) / sizeof(cols[0]));
	nx_finish(conn, res);
	return NX_EXIT_OK;
}

/*
 * cmd_info: nx info SANDBOX: one sandbox, every column of nx.sandbox_info
 * (limits included) as "name: value" lines, then its custom domains.
 * JSON: the nx.sandbox_info row with "domains", its nx.domain_info rows.
 */
int
cmd_info(int argc, char **argv)
{
	const char *pos[1] = {NULL};
	int			n = nx_parse_positional(argc, argv, pos, 1, NULL);
	PGconn	   *conn;
	PGresult   *res;
	PGresult   *dom;

	if (n < 1)
		nx_usage_error("info", "missing argument SANDBOX");
	nx_global.sandbox = pos[0];
	conn = nx_connect();
	nx_require_sandbox(conn, pos[0]);
	res = nx_query(conn, "SELECT * FROM nx.sandbox_info WHERE sandbox = $1", 1, pos);
	dom = nx_query(conn, "SELECT * FROM nx.domain_info WHERE sandbox = $1 ORDER BY domain", 1, pos);
	if (PQntuples(res) != 1)
	{
		/* dropped between the two reads */
		PQclear(dom);
		nx_require_sandbox(conn, pos[0]);
	}
	if (nx_global.json)
	{
		fputc('{', stdout);
		for (int c = 0; c < PQnfields(res); c++)
		{
			nx_json_string(stdout, PQfname(res, c));
			fputs(": ", stdout);
			nx_json_value(stdout, res, 0, c);
			fputs(", ", stdout);
		}
		fputs("\"domains\": ", stdout);
		nx_json_rows(stdout, dom);
		fputs("}\n", stdout);
	}
	else
	{
		for (int c = 0; c < PQnfields(res); c++)
		{
			char		label[64];

			snprintf(label, sizeof(label), "%s:", PQfname(res, c));
			for (char *p = label; *p; p++)
				if (*p == '_')
					*p = ' ';
			printf("%-23s %s\n", label, PQgetvalue(res, 0, c));
		}
		for (int r = 0; r < PQntuples(dom); r++)
			printf("%-23s %s (%s)\n", r == 0 ? "domains:" : "",
				   PQgetvalue(dom, r, PQfnumber(dom, "domain")),
				   PQgetvalue(dom, r, PQfnumber(dom, "state")));
	}
	PQclear(dom);
	nx_finish(conn, res);
	return NX_EXIT_OK;
}

/* cmd_status: nx status [SANDBOX] */
int
cmd_status(int argc, char **argv)
{
	static const char *const cols[] = {"sandbox", "deployment", "label", "state",
		"desired_state", "production", "database_mode", "port", "restarts", "preview_url",
	"last_error"};
	const char *sandbox = NULL;
	PGconn	   *conn;
	PGresult   *res;

	for (int i = 1; i < argc; i++)
	{
		if (nx_opt_global(argc, argv, &i, "status"))
			continue;
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			nx_reject_option("status", argv[i]);
		if (sandbox)
			nx_usage_error("status", "too many arguments");
		sandbox = argv[i];
	}
	nx_global.sandbox = sandbox;
	conn = nx_connect();
	if (sandbox)
		nx_require_sandbox(conn, sandbox);
	{
		const char *params[1] = {sandbox};

		res = nx_query(conn,
					   "SELECT * FROM nx.status WHERE $1::text IS NULL OR sandbox = $1 "
					   "ORDER BY sandbox, deployment", 1, params);
	}
	if (nx_global.json)
		nx_json_rows(stdout, res);
	else
		nx_print_table(stdout, res, cols, sizeof(cols) / sizeof(cols[0]));
	nx_finish(conn, res);
	return NX_EXIT_OK;
}

/* print_line prints one log line: as it is, or as a JSON string */
static void
print_line(const char *line)
{
	if (nx_global.json)
	{
		nx_json_string(stdout, line);
		fputc('\n', stdout);
	}
	else
		printf("%s\n", line);
}

/* fetch_lines: the last n lines, copied (the caller frees them) */
static char **
fetch_lines(PGconn *conn, const char *sandbox, const char *deployment, int n, int *count)
{
	char		nlines[16];
	const char *params[3] = {sandbox, deployment, nlines};
	PGresult   *res;
	char	  **lines;

	snprintf(nlines, sizeof(nlines), "%d", n);
	res = nx_query(conn, "SELECT line FROM nx.logs($1, $2::bigint, $3::integer)", 3, params);
	*count = PQntuples(res);
	lines = calloc(*count + 1, sizeof(char *));
	for (int i = 0; i < *count; i++)
		lines[i] = strdup(PQgetvalue(res, i, 0));
	PQclear(res);
	return lines;
}

/* free_lines frees what fetch_lines returned */
static void
free_lines(char **lines, int n)
{
	for (int i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
}

/* overlap: the largest L with the last L of prev equal to the first L of cur */
static int
overlap(char **prev, int np, char **cur, int nc)
{
	for (int l = np < nc ? np : nc; l > 0; l--)
	{
		int			k;

		for (k = 0; k < l; k++)
			if (strcmp(prev[np - l + k], cur[k]) != 0)
				break;
		if (k == l)
			return l;
	}
	return 0;
}

/* cmd_logs: nx logs SANDBOX [DEPLOYMENT] [-n N] [-f] */
int
cmd_logs(int argc, char **argv)
{
	const char *pos[2] = {NULL, NULL};
	int			npos = 0;
	const char *nval = NULL;
	int			n = 100;
	bool		follow = false;
	PGconn	   *conn;

	for (int i = 1; i < argc; i++)
	{
		if (nx_opt_global(argc, argv, &i, "logs"))
			continue;
		if (nx_opt_value(argc, argv, &i, "logs", "-n", &nval) ||
			nx_opt_value(argc, argv, &i, "logs", "--lines", &nval))
		{
			n = (int) nx_parse_int("logs", "-n", nval, 1, 100000);
			continue;
		}
		if (nx_opt_flag(argv, i, "-f") || nx_opt_flag(argv, i, "--follow"))
		{
			follow = true;
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			nx_reject_option("logs", argv[i]);
		if (npos == 2)
			nx_usage_error("logs", "too many arguments");
		pos[npos++] = argv[i];
	}
	if (npos < 1)
		nx_usage_error("logs", "missing argument SANDBOX");
	nx_global.sandbox = pos[0];
	if (pos[1])
		nx_check_deployment_id("logs", pos[1]);
	conn = nx_connect();

	if (!follow)
	{
		int			count;
		char	  **lines = fetch_lines(conn, pos[0], pos[1], n, &count);

		if (nx_global.json)
		{
			fputc('[', stdout);
			for (int i = 0; i < count; i++)
			{
				fputs(i > 0 ? ",\n " : "\n ", stdout);
				nx_json_string(stdout, lines[i]);
			}
			fputs(count > 0 ? "\n]\n" : "]\n", stdout);
		}
		else
			for (int i = 0; i < count; i++)
				print_line(lines[i]);
		free_lines(lines, count);
		nx_finish(conn, NULL);
		return NX_EXIT_OK;
	}

	/* follow: pin the deployment nx.logs would pick now */
	{
		char	   *pinned = NULL;
		int			np;
		char	  **prev;
		int			window = n > FOLLOW_WINDOW ? n : FOLLOW_WINDOW;

		if (pos[1] == NULL)
		{
			const char *params[1] = {pos[0]};
			PGresult   *res;

			nx_require_sandbox(conn, pos[0]);
			res = nx_query(conn,
						   "SELECT deployment FROM nx.status WHERE sandbox = $1 "
						   "ORDER BY production DESC, deployment DESC LIMIT 1", 1, params);
			if (PQntuples(res) == 1)
				pinned = strdup(PQgetvalue(res, 0, 0));
			PQclear(res);
		}
		else
			pinned = strdup(pos[1]);

		prev = fetch_lines(conn, pos[0], pinned, window, &np);
		for (int i = np > n ? np - n : 0; i < np; i++)
			print_line(prev[i]);
		fflush(stdout);
		for (;;)
		{
			int			nc;
			char	  **cur;
			int			l;

			nx_sleep_ms(500);
			cur = fetch_lines(conn, pos[0], pinned, window, &nc);
			l = overlap(prev, np, cur, nc);
			for (int i = l; i < nc; i++)
				print_line(cur[i]);
			fflush(stdout);
			free_lines(prev, np);
			prev = cur;
			np = nc;
		}
	}
}
