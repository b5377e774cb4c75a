/*
 * src/router/router.c
 *	  nx-router: the HTTP front of nx_sandbox.  Command line, listening
 *	  sockets, signals and the event loop; the work is in conn.c (client
 *	  connections), routes.c (the route table from the cluster), handoff.c
 *	  (app sockets from the sandboxes) and http_head.c (the one parser of
 *	  network bytes).
 *
 * It runs outside the postmaster on purpose (DESIGN.md, I8): a crash here
 * costs open HTTP connections, never the cluster.
 *
 * Usage: nx-router [-d CONNINFO] [--listen ADDR:PORT]... [--run-dir DIR]
 *		  [--ready-timeout SEC] [--head-timeout SEC] [--idle-timeout SEC]
 *		  [--max-connections N] [--max-head-size BYTES] [--drain-timeout SEC]
 *		  [--keepalive-timeout SEC] [--pool-size N] [--pool-idle-timeout SEC]
 *		  [--max-app-connections N] [--max-client-connections N]
 *		  [--trusted-proxies CIDRS]
 *
 * SIGTERM or SIGINT drain it: the listening sockets close at once (a new
 * router can take the port), open connections finish, and it exits when
 * the last one closes or --drain-timeout has passed; a second signal ends
 * it at once.
 */
#include "router.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <sys/prctl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_LISTENERS 8
#define TIMER_TICK_MS 25
#define EVENTS_PER_WAIT 256

RouterSettings router_settings = {
	.ready_timeout_ms = 30000,
	.head_timeout_ms = 10000,
	.idle_timeout_ms = 0,
	.max_connections = 10000,
	.head_limit = HTTP_HEAD_DEFAULT_LIMIT,
	.buffer_size = 64 * 1024,
	.drain_timeout_ms = 10000,
	.keepalive_timeout_ms = 60000,
	.pool_size = 64,
	.pool_idle_timeout_ms = 2000,
	.max_app_connections = 1000,
	.max_client_connections = 1000,
	.jail = true,
};

RouterStats router_stats;

static int	listeners[MAX_LISTENERS];
static uint32_t listener_events[MAX_LISTENERS];
static Tag	listener_tags[MAX_LISTENERS];
static int	n_listeners;

/*
 * RouterLogStats logs what the router did since it started, when it stops
 * (the tests read it: client connections against requests show pooling
 * in front, hand-offs against requests pooling behind).
 */
void
RouterLogStats(void)
{
	RouterLog("served %llu requests on %llu client connections; %llu app connections handed over, "
			  "%llu requests on pooled ones",
			  (unsigned long long) router_stats.requests, (unsigned long long) router_stats.accepted,
			  (unsigned long long) router_stats.handoffs, (unsigned long long) router_stats.reused);
}

/* usage prints the command line help to `out`. */
static void
usage(FILE *out)
{
	fprintf(out,
			"Usage: nx-router [OPTION]...\n"
			"Routes HTTP requests to nx_sandbox deployments by Host.\n\n"
			"  -d, --dbname=CONNINFO      the cluster to read routes from (default: PG* env)\n"
			"  --exit-with-parent         exit when the parent process does (the supervisor)\n"
			"  --listen=ADDR:PORT         listen here (repeatable; default 127.0.0.1:8080;\n"
			"                             IPv6 as [::1]:8080)\n"
			"  --run-dir=DIR              where d<id>/init.sock are (default: asked from\n"
			"                             the cluster: data_directory/nx/run)\n"
			"  --ready-timeout=SEC        wait this long for a deployment to be ready (30)\n"
			"  --head-timeout=SEC         a request head must arrive within this (10)\n"
			"  --idle-timeout=SEC         close a relayed connection silent this long\n"
			"                             (504 if the app never answered; default: never)\n"
			"  --max-connections=N        more are answered 503 and closed (10000)\n"
			"  --max-head-size=BYTES      longer request heads get 431 (65536)\n"
			"  --drain-timeout=SEC        on SIGTERM, let open connections finish for up\n"
			"                             to this long (10; 0: exit at once)\n"
			"  --keepalive-timeout=SEC    close a client connection idle between requests\n"
			"                             this long (60)\n"
			"  --pool-size=N              idle app connections kept per deployment (64; 0: none)\n"
			"  --pool-idle-timeout=SEC    close an idle app connection after this (2, at most 4)\n"
			"  --max-app-connections=N    app connections per deployment at most (1000)\n"
			"  --max-client-connections=N connections per client address at most (1000;\n"
			"                             trusted proxies are not counted)\n"
			"  --trusted-proxies=CIDRS    keep the X-Forwarded-* fields these peers send\n"
			"                             (comma-separated, e.g. 127.0.0.1,10.0.0.0/8)\n"
			"  --no-jail                  do not apply the seccomp filter (debugging)\n"
			"  --help                     this help\n");
}

/*
 * parse_seconds reads "SEC" (fractions allowed) as milliseconds, or exits;
 * 0 only where zero_ok (--drain-timeout 0: exit at once).
 */
