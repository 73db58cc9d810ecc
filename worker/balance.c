/* balance.c: smooth weighted round-robin (see balance.h). */
#include "worker/balance.h"

#include <stdlib.h>

struct balance_backend *balance_init(const struct config *cfg)
{
	struct balance_backend *bes = calloc(cfg->nbackends ? cfg->nbackends : 1,
					     sizeof(*bes));

	if (bes == NULL)
		return NULL;
	for (size_t i = 0; i < cfg->nbackends; i++) {
		const struct cfg_backend *cb = &cfg->backends[i];
		struct balance_backend *be = &bes[i];

		be->be_cfg = cb;
		be->be_nservers = cb->nservers;
		be->be_servers = calloc(cb->nservers, sizeof(*be->be_servers));
		if (be->be_servers == NULL) {
			balance_free(bes, i);
			return NULL;
		}
		for (size_t j = 0; j < cb->nservers; j++) {
			be->be_servers[j].srv_cfg = &cb->servers[j];
			be->be_servers[j].srv_be = cb;
			be->be_total_weight += cb->servers[j].weight;
		}
	}
	return bes;
}

void balance_free(struct balance_backend *bes, size_t n)
{
	if (bes == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(bes[i].be_servers);
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

/*
 * nginx's smooth weighted round-robin: every pick adds each candidate's
 * weight to its current value, takes the largest, and subtracts the
 * total from the winner.  Weights 5,1,1 give a a b a c a a, not a a a a a b c.
 */
static struct balance_server *balance_swrr(struct balance_backend *be,
					   uint64_t tried, bool backup)
{
	struct balance_server *best = NULL;
	int64_t total = 0;

	for (size_t i = 0; i < be->be_nservers; i++) {
		struct balance_server *s = &be->be_servers[i];

		if (s->srv_cfg->backup != backup ||
		    (i < 64 && (tried & (UINT64_C(1) << i))))
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

/* Backup servers are used only once every primary was tried. */
struct balance_server *balance_pick(struct balance_backend *be, uint64_t tried)
{
	struct balance_server *s = balance_swrr(be, tried, false);

	return s != NULL ? s : balance_swrr(be, tried, true);
}
