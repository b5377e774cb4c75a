/*
 * src/supervisor/role_pool.c
 *	  New sandboxes' roles made ahead, so that no SCRAM hash lies between
 *	  nx.create_sandbox and its sandbox's role.
 *
 * A role with a password costs two SCRAM hashes of about 3.5 ms each: one
 * to make the verifier, and one inside CREATE ROLE, which checks that the
 * verifier given is not that of an empty password.  Neither depends on the
 * role's name.  So the supervisor keeps up to nx.database_pool_size roles
 * made ahead: named nx__role_pool_<time>_<n> (a double underscore, which
 * no sandbox's or preview's role can have), NOLOGIN, members of nothing,
 * each with a random password.  The passwords wait in shared memory; which
 * role and verifier go with each, only in the supervisor's memory.
 *
 * nx.create_sandbox takes a password (nx._new_role_password(): a fresh
 * random one when the pool is empty or no supervisor runs).  When the
 * supervisor then creates that sandbox's role, it claims the pool role
 * made for that password (NxRolePoolClaim) and provision.c renames it to
 * the sandbox's role, which keeps a SCRAM password, and gives it LOGIN,
 * its connection limit, nx_tenant and its settings.  Each password leaves
 * the pool exactly once, so no two sandboxes get the same.
 *
 * Roles are made one per turn of the worker loop, and only while no
 * deployment is starting or waiting to start, once a pass found the
 * extension installed.  A pool role that neither a
 * pooled password nor a recent take accounts for is dropped by the next
 * pass (NxRolePoolDropStale): after a supervisor restart that is every one
 * (the passwords went with the previous process), otherwise the roles of
 * passwords whose transaction rolled back, and of a pool made smaller.
 */
#include "role_pool.h"
#include "sql_exec.h"
#include "supervisor.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "nx_sandbox.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(nx_new_role_password);

/* how long a taken password's role waits for its sandbox's provisioning */
#define NX_ROLE_POOL_TAKE_GRACE_MS (60 * 1000)
/* stale pool roles dropped per pass, at most */
#define NX_ROLE_POOL_DROPS 32

/* a role made ahead (key: its password) */
typedef struct PoolRole
{
	char		password[NX_PASSWORD_LEN + 1];
	char		role[NAMEDATALEN];
	char	   *verifier;		/* TopMemoryContext */
	TimestampTz taken_seen;		/* when its password was first seen gone
								 * from the pool; 0 while it is there */
} PoolRole;

static HTAB *made = NULL;
static bool wants_more = false;
static int	made_count = 0;		/* for unique role names */

/*
 * nx_new_role_password returns the password for a new sandbox's role: one
 * whose role the supervisor made ahead when the pool has one, else a fresh
 * random one.  Called by nx.create_sandbox only; EXECUTE is granted to no
 * role.
 */
