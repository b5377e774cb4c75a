/*
 * src/router/router.h
 *	  What the parts of nx-router share: settings, the event loop's tagged
 *	  epoll registrations, client connections, and each module's entry
 *	  points.
 *
 * Glossary:
 *	  conn		one client connection, from accept to close; each request
 *				on it is routed on its own Host and forwarded over an app
 *				socket of that request's deployment
 *	  app		a TCP socket to the app inside a sandbox, handed over by
 *				the sandbox's nx-init (src/include/nx_handoff.h); kept in
 *				the deployment's pool between requests (pool.c)
 *	  exchange	one request and its response, forwarded with exact framing
 *				(http_head.c, http_frame.c)
 *	  tag		what an epoll registration points to: its first member says
 *				which kind of object it is (listener, conn side, ...)
 *	  route		host name -> deployment id (and whether it should run, or
 *				is asleep), from the view nx.routes
 *
 * One thread, one epoll set, level-triggered; every socket non-blocking.
 * Memory per connection is bounded (head buffer up to the head limit, one
 * relay buffer per direction), and the number of connections is bounded by
 * --max-connections.
 */
#ifndef NX_ROUTER_H
#define NX_ROUTER_H

#include "http_frame.h"
#include "http_head.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* settings (router.c parses them) */
typedef struct RouterSettings
{
	const char *conninfo;		/* -d; NULL: libpq's PG* defaults */
	const char *run_dir;		/* --run-dir; NULL: ask the cluster */
	int64_t		ready_timeout_ms;	/* --ready-timeout */
	int64_t		head_timeout_ms;	/* --head-timeout */
	int64_t		idle_timeout_ms;	/* --idle-timeout (0: none) */
	int			max_connections;	/* --max-connections */
	size_t		head_limit;		/* --max-head-size */
	size_t		buffer_size;	/* relay buffer per direction */
	int64_t		drain_timeout_ms;	/* --drain-timeout */
	int64_t		keepalive_timeout_ms;	/* --keepalive-timeout: idle client */
	int			pool_size;		/* --pool-size: idle app sockets per deployment */
	int64_t		pool_idle_timeout_ms;	/* --pool-idle-timeout */
	int			max_app_connections;	/* --max-app-connections, per deployment */
	int			max_client_connections; /* --max-client-connections, per address */
	const char *trusted_proxies;	/* --trusted-proxies: CIDR list */
	bool		jail;			/* not --no-jail */
} RouterSettings;

extern RouterSettings router_settings;

/* kinds of epoll registrations */
typedef enum TagKind
{
	TAG_LISTENER,
	TAG_SIGNAL,
	TAG_PG,
	TAG_HANDOFF,
	TAG_CLIENT,
	TAG_APP,
	TAG_POOL
} TagKind;

typedef struct Tag
{
	TagKind		kind;
	void	   *owner;			/* the object this registration belongs to */
} Tag;

/* a byte buffer with a read and a write position */
typedef struct Buf
{
	char	   *data;
	size_t		cap;
	size_t		start;			/* first byte not yet sent */
	size_t		end;			/* one past the last byte received */
} Buf;

/* one deployment's traffic since the last report (activity.c) */
typedef struct Activity
{
	int64_t		deployment;
	int			open;			/* client connections on it now */
	int			reported_open;	/* open at the last report */
	uint64_t	connections;	/* app connections handed over since the last report */
	uint64_t	bytes_in;		/* from clients, since the last report */
	uint64_t	bytes_out;		/* to clients, since the last report */
	int64_t		last_ms;		/* when a byte last moved (0: never) */
	bool		waking;			/* nx.wake asked for it, answer not in yet */
	struct Activity *next;		/* hash chain */
} Activity;

typedef enum ConnState
{
	CONN_HEAD,					/* reading a request head (or idle between requests) */
	CONN_HANDOFF,				/* waiting for nx-init to hand over an app socket */
	CONN_EXCHANGE,				/* forwarding one request and its response */
	CONN_TUNNEL,				/* after a 101: moving bytes both ways */
	CONN_REPLY,					/* writing our own response, then close */
	CONN_LINGER,				/* response sent: drain the client briefly */
	CONN_CLOSED					/* to be freed after this loop pass */
} ConnState;

typedef struct ClientCount ClientCount;

