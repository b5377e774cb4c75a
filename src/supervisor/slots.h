/*
 * src/supervisor/slots.h
 *	  The supervisor's view of the deployments it runs ("slots", slots.c):
 *	  the state machine of each, driven by the converge pass (converge.h)
 *	  and by the worker loop (loop.c: its pipes, its exit, its timers), and
 *	  the nx.runtime rows it reports.  slots.c calls nothing above it: what
 *	  it needs of the loop it asks through requests.h.
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

#include "hostsetup.h"
#include "supervisor.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "storage/latch.h"


/* slots.c */
extern void NxSlotsInit(void);
extern void NxSlotChildExited(pid_t pid, int wait_status);
extern void NxSlotsTick(TimestampTz now);
extern long NxSlotsNextDeadlineMs(TimestampTz now);
extern bool NxSlotsNeedFlush(void);
extern void NxSlotsKillAll(void);
extern void NxSlotsStopAll(void);
extern int	NxSlotsRunning(void);
extern int	NxSlotsStarting(void);

/* slots.c, for the loop (loop.c), which waits on NxPipeWatchFd */
extern bool NxSlotsReadPipes(void);

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
extern bool NxSlotsHas(int64 deployment);
extern bool NxSlotWaiting(int64 deployment);
extern const char *NxKeyPrefix(void);
extern bool NxKeyIsOurs(const char *key, int64 *deployment);

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
extern bool NxSlotStillWanted(int64 deployment, int32 generation, const char *sandbox,
							  const char *owner, const NxHostSetup *host);
extern void NxSlotsEndPass(void);

#endif							/* NX_SLOTS_H */
