/*
 * src/supervisor/slots.c
 *	  One slot per deployment the supervisor runs: spawning it, reading its
 *	  output and status pipes, noticing readiness and exits, restarting
 *	  with backoff, and stopping it (SIGTERM, grace, SIGKILL of its whole
 *	  cgroup: a parent-death signal is never relied on alone).
 *
 * Adoption: bwrap's first process stays outside the sandbox only to wait
 * for nx-init, and costs each sandbox a process (its page tables, kernel
 * stack, slab and about 150 kB of its own pages).  Once the app is ready,
 * SlotRetireMonitor ends it (SIGKILL); nx-init, whose parent it was, is
 * reparented to the supervisor (a child subreaper, NxSlotsInit) and from then
 * on is the slot's process.  When the monitor's exit is reaped, nx-init is
 * told (NX_INIT_ADOPTED_SIGNAL) and ties its life to the supervisor's.
 * Should nx-init have ended before the monitor did (the monitor reaped it,
 * not us), the monitor's exit is the slot's.
 *
 * Slots live in a hash table in TopMemoryContext, keyed by deployment id.
 * Each state change marks the slot dirty; converge.c writes dirty slots to
 * nx.runtime.  Each slot remembers the row it last wrote (`written`), so a
 * row whose values did not change is not written again: with a thousand
 * deployments, a pass costs the rows that changed, not a thousand updates.
 * When a write is rolled back (NxSlotsRuntimeUnknown) every slot forgets
 * what it wrote and the next write looks at all of them.
 *
 * Reading a sandbox's pipes costs the supervisor CPU the sandbox's own
 * limits do not cover, and a tenant decides how much it writes (its
 * output, and nx-init's status pipe should it ever get hold of it).  So
 * the reads are bounded twice: per wake-up, at most NX_READ_BUDGET bytes
 * of output and NX_STATUS_BUDGET bytes of status lines per slot, so that
 * one sandbox cannot starve the others; and per second (windows aligned
 * to the clock), at most NX_PIPE_WINDOW_BUDGET bytes of output and
 * NX_STATUS_WINDOW_BUDGET bytes of status lines (a few lines in a
 * deployment's whole life; each costs more to parse than output to copy)
 * per slot: past either, its pipes leave the watched set (pipe_watch.c)
 * until the next window, the pipe fills and the writer blocks.  A sandbox
 * can so make the supervisor do a bounded amount of work per second,
 * however it floods.
 */
#include "events.h"
#include "files.h"
#include "filter_keep.h"
#include "pipe_watch.h"
#include "requests.h"
#include "slots.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "nx_handoff.h"
#include "rundir.h"
#include "userns_keep.h"

#define NX_READ_BUDGET (64 * 1024)	/* output bytes per slot per wake-up */
#define NX_STATUS_BUDGET 1024	/* status bytes per slot per wake-up */
#define NX_PIPE_WINDOW_MS 1000
#define NX_PIPE_WINDOW_BUDGET (4 * 1024 * 1024) /* output bytes per window */
#define NX_STATUS_WINDOW_BUDGET 4096	/* status bytes per window */
#define NX_CRASH_WINDOW_MS (60 * 1000)
#define NX_CRASHLOOP_AFTER 5
#define NX_BACKOFF_MIN_MS 250
#define NX_BACKOFF_MAX_MS (30 * 1000)

typedef enum NxSlotState
{
	NX_SLOT_STARTING,
	NX_SLOT_READY,
	NX_SLOT_STOPPING,
	NX_SLOT_CRASHED,			/* waiting for its backoff to end */
	NX_SLOT_CRASHLOOP,
	NX_SLOT_FAILED,
	NX_SLOT_IDLE,				/* nothing runs: stopped */
	NX_SLOT_PENDING				/* wanted, not started yet (last_error: why) */
} NxSlotState;

static const char *const state_names[] = {
	"starting", "ready", "stopping", "crashed", "crashloop", "failed", "stopped", "pending"
};

typedef struct NxSlot
{
	int64		deployment;		/* hash key */
	char		key[40];		/* "c<cluster>_d<id>": its cgroup */
	char		name[24];		/* "d<id>": its run dir and log under $PGDATA */
	int			uid_offset;		/* of its sandbox, as last started */
	char		sandbox[64];
	char		owner[NAMEDATALEN];
	int			generation;		/* restart_generation it runs */
	NxSlotState state;
	bool		wanted;			/* the current pass wants it running */
	bool		restart_pending;	/* stop, then start again */
	bool		waiting_turn;	/* pending for a start slot, not yet asked
								 * for on the start fast path */
	bool		dirty;			/* nx.runtime needs this row rewritten */
	pid_t		pid;			/* nx-spawn, then bwrap; nx-init once adopted;
								 * 0 = none */
	bool		adopted;		/* pid is nx-init, bwrap's monitor ended */
	bool		init_up;		/* nx-init said "up": a SIGTERM now reaches it */
	pid_t		monitor_pid;	/* bwrap's monitor, ended, not yet reaped */
	int			output_fd;		/* app stdout+stderr, read end; -1 */
	int			status_fd;		/* nx-init status lines, read end; -1 */
	int			userns_rx;		/* where a first start sends its mapped user
								 * namespace (userns_keep.c); -1 */
	char		status_buf[128];
	int			status_len;
	int64		window;			/* the pipe window the counts below are for */
	int64		window_bytes;	/* output read in that window */
	int			window_status;	/* status bytes read in that window */
	bool		pipes_paused;	/* out of the wait set until the next window */
	TimestampTz started_at;
	TimestampTz ready_at;
	TimestampTz deadline;		/* start timeout, stop grace or backoff end */
	int			restarts;
	int			crashes;		/* in the current crash window */
	TimestampTz crash_window_start;
	int			exit_code;		/* -1 = none yet */
	int			exit_signal;
	char		last_error[256];
	NxLogFile	log;
	int64		memory_bytes;	/* cgroup statistics as last read; -1 none */
	int64		cpu_usec;
	bool		row_written;	/* `written` is what nx.runtime holds */
	NxRuntimeRow written;		/* its last_error points to written_error */
	char		written_error[256];
} NxSlot;

