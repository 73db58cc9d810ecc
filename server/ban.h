/*
 * ban.h: the master's side of ban: (config/config.h struct cfg_ban).
 * Workers count each client's refusals in the shared rate table and,
 * at the after-th, report the client (worker/report.h); the master adds
 * it to the operator's nftables set with a timeout, through libnftables,
 * so that the kernel drops it before it reaches portcullis again.
 *
 * Only the master does this: it is root (CAP_NET_ADMIN), the workers are
 * not.  The set and the rule that drops its members belong to the
 * operator (portcullis.yaml(5) shows them); portcullis only adds
 * elements, and checks at start and reload that it can.
 */
#ifndef PORTCULLIS_BAN_H
#define PORTCULLIS_BAN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"

#define BAN_RECENT 1024 /* clients remembered as banned, not asked again */
#define BAN_BATCH  64   /* clients added by one nft command at most */

struct ban;

/* A new, empty state; NULL when out of memory. */
struct ban *ban_new(void);
void ban_free(struct ban *b);

/*
 * Check that cfg's sets exist and take addresses with a timeout (a dry
 * run of an add, of documentation addresses).  Errors go to errs at the
 * ban: key of cfg.  0, or -1 when one failed.  Nothing is checked when
 * bans are off, nor when we are not root (`portcullis -t` by a user).
 */
int ban_config_check(const struct config *cfg, struct config_errors *errs);

/*
 * Queue client's ban for cfg->ban.for_ms, unless it was queued or added
 * less than that long ago or its family has no set (logged).  true when
 * queued.  The queue is flushed when full; now_ms: monotonic.
 */
bool ban_queue(struct ban *b, const struct config *cfg,
	       const struct sockaddr_storage *client, uint64_t now_ms);

/*
 * Add what is queued: one nft command per family, so that a burst of
 * bans (many clients crossing the line at once) costs the master one
 * netlink exchange per batch, not one per client.  Each client's outcome
 * is logged and counted (ban_added, ban_failed).
 */
void ban_flush(struct ban *b, const struct config *cfg, uint64_t now_ms);

/* Clients added and failed additions so far (status, metrics). */
uint64_t ban_added(const struct ban *b);
uint64_t ban_failed(const struct ban *b);

#endif
