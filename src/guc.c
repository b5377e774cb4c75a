/*
 * src/guc.c
 *	  The nx.* settings: definitions, defaults, bounds and validation.
 *
 * Every setting that limits a tenant is PGC_SIGHUP (postgresql.conf or
 * ALTER SYSTEM, then reload): a session must not be able to raise its own
 * limits with SET.  docs/settings.md describes each one; keep the two in
 * step.
 */
#include "nx_sandbox.h"

#include <limits.h>

#include "utils/guc.h"

char	   *nx_domain = NULL;
char	   *nx_dns_resolver = NULL;
int			nx_http_port = 8080;
char	   *nx_port_range = NULL;
int			nx_port_range_first = 20000;
int			nx_port_range_last = 29999;
int			nx_max_binary_size = 256 * 1024 * 1024;
int			nx_max_sandboxes = 1000;
int			nx_max_deployments_per_sandbox = 20;
int			nx_default_memory_limit = 256;
int			nx_default_pids_limit = 256;
int			nx_default_open_files_limit = 1024;
int			nx_default_cpu_weight = 100;
int			nx_default_tmp_size = 64;
int			nx_default_idle_timeout = 900;
int			nx_default_connection_limit = 20;
int			nx_default_database_quota = 1024;
int			nx_default_preview_database = NX_PREVIEW_DATABASE_BRANCH;
int			nx_max_branch_size = 1024;
int			nx_max_branches_per_sandbox = 5;
int			nx_branch_copy_rate = 32;

/* the values of nx.default_preview_database */
static const struct config_enum_entry preview_database_options[] = {
	{"branch", NX_PREVIEW_DATABASE_BRANCH, false},
	{"empty", NX_PREVIEW_DATABASE_EMPTY, false},
	{"production", NX_PREVIEW_DATABASE_PRODUCTION, false},
	{NULL, 0, false}
};
int			nx_max_memory_limit = 4096;
int			nx_max_pids_limit = 1024;
int			nx_max_open_files_limit = 65536;
int			nx_max_cpu_weight = 1000;
int			nx_max_tmp_size = 1024;
int			nx_max_connection_limit = 50;
int			nx_max_database_quota = 10240;
int			nx_max_sandboxes_per_owner = 20;
int			nx_max_deployments_per_owner = 100;

/* The parsed form of nx.port_range, handed from check to assign hook. */
typedef struct PortRange
{
	int			first;
	int			last;
} PortRange;

/*
 * CheckPortRange accepts "FIRST-LAST" with 1024 <= FIRST <= LAST <= 65535,
 * so deployments never get a privileged port or one outside TCP's range.
 */
static bool
CheckPortRange(char **newval, void **extra, GucSource source)
{
	int			first,
				last,
				consumed = 0;
	PortRange  *range;

	if (*newval == NULL ||
		sscanf(*newval, "%d-%d%n", &first, &last, &consumed) != 2 ||
		(*newval)[consumed] != '\0')
	{
		GUC_check_errdetail("nx.port_range must look like \"20000-29999\".");
		return false;
	}
	if (first < 1024 || last > 65535 || first > last)
	{
		GUC_check_errdetail("nx.port_range must lie within 1024-65535 and "
							"its first port must not exceed its last.");
		return false;
	}
	range = NxGucMalloc(sizeof(PortRange));
	if (range == NULL)
		return false;
	range->first = first;
	range->last = last;
	*extra = range;
	return true;
}

/* AssignPortRange publishes the range CheckPortRange parsed. */
static void
AssignPortRange(const char *newval, void *extra)
{
	PortRange  *range = (PortRange *) extra;

	nx_port_range_first = range->first;
	nx_port_range_last = range->last;
}

/*
 * CheckDomain accepts a DNS name of lowercase labels (letters, digits,
 * hyphens) separated by dots: it is pasted into every URL and Host match.
 */
