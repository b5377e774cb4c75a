/*
 * src/elf/fuzz/fuzz_elf.c
 *	  libFuzzer target for the ELF reader (see README.md in this directory).
 *
 * Besides running NxElfRead on every input under ASan/UBSan, it touches
 * every string the reader returns and traps when one does not lie inside
 * the input, is not NUL-terminated there, or when the result is otherwise
 * inconsistent, so a bad pointer is a crash even where ASan would not see
 * it (a pointer into the wrong part of a valid buffer).
 */
#include "nx_elf.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
	return 0;
}
