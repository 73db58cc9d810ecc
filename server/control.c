/* control.c: the control socket's server side, in the master: sockets,
 * connections and the protocol (see control.h). */
#include "server/control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "server/outbuf.h"
#include "common/timer.h"

#define CONTROL_BACKLOG 64
#define CONTROL_OUT_MAX (1 << 20) /* a status of a huge config, at most */

void control_init(struct control *ctl, control_cmd_cb cb, void *data)
{
	memset(ctl, 0, sizeof(*ctl));
	ctl->ctl_sock.cs_fd = -1;
	ctl->ctl_listen_idx = -1;
	ctl->ctl_gid = (gid_t)-1;
	ctl->ctl_cb = cb;
	ctl->ctl_data = data;
}

/* ---- the listening socket -------------------------------------------- */

/* mkdir -p the directory of path (0755); errors surface at bind(). */
static void control_mkdir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		(void)mkdir(dir, 0755);
		*p = '/';
	}
}

static void control_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "%s", path);
}

/* Does a process accept connections on the socket at path? */
static bool control_is_live(const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	bool live;

	if (fd == -1)
		return false;
	control_addr(&sa, path);
	live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ||
	       errno == EAGAIN;
	close(fd);
	return live;
}

/* Bind and listen on name with mode 0600.  The fd, or -1 with errno. */
static int control_bind(const char *name)
{
	struct sockaddr_un sa;
	mode_t old;
	int fd, rc, saved;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	control_addr(&sa, name);
	(void)unlink(name);
	old = umask(0177); /* never a moment with a wider mode */
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc == 0 && chmod(name, 0600) == 0 &&
	    listen(fd, CONTROL_BACKLOG) == 0)
		return fd;
	saved = errno;
	if (rc == 0)
		(void)unlink(name);
	close(fd);
	errno = saved;
	return -1;
}

int control_sock_open(struct control_sock *cs, const char *path, bool replace,
		      char *err, size_t errlen)
{
	struct stat st;

	cs->cs_fd = -1;
	cs->cs_path = NULL;
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(err, errlen, "control socket %s: path too long", path);
		return -1;
	}
	control_mkdir(path);
	if (!replace && control_is_live(path)) {
		snprintf(err, errlen,
			 "control socket %s: another portcullis "
			 "master is running there",
			 path);
		return -1;
	}
	/*
	 * Bound at its own path (not renamed into place) so that
	 * /proc/net/unix names it: cli.c finds a master whose socket moved
	 * that way.  The moment between unlink and bind is covered by the
	 * client's retry.
	 */
	cs->cs_fd = control_bind(path);
	if (cs->cs_fd == -1)
		goto fail;
	cs->cs_path = strdup(path);
	if (cs->cs_path == NULL || stat(path, &st) == -1)
		goto fail;
	cs->cs_dev = st.st_dev;
	cs->cs_ino = st.st_ino;
	return 0;
fail:
	snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
	if (cs->cs_fd != -1)
		close(cs->cs_fd);
	cs->cs_fd = -1;
	free(cs->cs_path);
	cs->cs_path = NULL;
	return -1;
}

void control_sock_close(struct control_sock *cs, bool unlink_path)
{
	struct stat st;

	if (cs->cs_fd == -1)
		return;
	if (unlink_path && stat(cs->cs_path, &st) == 0 &&
	    st.st_dev == cs->cs_dev && st.st_ino == cs->cs_ino)
		(void)unlink(cs->cs_path);
	close(cs->cs_fd);
	cs->cs_fd = -1;
	free(cs->cs_path);
	cs->cs_path = NULL;
}

/*
 * chgrp path (ours) to gid without CAP_CHOWN, which the systemd unit does
 * not grant: the owner of a file may give it to a group it is in, and
 * setfsgid() (CAP_SETGID) makes the master one for the call.  0 or -1.
 */
static int control_chgrp(const char *path, gid_t gid)
{
	gid_t old = (gid_t)setfsgid(gid);
	int rc = chown(path, (uid_t)-1, gid), saved = errno;

	(void)setfsgid(old);
	errno = saved;
	return rc;
}

