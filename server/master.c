/* master.c: supervision, reload and signals (see master.h). */
#include "server/master.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timer.h"
#include "common/version.h"
#include "config/config.h"
#include "server/listen.h"
#include "worker/worker.h"

#define MASTER_MAX_WORKERS 1024       /* all generations together */
#define MASTER_FAST_DEATH_MS 2000     /* a death this soon after start counts */
#define MASTER_BACKOFF_MIN_MS 100
#define MASTER_BACKOFF_MAX_MS 30000
#define MASTER_KILL_GRACE_MS 2000     /* after shutdown_timeout, SIGKILL */

struct master_worker {
	pid_t mw_pid;           /* 0: free entry */
	unsigned mw_gen;
	unsigned mw_slot;
	uint64_t mw_started;    /* monotonic ms */
	uint64_t mw_kill_at;    /* SIGKILL deadline once told to stop, or 0 */
};

struct master_slot {
	unsigned ms_fails;      /* deaths in a row right after start */
	uint64_t ms_start_at;   /* respawn due at, 0 = not pending */
};

struct master {
	const char *m_path;
	struct config *m_cfg;
	unsigned m_gen;
	uid_t m_uid;            /* workers' identity, -1 when not root */
	gid_t m_gid;
	struct listen_set m_ls;
	int *m_fds;
	size_t m_nfds;
	struct master_worker m_workers[MASTER_MAX_WORKERS];
	struct master_slot *m_slots; /* one per worker of the current gen */
	size_t m_nslots;
	bool m_stopping;
	bool m_wrote_pid;
};

static volatile sig_atomic_t sig_hup, sig_term, sig_quit, sig_usr1,
	sig_chld, sig_alrm;

static void master_on_signal(int signo)
{
	int saved = errno;

	switch (signo) {
	case SIGHUP: sig_hup = 1; break;
	case SIGTERM:
	case SIGINT: sig_term = 1; break;
	case SIGQUIT: sig_quit = 1; break;
	case SIGUSR1: sig_usr1 = 1; break;
	case SIGCHLD: sig_chld = 1; break;
	case SIGALRM: sig_alrm = 1; break;
	default: break;
	}
	errno = saved;
}

static const int master_signals[] = {SIGHUP, SIGTERM, SIGINT, SIGQUIT,
				     SIGUSR1, SIGUSR2, SIGCHLD, SIGALRM};

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
		if (master_signals[i] != SIGUSR2)
			sigaction(master_signals[i], &sa, NULL);
	}
	signal(SIGPIPE, SIG_IGN);
	sigprocmask(SIG_BLOCK, &block, waitmask);
	for (size_t i = 0; i < sizeof(master_signals) / sizeof(int); i++)
		sigdelset(waitmask, master_signals[i]);
	sigaddset(waitmask, SIGUSR2); /* binary upgrade: not yet, keep it pending */
}

/* ---- identity, pid file, logs ---------------------------------------- */

static int master_resolve_ids(struct master *m, const struct config *cfg)
{
	struct passwd *pw;
	struct group *gr;

	m->m_uid = (uid_t)-1;
	m->m_gid = (gid_t)-1;
	if (geteuid() != 0)
		return 0;
	pw = getpwnam(cfg->user);
	if (pw == NULL) {
		log_error("%s: user '%s' does not exist", cfg->path, cfg->user);
		return -1;
	}
	gr = getgrnam(cfg->group);
	if (gr == NULL) {
		log_error("%s: group '%s' does not exist", cfg->path, cfg->group);
		return -1;
	}
	m->m_uid = pw->pw_uid;
	m->m_gid = gr->gr_gid;
	return 0;
}

static int master_open_log(struct master *m, const struct config *cfg)
{
	if (log_open(cfg->error_log_path, (enum log_level)cfg->error_log_level) ==
	    -1) {
		log_error("%s: error log %s: %s", cfg->path, cfg->error_log_path,
			  strerror(errno));
		return -1;
	}
	if (m->m_uid != (uid_t)-1)
		log_chown(m->m_uid, m->m_gid);
	return 0;
}

