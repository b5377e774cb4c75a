/*
 * src/runtime/test_runtime.c
 *	  End-to-end test of the sandbox runtime on this host: launches real
 *	  sandboxes through NxSandboxLaunch (nx-spawn -> bwrap -> init -> the
 *	  static probe app, test_probe.c) and checks, from outside and from the
 *	  probe's own report, that each containment step took effect.
 *
 *	  test_runtime --spawn PATH --probe PATH --init PATH [--bwrap PATH]
 *				   [--pg-socket PATH|none] [--uid-base N] [--runs N]
 *
 * Run as the cluster's OS user (postgres), after control/nx-setup: tenant ids
 * come from that user's /etc/subuid range (uid-base defaults to its start).
 * Every sandbox started is killed (cgroup + pid) and reaped before the
 * test exits, also on failure or timeout.  Prints "N passed, M failed"
 * last and exits non-zero if anything failed.
 *
 * Glossary:
 *	  scratch	a 0700 directory this test creates under /tmp, standing in
 *				for PGDATA: the blob, nx-init and the run directories live
 *				there, so the tenant uid cannot reach them on the host.
 *				Each sandbox's hand-off socket is bound and listened on
 *				there by this test (the supervisor's part) and handed over
 *				as a descriptor.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nx_handoff.h"
#include "nx_scm.h"
#include "nx_runtime.h"

#define MAX_LIVE 32
/* the app's whole environment as the probe lists it (bwrap adds PWD) */
#define ENV_NAMES "PORT,NX_TEST_SECRET,LANG,PWD"
#define OUTBUF 65536

/* one sandbox under test */
typedef struct Sbx
{
	char		key[64];
	char		sock[108];		/* its hand-off socket on the host */
	uid_t		uid;
	pid_t		pid;			/* nx-spawn, then bwrap */
	int			out,
				err,
				status;			/* read ends of its stdout/stderr/status */
	char		outbuf[OUTBUF];
	size_t		outlen;
	char		errbuf[8192];
	size_t		errlen;
	bool		reaped;
	int			wstatus;
	double		launch_us;		/* how long NxSandboxLaunch blocked */
} Sbx;

static struct
{
	const char *spawn;
	const char *probe_src;
	const char *init_src;
	const char *bwrap;
	const char *pg_socket;
	long		uid_base;
	int			runs;
} opt = {NULL, NULL, NULL, "/usr/bin/bwrap", NULL, -1, 20};

static NxCgroupLayout layout;
static char scratch[64];
static char blob[256],
			init_path[256];
static char secret[64];
static bool real_init;			/* --init is nx-init, not the stub */
static Sbx *live[MAX_LIVE];
static int	passed,
			failed;
static int	key_seq;
static int	start_userns_fd = -1;	/* spec.userns_fd of the next starts */
static int	start_userns_out = -1;	/* spec.userns_out_fd of the next starts */
static int	start_seccomp_fd = 0;	/* spec.seccomp_fd of the next starts */

/* now_us is a monotonic clock in microseconds. */
static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* check counts and prints one result line. */
static bool
check(bool ok, const char *fmt,...)
{
	va_list		ap;

	printf("%s - ", ok ? "ok  " : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (ok)
		passed++;
	else
		failed++;
	return ok;
}

/* msleep sleeps ms milliseconds. */
static void
msleep(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/*
 * reap waits up to timeout_ms for the sandbox's nx-spawn/bwrap process;
 * true once reaped.
 */
static bool
reap(Sbx *s, long timeout_ms)
{
	double		end = now_us() + timeout_ms * 1000.0;

	while (!s->reaped)
	{
		pid_t		r = waitpid(s->pid, &s->wstatus, WNOHANG);

		if (r == s->pid || (r < 0 && errno == ECHILD))
		{
			s->reaped = true;
			break;
		}
		if (now_us() > end)
			return false;
		msleep(1);
	}
	return true;
}

/* cg_dir formats the deployment's directory under layout parent i. */
static void
cg_dir(int i, const char *key, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", layout.parent[i], key);
}

/* cg_procs counts the processes in the key's first cgroup (-1: no cgroup). */
static int
cg_procs(const char *key, int idx, pid_t *pids, int max)
{
	char		dir[512],
				path[600];
	FILE	   *f;
	int			n = 0;
	long		p;

	cg_dir(idx, key, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "re");
	if (f == NULL)
		return -1;
	while (fscanf(f, "%ld", &p) == 1)
	{
		if (pids && n < max)
			pids[n] = (pid_t) p;
		n++;
	}
	fclose(f);
	return n;
}

/*
 * stop kills the sandbox (cgroup, then its pid), reaps it and removes its
 * cgroup; returns how many processes NxCgroupKill signalled.
 */
static int
stop(Sbx *s)
{
	int			killed,
				i;

	killed = NxCgroupKill(&layout, s->key);
	if (!s->reaped)
		kill(s->pid, SIGKILL);
	reap(s, 5000);
	for (i = 0; i < 100 && cg_procs(s->key, 0, NULL, 0) > 0; i++)
	{
		NxCgroupKill(&layout, s->key);
		msleep(10);
	}
	NxCgroupRemove(&layout, s->key);
	if (s->out >= 0)
		close(s->out);
	if (s->err >= 0)
		close(s->err);
	if (s->status >= 0)
		close(s->status);
	s->out = s->err = s->status = -1;
	for (i = 0; i < MAX_LIVE; i++)
		if (live[i] == s)
			live[i] = NULL;
	return killed;
}

/* cleanup_all stops whatever is still running (exit paths, timeout). */
static void
cleanup_all(void)
{
	int			i;

	for (i = 0; i < MAX_LIVE; i++)
		if (live[i])
			stop(live[i]);
}

/* rm_entry is nftw's callback for removing the scratch directory. */
static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void) st;
	(void) flag;
	(void) ftw;
	remove(path);
	return 0;
}

/* on_alarm ends a test run that hangs, after killing what it started. */
static void
on_alarm(int sig)
{
	(void) sig;
	printf("FAIL - overall timeout\n");
	cleanup_all();
	printf("%d passed, %d failed\n", passed, failed + 1);
	_exit(1);
}

/*
 * listen_at binds a SOCK_SEQPACKET unix socket at path and listens on it,
 * the supervisor's part of the hand-off; -1 on failure.
 */