static HTAB *slots = NULL;
static int	starting_count = 0;	/* slots in NX_SLOT_STARTING */
static bool starts_deferred = false;	/* a wanted slot waits for a start slot */
static int	max_starts = 8;		/* MaxConcurrentStarts(), read once per pass */
static bool flush_needed = false;
static bool runtime_unknown = false;	/* a write was rolled back */
static int64 *gone_ids = NULL;	/* slots forgotten since the last write */
static int	gone_count = 0;
static int	gone_size = 0;

static bool can_adopt = false;	/* we are a child subreaper */

static void SlotReadStatus(NxSlot *slot);
static void SlotProcessEnded(NxSlot *slot, int wait_status);
static void SlotReadOutput(NxSlot *slot);
static int	MaxConcurrentStarts(void);

/*
 * NxSlotsInit creates the table and the state directories, and makes the
 * supervisor a child subreaper, so that nx-init can be adopted (see
 * Adoption above; every orphan below us is then ours to reap, too).
 */
void
NxSlotsInit(void)
{
	HASHCTL		ctl;

	can_adopt = prctl(PR_SET_CHILD_SUBREAPER, 1) == 0;
	if (!can_adopt)
		ereport(LOG,
				(errmsg("nx supervisor: could not become a child subreaper: %m"),
				 errdetail("Every sandbox keeps bwrap's monitor process.")));

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(NxSlot);
	ctl.hcxt = TopMemoryContext;
	slots = hash_create("nx slots", 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	NxPipeWatchInit();
	NxEnsureStateDirs();
}

/*
 * QueueWaitingStarts: a start slot came free while deployments wait for
 * their turn.  The oldest of them (lowest ids: pushed first), as many as
 * there are free start slots, are asked for on the start fast path, which
 * reads only their rows (in one statement): a mass start then costs a row
 * read per deployment, where a converge pass per finished start read every
 * deployment each time.  With none marked (a pass deferred them before
 * this supervisor marked any), a pass is asked for as before.
 */
static void
QueueWaitingStarts(void)
{
	int64		pick[NX_WAKE_QUEUE];
	int			npick = 0;
	int			room = Min(max_starts - starting_count, NX_WAKE_QUEUE);
	HASH_SEQ_STATUS seq;
	NxSlot	   *slot;

	if (room <= 0)
		return;
	hash_seq_init(&seq, slots);
	while ((slot = hash_seq_search(&seq)) != NULL)
	{
		int			i;

		if (!slot->waiting_turn || slot->state != NX_SLOT_PENDING)
			continue;
		if (npick == room && slot->deployment >= pick[npick - 1])
			continue;
		/* keep pick[] the `room` lowest ids, sorted */
		i = npick < room ? npick++ : npick - 1;
		while (i > 0 && pick[i - 1] > slot->deployment)
		{
			pick[i] = pick[i - 1];
			i--;
		}
		pick[i] = slot->deployment;
	}
	if (npick == 0)
	{
		NxRequestConverge();
		return;
	}
	for (int i = 0; i < npick; i++)
	{
		slot = hash_search(slots, &pick[i], HASH_FIND, NULL);
		slot->waiting_turn = false;
		NxRequestStart(pick[i]);
	}
}

/*
 * SlotSetState changes state and records that nx.runtime must follow.  It
 * also keeps count of the slots starting; when one is done starting and
 * others wait for their turn, the next ones are asked for
 * (QueueWaitingStarts).
 */
static void
SlotSetState(NxSlot *slot, NxSlotState state)
{
	if (slot->state == NX_SLOT_STARTING && state != NX_SLOT_STARTING)
	{
		starting_count--;
		if (starts_deferred)
			QueueWaitingStarts();
	}
	else if (slot->state != NX_SLOT_STARTING && state == NX_SLOT_STARTING)
		starting_count++;
	slot->state = state;
	slot->dirty = true;
	flush_needed = true;
}

/* CloseFd closes *fd if open and forgets it. */
static void
CloseFd(int *fd)
{
	if (*fd >= 0)
	{
		close(*fd);
		*fd = -1;
	}
}

/*
 * PipeKey: how the watched set (pipe_watch.c) names a slot's pipe: by
 * deployment, never by pointer, so that a late event finds no slot
 * rather than a freed one.
 */
static inline uint64
PipeKey(int64 deployment, bool status)
{
	return ((uint64) deployment << 1) | (status ? 1 : 0);
}

/* WatchPipes has the loop wait on the slot's open pipes. */
static void
WatchPipes(NxSlot *slot)
{
	if (slot->output_fd >= 0)
		NxPipeWatch(slot->output_fd, PipeKey(slot->deployment, false));
	if (slot->status_fd >= 0)
		NxPipeWatch(slot->status_fd, PipeKey(slot->deployment, true));
}

/* UnwatchPipes: the loop no longer waits on the slot's pipes. */
static void
UnwatchPipes(NxSlot *slot)
{
	if (slot->output_fd >= 0)
		NxPipeUnwatch(slot->output_fd);
	if (slot->status_fd >= 0)
		NxPipeUnwatch(slot->status_fd);
}

/* ClosePipe closes a slot's pipe *fd, if open, once it is not watched. */
static void
ClosePipe(int *fd)
{
	if (*fd >= 0)
		NxPipeUnwatch(*fd);
	CloseFd(fd);
}

/*
 * SlotInitPid returns the host pid of the sandbox's first process (nx-init,
 * pid 1 inside), the only child of bwrap; 0 when there is none.
 */
static pid_t
SlotInitPid(NxSlot *slot)
{
	char		path[64];
	FILE	   *f;
	int			child = 0;

	if (slot->pid <= 0)
		return 0;
	if (slot->adopted)
		return slot->pid;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int) slot->pid, (int) slot->pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%d", &child) != 1)
		child = 0;
	fclose(f);
	return (pid_t) child;
}

/*
 * SlotKill ends everything the slot runs at once: every process in its
 * cgroup, and the bwrap process itself.  The pid is reaped by the loop.
 */
