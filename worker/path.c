/*
 * path.c: request path normalisation (RFC 3986 §2.3, §5.2.4, §6.2.2).
 *
 * One pass over the path, segment by segment: each segment is decoded
 * into the output, then looked at.  A "." or ".." segment is known only
 * once decoded ("%2e%2e" is ".."), so it is written first and taken back.
 * Empty segments ("//") are kept while dot segments are resolved and
 * merged at the end: that is how a ".." that would remove an empty
 * segment is seen.  Such a path is refused, because servers disagree on
 * it: "/a//../b" is "/a/b" to RFC 3986 §5.2.4, which removes the empty
 * segment, but "/b" to a server that merges slashes first (nginx's
 * merge_slashes), and a deny rule must not depend on which one is behind.
 *
 * Choices where servers differ, each made so that the proxy never sees a
 * path as harmless that a server may read as another:
 *   - a ".." above the root is refused (RFC 3986 drops it silently);
 *   - %2F and %5C stay encoded: decoded they would make new segments;
 *   - a raw '\' is refused: some servers (IIS, WHATWG URL parsers) take it
 *     for '/', others for a plain byte, and no client has a reason to send
 *     one (browsers turn it into '/' themselves);
 *   - '#' is refused: origin-form has no fragment (RFC 9112 §3.2.1) and
 *     servers differ on where such a path ends.
 */
#include "worker/path.h"

#include <stdbool.h>
#include <string.h>

#include "worker/http.h"

struct path_out {
	char *buf;
	size_t cap;
	size_t len;
};

static bool path_is_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

static enum path_err path_put(struct path_out *o, char c)
{
	if (o->len == o->cap)
		return PATH_ERR_TOO_LONG;
	o->buf[o->len++] = c;
	return PATH_OK;
}

/* The escape at in[0..avail): decoded if unreserved, else uppercased. */
static enum path_err path_escape(const char *in, size_t avail, unsigned flags,
				 struct path_out *o)
{
	static const char hex[] = "0123456789ABCDEF";
	int hi = avail >= 3 ? http_hex_digit((unsigned char)in[1]) : -1;
	int lo = avail >= 3 ? http_hex_digit((unsigned char)in[2]) : -1;
	unsigned char c;
	enum path_err err;

	if (hi < 0 || lo < 0)
		return PATH_ERR_ESCAPE;
	c = (unsigned char)(hi << 4 | lo);
	if (c == 0)
		return PATH_ERR_NUL;
	if (path_is_unreserved(c))
		return path_put(o, (char)c);
	if ((c == '/' || c == '\\') && (flags & PATH_REJECT_ENCODED_SLASH))
		return PATH_ERR_ENCODED_SLASH;
	if ((err = path_put(o, '%')) != PATH_OK ||
	    (err = path_put(o, hex[c >> 4])) != PATH_OK)
		return err;
	return path_put(o, hex[c & 15]);
}

/* A byte that may stand for itself in a path; see the top of the file. */
static bool path_is_plain(unsigned char c)
{
	return c > 0x20 && c != 0x7f && c != '#' && c != '\\';
}

/*
 * Decode the segment at in[*i..end) (up to the next '/') onto o, after a
 * '/' of its own.  *i moves past it.
 */
static enum path_err path_segment(const char *in, size_t *i, size_t end,
				  unsigned flags, struct path_out *o)
{
	enum path_err err = path_put(o, '/');

	while (err == PATH_OK && *i < end && in[*i] != '/') {
		unsigned char c = (unsigned char)in[*i];

		if (c == '%') {
			err = path_escape(in + *i, end - *i, flags, o);
			*i += 3;
		} else if (path_is_plain(c)) {
			err = path_put(o, (char)c);
			*i += 1;
		} else {
			err = PATH_ERR_CHAR;
		}
	}
	return err;
}

/*
 * The segment just written at o->buf[seg..o->len) ('/' included) was "."
 * or "..": take it back, and for ".." the segment before it too.  A
 * trailing dot segment leaves a trailing '/' ("/a/." is "/a/", §5.2.4).
 */
static enum path_err path_dots(struct path_out *o, size_t seg, bool is_dotdot,
			       bool is_last)
{
	size_t p;

	o->len = seg;
	if (is_dotdot) {
		if (o->len == 0)
			return PATH_ERR_ABOVE_ROOT;
		for (p = o->len; o->buf[p - 1] != '/'; p--)
			;
		if (p == o->len)
			return PATH_ERR_AMBIGUOUS; /* "//..": see the top */
		o->len = p - 1;
	}
	return is_last ? path_put(o, '/') : PATH_OK;
}

/* "//" -> "/" over o->buf[0..o->len). */
static void path_merge_slashes(struct path_out *o)
{
	size_t r, w = 0;

	for (r = 0; r < o->len; r++)
		if (!(o->buf[r] == '/' && w > 0 && o->buf[w - 1] == '/'))
			o->buf[w++] = o->buf[r];
	o->len = w;
}

static enum path_err path_part(const char *in, size_t end, unsigned flags,
			       struct path_out *o)
{
	size_t i = 0;

	if (end == 0)
		return path_put(o, '/'); /* "http://h?q" */
	if (in[0] != '/')
		return PATH_ERR_NOT_ABSOLUTE;
	while (i < end) {
		size_t seg = o->len, n;
		enum path_err err;

		i++; /* the '/' */
		err = path_segment(in, &i, end, flags, o);
		if (err != PATH_OK)
			return err;
		n = o->len - seg - 1;
		if ((n == 1 || n == 2) && !memcmp(o->buf + seg + 1, "..", n))
			err = path_dots(o, seg, n == 2, i == end);
		if (err != PATH_OK)
			return err;
	}
	path_merge_slashes(o);
	return PATH_OK;
}

enum path_err path_normalize(const char *in, size_t len, unsigned flags,
			     char *out, size_t cap, size_t *path_len,
			     size_t *out_len)
{
	struct path_out o = {out, cap, 0};
	const char *q = memchr(in, '?', len);
	size_t end = q ? (size_t)(q - in) : len;
	enum path_err err;

	if (len == 1 && in[0] == '*') /* OPTIONS * (RFC 9112 §3.2.4) */
		err = path_put(&o, '*');
	else
		err = path_part(in, end, flags, &o);
	if (err != PATH_OK)
		return err;
	*path_len = o.len;
	if (len - end > cap - o.len)
		return PATH_ERR_TOO_LONG;
	memcpy(out + o.len, in + end, len - end);
	*out_len = o.len + (len - end);
	return PATH_OK;
}

const char *path_strerror(enum path_err err)
{
	switch (err) {
	case PATH_OK:
		return "ok";
	case PATH_ERR_NOT_ABSOLUTE:
		return "path does not start with '/'";
	case PATH_ERR_ESCAPE:
		return "invalid percent-escape";
	case PATH_ERR_NUL:
		return "%00 in path";
	case PATH_ERR_CHAR:
		return "control character, '#' or '\\' in path";
	case PATH_ERR_ENCODED_SLASH:
		return "%2F or %5C in path";
	case PATH_ERR_ABOVE_ROOT:
		return "'..' above the root";
	case PATH_ERR_AMBIGUOUS:
		return "'..' after an empty segment";
	case PATH_ERR_TOO_LONG:
		return "normalised path too long";
	}
	return "?";
}
