/*
 * src/api/verify.c
 *	  nx.verify_binary and nx._require_runnable: can this pushed file run on
 *	  this host, and if not, why and how to fix it.
 *
 * The ELF reader (src/elf/nx_elf.c) judges the bytes; this file adds what
 * only the server can know: the size limit, whether the sandbox's dynamic
 * loader would find the interpreter, every library and every symbol
 * version the binary needs (src/elf/nx_libcheck.c, run against this
 * host's /etc/ld.so.cache and /usr as a sandbox sees them), and the sha256
 * that names the blob.
 *
 * Host files are read through NxHostOps implemented here with
 * PostgreSQL's transient files (so an error cannot leak a descriptor),
 * each read bounded; only paths a sandbox sees (under /usr) and
 * /etc/ld.so.cache are ever opened.
 *
 * Glossary:
 *	  report	one row of type nx.binary_report describing a file.
 *	  visible	under a directory the sandbox mounts: /usr (with /lib,
 *				/lib64, /bin, /sbin as symlinks into it).
 */
#include "compat.h"

#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cryptohash.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "funcapi.h"
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "storage/fd.h"
#include "utils/array.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "nx_elf.h"
#include "nx_libcheck.h"
#include "nx_sandbox.h"

PG_FUNCTION_INFO_V1(nx_verify_binary);
PG_FUNCTION_INFO_V1(nx_require_runnable);

/* the largest /etc/ld.so.cache read (a real one is 20-200 kB) */
#define MAX_LDCACHE_SIZE (16 * 1024 * 1024)

/*
 * The report's columns, in the order of type nx.binary_report.
 * missing_versions came in 0.4.0: a catalog without it still works.
 */
enum
{
	COL_OK, COL_PROBLEMS, COL_HINT, COL_ELF_CLASS, COL_MACHINE,
	COL_FILE_TYPE, COL_PIE, COL_LINKAGE, COL_INTERPRETER,
	COL_INTERPRETER_FOUND, COL_NEEDED, COL_MISSING_LIBRARIES, COL_SIZE,
	COL_SHA256, COL_MISSING_VERSIONS, NUM_COLS
};

/* BinaryCheck: everything known about one file. */
typedef struct BinaryCheck
{
	NxElfInfo	elf;
	bool		elf_ok;			/* NxElfRead found no problem */
	bool		interpreter_found;
	List	   *missing;		/* char * library names not reachable */
	List	   *missing_versions;	/* char * "libc.so.6 (GLIBC_2.99)" */
	char		sha256[PG_SHA256_DIGEST_STRING_LENGTH];
} BinaryCheck;

/* ---------- NxHostOps over PostgreSQL's file functions */

/* PgLstat: lstat(2) (no descriptor needed), as NxHostOps.lstat */
static NxHostKind
PgLstat(void *ctx, const char *path, uint64_t *size)
{
	struct stat st;

	*size = 0;
	if (lstat(path, &st) != 0)
		return NX_HOST_MISSING;
	if (S_ISLNK(st.st_mode))
		return NX_HOST_SYMLINK;
	if (S_ISDIR(st.st_mode))
		return NX_HOST_DIR;
	if (!S_ISREG(st.st_mode))
		return NX_HOST_OTHER;
	*size = (uint64_t) st.st_size;
	return NX_HOST_FILE;
}

/* PgReadlink: readlink(2), NUL-terminated, as NxHostOps.readlink */
static int
PgReadlink(void *ctx, const char *path, char *buf, size_t len)
{
	ssize_t		n = len > 0 ? readlink(path, buf, len) : -1;

	if (n < 0 || (size_t) n >= len)
		return -1;
	buf[n] = '\0';
	return (int) n;
}

/*
 * PgOpen: a transient file (closed by PostgreSQL even if an error
 * intervenes), never following a final symlink: the view resolved those
 */
static int
PgOpen(void *ctx, const char *path)
{
	return OpenTransientFile(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | PG_BINARY);
}

