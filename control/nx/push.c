/*
 * control/nx/push.c
 *	  nx push SANDBOX FILE: check the file locally, send it as a binary
 *	  parameter to nx.push, then wait until the deployment is ready.
 *
 * The local check is the server's own ELF reader: a file the server would
 * refuse for its format is refused here, with the same problems and hint,
 * before any connection is made (exit 3).  The bytes travel as a binary
 * bytea parameter (no hex text), env as a jsonb text parameter and args as
 * a text[] literal built with array-literal quoting.
 *
 * The binary name (the app's argv[0] and /app/<name>) is --name, or the
 * file's base name made of the allowed characters.  The app's arguments
 * come from --arg or after "--"; $PORT, ${NX_SANDBOX}, $$ ... in them are
 * expanded by the platform at each start (nx._expand_args), not here.
 */
#include "nx.h"
#include "nx_elf.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ITEMS 256

/* append to a growing string */
typedef struct Buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Buf;

static void
buf_putc(Buf *b, char c)
{
	if (b->len + 2 > b->cap)
	{
		b->cap = b->cap ? b->cap * 2 : 256;
		b->data = realloc(b->data, b->cap);
		if (b->data == NULL)
		{
			nx_error("out of memory");
			nx_exit(NX_EXIT_SERVER);
		}
	}
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
}

static void
buf_puts(Buf *b, const char *s)
{
	while (*s)
		buf_putc(b, *s++);
}

/* JSON string literal, escaped */
static void
buf_json_string(Buf *b, const char *s, size_t n)
{
	buf_putc(b, '"');
	for (size_t i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '"' || c == '\\')
		{
			buf_putc(b, '\\');
			buf_putc(b, (char) c);
		}
		else if (c < 0x20)
		{
			char		esc[8];

			snprintf(esc, sizeof(esc), "\\u%04x", c);
			buf_puts(b, esc);
		}
		else
			buf_putc(b, (char) c);
	}
	buf_putc(b, '"');
}

/* text[] literal element: always quoted, with " and \ escaped */
static void
buf_array_element(Buf *b, const char *s)
{
	buf_putc(b, '"');
	for (; *s; s++)
	{
		if (*s == '"' || *s == '\\')
			buf_putc(b, '\\');
		buf_putc(b, *s);
	}
	buf_putc(b, '"');
}

/*
 * default_name: the binary name (argv[0], /app/<name>) from the pushed
 * file's base name, made of the characters the server allows
 * ([A-Za-z0-9._-], 1-128, not starting with a dot): other characters
 * become "_", leading dots are dropped, and it is cut at 128.  A usage
 * error when nothing usable is left.  Returns a malloc'd string; *changed
 * tells whether it differs from the base name.
 */
static char *
default_name(const char *path, bool *changed)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char	   *name = malloc(129);
	size_t		n = 0;
	bool		useful = false;

	if (name == NULL)
	{
		nx_error("out of memory");
		nx_exit(NX_EXIT_SERVER);
	}
	*changed = false;
	while (*base == '.')
	{
		base++;
		*changed = true;
	}
	for (const char *p = base; *p && n < 128; p++)
	{
		char		c = *p;
		bool		ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';

		name[n++] = ok ? c : '_';
		useful |= ok && c != '.';
		*changed |= !ok;
	}
	*changed |= strlen(base) > 128;
	name[n] = '\0';
	if (!useful)
		nx_usage_error("push", "cannot make a binary name from \"%s\": it has no letter, digit, \"_\" or \"-\"; "
					   "give one with --name NAME", path);
	return name;
}

/* print_result prints the deployment's status row under --json */
static void
print_result(PGconn *conn, const char *deployment)
{
	PGresult   *res = nx_status_row(conn, deployment);

	if (nx_global.json && PQntuples(res) == 1)
	{
		nx_json_row(stdout, res, 0);
		fputc('\n', stdout);
	}
	PQclear(res);
}

/*
 * print_command prints the command line the app will get, as the pushed
 * deployment's row has it: argv[0] and the arguments, shell-quoted where
 * needed ($PORT and the like are expanded by the platform at each start).
 */
