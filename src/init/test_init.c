/*
 * src/init/test_init.c
 *	  Test of nx-init, run as an ordinary process (no bwrap, no namespaces;
 *	  as root or any user).
 *
 *	  make init-test
 *	  build/test_init NX_INIT HELLO		(e.g. build/nx-init build/hello)
 *
 * Each case starts NX_INIT the way the supervisor does: fd 4 a SOCK_SEQPACKET
 * socket the test bound at init.sock in a fresh mkdtemp directory and
 * listens on, PORT set to a free port, fd 3 a pipe the test reads status
 * lines from, and an app: HELLO (examples/hello, listens on 0.0.0.0), a shell one-liner,
 * or this program itself in its "--listen ADDR" role (listens on ADDR only,
 * e.g. ::1).  The cases talk to init.sock per nx_handoff.h.  Prints
 * "N passed, M failed" and exits non-zero on any failure.
 */
#define _GNU_SOURCE				/* pipe2, MSG_CMSG_CLOEXEC */

#include "nx_handoff.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_TIMEOUT_MS	10000	/* generous: sanitizer builds are slow */
#define EXIT_TIMEOUT_MS		5000
#define PROMPT_EXIT_MS		2000	/* "nx-init exits promptly" */

static const char *nx_init_path;
static const char *hello_path;
static char self_path[PATH_MAX];
static int	passed;
static int	failed;

/* one running nx-init */
typedef struct Init
{
	pid_t		pid;
	int			status_rd;		/* read end of nx-init's fd 3, or -1 */
	int			port;
	char		dir[64];		/* holds its socket */
	char		sock[96];		/* dir/init.sock, listened on by the test */
	char		buf[512];		/* status bytes read, not yet a line */
	size_t		buflen;
	bool		reaped;
	int			wstatus;
} Init;

/* how to start one */
typedef struct InitOpts
{
	const char *opts[4];		/* extra nx-init options, NULL-terminated */
	const char *stderr_path;	/* nx-init's stderr to this file */
	bool		no_status_fd;	/* start nx-init with fd 3 closed */
	bool		ignore_sighup;	/* start nx-init with SIGHUP ignored */
} InitOpts;

