/*
 * test_keepalive.c: the idle connection pool of one server
 * (worker/keepalive.c): most recently used first, O(1) removal from
 * anywhere (a server closing an idle connection), the count bounded by
 * keepalive_is_full.
 */
#include <check.h>
#include <stdlib.h>

#include "worker/keepalive.h"

START_TEST(test_lifo)
{
	struct keepalive_pool p = {0};
	struct keepalive_link a = {0}, b = {0}, c = {0};

	ck_assert_ptr_null(keepalive_take(&p));
	keepalive_put(&p, &a);
	keepalive_put(&p, &b);
	keepalive_put(&p, &c);
	ck_assert_uint_eq(p.kp_count, 3);
	ck_assert_ptr_eq(keepalive_take(&p), &c);
	ck_assert_ptr_eq(keepalive_take(&p), &b);
	ck_assert(!b.kl_is_pooled);
	ck_assert_ptr_eq(keepalive_take(&p), &a);
	ck_assert_ptr_null(keepalive_take(&p));
	ck_assert_uint_eq(p.kp_count, 0);
}
END_TEST

START_TEST(test_remove_anywhere)
{
	struct keepalive_pool p = {0};
	struct keepalive_link l[5] = {{0}};

	for (int i = 0; i < 5; i++)
		keepalive_put(&p, &l[i]);
	keepalive_remove(&p, &l[2]); /* middle */
	keepalive_remove(&p, &l[4]); /* first */
	keepalive_remove(&p, &l[0]); /* last */
	keepalive_remove(&p, &l[0]); /* again: nothing */
	ck_assert_uint_eq(p.kp_count, 2);
	ck_assert_ptr_eq(keepalive_take(&p), &l[3]);
	ck_assert_ptr_eq(keepalive_take(&p), &l[1]);
	ck_assert_ptr_null(keepalive_take(&p));
	/* a removed link can be pooled again */
	keepalive_put(&p, &l[2]);
	ck_assert_ptr_eq(keepalive_take(&p), &l[2]);
}
END_TEST

START_TEST(test_full)
{
	struct keepalive_pool p = {0};
	struct keepalive_link l[2] = {{0}};

	ck_assert(keepalive_is_full(&p, 0)); /* keepalive: 0 keeps none */
	ck_assert(!keepalive_is_full(&p, 2));
	keepalive_put(&p, &l[0]);
	keepalive_put(&p, &l[1]);
	ck_assert(keepalive_is_full(&p, 2));
	keepalive_remove(&p, &l[0]);
	ck_assert(!keepalive_is_full(&p, 2));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("keepalive");
	TCase *tc = tcase_create("pool");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_lifo);
	tcase_add_test(tc, test_remove_anywhere);
	tcase_add_test(tc, test_full);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
