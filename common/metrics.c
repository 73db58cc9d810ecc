/* metrics.c: per-worker counters in the zone, folded and summed by the
 * master (see metrics.h). */
#include "common/metrics.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>

const uint32_t metrics_le_ms[METRICS_BUCKETS - 1] = {
	5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
};

struct metrics_block *metrics_self;

/* A value another process may be writing: one relaxed load. */
static inline uint64_t metrics_ld(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void metrics_observe(struct metrics_hist *h, uint64_t ms)
{
	size_t i = 0;

	while (i < METRICS_BUCKETS - 1 && ms > metrics_le_ms[i])
		i++;
	metrics_add(&h->h_bucket[i], 1);
	metrics_add(&h->h_sum_ms, ms);
}

void metrics_conn_state(int from, int to)
{
	if (metrics_self == NULL)
		return;
	if (from >= 0 && from < METRICS_CONN_STATES)
		metrics_add(&metrics_self->mb_g.mg_conns[from], (uint64_t)-1);
	if (to >= 0 && to < METRICS_CONN_STATES)
		metrics_add(&metrics_self->mb_g.mg_conns[to], 1);
}

struct metrics_area *metrics_area(struct shm_zone *z)
{
	return shm_metrics(z);
}

/* ---- blocks ------------------------------------------------------------ */

int metrics_claim(struct metrics_area *a, int master, unsigned gen)
{
	for (int i = 0; i < METRICS_MAX_BLOCKS; i++) {
		struct metrics_block *b = &a->mx_blocks[i];
		int32_t free_pid = 0;

		/* CAS: the two masters of a binary upgrade claim side by side */
		if (!__atomic_compare_exchange_n(&b->mb_pid, &free_pid, -1,
						 false, __ATOMIC_ACQ_REL,
						 __ATOMIC_RELAXED))
			continue;
		__atomic_store_n(&b->mb_master, master, __ATOMIC_RELAXED);
		b->mb_gen = gen;
		return i;
	}
	return -1;
}

void metrics_set_pid(struct metrics_area *a, int idx, int pid)
{
	if (idx < 0)
		return;
	__atomic_store_n(&a->mx_blocks[idx].mb_pid, pid > 0 ? pid : 0,
			 __ATOMIC_RELEASE);
}

void metrics_bind(struct metrics_area *a, int idx)
{
	metrics_self = idx >= 0 ? &a->mx_blocks[idx] : NULL;
}

static void metrics_fold_words(uint64_t *dst, const uint64_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v = metrics_ld(&src[i]);

		/* atomic: the other master of an upgrade may fold too */
		if (v != 0)
			__atomic_fetch_add(&dst[i], v, __ATOMIC_RELAXED);
	}
}

/*
 * Zero block b's counters and give their pages back: the memfd's hole is
 * punched, so the next worker starts from untouched (free) pages.  The
 * first page, with the header that other processes read, is zeroed by
 * hand; the caller frees mb_pid last.
 */
static void metrics_clear(struct shm_zone *z, struct metrics_block *b)
{
	int fd = shm_fd();
	char *start = (char *)&b->mb_g, *end = (char *)(b + 1);
	char *page = (char *)b + 4096;

	if (fd == -1 || page >= end ||
	    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(page - (char *)z), (off_t)(end - page)) == -1) {
		memset(start, 0, (size_t)(end - start));
		return;
	}
	memset(start, 0, (size_t)(page - start));
}

void metrics_retire(struct shm_zone *z, int idx)
{
	struct metrics_area *a = metrics_area(z);
	struct metrics_block *b, *r = &a->mx_retired;

	if (idx < 0 || idx >= METRICS_MAX_BLOCKS)
		return;
	b = &a->mx_blocks[idx];
	__atomic_fetch_add(&a->mx_seq, 1, __ATOMIC_ACQ_REL);
	for (int i = 0; i < SHM_MAX_ROUTES; i++)
		if (shm_route_at(z, i)->rt_key[0] != '\0')
			metrics_fold_words(
				(uint64_t *)&r->mb_routes[i],
				(const uint64_t *)&b->mb_routes[i],
				sizeof(b->mb_routes[i]) / sizeof(uint64_t));
	for (int i = 0; i < SHM_MAX_SERVERS; i++)
		if (shm_server_at(z, i)->sv_key[0] != '\0')
			metrics_fold_words(
				(uint64_t *)&r->mb_servers[i],
				(const uint64_t *)&b->mb_servers[i],
				sizeof(b->mb_servers[i]) / sizeof(uint64_t));
	metrics_clear(z, b);
	b->mb_gen = 0;
	__atomic_store_n(&b->mb_master, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&b->mb_pid, 0, __ATOMIC_RELEASE);
	__atomic_fetch_add(&a->mx_seq, 1, __ATOMIC_ACQ_REL);
}

void metrics_route_reset(struct metrics_area *a, int slot)
{
	memset(&a->mx_retired.mb_routes[slot], 0,
	       sizeof(a->mx_retired.mb_routes[slot]));
}

void metrics_server_reset(struct metrics_area *a, int slot)
{
	memset(&a->mx_retired.mb_servers[slot], 0,
	       sizeof(a->mx_retired.mb_servers[slot]));
	memset(&a->mx_spark[slot], 0, sizeof(a->mx_spark[slot]));
}

