/* balance.c: choosing servers (see balance.h). */
#include "worker/balance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "common/log.h"
#include "common/metrics.h"
#include "worker/tls.h"
#include "worker/transport.h"

#define BALANCE_POINTS_PER_WEIGHT 40 /* ketama points per unit of weight */
#define BALANCE_MAX_POINTS 4000      /* per server, whatever its weight */

uint32_t balance_hash(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= UINT64_C(0x100000001b3);
	}
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	return (uint32_t)h;
}

static int point_cmp(const void *a, const void *b)
{
	const struct balance_point *x = a, *y = b;

	if (x->bp_hash != y->bp_hash)
		return x->bp_hash < y->bp_hash ? -1 : 1;
	return x->bp_server < y->bp_server ? -1 : (x->bp_server > y->bp_server);
}

/*
 * Ketama: each server gets points on a 32-bit ring, named after its
 * address, so a server's points do not depend on the others: removing
 * one of N servers moves only the keys that were on its points.
 */
static int balance_ring(struct balance_backend *be)
{
	size_t total = 0, k = 0;

	for (size_t i = 0; i < be->be_nservers; i++) {
		size_t n = be->be_servers[i].srv_cfg->weight *
			   BALANCE_POINTS_PER_WEIGHT;

		total += n < BALANCE_MAX_POINTS ? n : BALANCE_MAX_POINTS;
	}
	be->be_ring = calloc(total, sizeof(*be->be_ring));
	if (be->be_ring == NULL)
		return -1;
	for (size_t i = 0; i < be->be_nservers; i++) {
		const char *addr = be->be_servers[i].srv_cfg->addr.str;
		size_t n = be->be_servers[i].srv_cfg->weight *
			   BALANCE_POINTS_PER_WEIGHT;
		char name[256];

		if (n > BALANCE_MAX_POINTS)
			n = BALANCE_MAX_POINTS;
		for (size_t p = 0; p < n; p++) {
			int len = snprintf(name, sizeof(name), "%s-%zu", addr, p);

			be->be_ring[k].bp_hash = balance_hash(name, (size_t)len);
			be->be_ring[k++].bp_server = (uint32_t)i;
		}
	}
	qsort(be->be_ring, total, sizeof(*be->be_ring), point_cmp);
	be->be_nring = total;
	return 0;
}

static int balance_backend_init(struct balance_backend *be,
				const struct cfg_backend *cb,
				struct shm_zone *zone, _Atomic uint32_t *shares)
{
	be->be_cfg = cb;
	be->be_nservers = cb->nservers;
	be->be_servers = calloc(cb->nservers, sizeof(*be->be_servers));
	if (be->be_servers == NULL)
		return -1;
	for (size_t j = 0; j < cb->nservers; j++) {
		be->be_servers[j].srv_cfg = &cb->servers[j];
		be->be_servers[j].srv_be = cb;
		be->be_servers[j].srv_shm =
			shm_server_at(zone, cb->servers[j].slot);
		if (shares != NULL && cb->servers[j].slot >= 0)
			be->be_servers[j].srv_share =
				&shares[cb->servers[j].slot];
	}
	if (cb->balance == CFG_BALANCE_HASH)
		return balance_ring(be);
	return 0;
}

struct balance_backend *balance_init(const struct config *cfg,
				     struct shm_zone *zone,
				     _Atomic uint32_t *shares)
{
	struct balance_backend *bes = calloc(cfg->nbackends ? cfg->nbackends : 1,
					     sizeof(*bes));

	if (bes == NULL)
		return NULL;
	for (size_t i = 0; i < cfg->nbackends; i++) {
		if (balance_backend_init(&bes[i], &cfg->backends[i], zone,
					 shares) == -1) {
			balance_free(bes, i + 1);
			return NULL;
		}
	}
	return bes;
}

void balance_free(struct balance_backend *bes, size_t n)
{
	if (bes == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < bes[i].be_nservers; j++)
			SSL_SESSION_free(bes[i].be_servers[j].srv_tls_session);
		free(bes[i].be_servers);
		free(bes[i].be_ring);
	}
	free(bes);
}

