/*
 * metrics_prom.c: /metrics, the Prometheus text format 0.0.4 (see
 * metrics_page.h; every name is listed in portcullis(8), ADMIN ENDPOINT).
 *
 * Labels come from the configuration only (listener, route number,
 * backend, server address): the number of series is bounded by the
 * file, never by the clients.  Each family is written whole, HELP and
 * TYPE first, as the format requires.
 */
#include "server/metrics_page.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/shm.h"
#include "common/timer.h"
#include "common/version.h"
#include "server/master_types.h"
#include "server/scoreboard.h"
#include "server/supervisor.h"

/* ---- the format -------------------------------------------------------- */

void prom_label(struct outbuf *o, bool *first, const char *name,
		const char *value)
{
	outbuf_printf(o, "%s%s=\"", *first ? "" : ",", name);
	*first = false;
	for (; *value; value++) {
		if (*value == '\\')
			outbuf_puts(o, "\\\\");
		else if (*value == '"')
			outbuf_puts(o, "\\\"");
		else if (*value == '\n')
			outbuf_puts(o, "\\n");
		else
			outbuf_putn(o, value, 1);
	}
	outbuf_putn(o, "\"", 1);
}

void prom_family(struct outbuf *o, const char *name, const char *type,
		 const char *help)
{
	outbuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void prom_sample(struct outbuf *o, const char *name, const char *labels,
		 uint64_t value)
{
	if (labels[0] != '\0')
		outbuf_printf(o, "%s{%s} %llu\n", name, labels,
			      (unsigned long long)value);
	else
		outbuf_printf(o, "%s %llu\n", name, (unsigned long long)value);
}

void prom_hist(struct outbuf *o, const char *name, const char *labels,
	       const struct metrics_hist *h)
{
	const char *sep = labels[0] != '\0' ? "," : "";
	uint64_t cum = 0;

	for (int i = 0; i < METRICS_BUCKETS; i++) {
		cum += h->h_bucket[i];
		if (i < METRICS_BUCKETS - 1)
			outbuf_printf(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name,
				      labels, sep, metrics_le_ms[i] / 1000.0,
				      (unsigned long long)cum);
		else
			outbuf_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n",
				      name, labels, sep,
				      (unsigned long long)cum);
	}
	outbuf_printf(o, "%s_sum%s%s%s %.3f\n", name, labels[0] ? "{" : "",
		      labels, labels[0] ? "}" : "",
		      (double)h->h_sum_ms / 1000.0);
	outbuf_printf(o, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "",
		      labels, labels[0] ? "}" : "", (unsigned long long)cum);
}

/* ---- the process ------------------------------------------------------ */

static void prom_process(struct master *m, struct outbuf *o,
			 const struct metrics_area *a)
{
	uint64_t now = timer_now_ms(), wall = shm_wall_ms();
	struct outbuf l = {0};
	bool first = true;

	prom_label(&l, &first, "version", PORTCULLIS_VERSION);
	prom_family(o, "portcullis_build_info", "gauge",
		    "Always 1; the version of the running binary.");
	prom_sample(o, "portcullis_build_info", l.ob_buf, 1);
	outbuf_free(&l);
	prom_family(o, "portcullis_start_time_seconds", "gauge",
		    "When the master started, Unix time.");
	outbuf_printf(o, "portcullis_start_time_seconds %.3f\n",
		      (double)(wall - (now - m->m_started)) / 1000.0);
	prom_family(o, "portcullis_generation", "gauge",
		    "The serving configuration generation.");
	prom_sample(o, "portcullis_generation", "", m->m_cur.mg_num);
	prom_family(o, "portcullis_workers", "gauge",
		    "Worker processes, every generation.");
	prom_sample(o, "portcullis_workers", "",
		    supervisor_count(m, 0, UINT32_MAX));
	prom_family(o, "portcullis_reloads_total", "counter",
		    "Configuration reloads by result.");
	outbuf_printf(o, "portcullis_reloads_total{result=\"ok\"} %llu\n",
		      (unsigned long long)a->mx_reloads_ok);
	outbuf_printf(o, "portcullis_reloads_total{result=\"failed\"} %llu\n",
		      (unsigned long long)a->mx_reloads_failed);
	prom_family(o, "portcullis_last_reload_timestamp_seconds", "gauge",
		    "When the last reload ended, Unix time; 0: none yet.");
	outbuf_printf(o, "portcullis_last_reload_timestamp_seconds %.3f\n",
		      (double)a->mx_last_reload_ms / 1000.0);
	prom_family(o, "portcullis_worker_restarts_total", "counter",
		    "Workers that died unasked and were started again.");
	prom_sample(o, "portcullis_worker_restarts_total", "",
		    a->mx_worker_restarts);
	prom_family(o, "portcullis_bans_total", "counter",
		    "Clients added to the nftables set of ban:.");
	prom_sample(o, "portcullis_bans_total", "", a->mx_bans);
	prom_family(o, "portcullis_ban_failures_total", "counter",
		    "Clients nftables would not add (the error log says why).");
	prom_sample(o, "portcullis_ban_failures_total", "", a->mx_ban_failures);
}

