/*
 * src/elf/nx_ldcache.h
 *	  Reading glibc's /etc/ld.so.cache (written by ldconfig) and looking a
 *	  library up in it the way the dynamic loader does.
 *
 * The file is host data, bound read-only into every sandbox: trusted, but
 * parsed defensively anyway (every offset checked against the buffer,
 * every string found NUL-terminated inside it, no allocation), and fuzzed
 * (fuzz/fuzz_ldcache.c).  Formats: the new one ("glibc-ld.so.cache1.1",
 * what ldconfig writes since glibc 2.32), the old one ("ld.so-1.7.0"),
 * and the old one with the new one inside (ldconfig's former default).
 *
 * Glossary:
 *	  entry		one (name, path, flags, hwcap) row; entries are sorted by
 *				name, in descending order as glibc's _dl_cache_libcmp
 *				orders them.
 *	  flags		the library's kind; the loader takes only entries whose
 *				flags equal its own (x86-64: libc6 | x86-64 = 0x0303).
 *	  hwcap		0 for ordinary entries; named glibc-hwcaps entries (bit 62
 *				set, e.g. x86-64-v3) and legacy hwcap subdirectories are
 *				chosen by the loader per CPU: this reader skips them (see
 *				NxLdCacheLookup).
 */
#ifndef NX_LDCACHE_H
#define NX_LDCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* the loader's own flags (_DL_CACHE_DEFAULT_ID) per host architecture */
#if defined(__x86_64__)
#define NX_LDCACHE_HOST_FLAGS 0x0303	/* FLAG_X8664_LIB64 | FLAG_ELF_LIBC6 */
#elif defined(__aarch64__)
#define NX_LDCACHE_HOST_FLAGS 0x0a03	/* FLAG_AARCH64_LIB64 | FLAG_ELF_LIBC6 */
#elif defined(__riscv)
#define NX_LDCACHE_HOST_FLAGS 0x1003	/* FLAG_RISCV_FLOAT_ABI_DOUBLE |
										 * FLAG_ELF_LIBC6 */
#endif

#define NX_LDCACHE_MESSAGE_LEN 160

typedef struct NxLdCache
{
	const unsigned char *buf;
	size_t		len;
	bool		new_format;		/* 24-byte entries with hwcap */
	uint32_t	nlibs;
	uint64_t	entries;		/* buffer offset of entry 0 */
	uint64_t	entry_size;		/* 24 (new) or 12 (old) */
	uint64_t	strings;		/* buffer offset string indices count from */
} NxLdCache;

typedef struct NxLdCacheEntry
{
	int32_t		flags;
	const char *name;			/* NULL when its index is bad */
	const char *path;			/* NULL when its index is bad */
	uint64_t	hwcap;
} NxLdCacheEntry;

/*
 * NxLdCacheOpen checks the header of the cache file in buf[0..len) and
 * fills *cache (which points into buf).  Returns false with a reason in
 * err when the loader would not use the file either.
 */
extern bool NxLdCacheOpen(NxLdCache *cache, const unsigned char *buf,
						  size_t len, char *err, size_t errlen);

/* NxLdCacheGet: entry i (< cache->nlibs); strings NULL where out of bounds */
extern void NxLdCacheGet(const NxLdCache *cache, uint32_t i,
						 NxLdCacheEntry *entry);

/*
 * NxLdCacheLookup returns the path the loader would try for the library
 * name (a DT_NEEDED name without a slash), or NULL when the cache has no
 * entry the loader would take.  Like glibc's search_cache: a binary search
 * with _dl_cache_libcmp, then the first entry of that name whose flags
 * equal host_flags and whose hwcap is 0 (named glibc-hwcaps and legacy
 * hwcap entries are skipped: the loader prefers them on a CPU that
 * supports them, and ldconfig lists them only beside an ordinary entry for
 * the same library).  The string returned points into the buffer.
 */
extern const char *NxLdCacheLookup(const NxLdCache *cache, const char *name,
								   int32_t host_flags);

/* NxLdCacheCompare: glibc's _dl_cache_libcmp (digits compare as numbers) */
extern int	NxLdCacheCompare(const char *a, const char *b);

#endif							/* NX_LDCACHE_H */