struct balance_backend *balance_find(struct balance_backend *bes,
				     const struct config *cfg,
				     const struct cfg_backend *be)
{
	return &bes[be - cfg->backends];
}

size_t balance_index(const struct balance_backend *be,
		     const struct balance_server *s)
{
	return (size_t)(s - be->be_servers);
}

static bool is_drained(const struct balance_server *s)
{
	return atomic_load_explicit(&s->srv_shm->sv_drain,
				    memory_order_relaxed) != 0;
}

/* Up by the active checks (if any) and not passively down. */
static bool is_healthy(const struct balance_server *s, uint64_t now_ms)
{
	const struct shm_server *sv = s->srv_shm;

	/* without active checks (any more) there is no verdict to wait for */
	return (s->srv_be->health.type == CFG_CHECK_NONE ||
		atomic_load_explicit(&sv->sv_health, memory_order_relaxed) ==
			SHM_UP) &&
	       atomic_load_explicit(&sv->sv_down_until, memory_order_relaxed) <=
		       now_ms;
}

bool balance_is_usable(const struct balance_server *s, uint64_t now_ms)
{
	return is_healthy(s, now_ms) && !is_drained(s);
}

/*
 * Enter or leave panic: below panic_threshold percent of the primary
 * servers (drained ones aside) healthy, with no backup usable, failing
 * every request protects nothing -- balance over all of them instead.
 */
static void check_panic(struct balance_backend *be, uint64_t now)
{
	uint32_t threshold = be->be_cfg->panic_threshold;
	size_t total = 0, healthy = 0;
	bool has_backup = false, is_panic;

	for (size_t i = 0; i < be->be_nservers; i++) {
		const struct balance_server *s = &be->be_servers[i];

		if (is_drained(s))
			continue;
		if (s->srv_cfg->backup) {
			has_backup |= is_healthy(s, now);
			continue;
		}
		total++;
		healthy += is_healthy(s, now);
	}
	is_panic = threshold > 0 && total > 0 && !has_backup &&
		   healthy * 100 < (size_t)threshold * total;
	if (is_panic == be->be_is_panic)
		return;
	be->be_is_panic = is_panic;
	if (is_panic)
		log_warn("backend %s: %zu of %zu servers healthy, below "
			 "panic_threshold %u%%: balancing over all of them",
			 be->be_cfg->name, healthy, total, threshold);
	else
		log_notice("backend %s: %zu of %zu servers healthy: panic over",
			   be->be_cfg->name, healthy, total);
}

static bool is_full(const struct balance_server *s)
{
	uint32_t max = s->srv_cfg->max_connections;

	return max != 0 && atomic_load_explicit(&s->srv_shm->sv_active,
						memory_order_relaxed) >= max;
}

/* The candidates of one pass: usable, not tried, right backup class. */
static bool is_candidate(const struct balance_backend *be, size_t i,
			 uint64_t tried, bool backup, uint64_t now)
{
	const struct balance_server *s = &be->be_servers[i];

	return s->srv_cfg->backup == backup &&
	       !(i < 64 && (tried & (UINT64_C(1) << i))) &&
	       (be->be_is_panic ? !is_drained(s) : balance_is_usable(s, now)) &&
	       !is_full(s);
}

/*
 * nginx's smooth weighted round-robin: every pick adds each candidate's
 * weight to its current value, takes the largest, and subtracts the
 * total from the winner.  Weights 5,1,1 give a a b a c a a.
 */
static struct balance_server *pick_swrr(struct balance_backend *be,
					uint64_t tried, bool backup,
					uint64_t now)
{
	struct balance_server *best = NULL;
	int64_t total = 0;

	for (size_t i = 0; i < be->be_nservers; i++) {
		struct balance_server *s = &be->be_servers[i];

		if (!is_candidate(be, i, tried, backup, now))
			continue;
		s->srv_current += s->srv_cfg->weight;
		total += s->srv_cfg->weight;
		if (best == NULL || s->srv_current > best->srv_current)
			best = s;
	}
	if (best != NULL)
		best->srv_current -= total;
	return best;
}

