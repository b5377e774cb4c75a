/*
 * src/supervisor/userns_premap.c
 *	  A new sandbox's user namespace, mapped when the sandbox is made
 *	  rather than at its first start.
 *
 * userns_keep.c keeps the namespace a first start mapped, so that later
 * starts skip newuidmap and newgidmap.  The first start itself still paid
 * for them: about 13 ms of CPU, a quarter of a start's, which made pushing
 * into hundreds of new sandboxes at once (bench/density.sh) a third slower
 * than starting them again.  So when the converge pass creates a sandbox's
 * role (provision.c), it queues the sandbox here, and the worker loop runs
 * `nx-spawn --map-userns` for it, one at a time and only while no
 * deployment is starting or waiting to: the mapping goes to time the
 * supervisor would spend waiting anyway.  The namespace comes back on a
 * socket and is kept as a first start's would be (NxUsernsCollect): under
 * the same descriptor budget, and forgotten with the sandbox's uid offset.
 *
 * Nothing here is needed for correctness.  A start that comes first maps
 * its own namespace as before (the sandbox is then skipped here, or its
 * second namespace is closed); after a supervisor restart nothing is
 * queued, and each sandbox's next start maps once, as before.  Namespaces
 * mapped ahead leave PREMAP_RESERVE descriptors of the budget to sandboxes
 * that start, so that creating sandboxes never takes the whole budget
 * from those in use.
 */
#include "postgres.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage/fd.h"
#include "utils/timestamp.h"

#include "slots.h"
#include "spawn.h"
#include "userns_keep.h"
#include "userns_premap.h"

/* sandboxes waiting to be mapped; more than this map at their first start */
#define PREMAP_QUEUE 1024

/* a mapping that has not ended after this long is killed */
#define PREMAP_TIMEOUT_MS 10000

/*
 * descriptors left free for the namespaces of sandboxes that do start
 * (and, once the worker's own room is spent, for the seccomp filter,
 * filter_keep.c): namespaces mapped ahead may take the budget only down
 * to this (userns_keep.c: a quarter of what raising the open file limit
 * gained, then about 330 of fd.c's).
 */
#define PREMAP_RESERVE 100

typedef struct PremapWant
{
	int			uid_offset;
	uid_t		uid;
	gid_t		gid;
	char		sandbox[NAMEDATALEN];
} PremapWant;

static PremapWant queue[PREMAP_QUEUE];
static int	queue_head = 0;		/* next to map */
static int	queue_len = 0;
static char helper[MAXPGPATH];	/* nx-spawn, from the last queued host */

/* the mapping under way, if pid > 0 */
static struct
{
	pid_t		pid;
	int			rx;				/* our end of its socket; -1 once forgotten */
	TimestampTz deadline;
	bool		killed;
	PremapWant	want;
}			job = {.pid = 0, .rx = -1};

/*
 * NxUsernsPremapQueue: the pass created sandbox's role just now; map its
 * user namespace once no start waits.  A full queue drops it (its first
 * start maps).
 */
void
NxUsernsPremapQueue(const char *sandbox, int uid_offset, const NxHostSetup *host)
{
	PremapWant *w;

	if (!host->ok || queue_len >= PREMAP_QUEUE || uid_offset <= 0 ||
		(host->slice_size > 0 && uid_offset >= host->slice_size))
		return;
	/* a pass that failed after queueing it queues it again */
	for (int i = 0; i < queue_len; i++)
		if (queue[(queue_head + i) % PREMAP_QUEUE].uid_offset == uid_offset)
			return;
	w = &queue[(queue_head + queue_len) % PREMAP_QUEUE];
	w->uid_offset = uid_offset;
	w->uid = NxTenantUid(host, uid_offset);
	w->gid = NxTenantGid(host, uid_offset);
	strlcpy(w->sandbox, sandbox, sizeof(w->sandbox));
	strlcpy(helper, host->spawn_helper, sizeof(helper));
	queue_len++;
}

/*
 * NxUsernsPremapForget: uid_offset's sandbox is gone.  Drop it from the
 * queue, and leave a mapping under way for it nothing to hand over.
 */
void
NxUsernsPremapForget(int uid_offset)
{
	for (int i = 0; i < queue_len; i++)
	{
		PremapWant *w = &queue[(queue_head + i) % PREMAP_QUEUE];

		if (w->uid_offset == uid_offset)
			w->uid_offset = 0;
	}
	if (job.pid > 0 && job.want.uid_offset == uid_offset && job.rx >= 0)
	{
		close(job.rx);
		job.rx = -1;
	}
}

