/*
 * src/elf/test_elf.c
 *	  Standalone unit test of the ELF reader (no framework, no PostgreSQL).
 *
 *	  make elf-unit-test
 *	  build/test_elf [SEEDS_DIR [BINARY]]	(defaults: src/elf/fuzz/seeds,
 *											 /usr/bin/true)
 *
 * Checks the problem every seed file must produce, a real dynamic binary
 * read at run time, byte-patched and truncated variants of it, and the
 * helper functions.  Every NxElfRead result is also checked for sanity: all
 * returned strings inside the buffer and NUL-terminated there, messages
 * non-empty and without a trailing period.  test_libcheck.c adds the
 * library reader, the ld.so.cache reader and the library check (on a fake
 * root).  Prints "N passed, M failed" and exits non-zero on any failure.
 *
 *	  build/test_elf [-v] [SEEDS_DIR [BINARY [LDCACHE_SEEDS_DIR]]]
 */
#include "nx_elf.h"
#include "test_elf.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int	passed;
static int	failed;
static long n_sane;				/* results put through sane() */
static bool quiet_pass;			/* sane(): count failures only */
bool		verbose;

void
check(bool ok, const char *file, int line, const char *fmt,...)
{
	va_list		ap;

	if (ok)
	{
		if (!quiet_pass)
			passed++;
		return;
	}
	failed++;
	printf("FAIL %s:%d: ", file, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

unsigned char *
read_whole(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	unsigned char *buf;
	long		n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
		fseek(f, 0, SEEK_SET) != 0)
	{
		perror(path);
		exit(2);
	}
	buf = malloc((size_t) n + 1);
	if (buf == NULL || (n > 0 && fread(buf, 1, (size_t) n, f) != (size_t) n))
	{
		perror(path);
		exit(2);
	}
	fclose(f);
	*len = (size_t) n;
	return buf;
}

static uint64_t
le(const unsigned char *p, int n)
{
	uint64_t	v = 0;

	while (n-- > 0)
		v = (v << 8) | p[n];
	return v;
}

static void
put_le(unsigned char *p, int n, uint64_t v)
{
	int			i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char) (v >> (8 * i));
}

static bool
has_problem(const NxElfInfo *info, NxElfProblemCode code)
{
	int			i;

	for (i = 0; i < info->n_problems; i++)
		if (info->problems[i].code == code)
			return true;
	return false;
}

static const char *
first_message(const NxElfInfo *info)
{
	return info->n_problems > 0 ? info->problems[0].message : "(none)";
}

static void
string_sane(const NxElfString *s, const unsigned char *buf, size_t len,
			const char *what)
{
	const unsigned char *p = (const unsigned char *) s->ptr;

	CHECK(p != NULL && p >= buf && p <= buf + len && s->len < (size_t) (buf + len - p) &&
		  p[s->len] == '\0' && memchr(p, '\0', s->len) == NULL,
		  "%s string outside the buffer or not NUL-terminated", what);
}

