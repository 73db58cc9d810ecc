/*
 * schema.h: checking a libyaml document against tables of known keys.
 *
 * The config loader describes each mapping of portcullis.yaml as a table of
 * struct schema_key.  schema_walk() checks one mapping against its table
 * (unknown, unsupported, duplicate and missing keys; the type and range of
 * simple values) and stores the simple values into the object being built.
 * Every problem becomes one "FILE:LINE:COL: message" kept in the
 * schema_ctx; schema_flush() hands them, sorted by position, to the caller.
 *
 * Internal to config/: nothing outside this directory includes it.
 */
#ifndef PORTCULLIS_SCHEMA_H
#define PORTCULLIS_SCHEMA_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "config/config.h"

#define SCHEMA_MAX_KEYS 48 /* keys in one table, for the seen[] bitmap */

enum schema_type {
	SCHEMA_STRING,	    /* char *, non-empty; replaces (frees) the old */
	SCHEMA_PATH,	    /* char *, an absolute path */
	SCHEMA_BOOL,	    /* bool: true/false/yes/no/on/off */
	SCHEMA_UINT32,	    /* uint32_t integer in [min, max] */
	SCHEMA_DURATION,    /* uint32_t milliseconds in [min, max] */
	SCHEMA_SIZE32,	    /* uint32_t bytes in [min, max] */
	SCHEMA_SIZE64,	    /* uint64_t bytes in [min, max] */
	SCHEMA_CUSTOM,	    /* fn checks and stores the value */
	SCHEMA_LATER,	    /* known; the caller reads it after the walk */
	SCHEMA_UNSUPPORTED, /* a feature this version lacks: refused */
};

struct schema_ctx;

/* Check value v of key and store it at field (object + schema_key.off). */
typedef void schema_fn(struct schema_ctx *c, const char *key, yaml_node_t *v,
		       void *field);

struct schema_key {
	const char *name; /* NULL ends a table */
	enum schema_type type;
	size_t off;	   /* offset of the field in the object walked */
	uint64_t min, max; /* accepted range of numbers */
	bool is_required;  /* "missing required key" when absent */
	schema_fn *fn;	   /* SCHEMA_CUSTOM only */
};

/* Table entries; T is the struct walked, F the field (may be "a.b"). */
// clang-format off
#define SK_KEY(name, type, off, lo, hi, req, fn) {name, type, off, lo, hi, req, fn}
#define SK_STRING(name, T, F)         SK_KEY(name, SCHEMA_STRING, offsetof(T, F), 0, 0, false, NULL)
#define SK_PATH(name, T, F)           SK_KEY(name, SCHEMA_PATH, offsetof(T, F), 0, 0, false, NULL)
#define SK_BOOL(name, T, F)           SK_KEY(name, SCHEMA_BOOL, offsetof(T, F), 0, 0, false, NULL)
#define SK_UINT(name, T, F, lo, hi)   SK_KEY(name, SCHEMA_UINT32, offsetof(T, F), lo, hi, false, NULL)
#define SK_DURATION(name, T, F, lo)   SK_KEY(name, SCHEMA_DURATION, offsetof(T, F), lo, UINT32_MAX, false, NULL)
#define SK_SIZE64(name, T, F)         SK_KEY(name, SCHEMA_SIZE64, offsetof(T, F), 0, UINT64_MAX, false, NULL)
#define SK_CUSTOM(name, T, F, fn)     SK_KEY(name, SCHEMA_CUSTOM, offsetof(T, F), 0, 0, false, fn)
#define SK_WHOLE(name, fn)            SK_KEY(name, SCHEMA_CUSTOM, 0, 0, 0, false, fn) /* fn gets the object */
#define SK_LATER(name)                SK_KEY(name, SCHEMA_LATER, 0, 0, 0, false, NULL)
#define SK_REQUIRED(name)             SK_KEY(name, SCHEMA_LATER, 0, 0, 0, true, NULL)
#define SK_UNSUPPORTED(name)          SK_KEY(name, SCHEMA_UNSUPPORTED, 0, 0, 0, false, NULL)
#define SK_END                        SK_KEY(NULL, SCHEMA_LATER, 0, 0, 0, false, NULL)
// clang-format on

