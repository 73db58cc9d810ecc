/* worker.c: a worker process (see worker.h). */
#include "worker/worker.h"

#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/ratelimit.h"
#include "common/shm.h"
#include "worker/access.h"
#include "worker/health.h"
#include "worker/proxy.h"

#define WORKER_ACCEPT_BATCH 64
#define WORKER_EMFILE_PAUSE_MS 100
#define WORKER_BUF_SLACK 4096 /* rewritten heads grow by a few headers */
#define WORKER_BUF_CACHE 512
#define WORKER_DRAIN_SWEEP 1024 /* accepts left queued when drain starts */
#define WORKER_BEAT_MS 1000     /* an idle worker still turns this often */
#define WORKER_SHARE_MS 10      /* the fair share is recomputed this often */
#define WORKER_SHARE_SLACK 32   /* connections past the share before yielding */
#define WORKER_YIELD_MS 5       /* how long an over-share worker lets others accept */

static void worker_accepting(struct worker *w, bool on)
{
	if (w->w_accepting == on)
		return;
	for (size_t i = 0; i < w->w_nlsn; i++) {
		struct worker_listener *wl = &w->w_lsn[i];

		if (wl->wl_io.io_fd < 0)
			continue;
		if (on) {
			if (loop_add_fd(&w->w_loop, &wl->wl_io,
					EPOLLIN | EPOLLEXCLUSIVE) == -1)
				log_error("listener %s: epoll_ctl: %s",
					  wl->wl_cfg->name, strerror(errno));
		} else {
			loop_del_fd(&w->w_loop, &wl->wl_io);
		}
	}
	w->w_accepting = on;
}

static void worker_resume_accept(struct timer *t)
{
	struct worker *w = t->tm_data;

	if (!w->w_draining && !w->w_is_full)
		worker_accepting(w, true);
}

/*
 * Out of descriptors: stop accepting for a moment instead of spinning on
 * a listener that stays readable.  Existing connections keep going, and
 * accepting resumes by itself.
 */
static void worker_pause_accept(struct worker *w, struct worker_listener *wl)
{
	static uint64_t last_log;

	if (w->w_loop.lp_now - last_log >= 1000) {
		log_warn("listener %s: accept: %s; pausing accepts for %dms",
			 wl->wl_cfg->name, strerror(errno),
			 WORKER_EMFILE_PAUSE_MS);
		last_log = w->w_loop.lp_now;
	}
	worker_accepting(w, false);
	loop_timer_in(&w->w_loop, &w->w_accept_timer, WORKER_EMFILE_PAUSE_MS);
	proxy_drop_pipes(); /* cached splice pipes hold two descriptors each */
}

/*
 * worker_connections reached: leave new connections in the kernel's
 * backlog (other workers, or this one once a connection ends, take them)
 * rather than accepting what cannot be served.
 */
static void worker_full(struct worker *w)
{
	static uint64_t last_log;

	if (w->w_loop.lp_now - last_log >= 1000) {
		log_warn("worker_connections (%u) reached; not accepting until "
			 "a connection closes",
			 w->w_cfg->worker_connections);
		last_log = w->w_loop.lp_now;
	}
	worker_accepting(w, false);
	w->w_is_full = true;
}

static uint32_t worker_peer_load(const _Atomic uint32_t *base, size_t stride,
				 size_t k)
{
	return atomic_load_explicit(
		(const _Atomic uint32_t *)((const char *)base + k * stride),
		memory_order_relaxed);
}

/*
 * The most connections any other worker of this generation holds, plus
 * half again and some slack: past that this worker has clearly taken more
 * than its part.  0 when it has no sibling.  Recomputed at most every
 * WORKER_SHARE_MS from the master's scoreboard (the others' counts are a
 * loop turn old at most).
 */
static size_t worker_fair_share(struct worker *w)
{
	const struct worker_peers *p = &w->w_report.wr_peers;
	const _Atomic uint32_t *mine = w->w_report.wr_conns;
	size_t most = 0, n = 0;

	if (p->wp_n == 0 || mine == NULL)
		return 0;
	if (w->w_share_at != 0 &&
	    w->w_loop.lp_now - w->w_share_at < WORKER_SHARE_MS)
		return w->w_share;
	for (size_t k = 0; k < p->wp_n; k++) {
		const _Atomic uint32_t *conns = (const _Atomic uint32_t *)(
			(const char *)p->wp_conns + k * p->wp_stride);
		uint32_t c;

		if (conns == mine || worker_peer_load(p->wp_gens, p->wp_stride,
						      k) != w->w_generation)
			continue;
		n++;
		c = atomic_load_explicit(conns, memory_order_relaxed);
		if (c > most)
			most = c;
	}
	w->w_share = n > 0 ? most * 3 / 2 + WORKER_SHARE_SLACK : 0;
	w->w_share_at = w->w_loop.lp_now;
	return w->w_share;
}

