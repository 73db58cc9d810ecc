/*
 * test_config_hygiene.c: the request hygiene keys (config/config_hygiene.c):
 * a route's methods: and a listener's underscores_in_headers:,
 * ambiguous_requests: and normalize_path:, with their defaults and their
 * errors as exact "FILE:LINE:COL: message".
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

/* Lines 1-3: an http listener; its keys are indented by four spaces. */
#define LISTENER_WEB                                                           \
	"listeners:\n"                                                         \
	"  - name: web\n"                                                      \
	"    bind: 127.0.0.1:8080\n"
/* Lines 4-5 (after a listener line at 4, 5-6): the routes, one route. */
#define ROUTES                                                                 \
	"    routes:\n"                                                        \
	"      - backend: app\n"
/* Four lines: the backend app. */
#define BACKEND_APP                                                            \
	"backends:\n"                                                          \
	"  app:\n"                                                             \
	"    servers:\n"                                                       \
	"      - address: 127.0.0.1:9000\n"

/* A listener with one extra line (line 4) and one route (lines 5-6). */
#define LISTENER_WITH(line4) LISTENER_WEB line4 ROUTES BACKEND_APP
/* A listener whose one route has one extra line (line 6). */
#define ROUTE_WITH(line6) LISTENER_WEB ROUTES line6 BACKEND_APP

/* ---- helpers ---------------------------------------------------------- */

/* ---- listener keys ---------------------------------------------------- */

START_TEST(listener_defaults)
{
	struct config *cfg = load_ok(LISTENER_WEB ROUTES BACKEND_APP);
	const struct cfg_listener *l = &cfg->listeners[0];

	ck_assert_int_eq(l->underscores_in_headers, CFG_UNDERSCORES_DROP);
	ck_assert_int_eq(l->ambiguous_requests, CFG_AMBIGUOUS_CLOSE);
	ck_assert_int_eq(l->normalize_path, CFG_NORMALIZE_MATCH);
	ck_assert_ptr_null(l->routes[0].methods);
	ck_assert_uint_eq(l->routes[0].nmethods, 0);
	config_free(cfg);
}
END_TEST

START_TEST(listener_values)
{
	static const struct {
		const char *line;
		size_t off;
		int want;
	} cases[] = {
#define C(line, field, want)                                                   \
	{line, offsetof(struct cfg_listener, field), want}
		C("    underscores_in_headers: drop\n", underscores_in_headers,
		  CFG_UNDERSCORES_DROP),
		C("    underscores_in_headers: reject\n",
		  underscores_in_headers, CFG_UNDERSCORES_REJECT),
		C("    underscores_in_headers: allow\n", underscores_in_headers,
		  CFG_UNDERSCORES_ALLOW),
		C("    ambiguous_requests: close\n", ambiguous_requests,
		  CFG_AMBIGUOUS_CLOSE),
		C("    ambiguous_requests: reject\n", ambiguous_requests,
		  CFG_AMBIGUOUS_REJECT),
		C("    normalize_path: match\n", normalize_path,
		  CFG_NORMALIZE_MATCH),
		C("    normalize_path: forward\n", normalize_path,
		  CFG_NORMALIZE_FORWARD),
#undef C
	};
	char yaml[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config *cfg;
		int got;

		snprintf(yaml, sizeof(yaml), "%s%s%s%s", LISTENER_WEB,
			 cases[i].line, ROUTES, BACKEND_APP);
		cfg = load_ok(yaml);
		/* every one of these enums is an int-sized field */
		memcpy(&got, (char *)&cfg->listeners[0] + cases[i].off,
		       sizeof(got));
		ck_assert_msg(got == cases[i].want, "%s", cases[i].line);
		config_free(cfg);
	}
}
END_TEST

START_TEST(listener_errors)
{
	EXPECT_ERROR(LISTENER_WITH("    underscores_in_headers: strip\n"),
		     "t.yaml:4:29: 'underscores_in_headers' must be drop, "
		     "reject or allow");
	EXPECT_ERROR(LISTENER_WITH("    underscores_in_headers: DROP\n"),
		     "t.yaml:4:29: 'underscores_in_headers' must be drop, "
		     "reject or allow");
	EXPECT_ERROR(LISTENER_WITH("    underscores_in_headers: [drop]\n"),
		     "t.yaml:4:29: 'underscores_in_headers' must be drop, "
		     "reject or allow");
	EXPECT_ERROR(LISTENER_WITH("    ambiguous_requests: true\n"),
		     "t.yaml:4:25: 'ambiguous_requests' must be close or "
		     "reject");
	EXPECT_ERROR(LISTENER_WITH("    ambiguous_requests:\n"),
		     "t.yaml:4:24: 'ambiguous_requests' must be close or "
		     "reject");
	EXPECT_ERROR(LISTENER_WITH("    normalize_path: yes\n"),
		     "t.yaml:4:21: 'normalize_path' must be match or forward");
	EXPECT_ERROR(LISTENER_WITH("    normalize_path: {}\n"),
		     "t.yaml:4:21: 'normalize_path' must be match or forward");
	/* a typo gets a suggestion from the schema */
	EXPECT_ERROR(LISTENER_WITH("    normalise_path: match\n"),
		     "t.yaml:4:5: unknown key 'normalise_path'; did you mean "
		     "'normalize_path'?");
	EXPECT_ERROR(LISTENER_WITH("    normalize_path: match\n"
				   "    normalize_path: forward\n"),
		     "t.yaml:5:5: duplicate key 'normalize_path'");
}
END_TEST

