/*
 * command.h: the control socket's commands executed inside the master
 * (control.c brings them in, cli.c sends them): status, check, reload,
 * upgrade, stop, quit, drain, enable.
 */
#ifndef PORTCULLIS_COMMAND_H
#define PORTCULLIS_COMMAND_H

#include "server/control.h"

/*
 * The control_cmd_cb of the master (ctl->ctl_data is the struct master).
 * Either answers cc at once or sets what it waits for (cc->cc_wait).
 */
void command_run(struct control *ctl, struct control_conn *cc, const char *cmd);

#endif