/*
 * With one shared listening socket, the worker that wakes first takes a
 * whole burst while the others sleep (91/9 seen between two workers).
 * A worker far past the busiest of the others (worker_fair_share) stops
 * accepting for WORKER_YIELD_MS, so that the next wakeups go to them;
 * measured against the busiest, not the average, so that two workers
 * never both hold back on slightly stale counts.  Not for per-worker
 * (reuseport) sockets: nobody else accepts from those.
 */
static bool worker_yields(struct worker *w, const struct worker_listener *wl)
{
	size_t share;

	if (wl->wl_cfg->reuseport)
		return false;
	share = worker_fair_share(w);
	if (share == 0 || proxy_count(w) <= share)
		return false;
	worker_accepting(w, false);
	loop_timer_in(&w->w_loop, &w->w_accept_timer, WORKER_YIELD_MS);
	return true;
}

static void worker_on_accept(struct loop_io *io, uint32_t ev)
{
	struct worker_listener *wl = io->io_data;
	struct worker *w = wl->wl_w;

	for (int i = 0; i < WORKER_ACCEPT_BATCH && !w->w_draining; i++) {
		struct sockaddr_storage peer;
		socklen_t len;
		int fd;

		if (proxy_count(w) >= w->w_cfg->worker_connections) {
			worker_full(w);
			break;
		}
		if (worker_yields(w, wl))
			break;
		len = sizeof(peer);
		fd = accept4(io->io_fd, (struct sockaddr *)&peer, &len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			proxy_accept(w, wl, fd, &peer);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM)
			worker_pause_accept(w, wl);
		else if (errno != EAGAIN && errno != EWOULDBLOCK)
			log_warn("listener %s: accept: %s", wl->wl_cfg->name,
				 strerror(errno));
		break;
	}
}

/* Tell the master about ev (report.h); a lost report is only logged. */
static void worker_report_event(struct worker *w, enum worker_event ev)
{
	(void)report_event(w->w_report.wr_fd, ev);
}

/*
 * Accept what is already queued on the listeners.  With EPOLLEXCLUSIVE a
 * connection's wakeup may have gone to this worker alone just before it
 * left the epoll set; without this sweep that connection would wait in
 * the queue for the next arrival to wake another worker.
 */
