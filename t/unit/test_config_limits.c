/*
 * test_config_limits.c: rate_limit: of listeners and routes,
 * max_connections and max_connections_per_client of listeners and the
 * top-level rate_limit_table (config/config_limits.c): values, defaults,
 * the ids that keep a limit's state across reloads, and the errors with
 * their exact "FILE:LINE:COL: message".
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

/* Lines 1-3: an http listener; line 4 is the caller's. */
#define LISTENER_HEAD                                                          \
	"listeners:\n"                                                         \
	"  - name: web\n"                                                      \
	"    bind: 127.0.0.1:8080\n"
/* Two lines: the routes of the listener, the first one with line x. */
#define ROUTES(x)                                                              \
	"    routes:\n"                                                        \
	"      - backend: app\n" x
#define BACKEND_APP                                                            \
	"backends:\n"                                                          \
	"  app:\n"                                                             \
	"    servers:\n"                                                       \
	"      - address: 127.0.0.1:9000\n"

/* ---- helpers ---------------------------------------------------------- */

/* ---- values and defaults ------------------------------------------------ */

/* Nothing written: no limits, a 100,000-entry table. */
START_TEST(test_defaults)
{
	struct config *cfg = load_ok(LISTENER_HEAD ROUTES("") BACKEND_APP);
	struct cfg_listener *l = &cfg->listeners[0];

	ck_assert_uint_eq(cfg->rate_limit_table, 100000);
	ck_assert_uint_eq(l->max_connections, 0);
	ck_assert_uint_eq(l->max_connections_per_client, 0);
	ck_assert_uint_eq(l->rate_limit.rps, 0);
	ck_assert_uint_eq(l->rate_limit.prefix_v4, 32);
	ck_assert_uint_eq(l->rate_limit.prefix_v6, 64);
	ck_assert_uint_eq(l->routes[0].rate_limit.rps, 0);
	config_free(cfg);
}
END_TEST

/* The off forms: off, {}, requests_per_second 0 (the SPEC's example). */
START_TEST(test_off_forms)
{
	struct config *cfg = load_ok(
		LISTENER_HEAD
		"    rate_limit: { requests_per_second: 0, burst: 0 }\n" ROUTES(
			"        rate_limit: off\n"
			"      - backend: app\n"
			"        rate_limit: {}\n") BACKEND_APP);
	struct cfg_listener *l = &cfg->listeners[0];

	ck_assert_uint_eq(l->rate_limit.rps, 0);
	ck_assert_uint_eq(l->routes[0].rate_limit.rps, 0);
	ck_assert_uint_eq(l->routes[1].rate_limit.rps, 0);
	config_free(cfg);
}
END_TEST

START_TEST(test_all_keys)
{
	struct config *cfg = load_ok(
		"rate_limit_table: 5000\n" LISTENER_HEAD
		"    max_connections: 1000\n"
		"    max_connections_per_client: 20\n"
		"    rate_limit: {requests_per_second: 100, burst: 50, "
		"key_prefix_v4: 24, key_prefix_v6: 48}\n" ROUTES(
			"        rate_limit:\n"
			"          requests_per_second: 5\n"
			"      - backend: app\n"
			"        path_prefix: /b\n"
			"        rate_limit: {requests_per_second: 7}\n")
			BACKEND_APP);
	struct cfg_listener *l = &cfg->listeners[0];

	ck_assert_uint_eq(cfg->rate_limit_table, 5000);
	ck_assert_uint_eq(l->max_connections, 1000);
	ck_assert_uint_eq(l->max_connections_per_client, 20);
	ck_assert_uint_eq(l->rate_limit.rps, 100);
	ck_assert_uint_eq(l->rate_limit.burst, 50);
	ck_assert_uint_eq(l->rate_limit.prefix_v4, 24);
	ck_assert_uint_eq(l->rate_limit.prefix_v6, 48);
	ck_assert_uint_eq(l->routes[0].rate_limit.rps, 5);
	ck_assert_uint_eq(l->routes[0].rate_limit.burst, 0);
	ck_assert_uint_eq(l->routes[0].rate_limit.prefix_v4, 32);
	ck_assert_uint_eq(l->routes[0].rate_limit.prefix_v6, 64);
	ck_assert_uint_eq(l->routes[1].rate_limit.rps, 7);
	config_free(cfg);
}
END_TEST

/*
 * The ids: the same for the same listener name and route position in
 * two loads (a reload), different between the listener and its routes
 * and between listeners.
 */
