/*
 * src/supervisor/supervisor_guc.c
 *	  Settings of the supervisor.  Those that say where things are (the
 *	  control database, bwrap, cgroups) need a restart; timings and sizes
 *	  follow a reload.  docs/settings.md describes each one.
 */
#include "supervisor.h"

#include <limits.h>

#include "nx_sandbox.h"

#include "utils/guc.h"

char	   *nx_database = NULL;
int			nx_naptime = 10;
int			nx_database_pool_size = 2;
int			nx_start_timeout = 30000;
int			nx_stop_timeout = 10000;
char	   *nx_bwrap_path = NULL;
char	   *nx_cgroup_root = NULL;
char	   *nx_cgroup_name = NULL;
bool		nx_require_cgroups = true;
int			nx_log_size = 1024 * 1024;
int			nx_max_concurrent_starts = 0;
bool		nx_supervisor_enabled = true;
char	   *nx_subuid_file = NULL;
bool		nx_router_enabled = true;
bool		nx_start_fast_path = true;
char	   *nx_listen_addresses = NULL;
char	   *nx_subgid_file = NULL;
int			nx_uid_slice_size = 4096;
char	   *nx_trusted_proxies = NULL;
int			nx_router_pool_size = 64;
int			nx_router_pool_idle_timeout = 2000;
int			nx_router_max_app_connections = 1000;
int			nx_router_max_client_connections = 1000;
int			nx_router_keepalive_timeout = 60;
char	   *nx_uid_slice_registry = NULL;

/*
 * check_trusted_proxies accepts a comma-separated list of addresses and
 * CIDR prefixes (the router parses it and refuses a malformed one at its
 * start; here only the characters are checked, so that a typo such as a
 * host name is refused at once).
 */
static bool
check_trusted_proxies(char **newval, void **extra, GucSource source)
{
	const char *p;

	for (p = *newval ? *newval : ""; *p; p++)
		if (!strchr("0123456789abcdefABCDEF.:/, ", *p))
		{
			GUC_check_errdetail("nx.trusted_proxies takes IPv4/IPv6 addresses and CIDR prefixes, comma-separated.");
			return false;
		}
	return true;
}

/*
 * NxSupervisorGucInit defines the supervisor's settings.
 *
 * The ones that say whether it runs and where things are need a restart
 * (PGC_POSTMASTER), which PostgreSQL allows only while preloading: a
 * session that loads the library later (the extension created on a cluster
 * without shared_preload_libraries = 'nx_sandbox') would die with FATAL.
 * There no supervisor runs and nothing reads these settings but views and
 * nx.check_setup, so they are defined as reload settings instead: the
 * values still come only from postgresql.conf.
 */
