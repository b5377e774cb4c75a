/*
 * src/supervisor/rundir.c
 *	  The deployments' run directories and hand-off sockets (contract C1,
 *	  src/include/nx_handoff.h): $PGDATA/nx/run/d<id>/init.sock.
 *
 * The supervisor, as the cluster's uid, makes the directory (0700), binds
 * and listens on the socket itself and hands the listening descriptor to
 * nx-init (NxSandboxLaunch's listen_fd).  No sandbox ever sees the
 * directory: nothing a tenant can write lies on the path the router and
 * the supervisor connect to.  The supervisor keeps no copy of the
 * listening socket, so once nx-init is gone, connecting fails at once
 * (ECONNREFUSED) instead of queueing on a socket nobody accepts on.
 *
 * Glossary:
 *	  run directory	$PGDATA/nx/run/<name>, <name> = "d<deployment id>".
 *	  hand-off socket	the SOCK_SEQPACKET socket NX_RUN_SOCKET_NAME in it.
 */
#include "files.h"
#include "rundir.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "nx_handoff.h"

/* connections nx-init may have waiting to be accepted */
#define NX_HANDOFF_BACKLOG 128

/* SocketPath formats the hand-off socket's path; false if it is too long. */
static bool
SocketPath(struct sockaddr_un *addr, const char *name)
{
	char		dir[MAXPGPATH];

	NxStateDirPath(dir, NX_RUN_DIR_NAME, name);
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	return (size_t) snprintf(addr->sun_path, sizeof(addr->sun_path), "%s/%s",
							 dir, NX_RUN_SOCKET_NAME) < sizeof(addr->sun_path);
}

/* RemoveEntry is nftw's callback: remove one entry, never following links. */
static int
RemoveEntry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (remove(path) != 0 && errno != ENOENT)
		ereport(LOG, (errcode_for_file_access(),
					  errmsg("nx supervisor: could not remove \"%s\": %m", path)));
	return 0;
}

/*
 * RemoveTree removes path and, if it is a directory, everything under it,
 * without following symbolic links (a run directory of 0.3.0 could hold
 * whatever its tenant wrote there).
 */
static void
RemoveTree(const char *path)
{
	(void) nftw(path, RemoveEntry, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * NxRunDirListen makes the run directory of deployment `name` afresh (mode
 * 0700, owned by the cluster's uid; whatever was there is removed first)
 * and returns a socket bound at its hand-off path and listening, close-on-
 * exec; -1 with err set on failure.
 */
int
NxRunDirListen(const char *name, char *err, size_t errlen)
{
	char		dir[MAXPGPATH];
	struct sockaddr_un addr;
	int			fd;

	NxStateDirPath(dir, NX_RUN_DIR_NAME, name);
	if (!SocketPath(&addr, name))
	{
		snprintf(err, errlen, "hand-off socket path %s/%s is longer than a unix socket path may be (%zu bytes): use a shorter data directory path",
				 dir, NX_RUN_SOCKET_NAME, sizeof(addr.sun_path) - 1);
		return -1;
	}
	RemoveTree(dir);
	if (mkdir(dir, 0700) != 0)
	{
		snprintf(err, errlen, "could not create %s: %s", dir, strerror(errno));
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *) &addr, sizeof(addr)) != 0 ||
		listen(fd, NX_HANDOFF_BACKLOG) != 0)
	{
		snprintf(err, errlen, "could not listen on %s: %s", addr.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		RemoveTree(dir);
		return -1;
	}
	return fd;
}

/* NxRunDirRemove removes the run directory of deployment `name`. */
void
NxRunDirRemove(const char *name)
{
	char		dir[MAXPGPATH];

	NxStateDirPath(dir, NX_RUN_DIR_NAME, name);
	RemoveTree(dir);
}

/*
 * NxRunDirConnect starts a non-blocking connection to deployment `name`'s
 * hand-off socket and returns it, or -1 (errno set) when nobody listens
 * there, its backlog is full (EAGAIN), or the path is not what this file
 * made.  It follows no symbolic link (the directory and the socket are
 * opened O_NOFOLLOW and connected to through /proc/self/fd), and checks
 * with SO_PEERCRED that the listening socket was made by the cluster's
 * uid: SO_PEERCRED reports whoever called listen(), which here is the
 * supervisor, so it proves the socket is the platform's, not that nx-init
 * is alive or well (a reply does that).  Neither check is needed while the
 * run directory stays out of every sandbox; both keep a mistake there from
 * becoming a hijack.
 */
int
NxRunDirConnect(const char *name)
{
	char		dir[MAXPGPATH];
	char		proc_path[64];
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct ucred cred;
	socklen_t	len = sizeof(cred);
	struct stat st;
	int			dirfd,
				pathfd,
				fd,
				save;

	NxStateDirPath(dir, NX_RUN_DIR_NAME, name);
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		return -1;
	pathfd = openat(dirfd, NX_RUN_SOCKET_NAME, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	save = errno;
	close(dirfd);
	if (pathfd < 0)
	{
		errno = save;
		return -1;
	}
	if (fstat(pathfd, &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_uid != geteuid())
	{
		close(pathfd);
		errno = ENOTSOCK;
		return -1;
	}
	snprintf(proc_path, sizeof(proc_path), "/proc/self/fd/%d", pathfd);
	strlcpy(addr.sun_path, proc_path, sizeof(addr.sun_path));
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *) &addr, sizeof(addr)) != 0)
	{
		save = errno;
		if (fd >= 0)
			close(fd);
		close(pathfd);
		errno = save;
		return -1;
	}
	close(pathfd);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != geteuid())
	{
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

/*
 * NxRunDirsRemoveUnwanted removes every run directory under $PGDATA/nx/run
 * whose deployment in_use (the slots': NxSlotsHas) does not claim:
 * leftovers of a crash, and those of 0.3.0, which were writable by their
 * tenants.
 */
void
NxRunDirsRemoveUnwanted(bool (*in_use) (int64 deployment))
{
	char		run[MAXPGPATH];
	char		path[MAXPGPATH];
	DIR		   *d;
	struct dirent *e;

	NxStateDirPath(run, NX_RUN_DIR_NAME, NULL);
	d = opendir(run);
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL)
	{
		long long	id;
		const char *end;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		/* "d<id>" of a slot stays; anything else here is ours to remove */
		end = NxParseDeploymentName(e->d_name, &id);
		if (end != NULL && *end == '\0')
		{
			if (in_use((int64) id))
				continue;
		}
		snprintf(path, sizeof(path), "%s/%s", run, e->d_name);
		RemoveTree(path);
	}
	closedir(d);
}
