/*
 * src/router/pool.c
 *	  Idle app connections kept per deployment, so that a request (from any
 *	  client connection) for a deployment with an idle connection costs no
 *	  hand-off from nx-init and no new TCP connection to the app.
 *
 * Only connections whose last response was read to its end, that the app
 * did not mark "Connection: close" and that carry no unread byte are put
 * here (conn.c decides).  Each is watched with EPOLLIN: an app that closes
 * an idle connection (or talks out of turn) has it dropped at once.  At
 * most --pool-size are kept per deployment (the newest: a warm connection
 * is reused first) and each for at most --pool-idle-timeout, shorter than
 * nx-init's quiet window, so idle pooled connections never keep a
 * deployment awake and are gone soon after a promote.
 */
#include "router.h"

#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define BUCKETS 256

typedef struct PoolConn
{
	Tag			tag;			/* TAG_POOL, owner: this */
	int			fd;
	uint32_t	events;
	int64_t		since;			/* when it became idle */
	struct PoolDep *dep;
	struct PoolConn *prev,
			   *next;			/* newest first */
} PoolConn;

typedef struct PoolDep
{
	int64_t		deployment;
	PoolConn   *idle;			/* newest first */
	PoolConn   *oldest;
	int			count;
	struct PoolDep *next;		/* hash chain */
} PoolDep;

static PoolDep *buckets[BUCKETS];
static int	pool_total;

/* find_dep returns the pool of `deployment`, made on first use when `make`. */
static PoolDep *
find_dep(int64_t deployment, bool make)
{
	PoolDep   **b = &buckets[(uint64_t) deployment % BUCKETS];
	PoolDep    *d;

	for (d = *b; d; d = d->next)
		if (d->deployment == deployment)
			return d;
	if (!make || (d = calloc(1, sizeof(PoolDep))) == NULL)
		return NULL;
	d->deployment = deployment;
	d->next = *b;
	*b = d;
	return d;
}

/* unlink_conn takes `pc` out of its deployment's list. */
static void
unlink_conn(PoolConn *pc)
{
	PoolDep    *d = pc->dep;

	if (pc->prev)
		pc->prev->next = pc->next;
	else
		d->idle = pc->next;
	if (pc->next)
		pc->next->prev = pc->prev;
	else
		d->oldest = pc->prev;
	d->count--;
	pool_total--;
}

/* drop closes a pooled connection. */
static void
drop(PoolConn *pc)
{
	unlink_conn(pc);
	EpollDel(pc->fd, &pc->events);
	close(pc->fd);
	free(pc);
}

/*
 * PoolGet takes the newest idle connection of `deployment`, or returns -1.
 * *registered tells whether the descriptor is still registered with epoll
 * (the caller's next EpollSet moves it to its own tag).
 */
int
PoolGet(int64_t deployment, bool *registered)
{
	PoolDep    *d = find_dep(deployment, false);
	PoolConn   *pc;
	int			fd;

	*registered = false;
	if (d == NULL || d->idle == NULL)
		return -1;
	pc = d->idle;
	unlink_conn(pc);
	fd = pc->fd;
	*registered = (pc->events & EPOLL_REGISTERED) != 0;
	free(pc);
	return fd;
}

/*
 * PoolPut keeps `fd`, an idle app connection of `deployment`; returns false
 * (the caller closes it) when the pool is full or out of memory.  The
 * descriptor must not be registered with epoll.
 */
bool
PoolPut(int64_t deployment, int fd)
{
	PoolDep    *d;
	PoolConn   *pc;

	if (router_settings.pool_size <= 0 || (d = find_dep(deployment, true)) == NULL)
		return false;
	if (d->count >= router_settings.pool_size)
		drop(d->oldest);
	if ((pc = calloc(1, sizeof(PoolConn))) == NULL)
		return false;
	pc->tag = (Tag) {TAG_POOL, pc};
	pc->fd = fd;
	pc->since = loop_now;
	pc->dep = d;
	pc->next = d->idle;
	if (d->idle)
		d->idle->prev = pc;
	else
		d->oldest = pc;
	d->idle = pc;
	d->count++;
	pool_total++;
	EpollSet(fd, &pc->tag, EPOLLIN, &pc->events);
	return true;
}

/* PoolEvent: an idle connection closed or sent bytes: it is dropped. */
void
PoolEvent(Tag *tag, uint32_t events)
{
	(void) events;
	drop(tag->owner);
}

/* PoolTimers drops connections idle longer than --pool-idle-timeout. */
void
PoolTimers(int64_t now)
{
	int			i;

	if (pool_total == 0)
		return;
	for (i = 0; i < BUCKETS; i++)
	{
		PoolDep    *d;

		for (d = buckets[i]; d; d = d->next)
			while (d->oldest && now - d->oldest->since > router_settings.pool_idle_ms)
				drop(d->oldest);
	}
}