static void
print_command(const PGresult *res)
{
	const char *name = PQgetvalue(res, 0, PQfnumber(res, "binary_name"));
	int			c = PQfnumber(res, "args");

	printf("command: %s", name);
	if (c >= 0)
	{
		/* a text[] in the server's output syntax: {a,"b c","d\"e"} */
		const char *p = PQgetvalue(res, 0, c);

		if (*p == '{')
			p++;
		while (*p && *p != '}')
		{
			char		arg[4096];
			size_t		n = 0;
			bool		plain = true;

			if (*p == '"')
			{
				for (p++; *p && *p != '"'; p++)
				{
					if (*p == '\\' && p[1])
						p++;
					if (n < sizeof(arg) - 1)
						arg[n++] = *p;
				}
				if (*p == '"')
					p++;
			}
			else
				while (*p && *p != ',' && *p != '}' && n < sizeof(arg) - 1)
					arg[n++] = *p++;
			arg[n] = '\0';
			if (*p == ',')
				p++;
			for (const char *q = arg; *q; q++)
				plain &= strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,+@%", *q) != NULL;
			if (plain && n > 0)
				printf(" %s", arg);
			else
			{
				fputs(" '", stdout);
				for (const char *q = arg; *q; q++)
				{
					if (*q == '\'')
						fputs("'\\''", stdout);
					else
						fputc(*q, stdout);
				}
				fputc('\'', stdout);
			}
		}
	}
	fputc('\n', stdout);
}

/*
 * cmd_push: nx push SANDBOX FILE [options] [-- ARGS...] (see the help in
 * main.c and docs/cli.md).
 */
