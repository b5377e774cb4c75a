/*
 * src/runtime/test_probe.c
 *	  The app test_runtime.c runs inside real sandboxes (linked statically,
 *	  so it needs nothing from the sandbox's /usr).  It looks at its own
 *	  confinement from the inside and prints one "name=value" line per fact
 *	  on stdout, between "READY" and "DONE".
 *
 *	  test_probe report [PGSOCK]   everything below, then sleep until killed
 *	  test_probe ready             print READY and exit 0 (launch timing)
 *	  test_probe alloc MB          touch MB MiB, print ALLOC-DONE, exit
 *	  test_probe forks N           fork N sleeping children, print how many
 *	                               forks succeeded, sleep until killed
 *	  test_probe tmpfill           write /tmp/fill until it fails, then
 *	                               /dev/shm (the same budget), then empty
 *	                               files until the inodes run out
 *
 * In "report", a system call the sandbox must refuse prints its errno name
 * ("sc_mount=EPERM"); one that worked prints "OK".  Positive controls
 * (ok_*) print OK when the normal thing still works.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif
#ifndef AF_PACKET
#define AF_PACKET 17
#endif

extern char **environ;

/* errname gives the symbolic name of the errnos the report cares about. */
static const char *
errname(int e)
{
	switch (e)
	{
		case 0:
			return "OK";
		case EPERM:
			return "EPERM";
		case ENOENT:
			return "ENOENT";
		case EACCES:
			return "EACCES";
		case ENOSYS:
			return "ENOSYS";
		case EAFNOSUPPORT:
			return "EAFNOSUPPORT";
		case EROFS:
			return "EROFS";
		case EINVAL:
			return "EINVAL";
		case ENOTTY:
			return "ENOTTY";
		case EBADF:
			return "EBADF";
		case EFAULT:
			return "EFAULT";
		case EAGAIN:
			return "EAGAIN";
		case ENOSPC:
			return "ENOSPC";
		case EEXIST:
			return "EEXIST";
		case ECONNREFUSED:
			return "ECONNREFUSED";
		default:
			{
				static char buf[32];

				snprintf(buf, sizeof(buf), "E%d", e);
				return buf;
			}
	}
}

/* report_rc prints name=OK if rc >= 0, else name=<errno name>. */
static void
report_rc(const char *name, long rc)
{
	printf("%s=%s\n", name, rc >= 0 ? "OK" : errname(errno));
}

/* report_fds prints the descriptors open right now (minus the listing's). */
static void
report_fds(void)
{
	DIR		   *d = opendir("/proc/self/fd");
	struct dirent *e;
	int			fds[256],
				n = 0,
				i,
				j;

	if (d == NULL)
	{
		printf("fds=%s\n", errname(errno));
		return;
	}
	while ((e = readdir(d)) != NULL && n < 256)
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
			fds[n++] = atoi(e->d_name);
	closedir(d);
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && fds[j - 1] > fds[j]; j--)
		{
			int			t = fds[j];

			fds[j] = fds[j - 1];
			fds[j - 1] = t;
		}
	printf("fds=");
	for (i = 0; i < n; i++)
		printf("%s%d", i ? "," : "", fds[i]);
	printf("\n");
}

/*
 * in_child runs fn in a forked child and reports how the child ended:
 * "exit N" or the signal name (SIGSYS when seccomp killed it).
 */
static void
in_child(const char *name, void (*fn) (void))
{
	pid_t		pid = fork();
	int			st;

	if (pid == 0)
	{
		fn();
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
	{
		printf("%s=%s\n", name, errname(errno));
		return;
	}
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS)
		printf("%s=SIGSYS\n", name);
	else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV)
		printf("%s=SIGSEGV\n", name);
	else if (WIFSIGNALED(st))
		printf("%s=SIG%d\n", name, WTERMSIG(st));
	else
		printf("%s=exit%d\n", name, WEXITSTATUS(st));
}

/* i386 getpid through int 0x80: another ABI, must be killed */
static void
abi_i386(void)
{
	long		ret;

	__asm__ volatile("int $0x80":"=a"(ret):"a"(20L):"memory");
	_exit(ret > 0 ? 0 : 3);
}

