/*
 * src/supervisor/domains.c
 *	  Verifying custom domains: for each claimed, unverified domain that is
 *	  due (nx._domain_checks_due), the supervisor runs nx-dnscheck, which
 *	  looks for the TXT record _nx-verify.<domain> holding the sandbox
 *	  owner's token, and records what it found (nx._record_domain_check,
 *	  which verifies the claim when the record is there).
 *
 * The lookup runs in a child process (src/dnscheck/): DNS answers are
 * bytes from the network, and nothing that parses those runs inside a
 * postmaster child (I8).  Checks run asynchronously, at most
 * NX_DNS_MAX_INFLIGHT at a time, each bounded by nx-dnscheck's own
 * timeout; the loop reaps them like any other child and a later pass
 * writes their results.  Nothing here allocates outside a pass: the
 * in-flight table is fixed-size.
 *
 * Glossary:
 *	  check		one run of nx-dnscheck for one (domain, sandbox) claim.
 */
#include "domains.h"
#include "requests.h"
#include "nx_sandbox.h"
#include "spawn.h"
#include "sql_exec.h"
#include "supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#define NX_DNS_MAX_INFLIGHT 4
#define NX_DNS_TIMEOUT_S "3"
#define NX_DNS_RESULT_MAX 200

typedef enum NxCheckState
{
	NX_CHECK_FREE,
	NX_CHECK_RUNNING,
	NX_CHECK_DONE				/* exited: result to be written */
} NxCheckState;

typedef struct NxDomainCheck
{
	NxCheckState state;
	pid_t		pid;
	int			out_fd;			/* its stdout, read end */
	char		domain[254];
	char		sandbox[64];
	bool		found;
	char		result[NX_DNS_RESULT_MAX + 1];
} NxDomainCheck;

static NxDomainCheck checks[NX_DNS_MAX_INFLIGHT];
static bool warned_missing = false;

/* CheckPath returns where nx-dnscheck is installed. */
static const char *
CheckPath(void)
{
	static char path[MAXPGPATH];

	if (path[0] == '\0')
		snprintf(path, sizeof(path), "%s/nx_sandbox/nx-dnscheck", pkglib_path);
	return path;
}

/* InFlight: is a check of this claim running or waiting to be written? */
static bool
InFlight(const char *domain, const char *sandbox)
{
	for (int i = 0; i < NX_DNS_MAX_INFLIGHT; i++)
		if (checks[i].state != NX_CHECK_FREE &&
			strcmp(checks[i].domain, domain) == 0 && strcmp(checks[i].sandbox, sandbox) == 0)
			return true;
	return false;
}

/*
 * SpawnCheck starts nx-dnscheck for one claim in slot c; false if it could
 * not be started (then the claim waits for a later pass).
 */
static bool
SpawnCheck(NxDomainCheck *c, const char *domain, const char *sandbox,
		   const char *txt_name, const char *txt_value)
{
	char	   *argv[8];
	char	   *envp[] = {"PATH=/usr/bin:/bin", NULL};
	int			argc = 0;
	int			fds[2];
	posix_spawn_file_actions_t actions;
	int			rc;

	if (pipe2(fds, O_CLOEXEC) != 0)
		return false;
	argv[argc++] = (char *) CheckPath();
	if (nx_dns_resolver != NULL && nx_dns_resolver[0] != '\0')
	{
		argv[argc++] = "--resolver";
		argv[argc++] = nx_dns_resolver;
	}
	argv[argc++] = "--timeout";
	argv[argc++] = NX_DNS_TIMEOUT_S;
	argv[argc++] = (char *) txt_name;
	argv[argc++] = (char *) txt_value;
	argv[argc] = NULL;

	/* the child's 0-2; NxSpawnChild closes the rest and resets the signals */
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
	posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
	rc = NxSpawnChild(&c->pid, CheckPath(), &actions, argv, envp);
	close(fds[1]);
	if (rc != 0)
	{
		close(fds[0]);
		ereport(LOG, (errmsg("nx supervisor: could not run %s: %s", CheckPath(), strerror(rc))));
		return false;
	}
	c->out_fd = fds[0];
	c->state = NX_CHECK_RUNNING;
	c->found = false;
	c->result[0] = '\0';
	strlcpy(c->domain, domain, sizeof(c->domain));
	strlcpy(c->sandbox, sandbox, sizeof(c->sandbox));
	return true;
}

