/*
 * control/nx/db.c
 *	  The sandbox's own database: nx db url | psql | dump | restore | kept |
 *	  drop-kept.
 *
 * The credentials come from nx.database_url (the sandbox role, its
 * password, the cluster's unix socket; with --deployment N, the role and
 * database of that deployment: a preview's own when it has one).  psql, pg_dump and pg_restore are
 * found in PATH and get the connection in PGHOST, PGPORT, PGUSER,
 * PGDATABASE and the password in PGPASSWORD: the password never appears on
 * a command line (where ps would show it).  PGSERVICE and PGHOSTADDR are
 * removed from their environment, since they would override the rest.
 *
 * Also the databases kept by "nx destroy --keep-database": nx db kept
 * lists them (nx.kept_database_info), nx db drop-kept SANDBOX lets the
 * supervisor drop one (nx.drop_kept_database).
 */
#include "nx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const actions[] = {"url", "psql", "dump", "restore", "kept", "drop-kept", NULL};

typedef struct DbCreds
{
	char	   *host;
	char	   *port;
	char	   *user;
	char	   *dbname;
	char	   *password;
} DbCreds;

/*
 * url_for: the URL of the sandbox's database (nx.database_url), or of the
 * database deployment uses (a preview's own; NULL: production), malloc'd
 */
static char *
url_for(const char *sandbox, const char *deployment)
{
	PGconn	   *conn = nx_connect();
	const char *params[2] = {sandbox, deployment};
	PGresult   *res = nx_query(conn, "SELECT nx.database_url($1, $2::bigint)", 2, params);
	char	   *url = strdup(PQgetvalue(res, 0, 0));

	nx_finish(conn, res);
	return url;
}

/* parse_url splits the URL into the parts the child programs get */
static void
parse_url(const char *url, DbCreds *c)
{
	char	   *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &err);

	memset(c, 0, sizeof(*c));
	if (opts == NULL)
	{
		nx_error("cannot parse the database URL the server returned: %s", err ? err : "out of memory");
		nx_exit(NX_EXIT_SERVER);
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
	{
		char	  **dst = NULL;

		if (strcmp(o->keyword, "host") == 0)
			dst = &c->host;
		else if (strcmp(o->keyword, "port") == 0)
			dst = &c->port;
		else if (strcmp(o->keyword, "user") == 0)
			dst = &c->user;
		else if (strcmp(o->keyword, "dbname") == 0)
			dst = &c->dbname;
		else if (strcmp(o->keyword, "password") == 0)
			dst = &c->password;
		if (dst && o->val)
			*dst = strdup(o->val);
	}
	PQconninfoFree(opts);
	if (!c->user || !c->dbname || !c->password)
	{
		nx_error("the database URL the server returned lacks a user, database or password");
		nx_exit(NX_EXIT_SERVER);
	}
}

/* free_creds frees what parse_url filled in */
static void
free_creds(DbCreds *c)
{
	free(c->host);
	free(c->port);
	free(c->user);
	free(c->dbname);
	free(c->password);
	memset(c, 0, sizeof(*c));
}

/* set_child_env: the connection for a child program, password included */
static void
set_child_env(const DbCreds *c)
{
	unsetenv("PGSERVICE");
	unsetenv("PGSERVICEFILE");
	unsetenv("PGHOSTADDR");
	unsetenv("PGOPTIONS");
	if (c->host)
		setenv("PGHOST", c->host, 1);
	else
		unsetenv("PGHOST");
	if (c->port)
		setenv("PGPORT", c->port, 1);
	else
		unsetenv("PGPORT");
	setenv("PGUSER", c->user, 1);
	setenv("PGDATABASE", c->dbname, 1);
	setenv("PGPASSWORD", c->password, 1);
}

