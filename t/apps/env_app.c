/*
 * t/apps/env_app.c
 *	  A static HTTP server that answers every request with the value of the
 *	  environment variable GREETING and its deployment id: the tests that
 *	  need to see a sandbox's nx.env from outside (t/040_disaster_recovery.pl)
 *	  read it through the router.
 *
 * Build: gcc -O2 -static -o env_app t/apps/env_app.c
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* env_or returns the environment variable name, or fallback if unset. */
static const char *
env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);

	return v ? v : fallback;
}

int
main(void)
{
	struct sockaddr_in addr = {.sin_family = AF_INET,
	.sin_port = htons(atoi(env_or("PORT", "8000")))};
	int			one = 1;
	int			lfd = socket(AF_INET, SOCK_STREAM, 0);
	char		body[512];
	char		response[1024];
	int			body_len,
				response_len;

	signal(SIGPIPE, SIG_IGN);
	body_len = snprintf(body, sizeof(body), "GREETING=%s from deployment %s\n",
						env_or("GREETING", "(unset)"), env_or("NX_DEPLOYMENT", "(none)"));
	response_len = snprintf(response, sizeof(response),
							"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
							"Content-Length: %d\r\nConnection: close\r\n\r\n%s",
							body_len, body);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) < 0 || listen(lfd, 128) < 0)
	{
		perror("env_app: listen");
		return 1;
	}
	for (;;)
	{
		char		request[8192];
		int			cfd = accept(lfd, NULL, NULL);

		if (cfd < 0)
			continue;
		if (read(cfd, request, sizeof(request)) > 0 &&
			write(cfd, response, response_len) != response_len)
			perror("env_app: write");
		close(cfd);
	}
}
