/*
 * htpasswd.h: a users file of HTTP Basic authentication ("user:hash" a
 * line), read once when the configuration is loaded (in the master, as
 * root, before the workers fork) and then only looked up.
 *
 * Only the hashes that are slow on purpose are accepted: bcrypt ($2a$,
 * $2b$, $2y$) and SHA-512-crypt ($6$).  MD5 ($apr1$, $1$), SHA-1 ({SHA}),
 * DES and plain text are refused with the line that holds them.  Hashes
 * are checked for form here; verifying a password is worker/auth.c's work
 * (libcrypt), so this file needs nothing but libc.
 */
#ifndef PORTCULLIS_HTPASSWD_H
#define PORTCULLIS_HTPASSWD_H

#include <stddef.h>
#include <stdint.h>

#define HTPASSWD_MAX_BYTES  (16u << 20) /* a bigger file is refused */
#define HTPASSWD_MAX_USERS  100000
#define HTPASSWD_MAX_ERRORS 10 /* reported per file, then counted */
/* The slowest hashes accepted: each check of a new (or wrong) password
 * holds a worker's event loop that long (~0.2 s at these bounds). */
#define HTPASSWD_MAX_BCRYPT_COST   12
#define HTPASSWD_MAX_SHA512_ROUNDS 200000

struct htpasswd_user {
	const char *hu_name; /* points into ht_text */
	const char *hu_hash; /* points into ht_text */
	uint32_t hu_line;    /* 1-based, for messages */
};

struct htpasswd {
	uint64_t ht_id;			/* random, new at each load: names this
					   generation of the file in caches */
	struct htpasswd_user *ht_users; /* sorted by name (strcmp) */
	size_t ht_nusers;		/* at least one */
	char *ht_text; /* the file, its fields NUL-terminated */
	size_t ht_len; /* bytes of ht_text, wiped on free */
};

/* Called with each problem found, "PATH:LINE: message" (or "PATH: ..."). */
typedef void htpasswd_report_fn(void *arg, const char *msg);

/*
 * Read and check the users file at path (a regular file).  Returns a new
 * htpasswd the caller owns (htpasswd_free), or NULL after calling report
 * once per problem (at most HTPASSWD_MAX_ERRORS, then a count).
 */
struct htpasswd *htpasswd_load(const char *path, htpasswd_report_fn *report,
			       void *arg);

/* The hash of user (len bytes, not NUL-terminated), or NULL.  Borrowed. */
const char *htpasswd_lookup(const struct htpasswd *h, const char *user,
			    size_t len);

/* Wipe and free h.  NULL is fine. */
void htpasswd_free(struct htpasswd *h);

#endif
