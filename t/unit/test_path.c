/*
 * test_path.c: request path normalisation (worker/path.c): every form of
 * "/admin" that must match a rule on "/admin", the dot-segment examples of
 * RFC 3986 §5.2.4 and §5.4 made into absolute paths, the refused forms,
 * the query kept as sent, and the output bound.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/path.h"

static char out[1024];
static size_t path_len, out_len;

static enum path_err norm_flags(const char *in, unsigned flags)
{
	memset(out, 0, sizeof(out));
	return path_normalize(in, strlen(in), flags, out, sizeof(out),
			      &path_len, &out_len);
}

/* in normalises to want (path and query), whose path part ends at '?'. */
static void expect_norm(int line, const char *in, unsigned flags,
			const char *want)
{
	enum path_err err = norm_flags(in, flags);
	const char *q = strchr(want, '?');

	ck_assert_msg(err == PATH_OK, "line %d: '%s' refused: %s", line, in,
		      path_strerror(err));
	ck_assert_msg(out_len == strlen(want) && !memcmp(out, want, out_len),
		      "line %d: '%s' gave '%.*s', not '%s'", line, in,
		      (int)out_len, out, want);
	ck_assert_msg(path_len == (q ? (size_t)(q - want) : strlen(want)),
		      "line %d: '%s': path_len %zu", line, in, path_len);
	ck_assert_msg(out_len <= PATH_NORM_CAP(strlen(in)),
		      "line %d: '%s' outgrew PATH_NORM_CAP", line, in);
}

static void expect_refused(int line, const char *in, unsigned flags,
			   enum path_err want)
{
	enum path_err err = norm_flags(in, flags);

	ck_assert_msg(err == want, "line %d: '%s' gave '%s', not '%s'", line,
		      in, path_strerror(err), path_strerror(want));
}

#define NORM(in, want)	      expect_norm(__LINE__, in, 0, want)
#define NORM_F(in, f, want)   expect_norm(__LINE__, in, f, want)
#define REFUSED(in, err)      expect_refused(__LINE__, in, 0, err)
#define REFUSED_F(in, f, err) expect_refused(__LINE__, in, f, err)

/* ---- the bypass forms (issue #12) ------------------------------------- */

/* Each of these is "/admin" to common servers: a rule on /admin must see it */
START_TEST(bypass_forms_are_admin)
{
	/* RFC 3986 §2.3, §6.2.2.2: unreserved escapes are the character */
	NORM("/%61dmin", "/admin");
	NORM("/%61%64%6d%69%6e", "/admin");
	NORM("/%61%64%6D%69%6E", "/admin");
	/* merged slashes */
	NORM("//admin", "/admin");
	NORM("///admin", "/admin");
	NORM("/.//admin", "/admin");
	/* RFC 3986 §5.2.4 remove_dot_segments */
	NORM("/x/../admin", "/admin");
	NORM("/./admin", "/admin");
	NORM("/x/y/../../admin", "/admin");
	NORM("/x/..//admin", "/admin");
	NORM("/admin/.", "/admin/");
	NORM("/admin/x/..", "/admin/");
	/* dot segments are resolved after decoding: %2e is '.' */
	NORM("/x/%2e%2e/admin", "/admin");
	NORM("/x/%2E%2E/admin", "/admin");
	NORM("/x/.%2e/admin", "/admin");
	NORM("/x/%2e./admin", "/admin");
	NORM("/%2e/admin", "/admin");
	NORM("/%2e%2e%2f..", "/..%2F.."); /* %2F: one segment, kept */
	/* all at once */
	NORM("//x/%2E%2e//.//%61dmi%6E", "/admin");
}
END_TEST

/* ---- RFC 3986 §5.4 and §5.2.4 examples -------------------------------- */

/*
 * RFC 3986 §5.4.1 and §5.4.2 with base "http://a/b/c/d;p?q": the
 * reference merged with the base path is "/b/c/" REF (§5.2.3), and its
 * dot segments resolve to the RFC's result.
 */
START_TEST(rfc3986_5_4_dot_segments)
{
	NORM("/b/c/g", "/b/c/g");
	NORM("/b/c/./g", "/b/c/g");
	NORM("/b/c/g/", "/b/c/g/");
	NORM("/b/c/.", "/b/c/");
	NORM("/b/c/./", "/b/c/");
	NORM("/b/c/..", "/b/");
	NORM("/b/c/../", "/b/");
	NORM("/b/c/../g", "/b/g");
	NORM("/b/c/../..", "/");
	NORM("/b/c/../../", "/");
	NORM("/b/c/../../g", "/g");
	/* §5.4.2 abnormal examples */
	NORM("/./g", "/g");
	NORM("/b/c/g.", "/b/c/g.");
	NORM("/b/c/.g", "/b/c/.g");
	NORM("/b/c/g..", "/b/c/g..");
	NORM("/b/c/..g", "/b/c/..g");
	NORM("/b/c/./../g", "/b/g");
	NORM("/b/c/./g/.", "/b/c/g/");
	NORM("/b/c/g/./h", "/b/c/g/h");
	NORM("/b/c/g/../h", "/b/c/h");
	NORM("/b/c/g;x=1/./y", "/b/c/g;x=1/y");
	NORM("/b/c/g;x=1/../y", "/b/c/y");
	/* §5.2.4's own walk-throughs */
	NORM("/a/b/c/./../../g", "/a/g");
	NORM("/mid/content=5/../6", "/mid/6");
}
END_TEST

