/*
 * bench/probe_cost.c
 *	  What one readiness probe of nx-init costs, both ways, side by side:
 *	  sock_diag (netlink, what nx-init uses) and /proc/net/tcp{,6} (what it
 *	  used before, now the fallback), with many TCP sockets open on the host.
 *
 *	  probe_cost [-n PROBES] [-c HOST_CONNECTIONS] [-r ROUNDS]
 *
 * It opens HOST_CONNECTIONS loopback TCP connections in its own network
 * namespace (2 sockets each, default 500: ~1,000 host sockets), then moves
 * into a fresh user + network namespace (as every sandbox has its own),
 * listens there on a port, and runs the two probes of src/init/listens.c
 * (the very code nx-init runs) PROBES times each, interleaved in ROUNDS
 * rounds.  It reports the median and p99 CPU time (user + system of this
 * thread) and wall time per probe, and the ratio.  Every probe must find
 * the listener; a probe for a port nobody listens on is measured too (what
 * nx-init does while the app starts up).
 *
 * Build: see bench/probe_cost.sh (compiled with listens.c, no PostgreSQL).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "nx_listens.h"

typedef struct Samples
{
	double	   *cpu_us;
	double	   *wall_us;
	int			n;
} Samples;

/* now_us returns the clock's time in microseconds. */
static double
now_us(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* cmp_double orders doubles for qsort. */
static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

/* pct returns the p-th percentile (0..100) of v[0..n-1] (sorts v). */
static double
pct(double *v, int n, double p)
{
	int			i;

	qsort(v, n, sizeof(double), cmp_double);
	i = (int) (p / 100.0 * (n - 1) + 0.5);
	return v[i];
}

/* open_host_sockets makes n connected loopback TCP pairs (kept open). */
static int
open_host_sockets(int n)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t	len = sizeof(a);
	int			l = socket(AF_INET, SOCK_STREAM, 0);
	int			made = 0;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l < 0 || bind(l, (struct sockaddr *) &a, sizeof(a)) < 0 ||
		listen(l, 4096) < 0 || getsockname(l, (struct sockaddr *) &a, &len) < 0)
	{
		perror("probe_cost: host listener");
		exit(2);
	}
	for (int i = 0; i < n; i++)
	{
		int			c = socket(AF_INET, SOCK_STREAM, 0);

		if (c < 0 || connect(c, (struct sockaddr *) &a, sizeof(a)) < 0)
			break;
		if (accept(l, NULL, NULL) < 0)
			break;
		made++;
	}
	return made;
}

/* listen_port listens on 0.0.0.0:any in the current namespace; its port. */
static int
listen_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t	len = sizeof(a);
	int			l = socket(AF_INET, SOCK_STREAM, 0);

	if (l < 0 || bind(l, (struct sockaddr *) &a, sizeof(a)) < 0 ||
		listen(l, 16) < 0 || getsockname(l, (struct sockaddr *) &a, &len) < 0)
	{
		perror("probe_cost: sandbox listener");
		exit(2);
	}
	return ntohs(a.sin_port);
}

/* report prints one line: median and p99 of CPU and wall time. */
static void
report(const char *what, Samples *s, double *cpu_p50)
{
	double		c50 = pct(s->cpu_us, s->n, 50),
				c99 = pct(s->cpu_us, s->n, 99),
				w50 = pct(s->wall_us, s->n, 50),
				w99 = pct(s->wall_us, s->n, 99);

	printf("%-34s %10.1f %10.1f %10.1f %10.1f\n", what, c50, c99, w50, w99);
	*cpu_p50 = c50;
}

/* measure runs one probe (way 0: sock_diag, 1: proc) and records it. */
static void
measure(int way, int diag_fd, int port, int expect, Samples *s)
{
	double		c0 = now_us(CLOCK_THREAD_CPUTIME_ID),
				w0 = now_us(CLOCK_MONOTONIC);
	int			r = way == 0 ? listens_diag(diag_fd, port) : listens_proc("/proc/net", port);

	s->cpu_us[s->n] = now_us(CLOCK_THREAD_CPUTIME_ID) - c0;
	s->wall_us[s->n] = now_us(CLOCK_MONOTONIC) - w0;
	s->n++;
	if (r != expect)
	{
		fprintf(stderr, "probe_cost: %s probe of port %d said %d, expected %d (%s)\n",
				way == 0 ? "sock_diag" : "proc", port, r, expect, strerror(errno));
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	int			probes = 1000,
				conns = 500,
				rounds = 10,
				opt,
				made,
				port,
				free_port,
				diag_fd;
	Samples		s[4];
	double		p50[4];
	struct rlimit rl = {.rlim_cur = 65536, .rlim_max = 65536};

	while ((opt = getopt(argc, argv, "n:c:r:")) != -1)
	{
		if (opt == 'n')
			probes = atoi(optarg);
		else if (opt == 'c')
			conns = atoi(optarg);
		else if (opt == 'r')
			rounds = atoi(optarg);
		else
		{
			fprintf(stderr, "usage: probe_cost [-n PROBES] [-c HOST_CONNECTIONS] [-r ROUNDS]\n");
			return 2;
		}
	}
	if (probes < rounds || rounds < 1)
		return 2;
	(void) setrlimit(RLIMIT_NOFILE, &rl);
	made = open_host_sockets(conns);

	/* a sandbox's own network namespace (user ns first: any uid may) */
	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
	{
		perror("probe_cost: unshare(CLONE_NEWUSER | CLONE_NEWNET)");
		return 2;
	}
	port = listen_port();
	free_port = port == 65535 ? port - 1 : port + 1;
	diag_fd = listens_diag_open();
	if (diag_fd < 0)
	{
		perror("probe_cost: sock_diag socket");
		return 2;
	}
	for (int i = 0; i < 4; i++)
	{
		s[i].cpu_us = calloc(probes, sizeof(double));
		s[i].wall_us = calloc(probes, sizeof(double));
		s[i].n = 0;
	}
	for (int r = 0; r < rounds; r++)
	{
		for (int i = 0; i < probes / rounds; i++)
		{
			measure(0, diag_fd, port, 1, &s[0]);
			measure(1, diag_fd, port, 1, &s[1]);
			measure(0, diag_fd, free_port, 0, &s[2]);
			measure(1, diag_fd, free_port, 0, &s[3]);
		}
	}
	printf("host TCP sockets opened: %d (%d connections + 1 listener); probes per case: %d\n",
		   2 * made + 1, made, s[0].n);
	printf("%-34s %10s %10s %10s %10s\n", "us per probe", "cpu p50", "cpu p99", "wall p50", "wall p99");
	report("sock_diag, app listening", &s[0], &p50[0]);
	report("/proc/net/tcp{,6}, app listening", &s[1], &p50[1]);
	report("sock_diag, not yet listening", &s[2], &p50[2]);
	report("/proc/net/tcp{,6}, not yet", &s[3], &p50[3]);
	printf("cpu p50 ratio proc/sock_diag: listening %.1fx, not yet listening %.1fx\n",
		   p50[1] / p50[0], p50[3] / p50[2]);
	return 0;
}
