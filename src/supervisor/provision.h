/*
 * src/supervisor/provision.h
 *	  Per-sandbox roles and databases, and the database pool (provision.c).
 */
#ifndef NX_PROVISION_H
#define NX_PROVISION_H

#include "compat.h"

#include "nodes/pg_list.h"

/* The database work of one pass, read in a transaction, done outside it. */
typedef struct NxDatabasePlan
{
	MemoryContext context;		/* where the lists live */
	List	   *to_create;		/* database names (char *) */
	List	   *to_create_owner;	/* their roles, same order */
	List	   *to_drop;
	List	   *pool;			/* existing pool databases */
} NxDatabasePlan;

extern void NxProvisionRoles(void);
extern void NxPlanDatabases(NxDatabasePlan *plan);
extern bool NxApplyDatabases(NxDatabasePlan *plan);
extern void NxDropUnwantedRoles(void);

#endif							/* NX_PROVISION_H */
