/*
 * src/supervisor/hostsetup.h
 *	  Host prerequisites for running sandboxes (hostsetup.c).
 */
#ifndef NX_HOSTSETUP_H
#define NX_HOSTSETUP_H

#include "compat.h"
#include "runtime/nx_runtime.h"

#define NX_MAX_SETUP_CHECKS 16

typedef struct NxSetupCheck
{
	char		name[64];
	bool		ok;
	bool		required;		/* sandboxes do not start while it fails */
	char		detail[512];	/* what was found */
	char		fix[512];		/* the exact fix, when not ok */
} NxSetupCheck;

typedef struct NxSetupReport
{
	int			n;
	NxSetupCheck checks[NX_MAX_SETUP_CHECKS];
} NxSetupReport;

/* What the host offers, checked once per converge pass. */
typedef struct NxHostSetup
{
	bool		ok;				/* sandboxes may be started */
	char		why[512];		/* when not ok: what is missing, and the fix */
	uid_t		uid_base;		/* the cluster user's subordinate range */
	gid_t		gid_base;
	int			uid_count;
	int			slice_start;	/* this cluster's slice of it (uidslice.c): */
	int			slice_size;		/* host uid = base + slice_start + offset */
	NxCgroupLayout cgroups;
	char		spawn_helper[MAXPGPATH];
	char		init[MAXPGPATH];
	char		pg_socket[MAXPGPATH];	/* the cluster's unix socket file */
	char		pg_socket_dir[MAXPGPATH];
} NxHostSetup;

/* NxTenantUid, NxTenantGid: the host uid and gid of a sandbox's uid offset */
static inline uid_t
NxTenantUid(const NxHostSetup *host, int uid_offset)
{
	return (uid_t) (host->uid_base + host->slice_start + uid_offset);
}

static inline gid_t
NxTenantGid(const NxHostSetup *host, int uid_offset)
{
	return (gid_t) (host->gid_base + host->slice_start + uid_offset);
}

extern void NxHostSetupCheck(NxHostSetup *setup);
extern void NxSetupRun(NxSetupReport *report, NxHostSetup *host);
extern void NxPgSocketPath(char *socket, size_t socket_len, char *dir, size_t dir_len);

#endif							/* NX_HOSTSETUP_H */
