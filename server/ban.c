/* ban.c: clients into the operator's nftables set (see ban.h). */
#include "server/ban.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

#define BAN_LOG_EVERY_MS 10000 /* one failure line per this, at most */

struct ban_recent {
	uint8_t br_addr[16];
	uint8_t br_family;      /* 0: empty */
	uint64_t br_until;      /* monotonic ms */
};

struct ban_pending {
	uint8_t bp_family;      /* 4 or 6 */
	uint8_t bp_addr[16];
};

struct ban {
	struct nft_ctx *b_nft;  /* made at the first ban */
	struct ban_pending b_pending[BAN_BATCH]; /* queued, not added yet */
	size_t b_npending;
	struct ban_recent b_recent[BAN_RECENT];
	uint64_t b_added, b_failed;
	uint64_t b_log_at;      /* next failure line allowed */
	uint64_t b_quiet;       /* failures not logged since the last line */
};

struct ban *ban_new(void)
{
	return calloc(1, sizeof(struct ban));
}

void ban_free(struct ban *b)
{
	if (b == NULL)
		return;
	if (b->b_nft != NULL)
		nft_ctx_free(b->b_nft);
	free(b);
}

/* A context whose output and errors go to buffers, not to our stdout. */
static struct nft_ctx *ban_nft_new(void)
{
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);

	if (nft == NULL)
		return NULL;
	if (nft_ctx_buffer_output(nft) != 0 || nft_ctx_buffer_error(nft) != 0) {
		nft_ctx_free(nft);
		return NULL;
	}
	return nft;
}

/* The first line of nft's error text, without "Error: ", into out. */
static void ban_nft_error(struct nft_ctx *nft, char *out, size_t cap)
{
	const char *e = nft_ctx_get_error_buffer(nft);
	size_t n;

	if (e == NULL || *e == '\0')
		e = "failed";
	if (!strncmp(e, "Error: ", 7))
		e += 7;
	n = strcspn(e, "\n");
	(void)snprintf(out, cap, "%.*s", (int)n, e);
}

/* Run cmd (dry: only checked).  0, or -1 with nft's reason in err. */
static int ban_nft_run(struct nft_ctx *nft, const char *cmd, bool dry,
		       char *err, size_t cap)
{
	int rc;

	nft_ctx_set_dry_run(nft, dry);
	rc = nft_run_cmd_from_buffer(nft, cmd);
	if (rc != 0)
		ban_nft_error(nft, err, cap);
	return rc == 0 ? 0 : -1;
}

/* The dry run of adding a documentation address to set. */
static int ban_nft_check(struct nft_ctx *nft, const char *set,
			 const char *addr, char *err, size_t cap)
{
	char cmd[256];

	(void)snprintf(cmd, sizeof(cmd), "add element %s { %s timeout 1s }",
		       set, addr);
	return ban_nft_run(nft, cmd, true, err, cap);
}

int ban_config_check(const struct config *cfg, struct config_errors *errs)
{
	const struct cfg_ban *bc = &cfg->ban;
	struct nft_ctx *nft;
	char err[256];
	int rc = 0;

	if (bc->after == 0 || geteuid() != 0)
		return 0;
	nft = ban_nft_new();
	if (nft == NULL) {
		config_error_at(errs, cfg->path, bc->line, bc->col,
				"ban: cannot use nftables (out of memory)");
		return -1;
	}
	if (ban_nft_check(nft, bc->nft_set, "192.0.2.1", err, sizeof(err)) ==
	    -1) {
		config_error_at(errs, cfg->path, bc->line, bc->col,
				"ban: nft_set \"%s\": %s (it must exist, hold "
				"ipv4_addr and have flags timeout)",
				bc->nft_set, err);
		rc = -1;
	}
	if (bc->nft_set6 != NULL &&
	    ban_nft_check(nft, bc->nft_set6, "2001:db8::1", err,
			  sizeof(err)) == -1) {
		config_error_at(errs, cfg->path, bc->line, bc->col,
				"ban: nft_set6 \"%s\": %s (it must exist, hold "
				"ipv6_addr and have flags timeout)",
				bc->nft_set6, err);
		rc = -1;
	}
	nft_ctx_free(nft);
	return rc;
}

/* The recent-ban entry of addr: its own, or the one it may take. */
static struct ban_recent *ban_recent_slot(struct ban *b, uint8_t family,
					  const uint8_t *addr)
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < (family == 4 ? 4 : 16); i++)
		h = (h ^ addr[i]) * 16777619u;
	return &b->b_recent[h % BAN_RECENT];
}

