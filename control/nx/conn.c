/*
 * control/nx/conn.c
 *	  The connection to the control database and running SQL on it.
 *
 * The connection comes from libpq's usual sources (PGHOST, PGPORT, PGUSER,
 * PGDATABASE, PGSERVICE, ~/.pgpass, ...), or from -d CONNSTR (a conninfo
 * string or a postgresql:// URI), which overrides them.  Every statement
 * goes through PQexecParams with the user's input as parameters; a failed
 * statement prints the server's message, DETAIL and HINT and exits 2.
 */
#include "nx.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

PGconn *
nx_connect(void)
{
	const char *keywords[] = {"dbname", "fallback_application_name", "client_encoding", NULL};
	const char *values[] = {nx_global.connstr, "nx", nx_global.json ? "UTF8" : "auto", NULL};
	PGconn	   *conn = PQconnectdbParams(keywords, values, 1);

	if (conn == NULL)
	{
		nx_error("out of memory");
		exit(NX_EXIT_SERVER);
	}
	if (PQstatus(conn) != CONNECTION_OK)
	{
		nx_error("cannot connect to the control database: %s", PQerrorMessage(conn));
		PQfinish(conn);
		exit(NX_EXIT_SERVER);
	}
	return conn;
}

/* nx_report_pg_error prints the error line, then DETAIL and HINT. */
void
nx_report_pg_error(PGconn *conn, const PGresult *res)
{
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (primary == NULL)
	{
		const char *msg = PQerrorMessage(conn);

		if (strncmp(msg, "ERROR:  ", 8) == 0)
			msg += 8;
		nx_error("%s", *msg ? msg : "unknown error");
		return;
	}
	nx_error("%s", primary);
	nx_detail("detail", PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
	nx_detail("hint", PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
}

PGresult *
nx_query_typed(PGconn *conn, const char *sql, int nparams,
			   const unsigned int *types, const char *const *values,
			   const int *lengths, const int *formats)
{
	PGresult   *res = PQexecParams(conn, sql, nparams, types, values, lengths,
								   formats, 0);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
	{
		nx_report_pg_error(conn, res);
		PQclear(res);
		PQfinish(conn);
		exit(NX_EXIT_SERVER);
	}
	return res;
}

PGresult *
nx_query(PGconn *conn, const char *sql, int nparams, const char *const *values)
{
	return nx_query_typed(conn, sql, nparams, NULL, values, NULL, NULL);
}

/*
 * nx_require_sandbox: fail like the server's functions do when a read
 * (views and tables, filtered by row-level security) names a sandbox the
 * caller cannot see.
 */
void
nx_require_sandbox(PGconn *conn, const char *sandbox)
{
	const char *params[1] = {sandbox};
	PGresult   *res = nx_query(conn, "SELECT 1 FROM nx.sandbox_info WHERE sandbox = $1", 1, params);

	if (PQntuples(res) == 0)
	{
		nx_error("sandbox \"%s\" does not exist", sandbox);
		fprintf(stderr, "  hint: \"nx ls\" lists your sandboxes; \"nx create %s\" creates it\n", sandbox);
		PQclear(res);
		PQfinish(conn);
		exit(NX_EXIT_SERVER);
	}
	PQclear(res);
}

void
nx_finish(PGconn *conn, PGresult *res)
{
	if (res)
		PQclear(res);
	if (conn)
		PQfinish(conn);
}

void
nx_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0)
		;
}

double
nx_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}
