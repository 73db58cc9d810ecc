/* test_shm.c: the shared-memory zone and its slots (common/shm.c). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/shm.h"
#include "common/metrics.h"

#define KEY_A "app\n10.0.0.1:80"
#define KEY_B "app\n10.0.0.2:80"

static struct shm_zone *new_zone(void)
{
	struct shm_zone *z = shm_create();

	ck_assert_ptr_nonnull(z);
	ck_assert_uint_eq(z->z_magic, SHM_MAGIC);
	return z;
}

/* A server in generation 1 and 2 keeps its slot, its key and its state. */
START_TEST(test_slot_keeps_name_and_state)
{
	struct shm_zone *z = new_zone();
	int a = shm_server_claim(z, KEY_A, 1, 1);
	struct shm_server *sv;

	ck_assert_int_ge(a, 0);
	sv = shm_server_at(z, a);
	ck_assert_str_eq(sv->sv_key, KEY_A);
	ck_assert_uint_eq(atomic_load(&sv->sv_gen), 1);
	atomic_store(&sv->sv_drain, 1);
	shm_metrics(z)->mx_retired.mb_servers[a].ms_requests = 42;
	shm_set_health(sv, SHM_DOWN, "connect: refused");

	ck_assert_int_eq(shm_server_claim(z, KEY_A, 2, 1), a);
	ck_assert_str_eq(sv->sv_key, KEY_A);
	ck_assert_uint_eq(atomic_load(&sv->sv_gen), 2);
	ck_assert_uint_eq(atomic_load(&sv->sv_drain), 1);
	ck_assert_uint_eq(shm_metrics(z)->mx_retired.mb_servers[a].ms_requests, 42);
	ck_assert_uint_eq(atomic_load(&sv->sv_health), SHM_DOWN);
	/* another name gets another slot */
	ck_assert_int_ne(shm_server_claim(z, KEY_B, 2, 1), a);
	shm_destroy(z);
}
END_TEST

/* Route slots follow the same rule, in their own table. */
START_TEST(test_route_keeps_name_and_state)
{
	struct shm_zone *z = new_zone();
	int r = shm_route_claim(z, "web#1", 1, 1);
	struct shm_route *rt;

	ck_assert_int_ge(r, 0);
	rt = shm_route_at(z, r);
	shm_metrics(z)->mx_retired.mb_routes[r].mr_status[2] = 7;
	ck_assert_int_eq(shm_route_claim(z, "web#1", 2, 1), r);
	ck_assert_str_eq(rt->rt_key, "web#1");
	ck_assert_uint_eq(shm_metrics(z)->mx_retired.mb_routes[r].mr_status[2], 7);
	ck_assert_int_ne(shm_route_claim(z, "web#2", 2, 1), r);
	shm_destroy(z);
}
END_TEST

/*
 * A slot last used by generation 1 stays taken while generation 1 lives
 * and is reused, zeroed, under a new name once the oldest live one is 2.
 */
START_TEST(test_stale_slot_is_reused)
{
	struct shm_zone *z = new_zone();
	int a = shm_server_claim(z, KEY_A, 1, 1);
	struct shm_server *sv = shm_server_at(z, a);

	atomic_store(&sv->sv_drain, 1);
	shm_metrics(z)->mx_retired.mb_servers[a].ms_requests = 9;
	shm_metrics(z)->mx_spark[a].sp_req[3] = 9;
	ck_assert_int_ne(shm_server_claim(z, KEY_B, 2, 1), a);
	ck_assert_int_eq(shm_server_claim(z, "x\n10.9.9.9:1", 3, 3), a);
	ck_assert_str_eq(sv->sv_key, "x\n10.9.9.9:1");
	ck_assert_uint_eq(atomic_load(&sv->sv_gen), 3);
	ck_assert_uint_eq(atomic_load(&sv->sv_drain), 0);
	/* its counters and its sparkline start again from zero */
	ck_assert_uint_eq(shm_metrics(z)->mx_retired.mb_servers[a].ms_requests, 0);
	ck_assert_uint_eq(shm_metrics(z)->mx_spark[a].sp_req[3], 0);
	ck_assert_uint_eq(atomic_load(&sv->sv_health), SHM_UP);
	ck_assert_uint_gt(atomic_load(&sv->sv_changed), 0);
	shm_destroy(z);
}
END_TEST

/* A slot of the generation being assigned is never taken by another name. */
START_TEST(test_own_generation_is_in_use)
{
	struct shm_zone *z = new_zone();
	int a = shm_server_claim(z, KEY_A, 5, 9);

	ck_assert_int_ge(a, 0);
	ck_assert_int_ne(shm_server_claim(z, KEY_B, 5, 9), a);
	ck_assert_int_eq(shm_server_claim(z, KEY_A, 5, 9), a);
	shm_destroy(z);
}
END_TEST

