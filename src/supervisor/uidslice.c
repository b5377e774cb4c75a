/*
 * src/supervisor/uidslice.c
 *	  Tenant uid slices (invariant I15, contract C6): each cluster on a host
 *	  runs its sandboxes in a slice of its own of the cluster OS user's
 *	  subordinate range, and a uid offset is used again only once nothing
 *	  runs as it any more.
 *
 * host uid of a sandbox = subuid start + slice start + uid_offset, with
 * 0 < uid_offset < slice size (nx.uid_slice_size; the gid likewise from the
 * subgid range).
 *
 * Claiming.  Clusters of one OS user share its range, so they agree on who
 * has which slice through a registry directory (nx.uid_slice_registry,
 * default ~/.nx_sandbox/uid_slices of the cluster's OS user): one lock file
 * per slice, named by its first and last host uid, held with flock() by the
 * supervisor that claimed it for as long as it runs.  The kernel drops the
 * lock with the process, so a crashed cluster's claim lapses by itself.
 * Claims are made under the registry's own lock (.lock), so two
 * supervisors starting together cannot take the same slice; a slice
 * overlapping one claimed with another slice size counts as taken.  A slice
 * is taken only when no process on the host runs as any uid in it (a
 * cluster of an older version, which claims nothing, or sandboxes of a
 * cluster that just died).  The supervisor prefers the slice recorded in
 * $PGDATA/nx/uid_slice (the one it used last), and records the one it got.
 *
 * Reuse.  nx.drop_sandbox records the dropped sandbox's offset in
 * nx.retired_uid_offsets, and nx.create_sandbox skips those; the supervisor
 * deletes a row once no slot runs with that offset and no process on the
 * host runs as its uid (NxRetiredOffsetsSweep).
 *
 * Glossary:
 *	  slice		[start, start + size) of offsets into the subordinate range.
 *	  registry	the directory of lock files every cluster of this OS user
 *				on this host shares.
 */
#include "files.h"
#include "slots.h"
#include "uidslice.h"
#include "userns_keep.h"
#include "userns_premap.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "sql_exec.h"

/* how long a claim waits for the registry's lock, and for leftovers */
#define REGISTRY_LOCK_TRIES 50
#define REGISTRY_LOCK_SLEEP_US 20000
#define LEFTOVER_TRIES 10
#define LEFTOVER_SLEEP_US 100000

/* the claim this supervisor holds */
static struct
{
	bool		held;
	int			lock_fd;
	int			index;
	unsigned long base;			/* the subuid range it was made in */
	unsigned long count;
	unsigned long start;		/* offset of the slice in the range */
	unsigned long size;
} claim = {.held = false, .lock_fd = -1};

/* RegistryDir: nx.uid_slice_registry, or ~/.nx_sandbox/uid_slices */
static void
RegistryDir(char *path, size_t len)
{
	struct passwd *pw;

	if (nx_uid_slice_registry != NULL && nx_uid_slice_registry[0] != '\0')
	{
		strlcpy(path, nx_uid_slice_registry, len);
		return;
	}
	pw = getpwuid(geteuid());
	snprintf(path, len, "%s/.nx_sandbox/uid_slices",
			 pw != NULL && pw->pw_dir != NULL ? pw->pw_dir : "/nonexistent");
}

/* MakeDirs creates path and its missing parents, mode 0700. */
static bool
MakeDirs(const char *path)
{
	char		buf[MAXPGPATH];

	strlcpy(buf, path, sizeof(buf));
	for (char *p = buf + 1; *p; p++)
	{
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return false;
		*p = '/';
	}
	return mkdir(buf, 0700) == 0 || errno == EEXIST;
}

/*
 * NxUidsInUse scans /proc and returns how many processes run with any of
 * their uids (real, effective, saved, filesystem) in [lo, hi]; the first
 * such uid goes to *example.  Zombies do not count: they run nothing, and
 * killed sandboxes whose parent died wait as zombies for the host's init.
 */
int
NxUidsInUse(uid_t lo, uid_t hi, uid_t *example)
{
	DIR		   *d = opendir("/proc");
	struct dirent *e;
	int			n = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
	{
		char		path[64];
		char		line[256];
		FILE	   *f;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/status", e->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;			/* it ended meanwhile */
		while (fgets(line, sizeof(line), f) != NULL)
		{
			unsigned int u[4];

			/* "State:" comes before "Uid:" */
			if (strncmp(line, "State:", 6) == 0 && strpbrk(line + 6, "ZX") != NULL)
				break;
			if (strncmp(line, "Uid:", 4) != 0)
				continue;
			if (sscanf(line + 4, "%u %u %u %u", &u[0], &u[1], &u[2], &u[3]) == 4)
			{
				for (int i = 0; i < 4; i++)
				{
					if (u[i] >= lo && u[i] <= hi)
					{
						if (n++ == 0 && example != NULL)
							*example = u[i];
						break;
					}
				}
			}
			break;
		}
		fclose(f);
	}
	closedir(d);
	return n;
}