Datum
nx_new_role_password(PG_FUNCTION_ARGS)
{
	char		password[NX_PASSWORD_LEN + 1];
	bool		taken = false;

	if (NxShared != NULL)
	{
		SpinLockAcquire(&NxShared->mutex);
		if (NxShared->password_count > 0)
		{
			char	   *slot = NxShared->passwords[--NxShared->password_count];

			memcpy(password, slot, sizeof(password));
			memset(slot, 0, NX_PASSWORD_LEN + 1);
			taken = true;
		}
		SpinLockRelease(&NxShared->mutex);
	}
	if (!taken && !NxRandomToken(password, NX_PASSWORD_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes")));
	PG_RETURN_TEXT_P(cstring_to_text(password));
}

/* InitMade makes the table of roles made ahead, once. */
static void
InitMade(void)
{
	HASHCTL		ctl;

	if (made != NULL)
		return;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = NX_PASSWORD_LEN + 1;
	ctl.entrysize = sizeof(PoolRole);
	made = hash_create("nx pool roles", NX_PASSWORD_POOL, &ctl, HASH_ELEM | HASH_STRINGS);
}

/* Forget drops one entry; its role, if still there, is then stale. */
static void
Forget(const char *password)
{
	PoolRole   *entry = hash_search(made, password, HASH_FIND, NULL);

	if (entry == NULL)
		return;
	pfree(entry->verifier);
	hash_search(made, password, HASH_REMOVE, NULL);
}

/*
 * NxRolePoolReset empties the shared pool at the supervisor's start: the
 * roles of a previous supervisor's passwords are unknown to this one (the
 * first pass drops them).
 */
void
NxRolePoolReset(void)
{
	InitMade();
	SpinLockAcquire(&NxShared->mutex);
	NxShared->password_count = 0;
	memset(NxShared->passwords, 0, sizeof(NxShared->passwords));
	SpinLockRelease(&NxShared->mutex);
	wants_more = nx_database_pool_size > 0;
}

/*
 * MakeOne creates one pool role in a transaction of its own and puts its
 * password in the pool (through NxRunLoggingErrors).
 */
static void
MakeOne(void *arg)
{
	char		password[NX_PASSWORD_LEN + 1];
	char		role[NAMEDATALEN];
	char	   *verifier;
	PoolRole   *entry;

	if (!NxRandomToken(password, NX_PASSWORD_LEN))
		elog(ERROR, "could not generate random bytes");
	snprintf(role, sizeof(role), NX_ROLE_POOL_PREFIX "%lld_%d",
			 (long long) GetCurrentTimestamp(), made_count++);
	NxBeginTransaction("nx: role pool");
	verifier = pg_be_scram_build_secret(password);
	if (SPI_execute(psprintf("CREATE ROLE %s NOLOGIN PASSWORD %s", quote_identifier(role),
							 quote_literal_cstr(verifier)), false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create role \"%s\"", role);
	verifier = MemoryContextStrdup(TopMemoryContext, verifier);
	NxCommitTransaction();

	entry = hash_search(made, password, HASH_ENTER, NULL);
	strlcpy(entry->role, role, sizeof(entry->role));
	entry->verifier = verifier;
	entry->taken_seen = 0;
	SpinLockAcquire(&NxShared->mutex);
	if (NxShared->password_count < NX_PASSWORD_POOL)
		strlcpy(NxShared->passwords[NxShared->password_count++], password, NX_PASSWORD_LEN + 1);
	SpinLockRelease(&NxShared->mutex);
}

/*
 * NxRolePoolTick, at each turn of the worker loop: trims the pool to
 * nx.database_pool_size, and makes one role while it is short and no start
 * is under way or waiting (busy).
 */
void
NxRolePoolTick(bool busy)
{
	int			target = Min(nx_database_pool_size, NX_PASSWORD_POOL);
	char		extra[NX_PASSWORD_POOL][NX_PASSWORD_LEN + 1];
	int			n_extra = 0;
	int			have;
	int			remembered;

	InitMade();
	SpinLockAcquire(&NxShared->mutex);
	while (NxShared->password_count > target)
	{
		char	   *slot = NxShared->passwords[--NxShared->password_count];

		memcpy(extra[n_extra++], slot, NX_PASSWORD_LEN + 1);
		memset(slot, 0, NX_PASSWORD_LEN + 1);
	}
	have = NxShared->password_count;
	SpinLockRelease(&NxShared->mutex);
	for (int i = 0; i < n_extra; i++)
		Forget(extra[i]);

	/*
	 * Roles whose password was taken but not claimed yet count too, until
	 * their grace ends: a user who takes passwords in transactions that
	 * roll back cannot make the supervisor hash and create roles without
	 * end, only empty the pool for a while (creates then hash as before).
	 */
	remembered = (int) hash_get_num_entries(made);
	wants_more = have < target && remembered < target;
	if (busy || !wants_more)
		return;
	if (!NxRunLoggingErrors(MakeOne, NULL, "could not make a role ahead"))
	{
		wants_more = false;		/* not again before the loop wakes */
		return;
	}
	wants_more = have + 1 < target && remembered + 1 < target;
}

/* NxRolePoolWantsMore: the pool is short (the loop should turn again). */
bool
NxRolePoolWantsMore(void)
{
	return wants_more;
}

/*
 * NxRolePoolClaim: the role made ahead for password, if any, and its
 * verifier (in the current memory context).  Either way that password is
 * forgotten here: if the caller's rename then fails, or its transaction
 * rolls back, the role left behind is stale and the next pass drops it.
 */
bool
NxRolePoolClaim(const char *password, char **pool_role, char **verifier)
{
	PoolRole   *entry;

	if (made == NULL || strlen(password) != NX_PASSWORD_LEN)
		return false;
	entry = hash_search(made, password, HASH_FIND, NULL);
	if (entry == NULL)
		return false;
	*pool_role = pstrdup(entry->role);
	*verifier = pstrdup(entry->verifier);
	Forget(password);
	return true;
}

/* DropRole drops one stale pool role (NxTryInSubtransaction's step). */
static void
DropRole(void *arg)
{
	NxRunUtility(psprintf("DROP ROLE %s", quote_identifier((const char *) arg)));
}

/*
 * NxRolePoolDropStale, inside the caller's transaction: forgets the roles
 * whose password left the pool over NX_ROLE_POOL_TAKE_GRACE_MS ago without
 * being claimed (seen by the pass after it left, so up to nx.naptime
 * more), then drops pool roles that are not remembered, up to
 * NX_ROLE_POOL_DROPS (the next pass drops more).
 */
void
NxRolePoolDropStale(void)
{
	char		pooled[NX_PASSWORD_POOL][NX_PASSWORD_LEN + 1];
	int			n;
	TimestampTz now = GetCurrentTimestamp();
	HASH_SEQ_STATUS seq;
	PoolRole   *entry;
	List	   *expired = NIL;
	ListCell   *lc;
	SPITupleTable *rows;
	uint64		nrows;
	int			drops = 0;

	InitMade();
	SpinLockAcquire(&NxShared->mutex);
	n = NxShared->password_count;
	memcpy(pooled, NxShared->passwords, sizeof(pooled[0]) * n);
	SpinLockRelease(&NxShared->mutex);

	hash_seq_init(&seq, made);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		bool		in_pool = false;

		for (int i = 0; i < n && !in_pool; i++)
			in_pool = strcmp(pooled[i], entry->password) == 0;
		if (in_pool)
			entry->taken_seen = 0;
		else if (entry->taken_seen == 0)
			entry->taken_seen = now;
		else if (TimestampDifferenceExceeds(entry->taken_seen, now, NX_ROLE_POOL_TAKE_GRACE_MS))
			expired = lappend(expired, pstrdup(entry->password));
	}
	foreach(lc, expired)
		Forget(lfirst(lc));

	/*
	 * Only roles exactly as MakeOne makes them (NX_ROLE_POOL_AS_MADE): a
	 * role someone changed is not ours to drop any more.  At most
	 * NX_ROLE_POOL_DROPS per pass: each drop is a subtransaction, and a
	 * transaction with more than 64 of them slows every snapshot in the
	 * cluster.
	 */
	if (SPI_execute("SELECT r.rolname FROM pg_catalog.pg_roles r WHERE " NX_ROLE_POOL_AS_MADE("r"),
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not read the pool roles");
	rows = SPI_tuptable;
	nrows = SPI_processed;
	for (uint64 i = 0; i < nrows && drops < NX_ROLE_POOL_DROPS; i++)
	{
		char	   *role = SPI_getvalue(rows->vals[i], rows->tupdesc, 1);
		bool		remembered = false;

		hash_seq_init(&seq, made);
		while ((entry = hash_seq_search(&seq)) != NULL)
		{
			if (strcmp(entry->role, role) == 0)
			{
				remembered = true;
				hash_seq_term(&seq);
				break;
			}
		}
		if (!remembered)
		{
			NxTryInSubtransaction(DropRole, role, "could not drop a stale pool role");
			drops++;
		}
	}
}
