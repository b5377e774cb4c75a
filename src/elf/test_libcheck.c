/*
 * src/elf/test_libcheck.c
 *	  Unit test of the host-side readers and the library check: the library
 *	  reader (nx_elf_lib.c) on the seeds and this host's libc, the
 *	  ld.so.cache reader (nx_ldcache.c) on its seeds and this host's cache,
 *	  and the loader model (nx_view.c, nx_libcheck.c) on a fake root built
 *	  in a temporary directory: a /usr with this host's libc and dynamic
 *	  loader, seed libraries in /usr/local/lib and /opt, symlinks that stay
 *	  in the sandbox's view and one that leaves it, and an ld.so.cache
 *	  written here.  The binaries are NxElfInfo values filled by hand (what
 *	  NxElfRead would return), so every case is one line of setup.
 *
 * Glossary: see nx_libcheck.h.
 */
#define _GNU_SOURCE
#include "nx_elf.h"
#include "nx_elf_lib.h"
#include "nx_ldcache.h"
#include "nx_libcheck.h"
#include "test_elf.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LIBDIR "/usr/lib/" NX_LIB_MULTIARCH

static char root[256];
static NxLibCheck *work;
static NxElfLibrary *lib;

/* ---------- small helpers */

/* elf_hash: the SysV ELF hash of a version name */
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

/* read_lib: NxElfReadLibrary on a file (through a buffer source) */
static bool
read_lib(const unsigned char *buf, size_t len)
{
	NxElfSource src;

	NxElfMemorySource(&src, buf, len);
	return NxElfReadLibrary(&src, NX_ELF_HOST_MACHINE, lib);
}

/* has_def: does the library just read define version v? */
static bool
has_def(const char *v)
{
	for (int i = 0; i < lib->n_verdef; i++)
		if (strcmp(NxElfLibString(lib, lib->verdef[i].name), v) == 0)
			return true;
	return false;
}

/* mkdirs: mkdir -p of root + path's directory part */
static void
mkdirs(const char *path)
{
	char		p[1024];

	snprintf(p, sizeof(p), "%s%s", root, path);
	for (char *s = p + strlen(root) + 1; *s; s++)
		if (*s == '/')
		{
			*s = '\0';
			if (mkdir(p, 0755) != 0 && errno != EEXIST)
			{
				perror(p);
				exit(2);
			}
			*s = '/';
		}
}

/* put: write len bytes as root + path */
static void
put(const char *path, const void *data, size_t len)
{
	char		p[1024];
	FILE	   *f;

	mkdirs(path);
	snprintf(p, sizeof(p), "%s%s", root, path);
	f = fopen(p, "wb");
	if (f == NULL || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
	{
		perror(p);
		exit(2);
	}
}

/* copy: a host file (symlinks followed) to root + path */
static void
copy(const char *host, const char *path)
{
	size_t		len;
	unsigned char *buf = read_whole(host, &len);

	put(path, buf, len);
	free(buf);
}

/* link_to: root + path is a symlink to target (as the sandbox reads it) */
static void
link_to(const char *path, const char *target)
{
	char		p[1024];

	mkdirs(path);
	snprintf(p, sizeof(p), "%s%s", root, path);
	if (symlink(target, p) != 0)
	{
		perror(p);
		exit(2);
	}
}

/* patch: replace every copy of from by to (same length) in buf */
static void
patch(unsigned char *buf, size_t len, const char *from, const char *to)
{
	size_t		n = strlen(from);

	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(buf + i, from, n) == 0)
			memcpy(buf + i, to, n);
}

/* ---------- the library reader */

