/*
 * metrics_html.c: /status, one HTML page (see metrics_page.h): the
 * master, its generations and workers, the listeners and routes, and
 * every backend's servers with health, drain, load, latency and a
 * sparkline of their requests and errors over the last 5 minutes.
 *
 * Self-contained: inline CSS and inline SVG, no script, no external
 * asset; a <meta> refresh every 10 s is the only motion.  Every text
 * from the configuration or a health reason goes through html_text().
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

#define HTML_SPARK_W 300 /* one pixel a second */
#define HTML_SPARK_H 36

static const char html_head[] =
	"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	"<meta http-equiv=\"refresh\" content=\"10\">\n"
	"<title>portcullis status</title>\n<style>\n"
	"body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\n"
	"h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 "
	".4em;border-bottom:1px solid #ccc}\n"
	"table{border-collapse:collapse;margin:.3em 0 1em}\n"
	"th,td{padding:.25em .6em;text-align:left;vertical-align:middle;"
	"border-bottom:1px solid #eee}\n"
	"th{font-weight:600;background:#f4f4f4}td.n{text-align:right;"
	"font-variant-numeric:tabular-nums}\n"
	".up{background:#2e7d32}.down{background:#c62828}"
	".drain{background:#ef6c00}.b{color:#fff;border-radius:3px;"
	"padding:.05em .45em;font-weight:600;font-size:.9em}\n"
	".why{color:#666;font-size:.9em}.muted{color:#888}\n"
	"svg{display:block}\n"
	"</style></head><body>\n";

/* Seconds as "3d 4h", "5m 2s", "12s". */
static void html_age(struct outbuf *o, uint64_t s)
{
	if (s >= 86400)
		outbuf_printf(o, "%llud %lluh", (unsigned long long)s / 86400,
			      (unsigned long long)s % 86400 / 3600);
	else if (s >= 3600)
		outbuf_printf(o, "%lluh %llum", (unsigned long long)s / 3600,
			      (unsigned long long)s % 3600 / 60);
	else if (s >= 60)
		outbuf_printf(o, "%llum %llus", (unsigned long long)s / 60,
			      (unsigned long long)s % 60);
	else
		outbuf_printf(o, "%llus", (unsigned long long)s);
}

static void html_master(struct master *m, struct outbuf *o)
{
	struct metrics_area *a = metrics_area(shm_zone());
	uint64_t now = timer_now_ms();

	outbuf_puts(o, "<h1>portcullis ");
	html_text(o, PORTCULLIS_VERSION);
	outbuf_printf(o, "</h1>\n<p>master pid %d, up ", (int)m->m_pid);
	html_age(o, (now - m->m_started) / 1000);
	outbuf_printf(o, ", generation %u serving; reloads %llu ok, %llu "
			 "failed; worker restarts %llu.  Config ",
		      m->m_cur.mg_num,
		      (unsigned long long)(a ? a->mx_reloads_ok : 0),
		      (unsigned long long)(a ? a->mx_reloads_failed : 0),
		      (unsigned long long)(a ? a->mx_worker_restarts : 0));
	html_text(o, m->m_path ? m->m_path : "?");
	outbuf_puts(o, ".</p>\n");
	if (m->m_reload_error != NULL) {
		outbuf_puts(o, "<p class=\"why\">last reload failed: ");
		html_text(o, m->m_reload_error);
		outbuf_puts(o, "</p>\n");
	}
}

static void html_generations(struct master *m, struct outbuf *o)
{
	struct page_gen gens[64];
	size_t n = metrics_page_gens(m, gens, 64);
	uint64_t now = timer_now_ms();

	outbuf_puts(o, "<h2>Generations and workers</h2>\n<table><tr>"
		       "<th>generation</th><th>role</th><th>worker pid</th>"
		       "<th>slot</th><th>state</th><th>connections</th>"
		       "<th>age</th></tr>\n");
	for (size_t g = 0; g < n; g++)
		for (size_t i = 0; i < MASTER_MAX_WORKERS; i++) {
			const struct master_worker *mw = &m->m_workers[i];

			if (mw->mw_pid == 0 || mw->mw_gen != gens[g].pg_num)
				continue;
			outbuf_printf(o,
				      "<tr><td class=\"n\">%u</td><td>%s</td>"
				      "<td class=\"n\">%d</td><td class=\"n\">"
				      "%u</td><td>%s</td><td class=\"n\">%u"
				      "</td><td>",
				      gens[g].pg_num, gens[g].pg_role,
				      (int)mw->mw_pid, mw->mw_slot,
				      supervisor_worker_state(m, mw),
				      scoreboard_get(m->m_board, i));
			html_age(o, (now - mw->mw_started) / 1000);
			outbuf_puts(o, "</td></tr>\n");
		}
	outbuf_puts(o, "</table>\n");
}

