/*
 * src/supervisor/uidslice.h
 *	  Tenant uid slices and the reuse of uid offsets (uidslice.c).
 */
#ifndef NX_UIDSLICE_H
#define NX_UIDSLICE_H

#include <sys/types.h>

struct NxHostSetup;

extern void NxUidSliceEnsure(struct NxHostSetup *host);
extern void NxRetiredOffsetsSweep(const struct NxHostSetup *host);
extern int	NxUidsInUse(uid_t lo, uid_t hi, uid_t *example);

#endif							/* NX_UIDSLICE_H */
