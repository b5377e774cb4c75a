/*
 * src/runtime/launch.c
 *	  NxSandboxLaunch: turn an NxSandboxSpec into a running chain
 *	  (nx-spawn -> bwrap -> nx-init -> app) without ever forking the caller.
 *
 * The caller is a PostgreSQL backend (the supervisor): it may hold data-file
 * descriptors, a large shared_buffers mapping and signal handlers.  So:
 *	  - posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK)), never fork();
 *	  - the child gets exactly descriptors 0-7 (below) and nothing else
 *		(posix_spawn_file_actions_addclosefrom_np), an empty signal mask and
 *		default dispositions, its own session;
 *	  - nx-spawn gets a fixed, minimal environment, and nothing secret on its
 *		command line: bwrap's arguments (the app's environment among them)
 *		travel in a memfd that bwrap reads with --args.
 *
 * Descriptors of nx-spawn:
 *	  0 /dev/null   1 stdout_fd   2 stderr_fd   3 status_fd (nx-init's
 *	  NX_INIT_STATUS_FD)   4 listen_fd (nx-init's NX_INIT_LISTEN_FD)
 *	  5 bwrap's arguments   6 /etc/passwd   7 /etc/group
 *	  8 the sandbox's kept user namespace (spec userns_fd) or the socket to
 *	  send a new one on (spec userns_out_fd), else /dev/null
 *	  9 the compiled seccomp filter, a sealed memfd (spec seccomp_fd), else
 *	  /dev/null
 *	  (6 and 7 are stub files for --ro-bind-data: an "app" user, uid 1000.)
 *	  nx-spawn closes 8 before bwrap runs and replaces 9 by a descriptor of
 *	  its own; bwrap reads and closes 5-7 and that seccomp fd; nx-init gets
 *	  0-4 and keeps 3 and 4 from the app.
 *
 * Layout inside the sandbox: read-only /usr (+ /lib, /lib64, /bin, /sbin
 * symlinks) and the few /etc files dynamic binaries, TLS roots and DNS
 * need; /app/<binary_name>; /nx/nx-init; the cluster's socket at its host
 * path; private /proc and a read-only /dev.  The only writable places are
 * /tmp and /dev/shm, two directories of one tmpfs nx-spawn mounts with the
 * sandbox's tmp_size and an inode limit (tmpfs_inodes below); everything
 * else of the root is read-only and empty.  The blob, nx-init and the
 * socket are staged by nx-spawn (see stage.c) because the tenant uid
 * cannot reach them on the host.  Nothing in the sandbox is a path the
 * supervisor or the router follows: the hand-off socket is a descriptor.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../include/nx_handoff.h"
#include "runtime_int.h"

#if defined(__GLIBC__) && !__GLIBC_PREREQ(2, 34)
#error "posix_spawn_file_actions_addclosefrom_np needs glibc 2.34 or later"
#endif

/* the fixed descriptor layout of nx-spawn (see the header comment) */
#define FD_LISTEN 4
#define FD_ARGS 5
#define FD_PASSWD 6
#define FD_GROUP 7
#define FD_USERNS 8
#define FD_SECCOMP 9
#define N_CHILD_FDS 10

_Static_assert(NX_INIT_STATUS_FD == 3, "nx-init's status fd is nx-spawn's fd 3");
_Static_assert(NX_INIT_LISTEN_FD == FD_LISTEN, "nx-init's listening socket is nx-spawn's fd 4");

/*
 * tmpfs inodes per byte of tmp_size: one per 8 KiB, at least 256 and at
 * most 1M.  Each inode costs the kernel about 1 KiB of memory (charged to
 * the deployment's cgroup), so the files a tenant can create stay within
 * a fraction of its own tmp budget whatever their size.
 */
#define TMPFS_BYTES_PER_INODE 8192
#define TMPFS_MIN_INODES 256
#define TMPFS_MAX_INODES (1024 * 1024)

/* uid/gid the app has inside the sandbox (its own nested user namespace) */
#define SANDBOX_ID "1000"

/* nx-spawn's whole environment */
static char *const spawn_envp[] = {"PATH=/usr/bin:/bin:/usr/sbin:/sbin", NULL};

static const char passwd_stub[] =
"root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
"app:x:" SANDBOX_ID ":" SANDBOX_ID ":app:/tmp:/bin/sh\n"
"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";

