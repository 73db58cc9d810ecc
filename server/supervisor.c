/* supervisor.c: forking, reaping and respawning workers (see
 * supervisor.h).  Runs in the master; worker/worker.c runs in them. */
#include "server/supervisor.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/ratelimit.h"
#include "common/timer.h"
#include "server/ban.h"
#include "server/notify.h"
#include "server/scoreboard.h"
#include "worker/worker.h"

#define SUPERVISOR_DRAIN_GENS 64 /* old generations per drain log turn */

static struct master_worker *supervisor_find(struct master *m, pid_t pid)
{
	for (size_t i = 0; i < MASTER_MAX_WORKERS; i++)
		if (m->m_workers[i].mw_pid == pid)
			return &m->m_workers[i];
	return NULL;
}

/*
 * Child side of a fork: close every descriptor that is the master's
 * (control socket, report pipe's read end, upgrade peer, sd_notify, the
 * listeners of other generations), then run the worker.
 */
static void supervisor_become(struct master *m, struct master_gen *g,
			      size_t idx, unsigned slot, int mblock)
{
	struct worker_report rep = {
		.wr_fd = m->m_report[1],
		.wr_conns = scoreboard_conns(m->m_board, idx),
		.wr_shares = scoreboard_shares(m->m_board, idx),
		.wr_beat = scoreboard_beat(m->m_board, idx),
		.wr_slot = slot,
		.wr_nslots = g->mg_nslots,
		.wr_rate_holds = m->m_rate_holds,
		.wr_index = (unsigned)idx,
	};
	const int *row;

	metrics_bind(metrics_area(shm_zone()), mblock);
	scoreboard_peers(m->m_board, &rep.wr_peers);
	close(m->m_report[0]);
	control_close_fds(&m->m_ctl);
	admin_close_fds(&m->m_admin);
	if (m->m_next.mg_ctl.cs_fd != -1)
		close(m->m_next.mg_ctl.cs_fd);
	if (m->m_up.up_fd != -1)
		close(m->m_up.up_fd);
	notify_close();
	/* keep this slot's row: shared sockets and its own reuseport ones */
	row = listen_row(g->mg_fds, g->mg_nfds, g->mg_nslots, slot);
	for (size_t i = 0; i < m->m_ls.ls_n; i++) {
		int fd = m->m_ls.ls_socks[i].ls_fd;
		bool mine = false;

		for (size_t j = 0; j < g->mg_nfds; j++)
			mine |= row[j] == fd;
		if (!mine)
			close(fd);
	}
	exit(worker_main(g->mg_cfg, row, g->mg_nfds, g->mg_num, g->mg_uid,
			 g->mg_gid, &rep));
}

int supervisor_spawn(struct master *m, struct master_gen *g, unsigned slot)
{
	struct master_worker *mw = supervisor_find(m, 0);
	struct metrics_area *ma = metrics_area(shm_zone());
	size_t idx;
	pid_t pid;
	int mblock;

	if (mw == NULL) {
		log_error("too many worker processes; not starting slot %u of "
			  "generation %u",
			  slot, g->mg_num);
		return -1;
	}
	idx = (size_t)(mw - m->m_workers);
	scoreboard_reset(m->m_board, idx);
	scoreboard_set_gen(m->m_board, idx, g->mg_num);
	mblock = ma ? metrics_claim(ma, (int)m->m_pid, g->mg_num) : -1;
	if (ma != NULL && mblock < 0)
		log_warn("metrics: all %d worker blocks in use; slot %u of "
			 "generation %u counts nothing",
			 METRICS_MAX_BLOCKS, slot, g->mg_num);
	pid = fork();
	if (pid == -1) {
		log_error("fork: %s", strerror(errno));
		metrics_set_pid(ma, mblock, 0);
		return -1;
	}
	if (pid == 0)
		supervisor_become(m, g, idx, slot, mblock);
	metrics_set_pid(ma, mblock, (int)pid);
	memset(mw, 0, sizeof(*mw));
	mw->mw_mblock = mblock;
	mw->mw_pid = pid;
	mw->mw_gen = g->mg_num;
	mw->mw_slot = slot;
	mw->mw_started = timer_now_ms();
	g->mg_slots[slot].ms_start_at = 0;
	return 0;
}

