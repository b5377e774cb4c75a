/*
 * src/api/host_limits.c
 *	  Facts about the host that bound what a sandbox may ask for, read by
 *	  the SQL API when it checks limits against their ceilings (I14).
 */
#include "compat.h"

#include <stdio.h>

#include "fmgr.h"

PG_FUNCTION_INFO_V1(nx_host_pid_max);

/*
 * nx_host_pid_max returns the kernel's pid_max (the most pids the whole
 * host can have): a pids_limit above it could never be reached, and a
 * sandbox asking for it asks for the host.  32768 when it cannot be read.
 */
Datum
nx_host_pid_max(PG_FUNCTION_ARGS)
{
	FILE	   *f = fopen("/proc/sys/kernel/pid_max", "r");
	int			pid_max = 32768;

	if (f != NULL)
	{
		if (fscanf(f, "%d", &pid_max) != 1 || pid_max <= 0)
			pid_max = 32768;
		fclose(f);
	}
	PG_RETURN_INT32(pid_max);
}
