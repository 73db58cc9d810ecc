/*
 * config_listener.c: the listeners: list, each listener's bind addresses
 * and its routes (http) or backend (tcp).
 *
 * Limits flow downwards: a listener starts from a copy of defaults: and a
 * route from a copy of its listener, each then overriding what it sets.
 * That is why routes are read only after the whole listener mapping, in
 * whatever order its keys were written.
 */
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"

#define HOST_MAX_LEN 253 /* RFC 1035 */

/* ---- routes ----------------------------------------------------------- */

/* "example.com" or "*.example.com", already lowercased. */
static bool listener_is_host(const char *h)
{
	size_t len;

	if (!strncmp(h, "*.", 2))
		h += 2;
	len = strlen(h);
	if (len == 0 || len > HOST_MAX_LEN || h[0] == '.' ||
	    h[len - 1] == '.' || strstr(h, ".."))
		return false;
	return strspn(h, "abcdefghijklmnopqrstuvwxyz0123456789-_.") == len;
}

/* Add the host written in v to route r; field is the route. */
static void route_host(struct schema_ctx *c, struct cfg_route *r,
		       yaml_node_t *v)
{
	const char *s = schema_scalar(v);
	char *h, *p;

	if (!s || schema_is_null(v)) {
		schema_error(c, v,
			     "'host' must be a string or a list of strings");
		return;
	}
	h = schema_strdup(c, s);
	if (!h)
		return;
	/* Host names compare case-insensitively (RFC 9110 4.2.3). */
	for (p = h; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (!listener_is_host(h)) {
		schema_error(c, v,
			     "'%s' is not a valid host name (example.com or "
			     "*.example.com)",
			     s);
		free(h);
		return;
	}
	r->hosts[r->nhosts++] = h;
}

static void route_hosts(struct schema_ctx *c, const char *key, yaml_node_t *v,
			void *field)
{
	struct cfg_route *r = field;
	size_t n = v->type == YAML_SEQUENCE_NODE ? (size_t)SCHEMA_ITEMS(v) : 1;
	size_t i;

	if (v->type == YAML_MAPPING_NODE) {
		schema_error(c, v, "'%s' must be a string or a list of strings",
			     key);
		return;
	}
	r->hosts = schema_calloc(c, n, sizeof(char *));
	if (!r->hosts)
		return;
	if (v->type == YAML_SCALAR_NODE) {
		route_host(c, r, v);
		return;
	}
	for (i = 0; i < n; i++)
		route_host(c, r, SCHEMA_ITEM(c, v, (long)i));
}

static void route_path_prefix(struct schema_ctx *c, const char *key,
			      yaml_node_t *v, void *field)
{
	const char *s = schema_scalar(v), *p;

	if (s && *s != '/' && !schema_is_null(v)) {
		schema_error(c, v, "'%s' must start with '/'", key);
		return;
	}
	for (p = s; p && *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			schema_error(c, v,
				     "'%s' must not contain spaces or control "
				     "characters",
				     key);
			return;
		}
	}
	schema_string(c, key, v, field);
}

/* redirect: scheme: https, the one there is; field is unused. */
static void redirect_scheme(struct schema_ctx *c, const char *key,
			    yaml_node_t *v, void *field)
{
	const char *s = schema_scalar(v);

	(void)field;
	if (!s || strcmp(s, "https"))
		schema_error(c, v, "'%s' must be https", key);
}

/* redirect: status: 301 | 302 | 307 | 308. */
static void redirect_status(struct schema_ctx *c, const char *key,
			    yaml_node_t *v, void *field)
{
	const char *s = schema_scalar(v);
	uint64_t code;

	if (!s || config_parse_uint(s, &code) < 0 ||
	    (code != 301 && code != 302 && code != 307 && code != 308)) {
		schema_error(c, v, "'%s' must be 301, 302, 307 or 308", key);
		return;
	}
	*(unsigned *)field = (unsigned)code;
}

static const struct schema_key redirect_keys[] = {
	SK_KEY("scheme", SCHEMA_CUSTOM, 0, 0, 0, true, redirect_scheme),
	SK_CUSTOM("status", struct cfg_route, redirect_status, redirect_status),
	SK_END,
};
SCHEMA_TABLE_CHECK(redirect_keys);

/* redirect: {scheme, status}; field is the route. */
static void route_redirect(struct schema_ctx *c, const char *key,
			   yaml_node_t *v, void *field)
{
	struct cfg_route *r = field;

	r->redirect_status = 308;
	schema_walk(c, v, redirect_keys, key, r);
}

