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
 */
#include "slots.h"
#include "sql_exec.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "nx_handoff.h"

#define NX_INIT_REPLY_TIMEOUT_MS 200

/*
 * AskInit sends one request to a deployment's nx-init and returns its reply
 * status, or -1 when nx-init cannot be reached or does not answer in time.
 */
static int
AskInit(int64 deployment, uint8 op)
{
	char		name[24];
	char		run_dir[MAXPGPATH];
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	NxInitRequest req = {.magic = NX_HANDOFF_MAGIC, .version = NX_HANDOFF_VERSION, .op = op};
	NxInitReply reply;
	struct pollfd pfd;
	int			fd;
	int			status = -1;

	snprintf(name, sizeof(name), "d" INT64_FORMAT, deployment);
	NxStateDirPath(run_dir, "run", name);
	if ((size_t) snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/init.sock", run_dir) >= sizeof(addr.sun_path))
		return -1;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *) &addr, sizeof(addr)) == 0 &&
		send(fd, &req, sizeof(req), MSG_NOSIGNAL) == (ssize_t) sizeof(req))
	{
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, NX_INIT_REPLY_TIMEOUT_MS) == 1 &&
			recv(fd, &reply, sizeof(reply), MSG_DONTWAIT) == (ssize_t) sizeof(reply) &&
			reply.magic == NX_HANDOFF_MAGIC && reply.version == NX_HANDOFF_VERSION)
			status = reply.status;
	}
	close(fd);
	return status;
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
 * NxStopIdleDeployments marks the idle deployments asleep, each in its own
 * transaction, and asks for a converge pass to stop them.  Its list lives
 * in `context` (the caller's pass context), which survives the
 * transactions.
 */
void
NxStopIdleDeployments(MemoryContext context)
{
	List	   *idle = NIL;
	ListCell   *lc;
	bool		any = false;

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
		bool		marked;

		/* BUSY: a connection was handed out after the router's report */
		if (AskInit(deployment, NX_INIT_OP_QUIESCE) != NX_INIT_OK)
			continue;
		NxBeginTransaction("nx: idle stop");
		marked = MarkAsleep(deployment);
		NxCommitTransaction();
		if (marked)
			any = true;
		else
			AskInit(deployment, NX_INIT_OP_RESUME);
	}
	if (any)
		NxRequestConverge();
}
