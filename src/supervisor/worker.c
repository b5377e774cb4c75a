/*
 * src/supervisor/worker.c
 *	  The supervisor background worker: registration, the wait loop, and
 *	  shutdown.  Everything it does is driven from here: a converge pass
 *	  when a control change commits (its latch is set) or every nx.naptime,
 *	  the database quota check every nx.database_quota_interval, reading
 *	  sandbox output and status pipes as they become readable,
 *	  per-deployment timers (start timeout, stop grace, restart backoff), and
 *	  running branch copies (branch.c: polled every 250 ms while they run).
 *
 * Everything allocated for one iteration of the loop (event details, log
 * tails, messages) lives in the loop's memory context, reset at the top of
 * each iteration: nothing per event lands in TopMemoryContext.
 *
 * Shutdown (SIGTERM from the postmaster): every sandbox gets SIGTERM, then
 * SIGKILL after nx.stop_timeout; no process of ours outlives the cluster.
 * Postmaster death: everything is killed at once.
 */
#include "branch.h"
#include "converge.h"
#include "dbsetup.h"
#include "domains.h"
#include "idle.h"
#include "loop.h"
#include "quota.h"
#include "requests.h"
#include "role_pool.h"
#include "router_proc.h"
#include "slots.h"
#include "supervisor.h"
#include "userns_keep.h"
#include "userns_premap.h"

#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

static volatile sig_atomic_t shutdown_requested = false;

/* NxSupervisorRegister asks the postmaster to run the supervisor. */
void
NxSupervisorRegister(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;	/* seconds, after a crash */
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "nx_sandbox");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "NxSupervisorMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, "nx supervisor");
	snprintf(worker.bgw_type, BGW_MAXLEN, "nx supervisor");
	RegisterBackgroundWorker(&worker);
}

/* NxHandleSigterm asks the loop for a graceful stop of every sandbox. */
static void
NxHandleSigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	shutdown_requested = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

/* NxHandleSigchld wakes the loop so that exited children are reaped. */
static void
NxHandleSigchld(SIGNAL_ARGS)
{
	int			save_errno = errno;

	NxNoteChildExited();
	SetLatch(MyLatch);
	errno = save_errno;
}

/*
 * NxSupervisorDetach runs at every exit of the worker (normal, error or
 * FATAL): it unpublishes the latch and kills whatever still runs, so that
 * a restarted supervisor starts from a clean machine.
 */
static void
NxSupervisorDetach(int code, Datum arg)
{
	NxRouterStop(SIGKILL);
	NxDomainChecksKill();
	NxBranchesKillAll();
	NxSlotsKillAll();
	SpinLockAcquire(&NxShared->mutex);
	NxShared->supervisor_latch = NULL;
	NxShared->supervisor_pid = 0;
	SpinLockRelease(&NxShared->mutex);
}

/*
 * NxRaiseFileLimit lifts the soft RLIMIT_NOFILE to the hard one: each
 * running deployment holds two pipes here, and each sandbox its kept user
 * namespace.  fd.c computed its budget from the limit the postmaster had,
 * so the descriptors gained are beyond what it counts; userns_keep.c is
 * told how many.
 */
static void
NxRaiseFileLimit(void)
{
	struct rlimit rl;
	rlim_t		before;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	before = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
	{
		ereport(LOG, (errmsg("nx supervisor: could not raise the open file limit: %m")));
		return;
	}
	NxUsernsSetFileRoom((int) Min(rl.rlim_max - before, (rlim_t) INT_MAX));
}

/*
 * NxSupervisorMain is the worker's entry point: connect to the control
 * database, publish the latch, then loop until shutdown.
 */
