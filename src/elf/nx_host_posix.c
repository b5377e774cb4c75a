/*
 * src/elf/nx_host_posix.c
 *	  NxHostOps over plain POSIX calls, for the nx client and the unit test
 *	  (the server has its own, over PostgreSQL's file functions, in
 *	  src/api/verify.c).  An optional root prefix maps every path under a
 *	  directory: the unit test builds a fake /usr and /etc there.
 *
 * Glossary: see nx_libcheck.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "nx_libcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* full: root + path into buf; false when it does not fit */
static bool
full(void *ctx, const char *path, char *buf, size_t len)
{
	const char *root = ctx ? (const char *) ctx : "";

	return snprintf(buf, len, "%s%s", root, path) < (int) len;
}

/* posix_lstat: lstat(2), as NxHostOps.lstat */
static NxHostKind
posix_lstat(void *ctx, const char *path, uint64_t *size)
{
	char		p[NX_VIEW_PATH_MAX * 2];
	struct stat st;

	*size = 0;
	if (!full(ctx, path, p, sizeof(p)) || lstat(p, &st) != 0)
		return NX_HOST_MISSING;
	if (S_ISLNK(st.st_mode))
		return NX_HOST_SYMLINK;
	if (S_ISDIR(st.st_mode))
		return NX_HOST_DIR;
	if (S_ISREG(st.st_mode))
	{
		*size = (uint64_t) st.st_size;
		return NX_HOST_FILE;
	}
	return NX_HOST_OTHER;
}

/* posix_readlink: readlink(2), NUL-terminated, as NxHostOps.readlink */
static int
posix_readlink(void *ctx, const char *path, char *buf, size_t len)
{
	char		p[NX_VIEW_PATH_MAX * 2];
	ssize_t		n;

	if (len == 0 || !full(ctx, path, p, sizeof(p)))
		return -1;
	n = readlink(p, buf, len);
	if (n < 0 || (size_t) n >= len)
		return -1;
	buf[n] = '\0';
	return (int) n;
}

/* posix_open: open(2) for reading, never following a final symlink */
static int
posix_open(void *ctx, const char *path)
{
	char		p[NX_VIEW_PATH_MAX * 2];

	if (!full(ctx, path, p, sizeof(p)))
		return -1;
	return open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
}

/* posix_pread: pread(2) until n bytes are in, as NxHostOps.pread */
static bool
posix_pread(void *ctx, int handle, uint64_t off, void *buf, size_t n)
{
	size_t		done = 0;

	(void) ctx;
	while (done < n)
	{
		ssize_t		r = pread(handle, (char *) buf + done, n - done,
							  (off_t) (off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		done += (size_t) r;
	}
	return true;
}

/* posix_close: close(2) */
static void
posix_close(void *ctx, int handle)
{
	(void) ctx;
	close(handle);
}

/* NxHostPosixOps: see nx_libcheck.h */
void
NxHostPosixOps(NxHostOps *ops, const char *root)
{
	ops->ctx = (void *) (root ? root : "");
	ops->lstat = posix_lstat;
	ops->readlink = posix_readlink;
	ops->open = posix_open;
	ops->pread = posix_pread;
	ops->close = posix_close;
}