/* x32 getpid: another ABI, must be killed */
static void
abi_x32(void)
{
	syscall(__X32_SYSCALL_BIT | SYS_getpid);
	_exit(0);
}

/* clone(CLONE_NEWUSER) as a raw syscall, so libc cannot hide it */
static void
try_clone_newuser(void)
{
	long		rc = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);

	if (rc == 0)
		_exit(0);
	if (rc > 0)
		waitpid((pid_t) rc, NULL, 0);
	report_rc("sc_clone_newuser", rc);
	rc = syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0);
	if (rc == 0)
		_exit(0);
	if (rc > 0)
		waitpid((pid_t) rc, NULL, 0);
	report_rc("sc_clone_newnet", rc);
}

/* clone3 with CLONE_NEWUSER: the filter answers ENOSYS for any clone3 */
static void
try_clone3(void)
{
	struct clone_args args;
	long		rc;

	memset(&args, 0, sizeof(args));
	args.flags = CLONE_NEWUSER;
	args.exit_signal = SIGCHLD;
	rc = syscall(SYS_clone3, &args, sizeof(args));
	if (rc == 0)
		_exit(0);
	if (rc > 0)
		waitpid((pid_t) rc, NULL, 0);
	report_rc("sc_clone3", rc);
}

/* thread_fn is the body of the positive-control thread. */
static void *
thread_fn(void *arg)
{
	return arg;
}