/*
 * OverlapTaken says whether a lock file in the registry other than `own`
 * covers part of [first, last] and is held by someone: a cluster that
 * claimed with another nx.uid_slice_size.
 */
static bool
OverlapTaken(const char *registry, const char *own, unsigned long first, unsigned long last)
{
	DIR		   *d = opendir(registry);
	struct dirent *e;
	bool		taken = false;

	if (d == NULL)
		return false;
	while (!taken && (e = readdir(d)) != NULL)
	{
		unsigned long a,
					b;
		char		end;
		char		path[MAXPGPATH];
		int			fd;

		if (sscanf(e->d_name, "%lu-%lu%c", &a, &b, &end) != 2 ||
			strcmp(e->d_name, own) == 0 || b < first || a > last)
			continue;
		snprintf(path, sizeof(path), "%s/%s", registry, e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK)
			taken = true;
		close(fd);				/* also drops the lock if we got it */
	}
	closedir(d);
	return taken;
}

/* ReadRecordedSlice: the slice index in $PGDATA/nx/uid_slice, or -1. */
static int
ReadRecordedSlice(void)
{
	char		path[MAXPGPATH];
	FILE	   *f;
	int			index = -1;

	NxStateDirPath(path, "uid_slice", NULL);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	if (fscanf(f, "slice %d", &index) != 1)
		index = -1;
	fclose(f);
	return index;
}

/* RecordSlice writes the claimed slice to $PGDATA/nx/uid_slice. */
static void
RecordSlice(unsigned long first, unsigned long last)
{
	char		path[MAXPGPATH];
	char		tmp[MAXPGPATH];
	FILE	   *f;

	NxStateDirPath(path, "uid_slice", NULL);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (f == NULL)
		return;
	fprintf(f, "slice %d\nstart %lu\nsize %lu\nhost_uids %lu-%lu\n",
			claim.index, claim.start, claim.size, first, last);
	if (fclose(f) == 0)
		(void) rename(tmp, path);
}

/*
 * TryClaim tries to claim slice `index` ([start, start + size) of the range
 * at base); true when claimed.  `wait_leftovers`: if only processes of
 * its uids stand in the way, look again a few times (sandboxes of our own
 * previous run, killed moments ago, take that long to go).  *busy gets a
 * reason when it is not free.
 */
static bool
TryClaim(const char *registry, int index, unsigned long base, unsigned long start,
		 unsigned long size, bool wait_leftovers, char *busy, size_t busylen)
{
	unsigned long first = base + start,
				last = base + start + size - 1;
	char		name[64];
	char		path[MAXPGPATH];
	char		info[MAXPGPATH + 128];
	uid_t		example = 0;
	int			fd,
				running = 0;

	snprintf(name, sizeof(name), "%lu-%lu", first, last);
	snprintf(path, sizeof(path), "%s/%s", registry, name);
	if (OverlapTaken(registry, name, first, last))
	{
		snprintf(busy, busylen, "slice %d overlaps one another cluster claimed", index);
		return false;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
	{
		snprintf(busy, busylen, "could not open %s: %s", path, strerror(errno));
		return false;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0)
	{
		snprintf(busy, busylen, "slice %d is claimed by another cluster", index);
		close(fd);
		return false;
	}
	for (int i = 0; i < (wait_leftovers ? LEFTOVER_TRIES : 1); i++)
	{
		if (i > 0)
			pg_usleep(LEFTOVER_SLEEP_US);
		running = NxUidsInUse((uid_t) first, (uid_t) last, &example);
		if (running == 0)
			break;
	}
	if (running > 0)
	{
		snprintf(busy, busylen, "%d processes run as uids of slice %d (e.g. uid %u)",
				 running, index, (unsigned) example);
		/* ours to remove: we hold its lock, and claims are made under .lock */
		unlink(path);
		close(fd);
		return false;
	}
	snprintf(info, sizeof(info), "pid %d\ndata_directory %s\nsystem_identifier " UINT64_FORMAT "\n",
			 (int) MyProcPid, DataDir, GetSystemIdentifier());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, info, strlen(info), 0) < 0)
		ereport(LOG, (errmsg("nx supervisor: could not describe the claim in %s: %m", path)));
	claim.held = true;
	claim.lock_fd = fd;
	claim.index = index;
	claim.base = base;
	claim.start = start;
	claim.size = size;
	return true;
}

/* ReleaseClaim gives the slice back (its subordinate range changed). */
static void
ReleaseClaim(void)
{
	if (claim.lock_fd >= 0)
		close(claim.lock_fd);
	claim.lock_fd = -1;
	claim.held = false;
}

/*
 * Claim takes a free slice of the range (base, count), preferring the one
 * recorded last time; false with why set when none is free.
 */
