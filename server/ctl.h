/*
 * ctl.h: the client side of the control socket (control.h has the
 * protocol): `portcullis [-c FILE] reload|status|stop|quit|upgrade`.
 */
#ifndef PORTCULLIS_CTL_H
#define PORTCULLIS_CTL_H

#include <stddef.h>
#include <stdint.h>

/* Where the master listens and how long a graceful stop may take. */
struct ctl_settings {
	char cs_socket[108];        /* control_socket */
	char cs_pid_file[4096];     /* pid_file */
	uint32_t cs_shutdown_ms;    /* shutdown_timeout */
};

/*
 * Read control_socket, pid_file and shutdown_timeout from the file at path,
 * without validating the rest of it: a broken file must still let
 * `portcullis reload` reach the master, which reports the errors.  Keys
 * missing or unreadable get their defaults.  Always fills *out.
 */
void ctl_settings_read(const char *path, struct ctl_settings *out);

/* Is cmd a command the control socket knows? */
int ctl_is_command(const char *cmd);

/*
 * Send cmd to the master described by the config at config_path, print
 * its answer ("| " lines and OK text to stdout; to stderr on ERR) and
 * return the exit status: 0 on OK, 1 on ERR, no master, or no answer in
 * time (the bound depends on the command).
 *
 * When nothing listens at control_socket (the file was edited to move it
 * and the master has not reloaded yet), the master named by pid_file is
 * asked at the path it listens on, found in /proc/net/unix.
 */
int ctl_run(const char *config_path, const char *cmd);

#endif