void
test_libraries(const char *seeds, const char *binary)
{
	char		path[1024];
	size_t		len;
	unsigned char *buf;

	lib = calloc(1, sizeof(NxElfLibrary));
	work = calloc(1, sizeof(NxLibCheck));

	snprintf(path, sizeof(path), "%s/versioned_lib.elf", seeds);
	buf = read_whole(path, &len);
	CHECK(read_lib(buf, len), "versioned_lib.elf loads: %s", lib->error);
	CHECK(strcmp(NxElfLibString(lib, lib->soname), "libnxseed.so.1") == 0 &&
		  strcmp(NxElfLibString(lib, lib->rpath), "$ORIGIN/../lib") == 0 &&
		  lib->runpath == NX_ELF_LIB_NONE, "versioned_lib soname and rpath");
	CHECK(lib->n_needed == 1 && strcmp(NxElfLibString(lib, lib->needed[0]), "libc.so.6") == 0,
		  "versioned_lib needs libc.so.6");
	CHECK(lib->has_verdef && lib->n_verdef == 3 && has_def("NXSEED_1.0") &&
		  has_def("NXSEED_1.1") && (lib->verdef[0].flags & NX_VER_FLG_BASE) &&
		  lib->verdef[1].hash == elf_hash("NXSEED_1.0"), "versioned_lib defines NXSEED_1.0, 1.1");
	CHECK(lib->n_verneed == 2 &&
		  strcmp(NxElfLibString(lib, lib->verneed[1].file), "libc.so.6") == 0 &&
		  strcmp(NxElfLibString(lib, lib->verneed[1].name), "GLIBC_2.34") == 0,
		  "versioned_lib needs GLIBC_2.34");
	/* every truncation: never a crash, never OK once the tables are cut */
	for (size_t cut = 0; cut < len; cut++)
	{
		NxElfSource src;

		NxElfMemorySource(&src, buf, cut);
		NxElfReadLibrary(&src, NX_ELF_HOST_MACHINE, lib);
	}
	/* a damaged verdef version is fatal, as for the loader */
	for (size_t i = 0; i + 14 <= len; i++)
		if (memcmp(buf + i, "libnxseed.so.1", 14) == 0)
			break;
	free(buf);

	snprintf(path, sizeof(path), "%s/elf32.elf", seeds);
	buf = read_whole(path, &len);
	CHECK(!read_lib(buf, len) && lib->status == NX_ELF_LIB_BAD &&
		  strcmp(lib->error, "is too short to be an ELF file") == 0, "elf32 (52 bytes): %s", lib->error);
	{
		unsigned char padded[64] = {0};

		memcpy(padded, buf, len < 64 ? len : 64);
		CHECK(!read_lib(padded, 64) && lib->status == NX_ELF_LIB_SKIPPED &&
			  strcmp(lib->error, "is a 32-bit library") == 0, "elf32 skipped: %s", lib->error);
	}
	free(buf);
	snprintf(path, sizeof(path), "%s/aarch64.elf", seeds);
	buf = read_whole(path, &len);
	CHECK(!read_lib(buf, len) && lib->status == NX_ELF_LIB_SKIPPED &&
		  strcmp(lib->error, "is built for AArch64") == 0, "aarch64 skipped: %s", lib->error);
	free(buf);
	snprintf(path, sizeof(path), "%s/static.elf", seeds);
	buf = read_whole(path, &len);
	CHECK(!read_lib(buf, len) && lib->status == NX_ELF_LIB_BAD &&
		  strcmp(lib->error, "is not a shared library (ELF type 2)") == 0,
		  "static.elf bad: %s", lib->error);
	free(buf);
	snprintf(path, sizeof(path), "%s/text.txt", seeds);
	buf = read_whole(path, &len);
	CHECK(!read_lib(buf, len) && lib->status == NX_ELF_LIB_BAD &&
		  strcmp(lib->error, "is too short to be an ELF file") == 0, "text: %s", lib->error);
	free(buf);

	/* this host's libc, and a PIE read as a library (the loader takes it) */
	buf = read_whole("/lib/" NX_LIB_MULTIARCH "/libc.so.6", &len);
	CHECK(read_lib(buf, len), "host libc loads: %s", lib->error);
	CHECK(strcmp(NxElfLibString(lib, lib->soname), "libc.so.6") == 0 && lib->has_verdef &&
		  has_def("GLIBC_2.2.5") && has_def("GLIBC_2.34") && !has_def("GLIBC_2.99"),
		  "host libc defines GLIBC_2.2.5 and GLIBC_2.34");
	free(buf);
	buf = read_whole(binary, &len);
	CHECK(read_lib(buf, len) && lib->n_needed >= 1 && lib->n_verneed >= 1,
		  "%s as a library: %s", binary, lib->error);
	free(buf);
}

/* ---------- the ld.so.cache reader */

