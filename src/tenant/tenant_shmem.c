/*
 * src/tenant/tenant_shmem.c
 *	  The tenant limits' shared memory: the count of tenant backends and the
 *	  databases over quota.  Created next to the supervisor's struct
 *	  (src/supervisor/shmem.c), only when the library is preloaded; without
 *	  it NxTenant stays NULL and nothing is enforced (no supervisor runs
 *	  either).
 */
#include "tenant.h"

#include "storage/shmem.h"

NxTenantShared *NxTenant = NULL;

/* NxTenantShmemSize is what NxTenantShmemAttach needs. */
Size
NxTenantShmemSize(void)
{
	return MAXALIGN(sizeof(NxTenantShared));
}

/*
 * NxTenantShmemAttach finds or creates the struct; the caller holds
 * AddinShmemInitLock.
 */
void
NxTenantShmemAttach(bool unused)
{
	bool		found;

	NxTenant = ShmemInitStruct("nx_sandbox tenant", sizeof(NxTenantShared), &found);
	if (!found)
	{
		pg_atomic_init_u32(&NxTenant->tenant_connections, 0);
		pg_atomic_init_u64(&NxTenant->generation, 0);
		SpinLockInit(&NxTenant->mutex);
		NxTenant->count = 0;
	}
}

/*
 * NxQuotaPublish replaces the list of databases over quota (supervisor
 * only) and bumps the generation when it changed, so that backends look
 * again at their next statement.
 */
void
NxQuotaPublish(const NxOverQuota *entries, int count)
{
	bool		changed;

	if (NxTenant == NULL)
		return;
	count = Min(count, NX_QUOTA_MAX_DATABASES);
	SpinLockAcquire(&NxTenant->mutex);
	changed = NxTenant->count != count ||
		memcmp(NxTenant->entries, entries, sizeof(NxOverQuota) * count) != 0;
	if (changed)
	{
		memcpy(NxTenant->entries, entries, sizeof(NxOverQuota) * count);
		NxTenant->count = count;
	}
	SpinLockRelease(&NxTenant->mutex);
	if (changed)
		pg_atomic_fetch_add_u64(&NxTenant->generation, 1);
}
