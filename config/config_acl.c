/*
 * config_acl.c: allow: and deny: of listeners and routes.
 *
 * A list holds addresses and CIDRs ("10.0.0.0/8", "::1") and list files
 * ("file:/etc/portcullis/deny.txt", or { file: /path }): one address or
 * CIDR a line, '#' comments, blank lines.  Files are read here, when the
 * config is loaded, so a reload (which loads the config afresh) reads them
 * again.  Each list becomes one iptree; an error anywhere in it (its
 * files included) leaves it unbuilt and fails the load.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cidr.h"
#include "common/iptree.h"
#include "config/config_int.h"

#define ACL_FILE_PREFIX     "file:"
#define ACL_FILE_MAX_ERRORS 10 /* per file; the rest are counted */
#define ACL_SHOW_MAX        64 /* characters of a bad entry quoted */

/* The key node whose value is v (for the position of allow:), or v. */
static const yaml_node_t *acl_key_node(struct schema_ctx *c, yaml_node_t *v)
{
	yaml_document_t *d = c->doc;
	int id = (int)(v - d->nodes.start) + 1;
	yaml_node_t *n;
	long i;

	for (n = d->nodes.start; n < d->nodes.top; n++) {
		if (n->type != YAML_MAPPING_NODE)
			continue;
		for (i = 0; i < SCHEMA_PAIRS(n); i++)
			if (SCHEMA_PAIR(n, i)->value == id)
				return schema_node(c, SCHEMA_PAIR(n, i)->key);
	}
	return v;
}