/* Every slot in use: the claim is refused; a stale slot makes room. */
START_TEST(test_full_zone_is_refused)
{
	struct shm_zone *z = new_zone();
	char key[SHM_KEY_LEN];

	for (int i = 0; i < SHM_MAX_SERVERS; i++) {
		snprintf(key, sizeof(key), "b\n10.0.%d.%d:80", i / 256,
			 i % 256);
		ck_assert_int_eq(shm_server_claim(z, key, 1, 1), i);
	}
	ck_assert_int_eq(shm_server_claim(z, KEY_A, 2, 1), -1);
	/* a name already there is still found */
	ck_assert_int_eq(shm_server_claim(z, "b\n10.0.0.7:80", 2, 1), 7);
	/* generation 1 is gone: its slots are free again */
	ck_assert_int_ge(shm_server_claim(z, KEY_A, 3, 2), 0);
	for (int i = 0; i < SHM_MAX_ROUTES; i++) {
		snprintf(key, sizeof(key), "l%d#1", i);
		ck_assert_int_eq(shm_route_claim(z, key, 1, 1), i);
	}
	ck_assert_int_eq(shm_route_claim(z, "web#1", 1, 1), -1);
	shm_destroy(z);
}
END_TEST

/* A key too long for a slot is kept truncated, and found again. */
START_TEST(test_long_key_is_truncated)
{
	struct shm_zone *z = new_zone();
	char key[SHM_KEY_LEN + 50];
	int a;

	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	a = shm_server_claim(z, key, 1, 1);
	ck_assert_int_ge(a, 0);
	ck_assert_uint_eq(strlen(shm_server_at(z, a)->sv_key), SHM_KEY_LEN - 1);
	ck_assert_int_eq(shm_server_claim(z, key, 2, 1), a);
	shm_destroy(z);
}
END_TEST

/* A transition records health, reason and time; the reason round-trips. */
START_TEST(test_health_transition)
{
	struct shm_zone *z = new_zone();
	struct shm_server *sv =
		shm_server_at(z, shm_server_claim(z, KEY_A, 1, 1));
	char reason[SHM_REASON_LEN], long_reason[300];
	uint32_t seq = atomic_load(&sv->sv_seq);
	uint64_t before = shm_wall_ms(), after;

	shm_set_health(sv, SHM_DOWN, "http: status 503");
	after = shm_wall_ms();
	ck_assert_uint_eq(atomic_load(&sv->sv_health), SHM_DOWN);
	ck_assert_uint_ge(atomic_load(&sv->sv_changed), before);
	ck_assert_uint_le(atomic_load(&sv->sv_changed), after);
	ck_assert_uint_eq(atomic_load(&sv->sv_seq), seq + 2); /* even: done */
	shm_reason(sv, reason, sizeof(reason));
	ck_assert_str_eq(reason, "http: status 503");

	memset(long_reason, 'r', sizeof(long_reason) - 1);
	long_reason[sizeof(long_reason) - 1] = '\0';
	shm_set_health(sv, SHM_UP, long_reason);
	ck_assert_uint_eq(atomic_load(&sv->sv_health), SHM_UP);
	shm_reason(sv, reason, sizeof(reason));
	ck_assert_uint_eq(strlen(reason), SHM_REASON_LEN - 1);
	ck_assert_int_eq(strncmp(reason, long_reason, SHM_REASON_LEN - 1), 0);
	/* a smaller buffer gets a truncated copy */
	shm_reason(sv, reason, 5);
	ck_assert_str_eq(reason, "rrrr");
	shm_destroy(z);
}
END_TEST

/* A writer caught mid-update (odd sequence) is never read as a reason. */
START_TEST(test_reason_while_writing)
{
	struct shm_zone *z = new_zone();
	struct shm_server *sv =
		shm_server_at(z, shm_server_claim(z, KEY_A, 1, 1));
	char reason[SHM_REASON_LEN];

	shm_set_health(sv, SHM_DOWN, "timeout");
	atomic_fetch_add(&sv->sv_seq, 1);
	shm_reason(sv, reason, sizeof(reason));
	ck_assert_str_eq(reason, "?");
	atomic_fetch_add(&sv->sv_seq, 1);
	shm_reason(sv, reason, sizeof(reason));
	ck_assert_str_eq(reason, "timeout");
	shm_destroy(z);
}
END_TEST

/* A binary upgrade maps the same zone from the inherited memfd. */
START_TEST(test_adopt_sees_same_zone)
{
	struct shm_zone *z = new_zone();
	struct shm_zone *again;
	int a = shm_server_claim(z, KEY_A, 1, 1);

	atomic_store(&shm_server_at(z, a)->sv_drain, 1);
	again = shm_adopt(shm_fd());
	ck_assert_ptr_nonnull(again);
	ck_assert_ptr_ne(again, z);
	ck_assert_str_eq(shm_server_at(again, a)->sv_key, KEY_A);
	ck_assert_uint_eq(atomic_load(&shm_server_at(again, a)->sv_drain), 1);
	ck_assert_int_eq(shm_server_claim(again, KEY_A, 2, 1), a);
	shm_destroy(again);
	shm_destroy(z);
	/* not a zone: refused */
	ck_assert_ptr_null(shm_adopt(STDIN_FILENO));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("shm");
	TCase *tc = tcase_create("zone");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_slot_keeps_name_and_state);
	tcase_add_test(tc, test_route_keeps_name_and_state);
	tcase_add_test(tc, test_stale_slot_is_reused);
	tcase_add_test(tc, test_own_generation_is_in_use);
	tcase_add_test(tc, test_full_zone_is_refused);
	tcase_add_test(tc, test_long_key_is_truncated);
	tcase_add_test(tc, test_health_transition);
	tcase_add_test(tc, test_reason_while_writing);
	tcase_add_test(tc, test_adopt_sees_same_zone);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
