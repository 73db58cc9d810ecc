/* metrics_page.c: the admin endpoint's paths, and what the JSON and HTML
 * pages share: a server's picture, quantiles, escaping (see
 * metrics_page.h). */
#include "server/metrics_page.h"

#include <stdio.h>
#include <string.h>

#include "common/shm.h"
#include "common/timer.h"
#include "server/master_types.h"

unsigned metrics_page_render(void *data, const char *path,
			     struct outbuf *body, const char **ctype)
{
	struct master *m = data;

	if (strcmp(path, "/metrics") == 0) {
		*ctype = "text/plain; version=0.0.4; charset=utf-8";
		metrics_prom(m, body);
	} else if (strcmp(path, "/status.json") == 0) {
		*ctype = "application/json";
		metrics_json(m, body);
	} else if (strcmp(path, "/status") == 0 || strcmp(path, "/") == 0) {
		*ctype = "text/html; charset=utf-8";
		metrics_html(m, body);
	} else {
		outbuf_puts(body, "404 Not Found: try /metrics, /status or "
				  "/status.json\n");
		return 404;
	}
	return 200;
}

size_t metrics_page_gens(const struct master *m, struct page_gen *out,
			 size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < MASTER_MAX_WORKERS + 2; i++) {
		const struct master_worker *mw =
			i >= 2 ? &m->m_workers[i - 2] : NULL;
		unsigned g = i == 0   ? m->m_next.mg_num
			     : i == 1 ? m->m_cur.mg_num
			     : mw->mw_pid ? mw->mw_gen
					  : 0;
		size_t j;

		if (g == 0)
			continue;
		for (j = 0; j < n && out[j].pg_num != g; j++)
			;
		if (j < n || n == max)
			continue;
		out[n].pg_num = g;
		out[n++].pg_role = g == m->m_cur.mg_num	   ? "serving"
				   : g == m->m_next.mg_num ? "starting"
				   : g > m->m_cur.mg_num   ? "failed"
							   : "draining";
	}
	/* newest first: a few entries, insertion sort */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && out[j].pg_num > out[j - 1].pg_num;
		     j--) {
			struct page_gen t = out[j];

			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return n;
}

uint64_t metrics_page_requests(const struct metrics_route *r)
{
	uint64_t n = 0;

	for (int c = 0; c < 6; c++)
		n += r->mr_status[c];
	return n;
}

double metrics_page_quantile(const struct metrics_hist *h, double q)
{
	uint64_t count = 0, seen = 0;
	double want;

	for (int i = 0; i < METRICS_BUCKETS; i++)
		count += h->h_bucket[i];
	if (count == 0)
		return -1;
	want = q * (double)count;
	for (int i = 0; i < METRICS_BUCKETS; i++) {
		double lo = i ? metrics_le_ms[i - 1] : 0;
		double hi = i < METRICS_BUCKETS - 1 ? metrics_le_ms[i] : lo;

		if (h->h_bucket[i] == 0 || (double)(seen + h->h_bucket[i]) < want) {
			seen += h->h_bucket[i];
			continue;
		}
		/* linear within the bucket, as Prometheus' histogram_quantile */
		return lo + (hi - lo) * (want - (double)seen) /
				    (double)h->h_bucket[i];
	}
	return metrics_le_ms[METRICS_BUCKETS - 2];
}

#define PAGE_RATE_SECONDS 10 /* the rates the pages show: last 10 s */

/* The sparkline ring in time order, oldest first, and the recent rates. */
static void page_spark(const struct metrics_area *a, int slot,
		       struct page_server *ps)
{
	const struct metrics_spark *sp = &a->mx_spark[slot];
	uint64_t last = a->mx_spark_sec;
	uint64_t req = 0, err = 0;

	for (int i = 0; i < METRICS_SPARK_LEN; i++) {
		/* i = 0 is the second LEN - 1 seconds before the last */
		uint64_t t = last + 1 + (uint64_t)i;

		ps->ps_req[i] = last ? sp->sp_req[t % METRICS_SPARK_LEN] : 0;
		ps->ps_err[i] = last ? sp->sp_err[t % METRICS_SPARK_LEN] : 0;
		if (i >= METRICS_SPARK_LEN - PAGE_RATE_SECONDS) {
			req += ps->ps_req[i];
			err += ps->ps_err[i];
		}
	}
	ps->ps_rps = (double)req / PAGE_RATE_SECONDS;
	ps->ps_eps = (double)err / PAGE_RATE_SECONDS;
}

void metrics_page_server(const struct cfg_backend *be,
			 const struct cfg_server *s, struct page_server *ps)
{
	struct shm_zone *z = shm_zone();
	struct metrics_area *a = metrics_area(z);
	struct shm_server *sv = shm_server_at(z, s->slot);
	uint64_t until = atomic_load(&sv->sv_down_until);

	memset(ps, 0, sizeof(*ps));
	ps->ps_be = be;
	ps->ps_srv = s;
	ps->ps_is_checked = be->health.type != CFG_CHECK_NONE;
	ps->ps_is_up = !ps->ps_is_checked ||
		       atomic_load(&sv->sv_health) == SHM_UP;
	ps->ps_health = !ps->ps_is_up ? "down"
			: until > timer_now_ms() ? "down (passive)"
						 : "up";
	if (until > timer_now_ms())
		ps->ps_is_up = false;
	ps->ps_is_draining = atomic_load(&sv->sv_drain) != 0;
	shm_reason(sv, ps->ps_reason, sizeof(ps->ps_reason));
	ps->ps_changed_ms = atomic_load(&sv->sv_changed);
	ps->ps_active = atomic_load(&sv->sv_active);
	ps->ps_p50_ms = ps->ps_p99_ms = -1;
	if (a == NULL)
		return;
	metrics_sum_server(a, s->slot, &ps->ps_m, &ps->ps_idle);
	ps->ps_p50_ms = metrics_page_quantile(&ps->ps_m.ms_response, 0.5);
	ps->ps_p99_ms = metrics_page_quantile(&ps->ps_m.ms_response, 0.99);
	page_spark(a, s->slot, ps);
}

void json_string(struct outbuf *o, const char *s)
{
	outbuf_putn(o, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			outbuf_printf(o, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			outbuf_printf(o, "\\u%04x", *p);
		else
			outbuf_putn(o, (const char *)p, 1);
	}
	outbuf_putn(o, "\"", 1);
}

void html_text(struct outbuf *o, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': outbuf_puts(o, "&amp;"); break;
		case '<': outbuf_puts(o, "&lt;"); break;
		case '>': outbuf_puts(o, "&gt;"); break;
		case '"': outbuf_puts(o, "&quot;"); break;
		case '\'': outbuf_puts(o, "&#39;"); break;
		default: outbuf_putn(o, s, 1); break;
		}
	}
}