static void
SlotKill(NxSlot *slot, const NxCgroupLayout *cgroups)
{
	if (cgroups != NULL && cgroups->mode != NX_CGROUP_NONE)
		NxCgroupKill(cgroups, slot->key);
	if (slot->pid > 0)
	{
		pid_t		init = SlotInitPid(slot);

		if (init > 0 && init != slot->pid)
			kill(init, SIGKILL);
		kill(slot->pid, SIGKILL);
	}
}

/*
 * SlotRetireMonitor ends bwrap's monitor process once nx-init runs the
 * app (see Adoption in the header comment); nx-init becomes the slot's
 * process.  With no nx-init found, the monitor stays: nothing is lost but
 * the memory it costs.
 */
static void
SlotRetireMonitor(NxSlot *slot)
{
	pid_t		init;

	if (!can_adopt || slot->pid <= 0 || slot->adopted)
		return;
	init = SlotInitPid(slot);
	if (init <= 0 || kill(slot->pid, SIGKILL) != 0)
		return;
	slot->monitor_pid = slot->pid;
	slot->pid = init;
	slot->adopted = true;
}

/*
 * SlotMonitorExited: the retired monitor of slot was reaped, so nx-init
 * has been reparented to us by now, unless it had ended first and the
 * monitor reaped it; then the monitor's status is the slot's end.
 */
static void
SlotMonitorExited(NxSlot *slot, int wait_status)
{
	siginfo_t	info;

	slot->monitor_pid = 0;
	memset(&info, 0, sizeof(info));
	if (waitid(P_PID, slot->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
	{
		SlotProcessEnded(slot, wait_status);
		return;
	}
	/* still running (si_pid 0), or exited and reaped on our next round */
	if (info.si_pid == 0)
		kill(slot->pid, NX_INIT_ADOPTED_SIGNAL);
}

/* the host setup of the current pass (for cgroup kills between passes) */
static NxHostSetup current_host;
static bool have_host = false;

/* SlotReleased frees what a slot held once its process is gone. */
static void
SlotReleased(NxSlot *slot)
{
	ClosePipe(&slot->output_fd);
	ClosePipe(&slot->status_fd);
	CloseFd(&slot->userns_rx);
	NxLogClose(&slot->log);
	if (have_host && current_host.cgroups.mode != NX_CGROUP_NONE)
	{
		NxCgroupKill(&current_host.cgroups, slot->key);
		NxCgroupRemove(&current_host.cgroups, slot->key);
	}
	NxRunDirRemove(slot->name);
	slot->pid = 0;
	slot->adopted = false;
	slot->init_up = false;
	slot->monitor_pid = 0;
	slot->status_len = 0;
	slot->pipes_paused = false;
	slot->memory_bytes = slot->cpu_usec = -1;
}

/* MakePipe creates a pipe whose read end we keep (non-blocking, close-on-exec). */
static bool
MakePipe(int *read_end, int *write_end)
{
	int			fds[2];

	if (pipe2(fds, O_CLOEXEC) != 0)
		return false;
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	*read_end = fds[0];
	*write_end = fds[1];
	return true;
}

/*
 * SlotStart spawns the deployment described by row.  On failure the slot
 * is marked failed with the reason (nothing is left running).
 */
static void
SlotStart(NxSlot *slot, const NxDeploymentRow *row, const NxHostSetup *host)
{
	NxSandboxSpec spec;
	char		err[NX_RUNTIME_ERRLEN];
	const char *binary;
	int			output_w = -1,
				status_w = -1,
				listen_fd = -1,
				userns_w = -1;
	pid_t		pid;

	slot->waiting_turn = false;
	memset(&spec, 0, sizeof(spec));
	binary = NxBlobPath(row->blob, err, sizeof(err));
	if (binary == NULL)
		goto fail;
	if (host->cgroups.mode != NX_CGROUP_NONE &&
		!NxCgroupCreate(&host->cgroups, slot->key, &row->limits, err, sizeof(err)))
		goto fail;
	/* the hand-off socket: ours, passed to nx-init as a descriptor (C1) */
	listen_fd = NxRunDirListen(slot->name, err, sizeof(err));
	if (listen_fd < 0)
		goto fail;
	if (slot->log.fd < 0 && !NxLogOpen(&slot->log, slot->name))
	{
		snprintf(err, sizeof(err), "could not open log file %s: %s", slot->log.path, strerror(errno));
		goto fail;
	}
	if (!MakePipe(&slot->output_fd, &output_w) || !MakePipe(&slot->status_fd, &status_w))
	{
		snprintf(err, sizeof(err), "could not create pipes: %s", strerror(errno));
		goto fail;
	}

	spec.key = slot->key;
	spec.hostname = row->sandbox;
	spec.tenant_uid = NxTenantUid(host, row->uid_offset);
	spec.tenant_gid = NxTenantGid(host, row->uid_offset);
	spec.spawn_helper = host->spawn_helper;
	spec.bwrap = nx_bwrap_path;
	spec.init = host->init;
	spec.binary = binary;
	spec.binary_name = row->binary_name;
	spec.pg_socket = host->pg_socket[0] ? host->pg_socket : NULL;
	spec.argv = row->argv;
	spec.envp = row->envp;
	spec.limits = row->limits;
	spec.cgroups = &host->cgroups;
	spec.stdout_fd = output_w;
	spec.stderr_fd = output_w;
	spec.status_fd = status_w;
	spec.listen_fd = listen_fd;
	spec.seccomp_fd = NxSeccompFilterFd(host->spawn_helper);
	/* the sandbox's user namespace: kept from an earlier start, or mapped */
	spec.userns_fd = NxUsernsKept(row->uid_offset);
	if (spec.userns_fd < 0)
	{
		CloseFd(&slot->userns_rx);
		if (NxUsernsExportSocket(&slot->userns_rx, &userns_w))
			spec.userns_out_fd = userns_w;
		ereport(LOG,
				(errmsg("nx supervisor: deployment " INT64_FORMAT " of sandbox \"%s\" maps a new user namespace for uid offset %d",
						slot->deployment, slot->sandbox, row->uid_offset)));
	}
	pid = NxSandboxLaunch(&spec, err, sizeof(err));
	close(output_w);
	close(status_w);
	close(listen_fd);
	if (userns_w >= 0)
		close(userns_w);
	output_w = status_w = listen_fd = userns_w = -1;
	if (pid <= 0)
		goto fail;

	slot->pid = pid;
	slot->uid_offset = row->uid_offset;
	slot->generation = row->generation;
	slot->started_at = GetCurrentTimestamp();
	slot->ready_at = 0;
	slot->deadline = TimestampTzPlusMilliseconds(slot->started_at, nx_start_timeout);
	slot->last_error[0] = '\0';
	WatchPipes(slot);
	SlotSetState(slot, NX_SLOT_STARTING);
	return;

fail:
	if (output_w >= 0)
		close(output_w);
	if (status_w >= 0)
		close(status_w);
	if (listen_fd >= 0)
		close(listen_fd);
	if (userns_w >= 0)
		close(userns_w);
	SlotReleased(slot);
	strlcpy(slot->last_error, err, sizeof(slot->last_error));
	SlotSetState(slot, NX_SLOT_FAILED);
	ereport(LOG, (errmsg("nx supervisor: could not start deployment " INT64_FORMAT " of sandbox \"%s\": %s",
						 slot->deployment, slot->sandbox, err)));
	NxQueueEvent("start_failed", slot->sandbox, slot->owner, slot->deployment,
				 NxJsonObject1("error", err));
}

/*
 * SlotStop begins a stop: SIGTERM to nx-init, SIGKILL at the deadline; a
 * slot whose nx-init has not said "up" yet is killed at once (below).
 */
static void
SlotStop(NxSlot *slot)
{
	if (slot->pid <= 0)
	{
		SlotReleased(slot);
		SlotSetState(slot, NX_SLOT_IDLE);
		return;
	}
	if (slot->state == NX_SLOT_STOPPING)
		return;

	/*
	 * Until nx-init says "up", the sandbox's pid 1 (bwrap's child setting
	 * the sandbox up, then nx-init before it blocks its signals) has no
	 * SIGTERM handler, and the kernel drops such a signal sent to a pid
	 * namespace's init: the stop would wait its whole grace for the
	 * SIGKILL.  The app does not run yet (nx-init starts it only after
	 * "up"), so there is nothing to stop gracefully: end it now.  The
	 * status pipe is read first, for an "up" already written.
	 */
	if (slot->state == NX_SLOT_STARTING && !slot->init_up && slot->status_fd >= 0)
		SlotReadStatus(slot);
	if (slot->state == NX_SLOT_STARTING && !slot->init_up)
		SlotKill(slot, have_host ? &current_host.cgroups : NULL);
	else
	{
		pid_t		init = SlotInitPid(slot);

		kill(init > 0 ? init : slot->pid, SIGTERM);
	}
	slot->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), nx_stop_timeout);
	SlotSetState(slot, NX_SLOT_STOPPING);
}

