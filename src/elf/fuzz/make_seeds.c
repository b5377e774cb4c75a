/*
 * src/elf/fuzz/make_seeds.c
 *	  Writes the ELF reader's seed corpus: small hand-built files, one per
 *	  interesting case, into the directory named on the command line.
 *
 *	  make fuzz-elf-seeds		(regenerates src/elf/fuzz/seeds/ and
 *								 src/elf/fuzz/seeds-ldcache/)
 *
 * The files are committed; test_elf.c checks the problem each one must
 * produce (keep its table in step when adding a seed here).  Every file is
 * laid out by hand, little-endian, so the result does not depend on the
 * build host.  A second directory argument gets the ld.so.cache seeds
 * (fuzz_ldcache.c): the three cache formats glibc's loader reads.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EM_X86_64	62
#define EM_AARCH64	183
#define EM_386		3
#define EM_S390		22

#define ET_REL		1
#define ET_EXEC		2
#define ET_DYN		3

#define PT_LOAD		1
#define PT_DYNAMIC	2
#define PT_INTERP	3
#define PT_NOTE		4

#define DT_NULL		0
#define DT_NEEDED	1
#define DT_STRTAB	5
#define DT_STRSZ	10
#define DT_SONAME	14
#define DT_RPATH	15
#define DT_RUNPATH	29
#define DT_FLAGS_1	0x6ffffffbULL
#define DT_VERDEF	0x6ffffffcULL
#define DT_VERDEFNUM 0x6ffffffdULL
#define DT_VERNEED	0x6ffffffeULL
#define DT_VERNEEDNUM 0x6fffffffULL
#define DF_1_PIE	0x08000000ULL

static const char *outdir;
static unsigned char img[4096];

static void
w16(size_t off, uint16_t v)
{
	img[off] = (unsigned char) v;
	img[off + 1] = (unsigned char) (v >> 8);
}

static void
w32(size_t off, uint32_t v)
{
	w16(off, (uint16_t) v);
	w16(off + 2, (uint16_t) (v >> 16));
}

static void
w64(size_t off, uint64_t v)
{
	w32(off, (uint32_t) v);
	w32(off + 4, (uint32_t) (v >> 32));
}

/* an ELF64 little-endian header with a program header table at 64 */
static void
ehdr(uint16_t type, uint16_t machine, uint64_t entry, uint16_t phnum)
{
	memset(img, 0, sizeof(img));
	memcpy(img, "\177ELF", 4);
	img[4] = 2;					/* ELFCLASS64 */
	img[5] = 1;					/* ELFDATA2LSB */
	img[6] = 1;					/* EV_CURRENT */
	w16(16, type);
	w16(18, machine);
	w32(20, 1);
	w64(24, entry);
	w64(32, phnum ? 64 : 0);	/* e_phoff */
	w64(40, 0);					/* e_shoff */
	w16(52, 64);				/* e_ehsize */
	w16(54, phnum ? 56 : 0);	/* e_phentsize */
	w16(56, phnum);
	w16(58, 64);				/* e_shentsize */
}

static void
phdr(int i, uint32_t type, uint32_t flags, uint64_t off, uint64_t vaddr,
	 uint64_t filesz, uint64_t memsz, uint64_t align)
{
	size_t		p = 64 + (size_t) i * 56;

	w32(p, type);
	w32(p + 4, flags);
	w64(p + 8, off);
	w64(p + 16, vaddr);
	w64(p + 24, vaddr);
	w64(p + 32, filesz);
	w64(p + 40, memsz);
	w64(p + 48, align);
}

static void
dyn(size_t off, int i, uint64_t tag, uint64_t val)
{
	w64(off + (size_t) i * 16, tag);
	w64(off + (size_t) i * 16 + 8, val);
}

/* x86-64: mov eax, 60 (exit); xor edi, edi; syscall */
static const unsigned char exit0[] = {0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05};

