/*
 * logfiles.h: the master's side of log rotation.  SIGUSR1 (master.c) and
 * `portcullis reopen` (command.c, for logrotate) both come here, so that
 * neither calls the other.
 */
#ifndef PORTCULLIS_LOGFILES_H
#define PORTCULLIS_LOGFILES_H

#include <stddef.h>

#include "server/master_types.h"

/*
 * Reopen the error log, re-create the access log for the workers (both
 * with log_file_open's rules), and tell every worker to reopen its own.
 * Logs what it did.  Returns 0, or -1 with the first failure in err (the
 * files already open stay in use).
 */
int logfiles_reopen(struct master *m, char *err, size_t errlen);

#endif
