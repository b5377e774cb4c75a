/*
 * src/supervisor/shmem.c
 *	  The little shared memory nx_sandbox needs: where the supervisor's
 *	  latch is, so that a committing backend can wake it, the queue of
 *	  deployments woken by nx.wake (the wake fast path, wake.c), the
 *	  passwords of roles made ahead (role_pool.c), and the tenant limits' struct
 *	  (src/tenant/tenant_shmem.c).
 *
 * Only present when the library is in shared_preload_libraries; without
 * it NxShared stays NULL and waking is a no-op (there is no supervisor).
 */
#include "supervisor.h"
#include "tenant/tenant.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

NxSharedState *NxShared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* NxShmemRequest reserves our struct (PostgreSQL 15's request hook). */
static void
NxShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(NxSharedState)));
	RequestAddinShmemSpace(NxTenantShmemSize());
}

/* NxShmemStartup finds or creates the struct, under AddinShmemInitLock. */
static void
NxShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	NxShared = ShmemInitStruct("nx_sandbox", sizeof(NxSharedState), &found);
	if (!found)
	{
		SpinLockInit(&NxShared->mutex);
		NxShared->supervisor_latch = NULL;
		NxShared->supervisor_pid = 0;
		NxShared->wakeups = 0;
		NxShared->wake_count = 0;
		NxShared->wake_overflow = false;
		NxShared->password_count = 0;
	}
	NxTenantShmemAttach(found);
	LWLockRelease(AddinShmemInitLock);
}

/* NxShmemInit installs the hooks; called from _PG_init when preloading. */
void
NxShmemInit(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = NxShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = NxShmemStartup;
}
