/*
 * src/supervisor/sql_exec.h
 *	  Transactions and top-level statements for the supervisor (sql_exec.c).
 */
#ifndef NX_SQL_EXEC_H
#define NX_SQL_EXEC_H

#include "compat.h"

extern void NxBeginTransaction(const char *activity);
extern void NxCommitTransaction(void);
extern void NxExecuteTopLevel(const char *sql);
extern bool NxTryTopLevel(const char *sql);
extern void NxRunUtility(const char *sql);
extern bool NxRunLoggingErrors(void (*fn) (void *), void *arg, const char *what);
extern bool NxTryInSubtransaction(void (*fn) (void *), void *arg, const char *what);

#endif							/* NX_SQL_EXEC_H */
