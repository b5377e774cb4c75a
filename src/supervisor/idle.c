/*
 * src/supervisor/idle.c
 *	  Idle stop (scale to zero): stop the deployments that nobody has used
 *	  for their sandbox's idle_timeout.  The next request for one wakes it
 *	  again (nx.wake, called by the router; see 55_scale_to_zero.sql).
 *
 * A deployment is idle when nx._idle_deployments() says so: the router's
 * latest report (fresh, at most a few seconds old) shows no open
 * connection, and its last activity is older than the timeout.  A report
 * cannot see a connection opened after it was made, so before marking the
 * row asleep the supervisor asks the deployment's nx-init to QUIESCE:
 * nx-init agrees only if it has handed out no connection for
 * NX_INIT_QUIET_MS (longer than a report can be old), and from then on
 * refuses new ones.  If the row cannot be marked (it changed meanwhile)
 * nx-init is told to RESUME.  The slot itself is stopped by the next
 * converge pass, which no longer wants an asleep deployment running.
 *
 * Asking never blocks the supervisor's loop, whatever the sandbox does: the
 * connection to the hand-off socket is non-blocking (a full backlog is
 * EAGAIN, not a wait; rundir.c follows no link and checks who listens),
 * QUIESCE is sent with MSG_DONTWAIT, and the reply is read when the loop's
 * wait set says it is there.  An "ask" waits for its reply at most
 * NX_INIT_REPLY_TIMEOUT_MS; without one the deployment stays up, nx-init
 * is told to RESUME (in case the reply was only late), and the next pass
 * may ask again.  At most NX_IDLE_MAX_ASKS asks are out at once.
 *
 * Glossary:
 *	  ask	one QUIESCE sent and its reply awaited (IdleAsk).
 */
#include "idle.h"
#include "requests.h"
#include "rundir.h"
#include "sql_exec.h"

#include <sys/socket.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "nx_handoff.h"

#define NX_INIT_REPLY_TIMEOUT_MS 1000

typedef struct IdleAsk
{
	int64		deployment;
	int			fd;				/* to its hand-off socket; -1: slot free */
	TimestampTz deadline;		/* give up waiting for the reply then */
	int			reply;			/* NxInitStatus; -1: none yet */
} IdleAsk;

static IdleAsk asks[NX_IDLE_MAX_ASKS];
static bool asks_ready = false;

/* InitAsks marks every ask slot free (once). */
static void
InitAsks(void)
{
	if (asks_ready)
		return;
	for (int i = 0; i < NX_IDLE_MAX_ASKS; i++)
		asks[i].fd = -1;
	asks_ready = true;
}

/* SendOp sends one request on fd without waiting; false if it did not go. */
static bool
SendOp(int fd, uint8 op)
{
	NxInitRequest req = {.magic = NX_HANDOFF_MAGIC, .version = NX_HANDOFF_VERSION, .op = op};

	return send(fd, &req, sizeof(req), MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t) sizeof(req);
}

/* EndAsk closes an ask (after a RESUME if resume) and frees its slot. */
static void
EndAsk(IdleAsk *ask, bool resume)
{
	if (resume)
		(void) SendOp(ask->fd, NX_INIT_OP_RESUME);
	close(ask->fd);
	ask->fd = -1;
	NxWaitSetChanged();
}

/*
 * StartAsk connects to the deployment's hand-off socket and sends QUIESCE,
 * all without waiting; false (nothing kept) when that did not work: the
 * sandbox is not up, its backlog is full, or nx-init does not read.
 */
static bool
StartAsk(int64 deployment)
{
	char		name[24];
	int			fd;

	for (int i = 0; i < NX_IDLE_MAX_ASKS; i++)
	{
		if (asks[i].fd >= 0)
			continue;
		NxDeploymentName(name, sizeof(name), (long long) deployment);
		fd = NxRunDirConnect(name);
		if (fd < 0)
			return false;
		if (!SendOp(fd, NX_INIT_OP_QUIESCE))
		{
			close(fd);
			return false;
		}
		asks[i].deployment = deployment;
		asks[i].fd = fd;
		asks[i].reply = -1;
		asks[i].deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), NX_INIT_REPLY_TIMEOUT_MS);
		NxWaitSetChanged();
		return true;
	}
	return false;				/* all ask slots busy: the next pass asks */
}

/* Asked: is a QUIESCE for this deployment out already? */
static bool
Asked(int64 deployment)
{
	for (int i = 0; i < NX_IDLE_MAX_ASKS; i++)
	{
		if (asks[i].fd >= 0 && asks[i].deployment == deployment)
			return true;
	}
	return false;
}

/* NxIdleAddWaitEvents adds every ask waiting for its reply to set. */
void
NxIdleAddWaitEvents(WaitEventSet *set)
{
	InitAsks();
	for (int i = 0; i < NX_IDLE_MAX_ASKS; i++)
	{
		if (asks[i].fd >= 0 && asks[i].reply < 0)
			AddWaitEventToSet(set, WL_SOCKET_READABLE, asks[i].fd, NULL, &asks[i]);
	}
}

