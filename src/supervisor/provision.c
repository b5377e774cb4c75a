/*
 * src/supervisor/provision.c
 *	  Per-sandbox roles and databases: create what the rows want, drop what
 *	  no row wants, and keep a small pool of empty databases so that a new
 *	  sandbox's database is a rename away (0.6 ms) instead of a CREATE
 *	  DATABASE (about 60 ms on our reference machine).
 *
 * A new sandbox's role (with its password and settings) and its database
 * from the pool are made in one transaction, the first of the pass: they
 * appear together, with one commit, before the rest of the pass runs.
 * The role itself was usually made ahead, with its password (role_pool.c),
 * and is only renamed here.
 *
 * Ours are exactly: login roles that are members of nx_tenant, databases
 * owned by them, and databases named nx_pool_<time>_<n> owned by the
 * bootstrap superuser.  Nothing else is ever dropped.  The databases and
 * roles of branch and empty previews are dropped here too once their
 * deployment is gone; while it lives, and while a copy runs under a
 * temporary name, branch.c owns them.  Identifiers are quoted with
 * quote_identifier and passwords are stored as SCRAM verifiers computed
 * here, so no plaintext password ever appears in a statement (or a server
 * log).
 *
 * Glossary:
 *	  pool database	an empty database named nx_pool_<time>_<n>, owned by the
 *					cluster owner, CONNECT revoked from PUBLIC.
 */
#include "branch.h"
#include "provision.h"
#include "role_pool.h"
#include "sql_exec.h"
#include "supervisor.h"
#include "userns_premap.h"

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* CopyColumn appends column of SPI's result, as strings, to *list in cxt. */
static void
CopyColumn(List **list, int column, MemoryContext cxt)
{
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, column);
		MemoryContext old = MemoryContextSwitchTo(cxt);

		*list = lappend(*list, pstrdup(v ? v : ""));
		MemoryContextSwitchTo(old);
	}
}

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
	CopyColumn(&values, column, CurrentMemoryContext);
	return values;
}

/*
 * Pool takes (each a subtransaction) per transaction, at most: a
 * transaction with more than 64 subtransactions that wrote slows every
 * snapshot in the cluster while it runs.  Sandboxes past it get their
 * role created, and their pool database taken in a transaction of its own.
 */
#define NX_TAKES_PER_TRANSACTION 16

/* a pool role to become a new sandbox's (TakeRole's argument) */
typedef struct RoleTake
{
	char	   *pool_role;
	char	   *verifier;		/* the password it was made with */
	const char *role;
	const char *limit;
} RoleTake;

/*
 * TakeRole renames a role made ahead (role_pool.c) to the sandbox's role,
 * which keeps its SCRAM password, and makes it a tenant's: LOGIN, its
 * connection limit, a member of nx_tenant.
 */
static void
TakeRole(void *arg)
{
	RoleTake   *take = arg;
	const char *role = quote_identifier(take->role);
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(take->pool_role), CStringGetTextDatum(take->verifier)};

	/* still exactly as role_pool.c made it: nobody changed it since */
	if (SPI_execute_with_args("SELECT 1 FROM pg_catalog.pg_authid a WHERE a.rolname = $1 "
							  "AND a.rolpassword = $2 AND " NX_ROLE_POOL_AS_MADE("a"),
							  2, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read role \"%s\"", take->pool_role);
	if (SPI_processed != 1)
		elog(ERROR, "role \"%s\" is not as it was made", take->pool_role);
	NxRunUtility(psprintf("ALTER ROLE %s RENAME TO %s", quote_identifier(take->pool_role), role));
	NxRunUtility(psprintf("ALTER ROLE %s LOGIN CONNECTION LIMIT %s", role, take->limit));
	NxRunUtility(psprintf("GRANT nx_tenant TO %s", role));
}

/*
 * NxProvisionRoles creates the missing tenant roles, with their settings,
 * and corrects connection limits, inside the caller's transaction.  A
 * sandbox whose role it creates is new: its database and role are put in
 * plan->to_create, for NxTakePoolDatabases in the same transaction, and
 * its user namespace is mapped now, ahead of its first start
 * (userns_premap.c).
 */
