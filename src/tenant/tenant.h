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
#include "storage/spin.h"

/* the most databases that can be over quota at once */
#define NX_QUOTA_MAX_DATABASES 8192

/* one database over quota, with the figures its error message gives */
typedef struct NxOverQuota
{
	Oid			database;
	int64		used_bytes;		/* the sandbox's databases together */
	int64		quota_bytes;
} NxOverQuota;

/*
 * Shared state.  tenant_connections and generation are atomics; mutex
 * protects count and entries (written only by the supervisor).
 */
typedef struct NxTenantShared
{
	pg_atomic_uint32 tenant_connections;	/* tenant backends logged in */
	pg_atomic_uint64 generation;	/* bumped at each change of entries */
	slock_t		mutex;
	int			count;
	NxOverQuota entries[NX_QUOTA_MAX_DATABASES];
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
extern void NxQuotaPublish(const NxOverQuota *entries, int count);

/* login.c */
extern void NxTenantLoginInit(void);

/* quota_hook.c */
extern void NxQuotaHookInit(void);

#endif							/* NX_TENANT_H */
