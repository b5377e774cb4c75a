/*
 * src/elf/nx_elf.c
 *	  The ELF reader: see nx_elf.h for what it decides and returns.
 *
 * The input is hostile.  The rules this file keeps:
 *
 *	- every multi-byte field is read by rd_le(), which checks its own bounds
 *	  against the buffer (returning 0 when out of range, so even a logic error
 *	  here cannot read outside buf) and assembles the value byte by byte: no
 *	  unaligned access, no dependence on the host's byte order;
 *	- every offset+size pair is checked with range_ok(), in uint64_t, in a
 *	  form that cannot overflow;
 *	- every loop is bounded by a count that was first checked against the
 *	  buffer length (program headers: at most MAX_PHNUM; dynamic entries: the
 *	  number that fit in the segment);
 *	- every string returned points into buf and was found NUL-terminated
 *	  inside buf (and inside its segment or string table).
 *
 * Plain C99, no PostgreSQL headers, no allocation, no filesystem access:
 * the same file is built into the server module, the client and the fuzzer.
 * The symbol-version table is walked by nx_elf_ver.c (shared with the
 * reader of host libraries), over this buffer.
 */
#include "nx_elf.h"
#include "nx_elf_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The few ELF64 definitions the reader needs (values as in <elf.h>). */
#define EI_NIDENT		16
#define EI_CLASS		4
#define EI_DATA			5
#define EI_VERSION		6
#define ELFCLASS32		1
#define ELFCLASS64		2
#define ELFDATA2LSB		1
#define ELFDATA2MSB		2
#define EV_CURRENT		1

#define ET_REL			1
#define ET_EXEC			2
#define ET_DYN			3
#define ET_CORE			4

#define PT_LOAD			1
#define PT_DYNAMIC		2
#define PT_INTERP		3
#define PN_XNUM			0xffff

#define DT_NULL			0
#define DT_NEEDED		1
#define DT_STRTAB		5
#define DT_STRSZ		10
#define DT_RPATH		15
#define DT_RUNPATH		29
#define DT_FLAGS_1		0x6ffffffb
#define DF_1_PIE		0x08000000

/* ELF64 structure sizes and the field offsets used below */
#define EHDR_SIZE		64
#define PHDR_SIZE		56
#define SHDR_SIZE		64
#define DYN_SIZE		16

#define E_TYPE			16
#define E_MACHINE		18
#define E_VERSION		20
#define E_ENTRY			24
#define E_PHOFF			32
#define E_SHOFF			40
#define E_EHSIZE		52
#define E_PHENTSIZE		54
#define E_PHNUM			56

#define P_TYPE			0
#define P_OFFSET		8
#define P_VADDR			16
#define P_FILESZ		32
#define P_MEMSZ			40

#define SH_INFO			44

/*
 * Linux refuses a program header table over 64 KiB (load_elf_phdrs), so no
 * runnable file has more than this many entries.  It also bounds every loop
 * over the table.
 */
#define MAX_PHNUM		(65536 / PHDR_SIZE)

/* PT_INTERP's p_filesz, NUL included, may not exceed PATH_MAX (Linux) */
#define MAX_INTERP_SIZE 4096


/* How much of a script's #! line goes into the message */
#define SHEBANG_SHOWN	60

typedef unsigned long long ull;

/* State shared by the steps of one NxElfRead call. */
typedef struct Reader
{
	const unsigned char *buf;
	uint64_t	len;
	NxElfInfo  *info;
	uint64_t	phoff;			/* program header table, once validated */
	uint32_t	phnum;
	uint64_t	n_dt_needed;	/* DT_NEEDED entries seen, kept or not */
	bool		dynamic_reported;	/* one BAD_DYNAMIC problem is enough */
} Reader;

/* range_ok: is [off, off + size) inside a len-byte buffer?  Cannot overflow. */
static bool
range_ok(uint64_t off, uint64_t size, uint64_t len)
{
	return off <= len && size <= len - off;
}

/*
 * rd_le reads an n-byte (n <= 8) little-endian unsigned value at off, or
 * returns 0 when the bytes are not all inside the buffer.
 */
static uint64_t
rd_le(const Reader *r, uint64_t off, unsigned n)
{
	unsigned char b[8];
	uint64_t	v = 0;
	unsigned	i;

	if (n > sizeof(b) || !range_ok(off, n, r->len))
		return 0;
	memcpy(b, r->buf + off, n);
	for (i = n; i > 0; i--)
		v = (v << 8) | b[i - 1];
	return v;
}

static uint16_t
rd16(const Reader *r, uint64_t off)
{
	return (uint16_t) rd_le(r, off, 2);
}

static uint32_t
rd32(const Reader *r, uint64_t off)
{
	return (uint32_t) rd_le(r, off, 4);
}

static uint64_t
rd64(const Reader *r, uint64_t off)
{
	return rd_le(r, off, 8);
}

/* is_printable: every byte of s[0..n) is printable ASCII (0x20..0x7e) */
static bool
is_printable(const unsigned char *s, size_t n)
{
	size_t		i;

	for (i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] >= 0x7f)
			return false;
	return true;
}

/*
 * machine_desc: the machine's name, or "machine N" written into tmp.
 */
