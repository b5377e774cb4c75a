/*
 * bench/promote_probe.c - promotion latency through nx-router, for
 * bench/promote_load.sh.  Promotes two deployments of one sandbox in turn
 * (nx.promote over libpq); after each promote has returned (committed) it
 * opens new connections to the router one after the other, each a
 * "GET / Connection: close" for the production host, until one is
 * answered by the promoted deployment (bench/httpapp.c names itself in
 * X-Deployment).  Latency = commit (PQexec returned) -> that answer read.
 * Any probe that does not get a 200 counts as a failure.
 *
 * Build: gcc -O2 -o promote_probe promote_probe.c -I$(pg_config --includedir) -lpq
 *
 * promote_probe -d CONNINFO -s SANDBOX -a DEP -b DEP -p PORT -H HOST
 *               [-n PROMOTES] [-i PAUSE_MS]
 *   One line per promote:
 *     promote i=N to=DEP call_ms=.. switch_ms=.. start_ms=.. probes=K old=J
 *   (start_ms: commit -> the start of the probe that reached the new
 *   deployment, so switch_ms - start_ms is that probe's own round trip;
 *   old: probes answered by the previous deployment), then
 *     summary n=N failed=F switch_median_ms=.. switch_p99_ms=.. switch_max_ms=..
 *             start_median_ms=.. start_p99_ms=.. call_median_ms=.. probes_total=..
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmpd(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

/* median of sorted v[0..n) */
static double
median(const double *v, int n)
{
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * probe makes one request on a new connection; returns the deployment
 * that answered (X-Deployment), or -1 when the answer was not a 200.
 */
static long
probe(int port, const char *host)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct timeval tv = {.tv_sec = 10};
	char		req[512],
				resp[4096];
	size_t		have = 0;
	int			fd = socket(AF_INET, SOCK_STREAM, 0),
				one = 1,
				n;
	const char *x;
	long		dep = -1;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host);
	if (connect(fd, (struct sockaddr *) &addr, sizeof(addr)) != 0 || write(fd, req, n) != n)
	{
		close(fd);
		return -1;
	}
	/* read until the end of the head (the body is 13 bytes, in the same packet) */
	while (have < sizeof(resp) - 1)
	{
		ssize_t		r = read(fd, resp + have, sizeof(resp) - 1 - have);

		if (r <= 0)
			break;
		have += r;
		resp[have] = '\0';
		if (strstr(resp, "\r\n\r\n"))
			break;
	}
	resp[have] = '\0';
	close(fd);
	if (strncmp(resp, "HTTP/1.1 200 ", 13) == 0 && (x = strstr(resp, "\r\nX-Deployment: ")) != NULL)
		dep = atol(x + 16);
	return dep;
}

int
main(int argc, char **argv)
{
	const char *conninfo = "",
			   *sandbox = NULL,
			   *host = NULL;
	long		deps[2] = {0, 0};
	int			port = 0,
				n = 20,
				pause_ms = 300,
				failed = 0,
				probes_total = 0,
				opt,
				i;
	double	   *sw,
			   *st,
			   *call;
	PGconn	   *c;

	while ((opt = getopt(argc, argv, "d:s:a:b:p:H:n:i:")) != -1)
	{
		switch (opt)
		{
			case 'd': conninfo = optarg; break;
			case 's': sandbox = optarg; break;
			case 'a': deps[0] = atol(optarg); break;
			case 'b': deps[1] = atol(optarg); break;
			case 'p': port = atoi(optarg); break;
			case 'H': host = optarg; break;
			case 'n': n = atoi(optarg); break;
			case 'i': pause_ms = atoi(optarg); break;
			default: return 2;
		}
	}
	if (!sandbox || !host || !port || !deps[0] || !deps[1] || n < 1)
	{
		fprintf(stderr, "usage: promote_probe -d CONNINFO -s SANDBOX -a DEP -b DEP -p PORT -H HOST [-n N] [-i MS]\n");
		return 2;
	}
	c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK)
	{
		fprintf(stderr, "promote_probe: %s", PQerrorMessage(c));
		return 1;
	}
	sw = calloc(n, sizeof(double));
	st = calloc(n, sizeof(double));
	call = calloc(n, sizeof(double));
	for (i = 0; i < n; i++)
	{
		long		to = deps[(i + 1) % 2];
		char		sql[256];
		const char *params[2];
		char		depstr[32];
		double		t0,
					t1,
					tp = 0;
		int			probes = 0,
					old = 0;
		PGresult   *r;

		snprintf(depstr, sizeof(depstr), "%ld", to);
		params[0] = sandbox;
		params[1] = depstr;
		snprintf(sql, sizeof(sql), "SELECT 1 FROM nx.promote($1, $2::bigint)");
		t0 = now_ms();
		r = PQexecParams(c, sql, 2, NULL, params, NULL, NULL, 0);
		t1 = now_ms();
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
		{
			fprintf(stderr, "promote_probe: %s", PQerrorMessage(c));
			return 1;
		}
		PQclear(r);
		for (;;)
		{
			long		got;

			tp = now_ms();
			got = probe(port, host);
			probes++;
			if (got == to)
				break;
			if (got < 0)
				failed++;
			else
				old++;
			if (now_ms() - t1 > 30000)
			{
				fprintf(stderr, "promote_probe: deployment %ld not reached 30 s after the promote\n", to);
				return 1;
			}
		}
		sw[i] = now_ms() - t1;
		st[i] = tp - t1;
		call[i] = t1 - t0;
		probes_total += probes;
		printf("promote i=%d to=%ld call_ms=%.2f switch_ms=%.2f start_ms=%.2f probes=%d old=%d\n",
			   i + 1, to, call[i], sw[i], st[i], probes, old);
		fflush(stdout);
		usleep(pause_ms * 1000);
	}
	PQfinish(c);
	qsort(sw, n, sizeof(double), cmpd);
	qsort(st, n, sizeof(double), cmpd);
	qsort(call, n, sizeof(double), cmpd);
	printf("summary n=%d failed=%d switch_median_ms=%.2f switch_p99_ms=%.2f switch_max_ms=%.2f "
		   "start_median_ms=%.2f start_p99_ms=%.2f call_median_ms=%.2f probes_total=%d\n",
		   n, failed, median(sw, n), sw[(int) (0.99 * n + 0.999999) - 1], sw[n - 1],
		   median(st, n), st[(int) (0.99 * n + 0.999999) - 1], median(call, n), probes_total);
	return 0;
}
