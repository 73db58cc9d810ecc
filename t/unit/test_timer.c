/* test_timer.c: the timer heap (common/timer.c). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

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
	timer_del(&h, &a);	/* twice is harmless */
	timer_add(&h, &c, 5);	/* re-arm earlier */
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

/* timer_init leaves t disarmed with its callback and owner. */
START_TEST(test_init)
{
	struct timer t;
	int owner;

	memset(&t, 0xa5, sizeof(t));
	timer_init(&t, on_fire, &owner);
	ck_assert(!timer_is_armed(&t));
	ck_assert_ptr_eq(t.tm_data, &owner);
	ck_assert(t.tm_cb == on_fire);
}
END_TEST

/* Re-arming an armed timer moves it: it fires once, at the new deadline. */
START_TEST(test_rearm_fires_once)
{
	struct timer_heap h = {0};
	struct timer a, b;

	nfired = 0;
	timer_init(&a, on_fire, (void *)1);
	timer_init(&b, on_fire, (void *)2);
	ck_assert_int_eq(timer_add(&h, &a, 10), 0);
	ck_assert_int_eq(timer_add(&h, &b, 20), 0);
	ck_assert_int_eq(timer_add(&h, &a, 30), 0);
	ck_assert_uint_eq(a.tm_when, 30);
	ck_assert_uint_eq(timer_run(&h, 29), 1);
	ck_assert_int_eq(fired_order[0], 2);
	ck_assert_uint_eq(timer_run(&h, 1000), 1);
	ck_assert_int_eq(fired_order[1], 1);
	ck_assert_uint_eq(timer_run(&h, 2000), 0);
	timer_heap_free(&h);
}
END_TEST

/* Due means at or before now. */
START_TEST(test_run_boundary)
{
	struct timer_heap h = {0};
	struct timer a;

	nfired = 0;
	timer_init(&a, on_fire, (void *)1);
	timer_add(&h, &a, 100);
	ck_assert_uint_eq(timer_run(&h, 99), 0);
	ck_assert(timer_is_armed(&a));
	ck_assert_uint_eq(timer_run(&h, 100), 1);
	ck_assert(!timer_is_armed(&a));
	timer_heap_free(&h);
}
END_TEST

static struct timer_heap cb_heap;
static struct timer cb_other;
static int armed_in_cb;

/* The callback sees its timer disarmed, and deletes the other one. */
static void on_fire_del_other(struct timer *t)
{
	armed_in_cb = timer_is_armed(t);
	on_fire(t);
	timer_del(&cb_heap, &cb_other);
}

/* The callback re-arms its own timer, later. */
static void on_fire_rearm(struct timer *t)
{
	on_fire(t);
	if (nfired < 3)
		timer_add(&cb_heap, t, t->tm_when + 10);
}

/*
 * Callbacks run with their timer disarmed; a timer a callback deletes does
 * not fire even if it was due; a callback may re-arm its own timer.
 */
START_TEST(test_callbacks_change_heap)
{
	struct timer a, c;

	nfired = 0;
	armed_in_cb = -1;
	timer_init(&a, on_fire_del_other, (void *)1);
	timer_init(&cb_other, on_fire, (void *)2);
	timer_add(&cb_heap, &a, 10);
	timer_add(&cb_heap, &cb_other, 20);
	ck_assert_uint_eq(timer_run(&cb_heap, 50), 1);
	ck_assert_int_eq(armed_in_cb, 0);
	ck_assert_int_eq(fired_order[0], 1);
	ck_assert(!timer_is_armed(&cb_other));
	ck_assert_ptr_null(timer_first(&cb_heap));

	nfired = 0;
	timer_init(&c, on_fire_rearm, (void *)3);
	timer_add(&cb_heap, &c, 100);
	ck_assert_uint_eq(timer_run(&cb_heap, 105), 1);
	ck_assert(timer_is_armed(&c));
	ck_assert_uint_eq(c.tm_when, 110);
	/* 110; the 120 it arms waits for the next run */
	ck_assert_uint_eq(timer_run(&cb_heap, 1000), 1);
	ck_assert_uint_eq(timer_run(&cb_heap, 1000), 1);
	ck_assert(!timer_is_armed(&c));
	timer_heap_free(&cb_heap);
}
END_TEST