static const char group_stub[] =
"root:x:0:\n"
"app:x:" SANDBOX_ID ":\n"
"nogroup:x:65534:\n";

/* host files bound read-only when present */
static const char *const etc_files[] = {
	"/etc/ssl/certs", "/etc/ca-certificates", "/etc/resolv.conf",
	"/etc/hosts", "/etc/nsswitch.conf", "/etc/localtime", "/etc/ld.so.cache",
	"/etc/services", "/etc/protocols", "/etc/host.conf", "/etc/gai.conf",
	NULL
};

/* paths the cluster socket may not be bound over (they are ours) */
static const char *const reserved_prefixes[] = {
	"/usr/", "/etc/", "/proc/", "/dev/", "/app/", "/nx/",
	"/lib/", "/lib64/", "/bin/", "/sbin/", NULL
};

/* a growing NUL-separated argument buffer */
typedef struct ArgBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	bool		oom;
} ArgBuf;

/*
 * arg appends one NUL-terminated argument to b (remembering, not failing,
 * on out of memory so the caller checks once).
 */
static void
arg(ArgBuf *b, const char *s)
{
	size_t		n = strlen(s) + 1;

	if (b->oom)
		return;
	if (b->len + n > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 4096;
		char	   *p;

		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->data, cap);
		if (p == NULL)
		{
			b->oom = true;
			return;
		}
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
}

/* arg2 and arg3 append an option with its values. */
static void
arg2(ArgBuf *b, const char *opt, const char *v)
{
	arg(b, opt);
	arg(b, v);
}

static void
arg3(ArgBuf *b, const char *opt, const char *v1, const char *v2)
{
	arg(b, opt);
	arg(b, v1);
	arg(b, v2);
}

/*
 * name_ok says whether s is 1..max characters of [A-Za-z0-9._-], not "."
 * or "..": the binary's file name and the hostname.
 */
