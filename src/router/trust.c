/*
 * src/router/trust.c
 *	  --trusted-proxies: the peers (CIDR blocks) whose X-Forwarded-For,
 *	  X-Forwarded-Proto, X-Forwarded-Host and Forwarded fields the router
 *	  keeps (appending the peer to X-Forwarded-For); from anyone else those
 *	  fields are replaced.  Set from nx.trusted_proxies by the supervisor.
 */
#include "router.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_TRUSTED 64

typedef struct Cidr
{
	int			family;
	unsigned char addr[16];
	int			bits;
} Cidr;

static Cidr trusted[MAX_TRUSTED];
static int	n_trusted;

/*
 * RouterSetTrustedProxies parses "CIDR[,CIDR]..." (an address alone means
 * one host; empty means none); returns false on a malformed list.
 */
bool
RouterSetTrustedProxies(const char *spec)
{
	char	   *copy = strdup(spec);
	char	   *save = NULL;
	char	   *tok;

	if (copy == NULL)
		return false;
	n_trusted = 0;
	for (tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
	{
		Cidr	   *c = &trusted[n_trusted];
		char	   *slash = strchr(tok, '/');
		int			max;

		if (n_trusted == MAX_TRUSTED)
			goto bad;
		if (slash)
			*slash = '\0';
		if (inet_pton(AF_INET, tok, c->addr) == 1)
			c->family = AF_INET, max = 32;
		else if (inet_pton(AF_INET6, tok, c->addr) == 1)
			c->family = AF_INET6, max = 128;
		else
			goto bad;
		c->bits = max;
		if (slash)
		{
			char	   *end;
			long		b = strtol(slash + 1, &end, 10);

			if (slash[1] == '\0' || *end != '\0' || b < 0 || b > max)
				goto bad;
			c->bits = (int) b;
		}
		n_trusted++;
	}
	free(copy);
	return true;
bad:
	free(copy);
	n_trusted = 0;
	return false;
}

/* prefix_match compares the first `bits` bits of a and b. */
static bool
prefix_match(const unsigned char *a, const unsigned char *b, int bits)
{
	int			full = bits / 8;
	int			rest = bits % 8;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ b[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* RouterPeerTrusted: is the client address one of the trusted proxies? */
bool
RouterPeerTrusted(const struct sockaddr_storage *ss)
{
	unsigned char v4[4];
	const unsigned char *v6 = NULL;
	int			i;

	if (n_trusted == 0)
		return false;
	if (ss->ss_family == AF_INET)
		memcpy(v4, &((const struct sockaddr_in *) ss)->sin_addr, 4);
	else if (ss->ss_family == AF_INET6)
	{
		v6 = ((const struct sockaddr_in6 *) ss)->sin6_addr.s6_addr;
		/* an IPv4-mapped address counts as the IPv4 one */
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *) v6))
		{
			memcpy(v4, v6 + 12, 4);
			v6 = NULL;
		}
	}
	else
		return false;
	for (i = 0; i < n_trusted; i++)
	{
		if (v6 == NULL && trusted[i].family == AF_INET &&
			prefix_match(v4, trusted[i].addr, trusted[i].bits))
			return true;
		if (v6 != NULL && trusted[i].family == AF_INET6 &&
			prefix_match(v6, trusted[i].addr, trusted[i].bits))
			return true;
	}
	return false;
}
