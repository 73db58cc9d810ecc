/* reload.c: generations and reloads (see reload.h). */
#include "server/reload.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/ratelimit.h"
#include "common/shm.h"
#include "worker/access.h"
#include "common/timer.h"
#include "common/version.h"
#include "server/conf.h"
#include "server/control.h"
#include "server/notify.h"
#include "server/slots.h"
#include "server/supervisor.h"
#include "worker/tls.h"

/* ---- generations -------------------------------------------------------- */

void reload_gen_free(struct master_gen *g)
{
	config_free(g->mg_cfg);
	free(g->mg_fds);
	free(g->mg_slots);
	control_sock_close(&g->mg_ctl, true);
	memset(g, 0, sizeof(*g));
	g->mg_ctl.cs_fd = -1;
}

/*
 * Whoever can write the configuration decides what a root master binds,
 * opens and runs: warn when that is anyone but root, as sshd does for its
 * files.
 */
static void reload_check_file_owner(const struct config *cfg)
{
	struct stat st;

	if (geteuid() != 0 || stat(cfg->path, &st) == -1)
		return;
	if (st.st_uid != 0)
		log_warn("%s is owned by uid %u: whoever owns it controls what "
			 "the root master does",
			 cfg->path, (unsigned)st.st_uid);
	else if (st.st_mode & (S_IWGRP | S_IWOTH))
		log_warn("%s is writable by %s (mode %04o): whoever can write "
			 "it controls what the root master does",
			 cfg->path, st.st_mode & S_IWOTH ? "everyone" : "its group",
			 (unsigned)(st.st_mode & 07777));
}

/* Workers run as user/group when the master is root. */
static int reload_resolve_ids(struct master_gen *g, char *err, size_t errlen)
{
	const struct config *cfg = g->mg_cfg;
	struct passwd *pw;
	struct group *gr;

	g->mg_uid = (uid_t)-1;
	g->mg_gid = (gid_t)-1;
	if (geteuid() != 0)
		return 0;
	pw = getpwnam(cfg->user);
	if (pw == NULL) {
		snprintf(err, errlen, "%s: user '%s' does not exist", cfg->path,
			 cfg->user);
		return -1;
	}
	gr = getgrnam(cfg->group);
	if (gr == NULL) {
		snprintf(err, errlen, "%s: group '%s' does not exist",
			 cfg->path, cfg->group);
		return -1;
	}
	if (pw->pw_uid == 0 && !cfg->allow_root_workers) {
		snprintf(err, errlen,
			 "%s: user '%s' is uid 0: set allow_root_workers: true "
			 "to run the workers with every privilege",
			 cfg->path, cfg->user);
		return -1;
	}
	g->mg_uid = pw->pw_uid;
	g->mg_gid = gr->gr_gid;
	return 0;
}

/* Switch the error log to g's (workers forked later inherit it). */
static int reload_open_log(const struct master_gen *g)
{
	const struct config *cfg = g->mg_cfg;
	char why[256];

	if (log_open(cfg->error_log_path, (enum log_level)cfg->error_log_level,
		     g->mg_uid, g->mg_gid, why, sizeof(why)) == -1) {
		log_error("%s: error log %s: %s", cfg->path,
			  cfg->error_log_path, why);
		return -1;
	}
	return 0;
}

static bool reload_log_differs(const struct config *a, const struct config *b)
{
	return strcmp(a->error_log_path, b->error_log_path) != 0 ||
	       a->error_log_level != b->error_log_level;
}

/* Back to the listening sockets the serving generation uses. */
static void reload_restore_listeners(struct master *m)
{
	char err[256];
	size_t n;
	int *fds;

	if (m->m_cur.mg_cfg == NULL)
		return;
	if (listen_apply(&m->m_ls, m->m_cur.mg_cfg, &fds, &n, err,
			 sizeof(err)) == -1) {
		log_error("restoring the listeners: %s", err);
		return;
	}
	free(fds);
	listen_prune(&m->m_ls);
}

/* The oldest generation that still has workers, else `none`. */
static unsigned reload_oldest_live(const struct master *m, unsigned none)
{
	unsigned oldest = none;

	for (size_t i = 0; i < MASTER_MAX_WORKERS; i++)
		if (m->m_workers[i].mw_pid != 0 &&
		    m->m_workers[i].mw_gen < oldest)
			oldest = m->m_workers[i].mw_gen;
	return oldest;
}

