/*
 * src/supervisor/quota.c
 *	  The database quota check, every nx.database_quota_interval: measure
 *	  the tenant databases that may have grown, and publish every tenant
 *	  database's figures (over quota or not, the size it may reach) to
 *	  shared memory, where every backend's write check reads them
 *	  (src/tenant/quota_hook.c).  The SQL
 *	  side, events included, is nx._quota_pass (src/sql/60_supervisor.sql).
 *
 * Bounded work: a database nobody used since its last measurement is not
 * measured again (measuring is a stat() of each of its files), except in
 * the full pass at start and then every NX_QUOTA_FULL_PASS_MS.  Nothing
 * here waits for a lock a user can hold: pg_database_size takes none, and
 * the tables written are the supervisor's own.
 *
 * Idle work: when nothing happened since the last check, the check's
 * statement is not run at all (QuotaNothingHappened): no session outside
 * the control database was at work or changed state since (autovacuum
 * only after NX_QUOTA_AUTOVACUUM_GRACE_MS), the last check saw none at
 * work, the tenant databases' row-write and session counters did not
 * move, and no converge pass (which creates, drops and renames databases
 * and follows every API call) asked for one.  Those are the signals the
 * statement itself selects databases by; the full pass remains the safety
 * net.  With 1,000 idle sandboxes the statement every second and a full
 * measurement every minute were most of the supervisor's CPU
 * (BENCHMARKS.md).
 *
 * Between two checks the backends check for themselves (quota_hook.c),
 * against the figures of the last one; docs/security.md gives how far
 * past its quota a tenant gets, as t/017_tenant_db.pl measures it.
 */
#include "dbsetup.h"
#include "quota.h"
#include "sql_exec.h"
#include "supervisor.h"
#include "tenant/tenant.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/*
 * a full measurement of every tenant database this often: the safety net
 * for growth that left no trace in the signals QuotaNothingHappened reads
 * (at 1,000 sandboxes one costs about a second of CPU: 300,000 stat calls)
 */
#define NX_QUOTA_FULL_PASS_MS (10 * 60 * 1000)

/*
 * an autovacuum worker at work in a database longer than this counts as
 * use: a visit to an idle database takes milliseconds, but ANALYZE runs
 * the table owner's (the tenant's) index and statistics expressions
 */
#define NX_QUOTA_AUTOVACUUM_GRACE_MS 5000

static TimestampTz next_check = 0;
static TimestampTz next_full = 0;

/* what the last check saw, for QuotaNothingHappened */
static bool check_requested = true;
static bool was_at_work = false;	/* the last check saw a session at work */
static TimestampTz last_gate = 0;
static int64 last_activity = -1;
static Oid *known = NULL;		/* the tenant databases, TopMemoryContext */
static int	n_known = 0;

