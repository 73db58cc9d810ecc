/*
 * config_tls.c: the tls: sections, a listener's (TLS termination) and a
 * backend's (TLS to the servers).
 *
 * Only the form is checked here: absolute paths, known versions, ranges.
 * Whether the files exist, can be read and hold matching keys is for the
 * master, which loads them (tls_config_load) and reports with the line and
 * column kept in the structs.  The contexts (ctx) are never touched here.
 */
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"

#define TLS_DEFAULT_SUBJECT_HEADER     "X-Client-Subject"
#define TLS_DEFAULT_FINGERPRINT_HEADER "X-Client-Fingerprint"
#define TLS_MIN_TICKET_ROTATION_MS     (60u * 1000)	       /* 1m */
#define TLS_MAX_TICKET_ROTATION_MS     (7u * 24 * 3600 * 1000) /* 7d */

static void tls_pos(struct cfg_tls_cert *cert, const yaml_node_t *n)
{
	cert->line = (int)n->start_mark.line + 1;
	cert->col = (int)n->start_mark.column + 1;
}

/* min_version: TLSv1.2 | TLSv1.3 -> 12 | 13; field is an unsigned. */
static void tls_min_version(struct schema_ctx *c, const char *key,
			    yaml_node_t *v, void *field)
{
	const char *s = schema_scalar(v);

	if (s && !strcmp(s, "TLSv1.2"))
		*(unsigned *)field = 12;
	else if (s && !strcmp(s, "TLSv1.3"))
		*(unsigned *)field = 13;
	else
		schema_error(c, v, "'%s' must be TLSv1.2 or TLSv1.3", key);
}

/* ---- listener tls: ---------------------------------------------------- */

static const struct schema_key tls_cert_keys[] = {
	SK_KEY("cert", SCHEMA_PATH, offsetof(struct cfg_tls_cert, cert), 0, 0,
	       true, NULL),
	SK_KEY("key", SCHEMA_PATH, offsetof(struct cfg_tls_cert, key), 0, 0,
	       true, NULL),
	SK_END,
};
SCHEMA_TABLE_CHECK(tls_cert_keys);

/* certificates: a non-empty list of {cert, key}; field is the cfg_tls. */
static void tls_certificates(struct schema_ctx *c, const char *key,
			     yaml_node_t *v, void *field)
{
	struct cfg_tls *t = field;
	yaml_node_t *item;
	long i;

	if (v->type != YAML_SEQUENCE_NODE) {
		schema_error(c, v, "'%s' must be a list of {cert, key}", key);
		return;
	}
	if (SCHEMA_ITEMS(v) == 0) {
		schema_error(c, v, "'%s' must list at least one certificate",
			     key);
		return;
	}
	t->certs = schema_calloc(c, (size_t)SCHEMA_ITEMS(v), sizeof(*t->certs));
	for (i = 0; t->certs && i < SCHEMA_ITEMS(v); i++) {
		item = SCHEMA_ITEM(c, v, i);
		tls_pos(&t->certs[t->ncerts], item);
		schema_walk(c, item, tls_cert_keys, "certificate",
			    &t->certs[t->ncerts++]);
	}
}

/* verify: required | optional; field is the enum cfg_tls_verify. */
static void tls_verify(struct schema_ctx *c, const char *key, yaml_node_t *v,
		       void *field)
{
	const char *s = schema_scalar(v);

	if (s && !strcmp(s, "required"))
		*(enum cfg_tls_verify *)field = CFG_TLS_VERIFY_REQUIRED;
	else if (s && !strcmp(s, "optional"))
		*(enum cfg_tls_verify *)field = CFG_TLS_VERIFY_OPTIONAL;
	else
		schema_error(c, v, "'%s' must be required or optional", key);
}

/* A request header name the worker sets (and strips from clients). */
static void tls_header(struct schema_ctx *c, const char *key, yaml_node_t *v,
		       void *field)
{
	const char *s = schema_scalar(v);

	if (!s || schema_is_null(v) || !config_is_token(s))
		schema_error(c, v, "'%s' is not a valid header name",
			     s && !schema_is_null(v) ? s : key);
	else
		schema_string(c, key, v, field);
}

static const struct schema_key tls_header_keys[] = {
	SK_CUSTOM("subject", struct cfg_tls, subject_header, tls_header),
	SK_CUSTOM("fingerprint", struct cfg_tls, fingerprint_header,
		  tls_header),
	SK_END,
};
SCHEMA_TABLE_CHECK(tls_header_keys);

/* client_cert_headers: {subject, fingerprint}; field is the cfg_tls. */
static void tls_client_cert_headers(struct schema_ctx *c, const char *key,
				    yaml_node_t *v, void *field)
{
	schema_walk(c, v, tls_header_keys, key, field);
}

static const struct schema_key tls_keys[] = {
	SK_KEY("certificates", SCHEMA_CUSTOM, 0, 0, 0, true, tls_certificates),
	SK_CUSTOM("min_version", struct cfg_tls, min_version, tls_min_version),
	SK_STRING("ciphers", struct cfg_tls, ciphers),
	SK_KEY("ticket_rotation", SCHEMA_DURATION,
	       offsetof(struct cfg_tls, ticket_rotation_ms),
	       TLS_MIN_TICKET_ROTATION_MS, TLS_MAX_TICKET_ROTATION_MS, false,
	       NULL),
	SK_DURATION("handshake_timeout", struct cfg_tls, handshake_timeout_ms,
		    1),
	SK_PATH("client_ca", struct cfg_tls, client_ca),
	SK_CUSTOM("verify", struct cfg_tls, verify, tls_verify),
	SK_UINT("verify_depth", struct cfg_tls, verify_depth, 1, 16),
	SK_WHOLE("client_cert_headers", tls_client_cert_headers),
	SK_UINT("hsts", struct cfg_tls, hsts, 0, UINT32_MAX),
	SK_END,
};
SCHEMA_TABLE_CHECK(tls_keys);

