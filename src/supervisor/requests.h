/*
 * src/supervisor/requests.h
 *	  What a part of the supervisor asks of the worker loop (requests.c):
 *	  another converge pass soon, a rebuilt wait set, or deployments to
 *	  start on the start fast path.  A leaf: anything may raise these
 *	  without depending on the loop or the pass.
 */
#ifndef NX_REQUESTS_H
#define NX_REQUESTS_H

#include "postgres.h"

extern void NxRequestConverge(void);
extern bool NxTakeConvergeRequest(void);
extern void NxWaitSetChanged(void);
extern bool NxTakeWaitSetChanged(void);
extern void NxRequestStart(int64 deployment);
extern bool NxStartRequested(void);
extern int	NxTakeStartRequests(int64 *ids, int max);

#endif							/* NX_REQUESTS_H */