/*
 * RFC 3986 §5.4.2: "../../../g" and "/../g" resolve to "/g" because
 * excess ".." are dropped.  A proxy that dropped them would pass
 * "/../admin" as "/admin" to a server that answers 400 or worse; refused.
 */
START_TEST(rfc3986_5_4_2_above_root_refused)
{
	REFUSED("/b/c/../../../g", PATH_ERR_ABOVE_ROOT);
	REFUSED("/b/c/../../../../g", PATH_ERR_ABOVE_ROOT);
	REFUSED("/../g", PATH_ERR_ABOVE_ROOT);
	REFUSED("/..", PATH_ERR_ABOVE_ROOT);
	REFUSED("/%2e%2e/admin", PATH_ERR_ABOVE_ROOT);
	REFUSED("/x/../../admin", PATH_ERR_ABOVE_ROOT);
	REFUSED("/./../admin", PATH_ERR_ABOVE_ROOT);
}
END_TEST

/*
 * "/a//../b" is "/a/b" by RFC 3986 §5.2.4 (the ".." removes the empty
 * segment) and "/b" to a server that merges slashes first: refused.
 */
START_TEST(rfc3986_5_2_4_dotdot_after_empty_segment)
{
	REFUSED("/a//../b", PATH_ERR_AMBIGUOUS);
	REFUSED("//../admin", PATH_ERR_AMBIGUOUS);
	REFUSED("/a/b/..//..", PATH_ERR_AMBIGUOUS);
	REFUSED("/a//%2e%2e/b", PATH_ERR_AMBIGUOUS);
	/* both readings agree on these */
	NORM("/a//./b", "/a/b");
	NORM("/a/..//b", "/b");
	NORM("/a/", "/a/");
	NORM("/a//", "/a/");
}
END_TEST

/* ---- escapes ---------------------------------------------------------- */

/* RFC 3986 §2.1, §6.2.2.1: other escapes are kept, in uppercase hex */
START_TEST(rfc3986_6_2_2_1_escapes_kept_uppercase)
{
	NORM("/a%20b", "/a%20b");
	NORM("/%c3%a9t%C3%a9", "/%C3%A9t%C3%A9");
	NORM("/%3f", "/%3F"); /* an encoded '?' is not the query */
	NORM("/%25", "/%25");
	NORM("/%2561dmin", "/%2561dmin"); /* decoded once, not twice */
	NORM("/%7e%7E%2d%2D%5f%5F%2e", "/~~--__.");
	NORM("/%41%5A%61%7A%30%39", "/AZaz09");
	/* sub-delims and gen-delims stay escaped: they may mean something */
	NORM("/%21%24%26%27%28%29%2a%2b%2c%3b%3d%3a%40",
	     "/%21%24%26%27%28%29%2A%2B%2C%3B%3D%3A%40");
	/* raw sub-delims, ':' and '@' are pchars, kept as they are */
	NORM("/a:b@c!$&'()*+,;=", "/a:b@c!$&'()*+,;=");
}
END_TEST

/* %2F and %5C never become separators; optionally refused */
START_TEST(encoded_slash_and_backslash)
{
	NORM("/a%2fb", "/a%2Fb");
	NORM("/a%2Fb", "/a%2Fb");
	NORM("/a%5cb", "/a%5Cb");
	NORM("/x%2F..%2Fadmin", "/x%2F..%2Fadmin");
	NORM("/x/..%2F/admin", "/x/..%2F/admin");
	NORM("/x/..%5c/admin", "/x/..%5C/admin");
	REFUSED_F("/a%2fb", PATH_REJECT_ENCODED_SLASH, PATH_ERR_ENCODED_SLASH);
	REFUSED_F("/a%2Fb", PATH_REJECT_ENCODED_SLASH, PATH_ERR_ENCODED_SLASH);
	REFUSED_F("/a%5Cb", PATH_REJECT_ENCODED_SLASH, PATH_ERR_ENCODED_SLASH);
	REFUSED_F("/a%5cb", PATH_REJECT_ENCODED_SLASH, PATH_ERR_ENCODED_SLASH);
	/* the flag touches nothing else */
	NORM_F("/x/../%61dmin%20", PATH_REJECT_ENCODED_SLASH, "/admin%20");
}
END_TEST

