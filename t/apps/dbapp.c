/*
 * t/apps/dbapp.c
 *	  The test suite's app: a dynamically linked C program (libpq) that
 *	  proves a deployment's database is next door.  At start it connects
 *	  with the environment nx_sandbox gives it (PG*, DATABASE_URL), creates
 *	  its table and records the start; then it serves HTTP on $PORT,
 *	  counting each request in the database and answering with the count.
 *	  With the argument "migrate" it first drops and recreates its visits
 *	  table, as a new version whose migration is destructive would.
 *
 * Build: gcc -O2 -o dbapp t/apps/dbapp.c -I$(pg_config --includedir) -lpq
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libpq-fe.h>

/* exec_or_die runs one statement; the app is useless without its database. */
static PGresult *
exec_or_die(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "dbapp: %s: %s", sql, PQerrorMessage(conn));
		exit(1);
	}
	return res;
}

int
main(int argc, char **argv)
{
	const char *port_env = getenv("PORT");
	const char *url = getenv("DATABASE_URL");
	PGconn	   *conn;
	struct sockaddr_in addr = {.sin_family = AF_INET};
	int			one = 1;
	int			lfd;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (port_env == NULL || url == NULL)
	{
		fprintf(stderr, "dbapp: PORT and DATABASE_URL must be set\n");
		return 2;
	}
	conn = PQconnectdb(url);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "dbapp: cannot connect: %s", PQerrorMessage(conn));
		return 1;
	}
	if (argc > 1 && strcmp(argv[1], "migrate") == 0)
		PQclear(exec_or_die(conn, "DROP TABLE IF EXISTS visits"));
	PQclear(exec_or_die(conn, "CREATE TABLE IF NOT EXISTS starts (at timestamptz DEFAULT now(), deployment text)"));
	PQclear(exec_or_die(conn, "CREATE TABLE IF NOT EXISTS visits (n bigserial, at timestamptz DEFAULT now())"));
	{
		const char *params[1] = {getenv("NX_DEPLOYMENT")};
		PGresult   *res = PQexecParams(conn, "INSERT INTO starts (deployment) VALUES ($1)",
									   1, NULL, params, NULL, NULL, 0);

		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			fprintf(stderr, "dbapp: insert: %s", PQerrorMessage(conn));
			return 1;
		}
		PQclear(res);
	}
	printf("dbapp: started as uid %d, database %s, user %s\n", (int) getuid(), PQdb(conn), PQuser(conn));

	addr.sin_port = htons(atoi(port_env));
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) < 0 || listen(lfd, 64) < 0)
	{
		perror("dbapp: listen");
		return 1;
	}
	printf("dbapp: listening on %s\n", port_env);
	for (;;)
	{
		char		buf[4096];
		char		body[128];
		char		response[512];
		int			cfd = accept(lfd, NULL, NULL);
		PGresult   *res;
		int			len;

		if (cfd < 0)
			continue;
		if (read(cfd, buf, sizeof(buf)) <= 0)
		{
			close(cfd);
			continue;
		}
		res = exec_or_die(conn, "INSERT INTO visits DEFAULT VALUES RETURNING n");
		len = snprintf(body, sizeof(body), "visit %s from deployment %s\n",
					   PQgetvalue(res, 0, 0), getenv("NX_DEPLOYMENT"));
		PQclear(res);
		len = snprintf(response, sizeof(response),
					   "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len, body);
		if (write(cfd, response, len) != len)
			perror("dbapp: write");
		close(cfd);
	}
}
