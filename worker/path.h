/*
 * path.h: normalisation of a request path before it is matched against
 * routes and allow/deny rules (issue #12, RFC 3986 §2.3, §5.2.4, §6.2.2).
 *
 * An access rule on "/admin" is only as good as the proxy's idea of what
 * "/admin" is: "/%61dmin", "//admin" and "/x/../admin" are the same
 * resource to most servers.  path_normalize() turns a request target into
 * the one form routes are matched on, and refuses the forms whose meaning
 * differs between servers.  Pure: no allocation, no state, libc only.
 */
#ifndef PORTCULLIS_PATH_H
#define PORTCULLIS_PATH_H

#include <stddef.h>

/* Flags of path_normalize(). */
#define PATH_REJECT_ENCODED_SLASH 0x1u /* %2F and %5C are errors, not kept */

/*
 * A buffer of PATH_NORM_CAP(len) bytes always holds the normalisation of a
 * len-byte target: the output is never longer than the input, except that
 * the empty path of "http://h?q" becomes "/".  A smaller cap may fail even
 * when the result would fit: dot segments are written before they are
 * taken back.
 */
#define PATH_NORM_CAP(len) ((len) + 1)

/* Why a path was refused; each one is answered with 400. */
enum path_err {
	PATH_OK = 0,
	PATH_ERR_NOT_ABSOLUTE,	/* the path does not start with '/' */
	PATH_ERR_ESCAPE,	/* '%' not followed by two hex digits */
	PATH_ERR_NUL,		/* %00 */
	PATH_ERR_CHAR,		/* a raw CTL, space, '#' or '\' */
	PATH_ERR_ENCODED_SLASH, /* %2F or %5C with PATH_REJECT_ENCODED_SLASH */
	PATH_ERR_ABOVE_ROOT,	/* a ".." with no segment left to remove */
	PATH_ERR_AMBIGUOUS,	/* a ".." that removes an empty segment */
	PATH_ERR_TOO_LONG,	/* the result does not fit in cap */
};

/*
 * Normalise the origin-form request target in[0..len) ("/p?q"; "?q" and ""
 * stand for "/?q" and "/", as in "http://h?q"; "*" is kept as is) into
 * out[0..cap).  The path, up to the first '?', is:
 *   - percent-decoded where the escape is of an unreserved character
 *     (ALPHA DIGIT - . _ ~, RFC 3986 §2.3), hex digits in either case;
 *     every other escape is kept, its hex digits made uppercase (§6.2.2.1),
 *     so %2F and %5C never become separators;
 *   - rid of "." and ".." segments after decoding (§5.2.4), "%2e%2e" is
 *     "..", then of empty segments ("//" is "/");
 * the query, from the '?', is copied unchanged.  Returns PATH_OK with
 * *path_len the length of the normalised path (what routes match) and
 * *out_len that of path and query (what normalize_path: forward sends), or
 * the reason for a 400.  out is not NUL-terminated.  Borrows in and out.
 */
enum path_err path_normalize(const char *in, size_t len, unsigned flags,
			     char *out, size_t cap, size_t *path_len,
			     size_t *out_len);

/* A short English phrase for err, for the error log: "escape", ... */
const char *path_strerror(enum path_err err);

#endif
