/*
 * balance.h: a worker's run-time view of the backends: servers with
 * their smooth weighted round-robin state and their pool of idle
 * keep-alive connections.  Built from a config generation at worker
 * start; borrows the config, which outlives it.
 */
#ifndef PORTCULLIS_BALANCE_H
#define PORTCULLIS_BALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

struct upstream; /* worker/proxy.c */

struct balance_server {
	const struct cfg_server *srv_cfg; /* borrowed */
	const struct cfg_backend *srv_be; /* borrowed */
	int64_t srv_current;     /* smooth WRR current weight */
	struct upstream *srv_idle; /* idle keep-alive connections, LIFO */
	uint32_t srv_nidle;
	uint32_t srv_active;     /* connections of this worker in use */
};

struct balance_backend {
	const struct cfg_backend *be_cfg; /* borrowed */
	struct balance_server *be_servers;
	size_t be_nservers;
	int64_t be_total_weight;
};

/*
 * Build one balance_backend per backend of cfg.  Returns an array of
 * cfg->nbackends entries the caller frees with balance_free, or NULL.
 */
struct balance_backend *balance_init(const struct config *cfg);

void balance_free(struct balance_backend *bes, size_t n);

/* The balance_backend for a config backend (same index in cfg). */
struct balance_backend *balance_find(struct balance_backend *bes,
				     const struct config *cfg,
				     const struct cfg_backend *be);

/*
 * Pick a server with smooth weighted round-robin, skipping those whose
 * index bit is set in `tried` (servers already tried for this request;
 * backends have at most 64 servers tried this way).  NULL if none left.
 */
struct balance_server *balance_pick(struct balance_backend *be,
				    uint64_t tried);

/* Index of s in its backend, for the `tried` mask. */
size_t balance_index(const struct balance_backend *be,
		     const struct balance_server *s);

#endif
