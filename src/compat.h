/*
 * src/compat.h
 *	  Every difference between the PostgreSQL major versions nx_sandbox builds
 *	  against, in one place.  The rest of the code includes this instead of
 *	  testing PG_VERSION_NUM itself.
 *
 * Supported: 15 (Debian 12's), with 16 and 17 differences noted here as they
 * are met.
 */
#ifndef NX_COMPAT_H
#define NX_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 150000
#error "nx_sandbox needs PostgreSQL 15 or later"
#endif

/* PostgreSQL 16 moved the varlena macros (VARDATA, VARSIZE...) to varatt.h. */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/*
 * GUC check hooks hand their parsed value to the assign hook in memory the
 * GUC machinery frees with free(): guc_malloc() from 16 on, malloc() before.
 */
#if PG_VERSION_NUM >= 160000
#define NxGucMalloc(size) guc_malloc(LOG, (size))
#else
#define NxGucMalloc(size) malloc(size)
#endif

/*
 * pg_be_scram_build_secret is declared in libpq/scram.h, which pulls in
 * libpq-be.h and, on builds with GSSAPI (Debian's), gssapi/gssapi.h from a
 * package the server headers do not depend on.  Its signature is stable
 * since PostgreSQL 14.
 */
extern char *pg_be_scram_build_secret(const char *password);

#endif							/* NX_COMPAT_H */
