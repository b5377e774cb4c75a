/*
 * src/supervisor/spawn.h
 *	  Starting a helper program as a child of the supervisor (spawn.c).
 */
#ifndef NX_SPAWN_H
#define NX_SPAWN_H

#include "supervisor.h"

#include <spawn.h>

extern int	NxSpawnChild(pid_t *pid, const char *path, posix_spawn_file_actions_t *actions,
						 char *const argv[], char *const envp[]);

#endif							/* NX_SPAWN_H */
