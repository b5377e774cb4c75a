/*
 * src/supervisor/userns_keep.h
 *	  The user namespace each sandbox's deployments start in, mapped once
 *	  and kept by the supervisor as a descriptor (see userns_keep.c).
 */
#ifndef NX_USERNS_KEEP_H
#define NX_USERNS_KEEP_H

extern void NxUsernsSetFileRoom(int gained);
extern bool NxUsernsRoomFor(int wanted);
extern int	NxUsernsKept(int uid_offset);
extern bool NxUsernsExportSocket(int *keep_end, int *child_end);
extern bool NxUsernsCollect(int uid_offset, int *keep_end);
extern void NxUsernsForget(int uid_offset);

#endif							/* NX_USERNS_KEEP_H */
