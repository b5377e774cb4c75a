/*
 * src/tenant/tenant_shmem.c
 *	  The tenant limits' shared memory: the count of tenant backends and,
 *	  for each tenant database, its quota figures (NxQuotaEntry).  Created
 *	  next to the supervisor's struct (src/supervisor/shmem.c), only when
 *	  the library is preloaded; without it NxTenant stays NULL and nothing
 *	  is enforced (no supervisor runs either).
 *
 * The entries are a sequence-locked array: the supervisor is the only
 * writer, and backends never wait for it (they retry a read that
 * overlapped a write, which takes microseconds).
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
		NxTenant->count = 0;
	}
}

/*
 * NxQuotaPublish replaces the entries (supervisor only; sorted by
 * database) when they changed.
 */
void
NxQuotaPublish(const NxQuotaEntry *entries, int count)
{
	if (NxTenant == NULL)
		return;
	count = Min(count, NX_QUOTA_MAX_DATABASES);
	if (NxTenant->count == count &&
		memcmp(NxTenant->entries, entries, sizeof(NxQuotaEntry) * count) == 0)
		return;
	pg_atomic_fetch_add_u64(&NxTenant->generation, 1);	/* odd: writing */
	pg_write_barrier();
	memcpy(NxTenant->entries, entries, sizeof(NxQuotaEntry) * count);
	NxTenant->count = count;
	pg_write_barrier();
	pg_atomic_fetch_add_u64(&NxTenant->generation, 1);	/* even: done */
}

/*
 * NxQuotaLookup copies the entry of a database (binary search); false
 * when it has none (not a tenant database, or not measured yet).
 */
bool
NxQuotaLookup(Oid database, NxQuotaEntry *entry)
{
	for (;;)
	{
		uint64		before = pg_atomic_read_u64(&NxTenant->generation);
		int			lo = 0,
					hi;
		bool		found = false;

		if (before & 1)
		{
			pg_spin_delay();
			continue;
		}
		pg_read_barrier();
		hi = Min(NxTenant->count, NX_QUOTA_MAX_DATABASES) - 1;
		while (lo <= hi)
		{
			int			mid = lo + (hi - lo) / 2;
			Oid			at = NxTenant->entries[mid].database;

			if (at == database)
			{
				*entry = NxTenant->entries[mid];
				found = true;
				break;
			}
			if (at < database)
				lo = mid + 1;
			else
				hi = mid - 1;
		}
		pg_read_barrier();
		if (pg_atomic_read_u64(&NxTenant->generation) == before)
			return found;
	}
}