void
test_ldcache(const char *dir)
{
	static const char *const files[] = {"new.cache", "old.cache", "compat.cache"};
	char		path[1024];
	char		err[NX_LDCACHE_MESSAGE_LEN];
	NxLdCache	c;
	size_t		len;
	unsigned char *buf;
	int			checked = 0;

	for (int f = 0; f < 3; f++)
	{
		const char *libm;

		snprintf(path, sizeof(path), "%s/%s", dir, files[f]);
		buf = read_whole(path, &len);
		CHECK(NxLdCacheOpen(&c, buf, len, err, sizeof(err)), "%s opens: %s", files[f], err);
		CHECK(c.nlibs == 6 && c.new_format == (f != 1), "%s: 6 entries", files[f]);
		CHECK(NxLdCacheLookup(&c, "libc.so.6", 0x0303) != NULL &&
			  strcmp(NxLdCacheLookup(&c, "libc.so.6", 0x0303), "/lib/x86_64-linux-gnu/libc.so.6") == 0,
			  "%s: libc.so.6 (not the i386 entry)", files[f]);
		CHECK(strcmp(NxLdCacheLookup(&c, "libc.so.6", 0x0003), "/lib32/libc.so.6") == 0,
			  "%s: libc.so.6 for i386 flags", files[f]);
		libm = NxLdCacheLookup(&c, "libm.so.6", 0x0303);
		/* the old format has no hwcap: its first libm entry is taken */
		CHECK(libm != NULL && strcmp(libm, f == 1
									 ? "/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libm.so.6"
									 : "/lib/x86_64-linux-gnu/libm.so.6") == 0,
			  "%s: libm.so.6 is %s", files[f], libm ? libm : "(null)");
		CHECK(strcmp(NxLdCacheLookup(&c, "libnxhidden.so.1", 0x0303),
					 "/opt/nx-test/lib/libnxhidden.so.1") == 0 &&
			  strcmp(NxLdCacheLookup(&c, "libz.so.1", 0x0303),
					 "/usr/lib/x86_64-linux-gnu/libz.so.1") == 0, "%s: first and last", files[f]);
		CHECK(NxLdCacheLookup(&c, "libnone.so.1", 0x0303) == NULL &&
			  NxLdCacheLookup(&c, "libz.so.1", 0x0a03) == NULL &&
			  NxLdCacheLookup(&c, "", 0x0303) == NULL, "%s: misses", files[f]);
		/* every truncation and every byte flipped: no crash */
		for (size_t cut = 0; cut < len; cut++)
			if (NxLdCacheOpen(&c, buf, cut, err, sizeof(err)))
				(void) NxLdCacheLookup(&c, "libm.so.6", 0x0303);
		for (size_t i = 0; i < len; i++)
		{
			unsigned char save = buf[i];

			buf[i] ^= 0xff;
			if (NxLdCacheOpen(&c, buf, len, err, sizeof(err)))
				(void) NxLdCacheLookup(&c, "libm.so.6", 0x0303);
			buf[i] = save;
		}
		free(buf);
	}
	CHECK(!NxLdCacheOpen(&c, (const unsigned char *) "not a cache at all", 18, err, sizeof(err)) &&
		  strstr(err, "unknown magic") != NULL, "not a cache: %s", err);
	CHECK(NxLdCacheCompare("libfoo.so.10", "libfoo.so.9") > 0 &&
		  NxLdCacheCompare("libfoo.so.1", "libfoo.so.1") == 0 &&
		  NxLdCacheCompare("liba", "libb") < 0, "numeric order");

	/* this host's cache: every ordinary entry of the loader's own kind is
	 * found by its name (to the first such entry of that name) */
	buf = read_whole("/etc/ld.so.cache", &len);
	CHECK(NxLdCacheOpen(&c, buf, len, err, sizeof(err)), "/etc/ld.so.cache opens: %s", err);
	for (uint32_t i = 0; i < c.nlibs; i++)
	{
		NxLdCacheEntry e;
		const char *found;

		NxLdCacheGet(&c, i, &e);
		if (e.name == NULL || e.path == NULL || e.flags != NX_LDCACHE_HOST_FLAGS || e.hwcap != 0)
			continue;
		found = NxLdCacheLookup(&c, e.name, NX_LDCACHE_HOST_FLAGS);
		CHECK(found != NULL, "host cache: %s found", e.name);
		checked++;
	}
	CHECK(checked > 10, "host cache has entries (%d)", checked);
	free(buf);
}

/* ---------- the library check on a fake root */

/* cache_sort: descending, as ldconfig writes the cache */
typedef struct FakeEntry
{
	const char *name;
	const char *path;
} FakeEntry;

static int
cache_sort(const void *a, const void *b)
{
	return -NxLdCacheCompare(((const FakeEntry *) a)->name, ((const FakeEntry *) b)->name);
}