/* sanity of any result, whatever the input */
static void
sane(const NxElfInfo *info, const unsigned char *buf, size_t len, bool ok)
{
	int			i;
	const char *hint = NxElfHint(info, NX_ELF_HOST_MACHINE);

	n_sane++;
	quiet_pass = true;
	CHECK(info->size == len, "size %zu != %zu", info->size, len);
	CHECK(ok == (info->n_problems == 0), "return value disagrees with n_problems");
	CHECK(info->n_problems >= 0 && info->n_problems <= NX_ELF_MAX_PROBLEMS,
		  "n_problems %d", info->n_problems);
	CHECK(info->n_needed >= 0 && info->n_needed <= NX_ELF_MAX_NEEDED,
		  "n_needed %d", info->n_needed);
	CHECK(info->n_runpath >= 0 && info->n_runpath <= 4, "n_runpath %d", info->n_runpath);
	CHECK(info->elf_class == 0 || info->elf_class == 32 || info->elf_class == 64,
		  "elf_class %d", info->elf_class);
	if (info->has_interpreter)
	{
		string_sane(&info->interpreter, buf, len, "interpreter");
		CHECK(info->interpreter.len > 0 && info->interpreter.ptr[0] == '/',
			  "interpreter not absolute");
		CHECK(!info->is_static, "has_interpreter but is_static");
	}
	for (i = 0; i < info->n_needed && i < NX_ELF_MAX_NEEDED; i++)
		string_sane(&info->needed[i], buf, len, "needed");
	for (i = 0; i < info->n_runpath && i < 4; i++)
		string_sane(&info->runpath[i], buf, len, "runpath");
	CHECK(info->n_verneed >= 0 && info->n_verneed <= NX_ELF_MAX_VERNEED,
		  "n_verneed %d", info->n_verneed);
	for (i = 0; i < info->n_verneed && i < NX_ELF_MAX_VERNEED; i++)
	{
		string_sane(&info->verneed[i].file, buf, len, "verneed file");
		string_sane(&info->verneed[i].version, buf, len, "verneed version");
	}
	for (i = 0; i < info->n_problems && i < NX_ELF_MAX_PROBLEMS; i++)
	{
		const char *m = info->problems[i].message;
		size_t		n = strnlen(m, NX_ELF_MESSAGE_LEN);
		size_t		j;
		bool		printable = true;

		CHECK(n > 0 && n < NX_ELF_MESSAGE_LEN, "message %d empty or unterminated", i);
		CHECK(n == 0 || m[n - 1] != '.', "message ends with a period: %s", m);
		for (j = 0; j < n; j++)
			if ((unsigned char) m[j] < 0x20 || (unsigned char) m[j] >= 0x7f)
				printable = false;
		CHECK(printable, "message %d has non-printable bytes", i);
		CHECK(info->problems[i].code >= NX_ELF_EMPTY &&
			  info->problems[i].code <= NX_ELF_NO_LOADABLE_SEGMENT,
			  "reader added a problem code %d it should not", info->problems[i].code);
	}
	CHECK((hint == NULL) == (info->n_problems == 0), "hint presence");
	quiet_pass = false;
}

static bool
read_checked(const unsigned char *buf, size_t len, uint16_t machine, NxElfInfo *info)
{
	bool		ok = NxElfRead(buf, len, machine, info);

	sane(info, buf, len, ok);
	return ok;
}

/* expected outcome for each committed seed (expected machine: x86-64) */
typedef struct SeedCase
{
	const char *name;
	int			code;			/* first problem, 0 = runnable */
	const char *message_part;	/* substring of the first message, or NULL */
} SeedCase;

static const SeedCase seed_cases[] = {
	{"empty", NX_ELF_EMPTY, "0 bytes"},
	{"script.sh", NX_ELF_SCRIPT, "#!/bin/sh"},
	{"text.txt", NX_ELF_NOT_ELF, "68 65 6c 6c"},
	{"windows.exe", NX_ELF_FOREIGN_FORMAT, "Windows"},
	{"macho64", NX_ELF_FOREIGN_FORMAT, "Mach-O"},
	{"module.wasm", NX_ELF_FOREIGN_FORMAT, "WebAssembly"},
	{"elf32.elf", NX_ELF_CLASS32, "ELFCLASS32"},
	{"bigendian.elf", NX_ELF_BIG_ENDIAN, "big-endian"},
	{"truncated_header.elf", NX_ELF_TRUNCATED_HEADER, "file is 30 bytes, shorter than the 64-byte ELF64 header"},
	{"static.elf", 0, NULL},
	{"dynamic_pie.elf", 0, NULL},
	{"static_pie.elf", 0, NULL},
	{"aarch64.elf", NX_ELF_WRONG_MACHINE, "built for AArch64, this host runs x86-64"},
	{"relocatable.elf", NX_ELF_NOT_EXECUTABLE, "relocatable object file (.o)"},
	{"shared_library.elf", NX_ELF_NOT_EXECUTABLE, "shared library"},
	{"no_load.elf", NX_ELF_NO_LOADABLE_SEGMENT, "PT_LOAD"},
	{"segment_outside.elf", NX_ELF_SEGMENT_OUTSIDE_FILE, "PT_LOAD segment (program header 0) ends at byte 1048576, past the end of the 129-byte file"},
	{"phoff_outside.elf", NX_ELF_BAD_PROGRAM_HEADERS, "program header table (offset 1099511627776, 1 entry) lies outside the 129-byte file"},
	{"pn_xnum.elf", NX_ELF_BAD_PROGRAM_HEADERS, "PN_XNUM, 1 entry"},
	{"relative_interp.elf", NX_ELF_BAD_INTERPRETER, "lib/ld.so is relative"},
	{"bad_needed.elf", NX_ELF_BAD_DYNAMIC, "offset 1000"},
	{"versioned_pie.elf", 0, NULL},
	{"versioned_lib.elf", NX_ELF_NOT_EXECUTABLE, "shared library"},
	{"bad_verneed.elf", NX_ELF_BAD_DYNAMIC, "version needs (DT_VERNEED) have version 2, not 1"},
};

