/* test_balance.c: choosing servers (worker/balance.c). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/balance.h"

#define NSRV 10

static struct cfg_server servers[NSRV];
static char addrs[NSRV][32];
static struct cfg_backend backend;
static struct config cfg;
static struct shm_zone *zone;

static struct balance_backend *setup(enum cfg_balance algo,
				     const unsigned *weights,
				     const bool *backup, size_t n)
{
	memset(servers, 0, sizeof(servers));
	memset(&backend, 0, sizeof(backend));
	memset(&cfg, 0, sizeof(cfg));
	if (zone == NULL)
		zone = shm_create();
	memset(zone, 0, sizeof(*zone));
	for (size_t i = 0; i < n; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "10.0.0.%zu:80", i + 1);
		servers[i].addr.str = addrs[i];
		servers[i].weight = weights ? weights[i] : 1;
		servers[i].backup = backup ? backup[i] : false;
		servers[i].slot = (int)i;
	}
	backend.name = "b";
	backend.balance = algo;
	backend.servers = servers;
	backend.nservers = n;
	backend.max_fails = 3;
	backend.health.type = CFG_CHECK_TCP; /* sv_health is a verdict */
	backend.fail_timeout_ms = 10000;
	cfg.backends = &backend;
	cfg.nbackends = 1;
	return balance_init(&cfg, zone, NULL);
}

static size_t pick(struct balance_backend *be, uint64_t tried, uint32_t h)
{
	enum balance_miss miss;
	struct balance_server *s = balance_pick(be, tried, h, 1000, &miss);

	ck_assert_ptr_nonnull(s);
	return balance_index(be, s);
}

/* Weights 5,1,1 interleave as a a b a c a a (nginx's smooth WRR). */
START_TEST(test_smooth_sequence)
{
	const unsigned w[] = {5, 1, 1};
	struct balance_backend *be = setup(CFG_BALANCE_ROUND_ROBIN, w, NULL, 3);
	const char *want = "aabacaa";

	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 7; i++)
			ck_assert_int_eq('a' + (int)pick(be, 0, 0), want[i]);
	balance_free(be, 1);
}
END_TEST

START_TEST(test_distribution_matches_weights)
{
	const unsigned w[] = {1, 3};
	struct balance_backend *be = setup(CFG_BALANCE_ROUND_ROBIN, w, NULL, 2);
	int count[2] = {0, 0};

	for (int i = 0; i < 400; i++)
		count[pick(be, 0, 0)]++;
	ck_assert_int_eq(count[0], 100);
	ck_assert_int_eq(count[1], 300);
	balance_free(be, 1);
}
END_TEST

/* Servers already tried for a request are skipped; then none is left. */
START_TEST(test_tried_mask)
{
	struct balance_backend *be = setup(CFG_BALANCE_ROUND_ROBIN, NULL, NULL, 3);
	enum balance_miss miss;
	uint64_t tried = 0;

	for (int i = 0; i < 3; i++) {
		size_t k = pick(be, tried, 0);

		ck_assert(!(tried & (UINT64_C(1) << k)));
		tried |= UINT64_C(1) << k;
	}
	ck_assert_ptr_null(balance_pick(be, tried, 0, 1000, &miss));
	ck_assert_int_eq(miss, BALANCE_TRIED);
	balance_free(be, 1);
}
END_TEST

/* A backup is picked only when no primary is usable. */
START_TEST(test_backup_last)
{
	const bool backup[] = {false, true, false};
	struct balance_backend *be =
		setup(CFG_BALANCE_ROUND_ROBIN, NULL, backup, 3);

	for (int i = 0; i < 10; i++)
		ck_assert_uint_ne(pick(be, 0, 0), 1);
	ck_assert_uint_eq(pick(be, 0x5, 0), 1);
	atomic_store(&be->be_servers[0].srv_shm->sv_health, SHM_DOWN);
	atomic_store(&be->be_servers[2].srv_shm->sv_drain, 1);
	ck_assert_uint_eq(pick(be, 0, 0), 1);
	balance_free(be, 1);
}
END_TEST

/* Down, drained and passively failed servers are skipped; none: 503. */
START_TEST(test_unusable_servers)
{
	struct balance_backend *be = setup(CFG_BALANCE_LEAST_CONN, NULL, NULL, 3);
	enum balance_miss miss;

	atomic_store(&be->be_servers[0].srv_shm->sv_health, SHM_DOWN);
	atomic_store(&be->be_servers[1].srv_shm->sv_drain, 1);
	for (int i = 0; i < 5; i++)
		ck_assert_uint_eq(pick(be, 0, 0), 2);
	/* max_fails (3) failures in a row: down for fail_timeout */
	balance_failed(&be->be_servers[2], 1000, "connect refused");
	balance_failed(&be->be_servers[2], 1000, "connect refused");
	ck_assert_uint_eq(pick(be, 0, 0), 2);
	balance_failed(&be->be_servers[2], 1000, "connect refused");
	ck_assert_ptr_null(balance_pick(be, 0, 0, 1000, &miss));
	ck_assert_int_eq(miss, BALANCE_NONE_UP);
	/* after fail_timeout it is tried again */
	ck_assert_ptr_nonnull(balance_pick(be, 0, 0, 11001, &miss));
	balance_free(be, 1);
}
END_TEST

