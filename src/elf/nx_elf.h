/*
 * src/elf/nx_elf.h
 *	  The ELF reader: decides whether a pushed file is a Linux executable that
 *	  can run on this host, and explains why not.
 *
 * This code parses hostile bytes.  It runs inside a PostgreSQL backend (where
 * a crash restarts the whole cluster) and inside the `nx` client, so it is
 * plain C99 with no PostgreSQL or libc allocation: every fact it returns
 * points into the caller's buffer or into fixed-size arrays in NxElfInfo.
 * It never touches the filesystem; host checks (does the interpreter exist,
 * can the sandbox's loader find the libraries and the symbol versions the
 * binary needs) belong to the caller: see nx_libcheck.h.  It is fuzzed
 * (src/elf/fuzz/).
 *
 * Glossary:
 *	  problem	one reason the file cannot run here, with a code and a message;
 *				a file is runnable when it has no problems.
 *	  hint		one line telling the developer how to build a file that runs.
 *	  static	no PT_INTERP: the kernel starts it without a dynamic loader.
 *	  PIE		position-independent executable (ET_DYN with DF_1_PIE or an
 *				interpreter).
 *	  verneed	a symbol version the binary needs from a library
 *				(.gnu.version_r, found through DT_VERNEED), such as GLIBC_2.34
 *				from libc.so.6; glibc's loader refuses to start the binary
 *				when a library it loads does not define that version.
 */
#ifndef NX_ELF_H
#define NX_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NX_ELF_MAX_PROBLEMS 8
#define NX_ELF_MAX_NEEDED 128
#define NX_ELF_MESSAGE_LEN 320
#define NX_ELF_MAX_RUNPATH 4
#define NX_ELF_MAX_VERNEED 512

/* e_machine values the reader names and can expect. */
#define NX_EM_386 3
#define NX_EM_ARM 40
#define NX_EM_X86_64 62
#define NX_EM_AARCH64 183
#define NX_EM_RISCV 243

#if defined(__x86_64__)
#define NX_ELF_HOST_MACHINE NX_EM_X86_64
#elif defined(__aarch64__)
#define NX_ELF_HOST_MACHINE NX_EM_AARCH64
#elif defined(__riscv) && __riscv_xlen == 64
#define NX_ELF_HOST_MACHINE NX_EM_RISCV
#else
#error "nx_sandbox supports x86-64, AArch64 and RISC-V 64 hosts"
#endif

/*
 * Why a file cannot run.  Each code belongs to one of three kinds, which the
 * server maps to different SQLSTATEs (see NxElfProblemKindOf).
 */
typedef enum NxElfProblemCode
{
	/* malformed: the bytes are not a well-formed ELF64 executable */
	NX_ELF_EMPTY = 1,			/* zero bytes */
	NX_ELF_NOT_ELF,				/* no \x7fELF magic (and not one below) */
	NX_ELF_SCRIPT,				/* starts with #!: a script */
	NX_ELF_FOREIGN_FORMAT,		/* PE (MZ), Mach-O, wasm... */
	NX_ELF_TRUNCATED_HEADER,	/* shorter than the ELF header */
	NX_ELF_BAD_HEADER,			/* bad e_version, e_ehsize, e_phentsize... */
	NX_ELF_BAD_PROGRAM_HEADERS, /* program header table outside the file,
								 * PN_XNUM, or p_filesz > p_memsz */
	NX_ELF_SEGMENT_OUTSIDE_FILE,	/* a PT_LOAD's bytes end past EOF */
	NX_ELF_BAD_INTERPRETER,		/* PT_INTERP outside the file, unterminated,
								 * relative, or too long */
	NX_ELF_BAD_DYNAMIC,			/* PT_DYNAMIC or its string table outside the
								 * file, or a DT_NEEDED name out of bounds */
	/* unsupported: well-formed, but not for this host */
	NX_ELF_CLASS32,				/* ELFCLASS32 */
	NX_ELF_BIG_ENDIAN,			/* ELFDATA2MSB */
	NX_ELF_WRONG_MACHINE,		/* e_machine is not the expected one */
	NX_ELF_NOT_EXECUTABLE,		/* ET_REL, ET_CORE, or a shared library (an
								 * ET_DYN that is no PIE) */
	NX_ELF_NO_LOADABLE_SEGMENT,	/* no PT_LOAD at all */
	/* host: fine in itself, but this host lacks what it needs (added by the
	 * caller, which can look at the filesystem; never by NxElfRead) */
	NX_ELF_INTERPRETER_MISSING, /* PT_INTERP names a file not on this host */
	NX_ELF_LIBRARY_MISSING,		/* a DT_NEEDED library the sandbox's loader
								 * would not find (or not load) */
	NX_ELF_TOO_LARGE,			/* over the configured size limit */
	NX_ELF_VERSION_MISSING		/* a symbol version (verneed) that the
								 * library found for it does not define */
} NxElfProblemCode;

