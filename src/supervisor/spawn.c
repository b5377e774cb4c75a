/*
 * src/supervisor/spawn.c
 *	  Every helper the supervisor runs (nx-router, nx-dnscheck,
 *	  nx-branch-copy, and nx-spawn --map-userns for a new sandbox's user
 *	  namespace) starts the same way: in a session of its own, every
 *	  signal unblocked and at its default, and no descriptor of the
 *	  backend's but the standard three the caller set up.  (Sandboxes go
 *	  through nx-spawn's launch, slots.c.)
 */
#include "spawn.h"

#include <signal.h>

/*
 * NxSpawnChild runs path with argv and envp.  actions holds the caller's
 * redirections of descriptors 0-2; everything above is closed in the
 * child, and actions is destroyed here.  Returns posix_spawn's error
 * number: 0 when *pid is the child.
 */
int
NxSpawnChild(pid_t *pid, const char *path, posix_spawn_file_actions_t *actions,
			 char *const argv[], char *const envp[])
{
	posix_spawnattr_t attr;
	sigset_t	none;
	sigset_t	all;
	int			rc;

	posix_spawn_file_actions_addclosefrom_np(actions, 3);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
	rc = posix_spawn(pid, path, actions, &attr, argv, envp);
	posix_spawn_file_actions_destroy(actions);
	posix_spawnattr_destroy(&attr);
	return rc;
}