static void ban_log_failure(struct ban *b, const char *who, const char *set,
			    const char *err, uint64_t now_ms)
{
	b->b_failed++;
	if (now_ms < b->b_log_at) {
		b->b_quiet++;
		return;
	}
	log_error("ban: client %s: adding it to %s: %s (%llu more failures "
		  "not logged)",
		  who, set, err, (unsigned long long)b->b_quiet);
	b->b_quiet = 0;
	b->b_log_at = now_ms + BAN_LOG_EVERY_MS;
}

bool ban_queue(struct ban *b, const struct config *cfg,
	       const struct sockaddr_storage *client, uint64_t now_ms)
{
	const struct cfg_ban *bc = &cfg->ban;
	struct ban_pending *p;
	struct ban_recent *r;
	uint8_t family, addr[16] = {0};

	if (bc->after == 0)
		return false; /* turned off by a reload since */
	if (client->ss_family == AF_INET) {
		family = 4;
		memcpy(addr, &((const struct sockaddr_in *)(const void *)client)
				      ->sin_addr, 4);
	} else if (client->ss_family == AF_INET6) {
		family = 6;
		memcpy(addr, &((const struct sockaddr_in6 *)(const void *)client)
				      ->sin6_addr, 16);
		if (bc->nft_set6 == NULL) {
			char who[INET6_ADDRSTRLEN];

			inet_ntop(AF_INET6, addr, who, sizeof(who));
			log_info("ban: client %s: no nft_set6 for IPv6 "
				 "clients; not banned", who);
			return false;
		}
	} else {
		return false;
	}
	r = ban_recent_slot(b, family, addr);
	if (r->br_family == family && !memcmp(r->br_addr, addr, 16) &&
	    r->br_until > now_ms)
		return false; /* added (or queued) within its timeout */
	if (b->b_npending == BAN_BATCH)
		ban_flush(b, cfg, now_ms);
	/* taken now, so that a second report in this batch is not queued */
	*r = (struct ban_recent){.br_family = family,
				 .br_until = now_ms + bc->for_ms};
	memcpy(r->br_addr, addr, 16);
	p = &b->b_pending[b->b_npending++];
	p->bp_family = family;
	memcpy(p->bp_addr, addr, 16);
	return true;
}

/*
 * One nft command for the queued clients of one family: "add element SET
 * { A timeout Tms, B timeout Tms, ... }".  Every client is logged, added
 * or not.
 */
static void ban_flush_family(struct ban *b, const struct cfg_ban *bc,
			     uint8_t family, uint64_t now_ms)
{
	const char *set = family == 4 ? bc->nft_set : bc->nft_set6;
	char cmd[BAN_BATCH * 80 + 256], who[INET6_ADDRSTRLEN], err[256];
	size_t len, n = 0;
	bool ok;

	len = (size_t)snprintf(cmd, sizeof(cmd), "add element %s { ", set);
	for (size_t i = 0; i < b->b_npending; i++) {
		if (b->b_pending[i].bp_family != family)
			continue;
		inet_ntop(family == 4 ? AF_INET : AF_INET6,
			  b->b_pending[i].bp_addr, who, sizeof(who));
		len += (size_t)snprintf(cmd + len, sizeof(cmd) - len,
					"%s%s timeout %ums", n ? ", " : "",
					who, bc->for_ms);
		n++;
	}
	if (n == 0)
		return;
	(void)snprintf(cmd + len, sizeof(cmd) - len, " }");
	if (b->b_nft == NULL)
		b->b_nft = ban_nft_new();
	ok = b->b_nft != NULL && ban_nft_run(b->b_nft, cmd, false, err,
					     sizeof(err)) == 0;
	if (b->b_nft == NULL)
		(void)snprintf(err, sizeof(err), "cannot use nftables");
	for (size_t i = 0; i < b->b_npending; i++) {
		struct ban_pending *p = &b->b_pending[i];

		if (p->bp_family != family)
			continue;
		inet_ntop(family == 4 ? AF_INET : AF_INET6, p->bp_addr, who,
			  sizeof(who));
		if (ok) {
			b->b_added++;
			log_notice("ban: client %s: added to %s for %u s", who,
				   set, bc->for_ms / 1000);
			continue;
		}
		/* not banned: the next `after` refusals may try again */
		ban_recent_slot(b, family, p->bp_addr)->br_family = 0;
		ban_log_failure(b, who, set, err, now_ms);
	}
}

void ban_flush(struct ban *b, const struct config *cfg, uint64_t now_ms)
{
	if (b->b_npending == 0)
		return;
	ban_flush_family(b, &cfg->ban, 4, now_ms);
	ban_flush_family(b, &cfg->ban, 6, now_ms);
	b->b_npending = 0;
}

uint64_t ban_added(const struct ban *b)
{
	return b != NULL ? b->b_added : 0;
}

uint64_t ban_failed(const struct ban *b)
{
	return b != NULL ? b->b_failed : 0;
}
