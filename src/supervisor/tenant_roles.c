/*
 * src/supervisor/tenant_roles.c
 *	  Tenant roles put back the way the platform made them, at every pass:
 *	  their password (a tenant may run ALTER ROLE CURRENT_USER PASSWORD) and
 *	  their settings (ALTER ROLE CURRENT_USER SET ...), which must be
 *	  exactly temp_file_limit and idle_in_transaction_session_timeout from
 *	  nx.tenant_temp_file_limit and nx.tenant_idle_in_transaction_timeout.
 *	  temp_file_limit is superuser-only, so a tenant cannot raise it for
 *	  itself with SET either; see docs/security.md.
 *
 * A SCRAM verifier has a random salt, so the password cannot be compared
 * with a freshly built one.  The first pass after a start checks the
 * stored verifier against the password (scram_verify_plain_password, a few
 * milliseconds each); later passes only compare it with the verifier last
 * seen, which costs a string comparison.  Every repair the tenant caused
 * is an event role_repaired.
 *
 * Glossary:
 *	  wanted settings	the role's settings as the platform sets them, in
 *						pg_db_role_setting's text form
 */
#include "events.h"
#include "provision.h"
#include "sql_exec.h"
#include "supervisor.h"
#include "tenant/tenant.h"

#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/memutils.h"

extern bool scram_verify_plain_password(const char *username, const char *password,
										const char *secret);

/* what the supervisor last saw of a role (its own repairs included) */
typedef struct SeenRole
{
	char		role[NAMEDATALEN];	/* hash key */
	char	   *verifier;		/* TopMemoryContext; NULL = never seen */
	char	   *settings;		/* wanted settings last applied */
} SeenRole;

static HTAB *seen_roles = NULL;

/* Remember replaces *slot with a TopMemoryContext copy of value. */
static void
Remember(char **slot, const char *value)
{
	if (*slot)
		pfree(*slot);
	*slot = value ? MemoryContextStrdup(TopMemoryContext, value) : NULL;
}

/* InitSeenRoles makes the table of what was seen of each role, once. */
static void
InitSeenRoles(void)
{
	HASHCTL		ctl;

	if (seen_roles != NULL)
		return;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(SeenRole);
	seen_roles = hash_create("nx tenant roles", 256, &ctl, HASH_ELEM | HASH_STRINGS);
}

/* WantedSettings is the text form of the settings every tenant role has. */
static char *
WantedSettings(void)
{
	return psprintf("{temp_file_limit=%d,idle_in_transaction_session_timeout=%d}",
					nx_tenant_temp_file_limit, nx_tenant_idle_in_transaction_timeout);
}

/*
 * NxTenantRolePasswordSet: the supervisor has just set role's password to
 * this verifier (NxProvisionRoles, or a preview's role in branch.c), in
 * the current transaction.  Remembering it spares the next repair its
 * check of a role never seen: a second SCRAM hash (~3.6 ms) on the way
 * from nx.create_sandbox to a ready database.  If the transaction is
 * rolled back, a created role does not exist and the next pass creates it
 * afresh; an altered one keeps its old verifier, which then differs from
 * the remembered one and is set again (a repair, logged).
 */
void
NxTenantRolePasswordSet(const char *role, const char *verifier)
{
	SeenRole   *seen;
	bool		found;

	if (strlen(role) >= NAMEDATALEN)
		return;
	InitSeenRoles();
	seen = hash_search(seen_roles, role, HASH_ENTER, &found);
	if (!found)
		seen->verifier = seen->settings = NULL;
	Remember(&seen->verifier, verifier);
}

/* SetWantedSettings gives a role the settings every tenant role has. */
static void
SetWantedSettings(const char *r)
{
	NxRunUtility(psprintf("ALTER ROLE %s SET temp_file_limit = %d", r, nx_tenant_temp_file_limit));
	NxRunUtility(psprintf("ALTER ROLE %s SET idle_in_transaction_session_timeout = %d",
						  r, nx_tenant_idle_in_transaction_timeout));
}

/*
 * NxTenantRoleSetWanted gives a role the supervisor has just created the
 * settings every tenant role has, in the current transaction, without
 * remembering it (a preview copy's temporary role, renamed later).
 */
void
NxTenantRoleSetWanted(const char *role)
{
	SetWantedSettings(quote_identifier(role));
}

/*
 * NxTenantRoleCreated: the supervisor has just created role with this
 * verifier (NxProvisionRoles, branch.c), in the current transaction.  Its settings
 * are set in the same transaction, so that no session of the new role
 * ever runs without them (temp_file_limit above all), and both are
 * remembered: the repair that follows has nothing to check or do.
 */
void
NxTenantRoleCreated(const char *role, const char *verifier)
{
	SeenRole   *seen;

	SetWantedSettings(quote_identifier(role));
	if (strlen(role) >= NAMEDATALEN)
		return;
	NxTenantRolePasswordSet(role, verifier);
	seen = hash_search(seen_roles, role, HASH_FIND, NULL);
	Remember(&seen->settings, WantedSettings());
}

/*
 * RepairSettings removes every setting of the role (for all databases and
 * for each one) and sets the wanted ones.
 */