static const char *
machine_desc(uint16_t machine, char *tmp, size_t tmplen)
{
	const char *name = NxElfMachineName(machine);

	if (name != NULL)
		return name;
	snprintf(tmp, tmplen, "machine %u", (unsigned) machine);
	return tmp;
}

NxElfProblem *
NxElfAddProblem(NxElfInfo *info, NxElfProblemCode code, const char *fmt,...)
{
	NxElfProblem *p;
	va_list		ap;

	if (info->n_problems < 0 || info->n_problems >= NX_ELF_MAX_PROBLEMS)
		return NULL;
	p = &info->problems[info->n_problems++];
	p->code = code;
	p->hint[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(p->message, sizeof(p->message), fmt, ap);
	va_end(ap);
	return p;
}

const char *
NxElfMachineName(uint16_t machine)
{
	switch (machine)
	{
		case NX_EM_386:
			return "x86 (32-bit)";
		case 8:
			return "MIPS";
		case 20:
			return "PowerPC";
		case 21:
			return "PowerPC 64";
		case 22:
			return "S/390";
		case NX_EM_ARM:
			return "ARM (32-bit)";
		case NX_EM_X86_64:
			return "x86-64";
		case NX_EM_AARCH64:
			return "AArch64";
		case NX_EM_RISCV:
			return "RISC-V";
		default:
			return NULL;
	}
}

NxElfProblemKind
NxElfProblemKindOf(NxElfProblemCode code)
{
	switch (code)
	{
		case NX_ELF_EMPTY:
		case NX_ELF_NOT_ELF:
		case NX_ELF_SCRIPT:
		case NX_ELF_FOREIGN_FORMAT:
		case NX_ELF_TRUNCATED_HEADER:
		case NX_ELF_BAD_HEADER:
		case NX_ELF_BAD_PROGRAM_HEADERS:
		case NX_ELF_SEGMENT_OUTSIDE_FILE:
		case NX_ELF_BAD_INTERPRETER:
		case NX_ELF_BAD_DYNAMIC:
			return NX_ELF_KIND_MALFORMED;
		case NX_ELF_CLASS32:
		case NX_ELF_BIG_ENDIAN:
		case NX_ELF_WRONG_MACHINE:
		case NX_ELF_NOT_EXECUTABLE:
		case NX_ELF_NO_LOADABLE_SEGMENT:
			return NX_ELF_KIND_UNSUPPORTED;
		case NX_ELF_INTERPRETER_MISSING:
		case NX_ELF_LIBRARY_MISSING:
		case NX_ELF_TOO_LARGE:
		case NX_ELF_VERSION_MISSING:
			return NX_ELF_KIND_HOST;
	}
	return NX_ELF_KIND_MALFORMED;
}

/* The "how to build one that runs" line, per expected machine. */
static const char *
build_hint(uint16_t expected_machine)
{
	if (expected_machine == 0)
		expected_machine = NX_ELF_HOST_MACHINE;
	switch (expected_machine)
	{
		case NX_EM_X86_64:
			return "build a 64-bit Linux x86-64 executable, e.g. GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build, cargo build --target x86_64-unknown-linux-musl, or zig build -Dtarget=x86_64-linux-musl";
		case NX_EM_AARCH64:
			return "build a 64-bit Linux AArch64 executable, e.g. GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build, cargo build --target aarch64-unknown-linux-musl, or zig build -Dtarget=aarch64-linux-musl";
		case NX_EM_RISCV:
			return "build a 64-bit Linux RISC-V executable, e.g. GOOS=linux GOARCH=riscv64 CGO_ENABLED=0 go build, cargo build --target riscv64gc-unknown-linux-musl, or zig build -Dtarget=riscv64-linux-musl";
		default:
			return "build a 64-bit little-endian Linux executable for this server's architecture";
	}
}

const char *
NxElfHint(const NxElfInfo *info, uint16_t expected_machine)
{
	if (info == NULL || info->n_problems <= 0)
		return NULL;
	if (info->problems[0].hint[0] != '\0')
		return info->problems[0].hint;
	switch (info->problems[0].code)
	{
		case NX_ELF_NOT_ELF:
		case NX_ELF_FOREIGN_FORMAT:
		case NX_ELF_CLASS32:
		case NX_ELF_BIG_ENDIAN:
		case NX_ELF_WRONG_MACHINE:
			return build_hint(expected_machine);
		case NX_ELF_SCRIPT:
			return "push a compiled binary, not a script; bundle it first (e.g. bun build --compile)";
		case NX_ELF_EMPTY:
		case NX_ELF_TRUNCATED_HEADER:
		case NX_ELF_SEGMENT_OUTSIDE_FILE:
			return "the file looks truncated: push the complete binary again";
		case NX_ELF_BAD_HEADER:
		case NX_ELF_BAD_PROGRAM_HEADERS:
		case NX_ELF_BAD_INTERPRETER:
		case NX_ELF_BAD_DYNAMIC:
		case NX_ELF_NO_LOADABLE_SEGMENT:
			return "the file is damaged or was altered after linking: rebuild it with a standard linker and push it again";
		case NX_ELF_NOT_EXECUTABLE:
			return "push the linked executable, not an object file or shared library";
		case NX_ELF_INTERPRETER_MISSING:
		case NX_ELF_LIBRARY_MISSING:
			return "link statically (CGO_ENABLED=0, -static, or a musl target) or install the missing files on the server";
		case NX_ELF_VERSION_MISSING:
			return "build against the library versions this server has (on a system no newer than it), or link statically (CGO_ENABLED=0, -static, or a musl target)";
		case NX_ELF_TOO_LARGE:
			return "strip the binary (-ldflags='-s -w', strip) or raise nx.max_binary_size";
	}
	return build_hint(expected_machine);
}

/*
 * check_magic: the file is not ELF; say what it is instead.  Only called
 * when len >= 1.
 */
static void
report_not_elf(const Reader *r)
{
	const unsigned char *b = r->buf;
	uint64_t	len = r->len;
	NxElfInfo  *info = r->info;

	if (len >= 2 && b[0] == '#' && b[1] == '!')
	{
		char		line[SHEBANG_SHOWN + 4];
		size_t		n = 0;
		uint64_t	i = 2;

		/* the interpreter line, printable ASCII only, shortened */
		while (i < len && (b[i] == ' ' || b[i] == '\t'))
			i++;
		for (; i < len && b[i] != '\n' && b[i] != '\r'; i++)
		{
			if (n == SHEBANG_SHOWN)
			{
				memcpy(line + n, "...", 3);
				n += 3;
				break;
			}
			line[n++] = (b[i] >= 0x20 && b[i] < 0x7f) ? (char) b[i] : '?';
		}
		line[n] = '\0';
		/* drop trailing blanks */
		while (n > 0 && line[n - 1] == ' ')
			line[--n] = '\0';
		if (n == 0)
			NxElfAddProblem(info, NX_ELF_SCRIPT,
							"file is a script (it starts with #! but names no interpreter), not a compiled executable");
		else
			NxElfAddProblem(info, NX_ELF_SCRIPT,
							"file is a script for #!%s, not a compiled executable",
							line);
		return;
	}
	if (len >= 2 && b[0] == 'M' && b[1] == 'Z')
	{
		NxElfAddProblem(info, NX_ELF_FOREIGN_FORMAT,
						"file is a Windows executable (PE, starts with MZ), not a Linux ELF executable");
		return;
	}
	if (len >= 4)
	{
		uint32_t	be = ((uint32_t) b[0] << 24) | ((uint32_t) b[1] << 16) |
			((uint32_t) b[2] << 8) | (uint32_t) b[3];
		uint32_t	le = ((uint32_t) b[3] << 24) | ((uint32_t) b[2] << 16) |
			((uint32_t) b[1] << 8) | (uint32_t) b[0];

		if (be == 0xfeedfacf || le == 0xfeedfacf)
		{
			NxElfAddProblem(info, NX_ELF_FOREIGN_FORMAT,
							"file is a 64-bit macOS executable (Mach-O), not a Linux ELF executable");
			return;
		}
		if (be == 0xfeedface || le == 0xfeedface)
		{
			NxElfAddProblem(info, NX_ELF_FOREIGN_FORMAT,
							"file is a 32-bit macOS executable (Mach-O), not a Linux ELF executable");
			return;
		}
		if (be == 0xcafebabe || le == 0xcafebabe)
		{
			/*
			 * A universal Mach-O binary and a Java class file share this
			 * magic; the next word is a small architecture count in the
			 * first and a class file version (45 or more) in the second.
			 */
			uint32_t	next = 0;

			if (len >= 8)
				next = ((uint32_t) b[4] << 24) | ((uint32_t) b[5] << 16) |
					((uint32_t) b[6] << 8) | (uint32_t) b[7];
			if (be == 0xcafebabe && len >= 8 && next >= 45)
				NxElfAddProblem(info, NX_ELF_FOREIGN_FORMAT,
								"file is a Java class file, not a Linux ELF executable");
			else
				NxElfAddProblem(info, NX_ELF_FOREIGN_FORMAT,
								"file is a universal macOS executable (fat Mach-O), not a Linux ELF executable");
			return;
		}
		if (memcmp(b, "\0asm", 4) == 0)
		{
			NxElfAddProblem(info, NX_ELF_FOREIGN_FORMAT,
							"file is a WebAssembly module, not a Linux ELF executable");
			return;
		}
		if (memcmp(b, "PK\003\004", 4) == 0)
		{
			NxElfAddProblem(info, NX_ELF_FOREIGN_FORMAT,
							"file is a zip archive, not a Linux ELF executable; push the executable inside it");
			return;
		}
	}
	if (len >= 8 && memcmp(b, "!<arch>\n", 8) == 0)
	{
		NxElfAddProblem(info, NX_ELF_FOREIGN_FORMAT,
						"file is an ar archive (a static library, .a), not a linked executable");
		return;
	}
	if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b)
	{
		NxElfAddProblem(info, NX_ELF_FOREIGN_FORMAT,
						"file is gzip-compressed, not a Linux ELF executable; push the executable inside it");
		return;
	}
	if (len >= 6 && memcmp(b, "\3757zXZ\0", 6) == 0)
	{
		NxElfAddProblem(info, NX_ELF_FOREIGN_FORMAT,
						"file is xz-compressed, not a Linux ELF executable; push the executable inside it");
		return;
	}
	if (len >= 4 && memcmp(b, "\x28\xb5\x2f\xfd", 4) == 0)
	{
		NxElfAddProblem(info, NX_ELF_FOREIGN_FORMAT,
						"file is zstd-compressed, not a Linux ELF executable; push the executable inside it");
		return;
	}

	/* unknown: show the first bytes */
	{
		char		hex[4 * 3 + 1];
		size_t		n = len < 4 ? (size_t) len : 4;
		size_t		i;
		static const char digits[] = "0123456789abcdef";

		for (i = 0; i < n; i++)
		{
			hex[i * 3] = digits[b[i] >> 4];
			hex[i * 3 + 1] = digits[b[i] & 0xf];
			hex[i * 3 + 2] = ' ';
		}
		hex[n * 3 - 1] = '\0';
		NxElfAddProblem(info, NX_ELF_NOT_ELF,
						"file is not an ELF executable (it starts with bytes %s, not 7f 45 4c 46)",
						hex);
	}
}