/* Milliseconds: an interval Datum of ms milliseconds. */
static Datum
Milliseconds(long long ms)
{
	return DirectFunctionCall3(interval_in, CStringGetDatum(psprintf("%lld ms", ms)),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/* QuotaStep runs one check (NxRunLoggingErrors callback). */
static void
QuotaStep(void *arg)
{
	bool		full = *(bool *) arg;
	Oid			types[3] = {BOOLOID, INTERVALOID, INTERVALOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	NxQuotaEntry *entries;
	int			count = 0;
	Datum	   *newly_over;
	int			newly = 0;
	MemoryContext caller = CurrentMemoryContext;	/* outlives SPI */

	NxBeginTransaction("nx: database quotas");
	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'nx_sandbox'", true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
	{
		NxCommitTransaction();
		MemoryContextSwitchTo(caller);
		return;
	}
	values[0] = BoolGetDatum(full);
	if (nx_tenant_idle_in_transaction_timeout > 0)
		values[1] = Milliseconds(2LL * nx_tenant_idle_in_transaction_timeout);
	else
		nulls[1] = 'n';
	values[2] = Milliseconds(NX_QUOTA_AUTOVACUUM_GRACE_MS);
	if (SPI_execute_with_args("SELECT database_oid, over, limit_bytes, used_bytes, quota_bytes, newly_over "
							  "FROM nx._quota_pass($1, $2, $3)",
							  3, types, values, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not check database quotas");
	entries = MemoryContextAllocZero(caller, sizeof(NxQuotaEntry) * Max(SPI_processed, 1));
	newly_over = MemoryContextAlloc(caller, sizeof(Datum) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;

		if (count == NX_QUOTA_MAX_DATABASES)
		{
			ereport(WARNING,
					(errmsg("nx supervisor: more than %d tenant databases; backends check the quota of the first %d only",
							NX_QUOTA_MAX_DATABASES, NX_QUOTA_MAX_DATABASES)));
			break;
		}
		entries[count].database = DatumGetObjectId(SPI_getbinval(t, td, 1, &isnull));
		entries[count].over = DatumGetBool(SPI_getbinval(t, td, 2, &isnull));
		entries[count].limit_bytes = DatumGetInt64(SPI_getbinval(t, td, 3, &isnull));
		entries[count].used_bytes = DatumGetInt64(SPI_getbinval(t, td, 4, &isnull));
		entries[count].quota_bytes = DatumGetInt64(SPI_getbinval(t, td, 5, &isnull));
		if (DatumGetBool(SPI_getbinval(t, td, 6, &isnull)))
			newly_over[newly++] = ObjectIdGetDatum(entries[count].database);
		count++;
	}
	NxCommitTransaction();
	MemoryContextSwitchTo(caller);
	NxQuotaPublish(entries, count);
	{
		Oid		   *databases = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * Max(count, 1));

		for (int i = 0; i < count; i++)
			databases[i] = entries[i].database;
		if (known)
			pfree(known);
		known = databases;
		n_known = count;
	}
	NxDbSetupWant(known, count);

	/*
	 * now that new statements are refused there, stop those that were
	 * already running in databases that just went over
	 */
	if (newly > 0)
	{
		Oid			type = OIDARRAYOID;
		Datum		arg = PointerGetDatum(construct_array(newly_over, newly, OIDOID,
														  sizeof(Oid), true, TYPALIGN_INT));

		NxBeginTransaction("nx: database quotas");
		if (SPI_execute_with_args("SELECT nx._quota_cancel($1)", 1, &type, &arg, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "nx supervisor: could not cancel statements over quota");
		NxCommitTransaction();
		MemoryContextSwitchTo(caller);
	}
}

/*
 * TenantActivity: the rows written in the tenant databases (catalogs
 * included) and the sessions begun there so far, summed: the statistics
 * nx._quota_pass selects databases by (they only grow, except when reset,
 * which changes the sum too).  Not transactions: autovacuum's count, and
 * with many databases it is always in one of them.
 */
static int64
TenantActivity(void)
{
	int64		sum = 0;

	for (int i = 0; i < n_known; i++)
	{
		PgStat_StatDBEntry *db = pgstat_fetch_stat_dbentry(known[i]);

		if (db != NULL)
			sum += db->n_tuples_inserted + db->n_tuples_updated + db->n_tuples_deleted +
				db->n_sessions;
	}
	return sum;
}

/*
 * SessionsAtWork: whether a session in a database other than the control
 * database is at work (running, idle in a transaction) or changed state or
 * started since `since`.  Any database, not only the known tenant ones: a
 * tenant database created since the last check is not known yet.
 * Autovacuum workers count only once at work for
 * NX_QUOTA_AUTOVACUUM_GRACE_MS, the grace nx._quota_pass is given too.
 */
static bool
SessionsAtWork(TimestampTz since, TimestampTz now)
{
	int			n = pgstat_fetch_stat_numbackends();
	TimestampTz autovacuum_since = TimestampTzPlusMilliseconds(now, -NX_QUOTA_AUTOVACUUM_GRACE_MS);

	for (int i = 1; i <= n; i++)
	{
		LocalPgBackendStatus *local = pgstat_fetch_stat_local_beentry(i);
		PgBackendStatus *be;

		if (local == NULL)
			continue;
		be = &local->backendStatus;
		if (be->st_databaseid == InvalidOid || be->st_databaseid == MyDatabaseId)
			continue;
		if (be->st_backendType == B_AUTOVAC_WORKER)
		{
			if (be->st_proc_start_timestamp < autovacuum_since)
				return true;
			continue;
		}
		if (be->st_proc_start_timestamp >= since || be->st_state_start_timestamp >= since)
			return true;
		/* a worker that never reports its state (undefined) is not counted */
		if (be->st_state != STATE_IDLE && be->st_state != STATE_UNDEFINED)
			return true;
	}
	return false;
}

/*
 * QuotaNothingHappened: whether the check due now may be skipped, because
 * nothing that could grow a tenant database happened since the last one.
 * Reads shared memory only (no transaction); the statistics snapshot is
 * dropped at once, so that the next call sees what is new.
 */
static bool
QuotaNothingHappened(TimestampTz gate)
{
	int64		activity;
	bool		at_work;

	activity = TenantActivity();
	at_work = SessionsAtWork(last_gate, gate);
	pgstat_clear_snapshot();

	/*
	 * after a check that saw a session at work, one more: that session may
	 * have ended since, its last writes uncounted (VACUUM, a prepared
	 * transaction), and the statement measures again what it saw busy
	 */
	if (check_requested || at_work || was_at_work || activity != last_activity)
	{
		last_activity = activity;
		last_gate = gate;
		was_at_work = at_work;
		return false;
	}
	last_gate = gate;
	return true;
}

/*
 * NxQuotaRequestCheck: the next check runs even if nothing seems to have
 * happened (a pass created, dropped or renamed databases, or an API call
 * changed a sandbox's quota).
 */
void
NxQuotaRequestCheck(void)
{
	check_requested = true;
}

/*
 * NxQuotaTick checks the quotas when the interval has passed (and measures
 * everything at the first check and every NX_QUOTA_FULL_PASS_MS), unless
 * nothing happened since the last check.
 */
void
NxQuotaTick(TimestampTz now)
{
	bool		full;

	if (now < next_check)
		return;
	full = now >= next_full;
	if (!QuotaNothingHappened(now) || full)
	{
		/* a check that failed is tried again at the next tick */
		check_requested = false;
		if (!NxRunLoggingErrors(QuotaStep, &full, "database quota check failed"))
			check_requested = true;
	}
	now = GetCurrentTimestamp();
	next_check = TimestampTzPlusMilliseconds(now, nx_database_quota_interval);
	if (full)
		next_full = TimestampTzPlusMilliseconds(now, NX_QUOTA_FULL_PASS_MS);
}

/* NxQuotaNextDeadlineMs: milliseconds until the next check is due. */
long
NxQuotaNextDeadlineMs(TimestampTz now)
{
	return Max(0, TimestampDifferenceMilliseconds(now, next_check));
}