void supervisor_stop(struct master *m, int signo, unsigned lo, unsigned hi,
		     uint32_t timeout_ms)
{
	uint64_t now = timer_now_ms();

	for (size_t i = 0; i < MASTER_MAX_WORKERS; i++) {
		struct master_worker *mw = &m->m_workers[i];

		if (mw->mw_pid == 0 || mw->mw_gen < lo || mw->mw_gen > hi)
			continue;
		if (kill(mw->mw_pid, signo) == -1)
			log_error("worker %d: kill(%s): %s", (int)mw->mw_pid,
				  strsignal(signo), strerror(errno));
		if (mw->mw_kill_at == 0)
			mw->mw_kill_at =
				now + timeout_ms + MASTER_KILL_GRACE_MS;
	}
}

void supervisor_signal_all(struct master *m, int signo)
{
	for (size_t i = 0; i < MASTER_MAX_WORKERS; i++)
		if (m->m_workers[i].mw_pid != 0 &&
		    kill(m->m_workers[i].mw_pid, signo) == -1)
			log_error("worker %d: kill(%s): %s",
				  (int)m->m_workers[i].mw_pid, strsignal(signo),
				  strerror(errno));
}

static void supervisor_schedule_respawn(struct master *m,
					struct master_worker *mw)
{
	struct master_slot *s = &m->m_cur.mg_slots[mw->mw_slot];
	uint64_t now = timer_now_ms();
	uint32_t delay;

	if (now - mw->mw_started < MASTER_FAST_DEATH_MS)
		s->ms_fails++;
	else
		s->ms_fails = 0;
	if (s->ms_fails <= 1) {
		delay = 0;
	} else {
		unsigned shift = s->ms_fails - 2 > 16 ? 16 : s->ms_fails - 2;

		delay = MASTER_BACKOFF_MIN_MS << shift;
		if (delay > MASTER_BACKOFF_MAX_MS)
			delay = MASTER_BACKOFF_MAX_MS;
		log_warn("worker slot %u died %u times in a row right after "
			 "start; "
			 "restarting it in %ums",
			 mw->mw_slot, s->ms_fails, delay);
	}
	s->ms_start_at = now + delay;
	if (s->ms_start_at == 0)
		s->ms_start_at = 1;
	metrics_note_restart(metrics_area(shm_zone()));
}

static void supervisor_log_death(const struct master_worker *mw, int status)
{
	bool expected = mw->mw_kill_at != 0;

	if (WIFSIGNALED(status))
		log_msg(expected && WTERMSIG(status) != SIGKILL ? LOG_LVL_NOTICE
								: LOG_LVL_ERROR,
			"worker %d (generation %u) killed by signal %d (%s)",
			(int)mw->mw_pid, mw->mw_gen, WTERMSIG(status),
			strsignal(WTERMSIG(status)));
	else if (expected && WEXITSTATUS(status) == 0)
		log_info("worker %d (generation %u) exited", (int)mw->mw_pid,
			 mw->mw_gen);
	else if (WEXITSTATUS(status) == 0)
		/*
		 * A worker exits 0 only when told to stop: Ctrl-C in a terminal
		 * signals the whole process group, and the workers may go before
		 * the master has acted on its own copy.  Not an error.
		 */
		log_notice("worker %d (generation %u) exited on a stop signal "
			   "of its own",
			   (int)mw->mw_pid, mw->mw_gen);
	else
		log_error("worker %d (generation %u) exited with status %d",
			  (int)mw->mw_pid, mw->mw_gen, WEXITSTATUS(status));
}

/* A worker of the generation being started died: that start has failed. */
static void supervisor_fail_next(struct master *m,
				 const struct master_worker *mw, int status)
{
	if (m->m_next_failed[0] != '\0')
		return;
	if (WIFSIGNALED(status))
		snprintf(
			m->m_next_failed, sizeof(m->m_next_failed),
			"worker %d was killed by signal %d before it was ready",
			(int)mw->mw_pid, WTERMSIG(status));
	else
		snprintf(m->m_next_failed, sizeof(m->m_next_failed),
			 "worker %d exited with status %d before it was ready",
			 (int)mw->mw_pid, WEXITSTATUS(status));
}

/*
 * A worker's connections to servers die with it: take its share off each
 * server's machine-wide count, or max_connections, least_conn and
 * random_two would go on counting them for ever.
 */
