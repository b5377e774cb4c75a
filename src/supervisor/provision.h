/*
 * src/supervisor/provision.h
 *	  Per-sandbox roles and databases, and the database pool (provision.c).
 */
#ifndef NX_PROVISION_H
#define NX_PROVISION_H

#include "compat.h"
#include "hostsetup.h"

#include "nodes/pg_list.h"

/*
 * The database work of one pass: read in transactions, new sandboxes'
 * databases taken from the pool in the first, the rest done outside.
 */
typedef struct NxDatabasePlan
{
	MemoryContext context;		/* where the lists live */
	List	   *to_create;		/* database names (char *) */
	List	   *to_create_owner;	/* their roles, same order */
	List	   *to_drop;
	List	   *pool;			/* existing pool databases */
	bool		pool_failed;	/* a take failed: no more this pass */
} NxDatabasePlan;

/*
 * IS_TENANT(oid_expr): SQL that says whether the role is a member of
 * nx_tenant, tested without inheriting superuser rights
 */
#define IS_TENANT(oid_expr) \
	"EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m WHERE m.member = " oid_expr \
	" AND m.roleid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = 'nx_tenant'))"

extern void NxProvisionRoles(const NxHostSetup *host, NxDatabasePlan *plan);
extern void NxPlanPool(NxDatabasePlan *plan);
extern void NxTakePoolDatabases(NxDatabasePlan *plan);
extern void NxPlanDatabases(NxDatabasePlan *plan);
extern void NxApplyDatabases(NxDatabasePlan *plan);
extern void NxDropUnwantedRoles(void);

/* tenant_roles.c */
extern void NxRepairTenantRoles(void);
extern void NxTenantRolePasswordSet(const char *role, const char *verifier);
extern void NxTenantRoleCreated(const char *role, const char *verifier);
extern void NxTenantRoleSetWanted(const char *role);

#endif							/* NX_PROVISION_H */
