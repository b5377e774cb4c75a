/*
 * src/router/handoff.c
 *	  Getting app sockets from the sandboxes' nx-init: one persistent
 *	  SOCK_SEQPACKET connection per deployment to <run-dir>/d<id>/init.sock,
 *	  over which CONNECT requests go out and replies (with the app socket
 *	  attached, SCM_RIGHTS) come back in order.  Wire format:
 *	  src/include/nx_handoff.h.
 *
 * Nothing here blocks: requests are sent with MSG_DONTWAIT, replies are
 * read when epoll says so, and each deployment keeps a FIFO of the
 * connections whose CONNECT is in flight (nx-init answers in order).  A
 * connection that goes away while queued leaves a hole in the FIFO; the
 * socket that arrives for it is closed.
 *
 * Every descriptor received is checked (check_app_socket): a TCP socket,
 * with lingering on close turned off.
 *
 * A missing socket means the deployment's sandbox is not up (starting,
 * restarting, or stopped by the supervisor): the connection waits and
 * asks again until --ready-timeout, then gets 503 "not running".  Waking
 * an idle-stopped deployment is asked for by conn.c (RoutesWake), not here.
 */
#define _GNU_SOURCE				/* MSG_CMSG_CLOEXEC */

#include "router.h"
#include "nx_handoff.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define QUEUE_SIZE 256			/* CONNECTs in flight per deployment */
#define BUCKETS 256

typedef struct Deployment
{
	int64_t		id;
	int			fd;				/* to nx-init, -1 when not connected */
	Tag			tag;
	uint32_t	events;
	Conn	   *queue[QUEUE_SIZE];	/* waiting for a reply; NULL: gone */
	int			qhead;
	int			qlen;
	int64_t		refused_at;		/* loop_now of the last failed connect */
	const char *refused_why;	/* and why it failed */
	struct Deployment *next;	/* hash chain */
} Deployment;

static Deployment *buckets[BUCKETS];

/* find_deployment returns the state kept for deployment `id`, made on first use. */
static Deployment *
find_deployment(int64_t id)
{
	Deployment **b = &buckets[(uint64_t) id % BUCKETS];
	Deployment *d;

	for (d = *b; d; d = d->next)
		if (d->id == id)
			return d;
	d = calloc(1, sizeof(Deployment));
	if (d == NULL)
		return NULL;
	d->id = id;
	d->fd = -1;
	d->tag = (Tag) {TAG_HANDOFF, d};
	d->next = *b;
	*b = d;
	return d;
}

/*
 * drop_connection closes the connection to a deployment's nx-init (it
 * ended, or misbehaved); the connections waiting on it ask again later.
 */
static void
drop_connection(Deployment *d)
{
	if (d->fd >= 0)
	{
		EpollDel(d->fd, &d->events);
		close(d->fd);
		d->fd = -1;
	}
	while (d->qlen > 0)
	{
		Conn	   *conn = d->queue[d->qhead];

		d->qhead = (d->qhead + 1) % QUEUE_SIZE;
		d->qlen--;
		if (conn)
		{
			conn->queued = false;
			ConnRetryHandoff(conn, "not running");
		}
	}
	d->qhead = 0;
}

/*
 * open_connection connects to the deployment's init.sock.  Returns false,
 * with the reason in *why, when the sandbox is not there.
 */
static bool
open_connection(Deployment *d, const char **why)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	const char *run_dir = RoutesRunDir();
	int			fd;

	*why = "not running";
	if (run_dir == NULL)
	{
		*why = "run directory not known yet";
		return false;
	}
	if ((size_t) snprintf(addr.sun_path, sizeof(addr.sun_path), NX_RUN_SOCKET_PATH_FMT,
						  run_dir, (long long) d->id) >= sizeof(addr.sun_path))
	{
		*why = "run directory path too long";
		return false;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
	{
		*why = "out of file descriptors";
		return false;
	}
	if (connect(fd, (struct sockaddr *) &addr, sizeof(addr)) != 0)
	{
		/* ENOENT, ECONNREFUSED: not (yet) running; EAGAIN: backlog full */
		close(fd);
		return false;
	}
	d->fd = fd;
	EpollSet(fd, &d->tag, EPOLLIN, &d->events);
	return true;
}

/*
 * HandoffRequest sends a CONNECT for `conn` to its deployment's nx-init;
 * the reply comes later through HandoffEvent.  When it cannot be sent now
 * the connection is scheduled to ask again.
 */
