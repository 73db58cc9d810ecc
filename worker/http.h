/*
 * http.h: HTTP/1.1 message-head parser and chunked-body scanner (RFC 9112).
 *
 * The parser works on a complete head: the caller accumulates bytes until
 * http_head_end() finds the blank line (within its size limit), then calls
 * http_parse_request() / http_parse_response() once.  Parsed strings are
 * (offset, length) slices into the caller's buffer; nothing is allocated.
 *
 * Chunked bodies are forwarded as they arrive; struct http_chunked tracks
 * where the body ends and rejects malformed framing without copying.
 */
#ifndef PORTCULLIS_HTTP_H
#define PORTCULLIS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#define HTTP_MAX_HEADERS 100
#define HTTP_MAX_REQUEST_LINE 8192  /* longer request lines get 414 */
#define HTTP_MAX_CHUNK_LINE 8192    /* chunk-size line / trailer line limit */

struct http_slice {
	uint32_t off; /* offset into the head buffer */
	uint32_t len;
};

struct http_header {
	struct http_slice name;
	struct http_slice value; /* leading/trailing OWS stripped */
};

enum http_version {
	HTTP_10 = 10,
	HTTP_11 = 11,
};

/* Framing of a body, after the head is parsed. */
enum http_body {
	HTTP_BODY_NONE,     /* no body at all */
	HTTP_BODY_LENGTH,   /* Content-Length bytes */
	HTTP_BODY_CHUNKED,  /* Transfer-Encoding: chunked */
	HTTP_BODY_CLOSE,    /* response delimited by connection close */
};

struct http_msg {
	/* request line */
	struct http_slice method;
	struct http_slice target;   /* as sent */
	struct http_slice path;     /* origin-form part of target: "/p?q" ("*" for OPTIONS *) */
	struct http_slice authority;/* absolute-form authority, len 0 otherwise */
	bool path_needs_slash;      /* path is "?q" of "http://h?q": prepend "/" */
	/* status line */
	unsigned status;
	struct http_slice reason;

	enum http_version version;
	struct http_header headers[HTTP_MAX_HEADERS];
	unsigned nheaders;
	uint32_t head_len;      /* bytes up to and including the blank line */

	/* derived from the headers */
	enum http_body body;
	uint64_t content_length;       /* valid when body == HTTP_BODY_LENGTH */
	int host_idx;                  /* index into headers, -1 if none */
	bool is_keepalive;             /* persistent after this message */
	bool has_expect_continue;      /* Expect: 100-continue */
	bool has_upgrade;              /* Connection: upgrade + Upgrade */
	bool has_conn_names;           /* Connection names other headers */
	bool is_te_coded;              /* response: a coding besides chunked */
	bool has_cl_repeated;          /* Content-Length given more than once
					  ("5, 5" or two headers), all equal
					  and collapsed (RFC 9110 §8.6) */
};

/* Outcome of a parse: 0 ok, or the HTTP status the client should get. */
enum http_err {
	HTTP_OK = 0,
	HTTP_ERR_BAD_REQUEST = 400,
	HTTP_ERR_URI_TOO_LONG = 414,
	HTTP_ERR_HEADERS_TOO_LARGE = 431,
	HTTP_ERR_NOT_IMPLEMENTED = 501,
	HTTP_ERR_VERSION = 505,
	HTTP_ERR_BAD_GATEWAY = 502, /* response parsing only */
};

/*
 * Look for the end of a head ("\r\n\r\n") in buf[0..len).  `scanned` is
 * where the previous call stopped (start at 0) and is updated so a slowly
 * arriving head is scanned once overall.  Returns the head length
 * (including the blank line), 0 if more bytes are needed.
 * A head that ends in a bare-LF blank line ("\n\n", "\n\r\n") is also
 * delimited, so that the parser can reject it at once with 400/502 instead
 * of the peer waiting for a timeout; it never parses as valid.  Empty
 * lines before a request-line are skipped, as http_parse_request() does.
 */
size_t http_head_end(const char *buf, size_t len, size_t *scanned);

/*
 * For a request head that outgrew the caller's size limit before
 * http_head_end() found its end: HTTP_ERR_URI_TOO_LONG when the request
 * line itself is not complete yet, else HTTP_ERR_HEADERS_TOO_LARGE.
 */
enum http_err http_head_too_large(const char *buf, size_t len);

/*
 * Parse a complete request head buf[0..len).  Fills msg and returns
 * HTTP_OK, or the 4xx/5xx status to answer with (then close).
 */
enum http_err http_parse_request(const char *buf, size_t len,
				 struct http_msg *msg);

/*
 * Parse a complete response head.  is_head_request / the status decide
 * whether a body follows (RFC 9112 §6.3).  Returns HTTP_OK or
 * HTTP_ERR_BAD_GATEWAY.
 */
enum http_err http_parse_response(const char *buf, size_t len,
				  bool is_head_request, struct http_msg *msg);

/*
 * Case-insensitive compare of a slice with a NUL-terminated token.  Inline
 * so that strlen() of a literal folds away and a length mismatch (the
 * common case) costs one comparison.
 */
static inline bool http_slice_eq(const char *buf, struct http_slice s,
				 const char *tok)
{
	size_t n = strlen(tok);

	return s.len == n && strncasecmp(buf + s.off, tok, n) == 0;
}

/* Does the comma-separated list value contain tok (case-insensitive)? */
bool http_list_has(const char *buf, struct http_slice value, const char *tok);

/* Index of the first header named `name` (case-insensitive) or -1. */
int http_find_header(const char *buf, const struct http_msg *msg,
		     const char *name);

/*
 * Is a header one of the hop-by-hop set (Connection, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade), or named by
 * a Connection header?  Host and Content-Length are never hop-by-hop, even
 * when Connection names them: dropping them would change routing/framing.
 */
bool http_is_hop_by_hop(const char *buf, const struct http_msg *msg,
			unsigned idx);

/* Does a header name contain '_'?  (underscores_in_headers) */
bool http_name_has_underscore(const char *buf, struct http_slice name);

/* The value of a hex digit (either case), or -1. */
int http_hex_digit(unsigned char c);

/*
 * Is a parsed request legal but read differently by some servers: GET or
 * HEAD with a body (Content-Length > 0 or chunked), or a Content-Length
 * repeated with the same value?  (ambiguous_requests: close | reject)
 */
bool http_is_ambiguous(const char *buf, const struct http_msg *msg);

/* Incremental chunked-body scanner. */
struct http_chunked {
	int state;           /* private */
	uint64_t remaining;  /* bytes of chunk data left */
	unsigned ndigits;    /* private */
	unsigned linelen;    /* private: bytes of the current trailer line */
};

void http_chunked_init(struct http_chunked *c);

/*
 * Feed len bytes of a chunked body.  Returns the number of bytes that
 * belong to the body (always all of them until the end is found), and
 * sets *done when the last chunk and trailers are complete; the bytes
 * after that belong to the next message.  Returns -1 on bad framing.
 */
ssize_t http_chunked_feed(struct http_chunked *c, const char *p, size_t len,
			  bool *done);

/*
 * The same, decoding in place: the chunk data among the len bytes at p is
 * moved to the front of p and its length stored in *data_len (framing,
 * extensions and trailers are dropped).  Returns the bytes taken from p
 * (the rest, after *done, is the next message's), or -1 on bad framing.
 * For an HTTP/1.0 client, which cannot take chunked (RFC 9112 §7.1).
 */
ssize_t http_chunked_decode(struct http_chunked *c, char *p, size_t len,
			    size_t *data_len, bool *done);

#endif
