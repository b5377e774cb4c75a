/*
 * src/api/disk.c
 *	  Is there room on disk for a pushed binary?  nx.push asks before it
 *	  stores a new blob.
 *
 * A new blob is written three times on the database server: into the
 * nx.blobs table (TOAST), into the write-ahead log, and by the supervisor
 * into $PGDATA/nx/blobs/<sha256>.  If the disk fills on the way, the
 * INSERT may fail cleanly (could not extend file), but the write-ahead log
 * cannot: PostgreSQL PANICs when it cannot create a WAL segment or write
 * a checkpoint, and a crash restart on a full disk fails the same way, so
 * the whole cluster (every sandbox, the router's route table) stays down
 * until someone frees space.  Measured before this check existed (data
 * directory on a 160 MB tmpfs, 117 MB free): a push of a 100 MB binary
 * failed cleanly with "could not extend file", but left the disk full of
 * the aborted transaction's pages and WAL; the next checkpoint PANICked,
 * and the crash restart could not write its end-of-recovery checkpoint,
 * so the cluster shut down.
 *
 * Glossary:
 *	  reserve	space always left free (NX_DISK_RESERVE): room for a few
 *				WAL segments and the other sessions' writes meanwhile
 */
#include "compat.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include "fmgr.h"
#include "miscadmin.h"

#include "nx_sandbox.h"

#define NX_DISK_RESERVE ((int64) 64 * 1024 * 1024)

PG_FUNCTION_INFO_V1(nx_check_disk_space);

/* Available returns the bytes an unprivileged writer may still use at path, or -1. */
static int64
Available(const char *path, dev_t *dev)
{
	struct statvfs vfs;
	struct stat st;

	if (statvfs(path, &vfs) != 0 || stat(path, &st) != 0)
		return -1;
	*dev = st.st_dev;
	return (int64) vfs.f_bavail * (int64) vfs.f_frsize;
}

/* RequireRoom raises disk_full unless where has need bytes available. */
static void
RequireRoom(const char *where, int64 avail, int64 need, int64 size, int copies)
{
	if (avail < 0 || avail >= need)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_DISK_FULL),
			 errmsg("not enough free disk space to store a binary of " INT64_FORMAT " bytes", size),
			 errdetail("The file system of %s has " INT64_FORMAT " bytes free; the binary needs about "
					   INT64_FORMAT ": %d times its size (%s) plus " INT64_FORMAT " MB always kept free.",
					   where, avail, need, copies,
					   copies == 3 ? "the nx.blobs table, the write-ahead log and the supervisor's copy"
					   : copies == 2 ? "the nx.blobs table and the supervisor's copy" : "the write-ahead log",
					   NX_DISK_RESERVE / (1024 * 1024)),
			 errhint("Free disk space on the database server, or push a smaller binary.")));
}

/*
 * nx_check_disk_space(size) raises disk_full (53100) when storing a new
 * blob of size bytes would leave less than the reserve free on the file
 * system of the data directory, or of pg_wal when that is another one.
 * Unknown free space (statvfs failing) lets the push go ahead.
 */
Datum
nx_check_disk_space(PG_FUNCTION_ARGS)
{
	int64		size = PG_GETARG_INT64(0);
	char		wal[MAXPGPATH];
	dev_t		data_dev = 0,
				wal_dev = 0;
	int64		data_avail = Available(DataDir, &data_dev);
	int64		wal_avail;

	snprintf(wal, sizeof(wal), "%s/pg_wal", DataDir);
	wal_avail = Available(wal, &wal_dev);
	if (size < 0)
		size = 0;
	if (wal_avail < 0 || wal_dev == data_dev)
		RequireRoom("the data directory", data_avail, 3 * size + NX_DISK_RESERVE, size, 3);
	else
	{
		RequireRoom("the data directory", data_avail, 2 * size + NX_DISK_RESERVE, size, 2);
		RequireRoom("pg_wal", wal_avail, size + NX_DISK_RESERVE, size, 1);
	}
	PG_RETURN_VOID();
}
