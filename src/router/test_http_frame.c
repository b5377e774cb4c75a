/*
 * src/router/test_http_frame.c
 *	  Unit test of body framing and of the framing fields of request and
 *	  response heads (make router-unit-test): each message is framed in one
 *	  call and again one byte at a time, which must agree.  Prints
 *	  "N passed, M failed" and exits non-zero on any failure.
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

/*
 * frame_message parses a head (request or response) and frames its body;
 * returns the head result, and in *used the bytes of the whole message
 * (head + body), or -1 when the body is malformed, -2 when incomplete.
 * The body is framed whole and byte by byte; a disagreement is a failure.
 */
static HttpHeadResult
frame_message(const char *in, size_t len, bool response, bool head_request, long *used)
{
	HttpHead	h;
	HttpHeadResult r;
	HttpFrame	whole,
				bytes;
	size_t		n1,
				n2 = 0,
				i;
	HttpBodyKind kind;

	if (response)
		HttpResponseHeadInit(&h, 0);
	else
		HttpHeadInit(&h, 0);
	r = HttpHeadParse(&h, in, len);
	*used = -3;
	if (r != HTTP_HEAD_COMPLETE)
		return r;
	kind = response ? HttpResponseBody(&h, head_request) : HttpRequestBody(&h);
	HttpFrameInit(&whole, kind, h.content_length);
	HttpFrameInit(&bytes, kind, h.content_length);
	n1 = HttpFrameConsume(&whole, in + h.head_len, len - h.head_len);
	for (i = h.head_len; i < len && bytes.state != FRAME_DONE && bytes.state != FRAME_ERROR; i++)
		n2 += HttpFrameConsume(&bytes, in + i, 1);
	if (n1 != n2 || whole.state != bytes.state)
	{
		printf("  whole and byte-by-byte differ (%zu/%d vs %zu/%d)\n", n1, whole.state, n2, bytes.state);
		*used = -4;
		return r;
	}
	if (whole.state == FRAME_ERROR)
		*used = -1;
	else if (whole.state != FRAME_DONE)
		*used = -2;
	else
		*used = (long) (h.head_len + n1);
	return r;
}

/* req expects a request: head result `want`, and (if complete) `used` bytes. */
static void
req(const char *name, const char *in, HttpHeadResult want, long want_used)
{
	long		used;
	HttpHeadResult r = frame_message(in, strlen(in), false, false, &used);

	if (r == want && (r != HTTP_HEAD_COMPLETE || used == want_used))
		passed++;
	else
	{
		failed++;
		printf("FAIL %s: got %d, used %ld\n", name, r, used);
	}
}

/* resp expects a response (to a HEAD request when head_request). */
static void
resp(const char *name, const char *in, bool head_request, HttpHeadResult want, long want_used)
{
	long		used;
	HttpHeadResult r = frame_message(in, strlen(in), true, head_request, &used);

	if (r == want && (r != HTTP_HEAD_COMPLETE || used == want_used))
		passed++;
	else
	{
		failed++;
		printf("FAIL %s: got %d, used %ld\n", name, r, used);
	}
}

#define LEN(s) ((long) strlen(s))

