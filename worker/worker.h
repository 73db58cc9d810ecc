/*
 * worker.h: one worker process: its event loop, the listening sockets it
 * accepts on, its view of the backends and its connections.  (The master
 * forks and supervises it: server/supervisor.h.)
 */
#ifndef PORTCULLIS_WORKER_H
#define PORTCULLIS_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "worker/balance.h"
#include "worker/loop.h"
#include "worker/report.h"

struct proxy;
struct rate_holds;
struct rate_worker;
struct worker;

/*
 * Read-only view of every worker's connection count and generation (the
 * master's scoreboard), for a fair share of new connections: slot k's
 * count is at wp_conns + k * wp_stride bytes.  wp_n 0: none.
 */
struct worker_peers {
	const _Atomic uint32_t *wp_conns;
	const _Atomic uint32_t *wp_gens;
	size_t wp_stride;           /* bytes from one slot to the next */
	size_t wp_n;
};

/* Where a worker reports to its master; both are optional. */
struct worker_report {
	int wr_fd;                  /* report pipe, write end; -1: none */
	_Atomic uint32_t *wr_conns; /* open client connections, in memory
				       shared with the master; NULL: none */
	_Atomic uint32_t *wr_shares; /* by zone server slot: this worker's
					connections to it; NULL: none */
	_Atomic uint64_t *wr_beat;  /* heartbeat for the master's watchdog:
				       monotonic ms of the last loop turn */
	struct worker_peers wr_peers; /* the other workers' counts */
	unsigned wr_slot;           /* this worker's slot in its generation */
	unsigned wr_nslots;         /* workers in the generation (health
				       checks: who owns which server) */
	struct rate_holds *wr_rate_holds; /* its hold list is at wr_index:
					     connection counts to give back
					     if it dies; NULL: none */
	unsigned wr_index;          /* its index in the master's worker table */
};

/* One listening socket (one bind address of a listener). */
struct worker_listener {
	const struct cfg_listener *wl_cfg; /* borrowed from the config */
	struct loop_io wl_io;
	struct worker *wl_w;
};

struct worker {
	struct loop w_loop;
	const struct config *w_cfg;        /* borrowed; outlives the worker */
	unsigned w_generation;
	struct worker_listener *w_lsn;
	size_t w_nlsn;
	bool w_accepting;                  /* listeners registered with epoll */
	bool w_is_full;                    /* at worker_connections */
	struct timer w_accept_timer;       /* resume accepting after EMFILE */
	struct balance_backend *w_bes;     /* one per cfg backend */
	struct loop_io w_sig_io;           /* signalfd */
	bool w_draining;                   /* graceful stop in progress */
	struct timer w_drain_timer;        /* shutdown_timeout */
	struct proxy *w_proxy;             /* its connections (worker/proxy.c) */
	struct rate_worker *w_rate;        /* connection counts (ratelimit.h);
					      NULL: none counted */
	struct worker_report w_report;     /* borrowed from worker_main's caller */
	size_t w_nconns_shown;             /* last count put in wr_conns */
	struct timer w_beat_timer;         /* a loop turn at least every
					      WORKER_BEAT_MS, even when idle */
	uint64_t w_beat_shown;             /* last time put in wr_beat */
	uint64_t w_share_at;               /* when w_share was computed */
	size_t w_share;                    /* fair share of the generation's
					      connections, plus slack */
};

/*
 * The body of a worker process.  fds holds one listening socket per bind
 * address, in config order (listener by listener).  Drops privileges to
 * uid/gid when they are not -1.  Reports WORKER_EV_READY once accepting
 * and WORKER_EV_RETIRED once draining to report->wr_fd, and keeps its
 * connection count in report->wr_conns; closes wr_fd at exit.  Returns
 * the process exit status.
 */
int worker_main(const struct config *cfg, const int *fds, size_t nfds,
		unsigned generation, uid_t uid, gid_t gid,
		const struct worker_report *report);

/* Stop accepting and finish what is in flight (SIGQUIT, reload). */
void worker_drain(struct worker *w);


#endif
