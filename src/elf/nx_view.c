/*
 * src/elf/nx_view.c
 *	  NxViewResolve: a path inside the sandbox, resolved the way the
 *	  sandbox's kernel would, to a host file or the reason it is not there.
 *
 * The sandbox's root (src/runtime/launch.c) is an empty read-only tmpfs
 * with:
 *	  /usr					the host's /usr, read-only
 *	  /lib /lib64 /bin /sbin	symlinks to usr/lib, usr/lib64, usr/bin,
 *							usr/sbin
 *	  /app					the binary, nothing else
 *	  /tmp /run /etc /proc /dev /nx	mounts that hold no library when the
 *							app starts (an empty tmpfs, a few /etc files...)
 * So a path is walked one component at a time; under /usr each component
 * is looked up on the host with lstat (through NxHostOps) and a symlink is
 * followed as the sandbox would: an absolute target starts again from the
 * sandbox's root, not the host's.  Nothing outside /usr is ever looked at
 * on the host.
 *
 * Glossary: see nx_libcheck.h (view, visible).
 */
#include "nx_libcheck.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* the kernel's limit on symlinks followed in one lookup */
#define MAX_SYMLINKS 40

/* fmt: snprintf that may truncate on purpose (paths in messages) */
static void
fmt(char *buf, size_t len, const char *format,...)
	__attribute__((format(printf, 3, 4)));

static void
fmt(char *buf, size_t len, const char *format,...)
{
	va_list		ap;

	va_start(ap, format);
	vsnprintf(buf, len, format, ap);
	va_end(ap);
}

/* set_where: out->where = a + b (b may be empty), truncated, without
 * trailing slashes */
static void
set_where(NxViewResult *out, const char *a, const char *b)
{
	size_t		n;

	if (b[0] != '\0')
		fmt(out->where, sizeof(out->where), "%s/%s", a, b);
	else
		fmt(out->where, sizeof(out->where), "%s", a);
	n = strlen(out->where);
	while (n > 1 && out->where[n - 1] == '/')
		out->where[--n] = '\0';
}

/* root_region: what the top-level name c (len n) is in the sandbox */
static NxViewKind
root_region(const char *c, size_t n, const char **symlink_target)
{
	static const char *const empty[] = {"tmp", "run", "etc", "proc", "dev", "nx", NULL};
	static const char *const links[] = {"lib", "lib64", "bin", "sbin", NULL};

	*symlink_target = NULL;
	if (n == 3 && memcmp(c, "usr", 3) == 0)
		return NX_VIEW_DIR;
	if (n == 3 && memcmp(c, "app", 3) == 0)
		return NX_VIEW_APP;
	for (int i = 0; links[i]; i++)
		if (strlen(links[i]) == n && memcmp(c, links[i], n) == 0)
		{
			*symlink_target = links[i];
			return NX_VIEW_FILE;	/* a symlink: see the caller */
		}
	for (int i = 0; empty[i]; i++)
		if (strlen(empty[i]) == n && memcmp(c, empty[i], n) == 0)
			return NX_VIEW_EMPTY;
	return NX_VIEW_HIDDEN;
}

/*
 * splice: rest = prefix + "/" + rest (prefix of plen bytes); false when it
 * does not fit.
 */
static bool
splice(char *rest, size_t restsize, const char *prefix, size_t plen)
{
	size_t		rlen = strlen(rest);

	if (plen + 1 + rlen + 1 > restsize)
		return false;
	memmove(rest + plen + 1, rest, rlen + 1);
	memcpy(rest, prefix, plen);
	rest[plen] = '/';
	return true;
}

/*
 * NxViewResolve: walk path one component at a time in the sandbox's view,
 * following symlinks as the sandbox would (nx_libcheck.h)
 */
