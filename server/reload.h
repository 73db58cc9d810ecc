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

/*
 * What the master must do after a step of the state machine: reload.c
 * moves generations, master.c decides what the process does about them.
 */
enum reload_outcome {
	RELOAD_NONE,          /* nothing */
	RELOAD_FIRST_SERVING, /* generation 1 serves: tell systemd, or take
				 over from the old master (binary upgrade) */
	RELOAD_FIRST_FAILED,  /* generation 1 did not start: stop, exit 1 */
};

struct reload_result {
	enum reload_outcome rr_outcome; /* act on it before anything else */
	int64_t rr_wait_ms;             /* until the next deadline, -1: none */
};

/*
 * Move the state machine on.  A turn ends at the first outcome that is
 * not RELOAD_NONE, so the master acts on it before the next transition.
 */
struct reload_result reload_step(struct master *m, uint64_t now);

/*
 * Stopping: fail the reload in progress and the queued ones.  Returns
 * RELOAD_FIRST_SERVING when generation 1 was retiring the old master's
 * workers (it serves now), else RELOAD_NONE.
 */
enum reload_outcome reload_abort(struct master *m, const char *why);

/* Free what a generation owns (its workers are not touched). */
void reload_gen_free(struct master_gen *g);

#endif
