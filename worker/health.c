/*
 * health.c: active health checks (see health.h).
 *
 * Each check is a small state machine: IDLE --tick--> CONNECTING
 * --connected--> (tcp: done) SENDING --request sent--> READING --status
 * line (and body substring) seen or EOF--> done.  Every path ends in
 * health_done(hc, ok, "reason"), which closes the socket, applies
 * rise/fall and arms the next tick.
 */
#include "worker/health.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/shm.h"
#include "worker/proxyproto.h"
#include "worker/tls.h"
#include "worker/transport.h"
#include "worker/worker.h"

#define HEALTH_BUF 4096
#define HEALTH_MAX_READ (1024 * 1024) /* bytes of body searched at most */

enum hc_state {
	HC_IDLE,
	HC_CONNECTING,
	HC_HANDSHAKE,                /* TLS to the server */
	HC_SENDING,
	HC_READING,
};

struct health_check {
	struct loop_io hc_io;
	struct transport hc_t;       /* the check's connection, plain or TLS */
	struct transport_ready hc_rdy;
	struct timer hc_tick;        /* the next check */
	struct timer hc_deadline;    /* timeout of the running check */
	struct worker *hc_w;
	struct balance_server *hc_srv;
	const struct cfg_health *hc_cfg;
	enum hc_state hc_state;
	unsigned hc_ok_run, hc_fail_run;
	bool hc_has_status;          /* status line seen and accepted */
	bool hc_in_body;             /* past the head: hc_buf holds body bytes */
	unsigned hc_status;
	size_t hc_len, hc_sent, hc_total;
	char hc_buf[HEALTH_BUF];
};

static struct health_check **health_checks;
static size_t health_n;

static const char *hc_name(const struct health_check *hc)
{
	return hc->hc_srv->srv_cfg->addr.str;
}

static void health_close(struct health_check *hc)
{
	struct loop *lp = &hc->hc_w->w_loop;

	loop_timer_del(lp, &hc->hc_deadline);
	if (hc->hc_io.io_fd >= 0) {
		loop_del_fd(lp, &hc->hc_io);
		transport_close(&hc->hc_t);
		hc->hc_io.io_fd = -1;
	}
	hc->hc_state = HC_IDLE;
}

/* The single end of every check: verdict, rise/fall, next tick. */
static void health_done(struct health_check *hc, bool ok, const char *reason)
{
	struct shm_server *sv = hc->hc_srv->srv_shm;
	const char *backend = hc->hc_srv->srv_be->name;
	bool is_up = atomic_load(&sv->sv_health) == SHM_UP;
	struct metrics_server *ms = metrics_server(hc->hc_srv->srv_cfg->slot);

	health_close(hc);
	if (ms != NULL)
		metrics_add(ok ? &ms->ms_checks_ok : &ms->ms_checks_failed, 1);
	if (ok) {
		hc->hc_fail_run = 0;
		if (++hc->hc_ok_run >= hc->hc_cfg->rise && !is_up) {
			shm_set_health(sv, SHM_UP, reason);
			log_notice("backend %s: server %s is up: %s", backend,
				   hc_name(hc), reason);
		}
	} else {
		hc->hc_ok_run = 0;
		if (++hc->hc_fail_run >= hc->hc_cfg->fall && is_up) {
			shm_set_health(sv, SHM_DOWN, reason);
			log_warn("backend %s: server %s is down: %s", backend,
				 hc_name(hc), reason);
		}
	}
	loop_timer_in(&hc->hc_w->w_loop, &hc->hc_tick, hc->hc_cfg->interval_ms);
}

static bool status_expected(const struct cfg_health *cfg, unsigned status)
{
	for (size_t i = 0; i < cfg->nexpect_status; i++)
		if (cfg->expect_status[i] == status)
			return true;
	return false;
}