/* least_conn follows the machine-wide counts in shared memory. */
START_TEST(test_least_conn)
{
	const unsigned w[] = {1, 1, 2};
	struct balance_backend *be = setup(CFG_BALANCE_LEAST_CONN, w, NULL, 3);

	atomic_store(&be->be_servers[0].srv_shm->sv_active, 5);
	atomic_store(&be->be_servers[1].srv_shm->sv_active, 1);
	atomic_store(&be->be_servers[2].srv_shm->sv_active, 4);
	ck_assert_uint_eq(pick(be, 0, 0), 1);   /* 1/1 < 4/2 < 5/1 */
	atomic_store(&be->be_servers[1].srv_shm->sv_active, 3);
	ck_assert_uint_eq(pick(be, 0, 0), 2);   /* 4/2 < 3/1 */
	balance_free(be, 1);
}
END_TEST

/* max_connections: a server at its limit is skipped. */
START_TEST(test_max_connections)
{
	struct balance_backend *be = setup(CFG_BALANCE_ROUND_ROBIN, NULL, NULL, 2);
	enum balance_miss miss;

	servers[0].max_connections = 2;
	servers[1].max_connections = 1;
	balance_use(&be->be_servers[0], 2);
	for (int i = 0; i < 4; i++)
		ck_assert_uint_eq(pick(be, 0, 0), 1);
	balance_use(&be->be_servers[1], 1);
	ck_assert_ptr_null(balance_pick(be, 0, 0, 1000, &miss));
	ck_assert_int_eq(miss, BALANCE_NONE_UP);
	balance_use(&be->be_servers[0], -1);
	ck_assert_uint_eq(pick(be, 0, 0), 0);
	balance_free(be, 1);
}
END_TEST

/* random_two never picks the heavier of two when loads differ a lot. */
START_TEST(test_random_two)
{
	struct balance_backend *be = setup(CFG_BALANCE_RANDOM_TWO, NULL, NULL, 2);

	atomic_store(&be->be_servers[0].srv_shm->sv_active, 100);
	for (int i = 0; i < 50; i++)
		ck_assert_uint_eq(pick(be, 0, 0), 1);
	balance_free(be, 1);
}
END_TEST

/* Without active checks, a health verdict left in shared memory (from a
 * config that had them) does not strand the server. */
START_TEST(test_no_checks_no_verdict)
{
	struct balance_backend *be = setup(CFG_BALANCE_ROUND_ROBIN, NULL, NULL, 1);

	atomic_store(&be->be_servers[0].srv_shm->sv_health, SHM_DOWN);
	ck_assert_ptr_null(balance_pick(be, 0, 0, 1000, &(enum balance_miss){0}));
	backend.health.type = CFG_CHECK_NONE;
	ck_assert_uint_eq(pick(be, 0, 0), 0);
	balance_free(be, 1);
}
END_TEST

/* Consistent hash: removing one of 10 servers keeps >= 95% of the keys
 * that were not on it where they were, and moves only its own keys. */
START_TEST(test_hash_stability)
{
	struct balance_backend *be = setup(CFG_BALANCE_HASH, NULL, NULL, NSRV);
	static size_t before[10000];
	size_t kept = 0, others = 0, count[NSRV] = {0};

	for (int k = 0; k < 10000; k++) {
		char key[32];
		int n = snprintf(key, sizeof(key), "client-%d", k);

		before[k] = pick(be, 0, balance_hash(key, (size_t)n));
		count[before[k]]++;
		ck_assert_uint_eq(pick(be, 0, balance_hash(key, (size_t)n)),
				  before[k]); /* deterministic */
	}
	for (int i = 0; i < NSRV; i++)
		ck_assert_msg(count[i] > 500 && count[i] < 1600,
			      "server %d has %zu keys", i, count[i]);
	atomic_store(&be->be_servers[3].srv_shm->sv_health, SHM_DOWN);
	for (int k = 0; k < 10000; k++) {
		char key[32];
		int n = snprintf(key, sizeof(key), "client-%d", k);
		size_t now = pick(be, 0, balance_hash(key, (size_t)n));

		ck_assert_uint_ne(now, 3);
		if (before[k] != 3) {
			others++;
			kept += now == before[k];
		}
	}
	ck_assert_uint_eq(kept, others); /* only server 3's keys moved */
	ck_assert_uint_ge(kept * 100, others * 95);
	balance_free(be, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("balance");
	TCase *tc = tcase_create("balance");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_smooth_sequence);
	tcase_add_test(tc, test_distribution_matches_weights);
	tcase_add_test(tc, test_tried_mask);
	tcase_add_test(tc, test_backup_last);
	tcase_add_test(tc, test_unusable_servers);
	tcase_add_test(tc, test_least_conn);
	tcase_add_test(tc, test_max_connections);
	tcase_add_test(tc, test_random_two);
	tcase_add_test(tc, test_hash_stability);
	tcase_add_test(tc, test_no_checks_no_verdict);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	shm_destroy(zone);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
