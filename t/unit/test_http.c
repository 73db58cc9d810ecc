/*
 * test_http.c: the HTTP/1.1 head parser and chunked scanner (worker/http.c).
 *
 * Every test names the section of RFC 9112 (message syntax) or RFC 9110
 * (semantics) it checks.  Messages are string literals measured with
 * sizeof, so they may hold NULs.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/http.h"

#define REQ(lit, m)	   http_parse_request(lit, sizeof(lit) - 1, m)
#define RESP(lit, head, m) http_parse_response(lit, sizeof(lit) - 1, head, m)

static struct http_msg msg;

/* Exact (case-sensitive) compare of a slice with a string. */
static bool slice_is(const char *buf, struct http_slice s, const char *want)
{
	return s.len == strlen(want) && memcmp(buf + s.off, want, s.len) == 0;
}

static const char *hdr_value(const char *buf, const char *name)
{
	static char out[256];
	int i = http_find_header(buf, &msg, name);

	if (i < 0)
		return NULL;
	snprintf(out, sizeof(out), "%.*s", (int)msg.headers[i].value.len,
		 buf + msg.headers[i].value.off);
	return out;
}

/* ------------------------------------------------------------------ */
/* Valid requests                                                      */
/* ------------------------------------------------------------------ */

/* RFC 9112 §3, §3.2.1 origin-form; RFC 9110 §7.2 Host */
START_TEST(rfc9112_3_get_origin_form)
{
	static const char r[] = "GET /index.html?q=1 HTTP/1.1\r\n"
				"Host: example.com\r\n"
				"User-Agent: t/1\r\n"
				"\r\n";

	ck_assert_int_eq(REQ(r, &msg), HTTP_OK);
	ck_assert(slice_is(r, msg.method, "GET"));
	ck_assert(slice_is(r, msg.target, "/index.html?q=1"));
	ck_assert(slice_is(r, msg.path, "/index.html?q=1"));
	ck_assert_uint_eq(msg.authority.len, 0);
	ck_assert_int_eq(msg.version, HTTP_11);
	ck_assert_uint_eq(msg.nheaders, 2);
	ck_assert_int_eq(msg.host_idx, 0);
	ck_assert(slice_is(r, msg.headers[1].name, "User-Agent"));
	ck_assert(slice_is(r, msg.headers[1].value, "t/1"));
	ck_assert_uint_eq(msg.head_len, sizeof(r) - 1);
	ck_assert_int_eq(msg.body, HTTP_BODY_NONE);
	ck_assert(msg.is_keepalive);
	ck_assert(!msg.has_expect_continue);
	ck_assert(!msg.has_upgrade);
}
END_TEST

/* RFC 9112 §6.2 Content-Length; RFC 9110 §10.1.1 Expect */
START_TEST(rfc9112_6_2_post_content_length)
{
	static const char r[] = "POST /form HTTP/1.1\r\n"
				"Host: a\r\n"
				"Content-Length: 5\r\n"
				"Expect: 100-Continue\r\n"
				"\r\nhello";

	ck_assert_int_eq(REQ(r, &msg), HTTP_OK);
	ck_assert_int_eq(msg.body, HTTP_BODY_LENGTH);
	ck_assert_uint_eq(msg.content_length, 5);
	ck_assert(msg.has_expect_continue);
	ck_assert_uint_eq(msg.head_len, sizeof(r) - 1 - 5);
}
END_TEST

/* RFC 9112 §6.1 Transfer-Encoding: chunked (case-insensitive coding) */
START_TEST(rfc9112_6_1_post_chunked)
{
	static const char r[] = "POST /up HTTP/1.1\r\n"
				"Host: a\r\n"
				"Transfer-Encoding: Chunked\r\n"
				"\r\n";

	ck_assert_int_eq(REQ(r, &msg), HTTP_OK);
	ck_assert_int_eq(msg.body, HTTP_BODY_CHUNKED);
	ck_assert_uint_eq(msg.content_length, 0);
}
END_TEST

/* RFC 9110 §9.3.2 HEAD */
START_TEST(rfc9110_9_3_2_head)
{
	static const char r[] = "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n";

	ck_assert_int_eq(REQ(r, &msg), HTTP_OK);
	ck_assert(slice_is(r, msg.method, "HEAD"));
	ck_assert_int_eq(msg.body, HTTP_BODY_NONE);
}
END_TEST

/* RFC 9112 §2.3, §9.3: HTTP/1.0 needs no Host and is not persistent */
START_TEST(rfc9112_9_3_http10)
{
	static const char r[] = "GET / HTTP/1.0\r\n\r\n";
	static const char ka[] =
		"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";

	ck_assert_int_eq(REQ(r, &msg), HTTP_OK);
	ck_assert_int_eq(msg.version, HTTP_10);
	ck_assert_int_eq(msg.host_idx, -1);
	ck_assert(!msg.is_keepalive);
	ck_assert_int_eq(REQ(ka, &msg), HTTP_OK);
	ck_assert(msg.is_keepalive);
}
END_TEST

/* RFC 9112 §3.2.2 absolute-form; authority and Host compare ignoring case */
START_TEST(rfc9112_3_2_2_absolute_form)
{
	static const char r[] =
		"GET http://Example.com:8080/a/b?c=d HTTP/1.1\r\n"
		"Host: example.COM:8080\r\n\r\n";
	static const char s[] = "GET HTTPS://example.com HTTP/1.1\r\n"
				"Host: example.com\r\n\r\n";
	static const char q[] = "GET http://a/?x HTTP/1.0\r\n\r\n";

	ck_assert_int_eq(REQ(r, &msg), HTTP_OK);
	ck_assert(slice_is(r, msg.authority, "Example.com:8080"));
	ck_assert(slice_is(r, msg.path, "/a/b?c=d"));
	ck_assert(slice_is(r, msg.target, "http://Example.com:8080/a/b?c=d"));
	/* no path: "/" */
	ck_assert_int_eq(REQ(s, &msg), HTTP_OK);
	ck_assert(slice_is(s, msg.authority, "example.com"));
	ck_assert(slice_is(s, msg.path, "/"));
	/* HTTP/1.0 may omit Host */
	ck_assert_int_eq(REQ(q, &msg), HTTP_OK);
	ck_assert(slice_is(q, msg.path, "/?x"));
}
END_TEST

/* RFC 9112 §3.2.4 asterisk-form */
START_TEST(rfc9112_3_2_4_asterisk_form)
{
	static const char r[] = "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char g[] = "GET * HTTP/1.1\r\nHost: a\r\n\r\n";

	ck_assert_int_eq(REQ(r, &msg), HTTP_OK);
	ck_assert(slice_is(r, msg.path, "*"));
	ck_assert_int_eq(REQ(g, &msg), HTTP_ERR_BAD_REQUEST);
}
END_TEST

