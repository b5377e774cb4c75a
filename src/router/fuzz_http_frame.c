/*
 * src/router/fuzz_http_frame.c
 *	  libFuzzer target for message framing (make fuzz-http-frame): a
 *	  stream of requests (or responses, chosen by the first byte) is cut
 *	  into messages the way conn.c does it: head parser, then the body
 *	  machine of the framing the head asks for, then the next head.
 *
 * The stream is walked twice: with all its bytes at once, and fed in
 * pieces whose sizes come from the second byte, as a slow peer would send
 * them.  Both walks must find the same message boundaries and end the same
 * way (need more, error, or close-delimited); the body machine must never
 * claim more bytes than it was fed.  Any mismatch is a trap.
 */
#include "http_frame.h"

#include <stdint.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) do { if (!(cond)) __builtin_trap(); } while (0)
#define MAX_MESSAGES 64

typedef struct Walk
{
	size_t		ends[MAX_MESSAGES];	/* offset just after each message */
	int			n;
	int			outcome;		/* 0 need more, 1 head error, 2 body error, 3 until close */
} Walk;

/*
 * walk cuts buf[0..size) into messages, seeing at most `step` new bytes at
 * a time (0: all at once).
 */
static void
walk(const char *buf, size_t size, bool response, size_t step, Walk *w)
{
	size_t		pos = 0;		/* start of the current message */
	size_t		avail = step ? 0 : size;	/* bytes "received" so far */

	memset(w, 0, sizeof(*w));
	while (w->n < MAX_MESSAGES)
	{
		HttpHead	h;
		HttpHeadResult hr = HTTP_HEAD_NEED_MORE;
		HttpBody	b;
		HttpBodyKind kind;
		uint64_t	len;
		size_t		p;

		if (response)
			HttpHeadInitResponse(&h, 0);
		else
			HttpHeadInit(&h, 0);
		for (;;)
		{
			if (avail > pos)
				hr = HttpHeadParse(&h, buf + pos, avail - pos);
			if (hr != HTTP_HEAD_NEED_MORE || avail == size)
				break;
			avail = avail + step > size ? size : avail + step;
		}
		if (hr == HTTP_HEAD_NEED_MORE)
			return;
		if (hr != HTTP_HEAD_COMPLETE)
		{
			w->outcome = 1;
			return;
		}
		REQUIRE(h.head_len <= avail - pos);
		REQUIRE(!(h.chunked && h.content_length >= 0));
		kind = response ? HttpResponseFraming(&h, false, &len) : HttpRequestFraming(&h, &len);
		REQUIRE(response || kind != HTTP_BODY_CLOSE);
		HttpBodyInit(&b, kind, len);
		p = pos + h.head_len;
		for (;;)
		{
			size_t		used = 0;
			HttpFrameResult r = HttpBodyFeed(&b, buf + p, avail - p, &used);

			REQUIRE(used <= avail - p);
			p += used;
			if (r == HTTP_FRAME_ERROR)
			{
				w->outcome = 2;
				return;
			}
			if (r == HTTP_FRAME_DONE)
				break;
			REQUIRE(p == avail);
			if (avail == size)
			{
				w->outcome = kind == HTTP_BODY_CLOSE ? 3 : 0;
				return;
			}
			avail = avail + step > size ? size : avail + step;
		}
		REQUIRE(b.done);
		w->ends[w->n++] = p;
		pos = p;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Walk		whole,
				parts;
	bool		response;
	size_t		step;
	const char *buf;

	if (size < 2)
		return 0;
	response = data[0] & 1;
	step = (data[1] % 32) + 1;
	buf = (const char *) data + 2;
	size -= 2;
	walk(buf, size, response, 0, &whole);
	walk(buf, size, response, step, &parts);
	REQUIRE(whole.n == parts.n);
	REQUIRE(memcmp(whole.ends, parts.ends, sizeof(size_t) * whole.n) == 0);
	REQUIRE(whole.outcome == parts.outcome);
	return 0;
}
