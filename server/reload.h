/*
 * reload.h: generations and the reload that replaces one by the next
 * (portcullis(8), RELOADS), as a small state machine on m->m_phase:
 *
 *   IDLE --reload_begin()--> STARTING: the new config is loaded and
 *     validated, new listeners bound, the new generation's workers forked.
 *     Any failure up to here leaves the serving generation untouched.
 *   STARTING --every new worker reported ready--> RETIRING: the new
 *     generation serves; the older workers get SIGQUIT (stop accepting,
 *     drain, exit within shutdown_timeout).
 *     (a new worker dies, or MASTER_READY_TIMEOUT_MS passes: the new
 *     workers are stopped, the old generation keeps serving, the reload
 *     has failed)
 *   RETIRING --every older worker reported it left the listeners (or
 *     MASTER_RETIRE_TIMEOUT_MS)--> IDLE: "reload: generation N serving";
 *     `portcullis reload` gets its OK, so a connection opened after that
 *     answer is served by the new generation only.
 *
 * A reload asked for while one is in progress is queued (several coalesce
 * into one, which re-reads the file after the current one ends); it is
 * never lost and never runs concurrently.  Generation 1 at start-up goes
 * through the same states.
 */
#ifndef PORTCULLIS_RELOAD_H
#define PORTCULLIS_RELOAD_H

#include <stddef.h>
#include <stdint.h>

#include "server/master_types.h"

/*
 * Build generation 1 from cfg (takes it) into m->m_next: identity, error
 * log, listeners, control socket; no process yet.  0, or -1 (logged).
 */
int reload_prepare_first(struct master *m, struct config *cfg);

/* Fork generation 1's workers (after daemonizing).  0, or -1 (logged). */
int reload_launch_first(struct master *m);

/* Ask for a reload (SIGHUP, `portcullis reload`).  Waiters are answered
 * through the control connections waiting for CONTROL_WAIT_RELOAD*. */
void reload_request(struct master *m);

/* Move the state machine on.  Returns ms until its next deadline, or -1. */
int64_t reload_step(struct master *m, uint64_t now);

/* Stopping: fail the reload in progress and the queued ones. */
void reload_abort(struct master *m, const char *why);

/* Free what a generation owns (its workers are not touched). */
void reload_gen_free(struct master_gen *g);

#endif
