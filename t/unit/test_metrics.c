/* test_metrics.c: per-worker counters (common/metrics.h), the Prometheus
 * text renderer and the pages' escaping (server/metrics_page.h), and the
 * admin endpoint's request parser (server/admin.h). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics.h"
#include "common/shm.h"
#include "server/admin.h"
#include "server/metrics_page.h"

/* le boundaries are inclusive: 5 ms is in le="0.005", 6 ms is not. */
START_TEST(test_observe_buckets)
{
	struct metrics_hist h = {0};

	metrics_observe(&h, 0);
	metrics_observe(&h, 5);
	metrics_observe(&h, 6);
	metrics_observe(&h, 10000);
	metrics_observe(&h, 10001);
	ck_assert_uint_eq(h.h_bucket[0], 2);
	ck_assert_uint_eq(h.h_bucket[1], 1);
	ck_assert_uint_eq(h.h_bucket[METRICS_BUCKETS - 2], 1);
	ck_assert_uint_eq(h.h_bucket[METRICS_BUCKETS - 1], 1);
	ck_assert_uint_eq(h.h_sum_ms, 20012);
}
END_TEST

/* Label values escape \ " and line feed (text format 0.0.4). */
START_TEST(test_label_escaping)
{
	struct outbuf o = {0};
	bool first = true;

	prom_label(&o, &first, "listener", "a\\b\"c\nd");
	prom_label(&o, &first, "route", "");
	ck_assert_str_eq(o.ob_buf, "listener=\"a\\\\b\\\"c\\nd\",route=\"\"");
	outbuf_free(&o);
}
END_TEST

/* Buckets are cumulative, +Inf equals _count, _sum is in seconds. */
START_TEST(test_histogram_text)
{
	struct outbuf o = {0};
	struct metrics_hist h = {0};

	metrics_observe(&h, 3);     /* le 0.005 */
	metrics_observe(&h, 20);    /* le 0.025 */
	metrics_observe(&h, 20000); /* +Inf only */
	prom_hist(&o, "x_seconds", "a=\"1\"", &h);
	ck_assert_ptr_nonnull(strstr(o.ob_buf,
				     "x_seconds_bucket{a=\"1\",le=\"0.005\"} 1\n"
				     "x_seconds_bucket{a=\"1\",le=\"0.01\"} 1\n"
				     "x_seconds_bucket{a=\"1\",le=\"0.025\"} 2\n"));
	ck_assert_ptr_nonnull(
		strstr(o.ob_buf, "x_seconds_bucket{a=\"1\",le=\"10\"} 2\n"
				 "x_seconds_bucket{a=\"1\",le=\"+Inf\"} 3\n"
				 "x_seconds_sum{a=\"1\"} 20.023\n"
				 "x_seconds_count{a=\"1\"} 3\n"));
	outbuf_reset(&o);
	prom_hist(&o, "y", "", &h);
	ck_assert_ptr_nonnull(strstr(o.ob_buf, "y_bucket{le=\"+Inf\"} 3\n"
					       "y_sum 20.023\ny_count 3\n"));
	outbuf_free(&o);
}
END_TEST

START_TEST(test_family_and_sample)
{
	struct outbuf o = {0};

	prom_family(&o, "p_total", "counter", "Things.");
	prom_sample(&o, "p_total", "", 7);
	prom_sample(&o, "p_total", "k=\"v\"", 18446744073709551615ull);
	ck_assert_str_eq(o.ob_buf, "# HELP p_total Things.\n"
				   "# TYPE p_total counter\n"
				   "p_total 7\n"
				   "p_total{k=\"v\"} 18446744073709551615\n");
	outbuf_free(&o);
}
END_TEST

/* Quantiles interpolate inside their bucket; an empty histogram has none. */
START_TEST(test_quantile)
{
	struct metrics_hist h = {0};

	ck_assert(metrics_page_quantile(&h, 0.5) < 0);
	for (int i = 0; i < 100; i++)
		metrics_observe(&h, i < 50 ? 1 : 40); /* half le 5, half le 50 */
	ck_assert(metrics_page_quantile(&h, 0.5) <= 5.0);
	ck_assert(metrics_page_quantile(&h, 0.99) > 25.0);
	ck_assert(metrics_page_quantile(&h, 0.99) <= 50.0);
}
END_TEST

