/*
 * src/include/nx_handoff.h
 *	  The wire format between the sandbox's first process (nx-init) and
 *	  whoever hands connections to the app (the router) or asks how the app
 *	  is doing (the supervisor).  It is the only contract between the parts
 *	  outside the postmaster and the code inside a sandbox: keep it small.
 *
 * Transport: a SOCK_SEQPACKET unix socket at $PGDATA/nx/run/d<id>/init.sock
 * on the host (NX_RUN_SOCKET_NAME in the deployment's run directory).  The
 * supervisor (the cluster's uid) creates the run directory (0700, never
 * bound into any sandbox), binds and listens on the socket itself, and
 * hands the listening descriptor to nx-init as NX_INIT_LISTEN_FD; nx-init
 * only accept()s on it.  So nothing a tenant can write is on the path the
 * router and the supervisor connect to, and nx-init keeps the descriptor
 * out of the app's reach (close-on-exec, non-dumpable).
 * Each request is one packet; each reply is one packet.
 *
 *	  request  NxInitRequest  { magic, version, op }
 *	  reply    NxInitReply    { magic, version, status, err }
 *			   with op CONNECT and status OK: exactly one file descriptor
 *			   attached (SCM_RIGHTS): a TCP socket already connected to the
 *			   app at 127.0.0.1:$PORT inside the sandbox's network namespace.
 *
 * Idle stop (scale to zero): before it stops a deployment for being idle,
 * the supervisor sends QUIESCE.  nx-init agrees (OK) only if it has handed
 * out no connection for NX_INIT_QUIET_MS; from then on it answers CONNECT
 * with NOT_READY, so no new connection can reach an app that is about to be
 * stopped, until RESUME or NX_INIT_QUIESCE_MAX_MS later.  Otherwise it
 * answers BUSY and changes nothing.  The router's activity reports cover
 * the connections opened before the window; the window covers the rest.
 *
 * Readiness: nx-init writes one line to its status fd (NX_INIT_STATUS_FD)
 * for each change: "ready\n" once the app accepts connections on $PORT,
 * "exited <code>\n" or "killed <signal>\n" when the app ends (nx-init then
 * exits with the same status).
 *
 * Adoption: once the app is ready, the supervisor ends bwrap's monitor
 * process (the parent of nx-init outside the sandbox, which only waits),
 * and nx-init becomes the supervisor's child (the supervisor is a child
 * subreaper).  It then sends nx-init NX_INIT_ADOPTED_SIGNAL, from outside
 * the sandbox's pid namespace, and nx-init ties its life to its new
 * parent's (PR_SET_PDEATHSIG), as bwrap's --die-with-parent did before.
 */
#ifndef NX_HANDOFF_H
#define NX_HANDOFF_H

#include <stdint.h>
#include <stdio.h>

#define NX_HANDOFF_MAGIC 0x6e78u	/* "nx" */
#define NX_HANDOFF_VERSION 1

/*
 * The run-directory layout, defined here once for the supervisor, the
 * router and the tests: the run directory is $PGDATA/nx/NX_RUN_DIR_NAME
 * (the router asks the cluster for data_directory || NX_RUN_DIR_SUFFIX);
 * each deployment's is NX_DEPLOYMENT_NAME_FMT (its id) in it, and holds
 * NX_RUN_SOCKET_NAME.  The deployment's name is also the stem of its log
 * files ($PGDATA/nx/logs/d<id>.log).
 */
#define NX_RUN_DIR_NAME "run"
#define NX_RUN_DIR_SUFFIX "/nx/" NX_RUN_DIR_NAME
#define NX_DEPLOYMENT_NAME_FMT "d%lld"
#define NX_RUN_SOCKET_NAME "init.sock"
#define NX_RUN_SOCKET_PATH_FMT "%s/" NX_DEPLOYMENT_NAME_FMT "/" NX_RUN_SOCKET_NAME

/* the fd nx-init reports readiness and exits on (inherited from the spawner) */
#define NX_INIT_STATUS_FD 3

/* the listening hand-off socket nx-init accepts on (inherited, made by the
 * supervisor) */
#define NX_INIT_LISTEN_FD 4

/* "you are the supervisor's child now": see Adoption above (glibc keeps
 * SIGRTMIN - 2 and - 1 for itself; both sides are built with glibc) */
#define NX_INIT_ADOPTED_SIGNAL (SIGRTMIN + 2)

typedef enum NxInitOp
{
	NX_INIT_OP_PING = 1,		/* is nx-init alive and is the app ready? */
	NX_INIT_OP_CONNECT = 2,		/* give me a socket connected to the app */
	NX_INIT_OP_QUIESCE = 3,		/* stop handing out connections, if quiet */
	NX_INIT_OP_RESUME = 4		/* hand out connections again */
} NxInitOp;

/* QUIESCE succeeds only after this long without a hand-off */
#define NX_INIT_QUIET_MS 5000
/* a QUIESCE nobody follows with a stop or RESUME lapses after this long */
#define NX_INIT_QUIESCE_MAX_MS 10000

typedef enum NxInitStatus
{
	NX_INIT_OK = 0,				/* PING: app ready; CONNECT: fd attached */
	NX_INIT_NOT_READY = 1,		/* the app does not accept connections yet */
	NX_INIT_CONNECT_FAILED = 2, /* connect() to the app failed: err is errno */
	NX_INIT_BAD_REQUEST = 3,
	NX_INIT_BUSY = 4			/* QUIESCE: a connection was handed out recently */
} NxInitStatus;

typedef struct NxInitRequest
{
	uint16_t	magic;
	uint8_t		version;
	uint8_t		op;				/* NxInitOp */
} NxInitRequest;

typedef struct NxInitReply
{
	uint16_t	magic;
	uint8_t		version;
	uint8_t		status;			/* NxInitStatus */
	int32_t		err;			/* errno for NX_INIT_CONNECT_FAILED, else 0 */
} NxInitReply;

/*
 * NxDeploymentName writes a deployment's name ("d<id>": its run directory,
 * its log files' stem) into buf; its length, as snprintf.
 */
static inline int
NxDeploymentName(char *buf, size_t len, long long id)
{
	return snprintf(buf, len, NX_DEPLOYMENT_NAME_FMT, id);
}

/*
 * NxParseDeploymentName reads a deployment's name at the start of s: the
 * id into *id, and a pointer just past the name (NULL if s does not start
 * with one).
 */
static inline const char *
NxParseDeploymentName(const char *s, long long *id)
{
	int			used = 0;

	if (s[0] != 'd' || s[1] < '0' || s[1] > '9' ||
		sscanf(s, NX_DEPLOYMENT_NAME_FMT "%n", id, &used) != 1 || used == 0)
		return NULL;
	return s + used;
}

#endif							/* NX_HANDOFF_H */
