/*
 * src/supervisor/files.c
 *	  The supervisor's files under $PGDATA/nx: blobs materialised from
 *	  nx.blobs (blobs/<sha256>, mode 0555, hash verified before use), one
 *	  run directory per running deployment (run/d<id>, nx-init's hand-off
 *	  socket), and the deployments' logs (logs/d<id>.log, rotated once at
 *	  nx.log_size into d<id>.log.1).
 *
 * All of it is derived state (I2): deleting $PGDATA/nx loses nothing the
 * next pass cannot rebuild except old log lines.
 */
#include "files.h"
#include "nx_handoff.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"

/* NxStateDirPath: $PGDATA/nx/<sub>[/<name>] */
void
NxStateDirPath(char *path, const char *sub, const char *name)
{
	if (name)
		snprintf(path, MAXPGPATH, "%s/nx/%s/%s", DataDir, sub, name);
	else
		snprintf(path, MAXPGPATH, "%s/nx/%s", DataDir, sub);
}

/* NxEnsureStateDirs creates $PGDATA/nx and its subdirectories. */
void
NxEnsureStateDirs(void)
{
	static const char *const subs[] = {"blobs", NX_RUN_DIR_NAME, "logs"};
	char		path[MAXPGPATH];

	snprintf(path, sizeof(path), "%s/nx", DataDir);
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		ereport(ERROR, (errcode_for_file_access(), errmsg("could not create \"%s\": %m", path)));
	for (size_t i = 0; i < lengthof(subs); i++)
	{
		NxStateDirPath(path, subs[i], NULL);
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			ereport(ERROR, (errcode_for_file_access(), errmsg("could not create \"%s\": %m", path)));
	}
}

/* FileSha256 computes the hex sha256 of a file; false on read errors. */
static bool
FileSha256(const char *path, char *hex)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char		buf[65536];
	ssize_t		n;
	int			fd = open(path, O_RDONLY | O_CLOEXEC);
	bool		ok = fd >= 0 && ctx != NULL && pg_cryptohash_init(ctx) == 0;

	while (ok && (n = read(fd, buf, sizeof(buf))) > 0)
		ok = pg_cryptohash_update(ctx, (uint8 *) buf, n) == 0;
	ok = ok && n == 0 && pg_cryptohash_final(ctx, digest, sizeof(digest)) == 0;
	if (fd >= 0)
		close(fd);
	pg_cryptohash_free(ctx);
	if (ok)
	{
		hex_encode((char *) digest, sizeof(digest), hex);
		hex[64] = '\0';
	}
	return ok;
}

/*
 * NxBlobPath returns the path of the blob's file, writing it from nx.blobs
 * first when it is missing (caller holds a transaction with SPI).  The
 * file is written under a temporary name, its hash checked, then renamed:
 * a file under the final name is always complete and correct.
 */
