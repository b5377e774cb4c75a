/*
 * src/router/clients.c
 *	  Who the router's clients are: which peers are trusted proxies
 *	  (--trusted-proxies, a CIDR list; their X-Forwarded-* fields are kept),
 *	  and how many connections each client address holds
 *	  (--max-client-connections, so that one address cannot take every
 *	  slot of --max-connections).
 *
 * A trusted proxy's connections carry many clients, so they are not
 * counted against the per-address cap (the proxy has its own limits).
 */
#include "router.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROXIES 64
#define BUCKETS 4096

typedef struct Cidr
{
	int			family;
	unsigned char addr[16];
	int			bits;
} Cidr;

struct ClientCount
{
	char		peer[64];
	int			count;
	ClientCount *next;
};

static Cidr proxies[MAX_PROXIES];
static int	n_proxies;
static ClientCount *buckets[BUCKETS];

/*
 * ClientsInit parses the trusted proxies ("10.0.0.0/8, ::1, 127.0.0.1/32";
 * an address without /bits is one host).  Returns false, with a message on
 * stderr, when the list is malformed.
 */
bool
ClientsInit(const char *trusted)
{
	char	   *copy,
			   *item,
			   *save = NULL;

	if (trusted == NULL || *trusted == '\0')
		return true;
	copy = strdup(trusted);
	if (copy == NULL)
		return false;
	for (item = strtok_r(copy, ", ", &save); item; item = strtok_r(NULL, ", ", &save))
	{
		Cidr	   *c = &proxies[n_proxies];
		char	   *slash = strchr(item, '/');
		int			max;

		if (n_proxies == MAX_PROXIES)
		{
			fprintf(stderr, "nx-router: error: at most %d trusted proxies\n", MAX_PROXIES);
			free(copy);
			return false;
		}
		if (slash)
			*slash = '\0';
		if (inet_pton(AF_INET, item, c->addr) == 1)
			c->family = AF_INET, max = 32;
		else if (inet_pton(AF_INET6, item, c->addr) == 1)
			c->family = AF_INET6, max = 128;
		else
			goto bad;
		c->bits = max;
		if (slash)
		{
			char	   *end;
			long		bits = strtol(slash + 1, &end, 10);

			if (slash[1] == '\0' || *end != '\0' || bits < 0 || bits > max)
				goto bad;
			c->bits = (int) bits;
		}
		n_proxies++;
	}
	free(copy);
	return true;
bad:
	fprintf(stderr, "nx-router: error: bad address in --trusted-proxies: \"%s\"\n", item);
	free(copy);
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
	return rest == 0 || ((a[full] ^ b[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* ClientTrusted says whether a peer address is one of the trusted proxies. */
bool
ClientTrusted(const struct sockaddr_storage *ss)
{
	unsigned char addr[16];
	int			family = ss->ss_family;
	int			i;

	if (family == AF_INET)
		memcpy(addr, &((const struct sockaddr_in *) ss)->sin_addr, 4);
	else if (family == AF_INET6)
	{
		const unsigned char *a6 = (const unsigned char *) &((const struct sockaddr_in6 *) ss)->sin6_addr;
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

		memcpy(addr, a6, 16);
		if (memcmp(a6, mapped, 12) == 0)
		{
			/* ::ffff:a.b.c.d is an IPv4 client */
			family = AF_INET;
			memcpy(addr, a6 + 12, 4);
		}
	}
	else
		return false;
	for (i = 0; i < n_proxies; i++)
		if (proxies[i].family == family && prefix_match(addr, proxies[i].addr, proxies[i].bits))
			return true;
	return false;
}

/* hash_peer is FNV-1a over the address text. */
static size_t
hash_peer(const char *peer)
{
	uint64_t	h = 1469598103934665603ULL;

	for (; *peer; peer++)
		h = (h ^ (unsigned char) *peer) * 1099511628211ULL;
	return (size_t) (h % BUCKETS);
}

/*
 * ClientAdd counts one more connection of `peer`; returns its entry, or
 * NULL when the address is at --max-client-connections (or out of memory).
 */
ClientCount *
ClientAdd(const char *peer)
{
	ClientCount **b = &buckets[hash_peer(peer)];
	ClientCount *c;

	for (c = *b; c; c = c->next)
		if (strcmp(c->peer, peer) == 0)
			break;
	if (c == NULL)
	{
		if ((c = calloc(1, sizeof(ClientCount))) == NULL)
			return NULL;
		snprintf(c->peer, sizeof(c->peer), "%s", peer);
		c->next = *b;
		*b = c;
	}
	if (c->count >= router_settings.max_client_connections)
		return NULL;
	c->count++;
	return c;
}

/* ClientRemove counts a connection of that address closing. */
void
ClientRemove(ClientCount *c)
{
	ClientCount **link;

	if (c == NULL || --c->count > 0)
		return;
	for (link = &buckets[hash_peer(c->peer)]; *link; link = &(*link)->next)
		if (*link == c)
		{
			*link = c->next;
			free(c);
			return;
		}
}
