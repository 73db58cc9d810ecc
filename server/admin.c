/* admin.c: the admin endpoint's HTTP server in the master: socket,
 * connections, the request head and the answer (see admin.h). */
#include "server/admin.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/iptree.h"
#include "common/log.h"
#include "common/timer.h"

#define ADMIN_BACKLOG 64

void admin_init(struct admin *ad, admin_render_fn render, void *data)
{
	memset(ad, 0, sizeof(*ad));
	ad->ad_fd = -1;
	ad->ad_listen_idx = -1;
	for (int i = 0; i < ADMIN_MAX_CONNS; i++)
		ad->ad_idx[i] = -1;
	ad->ad_render = render;
	ad->ad_data = data;
}

/* ---- the listening socket -------------------------------------------- */

static int admin_bind_fd(const struct sockaddr_storage *sa, socklen_t salen)
{
	int fd = socket(sa->ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, saved;

	if (fd == -1)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sa->ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
				 sizeof(one));
	if (bind(fd, (const struct sockaddr *)sa, salen) == 0 &&
	    listen(fd, ADMIN_BACKLOG) == 0)
		return fd;
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* Try to bind ad_want; on failure log (once) and retry later. */
static void admin_try_bind(struct admin *ad, uint64_t now)
{
	int fd = admin_bind_fd(&ad->ad_sa, ad->ad_salen);

	if (fd == -1) {
		bool expected = errno == EADDRINUSE && now < ad->ad_quiet_until;

		if (expected)
			log_info("admin %s: %s; the old master still has it, "
				 "retrying every %ums",
				 ad->ad_want, strerror(errno), ADMIN_RETRY_MS);
		else if (!ad->ad_bind_logged)
			log_error("admin %s: %s (retrying every %ums)",
				  ad->ad_want, strerror(errno), ADMIN_RETRY_MS);
		ad->ad_bind_logged = !expected;
		ad->ad_retry_at = now + ADMIN_RETRY_MS;
		return;
	}
	ad->ad_fd = fd;
	ad->ad_retry_at = 0;
	free(ad->ad_bind);
	ad->ad_bind = strdup(ad->ad_want);
	if (ad->ad_bind_logged || log_enabled(LOG_LVL_INFO))
		log_notice("admin endpoint on %s", ad->ad_want);
	ad->ad_bind_logged = false;
}

/* Close the listening socket and forget where it was to be. */
static void admin_unbind(struct admin *ad)
{
	if (ad->ad_fd != -1)
		close(ad->ad_fd);
	ad->ad_fd = -1;
	free(ad->ad_want);
	free(ad->ad_bind);
	ad->ad_want = ad->ad_bind = NULL;
	ad->ad_retry_at = 0;
}

void admin_configure(struct admin *ad, const char *bind,
		     const struct sockaddr_storage *sa, socklen_t salen,
		     uint64_t now)
{
	bool same = bind != NULL && ad->ad_want != NULL &&
		    strcmp(bind, ad->ad_want) == 0;

	if (same)
		return; /* kept: a reload that does not change admin.bind */
	admin_unbind(ad);
	ad->ad_bind_logged = false;
	if (bind == NULL)
		return;
	ad->ad_want = strdup(bind);
	if (ad->ad_want == NULL)
		return;
	ad->ad_sa = *sa;
	ad->ad_salen = salen;
	admin_try_bind(ad, now);
}

/* ---- connections ------------------------------------------------------ */

static void admin_conn_close(struct admin *ad, int i)
{
	struct admin_conn *ac = ad->ad_conns[i];

	close(ac->ac_fd);
	outbuf_free(&ac->ac_out);
	free(ac);
	ad->ad_conns[i] = NULL;
}

/* Log refused clients at most once per interval. */
static void admin_note_refusal(struct admin *ad, const char *why)
{
	uint64_t now = timer_now_ms();

	ad->ad_refused++;
	if (now < ad->ad_refusal_log_at)
		return;
	log_warn("admin %s: %llu connection(s) refused: %s",
		 ad->ad_bind ? ad->ad_bind : "?",
		 (unsigned long long)ad->ad_refused, why);
	ad->ad_refused = 0;
	ad->ad_refusal_log_at = now + ADMIN_REFUSAL_LOG_MS;
}

static int admin_free_slot(const struct admin *ad)
{
	for (int i = 0; i < ADMIN_MAX_CONNS; i++)
		if (ad->ad_conns[i] == NULL)
			return i;
	return -1;
}

/* Accept what the backlog holds, while there is room. */
static void admin_accept(struct admin *ad, const struct iptree *allow)
{
	for (;;) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		int slot = admin_free_slot(ad), fd;

		if (slot < 0)
			return; /* the rest wait in the backlog */
		fd = accept4(ad->ad_fd, (struct sockaddr *)&peer, &len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1)
			return;
		if (allow == NULL || !iptree_match(allow, &peer)) {
			admin_note_refusal(ad, "client not in admin.allow");
			close(fd);
			continue;
		}
		ad->ad_conns[slot] = calloc(1, sizeof(struct admin_conn));
		if (ad->ad_conns[slot] == NULL) {
			close(fd);
			return;
		}
		ad->ad_conns[slot]->ac_fd = fd;
		ad->ad_conns[slot]->ac_out.ob_max = ADMIN_OUT_MAX;
		ad->ad_conns[slot]->ac_deadline =
			timer_now_ms() + ADMIN_READ_TIMEOUT_MS;
	}
}

