/*
 * pidfile.h: pid_file, master side.  The serving master writes its pid
 * there: at start (-d or not), or, after a binary upgrade, the new master
 * once it takes over.  At exit a master removes the file only if it
 * still names it, so an old master never removes its successor's.
 */
#ifndef PORTCULLIS_PIDFILE_H
#define PORTCULLIS_PIDFILE_H

/* The file this process wrote, if any. */
struct pidfile {
	char *pf_path; /* owned; NULL: we wrote none */
};

/*
 * Write our pid to path (borrowed), creating its directory, and remember
 * path in pf.  0, or -1 (logged).
 */
int pidfile_write(struct pidfile *pf, const char *path);

/*
 * Remove the file pf wrote unless it names another process (a new
 * master), then forget it.  Safe when nothing was written.
 */
void pidfile_remove(struct pidfile *pf);

#endif
