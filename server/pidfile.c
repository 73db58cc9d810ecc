/* pidfile.c: writing and removing pid_file (see pidfile.h). */
#include "server/pidfile.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

/*
 * Written to a temporary name and renamed into place, so that a reader
 * (systemd, a script waiting for `-d`) sees either no file or the whole
 * pid, never the empty file between creation and write.
 */
int pidfile_write(struct pidfile *pf, const char *path)
{
	char buf[32], tmp[4200], *dir;
	bool ok;
	int fd, n;

	dir = strdup(path);
	if (dir != NULL) {
		(void)mkdir(dirname(dir), 0755);
		free(dir);
	}
	n = snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		log_error("pid file %s: path too long", path);
		return -1;
	}
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0644);
	if (fd == -1) {
		log_error("pid file %s: %s", tmp, strerror(errno));
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	ok = write(fd, buf, (size_t)n) == n;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) == -1) {
		log_error("pid file %s: %s", path, strerror(errno));
		(void)unlink(tmp);
		return -1;
	}
	free(pf->pf_path);
	pf->pf_path = strdup(path);
	return 0;
}

void pidfile_remove(struct pidfile *pf)
{
	char buf[32] = "";
	int fd;

	if (pf->pf_path == NULL)
		return;
	fd = open(pf->pf_path, O_RDONLY | O_CLOEXEC);
	if (fd != -1) {
		(void)!read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (atoi(buf) == (int)getpid())
			unlink(pf->pf_path);
	}
	free(pf->pf_path);
	pf->pf_path = NULL;
}