static bool
CheckDomain(char **newval, void **extra, GucSource source)
{
	const char *p = *newval;
	int			label_len = 0;

	if (p == NULL || *p == '\0' || strlen(p) > 200)
	{
		GUC_check_errdetail("nx.domain must be a DNS name of at most 200 characters.");
		return false;
	}
	for (; *p; p++)
	{
		if (*p == '.')
		{
			if (label_len == 0 || p[-1] == '-')
				break;
			label_len = 0;
		}
		else if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
				 (*p == '-' && label_len > 0))
			label_len++;
		else
			break;
		if (label_len > 63)
			break;
	}
	if (*p != '\0' || label_len == 0 || p[-1] == '-')
	{
		GUC_check_errdetail("nx.domain must be lowercase DNS labels (a-z, 0-9, '-') separated by dots, such as \"apps.example.com\".");
		return false;
	}
	return true;
}

static void NxCeilingGucInit(void);

/*
 * CheckDnsResolver accepts "" or an IPv4 address with an optional :PORT:
 * it becomes an argument of nx-dnscheck.
 */
static bool
CheckDnsResolver(char **newval, void **extra, GucSource source)
{
	unsigned int a,
				b,
				c,
				d,
				port = 53;
	int			consumed = 0;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if ((sscanf(*newval, "%3u.%3u.%3u.%3u%n", &a, &b, &c, &d, &consumed) == 4 &&
		 (*newval)[consumed] == '\0') ||
		(sscanf(*newval, "%3u.%3u.%3u.%3u:%5u%n", &a, &b, &c, &d, &port, &consumed) == 5 &&
		 (*newval)[consumed] == '\0'))
	{
		if (a <= 255 && b <= 255 && c <= 255 && d <= 255 && port >= 1 && port <= 65535)
			return true;
	}
	GUC_check_errdetail("nx.dns_resolver must be empty or an IPv4 address with an optional port, such as \"127.0.0.1:5353\".");
	return false;
}

