/*
 * slots.h: the master's policy for the shared-memory zone's slots
 * (common/shm.h).  A server's slot is named "backend\naddress" and a
 * route's "listener#N" (N counts from 1), so a server that is in the old
 * and the new config (same backend name and address) finds its slot
 * again and keeps its health, drain state and counters across a reload
 * (SPEC "Shared memory").  A slot whose last generation is older than
 * the oldest live one is free for any name.
 */
#ifndef PORTCULLIS_SLOTS_H
#define PORTCULLIS_SLOTS_H

#include <stddef.h>

#include "common/shm.h"
#include "config/config.h"

/*
 * Give every server and route of cfg its slot in z (writes
 * cfg_server.slot and cfg_route.slot; borrows z, cfg stays the
 * caller's) for generation gen, whose oldest live predecessor is
 * oldest_live.  Returns 0, or -1 with a message in err when the zone is
 * full (the config is then refused; slots claimed so far stay claimed
 * by gen and are freed once gen is older than the oldest live one).
 */
int slots_assign(struct shm_zone *z, struct config *cfg, unsigned gen,
		 unsigned oldest_live, char *err, size_t errlen);

#endif