/*
 * Give cfg's servers and routes their slots in the shared-memory zone for
 * the generation it will be (server/slots.h): a server kept across the
 * reload keeps its slot, so its health, drain state and counters.
 */
static int reload_assign_shm(struct master *m, struct config *cfg, char *err,
			     size_t errlen)
{
	unsigned gen = m->m_last_gen + 1; /* the number reload_launch gives */
	unsigned cur = m->m_cur.mg_num ? m->m_cur.mg_num : gen;

	return slots_assign(shm_zone(), cfg, gen, reload_oldest_live(m, cur),
			    err, errlen);
}

/*
 * Build m->m_next from cfg (takes it): identity, listeners, a control
 * socket if its path is new, the slots.  Nothing runs yet and nothing
 * the serving generation uses is changed.  0, or -1 with err set.
 */
/*
 * The shared table of rate limits and connection counts (common/
 * ratelimit.h): made (or adopted from a binary upgrade) at the first
 * start, kept by reloads with the size it was made with, as the zone is.
 */
static int reload_rate_table(struct master *m, const struct config *cfg,
			     bool first, char *err, size_t errlen)
{
	bool adopted = false, kept = false;
	uint32_t need = cfg->worker_connections + 64;

	if (first && rate_table() == NULL) {
		struct rate_table *t =
			rate_table_open(cfg->rate_limit_table, &adopted, &kept);

		if (t == NULL) {
			snprintf(err, errlen, "rate table: %s", strerror(errno));
			return -1;
		}
		rate_table_set(t);
	} else if (!rate_table_fits(rate_table(), cfg->rate_limit_table)) {
		kept = true;
	}
	if (kept)
		log_notice("rate_limit_table %u: the shared table keeps its %u "
			   "entries until a restart",
			   cfg->rate_limit_table,
			   rate_table_capacity(rate_table()));
	if (m->m_rate_holds == NULL) {
		m->m_rate_holds = rate_holds_create(MASTER_MAX_WORKERS, need);
		if (m->m_rate_holds == NULL) {
			snprintf(err, errlen, "rate table holds: %s",
				 strerror(errno));
			return -1;
		}
	} else if (need > rate_holds_per_worker(m->m_rate_holds)) {
		log_warn("worker_connections %u: connections beyond %u per "
			 "worker are not counted by max_connections until a "
			 "restart",
			 cfg->worker_connections,
			 rate_holds_per_worker(m->m_rate_holds) - 64);
	}
	return 0;
}

/*
 * A worker needs about two descriptors a connection (client and server)
 * and some for itself: raise the soft RLIMIT_NOFILE, which the workers
 * inherit, up to the hard limit (the operator's ceiling: systemd's
 * LimitNOFILE=, ulimit -Hn) to cover worker_connections, and say so when
 * that is not enough, instead of letting workers find out at EMFILE.
 */
static void reload_check_nofile(const struct config *cfg)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)cfg->worker_connections * 2 + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= need)
		return;
	rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= need) {
		log_notice("RLIMIT_NOFILE raised to %llu for worker_connections "
			   "%u",
			   (unsigned long long)need, cfg->worker_connections);
		return;
	}
	log_warn("worker_connections %u needs about %llu descriptors but "
		 "RLIMIT_NOFILE is %llu: workers will run out first (raise "
		 "LimitNOFILE= or ulimit -n)",
		 cfg->worker_connections, (unsigned long long)need,
		 (unsigned long long)rl.rlim_cur);
}

