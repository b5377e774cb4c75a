/*
 * control/nx/domains.c
 *	  Custom domains: nx domains ls | add | rm | check | approve
 *	  (nx.domain_info, nx.add_domain, nx.remove_domain, nx.check_domain,
 *	  nx.approve_domain).
 *
 * Glossary:
 *	  claim		a (domain, sandbox) row of nx.domain_info.  Adding a domain
 *				only claims it: it routes to the sandbox's production
 *				deployment once verified.
 *	  verified	proven by the DNS TXT record <txt_name> = "<txt_value>"
 *				(the supervisor looks for it), or approved by an nx_admin.
 *	  state		pending (not verified), verified, or taken (another
 *				sandbox's claim of the name was verified first).
 *
 * "nx domains rm SANDBOX DOMAIN" drops that sandbox's claim only
 * (nx.remove_domain(domain, sandbox)); without SANDBOX, every claim of the
 * caller on the name.
 */
#include "nx.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_CHECK_TIMEOUT 10.0

static const char *const actions[] = {"ls", "add", "rm", "check", "approve", NULL};

/* the SQL form of a domain as the server keeps it (for reads of nx.domain_info) */
#define NORMALISED "lower(rtrim(btrim($1), '.'))"

/* print_txt_record prints the DNS record that proves a claim */
static void
print_txt_record(const PGresult *res, int row)
{
	printf("  %s.  TXT  \"%s\"\n",
		   PQgetvalue(res, row, PQfnumber(res, "txt_name")),
		   PQgetvalue(res, row, PQfnumber(res, "txt_value")));
}

/*
 * print_claim prints one nx.domain_info row: JSON, or what it means
 * ("<verb> domain D for sandbox S: <state>", or "domain D of sandbox S:
 * <state>" without a verb) and what to do next.
 */
static void
print_claim(const PGresult *res, const char *verb)
{
	const char *domain = PQgetvalue(res, 0, PQfnumber(res, "domain"));
	const char *sandbox = PQgetvalue(res, 0, PQfnumber(res, "sandbox"));
	const char *state = PQgetvalue(res, 0, PQfnumber(res, "state"));
	const char *result = PQgetvalue(res, 0, PQfnumber(res, "check_result"));

	if (nx_global.json)
	{
		nx_json_row(stdout, res, 0);
		fputc('\n', stdout);
		return;
	}
	if (verb)
		printf("%s domain %s for sandbox %s: %s\n", verb, domain, sandbox, state);
	else
		printf("domain %s of sandbox %s: %s\n", domain, sandbox, state);
	if (strcmp(state, "verified") == 0)
	{
		printf("it routes to the production deployment of %s (verified by %s)\n", sandbox,
			   PQgetvalue(res, 0, PQfnumber(res, "verified_by")));
		return;
	}
	if (strcmp(state, "taken") == 0)
	{
		printf("another sandbox proved it first; it does not route here\n");
		return;
	}
	if (*result)
		printf("last check: %s\n", result);
	printf("it routes once verified: create this DNS record\n");
	print_txt_record(res, 0);
	printf("and point %s at the platform's router (A/AAAA or CNAME record).\n"
		   "the platform looks for the TXT record every 30 s in the first hour, then less often;\n"
		   "\"nx domains check %s %s\" looks now\n", domain, sandbox, domain);
}

/* domains_ls: nx domains ls [SANDBOX] */
static int
domains_ls(PGconn *conn, const char *sandbox)
{
	static const char *const cols[] = {"domain", "sandbox", "state", "verified_at",
	"checked_at", "check_result"};
	const char *params[1] = {sandbox};
	PGresult   *res;
	bool		pending = false;

	if (sandbox)
		nx_require_sandbox(conn, sandbox);
	res = nx_query(conn, "SELECT * FROM nx.domain_info WHERE $1::text IS NULL OR sandbox = $1 "
				   "ORDER BY domain, sandbox", 1, params);
	if (nx_global.json)
	{
		nx_json_rows(stdout, res);
		PQclear(res);
		return NX_EXIT_OK;
	}
	nx_print_table(stdout, res, cols, sizeof(cols) / sizeof(cols[0]));
	for (int r = 0; r < PQntuples(res); r++)
	{
		if (strcmp(PQgetvalue(res, r, PQfnumber(res, "state")), "pending") != 0)
			continue;
		if (!pending)
			printf("\npending domains route once these DNS TXT records exist:\n");
		pending = true;
		print_txt_record(res, r);
	}
	PQclear(res);
	return NX_EXIT_OK;
}