/* report_seccomp tries everything the filter must refuse, and controls. */
static void
report_seccomp(void)
{
	char		c = 'x';
	int			s;
	pthread_t	th;
	pid_t		pid;

	report_rc("sc_unshare_user", unshare(CLONE_NEWUSER));
	report_rc("sc_unshare_ns", unshare(CLONE_NEWNS));
	report_rc("sc_setns", syscall(SYS_setns, 0, 0));
	try_clone_newuser();
	try_clone3();
	report_rc("sc_mount", mount("none", "/tmp", "tmpfs", 0, NULL));
	report_rc("sc_umount2", umount2("/proc", MNT_DETACH));
	report_rc("sc_pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp"));
	report_rc("sc_fsopen", syscall(SYS_fsopen, "tmpfs", 0));
	report_rc("sc_open_tree", syscall(SYS_open_tree, AT_FDCWD, "/tmp", 1));
	report_rc("sc_ptrace", ptrace(PTRACE_TRACEME, 0, NULL, NULL));
	report_rc("sc_process_vm_readv", syscall(SYS_process_vm_readv, getppid(), NULL, 0, NULL, 0, 0));
	{
		int			pidfd = (int) syscall(SYS_pidfd_open, getpid(), 0);

		report_rc("sc_pidfd_getfd", syscall(SYS_pidfd_getfd, pidfd, 0, 0));
		report_rc("sc_process_madvise", syscall(SYS_process_madvise, pidfd, NULL, 0, 0, 0));
		if (pidfd >= 0)
			close(pidfd);
	}
	report_rc("sc_kcmp", syscall(SYS_kcmp, getpid(), 1, 0 /* KCMP_FILE */ , 0, 0));
	report_rc("sc_keyctl", syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */ , -3 /* session */ , 0));
	report_rc("sc_add_key", syscall(SYS_add_key, "user", "k", "v", 1, -3));
	report_rc("sc_request_key", syscall(SYS_request_key, "user", "k", NULL, 0));
	report_rc("sc_bpf", syscall(SYS_bpf, 0, NULL, 0));
	report_rc("sc_perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
	report_rc("sc_userfaultfd", syscall(SYS_userfaultfd, 0));
	report_rc("sc_io_uring_setup", syscall(SYS_io_uring_setup, 1, NULL));
	report_rc("sc_open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, 0));
	report_rc("sc_name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, "/", NULL, NULL, 0));
	report_rc("sc_kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
	report_rc("sc_init_module", syscall(SYS_init_module, NULL, 0, ""));
	report_rc("sc_delete_module", syscall(SYS_delete_module, "x", 0));
	report_rc("sc_syslog", syscall(SYS_syslog, 10 /* SIZE_BUFFER */ , NULL, 0));
	report_rc("sc_acct", syscall(SYS_acct, NULL));
	report_rc("sc_swapoff", syscall(SYS_swapoff, "/x"));
	report_rc("sc_quotactl", syscall(SYS_quotactl, 0, NULL, 0, NULL));
	report_rc("sc_reboot", syscall(SYS_reboot, 0xfee1dead, 672274793, 0 /* CAD_OFF */ , NULL));
	report_rc("sc_personality_linux32", personality(PER_LINUX32));
	report_rc("sc_personality_addr_no_rand", personality(PER_LINUX | ADDR_NO_RANDOMIZE));
	report_rc("sc_personality_high", syscall(SYS_personality, 0x100000000UL));
	report_rc("sc_ioctl_tiocsti", ioctl(0, TIOCSTI, &c));
	report_rc("sc_ioctl_tiocsti_high", syscall(SYS_ioctl, 0, (1UL << 32) | TIOCSTI, &c));
	report_rc("sc_ioctl_tioclinux", ioctl(0, TIOCLINUX, &c));
	report_rc("sc_socket_packet", socket(AF_PACKET, SOCK_RAW, 0));
	report_rc("sc_socket_bluetooth", socket(31 /* AF_BLUETOOTH */ , SOCK_STREAM, 0));
	report_rc("sc_socket_vsock", socket(40 /* AF_VSOCK */ , SOCK_STREAM, 0));
	report_rc("sc_socket_high", syscall(SYS_socket, 0x100000002UL, SOCK_STREAM, 0));
	in_child("abi_i386", abi_i386);
	in_child("abi_x32", abi_x32);

	/* positive controls: ordinary things must still work */
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	report_rc("ok_socket_unix", s);
	close(s);
	s = socket(AF_INET, SOCK_STREAM, 0);
	report_rc("ok_socket_inet", s);
	close(s);
	s = socket(AF_INET6, SOCK_DGRAM, 0);
	report_rc("ok_socket_inet6", s);
	close(s);
	s = socket(AF_NETLINK, SOCK_RAW, 0 /* NETLINK_ROUTE */ );
	report_rc("ok_socket_netlink", s);
	close(s);
	report_rc("ok_personality_query", personality(0xffffffff));
	report_rc("ok_personality_linux", personality(PER_LINUX));
	pid = fork();
	if (pid == 0)
		_exit(0);
	report_rc("ok_fork", pid < 0 ? -1 : waitpid(pid, NULL, 0));
	errno = pthread_create(&th, NULL, thread_fn, NULL);
	report_rc("ok_thread", errno == 0 ? pthread_join(th, NULL) : -1);
}

/* report_files checks what of the host is (not) visible or writable. */
static void
report_files(const char *self)
{
	struct statfs sf;
	struct stat st;
	char		buf[512];
	int			fd;
	ssize_t		n;

	report_rc("file_etc_shadow", open("/etc/shadow", O_RDONLY));
	report_rc("file_var_lib_postgresql", stat("/var/lib/postgresql", &st));
	report_rc("file_home", stat("/home", &st));
	report_rc("file_sys", stat("/sys/fs/cgroup", &st));
	report_rc("write_root", open("/nx-probe", O_CREAT | O_WRONLY, 0644));
	report_rc("write_usr", open("/usr/nx-probe", O_CREAT | O_WRONLY, 0644));
	report_rc("write_app", open(self, O_WRONLY));
	report_rc("write_run_nx", open("/run/nx/probe-was-here", O_CREAT | O_WRONLY | O_TRUNC, 0644));
	report_rc("write_dev", open("/dev/probe-was-here", O_CREAT | O_WRONLY | O_TRUNC, 0644));
	fd = open("/tmp/probe", O_CREAT | O_WRONLY | O_TRUNC, 0644);
	report_rc("write_tmp", fd);
	if (fd >= 0)
		close(fd);
	fd = open("/dev/shm/probe", O_CREAT | O_WRONLY | O_TRUNC, 0644);
	report_rc("write_dev_shm", fd);
	if (fd >= 0)
		close(fd);
	if (statfs("/tmp", &sf) == 0)
		printf("tmp_size=%llu\ntmp_inodes=%llu\n", (unsigned long long) sf.f_blocks * sf.f_bsize,
			   (unsigned long long) sf.f_files);
	{
		struct stat a,
					b;

		printf("shm_same_fs=%s\n", stat("/tmp", &a) == 0 && stat("/dev/shm", &b) == 0 &&
			   a.st_dev == b.st_dev ? "yes" : "no");
	}
	/* pid 1 is nx-init (or, with the stub, this probe) */
	report_rc("proc_init_fd", open("/proc/1/fd", O_RDONLY | O_DIRECTORY));
	report_rc("proc_init_mem", open("/proc/1/mem", O_RDONLY));
	fd = open("/etc/passwd", O_RDONLY);
	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	buf[n > 0 ? n : 0] = '\0';
	printf("passwd_app=%s\n", strstr(buf, "app:x:1000:1000:") ? "OK" : "missing");
	if (fd >= 0)
		close(fd);
	report_rc("file_ssl_certs", stat("/etc/ssl/certs", &st));
	report_rc("file_nx_init", stat("/nx/nx-init", &st));
}

/* report_status prints fields of /proc/self/status (ids, caps, seccomp). */
static void
report_status(void)
{
	FILE	   *f = fopen("/proc/self/status", "r");
	char		line[256];
	static const char *keys[] = {"Uid:", "Gid:", "Groups:", "CapEff:", "CapBnd:",
	"NoNewPrivs:", "Seccomp:", NULL};

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f))
	{
		int			i;

		for (i = 0; keys[i]; i++)
			if (strncmp(line, keys[i], strlen(keys[i])) == 0)
			{
				char	   *v = line + strlen(keys[i]),
						   *p;

				while (*v == ' ' || *v == '\t')
					v++;
				for (p = v; *p; p++)
					if (*p == '\t')
						*p = ' ';
				v[strcspn(v, "\n")] = '\0';
				printf("status_%.*s=%s\n", (int) strlen(keys[i]) - 1, keys[i], v);
			}
	}
	fclose(f);
}

/*
 * report_pg connects to the cluster's socket (bound read-only into the
 * sandbox) and asks to log in as postgres: peer authentication must not
 * take the tenant for the cluster's OS user.  Prints pg_connect and
 * pg_auth_postgres ("E:<message>" for an error response, "R<n>" for an
 * authentication request, R0 meaning "you are in").
 */
static void
report_pg(const char *sock)
{
	struct sockaddr_un sa;
	unsigned char pkt[64],
				resp[512];
	int			s,
				len = 8;
	ssize_t		n;
	static const char params[] = "user\0postgres\0database\0postgres\0";

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s < 0 || connect(s, (struct sockaddr *) &sa, sizeof(sa)) != 0)
	{
		printf("pg_connect=%s\n", errname(errno));
		return;
	}
	printf("pg_connect=OK\n");
	memcpy(pkt + 8, params, sizeof(params));	/* includes the final NUL */
	len += sizeof(params);
	pkt[0] = 0;
	pkt[1] = 0;
	pkt[2] = 0;
	pkt[3] = (unsigned char) len;
	pkt[4] = 0;
	pkt[5] = 3;
	pkt[6] = 0;
	pkt[7] = 0;					/* protocol 3.0 */
	if (write(s, pkt, len) != len || (n = read(s, resp, sizeof(resp) - 1)) < 5)
	{
		printf("pg_auth_postgres=io-error\n");
		close(s);
		return;
	}
	resp[n] = '\0';
	if (resp[0] == 'R' && n >= 9)
		printf("pg_auth_postgres=R%d\n", resp[8]);
	else if (resp[0] == 'E')
	{
		/* fields: type byte + string; print the M (message) field */
		unsigned char *p = resp + 5;

		while (p < resp + n && *p && *p != 'M')
			p += strlen((char *) p) + 1;
		printf("pg_auth_postgres=E:%s\n", p < resp + n && *p == 'M' ? (char *) p + 1 : "?");
	}
	else
		printf("pg_auth_postgres=%c\n", resp[0]);
	close(s);
}

