/*
 * src/supervisor/router_proc.c
 *	  The router as a child of the supervisor: started once the control
 *	  database has the extension, restarted within milliseconds when it
 *	  dies (with a growing delay if it keeps dying, e.g. its port is taken),
 *	  and stopped with the cluster.
 *
 * The router is its own program (invariant I8: nothing that parses network
 * bytes runs inside a postmaster child).  It logs in as nx_router, which
 * may only call nx.router_routes(); the supervisor gives that role a new
 * random password at every start and hands it to the router in its
 * environment (never on a command line).  Its stderr is the server's.
 */
#include "files.h"
#include "hostsetup.h"
#include "nx_handoff.h"
#include "nx_sandbox.h"
#include "requests.h"
#include "router_proc.h"
#include "spawn.h"
#include "sql_exec.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "executor/spi.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#define NX_ROUTER_BACKOFF_MIN_MS 50
#define NX_ROUTER_BACKOFF_MAX_MS 5000
#define NX_ROUTER_STABLE_MS 10000	/* running this long resets the backoff */

extern char **environ;

static pid_t router_pid = 0;
static TimestampTz router_started = 0;
static TimestampTz router_next_start = 0;
static int	router_backoff_ms = 0;
static bool warned_missing = false;	/* said once that nx-router is missing */

/* RandomPassword fills buf with 32 characters from the CSPRNG. */
static void
RandomPassword(char *buf)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
	unsigned char raw[32];

	if (!pg_strong_random(raw, sizeof(raw)))
		elog(ERROR, "nx supervisor: could not generate random bytes");
	for (int i = 0; i < 32; i++)
		buf[i] = alphabet[raw[i] & 31];
	buf[32] = '\0';
}

/*
 * SetRouterPassword gives nx_router a new password (as a SCRAM verifier:
 * the plaintext never appears in a statement or a log line).
 */
