/*
 * bench/select1app.c - SELECT 1 round trips over libpq, timed per query with
 * clock_gettime (like the baselines' pgconn -q), connecting with
 * $DATABASE_URL.  The same binary runs on the host and, pushed with
 * nx.push, inside a sandbox.
 *
 * Build: gcc -O2 -o select1app select1app.c -I$(pg_config --includedir) -lpq
 *
 * select1app [-n N] [-w WARM] [-d DELAY_MS] [-o]
 *   With $PORT set and no -o (as a deployment): listen on $PORT first (so
 *   the deployment becomes ready), wait DELAY_MS (default 500: let the
 *   start-up settle), run the loop, print the result line, then keep
 *   answering HTTP on $PORT until killed.
 *   With -o (on the host): run the loop, print the result line, exit.
 *   Result line (microseconds):
 *     select1 n=N median_us=.. p99_us=.. p90_us=.. min_us=.. max_us=.. mean_us=.. where=..
 *   where = $NX_DEPLOYMENT ("d<id>") inside a sandbox, else "host".
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int
cmpd(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

/* nearest-rank percentile of sorted v[0..n) */
static double
pct(const double *v, int n, double p)
{
	int			r = (int) (p * n + 0.999999) - 1;

	return v[r < 0 ? 0 : r];
}

static int
run_loop(int n, int warm)
{
	const char *url = getenv("DATABASE_URL");
	const char *dep = getenv("NX_DEPLOYMENT");
	PGconn	   *c;
	double	   *v = malloc(n * sizeof(double)),
				sum = 0;

	if (url == NULL)
	{
		fprintf(stderr, "select1app: DATABASE_URL is not set\n");
		return 2;
	}
	c = PQconnectdb(url);
	if (PQstatus(c) != CONNECTION_OK)
	{
		fprintf(stderr, "select1app: connect: %s", PQerrorMessage(c));
		return 1;
	}
	for (int i = -warm; i < n; i++)
	{
		double		t0 = now_us();
		PGresult   *r = PQexec(c, "SELECT 1");
		double		t1 = now_us();

		if (PQresultStatus(r) != PGRES_TUPLES_OK)
		{
			fprintf(stderr, "select1app: %s", PQerrorMessage(c));
			return 1;
		}
		PQclear(r);
		if (i >= 0)
			v[i] = t1 - t0;
	}
	PQfinish(c);
	qsort(v, n, sizeof(double), cmpd);
	for (int i = 0; i < n; i++)
		sum += v[i];
	printf("select1 n=%d median_us=%.1f p99_us=%.1f p90_us=%.1f min_us=%.1f max_us=%.1f mean_us=%.1f where=%s%s\n",
		   n, n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, pct(v, n, 0.99), pct(v, n, 0.90),
		   v[0], v[n - 1], sum / n, dep ? "d" : "", dep ? dep : "host");
	fflush(stdout);
	free(v);
	return 0;
}

int
main(int argc, char **argv)
{
	int			n = 50000,
				warm = 1000,
				delay_ms = 500,
				once = 0,
				opt,
				lfd = -1,
				rc;
	const char *port = getenv("PORT");

	while ((opt = getopt(argc, argv, "n:w:d:o")) != -1)
	{
		switch (opt)
		{
			case 'n': n = atoi(optarg); break;
			case 'w': warm = atoi(optarg); break;
			case 'd': delay_ms = atoi(optarg); break;
			case 'o': once = 1; break;
			default: return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (!once && port)
	{
		struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(port))};
		int			one = 1;

		lfd = socket(AF_INET, SOCK_STREAM, 0);
		if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
			bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) < 0 || listen(lfd, 16) < 0)
		{
			perror("select1app: listen");
			return 1;
		}
		usleep(delay_ms * 1000);
	}
	rc = run_loop(n, warm);
	if (once || lfd < 0)
		return rc;
	for (;;)
	{
		static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
		char		buf[4096];
		int			cfd = accept(lfd, NULL, NULL);

		if (cfd < 0)
			continue;
		if (read(cfd, buf, sizeof(buf)) > 0 && write(cfd, resp, sizeof(resp) - 1) < 0)
			perror("select1app: write");
		close(cfd);
	}
}