/*
 * Once the array has grown to the number of live timers, adding and
 * deleting allocates nothing: the array stays where it is.
 */
START_TEST(test_no_allocation_at_steady_size)
{
	enum { N = 100 };
	struct timer_heap h = {0};
	struct timer t[N];
	struct timer **items;
	size_t cap;

	for (int i = 0; i < N; i++) {
		timer_init(&t[i], on_fire, NULL);
		ck_assert_int_eq(timer_add(&h, &t[i], (uint64_t)i), 0);
	}
	items = h.th_items;
	cap = h.th_cap;
	ck_assert_uint_ge(cap, N);
	for (int round = 0; round < 10; round++) {
		for (int i = 0; i < N; i++)
			timer_del(&h, &t[i]);
		ck_assert_ptr_null(timer_first(&h));
		for (int i = 0; i < N; i++)
			timer_add(&h, &t[N - 1 - i], (uint64_t)(i * 7 % N));
	}
	ck_assert_ptr_eq(h.th_items, items);
	ck_assert_uint_eq(h.th_cap, cap);
	timer_heap_free(&h);
	ck_assert_ptr_null(h.th_items);
	ck_assert_uint_eq(h.th_len, 0);
	/* a freed heap is empty and usable again, with timers set up anew */
	timer_init(&t[0], on_fire, NULL);
	ck_assert_int_eq(timer_add(&h, &t[0], 5), 0);
	ck_assert_ptr_eq(timer_first(&h), &t[0]);
	timer_heap_free(&h);
}
END_TEST

static struct timer_heap spin_heap;

/* Re-arms itself due at once, as loop_timer_in(.., 0) does. */
static void on_fire_rearm_now(struct timer *t)
{
	on_fire(t);
	timer_add(&spin_heap, t, t->tm_when);
}

/*
 * A callback that re-arms its timer with 0 ms gets one call a run (one
 * loop turn), not an endless run that starves the descriptors; a timer
 * due behind it may wait for the next run, but no longer.
 */
START_TEST(test_rearm_now_waits_for_next_run)
{
	struct timer a, b;

	nfired = 0;
	timer_init(&a, on_fire_rearm_now, (void *)1);
	timer_init(&b, on_fire, (void *)2);
	timer_add(&spin_heap, &a, 10);
	timer_add(&spin_heap, &b, 10);
	timer_run(&spin_heap, 10);
	ck_assert_int_le(nfired, 2);
	timer_run(&spin_heap, 10);
	ck_assert_int_le(nfired, 4);
	ck_assert(!timer_is_armed(&b)); /* b fired within two runs */
	ck_assert(timer_is_armed(&a));
	timer_heap_free(&spin_heap);
}
END_TEST

/* Freeing the heap leaves no timer marked armed. */
START_TEST(test_free_disarms)
{
	struct timer_heap h = {0};
	struct timer a;

	timer_init(&a, on_fire, NULL);
	timer_add(&h, &a, 10);
	timer_heap_free(&h);
	ck_assert(!timer_is_armed(&a));
	ck_assert_int_eq(timer_add(&h, &a, 20), 0);
	ck_assert_ptr_eq(timer_first(&h), &a);
	timer_heap_free(&h);
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
	tcase_add_test(tc, test_init);
	tcase_add_test(tc, test_rearm_fires_once);
	tcase_add_test(tc, test_run_boundary);
	tcase_add_test(tc, test_callbacks_change_heap);
	tcase_add_test(tc, test_rearm_now_waits_for_next_run);
	tcase_add_test(tc, test_free_disarms);
	tcase_add_test(tc, test_no_allocation_at_steady_size);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