static void
SetRouterPassword(const char *password)
{
	NxBeginTransaction("nx: router password");
	if (SPI_execute(psprintf("ALTER ROLE nx_router LOGIN PASSWORD %s",
							 quote_literal_cstr(pg_be_scram_build_secret(password))),
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "nx supervisor: could not set the router's password");
	NxCommitTransaction();
}

/* SpawnRouter starts the router program; returns its pid or 0. */
static pid_t
SpawnRouter(const NxHostSetup *host)
{
	char		program[MAXPGPATH];
	char		run_dir[MAXPGPATH];
	char		password[33];
	char	   *argv[48];
	char	   *envp[16];
	int			argc = 0,
				envc = 0;
	char	   *addresses = pstrdup(nx_listen_addresses);
	char	   *save = NULL;
	posix_spawn_file_actions_t actions;
	pid_t		pid = 0;
	int			rc;

	snprintf(program, sizeof(program), "%s/nx_sandbox/nx-router", pkglib_path);
	if (access(program, X_OK) != 0)
	{
		if (!warned_missing)
			ereport(LOG, (errmsg("nx supervisor: router not started: %s is missing (make install)", program)));
		warned_missing = true;
		return 0;
	}
	warned_missing = false;
	NxStateDirPath(run_dir, NX_RUN_DIR_NAME, NULL);
	RandomPassword(password);
	SetRouterPassword(password);

	argv[argc++] = program;
	for (char *a = strtok_r(addresses, ", ", &save); a && argc < 28; a = strtok_r(NULL, ", ", &save))
	{
		argv[argc++] = "--listen";
		argv[argc++] = strchr(a, ':') ? psprintf("[%s]:%d", a, nx_http_port)
			: psprintf("%s:%d", a, nx_http_port);
	}
	argv[argc++] = "--run-dir";
	argv[argc++] = run_dir;
	argv[argc++] = "--pool-size";
	argv[argc++] = psprintf("%d", nx_router_pool_size);
	argv[argc++] = "--pool-idle-timeout";
	argv[argc++] = psprintf("%.3f", nx_router_pool_idle_timeout / 1000.0);
	argv[argc++] = "--max-app-connections";
	argv[argc++] = psprintf("%d", nx_router_max_app_connections);
	argv[argc++] = "--max-client-connections";
	argv[argc++] = psprintf("%d", nx_router_max_client_connections);
	argv[argc++] = "--keepalive-timeout";
	argv[argc++] = psprintf("%d", nx_router_keepalive_timeout);
	if (nx_trusted_proxies && nx_trusted_proxies[0] != '\0')
	{
		argv[argc++] = "--trusted-proxies";
		argv[argc++] = nx_trusted_proxies;
	}
	argv[argc++] = "--exit-with-parent";
	argv[argc] = NULL;

	envp[envc++] = "PATH=/usr/bin:/bin";
	envp[envc++] = psprintf("PGHOST=%s", host->pg_socket_dir);
	envp[envc++] = psprintf("PGPORT=%d", PostPortNumber);
	envp[envc++] = psprintf("PGDATABASE=%s", nx_database);
	envp[envc++] = "PGUSER=nx_router";
	envp[envc++] = psprintf("PGPASSWORD=%s", password);
	envp[envc++] = "PGAPPNAME=nx-router";
	envp[envc] = NULL;

	/* the child's 0-2; NxSpawnChild closes the rest and resets the signals */
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	rc = NxSpawnChild(&pid, program, &actions, argv, envp);
	if (rc != 0)
	{
		ereport(LOG, (errmsg("nx supervisor: could not start the router: %s", strerror(rc))));
		return 0;
	}
	ereport(LOG, (errmsg("nx supervisor: router started (pid %d) on %s port %d",
						 (int) pid, nx_listen_addresses, nx_http_port)));
	return pid;
}

/*
 * NxRouterEnsure starts the router when it should run and does not (called
 * after each converge pass; host gives the cluster's socket).
 */
void
NxRouterEnsure(const NxHostSetup *host)
{
	TimestampTz now = GetCurrentTimestamp();

	if (!nx_router_enabled || router_pid > 0 || now < router_next_start ||
		host->pg_socket_dir[0] == '\0')
		return;
	/* if SpawnRouter fails with an error, the next try waits a little */
	router_next_start = TimestampTzPlusMilliseconds(now, NX_ROUTER_BACKOFF_MAX_MS);
	router_pid = SpawnRouter(host);
	router_started = now;
	if (router_pid == 0)
		NxRouterExited(router_pid, 0);	/* schedule a retry */
}

/*
 * NxRouterExited: was pid the router?  Then schedule its restart: at once
 * after a long run, with a doubling delay if it keeps dying.
 */
bool
NxRouterExited(pid_t pid, int wait_status)
{
	TimestampTz now = GetCurrentTimestamp();

	if (pid != router_pid)
		return false;
	if (router_pid > 0)
		ereport(LOG, (errmsg("nx supervisor: router (pid %d) exited with status %d; restarting",
							 (int) pid, wait_status)));
	router_pid = 0;
	if (TimestampDifferenceExceeds(router_started, now, NX_ROUTER_STABLE_MS))
		router_backoff_ms = NX_ROUTER_BACKOFF_MIN_MS;
	else
		router_backoff_ms = Min(NX_ROUTER_BACKOFF_MAX_MS, Max(NX_ROUTER_BACKOFF_MIN_MS, router_backoff_ms * 2));
	/* the first restart after a long run is immediate */
	router_next_start = TimestampTzPlusMilliseconds(now, router_backoff_ms == NX_ROUTER_BACKOFF_MIN_MS ? 0 : router_backoff_ms);
	NxRequestConverge();
	return true;
}

/* NxRouterStop ends the router (shutdown: SIGTERM; emergency: SIGKILL). */
void
NxRouterStop(int sig)
{
	if (router_pid > 0)
		kill(router_pid, sig);
}

/*
 * NxRouterFinish ends the router at the supervisor's own exit: it got
 * SIGTERM when the shutdown began and drains meanwhile, but once the
 * sandboxes are stopped there is nothing left to drain, and it must not
 * outlive the cluster (an orphan would hold the port).  Killed and reaped.
 */
void
NxRouterFinish(void)
{
	if (router_pid <= 0)
		return;
	kill(router_pid, SIGKILL);
	(void) waitpid(router_pid, NULL, 0);
	router_pid = 0;
}

/* NxRouterPid: the router's pid, 0 when none runs. */
pid_t
NxRouterPid(void)
{
	return router_pid;
}
