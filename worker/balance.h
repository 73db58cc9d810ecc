/*
 * balance.h: a worker's run-time view of the backends and the choice of
 * a server for each request.  The machine-wide state of every server
 * (health, drain, passive failures, connections in use) lives in the
 * shared-memory zone (common/shm.h); what is per worker here is the
 * round-robin position, the consistent-hash ring and the pool of idle
 * keep-alive connections.  Built from a config generation at worker
 * start; borrows the config and the zone, which outlive it.
 */
#ifndef PORTCULLIS_BALANCE_H
#define PORTCULLIS_BALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/shm.h"
#include "config/config.h"
#include "worker/keepalive.h"

struct balance_server {
	const struct cfg_server *srv_cfg; /* borrowed */
	const struct cfg_backend *srv_be; /* borrowed */
	struct shm_server *srv_shm;       /* machine-wide state */
	int64_t srv_current;     /* smooth WRR current weight */
	struct keepalive_pool srv_idle; /* idle keep-alive connections */
	uint32_t srv_active;     /* connections of this worker in use */
	_Atomic uint32_t *srv_share; /* srv_active, published for the
					master (scoreboard); NULL: none */
	struct ssl_session_st *srv_tls_session; /* backend tls: the last
						   session, offered again */
};

struct balance_point {
	uint32_t bp_hash;
	uint32_t bp_server;      /* index in be_servers */
};

struct balance_backend {
	const struct cfg_backend *be_cfg; /* borrowed */
	struct balance_server *be_servers;
	size_t be_nservers;
	struct balance_point *be_ring;    /* balance: hash, sorted by bp_hash */
	size_t be_nring;
	uint32_t be_rr;                   /* rotating start for ties */
	bool be_is_panic;                 /* below panic_threshold: health
					     is ignored (this worker's view) */
};

/* Why balance_pick found nothing. */
enum balance_miss {
	BALANCE_TRIED,     /* every usable server was tried for this request */
	BALANCE_NONE_UP,   /* no server is usable at all: 503 at once */
};

/*
 * Build one balance_backend per backend of cfg, whose servers have their
 * shm slots assigned in zone.  shares (NULL: none) is this worker's row
 * of the master's scoreboard, indexed by zone slot, where each server's
 * srv_active is published.  Returns an array of cfg->nbackends entries
 * the caller frees with balance_free, or NULL.
 */
struct balance_backend *balance_init(const struct config *cfg,
				     struct shm_zone *zone,
				     _Atomic uint32_t *shares);

void balance_free(struct balance_backend *bes, size_t n);

/*
 * The name TLS to s is for (SNI and the certificate check): the backend's
 * tls.sni when set, else the host part of the server's address, without
 * port or brackets.  Written into buf.
 */
const char *balance_server_host(const struct balance_server *s, char *buf,
				size_t cap);

/*
 * The transport of a new connection on fd to s: plain, or TLS as its
 * backend's tls: says, offering the session last kept for s.  0, or -1
 * when OpenSSL fails (logged).
 */
struct transport;
int balance_server_transport(struct balance_server *s, int fd,
			     struct transport *t);

/* The balance_backend for a config backend (same index in cfg). */
struct balance_backend *balance_find(struct balance_backend *bes,
				     const struct config *cfg,
				     const struct cfg_backend *be);

/*
 * Pick a server by the backend's algorithm among those that are up, not
 * drained, not marked down by passive checks, under max_connections and
 * not in `tried` (a bit per server index already tried for this
 * request).  Backup servers are candidates only when no primary is.
 * hash is the request's key for balance: hash.  NULL, with *miss set,
 * when there is none.
 */
struct balance_server *balance_pick(struct balance_backend *be, uint64_t tried,
				    uint32_t hash, uint64_t now_ms,
				    enum balance_miss *miss);

/* Index of s in its backend, for the `tried` mask. */
size_t balance_index(const struct balance_backend *be,
		     const struct balance_server *s);

/*
 * Could s take a request now (up, not drained, not passively down)?
 * balance_pick also takes unhealthy servers while their backend is in
 * panic: fewer than panic_threshold percent of its primary servers
 * healthy and no backup usable (Envoy's panic mode; nginx never marks a
 * lone server down).  Entering and leaving panic is logged.
 */
bool balance_is_usable(const struct balance_server *s, uint64_t now_ms);

/* A connection to s starts (+1) or stops (-1) being used. */
void balance_use(struct balance_server *s, int delta);

/*
 * Passive checks: a failure of s itself (connect refused or timed out,
 * connection reset or closed early, no response head within
 * response_timeout) or a success.  max_fails failures in a row mark it
 * down for fail_timeout; the worker that makes the transition logs it,
 * once.  What a client or this process caused (a client that stops
 * reading, running out of descriptors) is never passed here.
 */
void balance_failed(struct balance_server *s, uint64_t now_ms,
		    const char *why);
void balance_succeeded(struct balance_server *s);

/*
 * s sent a malformed response: counted (sv_failures), but not a passive
 * failure -- one bad URL must not take a server out for every other.
 */
void balance_broken_response(struct balance_server *s);

/* 32-bit hash of a key (FNV-1a with a final mix). */
uint32_t balance_hash(const void *p, size_t n);

#endif
