/*
 * t/apps/hostile_probe.c
 *	  A hostile tenant, pushed as an app by t/012_hostile.pl.  Before it
 *	  listens on $PORT it tries to get out of its sandbox in every way the
 *	  test lists, printing one line per attempt:
 *
 *	    BLOCKED <name>: <how it failed>
 *	    ESCAPED <name>: <what succeeded>
 *	    INCONCLUSIVE <name>: <why it could not tell>   (fails the test too)
 *
 *	  then "OWN_DB ok: ..." (the positive control: its own database works)
 *	  and "PROBE DONE", and serves HTTP 200 "probe" on $PORT.
 *
 *	  Arguments are key=value words (see struct Opts); the test passes the
 *	  host's paths, pids and ports the attempts aim at.  Risky attempts run
 *	  in a forked child with an alarm, so the probe neither crashes nor
 *	  hangs, and a system call that succeeds cannot change the probe itself.
 *
 * Build: gcc -O2 -o hostile_probe t/apps/hostile_probe.c -I$(pg_config --includedir) -lpq
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <net/ethernet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

/*
 * seconds an attempt run by in_child may take: each is a few system calls,
 * so this only has to outlast a heavily loaded machine
 */
#define CHILD_TIMEOUT 30

#ifndef AF_PACKET
#define AF_PACKET 17
#endif

/* What the test tells the probe about the host (key=value arguments). */
static struct
{
	const char *pgdata;			/* the cluster's data directory (host path) */
	const char *victim_run;		/* the victim deployment's run dir */
	const char *victim_blob;	/* the victim deployment's blob */
	const char *victim_db;		/* the victim's database */
	const char *victim_role;	/* the victim's role */
	const char *host_ip;		/* a non-loopback address of the host, or "none" */
	const char *abstract;		/* an abstract unix socket the host listens on */
	long		postmaster_pid;
	long		victim_pid;		/* host pid of the victim's nx-init */
	int			cluster_port;	/* the cluster listens on 127.0.0.1:this */
	int			host_port;		/* the test listens on 0.0.0.0:this */
	int			pids_limit;
	int			nofile;
	long long	tmp_bytes;
} opt = {.host_ip = "none"};

/* The sandbox's own connection settings (read before PG* are unset). */
static char *pg_host,
		   *pg_port,
		   *pg_user,
		   *pg_password,
		   *pg_database,
		   *db_url;
static PGconn *own_conn;

/* ---- reporting ---- */

static void
verdict(const char *what, const char *name, const char *fmt, va_list ap)
{
	char		msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* one line each, whatever the message holds */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	printf("%s %s: %s\n", what, name, msg);
	fflush(stdout);
}

static void
blocked(const char *name, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	verdict("BLOCKED", name, fmt, ap);
	va_end(ap);
}

static void
escaped(const char *name, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	verdict("ESCAPED", name, fmt, ap);
	va_end(ap);
}

static void
inconclusive(const char *name, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	verdict("INCONCLUSIVE", name, fmt, ap);
	va_end(ap);
}

/* errname: "EPERM (Operation not permitted)" for the errno e. */
static const char *
errname(int e)
{
	static char buf[8][96];
	static int	slot;
	char	   *b = buf[slot++ % 8];
	const char *n = strerrorname_np(e);

	snprintf(b, 96, "%s (%s)", n ? n : "E?", strerror(e));
	return b;
}

/* syscall_result: a system call that must fail; rc < 0 with errno. */
static void
syscall_result(const char *name, long rc, int err)
{
	if (rc < 0)
		blocked(name, "failed with %s", errname(err));
	else
		escaped(name, "the call succeeded (returned %ld)", rc);
}

/*
 * in_child runs fn(name) in a forked child that prints its own verdict and
 * exits 0.  A child killed by SIGSYS was stopped by seccomp (BLOCKED);
 * anything else that kept it from printing is INCONCLUSIVE.  The child has
 * timeout seconds.
 */
static void
in_child(const char *name, void (*fn) (const char *), int timeout)
{
	pid_t		pid;
	int			st;

	fflush(stdout);
	pid = fork();
	if (pid == 0)
	{
		alarm(timeout);
		fn(name);
		fflush(stdout);
		_exit(0);
	}
	if (pid < 0)
	{
		inconclusive(name, "fork failed: %s", errname(errno));
		return;
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
		{
			inconclusive(name, "waitpid: %s", errname(errno));
			return;
		}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return;
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS)
		blocked(name, "killed by SIGSYS (seccomp)");
	else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
		inconclusive(name, "timed out after %d s", timeout);
	else if (WIFSIGNALED(st))
		inconclusive(name, "child died of signal %d", WTERMSIG(st));
	else
		inconclusive(name, "child exited %d", WEXITSTATUS(st));
}

/* ---- files of the host ---- */

/* try_open: opening path for reading must fail. */
static void
try_open(const char *name, const char *path)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
	{
		blocked(name, "open(%s) failed with %s", path, errname(errno));
		return;
	}
	{
		char		buf[64];
		ssize_t		n = read(fd, buf, sizeof(buf));

		escaped(name, "opened %s and read %zd bytes", path, n);
	}
	close(fd);
}