/* check counts one result and explains a failure. */
static void
check(bool ok, int line, const char *fmt,...)
{
	va_list		ap;

	if (ok)
	{
		passed++;
		return;
	}
	failed++;
	printf("FAIL test_init.c:%d: ", line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

#define CHECK(cond, ...) check((cond), __LINE__, __VA_ARGS__)

/* now_ms is a monotonic clock in milliseconds. */
static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* sleep_ms sleeps ms milliseconds. */
static void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* free_port returns a TCP port nobody listens on right now. */
static int
free_port(void)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t	len = sizeof(addr);
	int			fd = socket(AF_INET, SOCK_STREAM, 0);
	int			port;

	if (fd < 0 || bind(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0 ||
		getsockname(fd, (struct sockaddr *) &addr, &len) < 0)
	{
		perror("free_port");
		exit(2);
	}
	port = ntohs(addr.sin_port);
	close(fd);
	return port;
}

/*
 * listen_at binds a SOCK_SEQPACKET unix socket at path and listens on it,
 * as the supervisor does for nx-init; returns the descriptor.
 */
static int
listen_at(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int			fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	if (fd < 0 || bind(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0 ||
		listen(fd, 128) < 0)
	{
		perror("listen_at");
		exit(2);
	}
	return fd;
}

static void expect_line(Init *in, const char *want, int timeout_ms, int line);

/*
 * start_init starts nx-init with the app argv `app` (NULL-terminated) as
 * opts says, filling *in, and checks its first status line: "up", its
 * signals blocked before the app starts (the supervisor ends a sandbox
 * that has not said it with SIGKILL).  The test keeps no copy of the
 * listening socket, like the supervisor.
 */
static void
start_init(Init *in, const char *const *app, const InitOpts *opts)
{
	static const InitOpts none;
	int			p[2];
	int			lfd;

	if (opts == NULL)
		opts = &none;
	memset(in, 0, sizeof(*in));
	strcpy(in->dir, "/tmp/nx-init-test.XXXXXX");
	if (mkdtemp(in->dir) == NULL || pipe2(p, O_CLOEXEC) < 0)
	{
		perror("start_init");
		exit(2);
	}
	snprintf(in->sock, sizeof(in->sock), "%s/init.sock", in->dir);
	lfd = listen_at(in->sock);
	in->port = free_port();
	fflush(stdout);

	in->pid = fork();
	if (in->pid == 0)
	{
		const char *argv[32];
		char		port[16];
		int			n = 0;
		int			i;
		int			status_w,
					listen_fd;

		argv[n++] = nx_init_path;
		for (i = 0; opts->opts[i] != NULL; i++)
			argv[n++] = opts->opts[i];
		argv[n++] = "--";
		for (i = 0; app[i] != NULL && n < 31; i++)
			argv[n++] = app[i];
		argv[n] = NULL;

		/* out of the way of 3 and 4 first, so neither dup2 hits the other */
		status_w = fcntl(p[1], F_DUPFD_CLOEXEC, 10);
		listen_fd = fcntl(lfd, F_DUPFD_CLOEXEC, 10);

		if (status_w < 0 || listen_fd < 0 ||
			dup2(listen_fd, 4) < 0 || fcntl(4, F_SETFD, 0) < 0)
			_exit(126);
		if (opts->no_status_fd)
			close(3);
		else if (dup2(status_w, 3) < 0 || fcntl(3, F_SETFD, 0) < 0)
			_exit(126);
		if (opts->stderr_path != NULL)
		{
			int			fd = open(opts->stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

			if (fd < 0 || dup2(fd, 2) < 0)
				_exit(126);
		}
		if (opts->ignore_sighup)
			signal(SIGHUP, SIG_IGN);
		snprintf(port, sizeof(port), "%d", in->port);
		setenv("PORT", port, 1);
		setenv("NX_SANDBOX", "test", 1);
		setenv("NX_DEPLOYMENT", "d1", 1);
		execv(nx_init_path, (char *const *) argv);
		_exit(126);
	}
	close(p[1]);
	close(lfd);
	in->status_rd = opts->no_status_fd ? (close(p[0]), -1) : p[0];
	if (in->pid < 0)
	{
		perror("fork");
		exit(2);
	}
	if (in->status_rd >= 0)
		expect_line(in, "up", READY_TIMEOUT_MS, __LINE__);
}

/*
 * read_line reads the next status line (without '\n') into out, waiting up
 * to timeout_ms.  Returns false on timeout or EOF.
 */
static bool
read_line(Init *in, int timeout_ms, char *out, size_t outsz)
{
	long		deadline = now_ms() + timeout_ms;

	for (;;)
	{
		char	   *nl = memchr(in->buf, '\n', in->buflen);
		struct pollfd pfd = {.fd = in->status_rd, .events = POLLIN};
		long		left = deadline - now_ms();
		ssize_t		n;

		if (nl != NULL)
		{
			size_t		len = (size_t) (nl - in->buf);

			snprintf(out, outsz, "%.*s", (int) len, in->buf);
			memmove(in->buf, nl + 1, in->buflen - len - 1);
			in->buflen -= len + 1;
			return true;
		}
		if (in->status_rd < 0 || left <= 0 || in->buflen == sizeof(in->buf))
			return false;
		if (poll(&pfd, 1, (int) left) <= 0)
			continue;
		n = read(in->status_rd, in->buf + in->buflen, sizeof(in->buf) - in->buflen);
		if (n <= 0)
			return false;
		in->buflen += (size_t) n;
	}
}

/* expect_line checks that the next status line is `want`. */
static void
expect_line(Init *in, const char *want, int timeout_ms, int line)
{
	char		got[256] = "";
	bool		ok = read_line(in, timeout_ms, got, sizeof(got));

	check(ok && strcmp(got, want) == 0, line, "status line: want \"%s\", got %s\"%s\"",
		  want, ok ? "" : "(none) ", got);
}

#define EXPECT_LINE(in, want, timeout) expect_line((in), (want), (timeout), __LINE__)

/*
 * wait_exit waits up to timeout_ms for nx-init to exit and returns its
 * wait status, or -1 (after killing it) if it did not.
 */
static int
wait_exit(Init *in, int timeout_ms)
{
	long		deadline = now_ms() + timeout_ms;

	while (!in->reaped)
	{
		pid_t		r = waitpid(in->pid, &in->wstatus, WNOHANG);

		if (r == in->pid)
			in->reaped = true;
		else if (now_ms() > deadline)
		{
			kill(in->pid, SIGKILL);
			waitpid(in->pid, &in->wstatus, 0);
			in->reaped = true;
			return -1;
		}
		else
			sleep_ms(2);
	}
	return in->wstatus;
}

/* expect_exit checks that nx-init exits with status `code` in time. */
static void
expect_exit(Init *in, int code, int line)
{
	int			ws = wait_exit(in, EXIT_TIMEOUT_MS);

	check(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == code, line,
		  "nx-init exit: want %d, got wait status %d%s", code, ws,
		  ws == -1 ? " (timed out)" : "");
}

#define EXPECT_EXIT(in, code) expect_exit((in), (code), __LINE__)

/* finish kills nx-init if still running and removes its run dir. */
static void
finish(Init *in)
{
	char		path[PATH_MAX];
	DIR		   *d;
	struct dirent *de;

	if (!in->reaped)
	{
		kill(in->pid, SIGKILL);
		waitpid(in->pid, &in->wstatus, 0);
	}
	if (in->status_rd >= 0)
		close(in->status_rd);
	if ((d = opendir(in->dir)) != NULL)
	{
		while ((de = readdir(d)) != NULL)
		{
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", in->dir, de->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(in->dir);
}

/*
 * client_connect connects to nx-init's init.sock, retrying for a while as
 * nx-init may not have created it yet.  The socket has 5 s timeouts, so a
 * missing reply fails the test instead of hanging it.  Returns -1 if it
 * cannot connect.
 */
static int
client_connect(Init *in)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct timeval tv = {5, 0};
	long		deadline = now_ms() + 3000;

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", in->sock);
	for (;;)
	{
		int			fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -1;
		if (connect(fd, (struct sockaddr *) &addr, sizeof(addr)) == 0)
		{
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
			return fd;
		}
		close(fd);
		if (now_ms() > deadline)
			return -1;
		sleep_ms(5);
	}
}

/*
 * recv_reply receives one reply packet into *reply, and the fd attached to
 * it into *fd (-1 if none).  Returns false unless exactly one
 * NxInitReply-sized packet arrived.
 */
static bool
recv_reply(int sock, NxInitReply *reply, int *fd)
{
	union
	{
		char		buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	}			control;
	char		buf[sizeof(NxInitReply) + 8];
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
	.msg_control = control.buf, .msg_controllen = sizeof(control.buf)};
	struct cmsghdr *cmsg;
	ssize_t		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);

	*fd = -1;
	for (cmsg = CMSG_FIRSTHDR(&msg); n > 0 && cmsg != NULL;
		 cmsg = CMSG_NXTHDR(&msg, cmsg))
		if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(cmsg), sizeof(int));
	if (n != (ssize_t) sizeof(NxInitReply))
		return false;
	memcpy(reply, buf, sizeof(*reply));
	return true;
}

/* request sends one (possibly malformed) request and receives the reply. */
static bool
request_raw(int sock, const void *req, size_t len, NxInitReply *reply, int *fd)
{
	*fd = -1;
	if (send(sock, req, len, MSG_NOSIGNAL) != (ssize_t) len)
		return false;
	return recv_reply(sock, reply, fd);
}

/* request sends a well-formed request for `op` and receives the reply. */
static bool
request(int sock, int op, NxInitReply *reply, int *fd)
{
	NxInitRequest req = {NX_HANDOFF_MAGIC, NX_HANDOFF_VERSION, (uint8_t) op};

	return request_raw(sock, &req, sizeof(req), reply, fd);
}

/*
 * reply_is checks a reply: well-formed, the expected status, and an fd
 * attached exactly when the status is OK for a CONNECT.
 */
static bool
reply_is(const NxInitReply *r, int status, bool want_fd, int fd)
{
	return r->magic == NX_HANDOFF_MAGIC && r->version == NX_HANDOFF_VERSION &&
		r->status == status && (status == NX_INIT_CONNECT_FAILED || r->err == 0) &&
		(fd >= 0) == want_fd;
}

/*
 * expect_reply sends op and checks the reply's status (and fd); returns the
 * fd received, if any, for the caller to use and close.
 */
static int
expect_reply(int sock, int op, int status, int line)
{
	NxInitReply reply = {0};
	int			fd = -1;
	bool		ok = request(sock, op, &reply, &fd);
	bool		want_fd = op == NX_INIT_OP_CONNECT && status == NX_INIT_OK;

	check(ok && reply_is(&reply, status, want_fd, fd), line,
		  "op %d: want status %d, got %s status %d err %d fd %d", op, status,
		  ok ? "" : "(no reply)", reply.status, (int) reply.err, fd);
	return fd;
}

#define EXPECT_REPLY(sock, op, status) expect_reply((sock), (op), (status), __LINE__)

/*
 * http_get sends a request on a socket nx-init handed over (non-blocking,
 * maybe still connecting) and says whether hello's answer came back.
 */
static bool
http_get(int fd)
{
	static const char req[] = "GET / HTTP/1.0\r\n\r\n";
	struct timeval tv = {5, 0};
	char		resp[1024];
	size_t		len = 0;
	ssize_t		n;

	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t) sizeof(req) - 1)
		return false;
	while (len < sizeof(resp) - 1 &&
		   (n = recv(fd, resp + len, sizeof(resp) - 1 - len, 0)) > 0)
		len += (size_t) n;
	resp[len] = '\0';
	return strncmp(resp, "HTTP/1.1 200", 12) == 0 &&
		strstr(resp, "hello from sandbox test, deployment d1") != NULL;
}

