/*
 * src/elf/fuzz/fuzz_elf.c
 *	  libFuzzer target for the ELF reader (see README.md in this directory).
 *
 * Every input is read twice: as a pushed binary (NxElfRead, including its
 * version needs, DT_VERNEED) and as a host library (NxElfReadLibrary
 * through a buffer source, including DT_SONAME, DT_RUNPATH and both
 * version tables).  Besides running them under ASan/UBSan, it touches
 * every string returned and traps when one does not lie inside the input
 * (or the library's pool), is not NUL-terminated there, or when the result
 * is otherwise inconsistent, so a bad pointer is a crash even where ASan
 * would not see it (a pointer into the wrong part of a valid buffer).
 */
#include "nx_elf.h"
#include "nx_elf_lib.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* one library result at a time: static, it is about 100 KB */
static NxElfLibrary lib;

static volatile size_t sink;

#define REQUIRE(cond) do { if (!(cond)) __builtin_trap(); } while (0)

static void
touch_string(const NxElfString *s, const uint8_t *data, size_t size)
{
	const uint8_t *p = (const uint8_t *) s->ptr;

	REQUIRE(p != NULL);
	REQUIRE(p >= data && p < data + size);
	REQUIRE(s->len < (size_t) (data + size - p));
	REQUIRE(p[s->len] == '\0');
	REQUIRE(strlen(s->ptr) == s->len);
	sink += s->len;
}

/* touch_pool: a pool string of lib: inside the pool, NUL-terminated */
static void
touch_pool(uint32_t off, bool may_be_none)
{
	const char *s;

	if (off == NX_ELF_LIB_NONE)
	{
		REQUIRE(may_be_none);
		return;
	}
	REQUIRE(off < lib.pool_used && lib.pool_used <= sizeof(lib.pool));
	REQUIRE(memchr(lib.pool + off, '\0', lib.pool_used - off) != NULL);
	s = NxElfLibString(&lib, off);
	sink += strlen(s);
}

/* check_library: NxElfReadLibrary on the input, and its result's sanity */
static void
check_library(const uint8_t *data, size_t size)
{
	NxElfSource src;
	bool		ok;
	int			i;

	NxElfMemorySource(&src, data, size);
	ok = NxElfReadLibrary(&src, NX_ELF_HOST_MACHINE, &lib);
	REQUIRE(ok == (lib.status == NX_ELF_LIB_OK));
	REQUIRE(ok || (lib.error[0] != '\0' &&
				   strnlen(lib.error, sizeof(lib.error)) < sizeof(lib.error)));
	REQUIRE(lib.n_needed >= 0 && lib.n_needed <= NX_ELF_LIB_MAX_NEEDED);
	REQUIRE(lib.n_verdef >= 0 && lib.n_verdef <= NX_ELF_LIB_MAX_VERSIONS);
	REQUIRE(lib.n_verneed >= 0 && lib.n_verneed <= NX_ELF_LIB_MAX_VERSIONS);
	REQUIRE(lib.n_loads >= 0 && lib.n_loads <= NX_ELF_LIB_MAX_LOADS);
	if (!ok)
		return;
	touch_pool(lib.soname, true);
	touch_pool(lib.runpath, true);
	touch_pool(lib.rpath, true);
	REQUIRE(lib.runpath == NX_ELF_LIB_NONE || lib.rpath == NX_ELF_LIB_NONE);
	for (i = 0; i < lib.n_needed; i++)
		touch_pool(lib.needed[i], false);
	for (i = 0; i < lib.n_verdef; i++)
		touch_pool(lib.verdef[i].name, false);
	for (i = 0; i < lib.n_verneed; i++)
	{
		touch_pool(lib.verneed[i].name, false);
		touch_pool(lib.verneed[i].file, false);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	NxElfInfo	info;
	bool		ok;
	const char *hint;
	int			i;

	ok = NxElfRead(data, size, NX_ELF_HOST_MACHINE, &info);

	REQUIRE(ok == (info.n_problems == 0));
	REQUIRE(info.size == size);
	REQUIRE(info.n_problems >= 0 && info.n_problems <= NX_ELF_MAX_PROBLEMS);
	REQUIRE(info.n_needed >= 0 && info.n_needed <= NX_ELF_MAX_NEEDED);
	REQUIRE(info.n_runpath >= 0 && info.n_runpath <= 4);

	if (info.has_interpreter)
	{
		touch_string(&info.interpreter, data, size);
		REQUIRE(info.interpreter.len > 0 && info.interpreter.ptr[0] == '/');
		REQUIRE(!info.is_static);
	}
	for (i = 0; i < info.n_needed; i++)
		touch_string(&info.needed[i], data, size);
	for (i = 0; i < info.n_runpath; i++)
		touch_string(&info.runpath[i], data, size);
	REQUIRE(info.n_verneed >= 0 && info.n_verneed <= NX_ELF_MAX_VERNEED);
	REQUIRE(!info.verneed_truncated || info.n_verneed == NX_ELF_MAX_VERNEED);
	for (i = 0; i < info.n_verneed; i++)
	{
		touch_string(&info.verneed[i].file, data, size);
		touch_string(&info.verneed[i].version, data, size);
		REQUIRE(info.verneed[i].file.len > 0 && info.verneed[i].version.len > 0);
	}
	for (i = 0; i < info.n_problems; i++)
	{
		size_t		n = strnlen(info.problems[i].message, NX_ELF_MESSAGE_LEN);

		REQUIRE(n > 0 && n < NX_ELF_MESSAGE_LEN);
		REQUIRE(NxElfProblemKindOf(info.problems[i].code) != NX_ELF_KIND_HOST);
		sink += n;
	}

	hint = NxElfHint(&info, NX_ELF_HOST_MACHINE);
	REQUIRE((hint == NULL) == (info.n_problems == 0));
	if (hint)
		sink += strlen(hint);
	if (info.is_elf)
	{
		const char *name = NxElfMachineName(info.machine);

		if (name)
			sink += strlen(name);
	}

	check_library(data, size);
	return 0;
}