/* try_list: listing a directory must fail. */
static void
try_list(const char *name, const char *path)
{
	DIR		   *d = opendir(path);
	struct dirent *e;
	int			n = 0;
	char		first[256] = "";

	if (d == NULL)
	{
		blocked(name, "opendir(%s) failed with %s", path, errname(errno));
		return;
	}
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
		{
			if (n++ == 0)
				snprintf(first, sizeof(first), "%s", e->d_name);
		}
	closedir(d);
	escaped(name, "listed %s: %d entries (first: %s)", path, n, first);
}

static void
attempt_files(void)
{
	char		path[4200];

	snprintf(path, sizeof(path), "%s/postgresql.conf", opt.pgdata);
	try_open("read_pgdata_conf", path);
	snprintf(path, sizeof(path), "%s/global/pg_control", opt.pgdata);
	try_open("read_pg_control", path);
	try_list("list_pgdata", opt.pgdata);
	try_open("read_etc_shadow", "/etc/shadow");
	try_list("list_var_lib_postgresql", "/var/lib/postgresql");
	try_list("list_victim_run_dir", opt.victim_run);
	try_open("read_victim_blob", opt.victim_blob);
	try_list("list_host_sys", "/sys/fs/cgroup");

	/* the victim's hand-off socket: connecting would reach its nx-init */
	{
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		int			s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/init.sock", opt.victim_run);
		if (s < 0)
			inconclusive("connect_victim_init_sock", "socket: %s", errname(errno));
		else if (connect(s, (struct sockaddr *) &sa, sizeof(sa)) < 0)
			blocked("connect_victim_init_sock", "connect(%s) failed with %s", sa.sun_path, errname(errno));
		else
			escaped("connect_victim_init_sock", "connected to %s", sa.sun_path);
		if (s >= 0)
			close(s);
	}
}

/* inherited_fds: nothing but stdio (and pipes/sockets) may be open at start */
static void
attempt_inherited_fds(void)
{
	DIR		   *d = opendir("/proc/self/fd");
	struct dirent *e;
	char		list[1024] = "",
				bad[1024] = "";

	if (d == NULL)
	{
		inconclusive("inherited_fds", "opendir /proc/self/fd: %s", errname(errno));
		return;
	}
	while ((e = readdir(d)) != NULL)
	{
		char		p[300],
					target[512];
		ssize_t		n;
		int			fd = atoi(e->d_name);

		if (e->d_name[0] == '.' || fd == dirfd(d))
			continue;
		snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
		n = readlink(p, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%d=%s", list[0] ? "," : "", fd, target);
		if (target[0] == '/' && strcmp(target, "/dev/null") != 0)
			snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad), " %d=%s", fd, target);
	}
	closedir(d);
	if (bad[0])
		escaped("inherited_fds", "files of the outside are open:%s (all: %s)", bad, list);
	else
		blocked("inherited_fds", "only %s", list);
}

/* ---- processes ---- */

static void
read_cmdline(long pid, char *buf, size_t len)
{
	char		p[64];
	int			fd;
	ssize_t		n;

	snprintf(p, sizeof(p), "/proc/%ld/cmdline", pid);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, len - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	for (ssize_t i = 0; i < n - 1; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
}

static void
attempt_processes(void)
{
	DIR		   *d = opendir("/proc");
	struct dirent *e;
	char		seen[2048] = "",
				foreign[2048] = "";
	int			n = 0;
	char		cmd[256];
	char		p[64];
	struct stat st;
	long		rc;

	if (d == NULL)
		inconclusive("proc_only_own_pids", "opendir /proc: %s", errname(errno));
	else
	{
		while ((e = readdir(d)) != NULL)
		{
			long		pid = strtol(e->d_name, NULL, 10);

			if (pid <= 0)
				continue;
			n++;
			read_cmdline(pid, cmd, sizeof(cmd));
			snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "%s%ld=%.40s", seen[0] ? "," : "", pid, cmd);
			/* the sandbox holds nx-init and this probe (and its children) */
			if (strncmp(cmd, "/nx/nx-init", 11) != 0 && strncmp(cmd, "/app/", 5) != 0)
				snprintf(foreign + strlen(foreign), sizeof(foreign) - strlen(foreign), " %ld=%.60s", pid, cmd);
		}
		closedir(d);
		if (foreign[0])
			escaped("proc_only_own_pids", "/proc shows processes not of the sandbox:%s", foreign);
		else
			blocked("proc_only_own_pids", "/proc lists %d pids, all the sandbox's: %s", n, seen);
	}

	snprintf(p, sizeof(p), "/proc/%ld", opt.postmaster_pid);
	if (stat(p, &st) < 0)
		blocked("proc_postmaster", "%s: %s", p, errname(errno));
	else
	{
		read_cmdline(opt.postmaster_pid, cmd, sizeof(cmd));
		if (strstr(cmd, "postgres") || strstr(cmd, "postmaster"))
			escaped("proc_postmaster", "the host postmaster is visible as %s: %s", p, cmd);
		else
			blocked("proc_postmaster", "%s exists inside but is a sandbox process (%s)", p, cmd);
	}

	rc = kill((pid_t) opt.postmaster_pid, 0);
	syscall_result("kill_postmaster_0", rc, errno);
	rc = kill((pid_t) opt.postmaster_pid, SIGKILL);
	syscall_result("kill_postmaster_sigkill", rc, errno);
	rc = kill((pid_t) opt.victim_pid, SIGKILL);
	syscall_result("kill_victim_sigkill", rc, errno);
}