/* write_cache: root + /etc/ld.so.cache with these entries (new format) */
static void
write_cache(FakeEntry *e, int n)
{
	unsigned char buf[8192];
	size_t		pos = 48 + (size_t) n * 24;

	qsort(e, (size_t) n, sizeof(*e), cache_sort);
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "glibc-ld.so.cache1.1", 20);
	buf[20] = (unsigned char) n;
	buf[28] = 2;
	for (int i = 0; i < n; i++)
	{
		unsigned char *ent = buf + 48 + i * 24;
		uint32_t	key = (uint32_t) pos,
					value;

		memcpy(buf + pos, e[i].name, strlen(e[i].name) + 1);
		pos += strlen(e[i].name) + 1;
		value = (uint32_t) pos;
		memcpy(buf + pos, e[i].path, strlen(e[i].path) + 1);
		pos += strlen(e[i].path) + 1;
		ent[0] = NX_LDCACHE_HOST_FLAGS & 0xff;
		ent[1] = NX_LDCACHE_HOST_FLAGS >> 8;
		for (int k = 0; k < 4; k++)
		{
			ent[4 + k] = (unsigned char) (key >> (8 * k));
			ent[8 + k] = (unsigned char) (value >> (8 * k));
		}
	}
	put("/etc/ld.so.cache", buf, pos);
}

/* A binary described by hand, as NxElfRead would describe it. */
static NxElfInfo bin;
static const char *interp_path;

static void
bin_reset(void)
{
	memset(&bin, 0, sizeof(bin));
	bin.has_interpreter = true;
	bin.interpreter.ptr = interp_path;
	bin.interpreter.len = strlen(interp_path);
}

static void
bin_need(const char *name)
{
	bin.needed[bin.n_needed].ptr = name;
	bin.needed[bin.n_needed++].len = strlen(name);
}

static void
bin_runpath(const char *list, bool rpath)
{
	bin.runpath[bin.n_runpath].ptr = list;
	bin.runpath[bin.n_runpath].len = strlen(list);
	bin.runpath_is_rpath[bin.n_runpath++] = rpath;
}

static void
bin_version(const char *file, const char *version, uint32_t hash, bool weak)
{
	NxElfVersionNeed *v = &bin.verneed[bin.n_verneed++];

	v->file.ptr = file;
	v->file.len = strlen(file);
	v->version.ptr = version;
	v->version.len = strlen(version);
	v->hash = hash;
	v->weak = weak;
}

/* run: the check on bin against the fake root */
static void
run(const char *what)
{
	NxHostOps	ops;
	NxLibEnv	env;
	char		p[512];
	size_t		len;
	unsigned char *cache;

	snprintf(p, sizeof(p), "%s/etc/ld.so.cache", root);
	cache = read_whole(p, &len);
	NxHostPosixOps(&ops, root);
	memset(&env, 0, sizeof(env));
	env.ops = &ops;
	env.app_name = "app";
	env.machine = NX_ELF_HOST_MACHINE;
	env.cache = cache;
	env.cache_len = len;
	env.platform = "x86_64";
	NxLibCheckRun(&env, &bin, work);
	if (verbose)
	{
		printf("%s:\n", what);
		for (int i = 0; i < work->n_objects; i++)
			printf("    object %s (%s)\n", NxLibString(work, work->objects[i].path),
				   NxLibString(work, work->objects[i].host_path));
		for (int i = 0; i < bin.n_problems; i++)
			printf("    [%d] %s\n        hint: %s\n", bin.problems[i].code,
				   bin.problems[i].message, NxElfHint(&bin, NX_ELF_HOST_MACHINE));
	}
	free(cache);
}

/* expect: exactly one problem, of code, whose message is message */
#define EXPECT_ONE(what, c, m) \
	CHECK(bin.n_problems == 1 && bin.problems[0].code == (c) && \
		  strcmp(bin.problems[0].message, (m)) == 0, \
		  "%s: got %d problem(s): %s", (what), bin.n_problems, \
		  bin.n_problems ? bin.problems[0].message : "(none)")

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void) st;
	(void) flag;
	(void) ftw;
	return remove(path);
}

