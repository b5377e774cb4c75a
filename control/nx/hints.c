/*
 * control/nx/hints.c
 *	  Server errors in CLI terms: the SQL API's hints speak SQL ("force =>
 *	  true promotes it anyway", "nx.status lists yours"); a user of nx
 *	  wants "add --force", "run nx status".  Also the two errors whose
 *	  cause the server cannot know: a database without the nx_sandbox
 *	  extension (or with an older one), and a mistyped sandbox name.
 *
 * Glossary:
 *	  rule		 an SQLSTATE, a POSIX extended regular expression matched
 *				 against "<message>\n<server hint>", and the CLI hint it
 *				 gives.  The first matching rule wins; no rule: the server's
 *				 hint is shown as it is.
 *	  template	 the CLI hint, where $1..$9 are the regular expression's
 *				 groups and $S the sandbox the command acts on (or SANDBOX).
 *
 * Nothing is lost: the text output shows the CLI hint instead of the
 * server's, and JSON errors carry both ("hint" and "server_hint").
 */
#include "nx.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

typedef struct HintRule
{
	const char *sqlstate;
	const char *pattern;		/* against "<message>\n<server hint>" */
	const char *hint;			/* the CLI hint (template) */
} HintRule;

static const HintRule rules[] = {
	/* existence */
	{"42704", "^sandbox \"([^\"]*)\" does not exist",
	"\"nx ls\" lists your sandboxes; \"nx create $1\" creates it"},
	{"42704", "^deployment [0-9]+ does not exist",
	"\"nx status\" lists your deployments"},
	{"42704", "^deployment [0-9]+ is not a deployment of sandbox \"([^\"]*)\"",
	"\"nx status $1\" lists its deployments"},
	{"22023", "^deployment [0-9]+ is not a deployment of sandbox \"([^\"]*)\"",
	"\"nx status $1\" lists its deployments"},
	{"42704", "^sandbox \"([^\"]*)\" has no deployment\n",
	"push one first: \"nx push $1 FILE\""},
	{"42704", "^no kept database for sandbox",
	"\"nx db kept\" lists the kept databases of your dropped sandboxes"},
	{"42704", "^domain \"([^\"]*)\" does not exist\n.*add_domain",
	"claim it first: \"nx domains add $S $1\""},
	{"42704", "^domain \"([^\"]*)\" does not exist",
	"\"nx domains ls\" lists yours"},
	{"42704", "^sandbox \"([^\"]*)\" has not claimed domain \"([^\"]*)\"",
	"its owner claims it first: \"nx domains add $1 $2\""},

	/* the health gate of promote and rollback */
	{"55000", "^cannot promote deployment ([0-9]+): it is not ready.*nx\\.logs\\('([^']*)'",
	"wait until \"nx status $2\" shows deployment $1 ready (nx push waits for that); if it does not get there, see \"nx logs $2 $1\"; add --force to promote it anyway"},
	{"55000", "^cannot roll back to deployment ([0-9]+): it is not ready.*nx\\.logs\\('([^']*)'",
	"wait until \"nx status $2\" shows deployment $1 ready; if it does not get there, see \"nx logs $2 $1\"; add --force to roll back anyway"},
	{"55000", "^cannot promote deployment ([0-9]+): it is stopped",
	"start it (\"nx start $S $1\") and wait until \"nx status $S\" shows it ready, or add --force to promote it anyway"},
	{"55000", "^cannot roll back to deployment ([0-9]+): it is stopped",
	"start it (\"nx start $S $1\") and wait until \"nx status $S\" shows it ready, or add --force to roll back anyway"},
	{"55000", "^sandbox \"([^\"]*)\" has no deployment to promote",
	"push one first: \"nx push $1 FILE\""},
	{"55000", "^sandbox \"([^\"]*)\" has no earlier production deployment",
	"promote a deployment explicitly: \"nx promote $1 DEPLOYMENT\""},
	{"55000", "^cannot roll back sandbox \"([^\"]*)\": the previous production deployment",
	"promote a deployment explicitly: \"nx promote $1 DEPLOYMENT\""},
	{"55000", "^cannot remove deployment [0-9]+: it is the production deployment of sandbox \"([^\"]*)\"",
	"promote another deployment first (\"nx promote $1 DEPLOYMENT\" or \"nx rollback $1\"), or destroy the sandbox (\"nx destroy $1\")"},
	{"55000", "^cannot [a-z ]+ deployment [0-9]+: it was removed",
	"push the binary again (\"nx push $S FILE\") to get a new deployment"},

	/* quotas */
	{"53400", "^sandbox \"([^\"]*)\" already has [0-9]+ deployments with a database of their own",
	"remove previews you no longer need (\"nx status $1\" lists them, \"nx remove $1 DEPLOYMENT\" removes one), push with --database production, or ask an administrator to raise nx.max_branches_per_sandbox"},
	{"53400", "^cannot promote deployment [0-9]+ of sandbox \"([^\"]*)\": promoting a preview starts a new deployment",
	"remove a deployment you no longer need (\"nx remove $1 DEPLOYMENT\"), or ask an administrator to raise nx.max_deployments_per_sandbox"},
	{"54000", "^cannot branch the database of sandbox",
	"push with --database empty (an empty database of its own) or --database production (the production database itself), or ask an administrator to raise nx.max_branch_size"},
	{"53400", "^sandbox \"([^\"]*)\" already has [0-9]+ deployments",
	"remove old ones (\"nx status $1\" lists them, \"nx remove $1 DEPLOYMENT\" removes one), or ask an administrator to raise nx.max_deployments_per_sandbox"},
	{"53400", "^role \"[^\"]*\" already has [0-9]+ deployments",
	"remove old ones (\"nx status\" lists them, \"nx remove SANDBOX DEPLOYMENT\" removes one), or ask an administrator to raise nx.max_deployments_per_owner"},
	{"53400", "^no free port left",
	"remove unused deployments (\"nx remove SANDBOX DEPLOYMENT\"), or ask an administrator to widen nx.port_range"},
	{"53400", "^cannot create sandbox \"[^\"]*\": role \"[^\"]*\" already owns",
	"destroy sandboxes you no longer use (\"nx ls\" lists them, \"nx destroy SANDBOX\"), or ask an administrator to raise nx.max_sandboxes_per_owner"},
	{"53400", "^cannot create sandbox \"[^\"]*\": the cluster already holds",
	"destroy unused sandboxes (\"nx destroy SANDBOX\"), or ask an administrator to raise nx.max_sandboxes"},

	/* names and owners */
	{"42710", "^sandbox name \"([^\"]*)\" is not free: its database was kept",
	"choose another name; its owner can remove the kept database with \"nx db drop-kept $1\""},
	{"22023", "^role \"[^\"]*\" cannot own a sandbox",
	"own it yourself (leave out --owner), or create a team role for the people who share it (CREATE ROLE team; GRANT team TO alice, bob) and pass --owner team"},

	/* domains */
	{"23505", "^domain \"([^\"]*)\" is already in use",
	"if the domain is yours, ask an administrator to remove the other claim (\"nx domains rm $1\", run by a member of nx_admin)"},
	{"23505", "^domain \"([^\"]*)\" is already verified for another sandbox",
	"remove that claim first (\"nx domains rm SANDBOX $1\")"},
	{"42939", "^domain \"[^\"]*\" is under nx\\.domain",
	"every sandbox already has its own host there: \"nx info SANDBOX\" shows its production URL"},

	/* push */
	{"22023", "^invalid (preview_database|database) ",
	"use branch (a copy of the production database), empty, or production (the production database itself)"},
	{"22023", "^invalid binary name",
	"choose it with --name NAME (the file name in /app and argv[0]), e.g. --name busybox for a multi-call binary"},
	{"22023", "^argument [0-9]+ .* has a \\$ that does not start a variable",
	"write $$ for a literal $, and quote the argument with single quotes so that your shell passes $ through"},

	/* privileges */
	{"42501", "^permission denied for (schema|view|table|relation|function|sequence) ",
	"nx needs a role that is a member of nx_user (or nx_admin): ask an administrator for GRANT nx_user TO <your role>"},

	{"40001", "", "run the command again"},
	{NULL, NULL, NULL}
};

