/*
 * src/tenant/quota_hook.c
 *	  Writes refused in a database over its quota.  The supervisor measures
 *	  database sizes and publishes the databases over quota in shared
 *	  memory (src/supervisor/quota.c); every backend checks that list before
 *	  a statement that could make its database grow.
 *
 * Settings a tenant can change do not bind it (it may SET
 * default_transaction_read_only = off); hooks of the preloaded library do.
 * Refused while over quota: INSERT, UPDATE, MERGE (also inside WITH),
 * COPY FROM, and every utility statement that is not on the list below
 * (CREATE, ALTER, GRANT, COMMENT, REFRESH MATERIALIZED VIEW, SELECT INTO...).
 * Allowed, so that the tenant can get back under: SELECT, DELETE, TRUNCATE,
 * DROP, VACUUM (FULL), CLUSTER, REINDEX, COPY TO, transaction control,
 * SET, and the like.  Superusers are never refused.
 *
 * The check costs one atomic read per statement while nothing changes:
 * the backend keeps its answer until the supervisor publishes new figures.
 *
 * A statement already running when the database goes over would write on
 * unchecked (one INSERT ... SELECT wrote 126 MB in 0.27 s on the test
 * machine), and the supervisor measures only every
 * nx.database_quota_interval.  So the backend checks for itself while an
 * INSERT, UPDATE, MERGE or CREATE TABLE AS runs: the node that feeds the
 * rows is wrapped, and every NX_CHECK_TUPLES rows it looks at how many
 * blocks this backend wrote (pgBufferUsage: relation extensions and
 * evicted buffers, so it over-counts growth, never under-counts); past a
 * budget (NX_MIN_BUDGET, or half of what the database still may grow if
 * more) it measures its own database's files and stops the statement
 * once they pass what the database may reach.  COPY FROM and large
 * objects are not checked this way; the supervisor cancels them.
 *
 * Glossary:
 *	  limit		the size this database may reach: its sandbox's
 *				database_quota less what the sandbox's other databases use
 */
#include "tenant.h"

#include "commands/dbcommands.h"
#include <sys/stat.h>

#include "access/xact.h"
#include "executor/executor.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/nodes.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "storage/fd.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

/* rows between two looks at the blocks written */
#define NX_CHECK_TUPLES 256
/* blocks written before the database is measured again, at least */
#define NX_MIN_BUDGET (8 * 1024 * 1024)
/* nodes wrapped at once in one backend (nested statements) */
#define NX_MAX_WRAPPED 64

static ExecutorStart_hook_type prev_executor_start = NULL;
static ProcessUtility_hook_type prev_process_utility = NULL;

/* this backend's database's entry, valid while the generation has not moved */
static uint64 seen_generation = PG_UINT64_MAX;
static bool have_entry = false;
static NxQuotaEntry my_entry;

/* the growth check's state */
static int	tuples_since_check = 0;
static int64 written_at_measure = 0;	/* bytes, pgBufferUsage */
static int64 budget = NX_MIN_BUDGET;

/* wrapped nodes and the function each one really runs */
typedef struct Wrapped
{
	PlanState  *node;
	ExecProcNodeMtd real;
} Wrapped;
static Wrapped wrapped[NX_MAX_WRAPPED];
static int	n_wrapped = 0;
static bool xact_callback_registered = false;

/*
 * RefreshEntry: does this backend's database have a quota entry?  Reads
 * the shared entries only when the supervisor changed them since.
 */
static bool
RefreshEntry(void)
{
	uint64		generation;

	if (NxTenant == NULL || !OidIsValid(MyDatabaseId))
		return false;
	generation = pg_atomic_read_u64(&NxTenant->generation);
	if (generation != seen_generation)
	{
		have_entry = NxQuotaLookup(MyDatabaseId, &my_entry);
		seen_generation = generation;
	}
	return have_entry;
}

/* DatabaseOverQuota: has the supervisor found this database over quota? */
static bool
DatabaseOverQuota(void)
{
	return RefreshEntry() && my_entry.over;
}

