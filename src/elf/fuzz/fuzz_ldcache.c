/*
 * src/elf/fuzz/fuzz_ldcache.c
 *	  libFuzzer target for the ld.so.cache reader (src/elf/nx_ldcache.c; see
 *	  README.md in this directory).
 *
 * Opens every input as a cache file; when the reader accepts it, reads
 * every entry, looks up the names of the first entries and a few fixed
 * ones, and traps unless every string returned lies inside the input and
 * is NUL-terminated there, and unless each lookup's answer is the path of
 * an entry of that name with the host's flags.
 */
#include "nx_ldcache.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

#define REQUIRE(cond) do { if (!(cond)) __builtin_trap(); } while (0)

/* the most entries read (and names looked up) per input */
#define MAX_ENTRIES 4096
#define MAX_LOOKUPS 8

static void
touch(const char *s, const uint8_t *data, size_t size)
{
	const uint8_t *p = (const uint8_t *) s;

	if (s == NULL)
		return;
	REQUIRE(p >= data && p < data + size);
	REQUIRE(memchr(p, '\0', (size_t) (data + size - p)) != NULL);
	sink += strlen(s);
}

/* lookup: NxLdCacheLookup, and its answer is an entry's path */
static void
lookup(const NxLdCache *c, const char *name, const uint8_t *data, size_t size)
{
	const char *path = NxLdCacheLookup(c, name, NX_LDCACHE_HOST_FLAGS);
	bool		seen = false;

	if (path == NULL)
		return;
	touch(path, data, size);
	for (uint32_t i = 0; i < c->nlibs && i < MAX_ENTRIES * 4 && !seen; i++)
	{
		NxLdCacheEntry e;

		NxLdCacheGet(c, i, &e);
		if (e.path == path && e.name != NULL && NxLdCacheCompare(name, e.name) == 0 &&
			e.flags == NX_LDCACHE_HOST_FLAGS)
			seen = true;
	}
	REQUIRE(seen || c->nlibs >= MAX_ENTRIES * 4);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	NxLdCache	c;
	char		err[NX_LDCACHE_MESSAGE_LEN];
	static const char *const names[] = {"libc.so.6", "libm.so.6", "libz.so.1", "a", "", NULL};

	err[0] = '\0';
	if (!NxLdCacheOpen(&c, data, size, err, sizeof(err)))
	{
		REQUIRE(err[0] != '\0' && strnlen(err, sizeof(err)) < sizeof(err));
		return 0;
	}
	REQUIRE(c.nlibs <= size / 12);
	for (uint32_t i = 0; i < c.nlibs && i < MAX_ENTRIES; i++)
	{
		NxLdCacheEntry e;

		NxLdCacheGet(&c, i, &e);
		touch(e.name, data, size);
		touch(e.path, data, size);
		if (i < MAX_LOOKUPS && e.name != NULL)
			lookup(&c, e.name, data, size);
	}
	for (int i = 0; names[i]; i++)
		lookup(&c, names[i], data, size);
	return 0;
}
