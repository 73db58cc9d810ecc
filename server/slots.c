/* slots.c: naming and assigning the zone's slots (see slots.h). */
#include "server/slots.h"

#include <stdio.h>

#include "common/ratelimit.h"

static int slots_server(struct shm_zone *z, struct cfg_server *s,
			const char *backend, unsigned gen, unsigned oldest)
{
	char key[SHM_KEY_LEN];

	snprintf(key, sizeof(key), "%s\n%s", backend, s->addr.str);
	s->slot = shm_server_claim(z, key, gen, oldest);
	return s->slot < 0 ? -1 : 0;
}

static int slots_route(struct shm_zone *z, struct cfg_route *r,
		       const char *listener, size_t idx, unsigned gen,
		       unsigned oldest)
{
	char key[SHM_KEY_LEN];

	snprintf(key, sizeof(key), "%s#%zu", listener, idx + 1);
	r->slot = shm_route_claim(z, key, gen, oldest);
	return r->slot < 0 ? -1 : 0;
}

/*
 * A listener's own route slot, "NAME#0" (routes are numbered from 1): the
 * counters of requests no route took and of its connections.
 */
static int slots_listener(struct shm_zone *z, struct cfg_listener *l,
			  unsigned gen, unsigned oldest)
{
	char key[SHM_KEY_LEN];

	snprintf(key, sizeof(key), "%s#0", l->name);
	l->route_slot = shm_route_claim(z, key, gen, oldest);
	return l->route_slot < 0 ? -1 : 0;
}

int slots_assign(struct shm_zone *z, struct config *cfg, unsigned gen,
		 unsigned oldest_live, char *err, size_t errlen)
{
	for (size_t i = 0; i < cfg->nbackends; i++) {
		struct cfg_backend *b = &cfg->backends[i];

		for (size_t j = 0; j < b->nservers; j++)
			if (slots_server(z, &b->servers[j], b->name, gen,
					 oldest_live) == -1)
				goto full;
	}
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		struct cfg_listener *l = &cfg->listeners[i];

		/* connection counts of max_connections, kept across reloads */
		l->slot = -1;
		if (rate_table() != NULL) {
			l->slot = rate_listener_claim(rate_table(), l->name, gen,
						      oldest_live);
			if (l->slot < 0) {
				snprintf(err, errlen,
					 "%s: more than %d listeners in the live "
					 "generations",
					 cfg->path, RATE_MAX_LISTENERS);
				return -1;
			}
		}
		/* "NAME#0": its requests without a route, its connections */
		if (slots_listener(z, l, gen, oldest_live) == -1)
			goto full;
		for (size_t j = 0; j < l->nroutes; j++)
			if (slots_route(z, &l->routes[j], l->name, j, gen,
					oldest_live) == -1)
				goto full;
	}
	return 0;
full:
	snprintf(err, errlen,
		 "%s: more than %d servers or routes in the live generations",
		 cfg->path, SHM_MAX_SERVERS);
	return -1;
}