/* SlotLogTail returns the last bytes of the slot's log, for events. */
static char *
SlotLogTail(NxSlot *slot, int max_bytes)
{
	char	   *tail = NxReadFileTail(slot->log.path, max_bytes, NULL);

	return tail ? tail : pstrdup("");
}

/*
 * SlotProcessEnded handles the end of a slot's process: the end of a stop,
 * or a crash (restart after backoff, or crashloop after too many).
 */
static void
SlotProcessEnded(NxSlot *slot, int wait_status)
{
	TimestampTz now;
	NxSlotState was;
	int			backoff;

	/*
	 * What it wrote just before exiting may still sit in the pipes: nx-init's
	 * exit status line, and the app's last output (often why it crashed).
	 * One more bounded read of each, before the pipes are closed.
	 */
	if (slot->status_fd >= 0)
		SlotReadStatus(slot);
	if (slot->output_fd >= 0)
		SlotReadOutput(slot);
	now = GetCurrentTimestamp();
	was = slot->state;

	/* nx-init reported the app's own status on its pipe; else use bwrap's */
	if (slot->exit_code < 0 && slot->exit_signal == 0)
	{
		if (WIFEXITED(wait_status))
			slot->exit_code = WEXITSTATUS(wait_status);
		else if (WIFSIGNALED(wait_status))
			slot->exit_signal = WTERMSIG(wait_status);
	}
	SlotReleased(slot);

	if (was == NX_SLOT_STOPPING || was == NX_SLOT_FAILED || !slot->wanted)
	{
		if (was != NX_SLOT_FAILED)
			SlotSetState(slot, NX_SLOT_IDLE);
		/* a restart, or a stop that raced with a new start: act now */
		if (slot->wanted)
			NxRequestConverge();
		return;
	}

	/* an unexpected exit */
	if (slot->crashes == 0 ||
		TimestampDifferenceExceeds(slot->crash_window_start, now, NX_CRASH_WINDOW_MS))
	{
		slot->crashes = 0;
		slot->crash_window_start = now;
	}
	slot->crashes++;
	if (slot->crashes >= NX_CRASHLOOP_AFTER)
	{
		snprintf(slot->last_error, sizeof(slot->last_error),
				 "exited %d times within %d seconds", slot->crashes, NX_CRASH_WINDOW_MS / 1000);
		SlotSetState(slot, NX_SLOT_CRASHLOOP);
		NxQueueEvent("crashloop", slot->sandbox, slot->owner, slot->deployment,
					 NxJsonObject1("last_log", SlotLogTail(slot, 2048)));
		return;
	}
	backoff = Min(NX_BACKOFF_MAX_MS, NX_BACKOFF_MIN_MS << (slot->crashes - 1));
	slot->deadline = TimestampTzPlusMilliseconds(now, backoff);
	SlotSetState(slot, NX_SLOT_CRASHED);
	NxQueueEvent("crash", slot->sandbox, slot->owner, slot->deployment,
				 psprintf("{\"exit_code\": %d, \"signal\": %d, \"restart_in_ms\": %d}",
						  slot->exit_code, slot->exit_signal, backoff));
}

