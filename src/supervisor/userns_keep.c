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
 * descriptor.  Descriptors are counted with AcquireExternalFD; when the
 * budget is spent a sandbox is simply mapped at each start, as before.
 * Nothing here is needed for correctness: losing a descriptor (a
 * supervisor restart) costs one mapping.
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
} KeptUserns;

static HTAB *kept = NULL;

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
 * kept already or the descriptor budget is spent.  *keep_end is closed either way.  True
 * if the namespace it sent is now the one kept for uid_offset.
 */
bool
NxUsernsCollect(int uid_offset, int *keep_end)
{
	int			fd;
	bool		found;
	KeptUserns *k;

	if (*keep_end < 0)
		return false;
	fd = nx_scm_recv_fd(*keep_end, MSG_DONTWAIT);
	close(*keep_end);
	*keep_end = -1;
	if (fd < 0)
		return false;
	if (!IsOurUserns(fd) || NxUsernsKept(uid_offset) >= 0 || !AcquireExternalFD())
	{
		close(fd);
		return false;
	}
	k = hash_search(KeptTable(), &uid_offset, HASH_ENTER, &found);
	k->fd = fd;
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
	ReleaseExternalFD();
	hash_search(KeptTable(), &uid_offset, HASH_REMOVE, NULL);
}
