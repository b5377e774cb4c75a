/*
 * src/supervisor/hostsetup.c
 *	  What the host must offer before the supervisor may start sandboxes,
 *	  checked the same way for the supervisor (which refuses to start
 *	  anything when a required check fails, and says why in nx.runtime) and
 *	  for nx.check_setup() (one row per check, with the exact fix).
 *
 * The checks only read files; none changes the calling process (no
 * unshare in a backend).
 */
#include "hostsetup.h"
#include "supervisor.h"

#include <mntent.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "utils/guc.h"

/* AddCheck appends one result. */
static void
AddCheck(NxSetupReport *report, const char *name, bool ok, bool required,
		 const char *detail, const char *fix)
{
	NxSetupCheck *c;

	if (report->n >= NX_MAX_SETUP_CHECKS)
		return;
	c = &report->checks[report->n++];
	strlcpy(c->name, name, sizeof(c->name));
	c->ok = ok;
	c->required = required;
	strlcpy(c->detail, detail, sizeof(c->detail));
	strlcpy(c->fix, ok ? "" : fix, sizeof(c->fix));
}

/* ClusterUser is the name of the OS user the cluster runs as. */
static const char *
ClusterUser(void)
{
	struct passwd *pw = getpwuid(geteuid());

	return pw ? pw->pw_name : "postgres";
}

/*
 * FindSubordinateRange reads /etc/subuid or /etc/subgid for the cluster
 * user (by name or numeric id); returns false when it has no range of at
 * least two ids (one per sandbox, id 0 of the range is not used).
 */
static bool
FindSubordinateRange(const char *file, unsigned long *start, unsigned long *count)
{
	FILE	   *f = fopen(file, "r");
	char		line[512];
	char		uidbuf[32];
	const char *user = ClusterUser();
	bool		found = false;

	if (f == NULL)
		return false;
	snprintf(uidbuf, sizeof(uidbuf), "%u", (unsigned) geteuid());
	while (!found && fgets(line, sizeof(line), f) != NULL)
	{
		char		owner[256];
		unsigned long s,
					c;

		if (sscanf(line, "%255[^:]:%lu:%lu", owner, &s, &c) == 3 &&
			(strcmp(owner, user) == 0 || strcmp(owner, uidbuf) == 0) && c >= 2)
		{
			*start = s;
			*count = c;
			found = true;
		}
	}
	fclose(f);
	return found;
}

/*
 * IsPrivilegedHelper: newuidmap/newgidmap must be executable and either
 * setuid root or carry file capabilities, or they cannot write the maps.
 */
static bool
IsPrivilegedHelper(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || access(path, X_OK) != 0)
		return false;
	return (st.st_uid == 0 && (st.st_mode & S_ISUID)) ||
		getxattr(path, "security.capability", NULL, 0) > 0;
}

/*
 * NxPgSocketPath: the cluster's unix socket file (first directory of
 * unix_socket_directories), which each sandbox gets to reach its database.
 */
void
NxPgSocketPath(char *socket, size_t socket_len, char *dir, size_t dir_len)
{
	const char *dirs = GetConfigOption("unix_socket_directories", true, false);
	const char *comma;
	size_t		len;

	socket[0] = dir[0] = '\0';
	if (dirs == NULL || dirs[0] == '\0')
		return;
	while (*dirs == ' ')
		dirs++;
	comma = strchr(dirs, ',');
	len = comma ? (size_t) (comma - dirs) : strlen(dirs);
	while (len > 0 && dirs[len - 1] == ' ')
		len--;
	if (len == 0 || len >= dir_len || dirs[0] != '/')
		return;
	memcpy(dir, dirs, len);
	dir[len] = '\0';
	snprintf(socket, socket_len, "%s/.s.PGSQL.%d", dir, PostPortNumber);
}