/* Put after a table: schema_walk() tracks at most SCHEMA_MAX_KEYS keys. */
#define SCHEMA_TABLE_CHECK(t)                                                  \
	_Static_assert(sizeof(t) / sizeof((t)[0]) <= SCHEMA_MAX_KEYS + 1,      \
		       #t " has too many keys")

struct schema_error;

struct schema_ctx {
	yaml_document_t *doc;	   /* borrowed: the document being checked */
	const char *path;	   /* borrowed: names the file in messages */
	struct schema_error *errs; /* found so far, in discovery order */
	size_t nerrs, cap;
	size_t ndropped; /* past SCHEMA_KEEP_ERRORS: counted only */
	bool is_oom;	 /* an allocation failed somewhere */
	size_t nbytes;	 /* copied by schema_strdup so far */
	bool is_too_big; /* past SCHEMA_MAX_BYTES: reported once */
};

/*
 * What one load may copy out of the document, in bytes: a bound on memory
 * however the text is expanded (aliases, defaults copied into every
 * listener and route).  A real configuration needs a small fraction.
 */
#define SCHEMA_MAX_BYTES (32 << 20)

/* Start collecting errors for the file named path (borrowed). */
void schema_init(struct schema_ctx *c, const char *path, yaml_document_t *doc);

/*
 * Append the errors found, sorted by position, to errs (which may be NULL)
 * and forget them.  Returns how many there were.
 */
size_t schema_flush(struct schema_ctx *c, struct config_errors *errs);

/* Report a problem at node n, or at a 1-based line/col (0 = no position). */
void schema_error(struct schema_ctx *c, const yaml_node_t *n, const char *fmt,
		  ...) __attribute__((format(printf, 3, 4)));
void schema_error_at(struct schema_ctx *c, int line, int col, const char *fmt,
		     ...) __attribute__((format(printf, 4, 5)));

/*
 * Allocation that reports "out of memory" itself.  NULL on failure.
 * schema_strdup also charges SCHEMA_MAX_BYTES and reports when it is
 * exceeded; it returns NULL for s NULL (a failure already reported).
 */
char *schema_strdup(struct schema_ctx *c, const char *s);
void *schema_calloc(struct schema_ctx *c, size_t n, size_t size);

/*
 * Check mapping n against keys and store its simple values into obj.
 * what names the mapping in messages ("listener"; NULL at the top level).
 * Returns false (after reporting) if n is not a mapping at all.
 */
bool schema_walk(struct schema_ctx *c, yaml_node_t *n,
		 const struct schema_key *keys, const char *what, void *obj);

/* The value of key name in mapping n (first one), or NULL; *key gets the
 * key node when key is not NULL. */
yaml_node_t *schema_get(struct schema_ctx *c, yaml_node_t *n, const char *name,
			yaml_node_t **key);

/* Node number id of the document (pair keys, sequence items). */
yaml_node_t *schema_node(struct schema_ctx *c, int id);

/* The text of a scalar node, or NULL if n is not a scalar. */
const char *schema_scalar(const yaml_node_t *n);

/* true if n is a plain empty, "~" or "null" scalar: a key with no value. */
bool schema_is_null(const yaml_node_t *n);

/*
 * true if n is null or a false boolean (false/no/off, ~, empty): an
 * optional section written in its "off" form (tls: off).
 */
bool schema_is_false(const yaml_node_t *n);

/* Parse a YAML 1.1 boolean (true/false/yes/no/on/off). 0 or -1. */
int schema_bool(const char *s, bool *out);

/* Replace *out with a copy of the non-empty scalar v; reports
 * "'key' must be a string" / "must not be empty".  0 or -1. */
int schema_string(struct schema_ctx *c, const char *key, yaml_node_t *v,
		  char **out);

/* Walk helpers over the pairs of a mapping and the items of a sequence. */
#define SCHEMA_PAIRS(n)                                                        \
	((n)->data.mapping.pairs.top - (n)->data.mapping.pairs.start)
#define SCHEMA_PAIR(n, i) (&(n)->data.mapping.pairs.start[i])
#define SCHEMA_ITEMS(n)                                                        \
	((n)->data.sequence.items.top - (n)->data.sequence.items.start)
#define SCHEMA_ITEM(c, n, i) schema_node(c, (n)->data.sequence.items.start[i])

#endif
