/*
 * ratelimit.h: rate limits and connection caps shared by every worker of
 * every generation (issue #12 parts 3 and 4).
 *
 * Two objects:
 *
 *  - struct rate_table: one memfd-backed shared mapping made by the master
 *    before the first fork and kept for its lifetime (handed to the new
 *    master of a binary upgrade like the zone, through RATE_ENV_FD).  It
 *    holds a bounded set-associative table of client entries, each either
 *    a token bucket (GCRA: one 64-bit "theoretical arrival time" updated
 *    by compare-and-swap) for one (limit id, client prefix), or a
 *    connection count for one (listener, full client address); and the
 *    per-listener connection counters, in slots named by listener like the
 *    zone's route slots.  Its size is fixed when it is made.
 *
 *  - struct rate_holds: per master (anonymous shared memory, like the
 *    scoreboard), for each worker slot the list of counts its open
 *    connections hold, so that the master gives a dead worker's counts
 *    back (rate_holds_give_back) instead of leaking them.
 *
 * Nothing on the request path takes a lock: every update is a CAS on one
 * 64-bit word, so a worker killed in the middle of one leaves nothing
 * held.  A table entry is RATE_WAYS entries wide group (the key's hash
 * picks the group); when a group is full the entry least recently seen is
 * replaced (rate entries are "seen" at their theoretical arrival time, so
 * the first to go is the client whose bucket has been full longest, whose
 * state is the same as a new entry's).  Entries that hold connections are
 * never replaced.
 */
#ifndef PORTCULLIS_RATELIMIT_H
#define PORTCULLIS_RATELIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define RATE_WAYS	    16	  /* entries per group (set-associative) */
#define RATE_MAX_LISTENERS  1024  /* listener slots */
#define RATE_LISTENER_KEY   120	  /* bytes of a listener slot's name */
#define RATE_MAX_PER_CLIENT 65535 /* max_connections_per_client: 16 bits */
#define RATE_MIN_ENTRIES    RATE_WAYS
#define RATE_MAX_ENTRIES    (1u << 24) /* 16 Mi entries, 256 MiB */
/* the memfd, over a binary upgrade */
#define RATE_ENV_FD "PORTCULLIS_RATE_FD"

struct cfg_rate_limit; /* config/config.h */
struct rate_table;
struct rate_holds;
struct rate_worker;

enum rate_verdict {
	RATE_OK = 0,
	RATE_OVER_LISTENER, /* max_connections of the listener */
	RATE_OVER_CLIENT,   /* max_connections_per_client */
};

/* ---- the master ------------------------------------------------------- */

/*
 * Map a new, empty table of at least nentries client entries (rounded up
 * to whole groups; RATE_MIN_ENTRIES..RATE_MAX_ENTRIES), backed by a
 * memfd.  NULL with errno on failure.
 */
struct rate_table *rate_table_create(uint32_t nentries);

/*
 * Map the table of the memfd fd (inherited over exec by a binary
 * upgrade).  NULL when fd is not a table of this layout.
 */
struct rate_table *rate_table_adopt(int fd);

/*
 * The master's table at start: the one a binary upgrade handed over
 * (RATE_ENV_FD, then unset), whatever its size, else a new one of
 * nentries.  *adopted says which; *size_kept is true when an adopted
 * table's size differs from nentries (log it: the size changes only at a
 * restart).  NULL with errno when none can be made.
 */
struct rate_table *rate_table_open(uint32_t nentries, bool *adopted,
				   bool *size_kept);

/* Does t have the room that nentries asks for (a reload's check)? */
bool rate_table_fits(const struct rate_table *t, uint32_t nentries);

/*
 * The memfd behind t (close-on-exec), -1 for none.
 */
int rate_table_fd(const struct rate_table *t);

/*
 * In the child about to exec the new binary of an upgrade: let the memfd
 * through exec and name it in RATE_ENV_FD.  0, or -1 with errno.
 */
int rate_table_export(const struct rate_table *t);

/* Client entries t holds (what it was made with, rounded up). */
uint32_t rate_table_capacity(const struct rate_table *t);

/* Entries replaced to make room so far (status, tests). */
uint64_t rate_table_evictions(const struct rate_table *t);

/* Unmap t and close its memfd (NULL is fine). */
void rate_table_destroy(struct rate_table *t);

/*
 * The process's table: set by the master once, before the first fork,
 * and inherited by every worker; NULL when there is none.
 */
struct rate_table *rate_table(void);
void rate_table_set(struct rate_table *t);

