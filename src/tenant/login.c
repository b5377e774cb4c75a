/*
 * src/tenant/login.c
 *	  The aggregate cap on tenant logins (invariant I14).  Each role's
 *	  CONNECTION LIMIT bounds one sandbox; this bounds all of them together,
 *	  so that however many sandboxes exist, the control API, the router and
 *	  the supervisor still find a connection slot.
 *
 * Counted at login, in ClientAuthentication_hook (chained to any previous
 * hook), with an atomic counter in shared memory: a login that would take
 * the count past NxTenantConnectionCap() ends with FATAL, so the cap holds
 * exactly even when many tenants log in at once.  The backend gives its
 * place back when it exits.
 */
#include "tenant.h"

/*
 * libpq-be.h includes gssapi/gssapi.h on builds with GSSAPI (Debian's),
 * from a package the server headers do not depend on (see compat.h).  We
 * read only Port.user_name, which comes before anything GSSAPI changes, and
 * Port.gss is a pointer either way, so the struct's layout is the same.
 */
#undef ENABLE_GSS
#include "libpq/auth.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/acl.h"

static ClientAuthentication_hook_type prev_client_auth_hook = NULL;

/* NxTenantLogout gives the exiting backend's place back. */
static void
NxTenantLogout(int code, Datum arg)
{
	pg_atomic_fetch_sub_u32(&NxTenant->tenant_connections, 1);
}

/*
 * IsTenantRole: is the role a member of nx_tenant?  Looked up in the
 * (shared) catalogs, as pg_hba.conf's +nx_tenant is at this point.
 */
static bool
IsTenantRole(const char *role_name)
{
	Oid			role = get_role_oid(role_name, true);
	Oid			tenant = get_role_oid("nx_tenant", true);

	return OidIsValid(role) && OidIsValid(tenant) &&
		is_member_of_role_nosuper(role, tenant);
}

/*
 * NxClientAuthentication counts a tenant login that authenticated, and
 * refuses it when the tenants together already hold the cap.
 */
static void
NxClientAuthentication(Port *port, int status)
{
	uint32		before;
	int			cap;

	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
	if (status != STATUS_OK || NxTenant == NULL || port->user_name == NULL ||
		!IsTenantRole(port->user_name))
		return;

	cap = NxTenantConnectionCap();
	before = pg_atomic_fetch_add_u32(&NxTenant->tenant_connections, 1);
	if ((int64) before + 1 > cap)
	{
		pg_atomic_fetch_sub_u32(&NxTenant->tenant_connections, 1);
		ereport(FATAL,
				(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
				 errmsg("too many connections for tenant roles"),
				 errdetail("The sandboxes together may hold %d connections (nx.max_tenant_connections, "
						   "at most max_connections %d - superuser_reserved_connections - "
						   "nx.tenant_connection_reserve %d).",
						   cap, MaxConnections, nx_tenant_connection_reserve),
				 errhint("Close idle connections (use a connection pool with fewer connections), "
						 "or ask an administrator to raise nx.max_tenant_connections or max_connections.")));
	}
	before_shmem_exit(NxTenantLogout, (Datum) 0);
}

/* NxTenantLoginInit installs the hook; called from _PG_init when preloading. */
void
NxTenantLoginInit(void)
{
	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = NxClientAuthentication;
}
