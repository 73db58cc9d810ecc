/*
 * metrics.h: the counters behind /metrics, /status and `status --json`,
 * kept per worker in the shared-memory zone and summed when asked.
 *
 * Each live worker owns one block (struct metrics_block) of the zone's
 * metrics area: its counters by zone route slot and zone server slot, and
 * a few gauges.  The master claims a free block before it forks a worker
 * and records the worker's pid in it; the worker alone writes the block,
 * with relaxed atomic loads and stores (no lock prefix, no cache line
 * shared with another writer), so counting costs a request a few plain
 * adds.  When the master reaps a worker it folds the block's counters
 * into the area's retired totals and frees the block, so a counter read
 * as retired + the live blocks never goes back: not at a reload, not at a
 * worker's death (kill -9 included: the block outlives the process), not
 * at a binary upgrade (the zone is a memfd handed to the new master).
 *
 * Slots are the zone's (common/shm.h): a route slot per listener route and
 * one more per listener (its "#0" key: requests that matched no route, and
 * the listener's connection and TLS counters); a server slot per backend
 * server.  A slot that is freed and claimed again under another key starts
 * from zero (metrics_slot_reset, called by shm.c's claims).
 *
 * Memory: the area is about 480 MiB of address space
 * (METRICS_MAX_BLOCKS + 1 blocks of ~1.9 MiB), but the memfd is sparse:
 * only the pages of the slots a worker really counts in are ever touched,
 * and a block's pages are given back (hole punched) when it is freed.
 *
 * Histograms have fixed buckets (METRICS_LE_MS, Prometheus' defaults from
 * 5 ms to 10 s, plus +Inf), stored per bucket, not cumulated: the renderer
 * cumulates and takes the count as their sum, so a scrape never shows a
 * count that disagrees with its buckets.
 */
#ifndef PORTCULLIS_METRICS_H
#define PORTCULLIS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/shm.h"

#define METRICS_MAX_BLOCKS 256   /* live workers counted at once */
#define METRICS_BUCKETS 12       /* 11 finite buckets and +Inf */
#define METRICS_SPARK_LEN 300    /* seconds of the /status sparklines */
#define METRICS_CONN_STATES 8    /* enum conn_state of worker/proxy.c */

/* Upper bounds of the finite buckets, in ms (le="0.005" .. le="10"). */
extern const uint32_t metrics_le_ms[METRICS_BUCKETS - 1];

struct metrics_hist {
	uint64_t h_bucket[METRICS_BUCKETS]; /* per bucket; last: > 10 s */
	uint64_t h_sum_ms;                  /* sum of the observations */
};

/* Why a request or connection was refused (portcullis_denied_total). */
enum metrics_deny {
	METRICS_DENY_LISTENER,    /* listener allow/deny: closed at accept, or
				     403 for a trusted proxy's client */
	METRICS_DENY_ROUTE,       /* route allow/deny: 403 */
	METRICS_DENY_CONN_LIMIT,  /* max_connections(_per_client): closed */
	/* bans are the kernel's drops: portcullis_bans_total counts them */
	METRICS_DENY_N,
};

/*
 * By route slot.  A listener's "#0" slot also counts its connections and
 * TLS handshakes; a route's slot leaves those at 0.
 */
struct metrics_route {
	uint64_t mr_status[6];        /* answers: [1]..[5] 1xx..5xx, [0] other */
	uint64_t mr_bytes_in;         /* request head and body */
	uint64_t mr_bytes_out;        /* written to the client */
	struct metrics_hist mr_duration; /* first byte of the head to logged */
	uint64_t mr_denied[METRICS_DENY_N];
	uint64_t mr_limited;          /* 429: rate_limit and per-client limits */
	uint64_t mr_auth_failed;      /* 401 */
	uint64_t mr_accepted;         /* listener slot: connections accepted */
	uint64_t mr_tls_handshakes;   /* listener slot: handshakes completed */
	uint64_t mr_tls_failed;       /* ... failed or timed out */
	uint64_t mr_tls_resumed;      /* ... completed by session resumption */
};

/* By server slot. */
struct metrics_server {
	uint64_t ms_requests;         /* requests sent to it */
	uint64_t ms_failures;         /* connect failures, timeouts, broken
					 responses */
	uint64_t ms_checks_ok;        /* active health checks passed */
	uint64_t ms_checks_failed;    /* ... failed */
	struct metrics_hist ms_connect;  /* connect (and TLS) time */
	struct metrics_hist ms_response; /* request sent to response head */
};

/* A worker's gauges: not folded when it dies (they die with it). */
struct metrics_gauges {
	uint64_t mg_conns[METRICS_CONN_STATES]; /* client connections by state */
	uint32_t mg_idle[SHM_MAX_SERVERS];      /* idle pooled connections to
						   each server slot */
};

struct metrics_block {
	int32_t mb_pid;               /* 0: free; -1: claimed, forking; else
					 the worker's pid (the master writes) */
	int32_t mb_master;            /* pid of the master that claimed it */
	uint32_t mb_gen;              /* the worker's generation */
	uint32_t mb_pad[13];
	struct metrics_gauges mb_g;
	struct metrics_route mb_routes[SHM_MAX_ROUTES];
	struct metrics_server mb_servers[SHM_MAX_SERVERS];
} __attribute__((aligned(4096)));

