/*
 * src/runtime/nx_spawn.c
 *	  nx-spawn: the small program between the supervisor and bwrap.  The
 *	  supervisor posix_spawn()s it (see launch.c); it runs the per-child
 *	  containment steps that must happen in the child, as the cluster's uid,
 *	  before bwrap, then execs bwrap (same pid).
 *
 *	  nx-spawn --key K [--cgroup-dir DIR]... [--rlimit NAME=N]...
 *			   --uid HOSTUID --gid HOSTGID --bwrap PATH --args-fd N
 *			   --tmpfs BYTES:INODES [--keep-fd N]... [--stage NAME=PATH]...
 *			   [--userns-fd N | --userns-out N] [--seccomp-fd N]
 *			   -- COMMAND [ARG]...
 *	  nx-spawn --map-userns HOSTUID HOSTGID	(see map_userns_only)
 *	  nx-spawn --print-seccomp		(the filter, in libseccomp's text form)
 *	  nx-spawn --export-seccomp		(the filter, compiled, for --seccomp-fd)
 *
 * Steps, in order; each is a function that names itself on failure
 * ("nx-spawn: <step>: <reason>" on stderr, exit 125):
 *	  close fds		every descriptor but 0-3, the args fd and --keep-fd ones;
 *					the compiled filter of --seccomp-fd (a sealed memfd) is
 *					reopened for bwrap and the original closed
 *	  signals		empty mask, default dispositions
 *	  join cgroups	write our pid to DIR/cgroup.procs for each --cgroup-dir,
 *					while still the cluster's uid (v1 refuses it later)
 *	  user namespace  a new user (+ mount) namespace, uid/gid 0 = the tenant;
 *					with --userns-out, its descriptor is sent on that socket
 *					for the supervisor to keep; with --userns-fd, that kept
 *					namespace is joined instead (no newuidmap) and only a
 *					mount namespace is created under it (see userns.c)
 *	  stage			the --stage sources, opened while we can still reach
 *					them, bound under NX_STAGE_DIR, and the tenant's tmpfs
 *					(--tmpfs: its size and inode limit) for /tmp and
 *					/dev/shm (see stage.c)
 *	  rlimits		each --rlimit (soft = hard), core=0 unless given.  After
 *					the namespace step: RLIMIT_NPROC counts the processes of
 *					the real uid, which until then is the cluster's (dozens
 *					of postgres processes), and the mapping helper is forked
 *					before.
 *	  no_new_privs	PR_SET_NO_NEW_PRIVS (after the namespace step: the
 *					mapping helpers are setuid and must still work)
 *	  parent death	PR_SET_PDEATHSIG SIGKILL, so that bwrap (same pid)
 *					dies with the supervisor until nx-init is adopted (see
 *					nx_handoff.h); set last, because joining the user
 *					namespace changes our credentials, which clears it
 *	  seccomp		the filter (seccomp.c) compiled into a memfd, unless
 *					--seccomp-fd gave it compiled
 *	  exec bwrap	bwrap --args N --seccomp M COMMAND...; bwrap reads every
 *					other argument, environment included, from the args fd,
 *					so nothing secret is on any command line.  The command
 *					itself has to be on bwrap's argv: bwrap 0.8 ignores
 *					non-option words inside --args data.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime_int.h"

#define MAX_LIST 16

/* the parsed command line */
typedef struct SpawnArgs
{
	const char *key;
	const char *cgroup_dirs[MAX_LIST];
	int			n_cgroup_dirs;
	struct
	{
		int			resource;
		const char *name;
		rlim_t		value;
	}			rlimits[MAX_LIST];
	int			n_rlimits;
	long		uid;
	long		gid;
	const char *bwrap;
	int			args_fd;
	int			keep_fds[MAX_LIST];
	int			n_keep_fds;
	NxStageEntry stage[MAX_LIST];
	int			n_stage;
	unsigned long long tmpfs_bytes;
	unsigned long long tmpfs_inodes;
	int			userns_fd;		/* join this mapped namespace; -1: make one */
	int			userns_out;		/* send the one made on this socket; -1 */
	int			seccomp_fd;		/* the compiled filter, sealed; -1: compile */
	char	  **command;
} SpawnArgs;

