/*
 * src/elf/nx_elf_lib.c
 *	  NxElfReadLibrary: read a host shared library with bounded reads, the
 *	  way glibc's loader (open_verify, _dl_map_object_from_fd) looks at a
 *	  candidate file, and keep what resolving its own dependencies and
 *	  checking symbol versions needs.  See nx_elf_lib.h.
 *
 * The rules of nx_elf.c hold here too: every read goes through the
 * source, which checks its bounds; every count is capped before a loop;
 * every string is found NUL-terminated inside the string table before it
 * is copied into the pool.
 *
 * Glossary: see nx_elf_lib.h (skip, fail, pool) and nx_elf_int.h.
 */
#include "nx_elf_lib.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define EHDR_SIZE		64
#define PHDR_SIZE		56
#define DYN_SIZE		16
#define MAX_PHNUM		(65536 / PHDR_SIZE)
#define MAX_DYN			65536	/* dynamic entries looked at */
#define DYN_CHUNK		64		/* dynamic entries per read */

#define PT_LOAD			1
#define PT_DYNAMIC		2
#define ET_DYN			3
#define ELFOSABI_SYSV	0
#define ELFOSABI_GNU	3

typedef unsigned long long ull;

/* le: the n-byte little-endian value at p */
static uint64_t
le(const unsigned char *p, int n)
{
	uint64_t	v = 0;

	while (n-- > 0)
		v = (v << 8) | p[n];
	return v;
}

/* fail: record why the loader would not load the library (first reason) */
static bool
fail(NxElfLibrary *lib, NxElfLibStatus status, const char *fmt,...)
	__attribute__((format(printf, 3, 4)));

static bool
fail(NxElfLibrary *lib, NxElfLibStatus status, const char *fmt,...)
{
	va_list		ap;

	if (lib->status != NX_ELF_LIB_OK)
		return false;
	lib->status = status;
	va_start(ap, fmt);
	vsnprintf(lib->error, sizeof(lib->error), fmt, ap);
	va_end(ap);
	return false;
}

/* NxElfLibString: a pool string (nx_elf_lib.h) */
const char *
NxElfLibString(const NxElfLibrary *lib, uint32_t off)
{
	if (off == NX_ELF_LIB_NONE || off >= lib->pool_used)
		return "";
	return lib->pool + off;
}

/* pool_add: copy s (len bytes) into the pool; NX_ELF_LIB_NONE when full */
static uint32_t
pool_add(NxElfLibrary *lib, const char *s, size_t len)
{
	uint32_t	off;

	if (len + 1 > sizeof(lib->pool) - lib->pool_used)
	{
		lib->truncated = true;
		return NX_ELF_LIB_NONE;
	}
	off = (uint32_t) lib->pool_used;
	memcpy(lib->pool + off, s, len);
	lib->pool[off + len] = '\0';
	lib->pool_used += len + 1;
	return off;
}

/*
 * vaddr_to_offset: the file offset of virtual address vaddr through the
 * PT_LOAD segments kept, and the file bytes from there to the segment's
 * end.
 */
static bool
vaddr_to_offset(const NxElfLibrary *lib, uint64_t vaddr, uint64_t *off,
				uint64_t *avail)
{
	for (int i = 0; i < lib->n_loads; i++)
	{
		const NxElfLibLoad *l = &lib->loads[i];

		if (vaddr < l->vaddr || vaddr - l->vaddr >= l->filesz)
			continue;
		*off = l->offset + (vaddr - l->vaddr);
		*avail = l->filesz - (vaddr - l->vaddr);
		return true;
	}
	return false;
}

/*
 * check_header: the loader's checks on the ELF header (open_verify), in
 * its order.  Sets *phoff and *phnum.
 */
