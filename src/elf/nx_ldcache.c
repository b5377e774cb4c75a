/*
 * src/elf/nx_ldcache.c
 *	  The ld.so.cache reader: see nx_ldcache.h.
 *
 * Layout (little-endian, as glibc's sysdeps/generic/dl-cache.h):
 *	  new header, 48 bytes: "glibc-ld.so.cache" "1.1", nlibs, len_strings,
 *		flags (byte: 0 unknown, 2 little-endian, 3 big-endian), 3 padding
 *		bytes, extension_offset, 3 unused words; then nlibs entries of 24
 *		bytes (flags, key, value, osversion, hwcap64).  key and value are
 *		offsets of the name and the path from the start of the new header.
 *	  old header, 16 bytes: "ld.so-1.7.0", nlibs; nlibs entries of 12 bytes
 *		(flags, key, value), offsets from the end of the entries; a new
 *		header may follow, 8-byte aligned, and then wins.
 *
 * Glossary: see nx_ldcache.h (entry, flags, hwcap).
 */
#include "nx_ldcache.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAGIC_OLD		"ld.so-1.7.0"
#define MAGIC_OLD_LEN	11
#define MAGIC_NEW		"glibc-ld.so.cache1.1"
#define MAGIC_NEW_LEN	20
#define OLD_HEADER		16		/* magic (11), 1 padding byte, nlibs */
#define OLD_ENTRY		12
#define NEW_HEADER		48
#define NEW_ENTRY		24
#define ENDIAN_LITTLE	2

/* bit 62: a named glibc-hwcaps subdirectory (the low 32 bits index it) */
#define HWCAP_EXTENSION (1ULL << 62)
/* bit 63: the legacy "tls" hwcap, which every loader supports */
#define HWCAP_TLS		(1ULL << 63)

/* rd: the n-byte little-endian value at off (0 outside the buffer) */
static uint64_t
rd(const NxLdCache *c, uint64_t off, int n)
{
	uint64_t	v = 0;

	if (off > c->len || (uint64_t) n > c->len - off)
		return 0;
	while (n-- > 0)
		v = (v << 8) | c->buf[off + n];
	return v;
}

static void
set_err(char *err, size_t errlen, const char *fmt,...)
	__attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * open_new: the new-format header at base; false when it is not one the
 * loader would use.
 */
static bool
open_new(NxLdCache *c, uint64_t base, char *err, size_t errlen)
{
	uint32_t	nlibs;
	uint8_t		flags;

	if (base > c->len || c->len - base <= NEW_HEADER ||
		memcmp(c->buf + base, MAGIC_NEW, MAGIC_NEW_LEN) != 0)
	{
		set_err(err, errlen, "it has no glibc-ld.so.cache1.1 header");
		return false;
	}
	nlibs = (uint32_t) rd(c, base + 20, 4);
	flags = (uint8_t) rd(c, base + 28, 1);
	if ((c->len - base - NEW_HEADER) / NEW_ENTRY < nlibs)
	{
		set_err(err, errlen, "it lists %u libraries but is too short for them",
				(unsigned) nlibs);
		return false;
	}
	if (flags != 0 && (flags & 3) != ENDIAN_LITTLE)
	{
		set_err(err, errlen, "it was written for a big-endian machine");
		return false;
	}
	c->new_format = true;
	c->nlibs = nlibs;
	c->entries = base + NEW_HEADER;
	c->entry_size = NEW_ENTRY;
	c->strings = base;
	return true;
}

/* NxLdCacheOpen: which format, where entries and strings are (nx_ldcache.h) */
bool
NxLdCacheOpen(NxLdCache *c, const unsigned char *buf, size_t len,
			  char *err, size_t errlen)
{
	uint32_t	nlibs;
	uint64_t	after;

	memset(c, 0, sizeof(*c));
	c->buf = buf;
	c->len = buf ? len : 0;
	if (c->len >= MAGIC_NEW_LEN && memcmp(buf, MAGIC_NEW, MAGIC_NEW_LEN) == 0)
		return open_new(c, 0, err, errlen);
	if (c->len <= OLD_HEADER || memcmp(buf, MAGIC_OLD, MAGIC_OLD_LEN) != 0)
	{
		set_err(err, errlen, "it is not an ld.so.cache file (unknown magic)");
		return false;
	}
	nlibs = (uint32_t) rd(c, 12, 4);
	if ((c->len - OLD_HEADER) / OLD_ENTRY < nlibs)
	{
		set_err(err, errlen, "it lists %u libraries but is too short for them",
				(unsigned) nlibs);
		return false;
	}
	/* a new-format part after the old entries, 8-byte aligned, wins */
	after = OLD_HEADER + (uint64_t) nlibs * OLD_ENTRY;
	if (open_new(c, (after + 7) & ~(uint64_t) 7, NULL, 0))
		return true;
	c->new_format = false;
	c->nlibs = nlibs;
	c->entries = OLD_HEADER;
	c->entry_size = OLD_ENTRY;
	c->strings = after;
	return true;
}

