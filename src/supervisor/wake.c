/*
 * src/supervisor/wake.c
 *	  Wake the supervisor when a transaction that changed the rows commits
 *	  (invariant I4: the calling backend never does the slow work itself).
 *
 * nx._wake_supervisor() marks the current transaction; the transaction
 * callback sets the supervisor's latch once, at commit.  An aborted
 * transaction wakes nobody.
 */
#include "supervisor.h"

#include "access/xact.h"
#include "fmgr.h"

PG_FUNCTION_INFO_V1(nx_wake_supervisor);

static bool wake_at_commit = false;
static bool callback_registered = false;

/* NxXactCallback sets the supervisor's latch after a marked commit. */
static void
NxXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_at_commit)
				NxWakeSupervisor();
			wake_at_commit = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			wake_at_commit = false;
			break;
		default:
			break;
	}
}

/* NxWakeInit registers the callback (once per backend). */
void
NxWakeInit(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(NxXactCallback, NULL);
		callback_registered = true;
	}
}

/* NxWakeSupervisor sets the supervisor's latch now, if one runs. */
void
NxWakeSupervisor(void)
{
	Latch	   *latch = NULL;

	if (NxShared == NULL)
		return;
	SpinLockAcquire(&NxShared->mutex);
	latch = NxShared->supervisor_latch;
	NxShared->wakeups++;
	SpinLockRelease(&NxShared->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

/*
 * nx_wake_supervisor: ask for a supervisor pass when the current
 * transaction commits.  Called by every API function that changes rows.
 */
Datum
nx_wake_supervisor(PG_FUNCTION_ARGS)
{
	NxWakeInit();
	wake_at_commit = true;
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(nx_supervisor_pid);

/* nx_supervisor_pid: the supervisor's pid, 0 when none runs (for views). */
Datum
nx_supervisor_pid(PG_FUNCTION_ARGS)
{
	pid_t		pid = 0;

	if (NxShared != NULL)
	{
		SpinLockAcquire(&NxShared->mutex);
		pid = NxShared->supervisor_pid;
		SpinLockRelease(&NxShared->mutex);
	}
	PG_RETURN_INT32((int32) pid);
}
