/*
 * src/router/test_http_frame.c
 *	  Unit test of message framing (make router-unit-test): the framing
 *	  fields of request and response heads (smuggling vectors refused) and
 *	  the body machine, each body fed whole and one byte at a time, which
 *	  must agree.  Prints "N passed, M failed", exits non-zero on failure.
 */
#include "http_frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int	passed,
			failed;

/* check records a boolean test. */
static void
check(const char *name, int ok)
{
	if (ok)
		passed++;
	else
	{
		failed++;
		printf("FAIL %s\n", name);
	}
}

/* head parses a whole request (or response) head. */
static HttpHeadResult
head(const char *in, bool response, HttpHead *h)
{
	if (response)
		HttpHeadInitResponse(h, 0);
	else
		HttpHeadInit(h, 0);
	return HttpHeadParse(h, in, strlen(in));
}

/*
 * body feeds `in` to a machine of `kind` whole and byte by byte; returns
 * the result (DONE, MORE or ERROR) and sets *used to the body's length when
 * DONE; a disagreement is a failure of its own.
 */
static HttpFrameResult
body(HttpBodyKind kind, uint64_t length, const char *in, size_t len, size_t *used)
{
	HttpBody	a,
				b;
	HttpFrameResult r1,
				r2 = HTTP_FRAME_MORE;
	size_t		u1,
				u2 = 0,
				i,
				u;

	HttpBodyInit(&a, kind, length);
	r1 = HttpBodyFeed(&a, in, len, &u1);
	HttpBodyInit(&b, kind, length);
	for (i = 0; i < len && r2 == HTTP_FRAME_MORE; i++)
	{
		r2 = HttpBodyFeed(&b, in + i, 1, &u);
		u2 += u;
	}
	if (len == 0)
		r2 = HttpBodyFeed(&b, in, 0, &u2);
	if (r1 != r2 || (r1 == HTTP_FRAME_DONE && u1 != u2))
	{
		printf("  whole and byte-by-byte differ (%d/%zu vs %d/%zu)\n", r1, u1, r2, u2);
		return (HttpFrameResult) -1;
	}
	*used = u1;
	return r1;
}

/* chunked checks one chunked body: result and, when DONE, the length. */
static void
chunked(const char *name, const char *in, HttpFrameResult want, size_t want_used)
{
	size_t		used = 0;
	HttpFrameResult r = body(HTTP_BODY_CHUNKED, 0, in, strlen(in), &used);

	check(name, r == want && (want != HTTP_FRAME_DONE || used == want_used));
}

