/*
 * src/init/nx_init.h
 *	  Declarations shared by the parts of nx-init, the first process inside
 *	  every sandbox: the main loop (nx_init.c), the readiness probe (probe.c)
 *	  and the connection hand-off (handoff.c).
 *
 * nx-init is a single-threaded event loop around one epoll instance.  Every
 * descriptor registered there carries a tag in epoll_data.u64 saying what it
 * is; client connections carry NX_TAG_CLIENT + their slot number.
 *
 * Plain C (gnu99) and libc only: the binary is linked statically and copied
 * into sandboxes that have nothing else.
 */
#ifndef NX_INIT_H
#define NX_INIT_H

#include <stdbool.h>
#include <stdint.h>

/* what an epoll event is about (epoll_data.u64) */
#define NX_TAG_SIGNAL	1		/* the signalfd */
#define NX_TAG_TIMER	2		/* the probe's timerfd */
#define NX_TAG_LISTENER 3		/* the hand-off socket */
#define NX_TAG_CLIENT	16		/* + slot: a connected client */

/* how many clients (routers, supervisors) may be connected at once */
#define NX_MAX_CLIENTS	256

/* exit status of nx-init when it fails itself (bad usage, cannot set up) */
#define NX_INIT_EXIT_FAILURE 125

/* nx_init.c */
extern void nx_log(const char *fmt,...) __attribute__((format(printf, 1, 2)));
extern void nx_epoll_add(int fd, uint64_t tag);
extern void nx_epoll_del(int fd);

/* probe.c: is something listening on the app's port yet? */
extern int	probe_start(int port, int interval_ms, const char *proc_net);
extern bool probe_tick(void);
extern void probe_stop(void);

/* handoff.c: the SOCK_SEQPACKET server routers and supervisors talk to */
extern int	handoff_listen(int fd, int port);
extern void handoff_set_ready(bool ready);
extern void handoff_accept(void);
extern void handoff_client_event(int slot, uint32_t events);

#endif							/* NX_INIT_H */