static void html_ms(struct outbuf *o, double ms)
{
	if (ms < 0)
		outbuf_puts(o, "<td class=\"n muted\">-</td>");
	else
		outbuf_printf(o, "<td class=\"n\">%.1f ms</td>", ms);
}

static void html_route_row(struct outbuf *o, const struct cfg_listener *l,
			   const struct cfg_route *rt, size_t idx,
			   const struct metrics_area *a)
{
	struct metrics_route r;

	metrics_sum_route(a, rt ? rt->slot : l->route_slot, &r);
	outbuf_puts(o, "<tr><td>");
	html_text(o, l->name);
	outbuf_puts(o, "</td><td>");
	if (rt == NULL) {
		outbuf_puts(o, "<span class=\"muted\">no route</span></td>"
			       "<td></td><td></td>");
	} else {
		outbuf_printf(o, "%zu</td><td>", idx);
		for (size_t h = 0; h < rt->nhosts; h++) {
			html_text(o, rt->hosts[h]);
			outbuf_puts(o, " ");
		}
		html_text(o, rt->path_prefix ? rt->path_prefix : "/");
		outbuf_puts(o, "</td><td>");
		html_text(o, rt->backend_name ? rt->backend_name : "(redirect)");
		outbuf_puts(o, "</td>");
	}
	outbuf_printf(o,
		      "<td class=\"n\">%llu</td><td class=\"n\">%llu</td>"
		      "<td class=\"n\">%llu</td><td class=\"n\">%llu</td>",
		      (unsigned long long)metrics_page_requests(&r),
		      (unsigned long long)r.mr_status[2],
		      (unsigned long long)r.mr_status[4],
		      (unsigned long long)r.mr_status[5]);
	html_ms(o, metrics_page_quantile(&r.mr_duration, 0.5));
	html_ms(o, metrics_page_quantile(&r.mr_duration, 0.99));
	outbuf_puts(o, "</tr>\n");
}

static void html_listeners(const struct config *cfg, struct outbuf *o,
			   const struct metrics_area *a)
{
	outbuf_puts(o, "<h2>Listeners and routes</h2>\n<table><tr>"
		       "<th>listener</th><th>route</th><th>match</th>"
		       "<th>backend</th><th>requests</th><th>2xx</th>"
		       "<th>4xx</th><th>5xx</th><th>p50</th><th>p99</th>"
		       "</tr>\n");
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];

		for (size_t j = 0; j < l->nroutes; j++)
			html_route_row(o, l, &l->routes[j], j + 1, a);
		html_route_row(o, l, NULL, 0, a);
	}
	outbuf_puts(o, "</table>\n<p class=\"muted\">binds: ");
	for (size_t i = 0; i < cfg->nlisteners; i++)
		for (size_t b = 0; b < cfg->listeners[i].nbinds; b++) {
			html_text(o, cfg->listeners[i].name);
			outbuf_puts(o, " ");
			html_text(o, cfg->listeners[i].binds[b].str);
			outbuf_puts(o, cfg->listeners[i].tls ? " (tls); " : "; ");
		}
	outbuf_puts(o, "</p>\n");
}

/* One polyline of v scaled to max, bottom-up. */
static void html_polyline(struct outbuf *o, const uint32_t *v, uint32_t max,
			  const char *color)
{
	outbuf_printf(o, "<polyline fill=\"none\" stroke=\"%s\" "
			 "stroke-width=\"1.2\" points=\"",
		      color);
	for (int i = 0; i < METRICS_SPARK_LEN; i++)
		outbuf_printf(o, "%d,%.1f ", i,
			      HTML_SPARK_H - 1 -
				      (double)v[i] * (HTML_SPARK_H - 2) / max);
	outbuf_puts(o, "\"/>");
}