/* NxGucInit defines the control plane's nx.* settings. */
void
NxGucInit(void)
{
	DefineCustomStringVariable("nx.domain",
							   "Domain under which sandboxes get their URLs.",
							   "Production: <sandbox>.<domain>; preview: <slug>.preview.<domain>.",
							   &nx_domain, "localhost", PGC_SIGHUP, 0,
							   CheckDomain, NULL, NULL);
	DefineCustomStringVariable("nx.dns_resolver",
							   "DNS server the supervisor asks for custom domains' TXT records, as ADDR[:PORT] (IPv4).",
							   "Empty: the system's resolvers (/etc/resolv.conf).",
							   &nx_dns_resolver, "", PGC_SIGHUP, 0,
							   CheckDnsResolver, NULL, NULL);
	DefineCustomIntVariable("nx.http_port",
							"TCP port the router listens on; part of every URL.",
							NULL, &nx_http_port, 8080, 1, 65535, PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("nx.port_range",
							   "Ports given to deployments, as FIRST-LAST.",
							   "Each deployment gets one port, unique in the cluster, freed when it is removed.",
							   &nx_port_range, "20000-29999", PGC_SIGHUP, 0,
							   CheckPortRange, AssignPortRange, NULL);
	DefineCustomIntVariable("nx.max_binary_size",
							"Largest binary nx.push accepts.",
							NULL, &nx_max_binary_size, 256 * 1024 * 1024,
							1024, INT_MAX, PGC_SIGHUP, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("nx.max_sandboxes",
							"Most sandboxes the cluster may hold.",
							"At most 65535: each sandbox takes one uid offset of the cluster's slice.",
							&nx_max_sandboxes, 1000, 1, 65535,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.max_deployments_per_sandbox",
							"Most deployments (not removed) one sandbox may hold.",
							"Each one holds a port and, while running, memory.",
							&nx_max_deployments_per_sandbox, 20, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.default_memory_limit",
							"Memory limit of a new sandbox when nx.create_sandbox is not given one.",
							NULL, &nx_default_memory_limit, 256, 16, 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.default_pids_limit",
							"Process/thread limit of a new sandbox.",
							NULL, &nx_default_pids_limit, 256, 8, 65536,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.default_open_files_limit",
							"Open file limit (RLIMIT_NOFILE) of a new sandbox.",
							NULL, &nx_default_open_files_limit, 1024, 64, 1048576,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.default_cpu_weight",
							"CPU weight of a new sandbox (cgroup cpu.weight, 1-10000).",
							NULL, &nx_default_cpu_weight, 100, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.default_tmp_size",
							"Size of the /tmp tmpfs of a new sandbox.",
							NULL, &nx_default_tmp_size, 64, 1, 65536,
							PGC_SIGHUP, GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.default_idle_timeout",
							"Idle time after which a new sandbox's deployments stop; 0 = never.",
							NULL, &nx_default_idle_timeout, 900, 0, 30 * 24 * 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.default_connection_limit",
							"Connection limit of a new sandbox's database role.",
							NULL, &nx_default_connection_limit, 20, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.default_database_quota",
							"Size a new sandbox's database may reach before it refuses writes.",
							NULL, &nx_default_database_quota, 1024, 1, 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomEnumVariable("nx.default_preview_database",
							 "Database a new sandbox's preview deployments get: branch, empty or production.",
							 "branch: a copy of production's database taken at push; empty: an empty one of "
							 "its own; production: the production database itself (shared).",
							 &nx_default_preview_database, NX_PREVIEW_DATABASE_BRANCH,
							 preview_database_options, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.max_branch_size",
							"Largest production database a push may branch (copy) for a preview.",
							"Larger ones are refused: push with database => 'empty' or 'production'.",
							&nx_max_branch_size, 1024, 1, 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.max_branches_per_sandbox",
							"Most deployments with a database of their own (branch or empty) one sandbox may hold.",
							NULL, &nx_max_branches_per_sandbox, 5, 0, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.branch_copy_rate",
							"Megabytes per second a branch copy may move from pg_dump to pg_restore (0: no limit).",
							"The copy writes the branch and its WAL into the same WAL stream production's commits "
							"wait on: a limit keeps production's latency while a preview is branched.",
							&nx_branch_copy_rate, 32, 0, 100000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	NxCeilingGucInit();
}

/*
 * NxCeilingGucInit defines the ceilings: whatever a developer asks of
 * nx.create_sandbox (or nx.alter_sandbox) must lie at or below them, so
 * that one tenant cannot take what the cluster and the other tenants need
 * (I14).  The defaults fit a 2-CPU, 24 GiB host running a few hundred
 * sandboxes; docs/settings.md says how to size them.
 */
static void
NxCeilingGucInit(void)
{
	DefineCustomIntVariable("nx.max_memory_limit",
							"Largest memory_limit a sandbox may have.",
							NULL, &nx_max_memory_limit, 4096, 16, 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.max_pids_limit",
							"Largest pids_limit (processes and threads) a sandbox may have.",
							"Never more than the host's kernel.pid_max either.",
							&nx_max_pids_limit, 1024, 8, 65536,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.max_open_files_limit",
							"Largest open_files_limit a sandbox may have.",
							NULL, &nx_max_open_files_limit, 65536, 64, 1048576,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.max_cpu_weight",
							"Largest cpu_weight a sandbox may have.",
							NULL, &nx_max_cpu_weight, 1000, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.max_tmp_size",
							"Largest tmp_size (its /tmp and /dev/shm) a sandbox may have.",
							NULL, &nx_max_tmp_size, 1024, 1, 65536,
							PGC_SIGHUP, GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.max_connection_limit",
							"Largest connection_limit a sandbox's database role may have.",
							NULL, &nx_max_connection_limit, 50, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.max_database_quota",
							"Largest database_quota a sandbox may have.",
							NULL, &nx_max_database_quota, 10240, 1, 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.max_sandboxes_per_owner",
							"Most sandboxes one owner (role) may hold.",
							NULL, &nx_max_sandboxes_per_owner, 20, 1, 65535,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nx.max_deployments_per_owner",
							"Most deployments (not removed) one owner may hold across its sandboxes.",
							NULL, &nx_max_deployments_per_owner, 100, 1, 1000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
}
