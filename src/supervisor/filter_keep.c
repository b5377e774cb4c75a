/*
 * src/supervisor/filter_keep.c
 *	  The sandboxes' seccomp filter, compiled once per supervisor and
 *	  handed to every start.
 *
 * The filter (src/runtime/seccomp.c) is the same program for every
 * sandbox, and libseccomp compiling it cost nx-spawn a fraction of a
 * millisecond at every start.  So the first start after the supervisor
 * starts has nx-spawn write the compiled program (--export-seccomp) into
 * a memfd, which is then sealed against any change and kept; each start
 * passes it to nx-spawn (--seccomp-fd), which reopens it for bwrap.  The
 * memfd never reaches a sandbox (nx-spawn closes it before bwrap runs),
 * and a sealed memfd cannot be changed by anyone who holds it.
 *
 * Nothing here is needed for correctness: when the export fails (logged
 * once), or the descriptor budget is spent, nx-spawn compiles the filter
 * itself at each start, as before.
 */
#include "filter_keep.h"
#include "spawn.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage/fd.h"

#define NX_FILTER_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

static int	filter_fd = -1;
static char filter_helper[MAXPGPATH];	/* the nx-spawn that compiled it */
static char failed_helper[MAXPGPATH];	/* the one whose export failed */

/*
 * ExportFilter runs spawn_helper --export-seccomp with its output into a
 * new memfd, waits for it, and seals what it wrote.  The memfd, or -1 with
 * why in why.
 */
static int
ExportFilter(const char *spawn_helper, char *why, size_t whylen)
{
	posix_spawn_file_actions_t actions;
	char	   *argv[] = {(char *) spawn_helper, "--export-seccomp", NULL};
	char	   *envp[] = {NULL};
	struct stat st;
	pid_t		pid;
	int			status;
	int			fd;
	int			rc;

	fd = memfd_create("nx-seccomp", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
	{
		snprintf(why, whylen, "memfd_create: %m");
		return -1;
	}
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&actions, fd, 1);
	rc = NxSpawnChild(&pid, spawn_helper, &actions, argv, envp);
	if (rc != 0)
	{
		snprintf(why, whylen, "could not run %s: %s", spawn_helper, strerror(rc));
		close(fd);
		return -1;
	}
	/* a few milliseconds; the loop's waitpid(-1) cannot run meanwhile */
	while (waitpid(pid, &status, 0) < 0)
	{
		if (errno != EINTR)
		{
			snprintf(why, whylen, "waitpid: %m");
			close(fd);
			return -1;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		snprintf(why, whylen, "%s --export-seccomp failed (wait status %d)", spawn_helper, status);
	else if (fstat(fd, &st) != 0 || st.st_size <= 0 || st.st_size % 8 != 0)
		snprintf(why, whylen, "%s --export-seccomp wrote no BPF program", spawn_helper);
	else if (fcntl(fd, F_ADD_SEALS, NX_FILTER_SEALS) != 0)
		snprintf(why, whylen, "could not seal the filter's memfd: %m");
	else
		return fd;
	close(fd);
	return -1;
}

/*
 * NxSeccompFilterFd returns the sealed memfd of the compiled filter, for
 * NxSandboxSpec.seccomp_fd: exported by spawn_helper on first use (again
 * if the host's nx-spawn changed), or -1: nx-spawn then compiles it.
 */
int
NxSeccompFilterFd(const char *spawn_helper)
{
	char		why[256];
	int			fd;

	if (filter_fd >= 0 && strcmp(filter_helper, spawn_helper) == 0)
		return filter_fd;
	if (strcmp(failed_helper, spawn_helper) == 0)
		return -1;
	if (filter_fd >= 0)
	{
		close(filter_fd);
		ReleaseExternalFD();
		filter_fd = -1;
	}
	if (!AcquireExternalFD())
		return -1;
	fd = ExportFilter(spawn_helper, why, sizeof(why));
	if (fd < 0)
	{
		ReleaseExternalFD();
		strlcpy(failed_helper, spawn_helper, sizeof(failed_helper));
		ereport(LOG,
				(errmsg("nx supervisor: could not compile the sandbox filter once: %s", why),
				 errdetail("nx-spawn compiles it at every start instead.")));
		return -1;
	}
	filter_fd = fd;
	strlcpy(filter_helper, spawn_helper, sizeof(filter_helper));
	failed_helper[0] = '\0';
	return filter_fd;
}
