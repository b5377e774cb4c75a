/*
 * src/supervisor/userns_premap.h
 *	  A new sandbox's user namespace, mapped when the sandbox is made rather
 *	  than at its first start (see userns_premap.c).
 */
#ifndef NX_USERNS_PREMAP_H
#define NX_USERNS_PREMAP_H

#include "hostsetup.h"

#include "datatype/timestamp.h"

extern void NxUsernsPremapQueue(const char *sandbox, int uid_offset, const NxHostSetup *host);
extern void NxUsernsPremapForget(int uid_offset);
extern void NxUsernsPremapTick(TimestampTz now, bool starts_busy);
extern long NxUsernsPremapDeadlineMs(TimestampTz now);
extern bool NxUsernsPremapExited(pid_t pid, int wait_status);
extern void NxUsernsPremapKill(void);

#endif							/* NX_USERNS_PREMAP_H */
