/*
 * metrics_page.h: what the admin endpoint (admin.h) and `portcullis
 * status --json` answer, rendered in the master from its own state and
 * the zone's summed counters (common/metrics.h):
 *
 *   /metrics       Prometheus text format 0.0.4 (metrics_prom.c)
 *   /status.json   the JSON document, "version": 1 (metrics_json.c)
 *   /status        one HTML page with inline-SVG sparklines, no external
 *                  asset, readable without JavaScript (metrics_html.c)
 *
 * The metric names and the JSON shape are documented in portcullis(8),
 * ADMIN ENDPOINT.  Every renderer borrows the master and writes into a
 * bounded outbuf; none allocates more than that buffer and small arrays.
 */
#ifndef PORTCULLIS_METRICS_PAGE_H
#define PORTCULLIS_METRICS_PAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/metrics.h"
#include "config/config.h"
#include "server/outbuf.h"

struct master;

/* admin_render_fn (admin.h): data is the struct master. */
unsigned metrics_page_render(void *data, const char *path,
			     struct outbuf *body, const char **ctype);

void metrics_prom(struct master *m, struct outbuf *o);
void metrics_json(struct master *m, struct outbuf *o);
void metrics_html(struct master *m, struct outbuf *o);

/* One server as the pages show it (metrics_page_server fills it). */
struct page_server {
	const struct cfg_backend *ps_be;
	const struct cfg_server *ps_srv;
	const char *ps_health;          /* "up", "down", "down (passive)" */
	bool ps_is_up;
	bool ps_is_checked;             /* the backend has active checks */
	bool ps_is_draining;
	char ps_reason[SHM_REASON_LEN]; /* of the last transition */
	uint64_t ps_changed_ms;         /* wall clock of that transition */
	uint32_t ps_active;             /* connections in use, all workers */
	uint64_t ps_idle;               /* idle pooled connections */
	struct metrics_server ps_m;     /* summed counters */
	double ps_rps, ps_eps;          /* requests, errors /s: last 10 s */
	double ps_p50_ms, ps_p99_ms;    /* response time; < 0: no data */
	uint32_t ps_req[METRICS_SPARK_LEN]; /* oldest first, one a second */
	uint32_t ps_err[METRICS_SPARK_LEN];
};

/* Fill ps for server s of backend be of the serving config. */
void metrics_page_server(const struct cfg_backend *be,
			 const struct cfg_server *s, struct page_server *ps);

/* A generation that has workers or serves, and its role. */
struct page_gen {
	unsigned pg_num;
	const char *pg_role; /* serving, starting, draining, failed */
};

/* Every generation, newest first; how many (at most max). */
size_t metrics_page_gens(const struct master *m, struct page_gen *out,
			 size_t max);


/* Route totals: every status class summed (the page's request count). */
uint64_t metrics_page_requests(const struct metrics_route *r);

/* The q-quantile (0..1) of h in ms, interpolated in its bucket; -1: empty. */
double metrics_page_quantile(const struct metrics_hist *h, double q);

/* ---- Prometheus text format helpers (exposed for the unit tests) ---- */

/*
 * Append ,name="value" (no comma when *first) with value escaped as the
 * text format wants: backslash, double quote and line feed.
 */
void prom_label(struct outbuf *o, bool *first, const char *name,
		const char *value);

/* "# HELP name help\n# TYPE name type\n" */
void prom_family(struct outbuf *o, const char *name, const char *type,
		 const char *help);

/* name{labels} value: labels is "" or a prom_label() list. */
void prom_sample(struct outbuf *o, const char *name, const char *labels,
		 uint64_t value);

/*
 * A histogram's samples: name_bucket{labels,le=...} cumulative, +Inf
 * equal to name_count, name_sum in seconds.
 */
void prom_hist(struct outbuf *o, const char *name, const char *labels,
	       const struct metrics_hist *h);

/* ---- JSON / HTML string helpers -------------------------------------- */

/* s as a JSON string, quotes included (RFC 8259 §7). */
void json_string(struct outbuf *o, const char *s);

/* s with & < > " ' escaped for HTML text and attribute values. */
void html_text(struct outbuf *o, const char *s);

#endif
