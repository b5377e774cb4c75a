/*
 * src/elf/nx_elf_int.h
 *	  Internals shared by the ELF reader's files (nx_elf.c, nx_elf_ver.c,
 *	  nx_elf_lib.c); not for callers outside src/elf/ and its tests.
 *
 * The pushed binary is in memory; a host library is read with bounded
 * reads from its file.  The symbol-version walkers (nx_elf_ver.c) serve
 * both, so they read through an NxElfSource, which is either a buffer or a
 * pread-like callback.  Everything a source returns has been bounds-checked
 * against the source's size before the read.
 *
 * Glossary:
 *	  source	bytes of one ELF file, read by offset (NxElfSource).
 *	  strtab	the dynamic string table (DT_STRTAB/DT_STRSZ) as a file range.
 *	  strref	a string of the strtab by file offset and length, found
 *				NUL-terminated inside the strtab.
 *	  verneed	the versions a file needs (DT_VERNEED, .gnu.version_r):
 *				entries (one per library) each with a chain of auxiliary
 *				entries (one per version name).
 *	  verdef	the versions a library defines (DT_VERDEF, .gnu.version_d).
 */
#ifndef NX_ELF_INT_H
#define NX_ELF_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* dynamic tags and flags the readers use (values as in <elf.h>) */
#define NX_DT_NULL			0
#define NX_DT_NEEDED		1
#define NX_DT_STRTAB		5
#define NX_DT_STRSZ			10
#define NX_DT_SONAME		14
#define NX_DT_RPATH			15
#define NX_DT_RUNPATH		29
#define NX_DT_FLAGS_1		0x6ffffffbULL
#define NX_DT_VERDEF		0x6ffffffcULL
#define NX_DT_VERDEFNUM		0x6ffffffdULL
#define NX_DT_VERNEED		0x6ffffffeULL
#define NX_DT_VERNEEDNUM	0x6fffffffULL
#define NX_DF_1_NODEFLIB	0x00000800ULL
#define NX_DF_1_PIE			0x08000000ULL
#define NX_VER_FLG_BASE		0x1
#define NX_VER_FLG_WEAK		0x2

/* Longest name (library, version) the walkers accept, NUL excluded. */
#define NX_ELF_NAME_MAX		4096

/*
 * Upper bound on the entries one version walk visits (all chains
 * together): far above any real file (glibc's libc defines about 50
 * versions), low enough that a hostile file costs little CPU.
 */
#define NX_ELF_MAX_VERSION_STEPS 65536

typedef struct NxElfSource NxElfSource;

/*
 * An ELF file to read by offset.  read() copies exactly n bytes at off into
 * out, or returns false (outside the file, I/O error).  Callers check the
 * range against size first; read() checks again.
 */
struct NxElfSource
{
	bool		(*read) (const NxElfSource *src, uint64_t off, void *out, size_t n);
	const unsigned char *mem;	/* for NxElfMemorySource */
	void	   *ctx;			/* for callback sources */
	uint64_t	size;			/* bytes in the file */
	int			handle;			/* for callback sources */
};

typedef struct NxElfStrtab
{
	uint64_t	off;			/* file offset */
	uint64_t	size;			/* bytes; [off, off + size) is inside the file */
} NxElfStrtab;

typedef struct NxElfStrRef
{
	uint64_t	off;			/* file offset of the first byte */
	uint32_t	len;			/* NUL excluded */
} NxElfStrRef;

/* What a walker reports for each version entry. */
typedef struct NxElfVersionEntry
{
	NxElfStrRef file;			/* verneed: vn_file (the library); verdef:
								 * unused (len 0) */
	NxElfStrRef name;			/* vna_name / the first vda_name */
	uint32_t	hash;			/* vna_hash / vd_hash */
	uint16_t	flags;			/* vna_flags / vd_flags */
} NxElfVersionEntry;

/* visitor: return false to stop the walk early (not an error) */
typedef bool (*NxElfVersionVisit) (void *arg, const NxElfVersionEntry *e);

/* range_ok: is [off, off + size) inside a len-byte file?  Cannot overflow. */
static inline bool
nx_range_ok(uint64_t off, uint64_t size, uint64_t len)
{
	return off <= len && size <= len - off;
}

/* NxElfMemorySource: a source over a buffer. */
extern void NxElfMemorySource(NxElfSource *src, const unsigned char *buf,
							  size_t len);

/*
 * NxElfReadString: the string at offset val of the strtab, found
 * NUL-terminated within the strtab and at most NX_ELF_NAME_MAX bytes,
 * printable ASCII.  Copies it into copy (when copy is not NULL; copylen >
 * NX_ELF_NAME_MAX).  On failure returns false with a reason in err
 * ("... is at offset N, outside ...").  what names the entry.
 */
extern bool NxElfReadString(const NxElfSource *src, const NxElfStrtab *st,
							uint64_t val, const char *what, NxElfStrRef *out,
							char *copy, size_t copylen,
							char *err, size_t errlen);

/*
 * NxElfWalkVerneed / NxElfWalkVerdef follow the chains from file offset off
 * the way glibc's loader does (vn_next / vna_next, vd_next; a zero next
 * ends a chain; only the first entry's version must be 1), requiring every
 * entry to lie in [off, off + avail) (the bytes of the segment holding the
 * table).  visit is called once per version: per Vernaux, or per Verdef
 * with its first Verdaux name.  Return false with a reason in err when the
 * table is damaged (the visits made so far stand).
 */
extern bool NxElfWalkVerneed(const NxElfSource *src, const NxElfStrtab *st,
							 uint64_t off, uint64_t avail,
							 NxElfVersionVisit visit, void *arg,
							 char *err, size_t errlen);
extern bool NxElfWalkVerdef(const NxElfSource *src, const NxElfStrtab *st,
							uint64_t off, uint64_t avail,
							NxElfVersionVisit visit, void *arg,
							char *err, size_t errlen);

#endif							/* NX_ELF_INT_H */
