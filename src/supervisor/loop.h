/*
 * src/supervisor/loop.h
 *	  The worker loop's waiting and reaping (loop.c).
 */
#ifndef NX_LOOP_H
#define NX_LOOP_H

#include "postgres.h"

typedef enum NxWaitResult
{
	NX_WAIT_TIMEOUT,
	NX_WAIT_LATCH,
	NX_WAIT_IO,
	NX_WAIT_POSTMASTER_DEATH
} NxWaitResult;

extern NxWaitResult NxWaitForEvents(long timeout_ms);
extern void NxReapChildren(void);
extern void NxNoteChildExited(void);
extern void NxStopAllGracefully(void);

#endif							/* NX_LOOP_H */
