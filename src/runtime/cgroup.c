/*
 * src/runtime/cgroup.c
 *	  One control group per deployment, under parents delegated to the
 *	  cluster's OS user by the DBA setup (control/nx-setup): creating it with
 *	  the deployment's limits, killing everything in it, removing it,
 *	  listing the ones that exist and reading their usage.
 *
 * cgroup v2: one delegated directory <parent>/<key> with memory.max,
 * memory.swap.max = 0, pids.max, cpu.weight (and memory.oom.group, so an
 * out-of-memory kill takes the whole sandbox down and the supervisor sees
 * one clean death).  cgroup v1 (hybrid hosts): the same key under each of
 * the memory, pids and cpu parents, with memory.limit_in_bytes (+
 * memory.memsw.limit_in_bytes when swap accounting exists), pids.max and
 * cpu.shares.
 *
 * Processes join in nx-spawn (see nx_spawn.c), before they leave the
 * cluster's uid: v1 refuses to let the cluster's uid move a process that
 * already runs as another uid.
 *
 * Glossary:
 *	  key		the deployment's cgroup name, [a-z0-9_-]{1,64}
 *	  parent	a delegated directory the keys live in (layout->parent[])
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "runtime_int.h"

#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/* v1 parents, in layout->parent[] order */
static const char *const v1_controllers[] = {"memory", "pids", "cpu"};

#define V1_MEMORY 0
#define V1_PIDS 1
#define V1_CPU 2

/* how long NxCgroupKill keeps sweeping a cgroup that refills (forks) */
#define KILL_ROUNDS 200
#define KILL_PAUSE_NS 2000000L	/* 2 ms between sweeps */

/*
 * fs_is reports whether path lives on a filesystem of type magic.
 */
static bool
fs_is(const char *path, long magic)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 && (long) sf.f_type == magic;
}

/*
 * file_has_word says whether the whitespace-separated file path lists word
 * (e.g. "memory" in cgroup.subtree_control).
 */
