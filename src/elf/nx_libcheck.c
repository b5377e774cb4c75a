/*
 * src/elf/nx_libcheck.c
 *	  NxLibCheckRun: glibc's dynamic loader, modelled from the sandbox's
 *	  view, to tell before a push whether a binary's libraries and symbol
 *	  versions will be there.  See nx_libcheck.h for the two parts and the
 *	  words used.
 *
 * The model follows glibc 2.36 (elf/dl-load.c _dl_map_object, elf/dl-deps.c,
 * elf/dl-version.c):
 *	  - objects are loaded breadth-first: the binary's DT_NEEDED in order,
 *		then each loaded library's, a name already loaded (by path, the
 *		name it was loaded for, or its DT_SONAME) being reused;
 *	  - a name with a slash is opened as it is (with $ORIGIN etc. expanded);
 *	  - other names are searched in: the DT_RPATH of the loader and of its
 *		loaders up to the binary (only when the loader has no DT_RUNPATH);
 *		the loader's DT_RUNPATH; /etc/ld.so.cache (one entry: if the
 *		sandbox cannot open it, the loader goes on); the default
 *		directories (not with DF_1_NODEFLIB, which also skips cache entries
 *		in those directories);
 *	  - a candidate of another ELF class or machine is skipped; any other
 *		bad candidate is fatal;
 *	  - then each object's needed versions (DT_VERNEED) must be defined
 *		(DT_VERDEF, with the same hash) by the object of that name, unless
 *		that library defines no versions at all or the need is weak.
 * Not modelled: LD_LIBRARY_PATH and LD_PRELOAD (the platform sets
 * neither), glibc-hwcaps subdirectories (a baseline copy is always there
 * too), undefined symbols (the loader finds those only while relocating).
 */
#include "nx_libcheck.h"
#include "nx_ldcache.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define REASONS_LEN NX_ELF_MESSAGE_LEN

/* outcome of trying one candidate file */
typedef enum Try
{
	TRY_FOUND,					/* loaded (or already loaded) */
	TRY_NEXT,					/* not there: the loader goes on */
	TRY_FATAL,					/* the loader stops with an error */
	TRY_FULL					/* our tables are full: stop checking */
} Try;

/* State of one NxLibCheckRun call. */
typedef struct Check
{
	const NxLibEnv *env;
	NxElfInfo  *bin;
	NxLibCheck *w;
	NxLdCache	cache;
	bool		have_cache;
	const char *dirs[4];		/* the loader's default directories */
	int			n_dirs;
	const char *lib_dst;		/* what $LIB expands to */
	char		reasons[REASONS_LEN];	/* for the name being searched */
	uint64_t	rejected[16];	/* hashes of host files already rejected for
								 * it (one file can be reached by several
								 * paths: /lib/x and /usr/lib/x) */
	int			n_rejected;
	long		lookups;		/* host lookups so far (NX_LIB_MAX_LOOKUPS) */
	int			found;			/* the object a search found */
} Check;

/* ---------- pool and small helpers */

/*
 * fmt: snprintf that may cut on purpose (paths in messages); returns what
 * vsnprintf returns.
 */
static int
fmt(char *buf, size_t len, const char *format,...)
	__attribute__((format(printf, 3, 4)));

static int
fmt(char *buf, size_t len, const char *format,...)
{
	va_list		ap;
	int			n;

	va_start(ap, format);
	n = vsnprintf(buf, len, format, ap);
	va_end(ap);
	return n;
}

/* NxLibString: a pool string of the work area (nx_libcheck.h) */
const char *
NxLibString(const NxLibCheck *w, uint32_t off)
{
	if (off == NX_LIB_NONE || off >= w->pool_used)
		return "";
	return w->pool + off;
}

/* note: mark the check incomplete, with the first reason why */
static void
note(Check *c, const char *what)
{
	if (!c->w->incomplete)
		fmt(c->w->note, sizeof(c->w->note), "%s", what);
	c->w->incomplete = true;
}

/* pool_addn: copy len bytes of s, and a NUL, into the work pool */
static uint32_t
pool_addn(Check *c, const char *s, size_t len)
{
	NxLibCheck *w = c->w;
	uint32_t	off;

	if (len + 1 > sizeof(w->pool) - w->pool_used)
	{
		note(c, "the library check ran out of room; some libraries were not checked");
		return NX_LIB_NONE;
	}
	off = (uint32_t) w->pool_used;
	memcpy(w->pool + off, s, len);
	w->pool[off + len] = '\0';
	w->pool_used += len + 1;
	return off;
}

/* pool_add: copy the string s into the work pool */
static uint32_t
pool_add(Check *c, const char *s)
{
	return pool_addn(c, s, strlen(s));
}

static const char *
str(const Check *c, uint32_t off)
{
	return NxLibString(c->w, off);
}

/* add_reason: append "; text" to the reasons for the current name (once) */
static void
add_reason(Check *c, const char *fmt,...)
	__attribute__((format(printf, 2, 3)));

