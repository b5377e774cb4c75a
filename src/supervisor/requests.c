/*
 * src/supervisor/requests.c
 *	  Two flags the worker loop reads: a converge pass was asked for (a
 *	  slot finished stopping, the router or a branch copy ended, a domain
 *	  was verified), and the descriptors to wait on changed (a slot's pipes
 *	  paused or closed, an idle stop's QUIESCE went out or was answered).
 *	  They live here, apart from the loop and the pass, so that the slots,
 *	  idle stops and helpers can raise them without calling back up.
 */
#include "requests.h"

static bool converge_requested = false;
static bool wait_set_changed = true;	/* none built yet */

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
