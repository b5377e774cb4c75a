/*
 * src/api/verify.c
 *	  nx.verify_binary and nx._require_runnable: can this pushed file run on
 *	  this host, and if not, why and how to fix it.
 *
 * The ELF reader (src/elf/) judges the bytes; this file adds what only the
 * server can know: the size limit, whether the interpreter and the
 * libraries the binary names exist here (and would be visible inside a
 * sandbox, which sees only /usr and the /lib directories), and the sha256
 * that names the blob.
 *
 * Glossary:
 *	  report	one row of type nx.binary_report describing a file.
 *	  visible	under a directory the sandbox mounts: /usr, /lib, /lib64.
 */
#include "compat.h"

#include <sys/stat.h>
#include <unistd.h>

#include "common/cryptohash.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "funcapi.h"
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "nx_elf.h"
#include "nx_sandbox.h"

PG_FUNCTION_INFO_V1(nx_verify_binary);
PG_FUNCTION_INFO_V1(nx_require_runnable);

#if defined(__x86_64__)
#define MULTIARCH "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define MULTIARCH "aarch64-linux-gnu"
#else
#define MULTIARCH "riscv64-linux-gnu"
#endif

/* Where the dynamic loader looks by default, in its order. */
static const char *const library_dirs[] = {
	"/lib/" MULTIARCH, "/usr/lib/" MULTIARCH, "/lib64", "/usr/lib64",
	"/lib", "/usr/lib", NULL
};

/* The report's columns, in the order of type nx.binary_report. */
enum
{
	COL_OK, COL_PROBLEMS, COL_HINT, COL_ELF_CLASS, COL_MACHINE,
	COL_FILE_TYPE, COL_PIE, COL_LINKAGE, COL_INTERPRETER,
	COL_INTERPRETER_FOUND, COL_NEEDED, COL_MISSING_LIBRARIES, COL_SIZE,
	COL_SHA256, NUM_COLS
};

/* BinaryCheck: everything known about one file. */
typedef struct BinaryCheck
{
	NxElfInfo	elf;
	bool		elf_ok;			/* NxElfRead found no problem */
	bool		interpreter_found;
	List	   *missing;		/* char * library names not found */
	char		sha256[PG_SHA256_DIGEST_STRING_LENGTH];
} BinaryCheck;

/*
 * IsVisiblePath: an absolute path, free of "..", under a directory every
 * sandbox mounts.  Paths elsewhere are reported without being looked at, so
 * verify_binary cannot be used to probe which host files exist.
 */
static bool
IsVisiblePath(const char *path)
{
	static const char *const prefixes[] = {"/usr/", "/lib/", "/lib64/", NULL};

	if (path[0] != '/' || strstr(path, "/../") != NULL ||
		strstr(path, "/./") != NULL)
		return false;
	for (int i = 0; prefixes[i]; i++)
		if (strncmp(path, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

/* FileExists: a regular file (after symlinks) at a visible path. */
static bool
FileExists(const char *path)
{
	struct stat st;

	return IsVisiblePath(path) && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * LibraryExists looks a DT_NEEDED name up the way the loader would: in the
 * binary's absolute RUNPATH entries, then the default directories.  $ORIGIN
 * entries point next to the binary, where the sandbox has nothing else.
 */
static bool
LibraryExists(const NxElfInfo *elf, const char *name)
{
	char		path[MAXPGPATH];

	if (strchr(name, '/') != NULL)
		return FileExists(name);
	for (int r = 0; r < elf->n_runpath; r++)
	{
		char	   *list = pnstrdup(elf->runpath[r].ptr, elf->runpath[r].len);
		char	   *save = NULL;

		for (char *dir = strtok_r(list, ":", &save); dir;
			 dir = strtok_r(NULL, ":", &save))
		{
			if (snprintf(path, sizeof(path), "%s/%s", dir, name) < (int) sizeof(path) &&
				FileExists(path))
				return true;
		}
		pfree(list);
	}
	for (int i = 0; library_dirs[i]; i++)
	{
		snprintf(path, sizeof(path), "%s/%s", library_dirs[i], name);
		if (FileExists(path))
			return true;
	}
	return false;
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

	if (check->elf.has_interpreter)
	{
		char	   *interp = pnstrdup(check->elf.interpreter.ptr,
									  check->elf.interpreter.len);

		check->interpreter_found = FileExists(interp);
		if (!check->interpreter_found)
			NxElfAddProblem(&check->elf, NX_ELF_INTERPRETER_MISSING,
							IsVisiblePath(interp)
							? "dynamic loader %s does not exist on this host"
							: "dynamic loader %s is outside /usr and /lib, where sandboxes cannot see it",
							interp);
	}
	for (int i = 0; i < check->elf.n_needed; i++)
	{
		char	   *name = pnstrdup(check->elf.needed[i].ptr,
									check->elf.needed[i].len);

		if (!LibraryExists(&check->elf, name))
		{
			check->missing = lappend(check->missing, name);
			NxElfAddProblem(&check->elf, NX_ELF_LIBRARY_MISSING,
							"library %s is not installed on this host", name);
		}
	}
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

/* ReportTuple turns a BinaryCheck into one nx.binary_report row. */
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
	char	  **missing;
	int			n_missing = list_length(check->missing);
	const char *hint = NxElfHint(elf, NX_ELF_HOST_MACHINE);
	const char *machine;
	ListCell   *lc;
	int			i = 0;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	memset(nulls, 0, sizeof(nulls));

	for (i = 0; i < elf->n_problems; i++)
		problems[i] = elf->problems[i].message;
	for (i = 0; i < elf->n_needed; i++)
		needed[i] = pnstrdup(elf->needed[i].ptr, elf->needed[i].len);
	missing = palloc(sizeof(char *) * (n_missing > 0 ? n_missing : 1));
	i = 0;
	foreach(lc, check->missing)
		missing[i++] = lfirst(lc);

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
	values[COL_MISSING_LIBRARIES] = TextArray(missing, n_missing);
	nulls[COL_MISSING_LIBRARIES] = !elf64;
	values[COL_SIZE] = Int64GetDatum((int64) elf->size);
	values[COL_SHA256] = CStringGetTextDatum(check->sha256);

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
