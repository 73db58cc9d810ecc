/*
 * control.h: the control socket's server side, in the master: it
 * listens, reads commands and writes answers for `portcullis
 * reload|status|...` (the client is cli.c; command.c executes them).
 *
 * The socket is an AF_UNIX stream socket at `control_socket`, mode 0600,
 * owned by the master's effective uid; with `control_socket_group`, mode
 * 0660 and that group.  Every connection's peer is checked with
 * SO_PEERCRED: uid 0 and the master's own euid may run every command; a
 * member of the group (primary or supplementary, SO_PEERGROUPS) only the
 * read-only ones (control_cmd_is_readonly()); any other peer, or another
 * command from a member, is answered "ERR permission denied" and logged
 * with its uid (at most once a CONTROL_REFUSAL_LOG_MS).
 *
 * The protocol: one command per connection, in lines of text.
 *
 *   client:  COMMAND "\n"                 one line, at most 255 bytes
 *   master:  ( "| " TEXT "\n" )*          zero or more lines of output
 *            ( "OK" [" " TEXT] | "ERR " TEXT ) "\n"   the last line
 *
 * then the master closes the connection.  Commands: "status" (answers at
 * once), "check" (answers at once: OK, or ERR with why the serving
 * generation does not accept), "reload" (answers when the new generation
 * serves, or with the FILE:LINE:COL errors of the config as "| " lines
 * and ERR), "upgrade"
 * (answers when the new binary's master serves, or ERR), "reopen" (the
 * log files, as SIGUSR1; answers at once), "stop" and
 * "quit" (fast and graceful stop: answer OK when every worker has exited,
 * just before the master exits).  Nothing is ever waited on without a
 * bound: a client has CONTROL_IO_TIMEOUT_MS to send its command and to
 * read the answer; the waits for reload/upgrade/quit are bounded by the
 * master (readiness timeout, shutdown_timeout).
 *
 * The listening socket and every connection are non-blocking and served
 * from the master's ppoll() loop: control_pollfds() adds their pollfds,
 * control_dispatch() handles what they report.
 */
#ifndef PORTCULLIS_CONTROL_H
#define PORTCULLIS_CONTROL_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CONTROL_LINE_MAX 256       /* a command line, "\n" included */
#define CONTROL_MAX_CONNS 32       /* more are refused */
#define CONTROL_IO_TIMEOUT_MS 5000 /* to send the command / read the answer */
#define CONTROL_IDLE_MS 1000       /* to send a first byte: the CLI does at once */
#define CONTROL_REFUSAL_LOG_MS 10000 /* refusals are logged once per interval */

/* What a connection waits for after its command (command.c sets it). */
enum control_wait {
	CONTROL_WAIT_NONE,
	CONTROL_WAIT_RELOAD_QUEUED, /* the next reload to start */
	CONTROL_WAIT_RELOAD,        /* the reload in progress */
	CONTROL_WAIT_UPGRADE,       /* the binary upgrade in progress */
	CONTROL_WAIT_EXIT,          /* the master's exit (stop, quit) */
};

struct control_conn {
	int cc_fd;
	int cc_pollidx;             /* its pollfd this turn, -1 if none */
	enum control_wait cc_wait;
	bool cc_done;               /* last line queued: close once written */
	bool cc_eof;                /* the client half-closed after its command */
	bool cc_readonly;           /* a control_socket_group member: read-only
				       commands only */
	uid_t cc_uid;               /* the peer, from SO_PEERCRED */
	pid_t cc_pid;
	uint64_t cc_deadline;       /* monotonic ms; 0 while waiting */
	uint64_t cc_accepted;       /* monotonic ms of the accept */
	size_t cc_inlen;
	char cc_in[CONTROL_LINE_MAX];
	char *cc_out;               /* owned; cc_out[cc_outoff..cc_outlen) unsent */
	size_t cc_outlen, cc_outoff, cc_outcap;
};