static void
print_info(const char *what, const NxElfInfo *info)
{
	int			i;

	if (!verbose)
		return;
	printf("%s: class %d type %u machine %u pie %d static %d", what,
		   info->elf_class, info->type, info->machine, info->pie, info->is_static);
	if (info->has_interpreter)
		printf(" interp %.*s", (int) info->interpreter.len, info->interpreter.ptr);
	for (i = 0; i < info->n_needed; i++)
		printf(" needs %.*s", (int) info->needed[i].len, info->needed[i].ptr);
	printf("\n");
	for (i = 0; i < info->n_problems; i++)
		printf("    [%d] %s\n", info->problems[i].code, info->problems[i].message);
	if (info->n_problems > 0)
		printf("    hint: %s\n", NxElfHint(info, NX_EM_X86_64));
}

static void
test_seeds(const char *dir)
{
	size_t		i;
	char		path[4096];
	DIR		   *d;
	struct dirent *de;
	NxElfInfo	info;

	for (i = 0; i < sizeof(seed_cases) / sizeof(seed_cases[0]); i++)
	{
		const SeedCase *c = &seed_cases[i];
		size_t		len,
					cut;
		unsigned char *buf;
		bool		ok;

		snprintf(path, sizeof(path), "%s/%s", dir, c->name);
		buf = read_whole(path, &len);
		ok = read_checked(buf, len, NX_EM_X86_64, &info);
		print_info(c->name, &info);
		if (c->code == 0)
			CHECK(ok, "%s: expected no problem, got: %s", c->name, first_message(&info));
		else
			CHECK(!ok && info.problems[0].code == (NxElfProblemCode) c->code,
				  "%s: expected code %d first, got %d: %s", c->name, c->code,
				  info.n_problems ? (int) info.problems[0].code : 0,
				  first_message(&info));
		if (c->message_part)
			CHECK(info.n_problems > 0 && strstr(info.problems[0].message, c->message_part),
				  "%s: message \"%s\" lacks \"%s\"", c->name, first_message(&info),
				  c->message_part);

		/* every prefix of every seed, for the sanity checks alone */
		for (cut = 0; cut < len; cut++)
			read_checked(buf, cut, NX_EM_X86_64, &info);
		free(buf);
	}

	/* facts of the runnable seeds */
	snprintf(path, sizeof(path), "%s/dynamic_pie.elf", dir);
	{
		size_t		len;
		unsigned char *buf = read_whole(path, &len);

		read_checked(buf, len, NX_EM_X86_64, &info);
		CHECK(info.is_elf && info.elf_class == 64 && info.little_endian &&
			  info.type == 3 && info.machine == NX_EM_X86_64, "dynamic_pie header facts");
		CHECK(info.pie && !info.is_static && info.has_interpreter, "dynamic_pie is a dynamic PIE");
		CHECK(info.has_interpreter && info.interpreter.len == 27 &&
			  memcmp(info.interpreter.ptr, "/lib64/ld-linux-x86-64.so.2", 27) == 0,
			  "dynamic_pie interpreter");
		CHECK(info.n_needed == 1 && info.needed[0].len == 9 &&
			  memcmp(info.needed[0].ptr, "libc.so.6", 9) == 0, "dynamic_pie needs libc.so.6");
		CHECK(info.n_runpath == 1 && info.runpath[0].len == 12 &&
			  memcmp(info.runpath[0].ptr, "/opt/app/lib", 12) == 0, "dynamic_pie runpath");
		/* on an AArch64 host the same file is refused for its machine */
		CHECK(!NxElfRead(buf, len, NX_EM_AARCH64, &info) &&
			  info.problems[0].code == NX_ELF_WRONG_MACHINE &&
			  strcmp(info.problems[0].message, "built for x86-64, this host runs AArch64") == 0,
			  "dynamic_pie on AArch64: %s", first_message(&info));
		CHECK(strstr(NxElfHint(&info, NX_EM_AARCH64), "GOARCH=arm64") != NULL,
			  "AArch64 hint names GOARCH=arm64");
		/* expected_machine 0 skips the machine check */
		CHECK(NxElfRead(buf, len, 0, &info), "expected_machine 0");
		free(buf);
	}
	snprintf(path, sizeof(path), "%s/static.elf", dir);
	{
		size_t		len;
		unsigned char *buf = read_whole(path, &len);

		read_checked(buf, len, NX_EM_X86_64, &info);
		CHECK(info.is_static && !info.pie && !info.has_interpreter && info.type == 2 &&
			  info.n_needed == 0, "static.elf facts");
		free(buf);
	}
	snprintf(path, sizeof(path), "%s/static_pie.elf", dir);
	{
		size_t		len;
		unsigned char *buf = read_whole(path, &len);

		read_checked(buf, len, NX_EM_X86_64, &info);
		CHECK(info.is_static && info.pie && !info.has_interpreter && info.type == 3 &&
			  info.n_needed == 0, "static_pie.elf facts");
		free(buf);
	}
	snprintf(path, sizeof(path), "%s/shared_library.elf", dir);
	{
		size_t		len;
		unsigned char *buf = read_whole(path, &len);

		/* an entry point does not make a library that needs others runnable */
		put_le(buf + 24, 8, 0x100);
		read_checked(buf, len, NX_EM_X86_64, &info);
		CHECK(info.n_problems == 1 && info.problems[0].code == NX_ELF_NOT_EXECUTABLE &&
			  strstr(info.problems[0].message, "no interpreter to load them"),
			  "shared_library.elf with an entry point: %s", first_message(&info));
		free(buf);
	}
	snprintf(path, sizeof(path), "%s/versioned_pie.elf", dir);
	{
		size_t		len;
		unsigned char *buf = read_whole(path, &len);

		read_checked(buf, len, NX_EM_X86_64, &info);
		CHECK(info.n_verneed == 2 && !info.verneed_truncated &&
			  strcmp(info.verneed[0].file.ptr, "libc.so.6") == 0 &&
			  strcmp(info.verneed[0].version.ptr, "GLIBC_2.2.5") == 0 &&
			  info.verneed[0].hash == 0x09691a75 && !info.verneed[0].weak &&
			  strcmp(info.verneed[1].version.ptr, "GLIBC_2.34") == 0 &&
			  info.verneed[1].hash == 0x069691b4,
			  "versioned_pie needs GLIBC_2.2.5 and GLIBC_2.34 (%d)", info.n_verneed);
		free(buf);
	}
	snprintf(path, sizeof(path), "%s/elf32.elf", dir);
	{
		size_t		len;
		unsigned char *buf = read_whole(path, &len);

		read_checked(buf, len, NX_EM_X86_64, &info);
		CHECK(info.is_elf && info.elf_class == 32 && info.machine == NX_EM_386,
			  "elf32 facts: class %d machine %u", info.elf_class, info.machine);
		free(buf);
	}
	snprintf(path, sizeof(path), "%s/bigendian.elf", dir);
	{
		size_t		len;
		unsigned char *buf = read_whole(path, &len);

		read_checked(buf, len, NX_EM_X86_64, &info);
		CHECK(info.is_elf && info.elf_class == 64 && !info.little_endian &&
			  info.machine == 22, "big-endian facts");
		free(buf);
	}

	/* every file in the directory has an expectation here */
	d = opendir(dir);
	CHECK(d != NULL, "cannot open %s", dir);
	while (d && (de = readdir(d)) != NULL)
	{
		bool		known = false;

		if (de->d_name[0] == '.')
			continue;
		for (i = 0; i < sizeof(seed_cases) / sizeof(seed_cases[0]); i++)
			if (strcmp(seed_cases[i].name, de->d_name) == 0)
				known = true;
		CHECK(known, "seed %s has no expectation in test_elf.c", de->d_name);
	}
	if (d)
		closedir(d);
}

