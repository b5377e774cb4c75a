/*
 * src/branchcopy/nx_branch_copy.c
 *	  nx-branch-copy: copy a sandbox's production database into a preview's
 *	  branch database, as pg_dump | pg_restore.  The supervisor runs it
 *	  (src/supervisor/branch.c) as a low-priority child and watches it from
 *	  its wait loop; nothing here runs inside a postmaster child.
 *
 *	  nx-branch-copy BINDIR HOST PORT SRC_DB SRC_ROLE DST_DB DST_ROLE APPNAME
 *
 * pg_dump connects as SRC_ROLE (the production tenant role) to SRC_DB and
 * pg_restore as DST_ROLE (the branch's role) to DST_DB, both over the unix
 * socket in HOST: never as a superuser, since a restore runs the tenant's
 * own functions (index expressions, defaults, constraints).  Passwords
 * come in the environment (NX_SRC_PASSWORD, NX_DST_PASSWORD), never in
 * argv; each tool gets only its own, as PGPASSWORD.  The two backends are
 * named APPNAME/dump and APPNAME/restore (application_name), so that the
 * supervisor finds them in pg_stat_activity: the dump's locks, the
 * restore's progress.
 *
 * The copy's writes go into the WAL stream production's commits wait on,
 * so when NX_COPY_RATE (bytes per second, from nx.branch_copy_rate) is
 * above 0 the dump's output passes through this process, which moves at
 * most that many bytes a second on to pg_restore; at 0 the two tools are
 * joined by a plain pipe.
 *
 * Both tools run with nice 19 and the lowest best-effort I/O priority, and
 * die with this process (PR_SET_PDEATHSIG), which dies with the supervisor.
 * Their stderr is ours (the supervisor points it to a file and reports its
 * tail when the copy fails).
 *
 * Exit status: 0 when both exited 0, 1 when either failed, 2 on bad usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IOPRIO_CLASS_BE 2
#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_WHO_PROCESS 1

/* now_seconds is a monotonic clock in seconds. */
static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * relay moves the dump's output (in) to the restore's input (out) at no
 * more than rate bytes a second, sleeping when it is ahead, until the
 * dump's end or a write fails (the restore ended: its status says why).
 * Both descriptors are closed.
 */
static void
relay(int in, int out, long long rate)
{
	static char buf[64 * 1024];
	double		start = now_seconds();
	long long	moved = 0;

	for (;;)
	{
		ssize_t		n = read(in, buf, sizeof(buf));
		ssize_t		off = 0;
		double		ahead;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		while (off < n)
		{
			ssize_t		w = write(out, buf + off, n - off);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				goto done;
			off += w;
		}
		moved += n;
		ahead = (double) moved / rate - (now_seconds() - start);
		if (ahead > 0)
		{
			struct timespec ts = {(time_t) ahead, (long) ((ahead - (time_t) ahead) * 1e9)};

			while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
				;
		}
	}
done:
	close(in);
	close(out);
}

/*
 * lower_priority: nice 19 and best-effort I/O level 7 for this process
 * and everything it starts (both are inherited).
 */
static void
lower_priority(void)
{
	if (setpriority(PRIO_PROCESS, 0, 19) != 0)
		perror("nx-branch-copy: setpriority");
	if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0,
				(IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT) | 7) != 0)
		perror("nx-branch-copy: ioprio_set");
}

/*
 * run_tool forks and execs argv with stdin/stdout as given and the
 * environment env; the child dies with us.  Returns its pid, or -1.
 */
