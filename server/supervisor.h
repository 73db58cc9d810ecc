/*
 * supervisor.h: the master's supervision of its worker processes (the
 * worker itself is worker/worker.h), of every generation: fork them,
 * read what they report (ready, retired), reap them, respawn the current
 * generation's with a backoff when they keep dying, and SIGKILL those
 * that outlive their stop deadline.  All of it works on the table
 * m->m_workers (master_types.h).
 */
#ifndef PORTCULLIS_SUPERVISOR_H
#define PORTCULLIS_SUPERVISOR_H

#include <stddef.h>
#include <stdint.h>

#include "server/master_types.h"

/*
 * Fork the worker for slot of generation g.  0, or -1 (logged; the slot
 * is retried a second later if g is the serving generation).
 */
int supervisor_spawn(struct master *m, struct master_gen *g, unsigned slot);

/* Send signo to every worker of generations lo..hi and give each a SIGKILL
 * deadline timeout_ms (+ grace) from now, unless it already has one. */
void supervisor_stop(struct master *m, int signo, unsigned lo, unsigned hi,
		     uint32_t timeout_ms);

/* Send signo to every worker (SIGUSR1: reopen logs). */
void supervisor_signal_all(struct master *m, int signo);

/*
 * Child pid exited with status (the master's waitpid()): if it is a
 * worker, log it, schedule its respawn or note that the generation being
 * started failed, and free its entry.  Other pids are ignored.
 */
void supervisor_exited(struct master *m, pid_t pid, int status);

/* Read the report pipe (WORKER_EV_READY / WORKER_EV_RETIRED). */
void supervisor_read_reports(struct master *m);

/* Due respawns and SIGKILLs.  Returns ms until the next one, or -1. */
int64_t supervisor_timers(struct master *m, uint64_t now);

/* How many workers of generations lo..hi are alive. */
size_t supervisor_count(const struct master *m, unsigned lo, unsigned hi);

/*
 * What worker mw is doing, for status: "starting", "accepting", "ready"
 * (an older generation's, still accepting) or "draining".
 */
const char *supervisor_worker_state(const struct master *m,
				    const struct master_worker *mw);

/* How many workers of generation gen have reported ready. */
size_t supervisor_ready(const struct master *m, unsigned gen);

/* Workers older than gen that may still accept (not yet retired). */
size_t supervisor_accepting_before(const struct master *m, unsigned gen);

/* Client connections held by the workers of generation gen. */
uint64_t supervisor_conns(const struct master *m, unsigned gen);

/*
 * `portcullis check`, keepalived's track_script: does the serving
 * generation accept?  Yes (0) when the master is not stopping and at
 * least one worker of the serving generation reported ready, was not told
 * to stop, and turned its event loop less than SUPERVISOR_CHECK_BEAT_MS
 * before now (monotonic ms).  Else -1 and the reason, one line, in why.
 */
#define SUPERVISOR_CHECK_BEAT_MS 2000 /* workers turn at least once a second */
int supervisor_check(const struct master *m, uint64_t now, char *why,
		     size_t len);

/* Every 5 s while workers drain: "generation N draining: M connections". */
int64_t supervisor_drain_log(struct master *m, uint64_t now);

#endif