static bool
name_ok(const char *s, size_t max)
{
	size_t		n;

	if (s == NULL || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (n = 0; s[n]; n++)
	{
		char		c = s[n];

		if (n >= max || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
						  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return n > 0;
}

/*
 * path_ok says whether p is an absolute path without "." / ".." components
 * or doubled slashes, short enough for bwrap and the stage.
 */
static bool
path_ok(const char *p)
{
	if (p == NULL || p[0] != '/' || strlen(p) >= 4096)
		return false;
	return strstr(p, "/./") == NULL && strstr(p, "/../") == NULL &&
		strstr(p, "//") == NULL &&
		!(strlen(p) >= 2 && strcmp(p + strlen(p) - 2, "/.") == 0) &&
		!(strlen(p) >= 3 && strcmp(p + strlen(p) - 3, "/..") == 0);
}

/*
 * check_file stats path and checks it is what the sandbox needs: a regular
 * file others may execute (the tenant uid runs it), or a socket.
 */
static bool
check_file(const char *what, const char *path, mode_t type,
		   char *err, size_t errlen)
{
	struct stat st;

	if (!path_ok(path))
	{
		NxSetErr(err, errlen, "%s: \"%s\" is not a clean absolute path", what,
				 path ? path : "(null)");
		return false;
	}
	if (stat(path, &st) != 0)
	{
		NxSetErr(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return false;
	}
	if ((st.st_mode & S_IFMT) != type)
	{
		NxSetErr(err, errlen, "%s %s: not a %s", what, path,
				 type == S_IFREG ? "regular file" : "socket");
		return false;
	}
	if (type == S_IFREG && (st.st_mode & S_IXOTH) == 0)
	{
		NxSetErr(err, errlen, "%s %s: mode %04o, the tenant uid cannot execute it (want 0555)",
				 what, path, (unsigned) (st.st_mode & 07777));
		return false;
	}
	return true;
}

/*
 * check_listen_fd checks that fd is what nx-init will accept on: a
 * listening SOCK_SEQPACKET unix socket.
 */
static bool
check_listen_fd(int fd, char *err, size_t errlen)
{
	int			type = 0,
				domain = 0,
				listening = 0;
	socklen_t	len = sizeof(type);

	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
	{
		NxSetErr(err, errlen, "listen_fd %d is not a socket", fd);
		return false;
	}
	len = sizeof(domain);
	(void) getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
	len = sizeof(listening);
	(void) getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
	if (type != SOCK_SEQPACKET || domain != AF_UNIX || !listening)
	{
		NxSetErr(err, errlen, "listen_fd %d is not a listening SOCK_SEQPACKET unix socket", fd);
		return false;
	}
	return true;
}

/*
 * check_spec validates everything the spec says before anything is
 * created: names, paths, ids, the files it points at, the environment.
 */
static bool
check_spec(const NxSandboxSpec *s, char *err, size_t errlen)
{
	int			i;

	if (!NxKeyValid(s->key))
	{
		NxSetErr(err, errlen, "invalid key \"%s\" (want [a-z0-9_-]{1,64})",
				 s->key ? s->key : "(null)");
		return false;
	}
	if (!name_ok(s->hostname, 63) || !name_ok(s->binary_name, 128))
	{
		NxSetErr(err, errlen, "invalid hostname or binary_name (want [A-Za-z0-9._-])");
		return false;
	}
	if (s->tenant_uid == 0 || s->tenant_gid == 0 ||
		s->tenant_uid == getuid() || s->tenant_gid == getgid() ||
		s->tenant_uid == (uid_t) -1 || s->tenant_gid == (gid_t) -1)
	{
		NxSetErr(err, errlen, "tenant uid/gid %ld/%ld may not be root, unset or the cluster's own",
				 (long) s->tenant_uid, (long) s->tenant_gid);
		return false;
	}
	if (!path_ok(s->spawn_helper) || access(s->spawn_helper, X_OK) != 0 ||
		!path_ok(s->bwrap) || access(s->bwrap, X_OK) != 0)
	{
		NxSetErr(err, errlen, "spawn helper %s or bwrap %s is not an executable absolute path",
				 s->spawn_helper ? s->spawn_helper : "(null)",
				 s->bwrap ? s->bwrap : "(null)");
		return false;
	}
	if (!check_file("nx-init", s->init, S_IFREG, err, errlen) ||
		!check_file("binary", s->binary, S_IFREG, err, errlen) ||
		!check_listen_fd(s->listen_fd, err, errlen))
		return false;
	if (s->pg_socket)
	{
		if (!check_file("pg_socket", s->pg_socket, S_IFSOCK, err, errlen))
			return false;
		for (i = 0; reserved_prefixes[i]; i++)
			if (strncmp(s->pg_socket, reserved_prefixes[i], strlen(reserved_prefixes[i])) == 0)
			{
				NxSetErr(err, errlen, "pg_socket %s lies under %s, which the sandbox layout owns",
						 s->pg_socket, reserved_prefixes[i]);
				return false;
			}
	}
	for (i = 0; s->envp && s->envp[i]; i++)
	{
		const char *eq = strchr(s->envp[i], '=');

		if (eq == NULL || eq == s->envp[i])
		{
			/* never print the entry: it may hold a secret */
			NxSetErr(err, errlen, "environment entry %d is not NAME=VALUE", i);
			return false;
		}
	}
	if (s->limits.tmp_bytes < 0 || s->limits.open_files < 0 || s->limits.pids < 0)
	{
		NxSetErr(err, errlen, "negative limit");
		return false;
	}
	if (s->limits.tmp_bytes == 0)
	{
		NxSetErr(err, errlen, "tmp_bytes must be > 0: every place a tenant can write is bounded");
		return false;
	}
	return true;
}

/*
 * build_bwrap_args writes bwrap's arguments (everything but --args,
 * --seccomp and the command) into b, in the order bwrap applies them:
 * namespaces and identity, environment, then the mounts (sources under
 * NX_STAGE_DIR are nx-spawn's staged files), then / made read-only.
 */
static void
build_bwrap_args(const NxSandboxSpec *s, ArgBuf *b)
{
	char		num[32];
	char		dest[4200];
	int			i;

	arg(b, "--unshare-all");
	arg(b, "--unshare-user");	/* implied for non-root only; we run as ns root */
	arg(b, "--disable-userns");
	/* not --die-with-parent: see nx-spawn's die_with_parent */
	arg(b, "--new-session");
	arg(b, "--as-pid-1");
	arg2(b, "--cap-drop", "ALL");
	arg(b, "--clearenv");
	for (i = 0; s->envp && s->envp[i]; i++)
	{
		const char *eq = strchr(s->envp[i], '=');
		char		name[256];
		size_t		nl = (size_t) (eq - s->envp[i]);

		if (nl >= sizeof(name))
		{
			b->oom = true;		/* reported as "too long" by the caller */
			return;
		}
		memcpy(name, s->envp[i], nl);
		name[nl] = '\0';
		arg3(b, "--setenv", name, eq + 1);
	}
	arg2(b, "--uid", SANDBOX_ID);
	arg2(b, "--gid", SANDBOX_ID);
	arg2(b, "--hostname", s->hostname);

	arg3(b, "--ro-bind", "/usr", "/usr");
	arg3(b, "--symlink", "usr/lib", "/lib");
	arg3(b, "--symlink", "usr/lib64", "/lib64");
	arg3(b, "--symlink", "usr/bin", "/bin");
	arg3(b, "--symlink", "usr/sbin", "/sbin");
	arg2(b, "--proc", "/proc");
	arg2(b, "--dev", "/dev");
	/* the tenant's tmpfs (stage.c): /tmp and /dev/shm, then /dev read-only */
	arg3(b, "--bind", NX_STAGE_DIR "/" NX_STAGE_TMPFS_TMP, "/tmp");
	arg3(b, "--bind", NX_STAGE_DIR "/" NX_STAGE_TMPFS_SHM, "/dev/shm");
	arg2(b, "--remount-ro", "/dev");
	for (i = 0; etc_files[i]; i++)
		arg3(b, "--ro-bind-try", etc_files[i], etc_files[i]);
	snprintf(num, sizeof(num), "%d", FD_PASSWD);
	arg2(b, "--perms", "0444");
	arg3(b, "--ro-bind-data", num, "/etc/passwd");
	snprintf(num, sizeof(num), "%d", FD_GROUP);
	arg2(b, "--perms", "0444");
	arg3(b, "--ro-bind-data", num, "/etc/group");

	snprintf(dest, sizeof(dest), "/app/%s", s->binary_name);
	arg3(b, "--ro-bind", NX_STAGE_DIR "/" NX_STAGE_APP, dest);
	arg3(b, "--ro-bind", NX_STAGE_DIR "/" NX_STAGE_INIT, "/nx/nx-init");
	if (s->pg_socket)
		arg3(b, "--ro-bind", NX_STAGE_DIR "/" NX_STAGE_PGSOCK, s->pg_socket);
	arg2(b, "--remount-ro", "/");
	arg2(b, "--chdir", "/tmp");
}

/*
 * data_memfd returns a close-on-exec memfd holding len bytes of data,
 * positioned at 0; -1 with err set on failure.
 */
static int
data_memfd(const char *name, const void *data, size_t len,
		   char *err, size_t errlen)
{
	int			fd = memfd_create(name, MFD_CLOEXEC);
	size_t		off = 0;

	if (fd < 0)
	{
		NxSetErr(err, errlen, "memfd_create: %s", strerror(errno));
		return -1;
	}
	while (off < len)
	{
		ssize_t		n = write(fd, (const char *) data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			NxSetErr(err, errlen, "write to memfd: %s", n < 0 ? strerror(errno) : "short write");
			close(fd);
			return -1;
		}
		off += n;
	}
	if (lseek(fd, 0, SEEK_SET) != 0)
	{
		NxSetErr(err, errlen, "lseek memfd: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* the growing argv of nx-spawn */
typedef struct Argv
{
	char	  **v;
	int			n;
	int			cap;
	char	   *owned[64];		/* strings we formatted and must free */
	int			n_owned;
	bool		oom;
} Argv;

/* argv_add appends s (not copied) to a. */
static void
argv_add(Argv *a, const char *s)
{
	if (a->oom)
		return;
	if (a->n + 2 > a->cap)
	{
		int			cap = a->cap ? a->cap * 2 : 64;
		char	  **p = realloc(a->v, cap * sizeof(char *));

		if (p == NULL)
		{
			a->oom = true;
			return;
		}
		a->v = p;
		a->cap = cap;
	}
	a->v[a->n++] = (char *) s;
	a->v[a->n] = NULL;
}

/* argv_addf appends a formatted string, owned by a. */
static void
argv_addf(Argv *a, const char *fmt,...) __attribute__((format(printf, 2, 3)));

static void
argv_addf(Argv *a, const char *fmt,...)
{
	va_list		ap;
	char	   *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0 || a->n_owned >= 64)
	{
		va_end(ap);
		a->oom = true;
		return;
	}
	va_end(ap);
	a->owned[a->n_owned++] = s;
	argv_add(a, s);
}

/* argv_free releases a. */
static void
argv_free(Argv *a)
{
	int			i;

	for (i = 0; i < a->n_owned; i++)
		free(a->owned[i]);
	free(a->v);
}

/* tmpfs_inodes is the inode limit of a tenant tmpfs of `bytes`. */
static int64_t
tmpfs_inodes(int64_t bytes)
{
	int64_t		n = bytes / TMPFS_BYTES_PER_INODE;

	return n < TMPFS_MIN_INODES ? TMPFS_MIN_INODES :
		n > TMPFS_MAX_INODES ? TMPFS_MAX_INODES : n;
}

/*
 * build_spawn_argv makes nx-spawn's command line: keys, cgroup dirs,
 * rlimits, ids, the stage sources, the tenant tmpfs's limits and the
 * command bwrap runs.  Nothing
 * here is secret (paths, numbers, the app's argv, which is visible in the
 * app's /proc/PID/cmdline anyway).
 */
static void
build_spawn_argv(const NxSandboxSpec *s, Argv *a)
{
	const NxCgroupLayout *cg = s->cgroups;
	int			i;

	argv_add(a, s->spawn_helper);
	argv_add(a, "--key");
	argv_add(a, s->key);
	if (cg && cg->mode != NX_CGROUP_NONE)
		for (i = 0; i < cg->n_parents; i++)
		{
			argv_add(a, "--cgroup-dir");
			argv_addf(a, "%s/%s", cg->parent[i], s->key);
		}
	if (s->limits.open_files > 0)
	{
		argv_add(a, "--rlimit");
		argv_addf(a, "nofile=%d", s->limits.open_files);
	}
	argv_add(a, "--rlimit");
	argv_add(a, "core=0");

	/*
	 * No RLIMIT_NPROC: the kernel counts it per user namespace and checks
	 * every ancestor namespace against the limit its creator had, so with
	 * one user namespace per sandbox (userns.c) an nproc of pids + 1 set
	 * here would cap the processes of all the sandbox's deployments
	 * together (found with 200 deployments of one sandbox: fork failed
	 * with EAGAIN).  The deployment's cgroup pids.max is the limit.
	 */
	argv_add(a, "--uid");
	argv_addf(a, "%lu", (unsigned long) s->tenant_uid);
	argv_add(a, "--gid");
	argv_addf(a, "%lu", (unsigned long) s->tenant_gid);
	argv_add(a, "--bwrap");
	argv_add(a, s->bwrap);
	argv_add(a, "--args-fd");
	argv_addf(a, "%d", FD_ARGS);
	argv_add(a, "--keep-fd");
	argv_addf(a, "%d", FD_LISTEN);
	argv_add(a, "--keep-fd");
	argv_addf(a, "%d", FD_PASSWD);
	argv_add(a, "--keep-fd");
	argv_addf(a, "%d", FD_GROUP);
	if (s->userns_fd > 2)
	{
		argv_add(a, "--userns-fd");
		argv_addf(a, "%d", FD_USERNS);
	}
	else if (s->userns_out_fd > 2)
	{
		argv_add(a, "--userns-out");
		argv_addf(a, "%d", FD_USERNS);
	}
	if (s->seccomp_fd > 2)
	{
		argv_add(a, "--seccomp-fd");
		argv_addf(a, "%d", FD_SECCOMP);
	}
	argv_add(a, "--stage");
	argv_addf(a, NX_STAGE_APP "=%s", s->binary);
	argv_add(a, "--stage");
	argv_addf(a, NX_STAGE_INIT "=%s", s->init);
	argv_add(a, "--tmpfs");
	argv_addf(a, "%" PRId64 ":%" PRId64, s->limits.tmp_bytes, tmpfs_inodes(s->limits.tmp_bytes));
	if (s->pg_socket)
	{
		argv_add(a, "--stage");
		argv_addf(a, NX_STAGE_PGSOCK "=%s", s->pg_socket);
	}
	argv_add(a, "--");
	argv_add(a, "/nx/nx-init");
	argv_add(a, "--");
	argv_addf(a, "/app/%s", s->binary_name);
	for (i = 0; s->argv && s->argv[i]; i++)
		argv_add(a, s->argv[i]);
}

/*
 * high_fd returns fd itself if it is above the child's fixed layout, else
 * a close-on-exec duplicate that is (recorded in *dup_out for closing), so
 * the dup2 actions can never overwrite a source before it is used.
 */
static int
high_fd(int fd, int *dup_out)
{
	*dup_out = -1;
	if (fd >= N_CHILD_FDS)
		return fd;
	*dup_out = fcntl(fd, F_DUPFD_CLOEXEC, N_CHILD_FDS);
	return *dup_out;
}

/*
 * NxSandboxLaunch starts the chain (see nx_runtime.h) and returns the pid
 * of nx-spawn, or -1 with err set.  Failures of nx-spawn's own steps come
 * later, as its exit status 125 and one "nx-spawn: <step>: <reason>" line
 * on stderr_fd.  The caller must have created the cgroup (NxCgroupCreate).
 */
pid_t
NxSandboxLaunch(const NxSandboxSpec *spec, char *err, size_t errlen)
{
	ArgBuf		bargs = {0};
	Argv		sargv = {0};
	int			src[N_CHILD_FDS],
				dups[N_CHILD_FDS],
				owned[4] = {-1, -1, -1, -1};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t	none,
				all;
	pid_t		pid = -1;
	int			i,
				rc;

	for (i = 0; i < N_CHILD_FDS; i++)
		dups[i] = -1;
	if (!check_spec(spec, err, errlen))
		return -1;

	build_bwrap_args(spec, &bargs);
	build_spawn_argv(spec, &sargv);
	if (bargs.oom || sargv.oom)
	{
		NxSetErr(err, errlen, "out of memory (or an environment name over 255 bytes)");
		goto out;
	}

	/* the descriptors nx-spawn gets: /dev/null, caller's fds, memfds */
	owned[0] = open("/dev/null", O_RDWR | O_CLOEXEC);
	owned[1] = data_memfd("nx-bwrap-args", bargs.data, bargs.len, err, errlen);
	owned[2] = owned[1] < 0 ? -1 :
		data_memfd("nx-passwd", passwd_stub, sizeof(passwd_stub) - 1, err, errlen);
	owned[3] = owned[2] < 0 ? -1 :
		data_memfd("nx-group", group_stub, sizeof(group_stub) - 1, err, errlen);
	if (owned[0] < 0 || owned[3] < 0)
	{
		if (owned[0] < 0)
			NxSetErr(err, errlen, "open /dev/null: %s", strerror(errno));
		goto out;
	}
	src[0] = owned[0];
	src[1] = spec->stdout_fd >= 0 ? spec->stdout_fd : owned[0];
	src[2] = spec->stderr_fd >= 0 ? spec->stderr_fd : owned[0];
	src[3] = spec->status_fd >= 0 ? spec->status_fd : owned[0];
	src[FD_LISTEN] = spec->listen_fd;
	src[FD_ARGS] = owned[1];
	src[FD_PASSWD] = owned[2];
	src[FD_GROUP] = owned[3];
	src[FD_USERNS] = spec->userns_fd > 2 ? spec->userns_fd :
		spec->userns_out_fd > 2 ? spec->userns_out_fd : owned[0];
	src[FD_SECCOMP] = spec->seccomp_fd > 2 ? spec->seccomp_fd : owned[0];
	for (i = 0; i < N_CHILD_FDS; i++)
	{
		src[i] = high_fd(src[i], &dups[i]);
		if (src[i] < 0)
		{
			NxSetErr(err, errlen, "dup of descriptor for fd %d: %s", i, strerror(errno));
			goto out;
		}
	}

	posix_spawn_file_actions_init(&fa);
	for (i = 0; i < N_CHILD_FDS; i++)
		posix_spawn_file_actions_adddup2(&fa, src[i], i);
	posix_spawn_file_actions_addclosefrom_np(&fa, N_CHILD_FDS);

	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
							 POSIX_SPAWN_SETSID);

	rc = posix_spawn(&pid, spec->spawn_helper, &fa, &attr, sargv.v, spawn_envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
	{
		NxSetErr(err, errlen, "posix_spawn %s: %s", spec->spawn_helper, strerror(rc));
		pid = -1;
	}

out:
	for (i = 0; i < N_CHILD_FDS; i++)
		if (dups[i] >= 0)
			close(dups[i]);
	for (i = 0; i < 4; i++)
		if (owned[i] >= 0)
			close(owned[i]);
	if (bargs.data)
	{
		/* it held the app's environment: do not leave it in freed memory */
		explicit_bzero(bargs.data, bargs.cap);
		free(bargs.data);
	}
	argv_free(&sargv);
	return pid;
}
