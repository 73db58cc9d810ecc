/*
 * log.h: the error log.  Lines look like
 *   2026/11/29 21:14:40 [warn] 1234: backend web: connect 10.0.0.1:80: Connection refused
 * and go to stderr, syslog or a file opened O_APPEND (so every process
 * of the daemon can share it).  log_reopen() is for SIGUSR1 rotation.
 */
#ifndef PORTCULLIS_LOG_H
#define PORTCULLIS_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LVL_DEBUG,
	LOG_LVL_INFO,
	LOG_LVL_NOTICE,
	LOG_LVL_WARN,
	LOG_LVL_ERROR,
};

/*
 * Send the log to path ("stderr", "syslog" or a file) at level and above.
 * Returns 0, or -1 with errno set when the file cannot be opened (the
 * previous destination stays in use).
 */
int log_open(const char *path, enum log_level level);

/* Reopen the current file (after rotation).  0 or -1 with errno. */
int log_reopen(void);

/* Make the current log file owned by uid/gid so workers can reopen it. */
void log_chown(unsigned uid, unsigned gid);

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
