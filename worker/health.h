/*
 * health.h: active health checks (`health_check:`), run non-blocking in
 * the worker's event loop.  Exactly one worker owns the checks of each
 * server: the worker whose slot number equals the server's shm slot
 * modulo the number of workers.  A worker that dies is replaced in the
 * same slot, so its replacement takes the checks over; a draining
 * worker stops checking, so a reload never has two owners logging.
 * Verdicts go to the shared-memory zone, where every worker reads them.
 */
#ifndef PORTCULLIS_HEALTH_H
#define PORTCULLIS_HEALTH_H

struct worker;

/*
 * Start checking the servers this worker owns (worker slot `slot` of
 * `nslots`).  0, or -1 when out of memory.
 */
int health_start(struct worker *w, unsigned slot, unsigned nslots);

/* Stop every check of w and free them (drain and exit). */
void health_stop(struct worker *w);

#endif
