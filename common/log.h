/*
 * log.h: the error log.  Lines look like
 *   2026/11/29 21:14:40 [warn] 1234: backend web: connect 10.0.0.1:80: Connection refused
 * and go to stderr, syslog or a file opened O_APPEND (so every process
 * of the daemon can share it).  log_reopen() is for SIGUSR1 rotation.
 */
#ifndef PORTCULLIS_LOG_H
#define PORTCULLIS_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

enum log_level {
	LOG_LVL_DEBUG,
	LOG_LVL_INFO,
	LOG_LVL_NOTICE,
	LOG_LVL_WARN,
	LOG_LVL_ERROR,
};

/*
 * Send the log to path ("stderr", "syslog" or a file) at level and above.
 * A file is opened with log_file_open(path, uid, gid); log_reopen() uses
 * the same uid/gid.  Returns 0, or -1 with the reason in err (the
 * previous destination stays in use).
 */
int log_open(const char *path, enum log_level level, uid_t uid, gid_t gid,
	     char *err, size_t errlen);

/* Reopen the current file (after rotation).  0, or -1 with err filled. */
int log_reopen(char *err, size_t errlen);

/*
 * Open a log file for appending, safely for a root process whose workers
 * run as uid:gid (not -1) and may own the log directory (the
 * CVE-2016-1247 class): the file is opened as uid:gid would open it
 * (setfsuid); only where that user may not create it does root open it,
 * creating it exclusively and then giving it to uid:gid, or using an
 * existing one untouched.  A symbolic link, FIFO, device or file with
 * another hard link is refused.  A file that is created gets mode 0640.
 * uid -1 (or not root): a plain open with the same checks.  Returns the
 * descriptor, or -1 with the reason in err.
 */
int log_file_open(const char *path, uid_t uid, gid_t gid, char *err,
		  size_t errlen);

/* Parse "debug" .. "error"; -1 if unknown. */
int log_level_parse(const char *s);

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

/* True when messages of lvl would be written (skip costly formatting). */
int log_enabled(enum log_level lvl);

/* Log at error level and exit(1).  Start-up and broken invariants only. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
