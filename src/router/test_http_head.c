/*
 * src/router/test_http_head.c
 *	  Unit test of the HTTP head parser (make router-unit-test): each case
 *	  is parsed in one call and again one byte at a time, which must agree.
 *	  Prints "N passed, M failed" and exits non-zero on any failure.
 */
#include "http_head.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int	passed,
			failed;

/* parse_both parses `in` whole and byte by byte; returns the whole result. */
static HttpHeadResult
parse_both(const char *in, size_t len, size_t limit, HttpHead *out)
{
	HttpHead	h;
	HttpHeadResult r1,
				r2 = HTTP_HEAD_NEED_MORE;
	size_t		i;

	HttpHeadInit(out, limit);
	r1 = HttpHeadParse(out, in, len);
	HttpHeadInit(&h, limit);
	for (i = 1; i <= len && r2 == HTTP_HEAD_NEED_MORE; i++)
		r2 = HttpHeadParse(&h, in, i);
	if (r1 != r2 || (r1 == HTTP_HEAD_COMPLETE &&
					 (h.head_len != out->head_len || strcmp(h.host, out->host) != 0)))
	{
		printf("  whole and byte-by-byte differ (%d vs %d)\n", r1, r2);
		return (HttpHeadResult) -1;
	}
	return r1;
}

/* expect checks one case: the result and, if given, the normalised host. */
static void
expect(const char *name, const char *in, HttpHeadResult want, const char *host)
{
	HttpHead	h;
	HttpHeadResult r = parse_both(in, strlen(in), 0, &h);
	int			ok = (r == want);

	if (ok && want == HTTP_HEAD_COMPLETE && host != NULL)
		ok = h.has_host && strcmp(h.host, host) == 0;
	if (ok && want == HTTP_HEAD_COMPLETE && host == NULL)
		ok = !h.has_host;
	if (ok)
		passed++;
	else
	{
		failed++;
		printf("FAIL %s: got %d, host \"%s\"\n", name, r, h.has_host ? h.host : "(none)");
	}
}

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

