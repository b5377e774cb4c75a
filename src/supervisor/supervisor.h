/*
 * src/supervisor/supervisor.h
 *	  The supervisor: a background worker that converges the machine to the
 *	  rows of schema nx (invariant I2).  Rows say what should exist; the
 *	  supervisor creates per-sandbox roles and databases, materialises blob
 *	  files, and runs each desired-running deployment in a sandbox, then
 *	  watches it (readiness, exits, logs) and writes what it sees to the
 *	  unlogged table nx.runtime.
 *
 * Layers: the SQL API only wakes the supervisor (wake.c, through shared
 * memory); the supervisor uses src/runtime/ to start and stop sandboxes.
 *
 * Glossary:
 *	  converge	one pass that compares rows with what exists and acts.
 *	  slot		the supervisor's in-memory record of one deployment it runs.
 *	  pool		databases created ahead of time and renamed on demand, so
 *				that a new sandbox's database is ready in milliseconds.
 */
#ifndef NX_SUPERVISOR_H
#define NX_SUPERVISOR_H

#include "compat.h"

#include "storage/latch.h"
#include "storage/spin.h"

/* settings (supervisor_guc.c) */
extern char *nx_database;
extern int	nx_naptime;			/* seconds between periodic passes */
extern int	nx_database_pool_size;
extern int	nx_start_timeout;	/* ms */
extern int	nx_stop_timeout;	/* ms */
extern char *nx_bwrap_path;
extern char *nx_cgroup_root;
extern char *nx_cgroup_name;
extern bool nx_require_cgroups;
extern int	nx_log_size;		/* bytes per deployment log file */
extern int	nx_max_concurrent_starts;	/* 0: automatic */
extern bool nx_supervisor_enabled;
extern char *nx_subuid_file;
extern bool nx_router_enabled;
extern char *nx_listen_addresses;
extern char *nx_trusted_proxies;
extern int	nx_router_pool_size;
extern int	nx_router_pool_idle_timeout;
extern int	nx_router_max_app_connections;
extern int	nx_router_max_client_connections;
extern int	nx_router_keepalive_timeout;
extern char *nx_subgid_file;
extern int	nx_uid_slice_size;	/* uids per cluster on a host */
extern char *nx_uid_slice_registry;
extern bool nx_start_fast_path;

/* deployments a commit may queue for the wake fast path (wake.c) */
#define NX_WAKE_QUEUE 64
#define NX_PASSWORD_POOL 100	/* roles made ahead, at most (the maximum
								 * of nx.database_pool_size) */
#define NX_PASSWORD_LEN 32		/* [a-z2-7], nx.sandbox_secrets' CHECK */

/* Shared state between backends and the supervisor (shmem.c). */
typedef struct NxSharedState
{
	slock_t		mutex;			/* protects the fields below */
	Latch	   *supervisor_latch;	/* NULL while no supervisor runs */
	pid_t		supervisor_pid;
	uint64		wakeups;		/* commits that asked for a pass */
	/* deployments woken (nx.wake) by commits that asked for nothing else */
	int			wake_count;
	bool		wake_overflow;	/* more than NX_WAKE_QUEUE: do a full pass */
	int64		wake_ids[NX_WAKE_QUEUE];
	/* passwords of the roles the supervisor made ahead (role_pool.c) */
	int			password_count;
	char		passwords[NX_PASSWORD_POOL][NX_PASSWORD_LEN + 1];
} NxSharedState;

extern NxSharedState *NxShared;

/* shmem.c */
extern void NxShmemInit(void);

/* wake.c */
extern void NxWakeInit(void);
extern void NxWakeSupervisor(void);
extern int	NxTakeWakeQueue(int64 *ids, bool *overflow);

/* worker.c */
extern void NxSupervisorRegister(void);
extern PGDLLEXPORT void NxSupervisorMain(Datum arg);

/* supervisor_guc.c */
extern void NxSupervisorGucInit(void);

#endif							/* NX_SUPERVISOR_H */
