/*
 * bench/nxbench.c - libpq driver for the nx_sandbox benchmarks.  One
 * connection, prepared statements, clock_gettime(CLOCK_MONOTONIC) around
 * everything; readiness is polled (LISTEN cannot tell readiness) every
 * -i microseconds (default 1000) on that one connection.
 *
 * Build: gcc -O2 -o nxbench nxbench.c -I$(pg_config --includedir) -lpq -lm
 *
 * nxbench push -d CONNINFO -s SANDBOX -b BINARY -m MODE [-n N] [-w W] [-i US]
 *              [-o RAWFILE] [-t TIMEOUT_S]
 *   N timed samples (after W untimed ones) of "deployment becomes ready":
 *     new      SELECT nx.push(sandbox, bytes) with bytes = BINARY plus a
 *              16-byte unique trailer (a new blob: stored, hashed, written
 *              to a file by the supervisor), then nx.remove + wait gone
 *     same     the same, always the same bytes (blob and file already exist)
 *     start    one deployment: nx.stop, wait 'stopped' (untimed), then
 *              SELECT nx.start(dep) until ready: the spawn-only path
 *     restart  one deployment: SELECT nx.restart(dep) until ready again with
 *              a new started_at (includes stopping the old process)
 *   Each sample is timed from just before the SQL call until a poll of
 *   nx.runtime (what nx.status.state shows) sees state = 'ready'.  One line
 *   per sample (times in ms from t0):
 *     mode total call launched supready internal t0_mono_us seen_mono_us
 *   total = seen by the poller; call = the SQL call returned; launched =
 *   nx.runtime.started_at (set when the supervisor's launch returned);
 *   supready = ready_at (the supervisor read "ready" from nx-init);
 *   internal = ready_at - started_at (the supervisor-internal figure).
 *
 * nxbench create -d CONNINFO -p PREFIX -n N [-B BURST] [-P POOL] [-K] [-i US]
 *              [-o RAWFILE] [-t TIMEOUT_S]
 *   N sandboxes PREFIX<k>, in groups of BURST created back to back (each
 *   its own transaction).  Before each group, when -P is given, wait until
 *   the supervisor's pool holds POOL databases and it has been quiet for
 *   100 ms.  Sample: just before SELECT nx.create_sandbox(name) until
 *   pg_database has nx_<name> owned by role nx_<name>.  Lines:
 *     create total call role   (role: -K only, when the roles were seen)
 *   -K ("kick"): once the group's roles exist, SELECT pg_reload_conf(),
 *   which wakes the supervisor for one more pass.  The supervisor creates a
 *   sandbox's role in one pass and its database only in a later one (see
 *   BENCHMARKS.md); this shows what an immediate second pass gives.
 *
 * nxbench until -d CONNINFO -q QUERY -e VALUE [-x STATEMENT] [-i US] [-t S]
 *   Run STATEMENT (timed), then QUERY until its first column is VALUE.
 *   Prints: exec_ms=.. elapsed_ms=.. t0_real_us=.. polls=.. last=..
 *
 * nxbench logwait -d CONNINFO -s SANDBOX -D DEP -g TEXT -c COUNT [-t S]
 *   Poll nx.logs(sandbox, dep) every 200 ms until COUNT lines contain TEXT;
 *   print the last such line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static PGconn *conn;
static long poll_us = 1000;
static double timeout_s = 60;

static double
clock_us(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}
#define mono_us() clock_us(CLOCK_MONOTONIC)
#define real_us() clock_us(CLOCK_REALTIME)

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	fprintf(stderr, "nxbench: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void
sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};

	nanosleep(&ts, NULL);
}

static void
prepare(const char *name, const char *sql, int nparams)
{
	PGresult   *r = PQprepare(conn, name, sql, nparams, NULL);

	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		die("prepare %s: %s", name, PQerrorMessage(conn));
	PQclear(r);
}

/* run a prepared statement with text parameters; die unless it returns rows */
static PGresult *
run(const char *name, int n, const char *const *vals)
{
	PGresult   *r = PQexecPrepared(conn, name, n, vals, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
		die("%s: %s", name, PQerrorMessage(conn));
	return r;
}

static PGresult *
run1(const char *name, const char *a)
{
	const char *v[1] = {a};

	return run(name, 1, v);
}

static void
connect_db(const char *conninfo)
{
	conn = PQconnectdb(conninfo);
	if (PQstatus(conn) != CONNECTION_OK)
		die("connect: %s", PQerrorMessage(conn));
}

/* ---------------------------------------------------------------- push -- */

typedef struct Sample
{
	double		t0,
				call,
				seen;			/* mono us */
	double		started,
				ready;			/* mono us (converted from the row's realtime) */
} Sample;

/* realtime minus monotonic, to place timestamptz values on the mono axis */
static double
real_minus_mono(void)
{
	double		a = real_us(),
				m = mono_us(),
				b = real_us();

	return (a + b) / 2 - m;
}

/* the deployment's nx.runtime row: state, started_at, ready_at (epoch us) */
static char *
runtime_row(const char *dep, int64_t *started, int64_t *ready, char *err, size_t errlen)
{
	static char state[32];
	PGresult   *r = run1("rt", dep);

	state[0] = '\0';
	*started = *ready = 0;
	if (PQntuples(r) == 1)
	{
		snprintf(state, sizeof(state), "%s", PQgetvalue(r, 0, 0));
		if (!PQgetisnull(r, 0, 1))
			*started = atoll(PQgetvalue(r, 0, 1));
		if (!PQgetisnull(r, 0, 2))
			*ready = atoll(PQgetvalue(r, 0, 2));
		snprintf(err, errlen, "%s", PQgetvalue(r, 0, 3));
	}
	PQclear(r);
	return state;
}

static void
print_logs(const char *sandbox, const char *dep)
{
	const char *v[2] = {sandbox, dep};
	PGresult   *r = PQexecParams(conn, "SELECT line FROM nx.logs($1, $2::bigint, 20)", 2, NULL, v, NULL, NULL, 0);

	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		for (int i = 0; i < PQntuples(r); i++)
			fprintf(stderr, "  log: %s\n", PQgetvalue(r, i, 0));
	PQclear(r);
}

/*
 * Poll until dep is 'ready' (with started_at != not_started when that is
 * non-zero); fill s->seen, started, ready.
 */
static void
wait_ready(const char *sandbox, const char *dep, int64_t not_started, Sample *s)
{
	char		err[512];

	for (;;)
	{
		int64_t		started,
					ready;
		const char *state = runtime_row(dep, &started, &ready, err, sizeof(err));
		double		now = mono_us();

		if (strcmp(state, "ready") == 0 && (not_started == 0 || started != not_started))
		{
			double		off = real_minus_mono();

			s->seen = now;
			s->started = started - off;
			s->ready = ready - off;
			return;
		}
		if (strcmp(state, "failed") == 0 || strcmp(state, "crashloop") == 0 ||
			strcmp(state, "crashed") == 0)
		{
			print_logs(sandbox, dep);
			die("deployment %s is %s: %s", dep, state, err);
		}
		if (now - s->t0 > timeout_s * 1e6)
		{
			print_logs(sandbox, dep);
			die("deployment %s not ready after %.0f s (state %s: %s)", dep, timeout_s, state, err);
		}
		sleep_us(poll_us);
	}
}

/*
 * poll until the deployment's runtime row says state; "stopped" also
 * accepts no row (a removed deployment's row goes at the next pass)
 */
static void
wait_state(const char *dep, const char *state)
{
	double		t0 = mono_us();
	char		err[512];

	for (;;)
	{
		int64_t		a,
					b;
		const char *st = runtime_row(dep, &a, &b, err, sizeof(err));

		if (strcmp(st, state) == 0 || (strcmp(state, "stopped") == 0 && st[0] == '\0'))
			return;
		if (mono_us() - t0 > timeout_s * 1e6)
			die("deployment %s: still '%s' after %.0f s, wanted %s", dep, st, timeout_s, state);
		sleep_us(2000);
	}
}

static char *
read_file(const char *path, size_t *len, size_t extra)
{
	int			fd = open(path, O_RDONLY);
	struct stat st;
	char	   *buf;
	size_t		got = 0;

	if (fd < 0 || fstat(fd, &st) != 0)
		die("%s: %s", path, strerror(errno));
	buf = malloc(st.st_size + extra);
	while (got < (size_t) st.st_size)
	{
		ssize_t		n = read(fd, buf + got, st.st_size - got);

		if (n <= 0)
			die("read %s: %s", path, strerror(errno));
		got += n;
	}
	close(fd);
	*len = got;
	return buf;
}

/* SELECT deployment FROM nx.push($1, $2) with $2 sent as binary bytea */
static char *
do_push(const char *sandbox, const char *bytes, size_t len)
{
	static char dep[32];
	const char *v[2] = {sandbox, bytes};
	int			lens[2] = {0, (int) len};
	int			fmts[2] = {0, 1};
	PGresult   *r = PQexecPrepared(conn, "push", 2, v, lens, fmts, 0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		die("nx.push: %s", PQerrorMessage(conn));
	snprintf(dep, sizeof(dep), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return dep;
}

static int
cmd_push(const char *sandbox, const char *binary, const char *mode, int n, int warm, const char *raw)
{
	size_t		len;
	char	   *bytes = read_file(binary, &len, 16);
	char		dep[32] = "";
	FILE	   *out = raw ? fopen(raw, "a") : stdout;
	int			is_new = strcmp(mode, "new") == 0,
				is_same = strcmp(mode, "same") == 0,
				is_start = strcmp(mode, "start") == 0,
				is_restart = strcmp(mode, "restart") == 0;
	static unsigned long long uniq;

	if (!out)
		die("%s: %s", raw, strerror(errno));
	if (!is_new && !is_same && !is_start && !is_restart)
		die("unknown mode %s", mode);
	uniq = ((unsigned long long) getpid() << 32) ^ (unsigned long long) real_us();
	prepare("push", "SELECT deployment FROM nx.push($1, $2)", 2);
	prepare("rt", "SELECT state, (extract(epoch FROM started_at) * 1000000)::int8, "
			"(extract(epoch FROM ready_at) * 1000000)::int8, coalesce(last_error, '') "
			"FROM nx.runtime WHERE deployment = $1", 1);
	prepare("remove", "SELECT 1 FROM nx.remove($1)", 1);
	prepare("stop", "SELECT deployment FROM nx.stop($1)", 1);
	prepare("start", "SELECT deployment FROM nx.start($1)", 1);
	prepare("restart", "SELECT deployment FROM nx.restart($1)", 1);

	if (is_start || is_restart)
	{
		Sample		s;

		s.t0 = mono_us();
		snprintf(dep, sizeof(dep), "%s", do_push(sandbox, bytes, len));
		wait_ready(sandbox, dep, 0, &s);
	}
	for (int i = -warm; i < n; i++)
	{
		Sample		s;
		int64_t		old_started = 0,
					x;
		char		err[512];

		if (is_start)
		{
			PQclear(run1("stop", dep));
			wait_state(dep, "stopped");
		}
		if (is_restart)
			runtime_row(dep, &old_started, &x, err, sizeof(err));
		if (is_new)
		{
			uniq++;
			memcpy(bytes + len, "NXBENCH\0", 8);
			memcpy(bytes + len + 8, &uniq, 8);
		}

		s.t0 = mono_us();
		if (is_new || is_same)
			snprintf(dep, sizeof(dep), "%s", do_push(sandbox, bytes, is_new ? len + 16 : len));
		else
			PQclear(run1(is_start ? "start" : "restart", dep));
		s.call = mono_us();
		wait_ready(sandbox, dep, old_started, &s);

		if (i >= 0)
			fprintf(out, "%s\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.0f\t%.0f\n", mode,
					(s.seen - s.t0) / 1e3, (s.call - s.t0) / 1e3, (s.started - s.t0) / 1e3,
					(s.ready - s.t0) / 1e3, (s.ready - s.started) / 1e3, s.t0, s.seen);
		fflush(out);
		if (is_new || is_same)
		{
			/* its sandbox is gone (cgroup removed) once it reads 'stopped' */
			PQclear(run1("remove", dep));
			wait_state(dep, "stopped");
		}
	}
	if (is_start || is_restart)
	{
		PQclear(run1("remove", dep));
		wait_state(dep, "stopped");
	}
	if (raw)
		fclose(out);
	return 0;
}

/* -------------------------------------------------------------- create -- */

static void
wait_pool(int pool)
{
	char		want[16];
	double		t0 = mono_us(),
				quiet_since = 0;

	snprintf(want, sizeof(want), "%d", pool);
	for (;;)
	{
		PGresult   *r = run("pool", 0, NULL);
		int			ok = strcmp(PQgetvalue(r, 0, 0), want) == 0;

		PQclear(r);
		if (!ok)
			quiet_since = 0;
		else if (quiet_since == 0)
			quiet_since = mono_us();
		else if (mono_us() - quiet_since > 100000)
			return;
		if (mono_us() - t0 > timeout_s * 1e6)
			die("pool did not reach %d databases in %.0f s", pool, timeout_s);
		sleep_us(5000);
	}
}

static int
cmd_create(const char *prefix, int n, int burst, int pool, int kick, const char *raw)
{
	FILE	   *out = raw ? fopen(raw, "a") : stdout;
	char	  **names = calloc(burst, sizeof(char *));
	double	   *t0 = calloc(burst, sizeof(double)),
			   *call = calloc(burst, sizeof(double)),
			   *seen = calloc(burst, sizeof(double));
	double		roles_seen = 0;
	int			k = 0;

	if (!out)
		die("%s: %s", raw, strerror(errno));
	prepare("create", "SELECT sandbox FROM nx.create_sandbox($1)", 1);
	prepare("ready", "SELECT d.datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
			"AND r.rolname = d.datname WHERE d.datname = ANY ($1::name[])", 1);
	prepare("pool", "SELECT count(*) FROM pg_database WHERE datname ~ '^nx_pool_[0-9]+_[0-9]+$' AND datdba = 10", 0);
	prepare("roles", "SELECT count(*) FROM pg_roles WHERE rolname = ANY ($1::name[])", 1);
	prepare("kick", "SELECT pg_reload_conf()", 0);
	for (int i = 0; i < burst; i++)
		names[i] = malloc(80);
	while (k < n)
	{
		int			b = burst < n - k ? burst : n - k,
					left = b;
		char		arr[8192];
		size_t		al = 0;

		if (pool >= 0)
			wait_pool(pool);
		al += snprintf(arr + al, sizeof(arr) - al, "{");
		for (int i = 0; i < b; i++)
		{
			snprintf(names[i], 80, "%s%d", prefix, k + i);
			al += snprintf(arr + al, sizeof(arr) - al, "%snx_%s", i ? "," : "", names[i]);
			seen[i] = 0;
		}
		snprintf(arr + al, sizeof(arr) - al, "}");
		for (int i = 0; i < b; i++)
		{
			t0[i] = mono_us();
			PQclear(run1("create", names[i]));
			call[i] = mono_us();
		}
		if (kick)
		{
			/* wait for the roles (first pass), then wake the supervisor again */
			char		want[16];

			snprintf(want, sizeof(want), "%d", b);
			for (;;)
			{
				PGresult   *r = run1("roles", arr);
				int			done = strcmp(PQgetvalue(r, 0, 0), want) == 0;

				PQclear(r);
				if (done)
				{
					roles_seen = mono_us();
					break;
				}
				if (mono_us() - t0[0] > timeout_s * 1e6)
					die("roles not created after %.0f s", timeout_s);
				sleep_us(poll_us);
			}
			PQclear(run("kick", 0, NULL));
		}
		while (left > 0)
		{
			PGresult   *r = run1("ready", arr);
			double		now = mono_us();

			for (int j = 0; j < PQntuples(r); j++)
				for (int i = 0; i < b; i++)
				{
					char		db[90];

					snprintf(db, sizeof(db), "nx_%s", names[i]);
					if (seen[i] == 0 && strcmp(PQgetvalue(r, j, 0), db) == 0)
					{
						seen[i] = now;
						left--;
					}
				}
			PQclear(r);
			if (left > 0)
			{
				if (now - t0[0] > timeout_s * 1e6)
					die("%d of %d databases not ready after %.0f s", left, b, timeout_s);
				sleep_us(poll_us);
			}
		}
		for (int i = 0; i < b; i++)
			fprintf(out, "%s\t%.3f\t%.3f\t%.3f\n", kick ? "create+kick" : "create", (seen[i] - t0[i]) / 1e3,
					(call[i] - t0[i]) / 1e3, kick ? (roles_seen - t0[i]) / 1e3 : 0.0);
		fflush(out);
		k += b;
	}
	if (raw)
		fclose(out);
	return 0;
}

/* --------------------------------------------------------------- until -- */

static int
cmd_until(const char *stmt, const char *query, const char *value)
{
	double		t0,
				t1,
				now;
	double		t0_real = real_us();
	long		polls = 0;
	char		last[256] = "";

	t0 = mono_us();
	if (stmt)
	{
		PGresult   *r = PQexec(conn, stmt);

		if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
			die("%s: %s", stmt, PQerrorMessage(conn));
		PQclear(r);
	}
	t1 = mono_us();
	for (;;)
	{
		PGresult   *r = PQexec(conn, query);

		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			die("%s: %s", query, PQerrorMessage(conn));
		polls++;
		now = mono_us();
		snprintf(last, sizeof(last), "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
		PQclear(r);
		if (strcmp(last, value) == 0)
			break;
		if (now - t0 > timeout_s * 1e6)
		{
			printf("exec_ms=%.3f elapsed_ms=TIMEOUT t0_real_us=%.0f polls=%ld last=%s\n",
				   (t1 - t0) / 1e3, t0_real, polls, last);
			return 3;
		}
		sleep_us(poll_us);
	}
	printf("exec_ms=%.3f elapsed_ms=%.3f t0_real_us=%.0f polls=%ld last=%s\n",
		   (t1 - t0) / 1e3, (now - t0) / 1e3, t0_real, polls, last);
	return 0;
}

/* ------------------------------------------------------------- logwait -- */

static int
cmd_logwait(const char *sandbox, const char *dep, const char *text, int count)
{
	double		t0 = mono_us();
	const char *v[2] = {sandbox, dep};

	for (;;)
	{
		PGresult   *r = PQexecParams(conn, "SELECT line FROM nx.logs($1, $2::bigint, 2000)", 2, NULL, v, NULL, NULL, 0);
		int			hits = 0;
		const char *last = NULL;

		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			die("nx.logs: %s", PQerrorMessage(conn));
		for (int i = 0; i < PQntuples(r); i++)
			if (strstr(PQgetvalue(r, i, 0), text))
			{
				hits++;
				last = PQgetvalue(r, i, 0);
			}
		if (hits >= count)
		{
			printf("%s\n", last);
			PQclear(r);
			return 0;
		}
		PQclear(r);
		if (mono_us() - t0 > timeout_s * 1e6)
		{
			print_logs(sandbox, dep);
			die("no %d lines with \"%s\" in the logs of deployment %s after %.0f s", count, text, dep, timeout_s);
		}
		sleep_us(200000);
	}
}

int
main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "",
			   *conninfo = NULL,
			   *sandbox = NULL,
			   *binary = NULL,
			   *pmode = NULL,
			   *raw = NULL,
			   *prefix = NULL,
			   *query = NULL,
			   *value = NULL,
			   *stmt = NULL,
			   *dep = NULL,
			   *text = NULL;
	int			n = 100,
				warm = 2,
				burst = 1,
				pool = -1,
				count = 1,
				kick = 0,
				opt;

	optind = 2;
	while ((opt = getopt(argc, argv, "d:s:b:m:n:w:i:o:t:p:B:P:q:e:x:D:g:c:K")) != -1)
	{
		switch (opt)
		{
			case 'd': conninfo = optarg; break;
			case 's': sandbox = optarg; break;
			case 'b': binary = optarg; break;
			case 'm': pmode = optarg; break;
			case 'n': n = atoi(optarg); break;
			case 'w': warm = atoi(optarg); break;
			case 'i': poll_us = atol(optarg); break;
			case 'o': raw = optarg; break;
			case 't': timeout_s = atof(optarg); break;
			case 'p': prefix = optarg; break;
			case 'B': burst = atoi(optarg); break;
			case 'P': pool = atoi(optarg); break;
			case 'q': query = optarg; break;
			case 'e': value = optarg; break;
			case 'x': stmt = optarg; break;
			case 'D': dep = optarg; break;
			case 'g': text = optarg; break;
			case 'c': count = atoi(optarg); break;
			case 'K': kick = 1; break;
			default: return 2;
		}
	}
	if (!conninfo)
		die("-d CONNINFO is required");
	connect_db(conninfo);
	if (strcmp(mode, "push") == 0 && sandbox && binary && pmode)
		return cmd_push(sandbox, binary, pmode, n, warm, raw);
	if (strcmp(mode, "create") == 0 && prefix && burst > 0)
		return cmd_create(prefix, n, burst, pool, kick, raw);
	if (strcmp(mode, "until") == 0 && query && value)
		return cmd_until(stmt, query, value);
	if (strcmp(mode, "logwait") == 0 && sandbox && dep && text)
		return cmd_logwait(sandbox, dep, text, count);
	fprintf(stderr, "usage: see the comment at the top of nxbench.c\n");
	return 2;
}