/* ReadSysctlInt reads one integer from /proc/sys; -1 when absent. */
static long
ReadSysctlInt(const char *path)
{
	FILE	   *f = fopen(path, "r");
	long		v = -1;

	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/*
 * FileHasWord: does the file at path hold word as a whole
 * (whitespace-separated) word?  False if it cannot be read.
 */
static bool
FileHasWord(const char *path, const char *word)
{
	char		buf[4096];
	FILE	   *f = fopen(path, "r");
	bool		found = false;

	if (f == NULL)
		return false;
	while (!found && fscanf(f, "%4095s", buf) == 1)
		found = strcmp(buf, word) == 0;
	fclose(f);
	return found;
}

/*
 * AddCgroupMigrationCheck reports whether a cgroup hierarchy is mounted
 * with favordynmods.  Without it, the first write to cgroup.procs after a
 * quiet moment waits for an RCU grace period (the kernel's
 * cgroup_threadgroup_rwsem), and every sandbox start joins its cgroups
 * that way: 11 ms of a 17 ms start measured on one host, 22 us with it.
 * Not required: it only costs start latency.  The option is one switch
 * for the whole kernel, whichever hierarchy carries it.
 */
static void
AddCgroupMigrationCheck(NxSetupReport *report)
{
	FILE	   *mounts;
	struct mntent *m;
	char		detail[256] = "";

	if (!FileHasWord("/sys/kernel/cgroup/features", "favordynmods"))
	{
		AddCheck(report, "cgroup migrations", false, false,
				 "this kernel has no favordynmods (Linux 6.0 and later): each start waits for an RCU grace period to join its cgroups",
				 "a kernel with cgroup favordynmods (Linux 6.0 or later)");
		return;
	}
	mounts = setmntent("/proc/self/mounts", "r");
	while (mounts != NULL && detail[0] == '\0' && (m = getmntent(mounts)) != NULL)
	{
		if ((strcmp(m->mnt_type, "cgroup2") == 0 || strcmp(m->mnt_type, "cgroup") == 0) &&
			hasmntopt(m, "favordynmods") != NULL)
			snprintf(detail, sizeof(detail), "%s is mounted with favordynmods", m->mnt_dir);
	}
	if (mounts != NULL)
		endmntent(mounts);
	AddCheck(report, "cgroup migrations", detail[0] != '\0', false,
			 detail[0] ? detail : "no cgroup hierarchy is mounted with favordynmods: each start waits for an RCU grace period (about 10 ms) to join its cgroups",
			 "control/nx-setup (remounts the cgroup2 hierarchy with favordynmods), or mount -o remount,favordynmods on the cgroup2 mount point; after each boot, or boot Linux 6.7 or later with cgroup_favordynmods=true");
}

/*
 * NxSetupRun performs every host check into report, and fills host (when
 * not NULL) with what the supervisor needs to start sandboxes.
 */
void
NxSetupRun(NxSetupReport *report, NxHostSetup *host)
{
	char		buf[512];
	char		fix[512];
	char		path[MAXPGPATH];
	unsigned long uid_start = 0,
				uid_count = 0,
				gid_start = 0,
				gid_count = 0;
	bool		have_uids,
				have_gids;
	long		v;
	NxCgroupLayout cgroups;
	char		err[NX_RUNTIME_ERRLEN];
	const char *user = ClusterUser();

	memset(report, 0, sizeof(*report));

	/* bubblewrap */
	snprintf(buf, sizeof(buf), "%s", nx_bwrap_path);
	AddCheck(report, "bwrap", access(nx_bwrap_path, X_OK) == 0, true, buf,
			 "apt-get install bubblewrap (or set nx.bwrap_path)");

	/* our own helpers, installed by make install */
	snprintf(path, sizeof(path), "%s/nx_sandbox/nx-spawn", pkglib_path);
	AddCheck(report, "nx-spawn", access(path, X_OK) == 0, true, path,
			 "make install (nx-spawn belongs in $(pkglibdir)/nx_sandbox)");
	if (host)
		strlcpy(host->spawn_helper, path, sizeof(host->spawn_helper));
	snprintf(path, sizeof(path), "%s/nx_sandbox/nx-init", pkglib_path);
	AddCheck(report, "nx-init", access(path, R_OK) == 0, true, path,
			 "make install (nx-init belongs in $(pkglibdir)/nx_sandbox)");
	if (host)
		strlcpy(host->init, path, sizeof(host->init));

	/* newuidmap / newgidmap */
	AddCheck(report, "newuidmap", IsPrivilegedHelper("/usr/bin/newuidmap") &&
			 IsPrivilegedHelper("/usr/bin/newgidmap"), true,
			 "/usr/bin/newuidmap and /usr/bin/newgidmap, setuid root",
			 "apt-get install uidmap");

	/* subordinate ids: one host uid per sandbox (I10) */
	have_uids = FindSubordinateRange(nx_subuid_file, &uid_start, &uid_count);
	have_gids = FindSubordinateRange(nx_subgid_file, &gid_start, &gid_count);
	if (have_uids)
		snprintf(buf, sizeof(buf), "%s:%lu:%lu in %s", user, uid_start, uid_count, nx_subuid_file);
	else
		snprintf(buf, sizeof(buf), "no range for user %s in %s", user, nx_subuid_file);
	snprintf(fix, sizeof(fix), "usermod --add-subuids 200000-265535 %s (or add \"%s:200000:65536\" to %s)", user, user, nx_subuid_file);
	AddCheck(report, "subuid", have_uids, true, buf, fix);
	if (have_gids)
		snprintf(buf, sizeof(buf), "%s:%lu:%lu in %s", user, gid_start, gid_count, nx_subgid_file);
	else
		snprintf(buf, sizeof(buf), "no range for user %s in %s", user, nx_subgid_file);
	snprintf(fix, sizeof(fix), "usermod --add-subgids 200000-265535 %s (or add \"%s:200000:65536\" to %s)", user, user, nx_subgid_file);
	AddCheck(report, "subgid", have_gids, true, buf, fix);

	/* user namespaces */
	v = ReadSysctlInt("/proc/sys/user/max_user_namespaces");
	snprintf(buf, sizeof(buf), "user.max_user_namespaces = %ld", v);
	AddCheck(report, "user namespaces", v > 0, true, buf,
			 "sysctl -w user.max_user_namespaces=65536");
	v = ReadSysctlInt("/proc/sys/kernel/unprivileged_userns_clone");
	if (v >= 0)
	{
		snprintf(buf, sizeof(buf), "kernel.unprivileged_userns_clone = %ld", v);
		AddCheck(report, "unprivileged user namespaces", v == 1, true, buf,
				 "sysctl -w kernel.unprivileged_userns_clone=1");
	}

	/* cgroups: memory, pids and cpu limits per deployment */
	NxCgroupDetect(nx_cgroup_root, nx_cgroup_name, &cgroups, err, sizeof(err));
	if (cgroups.mode == NX_CGROUP_V2)
		snprintf(buf, sizeof(buf), "cgroup v2: %s", cgroups.parent[0]);
	else if (cgroups.mode == NX_CGROUP_V1)
		snprintf(buf, sizeof(buf), "cgroup v1: %s, %s, %s",
				 cgroups.parent[0], cgroups.parent[1], cgroups.parent[2]);
	else
		snprintf(buf, sizeof(buf), "no delegated cgroup: %s", err);
	snprintf(fix, sizeof(fix),
			 "delegate a cgroup to %s: v2: mkdir %s/%s, enable +memory +pids +cpu in the parent's cgroup.subtree_control, chown -R %s; "
			 "v1: mkdir %s/{memory,pids,cpu}/%s and chown -R %s them",
			 user, nx_cgroup_root, nx_cgroup_name, user, nx_cgroup_root, nx_cgroup_name, user);
	AddCheck(report, "cgroups", cgroups.mode != NX_CGROUP_NONE, nx_require_cgroups, buf, fix);

	/* start latency only: for nx.check_setup, not the supervisor's passes */
	if (host == NULL)
		AddCgroupMigrationCheck(report);

	/* the verdict the supervisor acts on */
	if (host)
	{
		host->ok = true;
		host->why[0] = '\0';
		for (int i = 0; i < report->n; i++)
		{
			if (!report->checks[i].ok && report->checks[i].required)
			{
				host->ok = false;
				snprintf(host->why, sizeof(host->why), "host setup incomplete (%s): %s; fix: %s",
						 report->checks[i].name, report->checks[i].detail, report->checks[i].fix);
				break;
			}
		}
		host->uid_base = (uid_t) uid_start;
		host->gid_base = (gid_t) gid_start;
		host->uid_count = (int) Min(uid_count, gid_count);
		host->cgroups = cgroups;
	}
}

/* NxHostSetupCheck: the supervisor's view of NxSetupRun. */
void
NxHostSetupCheck(NxHostSetup *host)
{
	NxSetupReport report;

	memset(host, 0, sizeof(*host));
	NxSetupRun(&report, host);
	NxPgSocketPath(host->pg_socket, sizeof(host->pg_socket),
				   host->pg_socket_dir, sizeof(host->pg_socket_dir));
}
