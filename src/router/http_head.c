/*
 * src/router/http_head.c
 *	  Incremental parser of an HTTP/1.x request head (see http_head.h).
 *
 * Strict on purpose: the router forwards the head to an app that parses it
 * again, so anything two parsers could read differently is refused with
 * 400 rather than guessed at.  Lines end with CRLF only (a bare CR or LF is
 * an error), control characters other than HTAB are errors, obsolete line
 * folding is an error, a second Host field is an error.  Empty lines before
 * the request line are skipped (RFC 9112 section 2.2 asks for that).
 *
 * Framing is strict too (RFC 9112 section 6, and what request smuggling
 * exploits): Content-Length must be digits only and appear once;
 * Transfer-Encoding must end in chunked, with chunked once and last, and
 * never together with Content-Length, nor in an HTTP/1.0 request.  A
 * response with Transfer-Encoding not ending in chunked is delimited by
 * the connection closing (RFC 9112 section 6.3); one with both fields is
 * refused like a request.
 *
 * Two passes: while the head is incomplete only the new bytes are looked at
 * (for the end of the head, and for bytes that can never appear in a head
 * so that garbage is refused early); once the end is there the head is
 * parsed once, in full.
 */
#include "http_head.h"

#include <string.h>

/* is_tchar: may c appear in a token (method, field name)?  RFC 9110 5.6.2 */
static bool
is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* is_field_byte: may c appear in a field value?  (VCHAR, SP, HTAB, obs-text) */
static bool
is_field_byte(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* is_bad_byte: can c never appear anywhere in a head?  (NUL and other CTLs) */
static bool
is_bad_byte(unsigned char c)
{
	return (c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f;
}

/* lower returns c in lowercase (ASCII only). */
static unsigned char
lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/* name_is compares a field name with `want` (lowercase), ignoring case. */
static bool
name_is(const char *name, size_t len, const char *want)
{
	size_t		i;

	if (len != strlen(want))
		return false;
	for (i = 0; i < len; i++)
		if (lower((unsigned char) name[i]) != (unsigned char) want[i])
			return false;
	return true;
}

/*
 * HttpIsForwardedField says whether a field name is one the router sets
 * itself (X-Forwarded-For/-Proto/-Host) or that would contradict them
 * (Forwarded): the router drops these from what the client sent, so an
 * app never sees a forged client address.
 */
bool
HttpIsForwardedField(const char *name, size_t len)
{
	return name_is(name, len, "x-forwarded-for") ||
		name_is(name, len, "x-forwarded-proto") ||
		name_is(name, len, "x-forwarded-host") ||
		name_is(name, len, "forwarded");
}

/*
 * HttpIsConnectionField says whether a field is hop-by-hop for the router:
 * Connection, Keep-Alive and Proxy-Connection describe one connection, so
 * they are dropped where the router joins two (it says what it means
 * itself).
 */
bool
HttpIsConnectionField(const char *name, size_t len)
{
	return name_is(name, len, "connection") ||
		name_is(name, len, "keep-alive") ||
		name_is(name, len, "proxy-connection");
}

/* HttpHeadInit prepares `head` for a new request; limit 0 means the default. */
void
HttpHeadInit(HttpHead *head, size_t limit)
{
	memset(head, 0, sizeof(*head));
	head->limit = limit ? limit : HTTP_HEAD_DEFAULT_LIMIT;
}

/* HttpResponseHeadInit prepares `head` for a response head. */
void
HttpResponseHeadInit(HttpHead *head, size_t limit)
{
	HttpHeadInit(head, limit);
	head->response = true;
}

/*
 * HttpRequestBody says how the body of a complete request head is framed
 * (RFC 9112 section 6.3, rules 4-6 and 7: no field, no body).
 */
HttpBodyKind
HttpRequestBody(const HttpHead *head)
{
	if (head->chunked)
		return HTTP_BODY_CHUNKED;
	if (head->has_length && head->content_length > 0)
		return HTTP_BODY_LENGTH;
	return HTTP_BODY_NONE;
}

/*
 * HttpResponseBody says how the body of a complete response head is
 * framed, given whether it answers a HEAD request (RFC 9112 section 6.3,
 * rules 1, 4-5 and 8).  A 101 has no body: what follows is another
 * protocol.
 */
HttpBodyKind
HttpResponseBody(const HttpHead *head, bool head_request)
{
	if (head_request || head->status < 200 || head->status == 204 || head->status == 304)
		return HTTP_BODY_NONE;
	if (head->chunked)
		return HTTP_BODY_CHUNKED;
	if (head->has_te)
		return HTTP_BODY_CLOSE;
	if (head->has_length)
		return head->content_length > 0 ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
	return HTTP_BODY_CLOSE;
}

/*
 * parse_host checks a Host value (OWS already trimmed) and stores its
 * normalised form.  Accepted: a DNS-like name or IPv4 address (letters,
 * digits, '-', '.', '_'), or an IPv6 literal in brackets, each optionally
 * followed by ":" and digits; names have no empty label.  Returns false
 * for anything else.
 */
static bool
parse_host(HttpHead *head, const char *v, size_t len)
{
	size_t		name_len = 0;
	size_t		i;

	if (len > 0 && v[0] == '[')
	{
		/* IPv6 literal, kept with its brackets */
		for (i = 1; i < len && v[i] != ']'; i++)
		{
			unsigned char c = (unsigned char) v[i];

			if (!((c >= '0' && c <= '9') || (lower(c) >= 'a' && lower(c) <= 'f') ||
				  c == ':' || c == '.'))
				return false;
		}
		if (i >= len || i == 1)
			return false;
		name_len = i + 1;
	}
	else
	{
		for (i = 0; i < len && v[i] != ':'; i++)
		{
			unsigned char c = (unsigned char) v[i];

			if (!((c >= '0' && c <= '9') || (lower(c) >= 'a' && lower(c) <= 'z') ||
				  c == '-' || c == '.' || c == '_'))
				return false;
		}
		name_len = i;
	}
	/* what follows the name: nothing, or ":" and digits (possibly none) */
	if (name_len < len)
	{
		if (v[name_len] != ':')
			return false;
		for (i = name_len + 1; i < len; i++)
			if (v[i] < '0' || v[i] > '9')
				return false;
	}
	/* one trailing dot means the same name (fully qualified) */
	if (name_len > 0 && v[name_len - 1] == '.' && v[0] != '[')
		name_len--;
	if (name_len == 0 || name_len > HTTP_HOST_MAX)
		return false;
	/* no empty labels: ".x", "x..y", "x.." */
	if (v[0] != '[')
	{
		if (v[0] == '.' || v[name_len - 1] == '.')
			return false;
		for (i = 1; i < name_len; i++)
			if (v[i] == '.' && v[i - 1] == '.')
				return false;
	}
	for (i = 0; i < name_len; i++)
		head->host[i] = (char) lower((unsigned char) v[i]);
	head->host[name_len] = '\0';
	head->host_len = name_len;
	return true;
}

/*
 * parse_request_line parses "METHOD SP TARGET SP HTTP/1.x CRLF" starting at
 * `p`; `end` is the end of the head.  Returns the offset just after the
 * CRLF, or 0 when malformed.
 */
static size_t
parse_request_line(HttpHead *head, const char *buf, size_t p, size_t end)
{
	size_t		s = p;

	while (p < end && is_tchar((unsigned char) buf[p]))
		p++;
	if (p == s || p >= end || buf[p] != ' ')
		return 0;
	head->method.off = s;
	head->method.len = p - s;
	s = ++p;
	while (p < end && (unsigned char) buf[p] > 0x20 && (unsigned char) buf[p] < 0x7f)
		p++;
	if (p == s || p >= end || buf[p] != ' ')
		return 0;
	head->target.off = s;
	head->target.len = p - s;
	p++;
	if (end - p < 10 || memcmp(buf + p, "HTTP/1.", 7) != 0 ||
		(buf[p + 7] != '0' && buf[p + 7] != '1') ||
		buf[p + 8] != '\r' || buf[p + 9] != '\n')
		return 0;
	head->version_minor = buf[p + 7] - '0';
	return p + 10;
}

/*
 * parse_status_line parses "HTTP/1.x SP 3DIGIT [SP reason] CRLF" starting
 * at `p`.  Returns the offset just after the CRLF, or 0 when malformed.
 */
static size_t
parse_status_line(HttpHead *head, const char *buf, size_t p, size_t end)
{
	if (end - p < 14 || memcmp(buf + p, "HTTP/1.", 7) != 0 ||
		(buf[p + 7] != '0' && buf[p + 7] != '1') || buf[p + 8] != ' ' ||
		buf[p + 9] < '1' || buf[p + 9] > '9' || buf[p + 10] < '0' || buf[p + 10] > '9' ||
		buf[p + 11] < '0' || buf[p + 11] > '9')
		return 0;
	head->version_minor = buf[p + 7] - '0';
	head->status = (buf[p + 9] - '0') * 100 + (buf[p + 10] - '0') * 10 + (buf[p + 11] - '0');
	p += 12;
	if (buf[p] == ' ')
	{
		p++;
		while (p < end && is_field_byte((unsigned char) buf[p]))
			p++;
	}
	if (end - p < 2 || buf[p] != '\r' || buf[p + 1] != '\n')
		return 0;
	return p + 2;
}

/* trim_ows narrows [*v, *v_end) to leave out spaces and tabs at both ends. */
static void
trim_ows(const char *buf, size_t *v, size_t *v_end)
{
	while (*v < *v_end && (buf[*v] == ' ' || buf[*v] == '\t'))
		(*v)++;
	while (*v_end > *v && (buf[*v_end - 1] == ' ' || buf[*v_end - 1] == '\t'))
		(*v_end)--;
}

/*
 * parse_list calls `item` for each element of a comma-separated field
 * value (OWS trimmed); an empty element is an error.  Stops and returns
 * false when `item` does.
 */
static bool
parse_list(HttpHead *head, const char *buf, size_t v, size_t v_end,
		   bool (*item) (HttpHead *head, const char *s, size_t len))
{
	while (v < v_end)
	{
		size_t		e = v;
		size_t		s = v;

		while (e < v_end && buf[e] != ',')
			e++;
		v = e + 1;
		trim_ows(buf, &s, &e);
		if (s == e || !item(head, buf + s, e - s))
			return false;
		if (v == v_end)
			return false;		/* a trailing comma: an empty element */
	}
	return true;
}

/* te_item takes one transfer coding: chunked must be the last one, once. */
static bool
te_item(HttpHead *head, const char *s, size_t len)
{
	if (head->chunked)
		return false;			/* something after chunked */
	if (name_is(s, len, "chunked"))
		head->chunked = true;
	return true;
}

/* connection_item takes one Connection option. */
static bool
connection_item(HttpHead *head, const char *s, size_t len)
{
	if (name_is(s, len, "close"))
		head->conn_close = true;
	else if (name_is(s, len, "keep-alive"))
		head->conn_keep_alive = true;
	else if (name_is(s, len, "upgrade"))
		head->conn_upgrade = true;
	return true;
}

/*
 * framing_field interprets Content-Length, Transfer-Encoding, Connection,
 * Upgrade and Expect.  Returns false when the field makes the message
 * malformed.
 */
static bool
framing_field(HttpHead *head, const char *buf, size_t name, size_t name_len,
			  size_t v, size_t v_end)
{
	trim_ows(buf, &v, &v_end);
	if (name_is(buf + name, name_len, "content-length"))
	{
		uint64_t	n = 0;
		size_t		i;

		/* once, digits only, at most 18 of them (no overflow) */
		if (head->has_length || v == v_end || v_end - v > 18)
			return false;
		for (i = v; i < v_end; i++)
		{
			if (buf[i] < '0' || buf[i] > '9')
				return false;
			n = n * 10 + (buf[i] - '0');
		}
		head->has_length = true;
		head->content_length = n;
	}
	else if (name_is(buf + name, name_len, "transfer-encoding"))
	{
		/* several fields make one list: a coding after chunked is an error */
		head->has_te = true;
		if (v == v_end || !parse_list(head, buf, v, v_end, te_item))
			return false;
	}
	else if (name_is(buf + name, name_len, "connection"))
	{
		if (v < v_end && !parse_list(head, buf, v, v_end, connection_item))
			return false;
	}
	else if (name_is(buf + name, name_len, "upgrade"))
		head->has_upgrade = true;
	else if (name_is(buf + name, name_len, "expect"))
		head->expect_continue = name_is(buf + v, v_end - v, "100-continue");
	return true;
}

/*
 * parse_fields parses the header lines from `p` up to `end` (which is just
 * after the final empty line) and picks out Host.  Returns false when
 * malformed.
 */
static bool
parse_fields(HttpHead *head, const char *buf, size_t p, size_t end)
{
	bool		seen_host = false;

	for (;;)
	{
		size_t		name,
					name_len,
					v,
					v_end;

		if (end - p < 2)
			return false;
		if (buf[p] == '\r')
			return buf[p + 1] == '\n' && p + 2 == end;
		/* field name: a token, then ':' with no whitespace before it */
		name = p;
		while (p < end && is_tchar((unsigned char) buf[p]))
			p++;
		if (p == name || p >= end || buf[p] != ':')
			return false;
		name_len = p - name;
		p++;
		/* value up to CRLF */
		v = p;
		while (p < end && is_field_byte((unsigned char) buf[p]))
			p++;
		if (end - p < 2 || buf[p] != '\r' || buf[p + 1] != '\n')
			return false;
		v_end = p;
		p += 2;
		if (!framing_field(head, buf, name, name_len, v, v_end))
			return false;
		if (head->response)
			continue;
		if (name_is(buf + name, name_len, "host"))
		{
			if (seen_host)
				return false;
			seen_host = true;
			while (v < v_end && (buf[v] == ' ' || buf[v] == '\t'))
				v++;
			while (v_end > v && (buf[v_end - 1] == ' ' || buf[v_end - 1] == '\t'))
				v_end--;
			head->host_raw.off = v;
			head->host_raw.len = v_end - v;
			if (v_end > v)
			{
				if (!parse_host(head, buf + v, v_end - v))
					return false;
				head->has_host = true;
			}
		}
	}
}

/*
 * HttpHeadParse looks at buf[0..len), all the bytes of the connection so
 * far (the same prefix as at the previous call, plus more), and says
 * whether the head is complete, incomplete, malformed or too long.  On
 * COMPLETE the result fields of `head` are set; bytes after head_len are
 * the start of the body (or of a pipelined request) and are not looked at.
 */
HttpHeadResult
HttpHeadParse(HttpHead *head, const char *buf, size_t len)
{
	size_t		i;
	size_t		end = 0;

	if (len < head->scanned)
		return HTTP_HEAD_ERROR_400;	/* not the same buffer as before */

	/* empty lines before the request line are skipped */
	while (!head->response && head->scanned == head->start && len - head->start >= 2 &&
		   buf[head->start] == '\r' && buf[head->start + 1] == '\n' &&
		   head->start + 2 <= head->limit)
	{
		head->start += 2;
		head->scanned = head->start;
	}

	/* a lone CR where the request line would start may begin an empty line */
	if (!head->response && head->scanned == head->start && len - head->start == 1 &&
		buf[head->start] == '\r')
		return head->start + 1 > head->limit ? HTTP_HEAD_ERROR_431 : HTTP_HEAD_NEED_MORE;

	/* look for CRLF CRLF in the bytes not looked at yet */
	for (i = head->scanned; i < len; i++)
	{
		if (i >= head->limit)
			return HTTP_HEAD_ERROR_431; /* the head would be longer */
		if (is_bad_byte((unsigned char) buf[i]))
			return HTTP_HEAD_ERROR_400;
		if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r'))
			return HTTP_HEAD_ERROR_400; /* bare LF */
		if (i > 0 && buf[i - 1] == '\r' && buf[i] != '\n' && i - 1 >= head->start)
			return HTTP_HEAD_ERROR_400; /* bare CR */
		if (buf[i] == '\n' && i >= head->start + 3 &&
			buf[i - 3] == '\r' && buf[i - 2] == '\n' && buf[i - 1] == '\r')
		{
			end = i + 1;
			break;
		}
	}
	if (end == 0)
	{
		head->scanned = len;
		return len >= head->limit ? HTTP_HEAD_ERROR_431 : HTTP_HEAD_NEED_MORE;
	}
	if (end > head->limit)
		return HTTP_HEAD_ERROR_431;
	head->scanned = end;

	/* the whole head is there: parse it once */
	head->line_end = head->response ? parse_status_line(head, buf, head->start, end)
		: parse_request_line(head, buf, head->start, end);
	if (head->line_end == 0)
		return HTTP_HEAD_ERROR_400;
	if (!parse_fields(head, buf, head->line_end, end))
		return HTTP_HEAD_ERROR_400;
	/* framing two parsers could read differently */
	if (head->has_te && head->has_length)
		return HTTP_HEAD_ERROR_400;
	if (!head->response && head->has_te && (!head->chunked || head->version_minor == 0))
		return HTTP_HEAD_ERROR_400;
	head->head_len = end;
	return HTTP_HEAD_COMPLETE;
}
