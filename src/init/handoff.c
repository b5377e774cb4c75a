/*
 * src/init/handoff.c
 *	  The hand-off server: the SOCK_SEQPACKET socket the supervisor listens
 *	  on at $PGDATA/nx/run/d<id>/init.sock and hands to nx-init, through
 *	  which routers get connections to the app and supervisors ask whether
 *	  it is ready or may be stopped.  The wire format is
 *	  src/include/nx_handoff.h.
 *
 * The app listens on 127.0.0.1:$PORT inside the sandbox's own network
 * namespace, which nobody outside can reach.  nx-init, being inside, opens
 * the TCP connection itself and passes the connected socket back over the
 * unix socket (SCM_RIGHTS); the router then splices bytes between it and
 * the browser.
 *
 * Rules this file keeps, because one stuck or hostile client must never
 * stop nx-init from serving the others:
 *
 *	- every socket is non-blocking; replies are sent with MSG_DONTWAIT, and
 *	  a client whose reply cannot be sent at once (it does not read what it
 *	  asked for) is disconnected;
 *	- at most NX_MAX_CLIENTS clients; more are accepted and closed at once;
 *	- at most REQUESTS_PER_WAKEUP requests from one client per loop pass
 *	  (epoll is level-triggered, so the rest are served on the next pass);
 *	- anything that is not exactly one well-formed request gets a
 *	  NX_INIT_BAD_REQUEST reply, and descriptors a client sends us are
 *	  closed at once; no state is kept per client beyond its descriptor.
 */
#define _GNU_SOURCE				/* accept4, MSG_CMSG_CLOEXEC */

#include "nx_init.h"
#include "nx_handoff.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define REQUESTS_PER_WAKEUP 32
#define ACCEPTS_PER_WAKEUP	128	/* connections accepted per loop pass */
#define MAX_PASSED_FDS		16	/* fds a (misbehaving) client may attach */

static int	listen_fd = -1;
static int	reserve_fd = -1;	/* spare fd to shed connections on EMFILE */
static int	clients[NX_MAX_CLIENTS];	/* connected client fds, -1 = free */
static bool full_logged;		/* "too many clients" said already */
static int	app_port;
static bool app_ready;
static int64_t last_handoff_ms = -1;	/* when a CONNECT last got a socket */
static int64_t quiesced_until_ms = -1;	/* CONNECT refused until then */

/* now_ms is the monotonic clock in milliseconds. */
static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * quiesce answers QUIESCE: OK and stop handing out connections if none was
 * handed out for NX_INIT_QUIET_MS, else BUSY (nothing changes).
 */
static uint8_t
quiesce(void)
{
	int64_t		now = now_ms();

	if (last_handoff_ms >= 0 && now - last_handoff_ms < NX_INIT_QUIET_MS)
		return NX_INIT_BUSY;
	quiesced_until_ms = now + NX_INIT_QUIESCE_MAX_MS;
	return NX_INIT_OK;
}

/* quiesced says whether CONNECT is refused because of a QUIESCE. */
static bool
quiesced(void)
{
	return quiesced_until_ms >= 0 && now_ms() < quiesced_until_ms;
}

/*
 * handoff_listen takes over the listening socket the supervisor made
 * (inherited as fd; see nx_handoff.h) and registers it with the main loop.
 * It must be a listening SOCK_SEQPACKET unix socket: anything else means
 * nx-init was started wrongly, and serving it would be worse than not
 * starting.  Returns 0, or -1 after logging why not.
 */
