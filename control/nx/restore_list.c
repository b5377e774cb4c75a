/*
 * control/nx/restore_list.c
 *	  The table of contents nx db restore hands pg_restore (--use-list):
 *	  the archive's own, without the privilege entries on pg_catalog
 *	  objects.
 *
 * The supervisor revokes the statistics views and functions from PUBLIC
 * inside every tenant database (src/supervisor/dbsetup.c), and pg_dump
 * archives such changes to pg_catalog's privileges ("ACL pg_catalog
 * FUNCTION pg_blocking_pids(integer)").  Restoring them needs the
 * bootstrap superuser, so with --exit-on-error the restore of any
 * tenant's dump stopped there, into a database that has them anyway.
 * Every other entry, the tenant's own GRANTs included, is kept.
 */
#include "nx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * catalog_acl: is this line of pg_restore --list a privilege entry on an
 * object of pg_catalog?  Entries read "ID; TABLEOID OID TYPE SCHEMA NAME
 * OWNER"; comment lines start with ';'.
 */
static bool
catalog_acl(const char *line)
{
	char		type[16];
	char		schema[16];
	const char *semi = strchr(line, ';');

	if (semi == NULL || semi == line)
		return false;
	if (sscanf(semi, "; %*u %*u %15s %15s", type, schema) != 2)
		return false;
	return strcmp(type, "ACL") == 0 && strcmp(schema, "pg_catalog") == 0;
}

/*
 * nx_restore_list writes the archive's list without pg_catalog privilege
 * entries to a new file under $TMPDIR (or /tmp) and returns its path
 * (malloc'd; the caller unlinks it), or NULL with the error made.
 */
char *
nx_restore_list(const char *archive)
{
	const char *tmpdir = getenv("TMPDIR");
	char	   *path;
	int			fds[2];
	int			out;
	int			status;
	pid_t		pid;
	FILE	   *in;
	FILE	   *list;
	char	   *line = NULL;
	size_t		cap = 0;

	if (tmpdir == NULL || *tmpdir == '\0')
		tmpdir = "/tmp";
	path = malloc(strlen(tmpdir) + sizeof("/nx-restore-XXXXXX"));
	if (path == NULL)
	{
		nx_error("out of memory");
		return NULL;
	}
	sprintf(path, "%s/nx-restore-XXXXXX", tmpdir);
	out = mkstemp(path);
	if (out < 0)
	{
		nx_error("cannot create a file in %s: %s", tmpdir, strerror(errno));
		free(path);
		return NULL;
	}
	if (pipe(fds) != 0)
	{
		nx_error("cannot make a pipe: %s", strerror(errno));
		goto fail;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
	{
		nx_error("cannot fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		goto fail;
	}
	if (pid == 0)
	{
		char	   *largv[] = {"pg_restore", "--list", (char *) archive, NULL};

		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execvp(largv[0], largv);
		/* the parent reports no error of its own for this: print it here */
		nx_error("cannot run pg_restore: %s", strerror(errno));
		nx_error_flush(NX_EXIT_SERVER);
		_exit(127);
	}
	close(fds[1]);
	in = fdopen(fds[0], "r");
	list = fdopen(out, "w");
	if (in == NULL || list == NULL)
	{
		nx_error("out of memory");
		nx_exit(NX_EXIT_SERVER);
	}
	while (getline(&line, &cap, in) >= 0)
		if (!catalog_acl(line))
			fputs(line, list);
	free(line);
	fclose(in);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (fclose(list) != 0)
	{
		nx_error("cannot write %s: %s", path, strerror(errno));
		unlink(path);
		free(path);
		return NULL;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
	{
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 127)
			nx_error("pg_restore --list failed (exit status %d): is the file a pg_dump archive (nx db dump)?",
					 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		unlink(path);
		free(path);
		return NULL;
	}
	return path;

fail:
	close(out);
	unlink(path);
	free(path);
	return NULL;
}