/* ---- the request ------------------------------------------------------ */

unsigned admin_parse_request(const char *head, bool *is_head, char *path,
			     size_t pathcap)
{
	const char *sp1 = strchr(head, ' '), *sp2, *eol, *q;
	size_t mlen, plen;

	eol = head + strcspn(head, "\r\n");
	if (sp1 == NULL || sp1 > eol)
		return 400;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	if (sp2 == NULL || sp1[1] == ' ')
		return 400;
	mlen = (size_t)(sp1 - head);
	if ((size_t)(eol - sp2 - 1) != 8 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return (size_t)(eol - sp2 - 1) >= 5 &&
				       strncmp(sp2 + 1, "HTTP/", 5) == 0
			       ? 505
			       : 400;
	if (sp1[1] != '/')
		return 400;
	q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
	plen = (size_t)((q ? q : sp2) - sp1 - 1);
	if (plen >= pathcap)
		return 404;
	memcpy(path, sp1 + 1, plen);
	path[plen] = '\0';
	*is_head = mlen == 4 && strncmp(head, "HEAD", 4) == 0;
	if (!*is_head && !(mlen == 3 && strncmp(head, "GET", 3) == 0))
		return 405;
	return 0;
}

static const char *admin_reason(unsigned status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

/*
 * Put the whole answer into ac_out: head, then (unless HEAD) the body.
 * An answer too large for ADMIN_OUT_MAX becomes a 503.
 */
static void admin_answer(struct admin *ad, struct admin_conn *ac,
			 unsigned status, bool is_head, const char *path)
{
	struct outbuf body = {.ob_max = ADMIN_OUT_MAX};
	const char *ctype = "text/plain; charset=utf-8";

	if (status == 0)
		status = ad->ad_render(ad->ad_data, path, &body, &ctype);
	else
		outbuf_printf(&body, "%u %s\n", status, admin_reason(status));
	if (body.ob_is_full) {
		status = 503;
		ctype = "text/plain; charset=utf-8";
		outbuf_reset(&body);
		outbuf_puts(&body, "503 answer too large\n");
	}
	outbuf_printf(&ac->ac_out,
		      "HTTP/1.1 %u %s\r\n"
		      "Content-Type: %s\r\n"
		      "Content-Length: %zu\r\n"
		      "Cache-Control: no-store\r\n"
		      "%s"
		      "Connection: close\r\n\r\n",
		      status, admin_reason(status), ctype, body.ob_len,
		      status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!is_head && body.ob_len > 0)
		outbuf_putn(&ac->ac_out, body.ob_buf, body.ob_len);
	outbuf_free(&body);
	ac->ac_is_writing = true;
	ac->ac_deadline = timer_now_ms() + ADMIN_WRITE_TIMEOUT_MS;
}

/* The end of the head, or NULL while it is incomplete. */
static const char *admin_head_end(const struct admin_conn *ac)
{
	const char *end = strstr(ac->ac_in, "\r\n\r\n");

	return end != NULL ? end : strstr(ac->ac_in, "\n\n");
}

/* Read what came; answer once the head is complete.  -1: close it. */
static int admin_read(struct admin *ad, struct admin_conn *ac)
{
	char path[256];
	bool is_head = false;
	unsigned status;
	ssize_t n;

	for (;;) {
		n = recv(ac->ac_fd, ac->ac_in + ac->ac_inlen,
			 sizeof(ac->ac_in) - 1 - ac->ac_inlen, 0);
		if (n > 0) {
			ac->ac_inlen += (size_t)n;
			ac->ac_in[ac->ac_inlen] = '\0';
			if (admin_head_end(ac) != NULL ||
			    ac->ac_inlen == sizeof(ac->ac_in) - 1)
				break;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return -1; /* gone before asking */
	}
	if (admin_head_end(ac) == NULL) {
		admin_answer(ad, ac, 431, false, NULL);
		return 0;
	}
	status = admin_parse_request(ac->ac_in, &is_head, path, sizeof(path));
	admin_answer(ad, ac, status, is_head, path);
	return 0;
}

/* Send what is left of the answer.  -1: done or failed, close it. */
static int admin_write(struct admin_conn *ac)
{
	if (outbuf_send(ac->ac_fd, ac->ac_out.ob_buf, ac->ac_out.ob_len,
			&ac->ac_outoff) == -1)
		return -1;
	if (ac->ac_outoff < ac->ac_out.ob_len)
		return 0;
	(void)shutdown(ac->ac_fd, SHUT_WR);
	return -1;
}

/* ---- the loop --------------------------------------------------------- */

size_t admin_pollfds(struct admin *ad, struct pollfd *pfd, size_t max)
{
	size_t n = 0;

	ad->ad_listen_idx = -1;
	if (ad->ad_fd != -1 && n < max && admin_free_slot(ad) >= 0) {
		ad->ad_listen_idx = (int)n;
		pfd[n++] = (struct pollfd){.fd = ad->ad_fd, .events = POLLIN};
	}
	for (int i = 0; i < ADMIN_MAX_CONNS; i++) {
		struct admin_conn *ac = ad->ad_conns[i];

		ad->ad_idx[i] = -1;
		if (ac == NULL || n >= max)
			continue;
		ad->ad_idx[i] = (int)n;
		pfd[n++] = (struct pollfd){
			.fd = ac->ac_fd,
			.events = ac->ac_is_writing ? POLLOUT : POLLIN};
	}
	return n;
}

void admin_dispatch(struct admin *ad, const struct pollfd *pfd,
		    const struct iptree *allow)
{
	for (int i = 0; i < ADMIN_MAX_CONNS; i++) {
		struct admin_conn *ac = ad->ad_conns[i];
		int rc = 0;

		if (ac == NULL || ad->ad_idx[i] < 0 ||
		    pfd[ad->ad_idx[i]].revents == 0)
			continue;
		if (!ac->ac_is_writing)
			rc = admin_read(ad, ac);
		/* the answer is usually sent at once, in this same turn */
		if (rc == 0 && ac->ac_is_writing)
			rc = admin_write(ac);
		if (rc == -1)
			admin_conn_close(ad, i);
	}
	if (ad->ad_listen_idx >= 0 &&
	    (pfd[ad->ad_listen_idx].revents & POLLIN))
		admin_accept(ad, allow);
}

int64_t admin_timers(struct admin *ad, uint64_t now)
{
	int64_t next = -1;

	if (ad->ad_retry_at != 0 && ad->ad_fd == -1 && ad->ad_want != NULL) {
		if (now >= ad->ad_retry_at)
			admin_try_bind(ad, now);
		if (ad->ad_fd == -1)
			next = (int64_t)(ad->ad_retry_at - now);
	}
	for (int i = 0; i < ADMIN_MAX_CONNS; i++) {
		struct admin_conn *ac = ad->ad_conns[i];
		int64_t left;

		if (ac == NULL)
			continue;
		if (now >= ac->ac_deadline) {
			admin_conn_close(ad, i); /* too slow: no answer */
			continue;
		}
		left = (int64_t)(ac->ac_deadline - now);
		if (next < 0 || left < next)
			next = left;
	}
	return next;
}

void admin_close(struct admin *ad)
{
	for (int i = 0; i < ADMIN_MAX_CONNS; i++)
		if (ad->ad_conns[i] != NULL)
			admin_conn_close(ad, i);
	admin_unbind(ad);
}

#define ADMIN_ENV_FD "PORTCULLIS_ADMIN_FD"

void admin_inherit(const struct admin *ad)
{
	char v[300];

	if (ad->ad_fd == -1 || ad->ad_bind == NULL ||
	    fcntl(ad->ad_fd, F_SETFD, 0) == -1)
		return;
	snprintf(v, sizeof(v), "%d %s", ad->ad_fd, ad->ad_bind);
	(void)setenv(ADMIN_ENV_FD, v, 1);
}

void admin_adopt(struct admin *ad)
{
	const char *v = getenv(ADMIN_ENV_FD);
	int fd, listening = 0, n = 0;
	socklen_t len = sizeof(listening);
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);

	if (v == NULL)
		return;
	if (sscanf(v, "%d %n", &fd, &n) != 1 || n == 0 || fd < 3 ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == -1 ||
	    !listening || getsockname(fd, (struct sockaddr *)&sa, &salen) == -1) {
		log_warn("upgrade: %s=%s: not an inherited admin socket; "
			 "binding anew",
			 ADMIN_ENV_FD, v);
		unsetenv(ADMIN_ENV_FD);
		return;
	}
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	(void)fcntl(fd, F_SETFL, O_NONBLOCK);
	ad->ad_fd = fd;
	ad->ad_want = strdup(v + n);
	ad->ad_bind = strdup(v + n);
	ad->ad_sa = sa;
	ad->ad_salen = salen;
	unsetenv(ADMIN_ENV_FD);
}

void admin_close_fds(const struct admin *ad)
{
	if (ad->ad_fd != -1)
		close(ad->ad_fd);
	for (int i = 0; i < ADMIN_MAX_CONNS; i++)
		if (ad->ad_conns[i] != NULL)
			close(ad->ad_conns[i]->ac_fd);
}
