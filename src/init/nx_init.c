/*
 * src/init/nx_init.c
 *	  nx-init: the first process inside every sandbox.  It starts the app,
 *	  tells the supervisor when the app is ready and when it ended, hands
 *	  connections to the app to the router, forwards signals and reaps
 *	  orphans.
 *
 *	  nx-init [--probe-interval-ms N] -- /app/NAME ARGS...
 *
 * The environment is the app's, passed through unchanged; PORT (1..65535)
 * is the TCP port the app must listen on.  Inherited fd NX_INIT_LISTEN_FD
 * (4) must be the listening hand-off socket the supervisor made (nx-init
 * never creates one: a socket the sandbox could name is a socket the app
 * could replace).  Inherited fd NX_INIT_STATUS_FD (3), if open, gets the
 * status lines described in nx_handoff.h.  Neither is passed on to the app.
 *
 * nx-init is not dumpable (PR_SET_DUMPABLE 0, first thing): the app runs as
 * the same uid, and a dumpable nx-init would let it open /proc/1/fd/N (the
 * listening socket, the status pipe) or /proc/1/mem.  The app's own execve
 * makes it dumpable again, as usual.
 *
 * Everything happens in one epoll loop, single-threaded: signals arrive
 * through a signalfd (so this also works as pid 1 of a pid namespace, where
 * signals without a handler are ignored), the readiness probe through a
 * timerfd (probe.c), and client requests through the hand-off socket
 * (handoff.c).  When the app ends, nx-init reports how, kills whatever is
 * left and exits with the app's status (128 + signal if it was killed).
 *
 * Adopted (nx_handoff.h): NX_INIT_ADOPTED_SIGNAL from outside the pid
 * namespace (only the supervisor can send one: a sender inside shows its
 * own pid) makes nx-init die with its new parent, the supervisor.
 *
 * nx-init's own failures (bad usage, cannot set up) exit with
 * NX_INIT_EXIT_FAILURE and no status line.
 */
#define _GNU_SOURCE				/* pipe2, syscall */

#include "nx_init.h"
#include "nx_handoff.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_EVENTS 64

extern char **environ;

/* the signals nx-init handles (through the signalfd) */
static const int handled_signals[] = {
	SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2
};

/* command line */
static const char *proc_net = NULL;	/* NULL: sock_diag, then /proc/net */
static int	probe_interval_ms;	/* 0: probe.c's default schedule */
static char **app_argv;
static int	app_port;

static int	status_fd = -1;		/* NX_INIT_STATUS_FD if it was open */
static int	epoll_fd = -1;
static int	signal_fd = -1;
static pid_t app_pid = -1;

/*
 * nx_log writes one line "nx-init: <message>" to stderr, in a single
 * write() so that lines from nx-init and the app do not interleave.
 */
void
nx_log(const char *fmt,...)
{
	char		line[1024];
	va_list		ap;
	int			len;

	len = snprintf(line, sizeof(line), "nx-init: ");
	va_start(ap, fmt);
	vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
	va_end(ap);
	len = (int) strlen(line);
	line[len++] = '\n';
	if (write(STDERR_FILENO, line, len) < 0)
		return;					/* nowhere left to complain */
}

/* usage prints the synopsis and exits: 0 if asked for, failure otherwise. */
static void
usage(int status)
{
	fprintf(status ? stderr : stdout,
			"usage: nx-init [--probe-interval-ms N] -- PROGRAM ARGS...\n"
			"  PORT (environment, 1..65535): the TCP port PROGRAM listens on\n"
			"  fd %d: the listening hand-off socket (SOCK_SEQPACKET), required\n"
			"  fd %d: the status pipe, optional\n"
			"  --probe-interval-ms N    readiness probe interval (default 0.5 ms\n"
			"                           for the first 20 ms, 2 ms until 100 ms,\n"
			"                           then 10 ms)\n"
			"  --proc-net DIR           probe by reading DIR/tcp{,6}, not through\n"
			"                           sock_diag (tests)\n",
			NX_INIT_LISTEN_FD, NX_INIT_STATUS_FD);
	exit(status);
}

/*
 * parse_int parses all of s as a decimal integer in [min, max].  Returns
 * false for anything else (empty, sign-only, trailing junk, out of range).
 */