static bool
file_has_word(const char *path, const char *word)
{
	char		buf[512];
	char	   *tok,
			   *save;

	if (NxReadFile(path, buf, sizeof(buf)) < 0)
		return false;
	for (tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
		if (strcmp(tok, word) == 0)
			return true;
	return false;
}

/*
 * v2_candidate says whether dir is a delegated cgroup v2 directory we can
 * use: on cgroup2, writable, memory and pids enabled for its children.
 * Otherwise explains why not in why.
 */
static bool
v2_candidate(const char *dir, char *why, size_t whylen)
{
	char		path[PATH_MAX];

	if (!fs_is(dir, CGROUP2_SUPER_MAGIC))
	{
		NxSetErr(why, whylen, "%s: not a cgroup v2 directory", dir);
		return false;
	}
	NxPathJoin(path, sizeof(path), dir, "cgroup.procs");
	if (access(dir, W_OK | X_OK) != 0 || access(path, W_OK) != 0)
	{
		NxSetErr(why, whylen, "%s: not writable by uid %d (delegate it)",
				 dir, (int) getuid());
		return false;
	}
	NxPathJoin(path, sizeof(path), dir, "cgroup.subtree_control");
	if (!file_has_word(path, "memory") || !file_has_word(path, "pids"))
	{
		NxSetErr(why, whylen, "%s: memory and pids are not enabled in cgroup.subtree_control",
				 dir);
		return false;
	}
	return true;
}

/*
 * NxCgroupDetect finds the delegated parents (see nx_runtime.h): cgroup v2
 * at <root>/<name> or <root>/unified/<name>, else v1 under
 * <root>/{memory,pids,cpu}/<name>.  Never fails: NX_CGROUP_NONE with the
 * reason in err.
 */
void
NxCgroupDetect(const char *root, const char *name, NxCgroupLayout *layout,
			   char *err, size_t errlen)
{
	char		dir[PATH_MAX];
	char		why2[NX_RUNTIME_ERRLEN] = "",
				why1[NX_RUNTIME_ERRLEN] = "";
	const char *v2_bases[] = {"", "/unified"};
	int			i;

	memset(layout, 0, sizeof(*layout));
	layout->mode = NX_CGROUP_NONE;
	if (err && errlen)
		err[0] = '\0';
	if (!NxKeyValid(name))
	{
		NxSetErr(err, errlen, "invalid cgroup parent name \"%s\"", name);
		return;
	}

	for (i = 0; i < 2; i++)
	{
		struct stat st;

		snprintf(dir, sizeof(dir), "%s%s/%s", root, v2_bases[i], name);
		if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
			continue;
		if (v2_candidate(dir, why2, sizeof(why2)) &&
			strlen(dir) < sizeof(layout->parent[0]))
		{
			layout->mode = NX_CGROUP_V2;
			NxPathJoin(layout->parent[0], sizeof(layout->parent[0]), dir, NULL);
			layout->n_parents = 1;
			return;
		}
	}

	for (i = 0; i < 3; i++)
	{
		struct statfs sf;

		snprintf(dir, sizeof(dir), "%s/%s/%s", root, v1_controllers[i], name);
		if (statfs(dir, &sf) != 0)
		{
			NxSetErr(why1, sizeof(why1), "%s: %s", dir, strerror(errno));
			break;
		}
		if ((long) sf.f_type != CGROUP_SUPER_MAGIC)
		{
			NxSetErr(why1, sizeof(why1), "%s: not a cgroup v1 directory", dir);
			break;
		}
		if (access(dir, W_OK | X_OK) != 0)
		{
			NxSetErr(why1, sizeof(why1), "%s: not writable by uid %d",
					 dir, (int) getuid());
			break;
		}
		if (!NxPathJoin(layout->parent[i], sizeof(layout->parent[i]), dir, NULL))
		{
			NxSetErr(why1, sizeof(why1), "%s: path too long", dir);
			break;
		}
	}
	if (i == 3)
	{
		layout->mode = NX_CGROUP_V1;
		layout->n_parents = 3;
		return;
	}
	memset(layout->parent, 0, sizeof(layout->parent));
	NxSetErr(err, errlen, "no usable delegated cgroup: %s%s%s (run control/nx-setup as root)",
			 why2[0] ? why2 : "no cgroup v2 parent",
			 "; v1: ", why1);
}

/*
 * key_dir formats <parent[i]>/<key>; false if the key is invalid or the
 * layout has no such parent.
 */
static bool
key_dir(const NxCgroupLayout *layout, int i, const char *key,
		char *buf, size_t len)
{
	if (layout == NULL || layout->mode == NX_CGROUP_NONE ||
		i >= layout->n_parents || !NxKeyValid(key))
		return false;
	return snprintf(buf, len, "%s/%s", layout->parent[i], key) < (int) len;
}

/*
 * set_value writes value into <dir>/<file>.  Missing files are ignored when
 * optional (a controller or feature the host lacks); other failures set err.
 */
static bool
set_value(const char *dir, const char *file, const char *value,
		  bool optional, char *err, size_t errlen)
{
	char		path[PATH_MAX];
	int			e = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (NxWriteFile(path, value, &e))
		return true;
	if (optional && e == ENOENT)
		return true;
	NxSetErr(err, errlen, "write %s = %s: %s", path, value, strerror(e));
	errno = e;
	return false;
}

/*
 * make_dir creates a cgroup directory (an existing one is fine).
 */
static bool
make_dir(const char *dir, char *err, size_t errlen)
{
	if (mkdir(dir, 0755) == 0 || errno == EEXIST)
		return true;
	NxSetErr(err, errlen, "mkdir %s: %s", dir, strerror(errno));
	return false;
}

/*
 * create_v2 makes <parent>/<key> and applies the limits (0 = no limit).
 */
static bool
create_v2(const char *dir, const NxLimits *lim, char *err, size_t errlen)
{
	char		v[32];

	if (!make_dir(dir, err, errlen))
		return false;
	if (lim->memory_bytes > 0)
		snprintf(v, sizeof(v), "%" PRId64, lim->memory_bytes);
	else
		strcpy(v, "max");
	if (!set_value(dir, "memory.max", v, false, err, errlen) ||
		!set_value(dir, "memory.swap.max", "0", true, err, errlen) ||
		!set_value(dir, "memory.oom.group", "1", true, err, errlen))
		return false;
	if (lim->pids > 0)
		snprintf(v, sizeof(v), "%d", lim->pids);
	else
		strcpy(v, "max");
	if (!set_value(dir, "pids.max", v, false, err, errlen))
		return false;
	snprintf(v, sizeof(v), "%d", lim->cpu_weight > 0 ? lim->cpu_weight : 100);
	return set_value(dir, "cpu.weight", v, true, err, errlen);
}

/*
 * v1_memory sets memory.limit_in_bytes and (if swap is accounted)
 * memory.memsw.limit_in_bytes to the same value, so the sandbox cannot
 * swap past its limit.  The kernel wants limit <= memsw at every moment,
 * so when raising, memsw goes first.
 */
static bool
v1_memory(const char *dir, int64_t bytes, char *err, size_t errlen)
{
	char		v[32],
				path[PATH_MAX];
	bool		memsw;

	snprintf(v, sizeof(v), "%" PRId64, bytes > 0 ? bytes : (int64_t) -1);
	NxPathJoin(path, sizeof(path), dir, "memory.memsw.limit_in_bytes");
	memsw = access(path, F_OK) == 0;
	if (!memsw)
		return set_value(dir, "memory.limit_in_bytes", v, false, err, errlen);
	if (bytes > 0 && set_value(dir, "memory.limit_in_bytes", v, false, err, errlen))
		return set_value(dir, "memory.memsw.limit_in_bytes", v, false, err, errlen);
	if (bytes > 0 && errno != EINVAL)
		return false;
	/* raising (or lifting) the limit: memsw first */
	return set_value(dir, "memory.memsw.limit_in_bytes", v, false, err, errlen) &&
		set_value(dir, "memory.limit_in_bytes", v, false, err, errlen);
}

/*
 * create_v1 makes <parent>/<key> under each v1 parent and applies the
 * limits; cpu.shares = weight * 1024 / 100 (weight 100 = the default 1024).
 */
static bool
create_v1(const NxCgroupLayout *layout, const char *key, const NxLimits *lim,
		  char *err, size_t errlen)
{
	char		dir[PATH_MAX],
				v[32];
	int			i;

	for (i = 0; i < 3; i++)
	{
		if (!key_dir(layout, i, key, dir, sizeof(dir)) ||
			!make_dir(dir, err, errlen))
			return false;
		switch (i)
		{
			case V1_MEMORY:
				if (!v1_memory(dir, lim->memory_bytes, err, errlen))
					return false;
				break;
			case V1_PIDS:
				if (lim->pids > 0)
					snprintf(v, sizeof(v), "%d", lim->pids);
				else
					strcpy(v, "max");
				if (!set_value(dir, "pids.max", v, false, err, errlen))
					return false;
				break;
			case V1_CPU:
				{
					long		shares = lim->cpu_weight > 0 ?
						(long) lim->cpu_weight * 1024 / 100 : 1024;

					snprintf(v, sizeof(v), "%ld", shares < 2 ? 2 : shares);
					if (!set_value(dir, "cpu.shares", v, false, err, errlen))
						return false;
				}
				break;
		}
	}
	return true;
}

/*
 * NxCgroupCreate makes the deployment's cgroup (idempotent: an existing one
 * gets the new limits) and applies limits.
 */
bool
NxCgroupCreate(const NxCgroupLayout *layout, const char *key,
			   const NxLimits *limits, char *err, size_t errlen)
{
	char		dir[PATH_MAX];

	if (!NxKeyValid(key))
	{
		NxSetErr(err, errlen, "invalid cgroup key \"%s\" (want [a-z0-9_-]{1,64})",
				 key ? key : "(null)");
		return false;
	}
	if (layout == NULL || layout->mode == NX_CGROUP_NONE)
	{
		NxSetErr(err, errlen, "no delegated cgroup on this host");
		return false;
	}
	if (limits->cpu_weight < 0 || limits->cpu_weight > 10000 ||
		limits->memory_bytes < 0 || limits->pids < 0)
	{
		NxSetErr(err, errlen, "invalid limits (cpu weight %d, memory %" PRId64 ", pids %d)",
				 limits->cpu_weight, limits->memory_bytes, limits->pids);
		return false;
	}
	if (layout->mode == NX_CGROUP_V2)
		return key_dir(layout, 0, key, dir, sizeof(dir)) &&
			create_v2(dir, limits, err, errlen);
	return create_v1(layout, key, limits, err, errlen);
}

/*
 * read_pids reads up to max pids from <dir>/cgroup.procs; returns how many,
 * or -1 if the file cannot be read (no such cgroup).
 */
static int
read_pids(const char *dir, pid_t *pids, int max)
{
	char		path[PATH_MAX];
	FILE	   *f;
	int			n = 0;
	long		p;

	NxPathJoin(path, sizeof(path), dir, "cgroup.procs");
	f = fopen(path, "re");
	if (f == NULL)
		return -1;
	while (n < max && fscanf(f, "%ld", &p) == 1)
		pids[n++] = (pid_t) p;
	fclose(f);
	return n;
}

/*
 * sweep sends SIGKILL to every process listed in dir's cgroup.procs until
 * it stays empty or the rounds run out (a fork bomb refills it; pids.max
 * bounds how fast).  Returns how many kill() calls succeeded.
 */
static int
sweep(const char *dir)
{
	pid_t		pids[1024],
				seen[1024];
	int			round,
				n_seen = 0;

	for (round = 0; round < KILL_ROUNDS; round++)
	{
		int			n = read_pids(dir, pids, 1024),
					i,
					j;
		struct timespec pause = {0, KILL_PAUSE_NS};

		if (n <= 0)
			break;
		for (i = 0; i < n; i++)
		{
			if (kill(pids[i], SIGKILL) != 0)
				continue;
			/* count each process once, though a dying one is listed again */
			for (j = 0; j < n_seen && seen[j] != pids[i]; j++)
				;
			if (j == n_seen && n_seen < 1024)
				seen[n_seen++] = pids[i];
		}
		nanosleep(&pause, NULL);
	}
	return n_seen;
}

/*
 * NxCgroupKill sends SIGKILL to every process in the deployment's cgroup:
 * v2 through cgroup.kill when the kernel has it (atomic, fork-safe), else by
 * sweeping cgroup.procs; v1 by sweeping each hierarchy (nx-spawn joined all
 * of them, so one normally finds everything).  Returns how many processes
 * were signalled (v1: the most found in one hierarchy; for cgroup.kill: how
 * many were listed just before).  A cgroup that keeps refilling is swept for
 * at most KILL_ROUNDS * KILL_PAUSE_NS (0.4 s) per hierarchy.
 */
int
NxCgroupKill(const NxCgroupLayout *layout, const char *key)
{
	char		dir[PATH_MAX],
				path[PATH_MAX];
	int			i,
				killed = 0;

	if (layout == NULL || layout->mode == NX_CGROUP_NONE || !NxKeyValid(key))
		return 0;
	if (layout->mode == NX_CGROUP_V2)
	{
		pid_t		pids[1024];
		int			e;
		int			n;

		if (!key_dir(layout, 0, key, dir, sizeof(dir)))
			return 0;
		n = read_pids(dir, pids, 1024);
		NxPathJoin(path, sizeof(path), dir, "cgroup.kill");
		if (NxWriteFile(path, "1", &e))
			return n > 0 ? n : 0;
		return sweep(dir);
	}
	for (i = 0; i < layout->n_parents; i++)
	{
		int			n;

		/* normally the first hierarchy has everything; the max is the count */
		if (key_dir(layout, i, key, dir, sizeof(dir)) && (n = sweep(dir)) > killed)
			killed = n;
	}
	return killed;
}

/*
 * NxCgroupRemove removes the deployment's cgroup directories; a missing one
 * counts as removed.  False if processes remain (EBUSY) or rmdir fails.
 */
bool
NxCgroupRemove(const NxCgroupLayout *layout, const char *key)
{
	char		dir[PATH_MAX];
	int			i;
	bool		ok = true;

	if (layout == NULL || layout->mode == NX_CGROUP_NONE || !NxKeyValid(key))
		return false;
	for (i = 0; i < layout->n_parents; i++)
	{
		if (!key_dir(layout, i, key, dir, sizeof(dir)))
			return false;
		if (rmdir(dir) != 0 && errno != ENOENT)
			ok = false;
	}
	return ok;
}

/* CompareKeys orders cgroup names for qsort. */
static int
CompareKeys(const void *a, const void *b)
{
	return strcmp(a, b);
}

/*
 * NxCgroupList calls fn(key, arg) once for every deployment cgroup that
 * exists under any parent (v1: the union of the three hierarchies, so a
 * half-removed one is still found).  Names that are not valid keys are
 * skipped: they are not ours.  The names are sorted to drop the same one
 * seen under several parents (comparing each with all the others cost the
 * supervisor millions of strcmp a pass with 1,000 deployments).
 */
void
NxCgroupList(const NxCgroupLayout *layout,
			 void (*fn) (const char *key, void *arg), void *arg)
{
	char	  (*seen)[65] = NULL;
	size_t		n_seen = 0,
				cap = 0,
				j;
	int			i;

	if (layout == NULL || layout->mode == NX_CGROUP_NONE)
		return;
	for (i = 0; i < layout->n_parents; i++)
	{
		DIR		   *d = opendir(layout->parent[i]);
		struct dirent *e;

		if (d == NULL)
			continue;
		while ((e = readdir(d)) != NULL)
		{
			if (e->d_type != DT_DIR || !NxKeyValid(e->d_name))
				continue;
			if (n_seen == cap)
			{
				size_t		ncap = cap ? cap * 2 : 64;
				void	   *p = realloc(seen, ncap * sizeof(*seen));

				if (p == NULL)
					break;
				seen = p;
				cap = ncap;
			}
			NxPathJoin(seen[n_seen++], sizeof(seen[0]), e->d_name, NULL);
		}
		closedir(d);
	}
	if (n_seen > 1)
		qsort(seen, n_seen, sizeof(*seen), CompareKeys);
	for (j = 0; j < n_seen; j++)
		if (j == 0 || strcmp(seen[j], seen[j - 1]) != 0)
			fn(seen[j], arg);
	free(seen);
}

/*
 * read_int64 reads the first number in path, or the value after "key " in
 * a flat keyed file when key is given; -1 if absent.
 */
static int64_t
read_int64(const char *path, const char *key)
{
	char		buf[4096];
	char	   *p = buf;

	if (NxReadFile(path, buf, sizeof(buf)) < 0)
		return -1;
	if (key != NULL)
	{
		size_t		kl = strlen(key);

		for (p = buf; p != NULL; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
			if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
				break;
		if (p == NULL)
			return -1;
		p += kl + 1;
	}
	return (int64_t) strtoll(p, NULL, 10);
}

/*
 * NxCgroupStats reads current memory use (bytes) and cpu time (usec) of the
 * deployment; -1 where unavailable (v1 cpu time needs cpuacct mounted
 * together with cpu).
 */
void
NxCgroupStats(const NxCgroupLayout *layout, const char *key,
			  int64_t *memory_bytes, int64_t *cpu_usec)
{
	char		dir[PATH_MAX],
				path[PATH_MAX];

	*memory_bytes = -1;
	*cpu_usec = -1;
	if (layout == NULL || layout->mode == NX_CGROUP_NONE || !NxKeyValid(key))
		return;
	if (layout->mode == NX_CGROUP_V2)
	{
		if (!key_dir(layout, 0, key, dir, sizeof(dir)))
			return;
		NxPathJoin(path, sizeof(path), dir, "memory.current");
		*memory_bytes = read_int64(path, NULL);
		NxPathJoin(path, sizeof(path), dir, "cpu.stat");
		*cpu_usec = read_int64(path, "usage_usec");
		return;
	}
	if (key_dir(layout, V1_MEMORY, key, dir, sizeof(dir)))
	{
		NxPathJoin(path, sizeof(path), dir, "memory.usage_in_bytes");
		*memory_bytes = read_int64(path, NULL);
	}
	if (key_dir(layout, V1_CPU, key, dir, sizeof(dir)))
	{
		int64_t		ns;

		NxPathJoin(path, sizeof(path), dir, "cpuacct.usage");
		ns = read_int64(path, NULL);
		*cpu_usec = ns >= 0 ? ns / 1000 : -1;
	}
}
