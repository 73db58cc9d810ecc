/*
 * upgrade.h: binary upgrade (SIGUSR2, `portcullis upgrade`): the running
 * master starts its binary again (the path resolved from /proc/self/exe
 * at start, so a package upgrade that replaced the file is picked up),
 * hands it the listening sockets, and once the new master serves, drains
 * its own workers and exits.  No listening socket is ever closed, so no
 * connection is refused.
 *
 * The handshake, over an AF_UNIX socketpair inherited by the new master:
 *
 *   old: socketpair(); fork(); the child clears FD_CLOEXEC on the
 *        listening sockets and its end of the pair and execs
 *        `BINARY -c CONFIG [-d]` with
 *          PORTCULLIS_LISTEN_FDS=FD=ADDR;FD=ADDR...   (listen_export())
 *          PORTCULLIS_UPGRADE_FD=FD                    (its end of the pair)
 *   new: adopts the sockets instead of binding them (listen_adopt()),
 *        does not daemonize and does not touch the pid file or the control
 *        socket yet; starts generation 1.  Once every worker accepts, it
 *        takes over the control socket (binds a new one at the path),
 *        rewrites pid_file, and writes "ready PID\n".
 *   old: sends MAINPID=PID to systemd (with NotifyAccess=main only the
 *        main pid may), answers `portcullis upgrade` with OK, writes
 *        "ok\n", and stops gracefully: its workers drain, it exits 0.
 *        It neither sends STOPPING=1 nor removes the new master's
 *        pid_file or control socket.
 *   new: on "ok\n" (or EOF, or after UPGRADE_ACK_TIMEOUT_MS) sends
 *        MAINPID=its pid, READY=1 and STATUS= itself.
 *
 * If the new master exits before it is ready, or is not ready within
 * UPGRADE_TIMEOUT_MS (it is then sent SIGTERM), the upgrade fails and
 * the old master keeps serving as if nothing happened.  The new master
 * is forked by the old one but is not a worker: no PR_SET_PDEATHSIG, so
 * it outlives its parent and is reparented to init (systemd).
 */
#ifndef PORTCULLIS_UPGRADE_H
#define PORTCULLIS_UPGRADE_H

#include <stddef.h>
#include <stdint.h>

#include "server/master_types.h"

#define UPGRADE_ENV_FD "PORTCULLIS_UPGRADE_FD"
#define UPGRADE_TIMEOUT_MS 30000      /* the new master must serve by then */
#define UPGRADE_ACK_TIMEOUT_MS 5000   /* the old master's "ok" */

/* Set up m->m_up with no upgrade going on. */
void upgrade_init(struct master *m);

/*
 * New side, at start: if started by an upgrade, adopt the inherited
 * listening sockets into m->m_ls and the peer descriptor, and remove both
 * variables from the environment.  0 (also when not an upgrade), or -1
 * with a message in err.
 */
int upgrade_adopt(struct master *m, char *err, size_t errlen);

/*
 * Old side: start the new binary.  0 once it runs (the answer comes
 * later), or -1 with the reason in err (nothing changed).
 */
int upgrade_start(struct master *m, char *err, size_t errlen);

/* Old side: the new master (m->m_up.up_child) exited with status. */
void upgrade_child_exited(struct master *m, int status);

/* What the master must do after upgrade_on_readable(). */
enum upgrade_outcome {
	UPGRADE_NONE,        /* nothing */
	UPGRADE_HANDED_OVER, /* old side: the new master serves; stop
				gracefully (drain the workers, exit 0) */
};

/* Either side: the peer descriptor is readable.  Returns what to do. */
enum upgrade_outcome upgrade_on_readable(struct master *m);

/*
 * New side: generation 1 serves; take over from the old master (control
 * socket, pid_file, "ready PID").
 */
void upgrade_new_serving(struct master *m);

/* Deadlines of either side.  Returns ms until the next, or -1. */
int64_t upgrade_timers(struct master *m, uint64_t now);

/* Old side, stopping: give up an upgrade that has not handed over yet. */
void upgrade_abort(struct master *m);

#endif