/* expand: the rule's template with $1..$9 and $S filled in */
static char *
expand(const char *tmpl, const char *subject, const regmatch_t *m, size_t nm)
{
	size_t		cap = strlen(tmpl) + 1;
	char	   *out;
	size_t		len = 0;

	/* room for every group of the subject wherever a $ appears */
	for (const char *p = tmpl; *p; p++)
		if (*p == '$')
			cap += strlen(subject) + (nx_global.sandbox ? strlen(nx_global.sandbox) : 0) + 8;
	out = malloc(cap);
	if (out == NULL)
		return NULL;
	for (const char *p = tmpl; *p; p++)
	{
		if (p[0] == '$' && p[1] >= '1' && p[1] <= '9' && (size_t) (p[1] - '0') < nm &&
			m[p[1] - '0'].rm_so >= 0)
		{
			const regmatch_t *g = &m[p[1] - '0'];

			memcpy(out + len, subject + g->rm_so, g->rm_eo - g->rm_so);
			len += g->rm_eo - g->rm_so;
			p++;
		}
		else if (p[0] == '$' && p[1] == 'S')
		{
			const char *s = nx_global.sandbox ? nx_global.sandbox : "SANDBOX";

			memcpy(out + len, s, strlen(s));
			len += strlen(s);
			p++;
		}
		else
			out[len++] = *p;
	}
	out[len] = '\0';
	return out;
}