/* HTTP request hygiene means nothing to a tcp listener */
START_TEST(listener_tcp_refuses)
{
	EXPECT_ERRORS("listeners:\n"
		      "  - name: db\n"
		      "    bind: 127.0.0.1:5432\n"
		      "    protocol: tcp\n"
		      "    backend: app\n"
		      "    underscores_in_headers: allow\n"
		      "    ambiguous_requests: reject\n"
		      "    normalize_path: forward\n" BACKEND_APP,
		      "t.yaml:6:5: 'underscores_in_headers' is only valid for "
		      "http listeners",
		      "t.yaml:7:5: 'ambiguous_requests' is only valid for http "
		      "listeners",
		      "t.yaml:8:5: 'normalize_path' is only valid for http "
		      "listeners");
}
END_TEST

/* ---- route methods: --------------------------------------------------- */

static void expect_methods(int line, const char *yaml,
			   const char *const *want, size_t n)
{
	struct config *cfg = load_ok(yaml);
	const struct cfg_route *r = &cfg->listeners[0].routes[0];

	ck_assert_msg(r->nmethods == n, "line %d: %zu methods", line,
		      r->nmethods);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(r->methods[i], want[i]);
	config_free(cfg);
}

#define EXPECT_METHODS(yaml, ...)                                              \
	expect_methods(__LINE__, yaml, (const char *const[]){__VA_ARGS__},     \
		       sizeof((const char *const[]){__VA_ARGS__}) /            \
			       sizeof(const char *))

/* RFC 9110 §9.1: methods are tokens, kept in the order written */
START_TEST(rfc9110_9_1_methods_values)
{
	EXPECT_METHODS(ROUTE_WITH("        methods: [GET, HEAD, POST]\n"),
		       "GET", "HEAD", "POST");
	EXPECT_METHODS(ROUTE_WITH("        methods: [POST, GET]\n"), "POST",
		       "GET");
	EXPECT_METHODS(ROUTE_WITH("        methods: DELETE\n"), "DELETE");
	EXPECT_METHODS(ROUTE_WITH("        methods:\n"
				  "          - PROPFIND\n"
				  "          - M-SEARCH\n"
				  "          - \"GET\"\n"),
		       "PROPFIND", "M-SEARCH", "GET");
	/* GET with HEAD written out is not a duplicate */
	EXPECT_METHODS(ROUTE_WITH("        methods: [HEAD, GET]\n"), "HEAD",
		       "GET");
}
END_TEST

START_TEST(rfc9110_9_1_methods_errors)
{
	EXPECT_ERROR(ROUTE_WITH("        methods: [GET, get]\n"),
		     "t.yaml:6:24: method 'get' is not in capitals (methods "
		     "are case-sensitive); did you mean 'GET'?");
	EXPECT_ERROR(ROUTE_WITH("        methods: [Post]\n"),
		     "t.yaml:6:19: method 'Post' is not in capitals (methods "
		     "are case-sensitive); did you mean 'POST'?");
	EXPECT_ERROR(ROUTE_WITH("        methods: [GET, \"GE T\"]\n"),
		     "t.yaml:6:24: 'GE T' is not a valid method name (a token "
		     "such as GET, RFC 9110 section 9.1)");
	EXPECT_ERROR(ROUTE_WITH("        methods: [\"GET/1\"]\n"),
		     "t.yaml:6:19: 'GET/1' is not a valid method name (a "
		     "token such as GET, RFC 9110 section 9.1)");
	EXPECT_ERROR(ROUTE_WITH("        methods: [\"\"]\n"),
		     "t.yaml:6:19: '' is not a valid method name (a token such "
		     "as GET, RFC 9110 section 9.1)");
	EXPECT_ERROR(ROUTE_WITH("        methods: [GET, POST, GET]\n"),
		     "t.yaml:6:30: method 'GET' is listed twice");
	EXPECT_ERROR(ROUTE_WITH("        methods: []\n"),
		     "t.yaml:6:18: 'methods' must list at least one method");
	EXPECT_ERROR(ROUTE_WITH("        methods:\n"),
		     "t.yaml:6:17: 'methods' must be a method or a list of "
		     "methods");
	EXPECT_ERROR(ROUTE_WITH("        methods: {GET: 1}\n"),
		     "t.yaml:6:18: 'methods' must be a method or a list of "
		     "methods");
	EXPECT_ERROR(ROUTE_WITH("        methods: [GET, [POST]]\n"),
		     "t.yaml:6:24: 'methods' must be a method or a list of "
		     "methods");
	EXPECT_ERROR(ROUTE_WITH("        methods: "
				"[ABCDEFGHIJKLMNOPQRSTUVWXY]\n"),
		     "t.yaml:6:19: method 'ABCDEFGHIJKLMNOPQRSTUVWXY' is "
		     "longer than 24 characters");
	/* every bad item is reported, not only the first */
	EXPECT_ERRORS(ROUTE_WITH("        methods: [get, GET, GET]\n"),
		      "t.yaml:6:19: method 'get' is not in capitals (methods "
		      "are case-sensitive); did you mean 'GET'?",
		      "t.yaml:6:29: method 'GET' is listed twice");
}
END_TEST

