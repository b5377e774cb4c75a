/*
 * src/router/util.c
 *	  Small helpers of nx-router: the clock, the log line, non-blocking
 *	  sockets and epoll registrations that remember what they watch (so a
 *	  change of interest costs a syscall only when something changed).
 */
#include "router.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#define EPOLL_REGISTERED (1u << 27)	/* marker bit in *current, not an event */

int			router_epfd = -1;
int64_t		loop_now;
int64_t		timers_due_at;	/* when the loop runs its timers next */

/*
 * TimersDueBy makes the loop run its timers no later than `at`: a
 * hand-off retry scheduled while handling an event is due in 2 ms, long
 * before the next regular tick.
 */
void
TimersDueBy(int64_t at)
{
	if (at < timers_due_at)
		timers_due_at = at;
}

/* NowMs returns a monotonic clock in milliseconds. */
int64_t
NowMs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* RouterLog writes one line to stderr: "nx-router: <message>". */
void
RouterLog(const char *fmt,...)
{
	char		line[1024];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "nx-router: %s\n", line);
}

/*
 * SetNonBlocking puts fd in non-blocking mode (no second fcntl when it
 * already is); returns 0 or -1.
 */
int
SetNonBlocking(int fd)
{
	int			flags = fcntl(fd, F_GETFL);

	if (flags < 0)
		return -1;
	if (flags & O_NONBLOCK)
		return 0;
	return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/*
 * EpollSet makes epoll watch `events` on fd (registering it the first
 * time); *current remembers what is registered, 0 meaning not at all.
 * No interest at all removes the registration: a hung-up socket nobody
 * wants to read would otherwise wake the loop forever (EPOLLHUP and
 * EPOLLERR are reported whatever the interest).
 */
void
EpollSet(int fd, Tag *tag, uint32_t events, uint32_t *current)
{
	struct epoll_event ev = {.events = events, .data.ptr = tag};
	int			op,
				rc;

	if (*current == (events | EPOLL_REGISTERED))
		return;
	if (events == 0)
	{
		/* not registered at all, so that EPOLLHUP/EPOLLERR cannot spin */
		EpollDel(fd, current);
		return;
	}
	op = (*current & EPOLL_REGISTERED) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	rc = epoll_ctl(router_epfd, op, fd, &ev);
	if (rc != 0 && op == EPOLL_CTL_MOD && errno == ENOENT)
		rc = epoll_ctl(router_epfd, EPOLL_CTL_ADD, fd, &ev);	/* closed, reused */
	if (rc != 0)
		RouterLog("epoll_ctl on fd %d: %s", fd, strerror(errno));
	*current = events | EPOLL_REGISTERED;
}

/*
 * EpollPass passes an fd's registration from one owner to another without
 * a system call: the new owner's next EpollSet (which must come before the
 * loop waits again) points it at its own tag with one EPOLL_CTL_MOD
 * instead of a DEL and an ADD.
 */
void
EpollPass(uint32_t *from, uint32_t *to)
{
	*to = *from & EPOLL_REGISTERED;
	*from = 0;
}

/* EpollDel stops watching fd (before it is closed) and resets *current. */
void
EpollDel(int fd, uint32_t *current)
{
	if (*current & EPOLL_REGISTERED)
		(void) epoll_ctl(router_epfd, EPOLL_CTL_DEL, fd, NULL);
	*current = 0;
}