/* build_root: the fake host in a temporary directory */
static void
build_root(const char *seeds)
{
	char		p[1024];
	size_t		len;
	unsigned char *seedlib;
	FakeEntry	entries[] = {
		{"libc.so.6", "/lib/" NX_LIB_MULTIARCH "/libc.so.6"},
		{"libnxseed.so.1", "/usr/local/lib/libnxseed.so.1"},
		{"libnxhidden.so.1", "/opt/nx-test/lib/libnxhidden.so.1"},
		{"libnxstale.so.1", "/usr/local/lib/libnxstale.so.1"},
		{"libnxbad.so.1", "/usr/local/lib/libnxbad.so.1"},
		{"libnxviasym.so.1", "/usr/local/lib/libnxviasym.so.1"},
	};

	snprintf(root, sizeof(root), "/tmp/nx-elf-test-XXXXXX");
	if (mkdtemp(root) == NULL)
	{
		perror("mkdtemp");
		exit(2);
	}
	/* this host's libc and loader, under /usr (merged /usr, as Debian) */
	copy("/lib/" NX_LIB_MULTIARCH "/libc.so.6", LIBDIR "/libc.so.6");
	snprintf(p, sizeof(p), "/usr%s", interp_path + (strncmp(interp_path, "/usr/", 5) == 0 ? 4 : 0));
	copy(interp_path, p);
	/* an absolute symlink inside /usr, resolved from the sandbox's root */
	link_to("/usr/lib/libnxabs.so.1", "/lib/" NX_LIB_MULTIARCH "/libc.so.6");
	/* one that leaves the view, and one that goes nowhere */
	link_to(LIBDIR "/libnxlink.so.1", "/opt/nx-test/lib/libnxhidden.so.1");
	link_to("/usr/local/lib/libnxviasym.so.1", "../../../opt/nx-test/lib/libnxhidden.so.1");

	snprintf(p, sizeof(p), "%s/versioned_lib.elf", seeds);
	seedlib = read_whole(p, &len);
	put("/usr/local/lib/libnxseed.so.1", seedlib, len);
	put("/opt/nx-test/lib/libnxhidden.so.1", seedlib, len);
	/* libnxtra.so.1 (in /usr/lib) needs libz.so.7, which is nowhere */
	patch(seedlib, len, "libc.so.6", "libz.so.7");
	patch(seedlib, len, "libnxseed.so.1", "libnxtra.so.1\0");
	put("/usr/lib/libnxtra.so.1", seedlib, len);
	free(seedlib);
	/* a libc that libnxseed's DT_RPATH $ORIGIN/../lib finds first */
	copy("/lib/" NX_LIB_MULTIARCH "/libc.so.6", "/usr/local/lib/libc.so.6");

	{
		unsigned char padded[64] = {0};
		unsigned char *e32;

		snprintf(p, sizeof(p), "%s/elf32.elf", seeds);
		e32 = read_whole(p, &len);
		memcpy(padded, e32, len < 64 ? len : 64);
		put("/usr/lib/libnx32.so.1", padded, sizeof(padded));
		free(e32);
	}
	snprintf(p, sizeof(p), "%s/text.txt", seeds);
	copy(p, "/usr/local/lib/libnxbad.so.1");
	write_cache(entries, (int) (sizeof(entries) / sizeof(entries[0])));
}

