/*
 * config_backend.c: the backends: mapping (name -> backend) and the
 * servers of each backend.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"

static void backend_balance(struct schema_ctx *c, const char *key,
			    yaml_node_t *v, void *field)
{
	static const char *const later[] = {"least_conn", "random_two", "hash"};
	const char *s = schema_scalar(v);
	size_t i;

	if (s && !strcmp(s, "round_robin")) {
		*(enum cfg_balance *)field = CFG_BALANCE_ROUND_ROBIN;
		return;
	}
	for (i = 0; s && i < sizeof(later) / sizeof(later[0]); i++) {
		if (!strcmp(s, later[i])) {
			schema_error(c, v,
				     "balance '%s' is not supported by this "
				     "version",
				     s);
			return;
		}
	}
	schema_error(c, v,
		     "'%s' must be one of round_robin, least_conn, random_two, "
		     "hash",
		     key);
}

static void backend_server_addr(struct schema_ctx *c, const char *key,
				yaml_node_t *v, void *field)
{
	config_addr_load(c, key, v, field);
}

static const struct schema_key backend_server_keys[] = {
	SK_KEY("address", SCHEMA_CUSTOM, offsetof(struct cfg_server, addr), 0,
	       0, true, backend_server_addr),
	SK_UINT("weight", struct cfg_server, weight, 1, 1000),
	SK_BOOL("backup", struct cfg_server, backup),
	/* needs machine-wide counts in shared memory: not yet (0 = off) */
	SK_UNSUPPORTED("max_connections"),
	SK_END,
};
SCHEMA_TABLE_CHECK(backend_server_keys);

static const struct schema_key backend_keys[] = {
	SK_CUSTOM("balance", struct cfg_backend, balance, backend_balance),
	SK_DURATION("connect_timeout", struct cfg_backend, connect_timeout_ms,
		    1),
	SK_DURATION("response_timeout", struct cfg_backend, response_timeout_ms,
		    1),
	SK_UINT("retries", struct cfg_backend, retries, 0, 16),
	SK_UINT("keepalive", struct cfg_backend, keepalive, 0, 10000),
	SK_REQUIRED("servers"),
	SK_UNSUPPORTED("hash_key"),
	SK_UNSUPPORTED("proxy_protocol"),
	SK_UNSUPPORTED("tls"),
	SK_UNSUPPORTED("health_check"),
	SK_UNSUPPORTED("passive"),
	SK_END,
};
SCHEMA_TABLE_CHECK(backend_keys);

/*
 * A server is named by its backend and address (drain, status, shared
 * memory across reloads), so an address may appear once per backend.
 */
static void backend_server_unique(struct schema_ctx *c, struct cfg_backend *b)
{
	struct cfg_server *s = &b->servers[b->nservers - 1];
	size_t i;

	if (!s->addr.str)
		return;
	for (i = 0; i + 1 < b->nservers; i++) {
		if (b->servers[i].addr.str &&
		    config_addr_equal(&b->servers[i].addr, &s->addr)) {
			schema_error_at(c, s->addr.line, s->addr.col,
					"server '%s' is listed twice in "
					"backend '%s'",
					s->addr.str, b->name);
			return;
		}
	}
}

static void backend_servers(struct schema_ctx *c, struct cfg_backend *b,
			    yaml_node_t *v)
{
	struct cfg_server *s;
	yaml_node_t *item;
	long i;

	if (v->type != YAML_SEQUENCE_NODE) {
		schema_error(c, v, "'servers' must be a list of servers");
		return;
	}
	if (SCHEMA_ITEMS(v) == 0) {
		schema_error(c, v, "'servers' must list at least one server");
		return;
	}
	b->servers = schema_calloc(c, (size_t)SCHEMA_ITEMS(v), sizeof(*s));
	for (i = 0; b->servers && i < SCHEMA_ITEMS(v); i++) {
		item = SCHEMA_ITEM(c, v, i);
		s = &b->servers[b->nservers++];
		s->weight = 1;
		if (schema_walk(c, item, backend_server_keys, "server", s))
			backend_server_unique(c, b);
	}
}

static void backend_load(struct schema_ctx *c, struct cfg_backend *b,
			 yaml_node_t *key, yaml_node_t *v)
{
	char what[96];
	yaml_node_t *n;

	b->line = (int)key->start_mark.line + 1;
	b->col = (int)key->start_mark.column + 1;
	b->balance = CFG_BALANCE_ROUND_ROBIN;
	b->connect_timeout_ms = 5000;
	b->response_timeout_ms = 60000;
	b->retries = 1;
	b->keepalive = 32;
	snprintf(what, sizeof(what), "backend '%.64s'", b->name);
	if (!schema_walk(c, v, backend_keys, what, b))
		return;
	if ((n = schema_get(c, v, "servers", NULL)))
		backend_servers(c, b, n);
}

/* Check the name in key; 0 if it may name a new backend. */
static int backend_name(struct schema_ctx *c, struct config *cfg,
			yaml_node_t *key)
{
	const char *name = schema_scalar(key);

	if (!name) {
		schema_error(c, key, "mapping keys must be strings");
		return -1;
	}
	if (!config_is_name(name)) {
		schema_error(c, key,
			     "'%s' is not a valid backend name (letters, "
			     "digits, '_', '-', '.')",
			     name);
		return -1;
	}
	if (config_backend(cfg, name)) {
		schema_error(c, key, "duplicate backend name '%s'", name);
		return -1;
	}
	return 0;
}

void config_load_backends(struct schema_ctx *c, struct config *cfg,
			  yaml_node_t *n)
{
	struct cfg_backend *b;
	yaml_node_t *key;
	long i;

	if (n->type != YAML_MAPPING_NODE) {
		schema_error(
			c, n,
			"'backends' must be a mapping of names to backends");
		return;
	}
	if (SCHEMA_PAIRS(n) == 0) {
		schema_error(c, n,
			     "'backends' must define at least one backend");
		return;
	}
	/* Sized once: listeners keep pointers into this array. */
	cfg->backends = schema_calloc(c, (size_t)SCHEMA_PAIRS(n), sizeof(*b));
	for (i = 0; cfg->backends && i < SCHEMA_PAIRS(n); i++) {
		key = schema_node(c, SCHEMA_PAIR(n, i)->key);
		if (backend_name(c, cfg, key) < 0)
			continue;
		b = &cfg->backends[cfg->nbackends++];
		b->name = schema_strdup(c, schema_scalar(key));
		if (b->name)
			backend_load(c, b, key,
				     schema_node(c, SCHEMA_PAIR(n, i)->value));
	}
}

void config_backend_free(struct cfg_backend *b)
{
	size_t i;

	for (i = 0; i < b->nservers; i++)
		free(b->servers[i].addr.str);
	free(b->servers);
	free(b->name);
}