void
HandoffRequest(Conn *conn)
{
	NxInitRequest req = {.magic = NX_HANDOFF_MAGIC, .version = NX_HANDOFF_VERSION,
	.op = NX_INIT_OP_CONNECT};
	Deployment *d = find_deployment(conn->deployment);
	const char *why = "not running";

	if (d == NULL)
	{
		ConnHandoffFailed(conn, 503, "out of memory");
		return;
	}
	if (d->fd < 0)
	{
		/*
		 * Connections waiting for a sandbox that is not up come due together:
		 * one failed connect() per loop pass answers them all.
		 */
		if (d->refused_why != NULL && d->refused_at == loop_now)
		{
			ConnRetryHandoff(conn, d->refused_why);
			return;
		}
		if (!open_connection(d, &why))
		{
			d->refused_at = loop_now;
			d->refused_why = why;
			ConnRetryHandoff(conn, why);
			return;
		}
	}
	if (d->qlen == QUEUE_SIZE)
	{
		ConnRetryHandoff(conn, "too many connections waiting for the app");
		return;
	}
	if (send(d->fd, &req, sizeof(req), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t) sizeof(req))
	{
		if (errno != EAGAIN)
			drop_connection(d);
		ConnRetryHandoff(conn, "not running");
		return;
	}
	d->queue[(d->qhead + d->qlen) % QUEUE_SIZE] = conn;
	d->qlen++;
	conn->queued = true;
}

/* HandoffCancel forgets the CONNECT in flight for `conn`, if any. */
void
HandoffCancel(Conn *conn)
{
	Deployment *d;
	int			i;

	if (!conn->queued)
		return;
	conn->queued = false;
	d = find_deployment(conn->deployment);
	if (d == NULL)
		return;
	for (i = 0; i < d->qlen; i++)
		if (d->queue[(d->qhead + i) % QUEUE_SIZE] == conn)
			d->queue[(d->qhead + i) % QUEUE_SIZE] = NULL;
}

/*
 * receive_reply reads one reply and the descriptor attached, if any.
 * Returns the packet size, 0 at end of stream, -1 on error (errno set).
 */
static ssize_t
receive_reply(int sock, NxInitReply *reply, int *fd)
{
	char		control[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = {.iov_base = reply, .iov_len = sizeof(*reply)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
	.msg_control = control, .msg_controllen = sizeof(control)};
	struct cmsghdr *cmsg;
	ssize_t		n;

	*fd = -1;
	n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -1;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg))
	{
		if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
		{
			int			nfds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int			i;

			for (i = 0; i < nfds; i++)
			{
				int			got;

				memcpy(&got, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
				if (*fd < 0)
					*fd = got;
				else
					close(got); /* more than we asked for */
			}
		}
	}
	if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
	{
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		errno = EPROTO;
		return -1;
	}
	return n;
}

/*
 * check_app_socket makes sure a descriptor nx-init handed over is a TCP
 * socket (a stream of AF_INET or AF_INET6) and that closing it never
 * lingers: nx-init runs inside the sandbox, and a subverted one could hand
 * over anything, such as a socket with SO_LINGER set to make the router's
 * close() block (docs/security.md).  Costs three system calls per
 * hand-off; pooled reuse costs none.
 */
static bool
check_app_socket(int fd)
{
	int			type = 0,
				domain = 0;
	socklen_t	len = sizeof(int);
	struct linger off = {0, 0};

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
		return false;
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 ||
		(domain != AF_INET && domain != AF_INET6))
		return false;
	return setsockopt(fd, SOL_SOCKET, SO_LINGER, &off, sizeof(off)) == 0;
}

/*
 * HandoffEvent reads nx-init's replies for one deployment and gives each
 * to the connection at the head of its FIFO.
 */
void
HandoffEvent(Tag *tag, uint32_t events)
{
	Deployment *d = tag->owner;

	(void) events;
	while (d->fd >= 0)
	{
		NxInitReply reply;
		int			fd;
		ssize_t		n = receive_reply(d->fd, &reply, &fd);
		Conn	   *conn;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0 || n != (ssize_t) sizeof(reply) || reply.magic != NX_HANDOFF_MAGIC ||
			reply.version != NX_HANDOFF_VERSION || d->qlen == 0)
		{
			if (n > 0)
				RouterLog("deployment %lld: unexpected reply from nx-init", (long long) d->id);
			if (fd >= 0)
				close(fd);
			drop_connection(d);
			return;
		}
		conn = d->queue[d->qhead];
		d->qhead = (d->qhead + 1) % QUEUE_SIZE;
		d->qlen--;
		if (conn == NULL)
		{
			if (fd >= 0)
				close(fd);		/* its client went away meanwhile */
			continue;
		}
		conn->queued = false;
		if (reply.status == NX_INIT_OK && fd >= 0 && !check_app_socket(fd))
		{
			RouterLog("deployment %lld: nx-init handed over a socket that is not TCP",
					  (long long) d->id);
			close(fd);
			ConnHandoffFailed(conn, 502, "nx-init handed over a socket that is not TCP");
		}
		else if (reply.status == NX_INIT_OK && fd >= 0)
			ConnGotApp(conn, fd);
		else
		{
			if (fd >= 0)
				close(fd);
			if (reply.status == NX_INIT_NOT_READY)
				ConnRetryHandoff(conn, "not ready in time");
			else if (reply.status == NX_INIT_CONNECT_FAILED)
				ConnRetryHandoff(conn, "the app refuses connections");
			else
				ConnHandoffFailed(conn, 502, "nx-init refused the request");
		}
	}
}