/* Build "GET path HTTP/1.1" with Host into hc_buf. */
static void health_request(struct health_check *hc)
{
	const struct cfg_health *cfg = hc->hc_cfg;
	int n = snprintf(hc->hc_buf, sizeof(hc->hc_buf),
			 "GET %s HTTP/1.1\r\nHost: %s\r\n"
			 "User-Agent: portcullis-health-check\r\n"
			 "Connection: close\r\n\r\n",
			 cfg->path, cfg->host ? cfg->host : hc_name(hc));

	hc->hc_len = n < (int)sizeof(hc->hc_buf) ? (size_t)n : sizeof(hc->hc_buf);
	hc->hc_sent = 0;
}

static void health_send(struct health_check *hc)
{
	struct iovec iov = {hc->hc_buf + hc->hc_sent, hc->hc_len - hc->hc_sent};
	ssize_t n = transport_sendv(&hc->hc_t, &iov, 1, &hc->hc_rdy);
	char why[128];

	if (n == TRANSPORT_AGAIN)
		return;
	if (n < 0) {
		snprintf(why, sizeof(why), "send: %s",
			 hc->hc_t.t_error ? hc->hc_t.t_error : strerror(errno));
		health_done(hc, false, why);
		return;
	}
	hc->hc_sent += (size_t)n;
	if (hc->hc_sent == hc->hc_len) {
		hc->hc_state = HC_READING;
		hc->hc_len = 0;
	}
}

/* Parse "HTTP/1.x SSS" once the first line is in.  false: need more. */
static bool health_status_line(struct health_check *hc)
{
	char *eol = memchr(hc->hc_buf, '\n', hc->hc_len);
	char why[64];

	if (eol == NULL)
		return false;
	if (hc->hc_len < 12 || memcmp(hc->hc_buf, "HTTP/1.", 7) != 0 ||
	    hc->hc_buf[8] != ' ' || hc->hc_buf[9] < '1' || hc->hc_buf[9] > '5') {
		health_done(hc, false, "invalid response");
		return true;
	}
	hc->hc_status = (unsigned)((hc->hc_buf[9] - '0') * 100 +
				   (hc->hc_buf[10] - '0') * 10 +
				   (hc->hc_buf[11] - '0'));
	snprintf(why, sizeof(why), "status %u", hc->hc_status);
	if (!status_expected(hc->hc_cfg, hc->hc_status)) {
		health_done(hc, false, why);
		return true;
	}
	hc->hc_has_status = true;
	if (hc->hc_cfg->body == NULL)
		health_done(hc, true, why);
	return true;
}

/* Drop the rest of the head from hc_buf; false while it has not ended. */
static bool health_skip_head(struct health_check *hc)
{
	char *end = memmem(hc->hc_buf, hc->hc_len, "\r\n\r\n", 4);

	if (end == NULL) {
		/* keep 3 bytes: the blank line may straddle two reads */
		if (hc->hc_len > 3) {
			memmove(hc->hc_buf, hc->hc_buf + hc->hc_len - 3, 3);
			hc->hc_len = 3;
		}
		return false;
	}
	hc->hc_len -= (size_t)(end + 4 - hc->hc_buf);
	memmove(hc->hc_buf, end + 4, hc->hc_len);
	hc->hc_in_body = true;
	return true;
}

/*
 * Looking for the body substring, in the body only (not the status line
 * or headers; chunked framing is not decoded): keep only a tail to search
 * across reads.
 */
static void health_body(struct health_check *hc)
{
	const char *want = hc->hc_cfg->body;
	size_t wlen = strlen(want);
	char why[64];

	if (!hc->hc_in_body && !health_skip_head(hc))
		return;
	if (memmem(hc->hc_buf, hc->hc_len, want, wlen) != NULL) {
		snprintf(why, sizeof(why), "status %u, body matches",
			 hc->hc_status);
		health_done(hc, true, why);
		return;
	}
	if (hc->hc_len >= wlen) {
		memmove(hc->hc_buf, hc->hc_buf + hc->hc_len - (wlen - 1),
			wlen - 1);
		hc->hc_len = wlen - 1;
	}
}

