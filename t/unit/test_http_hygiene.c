/*
 * test_http_hygiene.c: the request hygiene helpers of worker/http.c
 * (issue #12): http_msg.has_cl_repeated, http_is_ambiguous() and
 * http_name_has_underscore().  The parser itself is test_http.c's.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/http.h"

static struct http_msg msg;
static char buf[1024];

/* Parse "METHOD / HTTP/1.1" with Host and the extra header lines hdrs. */
static enum http_err req(const char *method, const char *hdrs)
{
	int n = snprintf(buf, sizeof(buf), "%s / HTTP/1.1\r\nHost: a\r\n%s\r\n",
			 method, hdrs);

	return http_parse_request(buf, (size_t)n, &msg);
}

/* RFC 9110 §8.6: identical Content-Length values collapse, and say so */
START_TEST(rfc9110_8_6_cl_repeated_flag)
{
	ck_assert_int_eq(req("POST", "Content-Length: 5\r\n"), HTTP_OK);
	ck_assert(!msg.has_cl_repeated);
	ck_assert_int_eq(req("POST", "Content-Length: 5, 5\r\n"), HTTP_OK);
	ck_assert(msg.has_cl_repeated);
	ck_assert_uint_eq(msg.content_length, 5);
	ck_assert_int_eq(
		req("POST", "Content-Length: 5\r\ncontent-length: 5\r\n"),
		HTTP_OK);
	ck_assert(msg.has_cl_repeated);
	ck_assert_int_eq(req("POST", "Content-Length: 0,0,0\r\n"), HTTP_OK);
	ck_assert(msg.has_cl_repeated);
	/* reset by the next parse */
	ck_assert_int_eq(req("POST", "Content-Length: 5\r\n"), HTTP_OK);
	ck_assert(!msg.has_cl_repeated);
	ck_assert_int_eq(req("POST", "Transfer-Encoding: chunked\r\n"),
			 HTTP_OK);
	ck_assert(!msg.has_cl_repeated);
	/* differing values are still a 400, never "repeated" */
	ck_assert_int_eq(req("POST", "Content-Length: 5, 6\r\n"),
			 HTTP_ERR_BAD_REQUEST);
}
END_TEST

/* The response parser sets the flag the same way */
START_TEST(rfc9110_8_6_cl_repeated_response)
{
	static const char r[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
				"Content-Length: 2\r\n\r\n";

	ck_assert_int_eq(http_parse_response(r, sizeof(r) - 1, false, &msg),
			 HTTP_OK);
	ck_assert(msg.has_cl_repeated);
}
END_TEST

/*
 * RFC 9110 §9.3.1, §9.3.2: content in GET and HEAD has no defined
 * semantics, so some servers ignore it (and read it as the next request)
 */
START_TEST(rfc9110_9_3_get_head_with_body)
{
	ck_assert_int_eq(req("GET", "Content-Length: 3\r\n"), HTTP_OK);
	ck_assert(http_is_ambiguous(buf, &msg));
	ck_assert_int_eq(req("HEAD", "Content-Length: 1\r\n"), HTTP_OK);
	ck_assert(http_is_ambiguous(buf, &msg));
	ck_assert_int_eq(req("GET", "Transfer-Encoding: chunked\r\n"),
			 HTTP_OK);
	ck_assert(http_is_ambiguous(buf, &msg));
	ck_assert_int_eq(req("HEAD", "Transfer-Encoding: chunked\r\n"),
			 HTTP_OK);
	ck_assert(http_is_ambiguous(buf, &msg));
	/* no body, or an empty one: nothing to misread */
	ck_assert_int_eq(req("GET", ""), HTTP_OK);
	ck_assert(!http_is_ambiguous(buf, &msg));
	ck_assert_int_eq(req("GET", "Content-Length: 0\r\n"), HTTP_OK);
	ck_assert(!http_is_ambiguous(buf, &msg));
	ck_assert_int_eq(req("HEAD", ""), HTTP_OK);
	ck_assert(!http_is_ambiguous(buf, &msg));
	/* methods compare case-sensitively (RFC 9110 §9.1): "get" is not GET */
	ck_assert_int_eq(req("get", "Content-Length: 3\r\n"), HTTP_OK);
	ck_assert(!http_is_ambiguous(buf, &msg));
	/* a body where one is expected */
	ck_assert_int_eq(req("POST", "Content-Length: 3\r\n"), HTTP_OK);
	ck_assert(!http_is_ambiguous(buf, &msg));
	ck_assert_int_eq(req("PUT", "Transfer-Encoding: chunked\r\n"),
			 HTTP_OK);
	ck_assert(!http_is_ambiguous(buf, &msg));
}
END_TEST

/* RFC 9110 §8.6: a repeated identical Content-Length, whatever the method */
START_TEST(rfc9110_8_6_repeated_cl_is_ambiguous)
{
	ck_assert_int_eq(req("POST", "Content-Length: 3, 3\r\n"), HTTP_OK);
	ck_assert(http_is_ambiguous(buf, &msg));
	ck_assert_int_eq(
		req("PUT", "Content-Length: 3\r\nContent-Length: 3\r\n"),
		HTTP_OK);
	ck_assert(http_is_ambiguous(buf, &msg));
	ck_assert_int_eq(req("GET", "Content-Length: 0\r\nContent-Length: 0\r\n"),
			 HTTP_OK);
	ck_assert(http_is_ambiguous(buf, &msg));
}
END_TEST

/* RFC 9110 §5.1 field names: '_' is a tchar, but CGI maps it onto '-' */
START_TEST(rfc9110_5_1_underscore_names)
{
	ck_assert_int_eq(req("GET", "X_Forwarded_For: 1.2.3.4\r\n"
				    "X-Real-IP: 1\r\n"
				    "_: x\r\n"
				    "Accept: */*\r\n"
				    "Trailing_: y\r\n"),
			 HTTP_OK);
	ck_assert_uint_eq(msg.nheaders, 6);
	ck_assert(!http_name_has_underscore(buf, msg.headers[0].name)); /* Host */
	ck_assert(http_name_has_underscore(buf, msg.headers[1].name));
	ck_assert(!http_name_has_underscore(buf, msg.headers[2].name));
	ck_assert(http_name_has_underscore(buf, msg.headers[3].name));
	ck_assert(!http_name_has_underscore(buf, msg.headers[4].name));
	ck_assert(http_name_has_underscore(buf, msg.headers[5].name));
	/* only the name counts, not the value */
	ck_assert_int_eq(req("GET", "X-A: a_b\r\n"), HTTP_OK);
	ck_assert(!http_name_has_underscore(buf, msg.headers[1].name));
}
END_TEST

static Suite *http_hygiene_suite(void)
{
	Suite *s = suite_create("http_hygiene");
	TCase *tc = tcase_create("hygiene");

	tcase_add_test(tc, rfc9110_8_6_cl_repeated_flag);
	tcase_add_test(tc, rfc9110_8_6_cl_repeated_response);
	tcase_add_test(tc, rfc9110_9_3_get_head_with_body);
	tcase_add_test(tc, rfc9110_8_6_repeated_cl_is_ambiguous);
	tcase_add_test(tc, rfc9110_5_1_underscore_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(http_hygiene_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