/* rlimit names nx-spawn understands */
static const struct
{
	const char *name;
	int			resource;
}			rlimit_names[] = {
	{"nofile", RLIMIT_NOFILE}, {"core", RLIMIT_CORE}, {"nproc", RLIMIT_NPROC},
	{"memlock", RLIMIT_MEMLOCK}, {"fsize", RLIMIT_FSIZE}, {"as", RLIMIT_AS},
	{"data", RLIMIT_DATA}, {"stack", RLIMIT_STACK}, {"cpu", RLIMIT_CPU},
	{"locks", RLIMIT_LOCKS}, {"sigpending", RLIMIT_SIGPENDING},
	{"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
	{"rtprio", RLIMIT_RTPRIO}, {"rttime", RLIMIT_RTTIME},
};

/*
 * fail reports that step failed and why, then exits with 125 (the exit
 * status the supervisor reads as "the sandbox never started").
 */
static void __attribute__((noreturn))
fail(const char *step, const char *fmt,...)
{
	char		msg[NX_RUNTIME_ERRLEN * 2];
	va_list		ap;
	int			n;

	n = snprintf(msg, sizeof(msg), "nx-spawn: %s: ", step);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
	va_end(ap);
	strncat(msg, "\n", sizeof(msg) - strlen(msg) - 1);
	if (write(2, msg, strlen(msg)) < 0)
		_exit(NX_SPAWN_EXIT_FAILURE);
	_exit(NX_SPAWN_EXIT_FAILURE);
}

/*
 * parse_long parses a whole decimal number within [min, max]; false
 * otherwise.
 */
static bool
parse_long(const char *s, long min, long max, long *out)
{
	char	   *end;
	long		v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/*
 * parse_rlimit parses NAME=N (N may be "unlimited") into the next slot.
 */
static void
parse_rlimit(SpawnArgs *a, const char *spec)
{
	const char *eq = strchr(spec, '=');
	size_t		i;

	if (eq == NULL || a->n_rlimits >= MAX_LIST)
		fail("usage", "bad --rlimit %s (want NAME=N)", spec);
	for (i = 0; i < sizeof(rlimit_names) / sizeof(rlimit_names[0]); i++)
	{
		long		v;

		if (strlen(rlimit_names[i].name) != (size_t) (eq - spec) ||
			strncmp(rlimit_names[i].name, spec, eq - spec) != 0)
			continue;
		a->rlimits[a->n_rlimits].resource = rlimit_names[i].resource;
		a->rlimits[a->n_rlimits].name = rlimit_names[i].name;
		if (strcmp(eq + 1, "unlimited") == 0)
			a->rlimits[a->n_rlimits].value = RLIM_INFINITY;
		else if (parse_long(eq + 1, 0, LONG_MAX, &v))
			a->rlimits[a->n_rlimits].value = (rlim_t) v;
		else
			fail("usage", "bad --rlimit value %s", spec);
		a->n_rlimits++;
		return;
	}
	fail("usage", "unknown --rlimit %s", spec);
}

/*
 * parse_stage parses NAME=PATH (NAME a stage name, PATH absolute).
 */
static void
parse_stage(SpawnArgs *a, char *spec)
{
	char	   *eq = strchr(spec, '=');

	if (eq == NULL || a->n_stage >= MAX_LIST)
		fail("usage", "bad --stage %s (want NAME=PATH)", spec);
	*eq = '\0';
	if (!NxStageNameValid(spec) || eq[1] != '/')
		fail("usage", "bad --stage %s=%s", spec, eq + 1);
	a->stage[a->n_stage].name = spec;
	a->stage[a->n_stage].path = eq + 1;
	a->stage[a->n_stage].fd = -1;
	a->n_stage++;
}

/*
 * parse_fd parses a descriptor number above 3 (0-3 are always kept).
 */
static int
parse_fd(const char *opt, const char *s)
{
	long		v;

	if (!parse_long(s, 4, INT_MAX, &v))
		fail("usage", "bad %s %s (want a descriptor > 3)", opt, s);
	return (int) v;
}

/*
 * parse_args fills a from argv; any mistake is a usage failure.
 */
static void
parse_args(int argc, char **argv, SpawnArgs *a)
{
	int			i;

	memset(a, 0, sizeof(*a));
	a->uid = a->gid = -1;
	a->args_fd = -1;
	a->userns_fd = a->userns_out = a->seccomp_fd = -1;
	for (i = 1; i < argc; i++)
	{
		const char *opt = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(opt, "--") == 0)
		{
			a->command = argv + i + 1;
			break;
		}
		if (val == NULL)
			fail("usage", "%s needs a value", opt);
		i++;
		if (strcmp(opt, "--key") == 0)
			a->key = val;
		else if (strcmp(opt, "--cgroup-dir") == 0 && a->n_cgroup_dirs < MAX_LIST)
			a->cgroup_dirs[a->n_cgroup_dirs++] = val;
		else if (strcmp(opt, "--rlimit") == 0)
			parse_rlimit(a, val);
		else if (strcmp(opt, "--uid") == 0)
		{
			if (!parse_long(val, 1, UINT_MAX - 1, &a->uid))
				fail("usage", "bad --uid %s", val);
		}
		else if (strcmp(opt, "--gid") == 0)
		{
			if (!parse_long(val, 1, UINT_MAX - 1, &a->gid))
				fail("usage", "bad --gid %s", val);
		}
		else if (strcmp(opt, "--bwrap") == 0)
			a->bwrap = val;
		else if (strcmp(opt, "--args-fd") == 0)
			a->args_fd = parse_fd(opt, val);
		else if (strcmp(opt, "--keep-fd") == 0 && a->n_keep_fds < MAX_LIST)
			a->keep_fds[a->n_keep_fds++] = parse_fd(opt, val);
		else if (strcmp(opt, "--userns-fd") == 0 && a->userns_fd < 0)
			a->userns_fd = parse_fd(opt, val);
		else if (strcmp(opt, "--userns-out") == 0 && a->userns_out < 0)
			a->userns_out = parse_fd(opt, val);
		else if (strcmp(opt, "--seccomp-fd") == 0 && a->seccomp_fd < 0)
			a->seccomp_fd = parse_fd(opt, val);
		else if (strcmp(opt, "--stage") == 0)
			parse_stage(a, argv[i]);
		else if (strcmp(opt, "--tmpfs") == 0)
		{
			char	   *end;

			errno = 0;
			a->tmpfs_bytes = strtoull(val, &end, 10);
			if (errno != 0 || end == val || *end != ':' || val[0] == '-')
				fail("usage", "bad --tmpfs %s (want BYTES:INODES)", val);
			a->tmpfs_inodes = strtoull(end + 1, &end, 10);
			if (errno != 0 || *end != '\0' || a->tmpfs_bytes == 0 || a->tmpfs_inodes == 0)
				fail("usage", "bad --tmpfs %s (want BYTES:INODES, both > 0)", val);
		}
		else
			fail("usage", "unknown or repeated-too-often option %s", opt);
	}
	if (!NxKeyValid(a->key))
		fail("usage", "--key missing or not [a-z0-9_-]{1,64}");
	if (a->uid < 0 || a->gid < 0 || a->bwrap == NULL || a->bwrap[0] != '/' ||
		a->args_fd < 0 || a->tmpfs_bytes == 0 || a->command == NULL ||
		a->command[0] == NULL)
		fail("usage", "need --uid, --gid, --bwrap /PATH, --args-fd, --tmpfs and -- COMMAND");
	if (a->userns_fd >= 0 && a->userns_out >= 0)
		fail("usage", "--userns-fd and --userns-out exclude each other");
}

/*
 * close_fds closes every descriptor except 0-3, the args fd and the
 * --keep-fd ones: whatever the spawner leaked must not reach bwrap.
 */
static void
close_fds(const SpawnArgs *a)
{
	int			keep[MAX_LIST + 8];
	int			n = 0,
				i,
				j;
	unsigned int from = 4;

	keep[n++] = a->args_fd;
	if (a->userns_fd >= 0)
		keep[n++] = a->userns_fd;
	if (a->userns_out >= 0)
		keep[n++] = a->userns_out;
	if (a->seccomp_fd >= 0)
		keep[n++] = a->seccomp_fd;
	for (i = 0; i < a->n_keep_fds; i++)
		keep[n++] = a->keep_fds[i];
	/* insertion sort: a handful of numbers */
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && keep[j - 1] > keep[j]; j--)
		{
			int			t = keep[j];

			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	for (i = 0; i <= n; i++)
	{
		unsigned int to = i < n ? (unsigned int) keep[i] - 1 : ~0U;

		if (i < n && (unsigned int) keep[i] < from)
			continue;
		if (to >= from && syscall(SYS_close_range, from, to, 0) != 0)
			fail("close fds", "close_range(%u, %u): %s", from, to, strerror(errno));
		if (i < n)
		{
			if (fcntl(keep[i], F_GETFD) < 0)
				fail("close fds", "descriptor %d is not open", keep[i]);
			from = (unsigned int) keep[i] + 1;
		}
	}
}

/*
 * reset_signals empties the signal mask and restores every default
 * disposition: bwrap and the sandbox start clean whatever the spawner had.
 */
static void
reset_signals(void)
{
	sigset_t	none;
	int			sig;

	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) != 0)
		fail("signals", "sigprocmask: %s", strerror(errno));
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);	/* EINVAL for libc-reserved ones */
}