static void worker_accept_queued(struct worker *w)
{
	for (size_t i = 0; i < w->w_nlsn; i++) {
		struct worker_listener *wl = &w->w_lsn[i];

		for (int n = 0; n < WORKER_DRAIN_SWEEP && wl->wl_io.io_fd >= 0; n++) {
			struct sockaddr_storage peer;
			socklen_t len = sizeof(peer);
			int fd = accept4(wl->wl_io.io_fd, (struct sockaddr *)&peer,
					 &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

			if (fd >= 0)
				proxy_accept(w, wl, fd, &peer);
			else if (errno != EINTR && errno != ECONNABORTED)
				break;
		}
	}
}

static void worker_on_drain_timeout(struct timer *t)
{
	struct worker *w = t->tm_data;

	log_notice("shutdown_timeout reached with %zu connections open; closing them",
		   proxy_count(w));
	proxy_close_all(w);
	loop_stop(&w->w_loop);
}

/*
 * After connections closed: end a drain once none is left, and accept
 * again below worker_connections.  Run after every loop turn, so the
 * proxy never calls back into the worker.
 */
static void worker_check_done(struct worker *w)
{
	size_t n = proxy_count(w);

	if (w->w_draining && n == 0)
		loop_stop(&w->w_loop);
	if (w->w_is_full && !w->w_draining &&
	    n < w->w_cfg->worker_connections) {
		w->w_is_full = false;
		if (!timer_is_armed(&w->w_accept_timer))
			worker_accepting(w, true);
	}
}

void worker_drain(struct worker *w)
{
	if (w->w_draining)
		return;
	worker_accepting(w, false);
	loop_timer_del(&w->w_loop, &w->w_accept_timer);
	worker_accept_queued(w);
	w->w_draining = true;
	health_stop(w); /* the next generation's worker owns the checks now */
	for (size_t i = 0; i < w->w_nlsn; i++) {
		close(w->w_lsn[i].wl_io.io_fd);
		w->w_lsn[i].wl_io.io_fd = -1;
	}
	worker_report_event(w, WORKER_EV_RETIRED);
	proxy_drain(w);
	loop_timer_in(&w->w_loop, &w->w_drain_timer,
		      w->w_cfg->shutdown_timeout_ms);
	worker_check_done(w);
}

/* SIGUSR1: as the workers' user, so a planted link gains nothing. */
static void worker_reopen_logs(void)
{
	char why[256];

	if (log_reopen(why, sizeof(why)) == -1)
		log_error("reopening the error log: %s", why);
	if (access_reopen(why, sizeof(why)) == -1)
		log_error("reopening the access log: %s", why);
}

static void worker_on_signal(struct loop_io *io, uint32_t ev)
{
	struct worker *w = io->io_data;
	struct signalfd_siginfo si;

	while (read(io->io_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			proxy_close_all(w);
			loop_stop(&w->w_loop);
			break;
		case SIGQUIT:
			worker_drain(w);
			break;
		case SIGUSR1:
			worker_reopen_logs();
			break;
		default:
			break;
		}
	}
}

static void worker_after_turn(struct loop *lp)
{
	struct worker *w = (struct worker *)((char *)lp -
					     offsetof(struct worker, w_loop));

	size_t n;

	proxy_run_pending(w);
	n = proxy_count(w);
	proxy_reap(w);
	access_flush();
	worker_check_done(w);
	/* publish the connection count for `portcullis status` and drain logs */
	if (w->w_report.wr_conns != NULL && n != w->w_nconns_shown) {
		atomic_store_explicit(w->w_report.wr_conns, (uint32_t)n,
				      memory_order_relaxed);
		w->w_nconns_shown = n;
	}
	/* the watchdog's heartbeat: this loop is turning */
	if (w->w_report.wr_beat != NULL && lp->lp_now != w->w_beat_shown) {
		atomic_store_explicit(w->w_report.wr_beat, lp->lp_now,
				      memory_order_relaxed);
		w->w_beat_shown = lp->lp_now;
	}
}

/* An idle worker turns its loop once a WORKER_BEAT_MS for the heartbeat. */
static void worker_on_beat(struct timer *t)
{
	struct worker *w = t->tm_data;

	loop_timer_in(&w->w_loop, &w->w_beat_timer, WORKER_BEAT_MS);
}

/*
 * Empty the capability bounding set while still root (dropping needs
 * CAP_SETPCAP): after setuid() nothing the worker execs or does can get
 * a capability back.  Stops at the first capability the kernel does not
 * know (EINVAL).  Without CAP_SETPCAP (EPERM) whoever started us already
 * narrowed the set (systemd's CapabilityBoundingSet=): leave it so.
 */
static int worker_drop_bounding_set(void)
{
	for (int cap = 0; cap < 64; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0)
			continue;
		if (errno == EINVAL || errno == EPERM)
			return 0;
		return -1;
	}
	return 0;
}

static int worker_drop_privileges(uid_t uid, gid_t gid)
{
	if (uid == (uid_t)-1)
		return 0;
	if (worker_drop_bounding_set() == -1 || setgroups(0, NULL) == -1 ||
	    setgid(gid) == -1 || setuid(uid) == -1 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		log_error("dropping privileges to %u:%u: %s", (unsigned)uid,
			  (unsigned)gid, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Die with the master.  Set after setuid(): the kernel clears the parent
 * death signal when the credentials change, so set before it, a kill -9
 * of the master would leave the workers serving unsupervised and holding
 * the ports.  The master may already be gone (then we were reparented).
 */
static int worker_bind_to_master(pid_t master)
{
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1) {
		log_error("PR_SET_PDEATHSIG: %s", strerror(errno));
		return -1;
	}
	if (getppid() != master) {
		log_error("the master (pid %d) is gone: worker exits",
			  (int)master);
		return -1;
	}
	return 0;
}

static int worker_signals(struct worker *w)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGUSR1);
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd == -1)
		return -1;
	loop_io_init(&w->w_sig_io, fd, worker_on_signal, w);
	return loop_add_fd(&w->w_loop, &w->w_sig_io, EPOLLIN);
}

/* The largest head any listener or route accepts, plus rewrite slack. */
static size_t worker_buf_size(const struct config *cfg)
{
	size_t max = cfg->defaults.max_header_size;

	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];

		if (l->limits.max_header_size > max)
			max = l->limits.max_header_size;
		for (size_t j = 0; j < l->nroutes; j++)
			if (l->routes[j].limits.max_header_size > max)
				max = l->routes[j].limits.max_header_size;
	}
	return max < 16384 ? 16384 + WORKER_BUF_SLACK : max + WORKER_BUF_SLACK;
}

