/*
 * src/nx_sandbox.c
 *	  Module entry point.  _PG_init only delegates: each subsystem defines
 *	  its own settings, hooks and workers.
 */
#include "nx_sandbox.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "supervisor/supervisor.h"
#include "tenant/tenant.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * _PG_init runs when the library is loaded: at server start when it is in
 * shared_preload_libraries (then the supervisor and its shared memory
 * exist), or at a session's first call of one of its functions.
 */
void
_PG_init(void)
{
	NxGucInit();
	NxSupervisorGucInit();
	NxTenantGucInit();
	MarkGUCPrefixReserved("nx");
	NxWakeInit();

	if (process_shared_preload_libraries_in_progress)
	{
		NxShmemInit();
		NxTenantLoginInit();
		NxQuotaHookInit();
		if (nx_supervisor_enabled)
			NxSupervisorRegister();
	}
}