static int reload_prepare(struct master *m, struct config *cfg, bool first,
			  char *err, size_t errlen)
{
	struct master_gen *g = &m->m_next;
	const char *path = m->m_ctl.ctl_sock.cs_path;
	bool new_ctl =
		first ? !m->m_up.up_is_new
		      : path == NULL || strcmp(path, cfg->control_socket);
	char why[256];

	memset(g, 0, sizeof(*g));
	g->mg_ctl.cs_fd = -1;
	g->mg_cfg = cfg;
	if (reload_resolve_ids(g, err, errlen) == -1)
		goto fail;
	if (access_prepare(cfg->access_log_path, g->mg_uid, g->mg_gid, why,
			   sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: access log %s: %s", cfg->path,
			 cfg->access_log_path, why);
		goto fail;
	}
	if (first && reload_open_log(g) == -1)
		goto fail;
	/* warnings, logged where the error log now goes */
	reload_check_nofile(cfg);
	reload_check_file_owner(cfg);
	if (cfg->nlisteners == 0)
		log_notice("%s has no listeners: nothing is served until it "
			   "has some",
			   cfg->path);
	if (listen_apply(&m->m_ls, cfg, &g->mg_fds, &g->mg_nfds, err, errlen) ==
	    -1)
		goto fail;
	if (new_ctl && control_sock_open(&g->mg_ctl, cfg->control_socket, false,
					 err, errlen) == -1)
		goto fail_listen;
	/* its final mode at once; the group's commands wait for it to serve */
	if (new_ctl && control_sock_grant(&g->mg_ctl, cfg->control_socket_gid,
					  why, sizeof(why)) == -1)
		log_warn("%s; control_socket_group members cannot connect",
			 why);
	g->mg_nslots = cfg->workers;
	g->mg_slots = calloc(g->mg_nslots, sizeof(*g->mg_slots));
	if (g->mg_slots == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail_listen;
	}
	if (reload_rate_table(m, cfg, first, err, errlen) == -1 ||
	    reload_assign_shm(m, cfg, err, errlen) == -1)
		goto fail_listen;
	/* a ticket key before the first TLS client; master_timers rotates */
	tls_tickets_rotate(shm_zone(), shm_wall_ms(), tls_ticket_rotation(cfg));
	if (!first && reload_log_differs(cfg, m->m_cur.mg_cfg))
		(void)reload_open_log(g);
	return 0;
fail_listen:
	reload_restore_listeners(m);
fail:
	reload_gen_free(g);
	return -1;
}

/* Fork m->m_next's workers and wait for them in MASTER_STARTING. */
static void reload_launch(struct master *m)
{
	struct master_gen *g = &m->m_next;

	g->mg_num = ++m->m_last_gen;
	m->m_next_failed[0] = '\0';
	m->m_phase = MASTER_STARTING;
	m->m_phase_deadline = timer_now_ms() + MASTER_READY_TIMEOUT_MS;
	for (unsigned i = 0; i < g->mg_nslots; i++) {
		if (supervisor_spawn(m, g, i) == -1) {
			snprintf(m->m_next_failed, sizeof(m->m_next_failed),
				 "could not fork its workers");
			break;
		}
	}
}

