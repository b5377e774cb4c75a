/*
 * src/supervisor/router_proc.h
 *	  The router process, started and restarted by the supervisor
 *	  (router_proc.c).
 */
#ifndef NX_ROUTER_PROC_H
#define NX_ROUTER_PROC_H

#include "compat.h"

#include <sys/types.h>

struct NxHostSetup;

extern void NxRouterEnsure(const struct NxHostSetup *host);
extern bool NxRouterExited(pid_t pid, int wait_status);
extern void NxRouterStop(int sig);
extern void NxRouterFinish(void);
extern pid_t NxRouterPid(void);

#endif							/* NX_ROUTER_PROC_H */
