/*
 * t/apps/handoff_get.c
 *	  Test client of nx-init's hand-off socket: asks for a connection to
 *	  the app (NX_INIT_OP_CONNECT), receives it (SCM_RIGHTS), sends one
 *	  HTTP request on it and prints the response.  It does what the router
 *	  does for each client connection, minus the client.
 *
 * Usage: handoff_get SOCKET [PATH]     exit 0 when a response arrived
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "nx_handoff.h"

/* receive_fd reads one reply and the descriptor attached to it. */
static int
receive_fd(int sock, NxInitReply *reply)
{
	char		control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = reply, .iov_len = sizeof(*reply)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
	.msg_control = control, .msg_controllen = sizeof(control)};
	struct cmsghdr *cmsg;
	int			fd = -1;

	if (recvmsg(sock, &msg, 0) != (ssize_t) sizeof(*reply))
		return -1;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg))
		if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
	return fd;
}

int
main(int argc, char **argv)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	NxInitRequest req = {.magic = NX_HANDOFF_MAGIC, .version = NX_HANDOFF_VERSION, .op = NX_INIT_OP_CONNECT};
	NxInitReply reply;
	char		request[512];
	char		buf[4096];
	int			sock,
				app;
	ssize_t		n;
	struct pollfd p;

	if (argc < 2 || strlen(argv[1]) >= sizeof(addr.sun_path))
	{
		fprintf(stderr, "usage: handoff_get SOCKET [PATH]\n");
		return 2;
	}
	strcpy(addr.sun_path, argv[1]);
	sock = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (connect(sock, (struct sockaddr *) &addr, sizeof(addr)) != 0)
	{
		fprintf(stderr, "handoff_get: connect %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (write(sock, &req, sizeof(req)) != (ssize_t) sizeof(req) ||
		(app = receive_fd(sock, &reply)) < 0 || reply.status != NX_INIT_OK)
	{
		fprintf(stderr, "handoff_get: no connection handed over (status %d, err %d)\n",
				reply.status, reply.err);
		return 1;
	}
	/* the socket may still be connecting: wait until it is writable */
	p.fd = app;
	p.events = POLLOUT;
	poll(&p, 1, 5000);
	snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
			 argc > 2 ? argv[2] : "/");
	if (write(app, request, strlen(request)) != (ssize_t) strlen(request))
		return 1;
	p.events = POLLIN;
	while (poll(&p, 1, 5000) == 1 && (n = read(app, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, n, stdout);
	return 0;
}
