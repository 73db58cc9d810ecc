/*
 * master_types.h: the master's state, shared by the files that make up the
 * master: master.c (loop, signals, start, stop), supervisor.c (the worker
 * processes), reload.c (generations), command.c (control commands) and
 * upgrade.c (binary upgrade).  Nothing outside server/ includes it.
 *
 * One struct master lives for the whole process (a static in master.c).
 */
#ifndef PORTCULLIS_MASTER_TYPES_H
#define PORTCULLIS_MASTER_TYPES_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "server/admin.h"
#include "server/control.h"
#include "server/listen.h"
#include "server/pidfile.h"

#define MASTER_MAX_WORKERS 1024       /* all generations together */
#define MASTER_FAST_DEATH_MS 2000     /* a death this soon after start counts */
#define MASTER_BACKOFF_MIN_MS 100
#define MASTER_BACKOFF_MAX_MS 30000
#define MASTER_KILL_GRACE_MS 2000     /* after shutdown_timeout, SIGKILL */
#define MASTER_READY_TIMEOUT_MS 10000 /* new workers accepting by then */
#define MASTER_RETIRE_TIMEOUT_MS 5000 /* old workers out of the listeners */
#define MASTER_DRAIN_LOG_MS 5000      /* "generation N draining: M conns" */

struct ban;
struct scoreboard;

/* One worker process, of any generation. */
struct master_worker {
	pid_t mw_pid;           /* 0: free entry */
	unsigned mw_gen;
	unsigned mw_slot;       /* its place in its generation */
	uint64_t mw_started;    /* monotonic ms */
	uint64_t mw_kill_at;    /* SIGKILL deadline once told to stop, or 0 */
	bool mw_ready;          /* reported WORKER_EV_READY: accepting */
	bool mw_retired;        /* reported WORKER_EV_RETIRED: accepts no more */
	bool mw_is_hung;        /* the watchdog killed it */
	int mw_mblock;          /* its metrics block (common/metrics.h), -1:
				   none */
};

/* A worker's place in its generation: respawn bookkeeping. */
struct master_slot {
	unsigned ms_fails;      /* deaths in a row right after start */
	uint64_t ms_start_at;   /* respawn due at, 0 = not pending */
};

/* A generation: one config and the workers started from it. */
struct master_gen {
	unsigned mg_num;            /* 0: empty */
	struct config *mg_cfg;      /* owned */
	int *mg_fds;                /* owned array; the sockets belong to m_ls */
	size_t mg_nfds;
	uid_t mg_uid;               /* workers' identity, -1 when not root */
	gid_t mg_gid;
	struct master_slot *mg_slots; /* owned, one per worker */
	unsigned mg_nslots;
	struct control_sock mg_ctl; /* a new control socket, while starting */
};

enum master_phase {
	MASTER_IDLE,        /* m_cur serves, nothing in progress */
	MASTER_STARTING,    /* m_next's workers start; m_cur (if any) serves */
	MASTER_RETIRING,    /* m_cur serves; older workers leave the listeners */
};

enum master_stopping {
	MASTER_RUNNING,
	MASTER_STOP_GRACEFUL,   /* QUIT, quit, or handed over by an upgrade */
	MASTER_STOP_FAST,       /* TERM, INT, stop */
};

/* Binary upgrade state, both sides (upgrade.c). */
struct master_upgrade {
	pid_t up_child;         /* old side: the new master, until it serves */
	int up_fd;              /* our end of the socketpair to the other master */
	uint64_t up_deadline;   /* old side: the new master must serve by then */
	bool up_is_new;         /* new side: we were started by an upgrade */
	bool up_handed_over;    /* old side: the new master serves, we drain */
	size_t up_len;          /* bytes in up_buf */
	char up_buf[64];        /* a line from the other master */
};

struct master {
	const char *m_path;         /* config file, absolute */
	char m_exe[PATH_MAX];       /* our binary, resolved at start (upgrade) */
	bool m_daemonize;           /* started with -d */
	pid_t m_pid;
	uint64_t m_started;         /* monotonic ms */
	struct master_gen m_cur;    /* serving; mg_num 0 before generation 1 */
	struct master_gen m_next;   /* starting, while MASTER_STARTING */
	unsigned m_last_gen;        /* the last generation number given out */
	uint64_t m_tickets_at;      /* next check of the TLS ticket key (ms) */
	enum master_phase m_phase;
	uint64_t m_phase_deadline;  /* readiness / retirement bound */
	char m_next_failed[160];    /* why m_next cannot start, "" = no reason */
	bool m_reload_queued;       /* a reload was asked for during another */
	char *m_reload_error;       /* the last reload's failure, or NULL */
	unsigned m_reloads_ok, m_reloads_failed;
	struct listen_set m_ls;
	struct master_worker m_workers[MASTER_MAX_WORKERS];
	struct scoreboard *m_board; /* slot i: m_workers[i]'s connections */
	struct rate_holds *m_rate_holds; /* slot i: what m_workers[i]'s
					    connections count in the rate
					    table (common/ratelimit.h) */
	int m_report[2];            /* workers -> master pipe; [0] is ours */
	struct ban *m_ban;          /* nftables bans (server/ban.c) */
	struct control m_ctl;
	struct admin m_admin;       /* the admin endpoint (admin.h) */
	uint64_t m_spark_at;        /* next sparkline sample (monotonic ms) */
	struct master_upgrade m_up;
	enum master_stopping m_stopping;
	enum master_stopping m_stop_asked; /* by `portcullis stop|quit`; the
					     loop acts on it, as on a signal */
	int m_exit_status;
	struct pidfile m_pidfile;   /* the pid file we wrote */
	bool m_serving;             /* generation 1 has served */
	uint64_t m_drain_log_at;    /* next drain progress line, 0 = none */
};

#endif
