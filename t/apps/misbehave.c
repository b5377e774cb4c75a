/*
 * t/apps/misbehave.c
 *	  The resource-exhaustion test's badly behaved app (t/042_exhaustion.pl),
 *	  one program with a mode per misbehaviour, chosen by its first argument
 *	  (nx.push(..., args => ARRAY['<mode>'])):
 *
 *	  exit		prints a line and exits with status 3 at once (a crashloop)
 *	  nolisten	prints a line and sleeps forever without listening on $PORT
 *	  chatty	listens on $PORT (so it is ready), then writes numbered
 *				100-byte lines to stdout as fast as the pipe takes them
 *	  connhog	opens connections to its database until one is refused,
 *				keeps them all, then serves HTTP on $PORT answering how many
 *				it holds and why the next one was refused
 *
 * Build: gcc -O2 -o misbehave t/apps/misbehave.c -I$(pg_config --includedir) -lpq
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libpq-fe.h>

/* listen_on_port listens on $PORT (all addresses); exits on failure. */
static int
listen_on_port(void)
{
	const char *p = getenv("PORT");
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(p ? atoi(p) : 8000)};
	int			one = 1;
	int			fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		bind(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0 || listen(fd, 128) < 0)
	{
		perror("misbehave: listen");
		exit(1);
	}
	return fd;
}

/* serve answers every connection with body, one request per connection. */
static void
serve(int lfd, const char *body)
{
	char		response[2048];
	int			len = snprintf(response, sizeof(response),
							   "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
							   "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
							   strlen(body), body);

	for (;;)
	{
		char		request[8192];
		int			cfd = accept(lfd, NULL, NULL);

		if (cfd < 0)
			continue;
		if (read(cfd, request, sizeof(request)) > 0 && write(cfd, response, len) != len)
			perror("misbehave: write");
		close(cfd);
	}
}

/* chatty writes numbered lines forever, 64 kB per write. */
static void
chatty(void)
{
	static char buf[65536];
	unsigned long long n = 0;

	for (;;)
	{
		size_t		used = 0;

		while (used + 100 <= sizeof(buf))
		{
			int			w = snprintf(buf + used, 101, "chatty line %020llu ", n++);

			memset(buf + used + w, 'x', 99 - w);
			buf[used + 99] = '\n';
			used += 100;
		}
		if (write(1, buf, used) < 0)
			exit(1);
	}
}

/* connhog holds as many connections to its database as it is given. */
static void
connhog(int lfd)
{
	char		body[1024];
	char		why[512] = "";
	int			held = 0;

	for (int i = 0; i < 10000; i++)
	{
		PGconn	   *conn = PQconnectdb("");	/* PG* from the environment */

		if (PQstatus(conn) != CONNECTION_OK)
		{
			snprintf(why, sizeof(why), "%s", PQerrorMessage(conn));
			why[strcspn(why, "\n")] = '\0';
			PQfinish(conn);
			break;
		}
		held++;					/* never closed: the point is to hold it */
	}
	snprintf(body, sizeof(body), "connhog holds %d connections; refused: %s\n", held, why);
	fputs(body, stdout);
	fflush(stdout);
	serve(lfd, body);
}

int
main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("misbehave: mode %s, deployment %s\n", mode, getenv("NX_DEPLOYMENT"));
	if (strcmp(mode, "exit") == 0)
		return 3;
	if (strcmp(mode, "nolisten") == 0)
	{
		for (;;)
			pause();
	}
	if (strcmp(mode, "chatty") == 0)
	{
		listen_on_port();
		chatty();
	}
	if (strcmp(mode, "connhog") == 0)
		connhog(listen_on_port());
	fprintf(stderr, "misbehave: unknown mode \"%s\"\n", mode);
	return 2;
}
