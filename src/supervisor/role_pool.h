/*
 * src/supervisor/role_pool.h
 *	  New sandboxes' roles made ahead, with their passwords (role_pool.c).
 */
#ifndef NX_ROLE_POOL_H
#define NX_ROLE_POOL_H

#include "compat.h"

/* every pool role's name starts so; no sandbox's or preview's role can */
#define NX_ROLE_POOL_PREFIX "nx__role_pool_"

/*
 * NX_ROLE_POOL_AS_MADE(r): SQL that says whether role r (pg_roles or
 * pg_authid) is still exactly as role_pool.c makes a pool role: its name,
 * NOLOGIN, not a superuser, a member of nothing and with no member.  Only
 * such a role is taken for a sandbox or dropped as stale.
 */
#define NX_ROLE_POOL_AS_MADE(r) \
	r ".rolname ~ '^nx__role_pool_[0-9]+_[0-9]+$' AND NOT " r ".rolcanlogin AND NOT " r ".rolsuper " \
	"AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m WHERE m.member = " r ".oid OR m.roleid = " r ".oid)"

extern void NxRolePoolReset(void);
extern void NxRolePoolTick(bool busy);
extern bool NxRolePoolWantsMore(void);
extern bool NxRolePoolClaim(const char *password, char **pool_role, char **verifier);
extern void NxRolePoolDropStale(void);

#endif							/* NX_ROLE_POOL_H */