/* the program header index of the first entry of the given type, or -1 */
static int
find_phdr(const unsigned char *buf, uint32_t type)
{
	uint64_t	phoff = le(buf + 32, 8);
	int			phnum = (int) le(buf + 56, 2);
	int			i;

	for (i = 0; i < phnum; i++)
		if (le(buf + phoff + (uint64_t) i * 56, 4) == type)
			return i;
	return -1;
}

static void
test_binary(const char *path)
{
	size_t		len,
				cut,
				i;
	unsigned char *orig = read_whole(path, &len);
	unsigned char *buf = malloc(len);
	NxElfInfo	info;
	int			ph;
	bool		ok;
	bool		libc = false;

	/* the file as it is */
	ok = read_checked(orig, len, NX_ELF_HOST_MACHINE, &info);
	print_info(path, &info);
	CHECK(ok, "%s: expected no problem, got: %s", path, first_message(&info));
	CHECK(info.is_elf && info.elf_class == 64 && info.little_endian &&
		  info.machine == NX_ELF_HOST_MACHINE, "%s header facts", path);
	CHECK(info.type == 3 && info.pie && !info.is_static && info.has_interpreter,
		  "%s is a dynamic PIE", path);
#if defined(__x86_64__)
	CHECK(info.has_interpreter && info.interpreter.len == 27 &&
		  memcmp(info.interpreter.ptr, "/lib64/ld-linux-x86-64.so.2", 27) == 0,
		  "%s interpreter is /lib64/ld-linux-x86-64.so.2", path);
#endif
	for (i = 0; i < (size_t) info.n_needed; i++)
		if (info.needed[i].len == 9 && memcmp(info.needed[i].ptr, "libc.so.6", 9) == 0)
			libc = true;
	CHECK(libc, "%s needs libc.so.6", path);

#define PATCHED(what, code, cond) \
	do { \
		ok = read_checked(buf, len, NX_ELF_HOST_MACHINE, &info); \
		print_info(what, &info); \
		CHECK(!ok && has_problem(&info, code) && (cond), "%s: expected code %d, got: %s", \
			  what, (int) (code), first_message(&info)); \
	} while (0)

	memcpy(buf, orig, len);
	buf[4] = 1;
	PATCHED("EI_CLASS=1", NX_ELF_CLASS32,
			info.problems[0].code == NX_ELF_CLASS32 && info.elf_class == 32);

	memcpy(buf, orig, len);
	buf[5] = 2;
	PATCHED("EI_DATA=2", NX_ELF_BIG_ENDIAN,
			info.problems[0].code == NX_ELF_BIG_ENDIAN && !info.little_endian);

	memcpy(buf, orig, len);
	put_le(buf + 18, 2, NX_ELF_HOST_MACHINE == NX_EM_AARCH64 ? NX_EM_X86_64 : NX_EM_AARCH64);
	PATCHED("e_machine", NX_ELF_WRONG_MACHINE,
			info.problems[0].code == NX_ELF_WRONG_MACHINE && info.n_problems == 1 &&
			info.has_interpreter && info.n_needed > 0);

	memcpy(buf, orig, len);
	put_le(buf + 32, 8, UINT64_C(0xfffffffffffffff0));
	PATCHED("e_phoff=huge", NX_ELF_BAD_PROGRAM_HEADERS, true);

	memcpy(buf, orig, len);
	put_le(buf + 54, 2, 32);
	PATCHED("e_phentsize=32", NX_ELF_BAD_HEADER, true);

	memcpy(buf, orig, len);
	put_le(buf + 16, 2, 1);
	PATCHED("e_type=ET_REL", NX_ELF_NOT_EXECUTABLE, true);

	memcpy(buf, orig, len);
	ok = read_checked(buf, 30, NX_ELF_HOST_MACHINE, &info);
	CHECK(!ok && info.problems[0].code == NX_ELF_TRUNCATED_HEADER &&
		  strcmp(info.problems[0].message,
				 "file is 30 bytes, shorter than the 64-byte ELF64 header") == 0,
		  "truncated to 30 bytes: %s", first_message(&info));

	ok = read_checked(buf, len / 2, NX_ELF_HOST_MACHINE, &info);
	print_info("half", &info);
	CHECK(!ok && has_problem(&info, NX_ELF_SEGMENT_OUTSIDE_FILE) &&
		  strstr(info.problems[0].message, "(truncated upload?)") != NULL,
		  "truncated to half: %s", first_message(&info));
	CHECK(strcmp(NxElfHint(&info, NX_ELF_HOST_MACHINE),
				 "the file looks truncated: push the complete binary again") == 0,
		  "truncation hint");

	ph = find_phdr(orig, 3);
	CHECK(ph >= 0, "%s has PT_INTERP", path);
	if (ph >= 0)
	{
		memcpy(buf, orig, len);
		put_le(buf + le(buf + 32, 8) + (uint64_t) ph * 56 + 8, 8, (uint64_t) len - 4);
		PATCHED("PT_INTERP outside", NX_ELF_BAD_INTERPRETER,
				!info.has_interpreter && !info.is_static);

		memcpy(buf, orig, len);
		put_le(buf + le(buf + 32, 8) + (uint64_t) ph * 56 + 8, 8, UINT64_MAX - 10);
		PATCHED("PT_INTERP offset wraps", NX_ELF_BAD_INTERPRETER, !info.has_interpreter);
	}

	ph = find_phdr(orig, 2);
	CHECK(ph >= 0, "%s has PT_DYNAMIC", path);
	if (ph >= 0)
	{
		memcpy(buf, orig, len);
		put_le(buf + le(buf + 32, 8) + (uint64_t) ph * 56 + 8, 8, (uint64_t) len + 4096);
		PATCHED("PT_DYNAMIC outside", NX_ELF_BAD_DYNAMIC, info.n_needed == 0);
	}

	/* every truncation, and every byte of the headers set to 0, 0xff, 0x80 */
	for (cut = 0; cut < len; cut++)
		read_checked(orig, cut, NX_ELF_HOST_MACHINE, &info);
	for (i = 0; i < len && i < 4096; i++)
	{
		static const unsigned char vals[] = {0x00, 0xff, 0x80};
		size_t		v;

		for (v = 0; v < sizeof(vals); v++)
		{
			memcpy(buf, orig, len);
			buf[i] = vals[v];
			read_checked(buf, len, NX_ELF_HOST_MACHINE, &info);
		}
	}
	free(buf);
	free(orig);
}

