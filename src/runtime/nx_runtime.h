/*
 * src/runtime/nx_runtime.h
 *	  Launching, watching and killing one sandbox: the containment steps the
 *	  supervisor asks for, as plain C (no PostgreSQL headers) so that the
 *	  spawn helper and the tests can use them too.
 *
 * The chain for one deployment:
 *
 *	  supervisor --posix_spawn--> nx-spawn --exec--> bwrap --> nx-init --> app
 *	  (cluster uid)               (cluster uid:      (tenant uid, inside its
 *	                               joins cgroups,     own user/pid/net/ipc/
 *	                               sets rlimits,      uts/mount/cgroup
 *	                               enters a user      namespaces, seccomp)
 *	                               namespace mapped
 *	                               to the tenant uid)
 *
 * No plain fork() of a backend anywhere (posix_spawn uses CLONE_VFORK), and
 * nothing secret on any command line: bwrap's arguments, environment
 * included, travel through a pipe (bwrap --args FD).
 *
 * Glossary:
 *	  tenant uid	the host uid a sandbox runs as: an id from the cluster
 *					user's subordinate range (/etc/subuid), one per sandbox.
 *	  cgroup		the per-deployment control group: v2 (a delegated
 *					subtree) or v1 (memory, pids, cpu hierarchies).
 */
#ifndef NX_RUNTIME_H
#define NX_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define NX_RUNTIME_ERRLEN 256

/* Resource limits of one deployment (0 = no limit for that resource). */
typedef struct NxLimits
{
	int64_t		memory_bytes;	/* cgroup memory limit (includes /tmp) */
	int			pids;			/* cgroup pids.max */
	int			open_files;		/* RLIMIT_NOFILE */
	int			cpu_weight;		/* 1..10000, cgroup v2 cpu.weight; v1
								 * cpu.shares = weight * 1024 / 100 */
	int64_t		tmp_bytes;		/* size of the tmpfs behind /tmp and /dev/shm
								 * (one budget for both; inodes follow from
								 * it); must be > 0 */
} NxLimits;

/* The host's cgroup layout, found once by NxCgroupDetect. */
typedef enum NxCgroupMode
{
	NX_CGROUP_NONE,				/* no usable delegated cgroup */
	NX_CGROUP_V1,				/* v1: one directory per controller */
	NX_CGROUP_V2				/* v2: one delegated directory */
} NxCgroupMode;

typedef struct NxCgroupLayout
{
	NxCgroupMode mode;
	/* v2: [0] is the delegated parent; v1: memory, pids, cpu parents */
	char		parent[3][256];
	int			n_parents;
} NxCgroupLayout;

/* What to run: filled by the supervisor from the rows. */
typedef struct NxSandboxSpec
{
	const char *key;			/* unique per deployment, [a-z0-9_-]: cgroup
								 * name, e.g. "d42" */
	const char *hostname;		/* inside the sandbox: the sandbox's name */
	uid_t		tenant_uid;		/* host uid the sandbox runs as */
	gid_t		tenant_gid;
	const char *spawn_helper;	/* path of nx-spawn */
	const char *bwrap;			/* path of bwrap */
	const char *init;			/* path of nx-init on the host */
	const char *binary;			/* the app's file on the host (the blob) */
	const char *binary_name;	/* it appears as /app/<binary_name> */
	const char *pg_socket;		/* host path of the cluster's unix socket file;
								 * NULL = none.  Bound at the same path
								 * inside. */
	char	   *const *argv;	/* app arguments after the binary, NULL-ended */
	char	   *const *envp;	/* NAME=VALUE, NULL-ended: the app's whole
								 * environment */
	NxLimits	limits;
	const NxCgroupLayout *cgroups;
	int			stdout_fd;		/* write ends the sandbox inherits */
	int			stderr_fd;
	int			status_fd;		/* becomes fd 3 (NX_INIT_STATUS_FD) in
								 * nx-init */
	int			listen_fd;		/* the hand-off socket the caller bound (at a
								 * path no sandbox sees) and listens on, a
								 * SOCK_SEQPACKET unix socket; becomes fd 4
								 * (NX_INIT_LISTEN_FD) in nx-init.  The
								 * caller closes its copy after the launch. */
	int			userns_fd;		/* > 2: the sandbox's user namespace, mapped
								 * by an earlier start, to join instead of
								 * mapping a new one (no newuidmap); the
								 * caller keeps its copy.  0: none (0-2 are
								 * never one: the caller's standard streams) */
	int			userns_out_fd;	/* > 2 (and no userns_fd): a unix socket on
								 * which nx-spawn sends the new namespace it
								 * maps (SCM_RIGHTS), for the caller to keep
								 * and pass as userns_fd next time */
	int			seccomp_fd;		/* > 2: a sealed memfd holding the compiled
								 * filter (nx-spawn --export-seccomp), used
								 * instead of compiling it per start; the
								 * caller keeps it.  0: nx-spawn compiles */
} NxSandboxSpec;

/*
 * NxCgroupDetect finds the delegated cgroup parents under root (normally
 * "/sys/fs/cgroup") named name (e.g. "nx_sandbox"): v2 if
 * <root>/<name> (or <root>/unified/<name>) exists, is writable and has the
 * memory and pids controllers enabled for children; else v1 if
 * <root>/{memory,pids,cpu}/<name> exist and are writable.  Never fails:
 * mode NX_CGROUP_NONE with why in err.
 */
extern void NxCgroupDetect(const char *root, const char *name,
						   NxCgroupLayout *layout, char *err, size_t errlen);

/* NxCgroupCreate makes the deployment's cgroup (idempotent) and applies
 * limits.  Returns false with err set on failure. */
extern bool NxCgroupCreate(const NxCgroupLayout *layout, const char *key,
						   const NxLimits *limits, char *err, size_t errlen);

/* NxCgroupKill sends SIGKILL to every process in the deployment's cgroup,
 * (v2: cgroup.kill when present); returns how many were signalled. */
extern int	NxCgroupKill(const NxCgroupLayout *layout, const char *key);

/* NxCgroupRemove removes the (empty) cgroup; false if processes remain. */
extern bool NxCgroupRemove(const NxCgroupLayout *layout, const char *key);

/* NxCgroupList calls fn(key, arg) for every deployment cgroup that exists
 * (so the supervisor can remove those no row wants). */
extern void NxCgroupList(const NxCgroupLayout *layout,
						 void (*fn) (const char *key, void *arg), void *arg);

/* NxCgroupStats reads current memory use (bytes) and cpu time (usec);
 * -1 where unavailable. */
extern void NxCgroupStats(const NxCgroupLayout *layout, const char *key,
						  int64_t *memory_bytes, int64_t *cpu_usec);

/*
 * NxSandboxLaunch starts the chain above with posix_spawn and returns the
 * pid of nx-spawn (which becomes bwrap after exec).  Kill it with
 * NxCgroupKill (and kill(pid)) - never rely on --die-with-parent alone.
 */
extern pid_t NxSandboxLaunch(const NxSandboxSpec *spec, char *err, size_t errlen);

#endif							/* NX_RUNTIME_H */
