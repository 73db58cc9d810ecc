/* log.c: the error log (see log.h). */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/*
 * O_NOFOLLOW: a link planted where a log file should be is refused, never
 * followed.  O_NONBLOCK: a FIFO planted there fails (ENXIO) instead of
 * blocking the opener; it is cleared again once the file is known to be
 * a regular one.
 */
#define LOG_OPEN_FLAGS \
	(O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK)
#define LOG_FILE_MODE 0640
#define LOG_MAX_GROUPS 64

static int log_fd = STDERR_FILENO;
static int log_is_syslog;
static enum log_level log_min = LOG_LVL_INFO;
static char log_path[4096] = "stderr";
static uid_t log_uid = (uid_t)-1; /* the workers' user, for log_file_open */
static gid_t log_gid = (gid_t)-1;

static const char *const log_names[] = {"debug", "info", "notice", "warn",
					"error"};

int log_level_parse(const char *s)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++)
		if (strcmp(s, log_names[i]) == 0)
			return (int)i;
	return -1;
}

/*
 * open(2) with the filesystem identity of uid:gid (setfsuid(2)): the
 * kernel resolves the path and checks permissions as the workers' user
 * would, so nothing it could not open itself is opened for it.  The
 * caller is root and single-threaded; its identity is restored before
 * returning.
 */
static int log_open_as(const char *path, int flags, uid_t uid, gid_t gid)
{
	gid_t groups[LOG_MAX_GROUPS];
	int ngroups = getgroups(LOG_MAX_GROUPS, groups);
	int fd, saved;
	uid_t old_uid;
	gid_t old_gid;

	if (ngroups == -1 || setgroups(1, &gid) == -1) {
		/* cannot act as uid:gid (more groups than we can restore):
		 * the caller takes the root path, which never chowns */
		errno = EPERM;
		return -1;
	}
	old_gid = (gid_t)setfsgid(gid);
	old_uid = (uid_t)setfsuid(uid);
	if ((uid_t)setfsuid((uid_t)-1) != uid ||
	    (gid_t)setfsgid((gid_t)-1) != gid) {
		fd = -1;
		saved = EPERM;
	} else {
		fd = open(path, flags, LOG_FILE_MODE);
		saved = errno;
	}
	(void)setfsuid(old_uid);
	(void)setfsgid(old_gid);
	if (setgroups((size_t)ngroups, groups) == -1 ||
	    (uid_t)setfsuid((uid_t)-1) != old_uid)
		fatal("restoring the master's identity after opening %s: %s",
		      path, strerror(errno));
	errno = saved;
	return fd;
}

/*
 * Is the directory of path set-group-ID?  Files made in it take its group
 * (Debian's /var/log/portcullis is root:adm 2750).
 */
static bool log_dir_is_setgid(const char *path)
{
	char dir[4096];
	char *slash;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		return false;
	*(slash == dir ? slash + 1 : slash) = '\0';
	return stat(dir, &st) == 0 && (st.st_mode & S_ISGID);
}

/*
 * As root, where the workers' user may not create the file (a directory
 * only root writes to): a file root creates itself is given to uid:gid,
 * or to uid alone in a set-group-ID directory, where it keeps the
 * directory's group (adm reads it, as logrotate's "create 0640 portcullis
 * adm" would make it); one that is already there is used as it is and
 * never chowned.
 */
static int log_open_root(const char *path, uid_t uid, gid_t gid)
{
	int fd = open(path, LOG_OPEN_FLAGS | O_CREAT | O_EXCL, LOG_FILE_MODE);

	if (fd >= 0) {
		if (log_dir_is_setgid(path))
			gid = (gid_t)-1;
		if (fchown(fd, uid, gid) == -1) {
			int saved = errno;

			close(fd);
			errno = saved;
			return -1;
		}
		return fd;
	}
	if (errno != EEXIST)
		return -1;
	return open(path, LOG_OPEN_FLAGS);
}

/* What was opened must be a plain file with no other name. */
static int log_file_check(int fd, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "fstat: %s", strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file: refused");
		return -1;
	}
	if (st.st_nlink > 1) {
		snprintf(err, errlen,
			 "has %lu hard links: refused (a log file has one name)",
			 (unsigned long)st.st_nlink);
		return -1;
	}
	if (fcntl(fd, F_SETFL, O_APPEND) == -1) {
		snprintf(err, errlen, "fcntl: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int log_file_open(const char *path, uid_t uid, gid_t gid, char *err,
		  size_t errlen)
{
	int fd;

	if (uid == (uid_t)-1 || geteuid() != 0) {
		fd = open(path, LOG_OPEN_FLAGS | O_CREAT, LOG_FILE_MODE);
	} else {
		fd = log_open_as(path, LOG_OPEN_FLAGS | O_CREAT, uid, gid);
		if (fd == -1 && (errno == EACCES || errno == EPERM))
			fd = log_open_root(path, uid, gid);
	}
	if (fd == -1) {
		if (errno == ELOOP)
			snprintf(err, errlen,
				 "is a symbolic link: refused (log files are "
				 "never opened through a link)");
		else
			snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	if (log_file_check(fd, err, errlen) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static int log_open_file(const char *path, char *err, size_t errlen)
{
	int fd = log_file_open(path, log_uid, log_gid, err, errlen);

	if (fd == -1)
		return -1;
	if (log_fd > STDERR_FILENO)
		close(log_fd);
	log_fd = fd;
	return 0;
}

int log_open(const char *path, enum log_level level, uid_t uid, gid_t gid,
	     char *err, size_t errlen)
{
	log_min = level;
	log_uid = uid;
	log_gid = gid;
	if (strcmp(path, "stderr") == 0) {
		if (log_fd > STDERR_FILENO)
			close(log_fd);
		log_fd = STDERR_FILENO;
		log_is_syslog = 0;
	} else if (strcmp(path, "syslog") == 0) {
		openlog("portcullis", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_is_syslog = 1;
	} else {
		if (log_open_file(path, err, errlen) == -1)
			return -1;
		log_is_syslog = 0;
	}
	snprintf(log_path, sizeof(log_path), "%s", path);
	return 0;
}

int log_reopen(char *err, size_t errlen)
{
	if (log_is_syslog || strcmp(log_path, "stderr") == 0)
		return 0;
	return log_open_file(log_path, err, errlen);
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
