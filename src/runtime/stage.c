/*
 * src/runtime/stage.c
 *	  Making host files the tenant uid cannot reach visible to bwrap.
 *
 * The blob lives under PGDATA (mode 0700), and the cluster's socket or the
 * run directory may too.  bwrap resolves every bind source by path as the
 * uid it runs as - the tenant's - and even --ro-bind-fd only turns the fd
 * back into a path (/proc/self/fd/N -> realpath), so it fails with EACCES
 * ("Can't find source path /proc/self/fd/5: Permission denied", checked
 * with bwrap 0.8.0 on Debian 12).
 *
 * So nx-spawn stages them in its own mount namespace, created together with
 * the tenant user namespace (NxUsernsEnter(..., CLONE_NEWNS)):
 *	  1. NxStageOpen, while nx-spawn's kuid is still the cluster's (it can
 *		 traverse PGDATA) but it already owns the new mount namespace: open
 *		 each source with O_PATH.  Opened after the unshare, the fds refer to
 *		 mounts of nx-spawn's namespace, which the kernel lets it bind from.
 *	  2. NxStageMount, as root of the tenant namespace: mount a small tmpfs
 *		 on NX_STAGE_DIR, create a mount point per source and bind each fd
 *		 there through /proc/self/fd/N (no path walk, so no permission check
 *		 on the directories above the file).
 *	  bwrap then binds NX_STAGE_DIR/<name> like any other path.  None of
 *	  this is visible on the host or, after bwrap's pivot_root, inside the
 *	  sandbox; the page cache of the blob is shared by every instance.
 *	3. NxStageTenantTmpfs, also as root of the tenant namespace: the tmpfs
 *	  behind the sandbox's /tmp and /dev/shm, with the size and inode limits
 *	  bwrap cannot set (see runtime_int.h).  Its pages are charged to the
 *	  deployment's memory cgroup (the writer's), and it goes away with the
 *	  sandbox's last process: nothing of it is on the cluster's disk.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime_int.h"

/*
 * NxStageNameValid says whether name may be a stage entry: [a-z0-9_-],
 * 1..64 characters, like a key.
 */
bool
NxStageNameValid(const char *name)
{
	return NxKeyValid(name);
}

/*
 * NxStageOpen opens every entry's path with O_PATH (following symlinks) and
 * records whether it is a directory.  Call it after NxUsernsEnter and before
 * NxUsernsBecomeRoot.  On failure err names the path.
 */
bool
NxStageOpen(NxStageEntry *entries, int n, char *err, size_t errlen)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		struct stat st;

		entries[i].fd = open(entries[i].path, O_PATH | O_CLOEXEC);
		if (entries[i].fd < 0)
		{
			NxSetErr(err, errlen, "open %s: %s", entries[i].path, strerror(errno));
			return false;
		}
		if (fstat(entries[i].fd, &st) != 0)
		{
			NxSetErr(err, errlen, "stat %s: %s", entries[i].path, strerror(errno));
			return false;
		}
		entries[i].is_dir = S_ISDIR(st.st_mode);
	}
	return true;
}

/*
 * NxStageMount makes nx-spawn's mount tree private, mounts the stage tmpfs
 * and binds every opened entry at NX_STAGE_DIR/<name>; the fds are closed.
 */
bool
NxStageMount(NxStageEntry *entries, int n, char *err, size_t errlen)
{
	int			i;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
	{
		NxSetErr(err, errlen, "make / private: %s", strerror(errno));
		return false;
	}
	if (mount("nx-stage", NX_STAGE_DIR, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "mode=0755,size=64k,nr_inodes=64") != 0)
	{
		NxSetErr(err, errlen, "mount tmpfs on %s: %s", NX_STAGE_DIR, strerror(errno));
		return false;
	}
	for (i = 0; i < n; i++)
	{
		char		target[256],
					source[64];

		if (!NxPathJoin(target, sizeof(target), NX_STAGE_DIR, entries[i].name))
		{
			NxSetErr(err, errlen, "stage name too long: %s", entries[i].name);
			return false;
		}
		if (entries[i].is_dir)
		{
			if (mkdir(target, 0755) != 0)
			{
				NxSetErr(err, errlen, "mkdir %s: %s", target, strerror(errno));
				return false;
			}
		}
		else
		{
			int			fd = open(target, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0444);

			if (fd < 0)
			{
				NxSetErr(err, errlen, "create %s: %s", target, strerror(errno));
				return false;
			}
			close(fd);
		}
		snprintf(source, sizeof(source), "/proc/self/fd/%d", entries[i].fd);
		if (mount(source, target, NULL, MS_BIND, NULL) != 0)
		{
			NxSetErr(err, errlen, "bind %s on %s: %s", entries[i].path, target,
					 strerror(errno));
			return false;
		}
		close(entries[i].fd);
		entries[i].fd = -1;
	}
	return true;
}

/*
 * NxStageTenantTmpfs mounts the tenant's tmpfs at NX_STAGE_DIR/NX_STAGE_TMPFS
 * (size bytes, inodes inodes, nosuid, nodev) and creates its two
 * directories, mode 1777, for bwrap to bind at /tmp and /dev/shm.  Call it
 * after NxStageMount.  The root directory itself stays 0700 and unbound.
 */
bool
NxStageTenantTmpfs(unsigned long long bytes, unsigned long long inodes,
				   char *err, size_t errlen)
{
	static const char *const dirs[] = {NX_STAGE_TMPFS_TMP, NX_STAGE_TMPFS_SHM};
	char		target[256],
				options[128];
	size_t		i;

	if (bytes == 0 || inodes == 0)
	{
		NxSetErr(err, errlen, "tmpfs size and inodes must be > 0");
		return false;
	}
	if (!NxPathJoin(target, sizeof(target), NX_STAGE_DIR, NX_STAGE_TMPFS) ||
		mkdir(target, 0700) != 0)
	{
		NxSetErr(err, errlen, "mkdir %s: %s", target, strerror(errno));
		return false;
	}
	snprintf(options, sizeof(options), "size=%llu,nr_inodes=%llu,mode=0700", bytes, inodes);
	if (mount("nx-tmp", target, "tmpfs", MS_NOSUID | MS_NODEV, options) != 0)
	{
		NxSetErr(err, errlen, "mount tmpfs (%s) on %s: %s", options, target, strerror(errno));
		return false;
	}
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
	{
		if (!NxPathJoin(target, sizeof(target), NX_STAGE_DIR, dirs[i]) ||
			mkdir(target, 01777) != 0 || chmod(target, 01777) != 0)
		{
			NxSetErr(err, errlen, "mkdir %s: %s", target, strerror(errno));
			return false;
		}
	}
	return true;
}
