/*
 * src/supervisor/role_pool.h
 *	  New sandboxes' roles made ahead, with their passwords (role_pool.c).
 */
#ifndef NX_ROLE_POOL_H
#define NX_ROLE_POOL_H

#include "compat.h"

/* every pool role's name starts so; no sandbox's or preview's role can */
#define NX_ROLE_POOL_PREFIX "nx__role_pool_"

extern void NxRolePoolReset(void);
extern void NxRolePoolTick(bool busy);
extern bool NxRolePoolWantsMore(void);
extern bool NxRolePoolClaim(const char *password, char **pool_role, char **verifier);
extern void NxRolePoolDropStale(void);

#endif							/* NX_ROLE_POOL_H */