void
NxProvisionRoles(const NxHostSetup *host, NxDatabasePlan *plan)
{
	const char *sql =
		"SELECT s.role_name, p.db_password, s.connection_limit::text, "
		"       r.oid IS NOT NULL AS exists, "
		"       coalesce(" IS_TENANT("r.oid") ", false) AS is_tenant, "
		"       r.rolconnlimit = s.connection_limit AS limit_ok, "
		"       s.name, s.uid_offset, s.database_name "
		"FROM nx.sandboxes s JOIN nx.sandbox_secrets p ON p.sandbox = s.name "
		"LEFT JOIN pg_catalog.pg_roles r ON r.rolname = s.role_name "
		"WHERE r.oid IS NULL OR NOT " IS_TENANT("r.oid") " OR r.rolconnlimit <> s.connection_limit";
	SPITupleTable *rows;
	uint64		n;
	int			claims = 0;

	plan->to_create = NIL;
	plan->to_create_owner = NIL;
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
			RoleTake	take;

			take.role = role;
			take.limit = limit;
			if (claims++ < NX_TAKES_PER_TRANSACTION &&
				NxRolePoolClaim(password, &take.pool_role, &take.verifier) &&
				NxTryInSubtransaction(TakeRole, &take, "could not take a pool role"))
			{
				secret = take.verifier;
				stmt = NULL;
			}
			else
			{
				secret = pg_be_scram_build_secret(password);
				stmt = psprintf("CREATE ROLE %s LOGIN CONNECTION LIMIT %s PASSWORD %s IN ROLE nx_tenant",
								quote_identifier(role), limit, quote_literal_cstr(secret));
			}
		}
		if (stmt != NULL)
			NxRunUtility(stmt);
		if (!exists)
		{
			bool		isnull;
			Datum		offset = SPI_getbinval(t, rows->tupdesc, 8, &isnull);

			MemoryContext old;

			NxTenantRoleCreated(role, secret);
			old = MemoryContextSwitchTo(plan->context);
			plan->to_create = lappend(plan->to_create, pstrdup(SPI_getvalue(t, rows->tupdesc, 9)));
			plan->to_create_owner = lappend(plan->to_create_owner, pstrdup(role));
			MemoryContextSwitchTo(old);
			if (!isnull)
				NxUsernsPremapQueue(SPI_getvalue(t, rows->tupdesc, 7), DatumGetInt32(offset), host);
		}
	}
}

/*
 * NxPlanPool reads, inside the caller's transaction, which pool databases
 * exist (into plan->pool, in plan->context, which outlives it).
 */
