/*
 * src/nx_sandbox.h
 *	  Settings (GUCs) and module entry points shared by the server-side code.
 *
 * Every setting lives under the reserved prefix "nx."; the values below are
 * the current ones, kept up to date by the GUC machinery.  Limits are
 * PGC_SIGHUP so that a session cannot raise its own.
 */
#ifndef NX_SANDBOX_H
#define NX_SANDBOX_H

#include "compat.h"

#include "miscadmin.h"
#include "utils/guc.h"

/* URLs and routing */
extern char *nx_domain;
extern int	nx_http_port;
extern char *nx_dns_resolver;	/* custom-domain TXT lookups; "" = the system's */

/* deployments */
extern char *nx_port_range;
extern int	nx_port_range_first;	/* parsed from nx_port_range */
extern int	nx_port_range_last;
extern int	nx_max_binary_size;		/* bytes */
extern int	nx_max_sandboxes;
extern int	nx_max_deployments_per_sandbox;

/* per-sandbox defaults */
extern int	nx_default_memory_limit;	/* MB */
extern int	nx_default_pids_limit;
extern int	nx_default_open_files_limit;
extern int	nx_default_cpu_weight;
extern int	nx_default_tmp_size;	/* MB */
extern int	nx_default_idle_timeout;	/* seconds, 0 = never */
extern int	nx_default_connection_limit;
extern int	nx_default_database_quota;	/* MB */

/* preview databases */
extern int	nx_default_preview_database;	/* NX_PREVIEW_DATABASE_* */
extern int	nx_max_branch_size;		/* MB */
extern int	nx_max_branches_per_sandbox;
extern int	nx_branch_copy_rate;

#define NX_PREVIEW_DATABASE_BRANCH 0
#define NX_PREVIEW_DATABASE_EMPTY 1
#define NX_PREVIEW_DATABASE_PRODUCTION 2

/*
 * ceilings: the most any sandbox may ask for (invariant I14); nx_user chooses
 * limits below them, nx_admin raises them in postgresql.conf
 */
extern int	nx_max_memory_limit;	/* MB */
extern int	nx_max_pids_limit;
extern int	nx_max_open_files_limit;
extern int	nx_max_cpu_weight;
extern int	nx_max_tmp_size;		/* MB */
extern int	nx_max_connection_limit;
extern int	nx_max_database_quota;	/* MB */
extern int	nx_max_sandboxes_per_owner;
extern int	nx_max_deployments_per_owner;

/*
 * NxRestartContext is the context of a setting that needs a restart:
 * PGC_POSTMASTER while the library is preloaded, else PGC_SIGHUP.
 * PostgreSQL refuses (FATAL) to define a PGC_POSTMASTER setting after
 * start-up, which a session does when it loads the library without the
 * preload (the extension then works as a control plane with no supervisor,
 * and only views and nx.check_setup read these settings).
 */
static inline GucContext
NxRestartContext(void)
{
	return process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SIGHUP;
}

/* NxGucInit defines every nx.* setting; called once from _PG_init. */
extern void NxGucInit(void);

/* src/api/identity.c: n random characters of [a-z2-7] into out (n + 1) */
extern bool NxRandomToken(char *out, int n);

#endif							/* NX_SANDBOX_H */
