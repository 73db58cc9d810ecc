/* test_timer.c: the timer heap (common/timer.c). */
#include <check.h>
#include <stdlib.h>

#include "common/timer.h"

static int fired_order[64];
static int nfired;

static void on_fire(struct timer *t)
{
	fired_order[nfired++] = (int)(intptr_t)t->tm_data;
}

START_TEST(test_fires_in_deadline_order)
{
	struct timer_heap h = {0};
	struct timer t[5];
	const uint64_t when[5] = {50, 10, 40, 20, 30};

	nfired = 0;
	for (int i = 0; i < 5; i++) {
		timer_init(&t[i], on_fire, (void *)(intptr_t)i);
		ck_assert_int_eq(timer_add(&h, &t[i], when[i]), 0);
	}
	ck_assert_uint_eq(timer_run(&h, 25), 2);
	ck_assert_int_eq(fired_order[0], 1);
	ck_assert_int_eq(fired_order[1], 3);
	ck_assert(!timer_is_armed(&t[1]));
	ck_assert_uint_eq(timer_run(&h, 100), 3);
	ck_assert_int_eq(fired_order[2], 4);
	ck_assert_int_eq(fired_order[3], 2);
	ck_assert_int_eq(fired_order[4], 0);
	ck_assert_ptr_null(timer_first(&h));
	timer_heap_free(&h);
}
END_TEST

START_TEST(test_del_and_rearm)
{
	struct timer_heap h = {0};
	struct timer a, b, c;

	nfired = 0;
	timer_init(&a, on_fire, (void *)1);
	timer_init(&b, on_fire, (void *)2);
	timer_init(&c, on_fire, (void *)3);
	timer_add(&h, &a, 10);
	timer_add(&h, &b, 20);
	timer_add(&h, &c, 30);
	timer_del(&h, &a);
	timer_del(&h, &a); /* twice is harmless */
	timer_add(&h, &c, 5); /* re-arm earlier */
	timer_add(&h, &b, 100); /* re-arm later */
	ck_assert_ptr_eq(timer_first(&h), &c);
	ck_assert_uint_eq(timer_run(&h, 50), 1);
	ck_assert_int_eq(fired_order[0], 3);
	ck_assert_ptr_eq(timer_first(&h), &b);
	timer_heap_free(&h);
}
END_TEST

/* Many timers in pseudo-random order come out sorted (heap invariant). */
START_TEST(test_heap_order_random)
{
	enum { N = 2000 };
	struct timer_heap h = {0};
	struct timer *t = calloc(N, sizeof(*t));
	uint64_t last = 0;
	unsigned seed = 12345;

	for (int i = 0; i < N; i++) {
		seed = seed * 1103515245 + 12345;
		timer_init(&t[i], on_fire, NULL);
		timer_add(&h, &t[i], seed % 100000);
	}
	for (int i = 0; i < N; i += 3)
		timer_del(&h, &t[i]);
	while (timer_first(&h) != NULL) {
		struct timer *f = timer_first(&h);

		ck_assert_uint_ge(f->tm_when, last);
		last = f->tm_when;
		timer_del(&h, f);
	}
	timer_heap_free(&h);
	free(t);
}
END_TEST

START_TEST(test_now_is_monotonic)
{
	uint64_t a = timer_now_ms(), b = timer_now_ms();

	ck_assert_uint_ge(b, a);
	ck_assert_uint_gt(a, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("timer");
	TCase *tc = tcase_create("heap");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_fires_in_deadline_order);
	tcase_add_test(tc, test_del_and_rearm);
	tcase_add_test(tc, test_heap_order_random);
	tcase_add_test(tc, test_now_is_monotonic);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
