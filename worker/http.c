/*
 * http.c: strict HTTP/1.1 head parser and chunked-body scanner.
 *
 * Everything here works in place on the caller's bytes: a parsed head is
 * a set of (offset, length) slices, and the chunked scanner keeps a few
 * integers between calls.  The grammar is RFC 9112 (message syntax) and
 * RFC 9110 (semantics).  Wherever the RFCs let a recipient choose between
 * tolerance and rejection we reject: a proxy that "repairs" framing is how
 * request smuggling happens.  Depends on libc only (the fuzz harnesses
 * compile this file on its own).
 */
#include "worker/http.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#define HTTP_CL_MAX	      ((uint64_t)1 << 62) /* largest Content-Length taken */
#define HTTP_CHUNK_DIGITS_MAX 16 /* hex digits in a chunk-size */

/* ---- character classes (RFC 9110 §5.6.2, §5.5) ---- */

/*
 * Token and authority characters, looked up in a table built at compile
 * time: a head's every byte is classified, and a strchr per punctuation
 * byte was a tenth of the parser's instructions (callgrind).
 */
#define CT_ALNUM(c) \
	(((c) >= '0' && (c) <= '9') || ((c) >= 'a' && (c) <= 'z') || \
	 ((c) >= 'A' && (c) <= 'Z'))