static void
test_helpers(void)
{
	NxElfInfo	info;
	char		longstr[400];
	int			i,
				c;

	CHECK(strcmp(NxElfMachineName(62), "x86-64") == 0, "name 62");
	CHECK(strcmp(NxElfMachineName(183), "AArch64") == 0, "name 183");
	CHECK(strcmp(NxElfMachineName(243), "RISC-V") == 0, "name 243");
	CHECK(strcmp(NxElfMachineName(3), "x86 (32-bit)") == 0, "name 3");
	CHECK(strcmp(NxElfMachineName(40), "ARM (32-bit)") == 0, "name 40");
	CHECK(strcmp(NxElfMachineName(22), "S/390") == 0, "name 22");
	CHECK(NxElfMachineName(0) == NULL && NxElfMachineName(9999) == NULL, "unknown names");

	CHECK(NxElfProblemKindOf(NX_ELF_EMPTY) == NX_ELF_KIND_MALFORMED &&
		  NxElfProblemKindOf(NX_ELF_BAD_DYNAMIC) == NX_ELF_KIND_MALFORMED &&
		  NxElfProblemKindOf(NX_ELF_SEGMENT_OUTSIDE_FILE) == NX_ELF_KIND_MALFORMED,
		  "malformed kinds");
	CHECK(NxElfProblemKindOf(NX_ELF_CLASS32) == NX_ELF_KIND_UNSUPPORTED &&
		  NxElfProblemKindOf(NX_ELF_WRONG_MACHINE) == NX_ELF_KIND_UNSUPPORTED &&
		  NxElfProblemKindOf(NX_ELF_NO_LOADABLE_SEGMENT) == NX_ELF_KIND_UNSUPPORTED,
		  "unsupported kinds");
	CHECK(NxElfProblemKindOf(NX_ELF_INTERPRETER_MISSING) == NX_ELF_KIND_HOST &&
		  NxElfProblemKindOf(NX_ELF_LIBRARY_MISSING) == NX_ELF_KIND_HOST &&
		  NxElfProblemKindOf(NX_ELF_TOO_LARGE) == NX_ELF_KIND_HOST &&
		  NxElfProblemKindOf(NX_ELF_VERSION_MISSING) == NX_ELF_KIND_HOST, "host kinds");

	/* a problem's own hint wins over its code's */
	memset(&info, 0, sizeof(info));
	{
		NxElfProblem *p = NxElfAddProblem(&info, NX_ELF_VERSION_MISSING, "x");

		CHECK(p != NULL && p->hint[0] == '\0' &&
			  strstr(NxElfHint(&info, NX_EM_X86_64), "link statically") != NULL,
			  "version hint by code");
		if (p)
			snprintf(p->hint, sizeof(p->hint), "own hint");
		CHECK(strcmp(NxElfHint(&info, NX_EM_X86_64), "own hint") == 0, "own hint");
	}

	/* the array fills and then drops; long messages are cut, terminated */
	memset(&info, 0, sizeof(info));
	memset(longstr, 'x', sizeof(longstr) - 1);
	longstr[sizeof(longstr) - 1] = '\0';
	for (i = 0; i < NX_ELF_MAX_PROBLEMS + 3; i++)
		NxElfAddProblem(&info, NX_ELF_LIBRARY_MISSING, "library %s is missing", longstr);
	CHECK(info.n_problems == NX_ELF_MAX_PROBLEMS, "problems capped: %d", info.n_problems);
	CHECK(strlen(info.problems[NX_ELF_MAX_PROBLEMS - 1].message) == NX_ELF_MESSAGE_LEN - 1,
		  "long message cut to fit");

	/* a one-line hint without a trailing period for every code */
	for (c = NX_ELF_EMPTY; c <= NX_ELF_VERSION_MISSING; c++)
	{
		const char *h;

		memset(&info, 0, sizeof(info));
		NxElfAddProblem(&info, (NxElfProblemCode) c, "x");
		h = NxElfHint(&info, NX_EM_X86_64);
		CHECK(h != NULL && h[0] != '\0' && h[strlen(h) - 1] != '.' &&
			  strchr(h, '\n') == NULL, "hint for code %d", c);
	}
	memset(&info, 0, sizeof(info));
	CHECK(NxElfHint(&info, NX_EM_X86_64) == NULL, "no hint without problems");
	NxElfAddProblem(&info, NX_ELF_WRONG_MACHINE, "x");
	CHECK(strstr(NxElfHint(&info, NX_EM_X86_64), "GOARCH=amd64") &&
		  strstr(NxElfHint(&info, NX_EM_X86_64), "x86_64-unknown-linux-musl") &&
		  strstr(NxElfHint(&info, NX_EM_X86_64), "x86_64-linux-musl"), "x86-64 hint");
	CHECK(strstr(NxElfHint(&info, NX_EM_AARCH64), "aarch64-unknown-linux-musl") != NULL,
		  "AArch64 hint");
	memset(&info, 0, sizeof(info));
	NxElfAddProblem(&info, NX_ELF_SCRIPT, "x");
	CHECK(strcmp(NxElfHint(&info, NX_EM_X86_64),
				 "push a compiled binary, not a script; bundle it first (e.g. bun build --compile)") == 0,
		  "script hint");

	/* NULL buffer is treated as empty */
	CHECK(!NxElfRead(NULL, 0, NX_EM_X86_64, &info) && info.problems[0].code == NX_ELF_EMPTY,
		  "NULL buffer");

	/* a long, binary #! line is shortened and sanitised */
	{
		unsigned char s[300];

		memset(s, 'a', sizeof(s));
		memcpy(s, "#! /usr/bin/env \001\377", 18);
		read_checked(s, sizeof(s), NX_EM_X86_64, &info);
		CHECK(info.problems[0].code == NX_ELF_SCRIPT &&
			  strstr(info.problems[0].message, "#!/usr/bin/env ??aaa") &&
			  strstr(info.problems[0].message, "..."), "script line: %s",
			  first_message(&info));
	}
}

int
main(int argc, char **argv)
{
	const char *seeds = "src/elf/fuzz/seeds";
	const char *binary = "/usr/bin/true";
	const char *ldcache_seeds = "src/elf/fuzz/seeds-ldcache";
	int			a = 1;

	if (a < argc && strcmp(argv[a], "-v") == 0)
	{
		verbose = true;
		a++;
	}
	if (a < argc)
		seeds = argv[a++];
	if (a < argc)
		binary = argv[a++];
	if (a < argc)
		ldcache_seeds = argv[a++];

	test_helpers();
	test_seeds(seeds);
	test_binary(binary);
	test_libraries(seeds, binary);
	test_ldcache(ldcache_seeds);
	test_libcheck(seeds);

	CHECK(n_sane > 0, "sanity checks ran");
	printf("(every check also applied to %ld reader results)\n", n_sane);
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