START_TEST(test_ids_stable)
{
	const char
		*yaml = LISTENER_HEAD "    rate_limit: {requests_per_second: "
				      "1}\n" ROUTES("        rate_limit: "
						    "{requests_per_second: 1}\n"
						    "      - backend: app\n"
						    "        rate_limit: "
						    "{requests_per_second: "
						    "1}\n") "  - name: api\n"
							    "    bind: "
							    "127.0.0.1:8081\n"
							    "    rate_limit: "
							    "{requests_per_"
							    "second: 1}\n"
							    "    routes: "
							    "[{backend: "
							    "app}]"
							    "\n" BACKEND_APP;
	struct config *a = load_ok(yaml), *b = load_ok(yaml);
	struct cfg_listener *w = &a->listeners[0], *api = &a->listeners[1];

	ck_assert_uint_ne(w->rate_limit.id, 0);
	ck_assert_uint_eq(w->rate_limit.id, b->listeners[0].rate_limit.id);
	ck_assert_uint_eq(w->routes[1].rate_limit.id,
			  b->listeners[0].routes[1].rate_limit.id);
	ck_assert_uint_ne(w->rate_limit.id, w->routes[0].rate_limit.id);
	ck_assert_uint_ne(w->routes[0].rate_limit.id,
			  w->routes[1].rate_limit.id);
	ck_assert_uint_ne(w->rate_limit.id, api->rate_limit.id);
	config_free(a);
	config_free(b);
}
END_TEST

/* The bounds themselves are accepted. */
START_TEST(test_bounds_ok)
{
	struct config *cfg = load_ok(
		"rate_limit_table: 16\n" LISTENER_HEAD
		"    max_connections_per_client: 65535\n"
		"    rate_limit: {requests_per_second: 1000000, burst: "
		"1000000, key_prefix_v4: 1, key_prefix_v6: 128}\n" ROUTES(
			"        rate_limit: {requests_per_second: 0}\n")
			BACKEND_APP);

	ck_assert_uint_eq(cfg->rate_limit_table, 16);
	ck_assert_uint_eq(cfg->listeners[0].max_connections_per_client, 65535);
	ck_assert_uint_eq(cfg->listeners[0].rate_limit.prefix_v6, 128);
	ck_assert_uint_eq(cfg->listeners[0].routes[0].rate_limit.rps, 0);
	config_free(cfg);
}
END_TEST

/* ---- errors ----------------------------------------------------------------
 */

START_TEST(test_err_rate_limit)
{
	EXPECT_ERROR(LISTENER_HEAD "    rate_limit: 10\n" ROUTES("")
			     BACKEND_APP,
		     "t.yaml:4:17: rate_limit: expected a mapping");
	EXPECT_ERROR(LISTENER_HEAD "    rate_limit: {burst: 5}\n" ROUTES("")
			     BACKEND_APP,
		     "t.yaml:4:18: 'burst' needs requests_per_second above 0 "
		     "(0 turns the limit off)");
	EXPECT_ERROR(
		LISTENER_HEAD
		"    rate_limit: {requests_per_second: 0, burst: 5}\n" ROUTES(
			"") BACKEND_APP,
		"t.yaml:4:42: 'burst' needs requests_per_second above 0 "
		"(0 turns the limit off)");
	EXPECT_ERRORS(
		LISTENER_HEAD
		"    rate_limit: {requests_per_second: -1, key_prefix_v4: "
		"33, key_prefix_v6: 0}\n" ROUTES("") BACKEND_APP,
		"t.yaml:4:39: 'requests_per_second' must be an integer",
		"t.yaml:4:58: 'key_prefix_v4' must be between 1 and 32",
		"t.yaml:4:77: 'key_prefix_v6' must be between 1 and 128");
	EXPECT_ERROR(LISTENER_HEAD
		     "    rate_limit: {requests_per_second: 1000001}\n" ROUTES(
			     "") BACKEND_APP,
		     "t.yaml:4:39: 'requests_per_second' must be between 0 "
		     "and 1000000");
	EXPECT_ERROR(
		LISTENER_HEAD
		"    rate_limit: {requests_per_second: 5, brust: 5}\n" ROUTES(
			"") BACKEND_APP,
		"t.yaml:4:42: unknown key 'brust'; did you mean 'burst'?");
}
END_TEST

START_TEST(test_err_route_rate_limit)
{
	EXPECT_ERROR(LISTENER_HEAD ROUTES(
			     "        rate_limit: {requests_per_second: x}\n")
			     BACKEND_APP,
		     "t.yaml:6:43: 'requests_per_second' must be an integer");
}
END_TEST

START_TEST(test_err_connections)
{
	EXPECT_ERROR(LISTENER_HEAD
		     "    max_connections_per_client: 65536\n" ROUTES("")
			     BACKEND_APP,
		     "t.yaml:4:33: 'max_connections_per_client' must be "
		     "between 0 and 65535");
	EXPECT_ERROR(LISTENER_HEAD "    max_connections: many\n" ROUTES("")
			     BACKEND_APP,
		     "t.yaml:4:22: 'max_connections' must be an integer");
	EXPECT_ERROR("rate_limit_table: 8\n" LISTENER_HEAD ROUTES("")
			     BACKEND_APP,
		     "t.yaml:1:19: 'rate_limit_table' must be between 16 and "
		     "16777216");
}
END_TEST

static Suite *config_limits_suite(void)
{
	Suite *s = suite_create("config_limits");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_off_forms);
	tcase_add_test(tc, test_all_keys);
	tcase_add_test(tc, test_ids_stable);
	tcase_add_test(tc, test_bounds_ok);
	tcase_add_test(tc, test_err_rate_limit);
	tcase_add_test(tc, test_err_route_rate_limit);
	tcase_add_test(tc, test_err_connections);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_limits_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
