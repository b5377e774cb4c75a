/*
 * control/nx/options.c
 *	  Command-line option helpers shared by the commands: "--name VALUE" and
 *	  "--name=VALUE", flags, integers and deployment ids.  Bad input is a
 *	  usage error (exit 1) before anything is sent to the server.
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

bool
nx_opt_flag(char **argv, int i, const char *name)
{
	return strcmp(argv[i], name) == 0;
}

/* nx_reject_option: arg starts with "-" and no option matched it. */
void
nx_reject_option(const char *command, const char *arg)
{
	nx_usage_error(command, "unknown option \"%s\"", arg);
}

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
