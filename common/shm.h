/*
 * shm.h: the shared-memory zone.  The master maps it (MAP_SHARED, from a
 * memfd that a binary upgrade hands on) before the first fork and keeps
 * it for its lifetime, so every worker of every generation sees the same
 * bytes.  It holds, per
 * server, the machine-wide picture: health with the reason and time of
 * the last change, drain, passive-failure state, connections in use and
 * counters; and per route, request counters.
 *
 * Slots are named by a key.  The master alone claims them (shm_*_claim,
 * at start and at every reload; server/slots.h chooses the keys and the
 * generations) and a slot keeps its key, and so its state, for as long
 * as some live generation uses it.  Workers only touch the atomics of
 * their slots, found by index; nothing on the request path takes a lock.
 * This file knows nothing of the configuration.
 */
#ifndef PORTCULLIS_SHM_H
#define PORTCULLIS_SHM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHM_MAX_SERVERS 4096
#define SHM_MAX_ROUTES 4096
#define SHM_KEY_LEN 192
#define SHM_REASON_LEN 96

enum shm_health {
	SHM_UP = 0,
	SHM_DOWN = 1,
};

struct shm_server {
	char sv_key[SHM_KEY_LEN];      /* "" = free; written by the master only */
	_Atomic uint32_t sv_gen;       /* newest generation whose config has it */
	_Atomic uint32_t sv_health;    /* enum shm_health: the active checks' verdict */
	_Atomic uint32_t sv_drain;     /* 1: no new requests (operator) */
	_Atomic uint32_t sv_active;    /* connections in use, all workers */
	_Atomic uint32_t sv_fails;     /* passive: failures in a row */
	_Atomic uint64_t sv_down_until; /* passive: down until (monotonic ms) */
	_Atomic uint64_t sv_changed;   /* wall-clock ms of the last transition */
	_Atomic uint32_t sv_seq;       /* seqlock over sv_reason (odd: writing) */
	char sv_reason[SHM_REASON_LEN]; /* why the last transition happened */
	/* its counters are per worker: common/metrics.h, by this slot */
} __attribute__((aligned(64)));

struct shm_route {
	char rt_key[SHM_KEY_LEN];
	_Atomic uint32_t rt_gen;
	/* its counters are per worker: common/metrics.h, by this slot */
} __attribute__((aligned(64)));

/*
 * TLS session-ticket keys (worker/tls.c): [0] encrypts, all decrypt.
 * Written by the master only, under tk_seq (odd: writing); read by
 * every worker at each ticket it issues or accepts.
 */
#define SHM_TICKET_KEYS 3
struct shm_ticket_key {
	uint8_t tk_name[16];
	uint8_t tk_aes[32];            /* AES-256-CBC */
	uint8_t tk_hmac[32];           /* HMAC-SHA256 */
	uint64_t tk_created;           /* wall-clock ms; 0 = empty slot */
};

struct shm_tickets {
	_Atomic uint32_t tk_seq;
	uint32_t tk_n;                 /* keys in use */
	struct shm_ticket_key tk_keys[SHM_TICKET_KEYS];
} __attribute__((aligned(64)));

#define SHM_MAGIC UINT64_C(0x706373686d763033) /* "pcshmv03": layout */

struct shm_zone {
	uint64_t z_magic;              /* SHM_MAGIC: same layout, same binary family */
	uint64_t z_size;               /* sizeof(struct shm_zone) */
	uint64_t z_total;              /* the memfd: zone, then metrics area */
	struct shm_server z_servers[SHM_MAX_SERVERS];
	struct shm_route z_routes[SHM_MAX_ROUTES];
	struct shm_tickets z_tickets;
};

/*
 * The process's zone: set by the master once, before the first fork, and
 * inherited by every worker.  NULL until then (unit tests set their own).
 */
struct shm_zone *shm_zone(void);
void shm_zone_set(struct shm_zone *z);

struct metrics_area;

/*
 * The zone's metrics area (common/metrics.h), at SHM_METRICS_OFF in the
 * same mapping; NULL for a zone not made by shm_create/shm_adopt.
 */
struct metrics_area *shm_metrics(struct shm_zone *z);

/*
 * Map a zeroed zone backed by a memfd, so that a binary upgrade can hand
 * it to the new master.  NULL with errno on failure.
 */
struct shm_zone *shm_create(void);

/*
 * Map the zone of the memfd fd (inherited over exec by a binary upgrade).
 * NULL when fd is not a zone of this layout; the caller then creates one.
 */
struct shm_zone *shm_adopt(int fd);

/* The memfd behind the process's zone, -1 if none. */
int shm_fd(void);

/* Unmap it (NULL is fine). */
void shm_destroy(struct shm_zone *z);

/*
 * Find the server slot named key among those in use (last used by a
 * generation >= oldest_live, or by gen itself), else claim a free one:
 * zeroed, named key (truncated to SHM_KEY_LEN - 1).  Either way it is
 * marked used by gen.  Returns its index, or -1 when every slot is in use.
 */
int shm_server_claim(struct shm_zone *z, const char *key, unsigned gen,
		     unsigned oldest_live);

/* The same for route slots. */
int shm_route_claim(struct shm_zone *z, const char *key, unsigned gen,
		    unsigned oldest_live);

/*
 * The server / route slot at idx (0 <= idx < SHM_MAX_SERVERS /
 * SHM_MAX_ROUTES), as a claim returned it.  Borrowed from the zone.
 */
struct shm_server *shm_server_at(struct shm_zone *z, int idx);
struct shm_route *shm_route_at(struct shm_zone *z, int idx);

/* Record a transition: health, reason and time (seqlocked reason). */
/*
 * Take n connections off sv_active, never below 0 (a dead worker's share
 * given back by the master while live workers go on counting).
 */
void shm_active_sub(struct shm_server *sv, uint32_t n);

void shm_set_health(struct shm_server *sv, enum shm_health h,
		    const char *reason);

/* Copy the reason of the last transition into out (cap bytes). */
void shm_reason(const struct shm_server *sv, char *out, size_t cap);

/* Wall-clock milliseconds, for sv_changed. */
uint64_t shm_wall_ms(void);

#endif
