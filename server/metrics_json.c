/*
 * metrics_json.c: /status.json and `portcullis status --json` (see
 * metrics_page.h).  The shape is versioned ("version": 1) and documented
 * in portcullis(8), ADMIN ENDPOINT; fields are only ever added within a
 * version.  No line is longer than about 1 KiB (the control socket sends
 * lines of at most 4 KiB): the sparkline arrays are wrapped.
 */
#include "server/metrics_page.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/shm.h"
#include "common/timer.h"
#include "common/version.h"
#include "server/master_types.h"
#include "server/scoreboard.h"
#include "server/supervisor.h"

#define JSON_SPARK_PER_LINE 60

static const char *const json_classes[6] = {"other", "1xx", "2xx",
					    "3xx",   "4xx", "5xx"};

/* A number, or null when negative (no data). */
static void json_ms(struct outbuf *o, double ms)
{
	if (ms < 0)
		outbuf_puts(o, "null");
	else
		outbuf_printf(o, "%.1f", ms);
}

static void json_master(struct master *m, struct outbuf *o)
{
	uint64_t now = timer_now_ms(), wall = shm_wall_ms();
	struct metrics_area *a = metrics_area(shm_zone());

	outbuf_printf(o, "  \"master\": {\"pid\": %d, \"version\": ",
		      (int)m->m_pid);
	json_string(o, PORTCULLIS_VERSION);
	outbuf_printf(o, ", \"started\": %.3f, \"uptime_s\": %llu, "
			 "\"generation\": %u, \"config\": ",
		      (double)(wall - (now - m->m_started)) / 1000.0,
		      (unsigned long long)(now - m->m_started) / 1000,
		      m->m_cur.mg_num);
	json_string(o, m->m_path ? m->m_path : "");
	outbuf_puts(o, "},\n");
	outbuf_printf(o,
		      "  \"reloads\": {\"ok\": %llu, \"failed\": %llu, "
		      "\"last\": %.3f, \"last_error\": ",
		      (unsigned long long)(a ? a->mx_reloads_ok : 0),
		      (unsigned long long)(a ? a->mx_reloads_failed : 0),
		      (double)(a ? a->mx_last_reload_ms : 0) / 1000.0);
	if (m->m_reload_error != NULL)
		json_string(o, m->m_reload_error);
	else
		outbuf_puts(o, "null");
	outbuf_printf(o, "},\n  \"worker_restarts\": %llu,\n",
		      (unsigned long long)(a ? a->mx_worker_restarts : 0));
	outbuf_printf(o, "  \"bans\": {\"added\": %llu, \"failed\": %llu},\n",
		      (unsigned long long)(a ? a->mx_bans : 0),
		      (unsigned long long)(a ? a->mx_ban_failures : 0));
}

static void json_generations(struct master *m, struct outbuf *o)
{
	struct page_gen gens[64];
	size_t n = metrics_page_gens(m, gens, 64);
	uint64_t now = timer_now_ms();

	outbuf_puts(o, "  \"generations\": [");
	for (size_t g = 0; g < n; g++) {
		bool first = true;

		outbuf_printf(o, "%s\n    {\"generation\": %u, \"role\": \"%s\", "
				 "\"workers\": [",
			      g ? "," : "", gens[g].pg_num, gens[g].pg_role);
		for (size_t i = 0; i < MASTER_MAX_WORKERS; i++) {
			const struct master_worker *mw = &m->m_workers[i];

			if (mw->mw_pid == 0 || mw->mw_gen != gens[g].pg_num)
				continue;
			outbuf_printf(o,
				      "%s\n      {\"pid\": %d, \"slot\": %u, "
				      "\"state\": \"%s\", \"connections\": %u, "
				      "\"uptime_s\": %llu}",
				      first ? "" : ",", (int)mw->mw_pid,
				      mw->mw_slot,
				      supervisor_worker_state(m, mw),
				      scoreboard_get(m->m_board, i),
				      (unsigned long long)(now - mw->mw_started) /
					      1000);
			first = false;
		}
		outbuf_puts(o, "]}");
	}
	outbuf_puts(o, "\n  ],\n");
}

static void json_requests(struct outbuf *o, const struct metrics_route *r)
{
	outbuf_puts(o, "{");
	for (int c = 1; c <= 6; c++)
		outbuf_printf(o, "%s\"%s\": %llu", c > 1 ? ", " : "",
			      json_classes[c % 6],
			      (unsigned long long)r->mr_status[c % 6]);
	outbuf_puts(o, "}");
}

