/*
 * src/supervisor/hostsetup.h
 *	  Host prerequisites for running sandboxes (hostsetup.c).
 */
#ifndef NX_HOSTSETUP_H
#define NX_HOSTSETUP_H

#include "compat.h"

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

struct NxHostSetup;
extern void NxSetupRun(NxSetupReport *report, struct NxHostSetup *host);
extern void NxPgSocketPath(char *socket, size_t socket_len, char *dir, size_t dir_len);

#endif							/* NX_HOSTSETUP_H */