static bool
check_header(const NxElfSource *src, uint16_t expected_machine,
			 NxElfLibrary *lib, uint64_t *phoff, uint32_t *phnum)
{
	unsigned char h[EHDR_SIZE];
	uint16_t	e_type,
				e_phentsize,
				e_phnum;
	const char *name;

	if (src->size < EHDR_SIZE || !src->read(src, 0, h, EHDR_SIZE))
		return fail(lib, NX_ELF_LIB_BAD, "is too short to be an ELF file");
	if (memcmp(h, "\177ELF", 4) != 0)
		return fail(lib, NX_ELF_LIB_BAD, "is not an ELF file");
	if (h[4] != 2)
	{
		lib->elf_class = h[4] == 1 ? 32 : 0;
		return fail(lib, NX_ELF_LIB_SKIPPED, h[4] == 1
					? "is a 32-bit library" : "has an unknown ELF class");
	}
	lib->elf_class = 64;
	if (h[5] != 1)
		return fail(lib, NX_ELF_LIB_BAD, "is not a little-endian ELF file");
	if (h[6] != 1 || le(h + 20, 4) != 1)
		return fail(lib, NX_ELF_LIB_BAD, "has an unknown ELF version");
	if (h[7] != ELFOSABI_SYSV && h[7] != ELFOSABI_GNU)
		return fail(lib, NX_ELF_LIB_BAD, "is built for another operating system (OS ABI %u)",
					(unsigned) h[7]);
	for (int i = 9; i < 16; i++)
		if (h[i] != 0)
			return fail(lib, NX_ELF_LIB_BAD, "has nonzero padding in its ELF identification");
	lib->machine = (uint16_t) le(h + 18, 2);
	if (expected_machine != 0 && lib->machine != expected_machine)
	{
		name = NxElfMachineName(lib->machine);
		if (name != NULL)
			return fail(lib, NX_ELF_LIB_SKIPPED, "is built for %s", name);
		return fail(lib, NX_ELF_LIB_SKIPPED, "is built for machine %u",
					(unsigned) lib->machine);
	}
	e_type = (uint16_t) le(h + 16, 2);
	if (e_type != ET_DYN)
		return fail(lib, NX_ELF_LIB_BAD, "is not a shared library (ELF type %u)",
					(unsigned) e_type);
	e_phentsize = (uint16_t) le(h + 54, 2);
	e_phnum = (uint16_t) le(h + 56, 2);
	if (e_phentsize != PHDR_SIZE)
		return fail(lib, NX_ELF_LIB_BAD, "has program headers of %u bytes, not 56",
					(unsigned) e_phentsize);
	if (e_phnum == 0 || e_phnum > MAX_PHNUM)
		return fail(lib, NX_ELF_LIB_BAD, "has %u program headers", (unsigned) e_phnum);
	*phoff = le(h + 32, 8);
	*phnum = e_phnum;
	if (!nx_range_ok(*phoff, (uint64_t) e_phnum * PHDR_SIZE, src->size))
		return fail(lib, NX_ELF_LIB_BAD, "has its program headers outside the file");
	return true;
}

/*
 * read_phdrs: keep the PT_LOADs (for address mapping) and find the
 * dynamic segment (the last PT_DYNAMIC, as the loader takes it).
 */
