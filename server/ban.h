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

#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"

#define BAN_RECENT 1024 /* clients remembered as banned, not asked again */

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
 * Ban client for cfg->ban.for_ms: add it to the set of its family,
 * unless it was added less than that long ago.  The outcome is logged.
 * 0 added, 1 already banned or no set for its family, -1 failed.
 * now_ms: monotonic.
 */
int ban_client(struct ban *b, const struct config *cfg,
	       const struct sockaddr_storage *client, uint64_t now_ms);

/* Clients added and failed additions so far (status, metrics). */
uint64_t ban_added(const struct ban *b);
uint64_t ban_failed(const struct ban *b);

#endif
