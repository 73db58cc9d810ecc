/*
 * master.h: the master process.  It never handles traffic: it loads the
 * config, binds the listeners, forks and supervises the workers, serves
 * the control socket and acts on signals (nginx's master cycle).
 *
 * Signals stay blocked except inside ppoll(), which waits with them
 * unblocked (the guarantee sigsuspend() gives) and also watches the
 * control socket, the workers' report pipe and an upgrade peer.
 * Handlers only set flags; master_run()'s loop acts on them.
 *
 * master.c is the top of server/: it calls reload.c, upgrade.c,
 * supervisor.c, command.c and the rest, and none of them calls back.  They
 * report what the process must do (enum reload_outcome, enum
 * upgrade_outcome, m_stop_asked) and the loop acts on it, so that
 * stopping, exit status and pid_file are decided here alone.
 * tools/calls lists who calls whom and fails on a cycle.
 */
#ifndef PORTCULLIS_MASTER_H
#define PORTCULLIS_MASTER_H

#include <stdbool.h>

struct master_opts {
	const char *config_path;
	bool daemonize;     /* -d: detach and write pid_file */
};

/* Run the daemon until it is stopped.  Returns the process exit status. */
int master_run(const struct master_opts *opts);

#endif
