/*
 * schema.c: error collection and the table-driven walk of YAML mappings.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_int.h"
#include "config/schema.h"

/*
 * Errors are kept until the walk is over so that they can be sorted by
 * position: the loader visits sections in dependency order (defaults,
 * backends, listeners), not in the order of the file.  A pathological file
 * cannot make us hold more than this; the rest are only counted.
 */
#define SCHEMA_KEEP_ERRORS 4096

#define SUGGEST_MAX_LEN 64 /* longer unknown keys get no "did you mean" */

struct schema_error {
	int line, col; /* 1-based; 0 when the error has no position */
	size_t seq;    /* order of discovery, keeps the sort stable */
	char *msg;     /* "FILE:LINE:COL: message", owned */
};

void schema_init(struct schema_ctx *c, const char *path, yaml_document_t *doc)
{
	memset(c, 0, sizeof(*c));
	c->path = path;
	c->doc = doc;
}

static int schema_error_cmp(const void *a, const void *b)
{
	const struct schema_error *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

size_t schema_flush(struct schema_ctx *c, struct config_errors *errs)
{
	size_t i, n = c->nerrs + c->ndropped;

	if (c->nerrs > 1)
		qsort(c->errs, c->nerrs, sizeof(*c->errs), schema_error_cmp);
	for (i = 0; i < c->nerrs; i++) {
		if (errs && errs->count < CONFIG_MAX_ERRORS)
			errs->msgs[errs->count] = c->errs[i].msg;
		else
			free(c->errs[i].msg);
		if (errs)
			errs->count++;
	}
	if (errs)
		errs->count += c->ndropped;
	free(c->errs);
	c->errs = NULL;
	c->nerrs = c->cap = c->ndropped = 0;
	return n;
}

/* Keep msg (owned) found at line/col; count it only if we cannot. */
static void schema_push(struct schema_ctx *c, int line, int col, char *msg)
{
	struct schema_error *e;
	size_t cap;

	if (msg && c->nerrs == c->cap && c->cap < SCHEMA_KEEP_ERRORS) {
		cap = c->cap ? c->cap * 2 : 16;
		e = realloc(c->errs, cap * sizeof(*e));
		if (e) {
			c->errs = e;
			c->cap = cap;
		}
	}
	if (!msg || c->nerrs == c->cap) {
		free(msg);
		c->ndropped++;
		return;
	}
	e = &c->errs[c->nerrs];
	e->line = line;
	e->col = col;
	e->seq = c->nerrs + c->ndropped;
	e->msg = msg;
	c->nerrs++;
}

static void schema_verror_at(struct schema_ctx *c, int line, int col,
			     const char *fmt, va_list ap)
{
	char *text, *msg;
	int rc;

	if (vasprintf(&text, fmt, ap) < 0) {
		c->is_oom = true;
		schema_push(c, line, col, NULL);
		return;
	}
	if (line > 0)
		rc = asprintf(&msg, "%s:%d:%d: %s", c->path, line, col, text);
	else
		rc = asprintf(&msg, "%s: %s", c->path, text);
	free(text);
	if (rc < 0) {
		c->is_oom = true;
		msg = NULL;
	}
	schema_push(c, line, col, msg);
}

void schema_error_at(struct schema_ctx *c, int line, int col, const char *fmt,
		     ...)
{
	va_list ap;

	va_start(ap, fmt);
	schema_verror_at(c, line, col, fmt, ap);
	va_end(ap);
}

void schema_error(struct schema_ctx *c, const yaml_node_t *n, const char *fmt,
		  ...)
{
	va_list ap;
	int line = 0, col = 0;

	if (n) {
		line = (int)n->start_mark.line + 1;
		col = (int)n->start_mark.column + 1;
	}
	va_start(ap, fmt);
	schema_verror_at(c, line, col, fmt, ap);
	va_end(ap);
}

char *schema_strdup(struct schema_ctx *c, const char *s)
{
	size_t len = s != NULL ? strlen(s) + 1 : 0;
	char *p;

	if (s == NULL)
		return NULL; /* an earlier failure, already reported */
	c->nbytes += len;
	if (c->nbytes > SCHEMA_MAX_BYTES) {
		if (!c->is_too_big)
			schema_error_at(c, 1, 1,
					"the configuration expands to more than "
					"%d MiB of text",
					SCHEMA_MAX_BYTES >> 20);
		c->is_too_big = true;
		return NULL;
	}
	p = strdup(s);
	if (!p && !c->is_oom) {
		c->is_oom = true;
		schema_error_at(c, 0, 0, "out of memory");
	}
	return p;
}

void *schema_calloc(struct schema_ctx *c, size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p && !c->is_oom) {
		c->is_oom = true;
		schema_error_at(c, 0, 0, "out of memory");
	}
	return p;
}

