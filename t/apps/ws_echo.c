/*
 * t/apps/ws_echo.c
 *	  The router traffic test's websocket app (RFC 6455): answers the
 *	  opening handshake (Sec-WebSocket-Accept = base64(SHA-1(key + GUID)),
 *	  both done here, no library), then echoes every data frame back with
 *	  the same opcode and payload, answers ping with pong and close with
 *	  close.  A plain GET without Upgrade gets a one-line page naming the
 *	  deployment.
 *
 * One process per connection (fork).  Only what the test needs: client
 * frames must be masked (as the RFC requires), payloads up to 16 MiB.
 */
#include "http_app.h"
#include "sha1.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define MAX_PAYLOAD (16 * 1024 * 1024)

/* read_full reads exactly n bytes; false on end of stream or error. */
static int
read_full(int fd, void *buf, size_t n)
{
	char	   *p = buf;

	while (n > 0)
	{
		ssize_t		r = read(fd, p, n);

		if (r <= 0)
			return 0;
		p += r;
		n -= r;
	}
	return 1;
}

/* base64 encodes n bytes of in into out (NUL-terminated). */
static void
base64(const uint8_t *in, size_t n, char *out)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t		i;

	for (i = 0; i + 2 < n; i += 3)
	{
		uint32_t	v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];

		*out++ = alphabet[v >> 18];
		*out++ = alphabet[(v >> 12) & 63];
		*out++ = alphabet[(v >> 6) & 63];
		*out++ = alphabet[v & 63];
	}
	if (i < n)
	{
		uint32_t	v = (uint32_t) in[i] << 16 | (i + 1 < n ? (uint32_t) in[i + 1] << 8 : 0);

		*out++ = alphabet[v >> 18];
		*out++ = alphabet[(v >> 12) & 63];
		*out++ = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
		*out++ = '=';
	}
	*out = '\0';
}

/* send_frame writes one unmasked, unfragmented frame. */
static int
send_frame(int fd, int opcode, const uint8_t *payload, uint64_t n)
{
	uint8_t		h[10];
	size_t		hl = 2;

	h[0] = 0x80 | opcode;
	if (n < 126)
		h[1] = n;
	else if (n < 65536)
	{
		h[1] = 126;
		h[2] = n >> 8;
		h[3] = n;
		hl = 4;
	}
	else
	{
		int			i;

		h[1] = 127;
		for (i = 0; i < 8; i++)
			h[2 + i] = n >> (56 - 8 * i);
		hl = 10;
	}
	return write_full(fd, h, hl) && write_full(fd, payload, n);
}

/* echo_frames echoes frames until the client closes or breaks the rules. */
static void
echo_frames(int fd)
{
	uint8_t    *payload = malloc(MAX_PAYLOAD);

	if (payload == NULL)
		return;
	for (;;)
	{
		uint8_t		h[2],
					ext[8],
					mask[4];
		uint64_t	n;
		int			opcode,
					i;

		if (!read_full(fd, h, 2))
			return;
		opcode = h[0] & 0x0f;
		if (!(h[1] & 0x80))
			return;				/* client frames must be masked */
		n = h[1] & 0x7f;
		if (n == 126)
		{
			if (!read_full(fd, ext, 2))
				return;
			n = (uint64_t) ext[0] << 8 | ext[1];
		}
		else if (n == 127)
		{
			if (!read_full(fd, ext, 8))
				return;
			for (n = 0, i = 0; i < 8; i++)
				n = n << 8 | ext[i];
		}
		if (n > MAX_PAYLOAD || !read_full(fd, mask, 4) || !read_full(fd, payload, n))
			return;
		for (i = 0; (uint64_t) i < n; i++)
			payload[i] ^= mask[i % 4];
		if (opcode == 0x8)		/* close: answer with the same status */
		{
			send_frame(fd, 0x8, payload, n < 2 ? n : 2);
			return;
		}
		if (!send_frame(fd, opcode == 0x9 ? 0xA : opcode, payload, n))
			return;
	}
}

/* serve handles one connection: handshake, then echo. */
static void
serve(int fd)
{
	char		head[16384];
	size_t		have = 0;
	char		key[128],
				upgrade[64],
				accept_key[64],
				response[512];
	uint8_t		digest[20];
	Sha1		sha;
	int			n;

	while (have < 4 || memcmp(head + have - 4, "\r\n\r\n", 4) != 0)
	{
		/* byte by byte: nothing after the head may be swallowed */
		if (have >= sizeof(head) - 1 || read(fd, head + have, 1) != 1)
			return;
		have++;
	}
	head[have] = '\0';
	if (!header_value(head, "Upgrade", upgrade, sizeof(upgrade)) ||
		strcasecmp(upgrade, "websocket") != 0 ||
		!header_value(head, "Sec-WebSocket-Key", key, sizeof(key)))
	{
		char		body[128];
		int			bl = snprintf(body, sizeof(body), "ws_echo of deployment %s: no upgrade asked\n",
								  getenv("NX_DEPLOYMENT") ? getenv("NX_DEPLOYMENT") : "?");

		n = snprintf(response, sizeof(response),
					 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
					 "Connection: close\r\n\r\n%s", bl, body);
		write_full(fd, response, n);
		return;
	}
	sha1_init(&sha);
	sha1_update(&sha, key, strlen(key));
	sha1_update(&sha, WS_GUID, strlen(WS_GUID));
	sha1_final(&sha, digest);
	base64(digest, sizeof(digest), accept_key);
	n = snprintf(response, sizeof(response),
				 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
				 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept_key);
	if (write_full(fd, response, n))
		echo_frames(fd);
}

int
main(void)
{
	return serve_forever("ws_echo", 128, serve);
}