/*
 * require_claim: sandbox (one the caller may see) claims domain, else the
 * run ends with exit 2 and the error that says so.
 */
static void
require_claim(PGconn *conn, const char *sandbox, const char *domain)
{
	const char *params[2] = {domain, sandbox};
	PGresult   *res;

	nx_require_sandbox(conn, sandbox);
	res = nx_query(conn, "SELECT 1 FROM nx.domain_info WHERE domain = " NORMALISED " AND sandbox = $2",
				   2, params);
	if (PQntuples(res) == 0)
	{
		char		msg[512];

		snprintf(msg, sizeof(msg), "sandbox \"%s\" has not claimed domain \"%.253s\"", sandbox, domain);
		nx_report_server_error(conn, "42704", msg, NULL, NULL);
		nx_finish(conn, res);
		nx_exit(NX_EXIT_SERVER);
	}
	PQclear(res);
}

/* domains_rm: nx domains rm [SANDBOX] DOMAIN */
static int
domains_rm(PGconn *conn, const char *sandbox, const char *domain)
{
	const char *params[2] = {domain, sandbox};
	PGresult   *claims;
	PGresult   *res;

	if (sandbox)
		require_claim(conn, sandbox, domain);
	claims = nx_query(conn, "SELECT sandbox FROM nx.domain_info WHERE domain = " NORMALISED
					  " AND ($2::text IS NULL OR sandbox = $2) ORDER BY sandbox", 2, params);
	res = nx_query(conn, "SELECT nx.remove_domain($1, $2)", 2, params);
	if (nx_global.json)
	{
		printf("{\"domain\": ");
		nx_json_string(stdout, domain);
		printf(", \"removed_from\": [");
		for (int r = 0; r < PQntuples(claims); r++)
		{
			if (r > 0)
				printf(", ");
			nx_json_string(stdout, PQgetvalue(claims, r, 0));
		}
		printf("]}\n");
	}
	else
	{
		printf("domain %s removed", domain);
		for (int r = 0; r < PQntuples(claims); r++)
			printf("%s%s", r == 0 ? " from sandbox " : ", ", PQgetvalue(claims, r, 0));
		printf("\n");
	}
	PQclear(claims);
	PQclear(res);
	return NX_EXIT_OK;
}

/*
 * domains_check: nx domains check [SANDBOX] DOMAIN: ask for a lookup now,
 * then wait (up to timeout seconds) for the supervisor to record it.
 */
static int
domains_check(PGconn *conn, const char *sandbox, const char *domain, double timeout)
{
	const char *params[2] = {domain, sandbox};
	PGresult   *res;
	double		deadline = nx_now() + timeout;
	char	   *claim_sandbox;
	bool		looked;

	if (sandbox)
		require_claim(conn, sandbox, domain);
	res = nx_query(conn, "SELECT * FROM nx.check_domain($1, $2)", 2, params);
	claim_sandbox = strdup(PQgetvalue(res, 0, PQfnumber(res, "sandbox")));
	params[1] = sandbox ? sandbox : claim_sandbox;
	for (;;)
	{
		PQclear(res);
		res = nx_query(conn, "SELECT * FROM nx.domain_info WHERE domain = " NORMALISED " AND sandbox = $2",
					   2, params);
		if (PQntuples(res) == 0)
		{
			nx_error("domain \"%s\" is no longer claimed by sandbox \"%s\"", domain, params[1]);
			PQclear(res);
			free(claim_sandbox);
			return NX_EXIT_SERVER;
		}
		looked = strcmp(PQgetvalue(res, 0, PQfnumber(res, "state")), "pending") != 0 ||
			!PQgetisnull(res, 0, PQfnumber(res, "checked_at"));
		if (looked || nx_now() >= deadline)
			break;
		nx_sleep_ms(250);
	}
	if (!nx_global.json && !looked)
		printf("the platform has not looked the record up yet (waited %g s); \"nx domains ls\" shows the result later\n",
			   timeout);
	print_claim(res, NULL);
	PQclear(res);
	free(claim_sandbox);
	return NX_EXIT_OK;
}

