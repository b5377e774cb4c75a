/*
 * src/supervisor/converge.c
 *	  One converge pass: read the rows, make the machine match them.
 *
 *	  1. roles for new sandboxes, with their settings, and their databases
 *	     from the pool (one transaction: they appear together); then
 *	     stale pool roles dropped and tenant roles' passwords and settings
 *	     put back (a second one)
 *	  2. databases: new ones the pool could not give, dropped ones, pool
 *	     refill (each statement in its own top-level transaction)
 *	  3. roles no row wants (after their databases are gone)
 *	  2b. databases of their own for previews: empty ones made, branch
 *	     copies started (branch.c; the wait loop watches them)
 *	  4. deployments: start what should run, restart what was asked to,
 *	     stop what should not; write nx.runtime, complete the promotions
 *	     of previews whose new deployment is ready, write queued events
 *	  5. files and cgroups no row or slot wants
 *	  6. deployments idle past their sandbox's idle_timeout: asleep (idle.c)
 *
 * A pass never fails as a whole: an error is logged, the transaction rolled
 * back, and the next pass (woken by a commit, or nx.naptime later) tries
 * again.
 */
#include "branch.h"
#include "converge.h"
#include "domains.h"
#include "events.h"
#include "files.h"
#include "idle.h"
#include "provision.h"
#include "requests.h"
#include "role_pool.h"
#include "router_proc.h"
#include "rundir.h"
#include "slots.h"
#include "sql_exec.h"
#include "uidslice.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "postmaster/postmaster.h"

static bool warned_no_extension = false;
static bool first_pass = true;
static char reported_setup_problem[512];	/* last one logged */
static NxHostSetup last_host;	/* of the last pass that found the extension */
static bool have_last_host = false;

/*
 * The nx.runtime rows of one write, column by column (a row is an index
 * into every array), written by one statement: finished starts and other
 * changes of a pass cost one round through the executor, not one each.
 */
#define NX_RUNTIME_COLS 11

typedef struct NxRuntimeBatch
{
	int			n;
	int			size;
	Datum	   *values[NX_RUNTIME_COLS];
	bool	   *nulls[NX_RUNTIME_COLS];
} NxRuntimeBatch;

/* nx.runtime's columns in the order of the batch's arrays, and their types */
static const Oid runtime_elem_types[NX_RUNTIME_COLS] = {
	INT8OID, TEXTOID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	INT4OID, INT4OID, INT4OID, TEXTOID, INT8OID, INT8OID
};
static const Oid runtime_array_types[NX_RUNTIME_COLS] = {
	INT8ARRAYOID, TEXTARRAYOID, INT4ARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID,
	INT4ARRAYOID, INT4ARRAYOID, INT4ARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID
};

/*
 * Upsert the batch ($1..$11: one array per column), writing only rows whose
 * values differ from the table's (a supervisor that restarted, or retries
 * after a rolled-back write, finds most rows already right); count the rows
 * whose state changed, so that the router can be told (contract C2).
 * updated_at is when the values last changed.
 */
static const char *const runtime_upsert_sql =
"WITH v AS (SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), "
"             pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5), "
"             pg_catalog.unnest($6), pg_catalog.unnest($7), pg_catalog.unnest($8), "
"             pg_catalog.unnest($9), pg_catalog.unnest($10), pg_catalog.unnest($11)) "
"           AS v(deployment, state, pid, started_at, ready_at, restarts, exit_code, "
"                exit_signal, last_error, memory_bytes, cpu_usec)), "
"prev AS (SELECT p.deployment, p.state FROM nx.runtime p "
"         WHERE p.deployment OPERATOR(pg_catalog.=) ANY ($1)), "
"up AS (INSERT INTO nx.runtime AS r (deployment, state, pid, started_at, ready_at, restarts, "
"         exit_code, exit_signal, last_error, memory_bytes, cpu_usec, updated_at) "
"       SELECT v.deployment, v.state, v.pid, v.started_at, v.ready_at, v.restarts, v.exit_code, "
"              v.exit_signal, v.last_error, v.memory_bytes, v.cpu_usec, pg_catalog.now() "
"       FROM v WHERE EXISTS (SELECT 1 FROM nx.deployments d "
"                            WHERE d.id OPERATOR(pg_catalog.=) v.deployment) "
"       ON CONFLICT (deployment) DO UPDATE SET state = excluded.state, pid = excluded.pid, "
"         started_at = excluded.started_at, ready_at = excluded.ready_at, "
"         restarts = excluded.restarts, exit_code = excluded.exit_code, "
"         exit_signal = excluded.exit_signal, last_error = excluded.last_error, "
"         memory_bytes = excluded.memory_bytes, cpu_usec = excluded.cpu_usec, "
"         updated_at = excluded.updated_at "
"       WHERE (r.state, r.pid, r.started_at, r.ready_at, r.restarts, r.exit_code, r.exit_signal, "
"              r.last_error, r.memory_bytes, r.cpu_usec) IS DISTINCT FROM "
"             (excluded.state, excluded.pid, excluded.started_at, excluded.ready_at, "
"              excluded.restarts, excluded.exit_code, excluded.exit_signal, "
"              excluded.last_error, excluded.memory_bytes, excluded.cpu_usec) "
"       RETURNING r.deployment, r.state) "
"SELECT pg_catalog.count(*) FROM up LEFT JOIN prev USING (deployment) "
"WHERE up.state IS DISTINCT FROM prev.state";