/* ---- system calls the seccomp filter and the namespaces refuse ---- */

static void
c_ptrace_attach(const char *name)
{
	long		rc = ptrace(PTRACE_ATTACH, 1, NULL, NULL);
	int			e = errno;

	if (rc == 0)
		ptrace(PTRACE_DETACH, 1, NULL, NULL);
	syscall_result(name, rc, e);
}

static void
c_ptrace_traceme(const char *name)
{
	long		rc = ptrace(PTRACE_TRACEME, 0, NULL, NULL);

	syscall_result(name, rc, errno);
}

static void
c_process_vm_readv(const char *name)
{
	char		buf[16];
	struct iovec local = {buf, sizeof(buf)};
	struct iovec remote = {(void *) 0x400000, sizeof(buf)};
	long		rc = syscall(SYS_process_vm_readv, 1, &local, 1, &remote, 1, 0);

	syscall_result(name, rc, errno);
}

/* nx-init is not dumpable: its descriptors and memory are closed to the app */
static void
c_proc_init_fd(const char *name)
{
	DIR		   *d = opendir("/proc/1/fd");
	int			fd;

	if (d != NULL)
	{
		closedir(d);
		escaped(name, "listed /proc/1/fd (nx-init's descriptors)");
		return;
	}
	fd = open("/proc/1/fd/4", O_RDWR | O_CLOEXEC);
	if (fd >= 0)
	{
		close(fd);
		escaped(name, "opened /proc/1/fd/4 (nx-init's hand-off socket)");
		return;
	}
	blocked(name, "opendir /proc/1/fd and open /proc/1/fd/4 failed with %s", errname(errno));
}

static void
c_proc_init_mem(const char *name)
{
	int			fd = open("/proc/1/mem", O_RDONLY | O_CLOEXEC);

	if (fd >= 0)
	{
		close(fd);
		escaped(name, "opened /proc/1/mem (nx-init's memory)");
	}
	else
		blocked(name, "open /proc/1/mem failed with %s", errname(errno));
}

static void
c_pidfd_getfd_init(const char *name)
{
	int			pidfd = (int) syscall(SYS_pidfd_open, 1, 0);
	long		rc;

	if (pidfd < 0)
	{
		blocked(name, "pidfd_open(1) failed with %s", errname(errno));
		return;
	}
	rc = syscall(SYS_pidfd_getfd, pidfd, 4, 0);
	syscall_result(name, rc, errno);
}

static void
c_unshare_user(const char *name)
{
	long		rc = unshare(CLONE_NEWUSER);

	syscall_result(name, rc, errno);
}

static void
c_unshare_ns(const char *name)
{
	long		rc = unshare(CLONE_NEWNS);

	syscall_result(name, rc, errno);
}

static void
c_setns_net(const char *name)
{
	int			fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	long		rc;

	if (fd < 0)
	{
		blocked(name, "open(/proc/self/ns/net) failed with %s", errname(errno));
		return;
	}
	rc = setns(fd, CLONE_NEWNET);
	syscall_result(name, rc, errno);
}

static void
c_clone_newuser(const char *name)
{
	long		rc = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	int			e = errno;

	if (rc == 0)
		_exit(0);
	if (rc > 0)
		waitpid((pid_t) rc, NULL, 0);
	syscall_result(name, rc, e);
}

static void
c_clone3_newuser(const char *name)
{
	struct clone_args args;
	long		rc;
	int			e;

	memset(&args, 0, sizeof(args));
	args.flags = CLONE_NEWUSER;
	args.exit_signal = SIGCHLD;
	rc = syscall(SYS_clone3, &args, sizeof(args));
	e = errno;
	if (rc == 0)
		_exit(0);
	if (rc > 0)
		waitpid((pid_t) rc, NULL, 0);
	syscall_result(name, rc, e);
}

static void
c_mount_tmpfs(const char *name)
{
	long		rc;

	if (mkdir("/tmp/hp-mnt", 0700) < 0 && errno != EEXIST)
	{
		inconclusive(name, "mkdir /tmp/hp-mnt: %s", errname(errno));
		return;
	}
	rc = mount("none", "/tmp/hp-mnt", "tmpfs", 0, "size=1m");
	syscall_result(name, rc, errno);
}

static void
c_umount(const char *name)
{
	/* /etc/passwd is one of bwrap's bind mounts; nothing reads it later */
	long		rc = umount2("/etc/passwd", MNT_DETACH);

	syscall_result(name, rc, errno);
}

static void
c_fsopen(const char *name)
{
	long		rc = syscall(SYS_fsopen, "tmpfs", 0);

	syscall_result(name, rc, errno);
}

static void
c_keyctl(const char *name)
{
	/* KEYCTL_GET_KEYRING_ID of the session keyring: harmless if allowed */
	long		rc = syscall(SYS_keyctl, 0, -3, 0);

	syscall_result(name, rc, errno);
}

static void
c_add_key(const char *name)
{
	long		rc = syscall(SYS_add_key, "user", "nx-hostile", "v", 1, -2 /* process keyring */ );

	syscall_result(name, rc, errno);
}

static void
c_request_key(const char *name)
{
	long		rc = syscall(SYS_request_key, "user", "nx-hostile", NULL, 0);

	syscall_result(name, rc, errno);
}