/* count_fds returns how many descriptors process pid has open, or -1. */
static int
count_fds(pid_t pid)
{
	char		path[64];
	DIR		   *d;
	struct dirent *de;
	int			n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* wait_fds waits up to 2 s for process pid to have `want` fds open. */
static int
wait_fds(pid_t pid, int want)
{
	long		deadline = now_ms() + 2000;
	int			n;

	while ((n = count_fds(pid)) != want && now_ms() < deadline)
		sleep_ms(5);
	return n;
}

/* process_gone says whether pid is dead: gone, or a zombie. */
static bool
process_gone(pid_t pid)
{
	char		path[64];
	char		buf[256];
	char	   *p;
	ssize_t		n;
	int			fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	if ((fd = open(path, O_RDONLY)) < 0)
		return true;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p != NULL && (p[2] == 'Z' || p[2] == 'X');
}

/* read_pid reads a pid the app wrote to a file; 0 if none. */
static pid_t
read_pid(const char *path)
{
	FILE	   *f = fopen(path, "r");
	int			pid = 0;

	if (f != NULL)
	{
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return (pid_t) pid;
}

/*
 * send_with_fds sends one packet of len bytes with two descriptors (our
 * stdin and stdout) attached, as a misbehaving client might.
 */
static bool
send_with_fds(int sock, const void *data, size_t len)
{
	union
	{
		char		buf[CMSG_SPACE(sizeof(int) * 2)];
		struct cmsghdr align;
	}			control;
	int			fds[2] = {0, 1};
	struct iovec iov = {(void *) data, len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
	.msg_control = control.buf, .msg_controllen = sizeof(control.buf)};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cmsg), fds, sizeof(fds));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t) len;
}

