/*
 * src/elf/nx_elf_ver.c
 *	  Symbol-version tables: walk the versions a file needs (DT_VERNEED) or
 *	  defines (DT_VERDEF), and read dynamic strings, through an NxElfSource
 *	  (see nx_elf_int.h).  Used for the pushed binary (a buffer) and for
 *	  host libraries (bounded reads of the file).
 *
 * The tables are chains of entries linked by forward offsets (vn_next,
 * vna_next, vd_next: unsigned, so a chain cannot loop), ended by a zero
 * offset; glibc's loader follows the chains and ignores the counts
 * (vn_cnt, vd_cnt, DT_VERNEEDNUM), and so do we.  Every entry must lie in
 * the caller's range (the segment holding the table), every string inside
 * the string table; at most NX_ELF_MAX_VERSION_STEPS entries are visited.
 *
 * Glossary: see nx_elf_int.h (source, strtab, strref, verneed, verdef).
 */
#include "nx_elf_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* sizes of the ELF64 version structures (all fields little-endian) */
#define VERNEED_SIZE	16		/* vn_version, vn_cnt, vn_file, vn_aux, vn_next */
#define VERNAUX_SIZE	16		/* vna_hash, vna_flags, vna_other, vna_name,
								 * vna_next */
#define VERDEF_SIZE		20		/* vd_version, vd_flags, vd_ndx, vd_cnt,
								 * vd_hash, vd_aux, vd_next */
#define VERDAUX_SIZE	8		/* vda_name, vda_next */

typedef unsigned long long ull;

/* MemoryRead: the read() of a buffer source, bounds-checked. */
static bool
MemoryRead(const NxElfSource *src, uint64_t off, void *out, size_t n)
{
	if (src->mem == NULL || !nx_range_ok(off, n, src->size))
		return false;
	memcpy(out, src->mem + off, n);
	return true;
}

/* NxElfMemorySource: a source over buf[0..len) (see nx_elf_int.h) */
void
NxElfMemorySource(NxElfSource *src, const unsigned char *buf, size_t len)
{
	memset(src, 0, sizeof(*src));
	src->read = MemoryRead;
	src->mem = buf;
	src->size = buf ? len : 0;
}

/* le: the n-byte little-endian value at p */
static uint32_t
le(const unsigned char *p, int n)
{
	uint32_t	v = 0;

	while (n-- > 0)
		v = (v << 8) | p[n];
	return v;
}

/* set_err: write a reason into err (when there is room for one) */
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
 * read_at: read n bytes at base + rel into out, where [base, base + avail)
 * is the table's range; false when they are not all inside it.
 */
static bool
read_at(const NxElfSource *src, uint64_t base, uint64_t avail, uint64_t rel,
		void *out, size_t n)
{
	if (!nx_range_ok(rel, n, avail))
		return false;
	return src->read(src, base + rel, out, n);
}

/* NxElfReadString: one string of the strtab, checked (see nx_elf_int.h) */
bool
NxElfReadString(const NxElfSource *src, const NxElfStrtab *st, uint64_t val,
				const char *what, NxElfStrRef *out, char *copy, size_t copylen,
				char *err, size_t errlen)
{
	unsigned char buf[NX_ELF_NAME_MAX + 1];
	uint64_t	left;
	size_t		n,
				i;
	const unsigned char *nul;

	if (val >= st->size)
	{
		set_err(err, errlen, "%s name is at offset %llu, outside the %llu-byte dynamic string table",
				what, (ull) val, (ull) st->size);
		return false;
	}
	left = st->size - val;
	n = left < sizeof(buf) ? (size_t) left : sizeof(buf);
	if (!src->read(src, st->off + val, buf, n))
	{
		set_err(err, errlen, "%s name at offset %llu cannot be read", what, (ull) val);
		return false;
	}
	nul = memchr(buf, '\0', n);
	if (nul == NULL)
	{
		if (n == left)
			set_err(err, errlen, "%s name at offset %llu is not NUL-terminated inside the dynamic string table",
					what, (ull) val);
		else
			set_err(err, errlen, "%s name at offset %llu is longer than %d bytes",
					what, (ull) val, NX_ELF_NAME_MAX);
		return false;
	}
	out->off = st->off + val;
	out->len = (uint32_t) (nul - buf);
	for (i = 0; i < out->len; i++)
		if (buf[i] < 0x20 || buf[i] >= 0x7f)
		{
			set_err(err, errlen, "%s name at offset %llu contains non-printable bytes",
					what, (ull) val);
			return false;
		}
	if (out->len == 0)
	{
		set_err(err, errlen, "%s name is empty", what);
		return false;
	}
	if (copy != NULL && copylen > out->len)
	{
		memcpy(copy, buf, out->len);
		copy[out->len] = '\0';
	}
	return true;
}

/*
 * NxElfWalkVerneed: every Vernaux of every Verneed, the loader's way (see
 * nx_elf_int.h)
 */