START_TEST(test_json_and_html_escaping)
{
	struct outbuf o = {0};

	json_string(&o, "a\"b\\c\n\x01");
	ck_assert_str_eq(o.ob_buf, "\"a\\\"b\\\\c\\u000a\\u0001\"");
	outbuf_reset(&o);
	html_text(&o, "<a href='x'>&\"</a>");
	ck_assert_str_eq(o.ob_buf,
			 "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
	outbuf_free(&o);
}
END_TEST

/* The buffer stops at its bound and says so. */
START_TEST(test_outbuf_bound)
{
	struct outbuf o = {.ob_max = 16};

	outbuf_puts(&o, "0123456789");
	ck_assert(!o.ob_is_full);
	outbuf_printf(&o, "%s", "0123456789");
	ck_assert(o.ob_is_full);
	ck_assert_uint_eq(o.ob_len, 10);
	outbuf_free(&o);
}
END_TEST

/*
 * A worker's counts survive its death: retired + live blocks before and
 * after the fold are the same, and the freed block is zero.
 */
START_TEST(test_fold_keeps_counts)
{
	struct shm_zone *z = shm_create();
	struct metrics_area *a;
	struct metrics_route r;
	struct metrics_server s;
	uint64_t idle;
	int rs, ss, b1, b2;

	ck_assert_ptr_nonnull(z);
	a = metrics_area(z);
	ck_assert_ptr_nonnull(a);
	shm_zone_set(z);
	rs = shm_route_claim(z, "web#1", 1, 1);
	ss = shm_server_claim(z, "app\n127.0.0.1:1", 1, 1);
	b1 = metrics_claim(a, 1, 1);
	b2 = metrics_claim(a, 1, 1);
	ck_assert_int_ne(b1, b2);
	metrics_set_pid(a, b1, 100);
	metrics_set_pid(a, b2, 101);
	metrics_bind(a, b1);
	metrics_add(&metrics_route(rs)->mr_status[2], 5);
	metrics_add(&metrics_server(ss)->ms_requests, 5);
	metrics_set32(&metrics_self->mb_g.mg_idle[ss], 3);
	metrics_bind(a, b2);
	metrics_add(&metrics_route(rs)->mr_status[2], 2);
	metrics_bind(a, -1);
	ck_assert_ptr_null(metrics_route(rs));
	metrics_sum_route(a, rs, &r);
	ck_assert_uint_eq(r.mr_status[2], 7);
	metrics_retire(z, b1);
	ck_assert_int_eq(a->mx_blocks[b1].mb_pid, 0);
	ck_assert_uint_eq(a->mx_blocks[b1].mb_routes[rs].mr_status[2], 0);
	metrics_sum_route(a, rs, &r);
	ck_assert_uint_eq(r.mr_status[2], 7);
	metrics_sum_server(a, ss, &s, &idle);
	ck_assert_uint_eq(s.ms_requests, 5);
	ck_assert_uint_eq(idle, 0); /* gauges die with their worker */
	/* the freed block is claimed again, from zero */
	ck_assert_int_eq(metrics_claim(a, 1, 2), b1);
	ck_assert_uint_eq(metrics_seq(a) % 2, 0);
	shm_zone_set(NULL);
	shm_destroy(z);
}
END_TEST

/* Sparkline samples are the growth of the summed counters per second. */
START_TEST(test_spark)
{
	struct shm_zone *z = shm_create();
	struct metrics_area *a = metrics_area(z);
	int ss = shm_server_claim(z, "app\n127.0.0.1:1", 1, 1);

	a->mx_retired.mb_servers[ss].ms_requests = 10;
	ck_assert(metrics_spark_due(a, 1000));
	metrics_spark_server(a, ss, 1000);
	metrics_spark_done(a, 1000);
	ck_assert(!metrics_spark_due(a, 1000));
	a->mx_retired.mb_servers[ss].ms_requests = 25;
	a->mx_retired.mb_servers[ss].ms_failures = 2;
	metrics_spark_server(a, ss, 1003);
	metrics_spark_done(a, 1003);
	ck_assert_uint_eq(a->mx_spark[ss].sp_req[1000 % METRICS_SPARK_LEN], 10);
	ck_assert_uint_eq(a->mx_spark[ss].sp_req[1001 % METRICS_SPARK_LEN], 0);
	ck_assert_uint_eq(a->mx_spark[ss].sp_req[1003 % METRICS_SPARK_LEN], 15);
	ck_assert_uint_eq(a->mx_spark[ss].sp_err[1003 % METRICS_SPARK_LEN], 2);
	shm_destroy(z);
}
END_TEST

START_TEST(test_admin_parse)
{
	char path[64];
	bool is_head;

	ck_assert_uint_eq(admin_parse_request("GET /metrics HTTP/1.1\r\n\r\n",
					      &is_head, path, sizeof(path)),
			  0);
	ck_assert_str_eq(path, "/metrics");
	ck_assert(!is_head);
	ck_assert_uint_eq(admin_parse_request("HEAD /status?x=1 HTTP/1.0\r\n\r\n",
					      &is_head, path, sizeof(path)),
			  0);
	ck_assert_str_eq(path, "/status");
	ck_assert(is_head);
	ck_assert_uint_eq(admin_parse_request("POST /metrics HTTP/1.1\r\n\r\n",
					      &is_head, path, sizeof(path)),
			  405);
	ck_assert_uint_eq(admin_parse_request("GET /metrics HTTP/2.0\r\n\r\n",
					      &is_head, path, sizeof(path)),
			  505);
	ck_assert_uint_eq(admin_parse_request("GET metrics HTTP/1.1\r\n\r\n",
					      &is_head, path, sizeof(path)),
			  400);
	ck_assert_uint_eq(admin_parse_request("GET\r\n\r\n", &is_head, path,
					      sizeof(path)),
			  400);
	ck_assert_uint_eq(admin_parse_request("GET  / HTTP/1.1\r\n\r\n",
					      &is_head, path, sizeof(path)),
			  400);
}
END_TEST

static Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_observe_buckets);
	tcase_add_test(tc, test_label_escaping);
	tcase_add_test(tc, test_histogram_text);
	tcase_add_test(tc, test_family_and_sample);
	tcase_add_test(tc, test_quantile);
	tcase_add_test(tc, test_json_and_html_escaping);
	tcase_add_test(tc, test_outbuf_bound);
	tcase_add_test(tc, test_fold_keeps_counts);
	tcase_add_test(tc, test_spark);
	tcase_add_test(tc, test_admin_parse);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(metrics_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