static bool
read_phdrs(const NxElfSource *src, NxElfLibrary *lib, uint64_t phoff,
		   uint32_t phnum, uint64_t *dyn_off, uint64_t *dyn_size)
{
	bool		have_dynamic = false;
	bool		have_load = false;

	for (uint32_t i = 0; i < phnum; i++)
	{
		unsigned char ph[PHDR_SIZE];
		uint32_t	type;
		uint64_t	p_offset,
					p_filesz;

		if (!src->read(src, phoff + (uint64_t) i * PHDR_SIZE, ph, PHDR_SIZE))
			return fail(lib, NX_ELF_LIB_BAD, "cannot be read (program header %u)", (unsigned) i);
		type = (uint32_t) le(ph, 4);
		p_offset = le(ph + 8, 8);
		p_filesz = le(ph + 32, 8);
		if (type == PT_LOAD)
		{
			have_load = true;
			if (!nx_range_ok(p_offset, p_filesz, src->size))
				return fail(lib, NX_ELF_LIB_BAD, "has a loadable segment past the end of the file");
			if (lib->n_loads < NX_ELF_LIB_MAX_LOADS)
			{
				NxElfLibLoad *l = &lib->loads[lib->n_loads++];

				l->offset = p_offset;
				l->vaddr = le(ph + 16, 8);
				l->filesz = p_filesz;
			}
		}
		else if (type == PT_DYNAMIC)
		{
			have_dynamic = true;
			*dyn_off = p_offset;
			*dyn_size = p_filesz;
		}
	}
	if (!have_load)
		return fail(lib, NX_ELF_LIB_BAD, "has no loadable segments");
	if (!have_dynamic || *dyn_size < DYN_SIZE)
		return fail(lib, NX_ELF_LIB_BAD, "has no dynamic section");
	if (!nx_range_ok(*dyn_off, *dyn_size, src->size))
		return fail(lib, NX_ELF_LIB_BAD, "has its dynamic section outside the file");
	return true;
}

/* What the dynamic section says, before its strings are read. */
typedef struct DynFacts
{
	bool		have_strtab,
				have_strsz,
				have_verdef,
				have_verneed,
				have_soname,
				have_runpath,
				have_rpath;
	uint64_t	strtab,
				strsz,
				verdef,
				verneed,
				soname,
				runpath,
				rpath,
				flags_1;
	int			n_needed;
} DynFacts;

/*
 * scan_dynamic: pass 1 over the dynamic entries (read DYN_CHUNK at a
 * time): the tags' values.  For each DT_NEEDED, calls keep_needed in pass
 * 2 (see read_needed); here it only counts.  The loader keeps the last
 * entry of each tag (DT_NEEDED aside), so do we.
 */
static bool
scan_dynamic(const NxElfSource *src, NxElfLibrary *lib, uint64_t off,
			 uint64_t size, DynFacts *f)
{
	uint64_t	n = size / DYN_SIZE;

	if (n > MAX_DYN)
		n = MAX_DYN;
	for (uint64_t i = 0; i < n; i += DYN_CHUNK)
	{
		unsigned char buf[DYN_CHUNK * DYN_SIZE];
		uint64_t	k = n - i < DYN_CHUNK ? n - i : DYN_CHUNK;

		if (!src->read(src, off + i * DYN_SIZE, buf, (size_t) (k * DYN_SIZE)))
			return fail(lib, NX_ELF_LIB_BAD, "cannot be read (dynamic section)");
		for (uint64_t j = 0; j < k; j++)
		{
			uint64_t	tag = le(buf + j * DYN_SIZE, 8);
			uint64_t	val = le(buf + j * DYN_SIZE + 8, 8);

			switch (tag)
			{
				case NX_DT_NULL:
					return true;
				case NX_DT_NEEDED:
					f->n_needed++;
					break;
				case NX_DT_STRTAB:
					f->have_strtab = true;
					f->strtab = val;
					break;
				case NX_DT_STRSZ:
					f->have_strsz = true;
					f->strsz = val;
					break;
				case NX_DT_SONAME:
					f->have_soname = true;
					f->soname = val;
					break;
				case NX_DT_RUNPATH:
					f->have_runpath = true;
					f->runpath = val;
					break;
				case NX_DT_RPATH:
					f->have_rpath = true;
					f->rpath = val;
					break;
				case NX_DT_FLAGS_1:
					f->flags_1 = val;
					break;
				case NX_DT_VERDEF:
					f->have_verdef = true;
					f->verdef = val;
					break;
				case NX_DT_VERNEED:
					f->have_verneed = true;
					f->verneed = val;
					break;
				default:
					break;
			}
		}
	}
	return true;
}

