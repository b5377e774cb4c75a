/*
 * src/runtime/runtime_int.h
 *	  Declarations shared by the files of the sandbox runtime but not by its
 *	  callers: the steps nx-spawn runs (userns.c, seccomp.c, stage.c) and
 *	  small helpers (util.c).  The supervisor only needs nx_runtime.h.
 *
 * Glossary:
 *	  stage		a private tmpfs in nx-spawn's own mount namespace where the
 *				files the sandbox must see but the tenant uid cannot reach
 *				on the host (the blob under PGDATA, ...) are bind-mounted
 *				while nx-spawn can still reach them; bwrap binds them from
 *				there.
 */
#ifndef NX_RUNTIME_INT_H
#define NX_RUNTIME_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "nx_runtime.h"

/* where nx-spawn mounts its stage tmpfs, in its private mount namespace */
#define NX_STAGE_DIR "/tmp"

/* the stage entries NxSandboxLaunch asks nx-spawn for */
#define NX_STAGE_APP "app"		/* the blob, bound at /app/<binary_name> */
#define NX_STAGE_INIT "init"	/* nx-init, bound at /nx/nx-init */
#define NX_STAGE_PGSOCK "pgsock"	/* the cluster's socket, same path */

/*
 * The tenant's only writable storage: one tmpfs of the sandbox's tmp_size
 * (and an inode limit) that nx-spawn mounts in the stage, with two 1777
 * directories bwrap binds at /tmp and /dev/shm.  bwrap 0.8's own --tmpfs
 * takes --size but no nr_inodes, and its --dev puts /dev/shm inside a /dev
 * tmpfs of half the host's memory.
 */
#define NX_STAGE_TMPFS "tmpfs"
#define NX_STAGE_TMPFS_TMP NX_STAGE_TMPFS "/tmp"
#define NX_STAGE_TMPFS_SHM NX_STAGE_TMPFS "/shm"

/* nx-spawn's exit status when one of its own steps fails */
#define NX_SPAWN_EXIT_FAILURE 125

/* util.c */
extern bool NxKeyValid(const char *key);
extern void NxSetErr(char *err, size_t errlen, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));
extern bool NxPathJoin(char *buf, size_t len, const char *dir,
					   const char *name);
extern bool NxWriteFile(const char *path, const char *value, int *err_no);
extern ssize_t NxReadFile(const char *path, char *buf, size_t size);

/* userns.c: become root of a new user namespace mapped to the tenant */
extern bool NxUsernsEnter(uid_t tenant_uid, gid_t tenant_gid, int extra_flags,
						  char *err, size_t errlen);
extern bool NxUsernsJoin(int ns_fd, uid_t tenant_uid, gid_t tenant_gid,
						 int extra_flags, char *err, size_t errlen);
extern void NxUsernsExport(int sock);
extern bool NxUsernsBecomeRoot(char *err, size_t errlen);

/* stage.c: host files bwrap must bind but the tenant uid cannot reach */
typedef struct NxStageEntry
{
	const char *name;			/* NX_STAGE_DIR/<name> */
	const char *path;			/* the host path */
	int			fd;				/* O_PATH, between NxStageOpen and Mount */
	bool		is_dir;
} NxStageEntry;

extern bool NxStageNameValid(const char *name);
extern bool NxStageOpen(NxStageEntry *entries, int n, char *err, size_t errlen);
extern bool NxStageMount(NxStageEntry *entries, int n, char *err, size_t errlen);
extern bool NxStageTenantTmpfs(unsigned long long bytes, unsigned long long inodes,
							   char *err, size_t errlen);

/* seccomp.c: the sandbox's filter, as BPF in a memfd for bwrap --seccomp */
extern int	NxSeccompMemfd(char *err, size_t errlen);
extern bool NxSeccompExportPfc(int fd, char *err, size_t errlen);
extern bool NxSeccompExportBpf(int fd, char *err, size_t errlen);
extern int	NxSeccompReopen(int fd, char *err, size_t errlen);

#endif							/* NX_RUNTIME_INT_H */