const char *
NxBlobPath(const char *sha256, char *err, size_t errlen)
{
	static char path[MAXPGPATH];
	char		tmp[MAXPGPATH];
	char		hex[65];
	Datum		arg = CStringGetTextDatum(sha256);
	Oid			argtype = TEXTOID;
	bool		isnull;
	bytea	   *bytes;
	int			fd;
	size_t		len;
	const char *data;

	NxStateDirPath(path, "blobs", sha256);
	if (access(path, R_OK) == 0)
		return path;

	if (SPI_execute_with_args("SELECT bytes FROM nx.blobs WHERE sha256 = $1",
							  1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
	{
		snprintf(err, errlen, "blob %s is not in nx.blobs", sha256);
		return NULL;
	}
	bytes = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	data = VARDATA_ANY(bytes);
	len = VARSIZE_ANY_EXHDR(bytes);

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int) MyProcPid);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
	{
		snprintf(err, errlen, "could not create %s: %s", tmp, strerror(errno));
		return NULL;
	}
	while (len > 0)
	{
		ssize_t		n = write(fd, data, len);

		if (n <= 0)
		{
			snprintf(err, errlen, "could not write %s: %s", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			return NULL;
		}
		data += n;
		len -= n;
	}
	if (fsync(fd) != 0 || close(fd) != 0)
	{
		snprintf(err, errlen, "could not write %s: %s", tmp, strerror(errno));
		unlink(tmp);
		return NULL;
	}
	if (!FileSha256(tmp, hex) || strcmp(hex, sha256) != 0)
	{
		snprintf(err, errlen, "blob file %s does not match its sha256", tmp);
		unlink(tmp);
		return NULL;
	}
	if (chmod(tmp, 0555) != 0 || rename(tmp, path) != 0)
	{
		snprintf(err, errlen, "could not install %s: %s", path, strerror(errno));
		unlink(tmp);
		return NULL;
	}
	return path;
}

/*
 * RemoveUnwantedFiles deletes every file of $PGDATA/nx/<sub> for which
 * wanted(name, arg) is false (hidden files are left alone).
 */
static void
RemoveUnwantedFiles(const char *sub, bool (*wanted) (const char *name, void *arg), void *arg)
{
	char		dir[MAXPGPATH];
	char		path[MAXPGPATH];
	DIR		   *d;
	struct dirent *e;

	NxStateDirPath(dir, sub, NULL);
	d = opendir(dir);
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL)
	{
		if (e->d_name[0] == '.' || wanted(e->d_name, arg))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
}

/* the wanted names or ids, sorted, for a binary search per file */
typedef struct WantedSet
{
	void	   *items;
	size_t		n;
	size_t		size;
	int			(*compare) (const void *, const void *);
} WantedSet;

/* CompareNames orders char * entries for qsort and bsearch. */
static int
CompareNames(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* CompareIds orders int64 entries for qsort and bsearch. */
static int
CompareIds(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : x > y;
}

/*
 * SortedSet copies a List (of char * when ids is false, of int64 * when
 * true) into a sorted array: with 1,000 deployments, a walk of the list
 * per file made a million comparisons a pass.
 */
static WantedSet
SortedSet(List *list, bool ids)
{
	WantedSet	set;
	ListCell   *lc;
	size_t		i = 0;

	set.n = list_length(list);
	set.size = ids ? sizeof(int64) : sizeof(char *);
	set.compare = ids ? CompareIds : CompareNames;
	set.items = palloc(set.size * Max(set.n, 1));
	foreach(lc, list)
	{
		if (ids)
			((int64 *) set.items)[i++] = *(int64 *) lfirst(lc);
		else
			((char **) set.items)[i++] = lfirst(lc);
	}
	if (set.n > 1)
		qsort(set.items, set.n, set.size, set.compare);
	return set;
}

/* InSet: is key (a char * or an int64, by address) in the set? */
static bool
InSet(const WantedSet *set, const void *key)
{
	return set->n > 0 && bsearch(key, set->items, set->n, set->size, set->compare) != NULL;
}

/* BlobWanted: is name one of the wanted sha256s? */
static bool
BlobWanted(const char *name, void *arg)
{
	return InSet(arg, &name);
}

/* NxBlobsRemoveUnwanted deletes blob files whose sha256 is not listed. */
void
NxBlobsRemoveUnwanted(List *wanted_sha256)
{
	WantedSet	set = SortedSet(wanted_sha256, false);

	RemoveUnwantedFiles("blobs", BlobWanted, &set);
	pfree(set.items);
}

/* NxLogOpen opens (appending) the deployment's log file. */
bool
NxLogOpen(NxLogFile *log, const char *key)
{
	struct stat st;

	NxStateDirPath(log->path, "logs", key);
	strlcat(log->path, ".log", sizeof(log->path));
	log->fd = open(log->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (log->fd < 0)
		return false;
	log->size = fstat(log->fd, &st) == 0 ? st.st_size : 0;
	return true;
}

/*
 * NxLogAppend writes output to the log, rotating first when it would pass
 * nx.log_size: the current file becomes .log.1 (replacing the older one).
 * Disk trouble never stops the supervisor: output is then dropped.
 */
void
NxLogAppend(NxLogFile *log, const char *data, size_t len)
{
	if (log->fd < 0)
		return;
	if (log->size + (int64) len > nx_log_size)
	{
		char		old[MAXPGPATH];

		snprintf(old, sizeof(old), "%s.1", log->path);
		close(log->fd);
		rename(log->path, old);
		log->fd = open(log->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
		log->size = 0;
		if (log->fd < 0)
			return;
	}
	if (write(log->fd, data, len) == (ssize_t) len)
		log->size += len;
}

/*
 * NxReadFileTail returns the last max_bytes bytes of a file (palloc'd,
 * NUL-terminated; all of it when shorter), or NULL when it cannot be
 * opened.  *cut, when given, says whether the file was longer.
 */
char *
NxReadFileTail(const char *path, int max_bytes, bool *cut)
{
	char	   *buf;
	int			fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t		end;
	ssize_t		n;

	if (fd < 0)
		return NULL;
	buf = palloc0(max_bytes + 1);
	end = lseek(fd, 0, SEEK_END);
	lseek(fd, end > max_bytes ? end - max_bytes : 0, SEEK_SET);
	n = read(fd, buf, max_bytes);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	if (cut)
		*cut = end > max_bytes;
	return buf;
}

/* NxLogClose closes the log file (it stays on disk for nx.logs). */
void
NxLogClose(NxLogFile *log)
{
	if (log->fd >= 0)
		close(log->fd);
	log->fd = -1;
}

/*
 * LogWanted: is name the log (d<id>.log or d<id>.log.1) of a wanted
 * deployment?  Files that are not logs are left alone.
 */
static bool
LogWanted(const char *name, void *arg)
{
	long long	id;
	const char *rest = NxParseDeploymentName(name, &id);
	int64		key = (int64) id;

	if (rest == NULL || (strcmp(rest, ".log") != 0 && strcmp(rest, ".log.1") != 0))
		return true;
	return InSet(arg, &key);
}

/*
 * NxLogsRemoveUnwanted deletes the logs of deployments that are not in
 * wanted_ids (int64 *): removed ones, and those of dropped sandboxes.
 */
void
NxLogsRemoveUnwanted(List *wanted_ids)
{
	WantedSet	set = SortedSet(wanted_ids, true);

	RemoveUnwantedFiles("logs", LogWanted, &set);
	pfree(set.items);
}
