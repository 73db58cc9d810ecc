/* master.c: the master's loop, signals, start and stop (see master.h). */
#include "server/master.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/ratelimit.h"
#include "common/shm.h"
#include "worker/access.h"
#include "common/timer.h"
#include "config/config.h"
#include "server/ban.h"
#include "server/conf.h"
#include "server/command.h"
#include "server/control.h"
#include "server/listen.h"
#include "server/metrics_page.h"
#include "server/logfiles.h"
#include "server/master_types.h"
#include "server/notify.h"
#include "server/pidfile.h"
#include "server/reload.h"
#include "server/scoreboard.h"
#include "server/upgrade.h"
#include "worker/tls.h"
#include "server/supervisor.h"

static volatile sig_atomic_t sig_hup, sig_term, sig_quit, sig_usr1, sig_usr2,
	sig_chld;

static void master_on_signal(int signo)
{
	int saved = errno;

	switch (signo) {
	case SIGHUP:
		sig_hup = 1;
		break;
	case SIGTERM:
	case SIGINT:
		sig_term = 1;
		break;
	case SIGQUIT:
		sig_quit = 1;
		break;
	case SIGUSR1:
		sig_usr1 = 1;
		break;
	case SIGUSR2:
		sig_usr2 = 1;
		break;
	case SIGCHLD:
		sig_chld = 1;
		break;
	default:
		break;
	}
	errno = saved;
}

static const int master_signals[] = {SIGHUP,  SIGTERM, SIGINT, SIGQUIT,
				     SIGUSR1, SIGUSR2, SIGCHLD};

/*
 * Block our signals for good; *waitmask is the mask ppoll() waits with,
 * the only place they are delivered.  Workers inherit the blocked mask
 * and take theirs through a signalfd.
 */
static void master_setup_signals(sigset_t *waitmask)
{
	struct sigaction sa;
	sigset_t block;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = master_on_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&block);
	for (size_t i = 0; i < sizeof(master_signals) / sizeof(int); i++) {
		sigaddset(&block, master_signals[i]);
		sigaction(master_signals[i], &sa, NULL);
	}
	signal(SIGPIPE, SIG_IGN);
	sigprocmask(SIG_BLOCK, &block, waitmask);
	for (size_t i = 0; i < sizeof(master_signals) / sizeof(int); i++)
		sigdelset(waitmask, master_signals[i]);
}

/* The config that names pid_file: the serving one, else the one starting. */
static const struct config *master_config(const struct master *m)
{
	return m->m_cur.mg_cfg != NULL ? m->m_cur.mg_cfg : m->m_next.mg_cfg;
}

/* ---- start and stop ------------------------------------------------------ */

static int master_daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid == -1)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() == -1)
		return -1;
	pid = fork();
	if (pid == -1)
		return -1;
	if (pid > 0)
		_exit(0);
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (log_enabled(LOG_LVL_ERROR) && fd != STDERR_FILENO)
			dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	return chdir("/");
}

/* Our own binary, for a binary upgrade: the path, not the inode. */
static void master_resolve_exe(struct master *m)
{
	ssize_t n = readlink("/proc/self/exe", m->m_exe, sizeof(m->m_exe) - 1);
	const char *del = " (deleted)";
	size_t dl = strlen(del);

	if (n <= 0) {
		m->m_exe[0] = '\0';
		return;
	}
	m->m_exe[n] = '\0';
	if ((size_t)n > dl && strcmp(m->m_exe + n - dl, del) == 0)
		m->m_exe[n - dl] = '\0';
}