/* BatchSet puts one column value of the batch's next row. */
static inline void
BatchSet(NxRuntimeBatch *b, int col, Datum value, bool isnull)
{
	b->values[col][b->n] = value;
	b->nulls[col][b->n] = isnull;
}

/*
 * EmitRuntimeRow adds one changed row to the batch (NxSlotsRuntimeRows
 * callback); the batch grows as needed, in the transaction's context.
 */
static void
EmitRuntimeRow(const NxRuntimeRow *row, void *arg)
{
	NxRuntimeBatch *b = arg;

	if (b->n == b->size)
	{
		b->size = Max(16, b->size * 2);
		for (int c = 0; c < NX_RUNTIME_COLS; c++)
		{
			b->values[c] = b->values[c] ? repalloc(b->values[c], b->size * sizeof(Datum)) :
				palloc(b->size * sizeof(Datum));
			b->nulls[c] = b->nulls[c] ? repalloc(b->nulls[c], b->size * sizeof(bool)) :
				palloc(b->size * sizeof(bool));
		}
	}
	BatchSet(b, 0, Int64GetDatum(row->deployment), false);
	BatchSet(b, 1, CStringGetTextDatum(row->state), false);
	BatchSet(b, 2, Int32GetDatum(row->pid), row->pid <= 0);
	BatchSet(b, 3, TimestampTzGetDatum(row->started_at), row->started_at == 0);
	BatchSet(b, 4, TimestampTzGetDatum(row->ready_at), row->ready_at == 0);
	BatchSet(b, 5, Int32GetDatum(row->restarts), false);
	BatchSet(b, 6, Int32GetDatum(row->exit_code), row->exit_code < 0);
	BatchSet(b, 7, Int32GetDatum(row->exit_signal), row->exit_signal <= 0);
	BatchSet(b, 8, CStringGetTextDatum(row->last_error), row->last_error[0] == '\0');
	BatchSet(b, 9, Int64GetDatum(row->memory_bytes), row->memory_bytes < 0);
	BatchSet(b, 10, Int64GetDatum(row->cpu_usec), row->cpu_usec < 0);
	b->n++;
}

/* Int8Array makes an int8[] of n ids. */
static Datum
Int8Array(const int64 *ids, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		elems[i] = Int64GetDatum(ids[i]);
	return PointerGetDatum(construct_array(elems, n, INT8OID, 8, true, TYPALIGN_DOUBLE));
}

/*
 * WriteRuntime writes the nx.runtime rows whose values changed (looking at
 * the dirty slots, or at all of them on the periodic pass: see
 * NxSlotsRuntimeRows), all in one statement, and deletes the rows of the
 * slots forgotten since the last write (every row of no slot on the
 * periodic pass, the safety net, I2).  When a row's state changed, or a
 * row went, it sends NOTIFY nx_routes (empty payload) in the same
 * transaction (contract C2): the router reloads its routes and answers for
 * a crashloop, failed or stopped deployment at once.
 */