int
cmd_push(int argc, char **argv)
{
	const char *pos[2];
	int			npos = 0;
	const char *label = NULL;
	const char *envs[MAX_ITEMS];
	const char *args[MAX_ITEMS];
	int			nenv = 0;
	int			nargs = 0;
	bool		promote = false;
	bool		wait = true;
	double		timeout = 60;
	unsigned char *bytes;
	size_t		len;
	NxElfInfo  *elf;
	Buf			env_json = {0};
	Buf			args_lit = {0};
	PGconn	   *conn;
	PGresult   *res;
	char	   *deployment;
	const char *name = NULL;
	const char *database = NULL;
	char	   *derived = NULL;
	bool		dashdash = false;
	bool		name_changed = false;
	const char *v;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--") == 0)
		{
			/* the rest are the app's arguments, verbatim */
			if (nargs > 0)
				nx_usage_error("push", "give the app's arguments either with --arg or after --, not both");
			for (i++; i < argc; i++)
			{
				if (nargs == MAX_ITEMS)
					nx_usage_error("push", "at most %d arguments", MAX_ITEMS);
				args[nargs++] = argv[i];
			}
			dashdash = true;
			break;
		}
		if (nx_opt_global(argc, argv, &i, "push"))
			continue;
		if (nx_opt_value(argc, argv, &i, "push", "--label", &label) ||
			nx_opt_value(argc, argv, &i, "push", "--name", &name) ||
			nx_opt_value(argc, argv, &i, "push", "--database", &database))
			continue;
		if (nx_opt_value(argc, argv, &i, "push", "--env", &v))
		{
			if (strchr(v, '=') == NULL || v[0] == '=')
				nx_usage_error("push", "--env needs NAME=VALUE, not \"%s\"", v);
			if (nenv == MAX_ITEMS)
				nx_usage_error("push", "at most %d --env options", MAX_ITEMS);
			envs[nenv++] = v;
			continue;
		}
		if (nx_opt_value(argc, argv, &i, "push", "--arg", &v))
		{
			if (dashdash)
				nx_usage_error("push", "give the app's arguments either with --arg or after --, not both");
			if (nargs == MAX_ITEMS)
				nx_usage_error("push", "at most %d --arg options", MAX_ITEMS);
			args[nargs++] = v;
			continue;
		}
		if (nx_opt_value(argc, argv, &i, "push", "--timeout", &v))
		{
			timeout = nx_parse_seconds("push", "--timeout", v);
			continue;
		}
		if (nx_opt_flag(argv, i, "--promote"))
		{
			promote = true;
			continue;
		}
		if (nx_opt_flag(argv, i, "--no-wait"))
		{
			wait = false;
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			nx_reject_option("push", argv[i]);
		if (npos == 2)
			nx_usage_error("push", "too many arguments");
		pos[npos++] = argv[i];
	}
	if (npos < 1)
		nx_usage_error("push", "missing argument SANDBOX");
	if (npos < 2)
		nx_usage_error("push", "missing argument FILE");
	nx_global.sandbox = pos[0];

	/* local check first, before connecting */
	if (!nx_read_file(pos[1], &bytes, &len))
	{
		nx_error("cannot read %s: %m", pos[1]);
		return NX_EXIT_USAGE;
	}
	elf = calloc(1, sizeof(NxElfInfo));
	if (elf == NULL || !NxElfRead(bytes, len, NX_ELF_HOST_MACHINE, elf))
	{
		if (elf == NULL)
		{
			nx_error("out of memory");
			free(bytes);
			return NX_EXIT_SERVER;
		}
		nx_error("%s cannot run here: %s", pos[1], elf->problems[0].message);
		for (int i = 0; i < elf->n_problems; i++)
		{
			char		line[1024];

			snprintf(line, sizeof(line), "%s.", elf->problems[i].message);
			nx_detail("detail", line);
		}
		nx_detail("hint", NxElfHint(elf, NX_ELF_HOST_MACHINE));
		free(elf);
		free(bytes);
		return NX_EXIT_REFUSED;
	}
	free(elf);

	buf_putc(&env_json, '{');
	for (int i = 0; i < nenv; i++)
	{
		const char *eq = strchr(envs[i], '=');

		if (i > 0)
			buf_putc(&env_json, ',');
		buf_json_string(&env_json, envs[i], (size_t) (eq - envs[i]));
		buf_putc(&env_json, ':');
		buf_json_string(&env_json, eq + 1, strlen(eq + 1));
	}
	buf_putc(&env_json, '}');
	buf_putc(&args_lit, '{');
	for (int i = 0; i < nargs; i++)
	{
		if (i > 0)
			buf_putc(&args_lit, ',');
		buf_array_element(&args_lit, args[i]);
	}
	buf_putc(&args_lit, '}');

	if (len > 0x7fffffff)
	{
		nx_error("%s is too large to send (%zu bytes)", pos[1], len);
		return NX_EXIT_USAGE;
	}
	if (name == NULL)
	{
		derived = default_name(pos[1], &name_changed);
		name = derived;
	}
	conn = nx_connect();
	{
		const unsigned int types[7] = {0, NX_BYTEAOID, 0, 0, 0, 0, 0};
		const char *values[7] = {pos[0], (const char *) bytes, label, args_lit.data, env_json.data, name,
		database};
		const int	lengths[7] = {0, (int) len, 0, 0, 0, 0, 0};
		const int	formats[7] = {0, 1, 0, 0, 0, 0, 0};

		res = nx_exec_with_progress(conn,
									"SELECT * FROM nx.push($1, $2, $3, $4::text[], $5::jsonb, name => $6, database => $7)",
									7, types, values, lengths, formats, len);
	}
	free(bytes);
	free(env_json.data);
	free(args_lit.data);
	deployment = strdup(PQgetvalue(res, 0, PQfnumber(res, "deployment")));
	if (!nx_global.json)
	{
		const char *lbl = PQgetvalue(res, 0, PQfnumber(res, "label"));

		printf("pushed deployment %s%s%s%s to sandbox %s\n", deployment,
			   *lbl ? " (label " : "", lbl, *lbl ? ")" : "", pos[0]);
		printf("preview: %s\n", PQgetvalue(res, 0, PQfnumber(res, "preview_url")));
		print_command(res);
		fflush(stdout);
		if (name_changed)
			fprintf(stderr, "nx: note: binary name \"%s\" made from %s (--name sets another)\n", name, pos[1]);
	}
	PQclear(res);

	if (wait)
	{
		int			rc = nx_wait_deployment(conn, pos[0], deployment, timeout, false);

		if (rc != NX_EXIT_OK)
		{
			nx_finish(conn, NULL);
			free(deployment);
			free(derived);
			return rc;
		}
		if (!nx_global.json)
			printf("deployment %s is ready\n", deployment);
	}
	if (promote)
	{
		/* with --no-wait the user asked for it at once, ready or not */
		PGresult   *prod;
		int			rc = nx_promote_deployment(conn, pos[0], deployment, !wait, wait, timeout, &prod);

		if (rc != NX_EXIT_OK)
		{
			nx_finish(conn, prod);
			free(deployment);
			free(derived);
			return rc;
		}
		if (!nx_global.json && PQgetvalue(prod, 0, PQfnumber(prod, "production"))[0] == 't')
			printf("promoted: %s\n", PQgetvalue(prod, 0, PQfnumber(prod, "production_url")));
		PQclear(prod);
	}
	print_result(conn, deployment);
	nx_finish(conn, NULL);
	free(deployment);
	free(derived);
	return NX_EXIT_OK;
}