typedef struct Conn
{
	ConnState	state;
	int			client_fd;
	int			app_fd;			/* -1: none now */
	Tag			client_tag;
	Tag			app_tag;
	uint32_t	client_events;	/* what epoll watches now, per side */
	uint32_t	app_events;
	char		peer[64];		/* client address, for X-Forwarded-For and logs */
	bool		trusted;		/* the peer is a trusted proxy */
	ClientCount *client_count;	/* its address's connection count */

	HttpHead	head;			/* the current request's head */
	HttpHead	resp;			/* the current response's head */
	HttpFrame	req_frame;		/* the request body */
	HttpFrame	resp_frame;		/* the response body */
	Buf			in;				/* from the client: heads and bodies */
	Buf			hout;			/* the rewritten request head, to the app */
	Buf			ain;			/* from the app */
	Buf			rout;			/* a response head, or our own page, to the client */
	size_t		req_pass;		/* bytes at in.start that are body, to forward */
	size_t		resp_pass;		/* bytes at ain.start that are body, to forward */
	uint64_t	requests;		/* answered on this connection */
	bool		idle_wait;		/* CONN_HEAD with nothing of a head yet */
	bool		head_request;	/* the method is HEAD */
	bool		req_upgrade;	/* Connection: upgrade + Upgrade */
	bool		req_body;		/* the request has a body */
	bool		keep_client;	/* the client connection outlives this exchange */
	bool		resp_final;		/* the final response head is in */
	bool		app_reusable;	/* the app socket may serve another request */
	bool		app_reused;		/* it came from the pool */
	bool		retried;		/* this request was sent again once already */
	bool		client_eof;		/* client sent FIN */
	bool		app_eof;		/* app sent FIN */
	bool		app_shut;		/* we sent FIN to the app (tunnel) */
	bool		client_shut;	/* we sent FIN to the client (tunnel) */
	bool		client_muted;	/* the client spoke while not listened to */
	uint64_t	down_bytes;		/* bytes the app sent for this exchange */

	/* the app socket and hand-off */
	int64_t		deployment;		/* of the current request */
	bool		holds_slot;		/* counted against deployment's connection cap */
	bool		queued;			/* a CONNECT of ours awaits nx-init's reply */
	int64_t		handoff_started;	/* when it began waiting for the app */
	int64_t		ready_deadline; /* when to give up waiting for the app */
	int64_t		retry_at;		/* when to ask nx-init again (0: not waiting) */
	int			retry_delay_ms;

	Activity   *activity;		/* the deployment of its last request */

	int64_t		deadline;		/* head, idle, reply and linger timeouts (0: none) */
	int64_t		last_active;	/* last time bytes moved (exchange, tunnel) */
	struct Conn *prev,
			   *next;			/* all connections */
} Conn;

/* util.c */
extern int64_t NowMs(void);
extern int64_t loop_now;		/* NowMs() after the last epoll_wait */
extern int64_t timers_due_at;	/* when the loop runs its timers next */
extern void TimersDueBy(int64_t at);
extern void RouterLog(const char *fmt,...) __attribute__((format(printf, 1, 2)));
extern int	SetNonBlocking(int fd);
extern void EpollSet(int fd, Tag *tag, uint32_t events, uint32_t *current);
extern void EpollDel(int fd, uint32_t *current);
extern void EpollPass(uint32_t *from, uint32_t *to);
extern int	router_epfd;

/* what the router did since it started (logged when it stops) */
typedef struct RouterStats
{
	uint64_t	accepted;		/* client connections */
	uint64_t	requests;		/* routed to an app */
	uint64_t	handoffs;		/* app connections nx-init handed over */
	uint64_t	reused;			/* requests sent on a pooled app connection */
} RouterStats;

extern RouterStats router_stats;
extern void RouterLogStats(void);

/* conn.c */
extern int	conn_count;
extern void ConnAccept(int listen_fd);
extern void ConnEvent(Tag *tag, uint32_t events);
extern void ConnTimers(int64_t now, int64_t *next);
extern void ConnFreeClosed(void);
extern void ConnGotApp(Conn *conn, int app_fd);
extern void ConnHandoffFailed(Conn *conn, int status, const char *why);
extern void ConnRetryHandoff(Conn *conn, const char *why);
extern void ConnDrain(void);

/* clients.c: trusted proxies and connections per client address */
extern bool ClientsInit(const char *trusted);
extern bool ClientTrusted(const struct sockaddr_storage *ss);
extern ClientCount *ClientAdd(const char *peer);
extern void ClientRemove(ClientCount *c);

/* pool.c: idle app sockets per deployment, and the per-deployment cap */
extern int	PoolAcquire(int64_t deployment, int *fd, uint32_t *events);
extern void PoolRelease(int64_t deployment, int fd, bool reusable, uint32_t *events);
extern void PoolEvent(Tag *tag, uint32_t events);
extern void PoolTimers(int64_t now, int64_t *next);
extern void PoolPrune(void);

/* what the route table says about a host's deployment */
typedef enum RouteState
{
	ROUTE_RUNNING,				/* should run: hand the connection over */
	ROUTE_ASLEEP,				/* stopped for being idle: wake it, then hand over */
	ROUTE_STOPPED				/* stopped on purpose: 503 */
} RouteState;

/* jail.c */
extern int	RouterJail(void);

/* activity.c */
extern Activity *ActivityGet(int64_t deployment);
extern void ActivityOpened(Activity *a);
extern void ActivityHandedOff(Activity *a);
extern void ActivityClosed(Activity *a);
extern void ActivityMoved(Activity *a, size_t in, size_t out);
extern bool ActivityReport(bool full, char *arrays[6]);

/* routes.c */
extern void RoutesStart(void);
extern void RoutesEvent(void *owner, uint32_t events);
extern void RoutesTimers(int64_t now, int64_t *next);
extern bool RoutesLookup(const char *host, int64_t *deployment, RouteState *state);
extern bool RoutesLoaded(void);
extern bool RoutesHasDeployment(int64_t deployment);
extern const char *RoutesRunDir(void);

/* wake_report.c: nx.wake() and the traffic report, on a connection of their own */
extern void RoutesWake(int64_t deployment);
extern void WakeReportStart(void);
extern void WakeReportTimers(int64_t now, int64_t *next);

/* handoff.c */
extern void HandoffRequest(Conn *conn);
extern void HandoffCancel(Conn *conn);
extern void HandoffEvent(Tag *tag, uint32_t events);

#endif							/* NX_ROUTER_H */
