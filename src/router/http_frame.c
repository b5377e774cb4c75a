/*
 * src/router/http_frame.c
 *	  Body framing of HTTP/1.x messages (see http_frame.h): which framing a
 *	  head asks for (RFC 9112 section 6.3) and the state machine that finds
 *	  the end of a body in a stream fed piece by piece.
 *
 * The chunked grammar accepted (RFC 9112 section 7.1), strictly:
 *	  chunk-size = 1*16HEXDIG, then optionally ";" and extension bytes
 *	  (HTAB, SP, VCHAR, obs-text; BWS before the ";" allowed), then CRLF;
 *	  the data, then CRLF; after the size-0 line, trailer lines
 *	  (token ":" field bytes CRLF), then CRLF.
 * Lines end with CRLF only.
 */
#include "http_frame.h"

#include <string.h>

/* where the chunked machine is */
enum
{
	CS_SIZE,					/* reading hex digits */
	CS_SIZE_WS,					/* BWS after the digits: ";" must follow */
	CS_EXT,						/* extension bytes up to CR */
	CS_SIZE_LF,					/* CR seen after the size line */
	CS_DATA,					/* chunk data, `remaining` bytes left */
	CS_DATA_CR,					/* CR after the data */
	CS_DATA_LF,					/* LF after the data */
	CS_TRAILER_START,			/* start of a trailer line, or the final CRLF */
	CS_TRAILER_NAME,			/* field name */
	CS_TRAILER_VALUE,			/* field value up to CR */
	CS_TRAILER_LF,				/* CR seen after a trailer line */
	CS_FINAL_LF					/* CR of the final empty line seen */
};

