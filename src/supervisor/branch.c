/*
 * src/supervisor/branch.c
 *	  Databases of their own for preview deployments (database_mode branch
 *	  or empty, see nx._desired_branches): the supervisor makes them, copies
 *	  production's data into a branch, watches the copy, and drops what no
 *	  deployment wants any more.  nx.branches records each one's state.
 *
 * empty	the role nx_<sandbox>_<id> and an empty database of that name,
 *			owned by it: state ready at once.
 * branch	the copy runs under a temporary name, nx__branch_<id>, for both
 *			the role and the database (pg_hba's "sameuser" rule lets a tenant
 *			role into the database of its own name only), by nx-branch-copy
 *			(src/branchcopy/): pg_dump as the production tenant role piped
 *			into pg_restore as the temporary role, never as a superuser.  When
 *			both succeed, one transaction renames the database and the role
 *			to nx_<sandbox>_<id> and marks the row ready: a name that is not
 *			temporary always holds a complete copy, and the deployment starts
 *			only then (nx._desired_deployments).
 *
 * The copy runs asynchronously as a low-priority child; the wait loop
 * reaps it (SIGCHLD sets the latch) and polls it every NX_BRANCH_POLL_MS
 * (NxBranchesTick): progress (pg_stat_progress_copy of the restore's
 * backend), and lock yielding: pg_dump holds ACCESS SHARE on every table
 * until it ends, so when a production backend has waited more than
 * NX_YIELD_AFTER_MS for a lock the dump holds (an ALTER TABLE, say), the
 * copy is ended at once (its backend terminated), the temporary database
 * dropped, and the copy started again from scratch after a backoff.  The
 * row stays copying; attempts counts the starts.
 *
 * A failed copy (state failed, last_error, event branch_failed) is tried
 * again after an nx.start or nx.restart of its deployment.
 *
 * After a supervisor restart, a row found copying has no child any more
 * (it died with us: PR_SET_PDEATHSIG): the temporary database is dropped
 * and the copy starts again.  Backends of copies of an earlier supervisor
 * are terminated on the first pass.
 *
 * Removal: a deployment removed or its sandbox dropped leaves its row
 * without a desired branch: the row is deleted and a running copy killed
 * here; the database and role themselves go the way of every tenant
 * database no row wants (provision.c), kept databases excepted.
 *
 * Glossary:
 *	  copy		one run of nx-branch-copy for one deployment (a slot of
 *				copies[]); it may wait in backoff between runs.
 *	  temporary name	nx__branch_<id>: no sandbox's database or role can
 *				have it (sandbox names have no underscore).
 */
#include "branch.h"
#include "events.h"
#include "files.h"
#include "hostsetup.h"
#include "nx_sandbox.h"
#include "provision.h"
#include "quota.h"
#include "requests.h"
#include "spawn.h"
#include "sql_exec.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#define NX_MAX_COPIES 4			/* copies running at once */
#define NX_BRANCH_POLL_MS 250	/* progress and lock checks while copying */
#define NX_YIELD_AFTER_MS 500	/* a production lock wait the copy allows */
#define NX_BACKOFF_MAX_MS 30000
#define NX_ERROR_TAIL 1500		/* bytes of stderr kept as last_error */

typedef enum NxCopyState
{
	NX_COPY_FREE,
	NX_COPY_RUNNING,			/* nx-branch-copy runs */
	NX_COPY_EXITED,				/* it ended; the next tick finishes it */
	NX_COPY_BACKOFF				/* it yielded; starts again at retry_at */
} NxCopyState;

typedef struct NxCopy
{
	NxCopyState state;
	int64		deployment;
	pid_t		pid;			/* nx-branch-copy */
	int			wait_status;
	bool		yielded;		/* ended by us for a production lock wait */
	char		yield_reason[256];
	char		sandbox[64];
	char		owner[NAMEDATALEN];
	char		temp[NAMEDATALEN];
	char		final[NAMEDATALEN];
	char		source_db[NAMEDATALEN];
	char		appname[64];	/* application_name prefix of its backends */
	char		errpath[MAXPGPATH];
	int			dump_backend;	/* pids of its backends, 0 = not seen yet */
	int			restore_backend;
	Oid			current_rel;	/* the table the restore is copying now */
	int64		current_bytes;
	int64		done_bytes;		/* of the tables copied before it */
	TimestampTz started_at;
	TimestampTz retry_at;
	TimestampTz total_at;		/* when bytes_total was last measured */
} NxCopy;

/* one row of nx._desired_branches, read in a pass */
typedef struct NxBranchRow
{
	int64		deployment;
	char	   *sandbox;
	char	   *owner;
	char	   *mode;
	char	   *name;
	char	   *password;
	int			connection_limit;
	char	   *source_db;
	char	   *source_role;
	char	   *source_password;
	char	   *state;			/* NULL: no nx.branches row yet */
	int			attempts;
	bool		final_exists;
	bool		retry;			/* failed, and nx.start or nx.restart since */
} NxBranchRow;