/* ---- listeners and routes --------------------------------------------- */

/* listener="..",route="N" ("" for the requests no route took). */
static void prom_route_labels(struct outbuf *l, const struct cfg_listener *li,
			      size_t route)
{
	char num[24] = "";
	bool first = true;

	outbuf_reset(l);
	if (route > 0)
		snprintf(num, sizeof(num), "%zu", route);
	prom_label(l, &first, "listener", li->name);
	prom_label(l, &first, "route", num);
}

/*
 * The route (or listener, route 0) counters of every listener, each
 * family whole: fn writes one family's samples for one slot.
 */
typedef void prom_route_fn(struct outbuf *o, const char *labels,
			   const struct metrics_route *r);

static void prom_routes(struct outbuf *o, const struct config *cfg,
			const struct metrics_area *a, prom_route_fn *fn,
			bool listener_only)
{
	struct outbuf l = {0};
	struct metrics_route r;

	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct cfg_listener *li = &cfg->listeners[i];

		for (size_t j = 0; j <= (listener_only ? 0 : li->nroutes); j++) {
			metrics_sum_route(a,
					  j ? li->routes[j - 1].slot
					    : li->route_slot,
					  &r);
			prom_route_labels(&l, li, j);
			if (listener_only) {
				bool first = true;

				outbuf_reset(&l);
				prom_label(&l, &first, "listener", li->name);
			}
			fn(o, l.ob_buf, &r);
		}
	}
	outbuf_free(&l);
}

static void prom_requests(struct outbuf *o, const char *labels,
			  const struct metrics_route *r)
{
	static const char *const code[6] = {"other", "1xx", "2xx",
					    "3xx",   "4xx", "5xx"};

	for (int c = 1; c <= 6; c++)
		outbuf_printf(o,
			      "portcullis_requests_total{%s,code=\"%s\"} %llu\n",
			      labels, code[c % 6],
			      (unsigned long long)r->mr_status[c % 6]);
}

static void prom_bytes_in(struct outbuf *o, const char *labels,
			  const struct metrics_route *r)
{
	prom_sample(o, "portcullis_received_bytes_total", labels,
		    r->mr_bytes_in);
}

static void prom_bytes_out(struct outbuf *o, const char *labels,
			   const struct metrics_route *r)
{
	prom_sample(o, "portcullis_sent_bytes_total", labels, r->mr_bytes_out);
}

static void prom_duration(struct outbuf *o, const char *labels,
			  const struct metrics_route *r)
{
	prom_hist(o, "portcullis_request_duration_seconds", labels,
		  &r->mr_duration);
}

static void prom_denied(struct outbuf *o, const char *labels,
			const struct metrics_route *r)
{
	static const char *const why[METRICS_DENY_N] = {
		[METRICS_DENY_LISTENER] = "listener_acl",
		[METRICS_DENY_ROUTE] = "route_acl",
		[METRICS_DENY_CONN_LIMIT] = "max_connections",
	};

	for (int d = 0; d < METRICS_DENY_N; d++)
		outbuf_printf(o, "portcullis_denied_total{%s,reason=\"%s\"} "
				 "%llu\n",
			      labels, why[d],
			      (unsigned long long)r->mr_denied[d]);
}

static void prom_limited(struct outbuf *o, const char *labels,
			 const struct metrics_route *r)
{
	prom_sample(o, "portcullis_rate_limited_total", labels, r->mr_limited);
}

static void prom_auth(struct outbuf *o, const char *labels,
		      const struct metrics_route *r)
{
	prom_sample(o, "portcullis_auth_failures_total", labels,
		    r->mr_auth_failed);
}

static void prom_accepted(struct outbuf *o, const char *labels,
			  const struct metrics_route *r)
{
	prom_sample(o, "portcullis_connections_accepted_total", labels,
		    r->mr_accepted);
}

static void prom_tls(struct outbuf *o, const char *labels,
		     const struct metrics_route *r)
{
	prom_sample(o, "portcullis_tls_handshakes_total", labels,
		    r->mr_tls_handshakes);
}