static int master_write_pid(struct master *m)
{
	char buf[32], *dir = strdup(m->m_cfg->pid_file);
	int fd, n;

	if (dir != NULL) {
		(void)mkdir(dirname(dir), 0755);
		free(dir);
	}
	fd = open(m->m_cfg->pid_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		  0644);
	if (fd == -1) {
		log_error("pid file %s: %s", m->m_cfg->pid_file, strerror(errno));
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		log_error("pid file %s: %s", m->m_cfg->pid_file, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	m->m_wrote_pid = true;
	return 0;
}

static void master_remove_pid(struct master *m)
{
	char buf[32] = "";
	int fd;

	if (!m->m_wrote_pid)
		return;
	fd = open(m->m_cfg->pid_file, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return;
	(void)!read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (atoi(buf) == (int)getpid())
		unlink(m->m_cfg->pid_file);
}

/* ---- workers ---------------------------------------------------------- */

static struct master_worker *master_find(struct master *m, pid_t pid)
{
	for (size_t i = 0; i < MASTER_MAX_WORKERS; i++)
		if (m->m_workers[i].mw_pid == pid)
			return &m->m_workers[i];
	return NULL;
}

static size_t master_count(const struct master *m)
{
	size_t n = 0;

	for (size_t i = 0; i < MASTER_MAX_WORKERS; i++)
		n += m->m_workers[i].mw_pid != 0;
	return n;
}

/* Child side of a fork: close what is not ours and become a worker. */
static void master_become_worker(struct master *m)
{
	for (size_t i = 0; i < m->m_ls.ls_n; i++) {
		int fd = m->m_ls.ls_socks[i].ls_fd;
		bool mine = false;

		for (size_t j = 0; j < m->m_nfds; j++)
			mine |= m->m_fds[j] == fd;
		if (!mine)
			close(fd);
	}
	exit(worker_main(m->m_cfg, m->m_fds, m->m_nfds, m->m_gen, m->m_uid,
			 m->m_gid));
}

static int master_spawn(struct master *m, unsigned slot)
{
	struct master_worker *mw = master_find(m, 0);
	pid_t pid;

	if (mw == NULL) {
		log_error("too many worker processes; not starting slot %u", slot);
		return -1;
	}
	pid = fork();
	if (pid == -1) {
		log_error("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0)
		master_become_worker(m);
	mw->mw_pid = pid;
	mw->mw_gen = m->m_gen;
	mw->mw_slot = slot;
	mw->mw_started = timer_now_ms();
	mw->mw_kill_at = 0;
	m->m_slots[slot].ms_start_at = 0;
	return 0;
}

static int master_start_generation(struct master *m)
{
	struct master_slot *slots = calloc(m->m_cfg->workers, sizeof(*slots));

	if (slots == NULL)
		return -1;
	free(m->m_slots);
	m->m_slots = slots;
	m->m_nslots = m->m_cfg->workers;
	for (unsigned i = 0; i < m->m_nslots; i++)
		if (master_spawn(m, i) == -1)
			m->m_slots[i].ms_start_at = timer_now_ms() + 1000;
	return 0;
}

/* Tell every worker (of generations before `below`, or all) to stop. */
static void master_stop_workers(struct master *m, int signo, unsigned below,
				uint32_t timeout_ms)
{
	uint64_t now = timer_now_ms();

	for (size_t i = 0; i < MASTER_MAX_WORKERS; i++) {
		struct master_worker *mw = &m->m_workers[i];

		if (mw->mw_pid == 0 || (below && mw->mw_gen >= below))
			continue;
		if (kill(mw->mw_pid, signo) == -1)
			log_error("worker %d: kill(%s): %s", (int)mw->mw_pid,
				  strsignal(signo), strerror(errno));
		if (mw->mw_kill_at == 0)
			mw->mw_kill_at = now + timeout_ms + MASTER_KILL_GRACE_MS;
	}
}

static void master_schedule_respawn(struct master *m, struct master_worker *mw)
{
	struct master_slot *s = &m->m_slots[mw->mw_slot];
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
		log_warn("worker slot %u died %u times in a row right after start; "
			 "restarting it in %ums",
			 mw->mw_slot, s->ms_fails, delay);
	}
	s->ms_start_at = now + delay;
	if (s->ms_start_at == 0)
		s->ms_start_at = 1;
}

static void master_log_death(const struct master_worker *mw, int status)
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
	else
		log_error("worker %d (generation %u) exited with status %d",
			  (int)mw->mw_pid, mw->mw_gen, WEXITSTATUS(status));
}

static void master_reap(struct master *m)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct master_worker *mw = master_find(m, pid);

		if (mw == NULL)
			continue;
		master_log_death(mw, status);
		if (!m->m_stopping && mw->mw_kill_at == 0 &&
		    mw->mw_gen == m->m_gen && mw->mw_slot < m->m_nslots)
			master_schedule_respawn(m, mw);
		mw->mw_pid = 0;
	}
}

/* Respawns that are due, SIGKILL for workers past their deadline. */
static void master_timers(struct master *m)
{
	uint64_t now = timer_now_ms();

	for (unsigned i = 0; i < m->m_nslots && !m->m_stopping; i++) {
		uint64_t at = m->m_slots[i].ms_start_at;

		if (at != 0 && at <= now && master_spawn(m, i) == -1)
			m->m_slots[i].ms_start_at = now + 1000;
	}
	for (size_t i = 0; i < MASTER_MAX_WORKERS; i++) {
		struct master_worker *mw = &m->m_workers[i];

		if (mw->mw_pid != 0 && mw->mw_kill_at != 0 &&
		    mw->mw_kill_at <= now) {
			log_warn("worker %d (generation %u) did not stop in time; "
				 "killing it", (int)mw->mw_pid, mw->mw_gen);
			kill(mw->mw_pid, SIGKILL);
			mw->mw_kill_at = UINT64_MAX; /* once */
		}
	}
}

/* When the next timed action is due, in ms from now; -1 if none. */
static int64_t master_next_timer(const struct master *m)
{
	uint64_t now = timer_now_ms(), next = UINT64_MAX;

	for (unsigned i = 0; i < m->m_nslots && !m->m_stopping; i++)
		if (m->m_slots[i].ms_start_at != 0 &&
		    m->m_slots[i].ms_start_at < next)
			next = m->m_slots[i].ms_start_at;
	for (size_t i = 0; i < MASTER_MAX_WORKERS; i++) {
		const struct master_worker *mw = &m->m_workers[i];

		if (mw->mw_pid != 0 && mw->mw_kill_at != 0 &&
		    mw->mw_kill_at != UINT64_MAX && mw->mw_kill_at < next)
			next = mw->mw_kill_at;
	}
	if (next == UINT64_MAX)
		return -1;
	return next <= now ? 0 : (int64_t)(next - now);
}

static void master_arm_alarm(int64_t ms)
{
	struct itimerval it;

	memset(&it, 0, sizeof(it));
	if (ms >= 0) {
		if (ms < 1)
			ms = 1;
		it.it_value.tv_sec = ms / 1000;
		it.it_value.tv_usec = (ms % 1000) * 1000;
	}
	setitimer(ITIMER_REAL, &it, NULL);
}

/* ---- reload ----------------------------------------------------------- */

static void master_reload(struct master *m)
{
	struct config_errors errs = {0};
	struct config *cfg;
	struct master tmp;
	char err[512];
	int *fds;
	size_t nfds;
	unsigned old_gen = m->m_gen;

	log_notice("reload: reading %s", m->m_path);
	cfg = config_load(m->m_path, &errs);
	if (cfg == NULL) {
		log_error("reload failed, generation %u keeps serving:", m->m_gen);
		for (size_t i = 0; i < errs.count && i < CONFIG_MAX_ERRORS; i++)
			log_error("%s", errs.msgs[i]);
		config_errors_clear(&errs);
		return;
	}
	tmp = *m;
	if (master_resolve_ids(&tmp, cfg) == -1 ||
	    listen_apply(&m->m_ls, cfg, &fds, &nfds, (err[0] = 0, err),
			 sizeof(err)) == -1) {
		if (err[0])
			log_error("%s", err);
		log_error("reload failed, generation %u keeps serving", m->m_gen);
		config_free(cfg);
		return;
	}
	if (strcmp(cfg->error_log_path, m->m_cfg->error_log_path) != 0 ||
	    cfg->error_log_level != m->m_cfg->error_log_level)
		(void)master_open_log(&tmp, cfg);
	config_free(m->m_cfg);
	free(m->m_fds);
	m->m_cfg = cfg;
	m->m_fds = fds;
	m->m_nfds = nfds;
	m->m_uid = tmp.m_uid;
	m->m_gid = tmp.m_gid;
	m->m_gen++;
	master_start_generation(m);
	master_stop_workers(m, SIGQUIT, m->m_gen, cfg->shutdown_timeout_ms);
	listen_prune(&m->m_ls);
	log_notice("reload: generation %u serving, generation %u draining",
		   m->m_gen, old_gen);
}

static void master_signal_workers(struct master *m, int signo)
{
	for (size_t i = 0; i < MASTER_MAX_WORKERS; i++)
		if (m->m_workers[i].mw_pid != 0 &&
		    kill(m->m_workers[i].mw_pid, signo) == -1)
			log_error("worker %d: kill(%s): %s",
				  (int)m->m_workers[i].mw_pid, strsignal(signo),
				  strerror(errno));
}

/* ---- start-up and the main loop -------------------------------------- */

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

static int master_start(struct master *m, const struct master_opts *opts)
{
	struct config_errors errs = {0};
	char err[512] = "";

	m->m_path = opts->config_path;
	m->m_cfg = config_load(m->m_path, &errs);
	if (m->m_cfg == NULL) {
		for (size_t i = 0; i < errs.count && i < CONFIG_MAX_ERRORS; i++)
			log_error("%s", errs.msgs[i]);
		config_errors_clear(&errs);
		return -1;
	}
	if (master_resolve_ids(m, m->m_cfg) == -1 ||
	    master_open_log(m, m->m_cfg) == -1)
		return -1;
	if (listen_apply(&m->m_ls, m->m_cfg, &m->m_fds, &m->m_nfds, err,
			 sizeof(err)) == -1) {
		log_error("%s", err);
		return -1;
	}
	if (opts->daemonize && strcmp(m->m_cfg->error_log_path, "stderr") == 0)
		log_warn("running as a daemon with log.error.path stderr: "
			 "the error log is discarded");
	if (opts->daemonize && master_daemonize() == -1) {
		log_error("daemonize: %s", strerror(errno));
		return -1;
	}
	if (master_write_pid(m) == -1)
		return -1;
	m->m_gen = 1;
	log_notice("portcullis %s starting: generation 1, %u workers, pid %d",
		   PORTCULLIS_VERSION, m->m_cfg->workers, (int)getpid());
	return master_start_generation(m);
}

static void master_cleanup(struct master *m)
{
	master_remove_pid(m);
	listen_free(&m->m_ls);
	free(m->m_fds);
	free(m->m_slots);
	config_free(m->m_cfg);
}

/* Act on the flags the handlers set; false once every worker is gone. */
static bool master_handle_signals(struct master *m)
{
	if (sig_chld) {
		sig_chld = 0;
		master_reap(m);
	}
	if (sig_term) {
		sig_term = 0;
		if (!m->m_stopping)
			log_notice("fast stop requested");
		m->m_stopping = true;
		master_stop_workers(m, SIGTERM, 0, 0);
	}
	if (sig_quit) {
		sig_quit = 0;
		if (!m->m_stopping) {
			log_notice("graceful stop requested");
			m->m_stopping = true;
			master_stop_workers(m, SIGQUIT, 0,
					    m->m_cfg->shutdown_timeout_ms);
		}
	}
	if (sig_hup) {
		sig_hup = 0;
		if (!m->m_stopping)
			master_reload(m);
	}
	if (sig_usr1) {
		sig_usr1 = 0;
		if (log_reopen() == -1)
			log_error("reopening the error log: %s", strerror(errno));
		if (m->m_uid != (uid_t)-1)
			log_chown(m->m_uid, m->m_gid);
		master_signal_workers(m, SIGUSR1);
		log_notice("error log reopened");
	}
	sig_alrm = 0;
	master_timers(m);
	return !(m->m_stopping && master_count(m) == 0);
}

int master_run(const struct master_opts *opts)
{
	static struct master m; /* large; lives as long as the process */
	sigset_t waitmask;

	master_setup_signals(&waitmask);
	if (master_start(&m, opts) == -1) {
		master_cleanup(&m);
		return 1;
	}
	while (master_handle_signals(&m)) {
		master_arm_alarm(master_next_timer(&m));
		sigsuspend(&waitmask);
	}
	log_notice("portcullis stopped");
	master_cleanup(&m);
	return 0;
}
