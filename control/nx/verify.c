/*
 * control/nx/verify.c
 *	  nx verify FILE [--elf-only]: would this file run as an app?  The same
 *	  checks as the server, run locally, without connecting: the ELF reader
 *	  (src/elf/nx_elf.c) and, unless --elf-only, the library check
 *	  (src/elf/nx_libcheck.c) against this machine's /etc/ld.so.cache and
 *	  /usr as a sandbox here would see them: the dynamic loader, every
 *	  library (and theirs) and every symbol version.  The server repeats the
 *	  library check against its own host at push, which is what counts when
 *	  the client runs elsewhere.
 *
 * Glossary:
 *	  host check	the library check against this machine (nx_libcheck.h).
 */
#include "nx.h"
#include "nx_elf.h"
#include "nx_libcheck.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>

/* --- SHA-256 (FIPS 180-4), for the blob key the server would use */
static const uint32_t sha_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void
sha256_block(uint32_t *h, const unsigned char *p)
{
	uint32_t	w[64];
	uint32_t	a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];

	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t) p[4 * i] << 24 | (uint32_t) p[4 * i + 1] << 16 |
			(uint32_t) p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 64; i++)
	{
		uint32_t	s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t	s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);

		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	for (int i = 0; i < 64; i++)
	{
		uint32_t	t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + sha_k[i] + w[i];
		uint32_t	t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));

		hh = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
	h[5] += f;
	h[6] += g;
	h[7] += hh;
}

static void
sha256_hex(const unsigned char *data, size_t len, char *hex)
{
	uint32_t	h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	unsigned char tail[128];
	size_t		full = len / 64 * 64;
	size_t		rest = len - full;
	size_t		tlen = rest < 56 ? 64 : 128;
	uint64_t	bits = (uint64_t) len * 8;

	for (size_t off = 0; off < full; off += 64)
		sha256_block(h, data + off);
	memset(tail, 0, sizeof(tail));
	if (rest > 0)
		memcpy(tail, data + full, rest);
	tail[rest] = 0x80;
	for (int i = 0; i < 8; i++)
		tail[tlen - 1 - i] = (unsigned char) (bits >> (8 * i));
	for (size_t off = 0; off < tlen; off += 64)
		sha256_block(h, tail + off);
	for (int i = 0; i < 8; i++)
		sprintf(hex + 8 * i, "%08x", h[i]);
}

/* nx_read_file reads a whole file into a malloc'd buffer. */
bool
nx_read_file(const char *path, unsigned char **buf, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	size_t		cap = 1 << 20;
	size_t		n = 0;
	unsigned char *b;

	if (f == NULL)
		return false;
	b = malloc(cap);
	while (b != NULL)
	{
		size_t		got = fread(b + n, 1, cap - n, f);

		n += got;
		if (got == 0)
			break;
		if (n == cap)
		{
			unsigned char *nb = realloc(b, cap * 2);

			if (nb == NULL)
			{
				free(b);
				b = NULL;
				break;
			}
			b = nb;
			cap *= 2;
		}
	}
	if (b == NULL || ferror(f))
	{
		free(b);
		fclose(f);
		return false;
	}
	fclose(f);
	*buf = b;
	*len = n;
	return true;
}

/* the largest /etc/ld.so.cache read (a real one is 20-200 kB) */
#define MAX_LDCACHE_SIZE (16 * 1024 * 1024)

/*
 * host_check runs the library check of a dynamic binary against this
 * machine, adding its problems to *elf; returns the work area (for the
 * report's lists; the caller frees it), or NULL when out of memory.
 */
static NxLibCheck *
host_check(const char *file, NxElfInfo *elf)
{
	NxLibCheck *work = calloc(1, sizeof(NxLibCheck));
	NxHostOps	ops;
	NxLibEnv	env;
	unsigned char *cache = NULL;
	size_t		cache_len = 0;
	struct stat st;
	const char *base = strrchr(file, '/');

	if (work == NULL)
		return NULL;
	if (stat("/etc/ld.so.cache", &st) == 0 && S_ISREG(st.st_mode) &&
		st.st_size <= MAX_LDCACHE_SIZE &&
		!nx_read_file("/etc/ld.so.cache", &cache, &cache_len))
		cache = NULL;
	NxHostPosixOps(&ops, NULL);
	memset(&env, 0, sizeof(env));
	env.ops = &ops;
	env.app_name = base ? base + 1 : file;
	env.machine = NX_ELF_HOST_MACHINE;
	env.cache = cache;
	env.cache_len = cache ? cache_len : 0;
	env.platform = (const char *) getauxval(AT_PLATFORM);
	NxLibCheckRun(&env, elf, work);
	free(cache);
	return work;
}

/* json_list prints a JSON array of the work area's pool strings */
static void
json_list(const NxLibCheck *work, const uint32_t *items, int n)
{
	fputs("[", stdout);
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			fputs(", ", stdout);
		nx_json_string(stdout, NxLibString(work, items[i]));
	}
	fputs("]", stdout);
}

static void
json_key(const char *key, bool first)
{
	if (!first)
		fputs(", ", stdout);
	nx_json_string(stdout, key);
	fputs(": ", stdout);
}

static void
json_nstring(const NxElfString *s)
{
	char	   *tmp = strndup(s->ptr, s->len);

	nx_json_string(stdout, tmp ? tmp : "");
	free(tmp);
}