static void supervisor_give_back(struct master *m, struct master_worker *mw)
{
	uint64_t n = scoreboard_give_back(m->m_board,
					  (size_t)(mw - m->m_workers), shm_zone());

	if (n > 0)
		log_notice("worker %d held %" PRIu64 " server connections; "
			   "no longer counted",
			   (int)mw->mw_pid, n);
	if (m->m_rate_holds != NULL && rate_table() != NULL) {
		n = rate_holds_give_back(m->m_rate_holds,
					 (uint32_t)(mw - m->m_workers),
					 rate_table());
		if (n > 0)
			log_notice("worker %d held %" PRIu64 " client "
				   "connections; no longer counted",
				   (int)mw->mw_pid, n);
	}
}

void supervisor_exited(struct master *m, pid_t pid, int status)
{
	struct master_worker *mw = supervisor_find(m, pid);

	if (mw == NULL)
		return;
	supervisor_log_death(mw, status);
	if (m->m_phase == MASTER_STARTING && mw->mw_gen == m->m_next.mg_num)
		supervisor_fail_next(m, mw, status);
	else if (m->m_stopping == MASTER_RUNNING && mw->mw_kill_at == 0 &&
		 mw->mw_gen == m->m_cur.mg_num &&
		 mw->mw_slot < m->m_cur.mg_nslots)
		supervisor_schedule_respawn(m, mw);
	supervisor_give_back(m, mw);
	/* its counters go on in the retired totals: none goes back */
	if (metrics_area(shm_zone()) != NULL)
		metrics_retire(shm_zone(), mw->mw_mblock);
	scoreboard_reset(m->m_board, (size_t)(mw - m->m_workers));
	memset(mw, 0, sizeof(*mw));
}

const char *supervisor_worker_state(const struct master *m,
				    const struct master_worker *mw)
{
	if (mw->mw_kill_at != 0 || mw->mw_retired)
		return "draining";
	if (!mw->mw_ready)
		return "starting";
	return mw->mw_gen == m->m_cur.mg_num ? "accepting" : "ready";
}

/*
 * A worker asks for a client's ban: queued under the serving config's
 * ban:, and added with the others of the same read (supervisor_bans).
 */
static void supervisor_ban(struct master *m, const struct worker_msg *msg)
{
	struct sockaddr_storage client;

	if (m->m_cur.mg_cfg == NULL || m->m_ban == NULL ||
	    !report_ban_addr(msg, &client))
		return;
	(void)ban_queue(m->m_ban, m->m_cur.mg_cfg, &client, timer_now_ms());
}

/* Add the queued bans, and count them where /metrics reads. */
static void supervisor_bans(struct master *m)
{
	uint64_t added, failed;

	if (m->m_cur.mg_cfg == NULL || m->m_ban == NULL)
		return;
	added = ban_added(m->m_ban);
	failed = ban_failed(m->m_ban);
	ban_flush(m->m_ban, m->m_cur.mg_cfg, timer_now_ms());
	metrics_note_bans(metrics_area(shm_zone()), ban_added(m->m_ban) - added,
			  ban_failed(m->m_ban) - failed);
}

void supervisor_read_reports(struct master *m)
{
	struct worker_msg msgs[64];
	ssize_t n;

	while ((n = read(m->m_report[0], msgs, sizeof(msgs))) > 0) {
		/* each write is one whole message (< PIPE_BUF): no partials */
		for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++) {
			struct master_worker *mw;

			if (msgs[i].wm_pid <= 0)
				continue;
			mw = supervisor_find(m, (pid_t)msgs[i].wm_pid);
			if (mw == NULL)
				continue;
			if (msgs[i].wm_event == WORKER_EV_READY)
				mw->mw_ready = true;
			else if (msgs[i].wm_event == WORKER_EV_RETIRED)
				mw->mw_retired = true;
			else if (msgs[i].wm_event == WORKER_EV_BAN)
				supervisor_ban(m, &msgs[i]);
		}
		supervisor_bans(m);
	}
}