/*
 * Find the listener slot named name among those in use (by generation gen
 * or one >= oldest_live), else claim a free one (its count zeroed).  As
 * shm_route_claim: a listener kept across a reload keeps its slot and its
 * count.  Returns the slot (for cfg_listener.slot) or -1 when all
 * RATE_MAX_LISTENERS are in use.
 */
int rate_listener_claim(struct rate_table *t, const char *name, unsigned gen,
			unsigned oldest_live);

/* Connections counted on listener slot (all workers). */
uint32_t rate_listener_count(const struct rate_table *t, int slot);

/* Connections counted for client on listener slot (tests, status). */
uint32_t rate_client_count(struct rate_table *t, int slot,
			   const struct sockaddr_storage *client);

/*
 * Map the hold lists: nworkers worker slots (the master's worker table
 * index, as for the scoreboard) of per_worker holds each.  Anonymous:
 * made by each master, never handed over.  NULL with errno on failure.
 */
struct rate_holds *rate_holds_create(uint32_t nworkers, uint32_t per_worker);
void rate_holds_free(struct rate_holds *h);

/* Holds per worker slot (what it was made with). */
uint32_t rate_holds_per_worker(const struct rate_holds *h);

/*
 * Worker slot w is gone: take every count its connections held off t
 * (saturating at 0) and empty its list.  Returns the connections given
 * back.  Call after waitpid(), before the slot gets a new worker.
 */
uint64_t rate_holds_give_back(struct rate_holds *h, uint32_t w,
			      struct rate_table *t);

/* ---- a worker --------------------------------------------------------- */

/*
 * The worker of slot w's handle on t and its hold list in h (both
 * borrowed; they must outlive it).  Allocates its free list of holds.
 * Whatever the slot's previous worker left in the list is given back
 * first (idempotent with the master's rate_holds_give_back).  NULL on
 * failure.
 */
struct rate_worker *rate_worker_new(struct rate_table *t, struct rate_holds *h,
				    uint32_t w);
void rate_worker_free(struct rate_worker *w);

/*
 * A request from client under limit lim (borrowed; rps 0 = off: always
 * admitted).  true: admitted, a token taken.  false: over the limit,
 * *retry_after_s is the whole seconds (>= 1, rounded up) until a token
 * is back, for Retry-After.  now_ms: monotonic milliseconds.
 * Admits (fail-open) when no entry can be had (group pinned by
 * connections).
 */
bool rate_take(struct rate_table *t, const struct cfg_rate_limit *lim,
	       const struct sockaddr_storage *client, uint64_t now_ms,
	       uint32_t *retry_after_s);

/*
 * The client (its whole address) was refused: count it, for ban (config
 * ban:).  true when this refusal is the after-th within within_ms of
 * the first one: ban the client now.  The count starts again from zero
 * then.  after 0: never; after 1: every refusal.  now_ms: monotonic
 * milliseconds.
 */
bool rate_strike(struct rate_table *t, const struct sockaddr_storage *client,
		 uint32_t after, uint64_t within_ms, uint64_t now_ms);

/*
 * A connection accepted on listener slot lslot from client: count it
 * against max_conns (the listener's max_connections) and max_per_client
 * (max_connections_per_client); 0 = unlimited, not counted.  RATE_OK:
 * *hold is what rate_conn_release() takes back (-1: nothing counted);
 * else nothing is counted and *hold is -1.  client may be NULL (not
 * known yet: rate_conn_rebind() later).
 */
enum rate_verdict rate_conn_acquire(struct rate_worker *w, int lslot,
				    uint32_t max_conns,
				    const struct sockaddr_storage *client,
				    uint32_t max_per_client, uint64_t now_ms,
				    int32_t *hold);

/*
 * The real client address became known (PROXY header, X-Forwarded-For):
 * move the per-client count of *hold to client.  RATE_OVER_CLIENT: the
 * new client is over max_per_client (nothing counted for it; the
 * listener count stays until release).  *hold may change from -1.
 */
enum rate_verdict rate_conn_rebind(struct rate_worker *w, int lslot,
				   int32_t *hold,
				   const struct sockaddr_storage *client,
				   uint32_t max_per_client, uint64_t now_ms);

/* The connection is closed: give back what hold counted (-1 is fine). */
void rate_conn_release(struct rate_worker *w, int32_t hold, uint64_t now_ms);

/* Connections this worker could not count (hold list full): admitted. */
uint64_t rate_worker_untracked(const struct rate_worker *w);

#endif