/* run: fork, exec argv with the sandbox's credentials, wait */
static int
run(const DbCreds *c, char **argv)
{
	pid_t		pid;
	int			status;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
	{
		nx_error("cannot fork: %s", strerror(errno));
		return NX_EXIT_SERVER;
	}
	if (pid == 0)
	{
		set_child_env(c);
		execvp(argv[0], argv);
		/* the parent reports exit 2 for this: print it here, with that code */
		nx_error("cannot run %s: %s", argv[0], strerror(errno));
		nx_error_flush(NX_EXIT_SERVER);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
	{
		if (errno != EINTR)
		{
			nx_error("waitpid: %s", strerror(errno));
			return NX_EXIT_SERVER;
		}
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return NX_EXIT_OK;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return NX_EXIT_SERVER;	/* exec failed; already reported */
	if (WIFEXITED(status))
		nx_error("%s failed (exit status %d)", argv[0], WEXITSTATUS(status));
	else
		nx_error("%s was killed by signal %d", argv[0], WTERMSIG(status));
	return NX_EXIT_SERVER;
}

/* db_kept: nx db kept: the kept databases of your dropped sandboxes */
static int
db_kept(int npos)
{
	static const char *const cols[] = {"sandbox", "database_name", "role_name", "owner",
	"kept_by", "kept_at"};
	PGconn	   *conn;
	PGresult   *res;

	if (npos > 1)
		nx_usage_error("db", "kept takes no argument");
	conn = nx_connect();
	res = nx_query(conn, "SELECT * FROM nx.kept_database_info ORDER BY sandbox", 0, NULL);
	if (nx_global.json)
		nx_json_rows(stdout, res);
	else
		nx_print_table(stdout, res, cols, sizeof(cols) / sizeof(cols[0]));
	nx_finish(conn, res);
	return NX_EXIT_OK;
}

/*
 * db_drop_kept: nx db drop-kept SANDBOX (nx.drop_kept_database): the
 * supervisor then drops the database and role, and the name is free.
 */
static int
db_drop_kept(int npos, const char *sandbox)
{
	const char *params[1] = {sandbox};
	PGconn	   *conn;
	PGresult   *res;

	if (npos > 2)
		nx_usage_error("db", "too many arguments");
	conn = nx_connect();
	res = nx_query(conn, "SELECT nx.drop_kept_database($1)", 1, params);
	if (nx_global.json)
	{
		printf("{\"sandbox\": ");
		nx_json_string(stdout, sandbox);
		printf(", \"kept_database_dropped\": true}\n");
	}
	else
		printf("the kept database of sandbox %s is dropped (the name is free once the supervisor has removed it)\n",
			   sandbox);
	nx_finish(conn, res);
	return NX_EXIT_OK;
}

/*
 * cmd_db: nx db url|psql|dump|restore SANDBOX [FILE] [-- PSQL_ARGS],
 * nx db kept, nx db drop-kept SANDBOX
 */
int
cmd_db(int argc, char **argv)
{
	const char *pos[3] = {NULL, NULL, NULL};
	int			npos = 0;
	int			rest = argc;	/* first argument after "--" (psql) */
	const char *deployment = NULL;	/* --deployment N */
	DbCreds		creds;
	char	   *url;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--") == 0)
		{
			rest = i + 1;
			break;
		}
		if (nx_opt_global(argc, argv, &i, "db"))
			continue;
		if (nx_opt_value(argc, argv, &i, "db", "--deployment", &deployment))
		{
			nx_check_deployment_id("db", deployment);
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			nx_reject_option("db", argv[i]);
		if (npos == 3)
			nx_usage_error("db", "too many arguments");
		pos[npos++] = argv[i];
	}
	if (npos < 1)
		nx_usage_error("db", "missing action: url, psql, dump, restore, kept or drop-kept");
	{
		bool		known = false;

		for (const char *const *a = actions; *a; a++)
			known |= strcmp(*a, pos[0]) == 0;
		if (!known)
			nx_unknown_word("db", "action", pos[0], actions, "url, psql, dump, restore, kept or drop-kept");
	}
	if (rest < argc && strcmp(pos[0], "psql") != 0)
		nx_usage_error("db", "only psql takes arguments after --");
	if (deployment && (strcmp(pos[0], "kept") == 0 || strcmp(pos[0], "drop-kept") == 0))
		nx_usage_error("db", "--deployment goes with url, psql, dump and restore");
	if (strcmp(pos[0], "kept") == 0)
		return db_kept(npos);
	if (npos < 2)
		nx_usage_error("db", "missing argument SANDBOX");
	nx_global.sandbox = pos[1];
	if (strcmp(pos[0], "drop-kept") == 0)
		return db_drop_kept(npos, pos[1]);

	if (strcmp(pos[0], "url") == 0 || strcmp(pos[0], "psql") == 0)
	{
		if (npos > 2)
			nx_usage_error("db", "too many arguments");
		url = url_for(pos[1], deployment);
		if (strcmp(pos[0], "url") == 0)
		{
			if (nx_global.json)
			{
				printf("{\"sandbox\": ");
				nx_json_string(stdout, pos[1]);
				printf(", \"url\": ");
				nx_json_string(stdout, url);
				printf("}\n");
			}
			else
				printf("%s\n", url);
			free(url);
			return NX_EXIT_OK;
		}
		parse_url(url, &creds);
		free(url);
		{
			char	  **pargv = calloc(argc - rest + 2, sizeof(char *));
			int			k = 0;

			pargv[k++] = "psql";
			for (int i = rest; i < argc; i++)
				pargv[k++] = argv[i];
			set_child_env(&creds);
			fflush(stdout);
			execvp("psql", pargv);
			nx_error("cannot run psql: %s", strerror(errno));
			return NX_EXIT_SERVER;
		}
	}

	if (npos < 3)
		nx_usage_error("db", "missing argument FILE");
	url = url_for(pos[1], deployment);
	parse_url(url, &creds);
	free(url);
	if (strcmp(pos[0], "dump") == 0)
	{
		char	   *dargv[] = {"pg_dump", "--format=custom", "--file", (char *) pos[2], NULL};
		int			rc = run(&creds, dargv);

		if (rc == NX_EXIT_OK && !nx_global.json)
			printf("dumped database %s of sandbox %s into %s\n", creds.dbname, pos[1], pos[2]);
		else if (rc == NX_EXIT_OK)
		{
			printf("{\"sandbox\": ");
			nx_json_string(stdout, pos[1]);
			printf(", \"file\": ");
			nx_json_string(stdout, pos[2]);
			printf(", \"dumped\": true}\n");
		}
		free_creds(&creds);
		return rc;
	}
	else
	{
		char		role[128];
		char	   *list;
		char	   *use_list;
		char	   *rargv[] = {"pg_restore", "--no-owner", role, "--exit-on-error",
			NULL, "--dbname", creds.dbname, (char *) pos[2], NULL};
		int			rc;

		if (access(pos[2], R_OK) != 0)
		{
			nx_error("cannot read %s: %s", pos[2], strerror(errno));
			free_creds(&creds);
			return NX_EXIT_USAGE;
		}
		list = nx_restore_list(pos[2]);
		if (list == NULL)
		{
			free_creds(&creds);
			return NX_EXIT_SERVER;
		}
		use_list = malloc(strlen(list) + sizeof("--use-list="));
		if (use_list == NULL)
		{
			nx_error("out of memory");
			nx_exit(NX_EXIT_SERVER);
		}
		sprintf(use_list, "--use-list=%s", list);
		rargv[4] = use_list;
		snprintf(role, sizeof(role), "--role=%s", creds.user);
		rc = run(&creds, rargv);
		unlink(list);
		free(list);
		free(use_list);
		if (rc == NX_EXIT_OK && !nx_global.json)
			printf("restored %s into database %s of sandbox %s\n", pos[2], creds.dbname, pos[1]);
		else if (rc == NX_EXIT_OK)
		{
			printf("{\"sandbox\": ");
			nx_json_string(stdout, pos[1]);
			printf(", \"file\": ");
			nx_json_string(stdout, pos[2]);
			printf(", \"restored\": true}\n");
		}
		free_creds(&creds);
		return rc;
	}
}