/*
 * join_cgroups moves this process into each deployment cgroup directory.
 * The directory must end in /<key>: a wrong --cgroup-dir must not put a
 * sandbox into someone else's cgroup.
 */
static void
join_cgroups(const SpawnArgs *a)
{
	char		pid[32],
				path[PATH_MAX];
	int			i;

	snprintf(pid, sizeof(pid), "%d", (int) getpid());
	for (i = 0; i < a->n_cgroup_dirs; i++)
	{
		const char *dir = a->cgroup_dirs[i];
		const char *base = strrchr(dir, '/');
		int			e = 0;

		if (base == NULL || strcmp(base + 1, a->key) != 0)
			fail("join cgroup", "%s is not a directory named %s", dir, a->key);
		if (!NxPathJoin(path, sizeof(path), dir, "cgroup.procs"))
			fail("join cgroup", "path too long: %s", dir);
		if (!NxWriteFile(path, pid, &e))
			fail("join cgroup", "write %s: %s", path, strerror(e));
	}
}

/*
 * set_rlimits applies each --rlimit as soft = hard (so the sandbox cannot
 * raise it), and core=0 unless the caller said otherwise.
 */
static void
set_rlimits(const SpawnArgs *a)
{
	bool		core_given = false;
	struct rlimit rl;
	int			i;

	for (i = 0; i < a->n_rlimits; i++)
	{
		rl.rlim_cur = rl.rlim_max = a->rlimits[i].value;
		if (setrlimit(a->rlimits[i].resource, &rl) != 0)
		{
			struct rlimit cur;

			getrlimit(a->rlimits[i].resource, &cur);
			fail("rlimits", "%s=%llu: %s (hard limit now %llu)", a->rlimits[i].name,
				 (unsigned long long) a->rlimits[i].value, strerror(errno),
				 (unsigned long long) cur.rlim_max);
		}
		if (a->rlimits[i].resource == RLIMIT_CORE)
			core_given = true;
	}
	if (!core_given)
	{
		rl.rlim_cur = rl.rlim_max = 0;
		if (setrlimit(RLIMIT_CORE, &rl) != 0)
			fail("rlimits", "core=0: %s", strerror(errno));
	}
}