/* Pretty is pg_size_pretty(bytes) as a C string. */
static char *
Pretty(int64 bytes)
{
	return text_to_cstring(DatumGetTextPP(DirectFunctionCall1(pg_size_pretty, Int64GetDatum(bytes))));
}

/*
 * RefuseWrite raises the over-quota error for what (a statement's name);
 * used_bytes is what the sandbox's databases use.
 */
static void
RefuseWrite(const char *what, int64 used_bytes)
{
	char	   *db = get_database_name(MyDatabaseId);

	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("database \"%s\" is over its quota: %s refused", db ? db : "?", what),
			 errdetail("Its sandbox's databases use %s of a database_quota of %s.",
					   Pretty(used_bytes), Pretty(my_entry.quota_bytes)),
			 errhint("DELETE, TRUNCATE and DROP are allowed: TRUNCATE or DROP what you do not need, or DELETE and "
					 "then VACUUM FULL, to give the space back; or ask the sandbox's owner to raise "
					 "database_quota (nx.alter_sandbox).  Writes are allowed again within seconds of being under.")));
}

/*
 * OwnDatabaseSize sums the sizes of this database's files in its default
 * tablespace (what pg_database_size counts there), without a lock.
 */
static int64
OwnDatabaseSize(void)
{
	DIR		   *dir = AllocateDir(DatabasePath);
	struct dirent *de;
	int64		total = 0;

	while ((de = ReadDir(dir, DatabasePath)) != NULL)
	{
		char		path[MAXPGPATH * 2];
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", DatabasePath, de->d_name);
		if (stat(path, &st) == 0)
			total += st.st_size;
	}
	FreeDir(dir);
	return total;
}

/*
 * CheckGrowth stops the running statement when the supervisor found the
 * database over quota since it started, or when this backend wrote its
 * budget and the database's files now pass its limit.
 */
static void
CheckGrowth(void)
{
	int64		written = (pgBufferUsage.shared_blks_written + pgBufferUsage.local_blks_written) * (int64) BLCKSZ;
	int64		size;

	if (!RefreshEntry())
		return;
	if (my_entry.over)
		RefuseWrite("writing", my_entry.used_bytes);
	if (written - written_at_measure < budget)
		return;
	size = OwnDatabaseSize();
	written_at_measure = written;
	budget = Max(NX_MIN_BUDGET, (my_entry.limit_bytes - size) / 2);
	if (size > my_entry.limit_bytes)
		RefuseWrite("writing", size + my_entry.quota_bytes - my_entry.limit_bytes);
}

/* CheckedNode runs a wrapped node, checking growth every NX_CHECK_TUPLES rows. */
static TupleTableSlot *
CheckedNode(PlanState *node)
{
	for (int i = n_wrapped - 1; i >= 0; i--)
	{
		if (wrapped[i].node == node)
		{
			if (++tuples_since_check >= NX_CHECK_TUPLES)
			{
				tuples_since_check = 0;
				CheckGrowth();
			}
			return wrapped[i].real(node);
		}
	}
	elog(ERROR, "nx_sandbox: wrapped plan node not found");
	return NULL;				/* keep the compiler quiet */
}

/*
 * ForgetWrapped: at the end of the top transaction no statement of it
 * runs any more (also after an error, when ExecutorEnd was not called).
 */
static void
ForgetWrapped(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		n_wrapped = 0;
}

/* Wrap makes node run through CheckedNode (when there is room). */
static void
Wrap(PlanState *node)
{
	if (node == NULL || n_wrapped == NX_MAX_WRAPPED)
		return;
	if (!xact_callback_registered)
	{
		RegisterXactCallback(ForgetWrapped, NULL);
		xact_callback_registered = true;
	}
	wrapped[n_wrapped].node = node;
	wrapped[n_wrapped].real = node->ExecProcNodeReal;
	n_wrapped++;
	node->ExecProcNodeReal = CheckedNode;
}

/* WrapWriters wraps the source of rows of every inserting or updating ModifyTable. */
static bool
WrapWriters(PlanState *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, ModifyTableState))
	{
		CmdType		op = ((ModifyTableState *) node)->operation;

		if (op == CMD_INSERT || op == CMD_UPDATE || op == CMD_MERGE)
			Wrap(outerPlanState(node));
	}
	return planstate_tree_walker(node, WrapWriters, context);
}

