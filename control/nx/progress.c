/*
 * control/nx/progress.c
 *	  The upload progress bar of nx push: on a terminal (isatty(2)), for
 *	  files over 1 MiB, "sending  3.0 MiB / 10.0 MiB  30%" on stderr.
 *
 * libpq has no API that says how much of a query it has sent.  So the
 * query is sent in non-blocking mode (PQsendQueryParams, then PQflush
 * until it returns 0, waiting for the socket in between), which makes
 * libpq write the buffered message in pieces, and this file defines
 * send(): the executable's definition interposes on the C library's for
 * libpq, which writes every byte of a connection (plain or through its
 * TLS layer) with send().  Ours counts the bytes, then does what the C
 * library's does (the sendto system call).  It counts only while a bar is
 * shown; otherwise it is a plain pass-through.
 */
#define _GNU_SOURCE
#include "nx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static bool progress_active;
static size_t progress_sent;
static size_t progress_total;
static double progress_last;

ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
	ssize_t		n = syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);

	if (n > 0 && progress_active)
		progress_sent += (size_t) n;
	return n;
}

static void
draw(bool force)
{
	double		now = nx_now();
	size_t		sent = progress_sent < progress_total ? progress_sent : progress_total;

	if (!force && now - progress_last < 0.1)
		return;
	progress_last = now;
	fprintf(stderr, "\rsending %6.1f MiB / %.1f MiB %3d%%",
			sent / 1048576.0, progress_total / 1048576.0,
			(int) (100.0 * sent / (progress_total ? progress_total : 1)));
	fflush(stderr);
}

/*
 * nx_exec_with_progress runs the query like nx_query_typed, drawing the
 * bar while the parameters are sent when stderr is a terminal and total
 * is over 1 MiB; otherwise it is nx_query_typed.
 */
PGresult *
nx_exec_with_progress(PGconn *conn, const char *sql, int nparams,
					  const unsigned int *types, const char *const *values,
					  const int *lengths, const int *formats, size_t total)
{
	PGresult   *res = NULL;
	PGresult   *next;
	int			r;

	if (total <= 1048576 || !isatty(STDERR_FILENO) || PQsetnonblocking(conn, 1) != 0)
		return nx_query_typed(conn, sql, nparams, types, values, lengths, formats);

	progress_active = true;
	progress_sent = 0;
	progress_total = total;
	progress_last = 0;
	if (!PQsendQueryParams(conn, sql, nparams, types, values, lengths, formats, 0))
		r = -1;
	else
	{
		while ((r = PQflush(conn)) == 1)
		{
			fd_set		wfds;
			fd_set		rfds;
			int			sock = PQsocket(conn);

			draw(false);
			FD_ZERO(&wfds);
			FD_ZERO(&rfds);
			FD_SET(sock, &wfds);
			FD_SET(sock, &rfds);
			if (select(sock + 1, &rfds, &wfds, NULL, NULL) < 0 && errno != EINTR)
				break;
			if (FD_ISSET(sock, &rfds) && !PQconsumeInput(conn))
			{
				r = -1;
				break;
			}
		}
	}
	progress_active = false;
	if (r == 0)
	{
		progress_sent = progress_total;
		draw(true);
	}
	fputc('\n', stderr);
	PQsetnonblocking(conn, 0);
	if (r != 0)
	{
		nx_report_pg_error(conn, NULL);
		PQfinish(conn);
		nx_exit(NX_EXIT_SERVER);
	}
	/* the results, as PQexec would collect them: keep the last */
	while ((next = PQgetResult(conn)) != NULL)
	{
		if (res)
			PQclear(res);
		res = next;
	}
	if (res == NULL || (PQresultStatus(res) != PGRES_TUPLES_OK &&
						PQresultStatus(res) != PGRES_COMMAND_OK))
	{
		nx_report_pg_error(conn, res);
		PQclear(res);
		PQfinish(conn);
		nx_exit(NX_EXIT_SERVER);
	}
	return res;
}
