/*
 * config_hygiene.c: the request hygiene keys of issue #12, those that
 * access control depends on: a route's methods: and a listener's
 * underscores_in_headers:, ambiguous_requests: and normalize_path:.
 *
 * What they do to requests is in worker/ (method.c, path.c, http.c);
 * here only their values are read and checked.
 */
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"

/*
 * Bounds on methods: so that the Allow value of any route fits in
 * METHOD_ALLOW_MAX (worker/method.h): 32 * (24 + ", ") + "HEAD, " < 1024.
 */
#define HYGIENE_MAX_METHODS    32
#define HYGIENE_MAX_METHOD_LEN 24

/* ---- methods: --------------------------------------------------------- */

static bool hygiene_has_lower(const char *s)
{
	for (; *s; s++)
		if (*s >= 'a' && *s <= 'z')
			return true;
	return false;
}

/*
 * A method as configured: a token (RFC 9110 §9.1), written in capitals
 * since methods compare case-sensitively and "get" is surely meant as
 * GET.  Returns true if it is one; reports at item otherwise.
 */
static bool hygiene_method_ok(struct schema_ctx *c, yaml_node_t *item,
			      const char *s)
{
	char up[HYGIENE_MAX_METHOD_LEN + 1];
	size_t i, len = strlen(s);

	if (!config_is_token(s)) {
		schema_error(c, item,
			     "'%s' is not a valid method name (a token such "
			     "as GET, RFC 9110 section 9.1)",
			     s);
		return false;
	}
	if (len > HYGIENE_MAX_METHOD_LEN) {
		schema_error(c, item,
			     "method '%s' is longer than %d characters", s,
			     HYGIENE_MAX_METHOD_LEN);
		return false;
	}
	if (hygiene_has_lower(s)) {
		for (i = 0; i <= len; i++)
			up[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32
								  : s[i]);
		schema_error(c, item,
			     "method '%s' is not in capitals (methods are "
			     "case-sensitive); did you mean '%s'?",
			     s, up);
		return false;
	}
	return true;
}

/* One item of methods:, added to r unless invalid or a duplicate. */
static void hygiene_method(struct schema_ctx *c, struct cfg_route *r,
			   yaml_node_t *item)
{
	const char *s = schema_scalar(item);
	size_t i;

	if (!s || schema_is_null(item)) {
		schema_error(c, item,
			     "'methods' must be a method or a list of methods");
		return;
	}
	if (!hygiene_method_ok(c, item, s))
		return;
	for (i = 0; i < r->nmethods; i++) {
		if (!strcmp(r->methods[i], s)) {
			schema_error(c, item, "method '%s' is listed twice", s);
			return;
		}
	}
	r->methods[r->nmethods] = schema_strdup(c, s);
	if (r->methods[r->nmethods])
		r->nmethods++;
}

void config_route_methods(struct schema_ctx *c, const char *key, yaml_node_t *v,
			  void *field)
{
	struct cfg_route *r = field;
	size_t i,
		n = v->type == YAML_SEQUENCE_NODE ? (size_t)SCHEMA_ITEMS(v) : 1;

	if (v->type == YAML_MAPPING_NODE) {
		schema_error(c, v, "'%s' must be a method or a list of methods",
			     key);
		return;
	}
	if (n == 0) {
		schema_error(c, v, "'%s' must list at least one method", key);
		return;
	}
	if (n > HYGIENE_MAX_METHODS) {
		schema_error(c, v, "'%s' lists more than %d methods", key,
			     HYGIENE_MAX_METHODS);
		return;
	}
	r->methods = schema_calloc(c, n, sizeof(char *));
	if (!r->methods)
		return;
	if (v->type == YAML_SCALAR_NODE) {
		hygiene_method(c, r, v);
		return;
	}
	for (i = 0; i < n; i++)
		hygiene_method(c, r, SCHEMA_ITEM(c, v, (long)i));
}

void config_route_methods_free(struct cfg_route *r)
{
	for (size_t i = 0; i < r->nmethods; i++)
		free(r->methods[i]);
	free(r->methods);
	r->methods = NULL;
	r->nmethods = 0;
}

/* ---- listener keywords ------------------------------------------------ */

/* The index of v's text in words (NULL-terminated), or -1. */
static int hygiene_word(const yaml_node_t *v, const char *const *words)
{
	const char *s = schema_scalar(v);

	for (int i = 0; s && words[i]; i++)
		if (!strcmp(s, words[i]))
			return i;
	return -1;
}

void config_underscores(struct schema_ctx *c, const char *key, yaml_node_t *v,
			void *field)
{
	static const char *const words[] = {"drop", "reject", "allow", NULL};
	static const enum cfg_underscores vals[] = {CFG_UNDERSCORES_DROP,
						    CFG_UNDERSCORES_REJECT,
						    CFG_UNDERSCORES_ALLOW};
	int i = hygiene_word(v, words);

	if (i < 0)
		schema_error(c, v, "'%s' must be drop, reject or allow", key);
	else
		*(enum cfg_underscores *)field = vals[i];
}

void config_ambiguous(struct schema_ctx *c, const char *key, yaml_node_t *v,
		      void *field)
{
	static const char *const words[] = {"close", "reject", NULL};
	static const enum cfg_ambiguous vals[] = {CFG_AMBIGUOUS_CLOSE,
						  CFG_AMBIGUOUS_REJECT};
	int i = hygiene_word(v, words);

	if (i < 0)
		schema_error(c, v, "'%s' must be close or reject", key);
	else
		*(enum cfg_ambiguous *)field = vals[i];
}

void config_normalize(struct schema_ctx *c, const char *key, yaml_node_t *v,
		      void *field)
{
	static const char *const words[] = {"match", "forward", NULL};
	static const enum cfg_normalize vals[] = {CFG_NORMALIZE_MATCH,
						  CFG_NORMALIZE_FORWARD};
	int i = hygiene_word(v, words);

	if (i < 0)
		schema_error(c, v, "'%s' must be match or forward", key);
	else
		*(enum cfg_normalize *)field = vals[i];
}

void config_hygiene_tcp(struct schema_ctx *c, yaml_node_t *n)
{
	static const char *const http_only[] = {"underscores_in_headers",
						"ambiguous_requests",
						"normalize_path"};
	yaml_node_t *key;

	for (size_t i = 0; i < sizeof(http_only) / sizeof(http_only[0]); i++)
		if (schema_get(c, n, http_only[i], &key))
			schema_error(c, key,
				     "'%s' is only valid for http listeners",
				     http_only[i]);
}