static bool
Claim(unsigned long base, unsigned long count, char *why, size_t whylen)
{
	char		registry[MAXPGPATH];
	char		lock_path[MAXPGPATH];
	char		busy[256] = "";
	unsigned long size = Min((unsigned long) nx_uid_slice_size, count);
	int			n_slices = (int) (count / size);
	int			preferred = ReadRecordedSlice();
	int			lock_fd,
				tries;
	bool		ok = false;

	RegistryDir(registry, sizeof(registry));
	if (!MakeDirs(registry))
	{
		snprintf(why, whylen, "cannot create the uid slice registry %s: %s; "
				 "fix: set nx.uid_slice_registry to a directory the cluster's OS user may write, "
				 "the same for every cluster of that user on this host", registry, strerror(errno));
		return false;
	}
	snprintf(lock_path, sizeof(lock_path), "%s/.lock", registry);
	lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	for (tries = 0; lock_fd >= 0 && tries < REGISTRY_LOCK_TRIES; tries++)
	{
		if (flock(lock_fd, LOCK_EX | LOCK_NB) == 0)
			break;
		pg_usleep(REGISTRY_LOCK_SLEEP_US);
	}
	if (lock_fd < 0 || tries == REGISTRY_LOCK_TRIES)
	{
		snprintf(why, whylen, "the uid slice registry %s is busy or cannot be locked (%s); the next pass tries again",
				 lock_path, lock_fd < 0 ? strerror(errno) : "locked");
		if (lock_fd >= 0)
			close(lock_fd);
		return false;
	}

	if (preferred >= 0 && preferred < n_slices)
		ok = TryClaim(registry, preferred, base, preferred * size, size, true, busy, sizeof(busy));
	for (int i = 0; !ok && i < n_slices; i++)
	{
		if (i != preferred)
			ok = TryClaim(registry, i, base, i * size, size, false, busy, sizeof(busy));
	}
	close(lock_fd);				/* the registry's lock; the claim's stays */

	if (!ok)
	{
		snprintf(why, whylen, "no free tenant uid slice (fix: stop another cluster of this OS user, widen its subordinate range with control/nx-setup --range, or lower nx.uid_slice_size): "
				 "the %d slices of %lu uids of the range %lu:%lu are claimed by other clusters or in use (%s; registry %s)",
				 n_slices, size, base, count, busy, registry);
		return false;
	}
	claim.count = count;
	RecordSlice(base + claim.start, base + claim.start + claim.size - 1);
	ereport(LOG, (errmsg("nx supervisor: tenant uids of this cluster: slice %d of the subordinate range, host uids %lu..%lu",
						 claim.index, base + claim.start, base + claim.start + claim.size - 1),
				  errdetail("Claimed in %s.", registry)));
	return true;
}

/*
 * NxUidSliceEnsure makes sure this supervisor holds a slice of the host's
 * subordinate range (host->uid_base, host->uid_count) and sets
 * host->slice_start and host->slice_size; when none can be had, host->ok
 * becomes false with the reason and the fix.  Cheap once claimed.
 */
void
NxUidSliceEnsure(NxHostSetup *host)
{
	char		why[sizeof(host->why)];

	host->slice_start = 0;
	host->slice_size = 0;
	if (!host->ok || host->uid_count < 2)
		return;
	if (claim.held && (claim.base != (unsigned long) host->uid_base ||
					   claim.count != (unsigned long) host->uid_count))
		ReleaseClaim();
	if (!claim.held && !Claim((unsigned long) host->uid_base, (unsigned long) host->uid_count,
							  why, sizeof(why)))
	{
		host->ok = false;
		strlcpy(host->why, why, sizeof(host->why));
		return;
	}
	host->slice_start = (int) claim.start;
	host->slice_size = (int) claim.size;
}

/*
 * NxRetiredOffsetsSweep deletes the rows of nx.retired_uid_offsets whose
 * offset nothing runs as any more: no slot's process, no process on the
 * host with that uid in this cluster's slice (caller's transaction).
 * Without a slice, or without the table (an older catalog), it does
 * nothing.
 */
void
NxRetiredOffsetsSweep(const NxHostSetup *host)
{
	SPITupleTable *rows;
	uint64		n;

	if (!claim.held || host->slice_size <= 0)
		return;
	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace "
					"WHERE s.nspname = 'nx' AND c.relname = 'retired_uid_offsets'", true, 1) != SPI_OK_SELECT ||
		SPI_processed == 0)
		return;
	if (SPI_execute("SELECT uid_offset FROM nx.retired_uid_offsets", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "nx supervisor: could not read nx.retired_uid_offsets");
	rows = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		int			offset = DatumGetInt32(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull));
		uid_t		uid = NxTenantUid(host, offset);
		Oid			type = INT4OID;
		Datum		value = Int32GetDatum(offset);

		if (isnull)
			continue;
		/* its sandbox is gone: no later start joins its namespace */
		NxUsernsForget(offset);
		NxUsernsPremapForget(offset);
		if (NxSlotsRunOffset(offset))
			continue;
		if (offset > 0 && offset < host->slice_size && NxUidsInUse(uid, uid, NULL) > 0)
			continue;
		if (SPI_execute_with_args("DELETE FROM nx.retired_uid_offsets WHERE uid_offset = $1",
								  1, &type, &value, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "nx supervisor: could not delete from nx.retired_uid_offsets");
	}
}