/*
 * pool_string: read the strtab string at val into the pool; false (the
 * library marked bad) when it is damaged.
 */
static bool
pool_string(const NxElfSource *src, NxElfLibrary *lib, const NxElfStrtab *st,
			uint64_t val, const char *what, uint32_t *out)
{
	char		copy[NX_ELF_NAME_MAX + 1];
	char		err[NX_ELF_MESSAGE_LEN];
	NxElfStrRef ref;

	if (!NxElfReadString(src, st, val, what, &ref, copy, sizeof(copy),
						 err, sizeof(err)))
		return fail(lib, NX_ELF_LIB_BAD, "has a damaged dynamic section: %s", err);
	*out = pool_add(lib, copy, ref.len);
	return true;
}

/*
 * read_needed: pass 2 over the dynamic entries: the DT_NEEDED names, in
 * order, into the pool.
 */
static bool
read_needed(const NxElfSource *src, NxElfLibrary *lib, uint64_t off,
			uint64_t size, const NxElfStrtab *st)
{
	uint64_t	n = size / DYN_SIZE;

	if (n > MAX_DYN)
		n = MAX_DYN;
	for (uint64_t i = 0; i < n; i += DYN_CHUNK)
	{
		unsigned char buf[DYN_CHUNK * DYN_SIZE];
		uint64_t	k = n - i < DYN_CHUNK ? n - i : DYN_CHUNK;

		if (!src->read(src, off + i * DYN_SIZE, buf, (size_t) (k * DYN_SIZE)))
			return fail(lib, NX_ELF_LIB_BAD, "cannot be read (dynamic section)");
		for (uint64_t j = 0; j < k; j++)
		{
			uint64_t	tag = le(buf + j * DYN_SIZE, 8);
			uint64_t	val = le(buf + j * DYN_SIZE + 8, 8);
			uint32_t	s;

			if (tag == NX_DT_NULL)
				return true;
			if (tag != NX_DT_NEEDED)
				continue;
			if (!pool_string(src, lib, st, val, "DT_NEEDED library", &s))
				return false;
			if (s == NX_ELF_LIB_NONE || lib->n_needed >= NX_ELF_LIB_MAX_NEEDED)
			{
				lib->truncated = true;
				continue;
			}
			lib->needed[lib->n_needed++] = s;
		}
	}
	return true;
}

/* VersionArg: where a version walk's visitor stores what it finds */
typedef struct VersionArg
{
	const NxElfSource *src;
	NxElfLibrary *lib;
	bool		need;			/* verneed (else verdef) */
} VersionArg;

/* copy_ref: a string the walker found, copied into the pool */
static uint32_t
copy_ref(const NxElfSource *src, NxElfLibrary *lib, const NxElfStrRef *ref)
{
	char		copy[NX_ELF_NAME_MAX + 1];

	if (ref->len > NX_ELF_NAME_MAX || !src->read(src, ref->off, copy, ref->len))
		return NX_ELF_LIB_NONE;
	return pool_add(lib, copy, ref->len);
}

/* keep_version: the walkers' visitor: one verdef or verneed entry */
static bool
keep_version(void *arg, const NxElfVersionEntry *e)
{
	VersionArg *a = arg;
	NxElfLibrary *lib = a->lib;
	int		   *n = a->need ? &lib->n_verneed : &lib->n_verdef;
	NxElfLibVersion *v;

	if (*n >= NX_ELF_LIB_MAX_VERSIONS)
	{
		lib->truncated = true;
		return false;
	}
	v = a->need ? &lib->verneed[*n] : &lib->verdef[*n];
	v->name = copy_ref(a->src, lib, &e->name);
	v->file = a->need ? copy_ref(a->src, lib, &e->file) : NX_ELF_LIB_NONE;
	v->hash = e->hash;
	v->flags = e->flags;
	if (v->name == NX_ELF_LIB_NONE || (a->need && v->file == NX_ELF_LIB_NONE))
	{
		lib->truncated = true;
		return false;
	}
	(*n)++;
	return true;
}

