/*
 * src/supervisor/requests.c
 *	  What the worker loop reads besides its latch: a converge pass was
 *	  asked for (a slot finished stopping, the router or a branch copy
 *	  ended, a domain was verified), the descriptors to wait on changed (a
 *	  slot's pipes paused or closed, an idle stop's QUIESCE went out or was
 *	  answered), and deployments the supervisor itself wants started on the
 *	  start fast path (one waited for its turn and a start slot came free).
 *	  They live here, apart from the loop and the pass, so that the slots,
 *	  idle stops and helpers can raise them without calling back up.
 */
#include "requests.h"

static bool converge_requested = false;
static bool wait_set_changed = true;	/* none built yet */

#define START_REQUESTS 64
static int64 start_requests[START_REQUESTS];
static int	n_start_requests = 0;

/* NxRequestConverge: ask the loop for another pass soon. */
void
NxRequestConverge(void)
{
	converge_requested = true;
}

/* NxTakeConvergeRequest: was a pass requested since the last call? */
bool
NxTakeConvergeRequest(void)
{
	bool		r = converge_requested;

	converge_requested = false;
	return r;
}

/* NxWaitSetChanged: the loop must rebuild its wait set before waiting. */
void
NxWaitSetChanged(void)
{
	wait_set_changed = true;
}

/* NxTakeWaitSetChanged: did the descriptors change since the last call? */
bool
NxTakeWaitSetChanged(void)
{
	bool		r = wait_set_changed;

	wait_set_changed = false;
	return r;
}

/*
 * NxRequestStart: start this deployment soon on the start fast path
 * (reading only the rows of the queued deployments).  When more are asked for than fit, a converge
 * pass is asked for instead, which starts them all.
 */
void
NxRequestStart(int64 deployment)
{
	if (n_start_requests == START_REQUESTS)
	{
		NxRequestConverge();
		return;
	}
	start_requests[n_start_requests++] = deployment;
}

/* NxStartRequested: is a start waiting to be taken? */
bool
NxStartRequested(void)
{
	return n_start_requests > 0;
}

/*
 * NxTakeStartRequests moves at most max requested starts into ids and
 * returns how many; those that do not fit stay for the next call.
 */
int
NxTakeStartRequests(int64 *ids, int max)
{
	int			n = Min(max, n_start_requests);

	memcpy(ids, start_requests, n * sizeof(int64));
	memmove(start_requests, start_requests + n, (n_start_requests - n) * sizeof(int64));
	n_start_requests -= n;
	return n;
}
