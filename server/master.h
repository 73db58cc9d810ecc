/*
 * master.h: the master process.  It never handles traffic: it loads the
 * config, binds the listeners, forks and supervises the workers, serves
 * the control socket and acts on signals (nginx's master cycle).
 *
 * Signals stay blocked except inside ppoll(), which waits with them
 * unblocked (the guarantee sigsuspend() gives) and also watches the
 * control socket, the workers' report pipe and an upgrade peer.
 * Handlers only set flags; master_run()'s loop acts on them.
 */
#ifndef PORTCULLIS_MASTER_H
#define PORTCULLIS_MASTER_H

#include <stdbool.h>

struct master;

struct master_opts {
	const char *config_path;
	bool daemonize;     /* -d: detach and write pid_file */
};

/* Run the daemon until it is stopped.  Returns the process exit status. */
int master_run(const struct master_opts *opts);

/*
 * For the other files of the master (master_types.h): begin a graceful
 * (fast false) or fast stop.  A fast stop may follow a graceful one.
 */
void master_stop(struct master *m, bool fast);

/* Write pid_file with our pid.  0, or -1 (logged). */
int master_write_pid(struct master *m);

#endif