/* Is a less loaded than b, relative to their weights? */
static bool is_lighter(const struct balance_server *a,
		       const struct balance_server *b)
{
	uint64_t la = atomic_load_explicit(&a->srv_shm->sv_active,
					   memory_order_relaxed);
	uint64_t lb = atomic_load_explicit(&b->srv_shm->sv_active,
					   memory_order_relaxed);

	return la * b->srv_cfg->weight < lb * a->srv_cfg->weight;
}

/* Fewest connections in use machine-wide; ties go round the servers. */
static struct balance_server *pick_least(struct balance_backend *be,
					 uint64_t tried, bool backup,
					 uint64_t now)
{
	struct balance_server *best = NULL;
	size_t n = be->be_nservers, start = be->be_rr++ % n;

	for (size_t k = 0; k < n; k++) {
		size_t i = (start + k) % n;

		if (is_candidate(be, i, tried, backup, now) &&
		    (best == NULL || is_lighter(&be->be_servers[i], best)))
			best = &be->be_servers[i];
	}
	return best;
}

/* xorshift64, seeded per process: workers must not choose in lockstep. */
static uint64_t rng_next(void)
{
	static uint64_t state;

	if (state == 0 && (getentropy(&state, sizeof(state)) == -1 || state == 0))
		state = UINT64_C(0x853c49e6748fea9b) ^ (uint64_t)getpid();

	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

/* Power of two choices: two random candidates, the lighter one wins. */
static struct balance_server *pick_two(struct balance_backend *be,
				       uint64_t tried, bool backup,
				       uint64_t now)
{
	size_t idx[64], n = 0;
	struct balance_server *a, *b;

	for (size_t i = 0; i < be->be_nservers && n < 64; i++)
		if (is_candidate(be, i, tried, backup, now))
			idx[n++] = i;
	if (n == 0)
		return NULL;
	a = &be->be_servers[idx[rng_next() % n]];
	if (n == 1)
		return a;
	do
		b = &be->be_servers[idx[rng_next() % n]];
	while (b == a);
	return is_lighter(b, a) ? b : a;
}

/* Consistent hash: the first usable server clockwise from the key. */
static struct balance_server *pick_hash(struct balance_backend *be,
					uint64_t tried, bool backup,
					uint64_t now, uint32_t hash)
{
	size_t lo = 0, hi = be->be_nring;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (be->be_ring[mid].bp_hash < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t k = 0; k < be->be_nring; k++) {
		size_t i = be->be_ring[(lo + k) % be->be_nring].bp_server;

		if (is_candidate(be, i, tried, backup, now))
			return &be->be_servers[i];
	}
	return NULL;
}

static struct balance_server *pick_class(struct balance_backend *be,
					 uint64_t tried, uint32_t hash,
					 bool backup, uint64_t now)
{
	switch (be->be_cfg->balance) {
	case CFG_BALANCE_LEAST_CONN:
		return pick_least(be, tried, backup, now);
	case CFG_BALANCE_RANDOM_TWO:
		return pick_two(be, tried, backup, now);
	case CFG_BALANCE_HASH:
		return pick_hash(be, tried, backup, now, hash);
	default:
		return pick_swrr(be, tried, backup, now);
	}
}

struct balance_server *balance_pick(struct balance_backend *be, uint64_t tried,
				    uint32_t hash, uint64_t now_ms,
				    enum balance_miss *miss)
{
	struct balance_server *s;

	check_panic(be, now_ms);
	s = pick_class(be, tried, hash, false, now_ms);
	if (s == NULL)
		s = pick_class(be, tried, hash, true, now_ms);
	if (s == NULL)
		*miss = tried ? BALANCE_TRIED : BALANCE_NONE_UP;
	return s;
}

void balance_use(struct balance_server *s, int delta)
{
	/*
	 * The machine-wide count goes up before this worker's published share
	 * and down after it, so that a worker killed in between leaves at
	 * worst one connection counted, never a share the master would take
	 * off twice.
	 */
	if (delta > 0)
		atomic_fetch_add_explicit(&s->srv_shm->sv_active,
					  (uint32_t)delta,
					  memory_order_relaxed);
	s->srv_active += (uint32_t)delta;
	if (s->srv_share != NULL)
		atomic_store_explicit(s->srv_share, s->srv_active,
				      memory_order_relaxed);
	if (delta < 0)
		atomic_fetch_sub_explicit(&s->srv_shm->sv_active,
					  (uint32_t)-delta,
					  memory_order_relaxed);
}

void balance_failed(struct balance_server *s, uint64_t now_ms, const char *why)
{
	struct shm_server *sv = s->srv_shm;
	const struct cfg_backend *be = s->srv_be;
	uint32_t fails;
	uint64_t until;
	char reason[SHM_REASON_LEN];

	if (metrics_server(s->srv_cfg->slot) != NULL)
		metrics_add(&metrics_server(s->srv_cfg->slot)->ms_failures, 1);
	fails = atomic_fetch_add_explicit(&sv->sv_fails, 1,
					  memory_order_relaxed) + 1;
	if (be->max_fails == 0 || fails < be->max_fails)
		return;
	until = atomic_load_explicit(&sv->sv_down_until, memory_order_relaxed);
	if (until > now_ms)
		return; /* already down */
	if (!atomic_compare_exchange_strong(&sv->sv_down_until, &until,
					    now_ms + be->fail_timeout_ms))
		return; /* another worker marked it */
	atomic_store_explicit(&sv->sv_fails, 0, memory_order_relaxed);
	snprintf(reason, sizeof(reason), "%u failures in a row, last: %s",
		 fails, why);
	log_warn("backend %s: server %s is down for %ums (passive): %s",
		 be->name, s->srv_cfg->addr.str, be->fail_timeout_ms, reason);
	shm_set_health(sv, atomic_load(&sv->sv_health), reason);
}

void balance_broken_response(struct balance_server *s)
{
	if (metrics_server(s->srv_cfg->slot) != NULL)
		metrics_add(&metrics_server(s->srv_cfg->slot)->ms_failures, 1);
}

void balance_succeeded(struct balance_server *s)
{
	struct shm_server *sv = s->srv_shm;

	if (atomic_load_explicit(&sv->sv_fails, memory_order_relaxed) != 0)
		atomic_store_explicit(&sv->sv_fails, 0, memory_order_relaxed);
}

const char *balance_server_host(const struct balance_server *s, char *buf,
				size_t cap)
{
	const struct cfg_upstream_tls *tls = s->srv_be->tls;
	const char *a = s->srv_cfg->addr.str, *end;
	size_t n;

	if (tls != NULL && tls->sni != NULL) {
		(void)snprintf(buf, cap, "%s", tls->sni);
		return buf;
	}
	if (a[0] == '[') {
		a++;
		end = strchr(a, ']');
	} else {
		end = strrchr(a, ':');
	}
	n = end ? (size_t)(end - a) : strlen(a);
	if (n >= cap)
		n = cap - 1;
	memcpy(buf, a, n);
	buf[n] = '\0';
	return buf;
}

int balance_server_transport(struct balance_server *s, int fd,
			     struct transport *t)
{
	const struct cfg_upstream_tls *tls = s->srv_be->tls;
	char host[256];
	SSL *ssl;

	if (tls == NULL) {
		transport_init_plain(t, fd);
		return 0;
	}
	ssl = tls_client_ssl(tls->ctx, fd,
			     balance_server_host(s, host, sizeof(host)),
			     s->srv_tls_session);
	if (ssl == NULL)
		return -1;
	transport_init_tls(t, fd, ssl);
	return 0;
}