/* read_versions: walk DT_VERDEF or DT_VERNEED into the library's tables */
static bool
read_versions(const NxElfSource *src, NxElfLibrary *lib, const NxElfStrtab *st,
			  uint64_t vaddr, bool need)
{
	VersionArg	arg;
	uint64_t	off,
				avail;
	char		err[NX_ELF_MESSAGE_LEN];
	bool		ok;

	if (!vaddr_to_offset(lib, vaddr, &off, &avail))
		return fail(lib, NX_ELF_LIB_BAD, "has its %s outside its loaded segments",
					need ? "version needs (DT_VERNEED)" : "version definitions (DT_VERDEF)");
	arg.src = src;
	arg.lib = lib;
	arg.need = need;
	err[0] = '\0';
	ok = need ? NxElfWalkVerneed(src, st, off, avail, keep_version, &arg, err, sizeof(err))
		: NxElfWalkVerdef(src, st, off, avail, keep_version, &arg, err, sizeof(err));
	if (!ok)
		return fail(lib, NX_ELF_LIB_BAD, "has a damaged version table: %s", err);
	return true;
}

/*
 * NxElfReadLibrary: header, program headers, dynamic section, then its
 * strings and version tables, stopping at the first defect (nx_elf_lib.h)
 */
bool
NxElfReadLibrary(const NxElfSource *src, uint16_t expected_machine,
				 NxElfLibrary *lib)
{
	uint64_t	phoff = 0,
				dyn_off = 0,
				dyn_size = 0;
	uint32_t	phnum = 0;
	DynFacts	f;
	NxElfStrtab st;
	uint64_t	avail = 0;

	/* everything but the pool, which is written before it is read */
	memset(lib, 0, offsetof(NxElfLibrary, pool));
	lib->soname = lib->runpath = lib->rpath = NX_ELF_LIB_NONE;
	memset(&f, 0, sizeof(f));

	if (!check_header(src, expected_machine, lib, &phoff, &phnum) ||
		!read_phdrs(src, lib, phoff, phnum, &dyn_off, &dyn_size) ||
		!scan_dynamic(src, lib, dyn_off, dyn_size, &f))
		return false;

	lib->nodeflib = (f.flags_1 & NX_DF_1_NODEFLIB) != 0;
	lib->has_verdef = f.have_verdef;
	if (!f.have_strtab)
	{
		if (f.n_needed > 0 || f.have_soname || f.have_runpath || f.have_rpath ||
			f.have_verdef || f.have_verneed)
			return fail(lib, NX_ELF_LIB_BAD, "has a dynamic section without a string table");
		return true;
	}
	if (!vaddr_to_offset(lib, f.strtab, &st.off, &avail))
		return fail(lib, NX_ELF_LIB_BAD, "has its dynamic string table outside its loaded segments");
	st.size = f.have_strsz ? f.strsz : avail;
	if (st.size > avail)
		return fail(lib, NX_ELF_LIB_BAD, "has a dynamic string table that runs past its segment");

	if (f.have_soname && !pool_string(src, lib, &st, f.soname, "DT_SONAME", &lib->soname))
		return false;
	/* with a DT_RUNPATH the loader ignores DT_RPATH */
	if (f.have_runpath)
	{
		if (!pool_string(src, lib, &st, f.runpath, "DT_RUNPATH", &lib->runpath))
			return false;
	}
	else if (f.have_rpath &&
			 !pool_string(src, lib, &st, f.rpath, "DT_RPATH", &lib->rpath))
		return false;
	if (f.n_needed > 0 && !read_needed(src, lib, dyn_off, dyn_size, &st))
		return false;
	if (f.have_verdef && !read_versions(src, lib, &st, f.verdef, false))
		return false;
	if (f.have_verneed && !read_versions(src, lib, &st, f.verneed, true))
		return false;
	return true;
}
