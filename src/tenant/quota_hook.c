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
 * the backend keeps its answer until the supervisor publishes a new list.
 */
#include "tenant.h"

#include "commands/dbcommands.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/nodes.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

static ExecutorStart_hook_type prev_executor_start = NULL;
static ProcessUtility_hook_type prev_process_utility = NULL;

/* this backend's answer, valid while the generation has not moved */
static uint64 seen_generation = PG_UINT64_MAX;
static bool over_quota = false;
static NxOverQuota my_entry;

/*
 * DatabaseOverQuota: is this backend's database over quota?  Reads the
 * shared list only when the supervisor changed it since the last look.
 */
static bool
DatabaseOverQuota(void)
{
	uint64		generation;

	if (NxTenant == NULL || !OidIsValid(MyDatabaseId))
		return false;
	generation = pg_atomic_read_u64(&NxTenant->generation);
	if (generation == seen_generation)
		return over_quota;
	over_quota = false;
	SpinLockAcquire(&NxTenant->mutex);
	for (int i = 0; i < NxTenant->count; i++)
	{
		if (NxTenant->entries[i].database == MyDatabaseId)
		{
			my_entry = NxTenant->entries[i];
			over_quota = true;
			break;
		}
	}
	SpinLockRelease(&NxTenant->mutex);
	seen_generation = generation;
	return over_quota;
}

/* RefuseWrite raises the over-quota error for what (a statement's name). */
static void
RefuseWrite(const char *what)
{
	char	   *db = get_database_name(MyDatabaseId);

	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("database \"%s\" is over its quota: %s refused", db ? db : "?", what),
			 errdetail("Its sandbox's databases use %s of a database_quota of %s.",
					   text_to_cstring(DatumGetTextPP(DirectFunctionCall1(pg_size_pretty,
																		  Int64GetDatum(my_entry.used_bytes)))),
					   text_to_cstring(DatumGetTextPP(DirectFunctionCall1(pg_size_pretty,
																		  Int64GetDatum(my_entry.quota_bytes))))),
			 errhint("DELETE, TRUNCATE and DROP are allowed: TRUNCATE or DROP what you do not need, or DELETE and "
					 "then VACUUM FULL, to give the space back; or ask the sandbox's owner to raise "
					 "database_quota (nx.alter_sandbox).  Writes are allowed again within seconds of being under.")));
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
 * top or in a WITH query) while the database is over quota.
 */
static void
NxQuotaExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if (DatabaseOverQuota() && !superuser() &&
		!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
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
		if (what)
			RefuseWrite(what);
	}
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
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
		RefuseWrite(IsA(stmt, CopyStmt) ? "COPY FROM" : GetCommandTagName(CreateCommandTag(stmt)));
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
