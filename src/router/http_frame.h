/*
 * src/router/http_frame.h
 *	  Framing of an HTTP/1.1 message body (RFC 9112 sections 6 and 7):
 *	  tells, for bytes that follow a head, how many belong to this message's
 *	  body and where the next message starts.  The router forwards a body
 *	  unchanged (chunked stays chunked), so framing only finds the end and
 *	  refuses what is malformed: a chunk size that is not 1-15 hex digits, a
 *	  chunk line or trailer section that is too long, anything but CRLF
 *	  where CRLF belongs, obsolete folding or bad bytes in a trailer.
 *
 * Glossary:
 *	  frame		the state of one body being framed
 *	  consume	look at the next bytes of the stream: those that belong to
 *				the body are counted, the first one that does not is where
 *				the next message starts
 *
 * Incremental and allocation-free like http_head.c: the caller passes each
 * new piece of the stream once, in order; the answer does not depend on
 * how the stream is cut.
 */
#ifndef NX_HTTP_FRAME_H
#define NX_HTTP_FRAME_H

#include "http_head.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_CHUNK_LINE_MAX 4096	/* chunk size line, extensions included */
#define HTTP_TRAILER_MAX (64 * 1024)	/* trailer section, all lines */

typedef enum HttpFrameState
{
	FRAME_LENGTH,				/* `remaining` bytes of a Content-Length body */
	FRAME_CHUNK_SIZE,			/* hex digits of a chunk size */
	FRAME_CHUNK_EXT,			/* after ';': chunk extensions up to CR */
	FRAME_CHUNK_LF,				/* the LF ending the chunk size line */
	FRAME_CHUNK_DATA,			/* `remaining` bytes of chunk data */
	FRAME_CHUNK_DATA_CR,		/* the CRLF after chunk data */
	FRAME_CHUNK_DATA_LF,
	FRAME_TRAILER_START,		/* start of a trailer line (or the final CRLF) */
	FRAME_TRAILER_NAME,			/* a trailer field's name */
	FRAME_TRAILER_VALUE,		/* its value up to CR */
	FRAME_TRAILER_LF,			/* the LF ending a trailer line */
	FRAME_END_LF,				/* the LF of the final empty line */
	FRAME_CLOSE,				/* everything until the connection closes */
	FRAME_DONE,					/* the body is complete */
	FRAME_ERROR					/* malformed: refuse, close */
} HttpFrameState;

typedef struct HttpFrame
{
	HttpFrameState state;
	uint64_t	remaining;		/* FRAME_LENGTH, FRAME_CHUNK_DATA */
	uint64_t	chunk_size;		/* FRAME_CHUNK_SIZE: the value so far */
	int			digits;			/* hex digits of the size so far */
	size_t		line;			/* bytes of the current chunk size line */
	size_t		trailer;		/* bytes of the trailer section so far */
	uint64_t	total;			/* body bytes consumed so far */
	const char *error;			/* why FRAME_ERROR */
} HttpFrame;

extern void HttpFrameInit(HttpFrame *f, HttpBodyKind kind, uint64_t length);
extern size_t HttpFrameConsume(HttpFrame *f, const char *buf, size_t len);
extern void HttpFrameEof(HttpFrame *f);

#endif							/* NX_HTTP_FRAME_H */
