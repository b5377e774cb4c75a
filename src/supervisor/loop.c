/*
 * src/supervisor/loop.c
 *	  The worker loop's waiting and reaping: one wait set over the latch,
 *	  postmaster death, the deployments' pipes (one epoll descriptor for
 *	  all of them, pipe_watch.c, read by slots.c) and the idle stops'
 *	  QUIESCE sockets (idle.c), rebuilt only when idle.c says its sockets
 *	  changed (requests.c); and one waitpid loop
 *	  that hands every exited child to whichever part started it (a
 *	  sandbox's slot, the router, a domain check, a branch copy, or a
 *	  user namespace mapped ahead of a first start).
 *
 *	  This is the top of the supervisor's call graph below worker.c: it
 *	  calls the slots, idle stops, router, domain checks and branch copies,
 *	  and none of them calls back here.
 */
#include "branch.h"
#include "domains.h"
#include "idle.h"
#include "loop.h"
#include "pipe_watch.h"
#include "requests.h"
#include "router_proc.h"
#include "slots.h"
#include "supervisor.h"
#include "userns_premap.h"

#include <signal.h>
#include <sys/wait.h>

#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

static WaitEventSet *wait_set = NULL;

/*
 * set by the SIGCHLD handler: a waitpid(-1) walks every child the
 * supervisor has, 1,000 adopted nx-inits with 1,000 sandboxes, so the loop
 * calls it only after a child exited
 */
static volatile sig_atomic_t child_exited = true;

/* BuildWaitSet makes the wait set anew from what each part waits on. */
static void
BuildWaitSet(void)
{
	int			capacity = 3 + NX_IDLE_MAX_ASKS;

	if (wait_set != NULL)
		FreeWaitEventSet(wait_set);
	wait_set = CreateWaitEventSet(TopMemoryContext, capacity);
	AddWaitEventToSet(wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wait_set, WL_POSTMASTER_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(wait_set, WL_SOCKET_READABLE, NxPipeWatchFd(), NULL, NULL);
	NxIdleAddWaitEvents(wait_set);
}

/*
 * NxWaitForEvents waits for the latch, postmaster death, or any pipe or
 * socket of ours, up to timeout_ms, and has whatever became readable read.
 */
NxWaitResult
NxWaitForEvents(long timeout_ms)
{
	WaitEvent	events[64];
	int			n;
	NxWaitResult result = NX_WAIT_TIMEOUT;

	if (NxTakeWaitSetChanged() || wait_set == NULL)
		BuildWaitSet();

	n = WaitEventSetWait(wait_set, timeout_ms, events, lengthof(events), PG_WAIT_EXTENSION);
	for (int i = 0; i < n; i++)
	{
		if (events[i].events & WL_POSTMASTER_DEATH)
			return NX_WAIT_POSTMASTER_DEATH;
		if (events[i].events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			result = NX_WAIT_LATCH;
		}
		if (!(events[i].events & WL_SOCKET_READABLE))
			continue;
		if (events[i].fd == NxPipeWatchFd())
		{
			if (NxSlotsReadPipes() && result == NX_WAIT_TIMEOUT)
				result = NX_WAIT_IO;
		}
		else if (NxIdleOwns(events[i].user_data))
			NxIdleReadable(events[i].user_data);
	}
	return result;
}

/* NxNoteChildExited (the SIGCHLD handler): the next NxReapChildren reaps. */
void
NxNoteChildExited(void)
{
	child_exited = true;
}

/*
 * NxReapChildren collects every exited child and tells its owner: the
 * router, a domain check, a branch copy, a user namespace mapped ahead,
 * or the slot whose process it was.
 * Nothing to do unless a SIGCHLD came since the last call.
 */
void
NxReapChildren(void)
{
	int			status;
	pid_t		pid;

	if (!child_exited)
		return;
	child_exited = false;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
	{
		if (!NxRouterExited(pid, status) && !NxDomainCheckExited(pid, status) &&
			!NxBranchChildExited(pid, status) && !NxUsernsPremapExited(pid, status))
			NxSlotChildExited(pid, status);
	}
}

/*
 * ReapUntil reaps exited children (releasing their slots: cgroup, run dir)
 * until none of our sandboxes runs or `until` passes; returns how many
 * still run.
 */
static int
ReapUntil(TimestampTz until)
{
	int			running;

	do
	{
		NxReapChildren();
		running = NxSlotsRunning();
		if (running > 0)
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 20, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	} while (running > 0 && GetCurrentTimestamp() < until);
	return running;
}

/*
 * NxStopAllGracefully: SIGTERM to every sandbox, wait up to
 * nx.stop_timeout for them to exit, then SIGKILL the rest and reap them
 * for up to 2 more seconds, so that their cgroups are removed too (with
 * 1,000 sandboxes on 2 CPUs, 930 had not exited within a 3 s grace and
 * their cgroups were left for the next start to sweep).
 */
void
NxStopAllGracefully(void)
{
	NxSlotsStopAll();
	if (ReapUntil(TimestampTzPlusMilliseconds(GetCurrentTimestamp(), nx_stop_timeout)) == 0)
		return;
	NxSlotsKillAll();
	(void) ReapUntil(TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 2000));
}