/* The listening socket at one path. */
struct control_sock {
	int cs_fd;                  /* -1: none */
	char *cs_path;              /* owned */
	dev_t cs_dev;               /* the inode we bound, so that we only */
	ino_t cs_ino;               /* ever unlink our own socket */
};

struct control;
/* Called with each command line (without "\n"); borrows cc. */
typedef void (*control_cmd_cb)(struct control *ctl, struct control_conn *cc,
			       const char *cmd);

struct control {
	struct control_sock ctl_sock;
	struct control_conn *ctl_conns[CONTROL_MAX_CONNS]; /* owned, NULL: free */
	uint64_t ctl_refused;       /* refusals not yet logged */
	uint64_t ctl_refusal_log_at; /* when the next refusal may be logged */
	int ctl_listen_idx;         /* the listening socket's pollfd, or -1 */
	gid_t ctl_gid;              /* control_socket_group, (gid_t)-1: none */
	control_cmd_cb ctl_cb;
	void *ctl_data;             /* for the callback (the master) */
};

/* Set up ctl with no socket yet. */
void control_init(struct control *ctl, control_cmd_cb cb, void *data);

/*
 * Bind a new listening socket at path into cs, mode 0600 from the start
 * (umask around bind()); missing directories are created (0755).  A stale
 * socket at path is replaced; a live one too when `replace` (the old
 * master of a binary upgrade), else it means another master runs: -1.
 * 0, or -1 with a message in err.
 */
int control_sock_open(struct control_sock *cs, const char *path, bool replace,
		      char *err, size_t errlen);

/*
 * Give cs's path to group gid with mode 0660, or back to 0600 when gid is
 * (gid_t)-1; only while the path is still the socket we bound.  0, or -1
 * with a message in err (the mode is then left 0600).
 */
int control_sock_grant(struct control_sock *cs, gid_t gid, char *err,
		       size_t errlen);

/*
 * From now on, members of gid ((gid_t)-1: nobody) may run the read-only
 * commands: the current socket, and those control_set_sock() installs
 * later, get that group.  A failure is logged; the socket stays 0600.
 */
void control_set_group(struct control *ctl, gid_t gid);

/*
 * May a control_socket_group member run cmd?  Its first word must be one
 * of the commands that only read: "status" (with any arguments) and
 * "check".  Never reload, upgrade, stop, quit, drain, enable, reopen.
 */
bool control_cmd_is_readonly(const char *cmd);

/* Close cs, and unlink its path if `unlink_path` and it is still ours. */
void control_sock_close(struct control_sock *cs, bool unlink_path);

/*
 * Serve on cs from now on (takes it over), closing and unlinking the old;
 * cs gets the group of control_set_group().
 */
void control_set_sock(struct control *ctl, struct control_sock *cs);

/* Add the pollfds of the socket and its connections; returns how many. */
size_t control_pollfds(struct control *ctl, struct pollfd *pfd, size_t max);

/* Handle what the pollfds filled by control_pollfds() report. */
void control_dispatch(struct control *ctl, const struct pollfd *pfd);

/* Close connections past their deadline.  Returns ms to the next, or -1. */
int64_t control_timers(struct control *ctl, uint64_t now);

/* Queue an output line ("| " TEXT); a "\n" in text starts another line. */
void control_line(struct control_conn *cc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Queue the last line (OK or ERR with text) and close once it is sent. */
void control_finish(struct control_conn *cc, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Answer every connection waiting for `w`: the lines (may be NULL), then
 * OK or ERR with msg.
 */
void control_finish_all(struct control *ctl, enum control_wait w, bool ok,
			char *const *lines, size_t nlines, const char *msg);

/* Move every connection waiting for `from` to wait for `to`. */
void control_promote(struct control *ctl, enum control_wait from,
		     enum control_wait to);

/* How many connections wait for w. */
size_t control_waiting(const struct control *ctl, enum control_wait w);

/* Try once to send what is queued, then close every connection. */
void control_close_all(struct control *ctl);

/* In a forked child: close every descriptor of ctl, touch nothing else. */
void control_close_fds(const struct control *ctl);

#endif
