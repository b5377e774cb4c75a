/*
 * src/api/identity.c
 *	  Who is calling, what the settings are, and unguessable tokens: the
 *	  small facts the SQL API (written in PL/pgSQL) cannot get by itself.
 *
 * Glossary:
 *	  caller	the role on whose behalf a control function acts.  The API
 *				functions are SECURITY DEFINER, so inside them current_user
 *				is the extension owner; the caller is the "outer" user, the
 *				one SET ROLE or login made current, which a security definer
 *				call does not change.
 */
#include "compat.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "port.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "nx_sandbox.h"

PG_FUNCTION_INFO_V1(nx_caller);
PG_FUNCTION_INFO_V1(nx_setting);
PG_FUNCTION_INFO_V1(nx_random_token);

/*
 * nx_caller returns the outer user's name (see the glossary).  Ownership
 * checks use it, never current_user.
 */
Datum
nx_caller(PG_FUNCTION_ARGS)
{
	char	   *name = GetUserNameFromId(GetOuterUserId(), false);

	PG_RETURN_DATUM(DirectFunctionCall1(namein, CStringGetDatum(name)));
}

/*
 * nx_setting returns the current value of an nx.* setting as text.  Calling
 * it loads the library, so the settings exist even in a session that has
 * not preloaded nx_sandbox; current_setting() alone would fail there.
 */
Datum
nx_setting(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (strncmp(name, "nx.", 3) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not an nx_sandbox setting", name)));
	PG_RETURN_TEXT_P(cstring_to_text(GetConfigOptionByName(name, NULL, false)));
}

/*
 * NxRandomToken fills out (room for n + 1) with n characters of [a-z2-7]
 * (5 bits each) from the operating system's CSPRNG: preview slugs and
 * database passwords.  An attacker who knows every other token learns
 * nothing about the next.  False if the CSPRNG failed.
 */
bool
NxRandomToken(char *out, int n)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
	unsigned char raw[256];

	Assert(n >= 1 && n <= (int) sizeof(raw));
	if (!pg_strong_random(raw, n))
		return false;
	for (int i = 0; i < n; i++)
		out[i] = alphabet[raw[i] & 31];
	out[n] = '\0';
	return true;
}

/* nx_random_token returns NxRandomToken's n characters as text. */
Datum
nx_random_token(PG_FUNCTION_ARGS)
{
	int32		n = PG_GETARG_INT32(0);
	char	   *out;

	if (n < 1 || n > 256)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("token length must be between 1 and 256")));
	out = palloc(n + 1);
	if (!NxRandomToken(out, n))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes")));
	PG_RETURN_TEXT_P(cstring_to_text(out));
}