/* test_bad_requests: malformed requests get BAD_REQUEST, serving goes on. */
static void
test_bad_requests(Init *in, int sock)
{
	struct
	{
		const char *what;
		unsigned char bytes[16];
		size_t		len;
	}			bad[] = {
		{"short", {0x78, 0x6e}, 2},
		{"long", {0x78, 0x6e, 1, 1, 0, 0, 0, 0}, 8},
		{"one byte", {0x78}, 1},
		{"bad magic", {0x00, 0x00, 1, 1}, 4},
		{"bad version", {0x78, 0x6e, 2, 1}, 4},
		{"op 0", {0x78, 0x6e, 1, 0}, 4},
		{"op 99", {0x78, 0x6e, 1, 99}, 4},
	};
	NxInitRequest ping = {NX_HANDOFF_MAGIC, NX_HANDOFF_VERSION, NX_INIT_OP_PING};
	int			base,
				other;
	size_t		i;

	/*
	 * nx-init closes its copy of a handed-over fd just after the reply; the
	 * reply to a later request means it has.
	 */
	EXPECT_REPLY(sock, NX_INIT_OP_PING, NX_INIT_OK);
	base = count_fds(in->pid);

	/* the table spells the magic in little-endian byte order */
	CHECK(memcmp(&ping, bad[1].bytes, 4) == 0, "test assumes a little-endian host");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		NxInitReply reply = {0};
		int			fd;
		bool		ok = request_raw(sock, bad[i].bytes, bad[i].len, &reply, &fd);

		CHECK(ok && reply_is(&reply, NX_INIT_BAD_REQUEST, false, fd),
			  "%s request: want BAD_REQUEST, got status %d", bad[i].what, reply.status);
		EXPECT_REPLY(sock, NX_INIT_OP_PING, NX_INIT_OK);
	}

	/* a good request carrying descriptors: rejected, and nothing leaks */
	for (i = 0; i < 10; i++)
	{
		NxInitReply reply = {0};
		int			fd;

		CHECK(send_with_fds(sock, &ping, sizeof(ping)) &&
			  recv_reply(sock, &reply, &fd) &&
			  reply_is(&reply, NX_INIT_BAD_REQUEST, false, fd),
			  "request with fds attached: want BAD_REQUEST, got %d", reply.status);
	}
	EXPECT_REPLY(sock, NX_INIT_OP_PING, NX_INIT_OK);
	CHECK(count_fds(in->pid) == base, "nx-init kept fds sent to it: %d -> %d",
		  base, count_fds(in->pid));

	/* an empty packet (with descriptors): that client is dropped, no leak */
	other = client_connect(in);
	CHECK(send_with_fds(other, &ping, 0) && recv(other, &ping, 1, 0) == 0,
		  "a client sending an empty packet was not dropped");
	close(other);
	CHECK(wait_fds(in->pid, base) == base, "nx-init kept fds sent to it: %d -> %d",
		  base, count_fds(in->pid));
	EXPECT_REPLY(sock, NX_INIT_OP_PING, NX_INIT_OK);
}

/* test_many_clients: clients served at once; the cap; idle slots freed. */
static void
test_many_clients(Init *in, int sock)
{
	enum
	{
	N = 20, EXTRA = 300};
	NxInitRequest ping = {NX_HANDOFF_MAGIC, NX_HANDOFF_VERSION, NX_INIT_OP_PING};
	int			c[N];
	int			extra[EXTRA];
	int			i,
				ok = 0,
				refused = 0;
	int			base = count_fds(in->pid);

	/* N clients each send a request before any reads its reply */
	for (i = 0; i < N; i++)
		c[i] = client_connect(in);
	for (i = 0; i < N; i++)
		send(c[i], &ping, sizeof(ping), MSG_NOSIGNAL);
	for (i = 0; i < N; i++)
	{
		NxInitReply reply = {0};
		int			fd;

		if (recv_reply(c[i], &reply, &fd) && reply_is(&reply, NX_INIT_OK, false, fd))
			ok++;
		close(c[i]);
	}
	CHECK(ok == N, "%d clients at once: %d answered", N, ok);

	/* beyond NX_MAX_CLIENTS, connections are closed at once */
	for (i = 0; i < EXTRA; i++)
		extra[i] = client_connect(in);
	for (i = 0; i < EXTRA; i++)
	{
		struct pollfd pfd = {.fd = extra[i], .events = POLLIN};

		if (extra[i] < 0 || (poll(&pfd, 1, i == EXTRA - 1 ? 1000 : 0) == 1 &&
							 recv(extra[i], &ping, sizeof(ping), MSG_DONTWAIT) == 0))
			refused++;
	}
	CHECK(refused > 0 && refused <= EXTRA - 254,
		  "client cap: %d of %d extra connections refused", refused, EXTRA);
	EXPECT_REPLY(sock, NX_INIT_OP_PING, NX_INIT_OK);
	for (i = 0; i < EXTRA; i++)
		if (extra[i] >= 0)
			close(extra[i]);
	CHECK(wait_fds(in->pid, base) == base, "closed clients' fds not released");
	i = client_connect(in);
	EXPECT_REPLY(i, NX_INIT_OP_PING, NX_INIT_OK);
	close(i);
}

/*
 * test_flooder: a client that sends requests but never reads the replies
 * gets disconnected, and others are served meanwhile.
 */