/* A route's (or the listener's own, route 0) counters. */
static void json_counts(struct outbuf *o, const struct metrics_route *r)
{
	outbuf_puts(o, "\"requests\": ");
	json_requests(o, r);
	outbuf_printf(o,
		      ", \"bytes_in\": %llu, \"bytes_out\": %llu, "
		      "\"denied\": %llu, \"rate_limited\": %llu, "
		      "\"auth_failed\": %llu, \"p50_ms\": ",
		      (unsigned long long)r->mr_bytes_in,
		      (unsigned long long)r->mr_bytes_out,
		      (unsigned long long)(r->mr_denied[METRICS_DENY_LISTENER] +
					   r->mr_denied[METRICS_DENY_ROUTE] +
					   r->mr_denied[METRICS_DENY_CONN_LIMIT]),
		      (unsigned long long)r->mr_limited,
		      (unsigned long long)r->mr_auth_failed);
	json_ms(o, metrics_page_quantile(&r->mr_duration, 0.5));
	outbuf_puts(o, ", \"p99_ms\": ");
	json_ms(o, metrics_page_quantile(&r->mr_duration, 0.99));
}

static void json_route(struct outbuf *o, const struct cfg_route *rt,
		       size_t idx, const struct metrics_area *a)
{
	struct metrics_route r;

	metrics_sum_route(a, rt->slot, &r);
	outbuf_printf(o, "\n        {\"route\": %zu, \"hosts\": [", idx);
	for (size_t h = 0; h < rt->nhosts; h++) {
		if (h)
			outbuf_puts(o, ", ");
		json_string(o, rt->hosts[h]);
	}
	outbuf_puts(o, "], \"path_prefix\": ");
	json_string(o, rt->path_prefix ? rt->path_prefix : "/");
	outbuf_puts(o, ", \"backend\": ");
	if (rt->backend_name != NULL)
		json_string(o, rt->backend_name);
	else
		outbuf_puts(o, "null");
	outbuf_puts(o, ",\n         ");
	json_counts(o, &r);
	outbuf_puts(o, "}");
}

static void json_listener(struct outbuf *o, const struct cfg_listener *l,
			  const struct metrics_area *a)
{
	struct metrics_route r;

	metrics_sum_route(a, l->route_slot, &r);
	outbuf_puts(o, "\n    {\"name\": ");
	json_string(o, l->name);
	outbuf_printf(o, ", \"protocol\": \"%s\", \"tls\": %s, \"binds\": [",
		      l->protocol == CFG_PROTO_TCP ? "tcp" : "http",
		      l->tls ? "true" : "false");
	for (size_t b = 0; b < l->nbinds; b++) {
		if (b)
			outbuf_puts(o, ", ");
		json_string(o, l->binds[b].str);
	}
	outbuf_printf(o,
		      "],\n     \"connections_accepted\": %llu, "
		      "\"tls_handshakes\": %llu, \"tls_failures\": %llu, "
		      "\"tls_resumptions\": %llu,\n     \"unrouted\": {",
		      (unsigned long long)r.mr_accepted,
		      (unsigned long long)r.mr_tls_handshakes,
		      (unsigned long long)r.mr_tls_failed,
		      (unsigned long long)r.mr_tls_resumed);
	json_counts(o, &r);
	outbuf_puts(o, "},\n     \"routes\": [");
	for (size_t i = 0; i < l->nroutes; i++) {
		if (i)
			outbuf_puts(o, ",");
		json_route(o, &l->routes[i], i + 1, a);
	}
	outbuf_puts(o, "]}");
}

static void json_spark(struct outbuf *o, const char *name,
		       const uint32_t *v)
{
	outbuf_printf(o, "\"%s\": [", name);
	for (int i = 0; i < METRICS_SPARK_LEN; i++)
		outbuf_printf(o, "%s%s%u", i ? "," : "",
			      i && i % JSON_SPARK_PER_LINE == 0
				      ? "\n          "
				      : "",
			      v[i]);
	outbuf_puts(o, "]");
}