static int
listen_at(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int			fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if ((size_t) snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path) >= sizeof(addr.sun_path) ||
		fd < 0 || bind(fd, (struct sockaddr *) &addr, sizeof(addr)) != 0 ||
		listen(fd, 128) != 0)
	{
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/*
 * ping_init sends PING over the sandbox's hand-off socket and returns the
 * reply's status, or -1 when nothing answered within a second.
 */
static int
ping_init(const Sbx *s)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	NxInitRequest req = {.magic = NX_HANDOFF_MAGIC, .version = NX_HANDOFF_VERSION,
	.op = NX_INIT_OP_PING};
	NxInitReply reply;
	struct pollfd p;
	int			fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int			status = -1;

	memcpy(addr.sun_path, s->sock, sizeof(s->sock));
	if (fd >= 0 && connect(fd, (struct sockaddr *) &addr, sizeof(addr)) == 0 &&
		send(fd, &req, sizeof(req), MSG_NOSIGNAL) == (ssize_t) sizeof(req))
	{
		p.fd = fd;
		p.events = POLLIN;
		if (poll(&p, 1, 1000) == 1 &&
			recv(fd, &reply, sizeof(reply), 0) == (ssize_t) sizeof(reply) &&
			reply.magic == NX_HANDOFF_MAGIC)
			status = reply.status;
	}
	if (fd >= 0)
		close(fd);
	return status;
}

/*
 * start launches one sandbox running the probe with args, as tenant uid
 * (gid = uid).  False (with a FAIL line) if NxCgroupCreate or
 * NxSandboxLaunch refused.
 */
static bool
start(Sbx *s, uid_t uid, const NxLimits *lim, char *const *args)
{
	char	   *envp[4];
	char		env_secret[128];
	char		run_dir[256],
				err[NX_RUNTIME_ERRLEN];
	int			po[2],
				pe[2],
				ps[2],
				lfd,
				i;
	NxSandboxSpec spec;
	double		t0;

	memset(s, 0, sizeof(*s));
	snprintf(s->key, sizeof(s->key), "t%d-%d", (int) getpid(), ++key_seq);
	s->uid = uid;
	s->out = s->err = s->status = -1;
	snprintf(run_dir, sizeof(run_dir), "%s/run-%s", scratch, s->key);
	if (mkdir(run_dir, 0700) != 0)
		return check(false, "mkdir %s: %s", run_dir, strerror(errno));
	if ((size_t) snprintf(s->sock, sizeof(s->sock), "%s/" NX_RUN_SOCKET_NAME, run_dir) >= sizeof(s->sock))
		return check(false, "socket path too long: %s", run_dir);
	lfd = listen_at(s->sock);
	if (lfd < 0)
		return check(false, "listen on %s: %s", s->sock, strerror(errno));
	snprintf(env_secret, sizeof(env_secret), "NX_TEST_SECRET=%s", secret);
	envp[0] = "PORT=8080";
	envp[1] = env_secret;
	envp[2] = "LANG=C.UTF-8";
	envp[3] = NULL;

	if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC) || pipe2(ps, O_CLOEXEC))
		return check(false, "pipe: %s", strerror(errno));
	if (!NxCgroupCreate(&layout, s->key, lim, err, sizeof(err)))
		return check(false, "NxCgroupCreate %s: %s", s->key, err);

	memset(&spec, 0, sizeof(spec));
	spec.key = s->key;
	spec.hostname = "probe-box";
	spec.tenant_uid = uid;
	spec.tenant_gid = uid;
	spec.spawn_helper = opt.spawn;
	spec.bwrap = opt.bwrap;
	spec.init = init_path;
	spec.binary = blob;
	spec.binary_name = "test_probe";
	spec.listen_fd = lfd;
	spec.pg_socket = opt.pg_socket;
	spec.argv = args;
	spec.envp = envp;
	spec.limits = *lim;
	spec.cgroups = &layout;
	spec.stdout_fd = po[1];
	spec.stderr_fd = pe[1];
	spec.status_fd = ps[1];
	spec.userns_fd = start_userns_fd;
	spec.userns_out_fd = start_userns_out;
	spec.seccomp_fd = start_seccomp_fd;
	t0 = now_us();
	s->pid = NxSandboxLaunch(&spec, err, sizeof(err));
	s->launch_us = now_us() - t0;
	close(lfd);
	close(po[1]);
	close(pe[1]);
	close(ps[1]);
	s->out = po[0];
	s->err = pe[0];
	s->status = ps[0];
	if (s->pid < 0)
	{
		NxCgroupRemove(&layout, s->key);
		return check(false, "NxSandboxLaunch: %s", err);
	}
	for (i = 0; i < MAX_LIVE; i++)
		if (live[i] == NULL)
		{
			live[i] = s;
			break;
		}
	return true;
}

/*
 * read_until collects the sandbox's stdout (and stderr) until stdout holds
 * marker, both reach EOF, or timeout_ms passes.  True if marker was seen.
 */
static bool
read_until(Sbx *s, const char *marker, long timeout_ms)
{
	double		end = now_us() + timeout_ms * 1000.0;

	for (;;)
	{
		struct pollfd p[2] = {{s->out, POLLIN, 0}, {s->err, POLLIN, 0}};
		int			left = (int) ((end - now_us()) / 1000);
		int			i;

		s->outbuf[s->outlen] = '\0';
		if (strstr(s->outbuf, marker))
			return true;
		if (left <= 0 || (p[0].fd < 0 && p[1].fd < 0))
			return false;
		if (poll(p, 2, left) <= 0)
			continue;
		for (i = 0; i < 2; i++)
		{
			char	   *buf = i == 0 ? s->outbuf : s->errbuf;
			size_t	   *len = i == 0 ? &s->outlen : &s->errlen;
			size_t		cap = i == 0 ? OUTBUF : sizeof(s->errbuf);
			ssize_t		n;

			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			n = read(p[i].fd, buf + *len, cap - 1 - *len);
			if (n <= 0)
			{
				if (i == 0)
				{
					close(s->out);
					s->out = -1;
				}
				else
				{
					close(s->err);
					s->err = -1;
				}
				continue;
			}
			*len += n;
			buf[*len] = '\0';
		}
	}
}

