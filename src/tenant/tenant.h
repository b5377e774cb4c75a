/*
 * src/tenant/tenant.h
 *	  Per-tenant database limits enforced inside every backend: the
 *	  aggregate cap on tenant logins (login.c) and the refusal of writes in
 *	  a database over its quota (quota_hook.c).  The supervisor decides
 *	  which databases are over quota (src/supervisor/quota.c) and publishes
 *	  them here, in shared memory; backends only read.
 *
 * A tenant role cannot undo either: both live in the preloaded library,
 * not in settings a session may change.
 *
 * Glossary:
 *	  tenant role	a login role that is a member of nx_tenant (a sandbox's
 *					or a branch deployment's database role)
 *	  over quota	a database whose sandbox's databases together use more
 *					than the sandbox's database_quota
 */
#ifndef NX_TENANT_H
#define NX_TENANT_H

#include "compat.h"

#include "port/atomics.h"

/* the most tenant databases whose quota backends check themselves */
#define NX_QUOTA_MAX_DATABASES 65536

/*
 * One tenant database: what its sandbox may use, and what the supervisor
 * measured.  limit_bytes is the size this database itself may reach: the
 * sandbox's database_quota less what its other databases use.
 */
typedef struct NxQuotaEntry
{
	Oid			database;
	bool		over;			/* the sandbox is over quota: refuse writes */
	int64		limit_bytes;
	int64		used_bytes;		/* the sandbox's databases together */
	int64		quota_bytes;
} NxQuotaEntry;

/*
 * Shared state.  tenant_connections is an atomic counter.  The entries,
 * sorted by database, are written by the supervisor alone under a sequence
 * lock: generation is odd while it writes; a reader retries when it saw an
 * odd generation or a different one after reading.
 */
typedef struct NxTenantShared
{
	pg_atomic_uint32 tenant_connections;	/* tenant backends logged in */
	pg_atomic_uint64 generation;
	int			count;
	NxQuotaEntry entries[NX_QUOTA_MAX_DATABASES];
} NxTenantShared;

extern NxTenantShared *NxTenant;

/* settings (tenant_guc.c) */
extern int	nx_tenant_temp_file_limit;	/* kB, -1 = none */
extern int	nx_tenant_idle_in_transaction_timeout;	/* ms, 0 = none */
extern int	nx_max_tenant_connections;	/* -1 = all but the reserve */
extern int	nx_tenant_connection_reserve;
extern int	nx_database_quota_interval; /* ms */

/* tenant_guc.c */
extern void NxTenantGucInit(void);
extern int	NxTenantConnectionCap(void);

/* tenant_shmem.c */
extern Size NxTenantShmemSize(void);
extern void NxTenantShmemAttach(bool found);
extern void NxQuotaPublish(const NxQuotaEntry *entries, int count);
extern bool NxQuotaLookup(Oid database, NxQuotaEntry *entry);

/* login.c */
extern void NxTenantLoginInit(void);

/* quota_hook.c */
extern void NxQuotaHookInit(void);

#endif							/* NX_TENANT_H */
