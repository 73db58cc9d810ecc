/*
 * config_int.h: what the files of config/ share with each other.
 *
 * config.c loads the document and the top level, config_backend.c the
 * backends: mapping, config_listener.c the listeners: list and its routes,
 * config_scalar.c the scalar forms.  Nothing outside config/ includes this.
 */
#ifndef PORTCULLIS_CONFIG_INT_H
#define PORTCULLIS_CONFIG_INT_H

#include "config/config.h"
#include "config/schema.h"

/*
 * The keys of struct cfg_limits, for a table whose object holds the limits
 * at offset base (defaults: 0, listeners: offsetof(.., limits)).
 */
#define CONFIG_LIMIT_KEYS(base) \
	{"client_header_timeout", SCHEMA_DURATION, \
	 (base) + offsetof(struct cfg_limits, client_header_timeout_ms), 1, \
	 UINT32_MAX, false, NULL}, \
	{"client_body_timeout", SCHEMA_DURATION, \
	 (base) + offsetof(struct cfg_limits, client_body_timeout_ms), 1, \
	 UINT32_MAX, false, NULL}, \
	{"keepalive_timeout", SCHEMA_DURATION, \
	 (base) + offsetof(struct cfg_limits, keepalive_timeout_ms), 1, \
	 UINT32_MAX, false, NULL}, \
	{"max_header_size", SCHEMA_SIZE32, \
	 (base) + offsetof(struct cfg_limits, max_header_size), 1024, \
	 1024 * 1024, false, NULL}, \
	{"max_body_size", SCHEMA_SIZE64, \
	 (base) + offsetof(struct cfg_limits, max_body_size), 0, UINT64_MAX, \
	 false, NULL}, \
	{"hide_response_headers", SCHEMA_CUSTOM, (base), 0, 0, false, \
	 config_hide_headers}, \
	{"forwarded_headers", SCHEMA_BOOL, \
	 (base) + offsetof(struct cfg_limits, forwarded_headers), 0, 0, false, \
	 NULL}

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

/* A decimal integer, digits only.  -1 with errno EINVAL or ERANGE. */
int config_parse_uint(const char *s, uint64_t *v);

#endif