/*
 * enter_tenant enters the tenant's user namespace (made and mapped now, or
 * the sandbox's kept one) and its own mount namespace, stages the
 * sources while the cluster's uid can still reach them, becomes the
 * tenant's root, binds the staged sources and mounts the tenant's tmpfs.
 */
static void
enter_tenant(SpawnArgs *a)
{
	char		err[NX_RUNTIME_ERRLEN];

	if (a->userns_fd >= 0)
	{
		if (!NxUsernsJoin(a->userns_fd, (uid_t) a->uid, (gid_t) a->gid, CLONE_NEWNS,
						  err, sizeof(err)))
			fail("user namespace", "%s", err);
		a->userns_fd = -1;
	}
	else
	{
		if (!NxUsernsEnter((uid_t) a->uid, (gid_t) a->gid, CLONE_NEWNS, err, sizeof(err)))
			fail("user namespace", "%s", err);
		if (a->userns_out >= 0)
			NxUsernsExport(a->userns_out);
		a->userns_out = -1;
	}
	if (!NxStageOpen(a->stage, a->n_stage, err, sizeof(err)))
		fail("stage", "%s", err);
	if (!NxUsernsBecomeRoot(err, sizeof(err)))
		fail("user namespace", "%s", err);
	if (!NxStageMount(a->stage, a->n_stage, err, sizeof(err)) ||
		!NxStageTenantTmpfs(a->tmpfs_bytes, a->tmpfs_inodes, err, sizeof(err)))
		fail("stage", "%s", err);
}

/*
 * take_filter replaces --seccomp-fd's sealed memfd by a descriptor of its
 * own for bwrap to read (NxSeccompReopen), while nx-spawn is still the
 * cluster's uid; the original is closed.
 */