/* Shared memory and the report pipe: made once, before the first fork. */
static int master_make_channels(struct master *m)
{
	m->m_board = scoreboard_create(MASTER_MAX_WORKERS);
	if (m->m_board == NULL) {
		log_error("shared memory: %s", strerror(errno));
		return -1;
	}
	if (pipe2(m->m_report, O_CLOEXEC | O_NONBLOCK) == -1) {
		log_error("pipe: %s", strerror(errno));
		return -1;
	}
	m->m_ban = ban_new();
	if (m->m_ban == NULL) {
		log_error("bans: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int master_load_first(struct master *m)
{
	struct config_errors errs = {0};
	struct config *cfg = conf_load(m->m_path, &errs);

	if (cfg == NULL) {
		for (size_t i = 0; i < errs.count && i < CONFIG_MAX_ERRORS; i++)
			log_error("%s", errs.msgs[i]);
		config_errors_clear(&errs);
		return -1;
	}
	return reload_prepare_first(m, cfg);
}

/*
 * The shared-memory zone: the one a binary upgrade handed over (so the
 * servers keep their health, drain state and counters), else a new one.
 */
static struct shm_zone *master_zone(void)
{
	const char *env = getenv("PORTCULLIS_SHM_FD");
	struct shm_zone *z = NULL;

	if (env != NULL) {
		z = shm_adopt(atoi(env));
		if (z == NULL)
			log_warn("upgrade: the old master's shared memory has "
				 "another layout; starting with a fresh one");
		unsetenv("PORTCULLIS_SHM_FD");
	}
	return z != NULL ? z : shm_create();
}

static int master_start(struct master *m, const struct master_opts *opts)
{
	char err[512] = "";
	bool detach;

	m->m_path = opts->config_path;
	m->m_daemonize = opts->daemonize;
	m->m_started = timer_now_ms();
	m->m_pid = getpid();
	master_resolve_exe(m);
	if (upgrade_adopt(m, err, sizeof(err)) == -1) {
		log_error("upgrade: %s", err);
		return -1;
	}
	admin_adopt(&m->m_admin);
	if (notify_open(err, sizeof(err)) == -1)
		log_warn("%s", err);
	/* before the first fork: every worker of every generation shares it */
	shm_zone_set(master_zone());
	if (shm_zone() == NULL) {
		log_error("shared memory: %s", strerror(errno));
		return -1;
	}
	if (master_load_first(m) == -1)
		return -1;
	/* an old master that did not hand admin.bind over lets go of it
	 * once we serve */
	if (m->m_up.up_is_new && m->m_admin.ad_fd == -1)
		m->m_admin.ad_quiet_until = timer_now_ms() + 15000;
	/* a master started by an upgrade is detached already */
	detach = opts->daemonize && !m->m_up.up_is_new;
	if (detach && strcmp(m->m_next.mg_cfg->error_log_path, "stderr") == 0)
		log_warn("running as a daemon with log.error.path stderr: "
			 "the error log is discarded");
	if (detach && master_daemonize() == -1) {
		log_error("daemonize: %s", strerror(errno));
		return -1;
	}
	m->m_pid = getpid();
	if (!m->m_up.up_is_new &&
	    pidfile_write(&m->m_pidfile, m->m_next.mg_cfg->pid_file) == -1)
		return -1;
	if (master_make_channels(m) == -1)
		return -1;
	return reload_launch_first(m);
}

static void master_stop(struct master *m, bool fast);

/*
 * Generation 1 serves: the master that an upgrade started takes over
 * from the old one; any other tells systemd.
 */
static void master_first_serving(struct master *m)
{
	if (m->m_up.up_is_new)
		upgrade_new_serving(m);
	else
		notify_send("READY=1\nSTATUS=generation %u serving",
			    m->m_cur.mg_num);
}

/* Act on what the reload state machine reports. */
static void master_on_reload(struct master *m, enum reload_outcome out)
{
	switch (out) {
	case RELOAD_FIRST_SERVING:
		master_first_serving(m);
		break;
	case RELOAD_FIRST_FAILED:
		m->m_exit_status = 1;
		master_stop(m, true);
		break;
	case RELOAD_NONE:
		break;
	}
}

/*
 * Begin a graceful (fast false) or fast stop.  A fast stop may follow a
 * graceful one.
 */
static void master_stop(struct master *m, bool fast)
{
	enum master_stopping how =
		fast ? MASTER_STOP_FAST : MASTER_STOP_GRACEFUL;
	const struct config *cfg = master_config(m);
	bool first = m->m_stopping == MASTER_RUNNING;

	if (m->m_stopping >= how)
		return;
	m->m_stopping = how;
	if (first) {
		master_on_reload(m, reload_abort(m, "the master is stopping"));
		upgrade_abort(m);
		if (!m->m_up.up_handed_over)
			notify_send("STOPPING=1\nSTATUS=stopping");
	}
	if (!m->m_up.up_handed_over || fast)
		log_notice("%s stop requested", fast ? "fast" : "graceful");
	supervisor_stop(m, fast ? SIGTERM : SIGQUIT, 0, UINT_MAX,
			fast || cfg == NULL ? 0 : cfg->shutdown_timeout_ms);
}

static void master_cleanup(struct master *m)
{
	control_close_all(&m->m_ctl);
	control_sock_close(&m->m_ctl.ctl_sock, true);
	admin_close(&m->m_admin);
	pidfile_remove(&m->m_pidfile);
	listen_free(&m->m_ls);
	reload_gen_free(&m->m_cur);
	reload_gen_free(&m->m_next);
	scoreboard_free(m->m_board);
	rate_holds_free(m->m_rate_holds);
	ban_free(m->m_ban);
	m->m_rate_holds = NULL;
	rate_table_destroy(rate_table());
	rate_table_set(NULL);
	shm_destroy(shm_zone());
	shm_zone_set(NULL);
	for (int i = 0; i < 2; i++)
		if (m->m_report[i] != -1)
			close(m->m_report[i]);
	if (m->m_up.up_fd != -1)
		close(m->m_up.up_fd);
	free(m->m_reload_error);
	notify_close();
}

/* ---- the loop --------------------------------------------------------------
 */

/* waitpid() every child that exited: the new master of an upgrade, or
 * a worker. */
static void master_reap(struct master *m)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == m->m_up.up_child)
			upgrade_child_exited(m, status);
		else
			supervisor_exited(m, pid, status);
	}
}