/* is_tchar: may c appear in a token?  RFC 9110 5.6.2 */
static bool
is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* is_field_byte: may c appear in a field value or an extension? */
static bool
is_field_byte(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

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

/* HttpBodyInit starts framing a body of `kind` (`length` bytes for LENGTH). */
void
HttpBodyInit(HttpBody *body, HttpBodyKind kind, uint64_t length)
{
	memset(body, 0, sizeof(*body));
	body->kind = kind;
	body->remaining = length;
	body->state = CS_SIZE;
	body->done = (kind == HTTP_BODY_NONE || (kind == HTTP_BODY_LENGTH && length == 0));
}

/*
 * chunked_feed runs the chunked machine over buf[0..len); sets *used to
 * the bytes that belong to the body.
 */
static HttpFrameResult
chunked_feed(HttpBody *b, const char *buf, size_t len, size_t *used)
{
	size_t		i = 0;

	while (i < len)
	{
		unsigned char c = (unsigned char) buf[i];
		int			h;

		switch (b->state)
		{
			case CS_DATA:
				{
					size_t		n = len - i;

					if ((uint64_t) n > b->remaining)
						n = (size_t) b->remaining;
					b->remaining -= n;
					i += n;
					if (b->remaining == 0)
						b->state = CS_DATA_CR;
					continue;
				}
			case CS_SIZE:
				if (++b->line > HTTP_CHUNK_LINE_MAX)
					return HTTP_FRAME_ERROR;
				h = hex_value(c);
				if (h >= 0)
				{
					if (++b->digits > 16)
						return HTTP_FRAME_ERROR;
					b->size = (b->size << 4) | (uint64_t) h;
				}
				else if (b->digits == 0)
					return HTTP_FRAME_ERROR;
				else if (c == '\r')
					b->state = CS_SIZE_LF;
				else if (c == ';')
					b->state = CS_EXT;
				else if (c == ' ' || c == '\t')
					b->state = CS_SIZE_WS;
				else
					return HTTP_FRAME_ERROR;
				break;
			case CS_SIZE_WS:
				if (++b->line > HTTP_CHUNK_LINE_MAX)
					return HTTP_FRAME_ERROR;
				if (c == ';')
					b->state = CS_EXT;
				else if (c != ' ' && c != '\t')
					return HTTP_FRAME_ERROR;
				break;
			case CS_EXT:
				if (++b->line > HTTP_CHUNK_LINE_MAX)
					return HTTP_FRAME_ERROR;
				if (c == '\r')
					b->state = CS_SIZE_LF;
				else if (!is_field_byte(c))
					return HTTP_FRAME_ERROR;
				break;
			case CS_SIZE_LF:
				if (c != '\n')
					return HTTP_FRAME_ERROR;
				b->line = 0;
				b->digits = 0;
				if (b->size == 0)
					b->state = CS_TRAILER_START;
				else
				{
					b->remaining = b->size;
					b->state = CS_DATA;
				}
				b->size = 0;
				break;
			case CS_DATA_CR:
				if (c != '\r')
					return HTTP_FRAME_ERROR;
				b->state = CS_DATA_LF;
				break;
			case CS_DATA_LF:
				if (c != '\n')
					return HTTP_FRAME_ERROR;
				b->state = CS_SIZE;
				break;
			case CS_TRAILER_START:
				if (++b->trailer > HTTP_TRAILER_MAX)
					return HTTP_FRAME_ERROR;
				if (c == '\r')
					b->state = CS_FINAL_LF;
				else if (is_tchar(c))
					b->state = CS_TRAILER_NAME;
				else
					return HTTP_FRAME_ERROR;	/* obs-fold, bare LF, ... */
				break;
			case CS_TRAILER_NAME:
				if (++b->trailer > HTTP_TRAILER_MAX)
					return HTTP_FRAME_ERROR;
				if (c == ':')
					b->state = CS_TRAILER_VALUE;
				else if (!is_tchar(c))
					return HTTP_FRAME_ERROR;
				break;
			case CS_TRAILER_VALUE:
				if (++b->trailer > HTTP_TRAILER_MAX)
					return HTTP_FRAME_ERROR;
				if (c == '\r')
					b->state = CS_TRAILER_LF;
				else if (!is_field_byte(c))
					return HTTP_FRAME_ERROR;
				break;
			case CS_TRAILER_LF:
				if (c != '\n')
					return HTTP_FRAME_ERROR;
				b->state = CS_TRAILER_START;
				break;
			case CS_FINAL_LF:
				if (c != '\n')
					return HTTP_FRAME_ERROR;
				*used = i + 1;
				b->done = true;
				return HTTP_FRAME_DONE;
		}
		i++;
	}
	*used = len;
	return HTTP_FRAME_MORE;
}

/*
 * HttpBodyFeed hands the machine the next `len` bytes of the stream.
 * *used is set to how many of them belong to the body: all of them with
 * MORE, those up to the body's last byte with DONE (the rest is the next
 * message).  Feeding a body that is done gives DONE with *used 0.
 */
HttpFrameResult
HttpBodyFeed(HttpBody *body, const char *buf, size_t len, size_t *used)
{
	HttpFrameResult r;

	*used = 0;
	if (body->done)
		return HTTP_FRAME_DONE;
	switch (body->kind)
	{
		case HTTP_BODY_LENGTH:
			*used = (uint64_t) len < body->remaining ? len : (size_t) body->remaining;
			body->remaining -= *used;
			body->total += *used;
			if (body->remaining == 0)
			{
				body->done = true;
				return HTTP_FRAME_DONE;
			}
			return HTTP_FRAME_MORE;
		case HTTP_BODY_CLOSE:
			*used = len;
			body->total += len;
			return HTTP_FRAME_MORE;
		case HTTP_BODY_CHUNKED:
			r = chunked_feed(body, buf, len, used);
			if (r != HTTP_FRAME_ERROR)
				body->total += *used;
			return r;
		case HTTP_BODY_NONE:
			break;
	}
	body->done = true;
	return HTTP_FRAME_DONE;
}

/*
 * HttpRequestFraming says how the body of a complete, valid request head
 * is framed (RFC 9112 section 6.3: chunked, else Content-Length, else no
 * body; a request is never delimited by closing).
 */
HttpBodyKind
HttpRequestFraming(const HttpHead *req, uint64_t *length)
{
	*length = 0;
	if (req->chunked)
		return HTTP_BODY_CHUNKED;
	if (req->content_length > 0)
	{
		*length = (uint64_t) req->content_length;
		return HTTP_BODY_LENGTH;
	}
	return HTTP_BODY_NONE;
}

/*
 * HttpResponseFraming says how the body of a complete, valid response head
 * is framed: none for a response to HEAD and for 1xx, 204 and 304; then
 * chunked, Content-Length, or until the app closes.
 */
HttpBodyKind
HttpResponseFraming(const HttpHead *resp, bool head_request, uint64_t *length)
{
	*length = 0;
	if (head_request || resp->status < 200 || resp->status == 204 || resp->status == 304)
		return HTTP_BODY_NONE;
	if (resp->chunked)
		return HTTP_BODY_CHUNKED;
	if (resp->content_length >= 0)
	{
		*length = (uint64_t) resp->content_length;
		return resp->content_length > 0 ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
	}
	return HTTP_BODY_CLOSE;
}