void
NxPlanPool(NxDatabasePlan *plan)
{
	plan->pool = NIL;
	plan->pool_failed = false;

	/*
	 * Exactly the names the supervisor gives (nx_pool_<time>_<n>) and the
	 * owner it gives them: a preview database of a sandbox named "pool"
	 * is nx_pool_<deployment>, owned by its tenant, and must never be
	 * handed to another sandbox or dropped as a pool extra.
	 */
	if (SPI_execute(psprintf("SELECT datname FROM pg_catalog.pg_database "
							 "WHERE datname ~ '^nx_pool_[0-9]+_[0-9]+$' AND datdba = %u "
							 "ORDER BY datname", BOOTSTRAP_SUPERUSERID), false, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not read the pool databases");
	CopyColumn(&plan->pool, 1, plan->context);
}

/*
 * NxPlanDatabases reads, inside the caller's transaction (after the one
 * that created roles and took pool databases), the rest of the database
 * work: tenant roles whose sandbox still has no database (the pool could
 * not give one, or an earlier pass failed), and the tenant databases no
 * row wants any more.  NxApplyDatabases does it outside a transaction.
 */
void
NxPlanDatabases(NxDatabasePlan *plan)
{
	plan->to_create = NIL;
	plan->to_create_owner = NIL;
	if (SPI_execute("SELECT s.database_name, s.role_name FROM nx.sandboxes s "
					"JOIN pg_catalog.pg_roles r ON r.rolname = s.role_name AND " IS_TENANT("r.oid") " "
					"WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_database d WHERE d.datname = s.database_name) "
					"ORDER BY s.created_at", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not read the databases to create");
	CopyColumn(&plan->to_create, 1, plan->context);
	CopyColumn(&plan->to_create_owner, 2, plan->context);

	plan->to_drop = NIL;
	if (SPI_execute("SELECT d.datname FROM pg_catalog.pg_database d "
					"WHERE " IS_TENANT("d.datdba") " "
					"AND NOT EXISTS (SELECT 1 FROM nx.sandboxes s WHERE s.database_name = d.datname) "
					"AND NOT EXISTS (SELECT 1 FROM nx.kept_databases k WHERE k.database_name = d.datname) "
					"AND NOT EXISTS (SELECT 1 FROM nx._desired_branches() b WHERE b.database_name = d.datname) "
					"AND d.datname NOT LIKE " NX_BRANCH_TEMP_LIKE, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not read the databases to drop");
	CopyColumn(&plan->to_drop, 1, plan->context);
}

/*
 * GrantStatements makes role the owner of database and the only role that
 * may connect to it, inside the caller's transaction.
 */
static void
GrantStatements(const char *database, const char *role)
{
	NxRunUtility(psprintf("ALTER DATABASE %s OWNER TO %s", quote_identifier(database), quote_identifier(role)));
	NxRunUtility(psprintf("REVOKE ALL ON DATABASE %s FROM PUBLIC", quote_identifier(database)));
	NxRunUtility(psprintf("GRANT CONNECT, TEMPORARY ON DATABASE %s TO %s",
						  quote_identifier(database), quote_identifier(role)));
}

/* GrantOwnDatabase: GrantStatements in a transaction of their own. */
static void
GrantOwnDatabase(const char *database, const char *role)
{
	NxBeginTransaction("nx: grant database");
	GrantStatements(database, role);
	NxCommitTransaction();
}

/* a pool database to hand to a new sandbox (TakeOne's argument) */
typedef struct PoolTake
{
	const char *pool_db;
	const char *database;
	const char *role;
} PoolTake;

/* TakeOne renames a pool database to the sandbox's and grants it. */
static void
TakeOne(void *arg)
{
	PoolTake   *take = arg;
	Oid			type = TEXTOID;
	Datum		value = CStringGetTextDatum(take->pool_db);

	/*
	 * A rename waits up to 5 s for other sessions to leave the database
	 * (CountOtherDBBackends), and the supervisor with it: ask first.
	 */
	if (SPI_execute_with_args("SELECT 1 FROM pg_catalog.pg_stat_activity WHERE datname = $1",
							  1, &type, &value, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the sessions of \"%s\"", take->pool_db);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("database \"%s\" is being accessed by other users", take->pool_db)));
	NxRunUtility(psprintf("ALTER DATABASE %s RENAME TO %s",
						  quote_identifier(take->pool_db), quote_identifier(take->database)));
	GrantStatements(take->database, take->role);
}

/*
 * TakeFromPool hands the next pool database to take's sandbox, inside the
 * caller's transaction and in a subtransaction of its own; a failure ends
 * the pass's takes (plan->pool_failed).  Returns whether it did.
 */
static bool
TakeFromPool(NxDatabasePlan *plan, PoolTake *take)
{
	if (plan->pool == NIL || plan->pool_failed)
		return false;
	take->pool_db = linitial(plan->pool);
	plan->pool = list_delete_first(plan->pool);
	plan->pool_failed = !NxTryInSubtransaction(TakeOne, take, "could not take a pool database");
	if (plan->pool_failed)
		return false;
	ereport(LOG, (errmsg("nx supervisor: database \"%s\" ready for role \"%s\"", take->database, take->role)));
	return true;
}

/*
 * NxTakePoolDatabases gives the sandboxes whose roles NxProvisionRoles
 * just created (the plan's to_create) databases from the pool, inside the
 * same transaction: the role and its database then commit together.  Each
 * take runs in a subtransaction: one that fails (someone is connected to
 * that pool database) is logged and left to NxPlanDatabases, whose list
 * NxApplyDatabases creates outside a transaction.
 */
void
NxTakePoolDatabases(NxDatabasePlan *plan)
{
	List	   *left = NIL;
	List	   *left_owner = NIL;
	ListCell   *lc,
			   *lo;
	MemoryContext old;
	int			takes = 0;

	forboth(lc, plan->to_create, lo, plan->to_create_owner)
	{
		PoolTake	take;

		take.database = lfirst(lc);
		take.role = lfirst(lo);
		if (takes++ < NX_TAKES_PER_TRANSACTION && TakeFromPool(plan, &take))
			continue;
		old = MemoryContextSwitchTo(plan->context);
		left = lappend(left, lfirst(lc));
		left_owner = lappend(left_owner, lfirst(lo));
		MemoryContextSwitchTo(old);
	}
	plan->to_create = left;
	plan->to_create_owner = left_owner;
}

/*
 * NxApplyDatabases does the rest of the plan, outside a transaction:
 * databases for the sandboxes the first transaction did not serve (from
 * the pool while it has some, each take in a transaction of its own, else
 * created), drops of databases no row wants, and then tops the pool up.
 */
void
NxApplyDatabases(NxDatabasePlan *plan)
{
	ListCell   *lc,
			   *lo;

	forboth(lc, plan->to_create, lo, plan->to_create_owner)
	{
		PoolTake	take;

		take.database = lfirst(lc);
		take.role = lfirst(lo);
		if (plan->pool != NIL && !plan->pool_failed)
		{
			bool		taken;

			/* past the first transaction's takes: one in a transaction */
			NxBeginTransaction("nx: pool database");
			taken = TakeFromPool(plan, &take);
			NxCommitTransaction();
			if (taken)
				continue;
		}
		if (NxTryTopLevel(psprintf("CREATE DATABASE %s OWNER %s",
								   quote_identifier(take.database), quote_identifier(take.role))))
		{
			GrantOwnDatabase(take.database, take.role);
			ereport(LOG, (errmsg("nx supervisor: database \"%s\" ready for role \"%s\"", take.database, take.role)));
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
		NxRunUtility(psprintf("DROP ROLE %s", quote_identifier(lfirst(lc))));
		ereport(LOG, (errmsg("nx supervisor: dropped role \"%s\"", (char *) lfirst(lc))));
	}
}