static void health_read(struct health_check *hc)
{
	while (hc->hc_rdy.rd) {
		ssize_t n = transport_recv(&hc->hc_t, hc->hc_buf + hc->hc_len,
					   sizeof(hc->hc_buf) - hc->hc_len,
					   &hc->hc_rdy);

		if (n == TRANSPORT_AGAIN)
			return;
		if (n <= 0) {
			health_done(hc, false,
				    hc->hc_has_status ? "body does not match"
						      : "connection closed");
			return;
		}
		hc->hc_len += (size_t)n;
		hc->hc_total += (size_t)n;
		if (!hc->hc_has_status && !health_status_line(hc)) {
			if (hc->hc_len == sizeof(hc->hc_buf))
				health_done(hc, false, "invalid response");
			if (hc->hc_state != HC_READING)
				return;
			continue;
		}
		if (hc->hc_state != HC_READING)
			return;
		health_body(hc);
		if (hc->hc_state != HC_READING)
			return;
		if (hc->hc_total > HEALTH_MAX_READ) {
			health_done(hc, false, "body does not match");
			return;
		}
	}
}

/* The connection is up (TCP, and TLS if the backend has it). */
static void health_connected(struct health_check *hc)
{
	if (hc->hc_cfg->type == CFG_CHECK_TCP) {
		health_done(hc, true, transport_is_tls(&hc->hc_t)
					      ? "TLS handshake ok"
					      : "connect ok");
		return;
	}
	hc->hc_state = HC_SENDING;
	health_request(hc);
}

static void health_handshake(struct health_check *hc)
{
	char why[300];

	switch (transport_handshake(&hc->hc_t, &hc->hc_rdy)) {
	case TRANSPORT_HS_DONE:
		tls_client_keep_session(hc->hc_t.t_ssl,
					&hc->hc_srv->srv_tls_session);
		health_connected(hc);
		break;
	case TRANSPORT_HS_AGAIN:
		break;
	default:
		snprintf(why, sizeof(why), "TLS handshake: %s",
			 hc->hc_t.t_error ? hc->hc_t.t_error : "failed");
		health_done(hc, false, why);
		break;
	}
}

/*
 * A backend with proxy_protocol refuses connections without the header,
 * so the checks send one too: v2 LOCAL (the check is the proxy's own
 * connection), v1 with the check's own addresses.  0 or -1.
 */
static int health_proxy_header(struct health_check *hc)
{
	enum cfg_proxy_protocol v = hc->hc_srv->srv_be->proxy_protocol;
	const struct cfg_addr *a = &hc->hc_srv->srv_cfg->addr;
	uint8_t hdr[PROXYPROTO_BUILD_MAX];
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);
	size_t n;

	if (v == CFG_PROXY_PROTOCOL_OFF)
		return 0;
	if (v == CFG_PROXY_PROTOCOL_V2) {
		n = proxyproto_build_v2_local(hdr, sizeof(hdr));
	} else {
		if (getsockname(hc->hc_io.io_fd, (struct sockaddr *)&local,
				&len) == -1)
			return -1;
		n = proxyproto_build_v1((char *)hdr, sizeof(hdr), &local, &a->sa);
	}
	return n == 0 ? -1 : transport_send_raw(&hc->hc_t, hdr, n);
}

static void health_on_io(struct loop_io *io, uint32_t ev)
{
	struct health_check *hc = io->io_data;
	int err = 0;
	socklen_t len = sizeof(err);
	char why[128];

	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		hc->hc_rdy.rd = true;
	if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		hc->hc_rdy.hup = true;
	if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		hc->hc_rdy.wr = true;
	if (hc->hc_state == HC_CONNECTING) {
		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(io->io_fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err != 0) {
			snprintf(why, sizeof(why), "connect: %s", strerror(err));
			health_done(hc, false, why);
			return;
		}
		if (health_proxy_header(hc) == -1) {
			health_done(hc, false, "cannot send the PROXY header");
			return;
		}
		if (transport_is_tls(&hc->hc_t))
			hc->hc_state = HC_HANDSHAKE;
		else
			health_connected(hc);
	}
	if (hc->hc_state == HC_HANDSHAKE)
		health_handshake(hc);
	if (hc->hc_state == HC_SENDING && hc->hc_rdy.wr)
		health_send(hc);
	if (hc->hc_state == HC_READING)
		health_read(hc);
}

