/*
 * master.h: the master process.  It never handles traffic: it loads the
 * config, binds the listeners, forks and supervises the workers, and
 * acts on signals (nginx's master cycle).  Handlers only set flags; the
 * loop in master_run() sleeps in sigsuspend() and acts on them.
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