/* NxIdleOwns: is user_data (of a wait event) one of our asks? */
bool
NxIdleOwns(void *user_data)
{
	return (char *) user_data >= (char *) &asks[0] &&
		(char *) user_data < (char *) &asks[NX_IDLE_MAX_ASKS];
}

/*
 * NxIdleReadable reads the reply of an ask whose socket is readable, without
 * waiting; anything but one well-formed reply counts as "no" (BAD_REQUEST).
 * The loop sees the ask is due (NxIdleAsksDue) and runs a pass to act on it.
 */
void
NxIdleReadable(void *user_data)
{
	IdleAsk    *ask = (IdleAsk *) user_data;
	NxInitReply reply;
	ssize_t		n;

	if (ask->fd < 0 || ask->reply >= 0)
		return;
	n = recv(ask->fd, &reply, sizeof(reply), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == (ssize_t) sizeof(reply) && reply.magic == NX_HANDOFF_MAGIC &&
		reply.version == NX_HANDOFF_VERSION)
		ask->reply = reply.status;
	else
		ask->reply = NX_INIT_BAD_REQUEST;
	NxWaitSetChanged();	/* nothing more to read on it */
}

/* NxIdleAsksDue: has an ask got its reply, or run out of time? */
bool
NxIdleAsksDue(TimestampTz now)
{
	for (int i = 0; i < NX_IDLE_MAX_ASKS; i++)
	{
		if (asks_ready && asks[i].fd >= 0 && (asks[i].reply >= 0 || now >= asks[i].deadline))
			return true;
	}
	return false;
}

/* NxIdleNextDeadlineMs: how long the loop may sleep before an ask times out. */
long
NxIdleNextDeadlineMs(TimestampTz now)
{
	long		best = 60 * 1000;

	for (int i = 0; i < NX_IDLE_MAX_ASKS; i++)
	{
		if (asks_ready && asks[i].fd >= 0 && asks[i].reply < 0)
			best = Min(best, TimestampDifferenceMilliseconds(now, asks[i].deadline));
	}
	return best;
}

/* MarkAsleep runs nx._mark_asleep(deployment) (caller's transaction). */
static bool
MarkAsleep(int64 deployment)
{
	Oid			type = INT8OID;
	Datum		value = Int64GetDatum(deployment);
	bool		isnull;
	Datum		result;

	if (SPI_execute_with_args("SELECT nx._mark_asleep($1)", 1, &type, &value, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "nx supervisor: could not mark deployment " INT64_FORMAT " asleep", deployment);
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return !isnull && DatumGetBool(result);
}

/*
 * FinishAsks acts on the asks that are due: an OK marks the row asleep
 * (each in its own transaction; RESUME if the row changed meanwhile), any
 * other reply leaves the deployment up, and an ask without a reply in time
 * is given up with a RESUME.  Returns whether any row was marked.
 */
static bool
FinishAsks(void)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		any = false;

	for (int i = 0; i < NX_IDLE_MAX_ASKS; i++)
	{
		IdleAsk    *ask = &asks[i];
		bool		marked;

		if (ask->fd < 0)
			continue;
		if (ask->reply < 0)
		{
			if (now >= ask->deadline)
				EndAsk(ask, true);
			continue;
		}
		/* BUSY: a connection was handed out after the router's report */
		if (ask->reply != NX_INIT_OK)
		{
			EndAsk(ask, false);
			continue;
		}
		NxBeginTransaction("nx: idle stop");
		marked = MarkAsleep(ask->deployment);
		NxCommitTransaction();
		EndAsk(ask, !marked);
		any |= marked;
	}
	return any;
}

/*
 * NxStopIdleDeployments finishes the asks that are due, then asks the
 * nx-init of every deployment newly found idle to QUIESCE.  When a row was
 * marked asleep it asks for a converge pass, which stops the deployment.
 * Its list lives in `context` (the caller's pass context), which survives
 * the transactions.
 */
void
NxStopIdleDeployments(MemoryContext context)
{
	List	   *idle = NIL;
	ListCell   *lc;

	InitAsks();
	if (FinishAsks())
		NxRequestConverge();

	NxBeginTransaction("nx: idle");
	if (SPI_execute("SELECT id FROM nx._idle_deployments() AS id", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not look for idle deployments");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64	   *id = MemoryContextAlloc(context, sizeof(int64));

		MemoryContext old;

		*id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		old = MemoryContextSwitchTo(context);
		idle = lappend(idle, id);
		MemoryContextSwitchTo(old);
	}
	NxCommitTransaction();

	foreach(lc, idle)
	{
		int64		deployment = *(int64 *) lfirst(lc);

		if (!Asked(deployment))
			(void) StartAsk(deployment);
	}
}
