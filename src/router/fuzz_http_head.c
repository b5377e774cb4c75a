/*
 * src/router/fuzz_http_head.c
 *	  libFuzzer target for the HTTP head parser (make fuzz-http-head).
 *
 * Each input is parsed twice: in one call with all its bytes, and
 * incrementally, cut into pieces whose sizes come from the input's first
 * byte, as a slow client would send it.  Both must give the same answer
 * and, when complete, the same fields; every span must lie inside the
 * input, the normalised host must be lowercase without port or trailing
 * dot.  A small limit (from the second byte) exercises the 431 path.
 * Any mismatch is a trap, so a wrong answer is a crash like a bad read.
 */
#include "http_head.h"

#include <stdint.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) do { if (!(cond)) __builtin_trap(); } while (0)

/* check_span traps unless the span lies inside the input. */
static void
check_span(HttpSpan s, size_t size)
{
	REQUIRE(s.off <= size && s.len <= size - s.off);
}

/* check_result traps unless a COMPLETE result is consistent with the input. */
static void
check_result(const HttpHead *h, const char *buf, size_t size)
{
	size_t		i;

	REQUIRE(h->head_len >= 4 && h->head_len <= size && h->head_len <= h->limit);
	REQUIRE(memcmp(buf + h->head_len - 4, "\r\n\r\n", 4) == 0);
	REQUIRE(h->line_end > 0 && h->line_end <= h->head_len);
	check_span(h->method, size);
	check_span(h->target, size);
	check_span(h->host_raw, size);
	REQUIRE(h->method.len > 0 && h->target.len > 0);
	REQUIRE(h->version_minor == 0 || h->version_minor == 1);
	if (h->has_host)
	{
		REQUIRE(h->host_len > 0 && h->host_len <= HTTP_HOST_MAX);
		REQUIRE(strlen(h->host) == h->host_len);
		REQUIRE(h->host[h->host_len - 1] != '.');
		for (i = 0; i < h->host_len; i++)
			REQUIRE(!(h->host[i] >= 'A' && h->host[i] <= 'Z'));
		if (h->host[0] != '[')
			REQUIRE(strchr(h->host, ':') == NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	HttpHead	whole,
				parts;
	HttpHeadResult r1,
				r2 = HTTP_HEAD_NEED_MORE;
	const char *buf;
	size_t		step,
				limit,
				len = 0;

	if (size < 2)
		return 0;
	step = (data[0] % 16) + 1;
	limit = (data[1] & 1) ? 0 : (size_t) (data[1] * 4 + 16);
	buf = (const char *) data + 2;
	size -= 2;

	HttpHeadInit(&whole, limit);
	r1 = HttpHeadParse(&whole, buf, size);
	if (r1 == HTTP_HEAD_COMPLETE)
		check_result(&whole, buf, size);

	HttpHeadInit(&parts, limit);
	while (len < size)
	{
		len = len + step > size ? size : len + step;
		r2 = HttpHeadParse(&parts, buf, len);
		if (r2 != HTTP_HEAD_NEED_MORE)
			break;
	}
	if (size == 0)
		r2 = HttpHeadParse(&parts, buf, 0);
	REQUIRE(r1 == r2);
	if (r1 == HTTP_HEAD_COMPLETE)
	{
		check_result(&parts, buf, size);
		REQUIRE(whole.head_len == parts.head_len);
		REQUIRE(whole.has_host == parts.has_host);
		REQUIRE(strcmp(whole.host, parts.host) == 0);
		REQUIRE(memcmp(&whole.target, &parts.target, sizeof(HttpSpan)) == 0);
	}
	return 0;
}