/* Respawns of the serving generation that are due; ms to the next or -1. */
static int64_t supervisor_respawns(struct master *m, uint64_t now)
{
	int64_t next = -1;

	if (m->m_stopping != MASTER_RUNNING)
		return -1;
	for (unsigned i = 0; i < m->m_cur.mg_nslots; i++) {
		struct master_slot *s = &m->m_cur.mg_slots[i];

		if (s->ms_start_at != 0 && s->ms_start_at <= now &&
		    supervisor_spawn(m, &m->m_cur, i) == -1)
			s->ms_start_at = now + 1000; /* fork failed: retry */
		if (s->ms_start_at != 0 &&
		    (next == -1 || (int64_t)(s->ms_start_at - now) < next))
			next = s->ms_start_at > now
				       ? (int64_t)(s->ms_start_at - now)
				       : 0;
	}
	return next;
}

/*
 * The watchdog: a worker whose loop has not turned for `watchdog` (it
 * turns at least once a second even when idle) is stopped, hung or
 * spinning; its connections are stuck while `status` would say it is
 * accepting.  Kill it: a worker of the serving generation is replaced in
 * its slot, taking its listening share, as after any other death.
 * Returns the time until the next check is due, or -1 when off.
 */
static int64_t supervisor_watchdog(struct master *m, uint64_t now)
{
	const struct config *cfg = m->m_cur.mg_cfg;
	uint32_t limit = cfg != NULL ? cfg->watchdog_ms : 0;

	if (limit == 0)
		return -1;
	for (size_t i = 0; i < MASTER_MAX_WORKERS; i++) {
		struct master_worker *mw = &m->m_workers[i];
		uint64_t beat = scoreboard_last_beat(m->m_board, i);

		if (mw->mw_pid == 0 || mw->mw_is_hung || beat == 0 ||
		    now < beat || now - beat < limit)
			continue;
		log_error("worker %d (generation %u) has not turned its event "
			  "loop for %llums (watchdog %ums): killing it",
			  (int)mw->mw_pid, mw->mw_gen,
			  (unsigned long long)(now - beat), limit);
		kill(mw->mw_pid, SIGKILL);
		mw->mw_is_hung = true; /* once; reaped and replaced as usual */
	}
	return limit < 1000 ? (int64_t)limit / 2 + 1 : 500;
}

int64_t supervisor_timers(struct master *m, uint64_t now)
{
	int64_t next = supervisor_respawns(m, now);
	int64_t dog = supervisor_watchdog(m, now);

	if (dog >= 0 && (next == -1 || dog < next))
		next = dog;

	for (size_t i = 0; i < MASTER_MAX_WORKERS; i++) {
		struct master_worker *mw = &m->m_workers[i];

		if (mw->mw_pid == 0 || mw->mw_kill_at == 0 ||
		    mw->mw_kill_at == UINT64_MAX)
			continue;
		if (mw->mw_kill_at <= now) {
			log_warn("worker %d (generation %u) did not stop in "
				 "time; "
				 "killing it",
				 (int)mw->mw_pid, mw->mw_gen);
			kill(mw->mw_pid, SIGKILL);
			mw->mw_kill_at = UINT64_MAX; /* once */
		} else if (next == -1 ||
			   (int64_t)(mw->mw_kill_at - now) < next) {
			next = (int64_t)(mw->mw_kill_at - now);
		}
	}
	return next;
}

size_t supervisor_count(const struct master *m, unsigned lo, unsigned hi)
{
	size_t n = 0;

	for (size_t i = 0; i < MASTER_MAX_WORKERS; i++)
		n += m->m_workers[i].mw_pid != 0 &&
		     m->m_workers[i].mw_gen >= lo &&
		     m->m_workers[i].mw_gen <= hi;
	return n;
}

size_t supervisor_ready(const struct master *m, unsigned gen)
{
	size_t n = 0;

	for (size_t i = 0; i < MASTER_MAX_WORKERS; i++)
		n += m->m_workers[i].mw_pid != 0 &&
		     m->m_workers[i].mw_gen == gen && m->m_workers[i].mw_ready;
	return n;
}

size_t supervisor_accepting_before(const struct master *m, unsigned gen)
{
	size_t n = 0;

	for (size_t i = 0; i < MASTER_MAX_WORKERS; i++)
		n += m->m_workers[i].mw_pid != 0 &&
		     m->m_workers[i].mw_gen < gen &&
		     !m->m_workers[i].mw_retired;
	return n;
}

uint64_t supervisor_conns(const struct master *m, unsigned gen)
{
	uint64_t n = 0;

	for (size_t i = 0; i < MASTER_MAX_WORKERS; i++)
		if (m->m_workers[i].mw_pid != 0 &&
		    m->m_workers[i].mw_gen == gen)
			n += scoreboard_get(m->m_board, i);
	return n;
}

