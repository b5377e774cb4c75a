/*
 * src/supervisor/branch.h
 *	  Databases of their own for preview deployments (database_mode branch
 *	  or empty): made, watched and dropped by the supervisor (branch.c).
 */
#ifndef NX_BRANCH_H
#define NX_BRANCH_H

#include "supervisor.h"

#include "datatype/timestamp.h"

struct NxHostSetup;

extern void NxBranchesConverge(const struct NxHostSetup *host, MemoryContext context);
extern void NxBranchesTick(TimestampTz now);
extern long NxBranchesNextDeadlineMs(TimestampTz now);
extern bool NxBranchChildExited(pid_t pid, int wait_status);
extern void NxBranchesKillAll(void);

/* the SQL that keeps the generic drop steps (provision.c) off branch objects */
#define NX_BRANCH_TEMP_LIKE "'nx\\_\\_branch\\_%'"

#endif							/* NX_BRANCH_H */
