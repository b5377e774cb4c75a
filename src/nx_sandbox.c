/*
 * src/nx_sandbox.c
 *	  Module entry point.  _PG_init only delegates: each subsystem defines
 *	  its own settings, hooks and workers.
 */
#include "nx_sandbox.h"

#include "fmgr.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* _PG_init runs when the library is loaded (preload or first call). */
void
_PG_init(void)
{
	NxGucInit();
}