static void json_server(struct outbuf *o, const struct page_server *ps)
{
	outbuf_puts(o, "\n        {\"address\": ");
	json_string(o, ps->ps_srv->addr.str);
	outbuf_printf(o,
		      ", \"weight\": %u, \"backup\": %s, \"health\": \"%s\", "
		      "\"checked\": %s, \"up\": %s, \"draining\": %s,\n"
		      "         \"reason\": ",
		      ps->ps_srv->weight, ps->ps_srv->backup ? "true" : "false",
		      ps->ps_health, ps->ps_is_checked ? "true" : "false",
		      ps->ps_is_up ? "true" : "false",
		      ps->ps_is_draining ? "true" : "false");
	json_string(o, ps->ps_reason);
	outbuf_printf(o,
		      ", \"changed\": %.3f, \"active_connections\": %u, "
		      "\"idle_connections\": %llu,\n"
		      "         \"requests\": %llu, \"failures\": %llu, "
		      "\"checks_ok\": %llu, \"checks_failed\": %llu, "
		      "\"requests_per_s\": %.1f, \"errors_per_s\": %.1f, "
		      "\"p50_ms\": ",
		      (double)ps->ps_changed_ms / 1000.0, ps->ps_active,
		      (unsigned long long)ps->ps_idle,
		      (unsigned long long)ps->ps_m.ms_requests,
		      (unsigned long long)ps->ps_m.ms_failures,
		      (unsigned long long)ps->ps_m.ms_checks_ok,
		      (unsigned long long)ps->ps_m.ms_checks_failed,
		      ps->ps_rps, ps->ps_eps);
	json_ms(o, ps->ps_p50_ms);
	outbuf_puts(o, ", \"p99_ms\": ");
	json_ms(o, ps->ps_p99_ms);
	outbuf_puts(o, ",\n         \"last_300s\": {");
	json_spark(o, "requests", ps->ps_req);
	outbuf_puts(o, ",\n          ");
	json_spark(o, "errors", ps->ps_err);
	outbuf_puts(o, "}}");
}

static void json_backends(const struct config *cfg, struct outbuf *o)
{
	static const char *const balance[] = {
		[CFG_BALANCE_ROUND_ROBIN] = "round_robin",
		[CFG_BALANCE_LEAST_CONN] = "least_conn",
		[CFG_BALANCE_RANDOM_TWO] = "random_two",
		[CFG_BALANCE_HASH] = "hash",
	};
	struct page_server *ps = malloc(sizeof(*ps));

	if (ps == NULL) {
		o->ob_is_full = true;
		return;
	}
	outbuf_puts(o, "  \"backends\": [");
	for (size_t i = 0; i < cfg->nbackends; i++) {
		const struct cfg_backend *be = &cfg->backends[i];

		outbuf_printf(o, "%s\n    {\"name\": ", i ? "," : "");
		json_string(o, be->name);
		outbuf_printf(o, ", \"balance\": \"%s\", \"servers\": [",
			      be->balance <= CFG_BALANCE_HASH
				      ? balance[be->balance]
				      : "?");
		for (size_t j = 0; j < be->nservers; j++) {
			metrics_page_server(be, &be->servers[j], ps);
			if (j)
				outbuf_puts(o, ",");
			json_server(o, ps);
		}
		outbuf_puts(o, "]}");
	}
	outbuf_puts(o, "\n  ]\n");
	free(ps);
}

void metrics_json(struct master *m, struct outbuf *o)
{
	const struct config *cfg = m->m_cur.mg_cfg;
	struct metrics_area *a = metrics_area(shm_zone());
	static const char *const states[METRICS_CONN_STATES - 1] = {
		"proxy_header", "handshake", "head", "proxy",
		"reply",        "linger",    "tunnel"};
	uint64_t conns[METRICS_CONN_STATES];

	outbuf_puts(o, "{\n  \"version\": 1,\n");
	json_master(m, o);
	json_generations(m, o);
	if (cfg == NULL || a == NULL) {
		outbuf_puts(o, "  \"listeners\": [],\n  \"client_connections\": "
			       "{},\n  \"backends\": []\n}\n");
		return;
	}
	outbuf_puts(o, "  \"listeners\": [");
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		if (i)
			outbuf_puts(o, ",");
		json_listener(o, &cfg->listeners[i], a);
	}
	outbuf_puts(o, "\n  ],\n  \"client_connections\": {");
	metrics_sum_conns(a, conns);
	for (int s = 0; s < METRICS_CONN_STATES - 1; s++)
		outbuf_printf(o, "%s\"%s\": %llu", s ? ", " : "", states[s],
			      (unsigned long long)conns[s]);
	outbuf_puts(o, "},\n");
	json_backends(cfg, o);
	outbuf_puts(o, "}\n");
}