/*
 * vaddr_to_offset: find the PT_LOAD whose file bytes hold virtual address
 * vaddr; set *off to its file offset and *avail to the bytes from there to
 * the end of that segment's file image.  Segments that are themselves
 * outside the file are skipped.
 */
static bool
vaddr_to_offset(const Reader *r, uint64_t vaddr, uint64_t *off, uint64_t *avail)
{
	uint32_t	i;

	for (i = 0; i < r->phnum; i++)
	{
		uint64_t	ph = r->phoff + (uint64_t) i * PHDR_SIZE;
		uint64_t	p_offset,
					p_vaddr,
					p_filesz,
					delta;

		if (rd32(r, ph + P_TYPE) != PT_LOAD)
			continue;
		p_offset = rd64(r, ph + P_OFFSET);
		p_vaddr = rd64(r, ph + P_VADDR);
		p_filesz = rd64(r, ph + P_FILESZ);
		if (!range_ok(p_offset, p_filesz, r->len))
			continue;
		if (vaddr < p_vaddr)
			continue;
		delta = vaddr - p_vaddr;
		if (delta >= p_filesz)
			continue;
		*off = p_offset + delta;	/* < p_offset + p_filesz <= len */
		*avail = p_filesz - delta;
		return true;
	}
	return false;
}