/* PgPread: pg_pread until n bytes are in, as NxHostOps.pread */
static bool
PgPread(void *ctx, int handle, uint64_t off, void *buf, size_t n)
{
	size_t		done = 0;

	while (done < n)
	{
		ssize_t		r = pg_pread(handle, (char *) buf + done, n - done,
								 (off_t) (off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		done += (size_t) r;
	}
	return true;
}

/* PgClose: CloseTransientFile */
static void
PgClose(void *ctx, int handle)
{
	CloseTransientFile(handle);
}

static const NxHostOps pg_host_ops = {
	NULL, PgLstat, PgReadlink, PgOpen, PgPread, PgClose
};

/*
 * ReadLdCache reads the host's /etc/ld.so.cache (bound into every
 * sandbox) into palloc'd memory, or returns NULL when there is none (then
 * a sandbox has none either) or it is unreasonably large.
 */
static unsigned char *
ReadLdCache(size_t *len)
{
	int			fd = OpenTransientFile("/etc/ld.so.cache", O_RDONLY | PG_BINARY);
	struct stat st;
	unsigned char *buf = NULL;

	*len = 0;
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
		st.st_size <= MAX_LDCACHE_SIZE)
	{
		buf = palloc((Size) st.st_size);
		if (PgPread(NULL, fd, 0, buf, (size_t) st.st_size))
			*len = (size_t) st.st_size;
		else
		{
			pfree(buf);
			buf = NULL;
		}
	}
	else
		elog(DEBUG1, "nx_sandbox: /etc/ld.so.cache not used for the library check (not a regular file, or over %d bytes)",
			 MAX_LDCACHE_SIZE);
	CloseTransientFile(fd);
	return buf;
}

/*
 * CheckLibraries runs the loader model (src/elf/nx_libcheck.c) for a
 * dynamic binary: it adds the interpreter, library and version problems
 * to check->elf and fills the report's lists.
 */
static void
CheckLibraries(BinaryCheck *check)
{
	NxLibCheck *work;
	NxLibEnv	env;
	size_t		cache_len;

	if (!check->elf.has_interpreter)
		return;
	work = palloc0(sizeof(NxLibCheck));
	memset(&env, 0, sizeof(env));
	env.ops = &pg_host_ops;
	env.app_name = NULL;
	env.machine = NX_ELF_HOST_MACHINE;
	env.cache = ReadLdCache(&cache_len);
	env.cache_len = cache_len;
	env.platform = (const char *) getauxval(AT_PLATFORM);

	NxLibCheckRun(&env, &check->elf, work);

	check->interpreter_found = work->interpreter_found;
	for (int i = 0; i < work->n_missing; i++)
		check->missing = lappend(check->missing,
								 pstrdup(NxLibString(work, work->missing[i])));
	for (int i = 0; i < work->n_missing_versions; i++)
		check->missing_versions =
			lappend(check->missing_versions,
					pstrdup(NxLibString(work, work->missing_versions[i])));
	if (work->incomplete)
		elog(DEBUG1, "nx_sandbox: library check incomplete: %s", work->note);
	if (env.cache)
		pfree((void *) env.cache);
	pfree(work);
}

/* ComputeSha256 writes the lowercase hex digest of data into hex. */
static void
ComputeSha256(const unsigned char *data, size_t len, char *hex)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	uint8		digest[PG_SHA256_DIGEST_LENGTH];

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, data, len) < 0 ||
		pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute sha256: %s",
						pg_cryptohash_error(ctx))));
	pg_cryptohash_free(ctx);
	hex_encode((const char *) digest, sizeof(digest), hex);
	hex[PG_SHA256_DIGEST_LENGTH * 2] = '\0';
}

/*
 * CheckBinary fills *check for the bytes: the size limit first (so the
 * first problem of an oversized file says so), then the ELF reader, then
 * the host checks for what a well-formed dynamic binary needs.
 */