int
handoff_listen(int fd, int port)
{
	int			type = 0,
				domain = 0,
				listening = 0;
	socklen_t	len;
	int			flags;
	int			i;

	app_port = port;
	for (i = 0; i < NX_MAX_CLIENTS; i++)
		clients[i] = -1;

	len = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
	{
		nx_log("fd %d is not the hand-off socket: %s", fd, strerror(errno));
		return -1;
	}
	len = sizeof(domain);
	(void) getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
	len = sizeof(listening);
	(void) getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
	if (type != SOCK_SEQPACKET || domain != AF_UNIX || !listening)
	{
		nx_log("fd %d is not a listening SOCK_SEQPACKET unix socket", fd);
		return -1;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
		fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
	{
		nx_log("cannot set up fd %d: %s", fd, strerror(errno));
		return -1;
	}
	listen_fd = fd;
	reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	nx_epoll_add(listen_fd, NX_TAG_LISTENER);
	return 0;
}

/* handoff_set_ready records whether the app accepts connections yet. */
void
handoff_set_ready(bool ready)
{
	app_ready = ready;
}

/* client_close disconnects the client in `slot` and frees the slot. */
static void
client_close(int slot)
{
	nx_epoll_del(clients[slot]);
	close(clients[slot]);
	clients[slot] = -1;
	full_logged = false;
}

/*
 * shed_connection is for accept() failing with EMFILE/ENFILE: the pending
 * connection would stay in the backlog and, epoll being level-triggered,
 * wake us up forever.  Free the reserve descriptor, accept and close the
 * connection, then take the reserve back.
 */
static void
shed_connection(void)
{
	int			fd;

	if (reserve_fd >= 0)
	{
		close(reserve_fd);
		reserve_fd = -1;
	}
	fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		close(fd);
	reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* free_slot returns an unused client slot, or -1 if all are taken. */
static int
free_slot(void)
{
	int			i;

	for (i = 0; i < NX_MAX_CLIENTS; i++)
		if (clients[i] < 0)
			return i;
	return -1;
}

/*
 * handoff_accept accepts the pending connections on the listening socket
 * (called when it is readable).  Over the client limit, connections are
 * closed right away: the client sees EOF instead of waiting forever.
 */
void
handoff_accept(void)
{
	int			n;

	for (n = 0; n < ACCEPTS_PER_WAKEUP; n++)
	{
		int			fd = accept4(listen_fd, NULL, NULL,
								 SOCK_NONBLOCK | SOCK_CLOEXEC);
		int			slot;

		if (fd < 0)
		{
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE)
			{
				nx_log("accept: %s", strerror(errno));
				shed_connection();
			}
			else if (errno != EAGAIN && errno != EWOULDBLOCK)
				nx_log("accept: %s", strerror(errno));
			return;
		}
		slot = free_slot();
		if (slot < 0)
		{
			if (!full_logged)
				nx_log("too many clients (%d), refusing more", NX_MAX_CLIENTS);
			full_logged = true;
			close(fd);
			continue;
		}
		clients[slot] = fd;
		nx_epoll_add(fd, NX_TAG_CLIENT + (uint64_t) slot);
	}
}

/*
 * connect_app opens a TCP connection to the app at 127.0.0.1:$PORT and
 * returns the socket without waiting for the handshake to finish
 * (EINPROGRESS is fine: the receiver gets a socket that becomes writable
 * when connected).  On failure returns -1 with *err set to errno.
 */
static int
connect_app(int *err)
{
	struct sockaddr_in addr;
	int			fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
	{
		*err = errno;
		return -1;
	}
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t) app_port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *) &addr, sizeof(addr)) == 0 ||
		errno == EINPROGRESS || errno == EINTR)
		return fd;
	*err = errno;
	close(fd);
	return -1;
}

/*
 * send_reply sends one reply packet, with pass_fd attached if >= 0.  Never
 * blocks.  Returns false if the reply could not be sent whole, in which
 * case the caller drops the client.
 */
static bool
send_reply(int fd, const NxInitReply *reply, int pass_fd)
{
	union
	{
		char		buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	}			control;
	struct iovec iov;
	struct msghdr msg;
	ssize_t		n;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = (void *) reply;
	iov.iov_len = sizeof(*reply);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (pass_fd >= 0)
	{
		struct cmsghdr *cmsg;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &pass_fd, sizeof(int));
	}
	do
		n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		nx_log("dropping a client that does not read its replies");
	return n == (ssize_t) sizeof(*reply);
}

/*
 * close_passed_fds closes every descriptor that came with a received
 * message (a client has no business sending any) and says whether there
 * was any ancillary data at all.
 */
