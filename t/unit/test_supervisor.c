/* test_supervisor.c: the master's view of its workers (server/supervisor.c):
 * supervisor_check, the verdict of `portcullis check` (keepalived). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "server/scoreboard.h"
#include "server/supervisor.h"

#define NOW 100000 /* monotonic ms in these tests */

static struct master m; /* big: a static, zeroed */
static char why[160];

/* A running master serving generation 3 with no worker yet. */
static void setup(void)
{
	memset(&m, 0, sizeof(m));
	m.m_board = scoreboard_create(MASTER_MAX_WORKERS);
	ck_assert_ptr_nonnull(m.m_board);
	m.m_cur.mg_num = 3;
	m.m_serving = true;
	why[0] = '\0';
}

static void teardown(void)
{
	scoreboard_free(m.m_board);
}

/* Worker i of generation gen, ready, whose loop turned at beat. */
static struct master_worker *add_worker(size_t i, unsigned gen, uint64_t beat)
{
	struct master_worker *mw = &m.m_workers[i];

	mw->mw_pid = 1000 + (pid_t)i;
	mw->mw_gen = gen;
	mw->mw_ready = true;
	atomic_store(scoreboard_beat(m.m_board, i), beat);
	return mw;
}

START_TEST(test_one_live_worker_is_enough)
{
	add_worker(0, 3, NOW - 5000); /* stopped */
	add_worker(7, 3, NOW - 300);
	ck_assert_int_eq(supervisor_check(&m, NOW, why, sizeof(why)), 0);
	/* a beat a little ahead of the master's clock reading is fresh */
	atomic_store(scoreboard_beat(m.m_board, 7), NOW + 1);
	ck_assert_int_eq(supervisor_check(&m, NOW, why, sizeof(why)), 0);
}
END_TEST

/* Every worker SIGSTOPped: still ready, but no heartbeat for 2 s. */
START_TEST(test_stale_heartbeats)
{
	add_worker(0, 3, NOW - SUPERVISOR_CHECK_BEAT_MS);
	add_worker(1, 3, NOW - 60000);
	ck_assert_int_eq(supervisor_check(&m, NOW, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "generation 3: no worker has turned its event "
			      "loop for 2000ms (2 ready: stopped or hung)");
	/* just inside the bound */
	atomic_store(scoreboard_beat(m.m_board, 1),
		     NOW - SUPERVISOR_CHECK_BEAT_MS + 1);
	ck_assert_int_eq(supervisor_check(&m, NOW, why, sizeof(why)), 0);
}
END_TEST

/* Workers that are not (or no longer) in the listeners do not count. */
START_TEST(test_not_accepting)
{
	add_worker(0, 3, NOW)->mw_ready = false;   /* starting */
	add_worker(1, 3, NOW)->mw_retired = true;  /* left the listeners */
	add_worker(2, 3, NOW)->mw_kill_at = NOW + 1; /* told to stop */
	add_worker(3, 3, NOW)->mw_is_hung = true;  /* the watchdog's */
	ck_assert_int_eq(supervisor_check(&m, NOW, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "generation 3: none of its 4 workers is ready");
	/* ready, its loop not turned once yet: its start time stands in */
	add_worker(4, 3, 0)->mw_started = NOW - 5000;
	ck_assert_int_eq(supervisor_check(&m, NOW, why, sizeof(why)), -1);
	m.m_workers[4].mw_started = NOW - 500;
	ck_assert_int_eq(supervisor_check(&m, NOW, why, sizeof(why)), 0);
	m.m_workers[4].mw_started = NOW - 5000;
	/* a live worker of another generation does not serve */
	add_worker(5, 2, NOW);
	add_worker(6, 4, NOW);
	ck_assert_int_eq(supervisor_check(&m, NOW, why, sizeof(why)), -1);
}
END_TEST

START_TEST(test_master_states)
{
	ck_assert_int_eq(supervisor_check(&m, NOW, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "generation 3 has no worker running");
	add_worker(0, 3, NOW);
	ck_assert_int_eq(supervisor_check(&m, NOW, why, sizeof(why)), 0);
	m.m_stop_asked = MASTER_STOP_GRACEFUL; /* `portcullis quit` */
	ck_assert_int_eq(supervisor_check(&m, NOW, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "the master is stopping");
	m.m_stop_asked = MASTER_RUNNING;
	m.m_stopping = MASTER_STOP_FAST;
	ck_assert_int_eq(supervisor_check(&m, NOW, why, sizeof(why)), -1);
	m.m_stopping = MASTER_RUNNING;
	m.m_serving = false;
	ck_assert_int_eq(supervisor_check(&m, NOW, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "no generation serves yet");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("supervisor");
	TCase *tc = tcase_create("check");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_one_live_worker_is_enough);
	tcase_add_test(tc, test_stale_heartbeats);
	tcase_add_test(tc, test_not_accepting);
	tcase_add_test(tc, test_master_states);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
