/*
 * src/include/nx_scm.h
 *	  One file descriptor over a unix socket (SCM_RIGHTS), with a one-byte
 *	  payload: how nx-spawn sends the supervisor the user namespace it
 *	  mapped (src/runtime/userns.c), and how the supervisor and the runtime
 *	  test take it (src/supervisor/userns_keep.c, src/runtime/test_runtime.c).
 *	  Header-only: those are three programs (nx-spawn, the backend library,
 *	  a test) with nothing else in common.  The hand-off of app sockets has
 *	  its own packets (nx_handoff.h) and is not this.
 */
#ifndef NX_SCM_H
#define NX_SCM_H

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

/* the control buffer of one descriptor, aligned for cmsghdr */
typedef union NxScmControl
{
	char		buf[CMSG_SPACE(sizeof(int))];
	struct cmsghdr align;
} NxScmControl;

/*
 * nx_scm_send_fd sends fd on sock with one byte, without waiting and
 * without SIGPIPE;
 * false when it could not be sent.
 */
static inline bool
nx_scm_send_fd(int sock, int fd)
{
	char		byte = 'u';
	struct iovec iov = {.iov_base = &byte,.iov_len = 1};
	NxScmControl control;
	struct msghdr msg;
	struct cmsghdr *cmsg;
	ssize_t		n;

	memset(&control, 0, sizeof(control));
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof(control.buf);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	while ((n = sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	return n == 1;
}

/*
 * nx_scm_recv_fd takes one descriptor (close-on-exec) sent as above on
 * sock; recv_flags are recvmsg's (MSG_DONTWAIT not to wait).  -1 when
 * nothing came, or anything but exactly one descriptor.
 */
static inline int
nx_scm_recv_fd(int sock, int recv_flags)
{
	char		byte;
	struct iovec iov = {.iov_base = &byte,.iov_len = 1};
	NxScmControl control;
	struct msghdr msg;
	struct cmsghdr *cmsg;
	int			fd = -1;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof(control.buf);
	if (recvmsg(sock, &msg, recv_flags | MSG_CMSG_CLOEXEC) <= 0)
		return -1;
	cmsg = CMSG_FIRSTHDR(&msg);
	if (cmsg != NULL && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
		cmsg->cmsg_len == CMSG_LEN(sizeof(int)) && !(msg.msg_flags & MSG_CTRUNC))
		memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
	return fd;
}

#endif							/* NX_SCM_H */
