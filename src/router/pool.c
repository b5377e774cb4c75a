/*
 * src/router/pool.c
 *	  Idle app sockets per deployment, reused across requests and client
 *	  connections (no hand-off for them), and the per-deployment cap on app
 *	  connections so that one app cannot take every slot of the router.
 *
 * Glossary:
 *	  busy		app sockets of a deployment in use by an exchange, or being
 *				handed over by nx-init
 *	  idle		app sockets whose last response was read to its end, kept
 *				for the next request (at most --pool-size per deployment,
 *				newest reused first, each closed after --pool-idle-timeout)
 *
 * An idle socket is watched for input: an app that closes it (or sends
 * anything unasked) has it closed at once.  Only sockets whose response
 * was complete, not close-delimited, not marked Connection: close, with
 * nothing read past it, come back here (conn.c decides).  After a route
 * reload the idle sockets of deployments no longer routed (an old
 * production after a promote) are closed.
 *
 * Scale to zero: nx-init agrees to stop its app only after NX_INIT_QUIET_MS
 * (5 s) without a hand-off, a rule pooled reuse would bypass; so idle
 * sockets live at most --pool-idle-timeout (capped below that window), and
 * a deployment idle long enough to be stopped has none left: its next
 * request needs a hand-off, which nx-init sees.
 */
#include "router.h"

#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define BUCKETS 256

typedef struct PoolDep PoolDep;

typedef struct PoolConn
{
	int			fd;
	Tag			tag;
	uint32_t	events;
	int64_t		since;			/* when it became idle */
	PoolDep    *dep;
	struct PoolConn *prev,
			   *next;			/* the deployment's idle list, newest first */
} PoolConn;

struct PoolDep
{
	int64_t		id;
	int			busy;
	int			idle;
	bool		routed;			/* still in the route table */
	PoolConn   *conns;
	struct PoolDep *next;		/* hash chain */
};

static PoolDep *buckets[BUCKETS];

/* find_dep returns the entry of `id`; made on first use when `make` (NULL: out of memory). */
static PoolDep *
find_dep(int64_t id, bool make)
{
	PoolDep   **b = &buckets[(uint64_t) id % BUCKETS];
	PoolDep    *d;

	for (d = *b; d; d = d->next)
		if (d->id == id)
			return d;
	if (!make || (d = calloc(1, sizeof(PoolDep))) == NULL)
		return NULL;
	d->id = id;
	d->routed = true;
	d->next = *b;
	*b = d;
	return d;
}

/* unlink_conn takes an idle socket off its list (the caller closes or uses it). */
static void
unlink_conn(PoolConn *pc)
{
	PoolDep    *d = pc->dep;

	EpollDel(pc->fd, &pc->events);
	if (pc->prev)
		pc->prev->next = pc->next;
	else
		d->conns = pc->next;
	if (pc->next)
		pc->next->prev = pc->prev;
	d->idle--;
}

/* close_conn closes an idle socket. */
static void
close_conn(PoolConn *pc)
{
	unlink_conn(pc);
	close(pc->fd);
	free(pc);
}

/*
 * PoolAcquire takes a slot of the deployment's connection cap for a
 * request.  Returns 1 with an idle app socket in *fd (its epoll
 * registration passed to *events: the caller's next EpollSet takes it
 * over), 0 when the caller must ask nx-init for one, -1 when the
 * deployment is at its cap (or out of memory).
 */
int
PoolAcquire(int64_t deployment, int *fd, uint32_t *events)
{
	PoolDep    *d = find_dep(deployment, true);
	PoolConn   *pc;

	*fd = -1;
	if (d == NULL)
		return -1;
	d->routed = true;
	if ((pc = d->conns) != NULL)
	{
		EpollPass(&pc->events, events);
		unlink_conn(pc);
		*fd = pc->fd;
		free(pc);
		d->busy++;
		return 1;
	}
	if (d->busy >= router_settings.max_app_connections)
		return -1;
	d->busy++;
	return 0;
}

/*
 * PoolRelease gives a slot back; the app socket, if any (fd >= 0, with
 * its epoll registration in *events), is kept idle when `reusable` and
 * there is room (taking the registration over), else unregistered and
 * closed.
 */
void
PoolRelease(int64_t deployment, int fd, bool reusable, uint32_t *events)
{
	PoolDep    *d = find_dep(deployment, false);
	PoolConn   *pc;

	if (d != NULL && d->busy > 0)
		d->busy--;
	if (fd < 0)
		return;
	if (d == NULL || !reusable || !d->routed || d->idle >= router_settings.pool_size ||
		router_settings.pool_size == 0 || (pc = calloc(1, sizeof(PoolConn))) == NULL)
	{
		EpollDel(fd, events);
		close(fd);
		return;
	}
	EpollPass(events, &pc->events);
	pc->fd = fd;
	pc->tag = (Tag) {TAG_POOL, pc};
	pc->since = loop_now;
	pc->dep = d;
	pc->next = d->conns;
	if (d->conns)
		d->conns->prev = pc;
	d->conns = pc;
	d->idle++;
	EpollSet(fd, &pc->tag, EPOLLIN | EPOLLRDHUP, &pc->events);
}

/* PoolEvent: an idle socket became readable (closed, or unasked bytes): close it. */
void
PoolEvent(Tag *tag, uint32_t events)
{
	(void) events;
	close_conn(tag->owner);
}

/* PoolTimers closes the idle sockets older than --pool-idle-timeout. */
void
PoolTimers(int64_t now, int64_t *next)
{
	size_t		b;

	for (b = 0; b < BUCKETS; b++)
	{
		PoolDep    *d;

		for (d = buckets[b]; d; d = d->next)
		{
			PoolConn   *pc,
					   *following;

			for (pc = d->conns; pc; pc = following)
			{
				following = pc->next;
				if (now - pc->since >= router_settings.pool_idle_timeout_ms)
					close_conn(pc);
				else if (pc->since + router_settings.pool_idle_timeout_ms < *next)
					*next = pc->since + router_settings.pool_idle_timeout_ms;
			}
		}
	}
}

/*
 * PoolPrune runs after each route reload: the idle sockets of deployments
 * no longer routed are closed, and what they release is not kept.
 */
void
PoolPrune(void)
{
	size_t		b;

	for (b = 0; b < BUCKETS; b++)
	{
		PoolDep    *d;

		for (d = buckets[b]; d; d = d->next)
		{
			d->routed = RoutesHasDeployment(d->id);
			if (!d->routed)
				while (d->conns)
					close_conn(d->conns);
		}
	}
}
