/*
 * config_ban.c: ban: {after, within, for, nft_set, nft_set6}, the clients
 * that the master puts into an nftables set (server/ban.c).
 *
 * The set names end up in a command line given to libnftables, so they
 * are held to nft's identifier syntax here: nothing else can get into
 * that command.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"

#define BAN_MAX_AFTER 100000
#define BAN_NAME_MAX  63 /* bytes of a table or set name */

/* ban: as written, before the set names are checked. */
struct ban_raw {
	uint32_t after, within_ms, for_ms;
	char *nft_set, *nft_set6;
};

static const struct schema_key ban_keys[] = {
	SK_UINT("after", struct ban_raw, after, 0, BAN_MAX_AFTER),
	SK_DURATION("within", struct ban_raw, within_ms, 1000),
	SK_DURATION("for", struct ban_raw, for_ms, 1000),
	SK_STRING("nft_set", struct ban_raw, nft_set),
	SK_STRING("nft_set6", struct ban_raw, nft_set6),
	SK_END,
};
SCHEMA_TABLE_CHECK(ban_keys);

void config_ban_defaults(struct schema_ctx *c, struct cfg_ban *b)
{
	b->after = 0;
	b->within_ms = 60 * 1000;
	b->for_ms = 10 * 60 * 1000;
	b->nft_set = schema_strdup(c, "inet portcullis banned");
	b->nft_set6 = NULL;
}

/* An nft identifier: a letter or '_', then letters, digits, '_', '-', '.'. */
static bool ban_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > BAN_NAME_MAX || !(isalpha((unsigned char)s[0]) ||
					    s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' &&
		    s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

/*
 * "FAMILY TABLE SET", single spaces; the family one that holds addresses
 * of the client (inet, or ip for IPv4 and ip6 for IPv6).
 */
static bool ban_set_ok(const char *s, bool v6)
{
	const char *t = strchr(s, ' '), *n;

	if (t == NULL || (n = strchr(t + 1, ' ')) == NULL ||
	    strchr(n + 1, ' ') != NULL)
		return false;
	if (!((t - s == 4 && !strncmp(s, "inet", 4)) ||
	      (!v6 && t - s == 2 && !strncmp(s, "ip", 2)) ||
	      (v6 && t - s == 3 && !strncmp(s, "ip6", 3))))
		return false;
	return ban_name_ok(t + 1, (size_t)(n - t - 1)) &&
	       ban_name_ok(n + 1, strlen(n + 1));
}

static void ban_check_set(struct schema_ctx *c, yaml_node_t *v,
			  const char *key, const char *set, bool v6)
{
	if (set == NULL || ban_set_ok(set, v6))
		return;
	schema_error(c, schema_get(c, v, key, NULL),
		     "'%s' must be \"FAMILY TABLE SET\" with FAMILY %s and nft "
		     "names (letters, digits, '_', '-', '.'; at most %d each)",
		     key, v6 ? "inet or ip6" : "inet or ip", BAN_NAME_MAX);
}

void config_ban(struct schema_ctx *c, const char *key, yaml_node_t *v,
		void *field)
{
	struct cfg_ban *b = field;
	struct ban_raw r = {.after = b->after,
			    .within_ms = b->within_ms,
			    .for_ms = b->for_ms};

	b->line = (int)v->start_mark.line + 1;
	b->col = (int)v->start_mark.column + 1;
	/* ban: off (or {}): no bans */
	if (schema_is_false(v))
		return;
	if (!schema_walk(c, v, ban_keys, key, &r))
		goto out;
	ban_check_set(c, v, "nft_set", r.nft_set, false);
	ban_check_set(c, v, "nft_set6", r.nft_set6, true);
	b->after = r.after;
	b->within_ms = r.within_ms;
	b->for_ms = r.for_ms;
	if (r.nft_set != NULL) {
		free(b->nft_set);
		b->nft_set = r.nft_set;
		r.nft_set = NULL;
	}
	if (r.nft_set6 != NULL && r.nft_set6[0] != '\0') {
		b->nft_set6 = r.nft_set6;
		r.nft_set6 = NULL;
	}
out:
	free(r.nft_set);
	free(r.nft_set6);
}
