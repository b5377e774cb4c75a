/*
 * control/nx/conn.c
 *	  The connection to the control database and running SQL on it.
 *
 * The connection comes from libpq's usual sources (PGHOST, PGPORT, PGUSER,
 * PGDATABASE, PGSERVICE, ~/.pgpass, ...), or from -d CONNSTR (a conninfo
 * string or a postgresql:// URI), which overrides them.  Every statement
 * goes through PQexecParams with the user's input as parameters; a failed
 * statement reports the server's message, DETAIL and HINT (errors.c,
 * hints.c) and exits 2.
 */
#include "nx.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * nx_connect opens the connection, or ends the run with exit 2 and a hint
 * on how nx finds the control database.
 */
PGconn *
nx_connect(void)
{
	const char *keywords[] = {"dbname", "fallback_application_name", "client_encoding", NULL};
	const char *values[] = {nx_global.connstr, "nx", nx_global.json ? "UTF8" : "auto", NULL};
	PGconn	   *conn = PQconnectdbParams(keywords, values, 1);

	if (conn == NULL)
	{
		nx_error("out of memory");
		nx_exit(NX_EXIT_SERVER);
	}
	if (PQstatus(conn) != CONNECTION_OK)
	{
		const char *msg = PQerrorMessage(conn);

		nx_error("cannot connect to the control database: %s", msg);
		/* libpq has no SQLSTATE for a failed connection: the class's own */
		nx_error_sqlstate("08001");
		if (strstr(msg, "database \"") && strstr(msg, "\" does not exist"))
			nx_detail("hint",
					  "connect to the database where CREATE EXTENSION nx_sandbox ran: -d 'dbname=NAME', "
					  "PGDATABASE=NAME, or PGSERVICE=NAME with a service in ~/.pg_service.conf "
					  "(see \"Connecting\" in docs/cli.md)");
		else
			nx_detail("hint",
					  "nx connects like psql: -d CONNSTR, PGSERVICE=NAME (a service in ~/.pg_service.conf), "
					  "or PGHOST, PGPORT, PGUSER, PGDATABASE (see \"Connecting\" in docs/cli.md)");
		PQfinish(conn);
		nx_exit(NX_EXIT_SERVER);
	}
	return conn;
}

/*
 * nx_report_pg_error makes the pending error of a failed statement (res)
 * or of the connection (res NULL or without a message): the server's
 * message, SQLSTATE, DETAIL and its HINT in CLI terms (hints.c).
 */
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
		if (PQstatus(conn) != CONNECTION_OK)
			nx_error_sqlstate("08006");	/* connection_failure */
		return;
	}
	nx_report_server_error(conn, PQresultErrorField(res, PG_DIAG_SQLSTATE), primary,
						   PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL),
						   PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
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
		nx_exit(NX_EXIT_SERVER);
	}
	return res;
}

PGresult *
nx_query(PGconn *conn, const char *sql, int nparams, const char *const *values)
{
	return nx_query_typed(conn, sql, nparams, NULL, values, NULL, NULL);
}

/*
 * nx_require_sandbox: fail like the server's functions do (same message
 * and SQLSTATE) when a read of a view names a sandbox the caller cannot
 * see: the views show only the caller's own rows.
 */
void
nx_require_sandbox(PGconn *conn, const char *sandbox)
{
	const char *params[1] = {sandbox};
	PGresult   *res = nx_query(conn, "SELECT 1 FROM nx.sandbox_info WHERE sandbox = $1", 1, params);

	if (PQntuples(res) == 0)
	{
		char		msg[128];

		snprintf(msg, sizeof(msg), "sandbox \"%.60s\" does not exist", sandbox);
		nx_report_server_error(conn, "42704", msg, NULL, NULL);
		PQclear(res);
		PQfinish(conn);
		nx_exit(NX_EXIT_SERVER);
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