static void
CheckBinary(bytea *binary, BinaryCheck *check)
{
	const unsigned char *data = (const unsigned char *) VARDATA_ANY(binary);
	size_t		len = VARSIZE_ANY_EXHDR(binary);
	NxElfInfo	pre;

	memset(check, 0, sizeof(*check));
	memset(&pre, 0, sizeof(pre));
	if (len > (size_t) nx_max_binary_size)
		NxElfAddProblem(&pre, NX_ELF_TOO_LARGE,
						"binary is %zu bytes, over nx.max_binary_size (%d bytes)",
						len, nx_max_binary_size);
	check->elf_ok = NxElfRead(data, len, NX_ELF_HOST_MACHINE, &check->elf);

	/* keep the size problem in front of the reader's */
	if (pre.n_problems > 0)
	{
		NxElfInfo	merged = check->elf;

		merged.n_problems = 0;
		NxElfAddProblem(&merged, pre.problems[0].code, "%s",
						pre.problems[0].message);
		for (int i = 0; i < check->elf.n_problems; i++)
			NxElfAddProblem(&merged, check->elf.problems[i].code, "%s",
							check->elf.problems[i].message);
		check->elf = merged;
	}

	CheckLibraries(check);
	ComputeSha256(data, len, check->sha256);
}

/* TextArray builds a text[] from n C strings. */
static Datum
TextArray(char **items, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * (n > 0 ? n : 1));

	for (int i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(items[i]);
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

/* ListArray builds a text[] from a List of C strings. */
static Datum
ListArray(List *items)
{
	char	  **arr = palloc(sizeof(char *) * (list_length(items) + 1));
	ListCell   *lc;
	int			n = 0;

	foreach(lc, items)
		arr[n++] = lfirst(lc);
	return TextArray(arr, n);
}

/*
 * ReportTuple turns a BinaryCheck into one nx.binary_report row.  A
 * catalog older than 0.4.0 has no missing_versions column: the row then
 * has the columns the type has.
 */
static Datum
ReportTuple(FunctionCallInfo fcinfo, BinaryCheck *check)
{
	TupleDesc	tupdesc;
	Datum		values[NUM_COLS];
	bool		nulls[NUM_COLS];
	NxElfInfo  *elf = &check->elf;
	bool		elf64 = elf->is_elf && elf->elf_class == 64 && elf->little_endian;
	char	   *problems[NX_ELF_MAX_PROBLEMS];
	char	   *needed[NX_ELF_MAX_NEEDED];
	const char *hint = NxElfHint(elf, NX_ELF_HOST_MACHINE);
	const char *machine;
	int			i = 0;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	memset(nulls, 0, sizeof(nulls));

	for (i = 0; i < elf->n_problems; i++)
		problems[i] = elf->problems[i].message;
	for (i = 0; i < elf->n_needed; i++)
		needed[i] = pnstrdup(elf->needed[i].ptr, elf->needed[i].len);

	values[COL_OK] = BoolGetDatum(elf->n_problems == 0);
	values[COL_PROBLEMS] = TextArray(problems, elf->n_problems);
	values[COL_HINT] = hint ? CStringGetTextDatum(hint) : (Datum) 0;
	nulls[COL_HINT] = hint == NULL;
	if (elf->elf_class != 0)
		values[COL_ELF_CLASS] = CStringGetTextDatum(elf->elf_class == 64 ? "ELF64" : "ELF32");
	nulls[COL_ELF_CLASS] = elf->elf_class == 0;
	machine = NxElfMachineName(elf->machine);
	if (elf64)
		values[COL_MACHINE] = machine ? CStringGetTextDatum(machine)
			: CStringGetTextDatum(psprintf("machine %u", elf->machine));
	nulls[COL_MACHINE] = !elf64;
	values[COL_FILE_TYPE] = elf64 ? CStringGetTextDatum(NxElfFileType(elf)) : (Datum) 0;
	nulls[COL_FILE_TYPE] = !elf64;
	values[COL_PIE] = BoolGetDatum(elf->pie);
	nulls[COL_PIE] = !elf64;
	values[COL_LINKAGE] = elf64 ? CStringGetTextDatum(elf->is_static ? "static" : "dynamic") : (Datum) 0;
	nulls[COL_LINKAGE] = !elf64;
	if (elf->has_interpreter)
		values[COL_INTERPRETER] = PointerGetDatum(cstring_to_text_with_len(elf->interpreter.ptr,
																		   elf->interpreter.len));
	nulls[COL_INTERPRETER] = !elf->has_interpreter;
	values[COL_INTERPRETER_FOUND] = BoolGetDatum(check->interpreter_found);
	nulls[COL_INTERPRETER_FOUND] = !elf->has_interpreter;
	values[COL_NEEDED] = TextArray(needed, elf->n_needed);
	nulls[COL_NEEDED] = !elf64;
	values[COL_MISSING_LIBRARIES] = ListArray(check->missing);
	nulls[COL_MISSING_LIBRARIES] = !elf64;
	values[COL_SIZE] = Int64GetDatum((int64) elf->size);
	values[COL_SHA256] = CStringGetTextDatum(check->sha256);
	values[COL_MISSING_VERSIONS] = ListArray(check->missing_versions);
	nulls[COL_MISSING_VERSIONS] = !elf64;

	if (tupdesc->natts != NUM_COLS && tupdesc->natts != COL_MISSING_VERSIONS)
		elog(ERROR, "type nx.binary_report has %d columns, expected %d",
			 tupdesc->natts, NUM_COLS);
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

/* ProblemErrcode picks the SQLSTATE for a refused binary (docs/errors.md). */
static int
ProblemErrcode(NxElfProblemCode code)
{
	if (code == NX_ELF_TOO_LARGE)
		return ERRCODE_PROGRAM_LIMIT_EXCEEDED;
	switch (NxElfProblemKindOf(code))
	{
		case NX_ELF_KIND_MALFORMED:
			return ERRCODE_INVALID_BINARY_REPRESENTATION;
		case NX_ELF_KIND_UNSUPPORTED:
			return ERRCODE_FEATURE_NOT_SUPPORTED;
		case NX_ELF_KIND_HOST:
			return ERRCODE_UNDEFINED_FILE;
	}
	return ERRCODE_INVALID_PARAMETER_VALUE;
}

/*
 * nx_verify_binary(bytea) returns the report and never raises an error for
 * bad bytes: it is how a developer asks "would this run?".
 */
Datum
nx_verify_binary(PG_FUNCTION_ARGS)
{
	BinaryCheck check;

	CheckBinary(PG_GETARG_BYTEA_PP(0), &check);
	return ReportTuple(fcinfo, &check);
}

/*
 * nx_require_runnable(bytea) returns the same report, or refuses the file
 * with the first problem as the message, all of them in the detail, and
 * the hint.  nx.push calls it before storing anything.
 */
Datum
nx_require_runnable(PG_FUNCTION_ARGS)
{
	BinaryCheck check;
	StringInfoData detail;

	CheckBinary(PG_GETARG_BYTEA_PP(0), &check);
	if (check.elf.n_problems == 0)
		return ReportTuple(fcinfo, &check);

	initStringInfo(&detail);
	for (int i = 0; i < check.elf.n_problems; i++)
		appendStringInfo(&detail, "%s%s.", i > 0 ? "\n" : "",
						 check.elf.problems[i].message);
	ereport(ERROR,
			(errcode(ProblemErrcode(check.elf.problems[0].code)),
			 errmsg("binary cannot run on this host: %s",
					check.elf.problems[0].message),
			 errdetail_internal("%s", detail.data),
			 errhint("%s", NxElfHint(&check.elf, NX_ELF_HOST_MACHINE))));
	PG_RETURN_NULL();			/* not reached */
}
