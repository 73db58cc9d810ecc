/*
 * auth.h: HTTP Basic authentication of a route (RFC 7617), in a worker.
 *
 * The users file is loaded with the configuration (common/htpasswd.h, the
 * route's cfg_auth.users).  auth_check() verifies one Authorization header
 * against it through libcrypt's crypt_r; a credential that verified is
 * remembered in a small per-worker cache, so that the costly hash runs
 * once per credential, not once per request.
 */
#ifndef PORTCULLIS_AUTH_H
#define PORTCULLIS_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/htpasswd.h"

#define AUTH_CACHE_ENTRIES   1024	      /* per worker */
#define AUTH_CACHE_WAYS	     4		      /* entries per bucket */
#define AUTH_CACHE_TTL_MS    (5u * 60 * 1000) /* 5 min after the check */
#define AUTH_MAX_CREDENTIALS 1024 /* decoded "user:password" bytes */
#define AUTH_CHALLENGE_MAX   300  /* auth_challenge() with a 128-byte realm */

enum auth_result {
	AUTH_OK,      /* the user and password match the users file */
	AUTH_MISSING, /* no Authorization header: 401 with the challenge */
	AUTH_BAD,     /* malformed, another scheme, unknown user or wrong
			 password: 401 with the challenge, and counted
			 against the client's rate limit */
};

/* What the checks did in this process (tests, metrics). */
struct auth_stats {
	uint64_t as_hashes;    /* crypt_r runs: each costs the hash's time */
	uint64_t as_hits;      /* answered from the cache */
	uint64_t as_misses;    /* verified by crypt_r (successfully or not) */
	uint64_t as_evictions; /* live entries replaced by a newer one */
};

/*
 * Check the value of an Authorization header (value, len bytes; NULL when
 * the request has none) against the users of h, at monotonic time now_ms.
 * On AUTH_OK the user-id is copied into user (size bytes, NUL-terminated,
 * truncated) when user is not NULL; otherwise user is set to "".
 * Blocks for the hash's cost (~1 ms to 200 ms) unless the cache answers.
 */
enum auth_result auth_check(const struct htpasswd *h, const char *value,
			    size_t len, uint64_t now_ms, char *user,
			    size_t size);

/*
 * Write the value of the WWW-Authenticate header of a 401 for realm
 * (RFC 7617 section 2): Basic realm="...", charset="UTF-8", with '"' and
 * '\' escaped.  Returns its length (buf is NUL-terminated), or -1 if it
 * does not fit in size bytes (AUTH_CHALLENGE_MAX always does).
 */
int auth_challenge(const char *realm, char *buf, size_t size);

/* The counters of this process, borrowed. */
const struct auth_stats *auth_stats(void);

/* Forget every cached credential (tests; a worker never needs it: a
 * reload brings a new users file, whose new id misses every entry). */
void auth_cache_clear(void);

#endif
