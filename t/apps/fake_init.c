/*
 * t/apps/fake_init.c
 *	  A hostile nx-init for t/024: listens on the hand-off socket path
 *	  given and answers every CONNECT with OK and a descriptor that is not
 *	  a TCP socket (one end of a unix socketpair), so that the test can see
 *	  the router refuse it (502) instead of relaying to it.
 *
 * Usage: fake_init SOCKET_PATH
 */
#include "nx_handoff.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int			lfd = socket(AF_UNIX, SOCK_SEQPACKET, 0);

	if (argc != 2 || strlen(argv[1]) >= sizeof(addr.sun_path))
		return 2;
	strcpy(addr.sun_path, argv[1]);
	unlink(argv[1]);
	if (lfd < 0 || bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) != 0 || listen(lfd, 16) != 0)
	{
		perror("fake_init: listen");
		return 1;
	}
	for (;;)
	{
		int			fd = accept(lfd, NULL, NULL);
		NxInitRequest req;

		if (fd < 0)
			continue;
		while (recv(fd, &req, sizeof(req), 0) == (ssize_t) sizeof(req))
		{
			NxInitReply reply = {.magic = NX_HANDOFF_MAGIC, .version = NX_HANDOFF_VERSION,
			.status = NX_INIT_OK};
			int			pair[2];
			char		control[CMSG_SPACE(sizeof(int))];
			struct iovec iov = {.iov_base = &reply, .iov_len = sizeof(reply)};
			struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = control, .msg_controllen = sizeof(control)};
			struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

			if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0)
				return 1;
			cmsg->cmsg_level = SOL_SOCKET;
			cmsg->cmsg_type = SCM_RIGHTS;
			cmsg->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cmsg), &pair[0], sizeof(int));
			(void) sendmsg(fd, &msg, 0);
			close(pair[0]);
			close(pair[1]);
		}
		close(fd);
	}
}