bool
NxElfWalkVerneed(const NxElfSource *src, const NxElfStrtab *st, uint64_t off,
				 uint64_t avail, NxElfVersionVisit visit, void *arg,
				 char *err, size_t errlen)
{
	uint64_t	rel = 0;
	long		steps = 0;
	bool		first = true;

	if (!nx_range_ok(off, avail, src->size))
	{
		set_err(err, errlen, "version needs (DT_VERNEED) lie outside the file");
		return false;
	}
	for (;;)
	{
		unsigned char vn[VERNEED_SIZE];
		NxElfVersionEntry e;
		uint32_t	vn_aux,
					vn_next;
		uint64_t	arel;

		if (!read_at(src, off, avail, rel, vn, sizeof(vn)))
		{
			set_err(err, errlen, "version needs (DT_VERNEED) entry at offset %llu runs past the end of its segment",
					(ull) (off + rel));
			return false;
		}
		if (first && le(vn, 2) != 1)
		{
			set_err(err, errlen, "version needs (DT_VERNEED) have version %u, not 1",
					(unsigned) le(vn, 2));
			return false;
		}
		first = false;
		memset(&e, 0, sizeof(e));
		if (!NxElfReadString(src, st, le(vn + 4, 4), "version needs library",
							 &e.file, NULL, 0, err, errlen))
			return false;
		vn_aux = le(vn + 8, 4);
		vn_next = le(vn + 12, 4);
		if (vn_aux > avail - rel)
		{
			set_err(err, errlen, "version needs (DT_VERNEED) entry at offset %llu points past the end of its segment",
					(ull) (off + rel));
			return false;
		}
		arel = rel + vn_aux;
		for (;;)
		{
			unsigned char vna[VERNAUX_SIZE];
			uint32_t	vna_next;

			if (++steps > NX_ELF_MAX_VERSION_STEPS)
			{
				set_err(err, errlen, "version needs (DT_VERNEED) have more than %d entries",
						NX_ELF_MAX_VERSION_STEPS);
				return false;
			}
			if (!read_at(src, off, avail, arel, vna, sizeof(vna)))
			{
				set_err(err, errlen, "version needs (DT_VERNEED) entry at offset %llu runs past the end of its segment",
						(ull) (off + arel));
				return false;
			}
			e.hash = le(vna, 4);
			e.flags = (uint16_t) le(vna + 4, 2);
			if (!NxElfReadString(src, st, le(vna + 8, 4), "needed version",
								 &e.name, NULL, 0, err, errlen))
				return false;
			if (!visit(arg, &e))
				return true;
			vna_next = le(vna + 12, 4);
			if (vna_next == 0)
				break;
			if (vna_next > avail - arel)
			{
				set_err(err, errlen, "version needs (DT_VERNEED) entry at offset %llu points past the end of its segment",
						(ull) (off + arel));
				return false;
			}
			arel += vna_next;
		}
		if (vn_next == 0)
			return true;
		if (vn_next > avail - rel)
		{
			set_err(err, errlen, "version needs (DT_VERNEED) entry at offset %llu points past the end of its segment",
					(ull) (off + rel));
			return false;
		}
		rel += vn_next;
	}
}

/*
 * NxElfWalkVerdef: every Verdef with its first Verdaux (the version's own
 * name; the others name its parents), the loader's way
 */
bool
NxElfWalkVerdef(const NxElfSource *src, const NxElfStrtab *st, uint64_t off,
				uint64_t avail, NxElfVersionVisit visit, void *arg,
				char *err, size_t errlen)
{
	uint64_t	rel = 0;
	long		steps = 0;
	bool		first = true;

	if (!nx_range_ok(off, avail, src->size))
	{
		set_err(err, errlen, "version definitions (DT_VERDEF) lie outside the file");
		return false;
	}
	for (;;)
	{
		unsigned char vd[VERDEF_SIZE];
		unsigned char vda[VERDAUX_SIZE];
		NxElfVersionEntry e;
		uint32_t	vd_aux,
					vd_next;

		if (++steps > NX_ELF_MAX_VERSION_STEPS)
		{
			set_err(err, errlen, "version definitions (DT_VERDEF) have more than %d entries",
					NX_ELF_MAX_VERSION_STEPS);
			return false;
		}
		if (!read_at(src, off, avail, rel, vd, sizeof(vd)))
		{
			set_err(err, errlen, "version definition (DT_VERDEF) at offset %llu runs past the end of its segment",
					(ull) (off + rel));
			return false;
		}
		if (first && le(vd, 2) != 1)
		{
			set_err(err, errlen, "version definitions (DT_VERDEF) have version %u, not 1",
					(unsigned) le(vd, 2));
			return false;
		}
		first = false;
		vd_aux = le(vd + 12, 4);
		vd_next = le(vd + 16, 4);
		if (vd_aux > avail - rel ||
			!read_at(src, off, avail, rel + vd_aux, vda, sizeof(vda)))
		{
			set_err(err, errlen, "version definition (DT_VERDEF) at offset %llu points past the end of its segment",
					(ull) (off + rel));
			return false;
		}
		memset(&e, 0, sizeof(e));
		e.flags = (uint16_t) le(vd + 2, 2);
		e.hash = le(vd + 8, 4);
		if (!NxElfReadString(src, st, le(vda, 4), "defined version",
							 &e.name, NULL, 0, err, errlen))
			return false;
		if (!visit(arg, &e))
			return true;
		if (vd_next == 0)
			return true;
		if (vd_next > avail - rel)
		{
			set_err(err, errlen, "version definition (DT_VERDEF) at offset %llu points past the end of its segment",
					(ull) (off + rel));
			return false;
		}
		rel += vd_next;
	}
}
