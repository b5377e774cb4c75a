/*
 * control/nx/options.c
 *	  Command-line option helpers shared by the commands: "--name VALUE" and
 *	  "--name=VALUE", flags, integers, deployment ids and positional
 *	  arguments.  Bad input is a usage error (exit 1) before anything is
 *	  sent to the server; an unknown option gets "did you mean".
 */
#include "nx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * nx_opt_value: if argv[*i] is option name (as "--x V" or "--x=V"), set
 * *value, advance *i past it, and return true.  The value is taken
 * verbatim, even when it starts with "-".
 */
bool
nx_opt_value(int argc, char **argv, int *i, const char *command,
			 const char *name, const char **value)
{
	const char *arg = argv[*i];
	size_t		n = strlen(name);

	if (strncmp(arg, name, n) != 0)
		return false;
	if (arg[n] == '=')
	{
		*value = arg + n + 1;
		return true;
	}
	if (arg[n] != '\0')
		return false;
	if (*i + 1 >= argc)
		nx_usage_error(command, "option %s needs a value", name);
	*value = argv[++*i];
	return true;
}

/* nx_opt_flag: is argv[i] the flag name? */
bool
nx_opt_flag(char **argv, int i, const char *name)
{
	return strcmp(argv[i], name) == 0;
}

/*
 * nx_reject_option: arg starts with "-" and no option of command matched
 * it: a usage error, with "did you mean" among the command's options (the
 * ones its usage line names) and the global ones.
 */
void
nx_reject_option(const char *command, const char *arg)
{
	const char *usage = command ? nx_command_usage(command) : NULL;
	const char *candidates[64];
	char		store[2048];
	char		word[128];
	size_t		used = 0;
	int			n = 0;
	static const char *const global[] = {"--json", "--dbname", "--help", "--version", NULL};

	/* the option's name, without "=value" */
	snprintf(word, sizeof(word), "%s", arg);
	if (strchr(word, '='))
		*strchr(word, '=') = '\0';
	for (const char *p = usage; p && *p && n < 58; p++)
	{
		size_t		len = 0;

		if (p[0] != '-' || (p != usage && p[-1] != '[' && p[-1] != ' ' && p[-1] != '|'))
			continue;
		while (p[len] == '-' || (p[len] >= 'a' && p[len] <= 'z') || (p[len] >= '0' && p[len] <= '9'))
			len++;
		if (len >= 2 && !(len == 2 && p[1] == '-') && used + len + 1 < sizeof(store))
		{
			memcpy(store + used, p, len);
			store[used + len] = '\0';
			candidates[n++] = store + used;
			used += len + 1;
		}
		p += len ? len - 1 : 0;
	}
	for (int g = 0; global[g]; g++)
		candidates[n++] = global[g];
	candidates[n] = NULL;
	nx_unknown_word(command, "option", word, candidates, NULL);
}

/*
 * nx_parse_positional collects up to max positional arguments of a
 * command (argv[0]); --force sets *force when force is not NULL and is an
 * unknown option otherwise.  Returns how many there were.
 */
int
nx_parse_positional(int argc, char **argv, const char **pos, int max, bool *force)
{
	int			n = 0;

	for (int i = 1; i < argc; i++)
	{
		if (nx_opt_global(argc, argv, &i, argv[0]))
			continue;
		if (force && nx_opt_flag(argv, i, "--force"))
		{
			*force = true;
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			nx_reject_option(argv[0], argv[i]);
		if (n == max)
			nx_usage_error(argv[0], "too many arguments");
		pos[n++] = argv[i];
	}
	return n;
}

/* nx_parse_int: text as an integer in min..max, else a usage error naming what */
long long
nx_parse_int(const char *command, const char *what, const char *text,
			 long long min, long long max)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
		nx_usage_error(command, "%s must be an integer between %lld and %lld, not \"%s\"",
					   what, min, max, text);
	return v;
}

/* nx_parse_seconds: text as a number of seconds, 0 < s <= 86400 (--timeout) */
double
nx_parse_seconds(const char *command, const char *what, const char *text)
{
	char	   *end;
	double		v = strtod(text, &end);

	if (end == text || *end != '\0' || !(v > 0 && v <= 86400))
		nx_usage_error(command, "%s needs a number of seconds (0 < s <= 86400), not \"%s\"", what, text);
	return v;
}

/* nx_check_deployment_id: text is a deployment id (a positive integer) */
void
nx_check_deployment_id(const char *command, const char *text)
{
	nx_parse_int(command, "a deployment id", text, 1, 9223372036854775807LL);
}

/* nx_opt_global: -d CONNSTR, --dbname CONNSTR and --json, accepted anywhere. */
bool
nx_opt_global(int argc, char **argv, int *i, const char *command)
{
	const char *v;

	if (nx_opt_flag(argv, *i, "--json"))
	{
		nx_global.json = true;
		return true;
	}
	if (nx_opt_value(argc, argv, i, command, "-d", &v) ||
		nx_opt_value(argc, argv, i, command, "--dbname", &v))
	{
		nx_global.connstr = v;
		return true;
	}
	return false;
}