/* RFC 9112 §3.2.3 authority-form: only CONNECT, which we do not do */
START_TEST(rfc9112_3_2_3_authority_form)
{
	ck_assert_int_eq(
		REQ("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", &msg),
		HTTP_ERR_NOT_IMPLEMENTED);
	ck_assert_int_eq(REQ("GET a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
}
END_TEST

/* RFC 9112 §9.3.2 pipelining: head_len stops at the first blank line */
START_TEST(rfc9112_9_3_2_pipelined)
{
	static const char r[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
				"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
	size_t scanned = 0;

	ck_assert_int_eq(REQ(r, &msg), HTTP_OK);
	ck_assert_uint_eq(msg.head_len, 28);
	ck_assert(slice_is(r, msg.path, "/1"));
	ck_assert_uint_eq(http_head_end(r, sizeof(r) - 1, &scanned), 28);
	ck_assert_int_eq(http_parse_request(r + 28, sizeof(r) - 1 - 28, &msg),
			 HTTP_OK);
	ck_assert(slice_is(r + 28, msg.path, "/2"));
}
END_TEST

/* RFC 9112 §2.2: empty lines before the request-line are ignored */
START_TEST(rfc9112_2_2_leading_crlf)
{
	static const char r[] = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";

	size_t scanned = 0;

	ck_assert_int_eq(REQ(r, &msg), HTTP_OK);
	ck_assert_uint_eq(msg.head_len, sizeof(r) - 1);
	ck_assert_int_eq(REQ("\r\n", &msg), HTTP_ERR_BAD_REQUEST);
	/*
	 * Fuzz regression (fuzz_request): http_head_end took the leading
	 * "\r\n\r\n" for the end of the head, the parser skipped it.
	 */
	ck_assert_uint_eq(http_head_end(r, sizeof(r) - 1, &scanned),
			  sizeof(r) - 1);
	for (size_t k = 1; k <= 5; k++) {
		scanned = 0;
		ck_assert_uint_eq(http_head_end(r, k, &scanned), 0);
		ck_assert_uint_eq(http_head_end(r, sizeof(r) - 1, &scanned),
				  sizeof(r) - 1);
	}
}
END_TEST

/* RFC 9112 §5: OWS around the value is not part of it */
START_TEST(rfc9112_5_field_ows)
{
	static const char r[] = "GET / HTTP/1.1\r\nHost:a\r\n"
				"X-A: \t a \t b \t\r\n"
				"X-Empty:\r\n"
				"X-Blank:   \r\n"
				"X-Utf8: caf\xc3\xa9\r\n\r\n";

	ck_assert_int_eq(REQ(r, &msg), HTTP_OK);
	ck_assert_str_eq(hdr_value(r, "host"), "a");
	ck_assert_str_eq(hdr_value(r, "x-a"), "a \t b");
	ck_assert_str_eq(hdr_value(r, "X-EMPTY"), "");
	ck_assert_str_eq(hdr_value(r, "x-blank"), "");
	ck_assert_str_eq(hdr_value(r, "x-utf8"), "caf\xc3\xa9");
}
END_TEST

/* Build "GET / HTTP/1.1\r\nHost: a\r\n" + n "X-N: v" lines + CRLF. */
static size_t many_headers(char *buf, size_t size, unsigned n)
{
	size_t len =
		(size_t)snprintf(buf, size, "GET / HTTP/1.1\r\nHost: a\r\n");

	for (unsigned i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, size - len, "X-%u: v\r\n",
					i);
	len += (size_t)snprintf(buf + len, size - len, "\r\n");
	return len;
}

/* RFC 6585 §5 431: HTTP_MAX_HEADERS is the limit */
START_TEST(rfc6585_5_too_many_headers)
{
	static char buf[8192];
	size_t len;

	len = many_headers(buf, sizeof(buf), HTTP_MAX_HEADERS - 1);
	ck_assert_int_eq(http_parse_request(buf, len, &msg), HTTP_OK);
	ck_assert_uint_eq(msg.nheaders, HTTP_MAX_HEADERS);
	len = many_headers(buf, sizeof(buf), HTTP_MAX_HEADERS);
	ck_assert_int_eq(http_parse_request(buf, len, &msg),
			 HTTP_ERR_HEADERS_TOO_LARGE);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Request-line rejections                                             */
/* ------------------------------------------------------------------ */

/* RFC 9112 §3: method = token, single SP separators */
START_TEST(rfc9112_3_request_line_syntax)
{
	static const char *const bad[] = {
		" GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
		"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /\tHTTP/1.1\r\nHost: a\r\n\r\n",
		"GE(T / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET\r\nHost: a\r\n\r\n",
		"GET /\r\nHost: a\r\n\r\n", /* HTTP/0.9 */
		"GET / \r\nHost: a\r\n\r\n",
		"/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", /* CTL in target */
		"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\rX\r\nHost: a\r\n\r\n", /* bare CR */
		"GET / HTTP/1.1\nHost: a\r\n\r\n",	/* bare LF */
		"",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(http_parse_request(bad[i], strlen(bad[i]),
						 &msg) == HTTP_ERR_BAD_REQUEST,
			      "case %zu", i);
}
END_TEST

/* RFC 9112 §2.3 HTTP-version: other versions 505, garbage 400 */
START_TEST(rfc9112_2_3_version)
{
	/* RFC 9110 §2.5: a higher minor version is handled as HTTP/1.1 */
	ck_assert_int_eq(REQ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", &msg),
			 HTTP_OK);
	ck_assert_int_eq(msg.version, HTTP_11);
	ck_assert_int_eq(REQ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", &msg),
			 HTTP_ERR_VERSION);
	ck_assert_int_eq(REQ("GET / HTTP/0.9\r\nHost: a\r\n\r\n", &msg),
			 HTTP_ERR_VERSION);
	ck_assert_int_eq(REQ("GET / http/1.1\r\nHost: a\r\n\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(REQ("GET / HTTP/1\r\nHost: a\r\n\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(REQ("GET / HTTP/11.1\r\nHost: a\r\n\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(REQ("GET / HTTP/1.x\r\nHost: a\r\n\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(REQ("GET / HTTX/1.1\r\nHost: a\r\n\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
}
END_TEST

/* RFC 9112 §3.2.2, RFC 9110 §4.2: absolute-form rejections */
START_TEST(rfc9112_3_2_2_absolute_form_bad)
{
	ck_assert_int_eq(REQ("GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(REQ("GET http:// HTTP/1.1\r\nHost: a\r\n\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(REQ("GET http:///x HTTP/1.1\r\nHost: \r\n\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
	/* RFC 9110 §4.2.4: userinfo is an error */
	ck_assert_int_eq(
		REQ("GET http://u:p@a/ HTTP/1.1\r\nHost: a\r\n\r\n", &msg),
		HTTP_ERR_BAD_REQUEST);
	/* RFC 9112 §3.2.1: a query without a path is "/?x" in origin-form */
	{
		static const char q[] = "GET http://a?x HTTP/1.1\r\nHost: a\r\n\r\n";

		ck_assert_int_eq(REQ(q, &msg), HTTP_OK);
		ck_assert(msg.path_needs_slash);
		ck_assert(http_slice_eq(q, msg.path, "?x"));
	}
	/* RFC 9110 §7.2: authority and Host must agree */
	ck_assert_int_eq(REQ("GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(
		REQ("GET http://a:81/ HTTP/1.1\r\nHost: a\r\n\r\n", &msg),
		HTTP_ERR_BAD_REQUEST);
	/* 1.1 still needs Host with absolute-form */
	ck_assert_int_eq(REQ("GET http://a/ HTTP/1.1\r\n\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(REQ("GET x HTTP/1.1\r\nHost: a\r\n\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
}
END_TEST

/* Request-line of n bytes (without CRLF), then a valid rest. */
static size_t long_request_line(char *buf, size_t n)
{
	size_t len = 0;

	memcpy(buf, "GET /", 5);
	len = 5;
	memset(buf + len, 'a', n - 5 - 9);
	len = n - 9;
	memcpy(buf + len, " HTTP/1.1\r\nHost: a\r\n\r\n", 22);
	return len + 22;
}

/* RFC 9112 §3: request-line longer than HTTP_MAX_REQUEST_LINE gets 414 */
START_TEST(rfc9112_3_uri_too_long)
{
	static char buf[HTTP_MAX_REQUEST_LINE + 64];
	size_t len;

	len = long_request_line(buf, HTTP_MAX_REQUEST_LINE);
	ck_assert_int_eq(http_parse_request(buf, len, &msg), HTTP_OK);
	ck_assert_uint_eq(msg.target.len, HTTP_MAX_REQUEST_LINE - 13);
	len = long_request_line(buf, HTTP_MAX_REQUEST_LINE + 1);
	ck_assert_int_eq(http_parse_request(buf, len, &msg),
			 HTTP_ERR_URI_TOO_LONG);
	/* incomplete line: still 414 once it is too long */
	ck_assert_int_eq(
		http_parse_request(buf, HTTP_MAX_REQUEST_LINE + 5, &msg),
		HTTP_ERR_URI_TOO_LONG);
}
END_TEST

/* RFC 9112 §3 / RFC 6585 §5: what to answer when a head outgrows the limit */
START_TEST(rfc9112_3_head_too_large)
{
	static const char line[] = "GET /aaaaaaaaaaaaaaaa";
	static const char hdrs[] = "GET / HTTP/1.1\r\nX: aaaaaaaaaaaa";

	ck_assert_int_eq(http_head_too_large(line, sizeof(line) - 1),
			 HTTP_ERR_URI_TOO_LONG);
	ck_assert_int_eq(http_head_too_large(hdrs, sizeof(hdrs) - 1),
			 HTTP_ERR_HEADERS_TOO_LARGE);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Field-line rejections                                               */
/* ------------------------------------------------------------------ */

/* RFC 9112 §5.1: no whitespace between field name and colon */
START_TEST(rfc9112_5_1_space_before_colon)
{
	ck_assert_int_eq(REQ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(
		REQ("GET / HTTP/1.1\r\nHost: a\r\nX\t: b\r\n\r\n", &msg),
		HTTP_ERR_BAD_REQUEST);
}
END_TEST

/* RFC 9112 §5.2: obs-fold is rejected */
START_TEST(rfc9112_5_2_obs_fold)
{
	ck_assert_int_eq(
		REQ("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", &msg),
		HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(
		REQ("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n", &msg),
		HTTP_ERR_BAD_REQUEST);
	/* whitespace before the first field line (RFC 9112 §2.2) */
	ck_assert_int_eq(REQ("GET / HTTP/1.1\r\n Host: a\r\n\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
}
END_TEST

/* A message literal with its length, NULs included. */
struct lit {
	const char *p;
	size_t len;
};
/* clang-format off */
#define LIT(s) {s, sizeof(s) - 1}
/* clang-format on */

/* RFC 9112 §5, RFC 9110 §5.5: field names are tokens, values no CTLs */
START_TEST(rfc9110_5_5_field_value_ctl)
{
	static const struct lit bad[] = {
		LIT("GET / HTTP/1.1\r\nHost: a\r\nX: a\x00"
		    "b\r\n\r\n"),
		/* bare CR */
		LIT("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"),
		LIT("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\r\n\r\n"),
		/* CTLs */
		LIT("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n"),
		LIT("GET / HTTP/1.1\r\nHost: a\r\nX: a\x1f\r\n\r\n"),
		LIT("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n"),
		LIT("GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n"),
		/* field-name: no colon, empty, not a token */
		LIT("GET / HTTP/1.1\r\nHost: a\r\nX a\r\n\r\n"),
		LIT("GET / HTTP/1.1\r\nHost: a\r\n: a\r\n\r\n"),
		LIT("GET / HTTP/1.1\r\nHost: a\r\nX(: a\r\n\r\n"),
		LIT("GET / HTTP/1.1\r\nHost: a\r\nX\x00: a\r\n\r\n"),
	};

	static const char tab[] =
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\r\n\r\n";

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(http_parse_request(bad[i].p, bad[i].len, &msg) ==
				      HTTP_ERR_BAD_REQUEST,
			      "case %zu", i);
	ck_assert_int_eq(REQ(tab, &msg), HTTP_OK);
}
END_TEST

/* RFC 9112 §2.2: every line ends with CRLF; a bare LF is an error */
START_TEST(rfc9112_2_2_bare_lf)
{
	ck_assert_int_eq(REQ("GET / HTTP/1.1\r\nHost: a\n\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(REQ("GET / HTTP/1.1\r\nHost: a\r\n\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(REQ("GET / HTTP/1.1\nHost: a\n\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(REQ("GET / HTTP/1.1\r\nX: a\nHost: a\r\n\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
	/* no blank line at all: not a complete head */
	ck_assert_int_eq(REQ("GET / HTTP/1.1\r\nHost: a\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
}
END_TEST

/* RFC 9110 §7.2: exactly one valid Host on HTTP/1.1 */
START_TEST(rfc9110_7_2_host)
{
	ck_assert_int_eq(REQ("GET / HTTP/1.1\r\n\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(
		REQ("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", &msg),
		HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(
		REQ("GET / HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n", &msg),
		HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(REQ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(REQ("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(REQ("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", &msg),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(REQ("GET / HTTP/1.1\r\nHost: a,b\r\n\r\n", &msg),
			 HTTP_OK); /* sub-delims are reg-name chars */
	ck_assert_int_eq(
		REQ("GET / HTTP/1.1\r\nX: 1\r\nhOsT: [::1]:80\r\n\r\n", &msg),
		HTTP_OK);
	ck_assert_int_eq(msg.host_idx, 1);
	/* empty Host is valid for an origin-form target */
	ck_assert_int_eq(REQ("GET / HTTP/1.1\r\nHost:\r\n\r\n", &msg), HTTP_OK);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Framing                                                             */
/* ------------------------------------------------------------------ */

/* RFC 9112 §6.1: Content-Length with Transfer-Encoding is smuggling */
START_TEST(rfc9112_6_1_cl_and_te)
{
	ck_assert_int_eq(
		REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n",
		    &msg),
		HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(
		REQ("POST / HTTP/1.1\r\nHost: a\r\n"
		    "Transfer-Encoding: chunked\r\ncontent-length: 0\r\n\r\n",
		    &msg),
		HTTP_ERR_BAD_REQUEST);
}
END_TEST

static enum http_err req_cl(const char *cl)
{
	static char buf[512];
	int n = snprintf(buf, sizeof(buf),
			 "POST / HTTP/1.1\r\nHost: a\r\n%s\r\n\r\n", cl);

	return http_parse_request(buf, (size_t)n, &msg);
}

/* RFC 9110 §8.6, RFC 9112 §6.3: Content-Length = 1*DIGIT */
START_TEST(rfc9110_8_6_content_length_invalid)
{
	static const char *const bad[] = {
		"Content-Length: -1",
		"Content-Length: +5",
		"Content-Length: 5 5",
		"Content-Length:",
		"Content-Length: 0x5",
		"Content-Length: 1.0",
		"Content-Length: 5,",
		"Content-Length: ,5",
		"Content-Length: 5, 6",
		"Content-Length: 5\r\nContent-Length: 6",
		"Content-Length: 18446744073709551616", /* 2^64 */
		"Content-Length: 99999999999999999999999999",
		"Content-Length: 4611686018427387905", /* 2^62 + 1 */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(req_cl(bad[i]) == HTTP_ERR_BAD_REQUEST, "%s",
			      bad[i]);
}
END_TEST

/* RFC 9110 §8.6: a list of identical values may be collapsed */
START_TEST(rfc9110_8_6_content_length_collapse)
{
	ck_assert_int_eq(req_cl("Content-Length: 5, 5"), HTTP_OK);
	ck_assert_uint_eq(msg.content_length, 5);
	ck_assert_int_eq(req_cl("Content-Length: 7\r\ncontent-length: 7"),
			 HTTP_OK);
	ck_assert_uint_eq(msg.content_length, 7);
	ck_assert_int_eq(req_cl("Content-Length: 05\r\nContent-Length: 5"),
			 HTTP_OK);
	ck_assert_uint_eq(msg.content_length, 5);
	ck_assert_int_eq(req_cl("Content-Length: 0"), HTTP_OK);
	ck_assert_int_eq(msg.body, HTTP_BODY_LENGTH);
	ck_assert_uint_eq(msg.content_length, 0);
	ck_assert_int_eq(req_cl("Content-Length: 4611686018427387904"),
			 HTTP_OK);
	ck_assert_uint_eq(msg.content_length, (uint64_t)1 << 62);
}
END_TEST

/* RFC 9112 §6.1: Transfer-Encoding rules for requests */
START_TEST(rfc9112_6_1_transfer_encoding)
{
	/* chunked must be last */
	ck_assert_int_eq(req_cl("Transfer-Encoding: gzip"),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(req_cl("Transfer-Encoding: chunked, gzip"),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(req_cl("Transfer-Encoding: chunked\r\n"
				"Transfer-Encoding: gzip"),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(req_cl("Transfer-Encoding:"), HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(req_cl("Transfer-Encoding: identity"),
			 HTTP_ERR_BAD_REQUEST);
	/* chunked only once */
	ck_assert_int_eq(req_cl("Transfer-Encoding: chunked, chunked"),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(req_cl("Transfer-Encoding: chunked\r\n"
				"Transfer-Encoding: chunked"),
			 HTTP_ERR_BAD_REQUEST);
	/* syntax */
	ck_assert_int_eq(req_cl("Transfer-Encoding: chunked;a=b"),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(req_cl("Transfer-Encoding: chun ked"),
			 HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(req_cl("Transfer-Encoding: \"chunked\""),
			 HTTP_ERR_BAD_REQUEST);
	/* other codings before chunked: not implemented */
	ck_assert_int_eq(req_cl("Transfer-Encoding: gzip, chunked"),
			 HTTP_ERR_NOT_IMPLEMENTED);
	ck_assert_int_eq(req_cl("Transfer-Encoding: x-foo;q=1, chunked"),
			 HTTP_ERR_NOT_IMPLEMENTED);
	ck_assert_int_eq(req_cl("Transfer-Encoding: gzip\r\n"
				"Transfer-Encoding: chunked"),
			 HTTP_ERR_NOT_IMPLEMENTED);
	/* fine: several headers, empty list elements, case */
	ck_assert_int_eq(req_cl("Transfer-Encoding: , CHUNKED ,"), HTTP_OK);
	ck_assert_int_eq(msg.body, HTTP_BODY_CHUNKED);
	ck_assert_int_eq(req_cl("Transfer-Encoding:\r\n"
				"Transfer-Encoding: chunked"),
			 HTTP_OK);
	ck_assert_int_eq(msg.body, HTTP_BODY_CHUNKED);
}
END_TEST

/* RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 request is faulty */
START_TEST(rfc9112_6_1_te_http10)
{
	ck_assert_int_eq(
		REQ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		    &msg),
		HTTP_ERR_BAD_REQUEST);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Connection, Upgrade, Expect                                         */
/* ------------------------------------------------------------------ */

static bool keepalive(const char *version, const char *fields)
{
	static char buf[512];
	int n = snprintf(buf, sizeof(buf), "GET / %s\r\nHost: a\r\n%s\r\n",
			 version, fields);

	ck_assert_int_eq(http_parse_request(buf, (size_t)n, &msg), HTTP_OK);
	return msg.is_keepalive;
}

/* RFC 9112 §9.3 persistence; RFC 9110 §7.6.1 Connection is a list */
START_TEST(rfc9112_9_3_keepalive)
{
	ck_assert(keepalive("HTTP/1.1", ""));
	ck_assert(!keepalive("HTTP/1.1", "Connection: close\r\n"));
	ck_assert(!keepalive("HTTP/1.1", "Connection: CLOSE\r\n"));
	ck_assert(!keepalive("HTTP/1.1", "Connection: keep-alive, close\r\n"));
	ck_assert(!keepalive("HTTP/1.1",
			     "Connection: x-a\r\nConnection: close\r\n"));
	ck_assert(keepalive("HTTP/1.1", "Connection: keep-alive\r\n"));
	ck_assert(keepalive("HTTP/1.1", "Connection: closed\r\n"));
	ck_assert(!keepalive("HTTP/1.0", ""));
	ck_assert(keepalive("HTTP/1.0", "Connection: keep-alive\r\n"));
	ck_assert(keepalive("HTTP/1.0", "Connection: x, Keep-Alive\r\n"));
	ck_assert(!keepalive("HTTP/1.0", "Connection: keep-alive, close\r\n"));
	/* Keep-Alive the header is not Connection: keep-alive */
	ck_assert(!keepalive("HTTP/1.0", "Keep-Alive: timeout=5\r\n"));
	/* options are tokens */
	ck_assert_int_eq(
		REQ("GET / HTTP/1.1\r\nHost: a\r\nConnection: a b\r\n\r\n",
		    &msg),
		HTTP_ERR_BAD_REQUEST);
}
END_TEST

/* RFC 9110 §7.8 Upgrade: needs the "upgrade" option, ignored in 1.0 */
START_TEST(rfc9110_7_8_upgrade)
{
	keepalive("HTTP/1.1", "Connection: Upgrade\r\nUpgrade: websocket\r\n");
	ck_assert(msg.has_upgrade);
	keepalive("HTTP/1.1", "Connection: keep-alive, upgrade\r\n"
			      "Upgrade: websocket\r\n");
	ck_assert(msg.has_upgrade);
	keepalive("HTTP/1.1", "Upgrade: websocket\r\n");
	ck_assert(!msg.has_upgrade);
	keepalive("HTTP/1.1", "Connection: upgrade\r\n");
	ck_assert(!msg.has_upgrade);
	keepalive("HTTP/1.0", "Connection: upgrade\r\nUpgrade: websocket\r\n");
	ck_assert(!msg.has_upgrade);
}
END_TEST

/* RFC 9110 §10.1.1 Expect: 100-continue, ignored in 1.0 */
START_TEST(rfc9110_10_1_1_expect)
{
	keepalive("HTTP/1.1", "Expect: 100-continue\r\n");
	ck_assert(msg.has_expect_continue);
	keepalive("HTTP/1.1", "EXPECT:  100-CONTINUE \r\n");
	ck_assert(msg.has_expect_continue);
	keepalive("HTTP/1.1", "Expect: 200-ok\r\n");
	ck_assert(!msg.has_expect_continue);
	keepalive("HTTP/1.0", "Expect: 100-continue\r\n");
	ck_assert(!msg.has_expect_continue);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Responses                                                           */
/* ------------------------------------------------------------------ */

/* RFC 9112 §4 status-line, §6.3 rule 6 Content-Length */
START_TEST(rfc9112_4_response_basic)
{
	static const char r[] = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n"
				"Server: x\r\n\r\nhello world!";

	ck_assert_int_eq(RESP(r, false, &msg), HTTP_OK);
	ck_assert_uint_eq(msg.status, 200);
	ck_assert(slice_is(r, msg.reason, "OK"));
	ck_assert_int_eq(msg.version, HTTP_11);
	ck_assert_int_eq(msg.body, HTTP_BODY_LENGTH);
	ck_assert_uint_eq(msg.content_length, 12);
	ck_assert(msg.is_keepalive);
	ck_assert_uint_eq(msg.head_len, sizeof(r) - 1 - 12);
	ck_assert_uint_eq(msg.nheaders, 2);
}
END_TEST

/* RFC 9112 §4: reason-phrase may be empty; its SP is often left out */
START_TEST(rfc9112_4_reason)
{
	static const char a[] = "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n";
	static const char b[] = "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n";
	static const char c[] = "HTTP/1.1 500 Internal\tServer  Error\r\n\r\n";

	ck_assert_int_eq(RESP(a, false, &msg), HTTP_OK);
	ck_assert_uint_eq(msg.status, 404);
	ck_assert_uint_eq(msg.reason.len, 0);
	ck_assert_int_eq(RESP(b, false, &msg), HTTP_OK);
	ck_assert_uint_eq(msg.reason.len, 0);
	ck_assert_int_eq(RESP(c, false, &msg), HTTP_OK);
	ck_assert(slice_is(c, msg.reason, "Internal\tServer  Error"));
}
END_TEST

/* RFC 9112 §6.3 rules 1, 4, 8: bodiless, chunked, close-delimited */
START_TEST(rfc9112_6_3_response_body)
{
	ck_assert_int_eq(
		RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		     false, &msg),
		HTTP_OK);
	ck_assert_int_eq(msg.body, HTTP_BODY_CHUNKED);
	ck_assert(msg.is_keepalive);
	ck_assert_int_eq(RESP("HTTP/1.1 200 OK\r\n\r\n", false, &msg), HTTP_OK);
	ck_assert_int_eq(msg.body, HTTP_BODY_CLOSE);
	ck_assert(!msg.is_keepalive);
	/* final coding not chunked: read until close */
	ck_assert_int_eq(
		RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		     false, &msg),
		HTTP_OK);
	ck_assert_int_eq(msg.body, HTTP_BODY_CLOSE);
	ck_assert(!msg.is_keepalive);
	/* codings before chunked are passed through */
	ck_assert_int_eq(RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, "
			      "chunked\r\n\r\n",
			      false, &msg),
			 HTTP_OK);
	ck_assert_int_eq(msg.body, HTTP_BODY_CHUNKED);
}
END_TEST

/* RFC 9112 §6.3 rule 1: HEAD, 1xx, 204, 304 never have a body */
START_TEST(rfc9112_6_3_bodiless)
{
	static const char cl[] =
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";

	ck_assert_int_eq(RESP(cl, true, &msg), HTTP_OK);
	ck_assert_int_eq(msg.body, HTTP_BODY_NONE);
	ck_assert(msg.is_keepalive);
	ck_assert_int_eq(RESP("HTTP/1.1 204 No Content\r\n\r\n", false, &msg),
			 HTTP_OK);
	ck_assert_int_eq(msg.body, HTTP_BODY_NONE);
	ck_assert(msg.is_keepalive);
	ck_assert_int_eq(
		RESP("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n",
		     false, &msg),
		HTTP_OK);
	ck_assert_int_eq(msg.body, HTTP_BODY_NONE);
	ck_assert_int_eq(RESP("HTTP/1.1 100 Continue\r\n\r\n", false, &msg),
			 HTTP_OK);
	ck_assert_int_eq(msg.body, HTTP_BODY_NONE);
	ck_assert_uint_eq(msg.status, 100);
	ck_assert_int_eq(
		RESP("HTTP/1.1 101 Switching Protocols\r\n"
		     "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		     false, &msg),
		HTTP_OK);
	ck_assert_int_eq(msg.body, HTTP_BODY_NONE);
	ck_assert(msg.has_upgrade);
	ck_assert_int_eq(RESP("HTTP/1.1 204 No Content\r\n\r\n", true, &msg),
			 HTTP_OK);
	ck_assert_int_eq(msg.body, HTTP_BODY_NONE);
}
END_TEST

/* RFC 9112 §9.3: persistence of responses */
START_TEST(rfc9112_9_3_response_keepalive)
{
	ck_assert_int_eq(RESP("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n",
			      false, &msg),
			 HTTP_OK);
	ck_assert_int_eq(msg.version, HTTP_10);
	ck_assert(!msg.is_keepalive);
	ck_assert_int_eq(RESP("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n"
			      "Connection: keep-alive\r\n\r\n",
			      false, &msg),
			 HTTP_OK);
	ck_assert(msg.is_keepalive);
	ck_assert_int_eq(RESP("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
			      "Connection: close\r\n\r\n",
			      false, &msg),
			 HTTP_OK);
	ck_assert(!msg.is_keepalive);
	ck_assert_int_eq(
		RESP("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", false,
		     &msg),
		HTTP_OK);
	ck_assert_int_eq(msg.body, HTTP_BODY_CLOSE);
	ck_assert(!msg.is_keepalive);
}
END_TEST

/* RFC 9112 §4, §5, §6: malformed responses are 502 */
START_TEST(rfc9112_6_3_response_bad)
{
	static const char *const bad[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: "
		"chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: "
		"2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: "
		"99999999999999999999\r\n\r\n",
		"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, "
		"chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX : a\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\n\r\n",
		"HTTP/1.1 200 OK\nX: a\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: a b\r\n\r\n",
		"HTTP/2.0 200 OK\r\n\r\n",
		"http/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"HTTP/1.1 200OK\r\n\r\n",
		"HTTP/1.1  200 OK\r\n\r\n",
		"HTTP/1.1 099 Low\r\n\r\n",
		"HTTP/1.1 600 High\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 200 O\x01K\r\n\r\n",
		"HTTP/1.1 200 OK\r\n",
		"HTTP/1.1\r\n\r\n",
		"",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(http_parse_response(bad[i], strlen(bad[i]), false,
						  &msg) == HTTP_ERR_BAD_GATEWAY,
			      "case %zu", i);
	ck_assert_int_eq(
		RESP("HTTP/1.1 200 OK\r\nX: a\x00\r\n\r\n", false, &msg),
		HTTP_ERR_BAD_GATEWAY);
}
END_TEST

/* RFC 9112 §5: header limit also applies to responses (502) */
START_TEST(rfc9112_5_response_too_many_headers)
{
	static char buf[8192];
	size_t len = (size_t)snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n");

	for (unsigned i = 0; i <= HTTP_MAX_HEADERS; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len,
					"X-%u: v\r\n", i);
	len += (size_t)snprintf(buf + len, sizeof(buf) - len, "\r\n");
	ck_assert_int_eq(http_parse_response(buf, len, false, &msg),
			 HTTP_ERR_BAD_GATEWAY);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Helpers: slices, lookup, hop-by-hop                                 */
/* ------------------------------------------------------------------ */

/* RFC 9110 §5.1: field names are case-insensitive */
START_TEST(rfc9110_5_1_find_header)
{
	static const char r[] =
		"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\n\r\n";

	ck_assert_int_eq(REQ(r, &msg), HTTP_OK);
	ck_assert_int_eq(http_find_header(r, &msg, "X-A"), 1);
	ck_assert_int_eq(http_find_header(r, &msg, "x-A"), 1);
	ck_assert_int_eq(http_find_header(r, &msg, "X-B"), -1);
	ck_assert_int_eq(http_find_header(r, &msg, "X-"), -1);
	ck_assert(http_slice_eq(r, msg.headers[0].name, "HOST"));
	ck_assert(!http_slice_eq(r, msg.headers[0].name, "Hos"));
	ck_assert(!http_slice_eq(r, msg.headers[0].name, "Hosts"));
}
END_TEST

/* RFC 9110 §7.6.1: hop-by-hop fields, and those Connection names */
START_TEST(rfc9110_7_6_1_hop_by_hop)
{
	static const char r[] =
		"GET / HTTP/1.1\r\n"
		"Host: a\r\n"				      /* 0 */
		"Connection: X-Foo, close\r\n"		      /* 1 */
		"Keep-Alive: timeout=5\r\n"		      /* 2 */
		"Proxy-Connection: keep-alive\r\n"	      /* 3 */
		"TE: trailers\r\n"			      /* 4 */
		"Trailer: X-Sum\r\n" /* 5: end-to-end, RFC 9110 §6.6.2 */
		"Upgrade: h2c\r\n"			      /* 6 */
		"x-foo: 1\r\n"				      /* 7 */
		"X-Bar: 2\r\n"				      /* 8 */
		"X-Baz: 3\r\n"				      /* 9 */
		"Proxy-Authorization: Basic x\r\n"	      /* 10 */
		"connection: x-bar ,host, Content-Length\r\n" /* 11 */
		"Content-Length: 0\r\n"			      /* 12 */
		"Accept: */*\r\n"			      /* 13 */
		"\r\n";
	/* clang-format off */
	static const bool want[] = {
		false, true, true, true, true, false, true,    /* 0-6 */
		true, true, false, false, true, false, false,  /* 7-13 */
	};
	/* clang-format on */
	static const char t[] = "POST / HTTP/1.1\r\nHost: a\r\n"
				"Transfer-Encoding: chunked\r\n\r\n";

	ck_assert_int_eq(REQ(r, &msg), HTTP_OK);
	ck_assert_uint_eq(msg.nheaders, sizeof(want) / sizeof(want[0]));
	for (unsigned i = 0; i < msg.nheaders; i++)
		ck_assert_msg(http_is_hop_by_hop(r, &msg, i) == want[i],
			      "header %u", i);
	ck_assert(!http_is_hop_by_hop(r, &msg, msg.nheaders));
	ck_assert(!msg.is_keepalive);
	ck_assert_int_eq(REQ(t, &msg), HTTP_OK);
	ck_assert(http_is_hop_by_hop(t, &msg, 1));
	ck_assert(!http_is_hop_by_hop(t, &msg, 0));
}
END_TEST

/* ------------------------------------------------------------------ */
/* http_head_end                                                       */
/* ------------------------------------------------------------------ */

/* RFC 9112 §2.1: the head ends with the empty line */
START_TEST(rfc9112_2_1_head_end)
{
	static const char r[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
	static const char part[] = "GET / HTTP/1.1\r\nHost: a\r\n";
	size_t scanned = 0;

	ck_assert_uint_eq(http_head_end(r, sizeof(r) - 1, &scanned), 27);
	/* a repeated call gives the same answer */
	ck_assert_uint_eq(http_head_end(r, sizeof(r) - 1, &scanned), 27);
	scanned = 0;
	ck_assert_uint_eq(http_head_end(part, sizeof(part) - 1, &scanned), 0);
	ck_assert_uint_le(scanned, sizeof(part) - 1);
	/* a stale scanned past the buffer restarts */
	scanned = 1000;
	ck_assert_uint_eq(http_head_end(r, sizeof(r) - 1, &scanned), 27);
	scanned = 0;
	ck_assert_uint_eq(http_head_end("", 0, &scanned), 0);
}
END_TEST

/* RFC 9112 §2.1: found whatever way the bytes are split into reads */
START_TEST(rfc9112_2_1_head_end_split)
{
	static const char r[] = "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\r\nNEXT";
	const size_t head = sizeof(r) - 1 - 4;

	/* two reads, split at every offset (incl. inside each CRLF) */
	for (size_t k = 0; k <= sizeof(r) - 1; k++) {
		size_t scanned = 0, got;

		got = http_head_end(r, k, &scanned);
		ck_assert_uint_eq(got, k >= head ? head : 0);
		if (got == 0)
			ck_assert_uint_eq(
				http_head_end(r, sizeof(r) - 1, &scanned),
				head);
	}
	/* one byte at a time; never rescans more than a CRLF's worth */
	{
		size_t scanned = 0, got = 0, k;

		for (k = 1; k <= sizeof(r) - 1 && got == 0; k++) {
			got = http_head_end(r, k, &scanned);
			if (got == 0)
				ck_assert_uint_ge(scanned + 3, k);
		}
		ck_assert_uint_eq(got, head);
		ck_assert_uint_eq(k - 1, head);
	}
	/* "\r\n\r" then "\n" */
	{
		size_t scanned = 0;

		ck_assert_uint_eq(http_head_end(r, head - 1, &scanned), 0);
		ck_assert_uint_eq(http_head_end(r, head, &scanned), head);
	}
}
END_TEST

/* RFC 9112 §2.2: a bare-LF head is delimited, then rejected */
START_TEST(rfc9112_2_2_head_end_bare_lf)
{
	static const char a[] = "GET / HTTP/1.1\nHost: a\n\nX";
	static const char b[] = "GET / HTTP/1.1\r\nHost: a\n\r\nX";
	size_t scanned = 0;

	ck_assert_uint_eq(http_head_end(a, sizeof(a) - 1, &scanned), 24);
	ck_assert_int_eq(http_parse_request(a, 24, &msg), HTTP_ERR_BAD_REQUEST);
	scanned = 0;
	ck_assert_uint_eq(http_head_end(b, sizeof(b) - 1, &scanned), 26);
	ck_assert_int_eq(http_parse_request(b, 26, &msg), HTTP_ERR_BAD_REQUEST);
	ck_assert_int_eq(
		http_parse_response("HTTP/1.1 200 OK\n\n", 17, false, &msg),
		HTTP_ERR_BAD_GATEWAY);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Chunked bodies                                                      */
/* ------------------------------------------------------------------ */

/* Whole input in one call. */
static ssize_t chunk_once(const char *p, size_t len, bool *done)
{
	struct http_chunked c;

	http_chunked_init(&c);
	return http_chunked_feed(&c, p, len, done);
}

/* One byte per call, stopping at the end of the body. */
static ssize_t chunk_bytewise(const char *p, size_t len, bool *done)
{
	struct http_chunked c;
	size_t total = 0;

	http_chunked_init(&c);
	*done = false;
	for (size_t i = 0; i < len && !*done; i++) {
		ssize_t n = http_chunked_feed(&c, p + i, 1, done);

		if (n < 0)
			return -1;
		ck_assert_int_le(n, 1);
		total += (size_t)n;
	}
	return (ssize_t)total;
}

/*
 * Both ways must agree.  CHUNK_OK: `body` is a whole chunked body and
 * `next` the bytes after it; CHUNK_BAD: the input is malformed.
 */
#define CHUNK_OK(body, next)                                                   \
	chunk_check(body next, sizeof(body next) - 1, sizeof(body) - 1,        \
		    __LINE__)
#define CHUNK_BAD(lit) chunk_check(lit, sizeof(lit) - 1, -1, __LINE__)

static void chunk_check(const char *p, size_t len, ssize_t want, int line)
{
	bool done1 = false, done2 = false;
	ssize_t once = chunk_once(p, len, &done1);
	ssize_t bytes = chunk_bytewise(p, len, &done2);

	ck_assert_msg(once == want, "line %d: one call gave %zd, want %zd",
		      line, once, want);
	ck_assert_msg(bytes == want, "line %d: bytewise gave %zd, want %zd",
		      line, bytes, want);
	if (want >= 0)
		ck_assert_msg(done1 && done2, "line %d: not done", line);
}

/* RFC 9112 §7.1: chunks, last-chunk, end; the rest is the next message */
START_TEST(rfc9112_7_1_chunked_basic)
{
	CHUNK_OK("5\r\nhello\r\n0\r\n\r\n", "");
	CHUNK_OK("5\r\nhello\r\n0\r\n\r\n", "GET / HTTP/1.1\r\n");
	CHUNK_OK("0\r\n\r\n", "");
	CHUNK_OK("000\r\n\r\n", "X");
	CHUNK_OK("a\r\n0123456789\r\nA\r\n0123456789\r\n1\r\n\n\r\n0\r\n\r\n",
		 "");
	CHUNK_OK("1f\r\n0123456789012345678901234567890\r\n0\r\n\r\n", "\r\n");
	/* data may hold CR, LF, NUL */
	CHUNK_OK("4\r\n\r\n\x00\n\r\n0\r\n\r\n", "");
	/* 16 hex digits is the most */
	CHUNK_OK("0000000000000001\r\nx\r\n0\r\n\r\n", "");
}
END_TEST

/* RFC 9112 §7.1.1: chunk extensions, with BWS before ';' */
START_TEST(rfc9112_7_1_1_chunk_ext)
{
	CHUNK_OK("5;name=value\r\nhello\r\n0\r\n\r\n", "");
	CHUNK_OK("5;a;b=\"q s\"\r\nhello\r\n0;last\r\n\r\n", "");
	CHUNK_OK("5 ;a\r\nhello\r\n0\t; x\r\n\r\n", "");
	CHUNK_OK("5;a=\xff\r\nhello\r\n0\r\n\r\n", "");
}
END_TEST

/* RFC 9112 §7.1.2: trailer section */
START_TEST(rfc9112_7_1_2_trailers)
{
	CHUNK_OK("0\r\nX-Sum: abc\r\n\r\n", "");
	CHUNK_OK("5\r\nhello\r\n0\r\nA: 1\r\nB:\r\nC: x\ty\r\n\r\n", "NEXT");
}
END_TEST

/* RFC 9112 §7.1: every malformation is an error */
START_TEST(rfc9112_7_1_chunked_bad)
{
	CHUNK_BAD("\r\n"); /* no digits */
	CHUNK_BAD(";a\r\n");
	CHUNK_BAD(" 5\r\n");
	CHUNK_BAD("x\r\n");
	CHUNK_BAD("-5\r\n");
	CHUNK_BAD("0x5\r\n");
	CHUNK_BAD("00000000000000001\r\nx\r\n0\r\n\r\n"); /* 17 digits */
	CHUNK_BAD("10000000000000000\r\n");		  /* > 2^64 */
	CHUNK_BAD("5\nhello\r\n0\r\n\r\n");		  /* bare LF */
	CHUNK_BAD("5\rhello\r\n0\r\n\r\n");		  /* bare CR */
	CHUNK_BAD("5 \r\nhello\r\n0\r\n\r\n");		  /* BWS, no ext */
	CHUNK_BAD("5;a\nhello\r\n0\r\n\r\n");		  /* bare LF in ext */
	CHUNK_BAD("5;a\x01\r\nhello\r\n0\r\n\r\n");	  /* CTL in ext */
	CHUNK_BAD("5;a\x00\r\nhello\r\n0\r\n\r\n");
	CHUNK_BAD("5\r\nhelloX\r\n0\r\n\r\n"); /* no CRLF after data */
	CHUNK_BAD("5\r\nhello\n0\r\n\r\n");
	CHUNK_BAD("5\r\nhello\rX0\r\n\r\n");
	CHUNK_BAD("5\r\nhello\r\n\r\n"); /* no last-chunk */
	CHUNK_BAD("0\r\n\n");		 /* bare LF at end */
	CHUNK_BAD("0\r\n\rX");
	CHUNK_BAD("0\r\nX: a\n\r\n");	    /* trailer bare LF */
	CHUNK_BAD("0\r\nX: a\x00\r\n\r\n"); /* trailer NUL */
	CHUNK_BAD("0\r\nX: a\rb\r\n\r\n");
	CHUNK_BAD("0\r\nX: a\r\n b\r\n\r\n"); /* obs-fold */
	CHUNK_BAD("0\r\nX a\r\n\r\n");	      /* no colon */
	CHUNK_BAD("0\r\n: a\r\n\r\n");
	CHUNK_BAD("0\r\nX : a\r\n\r\n");
}
END_TEST

/* A chunk-size line or trailer line of n bytes. */
static size_t long_line(char *buf, const char *head, size_t n, const char *tail)
{
	size_t h = strlen(head), t = strlen(tail);

	memcpy(buf, head, h);
	memset(buf + h, 'a', n - h);
	memcpy(buf + n, tail, t);
	return n + t;
}

/* RFC 9112 §7.1: line lengths are bounded (HTTP_MAX_CHUNK_LINE) */
START_TEST(rfc9112_7_1_chunk_line_limits)
{
	static char buf[HTTP_MAX_CHUNK_LINE + 64];
	size_t len;

	len = long_line(buf, "1;", HTTP_MAX_CHUNK_LINE, "\r\nx\r\n0\r\n\r\n");
	chunk_check(buf, len, (ssize_t)len, __LINE__);
	len = long_line(buf, "1;", HTTP_MAX_CHUNK_LINE + 1,
			"\r\nx\r\n0\r\n\r\n");
	chunk_check(buf, len, -1, __LINE__);
	len = long_line(buf, "0\r\nX:", HTTP_MAX_CHUNK_LINE + 3, "\r\n\r\n");
	chunk_check(buf, len, (ssize_t)len, __LINE__);
	len = long_line(buf, "0\r\nX:", HTTP_MAX_CHUNK_LINE + 4, "\r\n\r\n");
	chunk_check(buf, len, -1, __LINE__);
}
END_TEST

/* The scanner's state across calls: after the end, after an error. */
START_TEST(rfc9112_7_1_chunked_state)
{
	struct http_chunked c;
	bool done = true;

	http_chunked_init(&c);
	ck_assert_int_eq(http_chunked_feed(&c, "5\r\nhel", 6, &done), 6);
	ck_assert(!done);
	ck_assert_uint_eq(c.remaining, 2);
	ck_assert_int_eq(http_chunked_feed(&c, "", 0, &done), 0);
	ck_assert(!done);
	ck_assert_int_eq(http_chunked_feed(&c, "lo\r\n0\r\n\r\nXY", 11, &done),
			 9);
	ck_assert(done);
	ck_assert_int_eq(http_chunked_feed(&c, "XY", 2, &done), 0);
	ck_assert(done);

	http_chunked_init(&c);
	ck_assert_int_eq(http_chunked_feed(&c, "z", 1, &done), -1);
	ck_assert_int_eq(http_chunked_feed(&c, "0\r\n\r\n", 5, &done), -1);
	ck_assert(!done);
}

/*
 * RFC 9112 §7.1: decoding for an HTTP/1.0 client keeps the chunk data
 * only (extensions, sizes, trailers dropped) and stops at the end of the
 * body; fed whole or a byte at a time, the result is the same.
 */
START_TEST(test_chunked_decode)
{
	static const char body[] = "5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\n"
				   "Trailer: x\r\n\r\n";
	char buf[128], out[64];
	struct http_chunked c;
	size_t data, total = 0, blen = sizeof(body) - 1, used = 0;
	bool done = false;
	ssize_t n;

	http_chunked_init(&c);
	memcpy(buf, body, blen);
	memcpy(buf + blen, "NEXT", 4);
	n = http_chunked_decode(&c, buf, blen + 4, &data, &done);
	ck_assert_int_eq(n, (ssize_t)blen);
	ck_assert(done);
	ck_assert_uint_eq(data, 8);
	ck_assert_int_eq(memcmp(buf, "helloabc", 8), 0);

	http_chunked_init(&c);
	for (size_t i = 0; i < blen; i++) {
		char one = body[i];

		n = http_chunked_decode(&c, &one, 1, &data, &done);
		ck_assert_int_eq(n, 1);
		memcpy(out + total, &one, data);
		total += data;
		used++;
	}
	ck_assert(done);
	ck_assert_uint_eq(used, blen);
	ck_assert_uint_eq(total, 8);
	ck_assert_int_eq(memcmp(out, "helloabc", 8), 0);

	http_chunked_init(&c);
	memcpy(buf, "5\r\nhelloX\r\n", 12);
	ck_assert_int_eq(http_chunked_decode(&c, buf, 12, &data, &done), -1);
}
END_TEST

END_TEST

static Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *req = tcase_create("request");
	TCase *bad = tcase_create("request_rejects");
	TCase *opt = tcase_create("connection");
	TCase *resp = tcase_create("response");
	TCase *misc = tcase_create("helpers");
	TCase *chunk = tcase_create("chunked");

	tcase_add_test(req, rfc9112_3_get_origin_form);
	tcase_add_test(req, rfc9112_6_2_post_content_length);
	tcase_add_test(req, rfc9112_6_1_post_chunked);
	tcase_add_test(req, rfc9110_9_3_2_head);
	tcase_add_test(req, rfc9112_9_3_http10);
	tcase_add_test(req, rfc9112_3_2_2_absolute_form);
	tcase_add_test(req, rfc9112_3_2_4_asterisk_form);
	tcase_add_test(req, rfc9112_3_2_3_authority_form);
	tcase_add_test(req, rfc9112_9_3_2_pipelined);
	tcase_add_test(req, rfc9112_2_2_leading_crlf);
	tcase_add_test(req, rfc9112_5_field_ows);
	tcase_add_test(req, rfc6585_5_too_many_headers);
	suite_add_tcase(s, req);

	tcase_add_test(bad, rfc9112_3_request_line_syntax);
	tcase_add_test(bad, rfc9112_2_3_version);
	tcase_add_test(bad, rfc9112_3_2_2_absolute_form_bad);
	tcase_add_test(bad, rfc9112_3_uri_too_long);
	tcase_add_test(bad, rfc9112_3_head_too_large);
	tcase_add_test(bad, rfc9112_5_1_space_before_colon);
	tcase_add_test(bad, rfc9112_5_2_obs_fold);
	tcase_add_test(bad, rfc9110_5_5_field_value_ctl);
	tcase_add_test(bad, rfc9112_2_2_bare_lf);
	tcase_add_test(bad, rfc9110_7_2_host);
	tcase_add_test(bad, rfc9112_6_1_cl_and_te);
	tcase_add_test(bad, rfc9110_8_6_content_length_invalid);
	tcase_add_test(bad, rfc9110_8_6_content_length_collapse);
	tcase_add_test(bad, rfc9112_6_1_transfer_encoding);
	tcase_add_test(bad, rfc9112_6_1_te_http10);
	suite_add_tcase(s, bad);

	tcase_add_test(opt, rfc9112_9_3_keepalive);
	tcase_add_test(opt, rfc9110_7_8_upgrade);
	tcase_add_test(opt, rfc9110_10_1_1_expect);
	suite_add_tcase(s, opt);

	tcase_add_test(resp, rfc9112_4_response_basic);
	tcase_add_test(resp, rfc9112_4_reason);
	tcase_add_test(resp, rfc9112_6_3_response_body);
	tcase_add_test(resp, rfc9112_6_3_bodiless);
	tcase_add_test(resp, rfc9112_9_3_response_keepalive);
	tcase_add_test(resp, rfc9112_6_3_response_bad);
	tcase_add_test(resp, rfc9112_5_response_too_many_headers);
	suite_add_tcase(s, resp);

	tcase_add_test(misc, rfc9110_5_1_find_header);
	tcase_add_test(misc, rfc9110_7_6_1_hop_by_hop);
	tcase_add_test(misc, rfc9112_2_1_head_end);
	tcase_add_test(misc, rfc9112_2_1_head_end_split);
	tcase_add_test(misc, rfc9112_2_2_head_end_bare_lf);
	suite_add_tcase(s, misc);

	tcase_add_test(chunk, rfc9112_7_1_chunked_basic);
	tcase_add_test(chunk, rfc9112_7_1_1_chunk_ext);
	tcase_add_test(chunk, rfc9112_7_1_2_trailers);
	tcase_add_test(chunk, rfc9112_7_1_chunked_bad);
	tcase_add_test(chunk, rfc9112_7_1_chunk_line_limits);
	tcase_add_test(chunk, rfc9112_7_1_chunked_state);
	tcase_add_test(chunk, test_chunked_decode);
	suite_add_tcase(s, chunk);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(http_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