static void prom_tls_failed(struct outbuf *o, const char *labels,
			    const struct metrics_route *r)
{
	prom_sample(o, "portcullis_tls_handshake_failures_total", labels,
		    r->mr_tls_failed);
}

static void prom_tls_resumed(struct outbuf *o, const char *labels,
			     const struct metrics_route *r)
{
	prom_sample(o, "portcullis_tls_resumptions_total", labels,
		    r->mr_tls_resumed);
}

static const struct prom_route_family {
	const char *name, *type, *help;
	prom_route_fn *fn;
	bool listener_only;
} prom_route_families[] = {
	{"portcullis_requests_total", "counter",
	 "Requests answered, by listener, route (\"\": none matched) and "
	 "status class.",
	 prom_requests, false},
	{"portcullis_received_bytes_total", "counter",
	 "Request bytes (head and body) received from clients.", prom_bytes_in,
	 false},
	{"portcullis_sent_bytes_total", "counter",
	 "Response bytes sent to clients.", prom_bytes_out, false},
	{"portcullis_request_duration_seconds", "histogram",
	 "From the first byte of a request to its end.", prom_duration, false},
	{"portcullis_denied_total", "counter",
	 "Requests (403) and connections (closed) refused, by reason.",
	 prom_denied, false},
	{"portcullis_rate_limited_total", "counter",
	 "Requests refused with 429 by a rate or connection limit.",
	 prom_limited, false},
	{"portcullis_auth_failures_total", "counter",
	 "Requests refused with 401.", prom_auth, false},
	{"portcullis_connections_accepted_total", "counter",
	 "Client connections accepted.", prom_accepted, true},
	{"portcullis_tls_handshakes_total", "counter",
	 "TLS handshakes completed with clients.", prom_tls, true},
	{"portcullis_tls_handshake_failures_total", "counter",
	 "TLS handshakes with clients that failed or timed out.",
	 prom_tls_failed, true},
	{"portcullis_tls_resumptions_total", "counter",
	 "TLS handshakes completed by session resumption.", prom_tls_resumed,
	 true},
};

static void prom_listeners(struct outbuf *o, const struct config *cfg,
			   const struct metrics_area *a)
{
	static const char *const states[METRICS_CONN_STATES] = {
		"proxy_header", "handshake", "head", "proxy",
		"reply",        "linger",    "tunnel", "closed"};
	uint64_t conns[METRICS_CONN_STATES];
	size_t n = sizeof(prom_route_families) / sizeof(*prom_route_families);

	for (size_t i = 0; i < n; i++) {
		const struct prom_route_family *f = &prom_route_families[i];

		prom_family(o, f->name, f->type, f->help);
		prom_routes(o, cfg, a, f->fn, f->listener_only);
	}
	metrics_sum_conns(a, conns);
	prom_family(o, "portcullis_client_connections", "gauge",
		    "Client connections open, by state.");
	for (int s = 0; s < METRICS_CONN_STATES - 1; s++)
		outbuf_printf(o,
			      "portcullis_client_connections{state=\"%s\"} "
			      "%llu\n",
			      states[s], (unsigned long long)conns[s]);
}

/* ---- backends and servers --------------------------------------------- */

/* A server family: fn writes the sample of one server. */
typedef void prom_server_fn(struct outbuf *o, const char *labels,
			    const struct page_server *ps);

static void prom_up(struct outbuf *o, const char *l,
		    const struct page_server *ps)
{
	prom_sample(o, "portcullis_server_up", l, ps->ps_is_up);
}

static void prom_drain(struct outbuf *o, const char *l,
		       const struct page_server *ps)
{
	prom_sample(o, "portcullis_server_draining", l, ps->ps_is_draining);
}

static void prom_active(struct outbuf *o, const char *l,
			const struct page_server *ps)
{
	prom_sample(o, "portcullis_server_active_connections", l,
		    ps->ps_active);
}

static void prom_idle(struct outbuf *o, const char *l,
		      const struct page_server *ps)
{
	prom_sample(o, "portcullis_server_idle_connections", l, ps->ps_idle);
}

static void prom_srv_requests(struct outbuf *o, const char *l,
			      const struct page_server *ps)
{
	prom_sample(o, "portcullis_server_requests_total", l,
		    ps->ps_m.ms_requests);
}

static void prom_srv_failures(struct outbuf *o, const char *l,
			      const struct page_server *ps)
{
	prom_sample(o, "portcullis_server_failures_total", l,
		    ps->ps_m.ms_failures);
}

