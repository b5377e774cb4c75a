/*
 * src/supervisor/requests.h
 *	  What a part of the supervisor asks of the worker loop (requests.c):
 *	  another converge pass soon, or a rebuilt wait set.  A leaf: anything
 *	  may raise these without depending on the loop or the pass.
 */
#ifndef NX_REQUESTS_H
#define NX_REQUESTS_H

#include "postgres.h"

extern void NxRequestConverge(void);
extern bool NxTakeConvergeRequest(void);
extern void NxWaitSetChanged(void);
extern bool NxTakeWaitSetChanged(void);

#endif							/* NX_REQUESTS_H */
