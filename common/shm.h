/*
 * shm.h: the shared-memory zone.  The master maps it (MAP_SHARED |
 * MAP_ANONYMOUS) before the first fork and keeps it for its lifetime, so
 * every worker of every generation sees the same bytes.  It holds, per
 * server, the machine-wide picture: health with the reason and time of
 * the last change, drain, passive-failure state, connections in use and
 * counters; and per route, request counters.
 *
 * Slots are named ("backend\naddress", "listener#N").  The master alone
 * assigns names (shm_assign, at start and at every reload) and a slot
 * keeps its name, and so its state, for as long as some live generation
 * uses it: a server that is in the old and the new config keeps its
 * health, drain and counters across a reload.  Workers only touch the
 * atomics of their slots; nothing on the request path takes a lock.
 */
#ifndef PORTCULLIS_SHM_H
#define PORTCULLIS_SHM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

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
	_Atomic uint64_t sv_requests;  /* requests sent to it */
	_Atomic uint64_t sv_failures;  /* connect failures, timeouts, broken responses */
} __attribute__((aligned(64)));

struct shm_route {
	char rt_key[SHM_KEY_LEN];
	_Atomic uint32_t rt_gen;
	_Atomic uint64_t rt_requests;
	_Atomic uint64_t rt_status[6]; /* [1]..[5]: 1xx..5xx answers */
} __attribute__((aligned(64)));

#define SHM_MAGIC UINT64_C(0x706373686d763031) /* "pcshmv01": layout */

struct shm_zone {
	uint64_t z_magic;              /* SHM_MAGIC: same layout, same binary family */
	uint64_t z_size;               /* sizeof(struct shm_zone) */
	struct shm_server z_servers[SHM_MAX_SERVERS];
	struct shm_route z_routes[SHM_MAX_ROUTES];
};

/*
 * The process's zone: set by the master once, before the first fork, and
 * inherited by every worker.  NULL until then (unit tests set their own).
 */
struct shm_zone *shm_zone(void);
void shm_zone_set(struct shm_zone *z);

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
 * Give every server and route of cfg its slot (cfg_server.slot,
 * cfg_route.slot) for generation gen: the slot of the same name if one
 * exists, else a free one.  Slots last used by a generation older than
 * oldest_live are free again.  Returns 0, or -1 with a message in err
 * when the zone is full (the config is then refused).
 */
int shm_assign(struct shm_zone *z, struct config *cfg, unsigned gen,
	       unsigned oldest_live, char *err, size_t errlen);

/* The slot of a server / route of an assigned config. */
struct shm_server *shm_server(struct shm_zone *z, const struct cfg_server *s);
struct shm_route *shm_route(struct shm_zone *z, const struct cfg_route *r);

/* Record a transition: health, reason and time (seqlocked reason). */
void shm_set_health(struct shm_server *sv, enum shm_health h,
		    const char *reason);

/* Copy the reason of the last transition into out (cap bytes). */
void shm_reason(const struct shm_server *sv, char *out, size_t cap);

/* Wall-clock milliseconds, for sv_changed. */
uint64_t shm_wall_ms(void);

#endif
