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
	static const char *const names[] = {
		[CFG_BALANCE_ROUND_ROBIN] = "round_robin",
		[CFG_BALANCE_LEAST_CONN] = "least_conn",
		[CFG_BALANCE_RANDOM_TWO] = "random_two",
		[CFG_BALANCE_HASH] = "hash"};
	const char *s = schema_scalar(v);
	size_t i;

	for (i = 0; s && i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(s, names[i])) {
			*(enum cfg_balance *)field = (enum cfg_balance)i;
			return;
		}
	}
	schema_error(c, v,
		     "'%s' must be one of round_robin, least_conn, random_two, "
		     "hash",
		     key);
}

/* panic_threshold: "50%" (or a bare 50): 0..100 percent. */
static void backend_panic_threshold(struct schema_ctx *c, const char *key,
				    yaml_node_t *v, void *field)
{
	const char *s = schema_scalar(v);
	char *end;
	unsigned long pct;

	if (s != NULL && *s >= '0' && *s <= '9') {
		pct = strtoul(s, &end, 10);
		if (*end == '%')
			end++;
		if (*end == '\0' && pct <= 100) {
			*(uint32_t *)field = (uint32_t)pct;
			return;
		}
	}
	schema_error(c, v, "'%s' must be a percentage from 0%% to 100%%", key);
}

/* hash_key: client_ip | uri | header:NAME; field is the backend. */
static void backend_hash_key(struct schema_ctx *c, const char *key,
			     yaml_node_t *v, void *field)
{
	struct cfg_backend *b = field;
	const char *s = schema_scalar(v);

	if (s && !strcmp(s, "client_ip")) {
		b->hash_key = CFG_HASH_CLIENT_IP;
	} else if (s && !strcmp(s, "uri")) {
		b->hash_key = CFG_HASH_URI;
	} else if (s && !strncmp(s, "header:", 7) && config_is_token(s + 7)) {
		b->hash_key = CFG_HASH_HEADER;
		free(b->hash_header);
		b->hash_header = schema_strdup(c, s + 7);
	} else {
		schema_error(c, v,
			     "'%s' must be client_ip, uri or header:NAME", key);
	}
}

/* expect_status: a list of status codes 100..599. */
static void health_expect(struct schema_ctx *c, const char *key,
			  yaml_node_t *v, void *field)
{
	struct cfg_health *h = field;
	long i;

	if (v->type != YAML_SEQUENCE_NODE || SCHEMA_ITEMS(v) == 0 ||
	    SCHEMA_ITEMS(v) > CFG_MAX_EXPECT_STATUS) {
		schema_error(c, v, "'%s' must be a list of 1 to %d status codes",
			     key, CFG_MAX_EXPECT_STATUS);
		return;
	}
	h->nexpect_status = 0;
	for (i = 0; i < SCHEMA_ITEMS(v); i++) {
		yaml_node_t *item = SCHEMA_ITEM(c, v, i);
		const char *s = schema_scalar(item);
		uint64_t code;

		if (!s || config_parse_uint(s, &code) || code < 100 ||
		    code > 599) {
			schema_error(c, item,
				     "'%s' is not a status code (100..599)",
				     s ? s : "(list or mapping)");
			continue;
		}
		h->expect_status[h->nexpect_status++] = (uint16_t)code;
	}
}

static void health_type(struct schema_ctx *c, const char *key, yaml_node_t *v,
			void *field)
{
	const char *s = schema_scalar(v);

	if (s && !strcmp(s, "tcp"))
		*(enum cfg_check_type *)field = CFG_CHECK_TCP;
	else if (s && !strcmp(s, "http"))
		*(enum cfg_check_type *)field = CFG_CHECK_HTTP;
	else
		schema_error(c, v, "'%s' must be tcp or http", key);
}

static void health_path(struct schema_ctx *c, const char *key, yaml_node_t *v,
			void *field)
{
	const char *s = schema_scalar(v);

	if (!s || s[0] != '/' || strpbrk(s, " \t\r\n"))
		schema_error(c, v, "'%s' must be a path starting with /", key);
	else
		schema_string(c, key, v, (char **)field);
}

static const struct schema_key health_keys[] = {
	SK_CUSTOM("type", struct cfg_health, type, health_type),
	SK_CUSTOM("path", struct cfg_health, path, health_path),
	SK_STRING("host", struct cfg_health, host),
	SK_STRING("body", struct cfg_health, body),
	SK_WHOLE("expect_status", health_expect),
	SK_DURATION("interval", struct cfg_health, interval_ms, 100),
	SK_DURATION("timeout", struct cfg_health, timeout_ms, 10),
	SK_UINT("rise", struct cfg_health, rise, 1, 100),
	SK_UINT("fall", struct cfg_health, fall, 1, 100),
	SK_END,
};
SCHEMA_TABLE_CHECK(health_keys);