void
test_libcheck(const char *seeds)
{
	const char *host_interp = NULL;
	size_t		len;
	unsigned char *buf;
	NxElfInfo  *info = calloc(1, sizeof(NxElfInfo));
	static char interp[256];
	const NxElfProblem *p;

	/* the dynamic loader of this host's /usr/bin/true */
	buf = read_whole("/usr/bin/true", &len);
	if (NxElfRead(buf, len, NX_ELF_HOST_MACHINE, info) && info->has_interpreter)
	{
		snprintf(interp, sizeof(interp), "%s", info->interpreter.ptr);
		host_interp = interp;
	}
	free(buf);
	free(info);
	CHECK(host_interp != NULL, "/usr/bin/true has an interpreter");
	if (host_interp == NULL)
		return;
	interp_path = host_interp;
	build_root(seeds);

	/* libc through the cache, a library in /usr/local/lib through the
	 * cache, their versions, the interpreter through /lib64 -> /usr/lib64 */
	bin_reset();
	bin_need("libc.so.6");
	bin_need("libnxseed.so.1");
	bin_version("libc.so.6", "GLIBC_2.2.5", elf_hash("GLIBC_2.2.5"), false);
	bin_version("libnxseed.so.1", "NXSEED_1.1", elf_hash("NXSEED_1.1"), false);
	run("reachable");
	CHECK(bin.n_problems == 0 && work->interpreter_found && work->n_objects == 4 &&
		  work->n_missing == 0 && work->n_missing_versions == 0 && !work->incomplete,
		  "reachable: %d problems (%s), %d objects", bin.n_problems,
		  bin.n_problems ? bin.problems[0].message : "", work->n_objects);
	CHECK(strcmp(NxLibString(work, work->objects[2].path), "/lib/" NX_LIB_MULTIARCH "/libc.so.6") == 0 &&
		  strcmp(NxLibString(work, work->objects[2].host_path), LIBDIR "/libc.so.6") == 0 &&
		  strcmp(NxLibString(work, work->objects[3].path), "/usr/local/lib/libnxseed.so.1") == 0,
		  "reachable: where they were found");

	/* a library whose cache entry is in a directory the sandbox lacks */
	bin_reset();
	bin_need("libnxhidden.so.1");
	run("hidden");
	EXPECT_ONE("hidden", NX_ELF_LIBRARY_MISSING,
			   "library libnxhidden.so.1 cannot be loaded in the sandbox: found in /opt/nx-test/lib (listed in /etc/ld.so.cache) but the sandbox does not see that directory");
	CHECK(work->n_missing == 1 && strcmp(NxLibString(work, work->missing[0]), "libnxhidden.so.1") == 0,
		  "hidden: missing_libraries");

	/* not anywhere */
	bin_reset();
	bin_need("libnxmissing.so.1");
	run("missing");
#if defined(__x86_64__)
	EXPECT_ONE("missing", NX_ELF_LIBRARY_MISSING,
			   "library libnxmissing.so.1 is not found anywhere: not in /etc/ld.so.cache, nor in /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib or /usr/lib");
#endif
	CHECK(strcmp(NxElfHint(&bin, NX_ELF_HOST_MACHINE),
				 "link statically (CGO_ENABLED=0, -static, or a musl target) or install the missing files on the server") == 0,
		  "missing: hint");

	/* RUNPATH $ORIGIN: the sandbox's /app has nothing else */
	bin_reset();
	bin_need("libnxorigin.so.1");
	bin_runpath("$ORIGIN/lib", false);
	run("origin");
	EXPECT_ONE("origin", NX_ELF_LIBRARY_MISSING,
			   "library libnxorigin.so.1 cannot be loaded in the sandbox: RUNPATH $ORIGIN/lib: the sandbox's /app holds only the binary");

	/* ${ORIGIN}, and a RUNPATH the sandbox does not see */
	bin_reset();
	bin_need("libnxorigin.so.1");
	bin_runpath("${ORIGIN}/lib:/opt/foo/lib", false);
	run("origin braces");
	CHECK(bin.n_problems == 1 &&
		  strstr(bin.problems[0].message, "RUNPATH ${ORIGIN}/lib: the sandbox's /app holds only the binary; RUNPATH /opt/foo/lib: the sandbox does not see that directory") != NULL,
		  "origin braces: %s", bin.n_problems ? bin.problems[0].message : "(none)");

	/* $ORIGIN of a library is its directory: libnxseed finds libc.so.6
	 * through its DT_RPATH $ORIGIN/../lib, in /usr/local/lib, before the
	 * cache */
	bin_reset();
	bin_need("libnxseed.so.1");
	run("library rpath");
	CHECK(bin.n_problems == 0 && work->n_objects == 4 &&
		  strcmp(NxLibString(work, work->objects[3].path), "/usr/local/lib/../lib/libc.so.6") == 0,
		  "library rpath: %d problems (%s), %d objects", bin.n_problems,
		  bin.n_problems ? bin.problems[0].message : "", work->n_objects);

	/* a library's own missing dependency, and its missing version */
	bin_reset();
	bin_need("libnxtra.so.1");
	run("transitive");
	CHECK(bin.n_problems == 1 && bin.problems[0].code == NX_ELF_LIBRARY_MISSING &&
		  strstr(bin.problems[0].message, "library libz.so.7 (needed by libnxtra.so.1) is not found anywhere: not in RPATH $ORIGIN/../lib, /etc/ld.so.cache, nor in ") == bin.problems[0].message &&
		  work->n_missing == 1, "transitive: %s", bin.n_problems ? bin.problems[0].message : "(none)");

	/* a symlink in a visible directory that leads out of the view */
	bin_reset();
	bin_need("libnxlink.so.1");
	run("symlink out");
	EXPECT_ONE("symlink out", NX_ELF_LIBRARY_MISSING,
			   "library libnxlink.so.1 cannot be loaded in the sandbox: /lib/" NX_LIB_MULTIARCH "/libnxlink.so.1 leads to /opt/nx-test/lib/libnxhidden.so.1, which the sandbox does not see");
	bin_reset();
	bin_need("libnxviasym.so.1");
	run("cache symlink out");
	CHECK(bin.n_problems == 1 &&
		  strstr(bin.problems[0].message, ": /usr/local/lib/libnxviasym.so.1 (listed in /etc/ld.so.cache) leads to /opt/nx-test/lib/libnxhidden.so.1, which the sandbox does not see") != NULL,
		  "cache symlink out: %s", bin.n_problems ? bin.problems[0].message : "(none)");

	/* an absolute symlink inside /usr is the same file as libc */
	bin_reset();
	bin_need("libc.so.6");
	bin_need("libnxabs.so.1");
	run("absolute symlink");
	CHECK(bin.n_problems == 0 && work->n_objects == 3, "absolute symlink: %d problems, %d objects",
		  bin.n_problems, work->n_objects);

	/* a stale cache entry, a 32-bit library, a damaged one */
	bin_reset();
	bin_need("libnxstale.so.1");
	run("stale");
	EXPECT_ONE("stale", NX_ELF_LIBRARY_MISSING,
			   "library libnxstale.so.1 cannot be loaded in the sandbox: /etc/ld.so.cache lists /usr/local/lib/libnxstale.so.1, which does not exist (run ldconfig)");
	bin_reset();
	bin_need("libnx32.so.1");
	run("32-bit");
	EXPECT_ONE("32-bit", NX_ELF_LIBRARY_MISSING,
			   "library libnx32.so.1 cannot be loaded in the sandbox: /lib/libnx32.so.1 is a 32-bit library");
	bin_reset();
	bin_need("libnxbad.so.1");
	run("damaged");
	EXPECT_ONE("damaged", NX_ELF_LIBRARY_MISSING,
			   "library libnxbad.so.1 cannot be loaded in the sandbox: /usr/local/lib/libnxbad.so.1 (listed in /etc/ld.so.cache) is too short to be an ELF file");

	/* names with a slash */
	bin_reset();
	bin_need("/usr/local/lib/libnxseed.so.1");
	bin_need("lib/libnxrel.so");
	run("slash");
	EXPECT_ONE("slash", NX_ELF_LIBRARY_MISSING,
			   "library lib/libnxrel.so cannot be loaded in the sandbox: lib/libnxrel.so: the sandbox's /tmp holds no libraries when the app starts");

	/* -z nodefaultlib: no cache, no default directories */
	bin_reset();
	bin_need("libc.so.6");
	bin.nodeflib = true;
	run("nodeflib");
	CHECK(bin.n_problems == 1 && strstr(bin.problems[0].message, "-z nodefaultlib") != NULL,
		  "nodeflib: %s", bin.n_problems ? bin.problems[0].message : "(none)");

	/* GLIBC_2.99, with its hint; a weak one is fine */
	bin_reset();
	bin_need("libc.so.6");
	bin_version("libc.so.6", "GLIBC_2.2.5", elf_hash("GLIBC_2.2.5"), false);
	bin_version("libc.so.6", "GLIBC_2.99", elf_hash("GLIBC_2.99"), false);
	bin_version("libc.so.6", "GLIBC_2.98", elf_hash("GLIBC_2.98"), true);
	run("glibc 2.99");
	p = &bin.problems[0];
	CHECK(bin.n_problems == 1 && p->code == NX_ELF_VERSION_MISSING &&
		  strncmp(p->message, "the binary needs GLIBC_2.99 from libc.so.6, which this host's /lib/" NX_LIB_MULTIARCH "/libc.so.6 does not define (its newest is GLIBC_2.", 112) == 0,
		  "glibc 2.99: %s", bin.n_problems ? p->message : "(none)");
	CHECK(strncmp(NxElfHint(&bin, NX_ELF_HOST_MACHINE),
				  "built against glibc 2.99; this host has glibc 2.", 48) == 0 &&
		  strstr(NxElfHint(&bin, NX_ELF_HOST_MACHINE), "or older, or link statically") != NULL,
		  "glibc 2.99 hint: %s", NxElfHint(&bin, NX_ELF_HOST_MACHINE));
	CHECK(work->n_missing_versions == 1 &&
		  strcmp(NxLibString(work, work->missing_versions[0]), "libc.so.6 (GLIBC_2.99)") == 0,
		  "glibc 2.99: missing_versions");

	/* another library's version family, and a hash that does not match */
	bin_reset();
	bin_need("libnxseed.so.1");
	bin_version("libnxseed.so.1", "NXSEED_2.0", elf_hash("NXSEED_2.0"), false);
	bin_version("libnxseed.so.1", "NXSEED_1.0", 12345, false);
	run("other versions");
	CHECK(bin.n_problems == 2 &&
		  strstr(bin.problems[0].message, "with hash 0x00003039, but this host's /usr/local/lib/libnxseed.so.1 defines it with hash") != NULL &&
		  strcmp(bin.problems[1].message, "the binary needs NXSEED_2.0 from libnxseed.so.1, which this host's /usr/local/lib/libnxseed.so.1 does not define (its newest is NXSEED_1.1)") == 0 &&
		  strcmp(bin.problems[1].hint, "built against a newer libnxseed.so.1 (NXSEED_2.0; this host has NXSEED_1.1): build against the version this host has, or link it statically") == 0,
		  "other versions: %d: %s / %s", bin.n_problems, bin.n_problems > 0 ? bin.problems[0].message : "",
		  bin.n_problems > 1 ? bin.problems[1].message : "");

	/* versions from a library the binary does not load */
	bin_reset();
	bin_version("libnxnot.so.1", "NOT_1", elf_hash("NOT_1"), false);
	run("not loaded");
	EXPECT_ONE("not loaded", NX_ELF_VERSION_MISSING,
			   "the binary needs NOT_1 from libnxnot.so.1, but loads no library of that name");

	/* a hostile RUNPATH cannot make the check slow: it stops, incomplete */
	{
		char	   *many = malloc(300001);

		memset(many, ':', 300000);
		many[300000] = '\0';
		bin_reset();
		bin_need("libnxmissing.so.1");
		bin_runpath(many, false);
		run("budget");
		CHECK(work->incomplete && strstr(work->note, "too many places") != NULL &&
			  bin.n_problems == 0, "budget: incomplete (%s), %d problems", work->note,
			  bin.n_problems);
		free(many);
	}

	/* the interpreter: missing, outside the view */
	interp_path = "/lib64/ld-linux-x86-64.so.9";
	bin_reset();
	run("interpreter missing");
	EXPECT_ONE("interpreter missing", NX_ELF_INTERPRETER_MISSING,
			   "dynamic loader /lib64/ld-linux-x86-64.so.9 does not exist on this host");
	CHECK(!work->interpreter_found, "interpreter missing: not found");
	interp_path = "/opt/ld.so";
	bin_reset();
	run("interpreter hidden");
	EXPECT_ONE("interpreter hidden", NX_ELF_INTERPRETER_MISSING,
			   "dynamic loader /opt/ld.so is outside /usr and /lib, where sandboxes cannot see it");
	interp_path = host_interp;

	/* the view itself */
	{
		NxHostOps	ops;
		NxViewResult *v = &work->view;

		NxHostPosixOps(&ops, root);
		/* .. after a symlink is the target's parent, as for the kernel */
		NxViewResolve(&ops, "/lib/../lib64/./../../opt/x", v);
		CHECK(v->kind == NX_VIEW_HIDDEN && strcmp(v->where, "/opt/x") == 0,
			  "view: .. to the root: %d %s", v->kind, v->where);
		NxViewResolve(&ops, "/lib/../opt/x", v);
		CHECK(v->kind == NX_VIEW_MISSING && strcmp(v->where, "/usr/opt") == 0,
			  "view: /lib/.. is /usr: %d %s", v->kind, v->where);
		NxViewResolve(&ops, "/app/../lib", v);
		CHECK(v->kind == NX_VIEW_DIR && strcmp(v->host_path, "/usr/lib") == 0,
			  "view: /app/.. is the root: %d %s", v->kind, v->host_path);
		NxViewResolve(&ops, "/app", v);
		CHECK(v->kind == NX_VIEW_APP && strcmp(v->where, "/app") == 0, "view: /app itself");
		NxViewResolve(&ops, "/usr/local/lib/libnxseed.so.1/x", v);
		CHECK(v->kind == NX_VIEW_MISSING, "view: a file as a directory");
		NxViewResolve(&ops, "/lib", v);
		CHECK(v->kind == NX_VIEW_DIR && strcmp(v->host_path, "/usr/lib") == 0, "view: /lib");
		NxViewResolve(&ops, "/app/x", v);
		CHECK(v->kind == NX_VIEW_APP, "view: /app");
		NxViewResolve(&ops, "/proc/self/exe", v);
		CHECK(v->kind == NX_VIEW_EMPTY && strcmp(v->where, "/proc") == 0, "view: /proc");
	}

	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(work);
	free(lib);
}
