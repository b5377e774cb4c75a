/*
 * src/init/nx_listens.h
 *	  Does a TCP socket listen on a port in this network namespace?  Two
 *	  ways to ask (listens.c): sock_diag (netlink) and /proc/net/tcp{,6}.
 *	  Shared by nx-init's probe and bench/probe_cost.c; libc only.
 */
#ifndef NX_LISTENS_H
#define NX_LISTENS_H

extern int	listens_diag_open(void);
extern int	listens_diag(int fd, int port);
extern int	listens_proc(const char *proc_net, int port);

#endif							/* NX_LISTENS_H */