/* health_check: {...}; field is the backend's struct cfg_health. */
static void backend_health(struct schema_ctx *c, const char *key,
			   yaml_node_t *v, void *field)
{
	struct cfg_health *h = field;

	h->type = CFG_CHECK_TCP;
	h->interval_ms = 2000;
	h->timeout_ms = 1000;
	h->rise = 2;
	h->fall = 3;
	h->expect_status[0] = 200;
	h->nexpect_status = 1;
	if (!schema_walk(c, v, health_keys, key, h))
		return;
	if (h->timeout_ms > h->interval_ms)
		schema_error(c, v,
			     "health_check: 'timeout' must not be longer than "
			     "'interval'");
	if (h->type == CFG_CHECK_HTTP && h->path == NULL)
		h->path = schema_strdup(c, "/");
}

static const struct schema_key passive_keys[] = {
	SK_UINT("max_fails", struct cfg_backend, max_fails, 0, 1000),
	SK_DURATION("fail_timeout", struct cfg_backend, fail_timeout_ms, 1),
	SK_END,
};
SCHEMA_TABLE_CHECK(passive_keys);

/* passive: {max_fails, fail_timeout}; field is the backend. */
static void backend_passive(struct schema_ctx *c, const char *key,
			    yaml_node_t *v, void *field)
{
	schema_walk(c, v, passive_keys, key, field);
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
	SK_UINT("max_connections", struct cfg_server, max_connections, 0,
		1000000),
	SK_END,
};
SCHEMA_TABLE_CHECK(backend_server_keys);

static const struct schema_key backend_keys[] = {
	SK_CUSTOM("balance", struct cfg_backend, balance, backend_balance),
	SK_DURATION("connect_timeout", struct cfg_backend, connect_timeout_ms,
		    1),
	SK_DURATION("response_total_timeout", struct cfg_backend,
		    response_total_timeout_ms, 0),
	SK_DURATION("response_timeout", struct cfg_backend, response_timeout_ms,
		    1),
	SK_UINT("retries", struct cfg_backend, retries, 0, 16),
	SK_UINT("keepalive", struct cfg_backend, keepalive, 0, 10000),
	SK_REQUIRED("servers"),
	SK_WHOLE("hash_key", backend_hash_key),
	SK_CUSTOM("proxy_protocol", struct cfg_backend, proxy_protocol,
		  config_proxy_protocol),
	SK_LATER("tls"),
	SK_CUSTOM("health_check", struct cfg_backend, health, backend_health),
	SK_WHOLE("passive", backend_passive),
	SK_CUSTOM("panic_threshold", struct cfg_backend, panic_threshold,
		  backend_panic_threshold),
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
	yaml_node_t *n, *tls_key;

	b->line = (int)key->start_mark.line + 1;
	b->col = (int)key->start_mark.column + 1;
	b->balance = CFG_BALANCE_ROUND_ROBIN;
	b->connect_timeout_ms = 5000;
	b->response_timeout_ms = 60000;
	b->retries = 1;
	b->keepalive = 32;
	b->max_fails = 3;
	b->fail_timeout_ms = 10000;
	b->panic_threshold = 50;
	snprintf(what, sizeof(what), "backend '%.64s'", b->name);
	if (!schema_walk(c, v, backend_keys, what, b))
		return;
	if ((n = schema_get(c, v, "servers", NULL)))
		backend_servers(c, b, n);
	if (schema_get(c, v, "hash_key", &n) && b->balance != CFG_BALANCE_HASH)
		schema_error(c, n, "'hash_key' is only used with balance: hash");
	if ((n = schema_get(c, v, "tls", &tls_key)))
		config_upstream_tls_load(c, &b->tls, tls_key, n);
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
	/*
	 * "backends: {}" goes with "listeners: []".  An empty array, not
	 * NULL, so that a route naming a backend is still "undefined".
	 */
	if (SCHEMA_PAIRS(n) == 0) {
		cfg->backends = schema_calloc(c, 1, sizeof(*b));
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
	free(b->hash_header);
	free(b->health.path);
	free(b->health.host);
	free(b->health.body);
	config_upstream_tls_free(b->tls);
}