static const struct schema_key route_keys[] = {
	SK_WHOLE("host", route_hosts),
	SK_CUSTOM("path_prefix", struct cfg_route, path_prefix,
		  route_path_prefix),
	SK_LATER("backend"),
	SK_WHOLE("redirect", route_redirect),
	SK_SIZE64("max_body_size", struct cfg_route, limits.max_body_size),
	SK_DURATION("client_body_timeout", struct cfg_route,
		    limits.client_body_timeout_ms, 1),
	SK_KEY("client_body_min_rate", SCHEMA_SIZE32,
	       offsetof(struct cfg_route, limits.client_body_min_rate), 0,
	       UINT32_MAX, false, NULL),
	SK_WHOLE("methods", config_route_methods),
	SK_CUSTOM("auth", struct cfg_route, auth, config_auth_load),
	SK_CUSTOM("rate_limit", struct cfg_route, rate_limit, config_rate_limit),
	SK_CUSTOM("allow", struct cfg_route, acl.allow, config_acl_allow),
	SK_CUSTOM("deny", struct cfg_route, acl.deny, config_acl_deny),
	SK_END,
};
SCHEMA_TABLE_CHECK(route_keys);

/* Resolve the backend named by v into *name and *b. */
static void listener_backend_ref(struct schema_ctx *c, struct config *cfg,
				 yaml_node_t *v, char **name,
				 struct cfg_backend **b)
{
	const char *s = schema_scalar(v);

	if (!s || !*s || schema_is_null(v)) {
		schema_error(c, v, "'backend' must be the name of a backend");
		return;
	}
	*name = schema_strdup(c, s);
	*b = config_backend(cfg, s);
	/* Without a usable backends: section, that one error says it all. */
	if (!*b && cfg->backends)
		schema_error(c, v, "undefined backend '%s'", s);
}

static void route_load(struct schema_ctx *c, struct config *cfg,
		       struct cfg_listener *l, struct cfg_route *r,
		       yaml_node_t *n)
{
	yaml_node_t *v, *key;

	r->line = (int)n->start_mark.line + 1;
	r->col = (int)n->start_mark.column + 1;
	config_limits_copy(c, &r->limits, &l->limits);
	r->path_prefix = schema_strdup(c, "/");
	if (!schema_walk(c, n, route_keys, "route", r))
		return;
	/* A redirect answers by itself: backend is NULL, never looked up. */
	v = schema_get(c, n, "backend", &key);
	if (schema_get(c, n, "redirect", NULL)) {
		if (v)
			schema_error(c, key,
				     "a route with 'redirect' must not name a "
				     "'backend'");
	} else if (v) {
		listener_backend_ref(c, cfg, v, &r->backend_name, &r->backend);
	} else {
		schema_error(c, n, "route: missing required key 'backend'");
	}
}

static void listener_routes(struct schema_ctx *c, struct config *cfg,
			    struct cfg_listener *l, yaml_node_t *v)
{
	long i;

	if (v->type != YAML_SEQUENCE_NODE) {
		schema_error(c, v, "'routes' must be a list of routes");
		return;
	}
	if (SCHEMA_ITEMS(v) == 0) {
		schema_error(c, v, "'routes' must list at least one route");
		return;
	}
	l->routes =
		schema_calloc(c, (size_t)SCHEMA_ITEMS(v), sizeof(*l->routes));
	for (i = 0; l->routes && i < SCHEMA_ITEMS(v); i++)
		route_load(c, cfg, l, &l->routes[l->nroutes++],
			   SCHEMA_ITEM(c, v, i));
}

/* ---- listeners -------------------------------------------------------- */

/* trusted_proxies: a list of CIDRs ("10.0.0.0/8", "::1", ...). */
static void listener_trusted(struct schema_ctx *c, const char *key,
			     yaml_node_t *v, void *field)
{
	struct cfg_listener *l = (struct cfg_listener *)((char *)field -
		offsetof(struct cfg_listener, trusted_proxies));
	long i;

	if (v->type != YAML_SEQUENCE_NODE) {
		schema_error(c, v, "'%s' must be a list of addresses or CIDRs",
			     key);
		return;
	}
	free(l->trusted_proxies);
	l->ntrusted_proxies = 0;
	l->trusted_proxies = schema_calloc(c, (size_t)SCHEMA_ITEMS(v) + 1,
					   sizeof(struct cidr));
	for (i = 0; l->trusted_proxies && i < SCHEMA_ITEMS(v); i++) {
		yaml_node_t *item = SCHEMA_ITEM(c, v, i);
		const char *s = schema_scalar(item);

		if (!s || cidr_parse(s, &l->trusted_proxies[l->ntrusted_proxies]))
			schema_error(c, item,
				     "'%s' is not an address or CIDR (like "
				     "10.0.0.0/8 or ::1/128)",
				     s ? s : "(list or mapping)");
		else
			l->ntrusted_proxies++;
	}
}

