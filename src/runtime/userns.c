/*
 * src/runtime/userns.c
 *	  Entering the tenant's user namespace: nx-spawn (still the cluster's
 *	  uid) creates a new user namespace and has it mapped so that uid/gid 0
 *	  inside is the tenant uid/gid on the host, then becomes that root.
 *	  From then on everything it does (and bwrap, and the sandbox) runs as
 *	  the tenant uid on the host: never the cluster's uid (invariant I10).
 *
 * Only the cluster user's subordinate ids (/etc/subuid, /etc/subgid) can be
 * mapped by an unprivileged process, and only through the setuid helpers
 * newuidmap/newgidmap, which must run outside the new namespace.  So a
 * short-lived child is forked before unshare(), waits on a pipe until the
 * parent is in the new namespace, runs both helpers against the parent's
 * pid, and reports failures back through a second pipe.  fork() is fine
 * here: this runs in the small nx-spawn process, never in a backend.
 *
 * Glossary:
 *	  kuid	the uid the kernel sees, i.e. on the host.  Between unshare()
 *			and NxUsernsBecomeRoot() nx-spawn's kuid is still the cluster's
 *			uid while it already holds every capability in the new
 *			namespace; stage.c uses that window.
 *
 * Mapping costs a fork and two setuid helpers (about 12 ms per start on
 * this kind of machine), so it is done once per sandbox: when the sandbox
 * is made (nx-spawn --map-userns), or else at its first start, nx-spawn
 * exports the mapped namespace to the supervisor (NxUsernsExport), which
 * keeps the descriptor, and later starts of that sandbox join it
 * (NxUsernsJoin) and create only their own mount namespace under it.
 * bwrap then nests its own user namespace as before.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime_int.h"
#include "../include/nx_scm.h"

extern char **environ;

/*
 * read_all reads fd until EOF into buf (NUL-terminated, truncated to size);
 * returns the number of bytes kept.
 */
static size_t
read_all(int fd, char *buf, size_t size)
{
	size_t		got = 0;

	for (;;)
	{
		char		scratch[256];
		ssize_t		n;

		if (got + 1 < size)
			n = read(fd, buf + got, size - 1 - got);
		else
			n = read(fd, scratch, sizeof(scratch));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (got + 1 < size)
			got += n;
	}
	buf[got] = '\0';
	/* one line is enough for an error message */
	while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == ' '))
		buf[--got] = '\0';
	return got;
}

/* one running newuidmap/newgidmap */
typedef struct MapJob
{
	const char *prog;
	pid_t		pid;
	int			errfd;			/* its stdout+stderr */
	int			spawn_err;		/* posix_spawn's error, 0 if it runs */
} MapJob;

/*
 * map_start starts "PROG PID 0 ID 1" (newuidmap or newgidmap) with its
 * output on a pipe; /usr/bin/PROG is preferred to a PATH search.
 */