static NxCopy copies[NX_MAX_COPIES];
static bool first_pass = true;
static TimestampTz next_poll = 0;

/* FindCopy: the copy slot of a deployment, or NULL. */
static NxCopy *
FindCopy(int64 deployment)
{
	for (int i = 0; i < NX_MAX_COPIES; i++)
		if (copies[i].state != NX_COPY_FREE && copies[i].deployment == deployment)
			return &copies[i];
	return NULL;
}

/* CopyActive: does the copy hold a temporary database (running or ended)? */
static bool
CopyActive(const NxCopy *c)
{
	return c->state == NX_COPY_RUNNING || c->state == NX_COPY_EXITED;
}

/* TempName: the temporary name of a deployment's copy (role and database). */
static void
TempName(char *out, int64 deployment)
{
	snprintf(out, NAMEDATALEN, "nx__branch_%lld", (long long) deployment);
}

/* HelperPath: where nx-branch-copy is installed. */
static const char *
HelperPath(void)
{
	static char path[MAXPGPATH];

	if (path[0] == '\0')
		snprintf(path, sizeof(path), "%s/nx_sandbox/nx-branch-copy", pkglib_path);
	return path;
}

/* BinDir: the directory of the server's programs, pg_dump's too. */
static const char *
BinDir(void)
{
	static char dir[MAXPGPATH];

	if (dir[0] == '\0')
	{
		strlcpy(dir, my_exec_path, sizeof(dir));
		get_parent_directory(dir);
	}
	return dir;
}

/*
 * LowerPriority gives a process of ours (a child, or the backend serving
 * it: the same OS user) nice 10 and the lowest best-effort I/O priority.
 * Failures only cost speed.
 */
static void
LowerPriority(int pid)
{
	(void) setpriority(PRIO_PROCESS, pid, 10);
	(void) syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */ , pid, (2 << 13) | 7);
}

/* ReadTail returns the last NX_ERROR_TAIL bytes of a file, trimmed. */
static char *
ReadTail(const char *path)
{
	bool		cut;
	char	   *buf = NxReadFileTail(path, NX_ERROR_TAIL, &cut);
	char	   *start;
	size_t		n;

	if (buf == NULL)
		return pstrdup("(no output)");
	/* from the first whole line, without the final newline */
	start = (cut && strchr(buf, '\n')) ? strchr(buf, '\n') + 1 : buf;
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	start = pstrdup(start[0] ? start : "(no output)");
	pfree(buf);
	return start;
}

/*
 * EnsureTenantRole makes name a login role in nx_tenant with the given
 * password and connection limit (created, or corrected), like a sandbox's
 * role (provision.c); caller's transaction.  False when a role of that
 * name exists that is not ours.  remember: tell the repair of tenant roles
 * the verifier set (NxTenantRolePasswordSet); not for a copy's temporary
 * role, which the repair never looks up and which is renamed: the final
 * name's role is checked afresh, since restore code of the tenant's ran
 * as it.
 */