void
NxSupervisorGucInit(void)
{
	GucContext	postmaster = NxRestartContext();

	DefineCustomStringVariable("nx.database",
							   "Database holding the nx_sandbox extension (the control database).",
							   "The supervisor connects to it; CREATE EXTENSION nx_sandbox there.",
							   &nx_database, "postgres", postmaster, 0,
							   NULL, NULL, NULL);
	DefineCustomBoolVariable("nx.supervisor",
							 "Run the supervisor background worker.",
							 "Off: rows are recorded but nothing is provisioned or started.",
							 &nx_supervisor_enabled, true, postmaster, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("nx.naptime",
							"Seconds between the supervisor's periodic passes.",
							"Commits of control changes wake it at once; this pass catches the rest.",
							&nx_naptime, 10, 1, 3600, PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("nx.database_pool_size",
							"Empty databases kept ready for new sandboxes (0 = create on demand).",
							NULL, &nx_database_pool_size, 2, 0, 100,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.start_timeout",
							"How long a starting deployment may take to listen on its port before it is failed.",
							NULL, &nx_start_timeout, 30000, 100, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.stop_timeout",
							"Grace period between SIGTERM and SIGKILL when a deployment stops.",
							NULL, &nx_stop_timeout, 10000, 0, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomStringVariable("nx.bwrap_path",
							   "Path of the bubblewrap executable.",
							   NULL, &nx_bwrap_path, "/usr/bin/bwrap", postmaster, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("nx.cgroup_root",
							   "Where the cgroup filesystems are mounted.",
							   NULL, &nx_cgroup_root, "/sys/fs/cgroup", postmaster, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("nx.cgroup_name",
							   "Name of the cgroup delegated to the cluster's OS user (v2 subtree or v1 per controller).",
							   NULL, &nx_cgroup_name, "nx_sandbox", postmaster, 0,
							   NULL, NULL, NULL);
	DefineCustomBoolVariable("nx.require_cgroups",
							 "Refuse to start sandboxes without cgroup limits.",
							 "Off: run them with rlimits only (not for production).",
							 &nx_require_cgroups, true, PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("nx.router",
							 "Run the router (nx-router) as a child of the supervisor.",
							 "Off: run nx-router yourself, here or on another machine.",
							 &nx_router_enabled, true, postmaster, 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("nx.listen_addresses",
							   "Addresses the router listens on (comma-separated), on nx.http_port.",
							   NULL, &nx_listen_addresses, "127.0.0.1", postmaster, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("nx.trusted_proxies",
							   "Proxies in front of the router whose X-Forwarded-* fields are kept (CIDR list).",
							   "From these peers the router keeps X-Forwarded-Proto/-Host and appends the peer to "
							   "X-Forwarded-For; from anyone else all three are replaced.",
							   &nx_trusted_proxies, "", postmaster, 0,
							   check_trusted_proxies, NULL, NULL);
	DefineCustomIntVariable("nx.router_pool_size",
							"Idle app connections the router keeps per deployment for reuse (0 = none).",
							NULL, &nx_router_pool_size, 64, 0, 100000, postmaster, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("nx.router_pool_idle_timeout",
							"How long the router keeps an idle app connection.",
							"At most 4 s: below nx-init's 5 s quiet window, so that idle stop stays sound.",
							&nx_router_pool_idle_timeout, 2000, 100, 4000, postmaster, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("nx.router_max_app_connections",
							"Connections the router opens to one deployment's app at most.",
							"So that one app cannot take every connection slot of the router.",
							&nx_router_max_app_connections, 1000, 1, 1000000, postmaster, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("nx.router_max_client_connections",
							"Connections one client address may hold to the router at most.",
							"Trusted proxies (nx.trusted_proxies) are not counted.",
							&nx_router_max_client_connections, 1000, 1, 1000000, postmaster, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("nx.router_keepalive_timeout",
							"How long the router keeps a client connection idle between requests.",
							NULL, &nx_router_keepalive_timeout, 60, 1, 86400, postmaster, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomStringVariable("nx.subuid_file",
							   "File listing subordinate uid ranges (see subuid(5)).",
							   "Each sandbox runs as its own uid from the cluster user's range.",
							   &nx_subuid_file, "/etc/subuid", postmaster, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("nx.subgid_file",
							   "File listing subordinate gid ranges (see subgid(5)).",
							   NULL, &nx_subgid_file, "/etc/subgid", postmaster, 0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("nx.uid_slice_size",
							"Tenant uids each cluster on the host takes from the cluster user's subordinate range.",
							"The supervisor claims a slice of this many uids at start (one per sandbox, "
							"offset 0 unused), so that clusters of one OS user never share a tenant uid.",
							&nx_uid_slice_size, 4096, 16, 1 << 24, postmaster, 0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("nx.uid_slice_registry",
							   "Directory where the clusters of one OS user on this host claim their uid slices.",
							   "Empty: ~/.nx_sandbox/uid_slices of the cluster's OS user.  Every cluster of that "
							   "user on the host must use the same directory.",
							   &nx_uid_slice_registry, "", postmaster, 0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("nx.max_concurrent_starts",
							"Deployments started at the same time at most (0 = 4 per CPU, at least 8).",
							"More wait (pending) until one of them is ready or failed, so that a burst of starts "
							"(a cluster restart with many sandboxes) does not starve them all past nx.start_timeout.",
							&nx_max_concurrent_starts, 0, 0, 100000, PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("nx.start_fast_path",
							 "Start a deployment woken, started, restarted or pushed without a full converge pass.",
							 "Off: each waits for a full pass, as before 0.4.0 (for comparing the two).",
							 &nx_start_fast_path, true, PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("nx.log_size",
							"Size at which a deployment's log file is rotated (one old file is kept).",
							NULL, &nx_log_size, 1024 * 1024, 4096, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);
}