int control_sock_grant(struct control_sock *cs, gid_t gid, char *err,
		       size_t errlen)
{
	struct stat st;

	if (cs->cs_fd == -1)
		return 0;
	/* only our own inode: the path may have been replaced meanwhile */
	if (lstat(cs->cs_path, &st) == -1 || st.st_dev != cs->cs_dev ||
	    st.st_ino != cs->cs_ino) {
		snprintf(err, errlen, "control socket %s: not ours any more",
			 cs->cs_path);
		return -1;
	}
	/* as it is already (each reload): no moment with another mode */
	if (gid == (gid_t)-1 ? (st.st_mode & 0777) == 0600
			     : st.st_gid == gid && (st.st_mode & 0777) == 0660)
		return 0;
	if (gid == (gid_t)-1)
		return chmod(cs->cs_path, 0600) == 0 ? 0 : -1;
	/* the group first, then the mode: never 0660 with the wrong group */
	if (chmod(cs->cs_path, 0600) == -1 || control_chgrp(cs->cs_path, gid) ||
	    chmod(cs->cs_path, 0660) == -1) {
		snprintf(err, errlen,
			 "control socket %s: group %u, mode 0660: %s",
			 cs->cs_path, (unsigned)gid, strerror(errno));
		(void)chmod(cs->cs_path, 0600);
		return -1;
	}
	return 0;
}

static void control_apply_group(struct control *ctl)
{
	char err[300];

	if (control_sock_grant(&ctl->ctl_sock, ctl->ctl_gid, err,
			       sizeof(err)) == -1)
		log_warn("%s; control_socket_group members cannot connect",
			 err);
}

void control_set_group(struct control *ctl, gid_t gid)
{
	ctl->ctl_gid = gid;
	control_apply_group(ctl);
}

void control_set_sock(struct control *ctl, struct control_sock *cs)
{
	control_sock_close(&ctl->ctl_sock, true);
	ctl->ctl_sock = *cs;
	cs->cs_fd = -1;
	cs->cs_path = NULL;
	control_apply_group(ctl);
}

/* The commands that change nothing; anything else needs root or our uid. */
static const char *const control_readonly_cmds[] = {"status", "check"};

bool control_cmd_is_readonly(const char *cmd)
{
	size_t n = strcspn(cmd, " ");

	for (size_t i = 0; i < sizeof(control_readonly_cmds) /
				       sizeof(control_readonly_cmds[0]);
	     i++)
		if (strlen(control_readonly_cmds[i]) == n &&
		    strncmp(cmd, control_readonly_cmds[i], n) == 0)
			return true;
	return false;
}

/* ---- output ----------------------------------------------------------- */

static int control_append(struct control_conn *cc, const char *s, size_t n)
{
	if (cc->cc_outlen + n > cc->cc_outcap) {
		size_t cap = cc->cc_outcap ? cc->cc_outcap : 1024;
		char *p;

		while (cap < cc->cc_outlen + n)
			cap *= 2;
		if (cap > CONTROL_OUT_MAX)
			return -1;
		p = realloc(cc->cc_out, cap);
		if (p == NULL)
			return -1;
		cc->cc_out = p;
		cc->cc_outcap = cap;
	}
	memcpy(cc->cc_out + cc->cc_outlen, s, n);
	cc->cc_outlen += n;
	return 0;
}

/* Send what is queued, without blocking.  -1 if the peer is gone. */
static int control_flush(struct control_conn *cc)
{
	return outbuf_send(cc->cc_fd, cc->cc_out, cc->cc_outlen,
			   &cc->cc_outoff);
}

static void control_vline(struct control_conn *cc, const char *fmt, va_list ap)
{
	char text[4096];
	const char *p = text;

	if (cc->cc_done)
		return;
	vsnprintf(text, sizeof(text), fmt, ap);
	for (;;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		if (control_append(cc, "| ", 2) == -1 ||
		    control_append(cc, p, n) == -1 ||
		    control_append(cc, "\n", 1) == -1) {
			cc->cc_done = true; /* out of memory: give up, close */
			cc->cc_outoff = cc->cc_outlen;
			return;
		}
		if (nl == NULL || nl[1] == '\0')
			return;
		p = nl + 1;
	}
}

void control_line(struct control_conn *cc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	control_vline(cc, fmt, ap);
	va_end(ap);
}

static void control_end(struct control_conn *cc, bool ok, const char *msg)
{
	char line[1024];
	int n;

	if (cc->cc_done)
		return;
	n = snprintf(line, sizeof(line), "%s%s%s", ok ? "OK" : "ERR",
		     *msg ? " " : "", msg);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	for (int i = 0; i < n; i++)
		if (line[i] == '\n')
			line[i] = ' ';
	line[n++] = '\n';
	if (control_append(cc, line, (size_t)n) == -1)
		cc->cc_outoff = cc->cc_outlen;
	cc->cc_done = true;
	cc->cc_wait = CONTROL_WAIT_NONE;
	cc->cc_deadline = timer_now_ms() + CONTROL_IO_TIMEOUT_MS;
	(void)control_flush(cc);
}

