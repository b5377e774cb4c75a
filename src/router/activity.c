/*
 * src/router/activity.c
 *	  Per-deployment traffic counters, reported to the cluster every second
 *	  (nx.report_activity) so that the supervisor can stop idle deployments
 *	  and nx.stat_deployments can show them.  Also marks a deployment whose
 *	  nx.wake is queued or in flight, so that a burst of requests for a
 *	  sleeping deployment causes one nx.wake.
 *
 * An entry is made on first use and kept while anything refers to it (an
 * open connection, counters not reported yet, a wake in flight); relayed
 * connections keep a pointer to their entry, so counting a byte costs no
 * lookup.  Counters are deltas
 * since the last report; open is the current number of relayed
 * connections.
 */
#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 1024

static Activity *buckets[BUCKETS];

/* ActivityGet returns the entry of `deployment`, made on first use (NULL: out of memory). */
Activity *
ActivityGet(int64_t deployment)
{
	Activity  **b = &buckets[(uint64_t) deployment % BUCKETS];
	Activity   *a;

	for (a = *b; a; a = a->next)
		if (a->deployment == deployment)
			return a;
	a = calloc(1, sizeof(Activity));
	if (a == NULL)
		return NULL;
	a->deployment = deployment;
	a->next = *b;
	*b = a;
	return a;
}

/*
 * ActivityOpened counts a client connection whose request goes to the
 * deployment (it stays counted until it closes or a request of it goes to
 * another deployment: a quiet open connection keeps its deployment awake,
 * an idle pooled app socket does not).
 */
void
ActivityOpened(Activity *a)
{
	a->open++;
	a->last_ms = loop_now;
}

/* ActivityHandedOff counts an app socket nx-init handed over. */
void
ActivityHandedOff(Activity *a)
{
	if (a == NULL)
		return;
	a->connections++;
	a->last_ms = loop_now;
}

/* ActivityClosed counts a client connection leaving the deployment. */
void
ActivityClosed(Activity *a)
{
	if (a->open > 0)
		a->open--;
	a->last_ms = loop_now;
}

/*
 * ActivityMoved counts bytes relayed from clients (in) and to them (out);
 * a connection whose entry could not be made (a: NULL) is not counted.
 */
void
ActivityMoved(Activity *a, size_t in, size_t out)
{
	if (a == NULL)
		return;
	a->bytes_in += in;
	a->bytes_out += out;
	a->last_ms = loop_now;
}

/* append_number appends ",n" (or "n" first) to an array literal being built. */
static bool
append_number(char **buf, size_t *len, size_t *cap, long long value, bool null)
{
	char		item[32];
	int			n = null ? snprintf(item, sizeof(item), "%sNULL", *len > 1 ? "," : "")
		: snprintf(item, sizeof(item), "%s%lld", *len > 1 ? "," : "", value);

	if (*len + n + 2 > *cap)
	{
		size_t		bigger = *cap * 2 + n + 2;
		char	   *p = realloc(*buf, bigger);

		if (p == NULL)
			return false;
		*buf = p;
		*cap = bigger;
	}
	memcpy(*buf + *len, item, n);
	*len += n;
	(*buf)[*len] = '\0';
	return true;
}

/*
 * ActivityReport fills the six array literals ("{...}") of a report: every
 * deployment whose counters moved or whose open count changed since the
 * last report (all with a connection open when `full`), then starts the
 * next period.  Entries nobody needs any more are freed.  Returns false
 * when out of memory (nothing is reset then).
 */
bool
ActivityReport(bool full, char *arrays[6])
{
	size_t		len[6],
				cap[6];
	int			i;
	size_t		b;

	for (i = 0; i < 6; i++)
	{
		cap[i] = 64;
		arrays[i] = malloc(cap[i]);
		if (arrays[i] == NULL)
			goto oom;
		strcpy(arrays[i], "{");
		len[i] = 1;
	}
	for (b = 0; b < BUCKETS; b++)
	{
		Activity   *a;

		for (a = buckets[b]; a; a = a->next)
		{
			bool		moved = a->connections || a->bytes_in || a->bytes_out ||
				a->open != a->reported_open;

			if (!moved && !(full && a->open > 0))
				continue;
			if (!append_number(&arrays[0], &len[0], &cap[0], a->deployment, false) ||
				!append_number(&arrays[1], &len[1], &cap[1], a->open, false) ||
				!append_number(&arrays[2], &len[2], &cap[2], (long long) a->connections, false) ||
				!append_number(&arrays[3], &len[3], &cap[3], (long long) a->bytes_in, false) ||
				!append_number(&arrays[4], &len[4], &cap[4], (long long) a->bytes_out, false) ||
				!append_number(&arrays[5], &len[5], &cap[5], loop_now - a->last_ms, a->last_ms == 0))
				goto oom;
		}
	}
	for (i = 0; i < 6; i++)
	{
		arrays[i][len[i]++] = '}';
		arrays[i][len[i]] = '\0';
	}

	/* the next period starts now */
	for (b = 0; b < BUCKETS; b++)
	{
		Activity  **link = &buckets[b];

		while (*link)
		{
			Activity   *a = *link;

			a->connections = a->bytes_in = a->bytes_out = 0;
			a->reported_open = a->open;
			if (a->open == 0 && !a->waking)
			{
				*link = a->next;
				free(a);
				continue;
			}
			link = &a->next;
		}
	}
	return true;

oom:
	for (i = 0; i < 6; i++)
	{
		free(arrays[i]);
		arrays[i] = NULL;
	}
	return false;
}