/* bad_dynamic: report one BAD_DYNAMIC problem (the first one found). */
static void
bad_dynamic(Reader *r, const char *fmt,...)
	__attribute__((format(printf, 2, 3)));

static void
bad_dynamic(Reader *r, const char *fmt,...)
{
	char		msg[NX_ELF_MESSAGE_LEN];
	va_list		ap;

	if (r->dynamic_reported)
		return;
	r->dynamic_reported = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	NxElfAddProblem(r->info, NX_ELF_BAD_DYNAMIC, "%s", msg);
}

/*
 * dyn_string: the NUL-terminated string at offset val of the string table
 * [stroff, stroff + strsz), or false (with a problem) when it is out of
 * bounds or unterminated.  what names the entry for the message.
 */
static bool
dyn_string(Reader *r, uint64_t stroff, uint64_t strsz, uint64_t val,
		   const char *what, NxElfString *out)
{
	const unsigned char *start;
	const unsigned char *nul;

	if (val >= strsz)
	{
		bad_dynamic(r, "%s name is at offset %llu, outside the %llu-byte dynamic string table",
					what, (ull) val, (ull) strsz);
		return false;
	}
	/* range_ok(stroff, strsz, len) was checked by the caller */
	start = r->buf + stroff + val;
	nul = memchr(start, '\0', (size_t) (strsz - val));
	if (nul == NULL)
	{
		bad_dynamic(r, "%s name at offset %llu is not NUL-terminated inside the dynamic string table",
					what, (ull) val);
		return false;
	}
	out->ptr = (const char *) start;
	out->len = (size_t) (nul - start);
	if (!is_printable(start, out->len))
	{
		bad_dynamic(r, "%s name at offset %llu contains non-printable bytes",
					what, (ull) val);
		return false;
	}
	return true;
}

/* VerneedArg: what keep_verneed needs to turn file offsets into strings */
typedef struct VerneedArg
{
	const Reader *r;
	NxElfInfo  *info;
} VerneedArg;

/*
 * keep_verneed: the walker's visitor for the binary: keep the version as
 * two strings of the buffer (the walker found both NUL-terminated inside
 * the string table, which lies inside the buffer).
 */
static bool
keep_verneed(void *arg, const NxElfVersionEntry *e)
{
	VerneedArg *a = arg;
	NxElfInfo  *info = a->info;
	NxElfVersionNeed *v;

	if (info->n_verneed >= NX_ELF_MAX_VERNEED)
	{
		info->verneed_truncated = true;
		return false;
	}
	if (!range_ok(e->file.off, (uint64_t) e->file.len + 1, a->r->len) ||
		!range_ok(e->name.off, (uint64_t) e->name.len + 1, a->r->len))
		return false;			/* cannot happen: see above */
	v = &info->verneed[info->n_verneed++];
	v->file.ptr = (const char *) a->r->buf + e->file.off;
	v->file.len = e->file.len;
	v->version.ptr = (const char *) a->r->buf + e->name.off;
	v->version.len = e->name.len;
	v->hash = e->hash;
	v->weak = (e->flags & NX_VER_FLG_WEAK) != 0;
	return true;
}