/* NxSlotChildExited finds the slot whose process pid was and ends it. */
void
NxSlotChildExited(pid_t pid, int wait_status)
{
	HASH_SEQ_STATUS seq;
	NxSlot	   *slot;

	hash_seq_init(&seq, slots);
	while ((slot = hash_seq_search(&seq)) != NULL)
	{
		if (slot->pid == pid)
		{
			hash_seq_term(&seq);
			SlotProcessEnded(slot, wait_status);
			return;
		}
		if (slot->monitor_pid == pid)
		{
			hash_seq_term(&seq);
			SlotMonitorExited(slot, wait_status);
			return;
		}
	}
}

/* SlotStatusLine handles one line nx-init wrote on the status pipe. */
static void
SlotStatusLine(NxSlot *slot, const char *line)
{
	int			value;

	if (strcmp(line, "up") == 0)
		slot->init_up = true;
	else if (strcmp(line, "ready") == 0 && slot->state == NX_SLOT_STARTING)
	{
		slot->ready_at = GetCurrentTimestamp();
		slot->crashes = slot->crashes > 0 ? slot->crashes : 0;
		SlotSetState(slot, NX_SLOT_READY);
		/* nx-spawn mapped and sent the namespace long before this */
		NxUsernsCollect(slot->uid_offset, &slot->userns_rx);
		SlotRetireMonitor(slot);
	}
	else if (sscanf(line, "exited %d", &value) == 1)
	{
		slot->exit_code = value;
		slot->exit_signal = 0;
		slot->dirty = flush_needed = true;
	}
	else if (sscanf(line, "killed %d", &value) == 1)
	{
		slot->exit_code = -1;
		slot->exit_signal = value;
		slot->dirty = flush_needed = true;
	}
}

/*
 * SlotCharge counts n bytes read from the slot's output (or status) pipe
 * against its window's budget, and takes its pipes out of the wait set
 * when a budget is spent (NxSlotsTick puts them back at the next window).
 */
static void
SlotCharge(NxSlot *slot, ssize_t n, bool status)
{
	int64		window = GetCurrentTimestamp() / (NX_PIPE_WINDOW_MS * INT64CONST(1000));

	if (window != slot->window)
	{
		slot->window = window;
		slot->window_bytes = 0;
		slot->window_status = 0;
	}
	if (status)
		slot->window_status += n;
	else
		slot->window_bytes += n;
	if ((slot->window_bytes >= NX_PIPE_WINDOW_BUDGET ||
		 slot->window_status >= NX_STATUS_WINDOW_BUDGET) && !slot->pipes_paused)
	{
		slot->pipes_paused = true;
		UnwatchPipes(slot);
	}
}

/*
 * SlotReadStatus reads nx-init's status lines without blocking, at most
 * NX_STATUS_BUDGET bytes per call.
 */
static void
SlotReadStatus(NxSlot *slot)
{
	ssize_t		n = -1;
	int			budget = NX_STATUS_BUDGET;

	while (budget > 0 &&
		   (n = read(slot->status_fd, slot->status_buf + slot->status_len,
					 sizeof(slot->status_buf) - 1 - slot->status_len)) > 0)
	{
		char	   *nl;

		budget -= n;
		SlotCharge(slot, n, true);
		slot->status_len += n;
		slot->status_buf[slot->status_len] = '\0';
		while ((nl = strchr(slot->status_buf, '\n')) != NULL)
		{
			*nl = '\0';
			SlotStatusLine(slot, slot->status_buf);
			slot->status_len -= (nl + 1 - slot->status_buf);
			memmove(slot->status_buf, nl + 1, slot->status_len + 1);
		}
		/* a line longer than the buffer is not ours: drop it */
		if (slot->status_len >= (int) sizeof(slot->status_buf) - 1)
			slot->status_len = 0;
	}
	if (n == 0)
		ClosePipe(&slot->status_fd);
}

/* SlotReadOutput copies at most NX_READ_BUDGET bytes of output to the log. */
static void
SlotReadOutput(NxSlot *slot)
{
	static char buf[65536];
	int			budget = NX_READ_BUDGET;
	ssize_t		n = -1;

	while (budget > 0 && (n = read(slot->output_fd, buf, Min(budget, (int) sizeof(buf)))) > 0)
	{
		NxLogAppend(&slot->log, buf, n);
		SlotCharge(slot, n, false);
		budget -= n;
	}
	if (n == 0)
		ClosePipe(&slot->output_fd);
}

/*
 * NxSlotsReadPipes reads the pipes the watched set says are readable (the
 * loop calls it when NxPipeWatchFd is); false if nothing was read.
 */
bool
NxSlotsReadPipes(void)
{
	uint64		keys[64];
	int			n = NxPipeWatchReady(keys, lengthof(keys));
	bool		read_any = false;

	for (int i = 0; i < n; i++)
	{
		int64		deployment = (int64) (keys[i] >> 1);
		bool		status = (keys[i] & 1) != 0;
		NxSlot	   *slot = hash_search(slots, &deployment, HASH_FIND, NULL);

		/* gone, or paused by an earlier pipe of this round */
		if (slot == NULL || slot->pipes_paused)
			continue;
		if (status && slot->status_fd >= 0)
			SlotReadStatus(slot);
		else if (!status && slot->output_fd >= 0)
			SlotReadOutput(slot);
		else
			continue;
		read_any = true;
	}
	return read_any;
}

/*
 * NxSlotsTick acts on deadlines: a start that did not become ready, a stop
 * whose grace ran out, a crashed slot whose backoff ended.
 */
void
NxSlotsTick(TimestampTz now)
{
	HASH_SEQ_STATUS seq;
	NxSlot	   *slot;
	int64		window = now / (NX_PIPE_WINDOW_MS * INT64CONST(1000));

	hash_seq_init(&seq, slots);
	while ((slot = hash_seq_search(&seq)) != NULL)
	{
		/* a new pipe window: its pipes are watched again */
		if (slot->pipes_paused && window != slot->window)
		{
			slot->pipes_paused = false;
			WatchPipes(slot);
		}
		if (slot->deadline == 0 || now < slot->deadline)
			continue;
		switch (slot->state)
		{
			case NX_SLOT_STARTING:
				snprintf(slot->last_error, sizeof(slot->last_error),
						 "not listening on its port within nx.start_timeout (%d ms)", nx_start_timeout);
				SlotKill(slot, have_host ? &current_host.cgroups : NULL);
				SlotSetState(slot, NX_SLOT_FAILED);
				NxQueueEvent("failed", slot->sandbox, slot->owner, slot->deployment,
							 NxJsonObject1("last_log", SlotLogTail(slot, 2048)));
				break;
			case NX_SLOT_STOPPING:
				SlotKill(slot, have_host ? &current_host.cgroups : NULL);
				break;
			case NX_SLOT_CRASHED:
				/* the next converge pass starts it again */
				NxRequestConverge();
				break;
			default:
				break;
		}
		slot->deadline = 0;
	}
}

