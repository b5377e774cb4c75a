/*
 * control/nx/main.c
 *	  nx, the command-line client of nx_sandbox: global options, dispatch
 *	  to the command files, and the help texts.
 *
 * Usage: nx [-d CONNSTR] [--json] COMMAND [ARGS...]; -d and --json are
 * also accepted after the command.  Exit codes: 0 ok, 1 usage, 2 server
 * or connection error, 3 binary refused locally, 4 a deployment waited
 * for did not become ready (or production).
 *
 * The command table below is also where the options of each command are
 * listed for "did you mean" (options.c reads them from the usage line).
 */
#include "nx.h"

#include <stdlib.h>
#include <string.h>

NxGlobal	nx_global;

typedef struct NxCommand
{
	const char *name;
	int			(*fn) (int argc, char **argv);
	const char *group;			/* the heading it is listed under */
	const char *usage;			/* also the list of its options ("did you mean") */
	const char *summary;
	const char *help;
} NxCommand;

#define APPS "Apps and deployments"
#define SANDBOXES "Sandboxes"

static const NxCommand commands[] = {
	{"push", cmd_push, APPS,
		"nx push SANDBOX FILE [--name NAME] [--label L] [--database MODE] [--env K=V]... [--arg A]... [--promote] [--no-wait] [--timeout SECONDS] [-- ARGS...]",
		"push a binary: a new deployment with its own preview URL",
		"Checks FILE locally first (as \"nx verify --elf-only\" does) and refuses it with exit\n"
		"code 3, before connecting, when it cannot run.  Then sends it, prints the\n"
		"deployment id, label, preview URL and command line, and waits (polling\n"
		"nx.status every 100 ms, up to --timeout, default 60 s) until the deployment\n"
		"is ready (exit 0), or failed or crashlooping (exit 4, with its last 20 log\n"
		"lines).\n"
		"  --name NAME     the app's file name in /app and its argv[0] (default: the\n"
		"                  base name of FILE, made of [A-Za-z0-9._-]); a multi-call\n"
		"                  binary such as busybox dispatches on it\n"
		"  --label L       a label (1-64 of [A-Za-z0-9._+-])\n"
		"  --database MODE the database it uses: branch (a copy of production's,\n"
		"                  made now), empty (one of its own), or production (the\n"
		"                  production database itself); default: the sandbox's\n"
		"                  preview database (nx info), production for a first push\n"
		"  --env K=V       a variable for this deployment only (repeatable)\n"
		"  --arg A         an argument of the app (repeatable, in order)\n"
		"  -- ARGS...      the app's arguments, all after \"--\" (instead of --arg)\n"
		"  --promote       promote it once it is ready (with --no-wait: at once,\n"
		"                  ready or not, as nx promote --force does); one with a\n"
		"                  database of its own is started anew on production's and\n"
		"                  waited for until it is production\n"
		"  --no-wait       do not wait for it to become ready\n"
		"  --timeout SECONDS  how long to wait (default 60)\n"
		"In the arguments, $PORT, $NX_SANDBOX, $NX_DEPLOYMENT, $PGHOST, $PGPORT,\n"
		"$PGDATABASE, $PGUSER (or ${NAME}) are expanded by the platform at each\n"
		"start, and $$ is a literal $.  Quote them with single quotes so that your\n"
		"shell leaves them alone:\n"
		"  nx push app ./caddy -- respond --listen ':$PORT' 'hello'\n"},
	{"promote", cmd_promote, APPS, "nx promote SANDBOX [DEPLOYMENT] [--force] [--no-wait] [--timeout SECONDS]",
		"make a deployment (default: the newest) production",
		"Only a ready deployment (or one asleep after idling, which the first\n"
		"request wakes) is promoted, so that no request fails; the server says\n"
		"why not otherwise (exit 2).\n"
		"A preview with a database of its own (branch, empty) is not moved: its\n"
		"binary starts on the production database as a new deployment, which\n"
		"becomes production once ready.  nx waits for that (exit 4 if it fails).\n"
		"  --force         promote it even if it is not ready\n"
		"  --no-wait       do not wait for a new deployment to become production\n"
		"  --timeout SECONDS  how long to wait (default 60)\n"},
	{"rollback", cmd_rollback, APPS, "nx rollback SANDBOX [--force]",
		"undo the latest promotion not undone yet",
		"Like promote, only moves production to a ready (or asleep) deployment.\n"
		"  --force         roll back even if that deployment is not ready\n"},
	{"restart", cmd_start, APPS, "nx restart SANDBOX [DEPLOYMENT]",
		"restart the app (picks up env and limit changes)",
		"Without DEPLOYMENT: the sandbox's production deployment, else its newest\n"
		"one.  A deployment id alone (\"nx restart 42\") works too.\n"},
	{"stop", cmd_start, APPS, "nx stop SANDBOX [DEPLOYMENT]",
		"stop the app (or one deployment)",
		"Without DEPLOYMENT: the sandbox's production deployment, else its newest\n"
		"one.  A deployment id alone (\"nx stop 42\") works too.\n"},
	{"start", cmd_start, APPS, "nx start SANDBOX [DEPLOYMENT]",
		"start the app (also retries a failed one)",
		"Without DEPLOYMENT: the sandbox's production deployment, else its newest\n"
		"one.  A deployment id alone (\"nx start 42\") works too.\n"},
	{"remove", cmd_remove, APPS, "nx remove SANDBOX DEPLOYMENT",
		"remove a deployment for good (not the production one)",
		"Stops it and releases its port and preview URL; it stays in the history.\n"},
	{"status", cmd_status, APPS, "nx status [SANDBOX]",
		"deployments with their state, port and URLs", NULL},
	{"logs", cmd_logs, APPS, "nx logs SANDBOX [DEPLOYMENT] [-n|--lines N] [-f|--follow]",
		"the last lines a deployment printed",
		"Without DEPLOYMENT: the production deployment, else the newest one.\n"
		"  -n N       how many lines (default 100, at most 100000)\n"
		"  -f         follow: poll every 500 ms and print new lines until interrupted\n"
		"             (see docs/cli.md for the limitation of following)\n"},
	{"verify", cmd_verify, APPS, "nx verify FILE [--elf-only]",
		"check locally whether FILE can run as an app (exit 0 yes, 3 no)",
		"Runs the same checks as the server, without connecting: the ELF reader,\n"
		"then (unless --elf-only) whether a sandbox on this machine would find\n"
		"the dynamic loader, every library and every symbol version it needs.\n"
		"The server repeats that check against its own host at push.\n"},
	{"ls", cmd_ls, SANDBOXES, "nx ls", "list your sandboxes", NULL},
	{"info", cmd_info, SANDBOXES, "nx info SANDBOX",
		"one sandbox: URLs, database, every limit, domains", NULL},
	{"create", cmd_create, SANDBOXES,
		"nx create SANDBOX [--memory SIZE] [--pids N] [--open-files N] [--cpu-weight N] [--tmp SIZE] [--idle-timeout INTERVAL] [--connection-limit N] [--database-quota SIZE] [--preview-database MODE] [--owner ROLE]",
		"create a sandbox (omitted limits: the server's defaults)",
		"Sizes such as 512MB or 1GB, intervals such as 10min or 0 (never idle).\n"
		"  --owner ROLE    a team role you belong to owns it (nx_admin: anyone)\n"
		"\"nx help alter\" says what each limit is.\n"},
	{"alter", cmd_alter, SANDBOXES,
		"nx alter SANDBOX [--memory SIZE] [--pids N] [--open-files N] [--cpu-weight N] [--tmp SIZE] [--idle-timeout INTERVAL] [--connection-limit N] [--database-quota SIZE] [--preview-database MODE]",
		"change a sandbox's limits",
		"Options left out keep their value.  Each value must lie within the\n"
		"cluster's ceiling (nx.max_* settings).\n"
		"At each deployment's next start (\"nx restart SANDBOX\" applies them now):\n"
		"  --memory SIZE           memory (cgroup memory.max)\n"
		"  --pids N                processes and threads (cgroup pids.max)\n"
		"  --open-files N          open files per process (RLIMIT_NOFILE)\n"
		"  --cpu-weight N          CPU share (cgroup cpu.weight, 1-10000)\n"
		"  --tmp SIZE              size of the sandbox's /tmp\n"
		"At once:\n"
		"  --idle-timeout INTERVAL stop idle deployments after this (0: never)\n"
		"  --connection-limit N    connections of the sandbox's database role\n"
		"  --database-quota SIZE   size of the sandbox's database\n"
		"For the deployments pushed from then on:\n"
		"  --preview-database MODE the database a preview gets unless nx push\n"
		"                          --database says otherwise: branch (a copy of\n"
		"                          production's), empty, or production (shared)\n"},
	{"destroy", cmd_destroy, SANDBOXES, "nx destroy SANDBOX [--keep-database]",
		"drop a sandbox, its deployments and (unless kept) its database", NULL},
	{"env", cmd_env, SANDBOXES, "nx env SANDBOX list [--show] | set K=V | unset K",
		"the sandbox's environment variables",
		"Values are printed as *** unless --show.  Deployments get a change at\n"
		"their next start: \"nx restart SANDBOX\".\n"},
	{"domains", cmd_domains, SANDBOXES,
		"nx domains [ls [SANDBOX]] | add SANDBOX DOMAIN | rm [SANDBOX] DOMAIN | check [SANDBOX] DOMAIN [--timeout SECONDS] | approve SANDBOX DOMAIN",
		"custom domains of a sandbox",
		"  ls [SANDBOX]             your claimed domains: pending, verified or taken\n"
		"  add SANDBOX DOMAIN       claim DOMAIN; prints the DNS TXT record that\n"
		"                           proves it; it routes once verified\n"
		"  rm [SANDBOX] DOMAIN      drop the claim (without SANDBOX: all of yours)\n"
		"  check [SANDBOX] DOMAIN   look for the TXT record now; waits up to\n"
		"                           --timeout (default 10 s) for the result\n"
		"  approve SANDBOX DOMAIN   verify it by hand (members of nx_admin)\n"},
	{"db", cmd_db, SANDBOXES, "nx db url|psql|dump|restore SANDBOX [FILE] [--deployment N] | kept | drop-kept SANDBOX",
		"the sandbox's own database",
		"  nx db url SANDBOX           print its URL (contains the password)\n"
		"  nx db psql SANDBOX [-- ARGS...]  run psql as the sandbox role\n"
		"  nx db dump SANDBOX FILE     pg_dump -Fc into FILE\n"
		"  nx db restore SANDBOX FILE  pg_restore --no-owner --role=<sandbox role>\n"
		"  nx db kept                  databases kept by \"nx destroy --keep-database\"\n"
		"  nx db drop-kept SANDBOX     drop such a database (its name is free again)\n"
		"  --deployment N  the database of deployment N (a preview's own) instead of\n"
		"                  the production database\n"
		"psql, pg_dump and pg_restore are found in PATH and get the password in\n"
		"PGPASSWORD, never on their command line.\n"},
	{"help", NULL, NULL, "nx help [COMMAND]", "help on a command", NULL},
	{NULL, NULL, NULL, NULL, NULL, NULL}
};