/*
 * read_verneed: the versions the binary needs, from DT_VERNEED (a virtual
 * address) and the dynamic string table [stroff, stroff + strsz), which
 * the caller has checked.  A damaged table is one BAD_DYNAMIC problem, as
 * glibc's loader would refuse it.
 */
static void
read_verneed(Reader *r, uint64_t stroff, uint64_t strsz, uint64_t vaddr)
{
	NxElfSource src;
	NxElfStrtab st;
	VerneedArg	arg;
	uint64_t	off,
				avail;
	char		err[NX_ELF_MESSAGE_LEN];

	if (!vaddr_to_offset(r, vaddr, &off, &avail))
	{
		bad_dynamic(r, "version needs (DT_VERNEED 0x%llx) are not inside any loaded part of the file",
					(ull) vaddr);
		return;
	}
	NxElfMemorySource(&src, r->buf, (size_t) r->len);
	st.off = stroff;
	st.size = strsz;
	arg.r = r;
	arg.info = r->info;
	err[0] = '\0';
	if (!NxElfWalkVerneed(&src, &st, off, avail, keep_verneed, &arg,
						  err, sizeof(err)))
		bad_dynamic(r, "%s", err);
}

/*
 * read_dynamic: walk the PT_DYNAMIC segment [off, off + size) (already
 * checked to be inside the file): DT_FLAGS_1, the string table, the
 * DT_NEEDED / DT_RUNPATH / DT_RPATH strings and the versions needed
 * (DT_VERNEED).  Sets *flags_1.
 */
static void
read_dynamic(Reader *r, uint64_t off, uint64_t size, uint64_t *flags_1)
{
	NxElfInfo  *info = r->info;
	uint64_t	n = size / DYN_SIZE;
	uint64_t	i;
	uint64_t	strtab = 0,
				strsz = 0;
	bool		have_strtab = false,
				have_strsz = false,
				need_strings = false;
	uint64_t	stroff = 0,
				avail = 0;
	uint64_t	verneed = 0;
	bool		have_verneed = false;

	/* pass 1: the string table and flags (they may come after DT_NEEDED) */
	for (i = 0; i < n; i++)
	{
		uint64_t	e = off + i * DYN_SIZE;
		uint64_t	tag = rd64(r, e);
		uint64_t	val = rd64(r, e + 8);

		if (tag == DT_NULL)
			break;
		switch (tag)
		{
			case DT_STRTAB:
				strtab = val;
				have_strtab = true;
				break;
			case DT_STRSZ:
				strsz = val;
				have_strsz = true;
				break;
			case DT_FLAGS_1:
				*flags_1 = val;
				break;
			case DT_NEEDED:
				r->n_dt_needed++;
				need_strings = true;
				break;
			case DT_RUNPATH:
			case DT_RPATH:
				need_strings = true;
				break;
			case NX_DT_VERNEED:
				/* the loader uses the last one; so do we */
				verneed = val;
				have_verneed = true;
				need_strings = true;
				break;
			default:
				break;
		}
	}

	if (!have_strtab)
	{
		if (need_strings)
			bad_dynamic(r, "dynamic section names libraries but has no string table (DT_STRTAB)");
		return;
	}
	if (!vaddr_to_offset(r, strtab, &stroff, &avail))
	{
		bad_dynamic(r, "dynamic string table (DT_STRTAB 0x%llx) is not inside any loaded part of the file",
					(ull) strtab);
		return;
	}
	if (!have_strsz)
		strsz = avail;
	if (strsz > avail)
	{
		bad_dynamic(r, "dynamic string table (DT_STRTAB 0x%llx, DT_STRSZ %llu) runs past the end of its segment in the file",
					(ull) strtab, (ull) strsz);
		return;
	}
	if (!range_ok(stroff, strsz, r->len))	/* implied by the above */
	{
		bad_dynamic(r, "dynamic string table lies outside the file");
		return;
	}

	/* pass 2: the strings */
	for (i = 0; i < n; i++)
	{
		uint64_t	e = off + i * DYN_SIZE;
		uint64_t	tag = rd64(r, e);
		uint64_t	val = rd64(r, e + 8);
		NxElfString s;

		if (tag == DT_NULL)
			break;
		if (tag == DT_NEEDED)
		{
			if (!dyn_string(r, stroff, strsz, val, "DT_NEEDED library", &s))
				continue;
			if (s.len == 0)
			{
				bad_dynamic(r, "DT_NEEDED library name is empty");
				continue;
			}
			if (info->n_needed < NX_ELF_MAX_NEEDED)
				info->needed[info->n_needed++] = s;
		}
		else if (tag == DT_RUNPATH || tag == DT_RPATH)
		{
			if (!dyn_string(r, stroff, strsz, val,
							tag == DT_RUNPATH ? "DT_RUNPATH" : "DT_RPATH", &s))
				continue;
			if (info->n_runpath < NX_ELF_MAX_RUNPATH)
			{
				info->runpath_is_rpath[info->n_runpath] = tag == DT_RPATH;
				info->runpath[info->n_runpath++] = s;
			}
		}
	}

	if (have_verneed)
		read_verneed(r, stroff, strsz, verneed);
}

