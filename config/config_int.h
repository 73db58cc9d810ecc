/*
 * config_int.h: what the files of config/ share with each other.
 *
 * config.c loads the document and the top level, config_backend.c the
 * backends: mapping, config_listener.c the listeners: list and its routes,
 * config_tls.c the tls: sections of both, config_scalar.c the scalar
 * forms.  Nothing outside config/ includes this.
 */
#ifndef PORTCULLIS_CONFIG_INT_H
#define PORTCULLIS_CONFIG_INT_H

#include "config/config.h"
#include "config/schema.h"

/*
 * The keys of struct cfg_limits, for a table whose object holds the limits
 * at offset base (defaults: 0, listeners: offsetof(.., limits)).
 */
// clang-format off
#define CONFIG_LIMIT_KEY(base, name, type, F, lo, hi) \
	SK_KEY(name, type, (base) + offsetof(struct cfg_limits, F), lo, hi, false, NULL)
#define CONFIG_LIMIT_KEYS(base) \
	CONFIG_LIMIT_KEY(base, "client_header_timeout", SCHEMA_DURATION, client_header_timeout_ms, 1, UINT32_MAX), \
	CONFIG_LIMIT_KEY(base, "client_body_timeout", SCHEMA_DURATION, client_body_timeout_ms, 1, UINT32_MAX), \
	CONFIG_LIMIT_KEY(base, "client_body_min_rate", SCHEMA_SIZE32, client_body_min_rate, 0, UINT32_MAX), \
	CONFIG_LIMIT_KEY(base, "keepalive_timeout", SCHEMA_DURATION, keepalive_timeout_ms, 1, UINT32_MAX), \
	CONFIG_LIMIT_KEY(base, "max_header_size", SCHEMA_SIZE32, max_header_size, 1024, 1024 * 1024), \
	CONFIG_LIMIT_KEY(base, "max_body_size", SCHEMA_SIZE64, max_body_size, 0, UINT64_MAX), \
	CONFIG_LIMIT_KEY(base, "forwarded_headers", SCHEMA_BOOL, forwarded_headers, 0, 0), \
	SK_KEY("hide_response_headers", SCHEMA_CUSTOM, (base), 0, 0, false, config_hide_headers)
// clang-format on

/* SCHEMA_CUSTOM handler of hide_response_headers; field is a cfg_limits. */
schema_fn config_hide_headers;

/* Deep-copy src into dst (which owns nothing yet). */
void config_limits_copy(struct schema_ctx *c, struct cfg_limits *dst,
			const struct cfg_limits *src);
void config_limits_free(struct cfg_limits *l);

/*
 * Parse the scalar address v (written as the value of key) into a.
 * Reports a bad address at v.  0 or -1.
 */
int config_addr_load(struct schema_ctx *c, const char *key, yaml_node_t *v,
		     struct cfg_addr *a);
bool config_addr_equal(const struct cfg_addr *a, const struct cfg_addr *b);

/* Is s a non-empty token (RFC 9110 §5.6.2), as header names are? */
bool config_is_token(const char *s);

/* Check a listener or backend name: letters, digits, '_', '-', '.'. */
bool config_is_name(const char *s);

/* Load the backends: mapping / listeners: list into cfg.  Backends first:
 * listeners resolve their backend names against them. */
void config_load_backends(struct schema_ctx *c, struct config *cfg,
			  yaml_node_t *n);
void config_load_listeners(struct schema_ctx *c, struct config *cfg,
			   yaml_node_t *n);
void config_backend_free(struct cfg_backend *b);
void config_listener_free(struct cfg_listener *l);

/*
 * The tls: sections (config_tls.c).  key is the tls: key node (positions),
 * v its value; false/off/~ leave *out NULL, anything else sets *out to a
 * new section with its defaults, which the caller owns even when errors
 * were reported.  The _free functions leave ctx alone and take NULL.
 */
void config_tls_load(struct schema_ctx *c, struct cfg_tls **out,
		     yaml_node_t *key, yaml_node_t *v);
void config_tls_free(struct cfg_tls *t);
void config_upstream_tls_load(struct schema_ctx *c,
			      struct cfg_upstream_tls **out, yaml_node_t *key,
			      yaml_node_t *v);
void config_upstream_tls_free(struct cfg_upstream_tls *t);

/*
 * The request hygiene keys (config_hygiene.c).  config_route_methods is
 * the SK_WHOLE handler of a route's methods: (field is the cfg_route);
 * the other three are SK_CUSTOM handlers of the listener enums
 * underscores_in_headers:, ambiguous_requests: and normalize_path:.
 * config_hygiene_tcp reports those three on a tcp listener (mapping n).
 */
schema_fn config_route_methods;
schema_fn config_underscores;
schema_fn config_ambiguous;
schema_fn config_normalize;
void config_hygiene_tcp(struct schema_ctx *c, yaml_node_t *n);
void config_route_methods_free(struct cfg_route *r);

/*
 * A route's auth: (config_auth.c), SCHEMA_CUSTOM handler whose field is
 * the route's struct cfg_auth *: off forms leave it NULL, anything else
 * makes a new section (owned by the route even when errors were reported)
 * and loads its users file.  config_auth_free takes NULL.
 */
schema_fn config_auth_load;
void config_auth_free(struct cfg_auth *a);

/* SCHEMA_CUSTOM handler of a backend's proxy_protocol: off | v1 | v2;
 * field is an enum cfg_proxy_protocol (config_proxyproto.c). */
schema_fn config_proxy_protocol;

/*
 * rate_limit: of a listener or a route (config_limits.c); field is a
 * struct cfg_rate_limit.  Its id is set afterwards by
 * config_limits_finish().
 */
schema_fn config_rate_limit;

/*
 * The id of the rate limit of listener (route 0) or of its route-th route
 * (from 1): a hash of the names, so the same across reloads.  Never 0.
 */
uint32_t config_rate_limit_id(const char *listener, size_t route);

/* ban: (config_ban.c); field is a struct cfg_ban holding the defaults. */
schema_fn config_ban;
void config_ban_defaults(struct schema_ctx *c, struct cfg_ban *b);

/*
 * After the listeners are loaded: the ids of every rate limit, default
 * prefixes, and the count of listeners against the shared table's slots.
 */
void config_limits_finish(struct schema_ctx *c, struct config *cfg,
			  yaml_node_t *root);

/*
 * allow: and deny: of listeners and routes (config_acl.c): SCHEMA_CUSTOM
 * handlers whose field is the allow or deny member of a struct cfg_acl.
 * They read the list files named and build the trees (common/iptree.h);
 * config_acl_free() frees both trees and leaves the struct empty.
 */
schema_fn config_acl_allow;
schema_fn config_acl_deny;
void config_acl_free(struct cfg_acl *a);

/*
 * admin: (config_admin.c): SCHEMA_CUSTOM handler, field is the struct
 * cfg_admin; config_admin_check() refuses a bind shared with a listener.
 */
schema_fn config_admin;
void config_admin_check(struct schema_ctx *c, const struct config *cfg,
			yaml_node_t *root);
void config_admin_free(struct cfg_admin *a);

/* A decimal integer, digits only.  -1 with errno EINVAL or ERANGE. */
int config_parse_uint(const char *s, uint64_t *v);

#endif