/* tchar: "!#$%&'*+-.^_`|~" DIGIT ALPHA (RFC 9110 §5.6.2) */
#define CT_TSYM(c) \
	((c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' || \
	 (c) == '\'' || (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' || \
	 (c) == '^' || (c) == '_' || (c) == '`' || (c) == '|' || (c) == '~')
/* uri-host [":" port]: reg-name, IP-literal and port characters; no '@' */
#define CT_ASYM(c) \
	((c) == '-' || (c) == '.' || (c) == '_' || (c) == '~' || (c) == '!' || \
	 (c) == '$' || (c) == '&' || (c) == '\'' || (c) == '(' || (c) == ')' || \
	 (c) == '*' || (c) == '+' || (c) == ',' || (c) == ';' || (c) == '=' || \
	 (c) == ':' || (c) == '[' || (c) == ']' || (c) == '%')
#define CT_TCHAR 1u
#define CT_AUTH	 2u
#define CT(c)                                                      \
	((CT_ALNUM(c) || CT_TSYM(c) ? CT_TCHAR : 0u) |             \
	 (CT_ALNUM(c) || CT_ASYM(c) ? CT_AUTH : 0u))
#define CT4(c)	CT(c), CT((c) + 1), CT((c) + 2), CT((c) + 3)
#define CT16(c) CT4(c), CT4((c) + 4), CT4((c) + 8), CT4((c) + 12)
#define CT64(c) CT16(c), CT16((c) + 16), CT16((c) + 32), CT16((c) + 48)

static const unsigned char http_ctype[256] = {
	CT64(0), CT64(64), CT64(128), CT64(192),
};

static bool is_tchar(unsigned char c)
{
	return http_ctype[c] & CT_TCHAR;
}

static bool is_authority_char(unsigned char c)
{
	return http_ctype[c] & CT_AUTH;
}

/* field-vchar / SP / HT / obs-text: every byte but the CTLs (HT is fine) */
static bool is_field_char(unsigned char c)
{
	return (c >= 0x20 && c != 0x7f) || c == '\t';
}

/* The same test over a run of bytes: no early exit, so it vectorizes. */
static bool are_field_chars(const char *p, size_t n)
{
	unsigned bad = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		bad |= (unsigned)((c < 0x20 && c != '\t') || c == 0x7f);
	}
	return bad == 0;
}

static bool is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* request-target: no CTLs, no space (obs-text tolerated, as nginx does) */
static bool is_target_char(unsigned char c)
{
	return c > 0x20 && c != 0x7f;
}

int http_hex_digit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* ---- slices ---- */

static struct http_slice slice_make(size_t off, size_t len)
{
	struct http_slice s = {(uint32_t)off, (uint32_t)len};
	return s;
}

/* Case-sensitive compare, for methods (RFC 9110 §9.1). */
static bool slice_is(const char *buf, struct http_slice s, const char *tok)
{
	size_t n = strlen(tok);

	return s.len == n && memcmp(buf + s.off, tok, n) == 0;
}

static bool slice_eq_slice(const char *buf, struct http_slice a,
			   struct http_slice b)
{
	return a.len == b.len &&
	       strncasecmp(buf + a.off, buf + b.off, a.len) == 0;
}


int http_find_header(const char *buf, const struct http_msg *msg,
		     const char *name)
{
	for (unsigned i = 0; i < msg->nheaders; i++)
		if (http_slice_eq(buf, msg->headers[i].name, name))
			return (int)i;
	return -1;
}

/* ---- comma-separated lists (RFC 9110 §5.6.1) ---- */

struct http_list {
	const char *buf;
	uint32_t pos; /* start of the next element */
	uint32_t end; /* end of the field value */
	bool is_done;
};

static void list_init(struct http_list *l, const char *buf,
		      struct http_slice value)
{
	l->buf = buf;
	l->pos = value.off;
	l->end = value.off + value.len;
	l->is_done = false;
}

/*
 * Next element, OWS-trimmed.  Empty elements ("a, ,b") are returned with
 * len 0; callers skip them or reject them as their field requires.
 */
static bool list_next(struct http_list *l, struct http_slice *elem)
{
	uint32_t s = l->pos, e, q = l->pos;

	if (l->is_done)
		return false;
	while (q < l->end && l->buf[q] != ',')
		q++;
	l->is_done = q == l->end;
	l->pos = q + 1;
	e = q;
	while (s < e && is_ows(l->buf[s]))
		s++;
	while (e > s && is_ows(l->buf[e - 1]))
		e--;
	*elem = slice_make(s, e - s);
	return true;
}

bool http_list_has(const char *buf, struct http_slice value, const char *tok)
{
	struct http_list l;
	struct http_slice e;

	list_init(&l, buf, value);
	while (list_next(&l, &e)) {
		/* "trailers;q=1" style parameters do not change the token */
		for (uint32_t i = 0; i < e.len; i++) {
			if (buf[e.off + i] == ';' || is_ows(buf[e.off + i])) {
				e.len = i;
				break;
			}
		}
		if (http_slice_eq(buf, e, tok))
			return true;
	}
	return false;
}

static bool is_token(const char *buf, struct http_slice s)
{
	if (s.len == 0)
		return false;
	for (uint32_t i = 0; i < s.len; i++)
		if (!is_tchar(buf[s.off + i]))
			return false;
	return true;
}

/* ---- http_head_end ---- */

/* RFC 9112 §2.2: a server SHOULD ignore empty lines before a request. */
static size_t skip_empty_lines(const char *buf, size_t len, size_t pos)
{
	while (pos + 1 < len && buf[pos] == '\r' && buf[pos + 1] == '\n')
		pos += 2;
	return pos;
}

/*
 * The head ends at the first LF followed by an empty line.  In a valid head
 * that is the "\r\n\r\n"; a bare-LF ending ("\n\n", "\n\r\n") is found too,
 * so the parser can reject it now rather than at the header timeout.
 * Empty lines before the request-line are skipped exactly as the parser
 * skips them, or "\r\n\r\nGET ..." would end before it starts.
 */
size_t http_head_end(const char *buf, size_t len, size_t *scanned)
{
	size_t lead = skip_empty_lines(buf, len, 0);
	size_t i = *scanned <= len ? *scanned : 0;

	if (i < lead)
		i = lead;

	while (i < len) {
		const char *lf = memchr(buf + i, '\n', len - i);
		size_t at;

		if (lf == NULL) {
			i = len;
			break;
		}
		at = (size_t)(lf - buf);
		if (at + 2 >= len && (at + 1 == len || buf[at + 1] == '\r')) {
			i = at; /* cannot decide yet: resume at this LF */
			break;
		}
		*scanned = at;
		if (buf[at + 1] == '\n')
			return at + 2;
		if (buf[at + 1] == '\r' && buf[at + 2] == '\n')
			return at + 3;
		i = at + 1;
	}
	*scanned = i;
	return 0;
}

enum http_err http_head_too_large(const char *buf, size_t len)
{
	size_t pos = skip_empty_lines(buf, len, 0);

	if (memchr(buf + pos, '\n', len - pos) == NULL)
		return HTTP_ERR_URI_TOO_LONG;
	return HTTP_ERR_HEADERS_TOO_LARGE;
}

/* ---- lines ---- */

struct http_cursor {
	const char *buf;
	size_t len;
	size_t pos; /* start of the next line */
};

/*
 * Take the line at cur->pos.  On success *end is the offset of its CR and
 * cur->pos moves past the LF.  -1 when there is no LF at all or the LF is
 * not preceded by CR (bare LF: RFC 9112 §2.2, we never accept it).  A CR
 * inside the line is left for the field checks, which reject all CTLs.
 */
static int cursor_line(struct http_cursor *cur, size_t *end)
{
	const char *lf = memchr(cur->buf + cur->pos, '\n', cur->len - cur->pos);
	size_t at;

	if (lf == NULL)
		return -1;
	at = (size_t)(lf - cur->buf);
	if (at == cur->pos || cur->buf[at - 1] != '\r')
		return -1;
	*end = at - 1;
	cur->pos = at + 1;
	return 0;
}

/* HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3) */
static enum http_err parse_version(const char *p, size_t n,
				   enum http_version *v)
{
	if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' || p[5] < '0' ||
	    p[5] > '9' || p[7] < '0' || p[7] > '9')
		return HTTP_ERR_BAD_REQUEST;
	/* a higher minor version is handled as the highest we speak:
	 * HTTP/1.2 is HTTP/1.1 (RFC 9110 §2.5) */
	if (p[5] == '1' && p[7] >= '1')
		*v = HTTP_11;
	else if (p[5] == '1' && p[7] == '0')
		*v = HTTP_10;
	else
		return HTTP_ERR_VERSION;
	return HTTP_OK;
}

/*
 * field-line = field-name ":" OWS field-value OWS (RFC 9112 §5).  No
 * whitespace before the colon, no obs-fold (a line starting with SP/HT
 * has an empty name), no CTL but HT in the value.
 */
static int parse_field_line(const char *buf, size_t start, size_t end,
			    struct http_header *h)
{
	size_t p = start, v, e;

	while (p < end && is_tchar(buf[p]))
		p++;
	if (p == start || p == end || buf[p] != ':')
		return -1;
	h->name = slice_make(start, p - start);
	v = p + 1;
	while (v < end && is_ows(buf[v]))
		v++;
	e = end;
	while (e > v && is_ows(buf[e - 1]))
		e--;
	if (!are_field_chars(buf + v, e - v))
		return -1;
	h->value = slice_make(v, e - v);
	return 0;
}

/* Field lines up to the empty line, which sets head_len. */
static enum http_err parse_fields(struct http_cursor *cur, struct http_msg *msg,
				  enum http_err bad, enum http_err too_many)
{
	for (;;) {
		size_t start = cur->pos, end;

		if (cursor_line(cur, &end) < 0)
			return bad;
		if (end == start) {
			msg->head_len = (uint32_t)cur->pos;
			return HTTP_OK;
		}
		if (msg->nheaders == HTTP_MAX_HEADERS)
			return too_many;
		if (parse_field_line(cur->buf, start, end,
				     &msg->headers[msg->nheaders]) < 0)
			return bad;
		msg->nheaders++;
	}
}

/* Everything but the headers array, which nheaders = 0 makes empty. */
static void msg_reset(struct http_msg *msg)
{
	memset(msg, 0, offsetof(struct http_msg, headers));
	memset(&msg->nheaders, 0,
	       sizeof(*msg) - offsetof(struct http_msg, nheaders));
	msg->host_idx = -1;
}

/* ---- header semantics shared by requests and responses ---- */

/*
 * Content-Length (RFC 9110 §8.6, RFC 9112 §6.3): 1*DIGIT, at most 2^62.
 * Repeated headers and lists are fine when every value is the same; they
 * collapse into one.  Returns -1 on anything else.
 */
static int parse_cl_value(const char *buf, struct http_slice s, uint64_t *n)
{
	uint64_t v = 0;

	if (s.len == 0)
		return -1;
	for (uint32_t i = 0; i < s.len; i++) {
		unsigned char c = buf[s.off + i];

		if (c < '0' || c > '9')
			return -1;
		if (v > (HTTP_CL_MAX - (c - '0')) / 10)
			return -1;
		v = v * 10 + (c - '0');
	}
	*n = v;
	return 0;
}

static int scan_content_length(const char *buf, struct http_msg *msg,
			       bool *has_cl, uint64_t *cl)
{
	*has_cl = false;
	msg->has_cl_repeated = false;
	for (unsigned i = 0; i < msg->nheaders; i++) {
		struct http_list l;
		struct http_slice e;
		uint64_t v;

		if (!http_slice_eq(buf, msg->headers[i].name, "Content-Length"))
			continue;
		list_init(&l, buf, msg->headers[i].value);
		while (list_next(&l, &e)) {
			if (parse_cl_value(buf, e, &v) < 0)
				return -1;
			if (*has_cl && v != *cl)
				return -1;
			if (*has_cl)
				msg->has_cl_repeated = true;
			*has_cl = true;
			*cl = v;
		}
	}
	return 0;
}

/* What the Transfer-Encoding headers of a message add up to. */
enum http_te {
	TE_NONE,	/* no Transfer-Encoding header */
	TE_CHUNKED,	/* exactly "chunked" */
	TE_CODED,	/* other codings, then chunked last */
	TE_NOT_CHUNKED, /* final coding is not chunked */
	TE_INVALID,	/* syntax error, or chunked twice */
};

struct http_te_scan {
	unsigned nchunked;
	unsigned nother;
	bool is_last_chunked;
	bool is_invalid;
};

/*
 * One transfer-coding element: token *( OWS ";" OWS transfer-parameter ).
 * chunked takes no parameters; those of other codings are not looked at:
 * requests using them get 501, responses pass them through untouched.
 */
static void te_element(const char *buf, struct http_slice e,
		       struct http_te_scan *ts)
{
	uint32_t n = 0, rest;

	while (n < e.len && is_tchar(buf[e.off + n]))
		n++;
	rest = n;
	while (rest < e.len && is_ows(buf[e.off + rest]))
		rest++;
	if (n == 0 || (rest < e.len && buf[e.off + rest] != ';')) {
		ts->is_invalid = true;
		return;
	}
	ts->is_last_chunked =
		n == 7 && strncasecmp(buf + e.off, "chunked", 7) == 0;
	if (!ts->is_last_chunked)
		ts->nother++;
	else if (n != e.len)
		ts->is_invalid = true; /* "chunked;x=y" */
	else
		ts->nchunked++;
}

/* Transfer-Encoding, all headers in order (RFC 9112 §6.1). */
static enum http_te scan_transfer_encoding(const char *buf,
					   const struct http_msg *msg)
{
	struct http_te_scan ts = {0};
	bool has_te = false;

	for (unsigned i = 0; i < msg->nheaders; i++) {
		struct http_list l;
		struct http_slice e;

		if (!http_slice_eq(buf, msg->headers[i].name,
				   "Transfer-Encoding"))
			continue;
		has_te = true;
		list_init(&l, buf, msg->headers[i].value);
		while (list_next(&l, &e))
			if (e.len > 0)
				te_element(buf, e, &ts);
	}
	if (!has_te)
		return TE_NONE;
	if (ts.is_invalid || ts.nchunked > 1)
		return TE_INVALID;
	if (!ts.is_last_chunked)
		return TE_NOT_CHUNKED;
	return ts.nother > 0 ? TE_CODED : TE_CHUNKED;
}

/* Connection options (RFC 9110 §7.6.1), and the Upgrade header. */
struct http_conn_opts {
	bool has_close;
	bool has_keepalive;
	bool has_upgrade; /* "upgrade" option and an Upgrade header */
	bool has_names;   /* an option that may name another header */
};

static int scan_connection(const char *buf, const struct http_msg *msg,
			   struct http_conn_opts *o)
{
	bool has_upgrade_opt = false;

	memset(o, 0, sizeof(*o));
	for (unsigned i = 0; i < msg->nheaders; i++) {
		struct http_list l;
		struct http_slice e;

		if (!http_slice_eq(buf, msg->headers[i].name, "Connection"))
			continue;
		list_init(&l, buf, msg->headers[i].value);
		while (list_next(&l, &e)) {
			if (e.len == 0)
				continue;
			if (!is_token(buf, e))
				return -1;
			if (http_slice_eq(buf, e, "close"))
				o->has_close = true;
			else if (http_slice_eq(buf, e, "keep-alive"))
				o->has_keepalive = true;
			else if (http_slice_eq(buf, e, "upgrade"))
				has_upgrade_opt = true;
			else
				o->has_names = true;
		}
	}
	o->has_upgrade =
		has_upgrade_opt && http_find_header(buf, msg, "Upgrade") >= 0;
	return 0;
}

/* RFC 9112 §9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive". */
static bool is_persistent(enum http_version v, const struct http_conn_opts *o)
{
	if (o->has_close)
		return false;
	return v == HTTP_11 || o->has_keepalive;
}

/* ---- requests ---- */

/*
 * request-line = method SP request-target SP HTTP-version (RFC 9112 §3),
 * single SPs.  *ver is the version's slice (its '/' serves as the path of
 * an absolute-form target without one).
 */
static enum http_err split_request_line(const char *buf, size_t start,
					size_t end, struct http_msg *msg,
					struct http_slice *ver)
{
	size_t p = start;

	while (p < end && is_tchar(buf[p]))
		p++;
	if (p == start || p == end || buf[p] != ' ')
		return HTTP_ERR_BAD_REQUEST;
	msg->method = slice_make(start, p - start);
	start = ++p;
	while (p < end && buf[p] != ' ') {
		if (!is_target_char(buf[p]))
			return HTTP_ERR_BAD_REQUEST;
		p++;
	}
	if (p == start || p == end)
		return HTTP_ERR_BAD_REQUEST;
	msg->target = slice_make(start, p - start);
	*ver = slice_make(p + 1, end - p - 1);
	return parse_version(buf + ver->off, ver->len, &msg->version);
}

static enum http_err parse_request_line(struct http_cursor *cur,
					struct http_msg *msg,
					struct http_slice *ver)
{
	const char *base = cur->buf + cur->pos;
	const char *lf = memchr(base, '\n', cur->len - cur->pos);
	size_t n = lf ? (size_t)(lf - base) : cur->len - cur->pos;
	size_t start = cur->pos, end;

	/* n counts the CR too, when there is one */
	if (n > HTTP_MAX_REQUEST_LINE + 1)
		return HTTP_ERR_URI_TOO_LONG;
	if (cursor_line(cur, &end) < 0)
		return HTTP_ERR_BAD_REQUEST;
	return split_request_line(cur->buf, start, end, msg, ver);
}

static bool authority_is_valid(const char *buf, struct http_slice s)
{
	for (uint32_t i = 0; i < s.len; i++)
		if (!is_authority_char(buf[s.off + i]))
			return false;
	return true;
}

/*
 * absolute-form (RFC 9112 §3.2.2): http or https, a non-empty authority
 * without userinfo (RFC 9110 §4.2.4), then the path.  A missing path is
 * "/", sliced out of the version.  "http://h?q" has no '/' to slice and is
 * refused.
 */
static enum http_err parse_absolute_form(const char *buf, struct http_msg *msg,
					 struct http_slice ver)
{
	struct http_slice t = msg->target;
	const char *p = buf + t.off;
	size_t a, q, end = (size_t)t.off + t.len;

	if (t.len > 7 && strncasecmp(p, "http://", 7) == 0)
		a = t.off + 7;
	else if (t.len > 8 && strncasecmp(p, "https://", 8) == 0)
		a = t.off + 8;
	else
		return HTTP_ERR_BAD_REQUEST;
	for (q = a; q < end && buf[q] != '/' && buf[q] != '?' && buf[q] != '#';
	     q++)
		;
	msg->authority = slice_make(a, q - a);
	if (msg->authority.len == 0 || !authority_is_valid(buf, msg->authority))
		return HTTP_ERR_BAD_REQUEST;
	if (q == end) {
		msg->path = slice_make(ver.off + 4, 1);
	} else if (buf[q] == '/') {
		msg->path = slice_make(q, end - q);
	} else if (buf[q] == '?') {
		/* "http://h?q": the origin-form is "/?q" (RFC 9112 §3.2.1) */
		msg->path = slice_make(q, end - q);
		msg->path_needs_slash = true;
	} else {
		return HTTP_ERR_BAD_REQUEST;
	}
	return HTTP_OK;
}

/*
 * The four request-target forms (RFC 9112 §3.2).  CONNECT (authority-form)
 * is not something we proxy: 501.
 */
static enum http_err parse_target(const char *buf, struct http_msg *msg,
				  struct http_slice ver)
{
	const char *t = buf + msg->target.off;

	if (slice_is(buf, msg->method, "CONNECT"))
		return HTTP_ERR_NOT_IMPLEMENTED;
	if (t[0] == '/') {
		msg->path = msg->target;
		return HTTP_OK;
	}
	if (msg->target.len == 1 && t[0] == '*') {
		if (!slice_is(buf, msg->method, "OPTIONS"))
			return HTTP_ERR_BAD_REQUEST;
		msg->path = msg->target;
		return HTTP_OK;
	}
	return parse_absolute_form(buf, msg, ver);
}

/*
 * Host (RFC 9110 §7.2): at most one, required on 1.1, a valid uri-host
 * [":" port] (empty is allowed), and equal to an absolute-form authority.
 */
static enum http_err check_host(const char *buf, struct http_msg *msg)
{
	struct http_slice v;

	for (unsigned i = 0; i < msg->nheaders; i++) {
		if (!http_slice_eq(buf, msg->headers[i].name, "Host"))
			continue;
		if (msg->host_idx >= 0)
			return HTTP_ERR_BAD_REQUEST;
		msg->host_idx = (int)i;
	}
	if (msg->host_idx < 0)
		return msg->version == HTTP_11 ? HTTP_ERR_BAD_REQUEST : HTTP_OK;
	v = msg->headers[msg->host_idx].value;
	if (!authority_is_valid(buf, v))
		return HTTP_ERR_BAD_REQUEST;
	if (msg->authority.len > 0 && !slice_eq_slice(buf, msg->authority, v))
		return HTTP_ERR_BAD_REQUEST;
	return HTTP_OK;
}

/* Request body framing (RFC 9112 §6.1, §6.3). */
static enum http_err request_framing(const char *buf, struct http_msg *msg)
{
	bool has_cl;
	enum http_te te;

	if (scan_content_length(buf, msg, &has_cl, &msg->content_length) < 0)
		return HTTP_ERR_BAD_REQUEST;
	te = scan_transfer_encoding(buf, msg);
	if (te == TE_NONE) {
		msg->body = has_cl ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
		return HTTP_OK;
	}
	msg->content_length = 0;
	if (has_cl || msg->version == HTTP_10)
		return HTTP_ERR_BAD_REQUEST;
	if (te == TE_INVALID || te == TE_NOT_CHUNKED)
		return HTTP_ERR_BAD_REQUEST;
	if (te == TE_CODED)
		return HTTP_ERR_NOT_IMPLEMENTED;
	msg->body = HTTP_BODY_CHUNKED;
	return HTTP_OK;
}

/* Expect: 100-continue (RFC 9110 §10.1.1), ignored in 1.0 requests. */
static bool has_expect_continue(const char *buf, const struct http_msg *msg)
{
	if (msg->version != HTTP_11)
		return false;
	for (unsigned i = 0; i < msg->nheaders; i++) {
		struct http_list l;
		struct http_slice e;

		if (!http_slice_eq(buf, msg->headers[i].name, "Expect"))
			continue;
		list_init(&l, buf, msg->headers[i].value);
		while (list_next(&l, &e))
			if (http_slice_eq(buf, e, "100-continue"))
				return true;
	}
	return false;
}

static enum http_err request_options(const char *buf, struct http_msg *msg)
{
	struct http_conn_opts o;

	if (scan_connection(buf, msg, &o) < 0)
		return HTTP_ERR_BAD_REQUEST;
	msg->is_keepalive = is_persistent(msg->version, &o);
	/* RFC 9110 §7.8: Upgrade in a 1.0 request is ignored */
	msg->has_upgrade = o.has_upgrade && msg->version == HTTP_11;
	msg->has_conn_names = o.has_names;
	msg->has_expect_continue = has_expect_continue(buf, msg);
	return HTTP_OK;
}

enum http_err http_parse_request(const char *buf, size_t len,
				 struct http_msg *msg)
{
	struct http_cursor cur = {buf, len < UINT32_MAX ? len : UINT32_MAX, 0};
	struct http_slice ver;
	enum http_err err;

	msg_reset(msg);
	cur.pos = skip_empty_lines(buf, cur.len, 0);
	err = parse_request_line(&cur, msg, &ver);
	if (err == HTTP_OK)
		err = parse_fields(&cur, msg, HTTP_ERR_BAD_REQUEST,
				   HTTP_ERR_HEADERS_TOO_LARGE);
	if (err == HTTP_OK)
		err = parse_target(buf, msg, ver);
	if (err == HTTP_OK)
		err = check_host(buf, msg);
	if (err == HTTP_OK)
		err = request_framing(buf, msg);
	if (err == HTTP_OK)
		err = request_options(buf, msg);
	return err;
}

/* ---- responses ---- */

/*
 * status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ] (RFC 9112 §4).
 * "HTTP/1.1 200" without the second SP is common enough to accept.
 */
static enum http_err parse_status_line(struct http_cursor *cur,
				       struct http_msg *msg)
{
	const char *buf = cur->buf;
	size_t s = cur->pos, end, p;

	if (cursor_line(cur, &end) < 0 || end - s < 12)
		return HTTP_ERR_BAD_GATEWAY;
	if (parse_version(buf + s, 8, &msg->version) != HTTP_OK ||
	    buf[s + 8] != ' ')
		return HTTP_ERR_BAD_GATEWAY;
	for (p = s + 9; p < s + 12; p++) {
		if (buf[p] < '0' || buf[p] > '9')
			return HTTP_ERR_BAD_GATEWAY;
		msg->status = msg->status * 10 + (unsigned)(buf[p] - '0');
	}
	if (msg->status < 100 || msg->status > 599)
		return HTTP_ERR_BAD_GATEWAY;
	if (p == end) {
		msg->reason = slice_make(p, 0);
		return HTTP_OK;
	}
	if (buf[p] != ' ')
		return HTTP_ERR_BAD_GATEWAY;
	msg->reason = slice_make(p + 1, end - p - 1);
	for (p++; p < end; p++)
		if (!is_field_char(buf[p]))
			return HTTP_ERR_BAD_GATEWAY;
	return HTTP_OK;
}

/* Does the response carry no body whatever its headers say? (§6.3 1.) */
static bool response_is_bodiless(const struct http_msg *msg,
				 bool is_head_request)
{
	return is_head_request || msg->status < 200 || msg->status == 204 ||
	       msg->status == 304;
}

/*
 * Response body framing (RFC 9112 §6.3).  Framing we cannot trust is 502;
 * a final coding other than chunked means "read until close".  Codings
 * before chunked are passed through untouched.
 */
static enum http_err response_framing(const char *buf, struct http_msg *msg,
				      bool is_head_request)
{
	bool has_cl;
	enum http_te te;

	if (scan_content_length(buf, msg, &has_cl, &msg->content_length) < 0)
		return HTTP_ERR_BAD_GATEWAY;
	te = scan_transfer_encoding(buf, msg);
	if (te != TE_NONE &&
	    (has_cl || msg->version == HTTP_10 || te == TE_INVALID))
		return HTTP_ERR_BAD_GATEWAY;
	msg->is_te_coded = te == TE_CODED || te == TE_NOT_CHUNKED;
	if (response_is_bodiless(msg, is_head_request))
		msg->body = HTTP_BODY_NONE;
	else if (te == TE_CHUNKED || te == TE_CODED)
		msg->body = HTTP_BODY_CHUNKED;
	else if (te == TE_NOT_CHUNKED)
		msg->body = HTTP_BODY_CLOSE;
	else if (has_cl)
		msg->body = HTTP_BODY_LENGTH;
	else
		msg->body = HTTP_BODY_CLOSE;
	if (msg->body != HTTP_BODY_LENGTH)
		msg->content_length = 0;
	return HTTP_OK;
}

enum http_err http_parse_response(const char *buf, size_t len,
				  bool is_head_request, struct http_msg *msg)
{
	struct http_cursor cur = {buf, len < UINT32_MAX ? len : UINT32_MAX, 0};
	struct http_conn_opts o;
	enum http_err err;

	msg_reset(msg);
	err = parse_status_line(&cur, msg);
	if (err == HTTP_OK)
		err = parse_fields(&cur, msg, HTTP_ERR_BAD_GATEWAY,
				   HTTP_ERR_BAD_GATEWAY);
	if (err == HTTP_OK)
		err = response_framing(buf, msg, is_head_request);
	if (err != HTTP_OK)
		return err;
	if (scan_connection(buf, msg, &o) < 0)
		return HTTP_ERR_BAD_GATEWAY;
	msg->is_keepalive =
		is_persistent(msg->version, &o) && msg->body != HTTP_BODY_CLOSE;
	msg->has_upgrade = o.has_upgrade;
	msg->has_conn_names = o.has_names;
	return HTTP_OK;
}

/* ---- hop-by-hop (RFC 9110 §7.6.1) ---- */

#define HOP(s) {s, sizeof(s) - 1}
static const struct {
	const char *name;
	uint32_t len;
} http_hop_names[] = {
	HOP("Connection"), HOP("Keep-Alive"), HOP("Proxy-Connection"),
	HOP("TE"), HOP("Transfer-Encoding"), HOP("Upgrade"),
};
#undef HOP

static bool is_named_by_connection(const char *buf, const struct http_msg *msg,
				   struct http_slice name)
{
	for (unsigned i = 0; i < msg->nheaders; i++) {
		struct http_list l;
		struct http_slice e;

		if (!http_slice_eq(buf, msg->headers[i].name, "Connection"))
			continue;
		list_init(&l, buf, msg->headers[i].value);
		while (list_next(&l, &e))
			if (slice_eq_slice(buf, e, name))
				return true;
	}
	return false;
}

bool http_is_hop_by_hop(const char *buf, const struct http_msg *msg,
			unsigned idx)
{
	struct http_slice name;
	size_t n = sizeof(http_hop_names) / sizeof(http_hop_names[0]);

	if (idx >= msg->nheaders)
		return false;
	name = msg->headers[idx].name;
	for (size_t i = 0; i < n; i++)
		if (name.len == http_hop_names[i].len &&
		    strncasecmp(buf + name.off, http_hop_names[i].name,
				name.len) == 0)
			return true;
	/* only close / keep-alive / upgrade: nothing else is named */
	if (!msg->has_conn_names)
		return false;
	/* "Connection: Content-Length" must not strip the framing */
	if (http_slice_eq(buf, name, "Content-Length") ||
	    http_slice_eq(buf, name, "Host"))
		return false;
	return is_named_by_connection(buf, msg, name);
}

/* ---- request hygiene (issue #12) ---- */

bool http_name_has_underscore(const char *buf, struct http_slice name)
{
	return memchr(buf + name.off, '_', name.len) != NULL;
}

/*
 * RFC 9110 §9.3.1 and §9.3.2: content in a GET or HEAD request "has no
 * generally defined semantics"; some servers read it, others take it for
 * the next request.  RFC 9110 §8.6 lets a recipient collapse identical
 * Content-Length values, but one that takes the first header only and
 * one that refuses the message see the stream differently after it.
 */
bool http_is_ambiguous(const char *buf, const struct http_msg *msg)
{
	bool has_body = msg->body == HTTP_BODY_CHUNKED ||
			(msg->body == HTTP_BODY_LENGTH && msg->content_length);

	if (msg->has_cl_repeated)
		return true;
	return has_body && (slice_is(buf, msg->method, "GET") ||
			    slice_is(buf, msg->method, "HEAD"));
}

/* ---- chunked bodies (RFC 9112 §7.1) ---- */

enum http_chunked_state {
	CH_SIZE,    /* chunk-size: 1*HEXDIG */
	CH_SIZE_WS, /* BWS between the size and ';' */
	CH_EXT,	    /* chunk-ext, up to CR */
	CH_SIZE_LF, /* LF ending the chunk-size line */
	CH_DATA,    /* chunk-data, `remaining` bytes */
	CH_DATA_CR, /* CRLF after the data */
	CH_DATA_LF,
	CH_TRAILER,	  /* start of a trailer line or of the final CRLF */
	CH_TRAILER_NAME,  /* field-name up to ':' */
	CH_TRAILER_VALUE, /* field-value up to CR */
	CH_TRAILER_LF,
	CH_END_LF, /* LF of the final CRLF */
	CH_DONE,
	CH_ERROR,
};

void http_chunked_init(struct http_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = CH_SIZE;
}

/*
 * Count a byte of the size line or of a trailer line (CRLF excluded)
 * against HTTP_MAX_CHUNK_LINE: extensions and trailers are streamed, but
 * an endless line is a client stalling us, not a body.
 */
static int ch_line_byte(struct http_chunked *c)
{
	return ++c->linelen > HTTP_MAX_CHUNK_LINE ? -1 : 0;
}

static int ch_size(struct http_chunked *c, unsigned char b)
{
	int d = http_hex_digit(b);

	if (d >= 0) {
		if (c->ndigits == HTTP_CHUNK_DIGITS_MAX)
			return -1;
		c->remaining = c->remaining << 4 | (uint64_t)d;
		c->ndigits++;
		return ch_line_byte(c);
	}
	if (c->ndigits == 0)
		return -1;
	if (b == '\r') {
		c->state = CH_SIZE_LF;
		return 0;
	}
	if (b == ';')
		c->state = CH_EXT;
	else if (is_ows(b))
		c->state = CH_SIZE_WS;
	else
		return -1;
	return ch_line_byte(c);
}

/* chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ) */
static int ch_size_ws(struct http_chunked *c, unsigned char b)
{
	if (b == ';')
		c->state = CH_EXT;
	else if (!is_ows(b))
		return -1;
	return ch_line_byte(c);
}

/* The extension itself is ignored; it only has to be free of CTLs. */
static int ch_ext(struct http_chunked *c, unsigned char b)
{
	if (b == '\r') {
		c->state = CH_SIZE_LF;
		return 0;
	}
	if (!is_field_char(b))
		return -1;
	return ch_line_byte(c);
}

static int ch_size_lf(struct http_chunked *c, unsigned char b)
{
	if (b != '\n')
		return -1;
	c->state = c->remaining == 0 ? CH_TRAILER : CH_DATA;
	c->linelen = 0;
	return 0;
}

/* A fixed byte, then the next state. */
static int ch_expect(struct http_chunked *c, unsigned char b, char want,
		     int next)
{
	if (b != (unsigned char)want)
		return -1;
	c->state = next;
	if (next == CH_SIZE) {
		c->ndigits = 0;
		c->linelen = 0;
	}
	return 0;
}

/* trailer-section = *( field-line CRLF ), then CRLF (RFC 9112 §7.1.2) */
static int ch_trailer(struct http_chunked *c, unsigned char b)
{
	if (b == '\r') {
		c->state = CH_END_LF;
		return 0;
	}
	if (!is_tchar(b)) /* obs-fold, bare LF, empty name */
		return -1;
	c->state = CH_TRAILER_NAME;
	c->linelen = 0;
	return ch_line_byte(c);
}

static int ch_trailer_name(struct http_chunked *c, unsigned char b)
{
	if (b == ':')
		c->state = CH_TRAILER_VALUE;
	else if (!is_tchar(b))
		return -1;
	return ch_line_byte(c);
}

static int ch_trailer_value(struct http_chunked *c, unsigned char b)
{
	if (b == '\r') {
		c->state = CH_TRAILER_LF;
		return 0;
	}
	if (!is_field_char(b))
		return -1;
	return ch_line_byte(c);
}

/* One byte of anything but chunk data.  Returns 0 or -1. */
static int ch_byte(struct http_chunked *c, unsigned char b)
{
	switch (c->state) {
	case CH_SIZE:
		return ch_size(c, b);
	case CH_SIZE_WS:
		return ch_size_ws(c, b);
	case CH_EXT:
		return ch_ext(c, b);
	case CH_SIZE_LF:
		return ch_size_lf(c, b);
	case CH_DATA_CR:
		return ch_expect(c, b, '\r', CH_DATA_LF);
	case CH_DATA_LF:
		return ch_expect(c, b, '\n', CH_SIZE);
	case CH_TRAILER:
		return ch_trailer(c, b);
	case CH_TRAILER_NAME:
		return ch_trailer_name(c, b);
	case CH_TRAILER_VALUE:
		return ch_trailer_value(c, b);
	case CH_TRAILER_LF:
		return ch_expect(c, b, '\n', CH_TRAILER);
	case CH_END_LF:
		return ch_expect(c, b, '\n', CH_DONE);
	default:
		return -1;
	}
}

/* Chunk data is skipped in bulk. */
static size_t ch_data(struct http_chunked *c, size_t avail)
{
	size_t n = c->remaining < avail ? (size_t)c->remaining : avail;

	c->remaining -= n;
	if (c->remaining == 0)
		c->state = CH_DATA_CR;
	return n;
}

ssize_t http_chunked_feed(struct http_chunked *c, const char *p, size_t len,
			  bool *done)
{
	size_t i = 0;

	*done = c->state == CH_DONE;
	if (c->state == CH_ERROR)
		return -1;
	while (i < len && c->state != CH_DONE) {
		if (c->state == CH_DATA) {
			i += ch_data(c, len - i);
			continue;
		}
		if (ch_byte(c, (unsigned char)p[i++]) < 0) {
			c->state = CH_ERROR;
			return -1;
		}
	}
	*done = c->state == CH_DONE;
	return (ssize_t)i;
}

ssize_t http_chunked_decode(struct http_chunked *c, char *p, size_t len,
			    size_t *data_len, bool *done)
{
	size_t i = 0, o = 0;

	*data_len = 0;
	*done = c->state == CH_DONE;
	if (c->state == CH_ERROR)
		return -1;
	while (i < len && c->state != CH_DONE) {
		if (c->state == CH_DATA) {
			size_t n = ch_data(c, len - i);

			memmove(p + o, p + i, n);
			o += n;
			i += n;
			continue;
		}
		if (ch_byte(c, (unsigned char)p[i++]) < 0) {
			c->state = CH_ERROR;
			return -1;
		}
	}
	*data_len = o;
	*done = c->state == CH_DONE;
	return (ssize_t)i;
}