void
NxSupervisorMain(Datum arg)
{
	TimestampTz next_pass = 0;
	bool		converge_now = true;
	uint64		wakeups_seen = 0;
	TimestampTz stats_force_at = 0;	/* send pending statistics then */
	int64		woken[NX_WAKE_QUEUE];	/* the start fast path's deployments */
	int			nwoken = 0;
	MemoryContext loop_context;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, NxHandleSigterm);
	pqsignal(SIGCHLD, NxHandleSigchld);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(nx_database, NULL, 0);
	pgstat_report_appname("nx supervisor");

	/*
	 * What the supervisor commits is derived state (roles, databases,
	 * nx.runtime, its events): if a crash loses the last commits, the next
	 * pass redoes them (I2).  Not waiting for each WAL flush takes several
	 * milliseconds off every new sandbox's database.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * No user's open transaction may hold the supervisor up (I13): the rows
	 * it changes that users can lock are skipped when locked (SKIP LOCKED
	 * in nx._mark_asleep and the domain checks), and anything else waits at
	 * most this long; the statement fails, the pass logs it, and the next
	 * pass tries again.
	 */
	SetConfigOption("lock_timeout", "1s", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * The quota check reads the statistics every second (quota.c): each
	 * read straight from shared memory, never a copy of every entry in the
	 * cluster, whatever the administrator set as the default.
	 */
	SetConfigOption("stats_fetch_consistency", "none", PGC_SUSET, PGC_S_OVERRIDE);

	SpinLockAcquire(&NxShared->mutex);
	NxShared->supervisor_latch = MyLatch;
	NxShared->supervisor_pid = MyProcPid;
	SpinLockRelease(&NxShared->mutex);
	before_shmem_exit(NxSupervisorDetach, (Datum) 0);
	NxRolePoolReset();

	NxRaiseFileLimit();
	NxSlotsInit();
	ereport(LOG, (errmsg("nx supervisor started for database \"%s\"", nx_database)));
	loop_context = AllocSetContextCreate(TopMemoryContext, "nx supervisor loop",
										 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		TimestampTz now;
		long		timeout_ms;

		MemoryContextSwitchTo(loop_context);
		MemoryContextReset(loop_context);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			converge_now = true;
		}
		NxReapChildren();
		if (shutdown_requested)
		{
			NxRouterStop(SIGTERM);
			NxUsernsPremapKill();
			NxStopAllGracefully();
			NxRouterFinish();
			proc_exit(0);
		}

		/*
		 * a slot finished stopping, a crashed one's backoff ended, or nx-init
		 * answered (or did not, in time) an idle stop's QUIESCE
		 */
		now = GetCurrentTimestamp();
		if (NxTakeConvergeRequest() || NxIdleAsksDue(now))
			converge_now = true;
		/* and those the slots ask for: a start slot came free */
		nwoken += NxTakeStartRequests(woken + nwoken, NX_WAKE_QUEUE - nwoken);
		if (converge_now || now >= next_pass)
		{
			pgstat_report_activity(STATE_RUNNING, "converge");
			NxConverge(now >= next_pass);

			/*
			 * a pass a commit asked for may have made, dropped or renamed
			 * tenant databases; the periodic one (the safety net) does not
			 * ask for a quota check: with 1,000 idle sandboxes that check
			 * was an eighth of the supervisor's CPU
			 */
			if (converge_now)
				NxQuotaRequestCheck();
			pgstat_report_activity(STATE_IDLE, NULL);
			next_pass = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), nx_naptime * 1000L);
			converge_now = false;
		}
		else if (nwoken > 0)
		{
			/* only starts committed: start those deployments, no full pass */
			pgstat_report_activity(STATE_RUNNING, "start");
			NxStartQueuedDeployments(woken, nwoken);
			pgstat_report_activity(STATE_IDLE, NULL);
		}
		nwoken = 0;
		NxSlotsTick(GetCurrentTimestamp());
		/* new sandboxes' namespaces, mapped while no start needs the CPU */
		NxUsernsPremapTick(GetCurrentTimestamp(), NxSlotsStarting() > 0 || NxStartRequested());
		/* and new sandboxes' roles, made ahead (role_pool.c) */
		NxRolePoolTick(NxSlotsStarting() > 0 || NxStartRequested() || !NxConvergeReady());
		NxQuotaTick(GetCurrentTimestamp());
		NxDbSetupStep();
		NxBranchesTick(GetCurrentTimestamp());
		if (NxSlotsNeedFlush())
			NxFlushRuntime();

		/*
		 * A background worker reports its table statistics itself: without
		 * this, what the supervisor writes (nx.runtime, nx.events) would
		 * reach pg_stat_user_tables, and autovacuum, only when it exits.
		 * pgstat_report_stat(false) sends at most once a second; what it
		 * keeps back is sent with force a second later, as a backend's
		 * idle timeout does (without a new transaction, a call without
		 * force would keep comparing against the last one's stop time).
		 */
		now = GetCurrentTimestamp();
		if (stats_force_at != 0 && now >= stats_force_at)
		{
			pgstat_report_stat(true);
			stats_force_at = 0;
		}
		else if (pgstat_report_stat(false) > 0 && stats_force_at == 0)
			stats_force_at = TimestampTzPlusMilliseconds(now, 1000);

		timeout_ms = Max(0, Min(TimestampDifferenceMilliseconds(now, next_pass),
								Min(Min(NxSlotsNextDeadlineMs(now), NxIdleNextDeadlineMs(now)),
									Min(NxQuotaNextDeadlineMs(now), NxBranchesNextDeadlineMs(now)))));
		timeout_ms = Min(timeout_ms, NxUsernsPremapDeadlineMs(now));
		if (stats_force_at != 0)
			timeout_ms = Min(timeout_ms, Max(0, TimestampDifferenceMilliseconds(now, stats_force_at)));
		if (NxTakeConvergeRequest())
		{
			/* requested during this iteration: only poll, then act on it */
			NxRequestConverge();
			timeout_ms = 0;
		}
		if (NxStartRequested())
			timeout_ms = 0;
		if (NxRolePoolWantsMore() && NxSlotsStarting() == 0 && NxConvergeReady())
			timeout_ms = 0;
		switch (NxWaitForEvents(timeout_ms))
		{
			case NX_WAIT_LATCH:
				/* a commit asked for a pass, or only SIGCHLD arrived? */
				SpinLockAcquire(&NxShared->mutex);
				if (NxShared->wakeups != wakeups_seen)
				{
					wakeups_seen = NxShared->wakeups;
					converge_now = true;
				}
				SpinLockRelease(&NxShared->mutex);
				{
					bool		overflow;

					nwoken = NxTakeWakeQueue(woken, &overflow);
					if (overflow)
						converge_now = true;
				}
				break;
			case NX_WAIT_POSTMASTER_DEATH:
				NxRouterStop(SIGKILL);
				NxBranchesKillAll();
				NxUsernsPremapKill();
				NxSlotsKillAll();
				proc_exit(1);
				break;
			default:
				break;
		}
	}
}