/* ---- reading ----------------------------------------------------------- */

uint32_t metrics_seq(const struct metrics_area *a)
{
	return __atomic_load_n(&a->mx_seq, __ATOMIC_ACQUIRE);
}

static bool metrics_is_live(const struct metrics_block *b)
{
	return __atomic_load_n(&b->mb_pid, __ATOMIC_ACQUIRE) != 0;
}

void metrics_sum_route(const struct metrics_area *a, int slot,
		       struct metrics_route *out)
{
	size_t n = sizeof(*out) / sizeof(uint64_t);
	uint64_t *dst = (uint64_t *)out;

	memset(out, 0, sizeof(*out));
	if (slot < 0)
		return;
	metrics_fold_words(dst, (const uint64_t *)&a->mx_retired.mb_routes[slot],
			   n);
	for (int i = 0; i < METRICS_MAX_BLOCKS; i++)
		if (metrics_is_live(&a->mx_blocks[i]))
			metrics_fold_words(
				dst,
				(const uint64_t *)&a->mx_blocks[i].mb_routes[slot],
				n);
}

void metrics_sum_server(const struct metrics_area *a, int slot,
			struct metrics_server *out, uint64_t *idle)
{
	size_t n = sizeof(*out) / sizeof(uint64_t);
	uint64_t *dst = (uint64_t *)out;

	memset(out, 0, sizeof(*out));
	*idle = 0;
	if (slot < 0)
		return;
	metrics_fold_words(dst,
			   (const uint64_t *)&a->mx_retired.mb_servers[slot], n);
	for (int i = 0; i < METRICS_MAX_BLOCKS; i++) {
		const struct metrics_block *b = &a->mx_blocks[i];

		if (!metrics_is_live(b))
			continue;
		metrics_fold_words(dst, (const uint64_t *)&b->mb_servers[slot],
				   n);
		*idle += __atomic_load_n(&b->mb_g.mg_idle[slot],
					 __ATOMIC_RELAXED);
	}
}

void metrics_sum_conns(const struct metrics_area *a,
		       uint64_t out[METRICS_CONN_STATES])
{
	memset(out, 0, sizeof(uint64_t) * METRICS_CONN_STATES);
	for (int i = 0; i < METRICS_MAX_BLOCKS; i++)
		if (metrics_is_live(&a->mx_blocks[i]))
			for (int s = 0; s < METRICS_CONN_STATES; s++)
				out[s] += metrics_ld(
					&a->mx_blocks[i].mb_g.mg_conns[s]);
	/* a worker may die between a decrement and its increment: never < 0 */
	for (int s = 0; s < METRICS_CONN_STATES; s++)
		if ((int64_t)out[s] < 0)
			out[s] = 0;
}

bool metrics_spark_due(const struct metrics_area *a, uint64_t sec)
{
	/* not when the other master of an upgrade sampled this second */
	return sec > a->mx_spark_sec;
}

void metrics_spark_server(struct metrics_area *a, int slot, uint64_t sec)
{
	struct metrics_spark *sp = &a->mx_spark[slot];
	uint64_t last = a->mx_spark_sec, idle;
	struct metrics_server s;

	metrics_sum_server(a, slot, &s, &idle);
	/* the seconds in between (the master was busy) had nothing */
	for (uint64_t t = last + 1;
	     last != 0 && t < sec && t + METRICS_SPARK_LEN > sec; t++)
		sp->sp_req[t % METRICS_SPARK_LEN] =
			sp->sp_err[t % METRICS_SPARK_LEN] = 0;
	/* a new slot starts from 0: the first delta is since its claim */
	sp->sp_req[sec % METRICS_SPARK_LEN] =
		(uint32_t)(s.ms_requests - sp->sp_prev_req);
	sp->sp_err[sec % METRICS_SPARK_LEN] =
		(uint32_t)(s.ms_failures - sp->sp_prev_err);
	sp->sp_prev_req = s.ms_requests;
	sp->sp_prev_err = s.ms_failures;
}

void metrics_spark_done(struct metrics_area *a, uint64_t sec)
{
	a->mx_spark_sec = sec;
}

void metrics_note_reload(struct metrics_area *a, bool ok, uint64_t wall_ms)
{
	if (a == NULL)
		return;
	__atomic_fetch_add(ok ? &a->mx_reloads_ok : &a->mx_reloads_failed, 1,
			   __ATOMIC_RELAXED);
	__atomic_store_n(&a->mx_last_reload_ms, wall_ms, __ATOMIC_RELAXED);
}

void metrics_note_restart(struct metrics_area *a)
{
	if (a != NULL)
		__atomic_fetch_add(&a->mx_worker_restarts, 1, __ATOMIC_RELAXED);
}

void metrics_note_bans(struct metrics_area *a, uint64_t added,
		       uint64_t failed)
{
	if (a == NULL)
		return;
	__atomic_fetch_add(&a->mx_bans, added, __ATOMIC_RELAXED);
	__atomic_fetch_add(&a->mx_ban_failures, failed, __ATOMIC_RELAXED);
}
