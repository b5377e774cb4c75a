/*
 * src/supervisor/provision.c
 *	  Per-sandbox roles and databases: create what the rows want, drop what
 *	  no row wants, and keep a small pool of empty databases so that a new
 *	  sandbox's database is a rename away (0.6 ms) instead of a CREATE
 *	  DATABASE (about 60 ms on our reference machine).
 *
 * Ours are exactly: login roles that are members of nx_tenant, databases
 * owned by them, and databases named nx_pool_<time>_<n> owned by the
 * bootstrap superuser.  Nothing else is ever dropped.  The databases and roles of branch and empty previews are
 * dropped here too once their deployment is gone; while it lives, and
 * while a copy runs under a temporary name, branch.c owns them.  Identifiers are quoted with quote_identifier and passwords are
 * stored as SCRAM verifiers computed here, so no plaintext password ever
 * appears in a statement (or a server log).
 *
 * Glossary:
 *	  pool database	an empty database named nx_pool_<n>, owned by the
 *					cluster owner, CONNECT revoked from PUBLIC.
 */
#include "branch.h"
#include "provision.h"
#include "sql_exec.h"
#include "supervisor.h"
#include "userns_premap.h"

#include "catalog/pg_authid.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/*
 * SpiColumn runs a query and returns one column as C strings.  Not SPI's
 * read-only mode: that reuses the transaction's first snapshot, which
 * would not see the roles NxProvisionRoles just created, and their
 * databases would wait for the next pass.
 */
