/*
 * src/supervisor/filter_keep.h
 *	  The sandboxes' seccomp filter, compiled once per supervisor
 *	  (filter_keep.c).
 */
#ifndef NX_FILTER_KEEP_H
#define NX_FILTER_KEEP_H

#include "postgres.h"

extern int	NxSeccompFilterFd(const char *spawn_helper);

#endif							/* NX_FILTER_KEEP_H */