/*
 * cmd_domains: nx domains [ls [SANDBOX]] | add SANDBOX DOMAIN |
 * rm [SANDBOX] DOMAIN | check [SANDBOX] DOMAIN [--timeout S] |
 * approve SANDBOX DOMAIN
 */
int
cmd_domains(int argc, char **argv)
{
	const char *pos[3] = {NULL, NULL, NULL};
	int			npos = 0;
	double		timeout = DEFAULT_CHECK_TIMEOUT;
	bool		timeout_given = false;
	const char *action;
	const char *sandbox = NULL;
	const char *domain = NULL;
	PGconn	   *conn;
	int			rc;

	for (int i = 1; i < argc; i++)
	{
		const char *v;

		if (nx_opt_global(argc, argv, &i, "domains"))
			continue;
		if (nx_opt_value(argc, argv, &i, "domains", "--timeout", &v))
		{
			char	   *end;

			timeout = strtod(v, &end);
			if (end == v || *end != '\0' || !(timeout >= 0 && timeout <= 3600))
				nx_usage_error("domains", "--timeout needs a number of seconds (0 to 3600), not \"%s\"", v);
			timeout_given = true;
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			nx_reject_option("domains", argv[i]);
		if (npos == 3)
			nx_usage_error("domains", "too many arguments");
		pos[npos++] = argv[i];
	}
	action = npos > 0 ? pos[0] : "ls";
	for (const char *const *a = actions; *a; a++)
		if (strcmp(*a, action) == 0)
			goto known;
	nx_unknown_word("domains", "action", action, actions, "ls, add, rm, check or approve");
known:
	if (timeout_given && strcmp(action, "check") != 0)
		nx_usage_error("domains", "--timeout goes with check only");
	if (strcmp(action, "ls") == 0)
	{
		if (npos > 2)
			nx_usage_error("domains", "ls takes one SANDBOX at most");
		sandbox = npos > 1 ? pos[1] : NULL;
	}
	else if (strcmp(action, "add") == 0 || strcmp(action, "approve") == 0)
	{
		if (npos < 3)
			nx_usage_error("domains", "%s needs SANDBOX DOMAIN", action);
		sandbox = pos[1];
		domain = pos[2];
	}
	else
	{
		/* rm, check: [SANDBOX] DOMAIN */
		if (npos < 2)
			nx_usage_error("domains", "%s needs [SANDBOX] DOMAIN", action);
		sandbox = npos == 3 ? pos[1] : NULL;
		domain = pos[npos - 1];
	}
	nx_global.sandbox = sandbox;

	conn = nx_connect();
	if (strcmp(action, "ls") == 0)
		rc = domains_ls(conn, sandbox);
	else if (strcmp(action, "add") == 0 || strcmp(action, "approve") == 0)
	{
		bool		add = strcmp(action, "add") == 0;
		const char *params[2] = {add ? sandbox : domain, add ? domain : sandbox};
		PGresult   *res = nx_query(conn, add ? "SELECT * FROM nx.add_domain($1, $2)"
								   : "SELECT * FROM nx.approve_domain($1, $2)", 2, params);

		print_claim(res, add ? "claimed" : "approved");
		PQclear(res);
		rc = NX_EXIT_OK;
	}
	else if (strcmp(action, "rm") == 0)
		rc = domains_rm(conn, sandbox, domain);
	else
		rc = domains_check(conn, sandbox, domain, timeout);
	nx_finish(conn, NULL);
	return rc;
}