int
main(void)
{
	const HttpHeadResult C = HTTP_HEAD_COMPLETE,
				B = HTTP_HEAD_ERROR_400;
	const char *next = "GET /next HTTP/1.1\r\nHost: b\r\n\r\n";
	char		buf[1024];
	HttpHead	h;

	/* requests: bodies and where the next request starts */
	req("no body", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", C, LEN("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
	snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello%s", next);
	req("content-length, then a pipelined request", buf, C, (long) (strlen(buf) - strlen(next)));
	snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "5;ext=\"x y\";z\r\nhello\r\nA\r\n0123456789\r\n0\r\nTrailer-A: 1\r\nX: y\r\n\r\n%s", next);
	req("chunked with extensions and trailers", buf, C, (long) (strlen(buf) - strlen(next)));
	req("chunked, upper-case hex", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		"a\r\n0123456789\r\n0\r\n\r\n", C, LEN("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
												"a\r\n0123456789\r\n0\r\n\r\n"));
	req("gzip, chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", C,
		LEN("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"));
	req("content-length 0", "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\nX", C,
		LEN("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
	req("incomplete body", "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", C, -2);
	req("incomplete chunk", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", C, -2);

	/* smuggling: refused in the head */
	req("CL and TE", "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", B, 0);
	req("TE and CL", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", B, 0);
	req("two CL, differing", "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", B, 0);
	req("two CL, same", "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", B, 0);
	req("CL list", "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", B, 0);
	req("CL sign", "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", B, 0);
	req("CL hex", "POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n", B, 0);
	req("CL empty", "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", B, 0);
	req("CL huge", "POST / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n", B, 0);
	req("TE not chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", B, 0);
	req("TE chunked, gzip", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", B, 0);
	req("TE chunked twice", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", B, 0);
	req("TE chunked twice in two fields",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", B, 0);
	req("TE chunked then identity field",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n", B, 0);
	req("TE xchunked", "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", B, 0);
	req("TE chunked with space in name", "POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n", B, 0);
	req("TE empty element", "POST / HTTP/1.1\r\nTransfer-Encoding: ,chunked\r\n\r\n", B, 0);
	req("TE trailing comma", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked,\r\n\r\n", B, 0);
	req("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", B, 0);
	req("TE obs-fold", "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", B, 0);
	req("TE with vertical tab", "POST / HTTP/1.1\r\nTransfer-Encoding:\x0b" "chunked\r\n\r\n", B, 0);
	req("bare LF in the head", "POST / HTTP/1.1\nContent-Length: 5\r\n\r\n", B, 0);

	/* smuggling: refused in the body */
	req("chunk size not hex", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n", C, -1);
	req("chunk size with 0x", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", C, -1);
	req("chunk size signed", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n", C, -1);
	req("chunk size with space", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", C, -1);
	req("chunk size overflow", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", C, -1);
	req("chunk size empty", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", C, -1);
	req("chunk line bare LF", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", C, -1);
	req("chunk data too long", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n", C, -1);
	req("chunk data bare LF", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", C, -1);
	req("chunk ext with ctl", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x01\r\nhello\r\n0\r\n\r\n", C, -1);
	req("trailer obs-fold", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: b\r\n c\r\n\r\n", C, -1);
	req("trailer bare LF", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: b\n\r\n", C, -1);
	req("trailer no colon", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nAb\r\n\r\n", C, -1);
	req("end bare LF", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n", C, -1);

	/* responses */
	resp("200 with length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiXX", false, C,
		 LEN("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"));
	resp("200 to HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", true, C,
		 LEN("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"));
	resp("204", "HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\n", false, C,
		 LEN("HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\n"));
	resp("304", "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false, C,
		 LEN("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"));
	resp("100", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", false, C, LEN("HTTP/1.1 100 Continue\r\n\r\n"));
	resp("chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n", false, C,
		 LEN("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n"));
	resp("close-delimited", "HTTP/1.1 200 OK\r\n\r\nanything", false, C, -2);
	resp("gzip only: close-delimited", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nx", false, C, -2);
	resp("no reason phrase", "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", false, C,
		 LEN("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"));
	resp("no reason, no space", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, C,
		 LEN("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"));
	resp("CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", false, B, 0);
	resp("two CL", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", false, B, 0);
	resp("bad status", "HTTP/1.1 20 OK\r\n\r\n", false, B, 0);
	resp("not http", "SSH-2.0-OpenSSH\r\n\r\n", false, B, 0);
	resp("bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", false, B, 0);
	resp("bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, C, -1);

	/* connection fields */
	HttpHeadInit(&h, 0);
	{
		const char *s = "GET / HTTP/1.1\r\nConnection: Keep-Alive, Upgrade\r\nUpgrade: websocket\r\n"
			"Expect: 100-Continue\r\n\r\n";

		check("connection: complete", HttpHeadParse(&h, s, strlen(s)) == C);
		check("connection: options", h.conn_keep_alive && h.conn_upgrade && !h.conn_close);
		check("connection: upgrade", h.has_upgrade);
		check("expect: 100-continue", h.expect_continue);
	}
	check("hop-by-hop field", HttpIsConnectionField("Keep-Alive", 10) && !HttpIsConnectionField("Upgrade", 7));

	/* a frame's end does not depend on where the stream is cut */
	{
		HttpFrame	f;
		const char *body = "3\r\nabc\r\n0\r\n\r\nGET";

		HttpFrameInit(&f, HTTP_BODY_CHUNKED, 0);
		check("cut: first part", HttpFrameConsume(&f, body, 5) == 5);
		check("cut: rest", HttpFrameConsume(&f, body + 5, strlen(body) - 5) == strlen(body) - 8);
		check("cut: done", f.state == FRAME_DONE);
		HttpFrameInit(&f, HTTP_BODY_CLOSE, 0);
		check("close: all", HttpFrameConsume(&f, body, 4) == 4 && f.state == FRAME_CLOSE);
		HttpFrameEof(&f);
		check("close: eof ends it", f.state == FRAME_DONE);
		HttpFrameInit(&f, HTTP_BODY_LENGTH, 10);
		HttpFrameConsume(&f, body, 4);
		HttpFrameEof(&f);
		check("length: eof truncates", f.state == FRAME_ERROR);
	}

	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