static int64_t
parse_seconds(const char *opt, const char *s, bool zero_ok)
{
	char	   *end;
	double		v = strtod(s, &end);

	if (*s == '\0' || *end != '\0' || !(v > 0 || (zero_ok && v == 0)) || v > 86400)
	{
		fprintf(stderr, "nx-router: error: %s wants seconds (e.g. 10 or 0.5), not \"%s\"\n", opt, s);
		exit(2);
	}
	return (int64_t) (v * 1000);
}

/* parse_count reads a positive integer, or exits. */
static long
parse_count(const char *opt, const char *s, long max)
{
	char	   *end;
	long		v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v <= 0 || v > max)
	{
		fprintf(stderr, "nx-router: error: %s wants a number from 1 to %ld, not \"%s\"\n", opt, max, s);
		exit(2);
	}
	return v;
}

/*
 * add_listener listens on "ADDR:PORT" ("[V6]:PORT" for IPv6) and adds the
 * socket to the loop, or exits with a clear error.
 */
static void
add_listener(const char *spec)
{
	struct sockaddr_storage ss = {0};
	socklen_t	len;
	char		host[128];
	const char *colon = strrchr(spec, ':');
	int			port;
	int			fd;
	int			one = 1;

	if (n_listeners == MAX_LISTENERS || colon == NULL || (size_t) (colon - spec) >= sizeof(host))
	{
		fprintf(stderr, "nx-router: error: bad --listen \"%s\" (want ADDR:PORT, at most %d)\n",
				spec, MAX_LISTENERS);
		exit(2);
	}
	port = (int) parse_count("--listen port", colon + 1, 65535);
	memcpy(host, spec, colon - spec);
	host[colon - spec] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']')
	{
		struct sockaddr_in6 *a = (struct sockaddr_in6 *) &ss;

		host[strlen(host) - 1] = '\0';
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			goto bad;
		len = sizeof(*a);
	}
	else
	{
		struct sockaddr_in *a = (struct sockaddr_in *) &ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			goto bad;
		len = sizeof(*a);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
		(ss.ss_family == AF_INET6 &&
		 setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
		bind(fd, (struct sockaddr *) &ss, len) != 0 || listen(fd, 1024) != 0)
	{
		fprintf(stderr, "nx-router: error: cannot listen on %s: %s\n", spec, strerror(errno));
		exit(1);
	}
	listeners[n_listeners] = fd;
	listener_tags[n_listeners] = (Tag) {TAG_LISTENER, &listeners[n_listeners]};
	EpollSet(fd, &listener_tags[n_listeners], EPOLLIN, &listener_events[n_listeners]);
	n_listeners++;
	return;
bad:
	fprintf(stderr, "nx-router: error: bad address in --listen \"%s\"\n", spec);
	exit(2);
}

