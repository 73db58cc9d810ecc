/*
 * config_limits.c: rate_limit: of listeners and routes, and the ids that
 * tie each one to its state in the shared table (common/ratelimit.h).
 *
 * max_connections, max_connections_per_client and rate_limit_table are
 * plain integers in the key tables; what needs code is here.
 */
#include <stdio.h>
#include <string.h>

#include "common/ratelimit.h"
#include "config/config_int.h"

#define LIMITS_MAX_RPS	 1000000
#define LIMITS_MAX_BURST 1000000

/* rate_limit: as written, 32-bit fields for the schema walk. */
struct limits_rate {
	uint32_t rps, burst, prefix_v4, prefix_v6;
};

static const struct schema_key limits_rate_keys[] = {
	SK_UINT("requests_per_second", struct limits_rate, rps, 0,
		LIMITS_MAX_RPS),
	SK_UINT("burst", struct limits_rate, burst, 0, LIMITS_MAX_BURST),
	SK_UINT("key_prefix_v4", struct limits_rate, prefix_v4, 1, 32),
	SK_UINT("key_prefix_v6", struct limits_rate, prefix_v6, 1, 128),
	SK_END,
};
SCHEMA_TABLE_CHECK(limits_rate_keys);

void config_rate_limit(struct schema_ctx *c, const char *key, yaml_node_t *v,
		       void *field)
{
	struct cfg_rate_limit *rl = field;
	struct limits_rate r = {.prefix_v4 = 32, .prefix_v6 = 64};
	yaml_node_t *burst_key;

	/* rate_limit: off (or {}, or requests_per_second: 0): no limit */
	if (schema_is_false(v))
		return;
	if (!schema_walk(c, v, limits_rate_keys, key, &r))
		return;
	if (r.rps == 0 && r.burst != 0 && schema_get(c, v, "burst", &burst_key))
		schema_error(c, burst_key,
			     "'burst' needs requests_per_second above 0 (0 "
			     "turns the limit off)");
	rl->rps = r.rps;
	rl->burst = r.burst;
	rl->prefix_v4 = (uint8_t)r.prefix_v4;
	rl->prefix_v6 = (uint8_t)r.prefix_v6;
}

/* FNV-1a: a hash that is the same in every build and every process. */
static uint32_t limits_fnv(uint32_t h, const char *s)
{
	for (; *s != '\0'; s++) {
		h ^= (uint8_t)*s;
		h *= 16777619u;
	}
	return h;
}

uint32_t config_rate_limit_id(const char *listener, size_t route)
{
	char num[24];
	uint32_t h = limits_fnv(2166136261u, listener);

	if (route != 0) {
		snprintf(num, sizeof(num), "#%zu", route);
		h = limits_fnv(h, num);
	}
	return h != 0 ? h : 1;
}

/* A limit never given keeps the default prefixes all the same. */
static void limits_defaults(struct cfg_rate_limit *rl)
{
	if (rl->prefix_v4 == 0)
		rl->prefix_v4 = 32;
	if (rl->prefix_v6 == 0)
		rl->prefix_v6 = 64;
}

void config_limits_finish(struct schema_ctx *c, struct config *cfg,
			  yaml_node_t *root)
{
	yaml_node_t *key;

	for (size_t i = 0; i < cfg->nlisteners; i++) {
		struct cfg_listener *l = &cfg->listeners[i];

		if (l->name == NULL)
			continue;
		limits_defaults(&l->rate_limit);
		l->rate_limit.id = config_rate_limit_id(l->name, 0);
		for (size_t j = 0; j < l->nroutes; j++) {
			limits_defaults(&l->routes[j].rate_limit);
			l->routes[j].rate_limit.id =
				config_rate_limit_id(l->name, j + 1);
		}
	}
	if (cfg->nlisteners > RATE_MAX_LISTENERS &&
	    schema_get(c, root, "listeners", &key))
		schema_error(c, key,
			     "%zu listeners: the shared connection counters "
			     "hold %d",
			     cfg->nlisteners, RATE_MAX_LISTENERS);
}
