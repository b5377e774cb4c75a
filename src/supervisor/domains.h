/*
 * src/supervisor/domains.h
 *	  Verifying custom domains by their DNS TXT record (domains.c).
 */
#ifndef NX_DOMAINS_H
#define NX_DOMAINS_H

#include "compat.h"

#include <sys/types.h>

extern void NxDomainChecks(void);
extern bool NxDomainCheckExited(pid_t pid, int wait_status);
extern void NxDomainChecksKill(void);

#endif							/* NX_DOMAINS_H */