/*
 * raise_fd_limit lifts the soft limit on open files to the hard one: each
 * connection needs two descriptors.
 */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
	{
		rl.rlim_cur = rl.rlim_max;
		(void) setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"listen", required_argument, NULL, 'l'},
		{"run-dir", required_argument, NULL, 'r'},
		{"ready-timeout", required_argument, NULL, 'R'},
		{"head-timeout", required_argument, NULL, 'H'},
		{"idle-timeout", required_argument, NULL, 'I'},
		{"max-connections", required_argument, NULL, 'm'},
		{"max-head-size", required_argument, NULL, 's'},
		{"exit-with-parent", no_argument, NULL, 'P'},
		{"drain-timeout", required_argument, NULL, 'D'},
		{"no-jail", no_argument, NULL, 'J'},
		{"keepalive-timeout", required_argument, NULL, 'K'},
		{"pool-size", required_argument, NULL, 'p'},
		{"pool-idle-timeout", required_argument, NULL, 'i'},
		{"max-app-connections", required_argument, NULL, 'a'},
		{"max-client-connections", required_argument, NULL, 'c'},
		{"trusted-proxies", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *listen_specs[MAX_LISTENERS];
	int			n_specs = 0;
	int			c;
	int			i;
	sigset_t	sigs;
	int			sigfd;
	Tag			sig_tag = {TAG_SIGNAL, NULL};
	uint32_t	sig_events = 0;
	bool		draining = false;
	int64_t		drain_deadline = 0;

	while ((c = getopt_long(argc, argv, "d:", options, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				router_settings.conninfo = optarg;
				break;
			case 'l':
				if (n_specs == MAX_LISTENERS)
				{
					fprintf(stderr, "nx-router: error: at most %d --listen\n", MAX_LISTENERS);
					return 2;
				}
				listen_specs[n_specs++] = optarg;
				break;
			case 'r':
				router_settings.run_dir = optarg;
				break;
			case 'R':
				router_settings.ready_timeout_ms = parse_seconds("--ready-timeout", optarg, false);
				break;
			case 'H':
				router_settings.head_timeout_ms = parse_seconds("--head-timeout", optarg, false);
				break;
			case 'I':
				router_settings.idle_timeout_ms = parse_seconds("--idle-timeout", optarg, false);
				break;
			case 'm':
				router_settings.max_connections = (int) parse_count("--max-connections", optarg, 1000000);
				break;
			case 's':
				router_settings.head_limit = (size_t) parse_count("--max-head-size", optarg, 1024 * 1024);
				break;
			case 'J':
				router_settings.jail = false;
				break;
			case 'K':
				router_settings.keepalive_timeout_ms = parse_seconds("--keepalive-timeout", optarg, false);
				break;
			case 'p':
				router_settings.pool_size = strcmp(optarg, "0") == 0 ? 0 :
					(int) parse_count("--pool-size", optarg, 100000);
				break;
			case 'i':
				/* below nx-init's quiet window (NX_INIT_QUIET_MS, 5 s): see pool.c */
				router_settings.pool_idle_timeout_ms = parse_seconds("--pool-idle-timeout", optarg, false);
				if (router_settings.pool_idle_timeout_ms > 4000)
				{
					fprintf(stderr, "nx-router: error: --pool-idle-timeout is at most 4 s\n");
					return 2;
				}
				break;
			case 'a':
				router_settings.max_app_connections = (int) parse_count("--max-app-connections", optarg, 1000000);
				break;
			case 'c':
				router_settings.max_client_connections = (int) parse_count("--max-client-connections", optarg, 1000000);
				break;
			case 't':
				router_settings.trusted_proxies = optarg;
				break;
			case 'D':
				router_settings.drain_timeout_ms = parse_seconds("--drain-timeout", optarg, true);
				break;
			case 'P':
				/* started by the supervisor: never outlive it */
				if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() == 1)
				{
					fprintf(stderr, "nx-router: error: parent already gone\n");
					return 1;
				}
				break;
			case 'h':
				usage(stdout);
				return 0;
			default:
				usage(stderr);
				return 2;
		}
	}
	if (optind < argc)
	{
		usage(stderr);
		return 2;
	}
	if (n_specs == 0)
		listen_specs[n_specs++] = "127.0.0.1:8080";
	if (!ClientsInit(router_settings.trusted_proxies))
		return 2;

	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	router_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (router_epfd < 0)
	{
		perror("nx-router: error: epoll_create1");
		return 1;
	}
	for (i = 0; i < n_specs; i++)
		add_listener(listen_specs[i]);

	/* SIGTERM and SIGINT arrive as readable bytes on a signalfd */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sigfd < 0)
	{
		perror("nx-router: error: signalfd");
		return 1;
	}
	EpollSet(sigfd, &sig_tag, EPOLLIN, &sig_events);

	/* listening: from here on nothing needs more than a relay does */
	if (router_settings.jail && RouterJail() != 0)
		return 1;
	RoutesStart();
	for (i = 0; i < n_specs; i++)
		RouterLog("listening on %s", listen_specs[i]);

	for (;;)
	{
		struct epoll_event events[EVENTS_PER_WAIT];
		int64_t		now = NowMs();
		int			timeout = timers_due_at > now ? (int) (timers_due_at - now) : 0;
		int			n = epoll_wait(router_epfd, events, EVENTS_PER_WAIT, timeout);

		if (n < 0 && errno != EINTR)
		{
			perror("nx-router: error: epoll_wait");
			return 1;
		}
		loop_now = NowMs();
		for (i = 0; i < n; i++)
		{
			Tag		   *tag = events[i].data.ptr;

			switch (tag->kind)
			{
				case TAG_LISTENER:
					ConnAccept(*(int *) tag->owner);
					break;
				case TAG_SIGNAL:
					{
						struct signalfd_siginfo si;

						while (read(sigfd, &si, sizeof(si)) == (ssize_t) sizeof(si))
							;
					}
					if (draining || router_settings.drain_timeout_ms == 0)
					{
						RouterLog("stopping (signal), %d connections dropped", conn_count);
						RouterLogStats();
						return 0;
					}
					for (c = 0; c < n_listeners; c++)
						close(listeners[c]);
					n_listeners = 0;
					draining = true;
					ConnDrain();
					drain_deadline = NowMs() + router_settings.drain_timeout_ms;
					RouterLog("draining (signal): not accepting, %d connections open", conn_count);
					break;
				case TAG_PG:
					RoutesEvent(tag->owner, events[i].events);
					break;
				case TAG_HANDOFF:
					HandoffEvent(tag, events[i].events);
					break;
				case TAG_CLIENT:
				case TAG_APP:
					ConnEvent(tag, events[i].events);
					break;
				case TAG_POOL:
					PoolEvent(tag, events[i].events);
					break;
			}
		}
		now = NowMs();
		if (now >= timers_due_at)
		{
			timers_due_at = now + TIMER_TICK_MS;
			ConnTimers(now, &timers_due_at);
			PoolTimers(now, &timers_due_at);
			RoutesTimers(now, &timers_due_at);
		}
		ConnFreeClosed();
		if (draining && (conn_count == 0 || now >= drain_deadline))
		{
			if (conn_count == 0)
				RouterLog("stopping: every connection finished");
			else
				RouterLog("stopping: --drain-timeout passed, %d connections dropped", conn_count);
			RouterLogStats();
			return 0;
		}
	}
}