static bool
close_passed_fds(struct msghdr *msg)
{
	struct cmsghdr *cmsg;
	bool		any = false;

	for (cmsg = CMSG_FIRSTHDR(msg); cmsg != NULL; cmsg = CMSG_NXTHDR(msg, cmsg))
	{
		any = true;
		if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
		{
			size_t		nfds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			size_t		i;

			for (i = 0; i < nfds; i++)
			{
				int			fd;

				memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
				close(fd);
			}
		}
	}
	return any;
}

/*
 * serve_request answers one request (NULL: it was malformed) on the client
 * in `slot`.  Returns false if the client was dropped meanwhile.
 */
static bool
serve_request(int slot, const NxInitRequest *req)
{
	NxInitReply reply;
	int			app_fd = -1;
	bool		sent;

	memset(&reply, 0, sizeof(reply));
	reply.magic = NX_HANDOFF_MAGIC;
	reply.version = NX_HANDOFF_VERSION;
	reply.status = NX_INIT_BAD_REQUEST;

	if (req != NULL && req->magic == NX_HANDOFF_MAGIC &&
		req->version == NX_HANDOFF_VERSION)
	{
		if (req->op == NX_INIT_OP_PING)
			reply.status = app_ready ? NX_INIT_OK : NX_INIT_NOT_READY;
		else if (req->op == NX_INIT_OP_CONNECT && (!app_ready || quiesced()))
			reply.status = NX_INIT_NOT_READY;
		else if (req->op == NX_INIT_OP_CONNECT)
		{
			int			err = 0;

			app_fd = connect_app(&err);
			reply.status = app_fd >= 0 ? NX_INIT_OK : NX_INIT_CONNECT_FAILED;
			reply.err = err;
			if (app_fd >= 0)
				last_handoff_ms = now_ms();
		}
		else if (req->op == NX_INIT_OP_QUIESCE)
			reply.status = quiesce();
		else if (req->op == NX_INIT_OP_RESUME)
		{
			quiesced_until_ms = -1;
			reply.status = NX_INIT_OK;
		}
	}

	sent = send_reply(clients[slot], &reply, app_fd);
	if (app_fd >= 0)
		close(app_fd);			/* the client has its own copy now */
	if (!sent)
		client_close(slot);
	return sent;
}

/*
 * client_read receives and serves up to REQUESTS_PER_WAKEUP requests from
 * the client in `slot`.  A request is exactly one packet of exactly
 * sizeof(NxInitRequest) bytes with no ancillary data; the buffer is one
 * byte larger so that a longer packet shows up as such.  EOF (or a
 * zero-length packet, which SOCK_SEQPACKET cannot tell apart) and errors
 * drop the client.
 */
static void
client_read(int slot)
{
	int			n;

	for (n = 0; n < REQUESTS_PER_WAKEUP; n++)
	{
		unsigned char buf[sizeof(NxInitRequest) + 1];
		union
		{
			char		buf[CMSG_SPACE(sizeof(int) * MAX_PASSED_FDS)];
			struct cmsghdr align;
		}			control;
		struct iovec iov;
		struct msghdr msg;
		NxInitRequest req;
		ssize_t		len;
		bool		bad;

		memset(&msg, 0, sizeof(msg));
		iov.iov_base = buf;
		iov.iov_len = sizeof(buf);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);

		len = recvmsg(clients[slot], &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* even an empty packet can carry descriptors */
		bad = len >= 0 && close_passed_fds(&msg);
		if (len <= 0)
		{
			client_close(slot);
			return;
		}

		bad = bad || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 ||
			len != (ssize_t) sizeof(req);
		if (!bad)
			memcpy(&req, buf, sizeof(req));
		if (!serve_request(slot, bad ? NULL : &req))
			return;
	}
}

/*
 * handoff_client_event handles an epoll event on the client in `slot`:
 * serve what it sent, then drop it if it hung up or failed.
 */
void
handoff_client_event(int slot, uint32_t events)
{
	if (slot < 0 || slot >= NX_MAX_CLIENTS || clients[slot] < 0)
		return;
	if (events & EPOLLIN)
		client_read(slot);
	if (clients[slot] >= 0 && (events & (EPOLLHUP | EPOLLERR)))
		client_close(slot);
}
