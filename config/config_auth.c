/*
 * config_auth.c: the auth: section of a route (HTTP Basic authentication).
 *
 * The users file is read here, while the configuration is loaded: in the
 * master, as root, before the workers fork, so that it may be readable by
 * root alone (like private keys) and a reload re-reads it.  Its problems
 * become errors of the configuration, located at the users_file value,
 * each naming the file's own line: "t.yaml:9:20: /etc/x:3: user 'bob':
 * unsupported hash (use bcrypt or sha512-crypt)".
 */
#include <stdlib.h>
#include <string.h>

#include "common/htpasswd.h"
#include "config/config_int.h"

#define AUTH_MAX_REALM 128

/* realm: printable ASCII, at most AUTH_MAX_REALM bytes; field a char *. */
static void auth_realm(struct schema_ctx *c, const char *key, yaml_node_t *v,
		       void *field)
{
	const char *s = schema_scalar(v);
	size_t i;

	if (!s || schema_is_null(v) || !*s) {
		schema_error(c, v, "'%s' must be a non-empty string", key);
		return;
	}
	for (i = 0; s[i]; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			break;
	if (s[i]) {
		schema_error(c, v, "'%s' must be printable ASCII", key);
		return;
	}
	if (i > AUTH_MAX_REALM) {
		schema_error(c, v, "'%s' must be at most %d bytes", key,
			     AUTH_MAX_REALM);
		return;
	}
	schema_string(c, key, v, field);
}

static const struct schema_key auth_keys[] = {
	SK_KEY("realm", SCHEMA_CUSTOM, offsetof(struct cfg_auth, realm), 0, 0,
	       true, auth_realm),
	SK_KEY("users_file", SCHEMA_PATH, offsetof(struct cfg_auth, users_file),
	       0, 0, true, NULL),
	SK_BOOL("forward", struct cfg_auth, forward),
	SK_END,
};
SCHEMA_TABLE_CHECK(auth_keys);

struct auth_report {
	struct schema_ctx *c;
	const yaml_node_t *at;
};

static void auth_report(void *arg, const char *msg)
{
	struct auth_report *r = arg;

	schema_error(r->c, r->at, "%s", msg);
}

void config_auth_load(struct schema_ctx *c, const char *key, yaml_node_t *v,
		      void *field)
{
	struct cfg_auth **out = field, *a;
	struct auth_report report = {c, NULL};

	if (schema_is_false(v))
		return;
	a = schema_calloc(c, 1, sizeof(*a));
	if (!a)
		return;
	config_auth_free(*out);
	*out = a;
	a->line = (int)v->start_mark.line + 1;
	a->col = (int)v->start_mark.column + 1;
	if (!schema_walk(c, v, auth_keys, key, a) || !a->users_file)
		return;
	report.at = schema_get(c, v, "users_file", NULL);
	a->users = htpasswd_load(a->users_file, auth_report, &report);
}

void config_auth_free(struct cfg_auth *a)
{
	if (!a)
		return;
	htpasswd_free(a->users);
	free(a->realm);
	free(a->users_file);
	free(a);
}
