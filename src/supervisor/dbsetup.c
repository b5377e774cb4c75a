/*
 * src/supervisor/dbsetup.c
 *	  What each tenant database must not show its tenant: the statistics
 *	  views and functions that list every session and database of the
 *	  cluster (pg_stat_activity and friends: other tenants' role and
 *	  database names, their client addresses, what they wait on).  Their
 *	  EXECUTE and SELECT are revoked from PUBLIC inside each tenant
 *	  database, where the tenant (its owner, not a superuser) cannot grant
 *	  them back: pg_catalog's objects are not its own.
 *
 * Privileges on pg_catalog objects are per database, and a background
 * worker is connected to one database for life, so a short-lived dynamic
 * worker (NxDbSetupMain) does it in each tenant database: at each
 * supervisor start for every one, and for each new one.  One runs at a
 * time and the supervisor never waits for it: the quota check (quota.c)
 * hands over the tenant databases (NxDbSetupWant), and NxDbSetupStep, at
 * each turn of the supervisor's loop, starts the next worker once the
 * previous one is gone (its end sets the supervisor's latch).  docs/security.md says what stays
 * visible.
 */
#include "dbsetup.h"
#include "supervisor.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

/* run in each tenant database, as the bootstrap superuser */
static const char *const hardening_sql =
"DO $nx$ DECLARE o text; BEGIN "
"  FOR o IN SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p "
"           WHERE p.pronamespace = 'pg_catalog'::regnamespace "
"             AND (p.proname ~ '^pg_stat_get_(activity|backend_|progress_info|db_|wal_receiver|replication_slot|subscription)' "
"                  OR p.proname IN ('pg_lock_status', 'pg_blocking_pids', 'pg_safe_snapshot_blocking_pids', "
"                                   'pg_stat_get_wal_senders')) LOOP "
"    EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', o); "
"  END LOOP; "
"  FOR o IN SELECT c.oid::regclass::text FROM pg_catalog.pg_class c "
"           WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'v' "
"             AND (c.relname IN ('pg_stat_activity', 'pg_stat_database', 'pg_stat_database_conflicts', "
"                                'pg_locks', 'pg_stat_ssl', 'pg_stat_gssapi', 'pg_stat_replication', "
"                                'pg_stat_wal_receiver', 'pg_stat_subscription', 'pg_stat_replication_slots') "
"                  OR c.relname LIKE 'pg\\_stat\\_progress\\_%') LOOP "
"    EXECUTE pg_catalog.format('REVOKE SELECT ON %s FROM PUBLIC', o); "
"  END LOOP; "
"END $nx$";

/* the worker running now, if any, and the databases done since start */
static BackgroundWorkerHandle *running = NULL;
static Oid	running_db = InvalidOid;
static List *done = NIL;		/* of Oid, in TopMemoryContext */
static Oid *wanted = NULL;		/* the tenant databases, TopMemoryContext */
static int	n_wanted = 0;

/*
 * NxDbSetupMain is the dynamic worker: connect to the database given in
 * arg, revoke, exit.
 *
 * SIGTERM (DROP DATABASE ... WITH (FORCE) of a sandbox dropped meanwhile,
 * a shutdown) is die(): it ends the worker at the next interrupt check,
 * never inside a commit.  A background worker's default handler exits
 * from the signal handler itself, wherever it lands; during the commit,
 * after the commit record, that is a PANIC ("cannot abort transaction, it
 * was already committed") and a restart of the whole cluster, which the
 * hammer test (t/041) met in CI.
 */
void
NxDbSetupMain(Datum arg)
{
	Oid			database = DatumGetObjectId(arg);

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(database, InvalidOid, 0);
	pgstat_report_appname("nx tenant database setup");
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SetConfigOption("lock_timeout", "1s", PGC_SUSET, PGC_S_OVERRIDE);
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_execute(hardening_sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "nx tenant database setup: could not revoke the statistics views");
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	proc_exit(0);
}

/* NxDbSetupWant records the tenant databases (quota.c, each check). */
void
NxDbSetupWant(const Oid *databases, int n)
{
	if (wanted)
		pfree(wanted);
	wanted = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * Max(n, 1));
	memcpy(wanted, databases, sizeof(Oid) * n);
	n_wanted = n;
}

/*
 * NxDbSetupStep: when no worker runs, start one for the first tenant
 * database not done yet.  A worker that failed (it logs why) is tried
 * again at the next start of the supervisor.
 */
void
NxDbSetupStep(void)
{
	const Oid  *databases = wanted;
	int			n = n_wanted;

	BackgroundWorker worker;
	pid_t		pid;

	if (running != NULL)
	{
		if (GetBackgroundWorkerPid(running, &pid) != BGWH_STOPPED)
			return;
		pfree(running);
		running = NULL;
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			done = lappend_oid(done, running_db);
			MemoryContextSwitchTo(old);
		}
	}
	for (int i = 0; i < n; i++)
	{
		if (list_member_oid(done, databases[i]))
			continue;
		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
		worker.bgw_restart_time = BGW_NEVER_RESTART;
		snprintf(worker.bgw_library_name, BGW_MAXLEN, "nx_sandbox");
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "NxDbSetupMain");
		snprintf(worker.bgw_name, BGW_MAXLEN, "nx tenant database setup %u", databases[i]);
		snprintf(worker.bgw_type, BGW_MAXLEN, "nx tenant database setup");
		worker.bgw_main_arg = ObjectIdGetDatum(databases[i]);
		worker.bgw_notify_pid = MyProcPid;
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
			bool		ok = RegisterDynamicBackgroundWorker(&worker, &running);

			MemoryContextSwitchTo(old);
			if (!ok)
			{
				running = NULL;
				return;			/* no free worker slot: next check */
			}
		}
		running_db = databases[i];
		return;
	}
}