/* NxSlotsNextDeadlineMs: how long the loop may sleep before a deadline. */
long
NxSlotsNextDeadlineMs(TimestampTz now)
{
	HASH_SEQ_STATUS seq;
	NxSlot	   *slot;
	long		best = 60 * 1000;

	hash_seq_init(&seq, slots);
	while ((slot = hash_seq_search(&seq)) != NULL)
	{
		if (slot->deadline != 0)
			best = Min(best, TimestampDifferenceMilliseconds(now, slot->deadline));
		if (slot->pipes_paused)
			best = Min(best, TimestampDifferenceMilliseconds(now,
															 (slot->window + 1) * NX_PIPE_WINDOW_MS * INT64CONST(1000)));
	}
	return best;
}

bool
NxSlotsNeedFlush(void)
{
	return flush_needed;
}

/* NxSlotsBeginPass: nothing is wanted until converge says so again. */
void
NxSlotsBeginPass(void)
{
	HASH_SEQ_STATUS seq;
	NxSlot	   *slot;

	hash_seq_init(&seq, slots);
	while ((slot = hash_seq_search(&seq)) != NULL)
		slot->wanted = false;
	starts_deferred = false;
	/* settings change only between passes; sysconf reads a file each call */
	max_starts = MaxConcurrentStarts();
}

/*
 * MaxConcurrentStarts: nx.max_concurrent_starts, or 4 per CPU (at least
 * 8).  Starting a sandbox is mostly CPU (namespaces, bwrap, the app's own
 * start-up); starting a thousand at once on two CPUs measured 835 of
 * 1,000 failing nx.start_timeout (bench/density.sh).
 */
static int
MaxConcurrentStarts(void)
{
	long		cpus;

	if (nx_max_concurrent_starts > 0)
		return nx_max_concurrent_starts;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	return Max(8, 4 * (int) Max(cpus, 1));
}

/*
 * SlotWaitFor records why a wanted slot cannot start yet (MayStartNow
 * marks it waiting for its turn afterwards, when that is why).
 */
static void
SlotWaitFor(NxSlot *slot, const char *why)
{
	slot->waiting_turn = false;
	if (slot->state != NX_SLOT_PENDING || strcmp(slot->last_error, why) != 0)
	{
		strlcpy(slot->last_error, why, sizeof(slot->last_error));
		SlotSetState(slot, NX_SLOT_PENDING);
	}
}

/*
 * MayStartNow says whether a start slot is free; if not, the slot waits
 * (state pending, with the reason) until one comes free
 * (QueueWaitingStarts), or a later pass starts it.
 */
static bool
MayStartNow(NxSlot *slot)
{
	if (starting_count < max_starts)
		return true;
	starts_deferred = true;
	if (slot->state != NX_SLOT_CRASHED)
	{
		SlotWaitFor(slot, psprintf("waiting for its turn to start: %d deployments are starting (nx.max_concurrent_starts = %d)",
								   starting_count, max_starts));
		slot->waiting_turn = true;
	}
	return false;
}

/*
 * SlotMarkWanted: the pass found the slot's deployment desired running
 * (NxSlotWant and NxSlotStillWanted alike); the host setup it checked is
 * the one starts and stops use from now on.
 */
static void
SlotMarkWanted(NxSlot *slot, const char *sandbox, const char *owner, const NxHostSetup *host)
{
	current_host = *host;
	have_host = true;
	slot->wanted = true;
	strlcpy(slot->sandbox, sandbox, sizeof(slot->sandbox));
	strlcpy(slot->owner, owner, sizeof(slot->owner));
}

/*
 * SlotMayStart: is the slot in a state from which NxSlotWant may start it
 * (pending, stopped, crashed)?  In every other state, in the same
 * generation, NxSlotWant only marks it wanted.
 */
static bool
SlotMayStart(const NxSlot *slot)
{
	return slot->state == NX_SLOT_PENDING || slot->state == NX_SLOT_IDLE ||
		slot->state == NX_SLOT_CRASHED;
}

/*
 * NxSlotWant: converge found this deployment desired running.  Start it,
 * restart it (its generation changed), or leave it as it is.
 */
