/* pidfile.c: writing and removing pid_file (see pidfile.h). */
#include "server/pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

int pidfile_write(struct pidfile *pf, const char *path)
{
	char buf[32], *dir;
	int fd, n;

	dir = strdup(path);
	if (dir != NULL) {
		(void)mkdir(dirname(dir), 0755);
		free(dir);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1) {
		log_error("pid file %s: %s", path, strerror(errno));
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		log_error("pid file %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
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
