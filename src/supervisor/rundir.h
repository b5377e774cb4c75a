/*
 * src/supervisor/rundir.h
 *	  The deployments' run directories and hand-off sockets (rundir.c).
 */
#ifndef NX_RUNDIR_H
#define NX_RUNDIR_H

#include <stddef.h>

extern int	NxRunDirListen(const char *name, char *err, size_t errlen);
extern void NxRunDirRemove(const char *name);
extern int	NxRunDirConnect(const char *name);
extern void NxRunDirsRemoveUnwanted(bool (*in_use) (int64 deployment));

#endif							/* NX_RUNDIR_H */
