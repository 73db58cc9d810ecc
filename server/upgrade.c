/* upgrade.c: binary upgrade, both sides of the handshake (see upgrade.h). */
#include "server/upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/ratelimit.h"
#include "common/shm.h"
#include "common/timer.h"
#include "server/control.h"
#include "server/pidfile.h"
#include "server/notify.h"

#define UPGRADE_ENV_SHM "PORTCULLIS_SHM_FD"
#define UPGRADE_ENV_MAX 8192 /* PORTCULLIS_LISTEN_FDS for ~300 sockets */

void upgrade_init(struct master *m)
{
	memset(&m->m_up, 0, sizeof(m->m_up));
	m->m_up.up_fd = -1;
}

static void upgrade_close_peer(struct master *m)
{
	if (m->m_up.up_fd != -1)
		close(m->m_up.up_fd);
	m->m_up.up_fd = -1;
	m->m_up.up_len = 0;
}

/* ---- new side ---------------------------------------------------------- */

int upgrade_adopt(struct master *m, char *err, size_t errlen)
{
	const char *fds = getenv(LISTEN_ENV_FDS);
	const char *peer = getenv(UPGRADE_ENV_FD);
	char *end;
	long fd;
	int rc = 0;

	if (peer == NULL)
		return 0;
	fd = strtol(peer, &end, 10);
	if (end == peer || *end != '\0' || fd < 3 || fd > 65535 ||
	    fcntl((int)fd, F_SETFD, FD_CLOEXEC) == -1 ||
	    fcntl((int)fd, F_SETFL, O_NONBLOCK) == -1) {
		snprintf(err, errlen, "%s=%s: not an inherited descriptor",
			 UPGRADE_ENV_FD, peer);
		rc = -1;
	} else {
		m->m_up.up_fd = (int)fd;
		m->m_up.up_is_new = true;
		if (fds != NULL)
			rc = listen_adopt(&m->m_ls, fds, err, errlen);
	}
	unsetenv(UPGRADE_ENV_FD);
	unsetenv(LISTEN_ENV_FDS);
	return rc;
}

void upgrade_new_serving(struct master *m)
{
	char err[512] = "", line[32];
	struct control_sock cs;
	int n;

	if (control_sock_open(&cs, m->m_cur.mg_cfg->control_socket, true, err,
			      sizeof(err)) == 0)
		control_set_sock(&m->m_ctl, &cs);
	else
		log_error("upgrade: %s; this master has no control socket",
			  err);
	(void)pidfile_write(&m->m_pidfile, m->m_cur.mg_cfg->pid_file);
	n = snprintf(line, sizeof(line), "ready %d\n", (int)m->m_pid);
	if (send(m->m_up.up_fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
		log_warn("upgrade: telling the old master: %s",
			 strerror(errno));
		m->m_up.up_deadline =
			timer_now_ms(); /* do not wait for its ok */
		return;
	}
	m->m_up.up_deadline = timer_now_ms() + UPGRADE_ACK_TIMEOUT_MS;
}

/* The old master has let go (or is gone): we are the main process now. */
static void upgrade_new_confirmed(struct master *m, const char *how)
{
	upgrade_close_peer(m);
	m->m_up.up_deadline = 0;
	m->m_up.up_is_new = false;
	log_notice("upgrade: master %d took over (%s)", (int)m->m_pid, how);
	notify_send("MAINPID=%d\nREADY=1\nSTATUS=generation %u serving",
		    (int)m->m_pid, m->m_cur.mg_num);
}

/* ---- old side ---------------------------------------------------------- */

/* In the forked child: exec the binary with the sockets.  Never returns. */
static void upgrade_exec(struct master *m, int peer, const char *fds)
{
	char num[16];
	char *argv[5];
	int argc = 0;
	sigset_t none;

	listen_inherit(&m->m_ls);
	(void)fcntl(peer, F_SETFD, 0);
	snprintf(num, sizeof(num), "%d", peer);
	if (setenv(LISTEN_ENV_FDS, fds, 1) == -1 ||
	    setenv(UPGRADE_ENV_FD, num, 1) == -1)
		_exit(126);
	/* the shared-memory zone goes along: health, drain, counters */
	if (shm_fd() != -1) {
		(void)fcntl(shm_fd(), F_SETFD, 0);
		snprintf(num, sizeof(num), "%d", shm_fd());
		if (setenv(UPGRADE_ENV_SHM, num, 1) == -1)
			_exit(126);
	}
	if (rate_table() != NULL && rate_table_export(rate_table()) == -1)
		_exit(126);
	admin_inherit(&m->m_admin); /* the endpoint goes on, no gap */
	argv[argc++] = m->m_exe;
	argv[argc++] = "-c";
	argv[argc++] = (char *)m->m_path;
	if (m->m_daemonize)
		argv[argc++] = "-d";
	argv[argc] = NULL;
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execv(m->m_exe, argv);
	log_error("upgrade: exec %s: %s", m->m_exe, strerror(errno));
	_exit(127);
}

int upgrade_start(struct master *m, char *err, size_t errlen)
{
	char fds[UPGRADE_ENV_MAX];
	int sv[2];
	pid_t pid;

	if (m->m_stopping != MASTER_RUNNING)
		return snprintf(err, errlen, "the master is stopping"), -1;
	if (m->m_up.up_child != 0)
		return snprintf(err, errlen,
				"an upgrade is already in progress"),
		       -1;
	if (m->m_up.up_is_new)
		return snprintf(err, errlen,
				"this master is still taking over "
				"from the previous one"),
		       -1;
	if (m->m_phase != MASTER_IDLE || m->m_reload_queued)
		return snprintf(err, errlen,
				"a reload is in progress; retry "
				"when it is done"),
		       -1;
	if (listen_export(&m->m_ls, fds, sizeof(fds)) == -1)
		return snprintf(err, errlen, "too many listening sockets"), -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		return snprintf(err, errlen, "socketpair: %s", strerror(errno)),
		       -1;
	pid = fork();
	if (pid == -1) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		upgrade_exec(m, sv[1], fds);
	}
	close(sv[1]);
	(void)fcntl(sv[0], F_SETFL, O_NONBLOCK);
	m->m_up.up_child = pid;
	m->m_up.up_fd = sv[0];
	m->m_up.up_len = 0;
	m->m_up.up_deadline = timer_now_ms() + UPGRADE_TIMEOUT_MS;
	log_notice("upgrade: started %s as master %d", m->m_exe, (int)pid);
	return 0;
}

