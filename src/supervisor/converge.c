/*
 * src/supervisor/converge.c
 *	  One converge pass: read the rows, make the machine match them.
 *
 *	  1. roles for new sandboxes, tenant roles' passwords and settings put
 *	     back (one transaction)
 *	  2. databases: new ones (from the pool), dropped ones, pool refill
 *	     (each statement in its own top-level transaction)
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
#include "domains.h"
#include "provision.h"
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
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "postmaster/postmaster.h"

typedef struct NxQueuedEvent
{
	char	   *action;
	char	   *sandbox;
	char	   *owner;
	int64		deployment;
	char	   *details;
} NxQueuedEvent;

static List *queued_events = NIL;	/* in TopMemoryContext */
static bool converge_requested = false;
static bool warned_no_extension = false;
static bool first_pass = true;
static char reported_setup_problem[512];	/* last one logged */
static NxHostSetup last_host;	/* of the last pass that found the extension */
static bool have_last_host = false;

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

/* NxJsonObject1 returns {"key": "value"} with value escaped. */
char *
NxJsonObject1(const char *key, const char *value)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	escape_json(&buf, key);
	appendStringInfoString(&buf, ": ");
	escape_json(&buf, value);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * NxQueueEvent remembers an event until the next transaction writes it;
 * deployment 0 is none (NULL).
 */
void
NxQueueEvent(const char *action, const char *sandbox, const char *owner,
			 int64 deployment, const char *details_json)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	NxQueuedEvent *e = palloc(sizeof(NxQueuedEvent));

	e->action = pstrdup(action);
	e->sandbox = pstrdup(sandbox);
	e->owner = pstrdup(owner);
	e->deployment = deployment;
	e->details = pstrdup(details_json ? details_json : "{}");
	queued_events = lappend(queued_events, e);
	MemoryContextSwitchTo(old);
}

/* WriteQueuedEvents inserts queued events (caller's transaction). */
static void
WriteQueuedEvents(void)
{
	ListCell   *lc;
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, INT8OID, TEXTOID};

	foreach(lc, queued_events)
	{
		NxQueuedEvent *e = lfirst(lc);
		Datum		values[5];
		char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

		values[0] = CStringGetTextDatum(e->owner);
		values[1] = CStringGetTextDatum(e->action);
		values[2] = CStringGetTextDatum(e->sandbox);
		values[3] = Int64GetDatum(e->deployment);
		values[4] = CStringGetTextDatum(e->details);
		nulls[3] = e->deployment > 0 ? ' ' : 'n';
		if (SPI_execute_with_args(
								  "WITH e AS (INSERT INTO nx.events (actor, owner, action, sandbox, deployment, details) "
								  "VALUES ('supervisor', $1, $2, $3, $4, $5::jsonb) RETURNING id) "
								  "SELECT pg_catalog.pg_notify('nx_events', pg_catalog.json_build_object('id', id)::text) FROM e",
								  5, types, values, nulls, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "nx supervisor: could not write event");
	}
	foreach(lc, queued_events)
	{
		NxQueuedEvent *e = lfirst(lc);

		pfree(e->action);
		pfree(e->sandbox);
		pfree(e->owner);
		pfree(e->details);
	}
	list_free_deep(queued_events);
	queued_events = NIL;
}

/*
 * EmitRuntimeRow upserts one nx.runtime row (NxSlotsRuntimeRows callback)
 * and sets *(bool *) arg when its state is not the one the table held, so
 * that WriteRuntime can tell the router (contract C2).
 */