static const struct schema_key listener_keys[] = {
	SK_REQUIRED("name"),
	SK_REQUIRED("bind"),
	SK_LATER("protocol"),
	SK_BOOL("reuseport", struct cfg_listener, reuseport),
	CONFIG_LIMIT_KEYS(offsetof(struct cfg_listener, limits)),
	SK_LATER("routes"),
	SK_LATER("backend"),
	SK_BOOL("proxy_protocol", struct cfg_listener, proxy_protocol),
	SK_CUSTOM("trusted_proxies", struct cfg_listener, trusted_proxies,
		  listener_trusted),
	SK_LATER("tls"),
	SK_CUSTOM("underscores_in_headers", struct cfg_listener,
		  underscores_in_headers, config_underscores),
	SK_CUSTOM("ambiguous_requests", struct cfg_listener,
		  ambiguous_requests, config_ambiguous),
	SK_CUSTOM("normalize_path", struct cfg_listener, normalize_path,
		  config_normalize),
	SK_CUSTOM("rate_limit", struct cfg_listener, rate_limit,
		  config_rate_limit),
	SK_UINT("max_connections", struct cfg_listener, max_connections, 0,
		UINT32_MAX),
	SK_UINT("max_connections_per_client", struct cfg_listener,
		max_connections_per_client, 0, 65535),
	SK_CUSTOM("allow", struct cfg_listener, acl.allow, config_acl_allow),
	SK_CUSTOM("deny", struct cfg_listener, acl.deny, config_acl_deny),
	SK_END,
};
SCHEMA_TABLE_CHECK(listener_keys);

static void listener_name(struct schema_ctx *c, struct config *cfg,
			  struct cfg_listener *l, yaml_node_t *v)
{
	size_t i;

	if (schema_string(c, "name", v, &l->name) < 0)
		return;
	if (!config_is_name(l->name)) {
		schema_error(c, v,
			     "'%s' is not a valid listener name (letters, "
			     "digits, '_', '-', '.')",
			     l->name);
		return;
	}
	for (i = 0; &cfg->listeners[i] != l; i++) {
		if (cfg->listeners[i].name &&
		    !strcmp(cfg->listeners[i].name, l->name)) {
			schema_error(c, v, "duplicate listener name '%s'",
				     l->name);
			return;
		}
	}
}

/* Report a that an earlier bind (of any listener) already uses. */
static void listener_bind_unique(struct schema_ctx *c, struct config *cfg,
				 struct cfg_listener *l, struct cfg_addr *a)
{
	struct cfg_listener *o;
	size_t i, j;

	for (i = 0; i < cfg->nlisteners; i++) {
		o = &cfg->listeners[i];
		for (j = 0; j < o->nbinds && &o->binds[j] != a; j++) {
			if (!o->binds[j].str ||
			    !config_addr_equal(&o->binds[j], a))
				continue;
			if (o == l)
				schema_error_at(c, a->line, a->col,
						"address '%s' is listed twice",
						a->str);
			else
				schema_error_at(c, a->line, a->col,
						"address '%s' is already bound "
						"by listener '%s'",
						a->str,
						o->name ? o->name : "?");
			return;
		}
	}
}

static void listener_binds(struct schema_ctx *c, struct config *cfg,
			   struct cfg_listener *l, yaml_node_t *v)
{
	size_t i,
		n = v->type == YAML_SEQUENCE_NODE ? (size_t)SCHEMA_ITEMS(v) : 1;
	struct cfg_addr *a;
	yaml_node_t *item;

	if (v->type == YAML_MAPPING_NODE ||
	    (v->type == YAML_SCALAR_NODE && schema_is_null(v))) {
		schema_error(c, v,
			     "'bind' must be a string or a list of strings");
		return;
	}
	if (n == 0) {
		schema_error(c, v, "'bind' must list at least one address");
		return;
	}
	l->binds = schema_calloc(c, n, sizeof(*l->binds));
	for (i = 0; l->binds && i < n; i++) {
		item = v->type == YAML_SCALAR_NODE ? v
						   : SCHEMA_ITEM(c, v, (long)i);
		a = &l->binds[l->nbinds++];
		if (item->type != YAML_SCALAR_NODE)
			schema_error(c, item,
				     "'bind' must be a string or a list of "
				     "strings");
		else if (config_addr_load(c, "bind", item, a) == 0)
			listener_bind_unique(c, cfg, l, a);
	}
}

/* protocol: http | tcp.  false if it is neither (already reported). */
static bool listener_protocol(struct schema_ctx *c, struct cfg_listener *l,
			      yaml_node_t *v)
{
	const char *s = schema_scalar(v);

	if (!v || (s && !strcmp(s, "http")))
		l->protocol = CFG_PROTO_HTTP;
	else if (s && !strcmp(s, "tcp"))
		l->protocol = CFG_PROTO_TCP;
	else {
		schema_error(c, v, "'protocol' must be http or tcp");
		return false;
	}
	return true;
}

