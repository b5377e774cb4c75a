/*
 * src/router/http_head.h
 *	  Incremental parser of the head of one HTTP/1.x request (request line
 *	  and header fields, up to and including the empty line), from bytes a
 *	  stranger sent.  It is the only code of the router that interprets the
 *	  client's bytes; everything after the head is relayed untouched.
 *
 * Glossary:
 *	  head		the request line, the header lines and the empty line that
 *				ends them ("...\r\n\r\n")
 *	  span		an offset and a length into the caller's buffer (the parser
 *				keeps no pointers, so the caller may move or grow its buffer
 *				between calls)
 *	  host		the Host field's value, normalised for routing: lowercase,
 *				no ":port", no trailing dot
 *
 * The caller keeps every byte read so far in one buffer and calls
 * HttpHeadParse after each read with the whole buffer.  Bytes already
 * scanned are not scanned again while looking for the end of the head, so
 * a client sending one byte at a time costs O(n), not O(n^2).  The parser
 * never allocates and never reads outside [buf, buf + len).
 */
#ifndef NX_HTTP_HEAD_H
#define NX_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_HEAD_DEFAULT_LIMIT (64 * 1024)
#define HTTP_HOST_MAX 255		/* longest DNS name, without the port */

typedef enum HttpHeadResult
{
	HTTP_HEAD_NEED_MORE,		/* no end of head yet, within the limit */
	HTTP_HEAD_COMPLETE,			/* the fields below are set */
	HTTP_HEAD_ERROR_400,		/* malformed: answer 400 Bad Request */
	HTTP_HEAD_ERROR_431			/* head longer than the limit: answer 431 */
} HttpHeadResult;

/* what the head says about the body that follows (requests and responses) */
typedef enum HttpBodyKind
{
	HTTP_BODY_NONE,				/* no body (no Content-Length, no Transfer-Encoding) */
	HTTP_BODY_LENGTH,			/* Content-Length bytes */
	HTTP_BODY_CHUNKED,			/* Transfer-Encoding ending in chunked */
	HTTP_BODY_CLOSE				/* responses only: until the connection closes */
} HttpBodyKind;

typedef struct HttpSpan
{
	size_t		off;
	size_t		len;
} HttpSpan;

typedef struct HttpHead
{
	/* set by HttpHeadInit / HttpResponseHeadInit */
	size_t		limit;			/* largest head accepted, in bytes */
	bool		response;		/* parse a status line, not a request line */

	/* scanning state (private) */
	size_t		start;			/* offset of the request line (after the
								 * empty lines tolerated before it) */
	size_t		scanned;		/* bytes known not to end the head */

	/* results, valid after HTTP_HEAD_COMPLETE */
	size_t		head_len;		/* bytes of the head, empty line included */
	size_t		line_end;		/* offset just after the request line's CRLF */
	HttpSpan	method;
	HttpSpan	target;
	int			status;			/* responses: the status code (100-999) */
	int			version_minor;	/* HTTP/1.<version_minor> (0 or 1) */
	bool		has_host;		/* a non-empty Host field was present */
	HttpSpan	host_raw;		/* the Host value as sent (port included) */
	char		host[HTTP_HOST_MAX + 1];	/* normalised, NUL-terminated */
	size_t		host_len;

	/* framing and connection fields (both kinds) */
	bool		has_length;		/* one valid Content-Length field */
	uint64_t	content_length;
	bool		has_te;			/* a Transfer-Encoding field */
	bool		chunked;		/* ... whose last coding is chunked */
	bool		conn_close;		/* Connection: close */
	bool		conn_keep_alive;	/* Connection: keep-alive */
	bool		conn_upgrade;	/* Connection: upgrade */
	bool		has_upgrade;	/* an Upgrade field */
	bool		expect_continue;	/* Expect: 100-continue */
} HttpHead;

extern void HttpHeadInit(HttpHead *head, size_t limit);
extern void HttpResponseHeadInit(HttpHead *head, size_t limit);
extern HttpHeadResult HttpHeadParse(HttpHead *head, const char *buf, size_t len);
extern HttpBodyKind HttpRequestBody(const HttpHead *head);
extern HttpBodyKind HttpResponseBody(const HttpHead *head, bool head_request);
extern bool HttpIsConnectionField(const char *name, size_t len);
extern bool HttpIsForwardedField(const char *name, size_t len);

#endif							/* NX_HTTP_HEAD_H */