int reload_prepare_first(struct master *m, struct config *cfg)
{
	char err[512] = "";

	if (reload_prepare(m, cfg, true, err, sizeof(err)) == -1) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

int reload_launch_first(struct master *m)
{
	log_notice("portcullis %s starting: generation %u, %u workers, pid %d",
		   PORTCULLIS_VERSION, m->m_last_gen + 1, m->m_next.mg_nslots,
		   (int)m->m_pid);
	reload_launch(m);
	return 0;
}

/* ---- outcomes ------------------------------------------------------------ */

/*
 * The reload failed and m_cur keeps serving: log it, answer the waiters
 * with lines (the config errors) and ERR, tell systemd.
 */
static void reload_failed(struct master *m, char *const *lines, size_t n)
{
	char summary[128];

	snprintf(summary, sizeof(summary),
		 "reload failed, generation %u keeps serving", m->m_cur.mg_num);
	log_error("%s%s", summary, n ? ":" : "");
	for (size_t i = 0; i < n; i++)
		log_error("%s", lines[i]);
	free(m->m_reload_error);
	m->m_reload_error = strdup(n ? lines[0] : summary);
	m->m_reloads_failed++;
	metrics_note_reload(metrics_area(shm_zone()), false, shm_wall_ms());
	control_finish_all(&m->m_ctl, CONTROL_WAIT_RELOAD, false, lines, n,
			   summary);
	notify_send(
		"READY=1\nSTATUS=generation %u serving; last reload failed: "
		"%s",
		m->m_cur.mg_num, m->m_reload_error ? m->m_reload_error : "?");
}

/*
 * The new generation serves and the old ones no longer accept.  The
 * first one's news is the master's to tell (RELOAD_FIRST_SERVING).
 */
static enum reload_outcome reload_serving(struct master *m)
{
	unsigned gen = m->m_cur.mg_num;
	char msg[64];

	m->m_phase = MASTER_IDLE;
	if (!m->m_serving) {
		m->m_serving = true;
		log_notice("generation %u serving: %u workers accepting", gen,
			   m->m_cur.mg_nslots);
		return RELOAD_FIRST_SERVING;
	}
	snprintf(msg, sizeof(msg), "generation %u serving", gen);
	log_notice("reload: generation %u serving, older generations draining "
		   "(%zu workers)",
		   gen, supervisor_count(m, 0, gen - 1));
	free(m->m_reload_error);
	m->m_reload_error = NULL;
	m->m_reloads_ok++;
	metrics_note_reload(metrics_area(shm_zone()), true, shm_wall_ms());
	control_finish_all(&m->m_ctl, CONTROL_WAIT_RELOAD, true, NULL, 0, msg);
	notify_send("READY=1\nSTATUS=generation %u serving", gen);
	return RELOAD_NONE;
}

/* m_next is ready: it serves, the older workers leave the listeners. */
static void reload_retire(struct master *m, uint64_t now)
{
	struct master_gen old = m->m_cur;

	m->m_cur = m->m_next;
	memset(&m->m_next, 0, sizeof(m->m_next));
	m->m_next.mg_ctl.cs_fd = -1;
	control_set_group(&m->m_ctl, m->m_cur.mg_cfg->control_socket_gid);
	if (m->m_cur.mg_ctl.cs_fd != -1)
		control_set_sock(&m->m_ctl, &m->m_cur.mg_ctl);
	if (old.mg_num != 0)
		supervisor_stop(m, SIGQUIT, 0, m->m_cur.mg_num - 1,
				old.mg_cfg->shutdown_timeout_ms);
	listen_prune(&m->m_ls);
	reload_gen_free(&old);
	m->m_phase = MASTER_RETIRING;
	m->m_phase_deadline = now + MASTER_RETIRE_TIMEOUT_MS;
}

/*
 * m_next did not start: stop its workers, keep m_cur.  Without an m_cur
 * (generation 1) the master has nothing to serve: RELOAD_FIRST_FAILED.
 */
static enum reload_outcome reload_fail_next(struct master *m,
					    const char *why)
{
	struct master_gen *g = &m->m_next;
	bool log_changed = m->m_cur.mg_cfg != NULL &&
			   reload_log_differs(g->mg_cfg, m->m_cur.mg_cfg);
	char line[320];
	char *lines[1] = {line};

	snprintf(line, sizeof(line), "generation %u did not start: %s",
		 g->mg_num, why);
	supervisor_stop(m, SIGQUIT, g->mg_num, g->mg_num,
			g->mg_cfg->shutdown_timeout_ms);
	reload_gen_free(g);
	m->m_phase = MASTER_IDLE;
	if (m->m_cur.mg_num == 0) {
		log_error("%s", line);
		return RELOAD_FIRST_FAILED;
	}
	reload_restore_listeners(m);
	if (log_changed)
		(void)reload_open_log(&m->m_cur);
	reload_failed(m, lines, 1);
	return RELOAD_NONE;
}

/* ---- the state machine --------------------------------------------------- */

static void reload_begin(struct master *m)
{
	struct config_errors errs = {0};
	struct config *cfg;
	struct timespec ts;
	char err[512] = "";
	char *lines[1] = {err};

	m->m_reload_queued = false;
	control_promote(&m->m_ctl, CONTROL_WAIT_RELOAD_QUEUED,
			CONTROL_WAIT_RELOAD);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	notify_send("RELOADING=1\nMONOTONIC_USEC=%llu",
		    (unsigned long long)ts.tv_sec * 1000000ULL +
			    (unsigned long long)ts.tv_nsec / 1000);
	log_notice("reload: reading %s", m->m_path);
	cfg = conf_load(m->m_path, &errs);
	if (cfg == NULL) {
		char *all[CONFIG_MAX_ERRORS + 1];
		size_t n = 0;

		for (; n < errs.count && n < CONFIG_MAX_ERRORS; n++)
			all[n] = errs.msgs[n];
		if (errs.count > CONFIG_MAX_ERRORS) {
			snprintf(err, sizeof(err),
				 "%s: %zu more errors not shown", m->m_path,
				 errs.count - CONFIG_MAX_ERRORS);
			all[n++] = err;
		}
		reload_failed(m, all, n);
		config_errors_clear(&errs);
		return;
	}
	if (reload_prepare(m, cfg, false, err, sizeof(err)) == -1) {
		reload_failed(m, lines, 1);
		return;
	}
	reload_launch(m);
}

static enum reload_outcome reload_check_started(struct master *m,
						uint64_t now)
{
	if (m->m_next_failed[0] != '\0')
		return reload_fail_next(m, m->m_next_failed);
	if (supervisor_ready(m, m->m_next.mg_num) >= m->m_next.mg_nslots)
		reload_retire(m, now);
	else if (now >= m->m_phase_deadline)
		return reload_fail_next(m, "its workers were not all accepting "
					   "within 10 s");
	return RELOAD_NONE;
}

static enum reload_outcome reload_check_retired(struct master *m,
						uint64_t now)
{
	size_t left = supervisor_accepting_before(m, m->m_cur.mg_num);

	if (left != 0 && now < m->m_phase_deadline)
		return RELOAD_NONE;
	if (left != 0)
		log_warn("reload: %zu older workers did not confirm that they "
			 "stopped accepting",
			 left);
	return reload_serving(m);
}

/* Ms until the state machine's next deadline, or -1. */
static int64_t reload_wait(const struct master *m, uint64_t now)
{
	if (m->m_phase == MASTER_IDLE)
		return m->m_reload_queued && m->m_stopping == MASTER_RUNNING
			       ? 0
			       : -1;
	return m->m_phase_deadline > now ? (int64_t)(m->m_phase_deadline - now)
					 : 0;
}

struct reload_result reload_step(struct master *m, uint64_t now)
{
	struct reload_result r = {RELOAD_NONE, -1};

	for (int i = 0; i < 4; i++) { /* at most a few transitions per turn */
		enum master_phase before = m->m_phase;

		if (m->m_phase == MASTER_STARTING)
			r.rr_outcome = reload_check_started(m, now);
		else if (m->m_phase == MASTER_RETIRING)
			r.rr_outcome = reload_check_retired(m, now);
		else if (m->m_reload_queued && m->m_stopping == MASTER_RUNNING)
			reload_begin(m);
		if (m->m_phase == before || r.rr_outcome != RELOAD_NONE)
			break;
	}
	r.rr_wait_ms = reload_wait(m, now);
	return r;
}

void reload_request(struct master *m)
{
	const char *why = NULL;

	if (m->m_stopping != MASTER_RUNNING)
		why = "the master is stopping";
	else if (m->m_up.up_child != 0 || m->m_up.up_is_new)
		why = "a binary upgrade is in progress; retry when it is done";
	if (why != NULL) {
		log_warn("reload refused: %s", why);
		control_finish_all(&m->m_ctl, CONTROL_WAIT_RELOAD_QUEUED, false,
				   NULL, 0, why);
		return;
	}
	if (m->m_phase != MASTER_IDLE || m->m_reload_queued)
		log_notice("reload: queued behind the one in progress");
	m->m_reload_queued = true;
}

enum reload_outcome reload_abort(struct master *m, const char *why)
{
	enum reload_outcome out = RELOAD_NONE;

	if (m->m_phase == MASTER_STARTING) {
		reload_gen_free(&m->m_next);
		m->m_phase = MASTER_IDLE;
		reload_restore_listeners(m);
		control_finish_all(&m->m_ctl, CONTROL_WAIT_RELOAD, false, NULL,
				   0, why);
	} else if (m->m_phase == MASTER_RETIRING) {
		out = reload_serving(m);
	}
	m->m_reload_queued = false;
	control_finish_all(&m->m_ctl, CONTROL_WAIT_RELOAD_QUEUED, false, NULL,
			   0, why);
	return out;
}