void control_finish(struct control_conn *cc, bool ok, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	control_end(cc, ok, msg);
}

void control_finish_all(struct control *ctl, enum control_wait w, bool ok,
			char *const *lines, size_t nlines, const char *msg)
{
	for (size_t i = 0; i < CONTROL_MAX_CONNS; i++) {
		struct control_conn *cc = ctl->ctl_conns[i];

		if (cc == NULL || cc->cc_done || cc->cc_wait != w)
			continue;
		for (size_t j = 0; j < nlines; j++)
			control_line(cc, "%s", lines[j]);
		control_end(cc, ok, msg);
	}
}

void control_promote(struct control *ctl, enum control_wait from,
		     enum control_wait to)
{
	for (size_t i = 0; i < CONTROL_MAX_CONNS; i++)
		if (ctl->ctl_conns[i] != NULL &&
		    ctl->ctl_conns[i]->cc_wait == from)
			ctl->ctl_conns[i]->cc_wait = to;
}

size_t control_waiting(const struct control *ctl, enum control_wait w)
{
	size_t n = 0;

	for (size_t i = 0; i < CONTROL_MAX_CONNS; i++)
		n += ctl->ctl_conns[i] != NULL && !ctl->ctl_conns[i]->cc_done &&
		     ctl->ctl_conns[i]->cc_wait == w;
	return n;
}

/* ---- connections ------------------------------------------------------ */

static void control_conn_free(struct control *ctl, size_t i)
{
	struct control_conn *cc = ctl->ctl_conns[i];

	close(cc->cc_fd);
	free(cc->cc_out);
	free(cc);
	ctl->ctl_conns[i] = NULL;
}

/* Give up on cc: it is closed at the next reap. */
static void control_drop(struct control_conn *cc)
{
	cc->cc_done = true;
	cc->cc_wait = CONTROL_WAIT_NONE;
	cc->cc_outoff = cc->cc_outlen;
}

/* Close the connections whose answer is out. */
static void control_reap(struct control *ctl)
{
	for (size_t i = 0; i < CONTROL_MAX_CONNS; i++) {
		struct control_conn *cc = ctl->ctl_conns[i];

		if (cc != NULL && cc->cc_done && cc->cc_outoff == cc->cc_outlen)
			control_conn_free(ctl, i);
	}
}

/* Refusals are counted and logged at most once a CONTROL_REFUSAL_LOG_MS. */
static void control_log_refusal(struct control *ctl, const char *why)
{
	uint64_t now = timer_now_ms();

	ctl->ctl_refused++;
	if (now < ctl->ctl_refusal_log_at)
		return;
	log_warn("control socket: refused %llu connection(s) since the last "
		 "report, the last one: %s",
		 (unsigned long long)ctl->ctl_refused, why);
	ctl->ctl_refused = 0;
	ctl->ctl_refusal_log_at = now + CONTROL_REFUSAL_LOG_MS;
}

/*
 * Is the peer a member of gid?  Its primary group is in SO_PEERCRED, the
 * supplementary ones in SO_PEERGROUPS (as they were at its connect()).
 */
static bool control_peer_in_group(int fd, const struct ucred *cred, gid_t gid)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);

	if (gid == (gid_t)-1)
		return false;
	if (cred->gid == gid)
		return true;
	/* more than 256 groups: not looked through, refused */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == -1)
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == gid)
			return true;
	return false;
}

/*
 * Root and our own user may run every command, members of
 * control_socket_group the read-only ones (cc_readonly); false: refused.
 */
static bool control_peer_allowed(struct control *ctl, int fd,
				 struct control_conn *who)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char why[160];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
		log_warn("control socket: SO_PEERCRED: %s", strerror(errno));
		return false;
	}
	who->cc_uid = cred.uid;
	who->cc_pid = cred.pid;
	who->cc_readonly = false;
	if (cred.uid == 0 || cred.uid == geteuid())
		return true;
	if (control_peer_in_group(fd, &cred, ctl->ctl_gid)) {
		who->cc_readonly = true;
		return true;
	}
	snprintf(why, sizeof(why),
		 "uid %u (pid %d): only root, uid %u and control_socket_group "
		 "may use it",
		 (unsigned)cred.uid, (int)cred.pid, (unsigned)geteuid());
	control_log_refusal(ctl, why);
	return false;
}

