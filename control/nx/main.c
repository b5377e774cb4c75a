/*
 * control/nx/main.c
 *	  nx, the command-line client of nx_sandbox: global options, dispatch
 *	  to the command files, and the help texts.
 *
 * Usage: nx [-d CONNSTR] [--json] COMMAND [ARGS...]; -d and --json are
 * also accepted after the command.  Exit codes: 0 ok, 1 usage, 2 server
 * or connection error, 3 binary refused locally, 4 deployment not ready.
 */
#include "nx.h"

#include <stdlib.h>
#include <string.h>

NxGlobal	nx_global;

typedef struct NxCommand
{
	const char *name;
	int			(*fn) (int argc, char **argv);
	const char *usage;
	const char *summary;
	const char *help;
} NxCommand;

static const NxCommand commands[] = {
	{"push", cmd_push,
		"nx push SANDBOX FILE [--label L] [--env K=V]... [--arg A]... [--promote] [--no-wait] [--timeout SECONDS]",
		"push a binary: a new deployment with its own preview URL",
		"Checks FILE locally first (as \"nx verify --elf-only\" does) and refuses it with exit\n"
		"code 3, before connecting, when it cannot run.  Then sends it, prints the\n"
		"deployment id, label and preview URL, and waits (polling nx.status every\n"
		"100 ms, up to --timeout, default 60 s) until the deployment is ready\n"
		"(exit 0), or failed or crashlooping (exit 4, with its last 20 log lines).\n"
		"  --label L       a label (1-64 of [A-Za-z0-9._+-])\n"
		"  --env K=V       a variable for this deployment only (repeatable)\n"
		"  --arg A         a command-line argument of the app (repeatable, in order)\n"
		"  --promote       promote it once it is ready (with --no-wait: at once,\n"
		"                  ready or not, as nx promote --force does)\n"
		"  --no-wait       do not wait for it to become ready\n"
		"  --timeout SECONDS  how long to wait (default 60)\n"},
	{"promote", cmd_promote, "nx promote SANDBOX [DEPLOYMENT] [--force]",
		"make a deployment (default: the newest) production",
		"Only a ready deployment (or one asleep after idling, which the first\n"
		"request wakes) is promoted, so that no request fails; the server says\n"
		"why not otherwise.\n"
		"  --force         promote it even if it is not ready\n"},
	{"rollback", cmd_rollback, "nx rollback SANDBOX [--force]",
		"undo the latest promotion not undone yet",
		"Like promote, only moves production to a ready (or asleep) deployment.\n"
		"  --force         roll back even if that deployment is not ready\n"},
	{"start", cmd_start, "nx start DEPLOYMENT", "start a deployment (also retries a failed one)", NULL},
	{"stop", cmd_start, "nx stop DEPLOYMENT", "stop a deployment", NULL},
	{"restart", cmd_start, "nx restart DEPLOYMENT",
		"restart a deployment (picks up environment changes)", NULL},
	{"ls", cmd_ls, "nx ls", "list your sandboxes", NULL},
	{"status", cmd_status, "nx status [SANDBOX]",
		"deployments with their state, port and URLs", NULL},
	{"logs", cmd_logs, "nx logs SANDBOX [DEPLOYMENT] [-n N] [-f]",
		"the last lines a deployment printed",
		"Without DEPLOYMENT: the production deployment, else the newest one.\n"
		"  -n N       how many lines (default 100, at most 100000)\n"
		"  -f         follow: poll every 500 ms and print new lines until interrupted\n"
		"             (see docs/cli.md for the limitation of following)\n"},
	{"env", cmd_env, "nx env SANDBOX list [--show] | set K=V | unset K",
		"the sandbox's environment variables",
		"Values are printed as *** unless --show.  Deployments get a change at\n"
		"their next start: \"nx restart DEPLOYMENT\".\n"},
	{"create", cmd_create,
		"nx create SANDBOX [--memory SIZE] [--pids N] [--open-files N] [--cpu-weight N] [--tmp-size SIZE] [--idle-timeout INTERVAL] [--connection-limit N]",
		"create a sandbox (omitted limits: the server's defaults)", NULL},
	{"destroy", cmd_destroy, "nx destroy SANDBOX [--keep-database]",
		"drop a sandbox, its deployments and (unless kept) its database", NULL},
	{"verify", cmd_verify, "nx verify FILE [--elf-only]",
		"check locally whether FILE can run as an app (exit 0 yes, 3 no)",
		"Runs the same checks as the server, without connecting: the ELF reader,\n"
		"then (unless --elf-only) whether a sandbox on this machine would find\n"
		"the dynamic loader, every library and every symbol version it needs.\n"
		"The server repeats that check against its own host at push.\n"},
	{"db", cmd_db, "nx db url|psql|dump|restore SANDBOX [FILE]",
		"the sandbox's own database",
		"  nx db url SANDBOX           print its URL (contains the password)\n"
		"  nx db psql SANDBOX [-- ARGS...]  run psql as the sandbox role\n"
		"  nx db dump SANDBOX FILE     pg_dump -Fc into FILE\n"
		"  nx db restore SANDBOX FILE  pg_restore --no-owner --role=<sandbox role>\n"
		"psql, pg_dump and pg_restore are found in PATH and get the password in\n"
		"PGPASSWORD, never on their command line.\n"},
	{"help", NULL, "nx help [COMMAND]", "help on a command", NULL},
	{NULL, NULL, NULL, NULL, NULL}
};

static const NxCommand *
find_command(const char *name)
{
	for (const NxCommand *c = commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static void
print_help(FILE *out)
{
	fprintf(out,
			"nx %s: the command-line client of nx_sandbox\n\n"
			"Usage: nx [-d CONNSTR] [--json] COMMAND [ARGS...]\n\nCommands:\n",
			NX_VERSION);
	for (const NxCommand *c = commands; c->name; c++)
		fprintf(out, "  %-9s %s\n", c->name, c->summary);
	fprintf(out,
			"\nOptions (before or after the command):\n"
			"  -d, --dbname CONNSTR  the control database (conninfo or URI); default:\n"
			"                        libpq's PGHOST, PGPORT, PGUSER, PGDATABASE, PGSERVICE\n"
			"  --json                machine-readable output\n"
			"  -h, --help            this help; \"nx help COMMAND\" for one command\n"
			"  --version             print the version\n"
			"\nExit codes: 0 ok, 1 usage error, 2 server or connection error,\n"
			"3 binary refused locally, 4 deployment did not become ready.\n");
}

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

int
main(int argc, char **argv)
{
	int			i;
	const NxCommand *c;

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
			nx_usage_error(NULL, "unknown option \"%s\"", argv[i]);
		break;
	}
	if (i >= argc)
		nx_usage_error(NULL, "missing command");
	c = find_command(argv[i]);
	if (c == NULL)
		nx_usage_error(NULL, "unknown command \"%s\"", argv[i]);
	if (c->fn == NULL)
	{
		/* help [COMMAND] */
		if (i + 1 >= argc)
		{
			print_help(stdout);
			return NX_EXIT_OK;
		}
		if (find_command(argv[i + 1]) == NULL)
			nx_usage_error("help", "unknown command \"%s\"", argv[i + 1]);
		nx_print_command_help(stdout, argv[i + 1]);
		return NX_EXIT_OK;
	}
	if (i + 1 < argc &&
		(strcmp(argv[i + 1], "--help") == 0 || strcmp(argv[i + 1], "-h") == 0))
	{
		nx_print_command_help(stdout, c->name);
		return NX_EXIT_OK;
	}
	return c->fn(argc - i, argv + i);
}