static void
take_filter(SpawnArgs *a)
{
	char		err[NX_RUNTIME_ERRLEN];
	int			fd;

	if (a->seccomp_fd < 0)
		return;
	fd = NxSeccompReopen(a->seccomp_fd, err, sizeof(err));
	if (fd < 0)
		fail("seccomp", "%s", err);
	close(a->seccomp_fd);
	a->seccomp_fd = fd;
}

/*
 * die_with_parent: bwrap keeps our pid, and with it this parent-death
 * signal (exec of a plain binary keeps it), so its monitor process dies
 * with the supervisor (bwrap's own --die-with-parent would also tie nx-init
 * to the monitor, which the supervisor ends once nx-init is adopted).
 * `parent` is the supervisor's pid as seen at our start: if it died
 * before the signal was armed, we are someone else's child already.
 */
static void
die_with_parent(pid_t parent)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		fail("parent death", "%s", strerror(errno));
	if (getppid() != parent)
		fail("parent death", "the supervisor is gone");
}

/*
 * exec_bwrap execs bwrap with only --args, --seccomp and the command on
 * its command line; the filter is the one given, or compiled here.
 */
static void __attribute__((noreturn))
exec_bwrap(const SpawnArgs *a)
{
	char		err[NX_RUNTIME_ERRLEN],
				args_fd[16],
				seccomp_fd[16];
	char	  **argv;
	int			n,
				i,
				fd;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		fail("no_new_privs", "%s", strerror(errno));
	fd = a->seccomp_fd >= 0 ? a->seccomp_fd : NxSeccompMemfd(err, sizeof(err));
	if (fd < 0)
		fail("seccomp", "%s", err);

	for (n = 0; a->command[n] != NULL; n++)
		;
	argv = calloc(n + 6, sizeof(char *));
	if (argv == NULL)
		fail("exec bwrap", "out of memory");
	snprintf(args_fd, sizeof(args_fd), "%d", a->args_fd);
	snprintf(seccomp_fd, sizeof(seccomp_fd), "%d", fd);
	argv[0] = (char *) a->bwrap;
	argv[1] = "--args";
	argv[2] = args_fd;
	argv[3] = "--seccomp";
	argv[4] = seccomp_fd;
	for (i = 0; i < n; i++)
		argv[5 + i] = a->command[i];
	execv(a->bwrap, argv);
	fail("exec bwrap", "%s: %s", a->bwrap, strerror(errno));
}

/*
 * map_userns_only (nx-spawn --map-userns HOSTUID HOSTGID): make the
 * tenant's user namespace and map it, exactly as a first start does, send
 * it on descriptor 0 (a socket of the supervisor's) and exit.  The
 * supervisor runs this when a sandbox is created, so that even its first
 * start joins a mapped namespace instead of waiting for newuidmap and
 * newgidmap (supervisor/userns_premap.c).  Nothing runs in the namespace.
 */
static int
map_userns_only(const char *uid_s, const char *gid_s)
{
	char		err[NX_RUNTIME_ERRLEN];
	long		uid,
				gid;

	if (!parse_long(uid_s, 1, UINT_MAX - 1, &uid) || !parse_long(gid_s, 1, UINT_MAX - 1, &gid))
		fail("usage", "--map-userns takes a host uid and gid");
	if (syscall(SYS_close_range, 3, ~0U, 0) != 0)
		fail("close fds", "close_range(3, ~0): %s", strerror(errno));
	reset_signals();
	if (!NxUsernsEnter((uid_t) uid, (gid_t) gid, 0, err, sizeof(err)))
		fail("user namespace", "%s", err);
	NxUsernsExport(0);
	return 0;
}

/* main runs the steps in order (see the header comment). */
int
main(int argc, char **argv)
{
	SpawnArgs	a;
	pid_t		parent = getppid();

	if (argc == 2 && strcmp(argv[1], "--print-seccomp") == 0)
	{
		char		err[NX_RUNTIME_ERRLEN];

		if (!NxSeccompExportPfc(1, err, sizeof(err)))
			fail("seccomp", "%s", err);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--export-seccomp") == 0)
	{
		char		err[NX_RUNTIME_ERRLEN];

		if (!NxSeccompExportBpf(1, err, sizeof(err)))
			fail("seccomp", "%s", err);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "--map-userns") == 0)
		return map_userns_only(argv[2], argv[3]);
	parse_args(argc, argv, &a);
	close_fds(&a);
	take_filter(&a);
	reset_signals();
	join_cgroups(&a);
	umask(022);
	enter_tenant(&a);
	set_rlimits(&a);
	die_with_parent(parent);
	exec_bwrap(&a);
}