static void
add_reason(Check *c, const char *format,...)
{
	char		text[REASONS_LEN];
	size_t		used = strlen(c->reasons);
	va_list		ap;

	va_start(ap, format);
	vsnprintf(text, sizeof(text), format, ap);
	va_end(ap);
	if (strstr(c->reasons, text) != NULL)
		return;
	fmt(c->reasons + used, sizeof(c->reasons) - used, "%s%s",
			 used > 0 ? "; " : "", text);
}

/* dir_of: the directory part of a sandbox path, into buf ("/" for "/x") */
static void
dir_of(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		fmt(buf, len, ".");
	else if (slash == path)
		fmt(buf, len, "/");
	else
		fmt(buf, len, "%.*s", (int) (slash - path), path);
}

/* obj_label: how a message names object i: its soname, name or path */
static const char *
obj_label(const Check *c, int i)
{
	const NxLibObject *o = &c->w->objects[i];

	if (o->soname != NX_LIB_NONE && str(c, o->soname)[0])
		return str(c, o->soname);
	if (o->name != NX_LIB_NONE && str(c, o->name)[0])
		return str(c, o->name);
	return str(c, o->path);
}

/* find_object: the loaded object the loader would take name for, or -1 */
static int
find_object(const Check *c, const char *name)
{
	for (int i = 0; i < c->w->n_objects; i++)
	{
		const NxLibObject *o = &c->w->objects[i];

		if (strcmp(name, str(c, o->path)) == 0 ||
			(o->name != NX_LIB_NONE && strcmp(name, str(c, o->name)) == 0) ||
			(o->soname != NX_LIB_NONE && strcmp(name, str(c, o->soname)) == 0))
			return i;
	}
	return -1;
}

/* add_missing: remember name in list (once); false when already there */
static bool
add_missing(Check *c, uint32_t *list, int *n, const char *name)
{
	uint32_t	off;

	for (int i = 0; i < *n; i++)
		if (strcmp(str(c, list[i]), name) == 0)
			return false;
	if (*n >= NX_LIB_MAX_MISSING)
		return true;
	off = pool_add(c, name);
	if (off != NX_LIB_NONE)
		list[(*n)++] = off;
	return true;
}

/*
 * resolve: NxViewResolve for the check, within its budget of host
 * lookups; false (the check marked incomplete) once that is spent.
 */
static bool
resolve(Check *c, const char *path, NxViewResult *v)
{
	if (c->lookups > NX_LIB_MAX_LOOKUPS)
	{
		note(c, "the binary makes the loader look in too many places; the rest was not checked");
		return false;
	}
	NxViewResolve(c->env->ops, path, v);
	c->lookups += v->lookups + 1;
	return true;
}

/* ---------- dynamic string tokens */

/*
 * dst_name: if s (just after a '$') starts a token (NAME or {NAME}) return
 * its length in s, with the name in *name and its length in *nlen;
 * else 0.
 */
