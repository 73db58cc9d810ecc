/* test_access.c: access-log lines (worker/access.c). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker/access.h"

static struct access_str S(const char *s)
{
	struct access_str a = {s, strlen(s)};

	return a;
}

/* Log r in format f to a temporary file and return its content. */
static char *log_one(const struct access_rec *r, enum cfg_access_format f)
{
	char path[] = "/tmp/pc-access-XXXXXX";
	static char out[16384];
	char err[256];
	int fd = mkstemp(path);
	FILE *fp;
	size_t n;

	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(access_open(path, f, (uid_t)-1, (gid_t)-1, err, sizeof(err)), 0);
	access_log(r);
	access_close();
	fp = fopen(path, "r");
	n = fread(out, 1, sizeof(out) - 1, fp);
	out[n] = '\0';
	fclose(fp);
	unlink(path);
	return out;
}

static struct access_rec sample(void)
{
	struct access_rec r;

	memset(&r, 0, sizeof(r));
	r.client = "192.0.2.7";
	r.method = S("GET");
	r.uri = S("/a?b=\"c\"");
	r.agent = S("curl/8");
	r.request_id = S("abc123");
	r.version = 11;
	r.status = 200;
	r.bytes_in = 77;
	r.bytes_out = 1234;
	r.duration_ms = 5;
	r.listener = "web";
	r.route = 2;
	r.backend = "app";
	r.server = "10.0.0.1:80";
	r.upstream_status = 200;
	r.upstream_connect_ms = 1;
	r.upstream_response_ms = 4;
	return r;
}

START_TEST(test_combined_line)
{
	struct access_rec r = sample();
	char *line = log_one(&r, CFG_ACCESS_COMBINED);

	ck_assert_ptr_nonnull(strstr(line, "192.0.2.7 - - ["));
	ck_assert_ptr_nonnull(
		strstr(line, "] \"GET /a?b=\\\"c\\\" HTTP/1.1\" 200 1234 \"-\" "
			     "\"curl/8\"\n"));
	ck_assert_ptr_eq(strchr(line, '\n'), line + strlen(line) - 1);
}
END_TEST

START_TEST(test_json_line)
{
	struct access_rec r = sample();
	char *line = log_one(&r, CFG_ACCESS_JSON);
	const char *want[] = {
		"{\"time\":\"", "\"client\":\"192.0.2.7\"", "\"method\":\"GET\"",
		"\"uri\":\"/a?b=\\\"c\\\"\"", "\"status\":200", "\"bytes_in\":77",
		"\"bytes_out\":1234", "\"duration_ms\":5", "\"route\":\"web#2\"",
		"\"backend\":\"app\"", "\"server\":\"10.0.0.1:80\"",
		"\"upstream_status\":200", "\"upstream_connect_ms\":1",
		"\"upstream_response_ms\":4", "\"request_id\":\"abc123\"",
		"\"referer\":null", "}\n", NULL};

	for (int i = 0; want[i]; i++)
		ck_assert_msg(strstr(line, want[i]) != NULL, "missing %s in %s",
			      want[i], line);
}
END_TEST

/* Unknown upstream values are null, never made up. */
START_TEST(test_json_nulls)
{
	struct access_rec r = sample();
	char *line;

	r.backend = r.server = NULL;
	r.route = 0;
	r.upstream_status = 0;
	r.upstream_connect_ms = r.upstream_response_ms = -1;
	r.method.len = 0;
	r.status = 400;
	line = log_one(&r, CFG_ACCESS_JSON);
	ck_assert_ptr_nonnull(strstr(line, "\"method\":null"));
	ck_assert_ptr_nonnull(strstr(line, "\"route\":null"));
	ck_assert_ptr_nonnull(strstr(line, "\"backend\":null"));
	ck_assert_ptr_nonnull(strstr(line, "\"upstream_status\":null"));
	ck_assert_ptr_nonnull(strstr(line, "\"upstream_connect_ms\":null"));
}
END_TEST

/* Control bytes and quotes cannot break a line or a JSON string. */
START_TEST(test_escape)
{
	char out[64];
	struct access_str s = {"a\"b\\c\n\x01\xff", 8};
	size_t n = access_escape(out, sizeof(out), s, true);

	out[n] = '\0';
	ck_assert_str_eq(out, "a\\\"b\\\\c\\u000a\\u0001\\u00ff");
	n = access_escape(out, sizeof(out), s, false);
	out[n] = '\0';
	ck_assert_str_eq(out, "a\\\"b\\\\c\\x0a\\x01\\xff");
	s.len = 0;
	n = access_escape(out, sizeof(out), s, false);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(out[0], '-');
}
END_TEST

/*
 * A field fills its cap to the last character: a 64-digit fingerprint in
 * 64 bytes is whole (it lost 5 digits when every character was assumed
 * to need an escape's 6 bytes), and an escape that does not fit is left
 * out whole, never cut.
 */
START_TEST(test_escape_fills_cap)
{
	const char *fp = "e70a0487b6ef219e922cd7219486cae3"
			 "b7edc0722ae494729c729066b5dfa3ba";
	struct access_str s = {fp, 64};
	char out[64];
	size_t n = access_escape(out, sizeof(out), s, true);

	ck_assert_uint_eq(n, 64);
	ck_assert_int_eq(memcmp(out, fp, 64), 0);
	s = (struct access_str){"abc\x01", 4};
	n = access_escape(out, 8, s, true); /* "abc" + 6 would be 9 */
	ck_assert_uint_eq(n, 3);
	n = access_escape(out, 9, s, true);
	ck_assert_uint_eq(n, 9);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("access");
	TCase *tc = tcase_create("access");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_combined_line);
	tcase_add_test(tc, test_json_line);
	tcase_add_test(tc, test_json_nulls);
	tcase_add_test(tc, test_escape);
	tcase_add_test(tc, test_escape_fills_cap);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