int
cmd_verify(int argc, char **argv)
{
	const char *file = NULL;
	bool		elf_only = false;
	NxLibCheck *work = NULL;
	unsigned char *buf;
	size_t		len;
	NxElfInfo  *elf = calloc(1, sizeof(NxElfInfo));
	bool		ok;
	bool		elf64;
	const char *hint;
	const char *machine;
	char		machine_buf[32];
	char		sha[65];

	for (int i = 1; i < argc; i++)
	{
		if (nx_opt_global(argc, argv, &i, "verify"))
			continue;
		if (nx_opt_flag(argv, i, "--elf-only"))
		{
			elf_only = true;
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			nx_reject_option("verify", argv[i]);
		if (file != NULL)
			nx_usage_error("verify", "too many arguments");
		file = argv[i];
	}
	if (file == NULL)
		nx_usage_error("verify", "missing argument FILE");
	if (!nx_read_file(file, &buf, &len))
	{
		nx_error("cannot read %s: %m", file);
		return NX_EXIT_USAGE;
	}
	ok = NxElfRead(buf, len, NX_ELF_HOST_MACHINE, elf);
	if (!elf_only && elf->has_interpreter)
	{
		work = host_check(file, elf);
		if (work == NULL)
		{
			nx_error("out of memory");
			return NX_EXIT_SERVER;
		}
		ok = elf->n_problems == 0;
	}
	hint = NxElfHint(elf, NX_ELF_HOST_MACHINE);
	elf64 = elf->is_elf && elf->elf_class == 64 && elf->little_endian;
	machine = NxElfMachineName(elf->machine);
	if (machine == NULL)
	{
		snprintf(machine_buf, sizeof(machine_buf), "machine %u", elf->machine);
		machine = machine_buf;
	}
	sha256_hex(buf, len, sha);

	if (nx_global.json)
	{
		fputs("{", stdout);
		json_key("file", true);
		nx_json_string(stdout, file);
		json_key("ok", false);
		fputs(ok ? "true" : "false", stdout);
		json_key("problems", false);
		fputs("[", stdout);
		for (int i = 0; i < elf->n_problems; i++)
		{
			if (i > 0)
				fputs(", ", stdout);
			nx_json_string(stdout, elf->problems[i].message);
		}
		fputs("]", stdout);
		json_key("hint", false);
		if (hint)
			nx_json_string(stdout, hint);
		else
			fputs("null", stdout);
		json_key("elf_class", false);
		fputs(elf->elf_class == 64 ? "\"ELF64\"" : elf->elf_class == 32 ? "\"ELF32\"" : "null", stdout);
		json_key("machine", false);
		if (elf64)
			nx_json_string(stdout, machine);
		else
			fputs("null", stdout);
		json_key("file_type", false);
		if (elf64)
			nx_json_string(stdout, NxElfFileType(elf));
		else
			fputs("null", stdout);
		json_key("pie", false);
		fputs(!elf64 ? "null" : elf->pie ? "true" : "false", stdout);
		json_key("linkage", false);
		fputs(!elf64 ? "null" : elf->is_static ? "\"static\"" : "\"dynamic\"", stdout);
		json_key("interpreter", false);
		if (elf->has_interpreter)
			json_nstring(&elf->interpreter);
		else
			fputs("null", stdout);
		json_key("needed", false);
		if (elf64)
		{
			fputs("[", stdout);
			for (int i = 0; i < elf->n_needed; i++)
			{
				if (i > 0)
					fputs(", ", stdout);
				json_nstring(&elf->needed[i]);
			}
			fputs("]", stdout);
		}
		else
			fputs("null", stdout);
		json_key("host_checked", false);
		fputs(work ? "true" : "false", stdout);
		json_key("interpreter_found", false);
		fputs(work ? (work->interpreter_found ? "true" : "false") : "null", stdout);
		json_key("missing_libraries", false);
		if (work)
			json_list(work, work->missing, work->n_missing);
		else
			fputs(elf64 ? "[]" : "null", stdout);
		json_key("missing_versions", false);
		if (work)
			json_list(work, work->missing_versions, work->n_missing_versions);
		else
			fputs(elf64 ? "[]" : "null", stdout);
		json_key("size", false);
		printf("%zu", len);
		json_key("sha256", false);
		nx_json_string(stdout, sha);
		fputs("}\n", stdout);
	}
	else
	{
		printf("%s: %s\n", file, ok ? "ok" : "cannot run here");
		for (int i = 0; i < elf->n_problems; i++)
			printf("  problem:     %s\n", elf->problems[i].message);
		if (hint)
			printf("  hint:        %s\n", hint);
		if (elf->elf_class)
			printf("  class:       ELF%d\n", elf->elf_class);
		if (elf64)
		{
			printf("  machine:     %s\n", machine);
			printf("  type:        %s\n", NxElfFileType(elf));
			printf("  linkage:     %s\n", elf->is_static ? "static" : "dynamic");
		}
		if (elf->has_interpreter)
			printf("  interpreter: %.*s\n", (int) elf->interpreter.len, elf->interpreter.ptr);
		for (int i = 0; elf64 && i < elf->n_needed; i++)
			printf("  needs:       %.*s\n", (int) elf->needed[i].len, elf->needed[i].ptr);
		for (int i = 0; work && i < work->n_missing; i++)
			printf("  missing:     %s\n", NxLibString(work, work->missing[i]));
		for (int i = 0; work && i < work->n_missing_versions; i++)
			printf("  no version:  %s\n", NxLibString(work, work->missing_versions[i]));
		if (work)
			printf("  libraries:   checked against this machine (the server checks its own at push)\n");
		printf("  size:        %zu bytes\n", len);
		printf("  sha256:      %s\n", sha);
	}
	fflush(stdout);
	if (!ok)
		nx_error("%s cannot run here: %s", file, elf->problems[0].message);
	free(buf);
	free(elf);
	free(work);
	return ok ? NX_EXIT_OK : NX_EXIT_REFUSED;
}