static bool
parse_int(const char *s, long min, long max, int *out)
{
	char	   *end;
	long		v;

	if (s == NULL || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = (int) v;
	return true;
}

/*
 * option_value returns the value of option `name` at argv[*i], given as
 * "NAME VALUE" (advancing *i) or "NAME=VALUE"; NULL if argv[*i] is not
 * that option.  A missing value is a usage error.
 */
static const char *
option_value(int argc, char **argv, int *i, const char *name)
{
	size_t		len = strlen(name);

	if (strncmp(argv[*i], name, len) != 0)
		return NULL;
	if (argv[*i][len] == '=')
		return argv[*i] + len + 1;
	if (argv[*i][len] != '\0')
		return NULL;
	if (*i + 1 >= argc)
	{
		fprintf(stderr, "nx-init: %s needs a value\n", name);
		usage(NX_INIT_EXIT_FAILURE);
	}
	return argv[++*i];
}

/* parse_args reads the command line and PORT into the statics above. */
static void
parse_args(int argc, char **argv)
{
	const char *v;
	int			i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++)
	{
		if (strcmp(argv[i], "--") == 0)
		{
			i++;
			break;
		}
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			usage(0);
		else if ((v = option_value(argc, argv, &i, "--proc-net")) != NULL)
			proc_net = v;
		else if ((v = option_value(argc, argv, &i, "--probe-interval-ms")) != NULL)
		{
			if (!parse_int(v, 1, 60000, &probe_interval_ms))
			{
				fprintf(stderr, "nx-init: --probe-interval-ms must be 1..60000\n");
				usage(NX_INIT_EXIT_FAILURE);
			}
		}
		else
		{
			fprintf(stderr, "nx-init: unknown option %s\n", argv[i]);
			usage(NX_INIT_EXIT_FAILURE);
		}
	}
	if (i >= argc || argv[i][0] == '\0')
		usage(NX_INIT_EXIT_FAILURE);
	app_argv = argv + i;

	if (!parse_int(getenv("PORT"), 1, 65535, &app_port))
	{
		nx_log("PORT must be set to a TCP port number (1..65535)");
		exit(NX_INIT_EXIT_FAILURE);
	}
}

/*
 * setup_fds runs first, before nx-init opens anything: it makes the
 * inherited listening socket (NX_INIT_LISTEN_FD) and status pipe
 * (NX_INIT_STATUS_FD, if open) close-on-exec, so the app gets neither, and
 * makes sure fds 0-2 are open, so that none of nx-init's own sockets can
 * land there and be mistaken for stdio.  Whether fd 4 really is a
 * listening socket is handoff_listen's business.
 */
static void
setup_fds(void)
{
	int			fd;

	(void) fcntl(NX_INIT_LISTEN_FD, F_SETFD, FD_CLOEXEC);
	if (fcntl(NX_INIT_STATUS_FD, F_SETFD, FD_CLOEXEC) == 0)
		status_fd = NX_INIT_STATUS_FD;
	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= STDERR_FILENO)
		;
	if (fd > STDERR_FILENO)
		close(fd);
}

/*
 * report writes one status line to the status pipe, if there is one.
 * Failures (the supervisor went away: EPIPE, SIGPIPE being ignored) are
 * not nx-init's problem; the pipe is small and so are the lines, so this
 * does not block in practice.
 */
static void
report(const char *fmt,...)
{
	char		line[64];
	va_list		ap;
	int			len;
	ssize_t		n;

	if (status_fd < 0)
		return;
	va_start(ap, fmt);
	len = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (len <= 0 || len >= (int) sizeof(line))
		return;
	do
		n = write(status_fd, line, len);
	while (n < 0 && errno == EINTR);
}

/* nx_epoll_add registers fd with the main loop for input, tagged `tag`. */
void
nx_epoll_add(int fd, uint64_t tag)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.u64 = tag;
	if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
		nx_log("epoll_ctl add: %s", strerror(errno));
}

/* nx_epoll_del removes fd from the main loop (before it is closed). */
void
nx_epoll_del(int fd)
{
	if (epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, NULL) < 0)
		nx_log("epoll_ctl del: %s", strerror(errno));
}

/*
 * setup_signals blocks the handled signals and opens the signalfd that
 * delivers them instead, and ignores SIGPIPE (a vanished client or
 * supervisor is an error return, not death).  Returns false on failure.
 */
static bool
setup_signals(void)
{
	sigset_t	set;
	size_t		i;

	sigemptyset(&set);
	for (i = 0; i < sizeof(handled_signals) / sizeof(handled_signals[0]); i++)
		sigaddset(&set, handled_signals[i]);
	sigaddset(&set, NX_INIT_ADOPTED_SIGNAL);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return false;
	signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (signal_fd < 0)
		return false;
	signal(SIGPIPE, SIG_IGN);
	return true;
}

