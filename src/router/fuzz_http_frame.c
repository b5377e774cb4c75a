/*
 * src/router/fuzz_http_frame.c
 *	  libFuzzer target for message framing (make fuzz-http-frame): a stream
 *	  of requests (or responses) is cut into messages the way the router
 *	  does it, head (http_head.c) then body (http_frame.c), message after
 *	  message.
 *
 * The first input byte gives the piece size for the incremental run, the
 * second the mode (requests or responses; responses to HEAD).  The stream
 * is framed twice, whole and in pieces, and both must find the same
 * message boundaries and the same end state.  Also checked: a body never
 * runs past the input, a Content-Length body is exactly that long, a
 * complete chunked body ends in CRLF CRLF, a refused body stops before the
 * end of the input it was given.  Any mismatch is a trap.
 */
#include "http_frame.h"

#include <stdint.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) do { if (!(cond)) __builtin_trap(); } while (0)
#define MAX_MESSAGES 16

typedef struct Cut
{
	size_t		ends[MAX_MESSAGES];	/* offset after each complete message */
	int			n;
	int			last;			/* how it stopped: 0 need more, 1 head error, 2 body error */
} Cut;

/*
 * frame_stream frames buf[0..size) message by message, feeding at most
 * `step` bytes at a time (step 0: all at once).
 */
static void
frame_stream(const char *buf, size_t size, size_t step, bool response, bool head_request, Cut *cut)
{
	size_t		pos = 0;		/* start of the current message */
	size_t		avail;			/* bytes "received" so far */

	memset(cut, 0, sizeof(*cut));
	avail = step ? (step < size ? step : size) : size;
	while (cut->n < MAX_MESSAGES)
	{
		HttpHead	h;
		HttpHeadResult r = HTTP_HEAD_NEED_MORE;
		HttpFrame	f;
		HttpBodyKind kind;
		size_t		body;

		if (response)
			HttpResponseHeadInit(&h, 4096);
		else
			HttpHeadInit(&h, 4096);
		for (;;)
		{
			r = HttpHeadParse(&h, buf + pos, avail - pos);
			if (r != HTTP_HEAD_NEED_MORE || avail == size)
				break;
			avail = step && avail + step < size ? avail + step : size;
		}
		if (r != HTTP_HEAD_COMPLETE)
		{
			cut->last = r == HTTP_HEAD_NEED_MORE ? 0 : 1;
			return;
		}
		kind = response ? HttpResponseBody(&h, head_request) : HttpRequestBody(&h);
		REQUIRE(response || kind != HTTP_BODY_CLOSE);
		HttpFrameInit(&f, kind, h.content_length);
		body = pos + h.head_len;
		for (;;)
		{
			size_t		n = HttpFrameConsume(&f, buf + body, avail - body);

			REQUIRE(n <= avail - body);
			body += n;
			if (f.state == FRAME_ERROR)
			{
				REQUIRE(body < avail);	/* stopped at a byte it was given */
				cut->last = 2;
				return;
			}
			if (f.state == FRAME_DONE)
				break;
			REQUIRE(body == avail);		/* not done: took everything */
			if (avail == size)
			{
				cut->last = 0;
				return;
			}
			avail = step && avail + step < size ? avail + step : size;
		}
		if (kind == HTTP_BODY_LENGTH)
			REQUIRE(body - (pos + h.head_len) == h.content_length);
		if (kind == HTTP_BODY_CHUNKED)
			REQUIRE(body - (pos + h.head_len) >= 5 && memcmp(buf + body - 4, "\r\n\r\n", 4) == 0);
		REQUIRE(f.total == body - (pos + h.head_len));
		cut->ends[cut->n++] = body;
		pos = body;
		if (pos == size)
			return;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Cut			whole,
				parts;
	size_t		step;
	bool		response,
				head_request;
	int			i;

	if (size < 2)
		return 0;
	step = (data[0] % 32) + 1;
	response = (data[1] & 1) != 0;
	head_request = (data[1] & 2) != 0;
	frame_stream((const char *) data + 2, size - 2, 0, response, head_request, &whole);
	frame_stream((const char *) data + 2, size - 2, step, response, head_request, &parts);
	REQUIRE(whole.n == parts.n && whole.last == parts.last);
	for (i = 0; i < whole.n; i++)
		REQUIRE(whole.ends[i] == parts.ends[i]);
	return 0;
}
