/*
 * control/nx/errors.c
 *	  The one error a run of nx reports: collected while it happens, printed
 *	  once, as text or (under --json) as one JSON object on stderr.
 *
 * Glossary:
 *	  the error	  what failed: a message, and optionally the server's
 *				  SQLSTATE, DETAIL and HINT, a CLI hint (hints.c) and the
 *				  last log lines of a deployment (nx push).  A run reports
 *				  at most one: a second nx_error() before the first was
 *				  printed adds its message as a detail line instead.
 *	  flush		  print the error with the exit code the run ends with:
 *				  nx_exit() and main() do it, so every exit path prints the
 *				  same way and JSON errors carry the real exit code.
 *
 * Text (stderr):
 *	  nx: error: <message>
 *	    detail: <each line of the detail>
 *	    hint: <each line of the hint>
 *	    <log title>
 *	    | <log line>...
 * JSON (stderr, one line; docs/cli.md "Errors under --json"):
 *	  {"exit_code":2,"sqlstate":"42704","message":"...","detail":null,
 *	   "hint":"...","server_hint":"..."[,"log":["...",...]]}
 */
#include "nx.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LOG_LINES 100

typedef struct NxPendingError
{
	bool		set;
	char	   *message;
	char	   *sqlstate;
	char	   *detail;			/* lines joined with \n */
	char	   *hint;			/* what the text output shows (CLI terms) */
	char	   *server_hint;	/* the server's own HINT, unchanged */
	char	   *log_title;
	char	   *log[MAX_LOG_LINES];
	int			nlog;
} NxPendingError;

static NxPendingError pending;

/* xstrdup: strdup that ends the run on out of memory */
static char *
xstrdup(const char *s)
{
	char	   *d = strdup(s);

	if (d == NULL)
	{
		fputs("nx: error: out of memory\n", stderr);
		exit(NX_EXIT_SERVER);
	}
	return d;
}

/* append_line: *dst = *dst + "\n" + line (or line when *dst is empty) */
static void
append_line(char **dst, const char *line)
{
	size_t		old = *dst ? strlen(*dst) : 0;
	char	   *n;

	if (line == NULL || *line == '\0')
		return;
	n = malloc(old + strlen(line) + 2);
	if (n == NULL)
	{
		fputs("nx: error: out of memory\n", stderr);
		exit(NX_EXIT_SERVER);
	}
	if (old)
	{
		memcpy(n, *dst, old);
		n[old++] = '\n';
	}
	strcpy(n + old, line);
	free(*dst);
	*dst = n;
}

/*
 * fold: the message on one line.  Line breaks and the indentation after
 * them become one space (libpq's connection errors span lines).
 */
static char *
fold(const char *s)
{
	char	   *out = xstrdup(s);
	char	   *w = out;

	for (const char *p = s; *p; p++)
	{
		if (*p == '\n' || *p == '\r' || *p == '\t')
		{
			while (p[1] == '\n' || p[1] == '\r' || p[1] == '\t' || p[1] == ' ')
				p++;
			if (p[1] != '\0')
				*w++ = ' ';
		}
		else
			*w++ = *p;
	}
	*w = '\0';
	return out;
}

/*
 * nx_error starts the error with its message.  If an error is already
 * pending (a failure while reporting a failure), its message becomes a
 * detail line of the first, so that the run still prints one error.
 */
void
nx_error(const char *fmt,...)
{
	char		buf[4096];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (pending.set)
	{
		char	   *f = fold(buf);

		append_line(&pending.detail, f);
		free(f);
		return;
	}
	pending.set = true;
	pending.message = fold(buf);
}

/* nx_error_sqlstate records the SQLSTATE of the pending error. */
void
nx_error_sqlstate(const char *sqlstate)
{
	if (sqlstate && pending.set && pending.sqlstate == NULL)
		pending.sqlstate = xstrdup(sqlstate);
}

/*
 * nx_detail adds text to the pending error's "detail" or "hint" (label),
 * one line per line of text; "server_hint" records the server's HINT.
 */
void
nx_detail(const char *label, const char *text)
{
	char	  **dst;

	if (text == NULL || *text == '\0' || !pending.set)
		return;
	if (strcmp(label, "hint") == 0)
		dst = &pending.hint;
	else if (strcmp(label, "server_hint") == 0)
		dst = &pending.server_hint;
	else
		dst = &pending.detail;
	append_line(dst, text);
}