static pid_t
run_tool(char *const argv[], char *const env[], int in_fd, int out_fd, int close_fd)
{
	pid_t		pid = fork();

	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (in_fd >= 0 && dup2(in_fd, 0) < 0)
		_exit(127);
	if (out_fd >= 0 && dup2(out_fd, 1) < 0)
		_exit(127);
	if (in_fd > 2)
		close(in_fd);
	if (out_fd > 2)
		close(out_fd);
	if (close_fd >= 0)
		close(close_fd);
	execve(argv[0], argv, env);
	fprintf(stderr, "nx-branch-copy: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* ended_well: did the tool exit 0?  If not, says why on stderr. */
static int
ended_well(const char *tool, int status)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 1;
	if (WIFEXITED(status))
		fprintf(stderr, "nx-branch-copy: %s exited with status %d\n", tool, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		fprintf(stderr, "nx-branch-copy: %s was killed by signal %d\n", tool, WTERMSIG(status));
	return 0;
}

int
main(int argc, char **argv)
{
	const char *src_password = getenv("NX_SRC_PASSWORD");
	const char *dst_password = getenv("NX_DST_PASSWORD");
	char		pg_dump[4096],
				pg_restore[4096];
	char	   *dump_env[5],
			   *restore_env[5];
	char	   *dump_argv[16],
			   *restore_argv[24];
	int			n = 0;
	int			fds[2],
				to_restore[2];
	long long	rate;
	pid_t		dump_pid,
				restore_pid;
	int			dump_status = 0,
				restore_status = 0;
	int			ok;

	if (argc != 9 || src_password == NULL || dst_password == NULL)
	{
		fprintf(stderr, "usage: nx-branch-copy BINDIR HOST PORT SRC_DB SRC_ROLE DST_DB DST_ROLE APPNAME"
				" (passwords in NX_SRC_PASSWORD, NX_DST_PASSWORD)\n");
		return 2;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		return 1;				/* the supervisor is already gone */
	lower_priority();
	snprintf(pg_dump, sizeof(pg_dump), "%s/pg_dump", argv[1]);
	snprintf(pg_restore, sizeof(pg_restore), "%s/pg_restore", argv[1]);

	dump_env[0] = "LC_ALL=C";
	dump_env[1] = "PATH=/usr/bin:/bin";
	if (asprintf(&dump_env[2], "PGPASSWORD=%s", src_password) < 0 ||
		asprintf(&dump_env[3], "PGAPPNAME=%s/dump", argv[8]) < 0)
		return 1;
	dump_env[4] = NULL;
	restore_env[0] = "LC_ALL=C";
	restore_env[1] = "PATH=/usr/bin:/bin";
	if (asprintf(&restore_env[2], "PGPASSWORD=%s", dst_password) < 0 ||
		asprintf(&restore_env[3], "PGAPPNAME=%s/restore", argv[8]) < 0)
		return 1;
	restore_env[4] = NULL;

	/*
	 * pg_dump: custom format without compression (the pipe is local: the
	 * CPU is better spent elsewhere); it waits at most 1 s for a table
	 * lock that production holds, then fails, and the supervisor retries.
	 */
	dump_argv[n++] = pg_dump;
	dump_argv[n++] = "--format=custom";
	dump_argv[n++] = "--compress=0";
	dump_argv[n++] = "--lock-wait-timeout=1s";
	dump_argv[n++] = "--no-password";
	dump_argv[n++] = "--host";
	dump_argv[n++] = argv[2];
	dump_argv[n++] = "--port";
	dump_argv[n++] = argv[3];
	dump_argv[n++] = "--username";
	dump_argv[n++] = argv[5];
	dump_argv[n++] = "--dbname";
	dump_argv[n++] = argv[4];
	dump_argv[n] = NULL;

	/*
	 * pg_restore: everything owned by the branch role, no grants (the
	 * production role and others do not exist for the branch), nothing
	 * that needs a superuser or reaches outside the database
	 */
	n = 0;
	restore_argv[n++] = pg_restore;
	restore_argv[n++] = "--no-owner";
	restore_argv[n++] = "--no-privileges";
	restore_argv[n++] = "--no-tablespaces";
	restore_argv[n++] = "--no-security-labels";
	restore_argv[n++] = "--no-publications";
	restore_argv[n++] = "--no-subscriptions";
	restore_argv[n++] = "--exit-on-error";
	restore_argv[n++] = "--no-password";
	restore_argv[n++] = "--host";
	restore_argv[n++] = argv[2];
	restore_argv[n++] = "--port";
	restore_argv[n++] = argv[3];
	restore_argv[n++] = "--username";
	restore_argv[n++] = argv[7];
	restore_argv[n++] = "--dbname";
	restore_argv[n++] = argv[6];
	restore_argv[n] = NULL;

	rate = getenv("NX_COPY_RATE") ? atoll(getenv("NX_COPY_RATE")) : 0;
	if (rate <= 0)
	{
		/* no limit: the tools share one pipe */
		if (pipe(fds) != 0)
		{
			perror("nx-branch-copy: pipe");
			return 1;
		}
		dump_pid = run_tool(dump_argv, dump_env, -1, fds[1], fds[0]);
		restore_pid = dump_pid < 0 ? -1 : run_tool(restore_argv, restore_env, fds[0], -1, fds[1]);
		close(fds[0]);
		close(fds[1]);
		if (dump_pid < 0 || restore_pid < 0)
		{
			perror("nx-branch-copy: fork");
			return 1;
		}
	}
	else
	{
		/* a pipe each way through us, at most rate bytes a second */
		if (pipe2(fds, O_CLOEXEC) != 0 || pipe2(to_restore, O_CLOEXEC) != 0)
		{
			perror("nx-branch-copy: pipe");
			return 1;
		}
		dump_pid = run_tool(dump_argv, dump_env, -1, fds[1], fds[0]);
		restore_pid = dump_pid < 0 ? -1 : run_tool(restore_argv, restore_env, to_restore[0], -1, to_restore[1]);
		close(fds[1]);
		close(to_restore[0]);
		if (dump_pid < 0 || restore_pid < 0)
		{
			perror("nx-branch-copy: fork");
			return 1;
		}
		signal(SIGPIPE, SIG_IGN);	/* a restore that ended: write fails */
		relay(fds[0], to_restore[1], rate);
	}

	/* both must end well; when one fails, the other is not worth waiting for */
	for (int left = 2; left > 0;)
	{
		int			status;
		pid_t		pid = wait(&status);

		if (pid < 0)
		{
			if (errno == EINTR)
				continue;
			break;
		}
		if (pid == dump_pid)
			dump_status = status;
		else if (pid == restore_pid)
			restore_status = status;
		else
			continue;
		left--;
		if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0) && left > 0)
			kill(pid == dump_pid ? restore_pid : dump_pid, SIGKILL);
	}
	ok = ended_well("pg_dump", dump_status);
	ok = ended_well("pg_restore", restore_status) && ok;
	return ok ? 0 : 1;
}