/*
 * reset_signals gives the app (in the child, before exec) what a fresh
 * process expects: every signal at its default disposition, none blocked.
 * Dispositions set to "ignore" and the signal mask would otherwise survive
 * exec.
 *
 * glibc's sigaction() refuses the two real-time signals it keeps for itself
 * (32 and 33), but they too can arrive here ignored from whoever started
 * nx-init; for those, the system call itself.  An all-zero kernel
 * sigaction is SIG_DFL with no flags and an empty mask on every
 * architecture, whatever the field order.
 */
static void
reset_signals(void)
{
	struct sigaction sa;
	unsigned long kernel_sa[8];
	sigset_t	none;
	int			sig;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	memset(kernel_sa, 0, sizeof(kernel_sa));
	for (sig = 1; sig < NSIG; sig++)
	{
		/* fails for SIGKILL and SIGSTOP, which is fine */
		if (sigaction(sig, &sa, NULL) < 0 && errno == EINVAL)
			(void) syscall(SYS_rt_sigaction, sig, kernel_sa, NULL,
						   (size_t) ((NSIG - 1) / 8));
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/*
 * stdin_source returns a close-on-exec fd for the app's stdin: /dev/null,
 * or, in a sandbox without it, the read end of an empty pipe (EOF too).
 */
static int
stdin_source(void)
{
	int			fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int			p[2];

	if (fd >= 0)
		return fd;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	close(p[1]);
	return p[0];
}

/*
 * exec_app runs in the forked child: it puts the app in its own process
 * group, ties its life to nx-init's, sets stdin and signals up, and execs.
 * Never returns; if exec fails the child exits 127, like a shell would.
 */
static void
exec_app(int stdin_fd, pid_t parent)
{
	reset_signals();
	(void) setpgid(0, 0);
	/* if nx-init dies without killing us (it is not pid 1), die too */
	(void) prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	if (stdin_fd >= 0 && dup2(stdin_fd, STDIN_FILENO) < 0)
		_exit(127);
	execve(app_argv[0], app_argv, environ);
	nx_log("cannot execute %s: %s", app_argv[0], strerror(errno));
	_exit(127);
}

/* spawn_app forks and starts the app; returns false if fork fails. */
static bool
spawn_app(void)
{
	int			stdin_fd = stdin_source();
	pid_t		parent = getpid();

	app_pid = fork();
	if (app_pid == 0)
		exec_app(stdin_fd, parent);
	if (stdin_fd >= 0)
		close(stdin_fd);
	if (app_pid < 0)
		return false;
	/* also here, so the group exists whichever process runs first */
	(void) setpgid(app_pid, app_pid);
	return true;
}

/*
 * kill_children sends SIGKILL to nx-init's remaining children, as listed
 * in /proc/self/task/<pid>/children: orphans re-parented to us (we are a
 * subreaper) that left the app's process group.  They are unreaped
 * children, so their pids cannot have been reused.
 */
static void
kill_children(void)
{
	char		path[64];
	char		buf[4096];
	char	   *p;
	ssize_t		len;
	int			fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int) getpid());
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return;
	buf[len] = '\0';
	for (p = buf; *p != '\0';)
	{
		char	   *end;
		long		pid = strtol(p, &end, 10);

		if (end == p)
			break;
		if (pid > 1)
			(void) kill((pid_t) pid, SIGKILL);
		p = end;
	}
}

/*
 * kill_remaining sends SIGKILL to everything the app left behind.  As pid 1
 * of a pid namespace that is simply everything else in it.  Otherwise
 * kill(-1) would hit the whole host user's processes, so only the app's
 * process group (which cannot have been reused while any member lives) and
 * our own remaining children.
 */
static void
kill_remaining(void)
{
	if (getpid() == 1)
	{
		(void) kill(-1, SIGKILL);
		return;
	}
	(void) kill(-app_pid, SIGKILL);
	kill_children();
}

/*
 * app_ended is called once the app's process has been reaped: report how
 * it ended, kill the rest, and exit with the same status.
 */
static void
app_ended(int wstatus)
{
	int			code;

	if (WIFSIGNALED(wstatus))
	{
		report("killed %d\n", WTERMSIG(wstatus));
		code = 128 + WTERMSIG(wstatus);
	}
	else
	{
		code = WEXITSTATUS(wstatus);
		report("exited %d\n", code);
	}
	kill_remaining();
	exit(code);
}

/* reap_children collects every child that has ended, the app included. */
static void
reap_children(void)
{
	for (;;)
	{
		int			wstatus;
		pid_t		pid = waitpid(-1, &wstatus, WNOHANG);

		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return;				/* none left that ended, or no children */
		if (pid == app_pid)
			app_ended(wstatus);
	}
}