typedef enum NxElfProblemKind
{
	NX_ELF_KIND_MALFORMED,
	NX_ELF_KIND_UNSUPPORTED,
	NX_ELF_KIND_HOST
} NxElfProblemKind;

typedef struct NxElfProblem
{
	NxElfProblemCode code;
	char		message[NX_ELF_MESSAGE_LEN];	/* one sentence, no trailing
												 * period */
	char		hint[NX_ELF_MESSAGE_LEN];	/* this problem's own hint, or ""
											 * for the code's usual one */
} NxElfProblem;

/* A string found in the file: points into the caller's buffer, NUL-terminated
 * there (the reader checked), len excludes the NUL. */
typedef struct NxElfString
{
	const char *ptr;
	size_t		len;
} NxElfString;

/* One version the binary needs (a Vernaux of its verneed). */
typedef struct NxElfVersionNeed
{
	NxElfString file;			/* the library, as named in vn_file */
	NxElfString version;		/* the version, e.g. GLIBC_2.34 */
	uint32_t	hash;			/* vna_hash: the loader matches it too */
	bool		weak;			/* VER_FLG_WEAK: the loader only warns */
} NxElfVersionNeed;

typedef struct NxElfInfo
{
	size_t		size;			/* bytes given */
	bool		is_elf;			/* the magic matched */
	int			elf_class;		/* 32, 64, or 0 when unknown */
	bool		little_endian;	/* EI_DATA is ELFDATA2LSB */
	uint16_t	type;			/* e_type (ET_EXEC=2, ET_DYN=3, ...) */
	uint16_t	machine;		/* e_machine */
	bool		pie;			/* position-independent executable */
	bool		is_static;		/* no PT_INTERP */
	bool		has_interpreter;	/* PT_INTERP present and valid */
	NxElfString interpreter;	/* PT_INTERP path, when has_interpreter */
	int			n_needed;		/* DT_NEEDED entries kept (at most
								 * NX_ELF_MAX_NEEDED; printable names only) */
	NxElfString needed[NX_ELF_MAX_NEEDED];
	int			n_runpath;		/* DT_RUNPATH/DT_RPATH strings kept */
	NxElfString runpath[NX_ELF_MAX_RUNPATH];	/* colon-separated lists, as in
												 * the file */
	bool		runpath_is_rpath[NX_ELF_MAX_RUNPATH];	/* DT_RPATH, not
														 * DT_RUNPATH */
	bool		nodeflib;		/* DF_1_NODEFLIB: no ld.so.cache, no default
								 * directories */
	int			n_verneed;		/* versions needed, kept (at most
								 * NX_ELF_MAX_VERNEED) */
	bool		verneed_truncated;	/* more than that: the rest not kept */
	NxElfVersionNeed verneed[NX_ELF_MAX_VERNEED];
	int			n_problems;
	NxElfProblem problems[NX_ELF_MAX_PROBLEMS];
} NxElfInfo;

/*
 * NxElfRead inspects buf[0..len) and fills *info.  expected_machine is the
 * e_machine the file must have (NX_ELF_HOST_MACHINE on the server; 0 skips
 * the check).  Returns true when the file has no problems.  Never reads
 * outside buf, never allocates, never fails on any input.
 */
extern bool NxElfRead(const unsigned char *buf, size_t len,
					  uint16_t expected_machine, NxElfInfo *info);

/* NxElfFileType describes e_type the way a developer would say it:
 * "executable", "PIE executable", "shared object"... */
extern const char *NxElfFileType(const NxElfInfo *info);

/* NxElfMachineName: "x86-64", "AArch64", ... or NULL for an unknown value. */
extern const char *NxElfMachineName(uint16_t machine);

/* NxElfProblemKindOf: which of the three groups above a code is in. */
extern NxElfProblemKind NxElfProblemKindOf(NxElfProblemCode code);

/*
 * NxElfHint: one line telling the developer how to produce a file that
 * runs here, for the first problem in info (or NULL when there is none):
 * that problem's own hint when it has one, else the code's usual one.
 * expected_machine picks the GOARCH / target triple it names.
 */
extern const char *NxElfHint(const NxElfInfo *info, uint16_t expected_machine);

/* NxElfAddProblem: append a problem (used by the reader and by host checks
 * in the caller) and return it (so that a caller may set its hint); drops
 * it and returns NULL when the array is full. */
extern NxElfProblem *NxElfAddProblem(NxElfInfo *info, NxElfProblemCode code,
									 const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

#endif							/* NX_ELF_H */
