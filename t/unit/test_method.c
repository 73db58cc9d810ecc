/*
 * test_method.c: a route's methods: allow list (worker/method.c): which
 * methods pass, GET implying HEAD, and the Allow value of a 405.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "worker/method.h"

static struct cfg_route route_of(char **methods, size_t n)
{
	struct cfg_route r;

	memset(&r, 0, sizeof(r));
	r.methods = methods;
	r.nmethods = n;
	return r;
}

#define ALLOWED(r, m) method_allowed(&(r), m, strlen(m))

/* No methods: list: every method passes, no Allow is built */
START_TEST(no_list_admits_all)
{
	struct cfg_route r = route_of(NULL, 0);
	char out[64];

	ck_assert(ALLOWED(r, "GET"));
	ck_assert(ALLOWED(r, "DELETE"));
	ck_assert(ALLOWED(r, "BREW"));
	ck_assert_uint_eq(method_allow_value(&r, out, sizeof(out)), 0);
}
END_TEST

/* RFC 9110 §9.1: "The method token is case-sensitive" */
START_TEST(rfc9110_9_1_listed_methods_only)
{
	char *m[] = {"POST", "PUT"};
	struct cfg_route r = route_of(m, 2);

	ck_assert(ALLOWED(r, "POST"));
	ck_assert(ALLOWED(r, "PUT"));
	ck_assert(!ALLOWED(r, "post"));
	ck_assert(!ALLOWED(r, "GET"));
	ck_assert(!ALLOWED(r, "HEAD"));
	ck_assert(!ALLOWED(r, "POS"));
	ck_assert(!ALLOWED(r, "POSTX"));
	ck_assert(!ALLOWED(r, ""));
	/* the length given counts, not a NUL */
	ck_assert(method_allowed(&r, "POSTED", 4));
	ck_assert(!method_allowed(&r, "POST", 3));
}
END_TEST

/* RFC 9110 §9.3.2: HEAD is GET without content; GET admits it */
START_TEST(rfc9110_9_3_2_get_implies_head)
{
	char *m[] = {"GET"};
	struct cfg_route r = route_of(m, 1);
	char *h[] = {"HEAD"};
	struct cfg_route rh = route_of(h, 1);

	ck_assert(ALLOWED(r, "GET"));
	ck_assert(ALLOWED(r, "HEAD"));
	ck_assert(!ALLOWED(r, "POST"));
	/* but not the other way round */
	ck_assert(ALLOWED(rh, "HEAD"));
	ck_assert(!ALLOWED(rh, "GET"));
}
END_TEST

static const char *allow(char **methods, size_t n)
{
	static char out[METHOD_ALLOW_MAX + 1];
	struct cfg_route r = route_of(methods, n);
	size_t len = method_allow_value(&r, out, METHOD_ALLOW_MAX);

	out[len] = '\0';
	return out;
}

/* RFC 9110 §10.2.1: Allow = #method; §15.5.6: a 405 carries it */
START_TEST(rfc9110_10_2_1_allow_value)
{
	char *a[] = {"GET"};
	char *b[] = {"GET", "POST"};
	char *c[] = {"POST", "GET", "DELETE"};
	char *d[] = {"GET", "HEAD", "POST"};
	char *e[] = {"HEAD", "GET"};
	char *f[] = {"POST"};
	char *g[] = {"PROPFIND", "M-SEARCH"};

	ck_assert_str_eq(allow(a, 1), "GET, HEAD");
	ck_assert_str_eq(allow(b, 2), "GET, HEAD, POST");
	ck_assert_str_eq(allow(c, 3), "POST, GET, HEAD, DELETE");
	ck_assert_str_eq(allow(d, 3), "GET, HEAD, POST");
	ck_assert_str_eq(allow(e, 2), "HEAD, GET");
	ck_assert_str_eq(allow(f, 1), "POST");
	ck_assert_str_eq(allow(g, 2), "PROPFIND, M-SEARCH");
}
END_TEST

START_TEST(allow_value_cap)
{
	char *m[] = {"GET", "POST"};
	struct cfg_route r = route_of(m, 2);
	char *out = malloc(15);

	ck_assert_ptr_nonnull(out);
	/* "GET, HEAD, POST" is 15 bytes: exactly enough, one less is not */
	ck_assert_uint_eq(method_allow_value(&r, out, 15), 15);
	ck_assert(!memcmp(out, "GET, HEAD, POST", 15));
	ck_assert_uint_eq(method_allow_value(&r, out, 14), 0);
	ck_assert_uint_eq(method_allow_value(&r, out, 8), 0);
	ck_assert_uint_eq(method_allow_value(&r, out, 0), 0);
	free(out);
}
END_TEST

/* The largest list the loader takes fits in METHOD_ALLOW_MAX */
START_TEST(allow_value_max_fits)
{
	static char names[32][25];
	char *m[32];
	struct cfg_route r;
	static char out[METHOD_ALLOW_MAX];

	for (int i = 0; i < 32; i++) {
		memset(names[i], 'A' + i % 26, 24);
		names[i][0] = (char)('A' + i / 26);
		m[i] = names[i];
	}
	memcpy(names[0], "GET", 4);
	r = route_of(m, 32);
	ck_assert_uint_eq(method_allow_value(&r, out, sizeof(out)),
			  3 + 2 + 4 + 31 * (2 + 24));
}
END_TEST

static Suite *method_suite(void)
{
	Suite *s = suite_create("method");
	TCase *tc = tcase_create("methods");

	tcase_add_test(tc, no_list_admits_all);
	tcase_add_test(tc, rfc9110_9_1_listed_methods_only);
	tcase_add_test(tc, rfc9110_9_3_2_get_implies_head);
	tcase_add_test(tc, rfc9110_10_2_1_allow_value);
	tcase_add_test(tc, allow_value_cap);
	tcase_add_test(tc, allow_value_max_fits);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(method_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