static void
c_bpf(const char *name)
{
	union bpf_attr attr;
	long		rc;

	memset(&attr, 0, sizeof(attr));
	attr.map_type = BPF_MAP_TYPE_ARRAY;
	attr.key_size = 4;
	attr.value_size = 4;
	attr.max_entries = 1;
	rc = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
	syscall_result(name, rc, errno);
}

static void
c_perf_event_open(const char *name)
{
	struct perf_event_attr attr;
	long		rc;

	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_SOFTWARE;
	attr.size = sizeof(attr);
	attr.config = PERF_COUNT_SW_TASK_CLOCK;
	attr.exclude_kernel = 1;
	attr.exclude_hv = 1;
	rc = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
	syscall_result(name, rc, errno);
}

static void
c_userfaultfd(const char *name)
{
	long		rc = syscall(SYS_userfaultfd, 0);

	syscall_result(name, rc, errno);
}

static void
c_setuid_root(const char *name)
{
	long		rc = setuid(0);
	int			e = errno;

	if (rc == 0)
	{
		escaped(name, "setuid(0) succeeded, uid now %d", (int) getuid());
		return;
	}
	rc = setgid(0);
	if (rc == 0)
		escaped(name, "setuid(0) failed (%s) but setgid(0) succeeded", errname(e));
	else
		blocked(name, "setuid(0) failed with %s, setgid(0) with %s", errname(e), errname(errno));
}

static void
attempt_syscalls(void)
{
	in_child("ptrace_attach_init", c_ptrace_attach, CHILD_TIMEOUT);
	in_child("ptrace_traceme", c_ptrace_traceme, CHILD_TIMEOUT);
	in_child("process_vm_readv_init", c_process_vm_readv, CHILD_TIMEOUT);
	in_child("proc_init_fd", c_proc_init_fd, CHILD_TIMEOUT);
	in_child("proc_init_mem", c_proc_init_mem, CHILD_TIMEOUT);
	in_child("pidfd_getfd_init", c_pidfd_getfd_init, CHILD_TIMEOUT);
	in_child("unshare_user", c_unshare_user, CHILD_TIMEOUT);
	in_child("unshare_ns", c_unshare_ns, CHILD_TIMEOUT);
	in_child("setns_net", c_setns_net, CHILD_TIMEOUT);
	in_child("clone_newuser", c_clone_newuser, CHILD_TIMEOUT);
	in_child("clone3_newuser", c_clone3_newuser, CHILD_TIMEOUT);
	in_child("fsopen", c_fsopen, CHILD_TIMEOUT);
	in_child("keyctl", c_keyctl, CHILD_TIMEOUT);
	in_child("add_key", c_add_key, CHILD_TIMEOUT);
	in_child("request_key", c_request_key, CHILD_TIMEOUT);
	in_child("bpf", c_bpf, CHILD_TIMEOUT);
	in_child("perf_event_open", c_perf_event_open, CHILD_TIMEOUT);
	in_child("userfaultfd", c_userfaultfd, CHILD_TIMEOUT);
	in_child("setuid_root", c_setuid_root, CHILD_TIMEOUT);
}

/* ---- capabilities and the filter's presence ---- */

static void
attempt_capabilities(void)
{
	FILE	   *f = fopen("/proc/self/status", "r");
	char		line[256];
	char		caps[512] = "";
	bool		nonzero = false;
	int			found = 0;
	char		nnp[32] = "?",
				seccomp[32] = "?";

	if (f == NULL)
	{
		inconclusive("capabilities", "/proc/self/status: %s", errname(errno));
		return;
	}
	while (fgets(line, sizeof(line), f))
	{
		unsigned long long v;
		char		key[32];

		if (sscanf(line, "%31[^:]: %llx", key, &v) == 2 && strncmp(key, "Cap", 3) == 0)
		{
			found++;
			if (v != 0)
				nonzero = true;
			snprintf(caps + strlen(caps), sizeof(caps) - strlen(caps), " %s=%016llx", key, v);
		}
		else if (strncmp(line, "NoNewPrivs:", 11) == 0)
			sscanf(line + 11, "%31s", nnp);
		else if (strncmp(line, "Seccomp:", 8) == 0)
			sscanf(line + 8, "%31s", seccomp);
	}
	fclose(f);
	if (found < 3)
		inconclusive("capabilities", "no Cap lines in /proc/self/status");
	else if (nonzero)
		escaped("capabilities", "the probe holds capabilities:%s", caps);
	else
		blocked("capabilities", "all zero:%s", caps);
	if (strcmp(nnp, "1") == 0 && strcmp(seccomp, "2") == 0)
		blocked("seccomp_no_new_privs", "NoNewPrivs %s, Seccomp %s (filter)", nnp, seccomp);
	else
		escaped("seccomp_no_new_privs", "NoNewPrivs %s, Seccomp %s: no filter or privileges can be gained", nnp, seccomp);
}

/* ---- sockets and the network ---- */

static void
attempt_sockets(void)
{
	int			s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));

	syscall_result("socket_packet", s, errno);
	if (s >= 0)
		close(s);
	s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
	syscall_result("socket_raw_icmp", s, errno);
	if (s >= 0)
		close(s);
}