static void
EmitRuntimeRow(const NxRuntimeRow *row, void *arg)
{
	bool	   *state_changed = arg;
	bool		isnull;

	Oid			types[11] = {INT8OID, TEXTOID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	INT4OID, INT4OID, INT4OID, TEXTOID, INT8OID, INT8OID};
	Datum		values[11];
	char		nulls[11];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(row->deployment);
	values[1] = CStringGetTextDatum(row->state);
	values[2] = Int32GetDatum(row->pid);
	nulls[2] = row->pid > 0 ? ' ' : 'n';
	values[3] = TimestampTzGetDatum(row->started_at);
	nulls[3] = row->started_at ? ' ' : 'n';
	values[4] = TimestampTzGetDatum(row->ready_at);
	nulls[4] = row->ready_at ? ' ' : 'n';
	values[5] = Int32GetDatum(row->restarts);
	values[6] = Int32GetDatum(row->exit_code);
	nulls[6] = row->exit_code >= 0 ? ' ' : 'n';
	values[7] = Int32GetDatum(row->exit_signal);
	nulls[7] = row->exit_signal > 0 ? ' ' : 'n';
	values[8] = CStringGetTextDatum(row->last_error);
	nulls[8] = row->last_error[0] ? ' ' : 'n';
	values[9] = Int64GetDatum(row->memory_bytes);
	nulls[9] = row->memory_bytes >= 0 ? ' ' : 'n';
	values[10] = Int64GetDatum(row->cpu_usec);
	nulls[10] = row->cpu_usec >= 0 ? ' ' : 'n';
	if (SPI_execute_with_args(
							  "WITH prev AS (SELECT p.state FROM nx.runtime p WHERE p.deployment = $1) "
							  "INSERT INTO nx.runtime AS r (deployment, state, pid, started_at, ready_at, restarts, "
							  "  exit_code, exit_signal, last_error, memory_bytes, cpu_usec, updated_at) "
							  "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, pg_catalog.now() "
							  "WHERE EXISTS (SELECT 1 FROM nx.deployments d WHERE d.id = $1) "
							  "ON CONFLICT (deployment) DO UPDATE SET state = excluded.state, pid = excluded.pid, "
							  "  started_at = excluded.started_at, ready_at = excluded.ready_at, "
							  "  restarts = excluded.restarts, exit_code = excluded.exit_code, "
							  "  exit_signal = excluded.exit_signal, last_error = excluded.last_error, "
							  "  memory_bytes = excluded.memory_bytes, cpu_usec = excluded.cpu_usec, "
							  "  updated_at = excluded.updated_at "
							  "RETURNING r.state IS DISTINCT FROM (SELECT prev.state FROM prev)",
							  11, types, values, nulls, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "nx supervisor: could not write nx.runtime");
	if (SPI_processed == 1 &&
		DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		*state_changed = true;
}

/*
 * WriteRuntime writes dirty slots (or all) and drops rows of no slot.  When
 * a row's state changed, or a row went, it sends NOTIFY nx_routes (empty
 * payload) in the same transaction (contract C2): the router reloads its
 * routes and answers for a crashloop, failed or stopped deployment at once.
 */
static void
WriteRuntime(bool all)
{
	List	   *ids = NxSlotsIds();
	Datum	   *elems = palloc(sizeof(Datum) * (list_length(ids) + 1));
	ListCell   *lc;
	int			n = 0;
	Datum		arg;
	Oid			type = INT8ARRAYOID;
	bool		state_changed = false;

	NxSlotsRuntimeRows(all, EmitRuntimeRow, &state_changed);
	foreach(lc, ids)
		elems[n++] = Int64GetDatum(*(int64 *) lfirst(lc));
	arg = PointerGetDatum(construct_array(elems, n, INT8OID, 8, true, TYPALIGN_DOUBLE));
	if (SPI_execute_with_args("DELETE FROM nx.runtime WHERE deployment <> ALL ($1)",
							  1, &type, &arg, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "nx supervisor: could not clean nx.runtime");
	if (SPI_processed > 0)
		state_changed = true;
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
"FROM nx._desired_deployments($1, $2)";

/* ConvergeDeployments walks the desired-running deployments (step 4). */
static void
ConvergeDeployments(const NxHostSetup *host)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	SPITupleTable *rows;
	uint64		n;
	MemoryContext pass_context = AllocSetContextCreate(CurrentMemoryContext, "nx deployments",
													   ALLOCSET_DEFAULT_SIZES);

	values[0] = CStringGetTextDatum(host->pg_socket_dir);
	values[1] = CStringGetTextDatum(psprintf("%d", PostPortNumber));
	if (SPI_execute_with_args(deployments_sql, 2, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not read deployments");
	rows = SPI_tuptable;
	n = SPI_processed;

	NxSlotsBeginPass();
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
	NxSlotsEndPass();
	MemoryContextDelete(pass_context);
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

/* ConvergeOnce does steps 1-5; errors propagate to NxConverge. */
static void
ConvergeOnce(MemoryContext pass_context)
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
	NxProvisionRoles();
	NxRepairTenantRoles();
	plan.context = pass_context;
	NxPlanDatabases(&plan);
	NxCommitTransaction();

	NxApplyDatabases(&plan);

	/* 2b. databases of their own for branch and empty previews (branch.c) */
	NxBranchesConverge(&host, pass_context);

	NxBeginTransaction("nx: deployments");
	NxDropUnwantedRoles();
	ConvergeDeployments(&host);
	NxRetiredOffsetsSweep(&host);
	WriteRuntime(true);
	CompletePromotions();
	WriteQueuedEvents();
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
	NxRunDirsRemoveUnwanted();
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
 * NxRunLoggingErrors runs fn(arg); an error is logged as "nx supervisor:
 * <what>: <message>" and its transaction rolled back instead of ending the
 * worker, so that the next pass can try again.
 */
void
NxRunLoggingErrors(void (*fn) (void *), void *arg, const char *what)
{
	MemoryContext caller = CurrentMemoryContext;

	PG_TRY();
	{
		fn(arg);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(LOG, (errmsg("nx supervisor: %s: %s", what, edata->message),
					  edata->detail ? errdetail_internal("%s", edata->detail) : 0));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller);
}

/* ConvergeStep adapts ConvergeOnce to NxRunLoggingErrors. */
static void
ConvergeStep(void *pass_context)
{
	ConvergeOnce((MemoryContext) pass_context);
}

/* RouterStep starts the router if it should run and does not. */
static void
RouterStep(void *arg)
{
	if (have_last_host)
		NxRouterEnsure(&last_host);
}

/*
 * NxConverge runs one pass, then makes sure the router runs, each logging
 * (not raising) its errors: a router that cannot start never stops the
 * sandboxes from converging.
 */
void
NxConverge(void)
{
	MemoryContext pass_context = AllocSetContextCreate(TopMemoryContext, "nx converge",
													   ALLOCSET_DEFAULT_SIZES);

	NxRunLoggingErrors(ConvergeStep, pass_context, "converge pass failed");
	MemoryContextDelete(pass_context);
	NxRunLoggingErrors(RouterStep, NULL, "could not start the router");
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
		WriteQueuedEvents();
	}
	NxCommitTransaction();
}

/* NxFlushRuntime writes changed slots and queued events between passes. */
void
NxFlushRuntime(void)
{
	NxRunLoggingErrors(FlushStep, NULL, "could not write nx.runtime");
}
