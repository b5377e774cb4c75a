/*
 * examples/hello/hello.c
 *	  The smallest useful nx_sandbox app: a static HTTP server that answers
 *	  every request with a line naming its sandbox and deployment.
 *
 * Build:  gcc -O2 -static -o hello examples/hello/hello.c
 * Run:    PORT=8000 ./hello      (nx_sandbox sets PORT, NX_SANDBOX, ...)
 *
 * One request per connection (Connection: close), one connection at a time:
 * enough for a demo, not a template for a real server.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* env_or returns the environment variable name, or fallback if unset. */
static const char *
env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);

	return v && *v ? v : fallback;
}

int
main(void)
{
	int			port = atoi(env_or("PORT", "8000"));
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
	int			one = 1;
	int			lfd = socket(AF_INET, SOCK_STREAM, 0);
	char		body[512];
	char		response[1024];
	int			body_len,
				response_len;

	signal(SIGPIPE, SIG_IGN);
	body_len = snprintf(body, sizeof(body), "hello from sandbox %s, deployment %s\n",
						env_or("NX_SANDBOX", "(none)"), env_or("NX_DEPLOYMENT", "(none)"));
	response_len = snprintf(response, sizeof(response),
							"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
							"Content-Length: %d\r\nConnection: close\r\n\r\n%s",
							body_len, body);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) < 0 || listen(lfd, 128) < 0)
	{
		perror("hello: listen");
		return 1;
	}
	fprintf(stderr, "hello: listening on port %d\n", port);
	for (;;)
	{
		char		request[8192];
		int			cfd = accept(lfd, NULL, NULL);

		if (cfd < 0)
			continue;
		/* read (part of) the request head; its content does not matter */
		if (read(cfd, request, sizeof(request)) > 0 &&
			write(cfd, response, response_len) != response_len)
			perror("hello: write");
		close(cfd);
	}
}