/* RFC 3986 §2.1: pct-encoded = "%" HEXDIG HEXDIG */
START_TEST(rfc3986_2_1_invalid_escapes_refused)
{
	REFUSED("/%zz", PATH_ERR_ESCAPE);
	REFUSED("/%", PATH_ERR_ESCAPE);
	REFUSED("/a%", PATH_ERR_ESCAPE);
	REFUSED("/a%4", PATH_ERR_ESCAPE);
	REFUSED("/a%4?x", PATH_ERR_ESCAPE);
	REFUSED("/a%g1", PATH_ERR_ESCAPE);
	REFUSED("/a%1g", PATH_ERR_ESCAPE);
	REFUSED("/a%%41", PATH_ERR_ESCAPE);
	REFUSED("/a%-1", PATH_ERR_ESCAPE);
	REFUSED("/a% 1", PATH_ERR_ESCAPE);
	REFUSED("/a%00", PATH_ERR_NUL);
	REFUSED("/%00/admin", PATH_ERR_NUL);
}
END_TEST

/* Raw bytes: '\' and '#' refused, CTLs too (the parser already does) */
START_TEST(raw_characters)
{
	REFUSED("/a\\b", PATH_ERR_CHAR);
	REFUSED("/x\\..\\admin", PATH_ERR_CHAR);
	REFUSED("/admin#x", PATH_ERR_CHAR); /* RFC 9112 §3.2.1: no fragment */
	REFUSED("/a b", PATH_ERR_CHAR);
	REFUSED("/a\tb", PATH_ERR_CHAR);
	REFUSED("/a\x7f", PATH_ERR_CHAR);
	REFUSED("/a\x01", PATH_ERR_CHAR);
	/* obs-text passes, as the parser lets it (RFC 9112 §3.2) */
	NORM("/caf\xc3\xa9/../x", "/x");
	/* characters outside pchar that clients send raw are kept */
	NORM("/a|b{c}\"<>^`[]", "/a|b{c}\"<>^`[]");
}
END_TEST

/* ---- the query, the other target forms -------------------------------- */

/* RFC 3986 §3.4: the query is everything after the first '?', untouched */
START_TEST(rfc3986_3_4_query_untouched)
{
	NORM("/x/../a?b=%61&c=/../d", "/a?b=%61&c=/../d");
	NORM("/%61?%61", "/a?%61");
	NORM("/a?", "/a?");
	NORM("/a??x", "/a??x");
	NORM("/a?x=%zz%00\\#", "/a?x=%zz%00\\#");
	NORM("//a//?//", "/a/?//");
	REFUSED("/../a?x", PATH_ERR_ABOVE_ROOT);
}
END_TEST

/* RFC 9112 §3.2.2, §3.2.4: "http://h?q" has the path "/"; "*" stays */
START_TEST(rfc9112_3_2_other_forms)
{
	NORM("", "/");
	NORM("?q=1", "/?q=1");
	NORM("*", "*");
	REFUSED("a/b", PATH_ERR_NOT_ABSOLUTE);
	REFUSED("*/a", PATH_ERR_NOT_ABSOLUTE);
	REFUSED("%2F", PATH_ERR_NOT_ABSOLUTE);
	REFUSED("http://h/a", PATH_ERR_NOT_ABSOLUTE);
}
END_TEST

/* ---- output bounds ---------------------------------------------------- */

static enum path_err norm_cap(const char *in, size_t cap, char *buf)
{
	return path_normalize(in, strlen(in), 0, buf, cap, &path_len,
			      &out_len);
}

