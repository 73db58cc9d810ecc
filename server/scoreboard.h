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

struct scoreboard;

/* Map a zeroed board of nslots slots.  NULL with errno on failure. */
struct scoreboard *scoreboard_create(size_t nslots);

/* Unmap the board (NULL is fine).  Workers keep their own mapping. */
void scoreboard_free(struct scoreboard *sb);

/* The connection counter of slot i, for the worker that gets the slot. */
_Atomic uint32_t *scoreboard_conns(struct scoreboard *sb, size_t i);

/* Read slot i's connection count. */
uint32_t scoreboard_get(const struct scoreboard *sb, size_t i);

/* Zero slot i before a new worker takes it. */
void scoreboard_reset(struct scoreboard *sb, size_t i);

#endif