/*
 * nx_cli_hint returns (malloc'd) the CLI hint for a server error, or NULL
 * when no rule knows it (then the server's hint stands).
 */
char *
nx_cli_hint(const char *sqlstate, const char *message, const char *server_hint)
{
	size_t		n = strlen(message) + (server_hint ? strlen(server_hint) : 0) + 2;
	char	   *subject = malloc(n);
	char	   *result = NULL;

	if (subject == NULL || sqlstate == NULL)
	{
		free(subject);
		return NULL;
	}
	snprintf(subject, n, "%s\n%s", message, server_hint ? server_hint : "");
	/* "memory_limit 8 MB is out of range": name the option that sets it */
	if (strcmp(sqlstate, "22023") == 0 && server_hint == NULL && strstr(message, " is out of range"))
		for (int k = 0; k < NX_NLIMITS; k++)
		{
			size_t		len = strlen(nx_limits[k].column);

			if (strncmp(message, nx_limits[k].column, len) == 0 && message[len] == ' ')
			{
				char		h[128];

				snprintf(h, sizeof(h), "give %s a value in that range", nx_limits[k].option);
				free(subject);
				return strdup(h);
			}
		}
	for (const HintRule *r = rules; r->sqlstate && result == NULL; r++)
	{
		regex_t		re;
		regmatch_t	m[10];

		if (strcmp(r->sqlstate, sqlstate) != 0)
			continue;
		if (regcomp(&re, r->pattern, REG_EXTENDED) != 0)
			continue;			/* a bad rule: t/030 would show it */
		if (regexec(&re, subject, 10, m, 0) == 0)
			result = expand(r->hint, subject, m, 10);
		regfree(&re);
	}
	free(subject);
	return result;
}

/* query_quietly runs a read that may fail (the error path must not fail) */
static PGresult *
query_quietly(PGconn *conn, const char *sql, int nparams, const char *const *values)
{
	PGresult   *res;

	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
		return NULL;
	res = PQexecParams(conn, sql, nparams, NULL, values, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		PQclear(res);
		return NULL;
	}
	return res;
}

/*
 * report_missing_schema: the statement named something of schema nx that
 * this database does not have.  Either the extension is not installed
 * here (a wrong database: say which one was reached and how to pick
 * another) or it is older than this client.  Returns false when neither
 * is the case, to report the error as it is.
 */