static bool
EnsureTenantRole(const char *name, const char *password, int limit, bool remember)
{
	Oid			type = TEXTOID;
	Datum		value = CStringGetTextDatum(name);
	char	   *verifier = pg_be_scram_build_secret(password);
	const char *secret = quote_literal_cstr(verifier);

	if (SPI_execute_with_args("SELECT " IS_TENANT("r.oid") " FROM pg_catalog.pg_roles r WHERE r.rolname = $1",
							  1, &type, &value, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not read roles");
	if (SPI_processed == 0)
	{
		NxRunUtility(psprintf("CREATE ROLE %s LOGIN CONNECTION LIMIT %d PASSWORD %s IN ROLE nx_tenant",
							  quote_identifier(name), limit, secret));
		/* with its settings, in the same transaction (temp_file_limit) */
		if (remember)
			NxTenantRoleCreated(name, verifier);
		else
			NxTenantRoleSetWanted(name);
		return true;
	}
	if (strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "t") != 0)
	{
		ereport(WARNING,
				(errmsg("nx supervisor: role \"%s\" exists and is not a member of nx_tenant; its preview database will not be made", name),
				 errhint("Rename or drop that role.")));
		return false;
	}
	NxRunUtility(psprintf("ALTER ROLE %s CONNECTION LIMIT %d PASSWORD %s",
						  quote_identifier(name), limit, secret));
	if (remember)
		NxTenantRolePasswordSet(name, verifier);
	return true;
}

/*
 * CreateOwnDatabase creates database name owned by role name, which alone
 * may connect to it (as a sandbox's database); false if it could not.
 */
static bool
CreateOwnDatabase(const char *name)
{
	const char *q = quote_identifier(name);

	if (!NxTryTopLevel(psprintf("CREATE DATABASE %s OWNER %s", q, q)))
		return false;
	NxQuotaRequestCheck();
	NxBeginTransaction("nx: branch database");
	NxRunUtility(psprintf("REVOKE ALL ON DATABASE %s FROM PUBLIC", q));
	NxRunUtility(psprintf("GRANT CONNECT, TEMPORARY ON DATABASE %s TO %s", q, q));
	NxCommitTransaction();
	return true;
}

/*
 * SetRow upserts a deployment's nx.branches row (caller's transaction):
 * state, and for a start of a copy (starting) attempts + 1, the start
 * time, progress reset and bytes_total measured.
 */
static void
SetRow(int64 deployment, const char *name, const char *state, bool starting,
	   const char *source_db, const char *last_error)
{
	Oid			types[5] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	values[0] = Int64GetDatum(deployment);
	values[1] = CStringGetTextDatum(name);
	values[2] = CStringGetTextDatum(state);
	values[3] = CStringGetTextDatum(source_db ? source_db : "");
	nulls[3] = source_db ? ' ' : 'n';
	values[4] = CStringGetTextDatum(last_error ? last_error : "");
	nulls[4] = last_error ? ' ' : 'n';
	if (SPI_execute_with_args(starting ?
							  "INSERT INTO nx.branches AS b (deployment, database_name, state, attempts, "
							  "  bytes_copied, bytes_total, started_at, finished_at, last_error) "
							  "VALUES ($1, $2, $3, 1, 0, pg_catalog.pg_database_size($4::name), pg_catalog.now(), NULL, $5) "
							  "ON CONFLICT (deployment) DO UPDATE SET state = excluded.state, "
							  "  attempts = b.attempts + 1, bytes_copied = 0, bytes_total = excluded.bytes_total, "
							  "  started_at = excluded.started_at, finished_at = NULL, last_error = excluded.last_error"
							  :
							  "INSERT INTO nx.branches AS b (deployment, database_name, state, attempts, "
							  "  bytes_copied, started_at, finished_at, last_error) "
							  "VALUES ($1, $2, $3, 1, 0, pg_catalog.now(), pg_catalog.now(), $5) "
							  "ON CONFLICT (deployment) DO UPDATE SET state = excluded.state, "
							  "  finished_at = excluded.finished_at, last_error = excluded.last_error, "
							  "  bytes_copied = CASE WHEN excluded.state = 'ready' THEN coalesce(b.bytes_total, b.bytes_copied) "
							  "                      ELSE b.bytes_copied END",
							  5, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "nx supervisor: could not write nx.branches");
}

/*
 * KillCopy ends a copy now: nx-branch-copy is killed (pg_dump and
 * pg_restore die with it) and, inside the caller's transaction, its
 * backends are terminated, so that the dump's locks go at once.
 */
static void
KillCopy(NxCopy *c)
{
	Oid			type = TEXTOID;
	Datum		value = CStringGetTextDatum(psprintf("%s/%%", c->appname));

	if (c->state == NX_COPY_RUNNING && c->pid > 0)
		kill(c->pid, SIGKILL);
	if (SPI_execute_with_args("SELECT pg_catalog.pg_terminate_backend(a.pid) FROM pg_catalog.pg_stat_activity a "
							  "WHERE a.application_name LIKE $1",
							  1, &type, &value, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not end the backends of a copy");
}

/*
 * SpawnCopy starts nx-branch-copy for c: passwords in its environment,
 * its stderr (and its tools') to c->errpath.  False if it could not.
 */
static bool
SpawnCopy(NxCopy *c, const NxBranchRow *row, const NxHostSetup *host)
{
	char		port[16];
	char	   *argv[10];
	char	   *envp[5];
	char		dir[MAXPGPATH];
	posix_spawn_file_actions_t actions;
	int			rc;

	NxStateDirPath(dir, "branches", NULL);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
	{
		ereport(LOG, (errmsg("nx supervisor: could not create \"%s\": %m", dir)));
		return false;
	}
	snprintf(c->errpath, sizeof(c->errpath), "%s/%lld.err", dir, (long long) c->deployment);
	snprintf(port, sizeof(port), "%d", PostPortNumber);
	argv[0] = (char *) HelperPath();
	argv[1] = (char *) BinDir();
	argv[2] = (char *) host->pg_socket_dir;
	argv[3] = port;
	argv[4] = row->source_db;
	argv[5] = row->source_role;
	argv[6] = c->temp;
	argv[7] = c->temp;
	argv[8] = c->appname;
	argv[9] = NULL;
	envp[0] = psprintf("NX_SRC_PASSWORD=%s", row->source_password);
	envp[1] = psprintf("NX_DST_PASSWORD=%s", row->password);
	envp[2] = "PATH=/usr/bin:/bin";
	envp[3] = psprintf("NX_COPY_RATE=%lld", (long long) nx_branch_copy_rate * 1024 * 1024);
	envp[4] = NULL;

	/* the child's 0-2; NxSpawnChild closes the rest and resets the signals */
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&actions, 1, c->errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&actions, 1, 2);
	rc = NxSpawnChild(&c->pid, HelperPath(), &actions, argv, envp);
	explicit_bzero(envp[0], strlen(envp[0]));
	explicit_bzero(envp[1], strlen(envp[1]));
	if (rc != 0)
	{
		ereport(LOG, (errmsg("nx supervisor: could not run %s: %s", HelperPath(), strerror(rc))));
		return false;
	}
	LowerPriority(c->pid);
	return true;
}

/*
 * StartCopy starts (or starts again, from scratch) the copy of a branch:
 * temporary role and an empty temporary database, the row copying with
 * attempts + 1, then nx-branch-copy.  A failure to start marks it failed.
 */
static void
StartCopy(NxCopy *c, const NxBranchRow *row, const NxHostSetup *host)
{
	char		temp[NAMEDATALEN];
	bool		ok;

	TempName(temp, row->deployment);
	NxTryTopLevel(psprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", quote_identifier(temp)));
	NxBeginTransaction("nx: branch role");
	ok = EnsureTenantRole(temp, row->password, row->connection_limit, false);
	NxCommitTransaction();
	if (!ok)
		return;
	ok = CreateOwnDatabase(temp);

	memset(c, 0, sizeof(*c));
	c->deployment = row->deployment;
	strlcpy(c->sandbox, row->sandbox, sizeof(c->sandbox));
	strlcpy(c->owner, row->owner, sizeof(c->owner));
	strlcpy(c->temp, temp, sizeof(c->temp));
	strlcpy(c->final, row->name, sizeof(c->final));
	strlcpy(c->source_db, row->source_db, sizeof(c->source_db));
	snprintf(c->appname, sizeof(c->appname), "nx branch %lld", (long long) row->deployment);
	c->started_at = c->total_at = GetCurrentTimestamp();

	NxBeginTransaction("nx: branch start");
	SetRow(row->deployment, row->name, "copying", true, row->source_db, NULL);
	NxCommitTransaction();
	if (ok && SpawnCopy(c, row, host))
	{
		c->state = NX_COPY_RUNNING;
		ereport(LOG, (errmsg("nx supervisor: copying database \"%s\" for deployment %lld (attempt %d)",
							 row->source_db, (long long) row->deployment, row->attempts + 1)));
		return;
	}
	NxBeginTransaction("nx: branch failed");
	SetRow(row->deployment, row->name, "failed", false, NULL,
		   ok ? "could not start nx-branch-copy (see the server log)" : "could not create its database (see the server log)");
	NxCommitTransaction();
	NxQueueEvent("branch_failed", row->sandbox, row->owner, row->deployment,
				 NxJsonObject1("error", "could not start the copy"));
	c->state = NX_COPY_FREE;
}

/*
 * MakeEmpty gives an empty-mode deployment its role and empty database;
 * ready when both exist.
 */
static void
MakeEmpty(const NxBranchRow *row)
{
	bool		ok;

	NxBeginTransaction("nx: empty database role");
	ok = EnsureTenantRole(row->name, row->password, row->connection_limit, true);
	NxCommitTransaction();
	if (!ok || !CreateOwnDatabase(row->name))
		return;
	NxBeginTransaction("nx: empty database ready");
	SetRow(row->deployment, row->name, "ready", false, NULL, NULL);
	NxCommitTransaction();
	NxQueueEvent("branch_ready", row->sandbox, row->owner, row->deployment,
				 NxJsonObject1("database", row->name));
	ereport(LOG, (errmsg("nx supervisor: empty database \"%s\" ready", row->name)));
}

/* ReadDesired reads nx._desired_branches into context (caller's transaction). */
static List *
ReadDesired(MemoryContext context)
{
	List	   *rows = NIL;
	MemoryContext old;

	if (SPI_execute("SELECT b.deployment, b.sandbox, s.owner, b.database_mode, b.database_name, "
					"       b.password, b.connection_limit, b.source_database, b.source_role, "
					"       b.source_password, b.state, b.attempts, "
					"       EXISTS (SELECT 1 FROM pg_catalog.pg_database d "
					"               JOIN pg_catalog.pg_roles r ON r.oid = d.datdba "
					"               WHERE d.datname = b.database_name AND r.rolname = b.role_name "
					"                 AND " IS_TENANT("r.oid") "), "
					"       b.state = 'failed' AND EXISTS (SELECT 1 FROM nx.events e "
					"               JOIN nx.branches x ON x.deployment = b.deployment "
					"               WHERE e.sandbox = b.sandbox AND e.deployment = b.deployment "
					"                 AND e.action IN ('start', 'restart') AND e.at > x.finished_at) "
					"FROM nx._desired_branches() b JOIN nx.sandboxes s ON s.name = b.sandbox",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not read the desired branches");
	old = MemoryContextSwitchTo(context);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		NxBranchRow *r = palloc0(sizeof(NxBranchRow));
		bool		isnull;

		r->deployment = DatumGetInt64(SPI_getbinval(t, td, 1, &isnull));
		r->sandbox = SPI_getvalue(t, td, 2);
		r->owner = SPI_getvalue(t, td, 3);
		r->mode = SPI_getvalue(t, td, 4);
		r->name = SPI_getvalue(t, td, 5);
		r->password = SPI_getvalue(t, td, 6);
		r->connection_limit = DatumGetInt32(SPI_getbinval(t, td, 7, &isnull));
		r->source_db = SPI_getvalue(t, td, 8);
		r->source_role = SPI_getvalue(t, td, 9);
		r->source_password = SPI_getvalue(t, td, 10);
		r->state = SPI_getvalue(t, td, 11);
		r->attempts = DatumGetInt32(SPI_getbinval(t, td, 12, &isnull));
		r->final_exists = DatumGetBool(SPI_getbinval(t, td, 13, &isnull));
		r->retry = DatumGetBool(SPI_getbinval(t, td, 14, &isnull)) && !isnull;
		rows = lappend(rows, r);
	}
	MemoryContextSwitchTo(old);
	return rows;
}

/*
 * ForgetUnwanted deletes the rows of deployments that want no database of
 * their own any more (removed, sandbox dropped) and kills their copies;
 * on the first pass it also ends the backends of an earlier supervisor's
 * copies.  Caller's transaction.
 */
static void
ForgetUnwanted(void)
{
	if (first_pass &&
		SPI_execute("SELECT pg_catalog.pg_terminate_backend(a.pid) FROM pg_catalog.pg_stat_activity a "
					"WHERE a.application_name LIKE 'nx branch %'", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not end an earlier supervisor's copies");
	if (SPI_execute("DELETE FROM nx.branches b WHERE NOT EXISTS "
					"(SELECT 1 FROM nx._desired_branches() x WHERE x.deployment = b.deployment)",
					false, 0) != SPI_OK_DELETE)
		elog(ERROR, "nx supervisor: could not clean nx.branches");
	for (int i = 0; i < NX_MAX_COPIES; i++)
	{
		NxCopy	   *c = &copies[i];
		Oid			type = INT8OID;
		Datum		value;

		if (c->state == NX_COPY_FREE)
			continue;
		value = Int64GetDatum(c->deployment);
		if (SPI_execute_with_args("SELECT 1 FROM nx._desired_branches() x WHERE x.deployment = $1",
								  1, &type, &value, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "nx supervisor: could not read the desired branches");
		if (SPI_processed == 0)
		{
			ereport(LOG, (errmsg("nx supervisor: deployment %lld was removed: its copy ends",
								 (long long) c->deployment)));
			KillCopy(c);
			if (c->errpath[0])
				unlink(c->errpath);
			c->state = NX_COPY_FREE;
		}
	}
}

/*
 * DropTemporaries drops temporary databases and roles that no running
 * copy uses: left by a copy that ended, failed or was killed, or by an
 * earlier supervisor.
 */
static void
DropTemporaries(MemoryContext context)
{
	List	   *dbs = NIL;
	ListCell   *lc;
	MemoryContext old;

	NxBeginTransaction("nx: branch temporaries");
	if (SPI_execute("SELECT datname FROM pg_catalog.pg_database WHERE datname LIKE " NX_BRANCH_TEMP_LIKE,
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not read databases");
	old = MemoryContextSwitchTo(context);
	for (uint64 i = 0; i < SPI_processed; i++)
		dbs = lappend(dbs, pstrdup(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)));
	MemoryContextSwitchTo(old);
	NxCommitTransaction();

	foreach(lc, dbs)
	{
		bool		used = false;

		for (int i = 0; i < NX_MAX_COPIES; i++)
			if (CopyActive(&copies[i]) && strcmp(copies[i].temp, lfirst(lc)) == 0)
				used = true;
		if (!used)
			NxTryTopLevel(psprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", quote_identifier(lfirst(lc))));
	}

	NxBeginTransaction("nx: branch temporary roles");
	if (SPI_execute("SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.rolname LIKE " NX_BRANCH_TEMP_LIKE
					" AND " IS_TENANT("r.oid")
					" AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_database d WHERE d.datdba = r.oid)",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not read roles");
	{
		SPITupleTable *rows = SPI_tuptable;
		uint64		n = SPI_processed;

		for (uint64 i = 0; i < n; i++)
		{
			char	   *role = SPI_getvalue(rows->vals[i], rows->tupdesc, 1);
			bool		used = false;

			for (int j = 0; j < NX_MAX_COPIES; j++)
				if (copies[j].state != NX_COPY_FREE && strcmp(copies[j].temp, role) == 0)
					used = true;
			if (!used)
				NxRunUtility(psprintf("DROP ROLE %s", quote_identifier(role)));
		}
	}
	NxCommitTransaction();
}

/*
 * NxBranchesConverge is the branch step of a converge pass (outside any
 * transaction): rows and copies of deployments that no longer want a
 * database of their own go; empty databases are made; copies start (or
 * start again after a restart or a backoff); temporaries nothing uses are
 * dropped.
 */
void
NxBranchesConverge(const NxHostSetup *host, MemoryContext context)
{
	List	   *rows;
	ListCell   *lc;
	TimestampTz now = GetCurrentTimestamp();

	NxBeginTransaction("nx: branches");
	ForgetUnwanted();
	rows = ReadDesired(context);
	NxCommitTransaction();
	first_pass = false;

	foreach(lc, rows)
	{
		NxBranchRow *row = lfirst(lc);
		NxCopy	   *c = FindCopy(row->deployment);

		if (row->state != NULL && strcmp(row->state, "failed") == 0 && !row->retry)
			continue;			/* until nx.start or nx.restart */
		if (row->state != NULL && strcmp(row->state, "ready") == 0 && row->final_exists)
			continue;
		if (row->final_exists && c == NULL)
		{
			/* only a complete copy (or an empty database) has this name */
			NxBeginTransaction("nx: branch found");
			SetRow(row->deployment, row->name, "ready", false, NULL, NULL);
			NxCommitTransaction();
			continue;
		}
		if (strcmp(row->mode, "empty") == 0)
		{
			MakeEmpty(row);
			continue;
		}
		if (c != NULL && (CopyActive(c) || now < c->retry_at))
			continue;
		if (c == NULL)
		{
			for (int i = 0; i < NX_MAX_COPIES && c == NULL; i++)
				if (copies[i].state == NX_COPY_FREE)
					c = &copies[i];
			if (c == NULL)
				continue;		/* NX_MAX_COPIES run: it waits, copying */
		}
		StartCopy(c, row, host);
	}
	DropTemporaries(context);
}

/*
 * FinishCopy acts on a copy that ended: success renames the temporary
 * database and role to their final name and marks the row ready, in one
 * transaction; a yield (or a dump that timed out on a lock production
 * holds) drops the temporary database and waits a backoff; anything else
 * marks the row failed with the tail of the tools' stderr.
 */
static void
FinishCopy(NxCopy *c)
{
	bool		ok = WIFEXITED(c->wait_status) && WEXITSTATUS(c->wait_status) == 0;
	TimestampTz now = GetCurrentTimestamp();

	if (ok)
	{
		long		ms = TimestampDifferenceMilliseconds(c->started_at, now);

		NxBeginTransaction("nx: branch ready");
		NxRunUtility(psprintf("ALTER DATABASE %s RENAME TO %s", quote_identifier(c->temp), quote_identifier(c->final)));
		NxRunUtility(psprintf("ALTER ROLE %s RENAME TO %s", quote_identifier(c->temp), quote_identifier(c->final)));
		SetRow(c->deployment, c->final, "ready", false, NULL, NULL);
		NxCommitTransaction();
		NxQueueEvent("branch_ready", c->sandbox, c->owner, c->deployment,
					 psprintf("{\"database\": \"%s\", \"source\": \"%s\", \"seconds\": %.3f}",
							  c->final, c->source_db, ms / 1000.0)); /* names: [a-z0-9_] */
		ereport(LOG, (errmsg("nx supervisor: database \"%s\" copied to \"%s\" in %ld ms",
							 c->source_db, c->final, ms)));
		unlink(c->errpath);
		c->state = NX_COPY_FREE;
		NxRequestConverge();
		return;
	}
	else
	{
		char	   *tail = ReadTail(c->errpath);
		bool		lock_timeout = strstr(tail, "could not obtain lock") != NULL ||
			strstr(tail, "lock timeout") != NULL;

		NxTryTopLevel(psprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", quote_identifier(c->temp)));
		if (c->yielded || lock_timeout)
		{
			int			attempt = 1;
			long		backoff;

			NxBeginTransaction("nx: branch yielded");
			{
				Oid			types[2] = {INT8OID, TEXTOID};
				Datum		values[2];

				values[0] = Int64GetDatum(c->deployment);
				values[1] = CStringGetTextDatum(c->yielded ? c->yield_reason : tail);
				if (SPI_execute_with_args("UPDATE nx.branches SET last_error = $2 WHERE deployment = $1 RETURNING attempts",
										  2, types, values, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
					elog(ERROR, "nx supervisor: could not write nx.branches");
				if (SPI_processed == 1)
					attempt = atoi(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
			}
			NxCommitTransaction();
			backoff = Min((long) NX_BACKOFF_MAX_MS, 1000L << Min(attempt - 1, 5));
			c->retry_at = TimestampTzPlusMilliseconds(now, backoff);
			c->state = NX_COPY_BACKOFF;
			{
				StringInfoData details;

				initStringInfo(&details);
				appendStringInfoString(&details, "{\"reason\": ");
				escape_json(&details, c->yielded ? c->yield_reason : tail);
				appendStringInfo(&details, ", \"attempt\": %d, \"retry_in_ms\": %ld}", attempt, backoff);
				NxQueueEvent("branch_retry", c->sandbox, c->owner, c->deployment, details.data);
			}
			ereport(LOG, (errmsg("nx supervisor: copy of \"%s\" for deployment %lld yielded (%s); again in %ld ms",
								 c->source_db, (long long) c->deployment,
								 c->yielded ? c->yield_reason : "pg_dump waited for a lock", backoff)));
		}
		else
		{
			NxBeginTransaction("nx: branch failed");
			SetRow(c->deployment, c->final, "failed", false, NULL, tail);
			NxCommitTransaction();
			NxQueueEvent("branch_failed", c->sandbox, c->owner, c->deployment,
						 NxJsonObject1("error", tail));
			ereport(LOG, (errmsg("nx supervisor: copy of \"%s\" for deployment %lld failed", c->source_db,
								 (long long) c->deployment),
						  errdetail_internal("%s", tail)));
			c->state = NX_COPY_FREE;
		}
		unlink(c->errpath);
		NxRequestConverge();
	}
}

/*
 * PollRunning watches the running copies, in one transaction: finds their
 * backends, lowers the backends' priority, records progress, and ends a
 * copy whose dump holds a lock that a production backend has waited for
 * more than NX_YIELD_AFTER_MS.
 */
static void
PollRunning(void)
{
	bool		any_waiter;
	TimestampTz now = GetCurrentTimestamp();

	NxBeginTransaction("nx: branch progress");
	if (SPI_execute("SELECT a.pid, a.application_name, p.relid, p.bytes_processed "
					"FROM pg_catalog.pg_stat_activity a "
					"LEFT JOIN pg_catalog.pg_stat_progress_copy p ON p.pid = a.pid "
					"WHERE a.application_name LIKE 'nx branch %'", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not read pg_stat_activity");
	for (int i = 0; i < NX_MAX_COPIES; i++)
	{
		NxCopy	   *c = &copies[i];
		bool		copying = false;

		if (c->state != NX_COPY_RUNNING)
			continue;
		for (uint64 j = 0; j < SPI_processed; j++)
		{
			HeapTuple	t = SPI_tuptable->vals[j];
			TupleDesc	td = SPI_tuptable->tupdesc;
			bool		isnull;
			int			pid = DatumGetInt32(SPI_getbinval(t, td, 1, &isnull));
			char	   *app = SPI_getvalue(t, td, 2);
			size_t		len = strlen(c->appname);

			if (strncmp(app, c->appname, len) != 0 || app[len] != '/')
				continue;
			if (strcmp(app + len, "/dump") == 0 && c->dump_backend != pid)
			{
				c->dump_backend = pid;
				LowerPriority(pid);
			}
			else if (strcmp(app + len, "/restore") == 0)
			{
				Datum		rel = SPI_getbinval(t, td, 3, &isnull);

				if (c->restore_backend != pid)
				{
					c->restore_backend = pid;
					LowerPriority(pid);
				}
				if (!isnull)
				{
					Oid			relid = DatumGetObjectId(rel);
					int64		bytes = DatumGetInt64(SPI_getbinval(t, td, 4, &isnull));

					if (relid != c->current_rel)
					{
						c->done_bytes += c->current_bytes;
						c->current_rel = relid;
					}
					c->current_bytes = bytes;
					copying = true;
				}
			}
		}
		if (!copying && c->current_rel != InvalidOid)
		{
			c->done_bytes += c->current_bytes;
			c->current_rel = InvalidOid;
			c->current_bytes = 0;
		}
	}

	/* progress, and bytes_total measured again once a second */
	for (int i = 0; i < NX_MAX_COPIES; i++)
	{
		NxCopy	   *c = &copies[i];
		Oid			types[4] = {INT8OID, INT8OID, BOOLOID, TEXTOID};
		Datum		values[4];
		bool		measure;

		if (c->state != NX_COPY_RUNNING)
			continue;
		measure = TimestampDifferenceExceeds(c->total_at, now, 1000);
		if (measure)
			c->total_at = now;
		values[0] = Int64GetDatum(c->deployment);
		values[1] = Int64GetDatum(c->done_bytes + c->current_bytes);
		values[2] = BoolGetDatum(measure);
		values[3] = CStringGetTextDatum(c->source_db);
		if (SPI_execute_with_args("UPDATE nx.branches SET bytes_copied = $2, "
								  "  bytes_total = CASE WHEN $3 THEN pg_catalog.pg_database_size($4::name) ELSE bytes_total END "
								  "WHERE deployment = $1 AND state = 'copying'",
								  4, types, values, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "nx supervisor: could not write nx.branches");
	}

	/* lock yielding: the cheap look first, pg_locks only when someone waits */
	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_stat_activity WHERE wait_event_type = 'Lock' LIMIT 1",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not read pg_stat_activity");
	any_waiter = SPI_processed > 0;
	for (int i = 0; any_waiter && i < NX_MAX_COPIES; i++)
	{
		NxCopy	   *c = &copies[i];
		Oid			types[2] = {INT4OID, INT4OID};
		Datum		values[2];

		if (c->state != NX_COPY_RUNNING || c->dump_backend == 0)
			continue;
		values[0] = Int32GetDatum(c->dump_backend);
		values[1] = Int32GetDatum(NX_YIELD_AFTER_MS);
		if (SPI_execute_with_args("SELECT l.pid, l.mode, "
								  "  (extract(epoch FROM pg_catalog.clock_timestamp() - l.waitstart) * 1000)::bigint "
								  "FROM pg_catalog.pg_locks l "
								  "WHERE NOT l.granted AND l.pid <> $1 "
								  "  AND l.waitstart < pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => $2 / 1000.0) "
								  "  AND $1 = ANY (pg_catalog.pg_blocking_pids(l.pid)) LIMIT 1",
								  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "nx supervisor: could not read pg_locks");
		if (SPI_processed == 0)
			continue;
		snprintf(c->yield_reason, sizeof(c->yield_reason),
				 "backend %s waited %s ms for a lock (%s) the copy held: the copy yielded",
				 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
				 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3),
				 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
		c->yielded = true;
		KillCopy(c);
	}
	NxCommitTransaction();
}

/* TickStep adapts the tick's work to NxRunLoggingErrors. */
static void
TickStep(void *arg)
{
	TimestampTz now = *(TimestampTz *) arg;
	bool		running = false;

	for (int i = 0; i < NX_MAX_COPIES; i++)
	{
		NxCopy	   *c = &copies[i];

		if (c->state == NX_COPY_EXITED)
			FinishCopy(c);
		else if (c->state == NX_COPY_RUNNING)
			running = true;
		else if (c->state == NX_COPY_BACKOFF && now >= c->retry_at)
			NxRequestConverge();
	}
	if (running)
		PollRunning();
}

/*
 * NxBranchesTick, from the wait loop: every NX_BRANCH_POLL_MS while a copy
 * runs (or ended, or waits for its backoff), finish ended copies and poll
 * the running ones.
 */
void
NxBranchesTick(TimestampTz now)
{
	bool		any = false;

	for (int i = 0; i < NX_MAX_COPIES; i++)
		if (copies[i].state != NX_COPY_FREE)
			any = true;
	if (!any)
		return;
	for (int i = 0; i < NX_MAX_COPIES; i++)
		if (copies[i].state == NX_COPY_EXITED)
			next_poll = 0;		/* act on an exit at once */
	if (now < next_poll)
		return;
	next_poll = TimestampTzPlusMilliseconds(now, NX_BRANCH_POLL_MS);
	NxRunLoggingErrors(TickStep, &now, "watching a branch copy failed");
}

/* NxBranchesNextDeadlineMs: how long the loop may sleep. */
long
NxBranchesNextDeadlineMs(TimestampTz now)
{
	long		best = 60 * 1000;

	for (int i = 0; i < NX_MAX_COPIES; i++)
	{
		NxCopy	   *c = &copies[i];

		if (CopyActive(c))
			best = Min(best, Max(0, TimestampDifferenceMilliseconds(now, next_poll)));
		else if (c->state == NX_COPY_BACKOFF)
			best = Min(best, TimestampDifferenceMilliseconds(now, c->retry_at));
	}
	return best;
}

/*
 * NxBranchChildExited: was pid a copy of ours?  Then keep its status for
 * the next tick (which is due at once).
 */
bool
NxBranchChildExited(pid_t pid, int wait_status)
{
	for (int i = 0; i < NX_MAX_COPIES; i++)
	{
		if (copies[i].state == NX_COPY_RUNNING && copies[i].pid == pid)
		{
			copies[i].state = NX_COPY_EXITED;
			copies[i].wait_status = wait_status;
			next_poll = 0;
			return true;
		}
	}
	return false;
}

/*
 * NxBranchesKillAll kills every running copy (the supervisor exits):
 * pg_dump and pg_restore die with nx-branch-copy, and their backends with
 * their connections.
 */
void
NxBranchesKillAll(void)
{
	for (int i = 0; i < NX_MAX_COPIES; i++)
		if (copies[i].state == NX_COPY_RUNNING && copies[i].pid > 0)
			kill(copies[i].pid, SIGKILL);
}