static void control_refuse(int fd, const char *why)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "ERR %s\n", why);

	(void)!send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

/*
 * The table is full: make room by dropping the connection that has been
 * silent longest (connected, nothing sent), so that idle connections,
 * even from a privileged user, cannot lock the operator out.  -1 if
 * every connection is busy with a command.
 */
static int control_evict_idle(struct control *ctl)
{
	int victim = -1;

	for (int i = 0; i < CONTROL_MAX_CONNS; i++) {
		const struct control_conn *cc = ctl->ctl_conns[i];

		if (cc == NULL || cc->cc_inlen != 0 || cc->cc_done ||
		    cc->cc_wait != CONTROL_WAIT_NONE)
			continue;
		if (victim == -1 ||
		    cc->cc_accepted < ctl->ctl_conns[victim]->cc_accepted)
			victim = i;
	}
	if (victim != -1)
		control_conn_free(ctl, (size_t)victim);
	return victim;
}

static void control_accept(struct control *ctl)
{
	for (int k = 0; k < CONTROL_MAX_CONNS; k++) {
		int fd = accept4(ctl->ctl_sock.cs_fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct control_conn *cc, who = {0};
		size_t i;

		if (fd == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warn("control socket: accept: %s",
					 strerror(errno));
			return;
		}
		if (!control_peer_allowed(ctl, fd, &who)) {
			control_refuse(fd, "permission denied");
			continue;
		}
		for (i = 0; i < CONTROL_MAX_CONNS && ctl->ctl_conns[i]; i++)
			;
		if (i == CONTROL_MAX_CONNS) {
			int room = control_evict_idle(ctl);

			if (room != -1)
				i = (size_t)room;
		}
		cc = i < CONTROL_MAX_CONNS ? calloc(1, sizeof(*cc)) : NULL;
		if (cc == NULL) {
			control_log_refusal(ctl, "too many control connections");
			control_refuse(fd, "too many control connections");
			continue;
		}
		cc->cc_fd = fd;
		cc->cc_readonly = who.cc_readonly;
		cc->cc_uid = who.cc_uid;
		cc->cc_pid = who.cc_pid;
		cc->cc_pollidx = -1;
		cc->cc_accepted = timer_now_ms();
		cc->cc_deadline = cc->cc_accepted + CONTROL_IDLE_MS;
		ctl->ctl_conns[i] = cc;
	}
}

/*
 * A control_socket_group member asked for more than a read-only command:
 * an answer, not a broken pipe, and a log line naming it.
 */
static void control_refuse_command(struct control *ctl, struct control_conn *cc,
				   const char *line)
{
	char verb[33], why[160];
	size_t i;

	for (i = 0; i < sizeof(verb) - 1 && line[i] != '\0' && line[i] != ' ';
	     i++)
		verb[i] = line[i] > ' ' && line[i] < 0x7f ? line[i] : '?';
	verb[i] = '\0';
	snprintf(why, sizeof(why),
		 "uid %u (pid %d): '%s' is not a read-only command",
		 (unsigned)cc->cc_uid, (int)cc->cc_pid, verb);
	control_log_refusal(ctl, why);
	control_end(cc, false, "permission denied");
}

/* A whole line arrived: hand it to the master. */
static void control_command(struct control *ctl, struct control_conn *cc,
			    char *line)
{
	size_t n = strlen(line);

	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' '))
		line[--n] = '\0';
	while (*line == ' ')
		line++;
	cc->cc_deadline = 0; /* the command's own wait is bounded */
	if (cc->cc_readonly && !control_cmd_is_readonly(line)) {
		control_refuse_command(ctl, cc, line);
		return;
	}
	ctl->ctl_cb(ctl, cc, line);
	if (!cc->cc_done && cc->cc_wait == CONTROL_WAIT_NONE)
		control_end(cc, false, "internal error: command not answered");
}