int
main(void)
{
	const HttpHeadResult C = HTTP_HEAD_COMPLETE,
				B = HTTP_HEAD_ERROR_400;
	const HttpFrameResult D = HTTP_FRAME_DONE,
				M = HTTP_FRAME_MORE,
				E = HTTP_FRAME_ERROR;
	HttpHead	h;
	uint64_t	len;
	size_t		used;

	/* request framing */
	check("no body", head("GET / HTTP/1.1\r\nHost: a\r\n\r\n", false, &h) == C &&
		  HttpRequestFraming(&h, &len) == HTTP_BODY_NONE);
	check("content-length", head("POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n", false, &h) == C &&
		  HttpRequestFraming(&h, &len) == HTTP_BODY_LENGTH && len == 12);
	check("content-length 0", head("POST / HTTP/1.1\r\nContent-Length:0\r\n\r\n", false, &h) == C &&
		  HttpRequestFraming(&h, &len) == HTTP_BODY_NONE);
	check("chunked", head("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked \r\n\r\n", false, &h) == C &&
		  HttpRequestFraming(&h, &len) == HTTP_BODY_CHUNKED);
	check("cl and te", head("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", false, &h) == B);
	check("te and cl", head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", false, &h) == B);
	check("two cl equal", head("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", false, &h) == B);
	check("two cl differ", head("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", false, &h) == B);
	check("cl list", head("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n", false, &h) == B);
	check("cl sign", head("POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n", false, &h) == B);
	check("cl hex", head("POST / HTTP/1.1\r\nContent-Length: 0x3\r\n\r\n", false, &h) == B);
	check("cl empty", head("POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", false, &h) == B);
	check("cl huge", head("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", false, &h) == B);
	check("te gzip", head("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", false, &h) == B);
	check("te gzip, chunked", head("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, &h) == B);
	check("te chunked, chunked", head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", false, &h) == B);
	check("te twice", head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", false, &h) == B);
	check("te chunked;x", head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", false, &h) == B);
	check("te empty", head("POST / HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n", false, &h) == B);
	check("te xchunked", head("POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", false, &h) == B);
	check("te in 1.0", head("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", false, &h) == B);
	check("te with vtab", head("POST / HTTP/1.1\r\nTransfer-Encoding:\x0b" "chunked\r\n\r\n", false, &h) == B);
	check("te obs-fold", head("POST / HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", false, &h) == B);
	check("space before colon te", head("POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n", false, &h) == B);
	check("connection tokens", head("GET / HTTP/1.1\r\nConnection: Keep-Alive, Upgrade ,x\r\nUpgrade: websocket\r\n\r\n", false, &h) == C &&
		  h.conn_keep_alive && h.conn_upgrade && h.has_upgrade && !h.conn_close);
	check("connection close", head("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false, &h) == C && h.conn_close);
	check("expect", head("PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n", false, &h) == C &&
		  h.expect_continue);
	check("forwarded seen", head("GET / HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n", false, &h) == C && h.has_forwarded);

	/* responses */
	check("200 length", head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, &h) == C &&
		  h.status == 200 && HttpResponseFraming(&h, false, &len) == HTTP_BODY_LENGTH && len == 5);
	check("200 to HEAD", head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, &h) == C &&
		  HttpResponseFraming(&h, true, &len) == HTTP_BODY_NONE);
	check("204", head("HTTP/1.1 204 No Content\r\n\r\n", true, &h) == C &&
		  HttpResponseFraming(&h, false, &len) == HTTP_BODY_NONE);
	check("304 with length", head("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", true, &h) == C &&
		  HttpResponseFraming(&h, false, &len) == HTTP_BODY_NONE);
	check("100", head("HTTP/1.1 100 Continue\r\n\r\n", true, &h) == C && h.status == 100 &&
		  HttpResponseFraming(&h, false, &len) == HTTP_BODY_NONE);
	check("101", head("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", true, &h) == C &&
		  h.status == 101);
	check("close delimited", head("HTTP/1.0 200 OK\r\n\r\n", true, &h) == C &&
		  HttpResponseFraming(&h, false, &len) == HTTP_BODY_CLOSE);
	check("chunked response", head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, &h) == C &&
		  HttpResponseFraming(&h, false, &len) == HTTP_BODY_CHUNKED);
	check("empty reason", head("HTTP/1.1 200 \r\n\r\n", true, &h) == C);
	check("no reason space", head("HTTP/1.1 200\r\n\r\n", true, &h) == B);
	check("status 2 digits", head("HTTP/1.1 20 OK\r\n\r\n", true, &h) == B);
	check("status 600", head("HTTP/1.1 600 X\r\n\r\n", true, &h) == B);
	check("response cl and te", head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", true, &h) == B);
	check("response two cl", head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", true, &h) == B);
	check("response bare lf", head("HTTP/1.1 200 OK\nContent-Length: 1\n\n", true, &h) == B);
	check("request line as response", head("GET / HTTP/1.1\r\n\r\n", true, &h) == B);
	check("response with host: no host parsing", head("HTTP/1.1 200 OK\r\nHost: a/b\r\n\r\n", true, &h) == C);

	/* bodies */
	check("length", body(HTTP_BODY_LENGTH, 5, "helloGET", 8, &used) == D && used == 5);
	check("length short", body(HTTP_BODY_LENGTH, 5, "hel", 3, &used) == M);
	check("none", body(HTTP_BODY_NONE, 0, "GET", 3, &used) == D && used == 0);
	check("close", body(HTTP_BODY_CLOSE, 0, "abc", 3, &used) == M);
	chunked("one chunk", "5\r\nhello\r\n0\r\n\r\nGET", D, 15);
	chunked("two chunks", "1\r\na\r\n2\r\nbc\r\n0\r\n\r\n", D, 18);
	chunked("uppercase hex", "A\r\n0123456789\r\n0\r\n\r\n", D, 20);
	chunked("leading zeros", "0005\r\nhello\r\n000\r\n\r\n", D, 20);
	chunked("extensions", "5;a=b;c=\"d;e\"\r\nhello\r\n0;last\r\n\r\n", D, 32);
	chunked("bws before ext", "5 \t;a\r\nhello\r\n0\r\n\r\n", D, 19);
	chunked("trailers", "5\r\nhello\r\n0\r\nX-Sum: 1\r\nY:\r\n\r\n", D, 29);
	chunked("incomplete", "5\r\nhel", M, 0);
	chunked("incomplete trailer", "0\r\nX: 1\r\n", M, 0);
	chunked("empty size", "\r\nhello\r\n", E, 0);
	chunked("negative", "-5\r\nhello\r\n", E, 0);
	chunked("plus", "+5\r\nhello\r\n", E, 0);
	chunked("0x", "0x5\r\nhello\r\n", E, 0);
	chunked("space in size", "5 5\r\nhello\r\n", E, 0);
	chunked("ws without ext", "5 \r\nhello\r\n0\r\n\r\n", E, 0);
	chunked("17 digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", E, 0);
	chunked("16 f", "ffffffffffffffff\r\n", M, 0);
	chunked("bare lf after size", "5\nhello\r\n0\r\n\r\n", E, 0);
	chunked("bare cr after size", "5\rhello\r\n0\r\n\r\n", E, 0);
	chunked("data too long", "5\r\nhello!\r\n0\r\n\r\n", E, 0);
	chunked("bare lf after data", "5\r\nhello\n0\r\n\r\n", E, 0);
	chunked("bare lf at end", "0\r\n\n", E, 0);
	chunked("ctl in ext", "5;\x01\r\nhello\r\n0\r\n\r\n", E, 0);
	chunked("nul in ext", "5;a\0\r\n", M, 0);	/* strlen stops: see below */
	{
		static const char nul[] = "5;a\0b\r\nhello\r\n0\r\n\r\n";

		check("nul in ext", body(HTTP_BODY_CHUNKED, 0, nul, sizeof(nul) - 1, &used) == E);
	}
	chunked("trailer obs-fold", "0\r\nX: 1\r\n 2\r\n\r\n", E, 0);
	chunked("trailer no colon", "0\r\nX 1\r\n\r\n", E, 0);
	chunked("trailer ctl", "0\r\nX: \x01\r\n\r\n", E, 0);
	chunked("trailer bare lf", "0\r\nX: 1\n\r\n", E, 0);
	{
		char	   *big = malloc(HTTP_CHUNK_LINE_MAX + 16);

		memset(big, 'x', HTTP_CHUNK_LINE_MAX + 10);
		memcpy(big, "5;", 2);
		big[HTTP_CHUNK_LINE_MAX + 10] = '\0';
		chunked("extension too long", big, E, 0);
		free(big);
	}

	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
