/* test_balance.c: smooth weighted round-robin (worker/balance.c). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "worker/balance.h"

static struct cfg_server servers[4];
static struct cfg_backend backend;
static struct config cfg;

static struct balance_backend *setup(const unsigned *weights,
				     const bool *backup, size_t n)
{
	memset(servers, 0, sizeof(servers));
	memset(&backend, 0, sizeof(backend));
	memset(&cfg, 0, sizeof(cfg));
	for (size_t i = 0; i < n; i++) {
		servers[i].weight = weights[i];
		servers[i].backup = backup ? backup[i] : false;
	}
	backend.name = "b";
	backend.servers = servers;
	backend.nservers = n;
	cfg.backends = &backend;
	cfg.nbackends = 1;
	return balance_init(&cfg);
}

/* Weights 5,1,1 interleave as a a b a c a a (nginx's smooth WRR). */
START_TEST(test_smooth_sequence)
{
	const unsigned w[] = {5, 1, 1};
	struct balance_backend *be = setup(w, NULL, 3);
	const char *want = "aabacaa";

	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 7; i++) {
			struct balance_server *s = balance_pick(be, 0);

			ck_assert_int_eq('a' + (int)balance_index(be, s), want[i]);
		}
	balance_free(be, 1);
}
END_TEST

START_TEST(test_distribution_matches_weights)
{
	const unsigned w[] = {1, 3};
	struct balance_backend *be = setup(w, NULL, 2);
	int count[2] = {0, 0};

	for (int i = 0; i < 400; i++)
		count[balance_index(be, balance_pick(be, 0))]++;
	ck_assert_int_eq(count[0], 100);
	ck_assert_int_eq(count[1], 300);
	balance_free(be, 1);
}
END_TEST

/* Servers already tried for a request are skipped; then none is left. */
START_TEST(test_tried_mask)
{
	const unsigned w[] = {1, 1, 1};
	struct balance_backend *be = setup(w, NULL, 3);
	uint64_t tried = 0;

	for (int i = 0; i < 3; i++) {
		struct balance_server *s = balance_pick(be, tried);

		ck_assert_ptr_nonnull(s);
		ck_assert(!(tried & (UINT64_C(1) << balance_index(be, s))));
		tried |= UINT64_C(1) << balance_index(be, s);
	}
	ck_assert_ptr_null(balance_pick(be, tried));
	balance_free(be, 1);
}
END_TEST

/* A backup is picked only after every primary was tried. */
START_TEST(test_backup_last)
{
	const unsigned w[] = {1, 1, 1};
	const bool backup[] = {false, true, false};
	struct balance_backend *be = setup(w, backup, 3);

	for (int i = 0; i < 10; i++)
		ck_assert_uint_ne(balance_index(be, balance_pick(be, 0)), 1);
	ck_assert_uint_eq(balance_index(be, balance_pick(be, 0x5)), 1);
	balance_free(be, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("balance");
	TCase *tc = tcase_create("swrr");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_smooth_sequence);
	tcase_add_test(tc, test_distribution_matches_weights);
	tcase_add_test(tc, test_tried_mask);
	tcase_add_test(tc, test_backup_last);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