/*
 * A worker that accepts: ready, still in the listeners, and its loop
 * turning.  A worker stopped (SIGSTOP, a debugger) or spinning keeps its
 * ready flag and its process; only the heartbeat tells.  The first beat
 * comes at the end of the first turn, up to a second after the worker
 * reported ready when no connection wakes it: until then its start time
 * stands in.
 */
static bool supervisor_is_live(const struct master *m, size_t i, uint64_t now)
{
	const struct master_worker *mw = &m->m_workers[i];
	uint64_t beat = scoreboard_last_beat(m->m_board, i);

	if (beat == 0)
		beat = mw->mw_started;
	return mw->mw_ready && !mw->mw_retired && mw->mw_kill_at == 0 &&
	       !mw->mw_is_hung &&
	       (beat >= now || now - beat < SUPERVISOR_CHECK_BEAT_MS);
}

int supervisor_check(const struct master *m, uint64_t now, char *why,
		     size_t len)
{
	unsigned gen = m->m_cur.mg_num;
	size_t alive = 0, ready = 0;

	if (m->m_stopping != MASTER_RUNNING ||
	    m->m_stop_asked != MASTER_RUNNING) {
		snprintf(why, len, "the master is stopping");
		return -1;
	}
	if (!m->m_serving || gen == 0) {
		snprintf(why, len, "no generation serves yet");
		return -1;
	}
	for (size_t i = 0; i < MASTER_MAX_WORKERS; i++) {
		const struct master_worker *mw = &m->m_workers[i];

		if (mw->mw_pid == 0 || mw->mw_gen != gen)
			continue;
		if (supervisor_is_live(m, i, now))
			return 0;
		alive++;
		ready += mw->mw_ready && !mw->mw_retired &&
			 mw->mw_kill_at == 0 && !mw->mw_is_hung;
	}
	if (alive == 0)
		snprintf(why, len, "generation %u has no worker running", gen);
	else if (ready == 0)
		snprintf(why, len, "generation %u: none of its %zu worker%s is "
			 "ready", gen, alive, alive == 1 ? "" : "s");
	else
		snprintf(why, len, "generation %u: no worker has turned its "
			 "event loop for %ums (%zu ready: stopped or hung)",
			 gen, SUPERVISOR_CHECK_BEAT_MS, ready);
	return -1;
}

/* The distinct generations of workers told to stop, oldest first. */
static size_t supervisor_draining_gens(const struct master *m, unsigned *gens,
				       size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < MASTER_MAX_WORKERS; i++) {
		const struct master_worker *mw = &m->m_workers[i];
		size_t j;

		if (mw->mw_pid == 0 || mw->mw_kill_at == 0)
			continue;
		for (j = 0; j < n && gens[j] != mw->mw_gen; j++)
			;
		if (j < n || n == max)
			continue;
		/* insertion keeps the list sorted */
		for (j = n++; j > 0 && gens[j - 1] > mw->mw_gen; j--)
			gens[j] = gens[j - 1];
		gens[j] = mw->mw_gen;
	}
	return n;
}

int64_t supervisor_drain_log(struct master *m, uint64_t now)
{
	unsigned gens[SUPERVISOR_DRAIN_GENS];
	size_t n = supervisor_draining_gens(m, gens, SUPERVISOR_DRAIN_GENS);

	if (n == 0) {
		m->m_drain_log_at = 0;
		return -1;
	}
	if (m->m_drain_log_at == 0)
		m->m_drain_log_at = now + MASTER_DRAIN_LOG_MS;
	if (now < m->m_drain_log_at)
		return (int64_t)(m->m_drain_log_at - now);
	for (size_t i = 0; i < n; i++) {
		unsigned long long conns =
			(unsigned long long)supervisor_conns(m, gens[i]);

		log_notice("generation %u draining: %llu connection%s (%zu "
			   "worker%s)",
			   gens[i], conns, conns == 1 ? "" : "s",
			   supervisor_count(m, gens[i], gens[i]),
			   supervisor_count(m, gens[i], gens[i]) == 1 ? ""
								      : "s");
	}
	m->m_drain_log_at = now + MASTER_DRAIN_LOG_MS;
	return MASTER_DRAIN_LOG_MS;
}
