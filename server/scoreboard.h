/*
 * scoreboard.h: per-worker counters in memory shared between the master
 * and its workers (Apache's scoreboard, reduced to what the master needs:
 * how many connections each worker holds, for `portcullis status` and
 * the drain log).  The master maps it once, before the first fork, and
 * keeps it for its lifetime; slot i belongs to the i-th entry of the
 * master's worker table.  Each slot has its own cache line and is one
 * plain atomic: a worker stores, the master loads, nothing is locked.
 */
#ifndef PORTCULLIS_SCOREBOARD_H
#define PORTCULLIS_SCOREBOARD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/shm.h"
#include "worker/worker.h"

struct scoreboard;

/* Map a zeroed board of nslots slots.  NULL with errno on failure. */
struct scoreboard *scoreboard_create(size_t nslots);

/* Unmap the board (NULL is fine).  Workers keep their own mapping. */
void scoreboard_free(struct scoreboard *sb);

/* The connection counter of slot i, for the worker that gets the slot. */
_Atomic uint32_t *scoreboard_conns(struct scoreboard *sb, size_t i);

/* Read slot i's connection count. */
uint32_t scoreboard_get(const struct scoreboard *sb, size_t i);

/*
 * Slot i's heartbeat: the worker stores the monotonic time (ms) at the end
 * of every loop turn, and turns at least once a second; 0 until its first
 * turn.  The master's watchdog reads it.
 */
_Atomic uint64_t *scoreboard_beat(struct scoreboard *sb, size_t i);
uint64_t scoreboard_last_beat(const struct scoreboard *sb, size_t i);

/* Slot i now belongs to a worker of generation gen (peers, below). */
void scoreboard_set_gen(struct scoreboard *sb, size_t i, unsigned gen);

/* Where the workers read each other's connection counts and generations. */
void scoreboard_peers(struct scoreboard *sb, struct worker_peers *out);

/* Zero slot i's connection count, generation and heartbeat. */
void scoreboard_reset(struct scoreboard *sb, size_t i);

/*
 * Slot i's shares: by zone server slot, the connections its worker holds
 * to that server (SHM_MAX_SERVERS entries).  The worker stores its own
 * counts there as it changes sv_active, so that a worker that dies does
 * not leave its connections counted for ever (issue #14 item 5).
 */
_Atomic uint32_t *scoreboard_shares(struct scoreboard *sb, size_t i);

/*
 * Worker i is gone: subtract each of its shares from the servers'
 * sv_active in z and zero them.  Returns the connections given back.
 */
uint64_t scoreboard_give_back(struct scoreboard *sb, size_t i,
			      struct shm_zone *z);

#endif