static int worker_listeners(struct worker *w, const int *fds, size_t nfds)
{
	const struct config *cfg = w->w_cfg;
	size_t k = 0;
	int one = 1;

	w->w_lsn = calloc(nfds ? nfds : 1, sizeof(*w->w_lsn));
	if (w->w_lsn == NULL)
		return -1;
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		for (size_t j = 0; j < cfg->listeners[i].nbinds && k < nfds; j++) {
			struct worker_listener *wl = &w->w_lsn[k];

			wl->wl_cfg = &cfg->listeners[i];
			wl->wl_w = w;
			/*
			 * Accepted sockets inherit TCP_NODELAY from the
			 * listener: one setsockopt here instead of one per
			 * connection (harmless if another worker did it).
			 */
			(void)setsockopt(fds[k], IPPROTO_TCP, TCP_NODELAY, &one,
					 sizeof(one));
			loop_io_init(&wl->wl_io, fds[k++], worker_on_accept, wl);
		}
	}
	w->w_nlsn = k;
	return 0;
}

int worker_main(const struct config *cfg, const int *fds, size_t nfds,
		unsigned generation, uid_t uid, gid_t gid,
		const struct worker_report *report)
{
	pid_t master = getppid();
	struct worker w;
	char why[256];
	int rc = 1;

	memset(&w, 0, sizeof(w));
	w.w_cfg = cfg;
	w.w_generation = generation;
	w.w_report.wr_fd = -1;
	if (report != NULL)
		w.w_report = *report;
	(void)prctl(PR_SET_NAME, "portcullis-wrk");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN); /* a log past RLIMIT_FSIZE: EFBIG, not death */
	/* opened before dropping privileges, like the error log */
	if (access_open(cfg->access_log_path, cfg->access_log_format, uid, gid,
			why, sizeof(why)) == -1)
		log_error("access log %s: %s", cfg->access_log_path, why);
	if (worker_drop_privileges(uid, gid) == -1 ||
	    worker_bind_to_master(master) == -1)
		return 2;
	if (loop_init(&w.w_loop) == -1) {
		log_error("epoll_create: %s", strerror(errno));
		return 2;
	}
	w.w_loop.lp_after = worker_after_turn;
	timer_init(&w.w_accept_timer, worker_resume_accept, &w);
	timer_init(&w.w_drain_timer, worker_on_drain_timeout, &w);
	timer_init(&w.w_beat_timer, worker_on_beat, &w);
	buf_pool_init(worker_buf_size(cfg), WORKER_BUF_CACHE);
	w.w_bes = balance_init(cfg, shm_zone(), w.w_report.wr_shares);
	if (rate_table() != NULL && w.w_report.wr_rate_holds != NULL) {
		w.w_rate = rate_worker_new(rate_table(), w.w_report.wr_rate_holds,
					   w.w_report.wr_index);
		if (w.w_rate == NULL) {
			log_error("worker start-up: connection counts: out of "
				  "memory");
			goto fail;
		}
	}
	if (w.w_bes == NULL || proxy_init(&w) == -1 || worker_signals(&w) == -1 ||
	    worker_listeners(&w, fds, nfds) == -1) {
		log_error("worker start-up: %s", strerror(errno));
		goto fail;
	}
	/* the master may have gone while we were starting */
	if (getppid() != master)
		goto fail;
	if (health_start(&w, w.w_report.wr_slot,
			 w.w_report.wr_nslots ? w.w_report.wr_nslots : 1) == -1) {
		log_error("worker start-up: health checks: out of memory");
		goto fail;
	}
	if (w.w_report.wr_beat != NULL)
		loop_timer_in(&w.w_loop, &w.w_beat_timer, WORKER_BEAT_MS);
	worker_accepting(&w, true);
	worker_report_event(&w, WORKER_EV_READY);
	if (loop_run(&w.w_loop) == -1)
		log_error("epoll_wait: %s", strerror(errno));
	else
		rc = 0;
fail:
	health_stop(&w);
	if (w.w_proxy != NULL)
		proxy_cleanup(&w);
	rate_worker_free(w.w_rate);
	balance_free(w.w_bes, cfg->nbackends);
	if (w.w_sig_io.io_fd > 0)
		close(w.w_sig_io.io_fd);
	if (w.w_report.wr_fd >= 0)
		close(w.w_report.wr_fd);
	free(w.w_lsn);
	loop_free(&w.w_loop);
	buf_pool_destroy();
	access_close();
	return rc;
}
