/*
 * src/supervisor/pipe_watch.h
 *	  The deployments' pipes, watched in one epoll set of their own that
 *	  the worker loop waits on as a single descriptor (pipe_watch.c).
 */
#ifndef NX_PIPE_WATCH_H
#define NX_PIPE_WATCH_H

#include "c.h"

extern void NxPipeWatchInit(void);
extern int	NxPipeWatchFd(void);
extern bool NxPipeWatch(int fd, uint64 key);
extern void NxPipeUnwatch(int fd);
extern int	NxPipeWatchReady(uint64 *keys, int max);

#endif							/* NX_PIPE_WATCH_H */
