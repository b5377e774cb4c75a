/*
 * src/supervisor/sql_exec.c
 *	  How the supervisor runs SQL: SPI inside a transaction it brackets, and
 *	  single utility statements "at top level" in a transaction of their
 *	  own, for the commands that refuse to run inside a transaction block
 *	  or a function (CREATE DATABASE, DROP DATABASE); and a step whose
 *	  error is logged and rolled back (its transaction, or a subtransaction)
 *	  rather than ending the worker.
 *
 * The top-level executor follows PostgreSQL's own exec_simple_query (and
 * pg_cron's ExecuteSqlString): parse, analyze, plan, and PortalRun with
 * isTopLevel = true, one statement per call.
 */
#include "sql_exec.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

/* the memory context NxBeginTransaction was called in */
static MemoryContext caller_context = NULL;

/* NxBeginTransaction starts a transaction with SPI and a snapshot. */
void
NxBeginTransaction(const char *activity)
{
	caller_context = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

/*
 * NxCommitTransaction is the exact reverse of NxBeginTransaction, back in
 * the caller's memory context: a commit leaves TopMemoryContext current,
 * where whatever the caller allocated next would stay for the worker's
 * lifetime.
 */
void
NxCommitTransaction(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	if (caller_context != NULL)
		MemoryContextSwitchTo(caller_context);
	caller_context = NULL;
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * NxRunUtility runs one utility statement built by the caller through SPI,
 * inside the current transaction; it raises an error if it fails.
 */
void
NxRunUtility(const char *sql)
{
	if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "nx supervisor: could not run %s", sql);
}

/*
 * NxExecuteTopLevel runs one SQL statement in a transaction of its own, as
 * if a client had sent it: the only way to run CREATE/DROP DATABASE from a
 * background worker.  Errors propagate (the caller catches them).
 */
void
NxExecuteTopLevel(const char *sql)
{
	MemoryContext parse_context;
	MemoryContext old_context;
	List	   *parsetrees;
	RawStmt    *parsetree;
	List	   *querytrees;
	List	   *plantrees;
	Portal		portal;
	DestReceiver *receiver;
	QueryCompletion qc;
	int16		format = 0;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, sql);
	parse_context = AllocSetContextCreate(CurrentMemoryContext, "nx top-level statement",
										  ALLOCSET_DEFAULT_SIZES);
	old_context = MemoryContextSwitchTo(parse_context);
	parsetrees = pg_parse_query(sql);
	if (list_length(parsetrees) != 1)
		elog(ERROR, "NxExecuteTopLevel takes exactly one statement");
	parsetree = linitial_node(RawStmt, parsetrees);
	PushActiveSnapshot(GetTransactionSnapshot());
	querytrees = pg_analyze_and_rewrite_fixedparams(parsetree, sql, NULL, 0, NULL);
	plantrees = pg_plan_queries(querytrees, sql, 0, NULL);
	PopActiveSnapshot();

	portal = CreatePortal("nx_top_level", true, true);
	portal->visible = false;
	PortalDefineQuery(portal, NULL, sql, CreateCommandTag(parsetree->stmt), plantrees, NULL);
	PortalStart(portal, NULL, 0, InvalidSnapshot);
	PortalSetResultFormat(portal, 1, &format);
	receiver = CreateDestReceiver(DestNone);
	MemoryContextSwitchTo(old_context);
	(void) PortalRun(portal, FETCH_ALL, true /* isTopLevel */ , true, receiver, receiver, &qc);
	receiver->rDestroy(receiver);
	PortalDrop(portal, false);
	MemoryContextDelete(parse_context);
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * NxTryTopLevel runs NxExecuteTopLevel and turns an error into a LOG line
 * and a false result, so that one failing database does not stop a pass.
 */
bool
NxTryTopLevel(const char *sql)
{
	MemoryContext context = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		NxExecuteTopLevel(sql);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(context);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(LOG,
				(errmsg("nx supervisor: \"%s\" failed: %s", sql, edata->message)));
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/* LogStepError logs a caught error as "nx supervisor: <what>: <message>". */
static void
LogStepError(const char *what, ErrorData *edata)
{
	ereport(LOG, (errmsg("nx supervisor: %s: %s", what, edata->message),
				  edata->detail ? errdetail_internal("%s", edata->detail) : 0));
	FreeErrorData(edata);
}

/*
 * NxRunLoggingErrors runs fn(arg); an error is logged as "nx supervisor:
 * <what>: <message>" and its transaction rolled back instead of ending the
 * worker, so that the next pass can try again.  Returns whether fn ran
 * to its end.
 */
bool
NxRunLoggingErrors(void (*fn) (void *), void *arg, const char *what)
{
	MemoryContext caller = CurrentMemoryContext;
	volatile bool ok = true;

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
		LogStepError(what, edata);
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller);
	return ok;
}

/*
 * NxTryInSubtransaction runs fn(arg) inside the caller's transaction, in a
 * subtransaction of its own: an error is logged as "nx supervisor: <what>:
 * <message>" and undoes fn's work only, and the caller's transaction goes
 * on.  Returns whether fn ran to its end.
 */
bool
NxTryInSubtransaction(void (*fn) (void *), void *arg, const char *what)
{
	MemoryContext caller = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller);
		CurrentResourceOwner = owner;
		/* a cancel is for the whole transaction, not this step */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);
		LogStepError(what, edata);
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller);
	CurrentResourceOwner = owner;
	return ok;
}