static bool
report_missing_schema(PGconn *conn, const char *sqlstate, const char *message)
{
	PGresult   *res = query_quietly(conn,
									"SELECT current_database(), current_user, "
									"(SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'nx_sandbox')",
									0, NULL);
	char		where[1024];
	bool		done = false;

	if (res == NULL || PQntuples(res) != 1)
	{
		PQclear(res);
		return false;
	}
	snprintf(where, sizeof(where), "connected to database \"%s\" as role \"%s\" (host %s, port %s)",
			 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
			 PQhost(conn) ? PQhost(conn) : "default", PQport(conn) ? PQport(conn) : "default");
	if (PQgetisnull(res, 0, 2))
	{
		nx_error("database \"%s\" is not an nx control database: it has no nx_sandbox extension",
				 PQgetvalue(res, 0, 0));
		nx_error_sqlstate(sqlstate);
		nx_detail("detail", message);
		nx_detail("detail", where);
		nx_detail("hint",
				  "connect to the database where CREATE EXTENSION nx_sandbox ran: -d 'dbname=NAME', "
				  "PGDATABASE=NAME, or PGSERVICE=NAME with a service in ~/.pg_service.conf "
				  "(see \"Connecting\" in docs/cli.md)");
		done = true;
	}
	else if (strcmp(PQgetvalue(res, 0, 2), NX_VERSION) != 0)
	{
		char		hint[512];

		nx_error("the nx_sandbox extension in database \"%s\" is version %s; this nx (%s) needs %s",
				 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 2), NX_VERSION, NX_VERSION);
		nx_error_sqlstate(sqlstate);
		nx_detail("detail", message);
		nx_detail("detail", where);
		snprintf(hint, sizeof(hint),
				 "an administrator updates it with ALTER EXTENSION nx_sandbox UPDATE; or use the nx client of version %s",
				 PQgetvalue(res, 0, 2));
		nx_detail("hint", hint);
		done = true;
	}
	PQclear(res);
	return done;
}

/*
 * sandbox_suggestion: "did you mean ..." for a sandbox name that does not
 * exist, from the caller's own sandboxes (nx.sandbox_info shows only
 * those, so nothing of other users' leaks).  NULL when none is close.
 */
static char *
sandbox_suggestion(PGconn *conn, const char *name)
{
	PGresult   *res = query_quietly(conn, "SELECT sandbox FROM nx.sandbox_info ORDER BY sandbox", 0, NULL);
	const char **names;
	char	   *s;

	if (res == NULL)
		return NULL;
	names = calloc(PQntuples(res) + 1, sizeof(char *));
	if (names == NULL)
	{
		PQclear(res);
		return NULL;
	}
	for (int i = 0; i < PQntuples(res); i++)
		names[i] = PQgetvalue(res, i, 0);
	s = nx_suggest(name, names);
	free(names);
	PQclear(res);
	return s;
}

/*
 * nx_report_server_error makes the pending error of a server error: the
 * message, SQLSTATE and DETAIL as the server sent them, the hint in CLI
 * terms (the server's kept as server_hint), and the special cases above.
 * conn may be used for a read that explains the error.
 */
void
nx_report_server_error(PGconn *conn, const char *sqlstate, const char *message,
					   const char *detail, const char *server_hint)
{
	char	   *hint;

	if (sqlstate && (strcmp(sqlstate, "42P01") == 0 || strcmp(sqlstate, "3F000") == 0 ||
					 strcmp(sqlstate, "42883") == 0) &&
		(strstr(message, "\"nx.") || strstr(message, " nx.") || strstr(message, "\"nx\"")) &&
		report_missing_schema(conn, sqlstate, message))
		return;

	nx_error("%s", message);
	nx_error_sqlstate(sqlstate);
	nx_detail("detail", detail);
	nx_detail("server_hint", server_hint);
	hint = nx_cli_hint(sqlstate, message, server_hint);
	if (hint && sqlstate && strcmp(sqlstate, "42704") == 0 &&
		strncmp(message, "sandbox \"", 9) == 0 && strstr(message, "\" does not exist"))
	{
		/* sandbox "<name>" does not exist: maybe a typo of one of yours */
		char	   *name = strdup(message + 9);
		char	   *q = name ? strchr(name, '"') : NULL;
		char	   *s;

		if (q)
		{
			*q = '\0';
			s = sandbox_suggestion(conn, name);
			if (s)
			{
				char	   *h = malloc(strlen(s) + strlen(hint) + 32);

				if (h)
				{
					sprintf(h, "did you mean %s?\n%s", s, hint);
					free(hint);
					hint = h;
				}
				free(s);
			}
		}
		free(name);
	}
	nx_detail("hint", hint);
	free(hint);
}
