/*
 * src/runtime/util.c
 *	  Small helpers the runtime's files share: key validation, error
 *	  formatting, whole-file reads and writes of the kind cgroupfs and
 *	  /proc want (one short value per open/write/close).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runtime_int.h"

/*
 * NxKeyValid says whether key may name a deployment's cgroup: 1..64
 * characters of [a-z0-9_-].  Keys become path components, so this is what
 * keeps "..", "/" and friends out of cgroupfs paths.
 */
bool
NxKeyValid(const char *key)
{
	size_t		n;

	if (key == NULL)
		return false;
	for (n = 0; key[n] != '\0'; n++)
	{
		char		c = key[n];

		if (n >= 64)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			  c == '_' || c == '-'))
			return false;
	}
	return n > 0;
}

/* NxSetErr formats an error message into err (if the caller gave one). */
void
NxSetErr(char *err, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * NxWriteFile writes value to path in one write(), as cgroupfs and /proc
 * expect.  On failure returns false with the errno in *err_no.
 *
 * A write interrupted by a signal is tried again: the memory cgroup's
 * limit writes reclaim and give up with EINTR when a signal is pending,
 * and the supervisor gets one SIGCHLD per adopted sandbox (a thousand
 * sandboxes starting at once made one fail to start this way).
 */
bool
NxWriteFile(const char *path, const char *value, int *err_no)
{
	int			fd;
	size_t		len = strlen(value);
	ssize_t		n;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
	{
		*err_no = errno;
		return false;
	}
	for (int tries = 0;; tries++)
	{
		n = write(fd, value, len);
		if (n >= 0 || errno != EINTR || tries == 100)
			break;
	}
	if (n != (ssize_t) len)
	{
		*err_no = n < 0 ? errno : EIO;
		close(fd);
		return false;
	}
	if (close(fd) != 0)
	{
		*err_no = errno;
		return false;
	}
	return true;
}

/*
 * NxReadFile reads up to size - 1 bytes of path into buf and NUL-terminates
 * it; returns the length, or -1 (errno set) if the file cannot be read.
 */
ssize_t
NxReadFile(const char *path, char *buf, size_t size)
{
	int			fd;
	size_t		got = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (got + 1 < size)
	{
		ssize_t		n = read(fd, buf + got, size - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			int			save = errno;

			close(fd);
			errno = save;
			return -1;
		}
		if (n == 0)
			break;
		got += n;
	}
	close(fd);
	buf[got] = '\0';
	return (ssize_t) got;
}

/*
 * NxPathJoin formats "<dir>/<name>" (or just dir when name is NULL) into
 * buf; false if it does not fit, so a long path is never silently cut.
 */
bool
NxPathJoin(char *buf, size_t len, const char *dir, const char *name)
{
	int			n;

	if (name != NULL)
		n = snprintf(buf, len, "%s/%s", dir, name);
	else
		n = snprintf(buf, len, "%s", dir);
	return n >= 0 && (size_t) n < len;
}