/* Requests (blue) and errors (red) a second, last 5 minutes. */
static void html_spark(struct outbuf *o, const struct page_server *ps)
{
	uint32_t max = 1;

	for (int i = 0; i < METRICS_SPARK_LEN; i++) {
		if (ps->ps_req[i] > max)
			max = ps->ps_req[i];
		if (ps->ps_err[i] > max)
			max = ps->ps_err[i];
	}
	outbuf_printf(o,
		      "<svg class=\"spark\" width=\"%d\" height=\"%d\" "
		      "viewBox=\"0 0 %d %d\" role=\"img\"><title>requests "
		      "(blue) and errors (red) per second, last 5 minutes; "
		      "peak %u/s</title><rect width=\"%d\" height=\"%d\" "
		      "fill=\"#fafafa\" stroke=\"#ddd\"/>",
		      HTML_SPARK_W, HTML_SPARK_H, HTML_SPARK_W, HTML_SPARK_H,
		      max, HTML_SPARK_W, HTML_SPARK_H);
	html_polyline(o, ps->ps_req, max, "#1565c0");
	html_polyline(o, ps->ps_err, max, "#c62828");
	outbuf_puts(o, "</svg>");
}

static void html_server(struct outbuf *o, const struct page_server *ps)
{
	uint64_t ago = (shm_wall_ms() - ps->ps_changed_ms) / 1000;

	outbuf_puts(o, "<tr class=\"server\"><td>");
	html_text(o, ps->ps_srv->addr.str);
	if (ps->ps_srv->backup)
		outbuf_puts(o, " <span class=\"muted\">backup</span>");
	outbuf_printf(o, "</td><td><span class=\"b %s\">%s</span>",
		      ps->ps_is_up ? "up" : "down", ps->ps_health);
	if (ps->ps_is_draining)
		outbuf_puts(o, " <span class=\"b drain\">draining</span>");
	outbuf_puts(o, "<div class=\"why\">");
	if (ps->ps_reason[0] != '\0') {
		html_text(o, ps->ps_reason);
		outbuf_puts(o, ", ");
	} else if (!ps->ps_is_checked) {
		outbuf_puts(o, "no health check, ");
	}
	html_age(o, ago);
	outbuf_puts(o, " ago</div></td>");
	outbuf_printf(o,
		      "<td class=\"n\">%u</td><td class=\"n\">%llu</td>"
		      "<td class=\"n\">%.1f/s</td><td class=\"n\">%.1f/s</td>",
		      ps->ps_active, (unsigned long long)ps->ps_idle,
		      ps->ps_rps, ps->ps_eps);
	html_ms(o, ps->ps_p50_ms);
	html_ms(o, ps->ps_p99_ms);
	outbuf_printf(o, "<td class=\"n\">%llu / %llu</td><td>",
		      (unsigned long long)ps->ps_m.ms_requests,
		      (unsigned long long)ps->ps_m.ms_failures);
	html_spark(o, ps);
	outbuf_puts(o, "</td></tr>\n");
}

static void html_backends(const struct config *cfg, struct outbuf *o)
{
	struct page_server *ps = malloc(sizeof(*ps));

	if (ps == NULL) {
		o->ob_is_full = true;
		return;
	}
	outbuf_puts(o, "<h2>Backends</h2>\n");
	for (size_t i = 0; i < cfg->nbackends; i++) {
		const struct cfg_backend *be = &cfg->backends[i];

		outbuf_puts(o, "<h3 class=\"backend\">");
		html_text(o, be->name);
		outbuf_puts(o, "</h3>\n<table><tr><th>server</th><th>health</th>"
			       "<th>conns</th><th>idle</th><th>requests</th>"
			       "<th>errors</th><th>p50</th><th>p99</th>"
			       "<th>total / failed</th><th>last 5 minutes</th>"
			       "</tr>\n");
		for (size_t j = 0; j < be->nservers; j++) {
			metrics_page_server(be, &be->servers[j], ps);
			html_server(o, ps);
		}
		outbuf_puts(o, "</table>\n");
	}
	free(ps);
}

void metrics_html(struct master *m, struct outbuf *o)
{
	const struct config *cfg = m->m_cur.mg_cfg;
	struct metrics_area *a = metrics_area(shm_zone());

	outbuf_puts(o, html_head);
	html_master(m, o);
	if (cfg != NULL && a != NULL) {
		html_backends(cfg, o);
		html_listeners(cfg, o, a);
	}
	html_generations(m, o);
	outbuf_puts(o, "<p class=\"muted\">Also: <a href=\"/metrics\">/metrics"
		       "</a> (Prometheus), <a href=\"/status.json\">"
		       "/status.json</a>.  Rates over the last 10 s; latency "
		       "is the servers' response time (p50/p99 since start).</p>"
		       "\n</body></html>\n");
}
