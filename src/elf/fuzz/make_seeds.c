/*
 * src/elf/fuzz/make_seeds.c
 *	  Writes the ELF reader's seed corpus: small hand-built files, one per
 *	  interesting case, into the directory named on the command line.
 *
 *	  make fuzz-elf-seeds		(regenerates src/elf/fuzz/seeds/)
 *
 * The files are committed; test_elf.c checks the problem each one must
 * produce (keep its table in step when adding a seed here).  Every file is
 * laid out by hand, little-endian, so the result does not depend on the
 * build host.
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
#define DT_RUNPATH	29
#define DT_FLAGS_1	0x6ffffffbULL
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

int
main(int argc, char **argv)
{
	static const char ld[] = "/lib64/ld-linux-x86-64.so.2";
	size_t		len;

	if (argc != 2)
	{
		fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
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

	return 0;
}