yaml_node_t *schema_node(struct schema_ctx *c, int id)
{
	return yaml_document_get_node(c->doc, id);
}

const char *schema_scalar(const yaml_node_t *n)
{
	if (!n || n->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)n->data.scalar.value;
}

bool schema_is_null(const yaml_node_t *n)
{
	const char *s = schema_scalar(n);

	if (!s || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") ||
	       !strcmp(s, "Null") || !strcmp(s, "NULL");
}

bool schema_is_false(const yaml_node_t *v)
{
	const char *s = schema_scalar(v);
	bool b;

	if (!s)
		return false;
	return schema_is_null(v) || (schema_bool(s, &b) == 0 && !b);
}

int schema_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on"};
	static const char *const no[] = {"false", "no", "off"};
	size_t i;

	for (i = 0; i < 3; i++) {
		if (!strcasecmp(s, yes[i]) || !strcasecmp(s, no[i])) {
			*out = !strcasecmp(s, yes[i]);
			return 0;
		}
	}
	return -1;
}

int schema_string(struct schema_ctx *c, const char *key, yaml_node_t *v,
		  char **out)
{
	const char *s = schema_scalar(v);
	char *copy;

	if (!s) {
		schema_error(c, v, "'%s' must be a string", key);
		return -1;
	}
	if (!*s || schema_is_null(v)) {
		schema_error(c, v, "'%s' must not be empty", key);
		return -1;
	}
	copy = schema_strdup(c, s);
	if (!copy)
		return -1;
	free(*out);
	*out = copy;
	return 0;
}

yaml_node_t *schema_get(struct schema_ctx *c, yaml_node_t *n, const char *name,
			yaml_node_t **key)
{
	yaml_node_t *k;
	const char *s;
	long i;

	if (!n || n->type != YAML_MAPPING_NODE)
		return NULL;
	for (i = 0; i < SCHEMA_PAIRS(n); i++) {
		k = schema_node(c, SCHEMA_PAIR(n, i)->key);
		s = schema_scalar(k);
		if (s && !strcmp(s, name)) {
			if (key)
				*key = k;
			return schema_node(c, SCHEMA_PAIR(n, i)->value);
		}
	}
	return NULL;
}

/* Levenshtein distance of two short strings (both < SUGGEST_MAX_LEN). */
static size_t schema_distance(const char *a, const char *b)
{
	size_t row[SUGGEST_MAX_LEN + 1], i, j, diag, up, lb = strlen(b);

	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; a[i - 1]; i++) {
		diag = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			up = row[j];
			row[j] = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < row[j])
				row[j] = up + 1;
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			diag = up;
		}
	}
	return row[lb];
}

/* The known key closest to name, if close enough to be a typo. */
static const char *schema_suggest(const struct schema_key *keys,
				  const char *name)
{
	const char *best = NULL;
	size_t d, best_d = 3; /* only distances of 2 or less are typos */

	if (strlen(name) >= SUGGEST_MAX_LEN)
		return NULL;
	for (; keys->name; keys++) {
		if (!strcasecmp(keys->name, name))
			return keys->name;
		d = schema_distance(name, keys->name);
		if (d < best_d) {
			best_d = d;
			best = keys->name;
		}
	}
	return best;
}

static void schema_unknown(struct schema_ctx *c, const yaml_node_t *k,
			   const char *name, const struct schema_key *keys)
{
	const char *hint = schema_suggest(keys, name);

	if (hint)
		schema_error(c, k, "unknown key '%s'; did you mean '%s'?", name,
			     hint);
	else
		schema_error(c, k, "unknown key '%s'", name);
}

