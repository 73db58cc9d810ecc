/*
 * config_admin.c: the admin: section, the read-only HTTP endpoint that the
 * master serves (server/admin.h):
 *
 *   admin: {bind: 127.0.0.1:9901, allow: [127.0.0.0/8, "::1/128"]}
 *
 * Off by default and in its off forms (false, {}).  allow: is parsed as a
 * listener's (config_acl.c, files included); without it only loopback
 * clients are served, whatever address is bound.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/iptree.h"
#include "config/config_int.h"

static void admin_bind(struct schema_ctx *c, const char *key, yaml_node_t *v,
		       void *field)
{
	(void)config_addr_load(c, key, v, field);
}

static const struct schema_key admin_keys[] = {
	SK_CUSTOM("bind", struct cfg_admin, bind, admin_bind),
	SK_CUSTOM("allow", struct cfg_admin, acl.allow, config_acl_allow),
	SK_END,
};
SCHEMA_TABLE_CHECK(admin_keys);

/* 127.0.0.0/8 and ::1/128: who may ask when allow: is not written. */
static struct iptree *admin_loopback(void)
{
	struct iptree_builder *b = iptree_builder_new();
	struct in6_addr one = IN6ADDR_LOOPBACK_INIT;
	uint8_t v4[4] = {127, 0, 0, 0};

	if (b == NULL)
		return NULL;
	if (iptree_builder_add(b, AF_INET, v4, 8) == -1 ||
	    iptree_builder_add(b, AF_INET6, &one, 128) == -1) {
		iptree_builder_free(b);
		return NULL;
	}
	return iptree_build(b);
}

void config_admin(struct schema_ctx *c, const char *key, yaml_node_t *v,
		  void *field)
{
	struct cfg_admin *a = field;

	if (schema_is_false(v) ||
	    (v->type == YAML_MAPPING_NODE && SCHEMA_PAIRS(v) == 0))
		return; /* off */
	if (v->type != YAML_MAPPING_NODE) {
		schema_error(c, v,
			     "'%s' must be a mapping {bind, allow} or false",
			     key);
		return;
	}
	if (!schema_walk(c, v, admin_keys, key, a))
		return;
	if (schema_get(c, v, "bind", NULL) == NULL) {
		schema_error(c, v, "'%s' needs 'bind' (host:port)", key);
		return;
	}
	if (a->acl.allow == NULL && a->bind.str != NULL) {
		a->acl.allow = admin_loopback();
		if (a->acl.allow == NULL)
			schema_error(c, v, "%s: out of memory", key);
	}
}

/* Port of a resolved address, host order. */
static unsigned admin_port(const struct cfg_addr *a)
{
	if (a->sa.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->sa)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&a->sa)->sin_port);
}

/* Would a and b take the same port: the same address, or a wildcard? */
static bool admin_overlaps(const struct cfg_addr *a, const struct cfg_addr *b)
{
	static const struct in6_addr any6 = IN6ADDR_ANY_INIT;

	if (admin_port(a) != admin_port(b))
		return false;
	if (config_addr_equal(a, b))
		return true;
	for (int i = 0; i < 2; i++) {
		const struct cfg_addr *x = i ? b : a;

		if (x->sa.ss_family == AF_INET &&
		    ((const struct sockaddr_in *)&x->sa)->sin_addr.s_addr ==
			    htonl(INADDR_ANY))
			return true;
		if (x->sa.ss_family == AF_INET6 &&
		    !memcmp(&((const struct sockaddr_in6 *)&x->sa)->sin6_addr,
			    &any6, sizeof(any6)))
			return true;
	}
	return false;
}

/*
 * The admin endpoint is never served on a proxied listener's socket: a
 * bind that a listener takes too is refused where admin.bind is written.
 */
void config_admin_check(struct schema_ctx *c, const struct config *cfg,
			yaml_node_t *root)
{
	const struct cfg_admin *a = &cfg->admin;
	yaml_node_t *n, *v;

	if (a->bind.str == NULL)
		return;
	n = schema_get(c, root, "admin", NULL);
	v = n != NULL ? schema_get(c, n, "bind", NULL) : NULL;
	for (size_t i = 0; v != NULL && i < cfg->nlisteners; i++)
		for (size_t j = 0; j < cfg->listeners[i].nbinds; j++)
			if (admin_overlaps(&a->bind, &cfg->listeners[i].binds[j]))
				schema_error(c, v,
					     "admin bind %s: listener %s binds "
					     "%s on the same port; the admin "
					     "endpoint needs its own",
					     a->bind.str, cfg->listeners[i].name,
					     cfg->listeners[i].binds[j].str);
}

void config_admin_free(struct cfg_admin *a)
{
	free(a->bind.str);
	a->bind.str = NULL;
	config_acl_free(&a->acl);
}