void
NxSlotWant(const NxDeploymentRow *row, const NxHostSetup *host, bool database_ready)
{
	NxSlot	   *slot;
	bool		found;

	slot = hash_search(slots, &row->deployment, HASH_ENTER, &found);
	if (!found)
	{
		snprintf(slot->key, sizeof(slot->key), "%s" INT64_FORMAT, NxKeyPrefix(), row->deployment);
		NxDeploymentName(slot->name, sizeof(slot->name), (long long) row->deployment);
		slot->pid = slot->monitor_pid = 0;
		slot->adopted = false;
		slot->init_up = false;
		slot->output_fd = slot->status_fd = slot->userns_rx = -1;
		slot->log.fd = -1;
		slot->status_len = 0;
		slot->window = 0;
		slot->window_bytes = 0;
		slot->window_status = 0;
		slot->pipes_paused = false;
		slot->deadline = 0;
		slot->restarts = 0;
		slot->crashes = 0;
		slot->exit_code = -1;
		slot->exit_signal = 0;
		slot->last_error[0] = '\0';
		slot->generation = row->generation;
		slot->restart_pending = false;
		slot->waiting_turn = false;
		slot->row_written = false;
		slot->memory_bytes = slot->cpu_usec = -1;
		slot->state = NX_SLOT_PENDING;
		slot->dirty = flush_needed = true;
	}
	SlotMarkWanted(slot, row->sandbox, row->owner, host);

	if (row->generation != slot->generation)
	{
		/* nx.restart or nx.start after a failure: begin afresh */
		slot->generation = row->generation;
		slot->crashes = 0;
		if (slot->state == NX_SLOT_STARTING || slot->state == NX_SLOT_READY)
		{
			slot->restart_pending = true;
			SlotStop(slot);
			return;
		}
		if (slot->state != NX_SLOT_STOPPING)
			slot->state = NX_SLOT_PENDING;
	}

	switch (slot->state)
	{
		case NX_SLOT_PENDING:
		case NX_SLOT_IDLE:
			if (!host->ok)
				SlotWaitFor(slot, host->why);
			else if (row->uid_offset >= host->slice_size)
				SlotWaitFor(slot, psprintf("the sandbox's uid offset %d is outside this cluster's uid slice (%d uids): raise nx.uid_slice_size (and widen the ranges in %s and %s if needed)",
										   row->uid_offset, host->slice_size, nx_subuid_file, nx_subgid_file));
			else if (!database_ready)
				SlotWaitFor(slot, "waiting for the sandbox's database and role");
			else if (MayStartNow(slot))
			{
				if (slot->state == NX_SLOT_IDLE || slot->restart_pending)
					slot->restarts++;
				slot->restart_pending = false;
				SlotStart(slot, row, host);
			}
			break;
		case NX_SLOT_CRASHED:
			if (slot->deadline == 0 && host->ok && database_ready && MayStartNow(slot))
			{
				slot->restarts++;
				SlotStart(slot, row, host);
			}
			break;
		default:
			break;
	}
}

/*
 * NxSlotStillWanted: a pass found this deployment desired running, and
 * read only its generation (nx._desired_deployments without details).  If
 * its slot is in that generation and not in a state it may start from
 * (SlotMayStart), NxSlotWant would only mark it wanted: do that and return
 * true.  Otherwise return false, and the pass reads the whole row for
 * NxSlotWant.
 */
bool
NxSlotStillWanted(int64 deployment, int32 generation, const char *sandbox,
				  const char *owner, const NxHostSetup *host)
{
	NxSlot	   *slot = hash_search(slots, &deployment, HASH_FIND, NULL);

	if (slot == NULL || slot->generation != generation || SlotMayStart(slot))
		return false;
	SlotMarkWanted(slot, sandbox, owner, host);
	return true;
}

/*
 * RememberGone notes that a slot was forgotten, so that the next write
 * deletes its nx.runtime row (and only its).
 */
static void
RememberGone(int64 deployment)
{
	if (gone_count == gone_size)
	{
		gone_size = Max(64, gone_size * 2);
		gone_ids = gone_ids == NULL ?
			MemoryContextAlloc(TopMemoryContext, gone_size * sizeof(int64)) :
			repalloc(gone_ids, gone_size * sizeof(int64));
	}
	gone_ids[gone_count++] = deployment;
}

/*
 * NxSlotsEndPass stops what no row wants any more, and forgets slots that
 * are neither wanted nor running.
 */
void
NxSlotsEndPass(void)
{
	HASH_SEQ_STATUS seq;
	NxSlot	   *slot;

	hash_seq_init(&seq, slots);
	while ((slot = hash_seq_search(&seq)) != NULL)
	{
		if (slot->wanted)
			continue;
		if (slot->pid > 0)
			SlotStop(slot);
		else
		{
			SlotReleased(slot);
			NxLogClose(&slot->log);
			RememberGone(slot->deployment);
			hash_search(slots, &slot->deployment, HASH_REMOVE, NULL);
			flush_needed = true;
		}
	}
}

/* NxSlotsKillAll kills every sandbox at once (exit, postmaster death). */
void
NxSlotsKillAll(void)
{
	HASH_SEQ_STATUS seq;
	NxSlot	   *slot;

	if (slots == NULL)
		return;
	hash_seq_init(&seq, slots);
	while ((slot = hash_seq_search(&seq)) != NULL)
		SlotKill(slot, have_host ? &current_host.cgroups : NULL);
}

/* NxSlotsRunning: how many slots still have a process. */
int
NxSlotsRunning(void)
{
	HASH_SEQ_STATUS seq;
	NxSlot	   *slot;
	int			running = 0;

	hash_seq_init(&seq, slots);
	while ((slot = hash_seq_search(&seq)) != NULL)
		running += slot->pid > 0;
	return running;
}

/*
 * NxSlotsStopAll wants no slot any more and sends every running one its
 * stop (SIGTERM, grace from now); the loop reaps them (NxStopAllGracefully).
 */
void
NxSlotsStopAll(void)
{
	HASH_SEQ_STATUS seq;
	NxSlot	   *slot;

	hash_seq_init(&seq, slots);
	while ((slot = hash_seq_search(&seq)) != NULL)
	{
		slot->wanted = false;
		if (slot->pid > 0)
			SlotStop(slot);
	}
}

/* RowEquals: does row hold the same values as the slot's written row? */
static bool
RowEquals(const NxRuntimeRow *row, const NxRuntimeRow *w)
{
	return row->state == w->state && row->pid == w->pid &&
		row->started_at == w->started_at && row->ready_at == w->ready_at &&
		row->restarts == w->restarts && row->exit_code == w->exit_code &&
		row->exit_signal == w->exit_signal &&
		row->memory_bytes == w->memory_bytes && row->cpu_usec == w->cpu_usec &&
		strcmp(row->last_error, w->last_error) == 0;
}

/*
 * NxSlotsRuntimeRows calls emit for every slot whose nx.runtime row has
 * values other than the ones it last wrote: among the dirty slots, or
 * among all of them when `all` is true (the periodic pass, which also
 * refreshes the cgroup statistics of every running slot) or after a
 * rolled-back write.  Then it clears the dirty marks.  *gone and *ngone
 * get the ids of the slots forgotten since the last call (their rows are
 * to be deleted); the return value says whether the caller must instead
 * delete every row of no slot (after a rolled-back write).
 */
