/*
 * src/supervisor/converge.h
 *	  The converge pass (converge.c): rows to machine, and the writes of
 *	  nx.runtime between passes.
 */
#ifndef NX_CONVERGE_H
#define NX_CONVERGE_H

#include "supervisor.h"

extern void NxConverge(bool periodic);
extern void NxStartQueuedDeployments(const int64 *ids, int n);
extern void NxFlushRuntime(void);
extern bool NxConvergeReady(void);

#endif							/* NX_CONVERGE_H */
