/*
 * src/supervisor/dbsetup.h
 *	  The hardening of each tenant database by a short-lived worker
 *	  (dbsetup.c).
 */
#ifndef NX_DBSETUP_H
#define NX_DBSETUP_H

#include "supervisor.h"

extern void NxDbSetupWant(const Oid *databases, int n);
extern void NxDbSetupStep(void);
extern PGDLLEXPORT void NxDbSetupMain(Datum arg);

#endif							/* NX_DBSETUP_H */