/* What the listener forwards to: routes (http) or one backend (tcp). */
static void listener_target(struct schema_ctx *c, struct config *cfg,
			    struct cfg_listener *l, yaml_node_t *n)
{
	yaml_node_t *routes_key, *backend_key;
	yaml_node_t *routes = schema_get(c, n, "routes", &routes_key);
	yaml_node_t *backend = schema_get(c, n, "backend", &backend_key);

	if (l->protocol == CFG_PROTO_HTTP) {
		if (backend)
			schema_error(c, backend_key,
				     "'backend' is only valid for tcp "
				     "listeners; http listeners use 'routes'");
		if (routes)
			listener_routes(c, cfg, l, routes);
		else
			schema_error(c, n,
				     "listener: missing required key 'routes'");
		return;
	}
	if (routes)
		schema_error(c, routes_key,
			     "'routes' is only valid for http listeners");
	if (backend)
		listener_backend_ref(c, cfg, backend, &l->backend_name,
				     &l->backend);
	else
		schema_error(c, n, "listener: missing required key 'backend'");
}

/* hsts and client_cert_headers act on HTTP: a tcp listener has none. */
static void listener_tls_tcp(struct schema_ctx *c, yaml_node_t *tls)
{
	static const char *const http_only[] = {"hsts", "client_cert_headers"};
	yaml_node_t *key;
	size_t i;

	for (i = 0; i < sizeof(http_only) / sizeof(http_only[0]); i++)
		if (schema_get(c, tls, http_only[i], &key))
			schema_error(c, key,
				     "'%s' is only valid for http listeners",
				     http_only[i]);
}

static void listener_load(struct schema_ctx *c, struct config *cfg,
			  struct cfg_listener *l, yaml_node_t *n)
{
	yaml_node_t *v, *key, *tls;

	l->line = (int)n->start_mark.line + 1;
	l->col = (int)n->start_mark.column + 1;
	l->protocol = CFG_PROTO_HTTP;
	config_limits_copy(c, &l->limits, &cfg->defaults);
	if (!schema_walk(c, n, listener_keys, "listener", l))
		return;
	if ((v = schema_get(c, n, "name", NULL)))
		listener_name(c, cfg, l, v);
	if ((v = schema_get(c, n, "bind", NULL)))
		listener_binds(c, cfg, l, v);
	if ((tls = schema_get(c, n, "tls", &key)))
		config_tls_load(c, &l->tls, key, tls);
	if (!listener_protocol(c, l, schema_get(c, n, "protocol", NULL)))
		return;
	listener_target(c, cfg, l, n);
	if (l->tls && l->protocol == CFG_PROTO_TCP)
		listener_tls_tcp(c, tls);
	if (l->protocol == CFG_PROTO_TCP)
		config_hygiene_tcp(c, n);
}

void config_load_listeners(struct schema_ctx *c, struct config *cfg,
			   yaml_node_t *n)
{
	long i;

	if (n->type != YAML_SEQUENCE_NODE) {
		schema_error(c, n, "'listeners' must be a list of listeners");
		return;
	}
	/*
	 * An explicit "listeners: []" is a master that serves nothing: the
	 * Debian package's default file, which must harm nothing when the
	 * package starts it (HAProxy's has no frontend either).
	 */
	if (SCHEMA_ITEMS(n) == 0)
		return;
	cfg->listeners = schema_calloc(c, (size_t)SCHEMA_ITEMS(n),
				       sizeof(*cfg->listeners));
	for (i = 0; cfg->listeners && i < SCHEMA_ITEMS(n); i++)
		listener_load(c, cfg, &cfg->listeners[cfg->nlisteners++],
			      SCHEMA_ITEM(c, n, i));
}

/* ---- teardown --------------------------------------------------------- */

static void route_free(struct cfg_route *r)
{
	size_t i;

	for (i = 0; i < r->nhosts; i++)
		free(r->hosts[i]);
	free(r->hosts);
	free(r->path_prefix);
	free(r->backend_name);
	config_route_methods_free(r);
	config_auth_free(r->auth);
	config_acl_free(&r->acl);
	config_limits_free(&r->limits);
}

void config_listener_free(struct cfg_listener *l)
{
	size_t i;

	for (i = 0; i < l->nbinds; i++)
		free(l->binds[i].str);
	free(l->binds);
	for (i = 0; i < l->nroutes; i++)
		route_free(&l->routes[i]);
	free(l->routes);
	free(l->backend_name);
	free(l->name);
	free(l->trusted_proxies);
	config_acl_free(&l->acl);
	config_limits_free(&l->limits);
	config_tls_free(l->tls);
}
