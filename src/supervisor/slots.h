/*
 * src/supervisor/slots.h
 *	  The supervisor's view of the deployments it runs ("slots"), the
 *	  converge pass that creates and retires them, and the runtime table
 *	  they are reported in.
 *
 * States (as shown in nx.runtime.state):
 *	  pending	desired running, not started yet (waiting for its database,
 *				for host setup, or for the next pass)
 *	  starting	spawned; nx-init has not reported the port listening yet
 *	  ready		the app listens on its port
 *	  stopping	SIGTERM sent; SIGKILL at the end of nx.stop_timeout
 *	  stopped	desired stopped and nothing runs
 *	  crashed	exited unexpectedly; restarts after an exponential backoff
 *	  crashloop	crashed too often in a row; not restarted until nx.start
 *				or nx.restart
 *	  failed	not ready within nx.start_timeout; killed, not restarted
 *				until nx.start or nx.restart
 */
#ifndef NX_SLOTS_H
#define NX_SLOTS_H

#include "supervisor.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

typedef enum NxWaitResult
{
	NX_WAIT_TIMEOUT,
	NX_WAIT_LATCH,
	NX_WAIT_IO,
	NX_WAIT_POSTMASTER_DEATH
} NxWaitResult;

/* slots.c */
extern void NxSlotsInit(void);
extern void NxSlotChildExited(pid_t pid, int wait_status);
extern void NxReapChildren(void);
extern void NxSlotsTick(TimestampTz now);
extern long NxSlotsNextDeadlineMs(TimestampTz now);
extern bool NxSlotsNeedFlush(void);
extern void NxSlotsKillAll(void);
extern void NxSlotsStopAllGracefully(void);
extern NxWaitResult NxWaitForEvents(long timeout_ms);

/* one nx.runtime row, as slots.c reports it */
typedef struct NxRuntimeRow
{
	int64		deployment;
	const char *state;
	int			pid;			/* host pid of nx-init; 0 = none */
	TimestampTz started_at;		/* 0 = NULL */
	TimestampTz ready_at;
	int			restarts;
	int			exit_code;		/* -1 = NULL */
	int			exit_signal;	/* 0 = NULL */
	const char *last_error;		/* "" = NULL */
	int64		memory_bytes;	/* -1 = NULL */
	int64		cpu_usec;
} NxRuntimeRow;

typedef void (*NxRuntimeEmit) (const NxRuntimeRow *row, void *arg);
extern bool NxSlotsRuntimeRows(bool all, NxRuntimeEmit emit, void *arg,
							   int64 **gone, int *ngone);
extern void NxSlotsRuntimeUnknown(void);
extern List *NxSlotsIds(void);
extern bool NxSlotsRunOffset(int uid_offset);
extern bool NxSlotsHasKey(const char *key);
extern const char *NxKeyPrefix(void);
extern bool NxKeyIsOurs(const char *key, int64 *deployment);

/* converge.c */
extern void NxRequestConverge(void);
extern bool NxTakeConvergeRequest(void);
extern char *NxJsonObject1(const char *key, const char *value);
extern void NxConverge(bool periodic);
extern void NxWakeDeployments(const int64 *ids, int n);
extern void NxFlushRuntime(void);
extern void NxRunLoggingErrors(void (*fn) (void *), void *arg, const char *what);

/* dbsetup.c */
extern void NxDbSetupWant(const Oid *databases, int n);
extern void NxDbSetupStep(void);
extern PGDLLEXPORT void NxDbSetupMain(Datum arg);

/* quota.c */
extern void NxQuotaTick(TimestampTz now);
extern long NxQuotaNextDeadlineMs(TimestampTz now);

extern void NxSlotsWaitSetChanged(void);

/* idle.c */
#define NX_IDLE_MAX_ASKS 64		/* QUIESCE requests out at once */
extern void NxStopIdleDeployments(MemoryContext context);
extern void NxIdleAddWaitEvents(WaitEventSet *set);
extern bool NxIdleOwns(void *user_data);
extern void NxIdleReadable(void *user_data);
extern bool NxIdleAsksDue(TimestampTz now);
extern long NxIdleNextDeadlineMs(TimestampTz now);

#endif							/* NX_SLOTS_H */

#include "runtime/nx_runtime.h"

/* What the host offers, checked once per converge pass (hostsetup.c). */
typedef struct NxHostSetup
{
	bool		ok;				/* sandboxes may be started */
	char		why[512];		/* when not ok: what is missing, and the fix */
	uid_t		uid_base;		/* the cluster user's subordinate range */
	gid_t		gid_base;
	int			uid_count;
	int			slice_start;	/* this cluster's slice of it (uidslice.c): */
	int			slice_size;		/* host uid = base + slice_start + offset */
	NxCgroupLayout cgroups;
	char		spawn_helper[MAXPGPATH];
	char		init[MAXPGPATH];
	char		pg_socket[MAXPGPATH];	/* the cluster's unix socket file */
	char		pg_socket_dir[MAXPGPATH];
} NxHostSetup;

extern void NxHostSetupCheck(NxHostSetup *setup);

/* One desired-running deployment, as converge read it from the rows. */
typedef struct NxDeploymentRow
{
	int64		deployment;
	char		sandbox[64];
	char		owner[NAMEDATALEN];
	char		database[NAMEDATALEN];
	char		role[NAMEDATALEN];
	char		blob[65];
	char		binary_name[129];	/* /app/<binary_name>, argv[0] */
	int			generation;
	int			uid_offset;
	NxLimits	limits;
	char	  **argv;			/* NULL-terminated, the app's arguments */
	char	  **envp;			/* NULL-terminated, the app's environment */
} NxDeploymentRow;

/* slots.c, driven by converge.c */
extern void NxSlotsBeginPass(void);
extern void NxSlotWant(const NxDeploymentRow *row, const NxHostSetup *host,
					   bool database_ready);
extern void NxSlotsEndPass(void);

/* blobs.c: the blob's file, materialised and verified; NULL if it cannot be */
extern const char *NxBlobPath(const char *sha256, char *err, size_t errlen);
extern void NxBlobsRemoveUnwanted(List *wanted_sha256);

/* logs.c */
typedef struct NxLogFile
{
	int			fd;
	int64		size;
	char		path[MAXPGPATH];
} NxLogFile;

extern bool NxLogOpen(NxLogFile *log, const char *key);
extern void NxLogAppend(NxLogFile *log, const char *data, size_t len);
extern void NxLogClose(NxLogFile *log);
extern void NxLogsRemoveUnwanted(List *wanted_ids);

/* paths under $PGDATA/nx */
extern void NxStateDirPath(char *path, const char *sub, const char *name);
extern void NxEnsureStateDirs(void);

/* events written by the supervisor (converge.c) */
extern void NxQueueEvent(const char *action, const char *sandbox, const char *owner,
						 int64 deployment, const char *details_json);
