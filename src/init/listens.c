/*
 * src/init/listens.c
 *	  One readiness check each way: does a TCP socket listen on a port in
 *	  the caller's network namespace?  Used by probe.c (which decides when
 *	  and which way to ask) and by bench/probe_cost.c (which measures what
 *	  each way costs); libc and kernel headers only.
 *
 * Glossary:
 *	  sock_diag	  NETLINK_SOCK_DIAG, the kernel's socket listing (what `ss`
 *				  uses).  A dump asking for state LISTEN only, with the
 *				  source port set, makes the kernel walk only the listening
 *				  hash and return at most the sockets on that port; the
 *				  dump covers the caller's network namespace only.
 *	  proc		  /proc/net/tcp and tcp6: the same facts as text.  Reading
 *				  them makes the kernel walk the host-wide established hash
 *				  as well (262,144 buckets on the benchmark host, whatever
 *				  the namespace): 1.6-2.1 ms of CPU per probe there.
 */
#include "nx_listens.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define TCP_LISTEN_STATE	0x0A	/* TCP_LISTEN, in both listings */

/*
 * listens_diag_open opens the sock_diag socket (close-on-exec; replies
 * wait at most 1 s, so that a kernel that never answers cannot stall the
 * loop).  Returns the fd, or -1 with errno set (EAFNOSUPPORT or EPERM when
 * a filter or the kernel refuses netlink, EPROTONOSUPPORT without
 * sock_diag).
 */
int
listens_diag_open(void)
{
	int			fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	struct timeval tv = {.tv_sec = 1, .tv_usec = 0};

	if (fd < 0)
		return -1;
	(void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/*
 * diag_family asks for the TCP sockets of one address family in state
 * LISTEN on `port` and reads the whole answer.  1: one listens, 0: none,
 * -1: the request was refused or failed (errno set).
 */
static int
diag_family(int fd, int family, int port, uint32_t seq)
{
	struct
	{
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	}			msg;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	long		buf[8192 / sizeof(long)];	/* aligned for nlmsghdr */
	int			found = 0;

	memset(&msg, 0, sizeof(msg));
	msg.nlh.nlmsg_len = sizeof(msg);
	msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	msg.nlh.nlmsg_seq = seq;
	msg.req.sdiag_family = (uint8_t) family;
	msg.req.sdiag_protocol = IPPROTO_TCP;
	msg.req.idiag_states = 1U << TCP_LISTEN_STATE;
	msg.req.id.idiag_sport = htons((uint16_t) port);	/* filtered by the kernel */

	if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *) &kernel, sizeof(kernel)) < 0)
		return -1;
	for (;;)
	{
		ssize_t		n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
		{
			errno = EPROTO;
			return -1;
		}
		for (h = (struct nlmsghdr *) buf; NLMSG_OK(h, (size_t) n); h = NLMSG_NEXT(h, n))
		{
			if (h->nlmsg_seq != seq)
				continue;		/* the rest of an earlier, abandoned dump */
			if (h->nlmsg_type == NLMSG_DONE)
				return found;
			if (h->nlmsg_type == NLMSG_ERROR)
			{
				struct nlmsgerr *e = NLMSG_DATA(h);

				errno = h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error < 0 ?
					-e->error : EPROTO;
				return -1;
			}
			if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
				h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
			{
				struct inet_diag_msg *m = NLMSG_DATA(h);

				if (m->idiag_state == TCP_LISTEN_STATE &&
					ntohs(m->id.idiag_sport) == port)
					found = 1;
			}
		}
	}
}

/*
 * listens_diag asks sock_diag whether a TCP socket (IPv4, else IPv6)
 * listens on `port` in this network namespace: 1 yes, 0 no, -1 the kernel
 * refused or failed (errno set).
 */
int
listens_diag(int fd, int port)
{
	static uint32_t seq;
	int			r = diag_family(fd, AF_INET, port, ++seq);

	if (r != 0)
		return r;
	return diag_family(fd, AF_INET6, port, ++seq);
}

/*
 * proc_file_listens reads one /proc/net/tcp-format file and says whether it
 * lists a socket in state LISTEN on local port `port`: 1 yes, 0 no, -1 the
 * file cannot be opened.
 *
 * A line looks like
 *	  "  0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 ..."
 * (the address is 32 hex digits in tcp6); the header line does not parse
 * and is skipped, like anything else that does not look like that.
 */
static int
proc_file_listens(const char *path, int port)
{
	FILE	   *f = fopen(path, "re");
	char		line[512];
	int			found = 0;

	if (f == NULL)
		return -1;
	while (!found && fgets(line, sizeof(line), f) != NULL)
	{
		unsigned int local_port,
					state;

		if (sscanf(line, " %*u: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x",
				   &local_port, &state) == 2 &&
			state == TCP_LISTEN_STATE && local_port == (unsigned int) port)
			found = 1;

		/* a line longer than the buffer: skip its remainder */
		if (strchr(line, '\n') == NULL)
		{
			int			c;

			while ((c = getc(f)) != EOF && c != '\n')
				;
		}
	}
	fclose(f);
	return found;
}

/*
 * listens_proc reads proc_net/tcp, then proc_net/tcp6: 1 a socket listens
 * on `port`, 0 none, -1 proc_net/tcp cannot be read.
 */
int
listens_proc(const char *proc_net, int port)
{
	char		path[4096];
	int			v4;

	snprintf(path, sizeof(path), "%s/tcp", proc_net);
	v4 = proc_file_listens(path, port);
	if (v4 != 0)
		return v4;
	snprintf(path, sizeof(path), "%s/tcp6", proc_net);
	return proc_file_listens(path, port) > 0;
}