/* try_connect: a TCP connection to ip:port must fail (within 2 s). */
static void
try_connect(const char *name, const char *ip, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int			s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int			err = 0;

	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1 || s < 0)
	{
		inconclusive(name, "bad address %s or socket: %s", ip, errname(errno));
		if (s >= 0)
			close(s);
		return;
	}
	if (connect(s, (struct sockaddr *) &sa, sizeof(sa)) < 0)
	{
		err = errno;
		if (err == EINPROGRESS)
		{
			struct pollfd pfd = {.fd = s, .events = POLLOUT};
			socklen_t	len = sizeof(err);

			if (poll(&pfd, 1, 2000) == 0)
				err = ETIMEDOUT;
			else if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
				err = errno;
		}
	}
	close(s);
	if (err)
		blocked(name, "connect(%s:%d) failed with %s", ip, port, errname(err));
	else
		escaped(name, "connected to %s:%d", ip, port);
}

static void
attempt_network(void)
{
	struct ifaddrs *ifa,
			   *i;

	try_connect("tcp_cluster_port", "127.0.0.1", opt.cluster_port);
	try_connect("tcp_host_listener", "127.0.0.1", opt.host_port);
	try_connect("tcp_port_22", "127.0.0.1", 22);
	try_connect("tcp_port_8080", "127.0.0.1", 8080);
	if (strcmp(opt.host_ip, "none") == 0)
		blocked("tcp_host_ip", "the host has no non-loopback address to try");
	else
		try_connect("tcp_host_ip", opt.host_ip, opt.host_port);
	try_connect("tcp_outside", "1.1.1.1", 80);

	/* abstract unix sockets belong to the network namespace */
	{
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		size_t		len = strlen(opt.abstract);
		int			s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (len > sizeof(sa.sun_path) - 1)
			len = sizeof(sa.sun_path) - 1;
		memcpy(sa.sun_path + 1, opt.abstract, len);
		if (s < 0)
			inconclusive("abstract_unix", "socket: %s", errname(errno));
		else if (connect(s, (struct sockaddr *) &sa, offsetof(struct sockaddr_un, sun_path) + 1 + len) < 0)
			blocked("abstract_unix", "connect(@%s) failed with %s", opt.abstract, errname(errno));
		else
			escaped("abstract_unix", "connected to the host's abstract socket @%s", opt.abstract);
		if (s >= 0)
			close(s);
	}

	if (getifaddrs(&ifa) < 0)
	{
		inconclusive("net_interfaces", "getifaddrs: %s", errname(errno));
		return;
	}
	{
		char		names[512] = "";
		bool		other = false;

		for (i = ifa; i; i = i->ifa_next)
		{
			if (strstr(names, i->ifa_name) == NULL)
				snprintf(names + strlen(names), sizeof(names) - strlen(names), " %s", i->ifa_name);
			if (strcmp(i->ifa_name, "lo") != 0)
				other = true;
		}
		freeifaddrs(ifa);
		if (other)
			escaped("net_interfaces", "interfaces besides lo:%s", names);
		else
			blocked("net_interfaces", "only loopback:%s", names);
	}
}

/* ---- the database ---- */

/* try_login: logging in as user to dbname (password NULL: none) must fail */
static void
try_login(const char *name, const char *user, const char *dbname, const char *password)
{
	const char *keys[] = {"host", "port", "dbname", "user", "password", "connect_timeout", NULL};
	const char *vals[] = {pg_host, pg_port, dbname, user, password, "3", NULL};
	PGconn	   *c;

	if (password == NULL)
	{
		keys[4] = "connect_timeout";
		vals[4] = "3";
		keys[5] = NULL;
	}
	c = PQconnectdbParams(keys, vals, 0);
	if (PQstatus(c) == CONNECTION_OK)
	{
		PGresult   *r = PQexec(c, "SELECT current_user, current_database(), "
							  "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)");

		if (PQresultStatus(r) == PGRES_TUPLES_OK)
			escaped(name, "logged in as %s to database %s (superuser: %s)",
					PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2));
		else
			escaped(name, "logged in as %s to database %s", user, dbname);
		PQclear(r);
	}
	else
		blocked(name, "login as %s to %s refused: %s", user, dbname, PQerrorMessage(c));
	PQfinish(c);
}

/* try_sql: a statement in the probe's own database that must fail */
static void
try_sql(const char *name, const char *sql)
{
	PGresult   *r;

	if (own_conn == NULL)
	{
		inconclusive(name, "no connection to its own database");
		return;
	}
	r = PQexec(own_conn, sql);
	if (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)
		escaped(name, "%s succeeded", sql);
	else
		blocked(name, "%s: %s", sql, PQerrorMessage(own_conn));
	PQclear(r);
}

