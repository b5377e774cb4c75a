/*
 * src/router/http_frame.c
 *	  Framing of HTTP/1.1 message bodies (see http_frame.h): Content-Length,
 *	  chunked (with extensions and trailers) and close-delimited.
 *
 * Strict like the head parser, since the app parses the same bytes again
 * and any difference in where a body ends is a smuggled request: the
 * chunk size is 1 to 15 hex digits (no sign, no space, no "0x"), an
 * extension starts right after the size with ';' and holds no control
 * byte, every line ends in CRLF (a bare CR or LF is an error), chunk data
 * is followed by CRLF exactly, trailer lines are "name: value" with a
 * token name and no folding.
 */
#include "http_frame.h"

#include <string.h>

/* hex_value returns the value of a hex digit, or -1. */
static int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* is_token_byte: may c appear in a field name?  RFC 9110 5.6.2 */
static bool
is_token_byte(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* is_text_byte: may c appear in a field value or extension?  (no CTL but HTAB) */
static bool
is_text_byte(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/*
 * HttpFrameInit starts framing a body of `kind`; `length` is the
 * Content-Length for HTTP_BODY_LENGTH.
 */
void
HttpFrameInit(HttpFrame *f, HttpBodyKind kind, uint64_t length)
{
	memset(f, 0, sizeof(*f));
	switch (kind)
	{
		case HTTP_BODY_NONE:
			f->state = FRAME_DONE;
			break;
		case HTTP_BODY_LENGTH:
			f->state = length > 0 ? FRAME_LENGTH : FRAME_DONE;
			f->remaining = length;
			break;
		case HTTP_BODY_CHUNKED:
			f->state = FRAME_CHUNK_SIZE;
			break;
		case HTTP_BODY_CLOSE:
			f->state = FRAME_CLOSE;
			break;
	}
}

/* fail puts the frame in FRAME_ERROR with a reason. */
static void
fail(HttpFrame *f, const char *why)
{
	f->state = FRAME_ERROR;
	f->error = why;
}

/*
 * HttpFrameConsume looks at the next `len` bytes of the stream and returns
 * how many of them belong to the body.  Fewer than `len` only when the
 * body ends (FRAME_DONE: the rest is the next message) or is malformed
 * (FRAME_ERROR: nothing from the bad byte on may be forwarded).
 */
size_t
HttpFrameConsume(HttpFrame *f, const char *buf, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		unsigned char c = (unsigned char) buf[i];

		switch (f->state)
		{
			case FRAME_DONE:
			case FRAME_ERROR:
				f->total += i;
				return i;
			case FRAME_CLOSE:
				f->total += len;
				return len;
			case FRAME_LENGTH:
			case FRAME_CHUNK_DATA:
				{
					size_t		n = len - i;

					if ((uint64_t) n > f->remaining)
						n = (size_t) f->remaining;
					f->remaining -= n;
					i += n;
					if (f->remaining == 0)
						f->state = f->state == FRAME_LENGTH ? FRAME_DONE : FRAME_CHUNK_DATA_CR;
				}
				continue;
			case FRAME_CHUNK_SIZE:
				{
					int			v = hex_value(c);

					if (v >= 0)
					{
						if (++f->digits > 15)
						{
							fail(f, "chunk size too large");
							continue;
						}
						f->chunk_size = f->chunk_size * 16 + v;
					}
					else if (f->digits == 0)
						fail(f, "bad chunk size");
					else if (c == ';')
						f->state = FRAME_CHUNK_EXT;
					else if (c == '\r')
						f->state = FRAME_CHUNK_LF;
					else
						fail(f, "bad chunk size");
				}
				break;
			case FRAME_CHUNK_EXT:
				if (c == '\r')
					f->state = FRAME_CHUNK_LF;
				else if (!is_text_byte(c))
					fail(f, "bad chunk extension");
				break;
			case FRAME_CHUNK_LF:
				if (c != '\n')
				{
					fail(f, "bare CR in chunk size line");
					continue;
				}
				if (f->chunk_size == 0)
					f->state = FRAME_TRAILER_START;
				else
				{
					f->state = FRAME_CHUNK_DATA;
					f->remaining = f->chunk_size;
				}
				f->chunk_size = 0;
				f->digits = 0;
				f->line = 0;
				i++;
				continue;
			case FRAME_CHUNK_DATA_CR:
				if (c == '\r')
					f->state = FRAME_CHUNK_DATA_LF;
				else
					fail(f, "chunk data not followed by CRLF");
				break;
			case FRAME_CHUNK_DATA_LF:
				if (c == '\n')
					f->state = FRAME_CHUNK_SIZE;
				else
					fail(f, "chunk data not followed by CRLF");
				break;
			case FRAME_TRAILER_START:
				if (c == '\r')
					f->state = FRAME_END_LF;
				else if (is_token_byte(c))
					f->state = FRAME_TRAILER_NAME;
				else
					fail(f, "bad trailer line");	/* folding, bare LF, ... */
				break;
			case FRAME_TRAILER_NAME:
				if (c == ':')
					f->state = FRAME_TRAILER_VALUE;
				else if (!is_token_byte(c))
					fail(f, "bad trailer field name");
				break;
			case FRAME_TRAILER_VALUE:
				if (c == '\r')
					f->state = FRAME_TRAILER_LF;
				else if (!is_text_byte(c))
					fail(f, "bad trailer field value");
				break;
			case FRAME_TRAILER_LF:
				if (c == '\n')
					f->state = FRAME_TRAILER_START;
				else
					fail(f, "bare CR in trailer");
				break;
			case FRAME_END_LF:
				if (c == '\n')
				{
					f->state = FRAME_DONE;
					i++;
					continue;
				}
				fail(f, "bare CR at the end of the trailers");
				break;
		}
		if (f->state == FRAME_ERROR)
			continue;			/* the bad byte is not part of the body */
		/* a byte of a size line or trailer: bounded */
		if (f->state == FRAME_CHUNK_SIZE || f->state == FRAME_CHUNK_EXT || f->state == FRAME_CHUNK_LF)
		{
			if (++f->line > HTTP_CHUNK_LINE_MAX)
			{
				fail(f, "chunk size line too long");
				continue;
			}
		}
		else if (f->state >= FRAME_TRAILER_START && f->state <= FRAME_END_LF)
		{
			if (++f->trailer > HTTP_TRAILER_MAX)
			{
				fail(f, "trailer section too long");
				continue;
			}
		}
		i++;
	}
	f->total += i;
	return i;
}

/*
 * HttpFrameEof tells the frame that the stream ended: a close-delimited
 * body is complete, any other body not yet complete is truncated.
 */
void
HttpFrameEof(HttpFrame *f)
{
	if (f->state == FRAME_CLOSE)
		f->state = FRAME_DONE;
	else if (f->state != FRAME_DONE && f->state != FRAME_ERROR)
		fail(f, "connection closed inside the body");
}
