/*
 * src/supervisor/userns_keep.c
 *	  One mapped user namespace per sandbox, made once and kept.
 *
 * Mapping a new user namespace to a tenant uid costs a fork and two setuid
 * helpers (newuidmap, newgidmap: about 12 ms of a start).  So a new
 * sandbox's namespace is mapped when it is made (userns_premap.c), and
 * otherwise the first start of a sandbox after the supervisor started
 * asks nx-spawn to send the namespace it mapped (a socketpair; nx-spawn
 * sends it with SCM_RIGHTS while still the cluster's uid, before any
 * tenant code runs, and the socket never reaches bwrap or the sandbox).  The supervisor
 * keeps that descriptor, keyed by the sandbox's uid offset, and every
 * later start, restart and wake of the sandbox joins it (nx-spawn
 * --userns-fd, which checks its maps) and creates only its own mount
 * namespace under it; bwrap nests its own user namespace as before.
 *
 * The key is the uid offset, not the sandbox: a namespace maps 0 to a
 * host uid, and an offset is given to a new sandbox only after the old one
 * was dropped (retired offsets), when NxUsernsForget has closed the old
 * descriptor.
 *
 * The descriptors are counted against a budget of their own, not only
 * PostgreSQL's.  fd.c gives a process about a third of max_files_per_process
 * (~330 by default) for descriptors it does not open itself
 * (AcquireExternalFD), which held a namespace for only a third of 1,000
 * sandboxes.  The worker raises its soft RLIMIT_NOFILE to the hard limit
 * (worker.c); fd.c's own budget was computed from the lower limit, so what
 * the raise gained is ours: a quarter of it holds kept namespaces (the rest
 * is for running deployments' pipes).  Only when that is spent does a
 * namespace take one of fd.c's external descriptors; when both are spent
 * a sandbox is simply mapped at each start, as before.  Nothing here is
 * needed for correctness: losing a descriptor (a supervisor restart) costs
 * one mapping.
 */
#include "postgres.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "storage/fd.h"
#include "utils/hsearch.h"

#include "nx_scm.h"
#include "userns_keep.h"

typedef struct KeptUserns
{
	int			uid_offset;		/* hash key */
	int			fd;
	bool		external;		/* counted with AcquireExternalFD */
} KeptUserns;

static HTAB *kept = NULL;

/* descriptors beyond fd.c's budget that kept namespaces may hold */
static int	own_budget = 0;
static int	own_used = 0;

/*
 * NxUsernsSetFileRoom: the worker raised its open file limit by gained
 * descriptors above what fd.c counts; a quarter of them may hold kept
 * namespaces.  Called once, before anything is kept.
 */
void
NxUsernsSetFileRoom(int gained)
{
	own_budget = gained > 0 ? gained / 4 : 0;
}

/*
 * TakeDescriptor counts one more kept descriptor: from our own budget
 * first, then fd.c's external one.  False if both are spent.
 */
static bool
TakeDescriptor(bool *external)
{
	if (own_used < own_budget)
	{
		own_used++;
		*external = false;
		return true;
	}
	*external = true;
	return AcquireExternalFD();
}

/* ReleaseDescriptor gives back what TakeDescriptor counted. */
static void
ReleaseDescriptor(bool external)
{
	if (external)
		ReleaseExternalFD();
	else
		own_used--;
}

/*
 * NxUsernsRoomFor: could `wanted` more namespaces be kept?  (Only counts:
 * a descriptor is taken when a namespace comes back.)
 */
bool
NxUsernsRoomFor(int wanted)
{
	int			got = 0;

	wanted -= own_budget - own_used;
	if (wanted <= 0)
		return true;
	while (got < wanted && AcquireExternalFD())
		got++;
	for (int i = 0; i < got; i++)
		ReleaseExternalFD();
	return got == wanted;
}

/* KeptTable creates the table on first use (TopMemoryContext). */
static HTAB *
KeptTable(void)
{
	if (kept == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int);
		ctl.entrysize = sizeof(KeptUserns);
		kept = hash_create("nx kept user namespaces", 64, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	return kept;
}

/* NxUsernsKept: the kept namespace descriptor of uid_offset, or -1. */
int
NxUsernsKept(int uid_offset)
{
	KeptUserns *k = hash_search(KeptTable(), &uid_offset, HASH_FIND, NULL);

	return k ? k->fd : -1;
}

/*
 * NxUsernsExportSocket makes the socketpair a first start's nx-spawn sends
 * its namespace on: *keep_end is ours (non-blocking, close-on-exec),
 * *child_end goes to nx-spawn and is closed by the caller after the
 * launch.  False if no socket could be made (the start goes on without).
 */
bool
NxUsernsExportSocket(int *keep_end, int *child_end)
{
	int			sv[2];

	*keep_end = *child_end = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0)
		return false;
	*keep_end = sv[0];
	*child_end = sv[1];
	return true;
}

/*
 * IsOurUserns: is fd a user namespace created by our own uid (what
 * nx-spawn made while it was still the cluster's uid)?
 */
static bool
IsOurUserns(int fd)
{
	uid_t		owner;

	return ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWUSER &&
		ioctl(fd, NS_GET_OWNER_UID, &owner) == 0 && owner == geteuid();
}

/*
 * NxUsernsCollect reads the namespace a first start, or a mapping ahead
 * (userns_premap.c), sent on *keep_end (if it did: call it once the
 * deployment is ready, long after nx-spawn's mapping step, or once the
 * mapping's nx-spawn exited) and keeps it for uid_offset unless one is
 * kept already or the descriptor budgets are spent.  *keep_end is closed either way.  True
 * if the namespace it sent is now the one kept for uid_offset.
 */
bool
NxUsernsCollect(int uid_offset, int *keep_end)
{
	int			fd;
	bool		found;
	bool		external;
	KeptUserns *k;

	if (*keep_end < 0)
		return false;
	fd = nx_scm_recv_fd(*keep_end, MSG_DONTWAIT);
	close(*keep_end);
	*keep_end = -1;
	if (fd < 0)
		return false;
	if (!IsOurUserns(fd) || NxUsernsKept(uid_offset) >= 0 || !TakeDescriptor(&external))
	{
		close(fd);
		return false;
	}
	k = hash_search(KeptTable(), &uid_offset, HASH_ENTER, &found);
	k->fd = fd;
	k->external = external;
	ereport(DEBUG1,
			(errmsg_internal("nx supervisor: kept the user namespace of uid offset %d for later starts",
							 uid_offset)));
	return true;
}

/*
 * NxUsernsForget closes the kept namespace of uid_offset (its sandbox was
 * dropped; the offset may go to a new sandbox once nothing runs as it).
 * Running processes keep the namespace alive as long as they need it.
 */
void
NxUsernsForget(int uid_offset)
{
	KeptUserns *k = hash_search(KeptTable(), &uid_offset, HASH_FIND, NULL);

	if (k == NULL)
		return;
	close(k->fd);
	ReleaseDescriptor(k->external);
	hash_search(KeptTable(), &uid_offset, HASH_REMOVE, NULL);
}