/* nx_error_log adds a log line (title: the line printed above them in text). */
void
nx_error_log(const char *title, const char *line)
{
	if (!pending.set || pending.nlog == MAX_LOG_LINES)
		return;
	if (pending.log_title == NULL)
		pending.log_title = xstrdup(title);
	pending.log[pending.nlog++] = xstrdup(line);
}

/* nx_error_pending: is an error waiting to be printed? */
bool
nx_error_pending(void)
{
	return pending.set;
}

/* print_lines prints "  <label>: <line>" for each line of text. */
static void
print_lines(const char *label, const char *text)
{
	const char *p = text;

	if (text == NULL)
		return;
	while (*p)
	{
		const char *nl = strchr(p, '\n');
		size_t		n = nl ? (size_t) (nl - p) : strlen(p);

		if (n > 0)
			fprintf(stderr, "  %s: %.*s\n", label, (int) n, p);
		p += n;
		if (*p == '\n')
			p++;
	}
}

/* json_field writes ,"key":"value" (or null) */
static void
json_field(const char *key, const char *value)
{
	fprintf(stderr, ",\"%s\":", key);
	if (value)
		nx_json_string(stderr, value);
	else
		fputs("null", stderr);
}

/*
 * nx_error_flush prints the pending error, if any, for a run that ends
 * with exit_code, and forgets it.  Under --json (or when --json appears
 * anywhere on the command line) the error is one JSON object.
 */
void
nx_error_flush(int exit_code)
{
	if (!pending.set)
		return;
	fflush(stdout);
	if (nx_global.json || nx_global.json_errors)
	{
		fprintf(stderr, "{\"exit_code\":%d", exit_code);
		json_field("sqlstate", pending.sqlstate);
		json_field("message", pending.message);
		json_field("detail", pending.detail);
		json_field("hint", pending.hint ? pending.hint : pending.server_hint);
		json_field("server_hint", pending.server_hint);
		if (pending.nlog > 0)
		{
			fputs(",\"log\":[", stderr);
			for (int i = 0; i < pending.nlog; i++)
			{
				if (i > 0)
					fputc(',', stderr);
				nx_json_string(stderr, pending.log[i]);
			}
			fputc(']', stderr);
		}
		fputs("}\n", stderr);
	}
	else
	{
		fprintf(stderr, "nx: error: %s\n", pending.message);
		print_lines("detail", pending.detail);
		print_lines("hint", pending.hint ? pending.hint : pending.server_hint);
		if (pending.nlog > 0)
		{
			fprintf(stderr, "  %s\n", pending.log_title);
			for (int i = 0; i < pending.nlog; i++)
				fprintf(stderr, "  | %s\n", pending.log[i]);
		}
	}
	fflush(stderr);
	free(pending.message);
	free(pending.sqlstate);
	free(pending.detail);
	free(pending.hint);
	free(pending.server_hint);
	free(pending.log_title);
	for (int i = 0; i < pending.nlog; i++)
		free(pending.log[i]);
	memset(&pending, 0, sizeof(pending));
}

/* nx_exit prints the pending error and ends the run with code. */
void
nx_exit(int code)
{
	nx_error_flush(code);
	exit(code);
}

/*
 * nx_usage_error reports wrong arguments (exit 1), with a hint naming the
 * help to read; nx_usage_error_hint puts a suggestion ("did you mean")
 * before it.
 */
void
nx_usage_error_hint(const char *command, const char *suggestion, const char *fmt,...)
{
	char		buf[1024];
	char		hint[1024];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (command)
		nx_error("%s: %s", command, buf);
	else
		nx_error("%s", buf);
	nx_detail("hint", suggestion);
	if (command)
		snprintf(hint, sizeof(hint), "see \"nx help %s\"", command);
	else
		snprintf(hint, sizeof(hint), "see \"nx --help\"");
	nx_detail("hint", hint);
	nx_exit(NX_EXIT_USAGE);
}

void
nx_usage_error(const char *command, const char *fmt,...)
{
	char		buf[1024];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	nx_usage_error_hint(command, NULL, "%s", buf);
}