static void
test_flooder(Init *in, int sock)
{
	NxInitRequest ping = {NX_HANDOFF_MAGIC, NX_HANDOFF_VERSION, NX_INIT_OP_PING};
	int			f = client_connect(in);
	long		deadline = now_ms() + 5000;
	bool		dropped = false;

	while (!dropped && now_ms() < deadline)
	{
		ssize_t		n = send(f, &ping, sizeof(ping), MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			sleep_ms(1);
		else if (n < 0)
			dropped = true;		/* EPIPE / ECONNRESET: nx-init hung up */
	}
	CHECK(dropped, "a client that does not read its replies was not dropped");
	EXPECT_REPLY(sock, NX_INIT_OP_PING, NX_INIT_OK);
	close(f);
}

/*
 * test_hello: the main case with examples/hello: ready, PING, CONNECT with
 * a working socket (100 times on one connection), bad requests, many
 * clients, SIGTERM.
 */
static void
test_hello(void)
{
	const char *app[] = {hello_path, NULL};
	Init		in;
	int			sock,
				fd,
				i,
				ok = 0;

	printf("== hello\n");
	start_init(&in, app, NULL);
	EXPECT_LINE(&in, "ready", READY_TIMEOUT_MS);

	sock = client_connect(&in);
	CHECK(sock >= 0, "cannot connect to %s", in.sock);
	EXPECT_REPLY(sock, NX_INIT_OP_PING, NX_INIT_OK);
	fd = EXPECT_REPLY(sock, NX_INIT_OP_CONNECT, NX_INIT_OK);
	CHECK(fd >= 0 && http_get(fd), "no HTTP answer on the handed-over socket");
	if (fd >= 0)
		close(fd);

	for (i = 0; i < 100; i++)
	{
		NxInitReply reply = {0};

		fd = -1;
		if (request(sock, NX_INIT_OP_CONNECT, &reply, &fd) &&
			reply_is(&reply, NX_INIT_OK, true, fd) && http_get(fd))
			ok++;
		if (fd >= 0)
			close(fd);
	}
	CHECK(ok == 100, "100 CONNECTs on one connection: %d worked", ok);

	test_bad_requests(&in, sock);
	test_many_clients(&in, sock);
	test_flooder(&in, sock);

	kill(in.pid, SIGTERM);
	EXPECT_LINE(&in, "killed 15", EXIT_TIMEOUT_MS);
	EXPECT_EXIT(&in, 143);
	close(sock);
	finish(&in);
}

/*
 * test_not_ready: an app that listens only after 0.3 s gets NOT_READY
 * before, OK after; NX_INIT_ADOPTED_SIGNAL is not forwarded to it (and,
 * sent from inside nx-init's pid namespace as here, changes nothing);
 * SIGUSR1 is.
 */
static void
test_not_ready(void)
{
	char		cmd[PATH_MAX + 32];
	const char *app[] = {"/bin/sh", "-c", cmd, NULL};
	Init		in;
	int			sock,
				fd;

	printf("== not ready\n");
	snprintf(cmd, sizeof(cmd), "sleep 0.3; exec %s", hello_path);
	start_init(&in, app, NULL);
	sock = client_connect(&in);
	EXPECT_REPLY(sock, NX_INIT_OP_PING, NX_INIT_NOT_READY);
	EXPECT_REPLY(sock, NX_INIT_OP_CONNECT, NX_INIT_NOT_READY);
	EXPECT_LINE(&in, "ready", READY_TIMEOUT_MS);
	fd = EXPECT_REPLY(sock, NX_INIT_OP_CONNECT, NX_INIT_OK);
	CHECK(fd >= 0 && http_get(fd), "no HTTP answer after ready");
	if (fd >= 0)
		close(fd);

	kill(in.pid, NX_INIT_ADOPTED_SIGNAL);
	usleep(50 * 1000);
	EXPECT_REPLY(sock, NX_INIT_OP_PING, NX_INIT_OK);
	fd = EXPECT_REPLY(sock, NX_INIT_OP_CONNECT, NX_INIT_OK);
	CHECK(fd >= 0 && http_get(fd), "the app stopped answering after NX_INIT_ADOPTED_SIGNAL");
	if (fd >= 0)
		close(fd);

	kill(in.pid, SIGUSR1);
	EXPECT_LINE(&in, "killed 10", EXIT_TIMEOUT_MS);
	EXPECT_EXIT(&in, 138);
	close(sock);
	finish(&in);
}

/*
 * test_quiesce: QUIESCE before any hand-off is agreed to and makes CONNECT
 * answer NOT_READY until RESUME; right after a hand-off it is refused
 * (BUSY) and changes nothing.
 */
static void
test_quiesce(void)
{
	const char *app[] = {hello_path, NULL};
	Init		in;
	int			sock,
				fd;

	printf("== quiesce\n");
	start_init(&in, app, NULL);
	EXPECT_LINE(&in, "ready", READY_TIMEOUT_MS);
	sock = client_connect(&in);
	CHECK(sock >= 0, "cannot connect to %s", in.sock);
	EXPECT_REPLY(sock, NX_INIT_OP_QUIESCE, NX_INIT_OK);
	EXPECT_REPLY(sock, NX_INIT_OP_CONNECT, NX_INIT_NOT_READY);
	EXPECT_REPLY(sock, NX_INIT_OP_PING, NX_INIT_OK);
	EXPECT_REPLY(sock, NX_INIT_OP_RESUME, NX_INIT_OK);
	fd = EXPECT_REPLY(sock, NX_INIT_OP_CONNECT, NX_INIT_OK);
	CHECK(fd >= 0 && http_get(fd), "no HTTP answer after RESUME");
	if (fd >= 0)
		close(fd);
	EXPECT_REPLY(sock, NX_INIT_OP_QUIESCE, NX_INIT_BUSY);
	fd = EXPECT_REPLY(sock, NX_INIT_OP_CONNECT, NX_INIT_OK);
	CHECK(fd >= 0 && http_get(fd), "a refused QUIESCE changed something");
	if (fd >= 0)
		close(fd);

	kill(in.pid, SIGTERM);
	EXPECT_LINE(&in, "killed 15", EXIT_TIMEOUT_MS);
	EXPECT_EXIT(&in, 143);
	close(sock);
	finish(&in);
}

/* test_exit_code: the app's exit status is reported and passed on. */
static void
test_exit_code(void)
{
	const char *app[] = {"/bin/sh", "-c", "exit 3", NULL};
	Init		in;

	printf("== exit 3\n");
	start_init(&in, app, NULL);
	EXPECT_LINE(&in, "exited 3", EXIT_TIMEOUT_MS);
	EXPECT_EXIT(&in, 3);
	finish(&in);
}

/*
 * test_app_env: what the app gets: stdin at EOF, no fd 3, the environment
 * unchanged, no signal blocked or ignored (not even SIGHUP, which this
 * nx-init inherited ignored, nor SIGPIPE, which nx-init ignores).  The
 * script exits 1..5 naming the first thing wrong, 42 if all is well.  The
 * signal checks look at grep's own /proc/self/status, inherited from the
 * shell: the shell's own mask changes while it waits for a child.
 */
static void
test_app_env(void)
{
	const char *script =
		"read x && exit 1; "
		"[ -e /proc/$$/fd/3 ] && exit 2; "
		"[ -e /proc/$$/fd/4 ] && exit 6; "
		"[ \"$NX_SANDBOX\" = test ] && [ \"$NX_DEPLOYMENT\" = d1 ] || exit 3; "
		"grep -q '^SigBlk:[[:space:]]*0*$' /proc/self/status || exit 4; "
		"grep -q '^SigIgn:[[:space:]]*0*$' /proc/self/status || exit 5; "
		"exit 42";
	const char *app[] = {"/bin/sh", "-c", script, NULL};
	InitOpts	opts = {.ignore_sighup = true};
	Init		in;

	printf("== app environment\n");
	start_init(&in, app, &opts);
	EXPECT_LINE(&in, "exited 42", EXIT_TIMEOUT_MS);
	EXPECT_EXIT(&in, 42);
	finish(&in);
}

/* test_no_exec: an app that cannot be executed "exits 127", says why. */
static void
test_no_exec(void)
{
	const char *app[] = {"/nonexistent/app", "arg", NULL};
	char		errpath[PATH_MAX];
	char		err[1024] = "";
	InitOpts	opts = {.stderr_path = errpath};
	Init		in;
	FILE	   *f;

	printf("== nonexistent app\n");
	snprintf(errpath, sizeof(errpath), "/tmp/nx-init-test-stderr.%d", (int) getpid());
	start_init(&in, app, &opts);
	EXPECT_LINE(&in, "exited 127", EXIT_TIMEOUT_MS);
	EXPECT_EXIT(&in, 127);
	if ((f = fopen(errpath, "r")) != NULL)
	{
		size_t		n = fread(err, 1, sizeof(err) - 1, f);

		err[n] = '\0';
		fclose(f);
	}
	unlink(errpath);
	CHECK(strstr(err, "nx-init: cannot execute /nonexistent/app: No such file or directory\n")
		  != NULL, "stderr: %s", err);
	finish(&in);
}

/*
 * test_orphans: the app leaves a grandchild in its process group and one
 * in a session of its own; nx-init still exits at once and kills both.
 */
static void
test_orphans(void)
{
	char		dir[] = "/tmp/nx-init-orphans.XXXXXX";
	char		cmd[512];
	char		pid1[128],
				pid2[128];
	const char *app[] = {"/bin/sh", "-c", cmd, NULL};
	Init		in;
	long		t0;
	pid_t		p1,
				p2;

	printf("== orphans\n");
	if (mkdtemp(dir) == NULL)
	{
		perror("mkdtemp");
		exit(2);
	}
	snprintf(pid1, sizeof(pid1), "%s/pid1", dir);
	snprintf(pid2, sizeof(pid2), "%s/pid2", dir);
	snprintf(cmd, sizeof(cmd),
			 "sleep 100 & echo $! > %s; setsid sleep 100 & echo $! > %s; "
			 "sleep 0.05; exit 0", pid1, pid2);

	t0 = now_ms();
	start_init(&in, app, NULL);
	EXPECT_LINE(&in, "exited 0", EXIT_TIMEOUT_MS);
	EXPECT_EXIT(&in, 0);
	CHECK(now_ms() - t0 < PROMPT_EXIT_MS, "nx-init took %ld ms to exit",
		  now_ms() - t0);

	p1 = read_pid(pid1);
	p2 = read_pid(pid2);
	CHECK(p1 > 0 && p2 > 0, "app did not record its children's pids");
	t0 = now_ms();
	while ((!process_gone(p1) || !process_gone(p2)) && now_ms() - t0 < 2000)
		sleep_ms(5);
	CHECK(p1 > 0 && process_gone(p1), "grandchild in the app's group survived");
	CHECK(p2 > 0 && process_gone(p2), "grandchild in its own session survived");
	unlink(pid1);
	unlink(pid2);
	rmdir(dir);
	finish(&in);
}

/*
 * test_listen_only: readiness for an app listening on one address only,
 * seen through sock_diag's IPv6 (::1) or IPv4 (127.0.0.1) dump, or, with
 * via_proc, through /proc/net/tcp6 or /proc/net/tcp (the fallback).
 */
static void
test_listen_only(const char *addr, bool via_proc)
{
	const char *app[] = {self_path, "--listen", addr, NULL};
	InitOpts	proc_opts = {.opts = {"--proc-net", "/proc/net"}};
	Init		in;
	int			sock;

	printf("== listen on %s only (%s)\n", addr, via_proc ? "/proc/net" : "sock_diag");
	start_init(&in, app, via_proc ? &proc_opts : NULL);
	EXPECT_LINE(&in, "ready", READY_TIMEOUT_MS);
	sock = client_connect(&in);
	EXPECT_REPLY(sock, NX_INIT_OP_PING, NX_INIT_OK);
	close(sock);
	kill(in.pid, SIGTERM);
	EXPECT_LINE(&in, "killed 15", EXIT_TIMEOUT_MS);
	EXPECT_EXIT(&in, 143);
	finish(&in);
}

/*
 * test_connect_fallback: without /proc/net (--proc-net pointing nowhere)
 * readiness comes from connect() probes; also a fixed probe interval.
 */
static void
test_connect_fallback(void)
{
	const char *app[] = {hello_path, NULL};
	InitOpts	opts = {.opts = {"--proc-net", "/nonexistent", "--probe-interval-ms=20"}};
	Init		in;
	int			sock,
				fd;

	printf("== connect() probe fallback\n");
	start_init(&in, app, &opts);
	EXPECT_LINE(&in, "ready", READY_TIMEOUT_MS);
	sock = client_connect(&in);
	fd = EXPECT_REPLY(sock, NX_INIT_OP_CONNECT, NX_INIT_OK);
	CHECK(fd >= 0 && http_get(fd), "no HTTP answer (fallback probe)");
	if (fd >= 0)
		close(fd);
	close(sock);
	kill(in.pid, SIGINT);
	EXPECT_LINE(&in, "killed 2", EXIT_TIMEOUT_MS);
	EXPECT_EXIT(&in, 130);
	finish(&in);
}

/* test_no_status_fd: without fd 3 nx-init runs and exits as usual. */
static void
test_no_status_fd(void)
{
	const char *app[] = {"/bin/sh", "-c", "exit 5", NULL};
	InitOpts	opts = {.no_status_fd = true};
	Init		in;

	printf("== no status fd\n");
	start_init(&in, app, &opts);
	EXPECT_EXIT(&in, 5);
	finish(&in);
}

/* what fd 4 is when run_usage starts nx-init */
typedef enum UsageFd
{
	FD4_LISTENING,				/* a listening SOCK_SEQPACKET socket (right) */
	FD4_CLOSED,
	FD4_DEV_NULL,
	FD4_NOT_LISTENING,			/* a SOCK_SEQPACKET socket, not listening */
	FD4_STREAM					/* a listening SOCK_STREAM socket */
} UsageFd;

/*
 * run_usage runs nx-init with PORT=port, fd 4 as `fd4` says, and args;
 * returns its exit code.
 */
static int
run_usage(const char *port, UsageFd fd4, const char *const *args)
{
	const char *argv[8] = {nx_init_path};
	char		dir[] = "/tmp/nx-init-usage.XXXXXX";
	char		path[64];
	int			ws,
				i,
				fd = -1;
	pid_t		pid;

	for (i = 0; i < 6 && args[i] != NULL; i++)
		argv[i + 1] = args[i];
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/init.sock", dir);
	if (fd4 == FD4_LISTENING)
		fd = listen_at(path);
	else if (fd4 == FD4_DEV_NULL)
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	else if (fd4 == FD4_NOT_LISTENING)
		fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	else if (fd4 == FD4_STREAM)
	{
		struct sockaddr_un addr = {.sun_family = AF_UNIX};

		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
		if (bind(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0 || listen(fd, 1) < 0)
			return -1;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0)
	{
		int			null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		dup2(null, 2);
		if (fd >= 0)
		{
			dup2(fd, 4);
			fcntl(4, F_SETFD, 0);
		}
		else
			close(4);
		if (port != NULL)
			setenv("PORT", port, 1);
		else
			unsetenv("PORT");
		execv(nx_init_path, (char *const *) argv);
		_exit(126);
	}
	if (fd >= 0)
		close(fd);
	unlink(path);
	rmdir(dir);
	if (pid < 0 || waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws))
		return -1;
	return WEXITSTATUS(ws);
}

/* test_usage: bad invocations fail with 125 before starting anything. */
static void
test_usage(void)
{
	const char *app[] = {"--", "/bin/true", NULL};
	const char *no_app[] = {"--", NULL};
	const char *bad_opt[] = {"--bogus", "--", "/bin/true", NULL};
	const char *bad_ivl[] = {"--probe-interval-ms", "0", "--", "/bin/true", NULL};
	const char *run_dir[] = {"--run-dir", "/tmp", "--", "/bin/true", NULL};

	printf("== usage\n");
	CHECK(run_usage("8080", FD4_LISTENING, app) == 0, "a right invocation runs the app");
	CHECK(run_usage(NULL, FD4_LISTENING, app) == 125, "no PORT");
	CHECK(run_usage("0", FD4_LISTENING, app) == 125, "PORT=0");
	CHECK(run_usage("65536", FD4_LISTENING, app) == 125, "PORT=65536");
	CHECK(run_usage("80x", FD4_LISTENING, app) == 125, "PORT=80x");
	CHECK(run_usage("8080", FD4_LISTENING, no_app) == 125, "no app");
	CHECK(run_usage("8080", FD4_LISTENING, bad_opt) == 125, "unknown option");
	CHECK(run_usage("8080", FD4_LISTENING, bad_ivl) == 125, "--probe-interval-ms 0");
	CHECK(run_usage("8080", FD4_LISTENING, run_dir) == 125,
		  "--run-dir is gone: nx-init never makes its own socket");
	CHECK(run_usage("8080", FD4_CLOSED, app) == 125, "fd 4 closed");
	CHECK(run_usage("8080", FD4_DEV_NULL, app) == 125, "fd 4 not a socket");
	CHECK(run_usage("8080", FD4_NOT_LISTENING, app) == 125, "fd 4 not listening");
	CHECK(run_usage("8080", FD4_STREAM, app) == 125, "fd 4 a SOCK_STREAM socket");
}

/*
 * test_not_dumpable: nx-init's /proc/PID/fd and /proc/PID/mem are closed
 * to a process of the same uid (the app's position inside a sandbox),
 * while the app's own, after its execve, are not.  As root (which holds
 * CAP_SYS_PTRACE) there is nothing to see: skipped.
 */
static void
test_not_dumpable(void)
{
	const char *app[] = {hello_path, NULL};
	char		path[64];
	Init		in;
	pid_t		app_pid = 0;
	FILE	   *f;
	int			fd;

	printf("== not dumpable\n");
	if (geteuid() == 0)
	{
		printf("(skipped as root: CAP_SYS_PTRACE opens every /proc/PID/fd)\n");
		return;
	}
	start_init(&in, app, NULL);
	EXPECT_LINE(&in, "ready", READY_TIMEOUT_MS);
	snprintf(path, sizeof(path), "/proc/%d/fd", (int) in.pid);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd < 0 && errno == EACCES, "open %s: want EACCES, got %s", path,
		  fd < 0 ? strerror(errno) : "success");
	if (fd >= 0)
		close(fd);
	snprintf(path, sizeof(path), "/proc/%d/fd/4", (int) in.pid);
	fd = open(path, O_RDWR | O_CLOEXEC);
	CHECK(fd < 0, "open %s (the listening socket) must fail", path);
	if (fd >= 0)
		close(fd);
	snprintf(path, sizeof(path), "/proc/%d/mem", (int) in.pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd < 0 && errno == EACCES, "open %s: want EACCES, got %s", path,
		  fd < 0 ? strerror(errno) : "success");
	if (fd >= 0)
		close(fd);

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int) in.pid, (int) in.pid);
	if ((f = fopen(path, "r")) != NULL)
	{
		if (fscanf(f, "%d", &app_pid) != 1)
			app_pid = 0;
		fclose(f);
	}
	CHECK(app_pid > 0, "nx-init's child is listed in %s", path);
	snprintf(path, sizeof(path), "/proc/%d/fd", (int) app_pid);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd >= 0, "the app is dumpable again after its execve: open %s: %s", path,
		  fd < 0 ? strerror(errno) : "ok");
	if (fd >= 0)
		close(fd);
	kill(in.pid, SIGTERM);
	EXPECT_LINE(&in, "killed 15", EXIT_TIMEOUT_MS);
	EXPECT_EXIT(&in, 143);
	finish(&in);
}

