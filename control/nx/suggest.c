/*
 * control/nx/suggest.c
 *	  "Did you mean ...?" for a mistyped command, option, action or
 *	  sandbox name.
 *
 * Glossary:
 *	  distance	 the optimal string alignment distance: insertions,
 *				 deletions, substitutions and swaps of two neighbouring
 *				 characters, each counting 1 ("stauts" is 1 from "status").
 *	  close		 a distance of at most 1 for words of up to 4 characters,
 *				 2 up to 8, 3 beyond; or the word is the start of the
 *				 candidate (at least 2 characters: "dom" for "domains").
 *
 * The closest candidates are suggested (at most three, equally close);
 * none when nothing is close.
 */
#include "nx.h"

#include <stdlib.h>
#include <string.h>

/* distance: optimal string alignment distance of a and b (ASCII-case-sensitive) */
static int
distance(const char *a, const char *b)
{
	int			la = (int) strlen(a);
	int			lb = (int) strlen(b);
	int		   *d;
	int			result;

	if (la > 64 || lb > 64)
		return 1000;
	d = malloc(sizeof(int) * (la + 1) * (lb + 1));
	if (d == NULL)
		return 1000;
#define D(i, j) d[(i) * (lb + 1) + (j)]
	for (int i = 0; i <= la; i++)
		D(i, 0) = i;
	for (int j = 0; j <= lb; j++)
		D(0, j) = j;
	for (int i = 1; i <= la; i++)
		for (int j = 1; j <= lb; j++)
		{
			int			cost = a[i - 1] == b[j - 1] ? 0 : 1;
			int			v = D(i - 1, j) + 1;

			if (D(i, j - 1) + 1 < v)
				v = D(i, j - 1) + 1;
			if (D(i - 1, j - 1) + cost < v)
				v = D(i - 1, j - 1) + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
				D(i - 2, j - 2) + 1 < v)
				v = D(i - 2, j - 2) + 1;
			D(i, j) = v;
		}
	result = D(la, lb);
#undef D
	free(d);
	return result;
}

/* score: how far word is from candidate, or -1 when not close */
static int
score(const char *word, const char *candidate)
{
	size_t		n = strlen(word);
	int			limit = n <= 4 ? 1 : n <= 8 ? 2 : 3;
	int			dist = distance(word, candidate);

	if (dist <= limit)
		return dist;
	/* a prefix ("dom", "--dat") counts as close, after every real typo */
	if (n >= 2 && strncmp(word, candidate, n) == 0 && strlen(candidate) > n)
		return limit + 1;
	return -1;
}

/*
 * nx_suggest returns (malloc'd) the candidates closest to word, quoted and
 * joined with "or" ("\"status\"", "\"start\" or \"stop\""), or NULL when
 * none is close.  candidates ends with NULL; exact matches are skipped
 * (the caller did not find word among them for another reason).
 */
char *
nx_suggest(const char *word, const char *const *candidates)
{
	int			best = -1;
	const char *picked[3];
	int			npicked = 0;
	size_t		len = 1;
	char	   *out;

	if (word == NULL || *word == '\0')
		return NULL;
	for (const char *const *c = candidates; *c; c++)
	{
		int			s = strcmp(*c, word) == 0 ? -1 : score(word, *c);

		if (s < 0)
			continue;
		if (best < 0 || s < best)
		{
			best = s;
			npicked = 0;
		}
		if (s == best && npicked < 3)
		{
			bool		dup = false;

			for (int i = 0; i < npicked; i++)
				dup |= strcmp(picked[i], *c) == 0;
			if (!dup)
				picked[npicked++] = *c;
		}
	}
	if (npicked == 0)
		return NULL;
	for (int i = 0; i < npicked; i++)
		len += strlen(picked[i]) + 8;
	out = malloc(len);
	if (out == NULL)
		return NULL;
	out[0] = '\0';
	for (int i = 0; i < npicked; i++)
	{
		if (i > 0)
			strcat(out, i == npicked - 1 ? " or " : ", ");
		strcat(out, "\"");
		strcat(out, picked[i]);
		strcat(out, "\"");
	}
	return out;
}

/*
 * nx_unknown_word: a usage error for a word that is not one of candidates
 * (what: "command", "action", ...), with "did you mean" when one is close.
 * command is the nx command it belongs to (NULL: nx itself).
 */
void
nx_unknown_word(const char *command, const char *what, const char *word,
				const char *const *candidates, const char *listing)
{
	char	   *s = nx_suggest(word, candidates);
	char		hint[512];
	bool		have = s != NULL;

	if (have)
		snprintf(hint, sizeof(hint), "did you mean %s?", s);
	free(s);
	if (listing)
		nx_usage_error_hint(command, have ? hint : NULL, "unknown %s \"%s\" (%s)", what, word, listing);
	nx_usage_error_hint(command, have ? hint : NULL, "unknown %s \"%s\"", what, word);
}