START_TEST(methods_count_bound)
{
	char yaml[2048], list[1024] = "";
	struct config *cfg;

	/* 32 is the most; the 33rd is refused at the list */
	for (int i = 0; i < 32; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list),
			 "%sM%02d", i ? ", " : "", i);
	snprintf(yaml, sizeof(yaml), "%s%s        methods: [%s]\n%s",
		 LISTENER_WEB, ROUTES, list, BACKEND_APP);
	cfg = load_ok(yaml);
	ck_assert_uint_eq(cfg->listeners[0].routes[0].nmethods, 32);
	config_free(cfg);
	snprintf(yaml, sizeof(yaml), "%s%s        methods: [%s, M99]\n%s",
		 LISTENER_WEB, ROUTES, list, BACKEND_APP);
	EXPECT_ERROR(yaml, "t.yaml:6:18: 'methods' lists more than 32 "
			   "methods");
}
END_TEST

/* methods: is per route: other routes of the listener take any method */
START_TEST(methods_per_route)
{
	struct config *cfg = load_ok(LISTENER_WEB
				     "    routes:\n"
				     "      - path_prefix: /admin\n"
				     "        backend: app\n"
				     "        methods: [GET]\n"
				     "      - backend: app\n" BACKEND_APP);

	ck_assert_uint_eq(cfg->listeners[0].routes[0].nmethods, 1);
	ck_assert_ptr_null(cfg->listeners[0].routes[1].methods);
	config_free(cfg);
	/* a listener has no methods: of its own */
	EXPECT_ERROR(LISTENER_WITH("    methods: [GET]\n"),
		     "t.yaml:4:5: unknown key 'methods'");
}
END_TEST

/* The shipped example writes every key with its default */
START_TEST(shipped_example)
{
	const char *dir = getenv("PORTCULLIS_TEST_DATA");
	struct config_errors errs = {0};
	struct config *cfg;
	char path[4096];

	ck_assert_msg(dir != NULL, "PORTCULLIS_TEST_DATA is not set");
	snprintf(path, sizeof(path), "%s/../config/portcullis.yaml", dir);
	cfg = config_load(path, &errs);
	ck_assert_msg(cfg != NULL, "%s", errs.count ? errs.msgs[0] : "");
	ck_assert_str_eq(cfg->listeners[0].name, "web");
	ck_assert_int_eq(cfg->listeners[0].underscores_in_headers,
			 CFG_UNDERSCORES_DROP);
	ck_assert_int_eq(cfg->listeners[0].ambiguous_requests,
			 CFG_AMBIGUOUS_CLOSE);
	ck_assert_int_eq(cfg->listeners[0].normalize_path,
			 CFG_NORMALIZE_MATCH);
	ck_assert_uint_eq(cfg->listeners[0].routes[0].nmethods, 4);
	ck_assert_str_eq(cfg->listeners[0].routes[0].methods[3], "DELETE");
	config_free(cfg);
}
END_TEST

static Suite *config_hygiene_suite(void)
{
	Suite *s = suite_create("config_hygiene");
	TCase *tc = tcase_create("keys");

	tcase_add_test(tc, listener_defaults);
	tcase_add_test(tc, listener_values);
	tcase_add_test(tc, listener_errors);
	tcase_add_test(tc, listener_tcp_refuses);
	tcase_add_test(tc, rfc9110_9_1_methods_values);
	tcase_add_test(tc, rfc9110_9_1_methods_errors);
	tcase_add_test(tc, methods_count_bound);
	tcase_add_test(tc, methods_per_route);
	tcase_add_test(tc, shipped_example);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_hygiene_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
