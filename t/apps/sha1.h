/*
 * t/apps/sha1.h
 *	  SHA-1 (FIPS 180-4) for the test apps: the websocket handshake of
 *	  ws_echo.c and the upload digest of stream_app.c.  Included by one .c
 *	  file each (everything is static), so no library is needed inside the
 *	  sandbox.  Not for anything where SHA-1's weakness would matter.
 */
#ifndef NX_TEST_SHA1_H
#define NX_TEST_SHA1_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct Sha1
{
	uint32_t	h[5];
	uint64_t	length;			/* bytes hashed so far */
	uint8_t		block[64];
	size_t		used;			/* bytes in block */
} Sha1;

/* sha1_rol rotates x left by n bits. */
static inline uint32_t
sha1_rol(uint32_t x, int n)
{
	return (x << n) | (x >> (32 - n));
}

/* sha1_block mixes one 64-byte block into the state. */
static void
sha1_block(Sha1 *s, const uint8_t *p)
{
	uint32_t	w[80],
				a = s->h[0],
				b = s->h[1],
				c = s->h[2],
				d = s->h[3],
				e = s->h[4];
	int			i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t) p[4 * i] << 24 | (uint32_t) p[4 * i + 1] << 16 |
			(uint32_t) p[4 * i + 2] << 8 | p[4 * i + 3];
	for (i = 16; i < 80; i++)
		w[i] = sha1_rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	for (i = 0; i < 80; i++)
	{
		uint32_t	f,
					k,
					t;

		if (i < 20)
			f = (b & c) | (~b & d), k = 0x5a827999;
		else if (i < 40)
			f = b ^ c ^ d, k = 0x6ed9eba1;
		else if (i < 60)
			f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
		else
			f = b ^ c ^ d, k = 0xca62c1d6;
		t = sha1_rol(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = sha1_rol(b, 30);
		b = a;
		a = t;
	}
	s->h[0] += a;
	s->h[1] += b;
	s->h[2] += c;
	s->h[3] += d;
	s->h[4] += e;
}

/* sha1_init starts a new digest. */
static void
sha1_init(Sha1 *s)
{
	static const uint32_t h0[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};

	memcpy(s->h, h0, sizeof(h0));
	s->length = 0;
	s->used = 0;
}

/* sha1_update hashes n more bytes. */
static void
sha1_update(Sha1 *s, const void *data, size_t n)
{
	const uint8_t *p = data;

	s->length += n;
	if (s->used > 0)
	{
		size_t		take = 64 - s->used < n ? 64 - s->used : n;

		memcpy(s->block + s->used, p, take);
		s->used += take;
		p += take;
		n -= take;
		if (s->used < 64)
			return;
		sha1_block(s, s->block);
		s->used = 0;
	}
	for (; n >= 64; p += 64, n -= 64)
		sha1_block(s, p);
	memcpy(s->block, p, n);
	s->used = n;
}

/* sha1_final pads, and writes the 20-byte digest to out. */
static void
sha1_final(Sha1 *s, uint8_t out[20])
{
	uint64_t	bits = s->length * 8;
	int			i;

	s->block[s->used++] = 0x80;
	if (s->used > 56)
	{
		memset(s->block + s->used, 0, 64 - s->used);
		sha1_block(s, s->block);
		s->used = 0;
	}
	memset(s->block + s->used, 0, 56 - s->used);
	for (i = 0; i < 8; i++)
		s->block[56 + i] = (uint8_t) (bits >> (56 - 8 * i));
	sha1_block(s, s->block);
	for (i = 0; i < 20; i++)
		out[i] = (uint8_t) (s->h[i / 4] >> (24 - 8 * (i % 4)));
}

#endif							/* NX_TEST_SHA1_H */
