/*
 * src/supervisor/events.c
 *	  The events the supervisor writes to nx.events (crash, crashloop,
 *	  idle_stop, role_repaired...): queued while the machine is changed,
 *	  outside any transaction, and inserted by the next transaction that
 *	  writes nx.runtime (converge.c), so that a failing write loses none.
 */
#include "events.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"

typedef struct NxQueuedEvent
{
	char	   *action;
	char	   *sandbox;
	char	   *owner;
	int64		deployment;
	char	   *details;
} NxQueuedEvent;

static List *queued_events = NIL;	/* in TopMemoryContext */

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

/*
 * NxWriteQueuedEvents inserts the queued events, each with a NOTIFY
 * nx_events (the caller's transaction), and forgets them.
 */
void
NxWriteQueuedEvents(void)
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