static void prom_checks(struct outbuf *o, const char *l,
			const struct page_server *ps)
{
	outbuf_printf(o, "portcullis_server_checks_total{%s,result=\"ok\"} "
			 "%llu\n",
		      l, (unsigned long long)ps->ps_m.ms_checks_ok);
	outbuf_printf(o,
		      "portcullis_server_checks_total{%s,result=\"failed\"} "
		      "%llu\n",
		      l, (unsigned long long)ps->ps_m.ms_checks_failed);
}

static void prom_changed(struct outbuf *o, const char *l,
			 const struct page_server *ps)
{
	outbuf_printf(o,
		      "portcullis_server_last_transition_timestamp_seconds{%s}"
		      " %.3f\n",
		      l, (double)ps->ps_changed_ms / 1000.0);
}

static void prom_connect(struct outbuf *o, const char *l,
			 const struct page_server *ps)
{
	prom_hist(o, "portcullis_server_connect_duration_seconds", l,
		  &ps->ps_m.ms_connect);
}

static void prom_response(struct outbuf *o, const char *l,
			  const struct page_server *ps)
{
	prom_hist(o, "portcullis_server_response_duration_seconds", l,
		  &ps->ps_m.ms_response);
}

static const struct prom_server_family {
	const char *name, *type, *help;
	prom_server_fn *fn;
} prom_server_families[] = {
	{"portcullis_server_up", "gauge",
	 "1 when the server takes requests (health checks and passive "
	 "failures).",
	 prom_up},
	{"portcullis_server_draining", "gauge",
	 "1 when drained by the operator.", prom_drain},
	{"portcullis_server_active_connections", "gauge",
	 "Connections to the server in use, all workers.", prom_active},
	{"portcullis_server_idle_connections", "gauge",
	 "Idle keep-alive connections to the server, all workers.", prom_idle},
	{"portcullis_server_requests_total", "counter",
	 "Requests sent to the server.", prom_srv_requests},
	{"portcullis_server_failures_total", "counter",
	 "Connect failures, timeouts and broken responses.",
	 prom_srv_failures},
	{"portcullis_server_checks_total", "counter",
	 "Active health checks by result.", prom_checks},
	{"portcullis_server_last_transition_timestamp_seconds", "gauge",
	 "When the server's health last changed, Unix time.", prom_changed},
	{"portcullis_server_connect_duration_seconds", "histogram",
	 "Time to connect to the server (TLS included).", prom_connect},
	{"portcullis_server_response_duration_seconds", "histogram",
	 "From the request sent to the response head received.",
	 prom_response},
};

/*
 * Every server family.  The servers' pictures are made once, on the heap
 * (each holds its sparkline), then written family by family.
 */
static void prom_servers(struct outbuf *o, const struct config *cfg)
{
	size_t nf = sizeof(prom_server_families) / sizeof(*prom_server_families);
	struct outbuf l = {0};
	struct page_server *ps;
	size_t n = 0, k;

	for (size_t i = 0; i < cfg->nbackends; i++)
		n += cfg->backends[i].nservers;
	ps = calloc(n ? n : 1, sizeof(*ps));
	if (ps == NULL) {
		o->ob_is_full = true; /* answered 503 */
		return;
	}
	k = 0;
	for (size_t i = 0; i < cfg->nbackends; i++)
		for (size_t j = 0; j < cfg->backends[i].nservers; j++)
			metrics_page_server(&cfg->backends[i],
					    &cfg->backends[i].servers[j],
					    &ps[k++]);
	for (size_t f = 0; f < nf; f++) {
		prom_family(o, prom_server_families[f].name,
			    prom_server_families[f].type,
			    prom_server_families[f].help);
		for (k = 0; k < n; k++) {
			bool first = true;

			outbuf_reset(&l);
			prom_label(&l, &first, "backend", ps[k].ps_be->name);
			prom_label(&l, &first, "server",
				   ps[k].ps_srv->addr.str);
			prom_server_families[f].fn(o, l.ob_buf, &ps[k]);
		}
	}
	free(ps);
	outbuf_free(&l);
}

void metrics_prom(struct master *m, struct outbuf *o)
{
	struct metrics_area *a = metrics_area(shm_zone());
	const struct config *cfg = m->m_cur.mg_cfg;

	if (a == NULL)
		return;
	/* a fold by the other master of an upgrade: read it all again */
	for (int tries = 0; tries < 3; tries++) {
		uint32_t seq = metrics_seq(a);

		outbuf_reset(o);
		prom_process(m, o, a);
		if (cfg != NULL) {
			prom_listeners(o, cfg, a);
			prom_servers(o, cfg);
		}
		if (!(seq & 1) && seq == metrics_seq(a))
			break;
	}
}