/* report runs every check in order, between READY and DONE. */
static void
report(const char *self, const char *pgsock)
{
	char		host[128];
	int			n = 0;

	report_fds();				/* first: before we open anything */
	printf("READY\n");
	printf("uid=%d\ngid=%d\npid=%d\n", (int) getuid(), (int) getgid(), (int) getpid());
	printf("env_names=");
	while (environ[n])
	{
		printf("%s%.*s", n ? "," : "", (int) strcspn(environ[n], "="), environ[n]);
		n++;
	}
	printf("\nenv_count=%d\n", n);
	printf("env_secret=%s\n", getenv("NX_TEST_SECRET") ? getenv("NX_TEST_SECRET") : "(unset)");
	gethostname(host, sizeof(host));
	printf("hostname=%s\n", host);
	report_status();
	report_seccomp();
	report_files(self);
	if (pgsock)
		report_pg(pgsock);
	printf("DONE\n");
}

/* forks starts n children that sleep; reports how many forks worked. */
static void
forks(int n)
{
	int			i,
				ok = 0,
				err = 0;

	for (i = 0; i < n; i++)
	{
		pid_t		pid = fork();

		if (pid == 0)
		{
			pause();
			_exit(0);
		}
		if (pid < 0)
		{
			err = errno;
			break;
		}
		ok++;
	}
	printf("forks=%d errno=%s\nDONE\n", ok, errname(err));
}

