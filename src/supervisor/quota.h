/*
 * src/supervisor/quota.h
 *	  Tenant database sizes against their quotas (quota.c).
 */
#ifndef NX_QUOTA_H
#define NX_QUOTA_H

#include "supervisor.h"

#include "datatype/timestamp.h"

extern void NxQuotaTick(TimestampTz now);
extern void NxQuotaRequestCheck(void);
extern long NxQuotaNextDeadlineMs(TimestampTz now);

#endif							/* NX_QUOTA_H */