/* LaunchMapping runs nx-spawn --map-userns for w; false if it could not. */
static bool
LaunchMapping(const PremapWant *w)
{
	posix_spawn_file_actions_t actions;
	char		uid[16],
				gid[16];
	char	   *argv[5];
	char	   *envp[] = {NULL};
	int			tx;
	int			rc;

	if (!NxUsernsExportSocket(&job.rx, &tx))
	{
		ereport(LOG,
				(errmsg("nx supervisor: could not make a socket to map the user namespace of sandbox \"%s\" ahead: %m",
						w->sandbox)));
		return false;
	}
	snprintf(uid, sizeof(uid), "%lu", (unsigned long) w->uid);
	snprintf(gid, sizeof(gid), "%lu", (unsigned long) w->gid);
	argv[0] = helper;
	argv[1] = "--map-userns";
	argv[2] = uid;
	argv[3] = gid;
	argv[4] = NULL;
	/* 0: the socket; 1: nothing; 2 (inherited): the server log */
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_adddup2(&actions, tx, 0);
	posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
	rc = NxSpawnChild(&job.pid, helper, &actions, argv, envp);
	close(tx);
	if (rc != 0)
	{
		ereport(LOG,
				(errmsg("nx supervisor: could not run %s to map the user namespace of sandbox \"%s\": %s",
						helper, w->sandbox, strerror(rc))));
		close(job.rx);
		job.rx = -1;
		job.pid = 0;
		return false;
	}
	job.want = *w;
	job.killed = false;
	job.deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), PREMAP_TIMEOUT_MS);
	return true;
}

/*
 * NxUsernsPremapTick starts the next mapping when none is under way and
 * no deployment starts or waits to (starts_busy), and kills one that
 * outlived PREMAP_TIMEOUT_MS.  If one cannot be launched, nothing more is
 * mapped ahead until new sandboxes are queued: their first starts map.
 */
void
NxUsernsPremapTick(TimestampTz now, bool starts_busy)
{
	if (job.pid > 0)
	{
		if (!job.killed && now >= job.deadline)
		{
			ereport(LOG,
					(errmsg("nx supervisor: mapping the user namespace of sandbox \"%s\" took over %d ms; killed it",
							job.want.sandbox, PREMAP_TIMEOUT_MS)));
			(void) kill(job.pid, SIGKILL);
			job.killed = true;
		}
		return;
	}
	while (queue_len > 0 && !starts_busy)
	{
		PremapWant	w = queue[queue_head];

		queue_head = (queue_head + 1) % PREMAP_QUEUE;
		queue_len--;
		/* forgotten, mapped by a start meanwhile, or something runs as it */
		if (w.uid_offset <= 0 || NxUsernsKept(w.uid_offset) >= 0 || NxSlotsRunOffset(w.uid_offset))
			continue;
		/* if this one cannot go, every later one would fail the same way */
		if (!NxUsernsRoomFor(PREMAP_RESERVE + 1) || !LaunchMapping(&w))
			queue_len = 0;
		return;
	}
}

/*
 * NxUsernsPremapKill: the supervisor is going away; a mapping under way
 * (in a session of its own) must not outlive it.
 */
void
NxUsernsPremapKill(void)
{
	if (job.pid > 0)
		(void) kill(job.pid, SIGKILL);
}

/* NxUsernsPremapDeadlineMs: how long the loop may sleep for our sake. */
long
NxUsernsPremapDeadlineMs(TimestampTz now)
{
	if (job.pid > 0 && !job.killed)
		return Max(0, TimestampDifferenceMilliseconds(now, job.deadline));
	return (queue_len > 0 && job.pid == 0) ? 1000 : LONG_MAX;
}

/*
 * NxUsernsPremapExited: is pid our mapping?  If so, keep the namespace it
 * sent (unless its sandbox went meanwhile or one is kept already).
 */
bool
NxUsernsPremapExited(pid_t pid, int wait_status)
{
	if (job.pid <= 0 || pid != job.pid)
		return false;
	job.pid = 0;
	if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0)
	{
		if (NxUsernsCollect(job.want.uid_offset, &job.rx))
			ereport(LOG,
					(errmsg("nx supervisor: sandbox \"%s\" has its user namespace mapped ahead of its first start (uid offset %d)",
							job.want.sandbox, job.want.uid_offset)));
	}
	else
		ereport(LOG,
				(errmsg("nx supervisor: could not map the user namespace of sandbox \"%s\" ahead of its first start (wait status %d); its first start will",
						job.want.sandbox, wait_status)));
	if (job.rx >= 0)
	{
		close(job.rx);
		job.rx = -1;
	}
	return true;
}