/* fill writes path until it fails; returns the bytes written. */
static unsigned long long
fill(const char *path, int *err)
{
	static char block[65536];
	int			fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	unsigned long long total = 0;
	ssize_t		n;

	memset(block, 'x', sizeof(block));
	while (fd >= 0 && (n = write(fd, block, sizeof(block))) > 0)
		total += n;
	*err = errno;
	if (fd >= 0)
		close(fd);
	return total;
}

/*
 * tmpfill fills /tmp, then /dev/shm (which shares its budget), reports
 * both, frees them and creates empty files until the inodes run out.
 */
static void
tmpfill(void)
{
	unsigned long long tmp,
				shm;
	int			err,
				n = 0;
	char		path[64];

	tmp = fill("/tmp/fill", &err);
	printf("tmpfill=%llu errno=%s\n", tmp, errname(err));
	shm = fill("/dev/shm/fill", &err);
	printf("shmfill=%llu errno=%s\n", shm, errname(err));
	unlink("/tmp/fill");
	unlink("/dev/shm/fill");
	for (;;)
	{
		int			fd;

		snprintf(path, sizeof(path), "/tmp/i%d", n);
		fd = open(path, O_CREAT | O_WRONLY | O_EXCL, 0644);
		if (fd < 0)
			break;
		close(fd);
		n++;
	}
	printf("inodes=%d errno=%s\nDONE\n", n, errname(errno));
}

int
main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "report";

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(mode, "ready") == 0)
	{
		printf("READY\n");
		return 0;
	}
	if (strcmp(mode, "alloc") == 0 && argc > 2)
	{
		size_t		mb = strtoul(argv[2], NULL, 10),
					i;
		char	   *p = malloc(mb << 20);

		printf("READY\n");
		for (i = 0; p && i < (mb << 20); i += 4096)
			p[i] = 1;
		printf("ALLOC-DONE\nDONE\n");
		return 0;
	}
	if (strcmp(mode, "forks") == 0 && argc > 2)
	{
		printf("READY\n");
		forks(atoi(argv[2]));
	}
	else if (strcmp(mode, "tmpfill") == 0)
	{
		printf("READY\n");
		tmpfill();
	}
	else
		report(argv[0], argc > 2 ? argv[2] : NULL);
	for (;;)
		pause();
}
