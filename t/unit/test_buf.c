/* test_buf.c: buffers and their pool (common/buf.c). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

START_TEST(test_write_consume_compact)
{
	struct buf b = {0};

	buf_pool_init(64, 4);
	ck_assert_int_eq(buf_reserve(&b), 0);
	ck_assert_uint_eq(buf_space(&b), 64);
	memcpy(buf_wptr(&b), "hello world", 11);
	buf_commit(&b, 11);
	ck_assert_uint_eq(buf_len(&b), 11);
	buf_consume(&b, 6);
	ck_assert_uint_eq(buf_len(&b), 5);
	ck_assert_uint_eq(buf_space(&b), 53);
	buf_compact(&b);
	ck_assert_uint_eq(buf_space(&b), 59);
	ck_assert(memcmp(buf_rptr(&b), "world", 5) == 0);
	buf_consume(&b, 5); /* empty: rewinds */
	ck_assert_uint_eq(buf_space(&b), 64);
	buf_release(&b);
	ck_assert_ptr_null(b.b_data);
	buf_pool_destroy();
}
END_TEST

/* Storage is reused from the pool; at most max_free buffers are kept. */
START_TEST(test_pool_reuse_and_bound)
{
	struct buf b[8] = {{0}};
	char *first;

	buf_pool_init(128, 2);
	ck_assert_int_eq(buf_reserve(&b[0]), 0);
	first = b[0].b_data;
	buf_release(&b[0]);
	ck_assert_int_eq(buf_reserve(&b[1]), 0);
	ck_assert_ptr_eq(b[1].b_data, first);
	for (int i = 2; i < 8; i++)
		ck_assert_int_eq(buf_reserve(&b[i]), 0);
	ck_assert_uint_eq(buf_pool_in_use(), 7);
	for (int i = 1; i < 8; i++)
		buf_release(&b[i]);
	ck_assert_uint_eq(buf_pool_in_use(), 0);
	buf_pool_destroy();
}
END_TEST

/* buf_release keeps storage that still holds bytes; buf_drop does not. */
START_TEST(test_release_keeps_unread)
{
	struct buf b = {0};

	buf_pool_init(32, 4);
	buf_reserve(&b);
	buf_commit(&b, 3);
	buf_release(&b);
	ck_assert_ptr_nonnull(b.b_data);
	buf_drop(&b);
	ck_assert_ptr_null(b.b_data);
	ck_assert_uint_eq(buf_len(&b), 0);
	buf_pool_destroy();
}
END_TEST

/*
 * buf_reserve keeps storage b already holds, bytes included; release and
 * drop of a buffer without storage change nothing and count nothing.
 */
START_TEST(test_reserve_keeps_held)
{
	struct buf b = {0};
	char *data;

	buf_pool_init(32, 4);
	buf_release(&b);
	buf_drop(&b);
	ck_assert_ptr_null(b.b_data);
	ck_assert_uint_eq(buf_pool_in_use(), 0);
	ck_assert_int_eq(buf_reserve(&b), 0);
	data = b.b_data;
	memcpy(buf_wptr(&b), "abc", 3);
	buf_commit(&b, 3);
	buf_consume(&b, 1);
	ck_assert_int_eq(buf_reserve(&b), 0);
	ck_assert_ptr_eq(b.b_data, data);
	ck_assert_uint_eq(buf_len(&b), 2);
	ck_assert(memcmp(buf_rptr(&b), "bc", 2) == 0);
	ck_assert_uint_eq(buf_pool_in_use(), 1);
	buf_drop(&b);
	ck_assert_uint_eq(buf_pool_in_use(), 0);
	ck_assert_uint_eq(buf_space(&b), 0);
	buf_pool_destroy();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("buf");
	TCase *tc = tcase_create("buf");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_write_consume_compact);
	tcase_add_test(tc, test_pool_reuse_and_bound);
	tcase_add_test(tc, test_release_keeps_unread);
	tcase_add_test(tc, test_reserve_keeps_held);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