/* Act on the flags the handlers (and `portcullis stop|quit`) set. */
static void master_handle_signals(struct master *m)
{
	char err[256];

	if (sig_chld) {
		sig_chld = 0;
		master_reap(m);
	}
	if (sig_term) {
		sig_term = 0;
		master_stop(m, true);
	}
	if (sig_quit) {
		sig_quit = 0;
		master_stop(m, false);
	}
	if (m->m_stop_asked != MASTER_RUNNING) {
		bool fast = m->m_stop_asked == MASTER_STOP_FAST;

		m->m_stop_asked = MASTER_RUNNING;
		master_stop(m, fast);
	}
	if (sig_hup) {
		sig_hup = 0;
		reload_request(m);
	}
	if (sig_usr1) {
		sig_usr1 = 0;
		(void)logfiles_reopen(m, err, sizeof(err));
	}
	if (sig_usr2) {
		sig_usr2 = 0;
		if (upgrade_start(m, err, sizeof(err)) == -1)
			log_error("upgrade refused: %s", err);
	}
}

static int64_t master_min(int64_t a, int64_t b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

/* Everything due by now; returns ms until the next deadline, or -1. */
/*
 * TLS session-ticket keys: a new one every ticket_rotation, made here and
 * shared with every worker through the zone (worker/tls.h).  Checked once
 * a minute; the serving generation's config says how often.
 */
#define MASTER_TICKET_CHECK_MS 60000

static int64_t master_tickets(struct master *m, uint64_t now)
{
	uint32_t rotation;

	if (m->m_cur.mg_cfg == NULL)
		return -1;
	rotation = tls_ticket_rotation(m->m_cur.mg_cfg);
	if (rotation == 0)
		return -1;
	if (now >= m->m_tickets_at) {
		tls_tickets_rotate(shm_zone(), shm_wall_ms(), rotation);
		m->m_tickets_at = now + MASTER_TICKET_CHECK_MS;
	}
	return (int64_t)(m->m_tickets_at - now);
}

/*
 * The admin endpoint follows the serving config: bound at the first
 * generation, rebound only when admin.bind changes, and let go once a
 * binary upgrade's new master serves (it binds the address then).
 */
static int64_t master_admin(struct master *m, uint64_t now)
{
	const struct cfg_admin *a =
		m->m_cur.mg_cfg ? &m->m_cur.mg_cfg->admin : NULL;

	if (a == NULL && !m->m_up.up_handed_over)
		return admin_timers(&m->m_admin, now); /* nothing serves yet */
	if (m->m_up.up_handed_over || a->bind.str == NULL)
		admin_configure(&m->m_admin, NULL, NULL, 0, now);
	else
		admin_configure(&m->m_admin, a->bind.str, &a->bind.sa,
				a->bind.salen, now);
	return admin_timers(&m->m_admin, now);
}

/*
 * Once a second, the sparkline sample of every server of the serving
 * config (common/metrics.h): the master is its only writer.
 */
static int64_t master_spark(struct master *m, uint64_t now)
{
	const struct config *cfg = m->m_cur.mg_cfg;
	struct metrics_area *a = metrics_area(shm_zone());
	uint64_t sec = shm_wall_ms() / 1000;

	if (cfg == NULL || a == NULL || m->m_up.up_handed_over)
		return -1;
	if (now < m->m_spark_at)
		return (int64_t)(m->m_spark_at - now);
	if (metrics_spark_due(a, sec)) {
		for (size_t i = 0; i < cfg->nbackends; i++)
			for (size_t j = 0; j < cfg->backends[i].nservers; j++)
				metrics_spark_server(
					a, cfg->backends[i].servers[j].slot,
					sec);
		metrics_spark_done(a, sec);
	}
	/* the next wall-clock second, a little after it starts */
	m->m_spark_at = now + 1000 - shm_wall_ms() % 1000 + 5;
	return (int64_t)(m->m_spark_at - now);
}

static int64_t master_timers(struct master *m)
{
	uint64_t now = timer_now_ms();
	struct reload_result r = reload_step(m, now);
	int64_t next = r.rr_wait_ms;

	master_on_reload(m, r.rr_outcome);
	next = master_min(next, supervisor_timers(m, now));
	next = master_min(next, control_timers(&m->m_ctl, now));
	next = master_min(next, upgrade_timers(m, now));
	next = master_min(next, supervisor_drain_log(m, now));
	next = master_min(next, master_tickets(m, now));
	next = master_min(next, master_admin(m, now));
	next = master_min(next, master_spark(m, now));
	return next;
}

/*
 * Sleep in ppoll() with our signals unblocked (as sigsuspend() would)
 * until a descriptor is ready, a signal arrives or wait_ms passes.
 */
static void master_wait(struct master *m, const sigset_t *waitmask,
			int64_t wait_ms)
{
	struct pollfd pfd[2 + 1 + CONTROL_MAX_CONNS + 1 + ADMIN_MAX_CONNS];
	struct timespec ts, *tsp = NULL;
	size_t n = 0, ctl_base, admin_base;
	int up_idx = -1, rc;

	pfd[n++] = (struct pollfd){.fd = m->m_report[0], .events = POLLIN};
	if (m->m_up.up_fd != -1) {
		up_idx = (int)n;
		pfd[n++] =
			(struct pollfd){.fd = m->m_up.up_fd, .events = POLLIN};
	}
	ctl_base = n;
	n += control_pollfds(&m->m_ctl, pfd + n,
			     sizeof(pfd) / sizeof(pfd[0]) - n);
	admin_base = n;
	n += admin_pollfds(&m->m_admin, pfd + n,
			   sizeof(pfd) / sizeof(pfd[0]) - n);
	if (wait_ms >= 0) {
		ts.tv_sec = wait_ms / 1000;
		ts.tv_nsec = (wait_ms % 1000) * 1000000L;
		tsp = &ts;
	}
	rc = ppoll(pfd, n, tsp, waitmask);
	if (rc == -1 && errno != EINTR)
		log_error("ppoll: %s", strerror(errno));
	if (rc <= 0)
		return;
	if (pfd[0].revents & POLLIN)
		supervisor_read_reports(m);
	if (up_idx >= 0 && pfd[up_idx].revents != 0 && m->m_up.up_fd != -1 &&
	    upgrade_on_readable(m) == UPGRADE_HANDED_OVER)
		master_stop(m, false); /* the new master serves: drain, exit */
	control_dispatch(&m->m_ctl, pfd + ctl_base);
	admin_dispatch(&m->m_admin, pfd + admin_base,
		       m->m_cur.mg_cfg ? m->m_cur.mg_cfg->admin.acl.allow
				       : NULL);
}

static bool master_done(const struct master *m)
{
	return m->m_stopping != MASTER_RUNNING &&
	       supervisor_count(m, 0, UINT_MAX) == 0;
}

int master_run(const struct master_opts *opts)
{
	static struct master m; /* large; lives as long as the process */
	sigset_t waitmask;

	master_setup_signals(&waitmask);
	m.m_report[0] = m.m_report[1] = -1;
	m.m_cur.mg_ctl.cs_fd = m.m_next.mg_ctl.cs_fd = -1;
	control_init(&m.m_ctl, command_run, &m);
	admin_init(&m.m_admin, metrics_page_render, &m);
	upgrade_init(&m);
	if (master_start(&m, opts) == -1) {
		master_cleanup(&m);
		return 1;
	}
	for (;;) {
		int64_t wait;

		master_handle_signals(&m);
		wait = master_timers(&m);
		if (master_done(&m))
			break;
		master_wait(&m, &waitmask, wait);
	}
	log_notice("portcullis stopped");
	control_finish_all(&m.m_ctl, CONTROL_WAIT_EXIT, true, NULL, 0,
			   "stopped");
	master_cleanup(&m);
	return m.m_exit_status;
}