static size_t
dst_name(const char *s, const char **name, size_t *nlen)
{
	static const char *const known[] = {"ORIGIN", "PLATFORM", "LIB", NULL};

	for (int i = 0; known[i]; i++)
	{
		size_t		n = strlen(known[i]);

		if (s[0] == '{' && strncmp(s + 1, known[i], n) == 0 && s[n + 1] == '}')
		{
			*name = known[i];
			*nlen = n;
			return n + 2;
		}
		if (strncmp(s, known[i], n) == 0 &&
			!((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') ||
			  (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
		{
			*name = known[i];
			*nlen = n;
			return n;
		}
	}
	return 0;
}

/*
 * expand: in into out with $ORIGIN (the directory of object owner),
 * $PLATFORM and $LIB replaced, as the loader's _dl_dst_substitute does;
 * false when the element is dropped (a token without a value, or too
 * long).  An unknown $NAME stays as it is.
 */
static bool
expand(Check *c, int owner, const char *in, char *out, size_t outlen)
{
	size_t		o = 0;

	for (const char *p = in; *p; p++)
	{
		const char *name = NULL;
		size_t		nlen = 0;
		size_t		tok = *p == '$' ? dst_name(p + 1, &name, &nlen) : 0;
		const char *value = NULL;
		char		origin[NX_VIEW_PATH_MAX];
		size_t		vlen;

		if (tok == 0)
		{
			if (o + 1 >= outlen)
				return false;
			out[o++] = *p;
			continue;
		}
		if (strcmp(name, "ORIGIN") == 0)
		{
			dir_of(str(c, c->w->objects[owner].path), origin, sizeof(origin));
			value = origin;
		}
		else if (strcmp(name, "PLATFORM") == 0)
			value = c->env->platform;
		else
			value = c->lib_dst;
		if (value == NULL)
			return false;
		vlen = strlen(value);
		if (o + vlen >= outlen)
			return false;
		memcpy(out + o, value, vlen);
		o += vlen;
		p += tok;
	}
	out[o] = '\0';
	return true;
}

/* ---------- loading one candidate */

/* HostRead: an NxElfSource's read() over NxHostOps */
static bool
HostRead(const NxElfSource *src, uint64_t off, void *out, size_t n)
{
	const NxHostOps *ops = src->ctx;

	if (!nx_range_ok(off, n, src->size))
		return false;
	return ops->pread(ops->ctx, src->handle, off, out, n);
}

/*
 * add_object: a library just read into w->lib, at sandbox path path
 * (host file v->host_path), loaded for name by loader: becomes an object.
 */
static Try
add_object(Check *c, const char *path, const NxViewResult *v,
		   const char *name, int loader)
{
	NxLibCheck *w = c->w;
	NxElfLibrary *lib = &w->lib;
	NxLibObject *o;

	if (w->n_objects >= NX_LIB_MAX_OBJECTS)
	{
		note(c, "the binary loads more than 256 libraries; the others were not checked");
		return TRY_FULL;
	}
	o = &w->objects[w->n_objects];
	memset(o, 0, sizeof(*o));
	o->path = pool_add(c, path);
	o->host_path = pool_add(c, v->host_path);
	o->name = pool_add(c, name);
	o->soname = lib->soname != NX_ELF_LIB_NONE
		? pool_add(c, NxElfLibString(lib, lib->soname)) : NX_LIB_NONE;
	o->rpath = lib->rpath != NX_ELF_LIB_NONE
		? pool_add(c, NxElfLibString(lib, lib->rpath)) : NX_LIB_NONE;
	o->runpath = lib->runpath != NX_ELF_LIB_NONE
		? pool_add(c, NxElfLibString(lib, lib->runpath)) : NX_LIB_NONE;
	if (o->path == NX_LIB_NONE || o->host_path == NX_LIB_NONE)
		return TRY_FULL;
	o->loader = loader;
	o->nodeflib = lib->nodeflib;
	o->has_verdef = lib->has_verdef;
	if (lib->truncated)
		note(c, "a library has more names or versions than the check keeps; some were not checked");

	o->first_needed = w->n_needed;
	for (int i = 0; i < lib->n_needed && w->n_needed < NX_LIB_MAX_NEEDED; i++)
		w->needed[w->n_needed++] = pool_add(c, NxElfLibString(lib, lib->needed[i]));
	o->n_needed = w->n_needed - o->first_needed;
	if (o->n_needed < lib->n_needed)
		note(c, "the libraries need more libraries than the check keeps; some were not checked");

	o->first_def = w->n_versions;
	for (int i = 0; i < lib->n_verdef && w->n_versions < NX_LIB_MAX_VERSIONS; i++)
	{
		NxLibVersion *d = &w->versions[w->n_versions++];

		d->file = NX_LIB_NONE;
		d->name = pool_add(c, NxElfLibString(lib, lib->verdef[i].name));
		d->hash = lib->verdef[i].hash;
		d->flags = lib->verdef[i].flags;
	}
	o->n_def = w->n_versions - o->first_def;
	o->first_need = w->n_versions;
	for (int i = 0; i < lib->n_verneed && w->n_versions < NX_LIB_MAX_VERSIONS; i++)
	{
		NxLibVersion *d = &w->versions[w->n_versions++];

		d->file = pool_add(c, NxElfLibString(lib, lib->verneed[i].file));
		d->name = pool_add(c, NxElfLibString(lib, lib->verneed[i].name));
		d->hash = lib->verneed[i].hash;
		d->flags = lib->verneed[i].flags;
	}
	o->n_need = w->n_versions - o->first_need;
	if (o->n_def < lib->n_verdef || o->n_need < lib->n_verneed)
	{
		/* a partial definition list would make versions look missing */
		note(c, "the libraries define more versions than the check keeps; some were not checked");
		o->has_verdef = false;
	}
	c->found = w->n_objects++;
	return TRY_FOUND;
}

/*
 * seen_before: has this host file been rejected for the current name
 * already (reached by another path)?  Remembers it if not.
 */
static bool
seen_before(Check *c, const char *host_path)
{
	uint64_t	h = 1469598103934665603ULL;	/* FNV-1a */

	for (const unsigned char *p = (const unsigned char *) host_path; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	for (int i = 0; i < c->n_rejected; i++)
		if (c->rejected[i] == h)
			return true;
	if (c->n_rejected < (int) (sizeof(c->rejected) / sizeof(c->rejected[0])))
		c->rejected[c->n_rejected++] = h;
	return false;
}

/*
 * subject: how a reason names the file it tried: the path, a label that
 * already names it ("<path> (listed in /etc/ld.so.cache)"), or
 * "<label>: <path>" ("RUNPATH /x: /x/libfoo.so.1").
 */
static void
subject(char *buf, size_t len, const char *path, const char *label)
{
	if (label == NULL)
		fmt(buf, len, "%s", path);
	else if (strncmp(label, path, strlen(path)) == 0)
		fmt(buf, len, "%s", label);
	else
		fmt(buf, len, "%s: %s", label, path);
}

/*
 * try_file: the loader tries the sandbox path path for name (loaded by
 * loader); label says in a reason where the path came from (NULL: say the
 * path itself).  v is the view of path.
 */
static Try
try_file(Check *c, const char *path, const NxViewResult *v, const char *name,
		 int loader, const char *label)
{
	const NxHostOps *ops = c->env->ops;
	NxElfSource src;
	const char *what = label ? label : path;
	char		subj[NX_VIEW_PATH_MAX + 128];

	subject(subj, sizeof(subj), path, label);
	switch (v->kind)
	{
		case NX_VIEW_FILE:
			break;
		case NX_VIEW_MISSING:
			return TRY_NEXT;
		case NX_VIEW_HIDDEN:
			if (!v->via_symlink)
				add_reason(c, "%s: the sandbox does not see that directory", what);
			else if (strstr(c->reasons, v->where) == NULL)
				add_reason(c, "%s leads to %s, which the sandbox does not see",
						   subj, v->where);
			return TRY_NEXT;
		case NX_VIEW_APP:
			add_reason(c, "%s: the sandbox's /app holds only the binary", what);
			return TRY_NEXT;
		case NX_VIEW_EMPTY:
			add_reason(c, "%s: the sandbox's %s holds no libraries when the app starts",
					   what, v->where);
			return TRY_NEXT;
		case NX_VIEW_LOOP:
			add_reason(c, "%s: too many symbolic links or too long", what);
			return TRY_NEXT;
		case NX_VIEW_DIR:
		case NX_VIEW_OTHER:
			add_reason(c, "%s is not a regular file", subj);
			return TRY_FATAL;
	}

	/* the same file under another name is the same object */
	for (int i = 0; i < c->w->n_objects; i++)
		if (strcmp(str(c, c->w->objects[i].host_path), v->host_path) == 0)
		{
			c->found = i;
			return TRY_FOUND;
		}

	memset(&src, 0, sizeof(src));
	src.read = HostRead;
	src.ctx = (void *) ops;
	src.size = v->size;
	if (seen_before(c, v->host_path))
		return TRY_NEXT;		/* skipped already, under another path */
	src.handle = ops->open(ops->ctx, v->host_path);
	if (src.handle < 0)
	{
		add_reason(c, "%s cannot be read on this host", subj);
		return TRY_NEXT;
	}
	NxElfReadLibrary(&src, c->env->machine, &c->w->lib);
	ops->close(ops->ctx, src.handle);
	switch (c->w->lib.status)
	{
		case NX_ELF_LIB_OK:
			return add_object(c, path, v, name, loader);
		case NX_ELF_LIB_SKIPPED:
			add_reason(c, "%s %s", subj, c->w->lib.error);
			return TRY_NEXT;
		case NX_ELF_LIB_BAD:
			break;
	}
	add_reason(c, "%s %s", subj, c->w->lib.error);
	return TRY_FATAL;
}

/* try_path: resolve the sandbox path in the view, then try_file */
static Try
try_path(Check *c, const char *path, const char *name, int loader,
		 const char *label)
{
	if (!resolve(c, path, &c->w->view))
		return TRY_FULL;
	return try_file(c, path, &c->w->view, name, loader, label);
}

/*
 * search_list: try name in each directory of a DT_RPATH / DT_RUNPATH list
 * (colon-separated, tokens expanded for object owner).  kind is "RPATH"
 * or "RUNPATH" for the reasons.  *searched collects the directories that
 * exist and lack the file, for the "not found" message.
 */
static Try
search_list(Check *c, const char *list, int owner, const char *kind,
			const char *name, int loader, char *searched, size_t slen)
{
	const char *p = list;

	for (;;)
	{
		size_t		n = strcspn(p, ":");
		char		elem[NX_VIEW_PATH_MAX];
		char		dir[NX_VIEW_PATH_MAX];
		char		label[NX_VIEW_PATH_MAX + 16];
		size_t		dl;
		Try			t;

		fmt(elem, sizeof(elem), "%.*s", (int) n, p);
		if (n < sizeof(elem) && expand(c, owner, elem, dir, sizeof(dir)) &&
			!(elem[0] != '\0' && dir[0] == '\0'))
		{
			/* drop trailing slashes; an empty element is the working
			 * directory, as for the loader */
			dl = strlen(dir);
			while (dl > 1 && dir[dl - 1] == '/')
				dir[--dl] = '\0';
			if (dl == 0)
				fmt(c->w->path, sizeof(c->w->path), "%s", name);
			else if (dl == 1 && dir[0] == '/')
				fmt(c->w->path, sizeof(c->w->path), "/%s", name);
			else
				fmt(c->w->path, sizeof(c->w->path), "%s/%s", dir, name);
			fmt(label, sizeof(label), "%s %s", kind,
					 elem[0] ? elem : "(empty: the working directory)");
			if (!resolve(c, c->w->path, &c->w->view))
				return TRY_FULL;
			t = try_file(c, c->w->path, &c->w->view, name, loader, label);
			if (t != TRY_NEXT)
				return t;
			if (c->w->view.kind == NX_VIEW_MISSING)
			{
				size_t		used = strlen(searched);

				fmt(searched + used, slen - used, "%s%s %s",
						 used ? ", " : "", kind, elem);
			}
		}
		if (p[n] == '\0')
			return TRY_NEXT;
		p += n + 1;
	}
}

/* in_default_dir: is the sandbox path in one of the default directories? */
static bool
in_default_dir(const Check *c, const char *path)
{
	for (int i = 0; i < c->n_dirs; i++)
	{
		size_t		n = strlen(c->dirs[i]);

		if (strncmp(path, c->dirs[i], n) == 0 && path[n] == '/')
			return true;
	}
	return false;
}

/* try_cache: the loader's one /etc/ld.so.cache candidate for name */
static Try
try_cache(Check *c, const char *name, int loader, bool nodeflib)
{
	const char *path;
	NxViewResult *v = &c->w->view;
	char		dir[NX_VIEW_PATH_MAX];
	char		label[NX_VIEW_PATH_MAX + 64];

	if (!c->have_cache)
		return TRY_NEXT;
	path = NxLdCacheLookup(&c->cache, name, NX_LDCACHE_HOST_FLAGS);
	if (path == NULL)
		return TRY_NEXT;
	if (nodeflib && in_default_dir(c, path))
		return TRY_NEXT;
	fmt(c->w->path, sizeof(c->w->path), "%s", path);
	if (!resolve(c, c->w->path, v))
		return TRY_FULL;
	dir_of(c->w->path, dir, sizeof(dir));
	if (v->kind == NX_VIEW_HIDDEN && !v->via_symlink)
	{
		add_reason(c, "found in %s (listed in /etc/ld.so.cache) but the sandbox does not see that directory",
				   dir);
		return TRY_NEXT;
	}
	if (v->kind == NX_VIEW_MISSING)
	{
		add_reason(c, "/etc/ld.so.cache lists %s, which does not exist (run ldconfig)",
				   c->w->path);
		return TRY_NEXT;
	}
	fmt(label, sizeof(label), "%s (listed in /etc/ld.so.cache)", c->w->path);
	return try_file(c, c->w->path, v, name, loader, label);
}

/*
 * search: where the loader finds name for loader; TRY_FOUND sets c->found.
 * Reasons for a failure are left in c->reasons, the directories that were
 * looked at in searched.
 */
static Try
search(Check *c, const char *name, int loader, char *searched, size_t slen)
{
	NxLibObject *ld = &c->w->objects[loader];
	Try			t;

	if (strchr(name, '/') != NULL)
	{
		char		expanded[NX_VIEW_PATH_MAX];

		if (!expand(c, loader, name, expanded, sizeof(expanded)))
		{
			add_reason(c, "its name %s uses a token this host cannot expand", name);
			return TRY_NEXT;
		}
		fmt(c->w->path, sizeof(c->w->path), "%s", expanded);
		return try_path(c, c->w->path, name, loader, NULL);
	}

	/* DT_RPATH of the loader chain, unless the loader has DT_RUNPATH */
	if (ld->runpath == NX_LIB_NONE)
	{
		for (int l = loader; l >= 0; l = c->w->objects[l].loader)
		{
			if (c->w->objects[l].rpath == NX_LIB_NONE)
				continue;
			t = search_list(c, str(c, c->w->objects[l].rpath), l, "RPATH",
							name, loader, searched, slen);
			if (t != TRY_NEXT)
				return t;
		}
	}
	if (ld->runpath != NX_LIB_NONE)
	{
		t = search_list(c, str(c, ld->runpath), loader, "RUNPATH", name,
						loader, searched, slen);
		if (t != TRY_NEXT)
			return t;
	}
	t = try_cache(c, name, loader, ld->nodeflib);
	if (t != TRY_NEXT || ld->nodeflib)
		return t;
	for (int i = 0; i < c->n_dirs; i++)
	{
		fmt(c->w->path, sizeof(c->w->path), "%s/%s", c->dirs[i], name);
		t = try_path(c, c->w->path, name, loader, NULL);
		if (t != TRY_NEXT)
			return t;
	}
	return TRY_NEXT;
}

/*
 * report_missing: one problem for a library name the loader would not
 * load for loader.
 */
static void
report_missing(Check *c, const char *name, int loader, const char *searched)
{
	char		who[NX_VIEW_PATH_MAX];
	char		dirs[512];
	size_t		used = 0;

	if (!add_missing(c, c->w->missing, &c->w->n_missing, name))
		return;					/* reported for another loader already */
	if (loader == 0)
		fmt(who, sizeof(who), "library %s", name);
	else
		fmt(who, sizeof(who), "library %s (needed by %s)", name,
				 obj_label(c, loader));
	if (c->reasons[0] != '\0')
	{
		NxElfAddProblem(c->bin, NX_ELF_LIBRARY_MISSING,
						"%s cannot be loaded in the sandbox: %s", who, c->reasons);
		return;
	}
	if (c->w->objects[loader].nodeflib)
	{
		NxElfAddProblem(c->bin, NX_ELF_LIBRARY_MISSING,
						"%s is not found: not in %s, and %s is linked with -z nodefaultlib, so the loader looks nowhere else",
						who, searched[0] ? searched : "its RUNPATH",
						loader == 0 ? "the binary" : obj_label(c, loader));
		return;
	}
	dirs[0] = '\0';
	for (int i = 0; i < c->n_dirs && used < sizeof(dirs); i++)
		used += (size_t) fmt(dirs + used, sizeof(dirs) - used, "%s%s",
								  i == 0 ? "" : i == c->n_dirs - 1 ? " or " : ", ",
								  c->dirs[i]);
	NxElfAddProblem(c->bin, NX_ELF_LIBRARY_MISSING,
					"%s is not found anywhere: not in %s%s/etc/ld.so.cache, nor in %s",
					who, searched, searched[0] ? ", " : "", dirs);
}

/* load_needed: the breadth-first walk over every object's DT_NEEDED */
static void
load_needed(Check *c)
{
	NxLibCheck *w = c->w;

	for (int q = 0; q < w->n_objects; q++)
	{
		int			n = q == 0 ? c->bin->n_needed : w->objects[q].n_needed;

		if (w->objects[q].is_interpreter)
			continue;
		for (int i = 0; i < n; i++)
		{
			char		name[NX_ELF_NAME_MAX + 1];
			char		searched[512];
			Try			t;

			if (q == 0)
				fmt(name, sizeof(name), "%.*s", (int) c->bin->needed[i].len,
						 c->bin->needed[i].ptr);
			else
				fmt(name, sizeof(name), "%s",
						 str(c, w->needed[w->objects[q].first_needed + i]));
			if (find_object(c, name) >= 0)
				continue;
			c->reasons[0] = '\0';
			c->n_rejected = 0;
			searched[0] = '\0';
			t = search(c, name, q, searched, sizeof(searched));
			if (t == TRY_FULL)
				return;
			if (t != TRY_FOUND)
				report_missing(c, name, q, searched);
		}
	}
}

/* ---------- symbol versions */

/*
 * version_split: the family of a version name (the part up to its last
 * '_' that is followed by a dotted number: "GLIBC_" of "GLIBC_2.34"), as
 * a length; 0 when the name has no such number.
 */
static size_t
version_split(const char *v)
{
	const char *u = strrchr(v, '_');

	if (u == NULL || !(u[1] >= '0' && u[1] <= '9'))
		return 0;
	for (const char *p = u + 1; *p; p++)
		if (!((*p >= '0' && *p <= '9') || *p == '.'))
			return 0;
	return (size_t) (u + 1 - v);
}

/* version_cmp: compare the dotted numbers of two names of one family */
static int
version_cmp(const char *a, const char *b)
{
	while (*a || *b)
	{
		unsigned long long x = 0,
					y = 0;

		while (*a >= '0' && *a <= '9')
			x = x * 10 + (unsigned long long) (*a++ - '0');
		while (*b >= '0' && *b <= '9')
			y = y * 10 + (unsigned long long) (*b++ - '0');
		if (x != y)
			return x < y ? -1 : 1;
		if (*a == '.')
			a++;
		if (*b == '.')
			b++;
		if ((*a && !(*a >= '0' && *a <= '9')) || (*b && !(*b >= '0' && *b <= '9')))
			break;
	}
	return 0;
}

/* newest_def: object t's newest definition in the family of v, or NULL */
static const char *
newest_def(const Check *c, int t, const char *v)
{
	const NxLibObject *o = &c->w->objects[t];
	size_t		fam = version_split(v);
	const char *best = NULL;

	if (fam == 0)
		return NULL;
	for (int i = 0; i < o->n_def; i++)
	{
		const NxLibVersion *d = &c->w->versions[o->first_def + i];
		const char *name = str(c, d->name);

		if ((d->flags & NX_VER_FLG_BASE) || version_split(name) != fam ||
			strncmp(name, v, fam) != 0)
			continue;
		if (best == NULL || version_cmp(name + fam, best + fam) > 0)
			best = name;
	}
	return best;
}

/* A version needed, whoever needs it (the binary or a library). */
typedef struct Need
{
	const char *file;
	const char *name;
	uint32_t	hash;
	bool		weak;
} Need;

/* get_need: object o's i-th needed version */
static Need
get_need(const Check *c, int o, int i)
{
	Need		n;

	if (o == 0)
	{
		const NxElfVersionNeed *v = &c->bin->verneed[i];

		/* the reader found both NUL-terminated in the binary */
		n.file = v->file.ptr;
		n.name = v->version.ptr;
		n.hash = v->hash;
		n.weak = v->weak;
	}
	else
	{
		const NxLibVersion *v = &c->w->versions[c->w->objects[o].first_need + i];

		n.file = str(c, v->file);
		n.name = str(c, v->name);
		n.hash = v->hash;
		n.weak = (v->flags & NX_VER_FLG_WEAK) != 0;
	}
	return n;
}

/* version_hint: the hint for the newest missing version want of family
 * fam, where have is this host's newest of that family (or NULL) */
static void
version_hint(char *hint, size_t len, const char *lib, const char *want,
			 const char *have)
{
	size_t		fam = version_split(want);

	if (fam == 6 && strncmp(want, "GLIBC_", 6) == 0 && have != NULL)
		fmt(hint, len, "built against glibc %s; this host has glibc %s: build on a system with glibc %s or older, or link statically (CGO_ENABLED=0, -static, or a musl target)",
				 want + fam, have + fam, have + fam);
	else if ((strncmp(want, "GLIBCXX_", 8) == 0 || strncmp(want, "CXXABI_", 7) == 0) &&
			 have != NULL)
		fmt(hint, len, "built against a newer libstdc++ (%s; this host has %s): build with this host's GCC or an older one, or link libstdc++ statically (-static-libstdc++)",
				 want, have);
	else if (have != NULL)
		fmt(hint, len, "built against a newer %s (%s; this host has %s): build against the version this host has, or link it statically",
				 lib, want, have);
	else
		fmt(hint, len, "this host's %s does not define %s: build against the library this host has, or link it statically",
				 lib, want);
}

/*
 * check_versions_of: object o's needed versions against the objects they
 * name: one problem per library with missing versions.
 */
static void
check_versions_of(Check *c, int o)
{
	NxLibCheck *w = c->w;
	int			n = o == 0 ? c->bin->n_verneed : w->objects[o].n_need;
	char		who[NX_VIEW_PATH_MAX + 64];
	int			target[NX_ELF_LIB_MAX_VERSIONS];

	/* the object each need names (-1: none), found once */
	if (n > NX_ELF_LIB_MAX_VERSIONS)
		n = NX_ELF_LIB_MAX_VERSIONS;
	for (int i = 0; i < n; i++)
		target[i] = find_object(c, get_need(c, o, i).file);

	if (o == 0)
		fmt(who, sizeof(who), "the binary");
	else
		fmt(who, sizeof(who), "library %s (%s)", obj_label(c, o),
				 str(c, w->objects[o].path));

	for (int t = 0; t < w->n_objects; t++)
	{
		char		list[NX_ELF_MESSAGE_LEN];
		const char *newest_want = NULL;
		const char *file = NULL;
		size_t		used = 0;

		list[0] = '\0';
		if (!w->objects[t].has_verdef)
			continue;
		for (int i = 0; i < n; i++)
		{
			Need		need = get_need(c, o, i);
			const NxLibVersion *def = NULL;
			char		entry[NX_ELF_NAME_MAX * 2 + 8];

			if (target[i] != t)
				continue;
			for (int k = 0; k < w->objects[t].n_def; k++)
			{
				const NxLibVersion *d = &w->versions[w->objects[t].first_def + k];

				if (strcmp(str(c, d->name), need.name) == 0)
				{
					def = d;
					break;
				}
			}
			if (def != NULL && def->hash != need.hash)
			{
				NxElfProblem *p = NxElfAddProblem(c->bin, NX_ELF_VERSION_MISSING,
												  "%s needs %s from %s with hash 0x%08x, but this host's %s defines it with hash 0x%08x, so the loader refuses it",
												  who, need.name, need.file, (unsigned) need.hash,
												  str(c, w->objects[t].path), (unsigned) def->hash);

				if (p != NULL)
					fmt(p->hint, sizeof(p->hint), "the file was altered after linking: rebuild it and push it again");
				continue;
			}
			if (def != NULL || need.weak)
				continue;
			fmt(entry, sizeof(entry), "%s (%s)", need.file, need.name);
			add_missing(c, w->missing_versions, &w->n_missing_versions, entry);
			if (strstr(list, need.name) == NULL)
				used += (size_t) fmt(list + used, sizeof(list) - used, "%s%s",
										  used ? ", " : "", need.name);
			if (used >= sizeof(list))
				used = sizeof(list) - 1;
			file = need.file;
			if (newest_want == NULL ||
				(version_split(need.name) == version_split(newest_want) &&
				 strncmp(need.name, newest_want, version_split(need.name)) == 0 &&
				 version_cmp(need.name + version_split(need.name),
							 newest_want + version_split(newest_want)) > 0))
				newest_want = need.name;
		}
		if (file != NULL)
		{
			const char *have = newest_def(c, t, newest_want);
			NxElfProblem *p;

			if (have != NULL)
				p = NxElfAddProblem(c->bin, NX_ELF_VERSION_MISSING,
									"%s needs %s from %s, which this host's %s does not define (its newest is %s)",
									who, list, file, str(c, w->objects[t].path), have);
			else
				p = NxElfAddProblem(c->bin, NX_ELF_VERSION_MISSING,
									"%s needs %s from %s, which this host's %s does not define",
									who, list, file, str(c, w->objects[t].path));
			if (p != NULL)
				version_hint(p->hint, sizeof(p->hint), file, newest_want, have);
		}
	}

	/* versions from a library that nothing loads: the loader asserts */
	for (int i = 0; i < n; i++)
	{
		Need		need = get_need(c, o, i);
		bool		missing = false;

		if (target[i] >= 0)
			continue;
		for (int m = 0; m < w->n_missing; m++)
			if (strcmp(str(c, w->missing[m]), need.file) == 0)
				missing = true;
		if (!missing && add_missing(c, w->missing, &w->n_missing, need.file))
			NxElfAddProblem(c->bin, NX_ELF_VERSION_MISSING,
							"%s needs %s from %s, but loads no library of that name",
							who, need.name, need.file);
	}
}

/* ---------- setup */

/* default_dirs: the loader's built-in directories, by the host's layout */
static void
default_dirs(Check *c)
{
	NxViewResolve(c->env->ops, "/usr/lib/" NX_LIB_MULTIARCH, &c->w->view);
	if (c->w->view.kind == NX_VIEW_DIR)
	{
		/* Debian and Ubuntu: ld.so --help, "system search path" */
		c->dirs[0] = "/lib/" NX_LIB_MULTIARCH;
		c->dirs[1] = "/usr/lib/" NX_LIB_MULTIARCH;
		c->dirs[2] = "/lib";
		c->dirs[3] = "/usr/lib";
		c->n_dirs = 4;
		c->lib_dst = "lib/" NX_LIB_MULTIARCH;
	}
	else
	{
		/* Fedora, openSUSE, Arch... */
		c->dirs[0] = "/lib64";
		c->dirs[1] = "/usr/lib64";
		c->n_dirs = 2;
		c->lib_dst = "lib64";
	}
}

/* add_binary: object 0, the binary at /app/<name> */
static void
add_binary(Check *c)
{
	NxLibObject *o = &c->w->objects[0];
	char		path[NX_VIEW_PATH_MAX];
	int			runpath = -1,
				rpath = -1;

	memset(o, 0, sizeof(*o));
	fmt(path, sizeof(path), "/app/%s", c->env->app_name ? c->env->app_name : "app");
	o->path = pool_add(c, path);
	o->host_path = pool_add(c, "");
	o->name = o->soname = NX_LIB_NONE;
	o->loader = -1;
	o->nodeflib = c->bin->nodeflib;
	/* the loader uses the last of each; DT_RUNPATH hides DT_RPATH */
	for (int i = 0; i < c->bin->n_runpath; i++)
		if (c->bin->runpath_is_rpath[i])
			rpath = i;
		else
			runpath = i;
	o->runpath = o->rpath = NX_LIB_NONE;
	if (runpath >= 0)
		o->runpath = pool_addn(c, c->bin->runpath[runpath].ptr,
							   c->bin->runpath[runpath].len);
	else if (rpath >= 0)
		o->rpath = pool_addn(c, c->bin->runpath[rpath].ptr,
							 c->bin->runpath[rpath].len);
	c->w->n_objects = 1;
}

/* add_interpreter: object 1, the dynamic loader named by PT_INTERP */
static void
add_interpreter(Check *c)
{
	char		interp[NX_VIEW_PATH_MAX];
	NxViewResult *v = &c->w->view;

	fmt(interp, sizeof(interp), "%.*s", (int) c->bin->interpreter.len,
			 c->bin->interpreter.ptr);
	NxViewResolve(c->env->ops, interp, v);
	switch (v->kind)
	{
		case NX_VIEW_FILE:
			break;
		case NX_VIEW_MISSING:
			NxElfAddProblem(c->bin, NX_ELF_INTERPRETER_MISSING,
							"dynamic loader %s does not exist on this host", interp);
			return;
		case NX_VIEW_HIDDEN:
			if (v->via_symlink)
			{
				NxElfAddProblem(c->bin, NX_ELF_INTERPRETER_MISSING,
								"dynamic loader %s leads to %s, which sandboxes cannot see",
								interp, v->where);
				return;
			}
			/* FALLTHROUGH */
		case NX_VIEW_APP:
		case NX_VIEW_EMPTY:
			NxElfAddProblem(c->bin, NX_ELF_INTERPRETER_MISSING,
							"dynamic loader %s is outside /usr and /lib, where sandboxes cannot see it",
							interp);
			return;
		default:
			NxElfAddProblem(c->bin, NX_ELF_INTERPRETER_MISSING,
							"dynamic loader %s is not a regular file", interp);
			return;
	}
	c->reasons[0] = '\0';
	c->n_rejected = 0;
	if (try_file(c, interp, v, interp, -1, NULL) != TRY_FOUND)
	{
		NxElfAddProblem(c->bin, NX_ELF_INTERPRETER_MISSING,
						"dynamic loader %s cannot be used: %s", interp, c->reasons);
		return;
	}
	c->w->objects[c->found].is_interpreter = true;
	c->w->interpreter_found = true;
}

/*
 * NxLibCheckRun: the binary and its interpreter, every library breadth
 * first, then every object's versions (nx_libcheck.h)
 */
void
NxLibCheckRun(const NxLibEnv *env, NxElfInfo *binary, NxLibCheck *work)
{
	Check		c;

	memset(&c, 0, sizeof(c));
	c.env = env;
	c.bin = binary;
	c.w = work;
	work->interpreter_found = false;
	work->n_missing = work->n_missing_versions = 0;
	work->incomplete = false;
	work->note[0] = '\0';
	work->n_objects = work->n_needed = work->n_versions = 0;
	work->pool_used = 0;

	if (!binary->has_interpreter)
		return;					/* static, or a damaged PT_INTERP */
	c.have_cache = env->cache != NULL &&
		NxLdCacheOpen(&c.cache, env->cache, env->cache_len, NULL, 0);
	default_dirs(&c);
	add_binary(&c);
	add_interpreter(&c);
	if (binary->verneed_truncated)
		note(&c, "the binary needs more symbol versions than the check keeps; some were not checked");
	load_needed(&c);
	for (int o = 0; o < work->n_objects; o++)
		if (!work->objects[o].is_interpreter)
			check_versions_of(&c, o);
}