/*
 * NxDomainCheckExited: was pid one of our checks?  Then keep its verdict
 * and its one line of output (it has exited: the pipe holds all of it, or
 * EOF) for the next pass to write.
 */
bool
NxDomainCheckExited(pid_t pid, int wait_status)
{
	for (int i = 0; i < NX_DNS_MAX_INFLIGHT; i++)
	{
		NxDomainCheck *c = &checks[i];
		ssize_t		n;

		if (c->state != NX_CHECK_RUNNING || c->pid != pid)
			continue;
		fcntl(c->out_fd, F_SETFL, O_NONBLOCK);
		n = read(c->out_fd, c->result, NX_DNS_RESULT_MAX);
		close(c->out_fd);
		c->out_fd = -1;
		c->result[n > 0 ? n : 0] = '\0';
		c->result[strcspn(c->result, "\n")] = '\0';
		c->found = WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
		if (c->result[0] == '\0')
			snprintf(c->result, sizeof(c->result), "nx-dnscheck ended with status %d", wait_status);
		c->state = NX_CHECK_DONE;
		NxRequestConverge();
		return true;
	}
	return false;
}

/* WriteResults records the finished checks (caller's transaction). */
static void
WriteResults(void)
{
	Oid			types[4] = {TEXTOID, TEXTOID, BOOLOID, TEXTOID};

	for (int i = 0; i < NX_DNS_MAX_INFLIGHT; i++)
	{
		NxDomainCheck *c = &checks[i];
		Datum		values[4];

		if (c->state != NX_CHECK_DONE)
			continue;
		values[0] = CStringGetTextDatum(c->domain);
		values[1] = CStringGetTextDatum(c->sandbox);
		values[2] = BoolGetDatum(c->found);
		values[3] = CStringGetTextDatum(c->result);
		if (SPI_execute_with_args("SELECT nx._record_domain_check($1, $2, $3, $4)",
								  4, types, values, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "nx supervisor: could not record a domain check");
		if (c->found)
			ereport(LOG, (errmsg("nx supervisor: domain \"%s\" of sandbox \"%s\": %s",
								 c->domain, c->sandbox, c->result)));
		c->state = NX_CHECK_FREE;
	}
}

/*
 * NxDomainChecks runs once per converge pass: it writes the results of
 * finished checks and starts checks of the claims that are due, as many
 * as free slots allow.
 */
void
NxDomainChecks(void)
{
	Oid			type = INT4OID;
	Datum		limit = Int32GetDatum(NX_DNS_MAX_INFLIGHT * 2);
	SPITupleTable *rows;
	uint64		n;

	NxBeginTransaction("nx: domain checks");
	WriteResults();
	if (access(CheckPath(), X_OK) != 0)
	{
		if (!warned_missing)
			ereport(LOG, (errmsg("nx supervisor: custom domains cannot be verified: %s is missing (make install)",
								 CheckPath())));
		warned_missing = true;
		NxCommitTransaction();
		return;
	}
	warned_missing = false;
	if (SPI_execute_with_args("SELECT domain, sandbox, txt_name, txt_value FROM nx._domain_checks_due($1)",
							  1, &type, &limit, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not read the domain checks due");
	rows = SPI_tuptable;
	n = SPI_processed;
	for (uint64 r = 0; r < n; r++)
	{
		char	   *domain = SPI_getvalue(rows->vals[r], rows->tupdesc, 1);
		char	   *sandbox = SPI_getvalue(rows->vals[r], rows->tupdesc, 2);
		char	   *txt_name = SPI_getvalue(rows->vals[r], rows->tupdesc, 3);
		char	   *txt_value = SPI_getvalue(rows->vals[r], rows->tupdesc, 4);
		NxDomainCheck *slot = NULL;

		if (txt_value == NULL || InFlight(domain, sandbox))
			continue;
		for (int i = 0; i < NX_DNS_MAX_INFLIGHT && slot == NULL; i++)
			if (checks[i].state == NX_CHECK_FREE)
				slot = &checks[i];
		if (slot == NULL)
			break;
		SpawnCheck(slot, domain, sandbox, txt_name, txt_value);
	}
	NxCommitTransaction();
}

/* NxDomainChecksKill ends every running check (the supervisor exits). */
void
NxDomainChecksKill(void)
{
	for (int i = 0; i < NX_DNS_MAX_INFLIGHT; i++)
		if (checks[i].state == NX_CHECK_RUNNING && checks[i].pid > 0)
			kill(checks[i].pid, SIGKILL);
}
