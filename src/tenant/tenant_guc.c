/*
 * src/tenant/tenant_guc.c
 *	  Settings of the per-tenant database limits: what the supervisor sets
 *	  on every tenant role (temp_file_limit, idle_in_transaction_session_
 *	  timeout), the aggregate cap on tenant logins with its reserve, and how
 *	  often database sizes are measured.  All reload settings: a session
 *	  cannot change them.  docs/settings.md describes each one.
 */
#include "tenant.h"

#include <limits.h>

#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "utils/guc.h"

int			nx_tenant_temp_file_limit = 1024 * 1024;	/* kB: 1 GB */
int			nx_tenant_idle_in_transaction_timeout = 5 * 60 * 1000;
int			nx_max_tenant_connections = -1;
int			nx_tenant_connection_reserve = 10;
int			nx_database_quota_interval = 1000;

/*
 * NxTenantConnectionCap is the number of tenant backends allowed at once:
 * nx.max_tenant_connections, but never more than max_connections less
 * superuser_reserved_connections less nx.tenant_connection_reserve, so
 * that the control API, the router and the supervisor always find a slot.
 */
int
NxTenantConnectionCap(void)
{
	int			bound = MaxConnections - ReservedBackends - nx_tenant_connection_reserve;

	if (nx_max_tenant_connections >= 0 && nx_max_tenant_connections < bound)
		return nx_max_tenant_connections;
	return Max(bound, 0);
}

/* NxTenantGucInit defines the settings; called once from _PG_init. */
void
NxTenantGucInit(void)
{
	DefineCustomIntVariable("nx.tenant_temp_file_limit",
							"temp_file_limit the supervisor sets on every tenant role (-1: none).",
							"A superuser-only parameter: a tenant cannot raise it for itself.",
							&nx_tenant_temp_file_limit, 1024 * 1024, -1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.tenant_idle_in_transaction_timeout",
							"Transactions of a tenant left idle longer than this are ended (0: never).",
							"Set on every tenant role as idle_in_transaction_session_timeout; the supervisor "
							"also ends sessions left idle in a transaction twice as long.",
							&nx_tenant_idle_in_transaction_timeout, 5 * 60 * 1000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.max_tenant_connections",
							"Tenant logins allowed at once, all sandboxes together (-1: all but the reserve).",
							"Never more than max_connections - superuser_reserved_connections - "
							"nx.tenant_connection_reserve.",
							&nx_max_tenant_connections, -1, -1, INT_MAX / 2,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.tenant_connection_reserve",
							"Connections tenants may never take: kept for the control API, the router and the supervisor.",
							NULL, &nx_tenant_connection_reserve, 10, 0, INT_MAX / 2,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.database_quota_interval",
							"How often the supervisor measures the databases tenants used since the last time.",
							"Bounds how far a tenant can write past its database_quota before writes are refused.",
							&nx_database_quota_interval, 1000, 100, 60 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
}