static void
RepairSettings(const char *role, const char *per_database)
{
	const char *r = quote_identifier(role);

	NxRunUtility(psprintf("ALTER ROLE %s RESET ALL", r));
	if (per_database && per_database[0])
	{
		/* per_database: the names of databases with settings, one per line */
		char	   *list = pstrdup(per_database);
		char	   *save = NULL;

		for (char *db = strtok_r(list, "\n", &save); db; db = strtok_r(NULL, "\n", &save))
			NxRunUtility(psprintf("ALTER ROLE %s IN DATABASE %s RESET ALL", r, quote_identifier(db)));
	}
	SetWantedSettings(r);
}

/*
 * NxRepairTenantRoles puts back the password and settings of every tenant
 * role a sandbox (or a branch deployment) wants, inside the caller's
 * transaction, after NxProvisionRoles.
 */
void
NxRepairTenantRoles(void)
{
	const char *sql =
		"WITH wanted AS ("
		"  SELECT s.role_name AS role, p.db_password AS password, s.name AS sandbox, s.owner "
		"  FROM nx.sandboxes s JOIN nx.sandbox_secrets p ON p.sandbox = s.name "
		"  UNION ALL "
		"  SELECT b.role_name, b.password, b.sandbox, s.owner "
		"  FROM nx._desired_branches() b JOIN nx.sandboxes s ON s.name = b.sandbox) "
		"SELECT w.role, w.password, w.sandbox, w.owner, a.rolpassword, "
		"  coalesce(x0.setconfig::text, '') AS settings, pd.per_database "
		"FROM wanted w JOIN pg_catalog.pg_authid a ON a.rolname = w.role "
		"LEFT JOIN pg_catalog.pg_db_role_setting x0 ON x0.setrole = a.oid AND x0.setdatabase = 0 "
		/*
		 * grouped once: pg_db_role_setting's index leads with the database,
		 * so a lookup by role per row scanned all of it (1,000 roles: 8 ms)
		 */
		"LEFT JOIN (SELECT x.setrole, string_agg(d.datname, E'\\n') AS per_database "
		"           FROM pg_catalog.pg_db_role_setting x "
		"           JOIN pg_catalog.pg_database d ON d.oid = x.setdatabase "
		"           GROUP BY x.setrole) pd ON pd.setrole = a.oid "
		"WHERE " IS_TENANT("a.oid");
	char	   *wanted = WantedSettings();
	SPITupleTable *rows;
	uint64		n;

	InitSeenRoles();
	if (SPI_execute(sql, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not read tenant roles");
	rows = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	t = rows->vals[i];
		TupleDesc	td = rows->tupdesc;
		char	   *role = SPI_getvalue(t, td, SPI_fnumber(td, "role"));
		char	   *password = SPI_getvalue(t, td, SPI_fnumber(td, "password"));
		char	   *verifier = SPI_getvalue(t, td, SPI_fnumber(td, "rolpassword"));
		char	   *settings = SPI_getvalue(t, td, SPI_fnumber(td, "settings"));
		char	   *per_database = SPI_getvalue(t, td, SPI_fnumber(td, "per_database"));
		bool		found;
		SeenRole   *seen;
		bool		password_changed = false;
		bool		settings_changed = false;

		if (strlen(role) >= NAMEDATALEN)
			continue;
		seen = hash_search(seen_roles, role, HASH_ENTER, &found);
		if (!found)
		{
			seen->verifier = NULL;
			seen->settings = NULL;
		}

		/* the password: compared with what we saw, checked when we saw nothing */
		if (seen->verifier == NULL || verifier == NULL || strcmp(seen->verifier, verifier) != 0)
		{
			if (verifier == NULL || seen->verifier != NULL ||
				!scram_verify_plain_password(role, password, verifier))
			{
				char	   *secret = pg_be_scram_build_secret(password);

				NxRunUtility(psprintf("ALTER ROLE %s PASSWORD %s", quote_identifier(role),
							 quote_literal_cstr(secret)));
				verifier = secret;
				password_changed = true;
			}
			Remember(&seen->verifier, verifier);
		}

		/* the settings: exactly the wanted ones, for every database */
		if (strcmp(settings, wanted) != 0 || per_database != NULL)
		{
			/*
			 * A new role (or one of 0.3.0) has none: set them quietly.  A
			 * change of the nx.tenant_* settings alone is the
			 * administrator's, not the tenant's: no event either.
			 */
			settings_changed = per_database != NULL ||
				(settings[0] != '\0' &&
				 (seen->settings == NULL || strcmp(settings, seen->settings) != 0));
			RepairSettings(role, per_database);
		}
		Remember(&seen->settings, wanted);

		if (password_changed || settings_changed)
		{
			StringInfoData details;

			initStringInfo(&details);
			appendStringInfoString(&details, "{\"role\": ");
			escape_json(&details, role);
			appendStringInfo(&details, ", \"password\": %s, \"settings\": %s}",
							 password_changed ? "true" : "false",
							 settings_changed ? "true" : "false");

			ereport(LOG, (errmsg("nx supervisor: role \"%s\" repaired (%s%s%s)", role,
								 password_changed ? "password" : "",
								 password_changed && settings_changed ? ", " : "",
								 settings_changed ? "settings" : "")));
			NxQueueEvent("role_repaired",
						 SPI_getvalue(t, td, SPI_fnumber(td, "sandbox")),
						 SPI_getvalue(t, td, SPI_fnumber(td, "owner")), 0, details.data);
		}
	}
}
