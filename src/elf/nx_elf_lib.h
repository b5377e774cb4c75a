/*
 * src/elf/nx_elf_lib.h
 *	  Reading a host shared library the way glibc's loader looks at it:
 *	  header checks (which libraries it skips, which it fails on), its
 *	  DT_NEEDED / DT_SONAME / DT_RUNPATH / DT_RPATH / DF_1_NODEFLIB, and the
 *	  symbol versions it defines (DT_VERDEF) and needs (DT_VERNEED).
 *
 * The library is read through an NxElfSource with bounded reads (never the
 * whole file: a library can be hundreds of megabytes), and everything
 * kept is copied into the fixed pool inside NxElfLibrary, so the caller
 * allocates one NxElfLibrary (about 100 KB) and reuses it.  Plain C, no
 * allocation, no filesystem access; fuzzed (fuzz/fuzz_elf.c reads every
 * input as a library too).
 *
 * Glossary:
 *	  skip		the loader passes over a candidate file of another ELF class
 *				or machine and keeps searching (NX_ELF_LIB_SKIPPED).
 *	  fail		the loader stops with an error on any other bad candidate
 *				(NX_ELF_LIB_BAD): a damaged file there is fatal.
 *	  pool		NxElfLibrary's string store; strings are referred to by
 *				their offset in it (NX_ELF_LIB_NONE: absent).
 */
#ifndef NX_ELF_LIB_H
#define NX_ELF_LIB_H

#include "nx_elf.h"
#include "nx_elf_int.h"

#define NX_ELF_LIB_POOL			65536
#define NX_ELF_LIB_MAX_NEEDED	256
#define NX_ELF_LIB_MAX_VERSIONS 1024
#define NX_ELF_LIB_MAX_LOADS	64
#define NX_ELF_LIB_NONE			UINT32_MAX

typedef enum NxElfLibStatus
{
	NX_ELF_LIB_OK,				/* the loader would load it */
	NX_ELF_LIB_SKIPPED,			/* other class or machine: the loader skips it */
	NX_ELF_LIB_BAD				/* the loader would fail on it */
} NxElfLibStatus;

/* one version a library defines or needs; strings are pool offsets */
typedef struct NxElfLibVersion
{
	uint32_t	file;			/* verneed: the library it is needed from */
	uint32_t	name;			/* e.g. GLIBC_2.34 */
	uint32_t	hash;			/* vd_hash / vna_hash */
	uint16_t	flags;			/* VER_FLG_BASE, VER_FLG_WEAK */
} NxElfLibVersion;

typedef struct NxElfLibLoad
{
	uint64_t	offset;
	uint64_t	vaddr;
	uint64_t	filesz;
} NxElfLibLoad;

typedef struct NxElfLibrary
{
	NxElfLibStatus status;
	char		error[NX_ELF_MESSAGE_LEN];	/* why not OK: "is a 32-bit
											 * library", "has no dynamic
											 * section"... (a phrase that
											 * follows the file's path) */
	int			elf_class;		/* 32, 64, or 0 */
	uint16_t	machine;
	uint32_t	soname;			/* DT_SONAME */
	uint32_t	runpath;		/* DT_RUNPATH (the last one) */
	uint32_t	rpath;			/* DT_RPATH, unless there is a DT_RUNPATH */
	bool		nodeflib;		/* DF_1_NODEFLIB */
	int			n_needed;
	uint32_t	needed[NX_ELF_LIB_MAX_NEEDED];
	bool		has_verdef;		/* DT_VERDEF present: versions are checked */
	int			n_verdef;
	NxElfLibVersion verdef[NX_ELF_LIB_MAX_VERSIONS];
	int			n_verneed;
	NxElfLibVersion verneed[NX_ELF_LIB_MAX_VERSIONS];
	bool		truncated;		/* a table or the pool was full: what did
								 * not fit was dropped */
	int			n_loads;
	NxElfLibLoad loads[NX_ELF_LIB_MAX_LOADS];
	size_t		pool_used;
	char		pool[NX_ELF_LIB_POOL];
} NxElfLibrary;

/*
 * NxElfReadLibrary reads the library in src and fills *lib; returns true
 * when the loader would load it (status NX_ELF_LIB_OK).  expected_machine
 * is the host's e_machine.  Never reads outside src, never fails on any
 * input.
 */
extern bool NxElfReadLibrary(const NxElfSource *src, uint16_t expected_machine,
							 NxElfLibrary *lib);

/* NxElfLibString: the pool string at off, or "" for NX_ELF_LIB_NONE. */
extern const char *NxElfLibString(const NxElfLibrary *lib, uint32_t off);

#endif							/* NX_ELF_LIB_H */