/*
 * adopted: the supervisor ended bwrap's monitor process and is our parent
 * now (nx_handoff.h).  Die with it, as we died with the monitor: a
 * sandbox must not outlive its supervisor.  Only a signal sent with kill()
 * from outside our pid namespace counts (si_pid 0, SI_USER: the app can
 * forge neither); the app gets none of these.
 */
static void
adopted(const struct signalfd_siginfo *si)
{
	if (si->ssi_pid != 0 || si->ssi_code != SI_USER)
		return;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		nx_log("cannot follow the supervisor's exit: %s", strerror(errno));
}

/*
 * handle_signals drains the signalfd: termination-type signals go to the
 * app, SIGCHLD means something to reap (standard signals coalesce, so one
 * SIGCHLD may stand for many children).
 */
static void
handle_signals(void)
{
	struct signalfd_siginfo si;
	bool		child = false;

	for (;;)
	{
		ssize_t		n = read(signal_fd, &si, sizeof(si));

		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t) sizeof(si))
			break;
		if (si.ssi_signo == SIGCHLD)
			child = true;
		else if ((int) si.ssi_signo == NX_INIT_ADOPTED_SIGNAL)
			adopted(&si);
		else if (app_pid > 0)
			(void) kill(app_pid, (int) si.ssi_signo);
	}
	if (child)
		reap_children();
}

/* app_ready is called once the probe sees the app listening. */
static void
app_ready(void)
{
	handoff_set_ready(true);
	report("ready\n");
}

/* main_loop dispatches epoll events until the app ends (which exits). */
static void
main_loop(void)
{
	struct epoll_event events[MAX_EVENTS];

	for (;;)
	{
		int			n = epoll_wait(epoll_fd, events, MAX_EVENTS, -1);
		int			i;

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			nx_log("epoll_wait: %s", strerror(errno));
			exit(NX_INIT_EXIT_FAILURE);
		}
		for (i = 0; i < n; i++)
		{
			uint64_t	tag = events[i].data.u64;

			if (tag == NX_TAG_SIGNAL)
				handle_signals();
			else if (tag == NX_TAG_TIMER)
			{
				if (probe_tick())
					app_ready();
			}
			else if (tag == NX_TAG_LISTENER)
				handoff_accept();
			else if (tag >= NX_TAG_CLIENT)
				handoff_client_event((int) (tag - NX_TAG_CLIENT),
									 events[i].events);
		}
	}
}

/*
 * main sets everything up in an order that loses nothing: status fd and
 * stdio first, signals blocked before the app exists (an early SIGCHLD
 * waits in the signalfd), the hand-off socket before the app starts (so
 * clients can connect and be told NOT_READY), then the app, the probe and
 * the loop.
 */
int
main(int argc, char **argv)
{
	/*
	 * Before anything else: from here on, only a process with CAP_SYS_PTRACE
	 * over nx-init's namespace (nobody in the sandbox) may open its
	 * /proc/1/{fd,mem,environ,...}, ptrace it or take its descriptors with
	 * pidfd_getfd.  A failure is fatal: it would leave the hand-off socket
	 * within the app's reach.
	 */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
	{
		nx_log("cannot make nx-init non-dumpable: %s", strerror(errno));
		return NX_INIT_EXIT_FAILURE;
	}
	setup_fds();
	parse_args(argc, argv);

	/* orphans of the app become our children, to be reaped */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		nx_log("cannot become a subreaper: %s", strerror(errno));

	epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (epoll_fd < 0 || !setup_signals())
	{
		nx_log("cannot set up: %s", strerror(errno));
		return NX_INIT_EXIT_FAILURE;
	}
	nx_epoll_add(signal_fd, NX_TAG_SIGNAL);
	if (handoff_listen(NX_INIT_LISTEN_FD, app_port) < 0)
		return NX_INIT_EXIT_FAILURE;

	/*
	 * From here (since setup_signals) a SIGTERM waits in the signalfd and
	 * reaches the app once it runs.  Before, nx-init is a pid namespace's
	 * init without a handler, and the kernel drops it: the supervisor ends
	 * a sandbox that has not said "up" with SIGKILL instead (nothing of the
	 * app runs yet).  Said after the checks of the hand-off socket, so that
	 * usage and socket errors still write no status line.
	 */
	report("up\n");

	if (!spawn_app())
	{
		nx_log("fork: %s", strerror(errno));
		return NX_INIT_EXIT_FAILURE;
	}
	if (probe_start(app_port, probe_interval_ms, proc_net) < 0)
	{
		nx_log("timerfd_create: %s", strerror(errno));
		kill_remaining();
		return NX_INIT_EXIT_FAILURE;
	}
	main_loop();
	return NX_INIT_EXIT_FAILURE;	/* not reached */
}