static void control_on_readable(struct control *ctl, struct control_conn *cc)
{
	char *nl;
	ssize_t n;

	if (cc->cc_done || cc->cc_wait != CONTROL_WAIT_NONE) {
		char junk[256]; /* after the command: nothing more to read */

		n = recv(cc->cc_fd, junk, sizeof(junk), 0);
		if (n == 0)
			cc->cc_eof =
				true; /* half-close: still owed an answer */
		else if (n == -1 && errno != EAGAIN && errno != EINTR)
			control_drop(cc);
		return;
	}
	n = recv(cc->cc_fd, cc->cc_in + cc->cc_inlen,
		 sizeof(cc->cc_in) - 1 - cc->cc_inlen, 0);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		control_drop(cc); /* gone before its command */
		return;
	}
	if (cc->cc_inlen == 0) /* it spoke: the whole line may take longer */
		cc->cc_deadline = cc->cc_accepted + CONTROL_IO_TIMEOUT_MS;
	cc->cc_inlen += (size_t)n;
	cc->cc_in[cc->cc_inlen] = '\0';
	nl = strchr(cc->cc_in, '\n');
	if (nl != NULL) {
		*nl = '\0';
		control_command(ctl, cc, cc->cc_in);
	} else if (cc->cc_inlen == sizeof(cc->cc_in) - 1) {
		control_end(cc, false, "command line too long");
	}
}

size_t control_pollfds(struct control *ctl, struct pollfd *pfd, size_t max)
{
	size_t n = 0;

	control_reap(ctl);
	ctl->ctl_listen_idx = -1;
	if (ctl->ctl_sock.cs_fd != -1 && n < max) {
		pfd[n] = (struct pollfd){.fd = ctl->ctl_sock.cs_fd,
					 .events = POLLIN};
		ctl->ctl_listen_idx = (int)n++;
	}
	for (size_t i = 0; i < CONTROL_MAX_CONNS; i++) {
		struct control_conn *cc = ctl->ctl_conns[i];

		if (cc == NULL)
			continue;
		cc->cc_pollidx = -1;
		if (n == max)
			continue;
		pfd[n] = (struct pollfd){.fd = cc->cc_fd,
					 .events = cc->cc_eof ? 0 : POLLIN};
		if (cc->cc_outoff < cc->cc_outlen)
			pfd[n].events |= POLLOUT;
		cc->cc_pollidx = (int)n++;
	}
	return n;
}

void control_dispatch(struct control *ctl, const struct pollfd *pfd)
{
	for (size_t i = 0; i < CONTROL_MAX_CONNS; i++) {
		struct control_conn *cc = ctl->ctl_conns[i];
		short re;

		if (cc == NULL || cc->cc_pollidx < 0 ||
		    pfd[cc->cc_pollidx].fd != cc->cc_fd)
			continue;
		re = pfd[cc->cc_pollidx].revents;
		cc->cc_pollidx = -1;
		if (re & POLLIN)
			control_on_readable(ctl, cc);
		if ((re & POLLOUT) && control_flush(cc) == -1)
			control_drop(cc);
		if ((re & (POLLHUP | POLLERR)) && !(re & POLLIN))
			control_drop(cc); /* the peer is gone for good */
	}
	if (ctl->ctl_listen_idx >= 0 &&
	    pfd[ctl->ctl_listen_idx].fd == ctl->ctl_sock.cs_fd &&
	    (pfd[ctl->ctl_listen_idx].revents & POLLIN))
		control_accept(ctl);
	ctl->ctl_listen_idx = -1;
	control_reap(ctl);
}

int64_t control_timers(struct control *ctl, uint64_t now)
{
	int64_t next = -1;

	for (size_t i = 0; i < CONTROL_MAX_CONNS; i++) {
		struct control_conn *cc = ctl->ctl_conns[i];

		if (cc == NULL || cc->cc_deadline == 0)
			continue;
		if (cc->cc_deadline <= now) {
			control_conn_free(ctl, i);
			continue;
		}
		if (next == -1 || (int64_t)(cc->cc_deadline - now) < next)
			next = (int64_t)(cc->cc_deadline - now);
	}
	return next;
}

void control_close_all(struct control *ctl)
{
	for (size_t i = 0; i < CONTROL_MAX_CONNS; i++) {
		if (ctl->ctl_conns[i] == NULL)
			continue;
		(void)control_flush(ctl->ctl_conns[i]);
		control_conn_free(ctl, i);
	}
}

void control_close_fds(const struct control *ctl)
{
	if (ctl->ctl_sock.cs_fd != -1)
		close(ctl->ctl_sock.cs_fd);
	for (size_t i = 0; i < CONTROL_MAX_CONNS; i++)
		if (ctl->ctl_conns[i] != NULL)
			close(ctl->ctl_conns[i]->cc_fd);
}
