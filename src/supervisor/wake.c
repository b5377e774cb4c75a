/*
 * src/supervisor/wake.c
 *	  Wake the supervisor when a transaction that changed the rows commits
 *	  (invariant I4: the calling backend never does the slow work itself).
 *
 * nx._wake_supervisor() marks the current transaction; the transaction
 * callback sets the supervisor's latch once, at commit.  An aborted
 * transaction wakes nobody.
 *
 * The start fast path: nx.wake, nx.start, nx.restart and nx.push (of a
 * deployment on its sandbox's database) also call
 * nx._wake_deployment(id), which takes back the pass their event asked
 * for and names the deployment instead.  A commit that asked for nothing
 * else puts the ids into a small queue in shared memory beside the latch
 * (no pass counted); the supervisor then starts just those deployments
 * (NxStartQueuedDeployments).  A queue that overflows, or any other
 * request in the same transaction, is a full pass, which starts them too.
 */
#include "converge.h"
#include "supervisor.h"

#include "access/xact.h"
#include "fmgr.h"

PG_FUNCTION_INFO_V1(nx_wake_supervisor);
PG_FUNCTION_INFO_V1(nx_wake_deployment);

#define NX_LOCAL_WAKES 16		/* woken deployments one transaction keeps */

static int	full_wakes = 0;		/* passes this transaction asked for */
static int	local_wake_count = 0;	/* deployments it woke (nx.wake) */
static int64 local_wake_ids[NX_LOCAL_WAKES];
static bool callback_registered = false;

/*
 * QueueWakes puts the deployments this transaction woke into the
 * supervisor's wake queue (or marks it overflowed) and sets its latch.
 */
static void
QueueWakes(void)
{
	Latch	   *latch;

	if (NxShared == NULL)
		return;
	SpinLockAcquire(&NxShared->mutex);
	latch = NxShared->supervisor_latch;
	if (local_wake_count > NX_LOCAL_WAKES ||
		NxShared->wake_count + local_wake_count > NX_WAKE_QUEUE)
		NxShared->wake_overflow = true;
	else
	{
		for (int i = 0; i < local_wake_count; i++)
			NxShared->wake_ids[NxShared->wake_count++] = local_wake_ids[i];
	}
	SpinLockRelease(&NxShared->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

/*
 * NxXactCallback wakes the supervisor after a commit that asked for it: a
 * full pass if anything in the transaction asked for one, else only the
 * deployments it woke (the fast path).
 */
static void
NxXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (full_wakes > 0)
				NxWakeSupervisor();
			else if (local_wake_count > 0)
				QueueWakes();
			full_wakes = 0;
			local_wake_count = 0;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			full_wakes = 0;
			local_wake_count = 0;
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
 * NxTakeWakeQueue (the supervisor) moves the queued woken deployments into
 * ids (room for NX_WAKE_QUEUE) and returns how many; *overflow says some
 * were not queued, so that only a full pass is sure to start them.
 */
int
NxTakeWakeQueue(int64 *ids, bool *overflow)
{
	int			n;

	SpinLockAcquire(&NxShared->mutex);
	n = NxShared->wake_count;
	memcpy(ids, NxShared->wake_ids, sizeof(int64) * n);
	*overflow = NxShared->wake_overflow;
	NxShared->wake_count = 0;
	NxShared->wake_overflow = false;
	SpinLockRelease(&NxShared->mutex);
	return n;
}

/*
 * nx_wake_supervisor: ask for a supervisor pass when the current
 * transaction commits.  Called by every API function that changes rows.
 */
Datum
nx_wake_supervisor(PG_FUNCTION_ARGS)
{
	NxWakeInit();
	full_wakes++;
	PG_RETURN_VOID();
}

/*
 * nx_wake_deployment(id): the pass the caller asked for last (nx._event's)
 * is only for starting this one deployment (nx.wake, nx.start, nx.restart,
 * nx.push): at commit, unless something else in the transaction asked for
 * a pass, the supervisor starts just this deployment, without a full
 * converge pass.
 */
Datum
nx_wake_deployment(PG_FUNCTION_ARGS)
{
	NxWakeInit();
	if (full_wakes > 0)
		full_wakes--;
	if (local_wake_count < NX_LOCAL_WAKES)
		local_wake_ids[local_wake_count] = PG_GETARG_INT64(0);
	local_wake_count++;			/* past NX_LOCAL_WAKES: overflow at commit */
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
