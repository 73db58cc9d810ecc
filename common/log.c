/* log.c: the error log (see log.h). */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static int log_fd = STDERR_FILENO;
static int log_is_syslog;
static enum log_level log_min = LOG_LVL_INFO;
static char log_path[4096] = "stderr";

static const char *const log_names[] = {"debug", "info", "notice", "warn",
					"error"};

int log_level_parse(const char *s)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++)
		if (strcmp(s, log_names[i]) == 0)
			return (int)i;
	return -1;
}

static int log_open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

	if (fd == -1)
		return -1;
	if (log_fd > STDERR_FILENO)
		close(log_fd);
	log_fd = fd;
	return 0;
}

int log_open(const char *path, enum log_level level)
{
	log_min = level;
	if (strcmp(path, "stderr") == 0) {
		if (log_fd > STDERR_FILENO)
			close(log_fd);
		log_fd = STDERR_FILENO;
		log_is_syslog = 0;
	} else if (strcmp(path, "syslog") == 0) {
		openlog("portcullis", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_is_syslog = 1;
	} else {
		if (log_open_file(path) == -1)
			return -1;
		log_is_syslog = 0;
	}
	snprintf(log_path, sizeof(log_path), "%s", path);
	return 0;
}

int log_reopen(void)
{
	if (log_is_syslog || strcmp(log_path, "stderr") == 0)
		return 0;
	return log_open_file(log_path);
}

void log_chown(unsigned uid, unsigned gid)
{
	if (log_fd > STDERR_FILENO && !log_is_syslog)
		(void)!fchown(log_fd, uid, gid);
}

int log_enabled(enum log_level lvl)
{
	return lvl >= log_min;
}

static void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_NOTICE,
				   LOG_WARNING, LOG_ERR};
	char line[2048];
	struct timespec ts;
	struct tm tm;
	int n, saved = errno;

	if (log_is_syslog) {
		vsyslog(prio[lvl], fmt, ap);
		errno = saved;
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	n = (int)strftime(line, sizeof(line), "%Y/%m/%d %H:%M:%S", &tm);
	n += snprintf(line + n, sizeof(line) - (size_t)n, " [%s] %d: ",
		      log_names[lvl], (int)getpid());
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(log_fd, line, (size_t)n);
	errno = saved;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (lvl < log_min)
		return;
	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}