/* A cfg_tls holding every default; NULL (reported) without memory. */
static struct cfg_tls *tls_new(struct schema_ctx *c, const yaml_node_t *key)
{
	struct cfg_tls *t = schema_calloc(c, 1, sizeof(*t));

	if (!t)
		return NULL;
	t->line = (int)key->start_mark.line + 1;
	t->col = (int)key->start_mark.column + 1;
	t->min_version = 12;
	t->ticket_rotation_ms = 12u * 3600 * 1000;
	t->handshake_timeout_ms = 10000;
	t->verify = CFG_TLS_VERIFY_NONE;
	t->verify_depth = 4;
	t->subject_header = schema_strdup(c, TLS_DEFAULT_SUBJECT_HEADER);
	t->fingerprint_header =
		schema_strdup(c, TLS_DEFAULT_FINGERPRINT_HEADER);
	return t;
}

void config_tls_load(struct schema_ctx *c, struct cfg_tls **out,
		     yaml_node_t *key, yaml_node_t *v)
{
	struct cfg_tls *t;
	yaml_node_t *verify_key;
	bool has_ca;

	if (schema_is_false(v))
		return;
	t = tls_new(c, key);
	if (!t)
		return;
	*out = t;
	if (!schema_walk(c, v, tls_keys, "tls", t))
		return;
	/* Whether client_ca is written, not stored: a bad path is its own
	 * error and must not make verify: one too. */
	has_ca = schema_get(c, v, "client_ca", NULL) != NULL;
	if (!schema_get(c, v, "verify", &verify_key))
		t->verify = t->client_ca ? CFG_TLS_VERIFY_REQUIRED
					 : CFG_TLS_VERIFY_NONE;
	else if (!has_ca)
		schema_error(c, verify_key,
			     "'verify' is only valid with 'client_ca'");
}

void config_tls_free(struct cfg_tls *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->ncerts; i++) {
		free(t->certs[i].cert);
		free(t->certs[i].key);
	}
	free(t->certs);
	free(t->ciphers);
	free(t->client_ca);
	free(t->subject_header);
	free(t->fingerprint_header);
	free(t);
}

/* ---- backend tls: ----------------------------------------------------- */

/* ca_file: system | an absolute path. */
static void upstream_ca_file(struct schema_ctx *c, const char *key,
			     yaml_node_t *v, void *field)
{
	const char *s = schema_scalar(v);

	if (!s || schema_is_null(v) || (strcmp(s, "system") && *s != '/'))
		schema_error(c, v, "'%s' must be system or an absolute path",
			     key);
	else
		schema_string(c, key, v, field);
}

/* sni: a host name, or "" to send none. */
static void upstream_sni(struct schema_ctx *c, const char *key, yaml_node_t *v,
			 void *field)
{
	const char *s = schema_scalar(v);
	char **out = field, *copy;

	if (!s || schema_is_null(v) ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyz"
		      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") != strlen(s)) {
		schema_error(c, v, "'%s' must be a host name or \"\" for none",
			     key);
		return;
	}
	copy = schema_strdup(c, s);
	if (!copy)
		return;
	free(*out);
	*out = copy;
}

static const struct schema_key upstream_tls_keys[] = {
	SK_BOOL("verify", struct cfg_upstream_tls, verify),
	SK_CUSTOM("ca_file", struct cfg_upstream_tls, ca_file,
		  upstream_ca_file),
	SK_CUSTOM("sni", struct cfg_upstream_tls, sni, upstream_sni),
	SK_PATH("cert", struct cfg_upstream_tls, cert),
	SK_PATH("key", struct cfg_upstream_tls, key),
	SK_CUSTOM("min_version", struct cfg_upstream_tls, min_version,
		  tls_min_version),
	SK_END,
};
SCHEMA_TABLE_CHECK(upstream_tls_keys);

void config_upstream_tls_load(struct schema_ctx *c,
			      struct cfg_upstream_tls **out, yaml_node_t *key,
			      yaml_node_t *v)
{
	struct cfg_upstream_tls *t;
	const char *s = schema_scalar(v);
	bool on;

	if (schema_is_false(v))
		return;
	if (s && schema_bool(s, &on) < 0) {
		schema_error(c, v, "'tls' must be a mapping, true or false");
		return;
	}
	t = schema_calloc(c, 1, sizeof(*t));
	if (!t)
		return;
	*out = t;
	t->line = (int)key->start_mark.line + 1;
	t->col = (int)key->start_mark.column + 1;
	t->verify = true;
	t->ca_file = schema_strdup(c, "system");
	t->min_version = 12;
	if (s) /* tls: true: every default */
		return;
	if (!schema_walk(c, v, upstream_tls_keys, "tls", t))
		return;
	/* Written, not stored: a bad path is reported once, on its own. */
	if ((schema_get(c, v, "cert", NULL) != NULL) !=
	    (schema_get(c, v, "key", NULL) != NULL))
		schema_error(c, key,
			     "tls: 'cert' and 'key' must be given together");
}

void config_upstream_tls_free(struct cfg_upstream_tls *t)
{
	if (!t)
		return;
	free(t->ca_file);
	free(t->sni);
	free(t->cert);
	free(t->key);
	free(t);
}