static void upgrade_failed(struct master *m, const char *why)
{
	char msg[512];

	snprintf(msg, sizeof(msg),
		 "upgrade failed: %s; master %d keeps serving "
		 "generation %u",
		 why, (int)m->m_pid, m->m_cur.mg_num);
	log_error("%s", msg);
	control_finish_all(&m->m_ctl, CONTROL_WAIT_UPGRADE, false, NULL, 0,
			   msg);
	upgrade_close_peer(m);
	m->m_up.up_child = 0;
	m->m_up.up_deadline = 0;
}

/* The new master serves: hand over; the master then stops and drains. */
static enum upgrade_outcome upgrade_handover(struct master *m, pid_t pid)
{
	char msg[256];

	snprintf(msg, sizeof(msg),
		 "master %d serving; master %d drains its "
		 "workers and exits",
		 (int)pid, (int)m->m_pid);
	log_notice("upgrade: %s", msg);
	notify_send("MAINPID=%d", (int)pid);
	(void)!send(m->m_up.up_fd, "ok\n", 3, MSG_NOSIGNAL);
	upgrade_close_peer(m);
	m->m_up.up_child = 0;
	m->m_up.up_deadline = 0;
	m->m_up.up_handed_over = true;
	control_finish_all(&m->m_ctl, CONTROL_WAIT_UPGRADE, true, NULL, 0, msg);
	/* the path is the new master's now; only our descriptor goes */
	control_sock_close(&m->m_ctl.ctl_sock, true);
	return UPGRADE_HANDED_OVER;
}

void upgrade_child_exited(struct master *m, int status)
{
	char why[128];

	if (WIFSIGNALED(status))
		snprintf(why, sizeof(why),
			 "new master %d was killed by signal %d",
			 (int)m->m_up.up_child, WTERMSIG(status));
	else
		snprintf(why, sizeof(why),
			 "new master %d exited with status %d "
			 "(its errors are in the error log)",
			 (int)m->m_up.up_child, WEXITSTATUS(status));
	upgrade_failed(m, why);
}

enum upgrade_outcome upgrade_on_readable(struct master *m)
{
	struct master_upgrade *up = &m->m_up;
	ssize_t n = recv(up->up_fd, up->up_buf + up->up_len,
			 sizeof(up->up_buf) - 1 - up->up_len, 0);
	char *nl;

	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return UPGRADE_NONE;
	if (n <= 0) {
		/* old side: the exit status tells why; new side: go on alone */
		if (up->up_is_new)
			upgrade_new_confirmed(m, "the old master is gone");
		else
			upgrade_close_peer(m);
		return UPGRADE_NONE;
	}
	up->up_len += (size_t)n;
	up->up_buf[up->up_len] = '\0';
	nl = strchr(up->up_buf, '\n');
	if (nl == NULL && up->up_len < sizeof(up->up_buf) - 1)
		return UPGRADE_NONE;
	if (up->up_is_new)
		upgrade_new_confirmed(m, "the old master let go");
	else if (strncmp(up->up_buf, "ready ", 6) == 0 &&
		 atoi(up->up_buf + 6) == (int)up->up_child)
		return upgrade_handover(m, up->up_child);
	else
		upgrade_failed(m, "the new master sent something unexpected");
	return UPGRADE_NONE;
}

int64_t upgrade_timers(struct master *m, uint64_t now)
{
	struct master_upgrade *up = &m->m_up;

	if (up->up_deadline == 0)
		return -1;
	if (now < up->up_deadline)
		return (int64_t)(up->up_deadline - now);
	if (up->up_is_new) {
		if (up->up_fd != -1 || m->m_pidfile.pf_path != NULL)
			upgrade_new_confirmed(m,
					      "no answer from the old master");
		return -1;
	}
	if (up->up_child != 0) {
		pid_t pid = up->up_child;

		kill(pid, SIGTERM);
		upgrade_failed(m,
			       "the new master was not serving in time; sent "
			       "it SIGTERM");
	}
	return -1;
}

void upgrade_abort(struct master *m)
{
	if (m->m_up.up_child == 0 || m->m_up.up_handed_over)
		return;
	kill(m->m_up.up_child, SIGTERM);
	upgrade_failed(m, "the master is stopping");
}