/*
 * WritingOperation: the name of a row-adding operation, or NULL for
 * SELECT and DELETE.
 */
static const char *
WritingOperation(CmdType operation)
{
	switch (operation)
	{
		case CMD_INSERT:
			return "INSERT";
		case CMD_UPDATE:
			return "UPDATE";
		case CMD_MERGE:
			return "MERGE";
		default:
			return NULL;
	}
}

/*
 * NxQuotaExecutorStart refuses a plan that inserts or updates rows (at its
 * top or in a WITH query) while the database is over quota; otherwise, in
 * a tenant database, it wraps the nodes whose rows are written so that
 * the statement checks its growth as it runs.
 */
static void
NxQuotaExecutorStart(QueryDesc *queryDesc, int eflags)
{
	bool		check = false;

	if (RefreshEntry() && !superuser() && !(eflags & EXEC_FLAG_EXPLAIN_ONLY))
	{
		PlannedStmt *stmt = queryDesc->plannedstmt;
		const char *what = WritingOperation(stmt->commandType);
		ListCell   *lc;

		if (what == NULL && stmt->hasModifyingCTE)
		{
			foreach(lc, stmt->subplans)
			{
				Plan	   *plan = lfirst(lc);

				if (plan && IsA(plan, ModifyTable) &&
					(what = WritingOperation(((ModifyTable *) plan)->operation)) != NULL)
					break;
			}
		}
		if (what && my_entry.over)
			RefuseWrite(what, my_entry.used_bytes);
		check = what != NULL || queryDesc->dest->mydest == DestIntoRel ||
			queryDesc->dest->mydest == DestTransientRel;
	}
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
	if (check && queryDesc->planstate)
	{
		if (queryDesc->dest->mydest == DestIntoRel || queryDesc->dest->mydest == DestTransientRel)
			Wrap(queryDesc->planstate);
		WrapWriters(queryDesc->planstate, NULL);
	}
}

/*
 * UtilityAllowed: may this utility statement run in a database over quota?
 * Only those that do not add data (or that give space back).
 */
static bool
UtilityAllowed(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_CopyStmt:
			return !((CopyStmt *) stmt)->is_from;
		case T_DropStmt:
		case T_DropOwnedStmt:
		case T_DropRoleStmt:
		case T_DropdbStmt:
		case T_DropTableSpaceStmt:
		case T_DropSubscriptionStmt:
		case T_TruncateStmt:
		case T_VacuumStmt:
		case T_ClusterStmt:
		case T_ReindexStmt:
		case T_TransactionStmt:
		case T_VariableSetStmt:
		case T_VariableShowStmt:
		case T_DiscardStmt:
		case T_DeallocateStmt:
		case T_PrepareStmt:
		case T_ExecuteStmt:
		case T_ExplainStmt:
		case T_DeclareCursorStmt:
		case T_FetchStmt:
		case T_ClosePortalStmt:
		case T_ListenStmt:
		case T_UnlistenStmt:
		case T_NotifyStmt:
		case T_LockStmt:
		case T_ConstraintsSetStmt:
		case T_CheckPointStmt:
		case T_DoStmt:
		case T_CallStmt:
		case T_LoadStmt:
			return true;
		default:
			return false;
	}
}

/* NxQuotaProcessUtility refuses utility statements that add data. */
static void
NxQuotaProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					  ProcessUtilityContext context, ParamListInfo params,
					  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;

	if (DatabaseOverQuota() && !superuser() && !UtilityAllowed(stmt))
		RefuseWrite(IsA(stmt, CopyStmt) ? "COPY FROM" : GetCommandTagName(CreateCommandTag(stmt)),
					my_entry.used_bytes);
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

/* NxQuotaHookInit installs the hooks; called from _PG_init when preloading. */
void
NxQuotaHookInit(void)
{
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = NxQuotaExecutorStart;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = NxQuotaProcessUtility;
}