static void
WriteRuntime(bool all)
{
	NxRuntimeBatch batch;
	int64	   *gone;
	int			ngone;
	bool		state_changed = false;
	bool		delete_all;

	memset(&batch, 0, sizeof(batch));
	delete_all = NxSlotsRuntimeRows(all, EmitRuntimeRow, &batch, &gone, &ngone) || all;
	if (batch.n > 0)
	{
		Datum		args[NX_RUNTIME_COLS];
		bool		isnull;

		for (int c = 0; c < NX_RUNTIME_COLS; c++)
		{
			int16		typlen;
			bool		typbyval;
			char		typalign;
			int			dims[1] = {batch.n};
			int			lbs[1] = {1};

			get_typlenbyvalalign(runtime_elem_types[c], &typlen, &typbyval, &typalign);
			args[c] = PointerGetDatum(construct_md_array(batch.values[c], batch.nulls[c], 1, dims, lbs,
														 runtime_elem_types[c], typlen, typbyval, typalign));
		}
		if (SPI_execute_with_args(runtime_upsert_sql, NX_RUNTIME_COLS,
								  (Oid *) runtime_array_types, args, NULL, false, 0) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "nx supervisor: could not write nx.runtime");
		if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) > 0)
			state_changed = true;
	}
	if (delete_all)
	{
		List	   *ids = NxSlotsIds();
		int64	   *idv = palloc(sizeof(int64) * (list_length(ids) + 1));
		ListCell   *lc;
		int			n = 0;
		Datum		arg;
		Oid			type = INT8ARRAYOID;

		foreach(lc, ids)
			idv[n++] = *(int64 *) lfirst(lc);
		arg = Int8Array(idv, n);
		if (SPI_execute_with_args("DELETE FROM nx.runtime WHERE deployment OPERATOR(pg_catalog.<>) ALL ($1)",
								  1, &type, &arg, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "nx supervisor: could not clean nx.runtime");
		if (SPI_processed > 0)
			state_changed = true;
	}
	else if (ngone > 0)
	{
		Datum		arg = Int8Array(gone, ngone);
		Oid			type = INT8ARRAYOID;

		if (SPI_execute_with_args("DELETE FROM nx.runtime WHERE deployment OPERATOR(pg_catalog.=) ANY ($1)",
								  1, &type, &arg, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "nx supervisor: could not clean nx.runtime");
		if (SPI_processed > 0)
			state_changed = true;
	}
	if (state_changed &&
		SPI_execute("SELECT pg_catalog.pg_notify('nx_routes', '')", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not notify nx_routes");
}

/*
 * CompletePromotions: promotions of previews waiting for their new
 * deployment (promote_pending) that is now ready move production, those
 * whose deployment failed are given up (nx._complete_promotions, right
 * after nx.runtime is written, in the same transaction).
 */
static void
CompletePromotions(void)
{
	if (SPI_execute("SELECT nx._complete_promotions()", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not complete promotions");
}

/* TextArrayToCStrings turns a text[] datum into a NULL-ended char *[]. */
static char **
TextArrayToCStrings(Datum array, int extra)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	char	  **out;

	deconstruct_array(DatumGetArrayTypeP(array), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	out = palloc0(sizeof(char *) * (n + extra + 1));
	for (int i = 0; i < n; i++)
		out[i] = nulls[i] ? pstrdup("") : TextDatumGetCString(elems[i]);
	return out;
}

/*
 * the deployments converge wants running, with everything a start needs
 * (see nx._desired_deployments in src/sql/60_supervisor.sql)
 */
static const char *const deployments_sql =
"SELECT deployment, sandbox, owner, database_name, role_name, blob, restart_generation, "
"       uid_offset, memory_limit, pids_limit, open_files_limit, cpu_weight, tmp_size, "
"       argv, envp, database_ready, binary_name "
"FROM nx._desired_deployments($1, $2, $3)";

/* the same rows, only what shows that a running one is still wanted */
static const char *const deployment_generations_sql =
"SELECT deployment, sandbox, owner, restart_generation "
"FROM nx._desired_deployments($1, $2, NULL, false)";

/*
 * SocketArgs fills the first two arguments of nx._desired_deployments:
 * where the cluster's unix socket is, for the apps' PGHOST and PGPORT.
 */
static void
SocketArgs(const NxHostSetup *host, Datum *values)
{
	values[0] = CStringGetTextDatum(host->pg_socket_dir);
	values[1] = CStringGetTextDatum(psprintf("%d", PostPortNumber));
}

/*
 * WantDeployments hands the desired-running deployments among ids (n of
 * them) to the slots (NxSlotWant), which start what is not running.
 */
static void
WantDeployments(const NxHostSetup *host, const int64 *ids, int n_ids)
{
	Oid			types[3] = {TEXTOID, TEXTOID, INT8ARRAYOID};
	Datum		values[3];
	SPITupleTable *rows;
	uint64		n;
	MemoryContext pass_context = AllocSetContextCreate(CurrentMemoryContext, "nx deployments",
													   ALLOCSET_DEFAULT_SIZES);

	SocketArgs(host, values);
	values[2] = Int8Array(ids, n_ids);
	if (SPI_execute_with_args(deployments_sql, 3, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not read deployments");
	rows = SPI_tuptable;
	n = SPI_processed;

	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	t = rows->vals[i];
		TupleDesc	td = rows->tupdesc;
		NxDeploymentRow row;
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(pass_context);

		memset(&row, 0, sizeof(row));
		row.deployment = DatumGetInt64(SPI_getbinval(t, td, 1, &isnull));
		strlcpy(row.sandbox, SPI_getvalue(t, td, 2), sizeof(row.sandbox));
		strlcpy(row.owner, SPI_getvalue(t, td, 3), sizeof(row.owner));
		strlcpy(row.database, SPI_getvalue(t, td, 4), sizeof(row.database));
		strlcpy(row.role, SPI_getvalue(t, td, 5), sizeof(row.role));
		strlcpy(row.blob, SPI_getvalue(t, td, 6), sizeof(row.blob));
		row.generation = DatumGetInt32(SPI_getbinval(t, td, 7, &isnull));
		row.uid_offset = DatumGetInt32(SPI_getbinval(t, td, 8, &isnull));
		row.limits.memory_bytes = DatumGetInt64(SPI_getbinval(t, td, 9, &isnull));
		row.limits.pids = DatumGetInt32(SPI_getbinval(t, td, 10, &isnull));
		row.limits.open_files = DatumGetInt32(SPI_getbinval(t, td, 11, &isnull));
		row.limits.cpu_weight = DatumGetInt32(SPI_getbinval(t, td, 12, &isnull));
		row.limits.tmp_bytes = DatumGetInt64(SPI_getbinval(t, td, 13, &isnull));
		row.argv = TextArrayToCStrings(SPI_getbinval(t, td, 14, &isnull), 0);
		row.envp = TextArrayToCStrings(SPI_getbinval(t, td, 15, &isnull), 0);
		strlcpy(row.binary_name, SPI_getvalue(t, td, 17), sizeof(row.binary_name));
		MemoryContextSwitchTo(old);

		NxSlotWant(&row, host, DatumGetBool(SPI_getbinval(t, td, 16, &isnull)));
		MemoryContextReset(pass_context);
	}
	MemoryContextDelete(pass_context);
}

/*
 * ConvergeDeployments walks the desired-running deployments (step 4).  It
 * reads every one's generation, and the whole row (argv, environment,
 * database ready) only of those whose slot must start or restart: a pass
 * over 1,000 running deployments builds no environment at all.
 */
static void
ConvergeDeployments(const NxHostSetup *host)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	int64	   *to_read;
	int			n_to_read = 0;

	NxSlotsBeginPass();
	SocketArgs(host, values);
	if (SPI_execute_with_args(deployment_generations_sql, 2, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not read deployments");
	to_read = palloc(sizeof(int64) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		deployment = DatumGetInt64(SPI_getbinval(t, td, 1, &isnull));
		int32		generation = DatumGetInt32(SPI_getbinval(t, td, 4, &isnull));

		if (!NxSlotStillWanted(deployment, generation, SPI_getvalue(t, td, 2),
							   SPI_getvalue(t, td, 3), host))
			to_read[n_to_read++] = deployment;
	}
	if (n_to_read > 0)
		WantDeployments(host, to_read, n_to_read);
	NxSlotsEndPass();
}

/*
 * RemoveUnwantedCgroup: one of our cgroups that no slot uses is a leftover:
 * kill what is in it and remove it.  Other clusters' cgroups are left alone.
 */
static void
RemoveUnwantedCgroup(const char *key, void *arg)
{
	const NxCgroupLayout *layout = arg;
	int64		deployment;

	if (NxKeyIsOurs(key, &deployment) && !NxSlotsHasKey(key))
	{
		NxCgroupKill(layout, key);
		NxCgroupRemove(layout, key);
	}
}

/* ExtensionInstalled: is nx_sandbox created in this database? */
static bool
ExtensionInstalled(void)
{
	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'nx_sandbox'", true, 1) != SPI_OK_SELECT)
		return false;
	return SPI_processed == 1;
}

/*
 * CheckHba adds pg_hba.conf to the host checks (nx._hba_check, the same
 * check nx.check_setup shows): while a sandbox could log in as another
 * role, or reach another database, no sandbox starts.
 */
static void
CheckHba(NxHostSetup *host)
{
	if (SPI_execute("SELECT ok, detail, fix FROM nx._hba_check()", true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "nx supervisor: could not check pg_hba.conf");
	if (host->ok && strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "t") != 0)
	{
		host->ok = false;
		snprintf(host->why, sizeof(host->why), "host setup incomplete (pg_hba): %s; fix: %s",
				 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2),
				 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3));
	}
}

/*
 * ConvergeOnce does steps 1-7; errors propagate to NxConverge.  periodic:
 * the nx.naptime pass, which also looks at every runtime row.
 */
static void
ConvergeOnce(MemoryContext pass_context, bool periodic)
{
	NxHostSetup host;
	NxDatabasePlan plan;
	List	   *wanted_blobs = NIL;
	List	   *wanted_logs = NIL;

	NxHostSetupCheck(&host);
	if (first_pass)
	{
		/*
		 * A previous supervisor (killed, or the whole cluster crashed) may
		 * have left sandboxes behind: bwrap's --die-with-parent is not
		 * reliable alone.  Nothing of ours runs yet, so every cgroup is a
		 * leftover.
		 */
		if (host.cgroups.mode != NX_CGROUP_NONE)
			NxCgroupList(&host.cgroups, RemoveUnwantedCgroup, &host.cgroups);
		first_pass = false;
	}

	NxBeginTransaction("nx: roles");
	if (!ExtensionInstalled())
	{
		if (!warned_no_extension)
			ereport(LOG, (errmsg("nx supervisor: extension nx_sandbox is not installed in database \"%s\"; waiting", nx_database),
						  errhint("CREATE EXTENSION nx_sandbox in that database, or set nx.database.")));
		warned_no_extension = true;
		NxCommitTransaction();
		return;
	}
	warned_no_extension = false;
	CheckHba(&host);
	NxUidSliceEnsure(&host);
	if (!host.ok && strcmp(host.why, reported_setup_problem) != 0)
		ereport(LOG, (errmsg("nx supervisor: not starting any sandbox: %s", host.why)));
	strlcpy(reported_setup_problem, host.ok ? "" : host.why, sizeof(reported_setup_problem));
	/* new sandboxes' roles and pool databases, committed together */
	plan.context = pass_context;
	NxProvisionRoles(&host, &plan);
	NxPlanPool(&plan);
	NxTakePoolDatabases(&plan);
	NxCommitTransaction();

	NxBeginTransaction("nx: role repairs");
	NxRolePoolDropStale();
	NxRepairTenantRoles();
	NxPlanDatabases(&plan);
	NxCommitTransaction();

	NxApplyDatabases(&plan);

	/* 2b. databases of their own for branch and empty previews (branch.c) */
	NxBranchesConverge(&host, pass_context);

	NxBeginTransaction("nx: deployments");
	NxDropUnwantedRoles();
	ConvergeDeployments(&host);
	NxRetiredOffsetsSweep(&host);
	WriteRuntime(periodic);
	CompletePromotions();
	NxWriteQueuedEvents();
	{
		MemoryContext old;

		/* blob files are kept for every row of nx.blobs */
		if (SPI_execute("SELECT sha256 FROM nx.blobs", true, 0) != SPI_OK_SELECT)
			elog(ERROR, "nx supervisor: could not read blobs");
		old = MemoryContextSwitchTo(pass_context);
		for (uint64 i = 0; i < SPI_processed; i++)
			wanted_blobs = lappend(wanted_blobs, pstrdup(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)));
		MemoryContextSwitchTo(old);

		/* logs are kept for every deployment that has not been removed */
		if (SPI_execute("SELECT id FROM nx.deployments WHERE desired_state <> 'removed'", true, 0) != SPI_OK_SELECT)
			elog(ERROR, "nx supervisor: could not read deployments");
		old = MemoryContextSwitchTo(pass_context);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			int64	   *id = palloc(sizeof(int64));

			*id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
			wanted_logs = lappend(wanted_logs, id);
		}
		MemoryContextSwitchTo(old);
	}
	NxCommitTransaction();

	NxBlobsRemoveUnwanted(wanted_blobs);
	NxLogsRemoveUnwanted(wanted_logs);
	NxRunDirsRemoveUnwanted(NxSlotsHas);
	last_host = host;
	have_last_host = true;
	if (host.cgroups.mode != NX_CGROUP_NONE)
		NxCgroupList(&host.cgroups, RemoveUnwantedCgroup, &host.cgroups);

	/* 6. idle deployments: mark them asleep; the next pass stops them */
	NxStopIdleDeployments(pass_context);

	/* 7. custom domains waiting for their DNS TXT record */
	NxDomainChecks();
}

/*
 * RunStep runs one step of the pass with NxRunLoggingErrors; if it failed,
 * its rolled back transaction may have held nx.runtime writes, so the
 * slots forget what they wrote and the next write looks at all of them.
 */
static void
RunStep(void (*fn) (void *), void *arg, const char *what)
{
	if (!NxRunLoggingErrors(fn, arg, what))
		NxSlotsRuntimeUnknown();
}

/* what ConvergeStep passes on to ConvergeOnce */
typedef struct ConvergeArgs
{
	MemoryContext pass_context;
	bool		periodic;
} ConvergeArgs;

/* ConvergeStep adapts ConvergeOnce to RunStep. */
static void
ConvergeStep(void *arg)
{
	ConvergeArgs *a = arg;

	ConvergeOnce(a->pass_context, a->periodic);
}

/* RouterStep starts the router if it should run and does not. */
static void
RouterStep(void *arg)
{
	if (have_last_host)
		NxRouterEnsure(&last_host);
}

/*
 * NxConverge runs one pass (periodic: the nx.naptime one, see
 * ConvergeOnce), then makes sure the router runs, each logging
 * (not raising) its errors: a router that cannot start never stops the
 * sandboxes from converging.
 */
void
NxConverge(bool periodic)
{
	ConvergeArgs a;

	a.pass_context = AllocSetContextCreate(TopMemoryContext, "nx converge",
										   ALLOCSET_DEFAULT_SIZES);
	a.periodic = periodic;
	RunStep(ConvergeStep, &a, "converge pass failed");
	MemoryContextDelete(a.pass_context);
	RunStep(RouterStep, NULL, "could not start the router");
}

/* what StartStep is to start */
typedef struct StartArgs
{
	const int64 *ids;
	int			n;
} StartArgs;

/*
 * StartStep starts the queued deployments, reading only their rows, and writes
 * their runtime rows and queued events, in one transaction.  One that
 * could not start at once (its database not made yet, no start slot free,
 * no row wanting it running any more) is left to a full pass.
 */
static void
StartStep(void *arg)
{
	StartArgs  *a = arg;

	NxBeginTransaction("nx: start");
	if (ExtensionInstalled())
	{
		WantDeployments(&last_host, a->ids, a->n);
		for (int i = 0; i < a->n; i++)
			if (NxSlotWaiting(a->ids[i]))
				NxRequestConverge();
		WriteRuntime(false);
		NxWriteQueuedEvents();
	}
	NxCommitTransaction();
}

/*
 * NxConvergeReady: a pass has run to its end with the extension installed,
 * and the last one still found it (what is made ahead waits for this: a
 * cluster that preloads the library without the extension gets nothing).
 */
bool
NxConvergeReady(void)
{
	return have_last_host && !warned_no_extension;
}

/*
 * NxStartQueuedDeployments is the start fast path: start these
 * deployments (woken, started, restarted or pushed; queued at commit)
 * without a full converge pass, using the host setup the last pass
 * checked.  Nothing else of a pass is needed: those calls change only the
 * deployment's own row.  Without a last pass whose host setup was
 * complete (or with nx.start_fast_path off), it asks for a full pass
 * instead; the periodic pass remains the safety net (I2).
 */
void
NxStartQueuedDeployments(const int64 *ids, int n)
{
	StartArgs	a;

	if (n == 0)
		return;
	if (!nx_start_fast_path || !have_last_host || !last_host.ok)
	{
		NxRequestConverge();
		return;
	}
	a.ids = ids;
	a.n = n;
	RunStep(StartStep, &a, "could not start deployments");
}

/* FlushStep writes changed slots and queued events in one transaction. */
static void
FlushStep(void *arg)
{
	NxBeginTransaction("nx: runtime");
	if (ExtensionInstalled())
	{
		WriteRuntime(false);
		CompletePromotions();
		NxWriteQueuedEvents();
	}
	NxCommitTransaction();
}

/* NxFlushRuntime writes changed slots and queued events between passes. */
void
NxFlushRuntime(void)
{
	RunStep(FlushStep, NULL, "could not write nx.runtime");
}
