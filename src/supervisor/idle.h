/*
 * src/supervisor/idle.h
 *	  Idle stops (scale to zero): deployments quiet past their sandbox's
 *	  idle_timeout are asked to QUIESCE and put to sleep (idle.c).
 */
#ifndef NX_IDLE_H
#define NX_IDLE_H

#include "supervisor.h"

#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "utils/palloc.h"

#define NX_IDLE_MAX_ASKS 64		/* QUIESCE requests out at once */

extern void NxStopIdleDeployments(MemoryContext context);
extern void NxIdleAddWaitEvents(WaitEventSet *set);
extern bool NxIdleOwns(void *user_data);
extern void NxIdleReadable(void *user_data);
extern bool NxIdleAsksDue(TimestampTz now);
extern long NxIdleNextDeadlineMs(TimestampTz now);

#endif							/* NX_IDLE_H */
