/*
 * cli.h: the control socket's client side, run by the command line
 * `portcullis [-c FILE] reload|status|check|stop|quit|upgrade|drain|enable`
 * in a process of its own (control.h has the protocol and the master's
 * side; command.h what the master does with a command).
 */
#ifndef PORTCULLIS_CLI_H
#define PORTCULLIS_CLI_H

#include <stddef.h>
#include <stdint.h>

/* Where the master listens and how long a graceful stop may take. */
struct cli_settings {
	char st_socket[108];        /* control_socket */
	char st_pid_file[4096];     /* pid_file */
	uint32_t st_shutdown_ms;    /* shutdown_timeout */
};

/*
 * Read control_socket, pid_file and shutdown_timeout from the file at path,
 * without validating the rest of it: a broken file must still let
 * `portcullis reload` reach the master, which reports the errors.  Keys
 * missing or unreadable get their defaults.  Always fills *out.
 */
void cli_settings_read(const char *path, struct cli_settings *out);

/* Is cmd a command the control socket knows? */
int cli_is_command(const char *cmd);

/*
 * Send cmd to the master described by the config at config_path, print
 * its answer ("| " lines and OK text to stdout; to stderr on ERR) and
 * return the exit status: 0 on OK, 1 on ERR, no master, or no answer in
 * time (the bound depends on the command: "check", keepalived's, has
 * 700 ms all told and prints nothing on success, one line on failure).
 *
 * When nothing listens at control_socket (the file was edited to move it
 * and the master has not reloaded yet), the master named by pid_file is
 * asked at the path it listens on, found in /proc/net/unix.
 */
int cli_run(const char *config_path, const char *cmd);

#endif