/* field returns the value of "name=value" in the probe's report, or "". */
static const char *
field(Sbx *s, const char *name)
{
	static char val[512];
	size_t		nl = strlen(name);
	const char *p = s->outbuf;

	val[0] = '\0';
	while (p && *p)
	{
		if (strncmp(p, name, nl) == 0 && p[nl] == '=')
		{
			size_t		vl = strcspn(p + nl + 1, "\n");

			snprintf(val, sizeof(val), "%.*s", (int) vl, p + nl + 1);
			return val;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return val;
}

/* read_str reads a small file into buf, trailing newline removed. */
static const char *
read_str(const char *path, char *buf, size_t len)
{
	FILE	   *f = fopen(path, "re");
	size_t		n = 0;

	buf[0] = '\0';
	if (f)
	{
		n = fread(buf, 1, len - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

/* proc_line returns the rest of the line starting with key in /proc/PID/FILE. */
static const char *
proc_line(pid_t pid, const char *file, const char *key, char *buf, size_t len)
{
	char		path[64],
				line[512];
	FILE	   *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, file);
	buf[0] = '\0';
	f = fopen(path, "re");
	if (f == NULL)
		return buf;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0)
		{
			char	   *v = line + strlen(key);

			while (*v == ' ' || *v == '\t' || *v == ':')
				v++;
			v[strcspn(v, "\n")] = '\0';
			snprintf(buf, len, "%s", v);
			break;
		}
	fclose(f);
	return buf;
}

/* alive says whether pid exists and is not a zombie. */
static bool
alive(pid_t pid)
{
	char		path[64],
				buf[512],
			   *rp;
	int			i;

	for (i = 0; i < 100; i++)
	{
		snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
		read_str(path, buf, sizeof(buf));
		rp = strrchr(buf, ')');
		if (buf[0] == '\0' || (rp && rp[1] == ' ' && rp[2] == 'Z'))
			return false;
		msleep(10);
	}
	return true;
}

/*
 * host_runs_i386 says whether a 64-bit process on this host can make an
 * i386 system call (int 0x80) at all; some kernels and VMs refuse it with
 * SIGSEGV before seccomp could see it.
 */
static bool
host_runs_i386(void)
{
	pid_t		pid = fork();
	int			st;

	if (pid == 0)
	{
		long		ret;

		signal(SIGSEGV, SIG_DFL);	/* no sanitizer report for the expected fault */
		__asm__ volatile("int $0x80":"=a"(ret):"a"(20L):"memory");
		_exit(ret > 0 ? 0 : 3);
	}
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* find_comm returns the pid in the key's cgroup whose comm is name, or 0. */
static pid_t
find_comm(const char *key, const char *name)
{
	pid_t		pids[64];
	int			n = cg_procs(key, 0, pids, 64),
				i;

	for (i = 0; i < n && i < 64; i++)
	{
		char		path[64],
					comm[64];

		snprintf(path, sizeof(path), "/proc/%d/comm", (int) pids[i]);
		if (strcmp(read_str(path, comm, sizeof(comm)), name) == 0)
			return pids[i];
	}
	return 0;
}

/*
 * scan_proc counts processes whose /proc/PID/<file> (cmdline or environ)
 * contains needle; unreadable ones (other uids' environ) are skipped.
 */
static int
scan_proc(const char *file, const char *needle, int *readable)
{
	DIR		   *d = opendir("/proc");
	struct dirent *e;
	int			hits = 0;

	*readable = 0;
	while (d && (e = readdir(d)) != NULL)
	{
		char		path[300],
					buf[65536];
		int			fd;
		ssize_t		n;

		if (e->d_name[0] < '0' || e->d_name[0] > '9' || atoi(e->d_name) == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%s/%s", e->d_name, file);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		close(fd);
		if (n < 0)
			continue;
		(*readable)++;
		if (memmem(buf, n, needle, strlen(needle)))
			hits++;
	}
	if (d)
		closedir(d);
	return hits;
}

/* copy_file copies src to dst with mode. */
static bool
copy_file(const char *src, const char *dst, mode_t mode)
{
	char		buf[65536];
	int			in = open(src, O_RDONLY | O_CLOEXEC),
				out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t		n;
	bool		ok = in >= 0 && out >= 0;

	while (ok && (n = read(in, buf, sizeof(buf))) > 0)
		ok = write(out, buf, n) == n;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return ok && chmod(dst, mode) == 0;
}

/* subuid_start finds the first id of the current user's /etc/subuid range. */
static long
subuid_start(void)
{
	struct passwd *pw = getpwuid(getuid());
	FILE	   *f = fopen("/etc/subuid", "re");
	char		line[256];
	long		start = -1;

	while (pw && f && fgets(line, sizeof(line), f))
	{
		size_t		nl = strlen(pw->pw_name);

		if (strncmp(line, pw->pw_name, nl) == 0 && line[nl] == ':')
		{
			start = atol(line + nl + 1);
			break;
		}
	}
	if (f)
		fclose(f);
	return start;
}

/* expect_field checks that the probe reported name=want. */
static void
expect_field(Sbx *s, const char *name, const char *want)
{
	const char *got = field(s, name);

	check(strcmp(got, want) == 0, "%s = %s (want %s)", name, got[0] ? got : "(missing)", want);
}

/* expect_denied checks that the probe's attempt name failed (any errno but OK). */
static void
expect_denied(Sbx *s, const char *name, const char *want)
{
	const char *got = field(s, name);

	if (want)
		check(strcmp(got, want) == 0, "seccomp: %s -> %s (want %s)", name,
			  got[0] ? got : "(missing)", want);
	else
		check(got[0] && strcmp(got, "OK") != 0, "%s -> %s (must fail)", name,
			  got[0] ? got : "(missing)");
}

/*
 * test_validation checks that NxSandboxLaunch refuses bad specs before
 * spawning anything.
 */
static void
test_validation(void)
{
	NxSandboxSpec spec;
	char		err[NX_RUNTIME_ERRLEN],
				sock_path[256];
	pid_t		pid;
	char	   *noargs[] = {NULL};
	int			listening,
				idle;

	printf("# validation\n");
	snprintf(sock_path, sizeof(sock_path), "%s/validation.sock", scratch);
	listening = listen_at(sock_path);
	idle = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	memset(&spec, 0, sizeof(spec));
	spec.key = "../etc";
	spec.hostname = "h";
	spec.tenant_uid = spec.tenant_gid = (uid_t) opt.uid_base + 1;
	spec.spawn_helper = opt.spawn;
	spec.bwrap = opt.bwrap;
	spec.init = init_path;
	spec.binary = blob;
	spec.binary_name = "x";
	spec.listen_fd = listening;
	spec.limits.tmp_bytes = 1 << 20;
	spec.argv = noargs;
	spec.envp = noargs;
	spec.cgroups = &layout;
	spec.stdout_fd = spec.stderr_fd = spec.status_fd = -1;
	pid = NxSandboxLaunch(&spec, err, sizeof(err));
	check(pid < 0 && strstr(err, "invalid key"), "bad key refused: %s", err);
	spec.key = "valid-key";
	spec.listen_fd = -1;
	pid = NxSandboxLaunch(&spec, err, sizeof(err));
	check(pid < 0 && strstr(err, "not a socket"), "no hand-off socket refused: %s", err);
	spec.listen_fd = idle;
	pid = NxSandboxLaunch(&spec, err, sizeof(err));
	check(pid < 0 && strstr(err, "not a listening SOCK_SEQPACKET"),
		  "a hand-off socket that does not listen refused: %s", err);
	spec.listen_fd = listening;
	spec.limits.tmp_bytes = 0;
	pid = NxSandboxLaunch(&spec, err, sizeof(err));
	check(pid < 0 && strstr(err, "tmp_bytes must be > 0"), "an unbounded /tmp refused: %s", err);
	spec.limits.tmp_bytes = 1 << 20;
	spec.tenant_uid = getuid();
	pid = NxSandboxLaunch(&spec, err, sizeof(err));
	check(pid < 0 && strstr(err, "cluster's own"), "tenant uid = cluster uid refused: %s", err);
	{
		char	   *badenv[] = {"=x", NULL};

		spec.tenant_uid = (uid_t) opt.uid_base + 1;
		spec.envp = badenv;
		pid = NxSandboxLaunch(&spec, err, sizeof(err));
		check(pid < 0 && strstr(err, "NAME=VALUE"), "bad environment entry refused: %s", err);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
	if (listening >= 0)
		close(listening);
	if (idle >= 0)
		close(idle);
	unlink(sock_path);
	check(NxCgroupCreate(&layout, "a/b", &(NxLimits) {0}, err, sizeof(err)) == false,
		  "NxCgroupCreate refuses key a/b: %s", err);
}

/*
 * test_report runs the probe's full report in one sandbox and checks
 * identity (1), environment (2), cgroup (3), kill (4), seccomp (5), host
 * files (6) and descriptors (7).
 */
static void
test_report(void)
{
	static Sbx	s;
	NxLimits	lim = {256 << 20, 64, 256, 50, 8 << 20};
	char	   *args[] = {"report", (char *) opt.pg_socket, NULL};
	char		buf[512],
				dir[512],
				path[600],
				want[64];
	int			leak_fd,
				leak_pipe[2],
				i,
				readable,
				n;
	pid_t		probe,
				pids[64];
	bool		all_tenant = true;
	uid_t		uid = (uid_t) opt.uid_base + 1;

	printf("# report sandbox (tenant uid %d)\n", (int) uid);
	/* descriptors a backend might hold: not close-on-exec, one low, one high */
	leak_fd = open("/etc/hostname", O_RDONLY);
	if (pipe(leak_pipe) == 0)
		dup2(leak_pipe[0], 100);
	if (!start(&s, uid, &lim, args))
		return;
	close(leak_fd);
	close(leak_pipe[0]);
	close(leak_pipe[1]);
	close(100);
	if (!check(read_until(&s, "DONE\n", 15000), "probe reported (stderr: %s)", s.errbuf))
	{
		printf("# stdout:\n%s\n", s.outbuf);
		stop(&s);
		return;
	}

	/* (1) identity: inside uid 1000, on the host the tenant uid, no groups */
	expect_field(&s, "uid", "1000");
	expect_field(&s, "status_Groups", "");
	probe = find_comm(s.key, "test_probe");
	check(probe > 0, "probe found in the deployment's cgroup (host pid %d)", (int) probe);
	snprintf(want, sizeof(want), "%d %d %d %d", (int) uid, (int) uid, (int) uid, (int) uid);
	proc_line(probe, "status", "Uid:", buf, sizeof(buf));
	for (i = 0; buf[i]; i++)
		if (buf[i] == '\t')
			buf[i] = ' ';
	check(strcmp(buf, want) == 0, "host /proc/%d/status Uid: %s (want %s)", (int) probe, buf, want);
	proc_line(probe, "status", "Gid:", buf, sizeof(buf));
	for (i = 0; buf[i]; i++)
		if (buf[i] == '\t')
			buf[i] = ' ';
	check(strcmp(buf, want) == 0, "host /proc/%d/status Gid: %s (want %s)", (int) probe, buf, want);
	n = cg_procs(s.key, 0, pids, 64);
	for (i = 0; i < n && i < 64; i++)
	{
		char		comm[64];

		proc_line(pids[i], "status", "Uid:", buf, sizeof(buf));
		proc_line(pids[i], "status", "Name:", comm, sizeof(comm));
		if (atoi(buf) != (int) uid)
		{
			all_tenant = false;
			printf("# pid %d (%s) has uid %s\n", (int) pids[i], comm, buf);
		}
	}
	check(all_tenant && n >= 2, "all %d processes of the chain run as uid %d on the host", n, (int) uid);
	expect_field(&s, "status_NoNewPrivs", "1");
	expect_field(&s, "status_Seccomp", "2");
	expect_field(&s, "status_CapEff", "0000000000000000");
	expect_field(&s, "status_CapBnd", "0000000000000000");
	expect_field(&s, "hostname", "probe-box");

	/* (2) environment arrives, whole; never on a command line */
	expect_field(&s, "env_secret", secret);
	expect_field(&s, "env_names", ENV_NAMES);
	n = scan_proc("cmdline", secret, &readable);
	check(n == 0, "secret on no /proc/*/cmdline (%d hits in %d readable)", n, readable);
	n = scan_proc("environ", secret, &readable);
	check(n == 0, "secret in no environ readable by the cluster uid (%d hits in %d readable)",
		  n, readable);

	/* (3) cgroup limits applied and the probe inside */
	if (layout.mode == NX_CGROUP_V1)
	{
		cg_dir(0, s.key, dir, sizeof(dir));
		snprintf(path, sizeof(path), "%s/memory.limit_in_bytes", dir);
		check(atoll(read_str(path, buf, sizeof(buf))) == 256 << 20, "memory.limit_in_bytes = %s", buf);
		snprintf(path, sizeof(path), "%s/memory.memsw.limit_in_bytes", dir);
		if (access(path, F_OK) == 0)
			check(atoll(read_str(path, buf, sizeof(buf))) == 256 << 20,
				  "memory.memsw.limit_in_bytes = %s", buf);
		cg_dir(1, s.key, dir, sizeof(dir));
		snprintf(path, sizeof(path), "%s/pids.max", dir);
		check(strcmp(read_str(path, buf, sizeof(buf)), "64") == 0, "pids.max = %s", buf);
		cg_dir(2, s.key, dir, sizeof(dir));
		snprintf(path, sizeof(path), "%s/cpu.shares", dir);
		check(strcmp(read_str(path, buf, sizeof(buf)), "512") == 0, "cpu.shares = %s (weight 50)", buf);
	}
	else
	{
		cg_dir(0, s.key, dir, sizeof(dir));
		snprintf(path, sizeof(path), "%s/memory.max", dir);
		check(atoll(read_str(path, buf, sizeof(buf))) == 256 << 20, "memory.max = %s", buf);
		snprintf(path, sizeof(path), "%s/pids.max", dir);
		check(strcmp(read_str(path, buf, sizeof(buf)), "64") == 0, "pids.max = %s", buf);
		snprintf(path, sizeof(path), "%s/cpu.weight", dir);
		check(strcmp(read_str(path, buf, sizeof(buf)), "50") == 0, "cpu.weight = %s", buf);
	}
	for (i = 0; i < layout.n_parents; i++)
	{
		pid_t		members[64];
		int			m = cg_procs(s.key, i, members, 64),
					j;
		bool		in = false;

		for (j = 0; j < m && j < 64; j++)
			in |= members[j] == probe;
		check(in, "probe is in %s/%s", layout.parent[i], s.key);
	}
	proc_line(probe, "limits", "Max open files", buf, sizeof(buf));
	check(strncmp(buf, "256", 3) == 0, "RLIMIT_NOFILE: %s", buf);
	proc_line(probe, "limits", "Max core file size", buf, sizeof(buf));
	check(buf[0] == '0', "RLIMIT_CORE: %s", buf);
	proc_line(probe, "limits", "Max processes", buf, sizeof(buf));
	check(strncmp(buf, "65 ", 3) != 0, "RLIMIT_NPROC not pids + 1 (the cgroup's pids.max limits): %s", buf);

	/* (5) seccomp: everything denied, controls fine */
	{
		static const char *const denied[][2] = {
			{"sc_unshare_user", "EPERM"}, {"sc_unshare_ns", "EPERM"},
			{"sc_setns", "EPERM"}, {"sc_clone_newuser", "EPERM"},
			{"sc_clone_newnet", "EPERM"}, {"sc_clone3", "ENOSYS"},
			{"sc_mount", "EPERM"}, {"sc_umount2", "EPERM"},
			{"sc_pivot_root", "EPERM"}, {"sc_fsopen", "EPERM"},
			{"sc_open_tree", "EPERM"}, {"sc_ptrace", "EPERM"},
			{"sc_process_vm_readv", "EPERM"}, {"sc_pidfd_getfd", "EPERM"},
			{"sc_process_madvise", "EPERM"}, {"sc_kcmp", "EPERM"},
			{"sc_keyctl", "EPERM"},
			{"sc_add_key", "EPERM"}, {"sc_request_key", "EPERM"},
			{"sc_bpf", "EPERM"}, {"sc_perf_event_open", "EPERM"},
			{"sc_userfaultfd", "EPERM"}, {"sc_io_uring_setup", "ENOSYS"},
			{"sc_open_by_handle_at", "EPERM"}, {"sc_name_to_handle_at", "EPERM"},
			{"sc_kexec_load", "EPERM"}, {"sc_init_module", "EPERM"},
			{"sc_delete_module", "EPERM"}, {"sc_syslog", "EPERM"},
			{"sc_acct", "EPERM"}, {"sc_swapoff", "EPERM"},
			{"sc_quotactl", "EPERM"}, {"sc_reboot", "EPERM"},
			{"sc_personality_linux32", "EPERM"},
			{"sc_personality_addr_no_rand", "EPERM"},
			{"sc_personality_high", "EPERM"},
			{"sc_ioctl_tiocsti", "EPERM"}, {"sc_ioctl_tiocsti_high", "EPERM"},
			{"sc_ioctl_tioclinux", "EPERM"},
			{"sc_socket_packet", "EAFNOSUPPORT"},
			{"sc_socket_bluetooth", "EAFNOSUPPORT"},
			{"sc_socket_vsock", "EAFNOSUPPORT"},
			{"sc_socket_high", "EAFNOSUPPORT"},
			{"abi_x32", "SIGSYS"},
		};
		static const char *const allowed[] = {
			"ok_socket_unix", "ok_socket_inet", "ok_socket_inet6",
			"ok_socket_netlink", "ok_personality_query", "ok_personality_linux",
			"ok_fork", "ok_thread",
		};

		for (i = 0; i < (int) (sizeof(denied) / sizeof(denied[0])); i++)
			expect_denied(&s, denied[i][0], denied[i][1]);
		for (i = 0; i < (int) (sizeof(allowed) / sizeof(allowed[0])); i++)
			expect_field(&s, allowed[i], "OK");
		if (host_runs_i386())
			expect_denied(&s, "abi_i386", "SIGSYS");
		else
			check(strcmp(field(&s, "abi_i386"), "SIGSEGV") == 0 ||
				  strcmp(field(&s, "abi_i386"), "SIGSYS") == 0,
				  "abi_i386 -> %s (this host cannot run int 0x80 at all: SIGSEGV outside too)",
				  field(&s, "abi_i386"));
	}

	/* (6) the host is not there; the layout is */
	expect_field(&s, "file_etc_shadow", "ENOENT");
	expect_field(&s, "file_var_lib_postgresql", "ENOENT");
	expect_field(&s, "file_home", "ENOENT");
	expect_field(&s, "file_sys", "ENOENT");
	expect_field(&s, "write_root", "EROFS");
	expect_field(&s, "write_usr", "EROFS");
	check(strcmp(field(&s, "write_app"), "EROFS") == 0 ||
		  strcmp(field(&s, "write_app"), "EACCES") == 0,
		  "write_app = %s (want EROFS or EACCES)", field(&s, "write_app"));
	expect_denied(&s, "write_run_nx", NULL);
	expect_field(&s, "write_dev", "EROFS");
	expect_field(&s, "write_tmp", "OK");
	expect_field(&s, "write_dev_shm", "OK");
	expect_field(&s, "shm_same_fs", "yes");
	expect_field(&s, "passwd_app", "OK");
	expect_field(&s, "file_ssl_certs", "OK");
	expect_field(&s, "file_nx_init", "OK");
	snprintf(want, sizeof(want), "%d", 8 << 20);
	expect_field(&s, "tmp_size", want);
	snprintf(want, sizeof(want), "%d", (8 << 20) / 8192);
	expect_field(&s, "tmp_inodes", want);
	if (real_init)
	{
		/* nx-init is not dumpable: its descriptors and memory are closed */
		expect_denied(&s, "proc_init_fd", NULL);
		expect_denied(&s, "proc_init_mem", NULL);
		check(ping_init(&s) >= 0, "nx-init answers PING on the socket this test listened on");
	}

	/* (7) descriptors: 0-3 at most, none of ours */
	{
		const char *fds = field(&s, "fds");

		check(strcmp(fds, real_init ? "0,1,2" : "0,1,2,3,4") == 0,
			  "probe's descriptors: %s (the test held fds %d and 100 open, not close-on-exec; "
			  "nx-init keeps 3 and 4, the stub passes them on)",
			  fds, leak_fd);
	}

	/* the cluster socket through a read-only bind; peer auth not fooled */
	if (opt.pg_socket)
	{
		const char *auth;

		expect_field(&s, "pg_connect", "OK");
		auth = field(&s, "pg_auth_postgres");
		check(auth[0] && strcmp(auth, "R0") != 0,
			  "login as postgres over the socket not granted: %s", auth);
	}

	/* (4) kill everything through the cgroup and reap */
	{
		double		t0 = now_us();
		int			killed = NxCgroupKill(&layout, s.key);
		bool		reaped = reap(&s, 3000);
		double		t1 = now_us();
		int			left = cg_procs(s.key, 0, NULL, 0);

		check(killed >= 2, "NxCgroupKill signalled %d processes", killed);
		check(reaped, "nx-spawn/bwrap reaped %.1f ms after NxCgroupKill (status 0x%x)",
			  (t1 - t0) / 1000, s.wstatus);
		for (i = 0; i < 100 && left > 0; i++)
		{
			msleep(10);
			left = cg_procs(s.key, 0, NULL, 0);
		}
		check(left == 0, "cgroup empty after kill (%d left)", left);
		for (i = 0; i < layout.n_parents; i++)
		{
			pid_t		members[8];

			left = cg_procs(s.key, i, members, 8);
			if (left > 0)
				check(false, "%s/%s still has %d processes", layout.parent[i], s.key, left);
		}
		check(!alive(probe), "probe pid %d is gone (or a zombie awaiting the host's reaper)",
			  (int) probe);
		check(NxCgroupRemove(&layout, s.key), "NxCgroupRemove");
		cg_dir(0, s.key, dir, sizeof(dir));
		check(access(dir, F_OK) != 0, "cgroup directory removed");
	}
	stop(&s);
}

/* list_cb records whether NxCgroupList reported the key in arg. */
static void
list_cb(const char *key, void *arg)
{
	const char **want = arg;

	if (*want && strcmp(key, *want) == 0)
		*want = NULL;
}

/* test_cgroup_list checks NxCgroupList and NxCgroupStats on a live cgroup. */
static void
test_cgroup_list(void)
{
	static Sbx	s;
	NxLimits	lim = {64 << 20, 16, 64, 100, 1 << 20};
	char	   *args[] = {"forks", "2", NULL};
	const char *want;
	int64_t		mem,
				cpu;

	printf("# cgroup list and stats\n");
	if (!start(&s, (uid_t) opt.uid_base + 2, &lim, args))
		return;
	check(read_until(&s, "DONE\n", 10000), "probe started (%s)", s.errbuf);
	want = s.key;
	NxCgroupList(&layout, list_cb, &want);
	check(want == NULL, "NxCgroupList reports %s", s.key);
	NxCgroupStats(&layout, s.key, &mem, &cpu);
	check(mem > 0, "NxCgroupStats memory = %" PRId64 " bytes (cpu %" PRId64 " usec%s)", mem, cpu,
		  cpu < 0 ? ": v1 cpu without cpuacct" : "");
	stop(&s);
	want = s.key;
	NxCgroupList(&layout, list_cb, &want);
	check(want != NULL, "NxCgroupList no longer reports %s after removal", s.key);
}

/* test_limits checks that memory, pids and /tmp limits bite. */
static void
test_limits(void)
{
	static Sbx	s;
	NxLimits	lim = {64 << 20, 16, 64, 100, 4 << 20};
	char	   *alloc[] = {"alloc", "256", NULL};
	char	   *forks[] = {"forks", "100", NULL};
	char	   *fill[] = {"tmpfill", NULL};

	printf("# limits\n");
	if (start(&s, (uid_t) opt.uid_base + 3, &lim, alloc))
	{
		read_until(&s, "DONE\n", 15000);
		reap(&s, 5000);
		check(strstr(s.outbuf, "READY") && !strstr(s.outbuf, "ALLOC-DONE") && s.reaped &&
			  !(WIFEXITED(s.wstatus) && WEXITSTATUS(s.wstatus) == 0),
			  "256 MiB in a 64 MiB sandbox: killed (bwrap status 0x%x)", s.wstatus);
		stop(&s);
	}
	if (start(&s, (uid_t) opt.uid_base + 4, &lim, forks))
	{
		read_until(&s, "DONE\n", 15000);
		check(atoi(field(&s, "forks")) > 0 && atoi(field(&s, "forks")) < 16 &&
			  strstr(s.outbuf, "errno=EAGAIN"),
			  "pids.max 16, 100 forks tried: forks=%s", field(&s, "forks"));
		stop(&s);
	}
	if (start(&s, (uid_t) opt.uid_base + 5, &lim, fill))
	{
		read_until(&s, "DONE\n", 15000);
		check(strstr(s.outbuf, "tmpfill=") && strstr(s.outbuf, "errno=ENOSPC") &&
			  atoll(field(&s, "tmpfill")) <= 4 << 20,
			  "/tmp of 4 MiB filled: tmpfill=%s", field(&s, "tmpfill"));
		check(atoll(field(&s, "tmpfill")) + atoll(field(&s, "shmfill")) <= 4 << 20,
			  "/dev/shm counts against the same 4 MiB: shmfill=%s", field(&s, "shmfill"));
		check(atoi(field(&s, "inodes")) > 0 && atoi(field(&s, "inodes")) <= (4 << 20) / 8192,
			  "empty files stop at the inode limit (%d): inodes=%s", (4 << 20) / 8192,
			  field(&s, "inodes"));
		stop(&s);
	}
}

/* test_bad_uid checks nx-spawn's report for a tenant uid outside the range. */
static void
test_bad_uid(void)
{
	static Sbx	s;
	NxLimits	lim = {64 << 20, 16, 64, 100, 1 << 20};
	char	   *args[] = {"ready", NULL};
	struct passwd *pw = getpwuid(getuid());
	char		want[200];

	printf("# error reporting\n");
	if (!start(&s, 100, &lim, args))
		return;
	read_until(&s, "\n\n", 5000);	/* until EOF */
	reap(&s, 5000);
	snprintf(want, sizeof(want), "nx-spawn: user namespace: newuidmap: uid 100 not in %s's /etc/subuid range",
			 pw ? pw->pw_name : "?");
	check(s.reaped && WIFEXITED(s.wstatus) && WEXITSTATUS(s.wstatus) == 125 &&
		  strstr(s.errbuf, want) != NULL,
		  "uid outside the range: exit %d, stderr \"%.*s\"",
		  WIFEXITED(s.wstatus) ? WEXITSTATUS(s.wstatus) : -1,
		  (int) strcspn(s.errbuf, "\n"), s.errbuf);
	stop(&s);
}

/* cmp_double orders doubles for qsort. */
static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

/*
 * test_timing measures, opt.runs times, how long NxSandboxLaunch blocks
 * the caller and how long until the app prints READY.
 */
static void
test_timing(void)
{
	static Sbx	s;
	NxLimits	lim = {128 << 20, 32, 64, 100, 1 << 20};
	char	   *args[] = {"ready", NULL};
	double	   *ready = calloc(opt.runs, sizeof(double));
	double	   *call = calloc(opt.runs, sizeof(double));
	double	   *create = calloc(opt.runs, sizeof(double));
	int			ok = 0,
				i;

	printf("# timing (%d launches)\n", opt.runs);
	for (i = 0; i < opt.runs; i++)
	{
		double		t0 = now_us(),
					t1,
					t2;
		bool		started = start(&s, (uid_t) opt.uid_base + 6, &lim, args);

		t1 = now_us();
		if (started && read_until(&s, "READY\n", 10000))
		{
			t2 = now_us();
			call[ok] = s.launch_us;
			create[ok] = t1 - t0 - s.launch_us;
			ready[ok] = t2 - t0;
			ok++;
		}
		if (started)
			stop(&s);
	}
	check(ok == opt.runs, "%d of %d launches reached READY", ok, opt.runs);
	if (ok > 0)
	{
		qsort(ready, ok, sizeof(double), cmp_double);
		qsort(call, ok, sizeof(double), cmp_double);
		qsort(create, ok, sizeof(double), cmp_double);
		printf("# NxSandboxLaunch blocks the caller: median %.0f us, max %.0f us "
			   "(NxCgroupCreate: median %.0f us)\n",
			   call[ok / 2], call[ok - 1], create[ok / 2]);
		printf("# launch -> app running (READY on stdout): median %.1f ms, p90 %.1f ms, min %.1f ms, max %.1f ms\n",
			   ready[ok / 2] / 1000, ready[(ok * 9) / 10 < ok ? (ok * 9) / 10 : ok - 1] / 1000,
			   ready[0] / 1000, ready[ok - 1] / 1000);
	}
	free(ready);
	free(call);
	free(create);
}

/*
 * receive_ns takes the user namespace descriptor nx-spawn sent on sock
 * (SCM_RIGHTS), waiting up to 5 s; -1 if none came.
 */
static int
receive_ns(int sock)
{
	struct pollfd pfd = {.fd = sock,.events = POLLIN};

	if (poll(&pfd, 1, 5000) != 1)
		return -1;
	return nx_scm_recv_fd(sock, 0);
}

/*
 * launch_to_ready starts a "ready" probe as uid and returns the ms from
 * launch to READY on its stdout, or -1.
 */
static double
launch_to_ready(uid_t uid)
{
	static Sbx	s;
	NxLimits	lim = {128 << 20, 32, 64, 100, 1 << 20};
	char	   *args[] = {"ready", NULL};
	double		t0 = now_us(),
				ms = -1;

	if (!start(&s, uid, &lim, args))
		return -1;
	if (read_until(&s, "READY\n", 10000))
		ms = (now_us() - t0) / 1000;
	stop(&s);
	return ms;
}

/*
 * test_kept_userns: a first start sends the user namespace it mapped
 * (--userns-out); later starts join it (--userns-fd) with every check of
 * the report sandbox still holding and without newuidmap; a namespace
 * mapped to another tenant is refused; and the time from launch to
 * running, mapped vs joined, measured side by side.  Returns the kept
 * namespace (the caller closes it), or -1.
 */
static int
test_kept_userns(void)
{
	static Sbx	s;
	NxLimits	lim = {64 << 20, 16, 64, 100, 1 << 20};
	char	   *args[] = {"ready", NULL};
	uid_t		uid = (uid_t) opt.uid_base + 1;
	double	   *mapped = calloc(opt.runs, sizeof(double));
	double	   *joined = calloc(opt.runs, sizeof(double));
	int			sv[2],
				ns,
				n = 0,
				i;

	printf("# kept user namespace (tenant uid %d)\n", (int) uid);
	if (!check(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0,
			   "socketpair: %s", strerror(errno)))
		return -1;
	start_userns_out = sv[1];
	if (start(&s, uid, &lim, args))
	{
		check(read_until(&s, "READY\n", 10000), "a first start that exports its namespace runs");
		stop(&s);
	}
	start_userns_out = -1;
	close(sv[1]);
	ns = receive_ns(sv[0]);
	close(sv[0]);
	if (!check(ns > 2, "nx-spawn sent the user namespace it mapped"))
		return -1;

	/* every isolation check again, in the kept namespace */
	start_userns_fd = ns;
	test_report();

	/* the namespace of uid U given to a start as another uid: refused */
	if (start(&s, uid + 1, &lim, args))
	{
		read_until(&s, "\n\n", 5000);
		reap(&s, 5000);
		check(s.reaped && WIFEXITED(s.wstatus) && WEXITSTATUS(s.wstatus) == 125 &&
			  strstr(s.errbuf, "does not map uid 0") != NULL,
			  "a kept namespace of another tenant is refused: \"%.*s\"",
			  (int) strcspn(s.errbuf, "\n"), s.errbuf);
		stop(&s);
	}

	/* side by side: mapped at each start vs joined */
	for (i = 0; i < opt.runs; i++)
	{
		double		m,
					j;

		start_userns_fd = -1;
		m = launch_to_ready(uid);
		start_userns_fd = ns;
		j = launch_to_ready(uid);
		if (m > 0 && j > 0)
		{
			mapped[n] = m;
			joined[n] = j;
			n++;
		}
	}
	start_userns_fd = -1;
	check(n == opt.runs, "%d of %d pairs of launches reached READY", n, opt.runs);
	if (n > 0)
	{
		qsort(mapped, n, sizeof(double), cmp_double);
		qsort(joined, n, sizeof(double), cmp_double);
		printf("# launch -> app running, median of %d: mapped at the start %.1f ms, "
			   "joined the kept namespace %.1f ms (%.2fx)\n",
			   n, mapped[n / 2], joined[n / 2], joined[n / 2] / mapped[n / 2]);
	}
	free(mapped);
	free(joined);
	return ns;
}

/*
 * export_filter has nx-spawn --export-seccomp write the compiled filter
 * into a new memfd, sealed against change if seal (as the supervisor
 * keeps it, src/supervisor/filter_keep.c); -1 on failure.
 */
static int
export_filter(bool seal)
{
	int			fd = memfd_create("t-seccomp", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int			status;
	pid_t		pid;

	if (fd < 0)
		return -1;
	pid = fork();
	if (pid == 0)
	{
		if (dup2(fd, 1) == 1)
			execl(opt.spawn, opt.spawn, "--export-seccomp", (char *) NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		WEXITSTATUS(status) != 0 ||
		(seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0))
	{
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * test_exported_filter: the filter compiled once (nx-spawn
 * --export-seccomp, sealed) and given to each start holds every check of
 * the report sandbox, as the supervisor starts them (kept namespace too);
 * an unsealed one is refused; and launch to running, compiling the filter
 * at the start vs given it, measured side by side.
 */
static void
test_exported_filter(int userns_fd)
{
	static Sbx	s;
	NxLimits	lim = {64 << 20, 16, 64, 100, 1 << 20};
	char	   *args[] = {"ready", NULL};
	uid_t		uid = (uid_t) opt.uid_base + 1;
	double	   *compiled = calloc(opt.runs, sizeof(double));
	double	   *given = calloc(opt.runs, sizeof(double));
	int			sealed = export_filter(true),
				unsealed = export_filter(false),
				n = 0,
				i;

	printf("# the filter compiled once and given to each start\n");
	if (!check(sealed > 2 && unsealed > 2, "nx-spawn --export-seccomp wrote the filter"))
		goto out;

	/* every isolation check again, the way the supervisor starts */
	start_userns_fd = userns_fd;
	start_seccomp_fd = sealed;
	test_report();

	/* a filter anyone could still change is not used */
	start_seccomp_fd = unsealed;
	if (start(&s, uid, &lim, args))
	{
		read_until(&s, "\n\n", 5000);
		reap(&s, 5000);
		check(s.reaped && WIFEXITED(s.wstatus) && WEXITSTATUS(s.wstatus) == 125 &&
			  strstr(s.errbuf, "not a sealed memfd") != NULL,
			  "an unsealed filter descriptor is refused: \"%.*s\"",
			  (int) strcspn(s.errbuf, "\n"), s.errbuf);
		stop(&s);
	}

	/* side by side: compiled at each start vs given compiled */
	for (i = 0; i < opt.runs; i++)
	{
		double		c,
					g;

		start_seccomp_fd = 0;
		c = launch_to_ready(uid);
		start_seccomp_fd = sealed;
		g = launch_to_ready(uid);
		if (c > 0 && g > 0)
		{
			compiled[n] = c;
			given[n] = g;
			n++;
		}
	}
	check(n == opt.runs, "%d of %d pairs of launches reached READY", n, opt.runs);
	if (n > 0)
	{
		qsort(compiled, n, sizeof(double), cmp_double);
		qsort(given, n, sizeof(double), cmp_double);
		printf("# launch -> app running, median of %d: filter compiled at the start %.1f ms, "
			   "given compiled %.1f ms (%.2fx)\n",
			   n, compiled[n / 2], given[n / 2], given[n / 2] / compiled[n / 2]);
	}
out:
	start_userns_fd = -1;
	start_seccomp_fd = 0;
	if (sealed >= 0)
		close(sealed);
	if (unsealed >= 0)
		close(unsealed);
	free(compiled);
	free(given);
}

/* usage prints the synopsis and exits 2. */
static void
usage(void)
{
	fprintf(stderr, "usage: test_runtime --spawn PATH --probe PATH --init PATH [--bwrap PATH]\n"
			"                    [--pg-socket PATH|none] [--uid-base N] [--runs N]\n");
	exit(2);
}

/* find_pg_socket picks a running cluster's socket in /var/run/postgresql. */
static const char *
find_pg_socket(void)
{
	static char path[300];
	DIR		   *d = opendir("/var/run/postgresql");
	struct dirent *e;
	struct stat st;

	while (d && (e = readdir(d)) != NULL)
	{
		if (strncmp(e->d_name, ".s.PGSQL.", 9) != 0 || strchr(e->d_name + 9, '.'))
			continue;
		snprintf(path, sizeof(path), "/var/run/postgresql/%s", e->d_name);
		if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		{
			closedir(d);
			return path;
		}
	}
	if (d)
		closedir(d);
	return NULL;
}

int
main(int argc, char **argv)
{
	char		err[NX_RUNTIME_ERRLEN],
				blobs[96];
	bool		pg_none = false;
	int			i,
				kept_ns;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 1; i < argc; i++)
	{
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			usage();
		if (strcmp(argv[i], "--spawn") == 0)
			opt.spawn = v;
		else if (strcmp(argv[i], "--probe") == 0)
			opt.probe_src = v;
		else if (strcmp(argv[i], "--init") == 0)
			opt.init_src = v;
		else if (strcmp(argv[i], "--bwrap") == 0)
			opt.bwrap = v;
		else if (strcmp(argv[i], "--pg-socket") == 0)
		{
			pg_none = strcmp(v, "none") == 0;
			opt.pg_socket = pg_none ? NULL : v;
		}
		else if (strcmp(argv[i], "--uid-base") == 0)
			opt.uid_base = atol(v);
		else if (strcmp(argv[i], "--runs") == 0)
			opt.runs = atoi(v) > 0 ? atoi(v) : 1;
		else
			usage();
		i++;
	}
	if (!opt.spawn || !opt.probe_src || !opt.init_src)
		usage();
	if (getuid() == 0)
	{
		fprintf(stderr, "test_runtime: run as the cluster's OS user (e.g. runuser -u postgres --), not root\n");
		return 2;
	}
	if (opt.uid_base < 0)
		opt.uid_base = subuid_start();
	real_init = strstr(opt.init_src, "nx-init") != NULL;
	if (opt.pg_socket == NULL && !pg_none)
		opt.pg_socket = find_pg_socket();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm(600);
	atexit(cleanup_all);

	printf("# init: %s; pg socket: %s; tenant uids from %ld\n", opt.init_src,
		   opt.pg_socket ? opt.pg_socket : "(none)", opt.uid_base);
	if (!check(opt.uid_base > 0, "the current user has an /etc/subuid range (run control/nx-setup)"))
		goto done;

	NxCgroupDetect("/sys/fs/cgroup", "nx_sandbox", &layout, err, sizeof(err));
	if (!check(layout.mode != NX_CGROUP_NONE, "NxCgroupDetect: %s%s",
			   layout.mode == NX_CGROUP_V1 ? "v1 " : layout.mode == NX_CGROUP_V2 ? "v2 " : "",
			   layout.mode == NX_CGROUP_NONE ? err : layout.parent[0]))
		goto done;

	/* the scratch stands in for PGDATA: 0700, the tenant cannot enter */
	snprintf(scratch, sizeof(scratch), "/tmp/nxrt.XXXXXX");
	if (mkdtemp(scratch) == NULL)
	{
		check(false, "mkdtemp: %s", strerror(errno));
		goto done;
	}
	snprintf(blobs, sizeof(blobs), "%s/blobs", scratch);
	snprintf(blob, sizeof(blob), "%s/probe", blobs);
	snprintf(init_path, sizeof(init_path), "%s/nx-init", scratch);
	mkdir(blobs, 0700);
	if (!check(copy_file(opt.probe_src, blob, 0555) && copy_file(opt.init_src, init_path, 0555),
			   "copied probe and init into %s (mode 0700)", scratch))
		goto done;
	snprintf(secret, sizeof(secret), "nx-secret-%08lx%08lx", (unsigned long) random() ^ (unsigned long) getpid(),
			 (unsigned long) now_us());

	test_validation();
	test_report();
	test_cgroup_list();
	test_limits();
	test_bad_uid();
	test_timing();
	kept_ns = test_kept_userns();
	test_exported_filter(kept_ns);
	if (kept_ns >= 0)
		close(kept_ns);

done:
	cleanup_all();
	if (scratch[0] && strncmp(scratch, "/tmp/nxrt.", 10) == 0)
		nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
