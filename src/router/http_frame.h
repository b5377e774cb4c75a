/*
 * src/router/http_frame.h
 *	  Where an HTTP/1.x message body ends (RFC 9112 section 6): which
 *	  framing a request or response head asks for, and an incremental
 *	  state machine that walks a body (Content-Length, chunked with
 *	  extensions and trailers, or until the connection closes) to find its
 *	  last byte.
 *
 * Glossary:
 *	  framing	how the end of a body is found: none, a length, the
 *				chunked coding, or the sender closing the connection
 *	  feed		hand the machine the next bytes of the stream; it says how
 *				many of them belong to the body (the rest is the next
 *				message)
 *
 * The router forwards bodies untouched: the machine only finds the
 * boundary, it never copies or decodes.  It keeps no pointers into the
 * caller's buffers, never allocates, and costs O(1) per byte whatever the
 * size of the pieces it is fed (a chunk's data is skipped in one step).
 * Anything a second parser could read differently (a chunk size with a
 * sign, spaces, more than 16 hex digits; a bare LF; control bytes in an
 * extension or a trailer) is an error.
 */
#ifndef NX_HTTP_FRAME_H
#define NX_HTTP_FRAME_H

#include "http_head.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_CHUNK_LINE_MAX 4096	/* chunk size line, extensions included */
#define HTTP_TRAILER_MAX (64 * 1024)	/* all trailer lines together */

typedef enum HttpBodyKind
{
	HTTP_BODY_NONE,				/* no body */
	HTTP_BODY_LENGTH,			/* Content-Length bytes */
	HTTP_BODY_CHUNKED,			/* chunked coding, trailers included */
	HTTP_BODY_CLOSE				/* until the sender closes (responses only) */
} HttpBodyKind;

typedef enum HttpFrameResult
{
	HTTP_FRAME_MORE,			/* every byte fed belongs to the body; more to come */
	HTTP_FRAME_DONE,			/* the body ended after *used bytes */
	HTTP_FRAME_ERROR			/* malformed (chunked coding) */
} HttpFrameResult;

typedef struct HttpBody
{
	HttpBodyKind kind;
	uint64_t	remaining;		/* LENGTH: bytes left; CHUNKED: of this chunk's data */
	int			state;			/* CHUNKED: where in the coding (http_frame.c) */
	uint64_t	size;			/* CHUNKED: the size being read */
	int			digits;			/* CHUNKED: hex digits read of it */
	size_t		line;			/* CHUNKED: bytes of the current size or trailer line */
	size_t		trailer;		/* CHUNKED: trailer bytes so far */
	bool		done;			/* the end was found */
	uint64_t	total;			/* body bytes fed so far (for the tests) */
} HttpBody;

extern void HttpBodyInit(HttpBody *body, HttpBodyKind kind, uint64_t length);
extern HttpFrameResult HttpBodyFeed(HttpBody *body, const char *buf, size_t len,
									size_t *used);
extern HttpBodyKind HttpRequestFraming(const HttpHead *req, uint64_t *length);
extern HttpBodyKind HttpResponseFraming(const HttpHead *resp, bool head_request,
										uint64_t *length);

#endif							/* NX_HTTP_FRAME_H */