/*
 * read_interp: check PT_INTERP [off, off + size) and fill the interpreter
 * fields when it is sound.
 */
static void
read_interp(Reader *r, uint64_t off, uint64_t size)
{
	NxElfInfo  *info = r->info;
	const unsigned char *s;
	const unsigned char *nul;
	size_t		len;

	if (!range_ok(off, size, r->len))
	{
		NxElfAddProblem(info, NX_ELF_BAD_INTERPRETER,
						"interpreter path (PT_INTERP at offset %llu, %llu bytes) lies outside the %llu-byte file",
						(ull) off, (ull) size, (ull) r->len);
		return;
	}
	if (size > MAX_INTERP_SIZE)
	{
		NxElfAddProblem(info, NX_ELF_BAD_INTERPRETER,
						"interpreter path (PT_INTERP) is %llu bytes, longer than the %d Linux accepts",
						(ull) size, MAX_INTERP_SIZE);
		return;
	}
	if (size == 0)
	{
		NxElfAddProblem(info, NX_ELF_BAD_INTERPRETER,
						"interpreter path (PT_INTERP) is empty (0 bytes)");
		return;
	}
	s = r->buf + off;
	nul = memchr(s, '\0', (size_t) size);
	if (nul == NULL)
	{
		NxElfAddProblem(info, NX_ELF_BAD_INTERPRETER,
						"interpreter path (PT_INTERP, %llu bytes) is not NUL-terminated",
						(ull) size);
		return;
	}
	len = (size_t) (nul - s);
	if (len + 1 != size)
	{
		NxElfAddProblem(info, NX_ELF_BAD_INTERPRETER,
						"interpreter path (PT_INTERP) has a NUL byte at position %zu, before the end of its %llu bytes",
						len, (ull) size);
		return;
	}
	if (len == 0)
	{
		NxElfAddProblem(info, NX_ELF_BAD_INTERPRETER,
						"interpreter path (PT_INTERP) is empty");
		return;
	}
	if (!is_printable(s, len))
	{
		NxElfAddProblem(info, NX_ELF_BAD_INTERPRETER,
						"interpreter path (PT_INTERP) contains non-printable bytes");
		return;
	}
	if (s[0] != '/')
	{
		NxElfAddProblem(info, NX_ELF_BAD_INTERPRETER,
						"interpreter path %.*s is relative; it must start with /",
						len > 100 ? 100 : (int) len, (const char *) s);
		return;
	}
	info->has_interpreter = true;
	info->interpreter.ptr = (const char *) s;
	info->interpreter.len = len;
}

/*
 * read_program_headers: validate the table (r->phoff, r->phnum set) and
 * walk it.  Sets *has_interp_segment and *flags_1.
 */
static void
read_program_headers(Reader *r, bool *has_interp_segment, uint64_t *flags_1)
{
	NxElfInfo  *info = r->info;
	uint32_t	i;
	int			n_load = 0;
	bool		load_reported = false;
	bool		have_interp = false,
				have_dynamic = false;
	uint64_t	interp_off = 0,
				interp_size = 0,
				dyn_off = 0,
				dyn_size = 0;

	for (i = 0; i < r->phnum; i++)
	{
		uint64_t	ph = r->phoff + (uint64_t) i * PHDR_SIZE;
		uint32_t	type = rd32(r, ph + P_TYPE);
		uint64_t	p_offset = rd64(r, ph + P_OFFSET);
		uint64_t	p_filesz = rd64(r, ph + P_FILESZ);
		uint64_t	p_memsz = rd64(r, ph + P_MEMSZ);

		switch (type)
		{
			case PT_LOAD:
				n_load++;
				if (load_reported)
					break;
				if (!range_ok(p_offset, p_filesz, r->len))
				{
					load_reported = true;
					if (p_filesz <= UINT64_MAX - p_offset)
						NxElfAddProblem(info, NX_ELF_SEGMENT_OUTSIDE_FILE,
										"PT_LOAD segment (program header %u) ends at byte %llu, past the end of the %llu-byte file (truncated upload?)",
										(unsigned) i, (ull) (p_offset + p_filesz), (ull) r->len);
					else
						NxElfAddProblem(info, NX_ELF_SEGMENT_OUTSIDE_FILE,
										"PT_LOAD segment (program header %u, offset %llu, %llu bytes) lies past the end of the %llu-byte file",
										(unsigned) i, (ull) p_offset, (ull) p_filesz, (ull) r->len);
				}
				else if (p_filesz > p_memsz)
				{
					load_reported = true;
					NxElfAddProblem(info, NX_ELF_BAD_PROGRAM_HEADERS,
									"PT_LOAD segment (program header %u) has %llu bytes in the file but only %llu in memory, which Linux refuses",
									(unsigned) i, (ull) p_filesz, (ull) p_memsz);
				}
				break;
			case PT_INTERP:
				/* Linux uses the first one */
				if (!have_interp)
				{
					have_interp = true;
					interp_off = p_offset;
					interp_size = p_filesz;
				}
				break;
			case PT_DYNAMIC:
				if (!have_dynamic)
				{
					have_dynamic = true;
					dyn_off = p_offset;
					dyn_size = p_filesz;
				}
				break;
			default:
				break;
		}
	}

	if (n_load == 0)
		NxElfAddProblem(info, NX_ELF_NO_LOADABLE_SEGMENT,
						"file has no loadable segment (PT_LOAD), so there is nothing to run");

	*has_interp_segment = have_interp;
	if (have_interp)
		read_interp(r, interp_off, interp_size);

	if (have_dynamic)
	{
		if (!range_ok(dyn_off, dyn_size, r->len))
			bad_dynamic(r, "dynamic segment (PT_DYNAMIC at offset %llu, %llu bytes) lies outside the %llu-byte file",
						(ull) dyn_off, (ull) dyn_size, (ull) r->len);
		else
			read_dynamic(r, dyn_off, dyn_size, flags_1);
	}
}

