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
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* a full measurement of every tenant database this often */
#define NX_QUOTA_FULL_PASS_MS (60 * 1000)

static TimestampTz next_check = 0;
static TimestampTz next_full = 0;

/* QuotaStep runs one check (NxRunLoggingErrors callback). */
static void
QuotaStep(void *arg)
{
	bool		full = *(bool *) arg;
	Oid			types[2] = {BOOLOID, INTERVALOID};
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
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
		values[1] = DirectFunctionCall3(interval_in,
										CStringGetDatum(psprintf("%lld ms",
																 2LL * nx_tenant_idle_in_transaction_timeout)),
										ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	else
		nulls[1] = 'n';
	if (SPI_execute_with_args("SELECT database_oid, over, limit_bytes, used_bytes, quota_bytes, newly_over "
							  "FROM nx._quota_pass($1, $2)",
							  2, types, values, nulls, false, 0) != SPI_OK_SELECT)
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
		Oid		   *databases = palloc(sizeof(Oid) * Max(count, 1));

		for (int i = 0; i < count; i++)
			databases[i] = entries[i].database;
		NxDbSetupWant(databases, count);
	}

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
 * NxQuotaTick checks the quotas when the interval has passed (and measures
 * everything at the first check and every NX_QUOTA_FULL_PASS_MS).
 */
void
NxQuotaTick(TimestampTz now)
{
	bool		full;

	if (now < next_check)
		return;
	full = now >= next_full;
	NxRunLoggingErrors(QuotaStep, &full, "database quota check failed");
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
