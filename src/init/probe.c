/*
 * src/init/probe.c
 *	  The readiness probe: has the app started listening on $PORT yet?
 *
 * It asks the kernel through NETLINK_SOCK_DIAG for the TCP sockets of
 * nx-init's network namespace (the sandbox's) in state LISTEN on $PORT, on
 * any local address, IPv4 then IPv6 (listens.c).  The kernel filters on the
 * state and the port, so a probe costs the same however many sockets the
 * host has (about 30 us; reading /proc/net/tcp instead walked the host's
 * whole established hash: 1.6-2.1 ms of CPU, see BENCHMARKS.md).  It never
 * connects to the app, so the app sees no stray connections.
 *
 * Fallbacks, each only when the one before is refused: /proc/net/tcp{,6}
 * (netlink denied, or sock_diag missing from the kernel; also when
 * --proc-net names a directory, for the tests), then a non-blocking
 * connect() to 127.0.0.1:$PORT (no /proc in the sandbox).
 *
 * It runs from a timerfd in the main loop: every 0.5 ms for the first
 * 20 ms (a compiled app listens within a few milliseconds, and a start or
 * a wake from zero waits on this: probing every 2 ms added 1 ms on
 * average), every 2 ms until 100 ms, then every 10 ms; or every
 * --probe-interval-ms if given.  The first 100 ms so cost 80 probes, about
 * 1.5 ms of CPU.  Once it has seen the listener it stops for good.
 */
#include "nx_init.h"
#include "nx_listens.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define FIRST_INTERVAL_US	500
#define FIRST_PERIOD_MS		20
#define FAST_INTERVAL_US	2000
#define FAST_PERIOD_MS		100
#define SLOW_INTERVAL_US	10000

static int	probe_port;
static int	probe_interval_ms;	/* 0: the default fast-then-slow schedule */
static char proc_net_dir[PATH_MAX];
static int	diag_fd = -1;		/* sock_diag socket; -1: use /proc/net */
static struct timespec probe_started;
static int	timer_fd = -1;
static int	connect_fd = -1;	/* fallback probe's connection in progress */

/* ms_since returns the milliseconds elapsed since *start (monotonic). */
static long
ms_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000L +
		(now.tv_nsec - start->tv_nsec) / 1000000L;
}

/* next_interval_us is how long to wait before the next probe. */
static long
next_interval_us(void)
{
	long		elapsed;

	if (probe_interval_ms > 0)
		return probe_interval_ms * 1000L;
	elapsed = ms_since(&probe_started);
	if (elapsed < FIRST_PERIOD_MS)
		return FIRST_INTERVAL_US;
	return elapsed < FAST_PERIOD_MS ? FAST_INTERVAL_US : SLOW_INTERVAL_US;
}

/*
 * arm_timer sets the timerfd to fire once, us microseconds from now (0
 * disarms it).  One-shot rather than periodic: the interval changes over
 * time, and a slow tick must not queue up more ticks behind it.
 */
static void
arm_timer(long us)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = us / 1000000L;
	its.it_value.tv_nsec = (us % 1000000L) * 1000L;
	if (timerfd_settime(timer_fd, 0, &its, NULL) < 0)
		nx_log("timerfd_settime: %s", strerror(errno));
}

/*
 * connect_probe is the fallback when /proc/net is not there: a non-blocking
 * connect() to 127.0.0.1:$PORT.  On loopback it usually succeeds or is
 * refused at once; when it is still in progress the socket is kept and
 * looked at again on the next tick.
 */
static bool
connect_probe(void)
{
	struct sockaddr_in addr;
	struct pollfd pfd;
	int			err = 0;
	socklen_t	errlen = sizeof(err);

	if (connect_fd < 0)
	{
		connect_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (connect_fd < 0)
			return false;
		memset(&addr, 0, sizeof(addr));
		addr.sin_family = AF_INET;
		addr.sin_port = htons((uint16_t) probe_port);
		addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (connect(connect_fd, (struct sockaddr *) &addr, sizeof(addr)) == 0)
			err = 0;
		else if (errno == EINPROGRESS || errno == EINTR)
			return false;		/* look again next tick */
		else
			err = errno;
	}
	else
	{
		pfd.fd = connect_fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, 0) == 0)
			return false;		/* still in progress */
		if (getsockopt(connect_fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0)
			err = errno;
	}
	close(connect_fd);
	connect_fd = -1;
	return err == 0;
}

/*
 * app_listens runs one probe: sock_diag; if the kernel refuses it, from
 * then on /proc/net/tcp{,6} if readable, else connect().
 */
static bool
app_listens(void)
{
	int			r;

	if (diag_fd >= 0)
	{
		r = listens_diag(diag_fd, probe_port);
		if (r >= 0)
			return r > 0;
		nx_log("readiness probe: sock_diag refused (%s); reading %s/tcp instead",
			   strerror(errno), proc_net_dir);
		close(diag_fd);
		diag_fd = -1;
	}
	r = listens_proc(proc_net_dir, probe_port);
	if (r < 0)
		return connect_probe();
	return r > 0;
}

/*
 * probe_start sets up the probe for `port` (interval_ms 0: the default
 * schedule; proc_net: NULL to ask sock_diag, falling back to /proc/net, or
 * a directory to read DIR/tcp{,6} from instead) and registers its timerfd
 * with the main loop.  Returns 0, or -1 if the timerfd cannot be created.
 */
int
probe_start(int port, int interval_ms, const char *proc_net)
{
	probe_port = port;
	probe_interval_ms = interval_ms;
	snprintf(proc_net_dir, sizeof(proc_net_dir), "%s", proc_net ? proc_net : "/proc/net");
	if (proc_net == NULL)
	{
		diag_fd = listens_diag_open();
		if (diag_fd < 0)
			nx_log("readiness probe: no sock_diag socket (%s); reading /proc/net/tcp instead",
				   strerror(errno));
	}
	clock_gettime(CLOCK_MONOTONIC, &probe_started);

	timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (timer_fd < 0)
		return -1;
	nx_epoll_add(timer_fd, NX_TAG_TIMER);
	arm_timer(next_interval_us());
	return 0;
}

/*
 * probe_tick handles the timerfd firing: probes once and either re-arms the
 * timer or, when the app listens, stops probing.  Returns true exactly when
 * the app was found listening.
 */
bool
probe_tick(void)
{
	uint64_t	expirations;

	if (timer_fd < 0)
		return false;
	/* drain the timerfd; EAGAIN (spurious wakeup) is harmless */
	if (read(timer_fd, &expirations, sizeof(expirations)) < 0 &&
		errno != EAGAIN && errno != EINTR)
		nx_log("timerfd read: %s", strerror(errno));

	if (app_listens())
	{
		probe_stop();
		return true;
	}
	arm_timer(next_interval_us());
	return false;
}

/* probe_stop stops probing and releases the probe's descriptors. */
void
probe_stop(void)
{
	if (timer_fd >= 0)
	{
		nx_epoll_del(timer_fd);
		close(timer_fd);
		timer_fd = -1;
	}
	if (diag_fd >= 0)
	{
		close(diag_fd);
		diag_fd = -1;
	}
	if (connect_fd >= 0)
	{
		close(connect_fd);
		connect_fd = -1;
	}
}