bool
NxSlotsRuntimeRows(bool all, NxRuntimeEmit emit, void *arg,
				   int64 **gone, int *ngone)
{
	HASH_SEQ_STATUS seq;
	NxSlot	   *slot;
	bool		unknown = runtime_unknown;
	bool		refresh_stats = all;

	if (unknown)
		all = true;
	hash_seq_init(&seq, slots);
	while ((slot = hash_seq_search(&seq)) != NULL)
	{
		NxRuntimeRow row;
		bool		was_dirty = slot->dirty;

		if (!slot->dirty && !all)
			continue;
		slot->dirty = false;
		row.deployment = slot->deployment;
		row.state = state_names[slot->state];
		row.pid = slot->pid > 0 ? SlotInitPid(slot) : 0;
		row.started_at = slot->pid > 0 ? slot->started_at : 0;
		row.ready_at = slot->state == NX_SLOT_READY ? slot->ready_at : 0;
		row.restarts = slot->restarts;
		row.exit_code = slot->exit_code;
		row.exit_signal = slot->exit_signal;
		row.last_error = slot->last_error;
		/*
		 * cgroup statistics are read for a slot whose state changed (its
		 * row is written anyway) and for every running slot on the periodic
		 * pass; a slot looked at only because a write was rolled back keeps
		 * the ones last read, so that a failure does not turn into a write
		 * of every row.
		 */
		if (slot->pid > 0 && have_host && current_host.cgroups.mode != NX_CGROUP_NONE &&
			(refresh_stats || was_dirty || slot->memory_bytes < 0))
			NxCgroupStats(&current_host.cgroups, slot->key, &slot->memory_bytes, &slot->cpu_usec);
		row.memory_bytes = slot->pid > 0 ? slot->memory_bytes : -1;
		row.cpu_usec = slot->pid > 0 ? slot->cpu_usec : -1;
		if (slot->row_written && RowEquals(&row, &slot->written))
			continue;
		emit(&row, arg);
		slot->written = row;
		strlcpy(slot->written_error, row.last_error, sizeof(slot->written_error));
		slot->written.last_error = slot->written_error;
		slot->row_written = true;
	}
	flush_needed = false;
	runtime_unknown = false;
	*gone = palloc(sizeof(int64) * Max(gone_count, 1));
	memcpy(*gone, gone_ids, sizeof(int64) * gone_count);
	*ngone = gone_count;
	gone_count = 0;
	return unknown;
}

/*
 * NxSlotsRuntimeUnknown: a transaction that wrote nx.runtime was rolled
 * back, so what each slot remembers writing may not be there.  The next
 * write (the next pass, or the next change of a slot: not at once, so that
 * a write that keeps failing, e.g. on a lock, is not retried in a busy
 * loop) looks at every slot and every row.
 */
void
NxSlotsRuntimeUnknown(void)
{
	HASH_SEQ_STATUS seq;
	NxSlot	   *slot;

	if (slots == NULL)
		return;
	hash_seq_init(&seq, slots);
	while ((slot = hash_seq_search(&seq)) != NULL)
		slot->row_written = false;
	runtime_unknown = true;
}

/*
 * NxSlotsRunOffset: does a slot's process (still) run as this uid offset?
 * A slot being stopped counts until it is reaped.
 */
bool
NxSlotsRunOffset(int uid_offset)
{
	HASH_SEQ_STATUS seq;
	NxSlot	   *slot;

	hash_seq_init(&seq, slots);
	while ((slot = hash_seq_search(&seq)) != NULL)
	{
		if (slot->pid > 0 && slot->uid_offset == uid_offset)
		{
			hash_seq_term(&seq);
			return true;
		}
	}
	return false;
}

/* NxSlotsStarting: how many deployments are starting now. */
int
NxSlotsStarting(void)
{
	return starting_count;
}

/* NxSlotsIds returns the deployment ids of every slot. */
List *
NxSlotsIds(void)
{
	HASH_SEQ_STATUS seq;
	NxSlot	   *slot;
	List	   *ids = NIL;

	hash_seq_init(&seq, slots);
	while ((slot = hash_seq_search(&seq)) != NULL)
	{
		int64	   *id = palloc(sizeof(int64));

		*id = slot->deployment;
		ids = lappend(ids, id);
	}
	return ids;
}

/*
 * NxKeyPrefix: "c<cluster>_d", where <cluster> is this cluster's system
 * identifier.  Several clusters on one host share the delegated cgroup;
 * each supervisor only ever touches keys with its own prefix.
 */
const char *
NxKeyPrefix(void)
{
	static char prefix[32];

	if (prefix[0] == '\0')
		snprintf(prefix, sizeof(prefix), "c%016llx_d", (unsigned long long) GetSystemIdentifier());
	return prefix;
}

/* NxKeyIsOurs: is key one of this cluster's deployment keys? */
bool
NxKeyIsOurs(const char *key, int64 *deployment)
{
	const char *prefix = NxKeyPrefix();
	size_t		len = strlen(prefix);
	char	   *end;

	if (strncmp(key, prefix, len) != 0 || key[len] == '\0')
		return false;
	*deployment = strtoll(key + len, &end, 10);
	return *end == '\0';
}

/* NxSlotsHasKey: does a slot use this cgroup / run dir key? */
bool
NxSlotsHasKey(const char *key)
{
	int64		id;

	return NxKeyIsOurs(key, &id) && hash_search(slots, &id, HASH_FIND, NULL) != NULL;
}

/*
 * NxSlotWaiting: is deployment wanted but not started (pending), or not
 * known at all?  The start fast path leaves those to a full pass; one
 * that waits only for a start slot is asked for again when one comes free.
 */
bool
NxSlotWaiting(int64 deployment)
{
	NxSlot	   *slot = hash_search(slots, &deployment, HASH_FIND, NULL);

	return slot == NULL || (slot->state == NX_SLOT_PENDING && !slot->waiting_turn);
}

/* NxSlotsHas: does deployment have a slot (running, or remembered)? */
bool
NxSlotsHas(int64 deployment)
{
	return hash_search(slots, &deployment, HASH_FIND, NULL) != NULL;
}