/* Cut s at '#' and trim blanks around it, in place. */
static char *acl_trim(char *s)
{
	char *end = strchr(s, '#');

	if (!end)
		end = s + strlen(s);
	while (end > s && strchr(" \t\r\n\f\v", end[-1]))
		end--;
	*end = '\0';
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

enum acl_line {
	ACL_LINE_OK,	  /* an entry, a comment or blank */
	ACL_LINE_BAD,	  /* *bad is not an address or CIDR */
	ACL_LINE_BINARY,  /* a NUL byte: not a text file */
	ACL_LINE_FAILED,  /* the builder failed: *bad is strerror */
};

/* Add the entry on line (len bytes, from getline) to b. */
static enum acl_line acl_file_line(struct iptree_builder *b, char *line,
				   size_t len, const char **bad)
{
	struct cidr cd;
	char *s;

	if (memchr(line, '\0', len))
		return ACL_LINE_BINARY;
	s = acl_trim(line);
	if (*s == '\0')
		return ACL_LINE_OK;
	*bad = s;
	if (cidr_parse(s, &cd) < 0)
		return ACL_LINE_BAD;
	if (iptree_builder_add_cidr(b, &cd) < 0) {
		*bad = strerror(errno);
		return ACL_LINE_FAILED;
	}
	return ACL_LINE_OK;
}

/*
 * Open the list file path for reading; NULL (reported) unless it is a
 * regular file: a FIFO or a device (/dev/zero) would hang the load.
 */
static FILE *acl_open(struct schema_ctx *c, const char *key,
		      yaml_node_t *item, const char *path)
{
	struct stat st;
	FILE *f;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0 || fstat(fd, &st) < 0) {
		schema_error(c, item, "%s: cannot read %s: %s", key, path,
			     strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		schema_error(c, item, "%s: %s is not a regular file", key,
			     path);
		goto fail;
	}
	f = fdopen(fd, "r");
	if (!f) {
		schema_error(c, item, "%s: cannot read %s: %s", key, path,
			     strerror(errno));
		goto fail;
	}
	return f;
fail:
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* Read the list file path, named by item of key, into b. */
static void acl_file(struct schema_ctx *c, const char *key, yaml_node_t *item,
		     const char *path, struct iptree_builder *b)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0, lineno = 0, nbad = 0;
	ssize_t len;
	const char *bad;

	if (path[0] != '/') {
		schema_error(c, item, "%s: '%s' must be an absolute path", key,
			     path);
		return;
	}
	f = acl_open(c, key, item, path);
	if (!f)
		return;
	while ((len = getline(&line, &cap, f)) >= 0) {
		enum acl_line r = acl_file_line(b, line, (size_t)len, &bad);

		lineno++;
		if (r == ACL_LINE_OK || ++nbad > ACL_FILE_MAX_ERRORS)
			continue;
		if (r == ACL_LINE_BINARY)
			schema_error(c, item,
				     "%s: %s:%zu: a NUL byte: not a text file",
				     key, path, lineno);
		else if (r == ACL_LINE_FAILED)
			schema_error(c, item, "%s: %s:%zu: %s", key, path,
				     lineno, bad);
		else
			schema_error(c, item,
				     "%s: %s:%zu: '%.*s' is not an address or "
				     "CIDR",
				     key, path, lineno, ACL_SHOW_MAX, bad);
	}
	if (ferror(f))
		schema_error(c, item, "%s: cannot read %s: %s", key, path,
			     strerror(errno));
	else if (nbad > ACL_FILE_MAX_ERRORS)
		schema_error(c, item, "%s: %s: %zu more bad lines", key, path,
			     nbad - ACL_FILE_MAX_ERRORS);
	free(line);
	fclose(f);
}

/* The path of a list file entry ("file:/p", "file: /p", {file: /p}), or
 * NULL if item is not one. */
static const char *acl_file_path(struct schema_ctx *c, yaml_node_t *item)
{
	const char *s = schema_scalar(item);
	yaml_node_t *v;

	if (s) {
		if (strncmp(s, ACL_FILE_PREFIX, strlen(ACL_FILE_PREFIX)) != 0)
			return NULL;
		s += strlen(ACL_FILE_PREFIX);
		return s + strspn(s, " \t");
	}
	if (item->type != YAML_MAPPING_NODE || SCHEMA_PAIRS(item) != 1 ||
	    !(v = schema_get(c, item, "file", NULL)))
		return NULL;
	return schema_scalar(v);
}

/* One item of the list: an address, a CIDR or a list file. */
static void acl_item(struct schema_ctx *c, const char *key, yaml_node_t *item,
		     struct iptree_builder *b)
{
	const char *s = schema_scalar(item), *path = acl_file_path(c, item);
	struct cidr cd;

	if (path) {
		acl_file(c, key, item, path, b);
		return;
	}
	if (!s || schema_is_null(item)) {
		schema_error(c, item,
			     "'%s' must list addresses, CIDRs or file:/path "
			     "entries",
			     key);
		return;
	}
	if (cidr_parse(s, &cd) < 0)
		schema_error(c, item,
			     "'%.*s' is not an address, CIDR (like "
			     "10.0.0.0/8 or ::1/128) or file:/path",
			     ACL_SHOW_MAX, s);
	else if (iptree_builder_add_cidr(b, &cd) < 0)
		schema_error(c, item, "%s: %s", key, strerror(errno));
}

/* The list v of key into *out: NULL for an empty list. */
static void acl_load(struct schema_ctx *c, const char *key, yaml_node_t *v,
		     struct iptree **out)
{
	size_t nerrs = c->nerrs + c->ndropped;
	struct iptree_builder *b;
	long i;

	iptree_free(*out);
	*out = NULL;
	if (v->type != YAML_SEQUENCE_NODE) {
		schema_error(c, v,
			     "'%s' must be a list of addresses, CIDRs or "
			     "file:/path entries",
			     key);
		return;
	}
	if (SCHEMA_ITEMS(v) == 0)
		return;
	b = iptree_builder_new();
	if (!b) {
		c->is_oom = true;
		schema_error(c, v, "out of memory");
		return;
	}
	for (i = 0; i < SCHEMA_ITEMS(v); i++)
		acl_item(c, key, SCHEMA_ITEM(c, v, i), b);
	if (c->nerrs + c->ndropped != nerrs) {
		iptree_builder_free(b);
		return;
	}
	/* An allow: whose files are all empty admits nobody: fail closed. */
	*out = iptree_build(b);
	if (!*out) {
		c->is_oom = true;
		schema_error(c, v, "%s: out of memory", key);
	}
}

static void acl_pos(struct schema_ctx *c, struct cfg_acl *a, yaml_node_t *v)
{
	const yaml_node_t *k = acl_key_node(c, v);

	a->line = (int)k->start_mark.line + 1;
	a->col = (int)k->start_mark.column + 1;
}

void config_acl_allow(struct schema_ctx *c, const char *key, yaml_node_t *v,
		      void *field)
{
	struct cfg_acl *a =
		(struct cfg_acl *)((char *)field - offsetof(struct cfg_acl, allow));

	acl_pos(c, a, v);
	acl_load(c, key, v, &a->allow);
}

void config_acl_deny(struct schema_ctx *c, const char *key, yaml_node_t *v,
		     void *field)
{
	struct cfg_acl *a =
		(struct cfg_acl *)((char *)field - offsetof(struct cfg_acl, deny));

	if (a->line == 0)
		acl_pos(c, a, v);
	acl_load(c, key, v, &a->deny);
}

void config_acl_free(struct cfg_acl *a)
{
	iptree_free(a->allow);
	iptree_free(a->deny);
	a->allow = a->deny = NULL;
}