static void
attempt_database(void)
{
	PGresult   *r;

	if (db_url == NULL || pg_host == NULL || pg_user == NULL || pg_password == NULL)
	{
		inconclusive("own_db", "DATABASE_URL, PGHOST, PGUSER or PGPASSWORD missing");
		return;
	}
	own_conn = PQconnectdb(db_url);
	if (PQstatus(own_conn) != CONNECTION_OK)
	{
		printf("OWN_DB failed: %s\n", PQerrorMessage(own_conn));
		PQfinish(own_conn);
		own_conn = NULL;
	}
	else
	{
		PQclear(PQexec(own_conn, "SET statement_timeout = '3s'"));
		r = PQexec(own_conn, "CREATE TABLE IF NOT EXISTS hostile (n serial, at timestamptz DEFAULT now());"
				   "INSERT INTO hostile DEFAULT VALUES;"
				   "SELECT count(*), current_user, current_database() FROM hostile");
		if (PQresultStatus(r) == PGRES_TUPLES_OK && atoi(PQgetvalue(r, 0, 0)) >= 1)
			printf("OWN_DB ok: wrote and read back %s row(s) as %s in %s\n",
				   PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2));
		else
			printf("OWN_DB failed: %s\n", PQerrorMessage(own_conn));
		PQclear(r);
	}
	fflush(stdout);

	try_login("pg_postgres_no_password", "postgres", "postgres", NULL);
	try_login("pg_postgres_own_password", "postgres", "postgres", pg_password);
	try_login("pg_victim_wrong_password", opt.victim_role, opt.victim_db, "wrong-password");
	try_login("pg_victim_db_own_creds", pg_user, opt.victim_db, pg_password);
	try_login("pg_postgres_db_own_creds", pg_user, "postgres", pg_password);
	try_login("pg_template1_own_creds", pg_user, "template1", pg_password);

	try_sql("sql_read_server_file", "SELECT pg_read_file('postgresql.conf')");
	try_sql("sql_copy_program", "COPY (SELECT 1) TO PROGRAM 'true'");
	try_sql("sql_alter_role_superuser", "ALTER ROLE CURRENT_USER SUPERUSER");
	try_sql("sql_set_role_postgres", "SET ROLE postgres");
}

/* ---- resource limits ---- */

static void
attempt_fork_bomb(void)
{
	static pid_t kids[4096];
	int			n = 0,
				err = 0;

	fflush(stdout);
	while (n < 4096)
	{
		pid_t		pid = fork();

		if (pid == 0)
		{
			alarm(30);			/* even if the probe died, these go */
			for (;;)
				pause();
		}
		if (pid < 0)
		{
			err = errno;
			break;
		}
		kids[n++] = pid;
	}
	for (int i = 0; i < n; i++)
		kill(kids[i], SIGKILL);
	for (int i = 0; i < n; i++)
		while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
			;
	if (err == 0 || n >= opt.pids_limit)
		escaped("fork_bomb", "%d forks succeeded (pids_limit %d)", n, opt.pids_limit);
	else
		blocked("fork_bomb", "fork failed with %s after %d children (pids_limit %d)",
				errname(err), n, opt.pids_limit);
}