/* string: the NUL-terminated string at index idx, or NULL */
static const char *
string(const NxLdCache *c, uint64_t idx)
{
	uint64_t	off;

	if (idx >= c->len - c->strings)
		return NULL;
	off = c->strings + idx;
	if (memchr(c->buf + off, '\0', c->len - off) == NULL)
		return NULL;
	return (const char *) c->buf + off;
}

/* NxLdCacheGet: entry i, each string checked (nx_ldcache.h) */
void
NxLdCacheGet(const NxLdCache *c, uint32_t i, NxLdCacheEntry *e)
{
	uint64_t	off = c->entries + (uint64_t) i * c->entry_size;

	memset(e, 0, sizeof(*e));
	if (i >= c->nlibs)
		return;
	e->flags = (int32_t) (uint32_t) rd(c, off, 4);
	e->name = string(c, rd(c, off + 4, 4));
	e->path = string(c, rd(c, off + 8, 4));
	if (c->new_format)
		e->hwcap = rd(c, off + 16, 8);
}

/* NxLdCacheCompare: glibc's _dl_cache_libcmp, with unsigned numbers */
int
NxLdCacheCompare(const char *p1, const char *p2)
{
	while (*p1 != '\0')
	{
		if (*p1 >= '0' && *p1 <= '9')
		{
			unsigned long long v1,
						v2;

			if (!(*p2 >= '0' && *p2 <= '9'))
				return 1;
			/* unsigned: a long run of digits wraps rather than overflows */
			v1 = (unsigned long long) (*p1++ - '0');
			v2 = (unsigned long long) (*p2++ - '0');
			while (*p1 >= '0' && *p1 <= '9')
				v1 = v1 * 10 + (unsigned long long) (*p1++ - '0');
			while (*p2 >= '0' && *p2 <= '9')
				v2 = v2 * 10 + (unsigned long long) (*p2++ - '0');
			if (v1 != v2)
				return v1 < v2 ? -1 : 1;
		}
		else if (*p2 >= '0' && *p2 <= '9')
			return -1;
		else if (*p1 != *p2)
			return (unsigned char) *p1 - (unsigned char) *p2;
		else
		{
			++p1;
			++p2;
		}
	}
	return -(int) (unsigned char) *p2;
}

/* NxLdCacheLookup: glibc's search_cache for one name (nx_ldcache.h) */
const char *
NxLdCacheLookup(const NxLdCache *c, const char *name, int32_t host_flags)
{
	int64_t		left = 0,
				right = (int64_t) c->nlibs - 1;

	while (left <= right)
	{
		int64_t		middle = left + (right - left) / 2;
		NxLdCacheEntry e;
		int			cmp;

		NxLdCacheGet(c, (uint32_t) middle, &e);
		if (e.name == NULL)
			return NULL;		/* the loader gives up on a bad index too */
		cmp = NxLdCacheCompare(name, e.name);
		if (cmp == 0)
		{
			/* back to the first entry of this name, then forward */
			while (middle > 0)
			{
				NxLdCacheGet(c, (uint32_t) (middle - 1), &e);
				if (e.name == NULL || NxLdCacheCompare(name, e.name) != 0)
					break;
				middle--;
			}
			for (; middle < (int64_t) c->nlibs; middle++)
			{
				NxLdCacheGet(c, (uint32_t) middle, &e);
				if (e.name == NULL || NxLdCacheCompare(name, e.name) != 0)
					break;
				if (e.flags != host_flags || e.path == NULL)
					continue;
				if ((e.hwcap & ~HWCAP_TLS) != 0)
					continue;	/* glibc-hwcaps or legacy hwcap entry */
				return e.path;
			}
			return NULL;
		}
		/* ldconfig sorts the entries in descending order */
		if (cmp < 0)
			left = middle + 1;
		else
			right = middle - 1;
	}
	return NULL;
}