void
NxViewResolve(const NxHostOps *ops, const char *path, NxViewResult *out)
{
	char		rest[2 * NX_VIEW_PATH_MAX];
	char		cur[NX_VIEW_PATH_MAX];	/* resolved so far; "" is the root */
	char		target[NX_VIEW_PATH_MAX];
	char		top[NX_VIEW_PATH_MAX];
	NxViewKind	region = NX_VIEW_DIR;	/* APP or EMPTY: inside that
										 * top-level directory */
	int			links = 0;
	size_t		pos;

	out->kind = NX_VIEW_LOOP;
	out->lookups = 0;
	out->via_symlink = false;
	out->size = 0;
	out->host_path[0] = '\0';
	out->where[0] = '\0';
	cur[0] = '\0';

	/* a relative path starts at the working directory, /tmp */
	if (snprintf(rest, sizeof(rest), "%s%s", path[0] == '/' ? "" : "/tmp/",
				 path) >= (int) sizeof(rest))
	{
		fmt(out->where, sizeof(out->where), "%.200s...", path);
		return;
	}

	pos = 0;
	for (;;)
	{
		const char *c;
		size_t		n;
		size_t		curlen = strlen(cur);
		const char *link;
		NxHostKind	kind;
		uint64_t	size = 0;
		int			tlen;

		while (rest[pos] == '/')
			pos++;
		if (rest[pos] == '\0')
			break;
		c = rest + pos;
		n = strcspn(c, "/");
		pos += n;

		if (n == 1 && c[0] == '.')
			continue;
		if (n == 2 && c[0] == '.' && c[1] == '.')
		{
			char	   *slash = strrchr(cur, '/');

			if (slash != NULL)
				*slash = '\0';
			region = NX_VIEW_DIR;	/* /app/.. is the root again */
			continue;
		}
		if (region != NX_VIEW_DIR)
		{
			/* something in /app or /tmp...: only the binary, no library */
			while (rest[pos] == '/')
				pos++;
			if (region == NX_VIEW_EMPTY)
				set_where(out, top, "");
			else
				fmt(out->where, sizeof(out->where), "%s/%.*s", top, (int) n, c);
			out->kind = region;
			return;
		}
		if (curlen == 0)
		{
			region = root_region(c, n, &link);
			if (link != NULL)
			{
				/* /lib -> usr/lib: relative to the root */
				char		t[16];
				int			tl = snprintf(t, sizeof(t), "usr/%s", link);

				if (++links > MAX_SYMLINKS)
					return;
				/* replace the component by the target */
				memmove(rest, rest + pos, strlen(rest + pos) + 1);
				pos = 0;
				if (!splice(rest, sizeof(rest), t, (size_t) tl))
					return;
				region = NX_VIEW_DIR;
				continue;
			}
			if (region == NX_VIEW_HIDDEN)
			{
				fmt(top, sizeof(top), "/%.*s", (int) n, c);
				while (rest[pos] == '/')
					pos++;
				set_where(out, top, rest + pos);
				out->kind = region;
				return;
			}
			if (region != NX_VIEW_DIR)
			{
				/* /app or an empty mount: see what comes next */
				fmt(top, sizeof(top), "/%.*s", (int) n, c);
				continue;
			}
		}
		if (curlen + 1 + n + 1 > sizeof(cur))
			return;
		cur[curlen] = '/';
		memcpy(cur + curlen + 1, c, n);
		cur[curlen + 1 + n] = '\0';

		out->lookups++;
		kind = ops->lstat(ops->ctx, cur, &size);
		switch (kind)
		{
			case NX_HOST_DIR:
				break;
			case NX_HOST_SYMLINK:
				if (++links > MAX_SYMLINKS)
					return;
				tlen = ops->readlink(ops->ctx, cur, target, sizeof(target));
				if (tlen <= 0)
				{
					out->kind = NX_VIEW_MISSING;
					set_where(out, cur, "");
					return;
				}
				out->via_symlink = true;
				cur[curlen] = '\0';		/* back to the symlink's directory */
				memmove(rest, rest + pos, strlen(rest + pos) + 1);
				pos = 0;
				if (target[0] == '/')
					cur[0] = '\0';	/* absolute: from the sandbox's root */
				if (!splice(rest, sizeof(rest), target, (size_t) tlen))
					return;
				break;
			case NX_HOST_FILE:
				while (rest[pos] == '/')
					pos++;
				if (rest[pos] != '\0')
				{
					/* a file used as a directory */
					out->kind = NX_VIEW_MISSING;
					set_where(out, cur, "");
					return;
				}
				out->kind = NX_VIEW_FILE;
				out->size = size;
				fmt(out->host_path, sizeof(out->host_path), "%s", cur);
				return;
			case NX_HOST_MISSING:
				out->kind = NX_VIEW_MISSING;
				set_where(out, cur, "");
				return;
			case NX_HOST_OTHER:
				out->kind = NX_VIEW_OTHER;
				set_where(out, cur, "");
				return;
		}
	}
	if (region != NX_VIEW_DIR)
	{
		/* the path ends at /app or an empty mount: no file */
		out->kind = region;
		set_where(out, top, "");
		return;
	}
	/* the path ends at a directory (or the root) */
	out->kind = NX_VIEW_DIR;
	fmt(out->host_path, sizeof(out->host_path), "%s", cur[0] ? cur : "/");
	set_where(out, cur[0] ? cur : "/", "");
}