static void
attempt_memory_bomb(void)
{
	int			fds[2];
	pid_t		pid;
	int			st;
	int			mib = 0,
				v;
	const size_t step = 16 << 20;

	if (pipe2(fds, O_CLOEXEC) < 0)
	{
		inconclusive("memory_bomb", "pipe: %s", errname(errno));
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0)
	{
		close(fds[0]);
		alarm(15);
		for (v = 16; v <= 1024; v += 16)
		{
			char	   *p = mmap(NULL, step, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (p == MAP_FAILED)
				_exit(3);
			memset(p, 0x5a, step);
			if (write(fds[1], &v, sizeof(v)) != sizeof(v))
				_exit(4);
		}
		_exit(0);
	}
	close(fds[1]);
	if (pid < 0)
	{
		close(fds[0]);
		inconclusive("memory_bomb", "fork: %s", errname(errno));
		return;
	}
	while (read(fds[0], &v, sizeof(v)) == sizeof(v))
		mib = v;
	close(fds[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
		{
			inconclusive("memory_bomb", "waitpid: %s", errname(errno));
			return;
		}
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
		blocked("memory_bomb", "the child was killed (SIGKILL, OOM) after touching %d MiB", mib);
	else if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		escaped("memory_bomb", "the child touched %d MiB and exited normally", mib);
	else if (WIFSIGNALED(st))
		inconclusive("memory_bomb", "the child died of signal %d after %d MiB", WTERMSIG(st), mib);
	else
		inconclusive("memory_bomb", "the child exited %d after %d MiB", WEXITSTATUS(st), mib);
}

static void
attempt_fd_exhaustion(void)
{
	static int	fds[200000];
	int			n = 0,
				err = 0,
				open_before = 0;
	struct rlimit rl;
	DIR		   *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (d)
	{
		while ((e = readdir(d)) != NULL)
			if (e->d_name[0] != '.')
				open_before++;
		closedir(d);
		open_before--;			/* the listing's own */
	}
	while (n < 200000)
	{
		int			fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (fd < 0)
		{
			err = errno;
			break;
		}
		fds[n++] = fd;
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
	getrlimit(RLIMIT_NOFILE, &rl);
	if (err == 0 || n + open_before > opt.nofile)
		escaped("fd_exhaustion", "opened %d descriptors (+%d open before; open_files_limit %d, rlimit %llu/%llu)",
				n, open_before, opt.nofile, (unsigned long long) rl.rlim_cur, (unsigned long long) rl.rlim_max);
	else
		blocked("fd_exhaustion", "open failed with %s after %d descriptors (+%d open before; open_files_limit %d)",
				errname(err), n, open_before, opt.nofile);

	/* and the hard limit cannot be raised */
	{
		struct rlimit more = {rl.rlim_max * 4 + 1024, rl.rlim_max * 4 + 1024};
		long		rc = setrlimit(RLIMIT_NOFILE, &more);

		if (rc == 0)
		{
			escaped("raise_rlimit_nofile", "raised RLIMIT_NOFILE from %llu to %llu",
					(unsigned long long) rl.rlim_max, (unsigned long long) more.rlim_max);
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		else
			blocked("raise_rlimit_nofile", "setrlimit above %llu failed with %s",
					(unsigned long long) rl.rlim_max, errname(errno));
	}
}

static void
attempt_tmp_fill(void)
{
	static char block[65536];
	int			fd = open("/tmp/hostile-fill", O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
	long long	total = 0;
	const long long cap = 256LL << 20;
	int			err = 0;
	time_t		start = time(NULL);

	if (fd < 0)
	{
		inconclusive("tmp_fill", "open /tmp/hostile-fill: %s", errname(errno));
		return;
	}
	memset(block, 'x', sizeof(block));
	while (total < cap && time(NULL) - start < 5)
	{
		ssize_t		n = write(fd, block, sizeof(block));

		if (n < 0)
		{
			err = errno;
			break;
		}
		total += n;
	}
	close(fd);
	unlink("/tmp/hostile-fill");
	if (err == ENOSPC && total <= opt.tmp_bytes)
		blocked("tmp_fill", "write failed with ENOSPC after %lld bytes (tmp_size %lld)", total, opt.tmp_bytes);
	else if (total > opt.tmp_bytes)
		escaped("tmp_fill", "wrote %lld bytes to /tmp (tmp_size %lld)", total, opt.tmp_bytes);
	else
		inconclusive("tmp_fill", "stopped after %lld bytes with %s", total, err ? errname(err) : "timeout");
}

/*
 * attempt_shm_fill: /dev/shm shares /tmp's budget: writing there stops with
 * ENOSPC within tmp_size, and so does creating empty files (the inodes).
 */
static void
attempt_shm_fill(void)
{
	static char block[65536];
	int			fd = open("/dev/shm/hostile-fill", O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
	long long	total = 0;
	long		files = 0;
	int			err = 0;
	char		path[64];

	if (fd < 0)
	{
		inconclusive("shm_fill", "open /dev/shm/hostile-fill: %s", errname(errno));
		return;
	}
	memset(block, 'x', sizeof(block));
	while (total < (256LL << 20))
	{
		ssize_t		n = write(fd, block, sizeof(block));

		if (n < 0)
		{
			err = errno;
			break;
		}
		total += n;
	}
	close(fd);
	unlink("/dev/shm/hostile-fill");
	if (err == ENOSPC && total <= opt.tmp_bytes)
		blocked("shm_fill", "write failed with ENOSPC after %lld bytes (tmp_size %lld)", total, opt.tmp_bytes);
	else
		escaped("shm_fill", "wrote %lld bytes to /dev/shm (tmp_size %lld), stopped with %s",
				total, opt.tmp_bytes, err ? errname(err) : "no error");

	/* inodes: empty files until the tmpfs refuses */
	for (err = 0; files < 10000000; files++)
	{
		snprintf(path, sizeof(path), "/tmp/hi%ld", files);
		fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0)
		{
			err = errno;
			break;
		}
		close(fd);
	}
	for (long i = 0; i < files; i++)
	{
		snprintf(path, sizeof(path), "/tmp/hi%ld", i);
		unlink(path);
	}
	if (err == ENOSPC && files <= opt.tmp_bytes / 8192)
		blocked("tmp_inodes", "creating files failed with ENOSPC after %ld files (tmp_size %lld: at most %lld inodes)",
				files, opt.tmp_bytes, opt.tmp_bytes / 8192);
	else
		escaped("tmp_inodes", "created %ld empty files (tmp_size %lld), stopped with %s",
				files, opt.tmp_bytes, err ? errname(err) : "no error");
}

/* ---- terminals ---- */

static void
c_tiocsti_pty(const char *name)
{
	int			m = posix_openpt(O_RDWR | O_NOCTTY);
	int			s;
	char		c = 'x';
	const char *sn;
	long		rc;

	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || (sn = ptsname(m)) == NULL)
	{
		blocked(name, "no pseudo-terminal to inject into: %s", errname(errno));
		return;
	}
	/* a new session whose controlling terminal is the pty's slave */
	setsid();
	s = open(sn, O_RDWR);
	if (s < 0)
	{
		blocked(name, "open(%s) failed with %s", sn, errname(errno));
		return;
	}
	ioctl(s, TIOCSCTTY, 0);
	rc = ioctl(s, TIOCSTI, &c);
	if (rc < 0)
		blocked(name, "ioctl(%s, TIOCSTI) on its controlling terminal failed with %s", sn, errname(errno));
	else
		escaped(name, "ioctl(%s, TIOCSTI) injected a character into its controlling terminal", sn);
}

static void
attempt_tty(void)
{
	char		c = 'x';
	long		rc = ioctl(0, TIOCSTI, &c);
	int			fd;

	syscall_result("tiocsti_stdin", rc, errno);
	fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		blocked("tiocsti_dev_tty", "no controlling terminal: open(/dev/tty) failed with %s", errname(errno));
	else
	{
		rc = ioctl(fd, TIOCSTI, &c);
		syscall_result("tiocsti_dev_tty", rc, errno);
		close(fd);
	}
	in_child("tiocsti_pty", c_tiocsti_pty, CHILD_TIMEOUT);
}

/* ---- writing the read-only filesystem ---- */

static void
try_create(const char *name, const char *path)
{
	int			fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);

	if (fd < 0)
		blocked(name, "creating %s failed with %s", path, errname(errno));
	else
	{
		escaped(name, "created %s", path);
		close(fd);
		unlink(path);
	}
}

static void
attempt_writes(void)
{
	char		self[4096];
	ssize_t		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int			fd;

	try_create("write_root", "/hostile-was-here");
	try_create("write_usr", "/usr/hostile-was-here");
	try_create("write_etc", "/etc/hostile-was-here");
	try_create("write_app_dir", "/app/hostile-was-here");
	try_create("write_dev", "/dev/hostile-was-here");
	try_create("write_run_nx", "/run/nx/hostile-was-here");
	if (n <= 0)
	{
		inconclusive("write_app_binary", "readlink /proc/self/exe: %s", errname(errno));
		return;
	}
	self[n] = '\0';
	fd = open(self, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		blocked("write_app_binary", "open(%s, O_WRONLY) failed with %s", self, errname(errno));
	else
	{
		escaped("write_app_binary", "opened its own binary %s for writing", self);
		close(fd);
	}
}

/* ---- then be an ordinary app ---- */

static void
serve(void)
{
	const char *port_env = getenv("PORT");
	struct sockaddr_in addr = {.sin_family = AF_INET};
	int			one = 1;
	int			lfd;

	if (port_env == NULL)
	{
		fprintf(stderr, "hostile_probe: PORT is not set\n");
		exit(2);
	}
	addr.sin_port = htons(atoi(port_env));
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) < 0 || listen(lfd, 64) < 0)
	{
		perror("hostile_probe: listen");
		exit(1);
	}
	for (;;)
	{
		static const char response[] =
			"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nprobe";
		char		buf[4096];
		int			cfd = accept(lfd, NULL, NULL);

		if (cfd < 0)
			continue;
		if (read(cfd, buf, sizeof(buf)) > 0 &&
			write(cfd, response, sizeof(response) - 1) < 0)
			perror("hostile_probe: write");
		close(cfd);
	}
}

static char *
env_copy(const char *name)
{
	const char *v = getenv(name);

	return v ? strdup(v) : NULL;
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	for (int i = 1; i < argc; i++)
	{
		char	   *eq = strchr(argv[i], '=');
		const char *k = argv[i],
				   *v;

		if (eq == NULL)
			continue;
		*eq = '\0';
		v = eq + 1;
		if (strcmp(k, "pgdata") == 0)
			opt.pgdata = v;
		else if (strcmp(k, "victim_run") == 0)
			opt.victim_run = v;
		else if (strcmp(k, "victim_blob") == 0)
			opt.victim_blob = v;
		else if (strcmp(k, "victim_db") == 0)
			opt.victim_db = v;
		else if (strcmp(k, "victim_role") == 0)
			opt.victim_role = v;
		else if (strcmp(k, "host_ip") == 0)
			opt.host_ip = v;
		else if (strcmp(k, "abstract") == 0)
			opt.abstract = v;
		else if (strcmp(k, "postmaster_pid") == 0)
			opt.postmaster_pid = atol(v);
		else if (strcmp(k, "victim_pid") == 0)
			opt.victim_pid = atol(v);
		else if (strcmp(k, "cluster_port") == 0)
			opt.cluster_port = atoi(v);
		else if (strcmp(k, "host_port") == 0)
			opt.host_port = atoi(v);
		else if (strcmp(k, "pids_limit") == 0)
			opt.pids_limit = atoi(v);
		else if (strcmp(k, "nofile") == 0)
			opt.nofile = atoi(v);
		else if (strcmp(k, "tmp_bytes") == 0)
			opt.tmp_bytes = atoll(v);
	}
	if (!opt.pgdata || !opt.victim_run || !opt.victim_blob || !opt.victim_db || !opt.victim_role ||
		!opt.abstract || opt.postmaster_pid <= 0 || opt.victim_pid <= 0 || opt.cluster_port <= 0 ||
		opt.host_port <= 0 || opt.pids_limit <= 0 || opt.nofile <= 0 || opt.tmp_bytes <= 0)
	{
		printf("hostile_probe: missing arguments\n");
		return 2;
	}

	/* keep the sandbox's settings, then forget them so libpq cannot use them */
	pg_host = env_copy("PGHOST");
	pg_port = env_copy("PGPORT");
	pg_user = env_copy("PGUSER");
	pg_password = env_copy("PGPASSWORD");
	pg_database = env_copy("PGDATABASE");
	db_url = env_copy("DATABASE_URL");
	unsetenv("PGPASSWORD");
	unsetenv("PGUSER");
	unsetenv("PGDATABASE");
	unsetenv("DATABASE_URL");
	printf("hostile_probe: uid %d pid %d, database %s\n", (int) getuid(), (int) getpid(),
		   pg_database ? pg_database : "?");

	attempt_inherited_fds();	/* first: before it opens anything */
	attempt_files();
	attempt_processes();
	attempt_syscalls();
	attempt_capabilities();
	attempt_sockets();
	attempt_network();
	attempt_database();
	attempt_tty();
	attempt_writes();
	attempt_fork_bomb();
	attempt_fd_exhaustion();
	attempt_tmp_fill();
	attempt_shm_fill();
	attempt_memory_bomb();
	/* last: a mount or unmount that worked would change the probe's view */
	in_child("mount_tmpfs", c_mount_tmpfs, CHILD_TIMEOUT);
	in_child("umount", c_umount, CHILD_TIMEOUT);

	printf("PROBE DONE\n");
	fflush(stdout);
	serve();
}