bool
NxElfRead(const unsigned char *buf, size_t len, uint16_t expected_machine,
		  NxElfInfo *info)
{
	Reader		r;
	uint16_t	e_type,
				e_ehsize,
				e_phentsize,
				e_phnum;
	uint32_t	e_version;
	uint64_t	e_entry;
	uint64_t	phnum;
	bool		has_interp_segment = false;
	uint64_t	flags_1 = 0;
	char		tmp1[32],
				tmp2[32];

	memset(info, 0, sizeof(*info));
	info->size = len;
	if (buf == NULL)
		len = 0;
	memset(&r, 0, sizeof(r));
	r.buf = buf;
	r.len = len;
	r.info = info;

	if (len == 0)
	{
		NxElfAddProblem(info, NX_ELF_EMPTY, "file is empty (0 bytes)");
		return false;
	}
	if (len < 4 || memcmp(buf, "\177ELF", 4) != 0)
	{
		report_not_elf(&r);
		return false;
	}
	info->is_elf = true;

	if (len < EI_NIDENT)
	{
		NxElfAddProblem(info, NX_ELF_TRUNCATED_HEADER,
						"file is %zu bytes, shorter than the 16-byte ELF identification",
						len);
		return false;
	}
	if (buf[EI_CLASS] == ELFCLASS32)
	{
		info->elf_class = 32;
		info->little_endian = buf[EI_DATA] == ELFDATA2LSB;
		/* e_machine is at the same offset in ELF32; name it if we can */
		if (len >= 20)
			info->machine = buf[EI_DATA] == ELFDATA2MSB
				? (uint16_t) ((buf[E_MACHINE] << 8) | buf[E_MACHINE + 1])
				: (uint16_t) (buf[E_MACHINE] | (buf[E_MACHINE + 1] << 8));
		NxElfAddProblem(info, NX_ELF_CLASS32,
						"file is a 32-bit ELF (ELFCLASS32); only 64-bit executables run here");
		return false;
	}
	if (buf[EI_CLASS] != ELFCLASS64)
	{
		NxElfAddProblem(info, NX_ELF_BAD_HEADER,
						"ELF class byte (EI_CLASS) is %u, neither 1 (32-bit) nor 2 (64-bit)",
						(unsigned) buf[EI_CLASS]);
		return false;
	}
	info->elf_class = 64;
	if (buf[EI_DATA] == ELFDATA2MSB)
	{
		if (len >= 20)
			info->machine = (uint16_t) ((buf[E_MACHINE] << 8) | buf[E_MACHINE + 1]);
		NxElfAddProblem(info, NX_ELF_BIG_ENDIAN,
						"file is a big-endian ELF (ELFDATA2MSB); only little-endian executables run here");
		return false;
	}
	if (buf[EI_DATA] != ELFDATA2LSB)
	{
		NxElfAddProblem(info, NX_ELF_BAD_HEADER,
						"ELF byte order (EI_DATA) is %u, neither 1 (little-endian) nor 2 (big-endian)",
						(unsigned) buf[EI_DATA]);
		return false;
	}
	info->little_endian = true;
	if (len < EHDR_SIZE)
	{
		NxElfAddProblem(info, NX_ELF_TRUNCATED_HEADER,
						"file is %zu bytes, shorter than the 64-byte ELF64 header",
						len);
		return false;
	}

	e_type = rd16(&r, E_TYPE);
	info->type = e_type;
	info->machine = rd16(&r, E_MACHINE);
	e_version = rd32(&r, E_VERSION);
	e_entry = rd64(&r, E_ENTRY);
	e_ehsize = rd16(&r, E_EHSIZE);
	e_phentsize = rd16(&r, E_PHENTSIZE);
	e_phnum = rd16(&r, E_PHNUM);

	if (buf[EI_VERSION] != EV_CURRENT)
		NxElfAddProblem(info, NX_ELF_BAD_HEADER,
						"ELF identification version (EI_VERSION) is %u, not 1",
						(unsigned) buf[EI_VERSION]);
	else if (e_version != EV_CURRENT)
		NxElfAddProblem(info, NX_ELF_BAD_HEADER,
						"ELF version (e_version) is %u, not 1", (unsigned) e_version);
	if (e_ehsize < EHDR_SIZE)
		NxElfAddProblem(info, NX_ELF_BAD_HEADER,
						"ELF header size (e_ehsize) is %u, smaller than the 64-byte ELF64 header",
						(unsigned) e_ehsize);

	if (expected_machine != 0 && info->machine != expected_machine)
		NxElfAddProblem(info, NX_ELF_WRONG_MACHINE,
						"built for %s, this host runs %s",
						machine_desc(info->machine, tmp1, sizeof(tmp1)),
						machine_desc(expected_machine, tmp2, sizeof(tmp2)));

	switch (e_type)
	{
		case ET_EXEC:
		case ET_DYN:
			break;
		case ET_REL:
			NxElfAddProblem(info, NX_ELF_NOT_EXECUTABLE,
							"file is a relocatable object file (.o), not a linked executable");
			return false;
		case ET_CORE:
			NxElfAddProblem(info, NX_ELF_NOT_EXECUTABLE,
							"file is a core dump, not an executable");
			return false;
		default:
			NxElfAddProblem(info, NX_ELF_NOT_EXECUTABLE,
							"file has ELF type (e_type) %u, not an executable (2) or position-independent executable (3)",
							(unsigned) e_type);
			return false;
	}

	/* the program header table */
	if (e_phnum == 0)
	{
		NxElfAddProblem(info, NX_ELF_BAD_PROGRAM_HEADERS,
						"file has no program headers (e_phnum is 0), so Linux cannot load it");
		return false;
	}
	if (e_phentsize != PHDR_SIZE)
	{
		NxElfAddProblem(info, NX_ELF_BAD_HEADER,
						"program header entry size (e_phentsize) is %u, not the 56 bytes of an ELF64 program header",
						(unsigned) e_phentsize);
		return false;
	}
	phnum = e_phnum;
	if (e_phnum == PN_XNUM)
	{
		uint64_t	shoff = rd64(&r, E_SHOFF);

		/* extended numbering: the count is in section header 0's sh_info */
		if (!range_ok(shoff, SHDR_SIZE, len))
		{
			NxElfAddProblem(info, NX_ELF_BAD_PROGRAM_HEADERS,
							"program header count is in section header 0 (e_phnum is PN_XNUM), but that header (offset %llu) lies outside the %zu-byte file",
							(ull) shoff, len);
			return false;
		}
		phnum = rd32(&r, shoff + SH_INFO);
		/* Linux reads e_phnum literally and never loads such a file */
		NxElfAddProblem(info, NX_ELF_BAD_PROGRAM_HEADERS,
						"file uses extended program header numbering (e_phnum is PN_XNUM, %llu %s), which Linux does not load",
						(ull) phnum, phnum == 1 ? "entry" : "entries");
	}
	if (phnum == 0 || phnum > MAX_PHNUM)
	{
		NxElfAddProblem(info, NX_ELF_BAD_PROGRAM_HEADERS,
						"file has %llu program headers; Linux loads between 1 and %d",
						(ull) phnum, MAX_PHNUM);
		return false;
	}
	r.phoff = rd64(&r, E_PHOFF);
	if (!range_ok(r.phoff, phnum * PHDR_SIZE, len))
	{
		NxElfAddProblem(info, NX_ELF_BAD_PROGRAM_HEADERS,
						"program header table (offset %llu, %llu %s) lies outside the %zu-byte file",
						(ull) r.phoff, (ull) phnum, phnum == 1 ? "entry" : "entries", len);
		return false;
	}
	r.phnum = (uint32_t) phnum;

	read_program_headers(&r, &has_interp_segment, &flags_1);

	info->is_static = !has_interp_segment;
	info->nodeflib = (flags_1 & NX_DF_1_NODEFLIB) != 0;
	if (e_type == ET_DYN)
	{
		info->pie = has_interp_segment || (flags_1 & DF_1_PIE) != 0;

		/*
		 * Without an interpreter and DF_1_PIE, an ET_DYN is a shared library
		 * unless it looks like an old static PIE: one with an entry point
		 * and no DT_NEEDED (nothing would load those libraries).  The
		 * dynamic loader itself passes this way, as it should.
		 */
		if (!info->pie && e_entry == 0)
			NxElfAddProblem(info, NX_ELF_NOT_EXECUTABLE,
							"file is a shared library (no interpreter, no DF_1_PIE flag, no entry point), not an executable");
		else if (!info->pie && r.n_dt_needed > 0)
			NxElfAddProblem(info, NX_ELF_NOT_EXECUTABLE,
							"file is a shared library (it needs other libraries but has no interpreter to load them), not an executable");
	}

	return info->n_problems == 0;
}

/* NxElfFileType describes e_type the way a developer would say it. */
const char *
NxElfFileType(const NxElfInfo *info)
{
	switch (info->type)
	{
		case 1:
			return "relocatable object";
		case 2:
			return "executable";
		case 3:
			return info->pie ? "PIE executable" : "shared object";
		case 4:
			return "core dump";
		default:
			return "unknown";
	}
}