static void
save(const char *name, const void *data, size_t len)
{
	char		path[4096];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	f = fopen(path, "wb");
	if (f == NULL || (len > 0 && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
	{
		perror(path);
		exit(1);
	}
}

/*
 * A minimal static ET_EXEC: header, one PT_LOAD over the whole file at
 * 0x400000, and the exit(0) code at 120.  It really runs on x86-64.
 */
static size_t
static_exec(uint16_t machine)
{
	size_t		code = 64 + 56;
	size_t		len = code + sizeof(exit0);

	ehdr(ET_EXEC, machine, 0x400000 + code, 1);
	phdr(0, PT_LOAD, 5, 0, 0x400000, len, len, 0x1000);
	memcpy(img + code, exit0, sizeof(exit0));
	return len;
}

/*
 * An ET_DYN at vaddr 0 (so vaddr == file offset) with PT_INTERP (when
 * interp is not NULL), one PT_LOAD, and PT_DYNAMIC naming libc.so.6 and a
 * RUNPATH (when with_needed).  needed_off overrides the DT_NEEDED string
 * offset (0: correct).
 */
static size_t
dynamic_elf(const char *interp, uint64_t flags_1, int with_entry,
			int with_needed, uint64_t needed_off)
{
	static const char strtab[] = "\0libc.so.6\0/opt/app/lib";	/* 24 bytes */
	int			nph = interp ? 3 : 2;
	size_t		off = 64 + (size_t) nph * 56;
	size_t		interp_off = off,
				interp_len = interp ? strlen(interp) + 1 : 0;
	size_t		str_off,
				dyn_off,
				code_off,
				len;
	int			nd = 0,
				ph = 0;

	ehdr(ET_DYN, EM_X86_64, 0, (uint16_t) nph);
	off += interp_len;
	str_off = (off + 7) & ~(size_t) 7;
	dyn_off = str_off + sizeof(strtab);
	dyn_off = (dyn_off + 7) & ~(size_t) 7;

	if (interp)
		memcpy(img + interp_off, interp, interp_len);
	memcpy(img + str_off, strtab, sizeof(strtab));
	if (with_needed)
	{
		dyn(dyn_off, nd++, DT_NEEDED, needed_off ? needed_off : 1);
		dyn(dyn_off, nd++, DT_RUNPATH, 11);
	}
	dyn(dyn_off, nd++, DT_STRTAB, str_off);
	dyn(dyn_off, nd++, DT_STRSZ, sizeof(strtab));
	if (flags_1)
		dyn(dyn_off, nd++, DT_FLAGS_1, flags_1);
	dyn(dyn_off, nd++, DT_NULL, 0);
	code_off = dyn_off + (size_t) nd * 16;
	memcpy(img + code_off, exit0, sizeof(exit0));
	len = code_off + sizeof(exit0);
	if (with_entry)
		w64(24, code_off);

	if (interp)
		phdr(ph++, PT_INTERP, 4, interp_off, interp_off, interp_len, interp_len, 1);
	phdr(ph++, PT_LOAD, 7, 0, 0, len, len, 0x1000);
	phdr(ph++, PT_DYNAMIC, 6, dyn_off, dyn_off, (size_t) nd * 16, (size_t) nd * 16, 8);
	return len;
}

/* elf_hash: the SysV ELF hash the version tables carry */
static uint32_t
elf_hash(const char *name)
{
	uint32_t	h = 0;

	for (const unsigned char *p = (const unsigned char *) name; *p; p++)
	{
		uint32_t	g;

		h = (h << 4) + *p;
		g = h & 0xf0000000u;
		if (g)
			h ^= g >> 24;
		h &= ~g;
	}
	return h;
}

/* a string table under construction */
static char strtab_buf[512];
static size_t strtab_len;

static uint32_t
add_str(const char *s)
{
	size_t		off = strtab_len;

	memcpy(strtab_buf + off, s, strlen(s) + 1);
	strtab_len += strlen(s) + 1;
	return (uint32_t) off;
}

/*
 * versioned_elf: an ET_DYN at vaddr 0 with DT_NEEDED libc.so.6 and
 * DT_VERNEED (libc.so.6: GLIBC_2.2.5, GLIBC_2.34; first entry's version
 * vn_version); as a program (PT_INTERP, DF_1_PIE, an entry point) or as a
 * library (DT_SONAME libnxseed.so.1, DT_RPATH $ORIGIN/../lib and DT_VERDEF
 * libnxseed.so.1 (base), NXSEED_1.0, NXSEED_1.1).
 */
static size_t
versioned_elf(int program, uint16_t vn_version)
{
	static const char ld[] = "/lib64/ld-linux-x86-64.so.2";
	static const char *const defs[] = {"libnxseed.so.1", "NXSEED_1.0", "NXSEED_1.1"};
	int			nph = program ? 3 : 2;
	size_t		off = 64 + (size_t) nph * 56;
	size_t		interp_off = off,
				interp_len = program ? sizeof(ld) : 0;
	size_t		str_off,
				vn_off,
				vd_off,
				dyn_off,
				len;
	uint32_t	s_libc,
				s_225,
				s_234,
				s_soname = 0,
				s_rpath = 0;
	int			nd = 0,
				ph = 0;

	ehdr(ET_DYN, EM_X86_64, 0, (uint16_t) nph);
	strtab_len = 0;
	add_str("");
	s_libc = add_str("libc.so.6");
	s_225 = add_str("GLIBC_2.2.5");
	s_234 = add_str("GLIBC_2.34");
	if (!program)
	{
		s_soname = add_str(defs[0]);
		add_str(defs[1]);
		add_str(defs[2]);
		s_rpath = add_str("$ORIGIN/../lib");
	}
	if (program)
		memcpy(img + interp_off, ld, sizeof(ld));
	off += interp_len;
	str_off = (off + 7) & ~(size_t) 7;
	memcpy(img + str_off, strtab_buf, strtab_len);
	vn_off = (str_off + strtab_len + 7) & ~(size_t) 7;

	/* one Verneed with two Vernaux */
	w16(vn_off, vn_version);
	w16(vn_off + 2, 2);
	w32(vn_off + 4, s_libc);
	w32(vn_off + 8, 16);
	w32(vn_off + 12, 0);
	w32(vn_off + 16, elf_hash("GLIBC_2.2.5"));
	w16(vn_off + 22, 2);
	w32(vn_off + 24, s_225);
	w32(vn_off + 28, 16);
	w32(vn_off + 32, elf_hash("GLIBC_2.34"));
	w16(vn_off + 38, 3);
	w32(vn_off + 40, s_234);
	w32(vn_off + 44, 0);
	vd_off = vn_off + 48;

	/* three Verdef + Verdaux pairs, 28 bytes each */
	if (!program)
		for (int i = 0; i < 3; i++)
		{
			size_t		d = vd_off + (size_t) i * 28;

			w16(d, 1);
			w16(d + 2, i == 0 ? 1 : 0);	/* VER_FLG_BASE */
			w16(d + 4, (uint16_t) (i + 1));
			w16(d + 6, 1);
			w32(d + 8, elf_hash(defs[i]));
			w32(d + 12, 20);
			w32(d + 16, i < 2 ? 28 : 0);
			w32(d + 20, s_soname + (uint32_t) (i == 0 ? 0 : i == 1 ? 15 : 26));
			w32(d + 24, 0);
		}
	dyn_off = vd_off + (program ? 0 : 3 * 28);
	dyn_off = (dyn_off + 7) & ~(size_t) 7;

	dyn(dyn_off, nd++, DT_NEEDED, s_libc);
	if (!program)
	{
		dyn(dyn_off, nd++, DT_SONAME, s_soname);
		dyn(dyn_off, nd++, DT_RPATH, s_rpath);
		dyn(dyn_off, nd++, DT_VERDEF, vd_off);
		dyn(dyn_off, nd++, DT_VERDEFNUM, 3);
	}
	dyn(dyn_off, nd++, DT_STRTAB, str_off);
	dyn(dyn_off, nd++, DT_STRSZ, strtab_len);
	dyn(dyn_off, nd++, DT_VERNEED, vn_off);
	dyn(dyn_off, nd++, DT_VERNEEDNUM, 1);
	if (program)
		dyn(dyn_off, nd++, DT_FLAGS_1, DF_1_PIE);
	dyn(dyn_off, nd++, DT_NULL, 0);
	len = dyn_off + (size_t) nd * 16;
	if (program)
	{
		memcpy(img + len, exit0, sizeof(exit0));
		w64(24, len);
		len += sizeof(exit0);
		phdr(ph++, PT_INTERP, 4, interp_off, interp_off, interp_len, interp_len, 1);
	}
	phdr(ph++, PT_LOAD, 7, 0, 0, len, len, 0x1000);
	phdr(ph++, PT_DYNAMIC, 6, dyn_off, dyn_off, (size_t) nd * 16, (size_t) nd * 16, 8);
	return len;
}

/* --- ld.so.cache seeds */

/* the cache's entries: name, path, flags, hwcap */
typedef struct CacheEntry
{
	const char *name;
	const char *path;
	int32_t		flags;
	uint64_t	hwcap;
} CacheEntry;

/* sorted as _dl_cache_libcmp sorts (descending, as ldconfig writes) */
static const CacheEntry cache_entries[] = {
	{"libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1", 0x0303, 0},
	{"libnxhidden.so.1", "/opt/nx-test/lib/libnxhidden.so.1", 0x0303, 0},
	{"libm.so.6", "/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libm.so.6", 0x0303, (1ULL << 62)},
	{"libm.so.6", "/lib/x86_64-linux-gnu/libm.so.6", 0x0303, 0},
	{"libc.so.6", "/lib32/libc.so.6", 0x0003, 0},
	{"libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", 0x0303, 0},
};
#define N_CACHE (sizeof(cache_entries) / sizeof(cache_entries[0]))

/*
 * cache_file: an ld.so.cache image in img: the new format alone
 * (old_part 0), the old one alone (new_part 0), or both.  The entries are
 * sorted descending by name, as ldconfig writes them.
 */
static size_t
cache_file(int old_part, int new_part)
{
	size_t		pos = 0,
				new_base = 0,
				strings;
	uint32_t	key[N_CACHE],
				value[N_CACHE];

	memset(img, 0, sizeof(img));
	if (old_part)
	{
		memcpy(img, "ld.so-1.7.0", 11);
		w32(12, N_CACHE);
		pos = 16 + N_CACHE * 12;
	}
	if (new_part)
	{
		new_base = (pos + 7) & ~(size_t) 7;
		memcpy(img + new_base, "glibc-ld.so.cache1.1", 20);
		w32(new_base + 20, N_CACHE);
		img[new_base + 28] = 2;	/* little-endian */
		pos = new_base + 48 + N_CACHE * 24;
	}
	/* strings, counted from new_base (new) or from pos (old only) */
	strings = pos;
	for (size_t i = 0; i < N_CACHE; i++)
	{
		size_t		base = new_part ? new_base : strings;

		key[i] = (uint32_t) (pos - base);
		memcpy(img + pos, cache_entries[i].name, strlen(cache_entries[i].name) + 1);
		pos += strlen(cache_entries[i].name) + 1;
		value[i] = (uint32_t) (pos - base);
		memcpy(img + pos, cache_entries[i].path, strlen(cache_entries[i].path) + 1);
		pos += strlen(cache_entries[i].path) + 1;
	}
	for (size_t i = 0; i < N_CACHE; i++)
	{
		if (old_part)
		{
			/* old-format indices count from the end of the old entries */
			size_t		e = 16 + i * 12;
			size_t		shift = new_part ? new_base - (16 + N_CACHE * 12) : 0;

			w32(e, (uint32_t) cache_entries[i].flags);
			w32(e + 4, (uint32_t) (key[i] + shift));
			w32(e + 8, (uint32_t) (value[i] + shift));
		}
		if (new_part)
		{
			size_t		e = new_base + 48 + i * 24;

			w32(e, (uint32_t) cache_entries[i].flags);
			w32(e + 4, key[i]);
			w32(e + 8, value[i]);
			w64(e + 16, cache_entries[i].hwcap);
		}
	}
	if (new_part)
		w32(new_base + 24, (uint32_t) (pos - strings));	/* len_strings */
	return pos;
}

int
main(int argc, char **argv)
{
	static const char ld[] = "/lib64/ld-linux-x86-64.so.2";
	size_t		len;

	if (argc != 2 && argc != 3)
	{
		fprintf(stderr, "usage: %s OUTDIR [LDCACHE_OUTDIR]\n", argv[0]);
		return 2;
	}
	outdir = argv[1];

	/* not ELF at all */
	save("empty", "", 0);
	save("script.sh", "#!/bin/sh\necho hello\n", 21);
	save("text.txt", "hello, world\n", 13);
	{
		unsigned char pe[64] = {'M', 'Z', 0x90, 0};

		pe[60] = 64;			/* e_lfanew */
		save("windows.exe", pe, sizeof(pe));
	}
	save("macho64", "\xcf\xfa\xed\xfe\x07\0\0\x01\x03\0\0\0\x02\0\0\0", 16);
	save("module.wasm", "\0asm\1\0\0\0", 8);

	/* broken or foreign ELF headers */
	memset(img, 0, sizeof(img));
	memcpy(img, "\177ELF\1\1\1", 7);	/* ELF32, i386, ET_EXEC */
	img[16] = ET_EXEC;
	img[18] = EM_386;
	img[20] = 1;
	img[40] = 52;
	save("elf32.elf", img, 52);

	memset(img, 0, sizeof(img));
	memcpy(img, "\177ELF\2\2\1", 7);	/* ELF64 big-endian, s390x */
	img[17] = ET_EXEC;
	img[19] = EM_S390;
	img[23] = 1;
	img[53] = 64;
	save("bigendian.elf", img, 64);

	(void) static_exec(EM_X86_64);
	save("truncated_header.elf", img, 30);

	/* runnable (on x86-64) */
	len = static_exec(EM_X86_64);
	save("static.elf", img, len);
	len = dynamic_elf(ld, DF_1_PIE, 1, 1, 0);
	save("dynamic_pie.elf", img, len);
	len = dynamic_elf(NULL, DF_1_PIE, 1, 0, 0);
	save("static_pie.elf", img, len);

	/* well-formed, but not runnable here */
	len = static_exec(EM_AARCH64);
	save("aarch64.elf", img, len);
	ehdr(ET_REL, EM_X86_64, 0, 0);
	save("relocatable.elf", img, 64);
	len = dynamic_elf(NULL, 0, 0, 1, 0);
	save("shared_library.elf", img, len);
	len = static_exec(EM_X86_64);
	w32(64, PT_NOTE);
	save("no_load.elf", img, len);

	/* malformed */
	len = static_exec(EM_X86_64);
	w64(64 + 32, 0x100000);		/* p_filesz far past EOF */
	w64(64 + 40, 0x100000);
	save("segment_outside.elf", img, len);

	len = static_exec(EM_X86_64);
	w64(32, (uint64_t) 1 << 40);	/* e_phoff */
	save("phoff_outside.elf", img, len);

	len = static_exec(EM_X86_64);
	w16(56, 0xffff);			/* PN_XNUM: real count in shdr 0's sh_info */
	w64(40, 136);				/* e_shoff */
	w32(136 + 44, 1);
	save("pn_xnum.elf", img, 136 + 64);

	len = dynamic_elf("lib/ld.so", DF_1_PIE, 1, 1, 0);
	save("relative_interp.elf", img, len);

	len = dynamic_elf(ld, DF_1_PIE, 1, 1, 1000);
	save("bad_needed.elf", img, len);

	/* symbol versions */
	len = versioned_elf(1, 1);
	save("versioned_pie.elf", img, len);
	len = versioned_elf(0, 1);
	save("versioned_lib.elf", img, len);
	len = versioned_elf(1, 2);
	save("bad_verneed.elf", img, len);

	if (argc == 3)
	{
		outdir = argv[2];
		len = cache_file(0, 1);
		save("new.cache", img, len);
		len = cache_file(1, 0);
		save("old.cache", img, len);
		len = cache_file(1, 1);
		save("compat.cache", img, len);
	}
	return 0;
}