/* words people try for a command nx names otherwise ("did you mean") */
static const char *const synonyms[][2] = {
	{"deploy", "push"}, {"list", "ls"}, {"apps", "ls"}, {"delete", "destroy"},
	{"rm", "remove"}, {"log", "logs"}, {"config", "env"}, {"scale", "alter"},
	{"domain", "domains"}, {"ps", "status"}, {"show", "info"}, {"new", "create"},
	{NULL, NULL}
};

/* find_command: the command called name, or NULL */
static const NxCommand *
find_command(const char *name)
{
	for (const NxCommand *c = commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

/* print_help: nx --help, the commands by group */
static void
print_help(FILE *out)
{
	const char *groups[] = {APPS, SANDBOXES};

	fprintf(out,
			"nx %s: the command-line client of nx_sandbox\n\n"
			"Usage: nx [-d CONNSTR] [--json] COMMAND [ARGS...]\n",
			NX_VERSION);
	for (int g = 0; g < 2; g++)
	{
		fprintf(out, "\n%s:\n", groups[g]);
		for (const NxCommand *c = commands; c->name; c++)
			if (c->group && strcmp(c->group, groups[g]) == 0)
				fprintf(out, "  %-9s %s\n", c->name, c->summary);
	}
	fprintf(out,
			"\nOptions (before or after the command):\n"
			"  -d, --dbname CONNSTR  the control database (conninfo or URI); default:\n"
			"                        libpq's PGSERVICE, PGHOST, PGPORT, PGUSER, PGDATABASE\n"
			"  --json                machine-readable output; errors as one JSON object\n"
			"  -h, --help            this help; \"nx help COMMAND\" for one command\n"
			"  --version             print the version\n"
			"\nExit codes: 0 ok, 1 usage error, 2 server or connection error,\n"
			"3 binary refused locally, 4 a deployment nx waited for did not become\nready (push) or production (promote of a preview).\n");
}

/* nx_command_usage: the usage line of a command (NULL: no such command) */
const char *
nx_command_usage(const char *name)
{
	const NxCommand *c = find_command(name);

	return c ? c->usage : NULL;
}

/*
 * unknown_command: a usage error for a word that is no command, with "did
 * you mean" from the commands' names and the synonyms.
 */
static void
unknown_command(const char *command, const char *word)
{
	const char *names[64];
	int			n = 0;

	for (int i = 0; synonyms[i][0]; i++)
		if (strcmp(synonyms[i][0], word) == 0)
		{
			char		hint[128];

			snprintf(hint, sizeof(hint), "did you mean \"%s\"?", synonyms[i][1]);
			nx_usage_error_hint(command, hint, "unknown command \"%s\"", word);
		}
	for (const NxCommand *c = commands; c->name && n < 63; c++)
		names[n++] = c->name;
	names[n] = NULL;
	nx_unknown_word(command, "command", word, names, NULL);
}

/* nx_print_command_help: nx help COMMAND */
void
nx_print_command_help(FILE *out, const char *name)
{
	const NxCommand *c = find_command(name);

	if (c == NULL)
		return;
	fprintf(out, "Usage: %s\n\n%s.\n", c->usage, c->summary);
	if (c->help)
		fprintf(out, "\n%s", c->help);
	fprintf(out, "\nAlso: -d CONNSTR, --json.  See docs/cli.md.\n");
}

/*
 * main: global options, then the command; the command's exit code is the
 * run's, and the error it left (if any) is printed on the way out.
 */
int
main(int argc, char **argv)
{
	int			i;
	int			rc;
	const NxCommand *c;

	/* errors as JSON as soon as --json is anywhere (before "--") */
	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--json") == 0)
			nx_global.json_errors = true;

	for (i = 1; i < argc; i++)
	{
		if (nx_opt_global(argc, argv, &i, NULL))
			continue;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
		{
			print_help(stdout);
			return NX_EXIT_OK;
		}
		if (strcmp(argv[i], "--version") == 0)
		{
			printf("nx %s\n", NX_VERSION);
			return NX_EXIT_OK;
		}
		if (argv[i][0] == '-')
			nx_reject_option(NULL, argv[i]);
		break;
	}
	if (i >= argc)
		nx_usage_error(NULL, "missing command");
	c = find_command(argv[i]);
	if (c == NULL)
		unknown_command(NULL, argv[i]);
	if (c->fn == NULL)
	{
		/* help [COMMAND] */
		if (i + 1 >= argc)
		{
			print_help(stdout);
			return NX_EXIT_OK;
		}
		if (find_command(argv[i + 1]) == NULL)
			unknown_command("help", argv[i + 1]);
		nx_print_command_help(stdout, argv[i + 1]);
		return NX_EXIT_OK;
	}
	if (i + 1 < argc &&
		(strcmp(argv[i + 1], "--help") == 0 || strcmp(argv[i + 1], "-h") == 0))
	{
		nx_print_command_help(stdout, c->name);
		return NX_EXIT_OK;
	}
	rc = c->fn(argc - i, argv + i);
	nx_error_flush(rc);
	return rc;
}
