/*
 * src/supervisor/pipe_watch.c
 *	  The deployments' output and status pipes, in one epoll set of their
 *	  own.
 *
 * The worker loop's WaitEventSet has no way to remove one descriptor, so
 * it was built anew whenever a pipe was opened, closed, paused or resumed:
 * one epoll_ctl per open pipe, two per running deployment.  In a mass
 * start every start and every exit rebuilt it, which made the supervisor's
 * cost per start grow with the number of deployments running (about 1,000
 * epoll_ctl calls per start with 500 running).  Here each pipe is added
 * when it is opened and removed before it is closed, one call each, and
 * the loop's wait set holds only this set's descriptor (an epoll
 * descriptor is readable while any pipe in it is).  Level-triggered: a
 * pipe left unread (a budget spent, more than one call's worth ready)
 * shows up again on the next call.
 */
#include "postgres.h"

#include <sys/epoll.h>
#include <unistd.h>

#include "pipe_watch.h"

static int	watch_fd = -1;

/*
 * NxPipeWatchInit creates the set (once per worker; its failure is the
 * worker's, which the postmaster restarts).
 */
void
NxPipeWatchInit(void)
{
	if (watch_fd >= 0)
		return;
	watch_fd = epoll_create1(EPOLL_CLOEXEC);
	if (watch_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("nx supervisor: could not create an epoll set for the deployments' pipes: %m")));
}

/* NxPipeWatchFd: the descriptor the loop waits on for every pipe here. */
int
NxPipeWatchFd(void)
{
	return watch_fd;
}

/*
 * NxPipeWatch watches fd for reading, reported with key; false (logged)
 * if the kernel refused (the pipe then goes unread: its writer blocks
 * once it is full, and a start that never reports ready times out).
 */
bool
NxPipeWatch(int fd, uint64 key)
{
	struct epoll_event ev;

	ev.events = EPOLLIN;
	ev.data.u64 = key;
	if (epoll_ctl(watch_fd, EPOLL_CTL_ADD, fd, &ev) == 0)
		return true;
	ereport(LOG,
			(errmsg("nx supervisor: could not watch a deployment's pipe: %m")));
	return false;
}

/*
 * NxPipeUnwatch stops watching fd.  Call it before closing fd: the set
 * keys on the open pipe, not on the number, and a copy of the descriptor
 * elsewhere would keep a closed one's events coming.
 */
void
NxPipeUnwatch(int fd)
{
	(void) epoll_ctl(watch_fd, EPOLL_CTL_DEL, fd, NULL);
}

/*
 * NxPipeWatchReady fills keys with those of up to max pipes that can be
 * read (or hit end of file) now, without waiting; returns how many.
 */
int
NxPipeWatchReady(uint64 *keys, int max)
{
	struct epoll_event events[64];
	int			n;

	n = epoll_wait(watch_fd, events, Min(max, (int) lengthof(events)), 0);
	for (int i = 0; i < n; i++)
		keys[i] = events[i].data.u64;
	return Max(n, 0);
}