/*
 * A key of a feature this version does not implement (portcullis.yaml(5),
 * NOT SUPPORTED BY THIS VERSION) may still be written in its "off" form
 * (proxy_protocol: false, allow: []): it asks for nothing we lack.  Anything
 * else must fail rather than be ignored.
 */
static bool schema_is_off(const yaml_node_t *v)
{
	const char *s = schema_scalar(v);

	if (v->type == YAML_SEQUENCE_NODE)
		return SCHEMA_ITEMS(v) == 0;
	if (v->type == YAML_MAPPING_NODE)
		return SCHEMA_PAIRS(v) == 0;
	return !strcmp(s, "0") || schema_is_false(v);
}

/* "1g" "16k" "512": how a byte count reads best in a message. */
static void schema_fmt_size(char *buf, size_t len, uint64_t v)
{
	static const char units[] = "gmk";
	int shift;

	for (shift = 30; shift > 0; shift -= 10) {
		if (v && v % (1ULL << shift) == 0) {
			snprintf(buf, len, "%llu%c",
				 (unsigned long long)(v >> shift),
				 units[(30 - shift) / 10]);
			return;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* "1h" "2m" "5s" "250ms": how a duration reads best in a message. */
static void schema_fmt_duration(char *buf, size_t len, uint64_t ms)
{
	if (ms && ms % 3600000 == 0)
		snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms && ms % 60000 == 0)
		snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
	else if (ms && ms % 1000 == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%llums", (unsigned long long)ms);
}

static void schema_fmt(char *buf, size_t len, enum schema_type t, uint64_t v)
{
	if (t == SCHEMA_DURATION)
		schema_fmt_duration(buf, len, v);
	else if (t == SCHEMA_SIZE32 || t == SCHEMA_SIZE64)
		schema_fmt_size(buf, len, v);
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* Report v outside [min, max] of k; 0 if it is inside. */
static int schema_range(struct schema_ctx *c, const struct schema_key *k,
			const yaml_node_t *n, uint64_t v)
{
	char lo[32], hi[32];
	uint64_t top = k->type == SCHEMA_SIZE64 ? UINT64_MAX : UINT32_MAX;

	if (v >= k->min && v <= k->max)
		return 0;
	schema_fmt(lo, sizeof(lo), k->type, k->min);
	schema_fmt(hi, sizeof(hi), k->type, k->max);
	if (v < k->min && k->max >= top)
		schema_error(c, n, "'%s' must be at least %s", k->name, lo);
	else
		schema_error(c, n, "'%s' must be between %s and %s", k->name,
			     lo, hi);
	return -1;
}

/*
 * Did a duration or size fail only for being too large?  It did when it
 * reads as digits and one of the units: "99999999h".
 */
static bool schema_is_too_large(const char *s, enum schema_type t)
{
	static const char *const dunits[] = {"", "ms", "s", "m", "h", NULL};
	static const char *const sunits[] = {"",  "k", "K", "m",
					     "M", "g", "G", NULL};
	const char *const *u = t == SCHEMA_DURATION ? dunits : sunits;
	size_t n = strspn(s, "0123456789");

	for (; n && *u; u++)
		if (!strcmp(s + n, *u))
			return true;
	return false;
}

/* Parse s as a number of k's type; -1 if it is not one. */
static int schema_parse_number(const struct schema_key *k, const char *s,
			       uint64_t *n)
{
	uint32_t ms;

	switch (k->type) {
	case SCHEMA_DURATION:
		if (config_parse_duration(s, &ms) < 0)
			return -1;
		*n = ms;
		return 0;
	case SCHEMA_UINT32:
		if (config_parse_uint(s, n) == 0)
			return 0;
		if (errno != ERANGE)
			return -1;
		*n = UINT64_MAX; /* an integer all the same: a range error */
		return 0;
	default:
		return config_parse_size(s, n);
	}
}

static void schema_number_error(struct schema_ctx *c,
				const struct schema_key *k,
				const yaml_node_t *v, const char *s)
{
	if (k->type != SCHEMA_UINT32 && schema_is_too_large(s, k->type))
		schema_error(c, v, "'%s' is too large", k->name);
	else if (k->type == SCHEMA_DURATION)
		schema_error(c, v,
			     "'%s' must be a duration such as 500ms, 2s, 1m "
			     "or 1h",
			     k->name);
	else if (k->type == SCHEMA_UINT32)
		schema_error(c, v, "'%s' must be an integer", k->name);
	else
		schema_error(c, v,
			     "'%s' must be a size such as 512, 16k, 10m or 1g",
			     k->name);
}

static void schema_number(struct schema_ctx *c, const struct schema_key *k,
			  yaml_node_t *v, void *field)
{
	const char *s = schema_scalar(v);
	uint64_t n;

	if (!s)
		s = "";
	if (schema_parse_number(k, s, &n) < 0) {
		schema_number_error(c, k, v, s);
		return;
	}
	if (schema_range(c, k, v, n) < 0)
		return;
	if (k->type == SCHEMA_SIZE64)
		*(uint64_t *)field = n;
	else
		*(uint32_t *)field = (uint32_t)n;
}

/* Check and store value v of key k (the key node, for positions). */
static void schema_store(struct schema_ctx *c, const struct schema_key *k,
			 const yaml_node_t *key, yaml_node_t *v, void *obj)
{
	void *field = (char *)obj + k->off;
	const char *s = schema_scalar(v);

	switch (k->type) {
	case SCHEMA_STRING:
		schema_string(c, k->name, v, field);
		break;
	case SCHEMA_PATH:
		if (s && *s && *s != '/' && !schema_is_null(v))
			schema_error(c, v, "'%s' must be an absolute path",
				     k->name);
		else
			schema_string(c, k->name, v, field);
		break;
	case SCHEMA_BOOL:
		if (!s || schema_bool(s, field) < 0)
			schema_error(c, v, "'%s' must be true or false",
				     k->name);
		break;
	case SCHEMA_UINT32:
	case SCHEMA_DURATION:
	case SCHEMA_SIZE32:
	case SCHEMA_SIZE64:
		schema_number(c, k, v, field);
		break;
	case SCHEMA_CUSTOM:
		k->fn(c, k->name, v, field);
		break;
	case SCHEMA_UNSUPPORTED:
		if (!schema_is_off(v))
			schema_error(c, key,
				     "'%s' is not supported by this version of "
				     "portcullis",
				     k->name);
		break;
	case SCHEMA_LATER:
		break;
	}
}

static const struct schema_key *schema_find(const struct schema_key *keys,
					    const char *name)
{
	for (; keys->name; keys++)
		if (!strcmp(keys->name, name))
			return keys;
	return NULL;
}

static const char *schema_prefix(const char *what)
{
	return what ? what : "";
}

bool schema_walk(struct schema_ctx *c, yaml_node_t *n,
		 const struct schema_key *keys, const char *what, void *obj)
{
	const yaml_node_t *seen[SCHEMA_MAX_KEYS] = {0};
	const struct schema_key *k;
	yaml_node_t *key;
	const char *name, *sep = what ? ": " : "";
	long i;

	if (!n || n->type != YAML_MAPPING_NODE) {
		schema_error(c, n, "%s%sexpected a mapping",
			     schema_prefix(what), sep);
		return false;
	}
	for (i = 0; i < SCHEMA_PAIRS(n); i++) {
		key = schema_node(c, SCHEMA_PAIR(n, i)->key);
		name = schema_scalar(key);
		if (!name) {
			schema_error(c, key, "mapping keys must be strings");
			continue;
		}
		k = schema_find(keys, name);
		if (!k) {
			schema_unknown(c, key, name, keys);
			continue;
		}
		if (seen[k - keys]) {
			schema_error(c, key, "duplicate key '%s'", name);
			continue;
		}
		seen[k - keys] = key;
		schema_store(c, k, key,
			     schema_node(c, SCHEMA_PAIR(n, i)->value), obj);
	}
	for (k = keys; k->name; k++)
		if (k->is_required && !seen[k - keys])
			schema_error(c, n, "%s%smissing required key '%s'",
				     schema_prefix(what), sep, k->name);
	return true;
}