int
main(void)
{
	const HttpHeadResult C = HTTP_HEAD_COMPLETE,
				M = HTTP_HEAD_NEED_MORE,
				B = HTTP_HEAD_ERROR_400,
				L = HTTP_HEAD_ERROR_431;
	HttpHead	h;
	char	   *big;
	const char *get = "GET /a?b=c HTTP/1.1\r\nHost: App.LocalHost.:8080\r\nAccept: */*\r\n\r\nBODY";

	/* well-formed */
	expect("simple", "GET / HTTP/1.1\r\nHost: app.localhost\r\n\r\n", C, "app.localhost");
	expect("normalised", get, C, "app.localhost");
	expect("ows", "GET / HTTP/1.1\r\nhost:\t x.preview.localhost \t\r\n\r\n", C, "x.preview.localhost");
	expect("http/1.0 without host", "GET / HTTP/1.0\r\n\r\n", C, NULL);
	expect("empty host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", C, NULL);
	expect("ipv6 host", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", C, "[::1]");
	expect("ipv4 host", "GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n", C, "127.0.0.1");
	expect("empty port", "GET / HTTP/1.1\r\nHost: a.b:\r\n\r\n", C, "a.b");
	expect("leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", C, "a");
	expect("obs-text value", "GET / HTTP/1.1\r\nX: \xc3\xa9\r\nHost: a\r\n\r\n", C, "a");

	/* incomplete */
	expect("partial line", "GET / HTTP/1.1\r\nHost: a", M, NULL);
	expect("partial end", "GET / HTTP/1.1\r\nHost: a\r\n\r", M, NULL);
	expect("nothing", "", M, NULL);
	expect("lone cr", "\r", M, NULL);

	/* malformed */
	expect("garbage", "\x16\x03\x01\x02\x00", B, NULL);
	expect("nul", "GET /\0 HTTP/1.1\r\n\r\n", M, NULL);	/* strlen stops at NUL */
	{
		static const char nul[] = "GET /\0 HTTP/1.1\r\n\r\n";

		check("nul byte", parse_both(nul, sizeof(nul) - 1, 0, &h) == B);
	}
	expect("bare lf", "GET / HTTP/1.1\nHost: a\n\n", B, NULL);
	expect("bare cr", "GET / HTTP/1.1\rHost: a\r\n\r\n", B, NULL);
	expect("http/2", "GET / HTTP/2.0\r\n\r\n", B, NULL);
	expect("http/1.2", "GET / HTTP/1.2\r\n\r\n", B, NULL);
	expect("no target", "GET  HTTP/1.1\r\n\r\n", B, NULL);
	expect("no version", "GET /\r\n\r\n", B, NULL);
	expect("lowercase version", "GET / http/1.1\r\n\r\n", B, NULL);
	expect("space in method", "G T / HTTP/1.1\r\n\r\n", B, NULL);
	expect("two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHOST: a\r\n\r\n", B, NULL);
	expect("obs-fold", "GET / HTTP/1.1\r\nX: a\r\n b\r\nHost: a\r\n\r\n", B, NULL);
	expect("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", B, NULL);
	expect("no colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", B, NULL);
	expect("host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", B, NULL);
	expect("host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", B, NULL);
	expect("host port letters", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", B, NULL);
	expect("host two dots", "GET / HTTP/1.1\r\nHost: a..b\r\n\r\n", B, NULL);
	expect("host only dot", "GET / HTTP/1.1\r\nHost: .\r\n\r\n", B, NULL);
	expect("host only port", "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", B, NULL);
	expect("host unclosed v6", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", B, NULL);
	expect("ctl in value", "GET / HTTP/1.1\r\nX: a\x01\r\nHost: a\r\n\r\n", B, NULL);

	/* the fields of a complete head */
	HttpHeadInit(&h, 0);
	check("fields: complete", HttpHeadParse(&h, get, strlen(get)) == C);
	check("fields: method", h.method.off == 0 && h.method.len == 3);
	check("fields: target", h.target.len == 6 && memcmp(get + h.target.off, "/a?b=c", 6) == 0);
	check("fields: version", h.version_minor == 1);
	check("fields: head_len", h.head_len == strlen(get) - 4);
	check("fields: line_end", memcmp(get + h.line_end, "Host:", 5) == 0);
	check("fields: host_raw", h.host_raw.len == strlen("App.LocalHost.:8080") &&
		  memcmp(get + h.host_raw.off, "App.LocalHost.:8080", h.host_raw.len) == 0);

	/* the limit */
	big = malloc(70 * 1024 + 100);
	strcpy(big, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
	memset(big + strlen(big), 'x', 70 * 1024);
	strcpy(big + strlen("GET / HTTP/1.1\r\nHost: a\r\nX: ") + 70 * 1024, "\r\n\r\n");
	check("70 KiB head: 431", parse_both(big, strlen(big), 0, &h) == L);
	check("70 KiB head with limit 80 KiB: complete", parse_both(big, strlen(big), 80 * 1024, &h) == C);
	HttpHeadInit(&h, 0);
	check("64 KiB without end: 431", HttpHeadParse(&h, big, 64 * 1024) == L);
	HttpHeadInit(&h, 0);
	check("64 KiB - 1 without end: need more", HttpHeadParse(&h, big, 64 * 1024 - 1) == M);
	{
		const char *s = "GET / HTTP/1.1\r\n\r\n";

		check("head of exactly the limit", parse_both(s, strlen(s), strlen(s), &h) == C);
		check("head one byte over the limit", parse_both(s, strlen(s), strlen(s) - 1, &h) == L);
	}
	free(big);

	/* forwarded fields */
	check("x-forwarded-for", HttpIsForwardedField("X-Forwarded-For", 15));
	check("forwarded", HttpIsForwardedField("FORWARDED", 9));
	check("x-forwarded", !HttpIsForwardedField("X-Forwarded", 11));

	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