/*
 * listen_role is this program as an app: listen on ADDR:$PORT (ADDR only)
 * and wait to be killed.
 */
static int
listen_role(const char *addr)
{
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
	struct sockaddr_in a4 = {.sin_family = AF_INET};
	int			port = atoi(getenv("PORT") ? getenv("PORT") : "0");
	int			one = 1;
	int			fd;
	int			rc;

	if (inet_pton(AF_INET6, addr, &a6.sin6_addr) == 1)
	{
		a6.sin6_port = htons((uint16_t) port);
		fd = socket(AF_INET6, SOCK_STREAM, 0);
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		rc = bind(fd, (struct sockaddr *) &a6, sizeof(a6));
	}
	else
	{
		inet_pton(AF_INET, addr, &a4.sin_addr);
		a4.sin_port = htons((uint16_t) port);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		rc = bind(fd, (struct sockaddr *) &a4, sizeof(a4));
	}
	if (fd < 0 || rc < 0 || listen(fd, 16) < 0)
	{
		perror("test_init --listen");
		return 1;
	}
	for (;;)
		pause();
}

int
main(int argc, char **argv)
{
	ssize_t		n;

	if (argc == 3 && strcmp(argv[1], "--listen") == 0)
		return listen_role(argv[2]);
	if (argc != 3)
	{
		fprintf(stderr, "usage: %s NX_INIT HELLO\n", argv[0]);
		return 2;
	}
	nx_init_path = argv[1];
	hello_path = argv[2];
	n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
	if (n <= 0 || access(nx_init_path, X_OK) < 0 || access(hello_path, X_OK) < 0)
	{
		fprintf(stderr, "test_init: need /proc/self/exe, %s and %s\n",
				nx_init_path, hello_path);
		return 2;
	}
	self_path[n] = '\0';
	signal(SIGPIPE, SIG_IGN);

	test_usage();
	test_not_dumpable();
	test_hello();
	test_not_ready();
	test_quiesce();
	test_exit_code();
	test_app_env();
	test_no_exec();
	test_orphans();
	test_listen_only("::1", false);
	test_listen_only("127.0.0.1", false);
	test_listen_only("::1", true);
	test_listen_only("127.0.0.1", true);
	test_connect_fallback();
	test_no_status_fd();

	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
