/*
 * test_config_ban.c: the top-level ban: key (config/config_ban.c):
 * defaults, the off forms, every key, and the errors with their exact
 * "FILE:LINE:COL: message" (the set names are held to nft's identifier
 * syntax, since they go into an nft command).
 *
 * Inline YAML is written one line per string literal so that the line and
 * column an error names can be read off the source.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config_expect.h"

/* Lines 1-7: a listener and a backend; the ban: key is on line 8. */
#define BASE                                                                   \
	"listeners:\n"                                                         \
	"  - name: web\n"                                                      \
	"    bind: 127.0.0.1:8080\n"                                           \
	"    routes: [{ backend: app }]\n"                                     \
	"backends:\n"                                                          \
	"  app:\n"                                                             \
	"    servers: [{ address: 127.0.0.1:9000 }]\n"

/* Nothing written: off, 60 s, 10 min, "inet portcullis banned". */
START_TEST(test_defaults)
{
	struct config *cfg = load_ok(BASE);

	ck_assert_uint_eq(cfg->ban.after, 0);
	ck_assert_uint_eq(cfg->ban.within_ms, 60000);
	ck_assert_uint_eq(cfg->ban.for_ms, 600000);
	ck_assert_str_eq(cfg->ban.nft_set, "inet portcullis banned");
	ck_assert_ptr_null(cfg->ban.nft_set6);
	config_free(cfg);
}
END_TEST

START_TEST(test_off_forms)
{
	const char *off[] = {"ban: off\n", "ban: {}\n", "ban: { after: 0 }\n",
			     "ban: false\n"};

	for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
		char yaml[1024];
		struct config *cfg;

		snprintf(yaml, sizeof(yaml), "%s%s", BASE, off[i]);
		cfg = load_ok(yaml);
		ck_assert_uint_eq(cfg->ban.after, 0);
		ck_assert_str_eq(cfg->ban.nft_set, "inet portcullis banned");
		config_free(cfg);
	}
}
END_TEST

START_TEST(test_all_keys)
{
	struct config *cfg = load_ok(
		BASE "ban:\n"
		     "  after: 5\n"
		     "  within: 2m\n"
		     "  for: 1h\n"
		     "  nft_set: ip filter bad_clients\n"
		     "  nft_set6: ip6 filter bad-clients.v6\n");

	ck_assert_uint_eq(cfg->ban.after, 5);
	ck_assert_uint_eq(cfg->ban.within_ms, 120000);
	ck_assert_uint_eq(cfg->ban.for_ms, 3600000);
	ck_assert_str_eq(cfg->ban.nft_set, "ip filter bad_clients");
	ck_assert_str_eq(cfg->ban.nft_set6, "ip6 filter bad-clients.v6");
	ck_assert_int_eq(cfg->ban.line, 9);
	config_free(cfg);
}
END_TEST

/* Set names: family, two nft names, single spaces; nothing else. */
START_TEST(test_err_sets)
{
	EXPECT_ERROR(BASE "ban: { after: 3, nft_set: \"inet portcullis\" }\n",
		     "t.yaml:8:27: 'nft_set' must be \"FAMILY TABLE SET\" "
		     "with FAMILY inet or ip and nft names (letters, digits, "
		     "'_', '-', '.'; at most 63 each)");
	EXPECT_ERROR(BASE "ban: { nft_set: \"inet t s; flush ruleset\" }\n",
		     "t.yaml:8:17: 'nft_set' must be \"FAMILY TABLE SET\" "
		     "with FAMILY inet or ip and nft names (letters, digits, "
		     "'_', '-', '.'; at most 63 each)");
	EXPECT_ERROR(BASE "ban: { nft_set: \"ip6 t s\" }\n",
		     "t.yaml:8:17: 'nft_set' must be \"FAMILY TABLE SET\" "
		     "with FAMILY inet or ip and nft names (letters, digits, "
		     "'_', '-', '.'; at most 63 each)");
	EXPECT_ERROR(BASE "ban: { nft_set6: \"ip t s\" }\n",
		     "t.yaml:8:18: 'nft_set6' must be \"FAMILY TABLE SET\" "
		     "with FAMILY inet or ip6 and nft names (letters, digits, "
		     "'_', '-', '.'; at most 63 each)");
	EXPECT_ERROR(BASE "ban: { nft_set: \"inet  t s\" }\n",
		     "t.yaml:8:17: 'nft_set' must be \"FAMILY TABLE SET\" "
		     "with FAMILY inet or ip and nft names (letters, digits, "
		     "'_', '-', '.'; at most 63 each)");
	EXPECT_ERROR(BASE "ban: { nft_set: \"inet 1t s\" }\n",
		     "t.yaml:8:17: 'nft_set' must be \"FAMILY TABLE SET\" "
		     "with FAMILY inet or ip and nft names (letters, digits, "
		     "'_', '-', '.'; at most 63 each)");
}
END_TEST

START_TEST(test_err_values)
{
	EXPECT_ERRORS(BASE "ban: { after: 100001, within: 0s, for: 500ms, "
			   "bantime: 1m }\n",
		      "t.yaml:8:15: 'after' must be between 0 and 100000",
		      "t.yaml:8:31: 'within' must be at least 1s",
		      "t.yaml:8:40: 'for' must be at least 1s",
		      "t.yaml:8:47: unknown key 'bantime'");
}
END_TEST

static Suite *config_ban_suite(void)
{
	Suite *s = suite_create("config_ban");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_off_forms);
	tcase_add_test(tc, test_all_keys);
	tcase_add_test(tc, test_err_sets);
	tcase_add_test(tc, test_err_values);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_ban_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