static void
map_start(MapJob *job, const char *prog, pid_t target, unsigned long id)
{
	char		pidstr[32],
				idstr[32],
				path[64];
	char	   *argv[] = {(char *) prog, pidstr, "0", idstr, "1", NULL};
	posix_spawn_file_actions_t fa;
	int			errpipe[2];

	job->prog = prog;
	job->pid = -1;
	job->errfd = -1;
	snprintf(pidstr, sizeof(pidstr), "%d", (int) target);
	snprintf(idstr, sizeof(idstr), "%lu", id);
	snprintf(path, sizeof(path), "/usr/bin/%s", prog);
	if (pipe2(errpipe, O_CLOEXEC) != 0)
	{
		job->spawn_err = errno;
		return;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, errpipe[1], 1);
	posix_spawn_file_actions_adddup2(&fa, errpipe[1], 2);
	if (access(path, X_OK) == 0)
		job->spawn_err = posix_spawn(&job->pid, path, &fa, NULL, argv, environ);
	else
		job->spawn_err = posix_spawnp(&job->pid, prog, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(errpipe[1]);
	if (job->spawn_err != 0)
		close(errpipe[0]);
	else
		job->errfd = errpipe[0];
}

/*
 * map_finish waits for a job started by map_start.  Returns true on
 * success; otherwise writes "PROG: <its output or why it could not run>"
 * into msg.
 */
static bool
map_finish(MapJob *job, char *msg, size_t msglen)
{
	char		out[200];
	int			status = 0;

	if (job->spawn_err != 0)
	{
		snprintf(msg, msglen, "%s: cannot run it: %s (is the uidmap package installed?)",
				 job->prog, strerror(job->spawn_err));
		return false;
	}
	read_all(job->errfd, out, sizeof(out));
	close(job->errfd);
	while (waitpid(job->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return true;
	if (out[0] != '\0')
		snprintf(msg, msglen, "%s", out);
	else
		snprintf(msg, msglen, "%s: failed with status %d", job->prog, status);
	return false;
}

/*
 * map_child is the body of the helper child: wait until the parent has
 * unshared (one byte on go_fd; EOF means it gave up), run newuidmap and
 * newgidmap on it concurrently (each is a setuid exec costing milliseconds),
 * report any failure text on res_fd, exit.
 */
static void
map_child(int go_fd, int res_fd, uid_t uid, gid_t gid)
{
	char		c,
				msg[NX_RUNTIME_ERRLEN];
	pid_t		parent = getppid();
	ssize_t		n;
	MapJob		ujob,
				gjob;
	bool		uok,
				gok;

	do
		n = read(go_fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		_exit(0);
	msg[0] = '\0';
	map_start(&ujob, "newuidmap", parent, uid);
	map_start(&gjob, "newgidmap", parent, gid);
	uok = map_finish(&ujob, msg, sizeof(msg));
	gok = uok ? map_finish(&gjob, msg, sizeof(msg)) :
		map_finish(&gjob, msg + strlen(msg), 0);	/* reap, keep uid's message */
	if (!uok || !gok)
	{
		if (write(res_fd, msg, strlen(msg)) < 0)
			_exit(2);
		_exit(1);
	}
	_exit(0);
}

/*
 * subid_covers says whether file (/etc/subuid or /etc/subgid) gives the
 * user pw a range containing id.  Used only to explain a failed mapping.
 */
static bool
subid_covers(const char *file, const struct passwd *pw, unsigned long id)
{
	FILE	   *f = fopen(file, "re");
	char		line[512];
	bool		found = false;

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
	{
		char	   *name = strtok(line, ":\n");
		char	   *start = strtok(NULL, ":\n");
		char	   *count = strtok(NULL, ":\n");
		char		uidstr[32];
		unsigned long s,
					c;

		if (name == NULL || start == NULL || count == NULL)
			continue;
		snprintf(uidstr, sizeof(uidstr), "%u", (unsigned) pw->pw_uid);
		if (strcmp(name, pw->pw_name) != 0 && strcmp(name, uidstr) != 0)
			continue;
		s = strtoul(start, NULL, 10);
		c = strtoul(count, NULL, 10);
		found = id >= s && id < s + c;
	}
	fclose(f);
	return found;
}

/*
 * explain_map_failure replaces a helper's terse message with the usual
 * cause when it is that: the tenant id outside the cluster user's range.
 */
static void
explain_map_failure(const char *msg, uid_t cluster_uid, uid_t uid, gid_t gid,
					char *err, size_t errlen)
{
	struct passwd *pw = getpwuid(cluster_uid);
	const char *user = pw ? pw->pw_name : "?";

	if (pw && strncmp(msg, "newuidmap", 9) == 0 &&
		!subid_covers("/etc/subuid", pw, uid))
		NxSetErr(err, errlen, "newuidmap: uid %lu not in %s's /etc/subuid range (run control/nx-setup)",
				 (unsigned long) uid, user);
	else if (pw && strncmp(msg, "newgidmap", 9) == 0 &&
			 !subid_covers("/etc/subgid", pw, gid))
		NxSetErr(err, errlen, "newgidmap: gid %lu not in %s's /etc/subgid range (run control/nx-setup)",
				 (unsigned long) gid, user);
	else
		NxSetErr(err, errlen, "%s", msg);
}

/*
 * NxUsernsEnter moves the calling process into a new user namespace (plus
 * extra_flags, e.g. CLONE_NEWNS, created together with it and so owned by
 * it) whose only uid/gid 0 is tenant_uid/tenant_gid on the host.  The
 * caller's credentials do not change yet (see NxUsernsBecomeRoot).
 * Returns false with err naming the step that failed.
 */
bool
NxUsernsEnter(uid_t tenant_uid, gid_t tenant_gid, int extra_flags,
			  char *err, size_t errlen)
{
	int			go[2],
				res[2];
	pid_t		child;
	int			status;
	char		msg[NX_RUNTIME_ERRLEN];
	bool		ok;
	uid_t		cluster_uid = getuid();	/* reads as 65534 after unshare */

	if (tenant_uid == 0 || tenant_gid == 0 || tenant_uid == getuid() ||
		tenant_gid == getgid())
	{
		NxSetErr(err, errlen, "tenant uid/gid %lu/%lu is root or the cluster's own",
				 (unsigned long) tenant_uid, (unsigned long) tenant_gid);
		return false;
	}
	if (pipe2(go, O_CLOEXEC) != 0 || pipe2(res, O_CLOEXEC) != 0)
	{
		NxSetErr(err, errlen, "pipe: %s", strerror(errno));
		return false;
	}
	child = fork();
	if (child < 0)
	{
		NxSetErr(err, errlen, "fork of the id-mapping helper: %s", strerror(errno));
		return false;
	}
	if (child == 0)
	{
		close(go[1]);
		close(res[0]);
		map_child(go[0], res[1], tenant_uid, tenant_gid);
	}
	close(go[0]);
	close(res[1]);

	if (unshare(CLONE_NEWUSER | extra_flags) != 0)
	{
		int			save = errno;

		close(go[1]);			/* the helper sees EOF and leaves */
		close(res[0]);
		waitpid(child, NULL, 0);
		NxSetErr(err, errlen, "unshare(CLONE_NEWUSER%s): %s%s",
				 extra_flags ? "|..." : "", strerror(save),
				 save == EPERM || save == ENOSPC ?
				 " (are unprivileged user namespaces enabled?)" : "");
		return false;
	}
	ok = write(go[1], "g", 1) == 1;
	close(go[1]);
	read_all(res[0], msg, sizeof(msg));
	close(res[0]);
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (!ok)
	{
		NxSetErr(err, errlen, "id-mapping helper: cannot signal it");
		return false;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
	{
		if (msg[0] != '\0')
			explain_map_failure(msg, cluster_uid, tenant_uid, tenant_gid, err, errlen);
		else
			NxSetErr(err, errlen, "id-mapping helper: died (status %d)", status);
		return false;
	}
	return true;
}

/*
 * NxUsernsBecomeRoot switches to uid/gid 0 of the namespace entered by
 * NxUsernsEnter (the tenant ids on the host) and drops the supplementary
 * groups inherited from the cluster user (e.g. ssl-cert, which can read
 * TLS private keys): nothing of the cluster's identity survives.
 */
bool
NxUsernsBecomeRoot(char *err, size_t errlen)
{
	if (setgroups(0, NULL) != 0)
	{
		NxSetErr(err, errlen, "setgroups(0): %s", strerror(errno));
		return false;
	}
	if (setresgid(0, 0, 0) != 0)
	{
		NxSetErr(err, errlen, "setresgid(0): %s", strerror(errno));
		return false;
	}
	if (setresuid(0, 0, 0) != 0)
	{
		NxSetErr(err, errlen, "setresuid(0): %s", strerror(errno));
		return false;
	}
	return true;
}

/*
 * read_map_line reads the first line of /proc/self/{uid,gid}_map as
 * "inside outside count".
 */
static bool
read_map_line(const char *path, unsigned long *inside, unsigned long *outside,
			  unsigned long *count)
{
	char		buf[256];

	if (NxReadFile(path, buf, sizeof(buf)) <= 0)
		return false;
	return sscanf(buf, "%lu %lu %lu", inside, outside, count) == 3;
}

/*
 * NxUsernsJoin enters the already mapped user namespace ns_fd (one that
 * NxUsernsEnter made for the same tenant earlier and NxUsernsExport handed
 * to the supervisor), then creates the process's own namespaces in
 * extra_flags (e.g. CLONE_NEWNS) under it, so that a restart, wake or new
 * push of a sandbox runs no newuidmap/newgidmap.  The namespace's maps
 * must be exactly uid/gid 0 -> tenant_uid/tenant_gid, one id each: a wrong
 * descriptor fails here rather than running a tenant as someone else.
 * Credentials do not change yet (see NxUsernsBecomeRoot); ns_fd is closed.
 */
bool
NxUsernsJoin(int ns_fd, uid_t tenant_uid, gid_t tenant_gid, int extra_flags,
			 char *err, size_t errlen)
{
	unsigned long in,
				out,
				count;

	if (setns(ns_fd, CLONE_NEWUSER) != 0)
	{
		NxSetErr(err, errlen, "setns(user namespace): %s", strerror(errno));
		close(ns_fd);
		return false;
	}
	close(ns_fd);
	if (!read_map_line("/proc/self/uid_map", &in, &out, &count) ||
		in != 0 || out != (unsigned long) tenant_uid || count != 1)
	{
		NxSetErr(err, errlen, "the kept user namespace does not map uid 0 to %lu alone",
				 (unsigned long) tenant_uid);
		return false;
	}
	if (!read_map_line("/proc/self/gid_map", &in, &out, &count) ||
		in != 0 || out != (unsigned long) tenant_gid || count != 1)
	{
		NxSetErr(err, errlen, "the kept user namespace does not map gid 0 to %lu alone",
				 (unsigned long) tenant_gid);
		return false;
	}
	if (extra_flags != 0 && unshare(extra_flags) != 0)
	{
		NxSetErr(err, errlen, "unshare in the kept user namespace: %s", strerror(errno));
		return false;
	}
	return true;
}

/*
 * NxUsernsExport sends a descriptor of the user namespace the caller just
 * entered with NxUsernsEnter (still the cluster's uid, so it may open it)
 * over the unix socket sock, with SCM_RIGHTS, and closes sock.  The
 * supervisor keeps it for the sandbox's later starts.  Failing to send
 * costs only that reuse: the caller goes on either way.
 */
void
NxUsernsExport(int sock)
{
	int			ns = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);

	if (ns >= 0)
	{
		nx_scm_send_fd(sock, ns);
		close(ns);
	}
	close(sock);
}