static void health_on_timeout(struct timer *t)
{
	struct health_check *hc = t->tm_data;
	char why[64];

	snprintf(why, sizeof(why), "timeout after %ums", hc->hc_cfg->timeout_ms);
	health_done(hc, false, why);
}

static void health_on_tick(struct timer *t)
{
	struct health_check *hc = t->tm_data;
	const struct cfg_addr *a = &hc->hc_srv->srv_cfg->addr;
	char why[128];
	int fd;

	hc->hc_has_status = false;
	hc->hc_in_body = false;
	hc->hc_len = hc->hc_total = 0;
	fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd == -1 || (connect(fd, (const struct sockaddr *)&a->sa,
				 a->salen) == -1 && errno != EINPROGRESS)) {
		snprintf(why, sizeof(why), "connect: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		health_done(hc, false, why);
		return;
	}
	if (balance_server_transport(hc->hc_srv, fd, &hc->hc_t) == -1) {
		close(fd);
		health_done(hc, false, "TLS setup failed");
		return;
	}
	hc->hc_rdy = (struct transport_ready){0};
	loop_io_init(&hc->hc_io, fd, health_on_io, hc);
	if (loop_add_fd(&hc->hc_w->w_loop, &hc->hc_io,
			EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) == -1) {
		transport_close(&hc->hc_t);
		hc->hc_io.io_fd = -1;
		health_done(hc, false, "epoll_ctl failed");
		return;
	}
	hc->hc_state = HC_CONNECTING;
	loop_timer_in(&hc->hc_w->w_loop, &hc->hc_deadline,
		      hc->hc_cfg->timeout_ms);
}

static struct health_check *health_new(struct worker *w,
				       struct balance_server *s)
{
	struct health_check *hc = calloc(1, sizeof(*hc));

	if (hc == NULL)
		return NULL;
	hc->hc_w = w;
	hc->hc_srv = s;
	hc->hc_cfg = &s->srv_be->health;
	hc->hc_io.io_fd = -1;
	timer_init(&hc->hc_tick, health_on_tick, hc);
	timer_init(&hc->hc_deadline, health_on_timeout, hc);
	/* spread the first checks a little; then every interval */
	loop_timer_in(&w->w_loop, &hc->hc_tick,
		      (uint64_t)s->srv_cfg->slot % 50);
	return hc;
}

int health_start(struct worker *w, unsigned slot, unsigned nslots)
{
	size_t cap = 0;

	for (size_t i = 0; i < w->w_cfg->nbackends; i++)
		cap += w->w_bes[i].be_nservers;
	health_checks = calloc(cap ? cap : 1, sizeof(*health_checks));
	if (health_checks == NULL)
		return -1;
	for (size_t i = 0; i < w->w_cfg->nbackends; i++) {
		struct balance_backend *be = &w->w_bes[i];

		if (be->be_cfg->health.type == CFG_CHECK_NONE)
			continue;
		for (size_t j = 0; j < be->be_nservers; j++) {
			struct balance_server *s = &be->be_servers[j];

			if ((unsigned)s->srv_cfg->slot % nslots != slot)
				continue;
			health_checks[health_n] = health_new(w, s);
			if (health_checks[health_n] == NULL)
				return -1;
			health_n++;
		}
	}
	return 0;
}

void health_stop(struct worker *w)
{
	for (size_t i = 0; i < health_n; i++) {
		health_close(health_checks[i]);
		loop_timer_del(&w->w_loop, &health_checks[i]->hc_tick);
		free(health_checks[i]);
	}
	free(health_checks);
	health_checks = NULL;
	health_n = 0;
}