START_TEST(cap_exact_and_overflow)
{
	char buf[64];
	char *heap;

	/* the exact size is enough; one less is not */
	ck_assert_int_eq(norm_cap("/a/./b?q=1", 8, buf), PATH_OK);
	ck_assert_uint_eq(out_len, 8);
	ck_assert(!memcmp(buf, "/a/b?q=1", 8));
	ck_assert_int_eq(norm_cap("/a/./b?q=1", 7, buf), PATH_ERR_TOO_LONG);
	ck_assert_int_eq(norm_cap("/abc", 3, buf), PATH_ERR_TOO_LONG);
	ck_assert_int_eq(norm_cap("/abc", 0, buf), PATH_ERR_TOO_LONG);
	ck_assert_int_eq(norm_cap("", 0, buf), PATH_ERR_TOO_LONG);
	ck_assert_int_eq(norm_cap("", 1, buf), PATH_OK);
	ck_assert_int_eq(norm_cap("/%20", 3, buf), PATH_ERR_TOO_LONG);
	ck_assert_int_eq(norm_cap("/%20", 4, buf), PATH_OK);
	/* a dot segment needs room while it is written, then is taken back */
	ck_assert_int_eq(norm_cap("/a/..", 2, buf), PATH_ERR_TOO_LONG);
	ck_assert_int_eq(norm_cap("/a/..", 5, buf), PATH_OK);
	ck_assert_uint_eq(out_len, 1);
	ck_assert_int_eq(buf[0], '/');

	/* nothing is written past cap (ASan sees a heap overflow) */
	heap = malloc(5);
	ck_assert_ptr_nonnull(heap);
	ck_assert_int_eq(norm_cap("/abcdef", 5, heap), PATH_ERR_TOO_LONG);
	ck_assert_int_eq(norm_cap("/ab?cdef", 5, heap), PATH_ERR_TOO_LONG);
	ck_assert_int_eq(norm_cap("/%41%42%43%44%45", 5, heap),
			 PATH_ERR_TOO_LONG);
	ck_assert_int_eq(norm_cap("/%41%42%43%44", 5, heap), PATH_OK);
	ck_assert(!memcmp(heap, "/ABCD", 5));
	free(heap);
}
END_TEST

/*
 * Properties over many generated paths: the result fits in
 * PATH_NORM_CAP, has no dot segment, no "//" and no unreserved escape
 * left, and normalising it again changes nothing.
 */
static bool has_dot_segment(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t e = i + 1, len;

		if (p[i] != '/')
			continue;
		while (e < n && p[e] != '/')
			e++;
		len = e - i - 1;
		if ((len == 1 || len == 2) && !memcmp(p + i + 1, "..", len))
			return true;
	}
	return false;
}

START_TEST(normal_form_is_stable)
{
	static const char alphabet[] = "//..%%2eE6f1aF?x\\";
	unsigned seed = 12345, nok = 0;
	char in[24], once[64], twice[64];

	for (int t = 0; t < 30000; t++) {
		size_t len = 1 + (seed >> 8) % (sizeof(in) - 2), plen, olen,
		       plen2, olen2;

		in[0] = '/';
		for (size_t i = 1; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = alphabet[(seed >> 16) %
					 (sizeof(alphabet) - 1)];
		}
		seed = seed * 1103515245u + 12345u;
		if (path_normalize(in, len, 0, once, PATH_NORM_CAP(len),
				   &plen, &olen) != PATH_OK)
			continue;
		nok++;
		ck_assert_msg(!has_dot_segment(once, plen) &&
				      !memmem(once, plen, "//", 2),
			      "'%.*s' -> '%.*s'", (int)len, in, (int)olen,
			      once);
		ck_assert_msg(!memmem(once, plen, "%2E", 3) &&
				      !memmem(once, plen, "%2e", 3) &&
				      !memmem(once, plen, "%61", 3),
			      "'%.*s' -> '%.*s'", (int)len, in, (int)olen,
			      once);
		ck_assert_int_eq(path_normalize(once, olen, 0, twice,
						sizeof(twice), &plen2, &olen2),
				 PATH_OK);
		ck_assert_msg(olen2 == olen && plen2 == plen &&
				      !memcmp(once, twice, olen),
			      "'%.*s' -> '%.*s' -> '%.*s'", (int)len, in,
			      (int)olen, once, (int)olen2, twice);
	}
	ck_assert_uint_gt(nok, 300); /* the generator does reach valid paths */
}
END_TEST

START_TEST(strerror_names_every_error)
{
	for (int e = PATH_OK; e <= PATH_ERR_TOO_LONG; e++)
		ck_assert_str_ne(path_strerror((enum path_err)e), "?");
}
END_TEST

static Suite *path_suite(void)
{
	Suite *s = suite_create("path");
	TCase *tc = tcase_create("normalize");

	tcase_add_test(tc, bypass_forms_are_admin);
	tcase_add_test(tc, rfc3986_5_4_dot_segments);
	tcase_add_test(tc, rfc3986_5_4_2_above_root_refused);
	tcase_add_test(tc, rfc3986_5_2_4_dotdot_after_empty_segment);
	tcase_add_test(tc, rfc3986_6_2_2_1_escapes_kept_uppercase);
	tcase_add_test(tc, encoded_slash_and_backslash);
	tcase_add_test(tc, rfc3986_2_1_invalid_escapes_refused);
	tcase_add_test(tc, raw_characters);
	tcase_add_test(tc, rfc3986_3_4_query_untouched);
	tcase_add_test(tc, rfc9112_3_2_other_forms);
	tcase_add_test(tc, cap_exact_and_overflow);
	tcase_add_test(tc, normal_form_is_stable);
	tcase_add_test(tc, strerror_names_every_error);
	tcase_set_timeout(tc, 60); /* the generated paths, on a loaded host */
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(path_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
