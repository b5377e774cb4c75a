/*
 * control/nx/output.c
 *	  What nx prints on stdout: aligned tables, JSON, and the line that
 *	  says what a lifecycle command did to a deployment.  (Errors:
 *	  errors.c.)
 *
 * JSON is written byte-exact from the server's text (the connection asks
 * for UTF-8), with every character that JSON requires escaped.
 */
#include "nx.h"

#include <stdlib.h>
#include <string.h>

/* nx_json_string writes s as a JSON string literal. */
void
nx_json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		switch (*p)
		{
			case '"':
				fputs("\\\"", out);
				break;
			case '\\':
				fputs("\\\\", out);
				break;
			case '\n':
				fputs("\\n", out);
				break;
			case '\r':
				fputs("\\r", out);
				break;
			case '\t':
				fputs("\\t", out);
				break;
			case '\b':
				fputs("\\b", out);
				break;
			case '\f':
				fputs("\\f", out);
				break;
			default:
				if (*p < 0x20 || *p == 0x7f)
					fprintf(out, "\\u%04x", *p);
				else
					fputc(*p, out);
		}
	}
	fputc('"', out);
}

/* is_json_number: does text look like a finite JSON number? */
static bool
is_json_number(const char *s)
{
	const char *p = s;

	if (*p == '-')
		p++;
	if (*p < '0' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p == '.')
	{
		p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E')
	{
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

/* nx_json_value writes one field: null, a boolean, a number, raw JSON or a string. */
void
nx_json_value(FILE *out, const PGresult *res, int row, int col)
{
	const char *v;

	if (PQgetisnull(res, row, col))
	{
		fputs("null", out);
		return;
	}
	v = PQgetvalue(res, row, col);
	switch (PQftype(res, col))
	{
		case NX_BOOLOID:
			fputs(v[0] == 't' ? "true" : "false", out);
			return;
		case NX_INT2OID:
		case NX_INT4OID:
		case NX_INT8OID:
		case NX_OIDOID:
		case NX_FLOAT4OID:
		case NX_FLOAT8OID:
		case NX_NUMERICOID:
			if (is_json_number(v))
			{
				fputs(v, out);
				return;
			}
			break;
		case NX_JSONOID:
		case NX_JSONBOID:
			fputs(v, out);
			return;
	}
	nx_json_string(out, v);
}

void
nx_json_row(FILE *out, const PGresult *res, int row)
{
	fputc('{', out);
	for (int c = 0; c < PQnfields(res); c++)
	{
		if (c > 0)
			fputs(", ", out);
		nx_json_string(out, PQfname(res, c));
		fputs(": ", out);
		nx_json_value(out, res, row, c);
	}
	fputc('}', out);
}

void
nx_json_rows(FILE *out, const PGresult *res)
{
	fputc('[', out);
	for (int r = 0; r < PQntuples(res); r++)
	{
		fputs(r > 0 ? ",\n " : "\n ", out);
		nx_json_row(out, res, r);
	}
	fputs(PQntuples(res) > 0 ? "\n]\n" : "]\n", out);
}

/* display_width counts UTF-8 characters, not bytes. */
static int
display_width(const char *s)
{
	int			n = 0;

	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
		if ((*p & 0xc0) != 0x80)
			n++;
	return n;
}

static const char *
cell(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return "";
	if (PQftype(res, col) == NX_BOOLOID)
		return PQgetvalue(res, row, col)[0] == 't' ? "yes" : "no";
	return PQgetvalue(res, row, col);
}

/*
 * nx_print_table prints the named columns of res, aligned, under an
 * upper-case header.  Columns absent from res are skipped.
 */
void
nx_print_table(FILE *out, const PGresult *res, const char *const *columns,
			   int ncolumns)
{
	int			idx[64];
	int			width[64];
	int			n = 0;

	for (int i = 0; i < ncolumns && n < 64; i++)
	{
		int			c = PQfnumber(res, columns[i]);

		if (c < 0)
			continue;
		idx[n] = c;
		width[n] = display_width(columns[i]);
		for (int r = 0; r < PQntuples(res); r++)
		{
			int			w = display_width(cell(res, r, c));

			if (w > width[n])
				width[n] = w;
		}
		n++;
	}
	for (int i = 0; i < n; i++)
	{
		const char *name = PQfname(res, idx[i]);
		int			w = 0;

		for (const char *p = name; *p; p++, w++)
			fputc(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : (*p == '_' ? ' ' : *p), out);
		if (i < n - 1)
			fprintf(out, "%*s", width[i] - w + 2, "");
	}
	fputc('\n', out);
	for (int r = 0; r < PQntuples(res); r++)
	{
		for (int i = 0; i < n; i++)
		{
			const char *v = cell(res, r, idx[i]);

			fputs(v, out);
			if (i < n - 1)
				fprintf(out, "%*s", width[i] - display_width(v) + 2, "");
		}
		fputc('\n', out);
	}
}

/*
 * nx_print_deployment_row prints one nx.status row returned by a function
 * that acted on a deployment (promote, start, ...): JSON, or "deployment
 * N of sandbox S <verb> (desired state D, current state C)" and the
 * production URL when it is production.
 */
void
nx_print_deployment_row(const PGresult *res, const char *verb)
{
	if (nx_global.json)
	{
		nx_json_row(stdout, res, 0);
		fputc('\n', stdout);
		return;
	}
	printf("deployment %s of sandbox %s %s (desired state %s, current state %s)\n",
		   PQgetvalue(res, 0, PQfnumber(res, "deployment")),
		   PQgetvalue(res, 0, PQfnumber(res, "sandbox")), verb,
		   PQgetvalue(res, 0, PQfnumber(res, "desired_state")),
		   PQgetvalue(res, 0, PQfnumber(res, "state")));
	if (PQgetvalue(res, 0, PQfnumber(res, "production"))[0] == 't')
		printf("production: %s\n", PQgetvalue(res, 0, PQfnumber(res, "production_url")));
}