/* A server's sparkline: requests and errors in each of the last seconds. */
struct metrics_spark {
	uint32_t sp_req[METRICS_SPARK_LEN]; /* index: wall second % LEN */
	uint32_t sp_err[METRICS_SPARK_LEN];
	uint64_t sp_prev_req, sp_prev_err;  /* totals at the last sample */
};

/* The zone's metrics area (shm_metrics()). */
struct metrics_area {
	uint32_t mx_seq;              /* odd while a master folds a block */
	uint32_t mx_pad;
	uint64_t mx_reloads_ok;       /* master-written process counters */
	uint64_t mx_reloads_failed;
	uint64_t mx_last_reload_ms;   /* wall clock of the last reload, or 0 */
	uint64_t mx_worker_restarts;  /* workers respawned after dying */
	uint64_t mx_bans;             /* clients added to an nftables set */
	uint64_t mx_ban_failures;     /* additions nftables refused */
	uint64_t mx_spark_sec;        /* wall second of the last sample */
	struct metrics_spark mx_spark[SHM_MAX_SERVERS];
	struct metrics_block mx_retired; /* what reaped workers counted */
	struct metrics_block mx_blocks[METRICS_MAX_BLOCKS];
};

/* ---- the worker side: counting --------------------------------------- */

/*
 * This process's block: set in a new worker right after the fork, NULL
 * elsewhere (the master, tools, unit tests: counting is then a no-op).
 */
extern struct metrics_block *metrics_self;

/* n more of counter p, owned by this process: a load and a store. */
static inline void metrics_add(uint64_t *p, uint64_t n)
{
	__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + n,
			 __ATOMIC_RELAXED);
}

static inline void metrics_set32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* This worker's counters of route / server slot idx; NULL: not counting. */
static inline struct metrics_route *metrics_route(int idx)
{
	return metrics_self != NULL && idx >= 0 ? &metrics_self->mb_routes[idx]
						: NULL;
}

static inline struct metrics_server *metrics_server(int idx)
{
	return metrics_self != NULL && idx >= 0 ? &metrics_self->mb_servers[idx]
						: NULL;
}

/* Count one observation of ms milliseconds into h. */
void metrics_observe(struct metrics_hist *h, uint64_t ms);

/* A client connection changed state (from < 0: a new one; to < 0: gone). */
void metrics_conn_state(int from, int to);

/* ---- the master side: blocks ----------------------------------------- */

/* The area of zone z (it follows the zone in the same memfd). */
struct metrics_area *metrics_area(struct shm_zone *z);

/*
 * Claim a free block for a worker about to be forked by master pid
 * `master`, of generation gen.  Its index, or -1 when all are in use (the
 * worker then counts nothing; logged by the caller).
 */
int metrics_claim(struct metrics_area *a, int master, unsigned gen);

/* The forked worker's pid (parent side), or give a claim back (fork failed). */
void metrics_set_pid(struct metrics_area *a, int idx, int pid);

/* Child side of the fork: count into block idx (-1: count nothing). */
void metrics_bind(struct metrics_area *a, int idx);

/*
 * The worker of block idx was reaped: add its counters into the retired
 * totals, zero the block and free it.  Slots with no key in z are skipped
 * (nothing was counted there).
 */
void metrics_retire(struct shm_zone *z, int idx);

/*
 * A slot was claimed for a new key: zero what the retired totals and the
 * sparkline hold for it (no live worker counts in a freed slot).
 */
void metrics_route_reset(struct metrics_area *a, int slot);
void metrics_server_reset(struct metrics_area *a, int slot);

/* ---- the master side: reading ---------------------------------------- */

/* The fold sequence, to detect a fold during a read (retry then). */
uint32_t metrics_seq(const struct metrics_area *a);

/* Route slot totals: retired + every live block (out is overwritten). */
void metrics_sum_route(const struct metrics_area *a, int slot,
		       struct metrics_route *out);
/* Server slot totals; *idle gets the idle pooled connections. */
void metrics_sum_server(const struct metrics_area *a, int slot,
			struct metrics_server *out, uint64_t *idle);
/* Client connections by state, every live worker. */
void metrics_sum_conns(const struct metrics_area *a,
		       uint64_t out[METRICS_CONN_STATES]);

/*
 * Once a second: is wall second sec not sampled yet?  Then the sample of
 * each server slot in use (metrics_spark_server), then
 * metrics_spark_done(): the summed counters' growth since the last one.
 */
bool metrics_spark_due(const struct metrics_area *a, uint64_t sec);
void metrics_spark_server(struct metrics_area *a, int slot, uint64_t sec);
void metrics_spark_done(struct metrics_area *a, uint64_t sec);

/* Master counters (reload.c, supervisor.c). */
void metrics_note_reload(struct metrics_area *a, bool ok, uint64_t wall_ms);
void metrics_note_restart(struct metrics_area *a);
/* Bans (server/ban.c): clients added, and additions nftables refused. */
void metrics_note_bans(struct metrics_area *a, uint64_t added,
		       uint64_t failed);

#endif
