/*
 * src/router/pglink.h
 *	  One asynchronous libpq connection of the router to the cluster, driven
 *	  by the main epoll loop: connecting, one query in flight at a time,
 *	  notifications, and reconnecting with a growing delay when it is lost.
 *
 * The router keeps two (routes.c): one that LISTENs and reloads the route
 * table, and one for nx.wake() and the traffic report, so that a wake
 * waiting on a lock a user holds (up to lock_timeout) never delays a
 * table reload, and with it every other site's promote.
 */
#ifndef NX_ROUTER_PGLINK_H
#define NX_ROUTER_PGLINK_H

#include "router.h"

#include <libpq-fe.h>

typedef enum PgLinkState
{
	PGLINK_DOWN,				/* waiting to reconnect */
	PGLINK_CONNECTING,
	PGLINK_READY
} PgLinkState;

typedef struct PgLink PgLink;

struct PgLink
{
	const char *name;			/* for the log: "route table connection" */
	const char *application_name;	/* what pg_stat_activity shows */

	/* what the owner does; on_notify may be NULL */
	void		(*on_ready) (PgLink *link);	/* connected: send the first query */
	void		(*on_result) (PgLink *link, PGresult *res);	/* each result of the query */
	void		(*on_done) (PgLink *link);	/* the query in flight is over */
	void		(*on_notify) (PgLink *link);	/* a NOTIFY arrived */
	void		(*on_drop) (PgLink *link);	/* lost, with the query in flight */
	void		(*on_idle) (PgLink *link);	/* nothing in flight: send what waits */

	/* the state, owned by pglink.c */
	PGconn	   *pg;
	PgLinkState state;
	bool		busy;			/* a query is in flight */
	bool		failed;			/* the owner asked to start over (PgLinkRestart) */
	int			fd;
	uint32_t	events;
	Tag			tag;
	int64_t		retry_at;
	int64_t		connect_started;
	int			backoff_ms;
};

extern void PgLinkStart(PgLink *link);
extern void PgLinkEvent(PgLink *link, uint32_t events);
extern void PgLinkTimers(PgLink *link, int64_t now, int64_t *next);
extern bool PgLinkIdle(const PgLink *link);
extern bool PgLinkSend(PgLink *link, const char *sql, int nparams, const char *const *params);
extern void PgLinkRestart(PgLink *link);
extern void PgLinkOneLine(char *out, size_t size, const char *in);

#endif							/* NX_ROUTER_PGLINK_H */