static List *
SpiColumn(const char *sql, int column)
{
	List	   *values = NIL;

	if (SPI_execute(sql, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: query failed: %s", sql);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, column);

		values = lappend(values, v ? pstrdup(v) : pstrdup(""));
	}
	return values;
}

/*
 * NxProvisionRoles creates the missing tenant roles and corrects connection
 * limits, inside the caller's transaction.  A sandbox whose role it creates
 * is new: its user namespace is mapped now, ahead of its first start
 * (userns_premap.c).
 */
void
NxProvisionRoles(const NxHostSetup *host)
{
	const char *sql =
		"SELECT s.role_name, p.db_password, s.connection_limit::text, "
		"       r.oid IS NOT NULL AS exists, "
		"       coalesce(" IS_TENANT("r.oid") ", false) AS is_tenant, "
		"       r.rolconnlimit = s.connection_limit AS limit_ok, "
		"       s.name, s.uid_offset "
		"FROM nx.sandboxes s JOIN nx.sandbox_secrets p ON p.sandbox = s.name "
		"LEFT JOIN pg_catalog.pg_roles r ON r.rolname = s.role_name "
		"WHERE r.oid IS NULL OR NOT " IS_TENANT("r.oid") " OR r.rolconnlimit <> s.connection_limit";
	SPITupleTable *rows;
	uint64		n;

	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not read sandboxes");
	rows = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	t = rows->vals[i];
		char	   *role = SPI_getvalue(t, rows->tupdesc, 1);
		char	   *password = SPI_getvalue(t, rows->tupdesc, 2);
		char	   *limit = SPI_getvalue(t, rows->tupdesc, 3);
		bool		exists = strcmp(SPI_getvalue(t, rows->tupdesc, 4), "t") == 0;
		bool		is_tenant = strcmp(SPI_getvalue(t, rows->tupdesc, 5), "t") == 0;
		char	   *stmt;
		char	   *secret = NULL;

		if (exists && !is_tenant)
		{
			/* a DBA's role of the same name: never take it over */
			ereport(WARNING,
					(errmsg("nx supervisor: role \"%s\" exists and is not a member of nx_tenant; its sandbox will not start", role),
					 errhint("Rename or drop that role.")));
			continue;
		}
		if (exists)
			stmt = psprintf("ALTER ROLE %s CONNECTION LIMIT %s", quote_identifier(role), limit);
		else
		{
			secret = pg_be_scram_build_secret(password);
			stmt = psprintf("CREATE ROLE %s LOGIN CONNECTION LIMIT %s PASSWORD %s IN ROLE nx_tenant",
							quote_identifier(role), limit, quote_literal_cstr(secret));
		}
		if (SPI_execute(stmt, false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "nx supervisor: could not run %s", stmt);
		if (!exists)
		{
			bool		isnull;
			Datum		offset = SPI_getbinval(t, rows->tupdesc, 8, &isnull);

			NxTenantRolePasswordSet(role, secret);
			if (!isnull)
				NxUsernsPremapQueue(SPI_getvalue(t, rows->tupdesc, 7), DatumGetInt32(offset), host);
		}
	}
}

/*
 * NxPlanDatabases reads, inside the caller's transaction, what database
 * work a pass must do outside it.
 */
void
NxPlanDatabases(NxDatabasePlan *plan)
{
	MemoryContext old;

	plan->to_create = NIL;
	plan->to_create_owner = NIL;
	plan->to_drop = NIL;
	plan->pool = NIL;

	/* read with SPI, then copy into the plan's context, which outlives SPI */
	{
		List	   *create = SpiColumn(
									   "SELECT s.database_name FROM nx.sandboxes s "
									   "JOIN pg_catalog.pg_roles r ON r.rolname = s.role_name AND " IS_TENANT("r.oid") " "
									   "WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_database d WHERE d.datname = s.database_name) "
									   "ORDER BY s.created_at", 1);
		List	   *owners = SpiColumn(
									   "SELECT s.role_name FROM nx.sandboxes s "
									   "JOIN pg_catalog.pg_roles r ON r.rolname = s.role_name AND " IS_TENANT("r.oid") " "
									   "WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_database d WHERE d.datname = s.database_name) "
									   "ORDER BY s.created_at", 1);
		List	   *drop = SpiColumn(
									 "SELECT d.datname FROM pg_catalog.pg_database d "
									 "WHERE " IS_TENANT("d.datdba") " "
									 "AND NOT EXISTS (SELECT 1 FROM nx.sandboxes s WHERE s.database_name = d.datname) "
									 "AND NOT EXISTS (SELECT 1 FROM nx.kept_databases k WHERE k.database_name = d.datname) "
									 "AND NOT EXISTS (SELECT 1 FROM nx._desired_branches() b WHERE b.database_name = d.datname) "
									 "AND d.datname NOT LIKE " NX_BRANCH_TEMP_LIKE, 1);
		/*
		 * exactly the names the supervisor gives (nx_pool_<time>_<n>) and
		 * the owner it gives them: a preview database of a sandbox named
		 * "pool" is nx_pool_<deployment>, owned by its tenant, and must
		 * never be handed to another sandbox or dropped as a pool extra
		 */
		List	   *pool = SpiColumn(psprintf("SELECT datname FROM pg_catalog.pg_database "
											  "WHERE datname ~ '^nx_pool_[0-9]+_[0-9]+$' AND datdba = %u "
											  "ORDER BY datname", BOOTSTRAP_SUPERUSERID), 1);
		ListCell   *lc;

		old = MemoryContextSwitchTo(plan->context);
		foreach(lc, create)
			plan->to_create = lappend(plan->to_create, pstrdup(lfirst(lc)));
		foreach(lc, owners)
			plan->to_create_owner = lappend(plan->to_create_owner, pstrdup(lfirst(lc)));
		foreach(lc, drop)
			plan->to_drop = lappend(plan->to_drop, pstrdup(lfirst(lc)));
		foreach(lc, pool)
			plan->pool = lappend(plan->pool, pstrdup(lfirst(lc)));
		MemoryContextSwitchTo(old);
	}
}

/* GrantOwnDatabase: only the tenant role may connect to its database. */
static void
GrantOwnDatabase(const char *database, const char *role)
{
	char	   *sql;

	NxBeginTransaction("nx: grant database");
	sql = psprintf("ALTER DATABASE %s OWNER TO %s", quote_identifier(database), quote_identifier(role));
	SPI_execute(sql, false, 0);
	sql = psprintf("REVOKE ALL ON DATABASE %s FROM PUBLIC", quote_identifier(database));
	SPI_execute(sql, false, 0);
	sql = psprintf("GRANT CONNECT, TEMPORARY ON DATABASE %s TO %s",
				   quote_identifier(database), quote_identifier(role));
	SPI_execute(sql, false, 0);
	NxCommitTransaction();
}

/*
 * TakeFromPool renames a pool database to database; false if the pool is
 * empty or the rename failed (the caller then creates one).
 */
static bool
TakeFromPool(NxDatabasePlan *plan, const char *database)
{
	char	   *pool_db;

	if (plan->pool == NIL)
		return false;
	pool_db = linitial(plan->pool);
	plan->pool = list_delete_first(plan->pool);
	return NxTryTopLevel(psprintf("ALTER DATABASE %s RENAME TO %s",
								  quote_identifier(pool_db), quote_identifier(database)));
}

/*
 * NxApplyDatabases does the plan, each statement in its own transaction:
 * databases for new sandboxes (from the pool when it can), drops of
 * databases no row wants, and then tops the pool up.  Returns true when it
 * created a database (deployments waiting for it can start now).
 */
bool
NxApplyDatabases(NxDatabasePlan *plan)
{
	ListCell   *lc,
			   *lo;
	bool		created = false;

	forboth(lc, plan->to_create, lo, plan->to_create_owner)
	{
		const char *database = lfirst(lc);
		const char *role = lfirst(lo);

		if (TakeFromPool(plan, database) ||
			NxTryTopLevel(psprintf("CREATE DATABASE %s OWNER %s",
								   quote_identifier(database), quote_identifier(role))))
		{
			GrantOwnDatabase(database, role);
			created = true;
			ereport(LOG, (errmsg("nx supervisor: database \"%s\" ready for role \"%s\"", database, role)));
		}
	}
	foreach(lc, plan->to_drop)
	{
		const char *database = lfirst(lc);

		if (NxTryTopLevel(psprintf("DROP DATABASE %s WITH (FORCE)", quote_identifier(database))))
			ereport(LOG, (errmsg("nx supervisor: dropped database \"%s\"", database)));
	}

	/* keep nx.database_pool_size empty databases ready */
	while (list_length(plan->pool) < nx_database_pool_size)
	{
		char		name[NAMEDATALEN];

		snprintf(name, sizeof(name), "nx_pool_%lld_%d",
				 (long long) GetCurrentTimestamp(), list_length(plan->pool));
		if (!NxTryTopLevel(psprintf("CREATE DATABASE %s", quote_identifier(name))))
			break;
		NxBeginTransaction("nx: pool database");
		SPI_execute(psprintf("REVOKE ALL ON DATABASE %s FROM PUBLIC", quote_identifier(name)), false, 0);
		NxCommitTransaction();
		plan->pool = lappend(plan->pool, pstrdup(name));
	}
	while (list_length(plan->pool) > nx_database_pool_size)
	{
		char	   *extra = llast(plan->pool);

		plan->pool = list_delete_last(plan->pool);
		NxTryTopLevel(psprintf("DROP DATABASE %s WITH (FORCE)", quote_identifier(extra)));
	}
	return created;
}

/*
 * NxDropUnwantedRoles drops tenant roles that no sandbox or kept database
 * wants (after their databases are gone), inside the caller's transaction.
 */
void
NxDropUnwantedRoles(void)
{
	List	   *roles = SpiColumn(
								  "SELECT r.rolname FROM pg_catalog.pg_roles r "
								  "WHERE " IS_TENANT("r.oid") " "
								  "AND NOT EXISTS (SELECT 1 FROM nx.sandboxes s WHERE s.role_name = r.rolname) "
								  "AND NOT EXISTS (SELECT 1 FROM nx.kept_databases k WHERE k.role_name = r.rolname) "
								  "AND NOT EXISTS (SELECT 1 FROM nx._desired_branches() b WHERE b.role_name = r.rolname) "
								  "AND r.rolname NOT LIKE " NX_BRANCH_TEMP_LIKE " "
								  "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_database d WHERE d.datdba = r.oid)", 1);
	ListCell   *lc;

	foreach(lc, roles)
	{
		char	   *sql = psprintf("DROP ROLE %s", quote_identifier(lfirst(lc)));

		if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "nx supervisor: could not run %s", sql);
		ereport(LOG, (errmsg("nx supervisor: dropped role \"%s\"", (char *) lfirst(lc))));
	}
}
