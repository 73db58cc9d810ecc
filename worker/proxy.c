/*
 * proxy.c: client and upstream connections (see proxy.h).
 *
 * A client connection moves through explicit states:
 *
 *   HEAD ──request parsed──> PROXY ──response done──> HEAD (keep-alive)
 *     │                        │                       or LINGER (close)
 *     └──bad request──> REPLY ─┴─error──> REPLY ──> LINGER ──> closed
 *
 * plus TUNNEL for tcp listeners.  Bytes of the request body sit in c_in
 * and go straight to the upstream socket; bytes of the response body sit
 * in the upstream's u_in and go straight to the client.  Only the heads
 * are rewritten (into c_rh and c_out).  Each buffer has a fixed size,
 * so memory per connection does not depend on message size: when a
 * buffer is full its side simply stops reading (backpressure).
 */
#include "worker/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/iptree.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/ratelimit.h"
#include "common/shm.h"
#include "worker/access.h"
#include "worker/auth.h"
#include "worker/http.h"
#include "worker/keepalive.h"
#include "worker/method.h"
#include "worker/path.h"
#include "worker/proxyproto.h"
#include "worker/tls.h"
#include "worker/transport.h"

#define PROXY_LINGER_MS 2000     /* wait for the client's FIN after ours */
#define PROXY_DRAIN_GRACE_MS 1000 /* idle keep-alive grace while draining */
#define PROXY_UPSTREAM_IDLE_MS 60000
#define PROXY_CONN_CACHE 1024
#define PROXY_SPLICE_MIN 16384     /* bodies left at least this long splice */
#define PROXY_PIPE_SIZE (256 * 1024) /* asked for; the kernel may give less */
#define PROXY_PIPE_CACHE 64        /* empty pipes kept for the next splice */
#define PROXY_FIRST_READ 8192      /* a response's first read, at most */

enum conn_state {
	CS_PROXYHDR,  /* proxy_protocol: the PROXY header, before anything */
	CS_HANDSHAKE, /* TLS listener: the handshake, before any request */
	CS_HEAD,   /* waiting for / reading a request head */
	CS_PROXY,  /* request handed to an upstream, bytes flowing */
	CS_REPLY,  /* writing a proxy-generated response, then close */
	CS_LINGER, /* our FIN sent, discarding input until the client's */
	CS_TUNNEL, /* tcp listener: bytes both ways */
	CS_CLOSED,
};

/*
 * What a step of the state machine did, for conn_pump() and for the steps
 * that call each other: they return it instead of re-reading c_state.
 */
enum step {
	STEP_BLOCKED, /* nothing moved: wait for an event or a timer */
	STEP_MOVED,   /* bytes moved: run the same state's step again */
	STEP_NEXT,    /* the state changed: run the new state's step */
	STEP_GONE,    /* the connection is closed: touch it no more */
};

enum conn_phase {
	PH_NONE,
	PH_CONNECT,  /* connect_timeout */
	PH_BODY,     /* waiting for request body bytes: client_body_timeout */
	PH_RESPONSE, /* waiting on the server: response_timeout */
};

struct upstream {
	struct loop_io u_io;
	struct timer u_timer;         /* expiry while idle in the pool */
	struct worker *u_w;
	struct balance_server *u_srv;
	struct conn *u_conn;          /* client served, NULL when idle */
	struct keepalive_link u_link; /* in its server's idle pool */
	struct upstream *u_next;      /* dead list */
	struct buf u_in;              /* response bytes from the server */
	bool u_tcp_up;                /* the TCP connect succeeded */
	bool u_connected;             /* ... and the TLS handshake, if any */
	struct transport u_t;         /* its bytes: plain or TLS */
	struct transport_ready u_rdy; /* what epoll said of it */
	bool u_eof;
	bool u_reused;                /* came from the idle pool */
	bool u_wr_shut;               /* tunnel: our FIN sent */
};

/*
 * One request and its response on a client connection (nginx's
 * ngx_http_request_t to ngx_connection_t): everything here is reset by
 * one assignment when the next request begins (conn_next_request).
 * Descriptors, buffers and list links belong to struct conn.
 */
struct exchange {
	enum conn_phase x_phase;
	const struct cfg_limits *x_lim; /* listener's, then the route's */
	size_t x_head_scanned;          /* http_head_end's resume point */
	uint32_t x_rh_sent;             /* bytes of c_rh sent to the server */

	/* balancing */
	struct balance_backend *x_be;
	struct balance_server *x_srv;   /* last server picked */
	uint64_t x_tried;               /* servers tried for this request */
	uint32_t x_attempts_left;
	uint32_t x_hash;                /* balance: hash key of the request */
	bool x_connect_timed_out;       /* the last connect failure: 504 */

	/* request */
	bool x_is_head_req;
	bool x_is_http10;
	bool x_req_upgrade;             /* asked to switch protocols */
	bool x_is_idempotent;           /* may be sent twice (RFC 9110 §9.2.2) */
	bool x_close_after;             /* close once this response is done */
	bool x_client_closes;           /* the client said so: it sends no more */
	bool x_server_closes;           /* an ambiguous request: the server
					   connection is not reused */
	bool x_strip_auth;              /* Authorization checked here: not
					   forwarded */
	bool x_log_raw;                 /* log slices point into c_in */
	bool x_head_parsed;             /* proxy_msg holds this request's head
					   (during conn_dispatch) */
	enum http_body x_req_body;
	uint64_t x_req_left;
	uint64_t x_req_total;
	struct http_chunked x_req_chunk;
	bool x_req_scanned;             /* end of the body located */
	size_t x_req_fwd;               /* body bytes at the front of c_in */
	bool x_req_body_sent;           /* some body byte reached a server */
	uint64_t x_body_since;          /* PH_BODY entered (ms) */
	uint64_t x_body_waited;         /* ms spent in PH_BODY before that */

	/* response */
	bool x_resp_head_done;
	bool x_resp_started;            /* a byte was sent to the client */
	bool x_resp_keepalive;
	enum http_body x_resp_body;
	uint64_t x_resp_left;
	struct http_chunked x_resp_chunk;
	bool x_resp_scanned;
	bool x_resp_dechunk;            /* chunked to an HTTP/1.0 client: decode */
	size_t x_resp_fwd;              /* body bytes at the front of u_in */
	size_t x_resp_scanned_head;

	/* for the access log: this request's story */
	bool x_req_open;                /* dispatched or refused, not logged */
	uint64_t x_req_start;           /* first byte of the head, ms */
	uint64_t x_dispatch_at;         /* head parsed, ms */
	uint64_t x_connect_at;          /* connect() started, ms */
	int64_t x_connect_ms, x_resp_ms; /* -1: none */
	uint64_t x_head_in;             /* request head bytes */
	uint64_t x_bytes_out;           /* bytes written to the client */
	unsigned x_status, x_up_status;
	unsigned x_route;               /* 1-based index in the listener */
	/* the client as far as we believe: c_addr, or from X-Forwarded-For
	 * sent by a trusted proxy; what access control, limits, hash
	 * balancing and the access log see */
	const struct sockaddr_storage *x_client;
	const char *x_client_str;
	uint16_t x_method_len;          /* c_rh starts "METHOD SP URI SP" */
	uint32_t x_uri_len;
	struct http_slice x_referer, x_agent, x_rid; /* offsets into c_rh */
};

/* A client connection: its socket, buffers and keep-alive life. */
struct conn {
	struct loop_io c_io;
	struct timer c_timer;
	struct worker *c_w;
	struct worker_listener *c_wl;
	struct conn *c_prev, *c_next;   /* p_conns */
	struct conn *c_dead;            /* p_dead chain */
	struct conn *c_pending_next;    /* p_pending chain */
	bool c_is_pending;              /* on p_pending */
	enum conn_state c_state;        /* changed by conn_set_state() only */
	struct transport c_t;           /* its bytes: plain or TLS */
	struct transport_ready c_rdy;   /* what epoll said of it */
	bool c_eof;                     /* client sent FIN */
	bool c_moved;                   /* bytes moved in this pump */
	bool c_is_idle;                 /* no byte of the next request yet */
	struct sockaddr_storage c_addr; /* the client: the peer, or the
					   source of its PROXY header */
	char c_peer[INET6_ADDRSTRLEN];  /* c_addr as text */
	bool c_is_trusted;              /* c_addr is in trusted_proxies */
	struct sockaddr_storage c_local; /* where the client connected (a
					    PROXY header's destination) */
	bool c_has_local;               /* c_local is set */
	int32_t c_rate_hold;            /* what it counts in the rate table
					   (max_connections...); -1: nothing */
	bool c_rebound;                 /* counted as its X-Forwarded-For
					   client already */
	struct sockaddr_storage c_xff_addr; /* a request's client, from
					       X-Forwarded-For (x_client) */
	char c_xff_str[INET6_ADDRSTRLEN];

	struct buf c_in;   /* bytes from the client */
	struct buf c_out;  /* response head / generated reply to the client */
	struct buf c_rh;   /* rewritten request head for the upstream */
	struct upstream *c_up;          /* the server side, NULL: none */
	int c_pipe[2];                  /* splice: server -> pipe -> client */
	size_t c_pipe_len;              /* bytes in the pipe */
	size_t c_pipe_cap;              /* 0: no pipe */

	struct exchange c_x;            /* the request in progress */
};

/* A worker's connections: owned here, opaque to the worker. */
struct proxy {
	struct conn *p_conns;           /* every client connection */
	size_t p_nconns;
	struct conn *p_dead;            /* closed, freed after the turn */
	struct conn *p_pending;         /* TLS plaintext held, no edge to come */
	struct upstream *p_dead_up;
	struct conn *p_conn_cache;      /* freed structs kept for reuse */
	size_t p_nconn_cache;
};

static struct http_msg proxy_msg; /* scratch: one head is parsed at a time */
/* scratch: the normalised path (and query) of the head being dispatched */
static char proxy_path[PATH_NORM_CAP(HTTP_MAX_REQUEST_LINE)];
static size_t proxy_path_len, proxy_target_len;

static const char *const conn_state_names[] = {
	[CS_PROXYHDR] = "proxy-header", [CS_HANDSHAKE] = "handshake",
	[CS_HEAD] = "head",     [CS_PROXY] = "proxy",   [CS_REPLY] = "reply",
	[CS_LINGER] = "linger", [CS_TUNNEL] = "tunnel", [CS_CLOSED] = "closed",
};

/*
 * Every change of c_state goes through here (relayd's
 * relay_connect_state): logged at debug level, and returns what the
 * caller's step must return -- STEP_NEXT, or STEP_GONE once closed.
 */
static enum step conn_set_state(struct conn *c, enum conn_state to)
{
	if (log_enabled(LOG_LVL_DEBUG))
		log_debug("listener %s: client %s fd %d: %s -> %s",
			  c->c_wl->wl_cfg->name, c->c_peer, c->c_io.io_fd,
			  conn_state_names[c->c_state], conn_state_names[to]);
	metrics_conn_state((int)c->c_state, to == CS_CLOSED ? -1 : (int)to);
	c->c_state = to;
	return to == CS_CLOSED ? STEP_GONE : STEP_NEXT;
}

/*
 * Fold the result r of a sub-step into *sum.  True when the caller must
 * return *sum at once: the state changed or the connection is gone.
 */
static inline bool step_ends(enum step r, enum step *sum)
{
	if (r >= STEP_NEXT) {
		*sum = r;
		return true;
	}
	if (r == STEP_MOVED)
		*sum = STEP_MOVED;
	return false;
}

static void conn_pump(struct conn *c);
static void conn_on_io(struct loop_io *io, uint32_t ev);
static void conn_on_timer(struct timer *t);
static void up_on_io(struct loop_io *io, uint32_t ev);
static void up_on_timer(struct timer *t);
static enum step conn_reply(struct conn *c, unsigned status);
static enum step conn_reply_with(struct conn *c, unsigned status,
				 const char *hname, const char *hvalue,
				 size_t hlen);
static int conn_hsts(const struct conn *c, const char *base,
		     const struct http_msg *m, struct buf *o);
static enum step conn_abort(struct conn *c);
static enum step conn_connect(struct conn *c);
static enum step conn_admit(struct conn *c);
static void conn_pipe_close(struct conn *c);

/* ---- small I/O helpers ------------------------------------------------ */

/*
 * Read into b from t.  >0 bytes, 0 EOF, -1 would block (a ready flag
 * cleared), -2 error.
 */
static ssize_t io_read(struct transport *t, struct buf *b, size_t max,
		       struct transport_ready *r)
{
	size_t want;
	ssize_t n;

	if (buf_space(b) == 0)
		buf_compact(b);
	if (buf_space(b) == 0)
		return -1;
	want = buf_space(b) < max ? buf_space(b) : max;
	n = transport_recv(t, buf_wptr(b), want, r);
	if (n > 0) {
		buf_commit(b, (size_t)n);
		return n;
	}
	if (n == 0)
		return 0;
	return n == TRANSPORT_AGAIN ? -1 : -2;
}

/*
 * Write a then b to t.  Bytes written (0 = would block, a ready flag
 * cleared), -1 error.  Two small buffers (a response head and a short
 * body) are joined on the stack for one send(), since copying a few
 * hundred bytes costs less than sendmsg's msghdr and iovec import; only
 * larger pairs go as two iovecs.
 */
#define IO_JOIN_MAX 2048

static ssize_t io_write2(struct transport *t, const char *a, size_t alen,
			 const char *b, size_t blen, struct transport_ready *r)
{
	char joined[IO_JOIN_MAX];
	struct iovec iov[2];
	int niov = 0;
	ssize_t n;

	if (alen && blen && alen + blen <= sizeof(joined)) {
		memcpy(joined, a, alen);
		memcpy(joined + alen, b, blen);
		a = joined;
		alen += blen;
		blen = 0;
	}
	if (alen) {
		iov[niov].iov_base = (void *)a;
		iov[niov++].iov_len = alen;
	}
	if (blen) {
		iov[niov].iov_base = (void *)b;
		iov[niov++].iov_len = blen;
	}
	n = transport_sendv(t, iov, niov, r);
	if (n >= 0)
		return n;
	return n == TRANSPORT_AGAIN ? 0 : -1;
}

/* Append to a buffer; -1 when it does not fit. */
static int out_put(struct buf *b, const char *s, size_t n)
{
	if (buf_space(b) < n)
		return -1;
	memcpy(buf_wptr(b), s, n);
	buf_commit(b, n);
	return 0;
}

static int out_str(struct buf *b, const char *s)
{
	return out_put(b, s, strlen(s));
}

static int out_slice(struct buf *b, const char *base, struct http_slice s)
{
	return out_put(b, base + s.off, s.len);
}

static int out_header(struct buf *b, const char *base,
		      const struct http_header *h)
{
	if (out_slice(b, base, h->name) || out_put(b, ": ", 2) ||
	    out_slice(b, base, h->value) || out_put(b, "\r\n", 2))
		return -1;
	return 0;
}

/*
 * Content-Length "5, 5" or repeated (the parser checked the values agree):
 * forward it once, as one plain value (RFC 9110 §8.6).  *seen tracks the
 * headers already written.
 */
static int out_content_length(struct buf *o, const char *base,
			      const struct http_header *h, bool *seen)
{
	struct http_slice v = h->value;

	if (*seen)
		return 0;
	*seen = true;
	for (uint32_t i = 0; i < v.len; i++) {
		if (base[v.off + i] == ',' || base[v.off + i] == ' ') {
			v.len = i;
			break;
		}
	}
	if (out_str(o, "Content-Length: ") || out_slice(o, base, v) ||
	    out_put(o, "\r\n", 2))
		return -1;
	return 0;
}

static bool name_in_list(const char *base, struct http_slice name,
			 char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (http_slice_eq(base, name, list[i]))
			return true;
	return false;
}

/* ---- upstream connections -------------------------------------------- */

static const char *up_addr(const struct upstream *u)
{
	return u->u_srv->srv_cfg->addr.str;
}

static const char *up_backend(const struct upstream *u)
{
	return u->u_srv->srv_be->name;
}

static bool up_is_idle(const struct upstream *u)
{
	return u->u_link.kl_is_pooled;
}

/* An idle pool changed: this worker's idle connections to s. */
static inline void up_count_idle(const struct balance_server *s)
{
	if (metrics_self != NULL && s->srv_cfg->slot >= 0)
		metrics_set32(&metrics_self->mb_g.mg_idle[s->srv_cfg->slot],
			      s->srv_idle.kp_count);
}

static struct upstream *up_of_link(struct keepalive_link *l)
{
	return (struct upstream *)((char *)l - offsetof(struct upstream, u_link));
}

static void up_close(struct upstream *u)
{
	struct worker *w = u->u_w;

	if (u->u_io.io_fd < 0)
		return;
	loop_timer_del(&w->w_loop, &u->u_timer);
	loop_forget_fd(&u->u_io);
	transport_close(&u->u_t);
	u->u_io.io_fd = -1;
	buf_drop(&u->u_in);
	if (up_is_idle(u)) {
		keepalive_remove(&u->u_srv->srv_idle, &u->u_link);
		up_count_idle(u->u_srv);
	} else {
		balance_use(u->u_srv, -1);
	}
	u->u_conn = NULL;
	u->u_next = w->w_proxy->p_dead_up;
	w->w_proxy->p_dead_up = u;
}

/* Start a non-blocking connect to s.  NULL (errno set) on failure. */
static struct upstream *up_connect(struct worker *w, struct balance_server *s)
{
	const struct cfg_addr *a = &s->srv_cfg->addr;
	struct upstream *u;
	int fd, one = 1;

	fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd == -1)
		return NULL;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&a->sa, a->salen) == -1 &&
	    errno != EINPROGRESS) {
		int saved = errno;

		close(fd);
		errno = saved;
		return NULL;
	}
	u = calloc(1, sizeof(*u));
	if (u == NULL) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	u->u_w = w;
	u->u_srv = s;
	if (balance_server_transport(s, fd, &u->u_t) == -1) {
		close(fd);
		free(u);
		errno = ENOMEM; /* SSL_new: ours, not the server's (is_local_error) */
		return NULL;
	}
	loop_io_init(&u->u_io, fd, up_on_io, u);
	timer_init(&u->u_timer, up_on_timer, u);
	if (loop_add_fd(&w->w_loop, &u->u_io,
			EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) == -1) {
		int saved = errno;

		transport_close(&u->u_t);
		free(u);
		errno = saved;
		return NULL;
	}
	balance_use(s, +1);
	return u;
}

/* Take an idle connection to s from the pool, or NULL. */
static struct upstream *up_pool_get(struct balance_server *s)
{
	struct keepalive_link *l = keepalive_take(&s->srv_idle);
	struct upstream *u;

	if (l == NULL)
		return NULL;
	up_count_idle(s);
	u = up_of_link(l);
	u->u_reused = true;
	u->u_rdy.wr = true;
	loop_timer_del(&u->u_w->w_loop, &u->u_timer);
	balance_use(s, +1);
	return u;
}

/* Return u to its server's pool, or close it if the pool is full. */
static void up_pool_put(struct upstream *u)
{
	struct balance_server *s = u->u_srv;

	u->u_conn = NULL;
	/* a PROXY header spoke for one client: never pooled for another */
	if (u->u_w->w_draining || s->srv_be->proxy_protocol != CFG_PROXY_PROTOCOL_OFF ||
	    keepalive_is_full(&s->srv_idle, s->srv_be->keepalive) ||
	    buf_len(&u->u_in) != 0 || u->u_eof || u->u_rdy.hup) {
		up_close(u);
		return;
	}
	balance_use(s, -1);
	buf_release(&u->u_in);
	if (transport_is_tls(&u->u_t)) /* its TLS 1.3 ticket has come by now */
		tls_client_keep_session(u->u_t.t_ssl, &s->srv_tls_session);
	keepalive_put(&s->srv_idle, &u->u_link);
	up_count_idle(s);
	loop_timer_in(&u->u_w->w_loop, &u->u_timer, PROXY_UPSTREAM_IDLE_MS);
}

static void up_on_timer(struct timer *t)
{
	up_close(t->tm_data);
}

/* Was the non-blocking connect successful?  0, or -1 with errno. */
static int up_connect_result(struct upstream *u)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(u->u_io.io_fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		return -1;
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

static enum step conn_connect_failed(struct conn *c, const char *why);

/*
 * An idle pooled connection got an event.  The server closed it or sent
 * junk -- except that a TLS server may send a record that carries no data
 * (a TLS 1.3 session ticket), which is read and the connection kept.
 */
static void up_idle_event(struct upstream *u, uint32_t ev)
{
	char b[1];

	if (!(ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
		return; /* EPOLLOUT alone just says the socket is writable */
	if (transport_is_tls(&u->u_t) &&
	    !(ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
		u->u_rdy.rd = true;
		if (transport_recv(&u->u_t, b, sizeof(b), &u->u_rdy) ==
		    TRANSPORT_AGAIN)
			return;
	}
	up_close(u);
}

/*
 * Backend proxy_protocol: the PROXY header first on a new server
 * connection, before TLS if any, with the client's address and the one
 * it connected to.  A fresh socket takes these few bytes at once; a short
 * write fails the connect.  0 or -1.
 */
static int up_send_proxy_header(struct upstream *u, const struct conn *c)
{
	enum cfg_proxy_protocol v = u->u_srv->srv_be->proxy_protocol;
	uint8_t hdr[PROXYPROTO_BUILD_MAX];
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);
	size_t n;

	if (v == CFG_PROXY_PROTOCOL_OFF)
		return 0;
	if (c->c_has_local)
		local = c->c_local;
	else if (getsockname(c->c_t.t_fd, (struct sockaddr *)&local, &len) == -1)
		return -1;
	n = v == CFG_PROXY_PROTOCOL_V1
		    ? proxyproto_build_v1((char *)hdr, sizeof(hdr),
					  &c->c_addr, &local)
		    : proxyproto_build_v2(hdr, sizeof(hdr), &c->c_addr, &local);
	return n == 0 ? -1 : transport_send_raw(&u->u_t, hdr, n);
}

/*
 * The connect finished: TCP, then the TLS handshake if the backend has
 * one, all within connect_timeout.  false while it is still under way or
 * once it failed (c was told).
 */
static bool up_established(struct upstream *u, uint32_t ev)
{
	struct conn *c = u->u_conn;

	if (!u->u_tcp_up) {
		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return false;
		if (up_connect_result(u) == -1) {
			c->c_x.x_connect_timed_out = false;
			(void)conn_connect_failed(c, strerror(errno));
			conn_pump(c);
			return false;
		}
		u->u_tcp_up = true;
		if (up_send_proxy_header(u, c) == -1) {
			c->c_x.x_connect_timed_out = false;
			(void)conn_connect_failed(c, "cannot send the PROXY header");
			conn_pump(c);
			return false;
		}
	}
	switch (transport_handshake(&u->u_t, &u->u_rdy)) {
	case TRANSPORT_HS_DONE:
		break;
	case TRANSPORT_HS_AGAIN:
		return false;
	default: {
		char why[300];

		(void)snprintf(why, sizeof(why), "TLS handshake: %s",
			       u->u_t.t_error ? u->u_t.t_error : "failed");
		c->c_x.x_connect_timed_out = false;
		(void)conn_connect_failed(c, why);
		conn_pump(c);
		return false;
	}
	}
	if (transport_is_tls(&u->u_t))
		tls_client_keep_session(u->u_t.t_ssl, &u->u_srv->srv_tls_session);
	u->u_connected = true;
	c->c_x.x_connect_ms = (int64_t)(u->u_w->w_loop.lp_now - c->c_x.x_connect_at);
	return true;
}

static void up_on_io(struct loop_io *io, uint32_t ev)
{
	struct upstream *u = io->io_data;
	struct conn *c = u->u_conn;

	if (up_is_idle(u)) {
		up_idle_event(u, ev);
		return;
	}
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		u->u_rdy.rd = true;
	if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		u->u_rdy.hup = true;
	if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		u->u_rdy.wr = true;
	if (!u->u_connected && !up_established(u, ev))
		return;
	conn_pump(c);
}

/* ---- client connection life cycle ------------------------------------ */

static void conn_detach_up(struct conn *c, bool reusable)
{
	struct upstream *u = c->c_up;

	if (u == NULL)
		return;
	c->c_up = NULL;
	if (reusable)
		up_pool_put(u);
	else
		up_close(u);
}

/*
 * A slice of the request for the access log: of the head built for the
 * server, or, for a request refused before that (x_log_raw), of the
 * client's head still at the front of c_in.
 */
static struct access_str rh_str(const struct conn *c, struct http_slice sl)
{
	const char *base = c->c_x.x_log_raw ? buf_rptr(&c->c_in)
					    : buf_rptr(&c->c_rh);
	struct access_str a = {base + sl.off, sl.len};

	return a;
}

/*
 * A request refused after it was parsed (403, 405, 401, 429, a redirect)
 * and before its head for the server was built: the access log reads
 * method, target, Referer, User-Agent and X-Request-Id from the client's
 * head, so that it is logged as the request it was.  Called from
 * conn_reply_with only, so that requests that go on pay nothing for it.
 */
static void conn_note_raw(struct conn *c, const char *base,
			  const struct http_msg *m)
{
	const char *sp = memchr(base + m->method.len + 1, ' ',
				m->path.off + m->path.len - m->method.len);

	c->c_x.x_log_raw = true;
	c->c_x.x_method_len = (uint16_t)m->method.len;
	c->c_x.x_uri_len = sp ? (uint32_t)(sp - base) - m->method.len - 1
			      : m->path.len;
	for (unsigned i = 0; i < m->nheaders; i++) {
		const struct http_header *h = &m->headers[i];

		if (http_slice_eq(base, h->name, "Referer"))
			c->c_x.x_referer = h->value;
		else if (http_slice_eq(base, h->name, "User-Agent"))
			c->c_x.x_agent = h->value;
		else if (http_slice_eq(base, h->name, "X-Request-Id"))
			c->c_x.x_rid = h->value;
	}
}

/* The first line of what the client sent, for requests never parsed. */
static struct access_str raw_request_line(const struct conn *c)
{
	struct access_str a = {buf_rptr(&c->c_in), 0};
	size_t len = c->c_in.b_data ? buf_len(&c->c_in) : 0;

	while (a.len < len && a.len < 1024 && a.p[a.len] != '\r' &&
	       a.p[a.len] != '\n')
		a.len++;
	return a;
}

/*
 * This worker's counters (common/metrics.h) for the request being logged:
 * by route, or by the listener's own slot when no route matched; and the
 * server's connect and response times.
 */
static void conn_count(const struct conn *c)
{
	const struct cfg_listener *l = c->c_wl->wl_cfg;
	const struct exchange *x = &c->c_x;
	struct metrics_route *mr = metrics_route(
		x->x_route ? l->routes[x->x_route - 1].slot : l->route_slot);
	struct metrics_server *ms;

	if (mr == NULL)
		return;
	metrics_add(&mr->mr_status[x->x_status >= 100 && x->x_status < 600
					   ? x->x_status / 100
					   : 0],
		    1);
	metrics_add(&mr->mr_bytes_in, x->x_head_in + x->x_req_total);
	metrics_add(&mr->mr_bytes_out, x->x_bytes_out);
	metrics_observe(&mr->mr_duration,
			c->c_w->w_loop.lp_now - x->x_req_start);
	if (x->x_status == 403)
		metrics_add(&mr->mr_denied[x->x_route ? METRICS_DENY_ROUTE
						      : METRICS_DENY_LISTENER],
			    1);
	else if (x->x_status == 429)
		metrics_add(&mr->mr_limited, 1);
	else if (x->x_status == 401)
		metrics_add(&mr->mr_auth_failed, 1);
	ms = x->x_srv ? metrics_server(x->x_srv->srv_cfg->slot) : NULL;
	if (ms == NULL)
		return;
	if (x->x_connect_ms >= 0)
		metrics_observe(&ms->ms_connect, (uint64_t)x->x_connect_ms);
	if (x->x_resp_ms >= 0)
		metrics_observe(&ms->ms_response, (uint64_t)x->x_resp_ms);
}

/* A connection-level event of listener l, counted in its own slot. */
static inline void conn_count_listener(const struct cfg_listener *l,
				       size_t off)
{
	struct metrics_route *mr = metrics_route(l->route_slot);

	if (mr != NULL)
		metrics_add((uint64_t *)((char *)mr + off), 1);
}

/*
 * The client's verified certificate (mTLS): its subject, made safe for a
 * header value, and SHA-256 fingerprint.  false: none was verified.
 */
static bool conn_client_cert(const struct conn *c, char *subject, size_t cap,
			     char fp[65])
{
	const struct cfg_tls *tls = c->c_wl->wl_cfg->tls;

	if (tls == NULL || tls->client_ca == NULL || c->c_t.t_ssl == NULL ||
	    !tls_peer_subject(c->c_t.t_ssl, subject, cap) ||
	    !tls_peer_fingerprint(c->c_t.t_ssl, fp))
		return false;
	for (char *p = subject; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return true;
}

/* One access-log line for the request in progress, once. */
static void conn_log(struct conn *c)
{
	struct access_rec r;

	if (!c->c_x.x_req_open)
		return;
	c->c_x.x_req_open = false;
	conn_count(c);
	if (!access_enabled())
		return;
	memset(&r, 0, sizeof(r));
	r.client = c->c_x.x_client_str ? c->c_x.x_client_str : c->c_peer;
	if (c->c_x.x_method_len) {
		struct http_slice m = {0, c->c_x.x_method_len};
		struct http_slice u = {c->c_x.x_method_len + 1u, c->c_x.x_uri_len};

		r.method = rh_str(c, m);
		r.uri = rh_str(c, u);
		r.referer = rh_str(c, c->c_x.x_referer);
		r.agent = rh_str(c, c->c_x.x_agent);
		r.request_id = rh_str(c, c->c_x.x_rid);
	} else {
		r.uri = raw_request_line(c);
	}
	r.version = c->c_x.x_is_http10 ? 10 : 11;
	r.status = c->c_x.x_status;
	r.bytes_in = c->c_x.x_head_in + c->c_x.x_req_total;
	r.bytes_out = c->c_x.x_bytes_out;
	r.duration_ms = c->c_w->w_loop.lp_now - c->c_x.x_req_start;
	r.listener = c->c_wl->wl_cfg->name;
	r.route = c->c_x.x_route;
	r.backend = c->c_x.x_be ? c->c_x.x_be->be_cfg->name : NULL;
	r.server = c->c_x.x_srv ? c->c_x.x_srv->srv_cfg->addr.str : NULL;
	r.upstream_status = c->c_x.x_up_status;
	r.upstream_connect_ms = c->c_x.x_connect_ms;
	r.upstream_response_ms = c->c_x.x_resp_ms;
	if (transport_is_tls(&c->c_t)) {
		char subject[512], fp[65];

		r.tls_version = SSL_get_version(c->c_t.t_ssl);
		r.tls_cipher = SSL_get_cipher_name(c->c_t.t_ssl);
		if (conn_client_cert(c, subject, sizeof(subject), fp)) {
			r.client_subject = (struct access_str){subject, strlen(subject)};
			r.client_fingerprint = (struct access_str){fp, 64};
		}
		access_log(&r);
		return;
	}
	access_log(&r);
}

/* Close now; the struct is freed after the loop turn.  STEP_GONE. */
static enum step conn_close(struct conn *c)
{
	struct worker *w = c->c_w;

	if (c->c_state == CS_CLOSED)
		return STEP_GONE;
	if (c->c_x.x_req_open && c->c_x.x_status == 0)
		c->c_x.x_status = 499; /* nginx's "client closed request" */
	conn_log(c);
	conn_detach_up(c, false);
	rate_conn_release(w->w_rate, c->c_rate_hold, w->w_loop.lp_now);
	c->c_rate_hold = -1;
	loop_timer_del(&w->w_loop, &c->c_timer);
	loop_forget_fd(&c->c_io);
	transport_close(&c->c_t);
	(void)conn_set_state(c, CS_CLOSED);
	c->c_io.io_fd = -1;
	conn_pipe_close(c);
	buf_drop(&c->c_in);
	buf_drop(&c->c_out);
	buf_drop(&c->c_rh);
	if (c->c_prev != NULL)
		c->c_prev->c_next = c->c_next;
	else
		w->w_proxy->p_conns = c->c_next;
	if (c->c_next != NULL)
		c->c_next->c_prev = c->c_prev;
	w->w_proxy->p_nconns--;
	c->c_dead = w->w_proxy->p_dead;
	w->w_proxy->p_dead = c;
	return STEP_GONE;
}

/* Close gracefully: FIN first, then wait briefly for the client's. */
static enum step conn_linger(struct conn *c)
{
	conn_detach_up(c, false);
	buf_drop(&c->c_out);
	buf_drop(&c->c_rh);
	buf_drop(&c->c_in);
	if (transport_shutdown_wr(&c->c_t) == -1 || c->c_eof)
		return conn_close(c);
	loop_timer_in(&c->c_w->w_loop, &c->c_timer, PROXY_LINGER_MS);
	return conn_set_state(c, CS_LINGER);
}

/* Start a new exchange and wait for the next request head. */
static enum step conn_next_request(struct conn *c)
{
	struct worker *w = c->c_w;

	c->c_x = (struct exchange){
		.x_lim = &c->c_wl->wl_cfg->limits,
		.x_req_start = w->w_loop.lp_now,
		.x_connect_ms = -1,
		.x_resp_ms = -1,
	};
	buf_release(&c->c_out);
	buf_drop(&c->c_rh); /* sent and logged: an idle client holds no buffer */
	conn_pipe_close(c);
	buf_release(&c->c_in);
	c->c_is_idle = buf_len(&c->c_in) == 0;
	loop_timer_in(&w->w_loop, &c->c_timer,
		      c->c_is_idle ? (w->w_draining ? PROXY_DRAIN_GRACE_MS
						    : c->c_x.x_lim->keepalive_timeout_ms)
				   : c->c_x.x_lim->client_header_timeout_ms);
	return conn_set_state(c, CS_HEAD);
}

static struct conn *conn_alloc(struct worker *w)
{
	struct proxy *px = w->w_proxy;
	struct conn *c = px->p_conn_cache;

	if (c != NULL) {
		px->p_conn_cache = c->c_dead;
		px->p_nconn_cache--;
		memset(c, 0, sizeof(*c));
		return c;
	}
	return calloc(1, sizeof(*c));
}

/*
 * allow/deny: refused when in deny, or outside a non-empty allow.
 */
static bool acl_refuses(const struct cfg_acl *acl,
			const struct sockaddr_storage *client)
{
	return (acl->deny != NULL && iptree_match(acl->deny, client)) ||
	       (acl->allow != NULL && !iptree_match(acl->allow, client));
}

/* Text form of an address: "192.0.2.1", "2001:db8::1", "unix". */
static void addr_text(const struct sockaddr_storage *a, char *out, size_t cap)
{
	if (a->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)a)->sin6_addr,
			  out, (socklen_t)cap);
	else if (a->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr,
			  out, (socklen_t)cap);
	else
		(void)snprintf(out, cap, "unix");
}

/* The client is at a: the peer, or what its PROXY header says. */
static void conn_set_client(struct conn *c, const struct sockaddr_storage *a)
{
	const struct cfg_listener *l = c->c_wl->wl_cfg;

	c->c_addr = *a;
	addr_text(a, c->c_peer, sizeof(c->c_peer));
	c->c_is_trusted = cidr_match_any(l->trusted_proxies,
					 l->ntrusted_proxies, a);
}

/*
 * X-Forwarded-For from a trusted proxy (nginx's real_ip_recursive): the
 * client is the rightmost address that is not itself a trusted proxy.
 * The lists are read right to left, the last header first; an entry that
 * is not an address ends the walk, and the last trusted address read is
 * the client.  Only a trusted c_addr is believed at all.
 */
static void conn_find_client(struct conn *c, const char *base,
			     const struct http_msg *m)
{
	const struct cfg_listener *l = c->c_wl->wl_cfg;
	struct sockaddr_storage a;
	bool found = false;

	c->c_x.x_client = &c->c_addr;
	c->c_x.x_client_str = c->c_peer;
	if (!c->c_is_trusted)
		return;
	for (int i = (int)m->nheaders - 1; i >= 0 && !found; i--) {
		const struct http_header *h = &m->headers[i];
		const char *v = base + h->value.off;
		size_t end = h->value.len;

		if (!http_slice_eq(base, h->name, "X-Forwarded-For"))
			continue;
		while (end > 0 && !found) {
			size_t start = end, len;
			char text[INET6_ADDRSTRLEN + 8];
			struct cidr one;

			while (start > 0 && v[start - 1] != ',')
				start--;
			len = end - start;
			end = start > 0 ? start - 1 : 0;
			while (len > 0 && (v[start] == ' ' || v[start] == '\t')) {
				start++;
				len--;
			}
			while (len > 0 && (v[start + len - 1] == ' ' ||
					   v[start + len - 1] == '\t'))
				len--;
			if (len == 0 || len >= sizeof(text))
				return;
			memcpy(text, v + start, len);
			text[len] = '\0';
			if (cidr_parse(text, &one) == -1 || strchr(text, '/'))
				return; /* not an address: stop believing */
			memset(&a, 0, sizeof(a));
			if (one.cd_family == AF_INET) {
				struct sockaddr_in *s4 = (struct sockaddr_in *)&a;

				s4->sin_family = AF_INET;
				memcpy(&s4->sin_addr, one.cd_addr, 4);
			} else {
				struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a;

				s6->sin6_family = AF_INET6;
				memcpy(&s6->sin6_addr, one.cd_addr, 16);
			}
			c->c_xff_addr = a;
			addr_text(&a, c->c_xff_str, sizeof(c->c_xff_str));
			c->c_x.x_client = &c->c_xff_addr;
			c->c_x.x_client_str = c->c_xff_str;
			found = !cidr_match_any(l->trusted_proxies,
						l->ntrusted_proxies, &a);
		}
	}
}

/*
 * The connection is ready for its first request (after the TLS
 * handshake, if any): a tcp listener connects to its backend at once.
 */
static enum step conn_start(struct conn *c)
{
	struct worker *w = c->c_w;
	struct worker_listener *wl = c->c_wl;

	if (wl->wl_cfg->protocol == CFG_PROTO_TCP) {
		c->c_x.x_be = balance_find(w->w_bes, w->w_cfg, wl->wl_cfg->backend);
		c->c_x.x_hash = balance_hash(c->c_peer, strlen(c->c_peer));
		c->c_x.x_attempts_left = 1 + c->c_x.x_be->be_cfg->retries;
		(void)conn_set_state(c, CS_TUNNEL);
		return conn_connect(c);
	}
	(void)conn_next_request(c);
	c->c_is_idle = false; /* a new connection owes us a request head */
	loop_timer_in(&w->w_loop, &c->c_timer, c->c_x.x_lim->client_header_timeout_ms);
	return STEP_NEXT;
}

/*
 * The PROXY header (v1 or v2) a listener with proxy_protocol expects
 * first.  It is peeked at, and exactly its bytes are then taken, so that
 * what follows -- a TLS ClientHello, a request -- is read by the next
 * state as if the header had never been there.  Its source becomes the
 * client; LOCAL (a balancer's own health check) keeps the peer.  With
 * trusted_proxies set, only those peers may send one.  Within
 * client_header_timeout of the accept, else closed (conn_on_timer).
 */
static enum step conn_step_proxyhdr(struct conn *c)
{
	const struct cfg_listener *l = c->c_wl->wl_cfg;
	uint8_t hdr[PROXYPROTO_MAX_LEN];
	struct proxyproto_hdr pp;
	size_t used = 0;
	ssize_t n;

	if (!c->c_rdy.rd)
		return STEP_BLOCKED;
	n = transport_peek(&c->c_t, hdr, sizeof(hdr), &c->c_rdy);
	if (n == TRANSPORT_AGAIN)
		return STEP_BLOCKED;
	if (n <= 0)
		return conn_close(c);
	switch (proxyproto_parse(hdr, (size_t)n, &pp, &used)) {
	case PROXYPROTO_NEED_MORE:
		c->c_rdy.rd = false; /* the next bytes bring a new edge */
		return STEP_BLOCKED;
	case PROXYPROTO_INVALID:
		log_info("listener %s: client %s: PROXY header: %s", l->name,
			 c->c_peer, pp.pp_error ? pp.pp_error : "invalid");
		return conn_close(c);
	default:
		break;
	}
	if (l->ntrusted_proxies > 0 && !c->c_is_trusted) {
		log_info("listener %s: client %s: PROXY header from a peer not "
			 "in trusted_proxies",
			 l->name, c->c_peer);
		return conn_close(c);
	}
	if (transport_recv(&c->c_t, hdr, used, &c->c_rdy) != (ssize_t)used)
		return conn_close(c); /* peeked, so it is all there */
	if (pp.pp_has_addr) {
		conn_set_client(c, &pp.pp_src);
		c->c_local = pp.pp_dst;
		c->c_has_local = true;
	}
	c->c_rdy.rd = true; /* what follows may be here already */
	return conn_admit(c);
}

/*
 * client was refused (403, 429, a wrong password, closed at admission):
 * count it toward ban:, and ask the master for the ban when this refusal
 * was the one too many.  Only a client that is the peer itself counts: in
 * the kernel, a ban of a trusted proxy would cut off everyone behind it,
 * and one of the address that a PROXY header or X-Forwarded-For names
 * would drop nobody.
 */
static void conn_strike(struct conn *c, const struct sockaddr_storage *client)
{
	const struct cfg_ban *b = &c->c_w->w_cfg->ban;

	if (b->after == 0 || client != &c->c_addr || c->c_is_trusted ||
	    c->c_wl->wl_cfg->proxy_protocol)
		return;
	if (!rate_strike(rate_table(), client, b->after, b->within_ms,
			 c->c_w->w_loop.lp_now))
		return;
	log_info("client %s: refused %u times within %u s: to be banned "
		 "for %u s",
		 c->c_peer, b->after, b->within_ms / 1000, b->for_ms / 1000);
	(void)report_ban(c->c_w->w_report.wr_fd, client);
}

/*
 * The client's address is known (the peer, or its PROXY header's
 * source): admit it or close it, before any byte of a request or TLS
 * handshake is read; then the handshake, or the first request.
 */
static enum step conn_admit(struct conn *c)
{
	const struct cfg_listener *l = c->c_wl->wl_cfg;
	uint64_t now = c->c_w->w_loop.lp_now;
	SSL *ssl;

	/*
	 * A trusted proxy's clients are known only from each request's
	 * X-Forwarded-For: its connection is admitted, its requests checked
	 * against the listener's lists (conn_check_acl).
	 */
	if (!(c->c_is_trusted && l->protocol == CFG_PROTO_HTTP) &&
	    acl_refuses(&l->acl, &c->c_addr)) {
		log_info("listener %s: client %s: denied; closed", l->name,
			 c->c_peer);
		conn_strike(c, &c->c_addr);
		conn_count_listener(l, offsetof(struct metrics_route,
						mr_denied[METRICS_DENY_LISTENER]));
		return conn_close(c);
	}

	if ((l->max_connections || l->max_connections_per_client) &&
	    l->slot >= 0) {
		enum rate_verdict v = rate_conn_acquire(
			c->c_w->w_rate, l->slot, l->max_connections, &c->c_addr,
			l->max_connections_per_client, now, &c->c_rate_hold);

		if (v != RATE_OK) {
			log_info("listener %s: client %s: over %s; closed",
				 l->name, c->c_peer,
				 v == RATE_OVER_LISTENER
					 ? "max_connections"
					 : "max_connections_per_client");
			if (v == RATE_OVER_CLIENT)
				conn_strike(c, &c->c_addr);
			conn_count_listener(
				l, offsetof(struct metrics_route,
					    mr_denied[METRICS_DENY_CONN_LIMIT]));
			return conn_close(c);
		}
	}
	if (l->protocol == CFG_PROTO_TCP && l->rate_limit.rps != 0) {
		uint32_t ra;

		/* a tcp listener's connection is its one request */
		if (!rate_take(rate_table(), &l->rate_limit, &c->c_addr, now, &ra)) {
			log_info("listener %s: client %s: over rate_limit; "
				 "closed",
				 l->name, c->c_peer);
			conn_strike(c, &c->c_addr);
			return conn_close(c);
		}
	}
	if (l->tls == NULL)
		return conn_start(c);
	ssl = tls_server_ssl(l->tls->ctx, c->c_t.t_fd);
	if (ssl == NULL)
		return conn_close(c);
	transport_init_tls(&c->c_t, c->c_t.t_fd, ssl);
	loop_timer_in(&c->c_w->w_loop, &c->c_timer, l->tls->handshake_timeout_ms);
	return conn_set_state(c, CS_HANDSHAKE);
}

/*
 * The TLS handshake.  A client that speaks plain HTTP to this port gets a
 * 400 in plain text; one that fails or gives up is closed, with the reason
 * logged at info level (handshake failures are the clients' business, and
 * a scan would flood a warning log).
 */
static enum step conn_step_handshake(struct conn *c)
{
	switch (transport_handshake(&c->c_t, &c->c_rdy)) {
	case TRANSPORT_HS_DONE:
		c->c_moved = true;
		conn_count_listener(c->c_wl->wl_cfg,
				    offsetof(struct metrics_route,
					     mr_tls_handshakes));
		if (SSL_session_reused(c->c_t.t_ssl))
			conn_count_listener(c->c_wl->wl_cfg,
					    offsetof(struct metrics_route,
						     mr_tls_resumed));
		return conn_start(c);
	case TRANSPORT_HS_AGAIN:
		return STEP_BLOCKED;
	case TRANSPORT_HS_PLAIN:
		log_info("listener %s: client %s: plain HTTP on a TLS port",
			 c->c_wl->wl_cfg->name, c->c_peer);
		transport_downgrade(&c->c_t);
		if (c->c_wl->wl_cfg->protocol == CFG_PROTO_TCP)
			return conn_close(c);
		(void)conn_next_request(c);
		c->c_is_idle = false;
		return conn_reply(c, 400);
	default:
		log_info("listener %s: client %s: TLS handshake failed: %s",
			 c->c_wl->wl_cfg->name, c->c_peer,
			 c->c_t.t_error ? c->c_t.t_error : "unknown");
		conn_count_listener(c->c_wl->wl_cfg,
				    offsetof(struct metrics_route, mr_tls_failed));
		return conn_close(c);
	}
}

void proxy_accept(struct worker *w, struct worker_listener *wl, int fd,
		  const struct sockaddr_storage *peer)
{
	struct conn *c = conn_alloc(w);

	if (c == NULL) {
		log_error("listener %s: out of memory for a connection",
			  wl->wl_cfg->name);
		close(fd);
		return;
	}
	/* TCP_NODELAY comes from the listening socket (worker.c) */
	c->c_w = w;
	c->c_wl = wl;
	loop_io_init(&c->c_io, fd, conn_on_io, c);
	timer_init(&c->c_timer, conn_on_timer, c);
	conn_set_client(c, peer);
	c->c_next = w->w_proxy->p_conns;
	if (c->c_next != NULL)
		c->c_next->c_prev = c;
	w->w_proxy->p_conns = c;
	w->w_proxy->p_nconns++;
	metrics_conn_state(-1, (int)c->c_state);
	conn_count_listener(wl->wl_cfg, offsetof(struct metrics_route,
						 mr_accepted));
	c->c_x.x_lim = &wl->wl_cfg->limits;
	/*
	 * Clients send their request (or ClientHello) right after the TCP
	 * handshake, so it is usually here already: read it now, and register
	 * with epoll only once the connection has to wait for the client
	 * (conn_pump).
	 */
	c->c_rdy.rd = c->c_rdy.wr = true;
	c->c_rate_hold = -1;
	transport_init_plain(&c->c_t, fd);
	if (wl->wl_cfg->proxy_protocol) {
		(void)conn_set_state(c, CS_PROXYHDR);
		loop_timer_in(&w->w_loop, &c->c_timer,
			      c->c_x.x_lim->client_header_timeout_ms);
		conn_pump(c);
		return;
	}
	if (conn_admit(c) != STEP_GONE)
		conn_pump(c);
}

/* ---- proxy-generated replies ----------------------------------------- */

static const char *status_reason(unsigned status)
{
	switch (status) {
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

/*
 * Answer with a short, neutral error and close.  If part of a response
 * already went out, the only honest thing left is to cut the connection.
 * A header (name: value) may be added: a redirect's Location.
 */
static enum step conn_reply_with(struct conn *c, unsigned status,
				 const char *hname, const char *hvalue,
				 size_t hlen)
{
	char line[160];
	const char *reason = status_reason(status);
	int n;

	if (c->c_x.x_resp_started)
		return conn_abort(c);
	conn_detach_up(c, false);
	if (buf_reserve(&c->c_out) == -1)
		return conn_close(c);
	c->c_out.b_r = c->c_out.b_w = 0;
	n = snprintf(line, sizeof(line),
		     "HTTP/1.1 %u %s\r\nContent-Type: text/plain\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n",
		     status, reason, strlen(reason) + 5);
	if (out_put(&c->c_out, line, (size_t)n) ||
	    conn_hsts(c, NULL, NULL, &c->c_out) == -1 ||
	    (hname != NULL &&
	     (out_str(&c->c_out, hname) || out_put(&c->c_out, ": ", 2) ||
	      out_put(&c->c_out, hvalue, hlen) ||
	      out_put(&c->c_out, "\r\n", 2))) ||
	    out_put(&c->c_out, "\r\n", 2))
		return conn_close(c);
	n = snprintf(line, sizeof(line), "%u %s\n", status, reason);
	if (!c->c_x.x_is_head_req && out_put(&c->c_out, line, (size_t)n))
		return conn_close(c);
	if (c->c_state == CS_HEAD && !c->c_is_idle)
		c->c_x.x_req_open = true; /* refused before dispatch: log it too */
	if (c->c_state == CS_HEAD && c->c_x.x_head_parsed &&
	    c->c_x.x_method_len == 0)
		conn_note_raw(c, buf_rptr(&c->c_in), &proxy_msg);
	c->c_x.x_status = status;
	c->c_x.x_bytes_out += buf_len(&c->c_out);
	conn_log(c);
	c->c_x.x_phase = PH_NONE;
	loop_timer_in(&c->c_w->w_loop, &c->c_timer,
		      c->c_x.x_lim->client_body_timeout_ms);
	return conn_set_state(c, CS_REPLY);
}

static enum step conn_reply(struct conn *c, unsigned status)
{
	return conn_reply_with(c, status, NULL, NULL, 0);
}

/* Cut the connection: used when a response cannot be completed. */
static enum step conn_abort(struct conn *c)
{
	return conn_close(c);
}

/* ---- routing and the request head ------------------------------------ */

/* Does host (lowercase, no port) match pattern ("a.com" or "*.a.com")? */
static bool host_match(const char *host, size_t hlen, const char *pat)
{
	size_t plen = strlen(pat);

	if (pat[0] == '*' && pat[1] == '.')
		return hlen > plen - 1 &&
		       memcmp(host + hlen - (plen - 1), pat + 1, plen - 1) == 0;
	return hlen == plen && memcmp(host, pat, plen) == 0;
}

/* Copy the Host (or absolute-form authority) without port, lowercased. */
static size_t request_host(const char *base, const struct http_msg *m,
			   char *out, size_t cap)
{
	struct http_slice s = {0, 0};
	const char *p;
	size_t n = 0, i;

	if (m->authority.len)
		s = m->authority;
	else if (m->host_idx >= 0)
		s = m->headers[m->host_idx].value;
	p = base + s.off;
	if (s.len && p[0] == '[') {
		for (i = 0; i < s.len && p[i] != ']'; i++)
			;
		n = i < s.len ? i + 1 : s.len;
	} else {
		for (n = 0; n < s.len && p[n] != ':'; n++)
			;
	}
	if (n >= cap)
		n = cap - 1;
	for (i = 0; i < n; i++)
		out[i] = (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
	out[n] = '\0';
	return n;
}

/*
 * The first route whose host and path prefix match.  path is the
 * request's normalised path, without its query (path_normalize).
 */
static const struct cfg_route *route_match(const struct cfg_listener *l,
					   const char *base,
					   const struct http_msg *m,
					   const char *path, size_t path_len)
{
	char host[256];
	size_t hlen = request_host(base, m, host, sizeof(host));

	/* "OPTIONS *" is about the root of the site */
	if (path_len == 0 || (path_len == 1 && path[0] == '*')) {
		path = "/";
		path_len = 1;
	}
	for (size_t i = 0; i < l->nroutes; i++) {
		const struct cfg_route *r = &l->routes[i];
		size_t plen = strlen(r->path_prefix);
		bool ok = r->nhosts == 0;

		for (size_t j = 0; !ok && j < r->nhosts; j++)
			ok = host_match(host, hlen, r->hosts[j]);
		if (ok && plen <= path_len && memcmp(path, r->path_prefix, plen) == 0)
			return r;
	}
	return NULL;
}

static bool is_forwarding_header(const char *base, struct http_slice name)
{
	return http_slice_eq(base, name, "X-Forwarded-For") ||
	       http_slice_eq(base, name, "X-Forwarded-Proto") ||
	       http_slice_eq(base, name, "X-Forwarded-Host");
}

/* A request id from the client is kept if it is short and plain. */
static bool is_good_request_id(const char *base, struct http_slice v)
{
	if (v.len == 0 || v.len > 128)
		return false;
	for (uint32_t i = 0; i < v.len; i++) {
		unsigned char ch = (unsigned char)base[v.off + i];

		if (ch <= ' ' || ch >= 0x7f || ch == ',' || ch == '"')
			return false;
	}
	return true;
}

/*
 * 128 random bits as 32 hex digits: splitmix64 seeded per worker from the
 * kernel.  Ids only need to be unique, not secret, and this costs no
 * syscall per request.
 */
static void make_request_id(char out[33])
{
	static uint64_t state;
	static const char hex[] = "0123456789abcdef";

	if (state == 0 && getentropy(&state, sizeof(state)) == -1)
		state = timer_now_ms() ^ ((uint64_t)getpid() << 32);
	for (int half = 0; half < 2; half++) {
		uint64_t z = (state += UINT64_C(0x9e3779b97f4a7c15));

		z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
		z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
		z ^= z >> 31;
		for (int i = 0; i < 16; i++)
			out[half * 16 + i] = hex[(z >> (i * 4)) & 15];
	}
	out[32] = '\0';
}

/*
 * X-Forwarded-For/-Proto/-Host and X-Request-Id.  What the client sent
 * is believed only from a trusted proxy: then its X-Forwarded-For list is
 * kept and our peer appended, else the headers are ours alone.
 */
static int conn_forwarded_headers(struct conn *c, const char *base,
				  const struct http_msg *m)
{
	struct buf *o = &c->c_rh;
	bool trusted = c->c_is_trusted;
	bool has_xff = false, has_proto = false, has_host = false;
	int rid = http_find_header(base, m, "X-Request-Id");
	char id[33];

	for (unsigned i = 0; trusted && i < m->nheaders; i++) {
		const struct http_header *h = &m->headers[i];

		if (!http_slice_eq(base, h->name, "X-Forwarded-For"))
			continue;
		if (out_str(o, has_xff ? ", " : "X-Forwarded-For: ") ||
		    out_slice(o, base, h->value))
			return -1;
		has_xff = true;
	}
	if (out_str(o, has_xff ? ", " : "X-Forwarded-For: ") ||
	    out_str(o, c->c_peer) || out_put(o, "\r\n", 2))
		return -1;
	for (unsigned i = 0; trusted && i < m->nheaders; i++) {
		const struct http_header *h = &m->headers[i];
		bool is_proto = http_slice_eq(base, h->name, "X-Forwarded-Proto");
		bool is_host = http_slice_eq(base, h->name, "X-Forwarded-Host");

		if ((is_proto || is_host) && out_header(o, base, h))
			return -1;
		has_proto |= is_proto;
		has_host |= is_host;
	}
	if (!has_proto && out_str(o, transport_is_tls(&c->c_t)
					     ? "X-Forwarded-Proto: https\r\n"
					     : "X-Forwarded-Proto: http\r\n"))
		return -1;
	if (!has_host && m->host_idx >= 0 && m->headers[m->host_idx].value.len &&
	    (out_str(o, "X-Forwarded-Host: ") ||
	     out_slice(o, base, m->headers[m->host_idx].value) ||
	     out_put(o, "\r\n", 2)))
		return -1;
	if (rid >= 0 && is_good_request_id(base, m->headers[rid].value))
		return 0; /* passed through with the other headers */
	make_request_id(id);
	if (out_str(o, "X-Request-Id: "))
		return -1;
	c->c_x.x_rid.off = (uint32_t)buf_len(o);
	c->c_x.x_rid.len = 32;
	return out_str(o, id) || out_put(o, "\r\n", 2);
}

/*
 * Remember where Referer, User-Agent and X-Request-Id will sit in c_rh
 * (the header is about to be appended there), for the access log.
 */
static void conn_note_header(struct conn *c, const char *base,
			     const struct http_header *h)
{
	struct http_slice at = {(uint32_t)(buf_len(&c->c_rh) + h->name.len + 2),
				h->value.len};

	if (http_slice_eq(base, h->name, "Referer"))
		c->c_x.x_referer = at;
	else if (http_slice_eq(base, h->name, "User-Agent"))
		c->c_x.x_agent = at;
	else if (http_slice_eq(base, h->name, "X-Request-Id"))
		c->c_x.x_rid = at;
}

/*
 * The headers that carry the client certificate to servers are ours
 * alone on a TLS listener: a client's are dropped, with client_ca or not.
 */
static bool is_client_cert_header(const struct conn *c, const char *base,
				  struct http_slice name)
{
	const struct cfg_tls *tls = c->c_wl->wl_cfg->tls;

	return tls != NULL &&
	       (http_slice_eq(base, name, tls->subject_header) ||
		http_slice_eq(base, name, tls->fingerprint_header));
}

static int conn_client_cert_headers(struct conn *c)
{
	const struct cfg_tls *tls = c->c_wl->wl_cfg->tls;
	struct buf *o = &c->c_rh;
	char subject[512], fp[65];

	if (!conn_client_cert(c, subject, sizeof(subject), fp))
		return 0;
	if (out_str(o, tls->subject_header) || out_put(o, ": ", 2) ||
	    out_str(o, subject) || out_put(o, "\r\n", 2) ||
	    out_str(o, tls->fingerprint_header) || out_put(o, ": ", 2) ||
	    out_str(o, fp) || out_put(o, "\r\n", 2))
		return -1;
	return 0;
}

/* Write the request head the server gets into c_rh.  0 or -1 (too big). */
static int conn_build_request(struct conn *c, const char *base,
			      const struct http_msg *m)
{
	struct buf *o = &c->c_rh;
	bool fwd = c->c_x.x_lim->forwarded_headers;
	bool drop_underscores = c->c_wl->wl_cfg->underscores_in_headers ==
				CFG_UNDERSCORES_DROP;
	int rid = http_find_header(base, m, "X-Request-Id");
	int te = http_find_header(base, m, "TE");
	bool seen_cl = false;

	if (buf_reserve(o) == -1)
		return -1;
	o->b_r = o->b_w = 0;
	c->c_x.x_log_raw = false; /* from here on, the log reads c_rh */
	c->c_x.x_referer = c->c_x.x_agent = c->c_x.x_rid = (struct http_slice){0, 0};
	/*
	 * Always HTTP/1.1 to the server, also for an HTTP/1.0 client, so that
	 * the server connection is kept (as nginx's proxy_http_version 1.1
	 * and HAProxy do); a chunked response is decoded for such a client
	 * (x_resp_dechunk).
	 */
	if (c->c_wl->wl_cfg->normalize_path == CFG_NORMALIZE_FORWARD) {
		if (out_slice(o, base, m->method) || out_put(o, " ", 1) ||
		    out_put(o, proxy_path, proxy_target_len) ||
		    out_str(o, " HTTP/1.1\r\n"))
			return -1;
		c->c_x.x_uri_len = (uint32_t)proxy_target_len;
	} else {
		if (out_slice(o, base, m->method) || out_put(o, " ", 1) ||
		    (m->path_needs_slash && out_put(o, "/", 1)) ||
		    out_slice(o, base, m->path) || out_str(o, " HTTP/1.1\r\n"))
			return -1;
		c->c_x.x_uri_len = m->path.len + m->path_needs_slash;
	}
	c->c_x.x_method_len = (uint16_t)m->method.len;
	for (unsigned i = 0; i < m->nheaders; i++) {
		const struct http_header *h = &m->headers[i];

		if (http_slice_eq(base, h->name, "Content-Length")) {
			if (out_content_length(o, base, h, &seen_cl))
				return -1;
			continue;
		}
		if (http_is_hop_by_hop(base, m, i) ||
		    is_client_cert_header(c, base, h->name) ||
		    (drop_underscores && http_name_has_underscore(base, h->name)) ||
		    (c->c_x.x_strip_auth &&
		     http_slice_eq(base, h->name, "Authorization")) ||
		    (fwd && is_forwarding_header(base, h->name)) ||
		    (fwd && (int)i == rid && !is_good_request_id(base, h->value)))
			continue;
		conn_note_header(c, base, h);
		if (out_header(o, base, h))
			return -1;
	}
	/* TE is hop-by-hop, but "trailers" says what the client accepts */
	if (te >= 0 && http_list_has(base, m->headers[te].value, "trailers") &&
	    out_str(o, "TE: trailers\r\nConnection: te\r\n"))
		return -1;
	/*
	 * HTTP/1.0 without Host: absolute-form names the authority; otherwise
	 * an HTTP/1.1 request carries an empty Host (RFC 9112 §3.2).
	 */
	if (m->host_idx < 0 && m->authority.len &&
	    (out_str(o, "Host: ") || out_slice(o, base, m->authority) ||
	     out_put(o, "\r\n", 2)))
		return -1;
	if (m->host_idx < 0 && !m->authority.len && out_str(o, "Host: \r\n"))
		return -1;
	if (m->body == HTTP_BODY_CHUNKED &&
	    out_str(o, "Transfer-Encoding: chunked\r\n"))
		return -1;
	if (m->has_upgrade) {
		int up = http_find_header(base, m, "Upgrade");

		if (out_str(o, "Connection: upgrade\r\n") ||
		    out_header(o, base, &m->headers[up]))
			return -1;
	} else if (c->c_x.x_server_closes &&
		   out_str(o, "Connection: close\r\n")) {
		return -1;
	}
	if (fwd && conn_forwarded_headers(c, base, m) == -1)
		return -1;
	if (conn_client_cert_headers(c) == -1)
		return -1;
	return out_put(o, "\r\n", 2);
}

/* Locate the request-body bytes that have arrived.  -1 on bad framing. */
static int conn_scan_request(struct conn *c)
{
	size_t fresh = buf_len(&c->c_in) - c->c_x.x_req_fwd;
	ssize_t n;
	bool done = false;

	if (c->c_x.x_req_scanned || fresh == 0)
		return 0;
	switch (c->c_x.x_req_body) {
	case HTTP_BODY_LENGTH:
		n = (ssize_t)(fresh < c->c_x.x_req_left ? fresh : c->c_x.x_req_left);
		c->c_x.x_req_left -= (uint64_t)n;
		done = c->c_x.x_req_left == 0;
		break;
	case HTTP_BODY_CHUNKED:
		n = http_chunked_feed(&c->c_x.x_req_chunk,
				      buf_rptr(&c->c_in) + c->c_x.x_req_fwd, fresh,
				      &done);
		if (n < 0)
			return -1;
		break;
	default:
		n = 0;
		done = true;
		break;
	}
	c->c_x.x_req_fwd += (size_t)n;
	c->c_x.x_req_total += (uint64_t)n;
	c->c_x.x_req_scanned = done;
	return 0;
}

/* RFC 9110 §9.2.2: only these may be retried after being sent. */
static bool is_idempotent(const char *base, struct http_slice method)
{
	static const char *const ok[] = {"GET",	    "HEAD",  "OPTIONS",
					 "TRACE",   "PUT",   "DELETE"};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (method.len == strlen(ok[i]) &&
		    memcmp(base + method.off, ok[i], method.len) == 0)
			return true;
	return false;
}

/* The key of balance: hash: client address, URI or a header's value. */
static uint32_t request_hash(const struct conn *c, const char *base,
			     const struct http_msg *m,
			     const struct cfg_backend *be)
{
	int h;

	switch (be->hash_key) {
	case CFG_HASH_URI:
		return balance_hash(base + m->path.off, m->path.len);
	case CFG_HASH_HEADER:
		h = http_find_header(base, m, be->hash_header);
		if (h >= 0)
			return balance_hash(base + m->headers[h].value.off,
					    m->headers[h].value.len);
		break; /* no such header: fall back to the client */
	default:
		break;
	}
	return balance_hash(c->c_x.x_client_str, strlen(c->c_x.x_client_str));
}

/*
 * A route with redirect: answer with its status and Location
 * https://HOST/URI, so that port 80 needs no backend.  The head is
 * consumed; any body closes the connection with the answer.
 */
static enum step conn_redirect(struct conn *c, const struct cfg_route *r,
			       const char *base, const struct http_msg *m)
{
	char loc[8192 + 300];
	char host[256];
	size_t hlen = request_host(base, m, host, sizeof(host));
	int n;

	if (hlen == 0)
		return conn_reply(c, 400); /* nowhere to send it */
	n = snprintf(loc, sizeof(loc), "https://%s%s%.*s", host,
		     m->path_needs_slash ? "/" : "", (int)m->path.len,
		     base + m->path.off);
	if (n < 0 || (size_t)n >= sizeof(loc))
		return conn_reply(c, 414);
	return conn_reply_with(c, r->redirect_status, "Location", loc, (size_t)n);
}

/*
 * What the listener asks of a request beyond RFC 9112 (issue #12): its
 * path normalised into proxy_path (routes and allow/deny match that, RFC
 * 3986 §6.2.2), header names with '_' refused (or dropped later), and a
 * request that some servers read differently (a GET with a body, a
 * repeated Content-Length) refused or sent with the close of both sides.
 * -1: answer 400.
 */
static int conn_check_hygiene(struct conn *c, const char *base,
			      const struct http_msg *m)
{
	const struct cfg_listener *l = c->c_wl->wl_cfg;
	enum path_err err;

	err = path_normalize(base + m->path.off, m->path.len, 0, proxy_path,
			     sizeof(proxy_path), &proxy_path_len,
			     &proxy_target_len);
	if (err != PATH_OK) {
		log_info("listener %s: client %s: request path refused: %s",
			 l->name, c->c_x.x_client_str, path_strerror(err));
		return -1;
	}
	if (l->underscores_in_headers == CFG_UNDERSCORES_REJECT)
		for (unsigned i = 0; i < m->nheaders; i++)
			if (http_name_has_underscore(base, m->headers[i].name))
				return -1;
	if (http_is_ambiguous(base, m)) {
		if (l->ambiguous_requests == CFG_AMBIGUOUS_REJECT)
			return -1;
		c->c_x.x_close_after = true;
		c->c_x.x_server_closes = true;
	}
	return 0;
}

/*
 * A request's client against the listener's lists when its connection
 * came through a trusted proxy (admitted at accept on the proxy's
 * behalf), before routing, and then (r not NULL) against the route's: a
 * neutral 403.  STEP_MOVED when it may go on.
 */
static enum step conn_check_acl(struct conn *c, const struct cfg_route *r)
{
	const struct cfg_listener *l = c->c_wl->wl_cfg;

	if (r == NULL ? c->c_is_trusted && acl_refuses(&l->acl, c->c_x.x_client)
		      : acl_refuses(&r->acl, c->c_x.x_client)) {
		if (r == NULL)
			log_info("listener %s: client %s: denied", l->name,
				 c->c_x.x_client_str);
		else
			log_info("listener %s: client %s: route %u: denied",
				 l->name, c->c_x.x_client_str, c->c_x.x_route);
		conn_strike(c, c->c_x.x_client);
		return conn_reply(c, 403);
	}
	return STEP_MOVED;
}

/*
 * A 429 with Retry-After (RFC 6585 §4, RFC 9110 §10.2.3).
 */
static enum step conn_reply_429(struct conn *c, uint32_t retry_after_s)
{
	char ra[16];
	int n = snprintf(ra, sizeof(ra), "%u", retry_after_s);

	return conn_reply_with(c, 429, "Retry-After", ra, (size_t)n);
}

/*
 * The limits a request is held to once its client and route are known:
 * a client first seen through X-Forwarded-For counts against
 * max_connections_per_client as itself (429 when over: the request was
 * read already); then the listener's and the route's rate limits.
 * STEP_MOVED when the request may go on.
 */
static enum step conn_check_limits(struct conn *c, const struct cfg_route *r)
{
	const struct cfg_listener *l = c->c_wl->wl_cfg;
	const struct sockaddr_storage *client = c->c_x.x_client;
	uint64_t now = c->c_w->w_loop.lp_now;
	uint32_t ra = 1;

	if (l->max_connections_per_client && l->slot >= 0 && !c->c_rebound &&
	    client != &c->c_addr) {
		/* once per connection: a balancer may carry many clients */
		c->c_rebound = true;
		if (rate_conn_rebind(c->c_w->w_rate, l->slot, &c->c_rate_hold,
				     client, l->max_connections_per_client,
				     now) != RATE_OK) {
			c->c_x.x_close_after = true;
			return conn_reply_429(c, 1);
		}
	}
	if ((l->rate_limit.rps != 0 &&
	     !rate_take(rate_table(), &l->rate_limit, client, now, &ra)) ||
	    (r->rate_limit.rps != 0 &&
	     !rate_take(rate_table(), &r->rate_limit, client, now, &ra))) {
		conn_strike(c, client);
		return conn_reply_429(c, ra);
	}
	return STEP_MOVED;
}

/*
 * HTTP Basic on a route (RFC 7617).  STEP_NEXT once the 401 is under
 * way; STEP_MOVED when the request may go on.  Two Authorization headers
 * are a bad credential, never a choice between them.
 */
static enum step conn_check_auth(struct conn *c, const struct cfg_route *r,
				 const char *base, const struct http_msg *m)
{
	const char *value = NULL;
	size_t len = 0;
	int seen = 0;
	char user[256], challenge[AUTH_CHALLENGE_MAX];
	int n;

	for (unsigned i = 0; i < m->nheaders; i++) {
		const struct http_header *h = &m->headers[i];

		if (!http_slice_eq(base, h->name, "Authorization"))
			continue;
		value = seen++ ? "" : base + h->value.off;
		len = seen > 1 ? 0 : h->value.len;
	}
	switch (auth_check(r->auth->users, value, len, c->c_w->w_loop.lp_now,
			   user, sizeof(user))) {
	case AUTH_OK:
		c->c_x.x_strip_auth = !r->auth->forward;
		return STEP_MOVED;
	case AUTH_BAD: {
		uint32_t ra;

		log_info("listener %s: client %s: route %u: authentication "
			 "failed",
			 c->c_wl->wl_cfg->name, c->c_x.x_client_str,
			 c->c_x.x_route);
		conn_strike(c, c->c_x.x_client);
		/* a wrong password costs a token more: guessing is limited */
		if (r->rate_limit.rps != 0 &&
		    !rate_take(rate_table(), &r->rate_limit, c->c_x.x_client,
			       c->c_w->w_loop.lp_now, &ra))
			return conn_reply_429(c, ra);
		break;
	}
	default:
		break;
	}
	n = auth_challenge(r->auth->realm, challenge, sizeof(challenge));
	if (n < 0)
		return conn_reply(c, 401);
	return conn_reply_with(c, 401, "WWW-Authenticate", challenge, (size_t)n);
}

/* A complete head is at the front of c_in: parse, route and dispatch. */
static enum step conn_dispatch(struct conn *c, size_t head_len)
{
	struct http_msg *m = &proxy_msg;
	const char *base = buf_rptr(&c->c_in);
	const struct cfg_route *r;
	enum http_err err;
	enum step rs;

	err = http_parse_request(base, head_len, m);
	c->c_x.x_is_head_req = err == HTTP_OK && http_slice_eq(base, m->method, "HEAD");
	c->c_x.x_head_in = head_len;
	if (err != HTTP_OK) {
		return conn_reply(c, err);
	}
	conn_find_client(c, base, m);
	c->c_x.x_head_parsed = true;
	c->c_x.x_is_http10 = m->version == HTTP_10;
	c->c_x.x_req_upgrade = m->has_upgrade;
	c->c_x.x_is_idempotent = is_idempotent(base, m->method);
	c->c_x.x_client_closes = !m->is_keepalive;
	c->c_x.x_close_after = c->c_x.x_client_closes || c->c_w->w_draining;
	if (conn_check_hygiene(c, base, m) == -1)
		return conn_reply(c, 400);
	if ((rs = conn_check_acl(c, NULL)) != STEP_MOVED)
		return rs; /* 403 */
	r = route_match(c->c_wl->wl_cfg, base, m, proxy_path, proxy_path_len);
	if (r == NULL) {
		return conn_reply(c, 404);
	}
	c->c_x.x_lim = &r->limits;
	c->c_x.x_route = (unsigned)(r - c->c_wl->wl_cfg->routes) + 1;
	if ((rs = conn_check_acl(c, r)) != STEP_MOVED ||
	    (rs = conn_check_limits(c, r)) != STEP_MOVED)
		return rs; /* 403, 429 */
	if (!method_allowed(r, base + m->method.off, m->method.len)) {
		char allow[METHOD_ALLOW_MAX];
		size_t n = method_allow_value(r, allow, sizeof(allow));

		return conn_reply_with(c, 405, "Allow", allow, n);
	}
	if (r->redirect_status != 0)
		return conn_redirect(c, r, base, m);
	if (r->auth != NULL) {
		enum step a = conn_check_auth(c, r, base, m);

		if (a != STEP_MOVED)
			return a; /* 401 */
	}
	if (m->body == HTTP_BODY_LENGTH && c->c_x.x_lim->max_body_size &&
	    m->content_length > c->c_x.x_lim->max_body_size) {
		return conn_reply(c, 413);
	}
	c->c_x.x_be = balance_find(c->c_w->w_bes, c->c_w->w_cfg, r->backend);
	if (r->backend->balance == CFG_BALANCE_HASH)
		c->c_x.x_hash = request_hash(c, base, m, r->backend);
	if (conn_build_request(c, base, m) == -1) {
		return conn_reply(c, 431);
	}
	c->c_x.x_req_open = true;
	c->c_x.x_dispatch_at = c->c_w->w_loop.lp_now;
	c->c_x.x_req_body = m->body;
	c->c_x.x_req_left = m->content_length;
	http_chunked_init(&c->c_x.x_req_chunk);
	buf_consume(&c->c_in, head_len);
	c->c_x.x_req_scanned = m->body == HTTP_BODY_NONE ||
			   (m->body == HTTP_BODY_LENGTH && m->content_length == 0);
	if (conn_scan_request(c) == -1) {
		return conn_reply(c, 400);
	}
	c->c_x.x_attempts_left = 1 + c->c_x.x_be->be_cfg->retries;
	(void)conn_set_state(c, CS_PROXY);
	return conn_connect(c) == STEP_GONE ? STEP_GONE : STEP_NEXT;
}

/* ---- connecting to a server ------------------------------------------ */

/*
 * Arm the timer of the phase a proxied exchange is in.  It restarts
 * whenever bytes move, except connect_timeout, which runs from connect().
 */
/*
 * How long the request body may still keep us waiting: client_body_timeout
 * between two reads, and on the whole, client_body_timeout plus one second
 * per client_body_min_rate bytes received (Apache mod_reqtimeout's
 * MinRate), counting only time spent waiting for the client (PH_BODY), not
 * for a server that reads slowly.  So a body trickled at a byte every few
 * seconds ends with 408 instead of holding a server connection for ever.
 */
static uint32_t conn_body_wait_ms(const struct conn *c, uint64_t now)
{
	const struct cfg_limits *lim = c->c_x.x_lim;
	uint64_t allowed, waited;

	if (lim->client_body_min_rate == 0)
		return lim->client_body_timeout_ms;
	allowed = lim->client_body_timeout_ms +
		  c->c_x.x_req_total * 1000 / lim->client_body_min_rate;
	waited = c->c_x.x_body_waited + (now - c->c_x.x_body_since);
	if (waited >= allowed)
		return 1;
	return allowed - waited < lim->client_body_timeout_ms
		       ? (uint32_t)(allowed - waited)
		       : lim->client_body_timeout_ms;
}

/*
 * response_timeout between two reads from the server, and no more than
 * what response_total_timeout (if set) leaves of the whole response,
 * counted from the dispatch of the request.
 */
static uint32_t conn_response_wait_ms(const struct conn *c, uint64_t now)
{
	const struct cfg_backend *be = c->c_x.x_be->be_cfg;
	uint64_t end;

	if (be->response_total_timeout_ms == 0)
		return be->response_timeout_ms;
	end = c->c_x.x_dispatch_at + be->response_total_timeout_ms;
	if (now >= end)
		return 1;
	return end - now < be->response_timeout_ms ? (uint32_t)(end - now)
						   : be->response_timeout_ms;
}

static void conn_set_phase(struct conn *c, enum conn_phase ph)
{
	const struct cfg_backend *be = c->c_x.x_be->be_cfg;
	uint64_t now = c->c_w->w_loop.lp_now;
	uint32_t ms;

	if (ph == PH_NONE ||
	    (ph == c->c_x.x_phase && (ph == PH_CONNECT || !c->c_moved)))
		return;
	if (ph != PH_BODY && c->c_x.x_phase == PH_BODY)
		c->c_x.x_body_waited += now - c->c_x.x_body_since;
	else if (ph == PH_BODY && c->c_x.x_phase != PH_BODY)
		c->c_x.x_body_since = now;
	c->c_x.x_phase = ph;
	switch (ph) {
	case PH_CONNECT: ms = be->connect_timeout_ms; break;
	case PH_BODY: ms = conn_body_wait_ms(c, now); break;
	default: ms = conn_response_wait_ms(c, now); break;
	}
	if (c->c_state == CS_TUNNEL && ph != PH_CONNECT)
		ms = c->c_x.x_lim->keepalive_timeout_ms;
	loop_timer_in(&c->c_w->w_loop, &c->c_timer, ms);
}

/*
 * Did a connect fail for want of something of ours (descriptors, memory,
 * local ports) rather than because of the server?
 */
static bool is_local_error(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOMEM ||
	       err == ENOBUFS || err == EADDRNOTAVAIL;
}

/*
 * Pick a server and attach a connection to it: an idle pooled one, or a
 * new connect.  A server whose connect fails at once is recorded and the
 * next one is tried, up to `retries` more.
 */
static enum step conn_connect(struct conn *c)
{
	struct balance_backend *be = c->c_x.x_be;
	uint64_t now = c->c_w->w_loop.lp_now;
	enum balance_miss miss = BALANCE_TRIED;

	while (c->c_x.x_attempts_left > 0) {
		struct balance_server *s =
			balance_pick(be, c->c_x.x_tried, c->c_x.x_hash, now, &miss);
		struct upstream *u;

		if (s == NULL)
			break;
		if (balance_index(be, s) < 64) /* beyond: attempts still bound it */
			c->c_x.x_tried |= UINT64_C(1) << balance_index(be, s);
		c->c_x.x_attempts_left--;
		c->c_x.x_srv = s;
		u = up_pool_get(s);
		if (u == NULL)
			u = up_connect(c->c_w, s);
		if (u == NULL) {
			int err = errno;

			c->c_x.x_connect_timed_out = false;
			if (is_local_error(err)) {
				/* ours, not the server's: try nobody else */
				log_warn("backend %s: connect %s: %s (on this "
					 "side; not counted against the server)",
					 be->be_cfg->name, s->srv_cfg->addr.str,
					 strerror(err));
				break;
			}
			log_warn("backend %s: connect %s: %s", be->be_cfg->name,
				 s->srv_cfg->addr.str, strerror(err));
			balance_failed(s, now, strerror(err));
			continue;
		}
		u->u_conn = c;
		c->c_up = u;
		c->c_x.x_phase = PH_NONE;
		if (metrics_server(s->srv_cfg->slot) != NULL)
			metrics_add(&metrics_server(s->srv_cfg->slot)->ms_requests,
				    1);
		if (u->u_reused) {
			u->u_connected = true;
			c->c_x.x_connect_ms = 0;
		} else {
			c->c_x.x_connect_at = c->c_w->w_loop.lp_now;
			conn_set_phase(c, PH_CONNECT);
		}
		return STEP_MOVED;
	}
	if (c->c_state == CS_TUNNEL)
		return conn_close(c);
	if (miss == BALANCE_NONE_UP) /* nothing to try: answer at once */
		return conn_reply(c, 503);
	return conn_reply(c, c->c_x.x_connect_timed_out ? 504 : 502);
}

static enum step conn_connect_failed(struct conn *c, const char *why)
{
	struct upstream *u = c->c_up;

	log_warn("backend %s: connect %s: %s", up_backend(u), up_addr(u), why);
	balance_failed(u->u_srv, c->c_w->w_loop.lp_now, why);
	conn_detach_up(c, false);
	c->c_x.x_phase = PH_NONE;
	return conn_connect(c);
}

/*
 * A reused keep-alive connection was closed by the server before any
 * response byte: the request never reached it, so send it again on a
 * fresh connection to the same server (only when no body byte left).
 */
static bool conn_retry_stale(struct conn *c)
{
	struct upstream *u = c->c_up;
	struct balance_server *s = u->u_srv;

	if (!u->u_reused || c->c_x.x_resp_head_done || buf_len(&u->u_in) ||
	    c->c_x.x_req_body_sent || !c->c_x.x_is_idempotent)
		return false;
	conn_detach_up(c, false);
	c->c_x.x_rh_sent = 0;
	c->c_x.x_resp_scanned_head = 0;
	u = up_connect(c->c_w, s);
	if (u == NULL)
		return false;
	u->u_conn = c;
	c->c_up = u;
	c->c_x.x_phase = PH_NONE;
	conn_set_phase(c, PH_CONNECT);
	return true;
}

/* ---- the response ---------------------------------------------------- */

/*
 * The server of c_up sent a malformed response: 502 for this request,
 * counted, but not a passive failure (balance_broken_response).
 */
static void conn_server_broken(struct conn *c)
{
	balance_broken_response(c->c_up->u_srv);
}

/*
 * Decode the fresh chunked bytes of u_in in place for an HTTP/1.0 client:
 * the data joins the bytes to forward, the framing goes, and anything
 * after the body (a broken server's extra bytes) moves down behind the
 * data, where it keeps the connection out of the idle pool.
 */
static int conn_dechunk_response(struct conn *c, size_t fresh)
{
	struct upstream *u = c->c_up;
	char *p = buf_rptr(&u->u_in) + c->c_x.x_resp_fwd;
	size_t data;
	bool done;
	ssize_t n = http_chunked_decode(&c->c_x.x_resp_chunk, p, fresh, &data,
					&done);

	if (n < 0)
		return -1;
	memmove(p + data, p + n, fresh - (size_t)n);
	u->u_in.b_w -= (uint32_t)((size_t)n - data);
	c->c_x.x_resp_fwd += data;
	c->c_x.x_resp_scanned = done;
	return 0;
}

/* Locate the response-body bytes in u_in.  -1 on bad framing. */
static int conn_scan_response(struct conn *c)
{
	struct upstream *u = c->c_up;
	size_t fresh = buf_len(&u->u_in) - c->c_x.x_resp_fwd;
	ssize_t n;
	bool done = false;

	if (c->c_x.x_resp_scanned || fresh == 0)
		return 0;
	switch (c->c_x.x_resp_body) {
	case HTTP_BODY_LENGTH:
		n = (ssize_t)(fresh < c->c_x.x_resp_left ? fresh : c->c_x.x_resp_left);
		c->c_x.x_resp_left -= (uint64_t)n;
		done = c->c_x.x_resp_left == 0;
		break;
	case HTTP_BODY_CHUNKED:
		if (c->c_x.x_resp_dechunk)
			return conn_dechunk_response(c, fresh);
		n = http_chunked_feed(&c->c_x.x_resp_chunk,
				      buf_rptr(&u->u_in) + c->c_x.x_resp_fwd, fresh,
				      &done);
		if (n < 0)
			return -1;
		break;
	case HTTP_BODY_CLOSE:
		n = (ssize_t)fresh;
		break;
	default:
		n = 0;
		done = true;
		break;
	}
	c->c_x.x_resp_fwd += (size_t)n;
	c->c_x.x_resp_scanned = done;
	return 0;
}

/*
 * tls.hsts: Strict-Transport-Security on the responses of a TLS listener
 * (RFC 6797 §7.2: never over plain HTTP), unless the server sent its own
 * (m: its response; NULL for our own replies).
 */
static int conn_hsts(const struct conn *c, const char *base,
		     const struct http_msg *m, struct buf *o)
{
	const struct cfg_tls *tls = c->c_wl->wl_cfg->tls;
	char line[80];

	if (tls == NULL || tls->hsts == 0 || !transport_is_tls(&c->c_t) ||
	    (m != NULL &&
	     http_find_header(base, m, "Strict-Transport-Security") >= 0))
		return 0;
	(void)snprintf(line, sizeof(line),
		       "Strict-Transport-Security: max-age=%u\r\n", tls->hsts);
	return out_str(o, line);
}

static int conn_build_response(struct conn *c, const char *base,
			       const struct http_msg *m)
{
	struct buf *o = &c->c_out;
	char line[64];
	bool seen_cl = false;

	if (buf_reserve(o) == -1)
		return -1;
	/* the status line without snprintf: this runs for every response */
	memcpy(line, "HTTP/1.1 000 ", 13);
	line[9] = (char)('0' + m->status / 100 % 10);
	line[10] = (char)('0' + m->status / 10 % 10);
	line[11] = (char)('0' + m->status % 10);
	if (out_put(o, line, 13) || out_slice(o, base, m->reason) ||
	    out_put(o, "\r\n", 2))
		return -1;
	for (unsigned i = 0; i < m->nheaders; i++) {
		const struct http_header *h = &m->headers[i];

		if (http_slice_eq(base, h->name, "Content-Length")) {
			if (out_content_length(o, base, h, &seen_cl))
				return -1;
			continue;
		}
		/*
		 * Transfer-Encoding is hop-by-hop, but the body is relayed
		 * as it came, so its codings (gzip, chunked) must go too.
		 */
		if (http_slice_eq(base, h->name, "Transfer-Encoding") &&
		    m->status >= 200 && m->body != HTTP_BODY_NONE &&
		    !c->c_x.x_resp_dechunk) {
			if (out_header(o, base, h))
				return -1;
			continue;
		}
		if (http_is_hop_by_hop(base, m, i) ||
		    name_in_list(base, h->name, c->c_x.x_lim->hide_response_headers,
				 c->c_x.x_lim->nhide_response_headers))
			continue;
		if (out_header(o, base, h))
			return -1;
	}
	if (conn_hsts(c, base, m, o) == -1)
		return -1;
	if (m->status >= 200 && c->c_x.x_close_after) {
		if (out_str(o, "Connection: close\r\n"))
			return -1;
	} else if (m->status >= 200 && c->c_x.x_is_http10) {
		if (out_str(o, "Connection: keep-alive\r\n"))
			return -1;
	}
	return out_put(o, "\r\n", 2);
}

/*
 * 101 Switching Protocols (WebSocket): relay the head with its Upgrade,
 * then tunnel bytes both ways.  A 101 the client did not ask for is a
 * broken server: 502.
 */
static enum step conn_switch_protocols(struct conn *c, const char *base,
				       size_t head, const struct http_msg *m)
{
	struct upstream *u = c->c_up;
	int up = http_find_header(base, m, "Upgrade");

	if (!c->c_x.x_req_upgrade || up < 0) {
		log_warn("backend %s: server %s: 101 response without an "
			 "Upgrade request",
			 up_backend(u), up_addr(u));
		return conn_reply(c, 502);
	}
	if (conn_build_response(c, base, m) == -1) {
		return conn_reply(c, 502);
	}
	c->c_out.b_w -= 2; /* reopen the head for the upgrade headers */
	if (out_str(&c->c_out, "Connection: upgrade\r\n") ||
	    out_header(&c->c_out, base, &m->headers[up]) ||
	    out_put(&c->c_out, "\r\n", 2)) {
		return conn_reply(c, 502);
	}
	buf_consume(&u->u_in, head);
	c->c_x.x_resp_head_done = true;
	c->c_x.x_status = c->c_x.x_up_status = 101;
	c->c_x.x_resp_ms = (int64_t)(c->c_w->w_loop.lp_now - c->c_x.x_dispatch_at);
	c->c_x.x_phase = PH_NONE;
	return conn_set_state(c, CS_TUNNEL);
}

/*
 * Try to parse the response head in u_in: STEP_BLOCKED if it is not
 * complete yet, STEP_MOVED once parsed (or an interim one relayed).
 */
static enum step conn_response_head(struct conn *c)
{
	struct upstream *u = c->c_up;
	struct http_msg *m = &proxy_msg;
	const char *base = buf_rptr(&u->u_in);
	size_t len = buf_len(&u->u_in);
	size_t head;

	head = http_head_end(base, len, &c->c_x.x_resp_scanned_head);
	if (head == 0) {
		if (len >= u->u_in.b_cap) {
			log_warn("backend %s: server %s: response head too large",
				 up_backend(u), up_addr(u));
			conn_server_broken(c);
			return conn_reply(c, 502);
		}
		return STEP_BLOCKED;
	}
	if (http_parse_response(base, head, c->c_x.x_is_head_req, m) != HTTP_OK) {
		log_warn("backend %s: server %s: invalid response head",
			 up_backend(u), up_addr(u));
		conn_server_broken(c);
		return conn_reply(c, 502);
	}
	if (m->status == 101)
		return conn_switch_protocols(c, base, head, m);
	if (m->status < 200) {
		/*
		 * Interim (100 Continue, 103): relay it and wait for the final
		 * head -- except to HTTP/1.0 clients, which never get one
		 * (RFC 9110 §15.2).
		 */
		if (!c->c_x.x_is_http10 && (buf_reserve(&c->c_out) == -1 ||
					conn_build_response(c, base, m) == -1)) {
			return conn_reply(c, 502);
		}
		buf_consume(&u->u_in, head);
		c->c_x.x_resp_scanned_head = 0;
		return STEP_MOVED;
	}
	if (c->c_x.x_is_http10 && m->is_te_coded && m->body != HTTP_BODY_NONE) {
		/* gzip and the like: an HTTP/1.0 client knows no transfer codings */
		log_warn("backend %s: server %s: transfer coding in a response "
			 "to an HTTP/1.0 client",
			 up_backend(u), up_addr(u));
		conn_server_broken(c);
		return conn_reply(c, 502);
	}
	if (c->c_x.x_is_http10 && m->body == HTTP_BODY_CHUNKED) {
		/* decoded, and delimited by our close (RFC 9112 §6.3) */
		c->c_x.x_resp_dechunk = true;
		c->c_x.x_close_after = true;
	}
	if (m->body == HTTP_BODY_CLOSE)
		c->c_x.x_close_after = true; /* only the close can end the body */
	if (c->c_w->w_draining)
		c->c_x.x_close_after = true;
	if (conn_build_response(c, base, m) == -1) {
		log_warn("backend %s: server %s: response head too large",
			 up_backend(u), up_addr(u));
		conn_server_broken(c);
		return conn_reply(c, 502);
	}
	c->c_x.x_resp_keepalive = m->is_keepalive;
	balance_succeeded(u->u_srv);
	c->c_x.x_status = c->c_x.x_up_status = m->status;
	c->c_x.x_resp_ms = (int64_t)(c->c_w->w_loop.lp_now - c->c_x.x_dispatch_at);
	c->c_x.x_resp_body = m->body;
	c->c_x.x_resp_left = m->content_length;
	http_chunked_init(&c->c_x.x_resp_chunk);
	c->c_x.x_resp_head_done = true;
	c->c_x.x_resp_scanned = m->body == HTTP_BODY_NONE ||
			    (m->body == HTTP_BODY_LENGTH && m->content_length == 0);
	buf_consume(&u->u_in, head);
	return STEP_MOVED;
}

/* The server closed (or broke) its side. */
static enum step conn_upstream_eof(struct conn *c, bool is_error)
{
	struct upstream *u = c->c_up;

	if (!c->c_x.x_resp_head_done && conn_retry_stale(c))
		return STEP_MOVED;
	log_warn("backend %s: server %s: %s %s", up_backend(u), up_addr(u),
		 is_error ? "connection error" : "connection closed",
		 c->c_x.x_resp_head_done ? "in the middle of the response"
				     : "before the response");
	/* u, not c_up: a failed stale retry has detached it already */
	balance_failed(u->u_srv, c->c_w->w_loop.lp_now,
		       "connection closed or broken");
	return conn_reply(c, 502);
}

/*
 * The server closed its side.  That ends a close-delimited body; any other
 * response still incomplete once every byte the server sent is parsed is
 * broken.  While an interim (1xx) head is still going out, the final head
 * behind it in u_in is not parsed yet: wait.
 */
static enum step conn_check_eof(struct conn *c)
{
	struct upstream *u = c->c_up;

	if (!u->u_eof || c->c_x.x_resp_scanned)
		return STEP_BLOCKED;
	if (c->c_x.x_resp_head_done && c->c_x.x_resp_body == HTTP_BODY_LENGTH &&
	    c->c_x.x_resp_left == 0)
		return STEP_BLOCKED; /* all of it came; the pipe is draining */
	if (c->c_x.x_resp_head_done && c->c_x.x_resp_body == HTTP_BODY_CLOSE) {
		c->c_x.x_resp_scanned = true;
		return STEP_BLOCKED;
	}
	if (!c->c_x.x_resp_head_done && buf_len(&c->c_out) > 0)
		return STEP_BLOCKED;
	return conn_upstream_eof(c, false);
}

/* The response is completely delivered: keep-alive or close. */
static enum step conn_response_done(struct conn *c)
{
	bool req_done = c->c_x.x_req_scanned && c->c_x.x_req_fwd == 0 &&
			c->c_x.x_rh_sent == buf_len(&c->c_rh);
	struct upstream *u = c->c_up;

	conn_log(c);
	conn_detach_up(c, req_done && c->c_x.x_resp_keepalive && !u->u_eof &&
				  !c->c_x.x_server_closes &&
				  buf_len(&u->u_in) == 0);
	/*
	 * A client that announced its close (RFC 9112 §9.6), whose request
	 * we read to the end and that sent nothing after it, has nothing
	 * more coming that could turn our close into a reset: close now, as
	 * nginx does.  Otherwise it may be sending still (its next request,
	 * the rest of a body the server did not wait for): linger.
	 */
	if (req_done && buf_len(&c->c_in) == 0 &&
	    (c->c_eof || (c->c_x.x_client_closes && !c->c_rdy.rd)))
		return conn_close(c);
	if (!req_done || c->c_x.x_close_after || c->c_eof)
		return conn_linger(c);
	return conn_next_request(c);
}

/* ---- the pump ------------------------------------------------------- */

/*
 * Read the client while the request (or its head) still needs bytes.
 * STEP_MOVED when bytes or the client's FIN came.
 */
static enum step conn_read_client(struct conn *c)
{
	ssize_t n;

	if (!c->c_rdy.rd || c->c_eof || buf_reserve(&c->c_in) == -1)
		return STEP_BLOCKED;
	n = io_read(&c->c_t, &c->c_in, SIZE_MAX, &c->c_rdy);
	if (n == -1) {
		buf_release(&c->c_in); /* nothing came: hold no buffer idle */
		return STEP_BLOCKED;
	}
	if (n == -2) {
		log_debug("listener %s: client %s: read: %s",
			  c->c_wl->wl_cfg->name, c->c_peer,
			  c->c_t.t_error ? c->c_t.t_error : strerror(errno));
		return conn_abort(c);
	}
	if (n == 0) {
		c->c_eof = true;
		return STEP_MOVED;
	}
	c->c_moved = true;
	return STEP_MOVED;
}

static enum step conn_step_head(struct conn *c)
{
	size_t len = buf_len(&c->c_in), head;
	enum step r;

	if (len > 0 && buf_rptr(&c->c_in)[0] == 0x16) {
		/* a TLS ClientHello: https:// to a plain port gets no answer
		 * it could read, so no hang either */
		log_info("listener %s: client %s: TLS on a plain HTTP port",
			 c->c_wl->wl_cfg->name, c->c_peer);
		return conn_close(c);
	}
	if (len > 0) {
		head = http_head_end(buf_rptr(&c->c_in), len,
				     &c->c_x.x_head_scanned);
		if (head > c->c_x.x_lim->max_header_size)
			return conn_reply(c, 431);
		if (head > 0)
			return conn_dispatch(c, head);
		if (len >= c->c_x.x_lim->max_header_size)
			/* no line end at all: the request line is the problem */
			return conn_reply(c, http_head_too_large(buf_rptr(&c->c_in),
								 len));
	}
	if (c->c_eof)
		return conn_close(c); /* FIN with no or half a head */
	r = conn_read_client(c);
	if (r != STEP_MOVED)
		return r;
	if (c->c_is_idle && buf_len(&c->c_in) > 0) {
		c->c_is_idle = false;
		c->c_x.x_req_start = c->c_w->w_loop.lp_now;
		loop_timer_in(&c->c_w->w_loop, &c->c_timer,
			      c->c_x.x_lim->client_header_timeout_ms);
	}
	return STEP_MOVED;
}

/* Client -> server: the rewritten head, then body bytes from c_in. */
static enum step conn_write_upstream(struct conn *c)
{
	struct upstream *u = c->c_up;
	size_t hlen = buf_len(&c->c_rh) - c->c_x.x_rh_sent;
	ssize_t n;

	if (!u->u_connected || !u->u_rdy.wr ||
	    (hlen == 0 && c->c_x.x_req_fwd == 0))
		return STEP_BLOCKED;
	n = io_write2(&u->u_t, buf_rptr(&c->c_rh) + c->c_x.x_rh_sent,
		      hlen, buf_rptr(&c->c_in), c->c_x.x_req_fwd, &u->u_rdy);
	if (n == -1)
		return conn_upstream_eof(c, true);
	if ((size_t)n > hlen) {
		c->c_x.x_req_body_sent = true;
		buf_consume(&c->c_in, (size_t)n - hlen);
		c->c_x.x_req_fwd -= (size_t)n - hlen;
		n = (ssize_t)hlen;
	}
	c->c_x.x_rh_sent += (uint32_t)n;
	c->c_moved = true;
	return STEP_MOVED;
}

/* Server -> proxy: response bytes into u_in. */
/* ---- splice: large Content-Length bodies bypass user space ---------- */

/*
 * Is the rest of this response a plain run of bytes that can go from the
 * server's socket to the client's through a pipe, never copied to us?
 * Only Content-Length bodies (chunked framing must be seen), only once
 * everything already buffered has been sent.
 */
static bool conn_can_splice(const struct conn *c)
{
	const struct upstream *u = c->c_up;

	if (c->c_pipe_len > 0)
		return true;
	return transport_can_splice(&c->c_t) && transport_can_splice(&u->u_t) &&
	       c->c_x.x_resp_head_done && c->c_x.x_resp_body == HTTP_BODY_LENGTH &&
	       !c->c_x.x_resp_scanned && c->c_x.x_resp_left >= PROXY_SPLICE_MIN &&
	       c->c_x.x_resp_fwd == 0 && buf_len(&c->c_out) == 0 &&
	       (u->u_in.b_data == NULL || buf_len(&u->u_in) == 0);
}

/*
 * Empty pipes wait here for the next body to splice instead of costing a
 * pipe2, two fcntl and two close each time; bounded, and an empty pipe
 * holds no pages.  One worker per process: the cache is the process's.
 */
static struct {
	int fd[2];
	size_t cap;
} pipe_cache[PROXY_PIPE_CACHE];
static size_t npipe_cache;

void proxy_drop_pipes(void)
{
	while (npipe_cache > 0) {
		npipe_cache--;
		close(pipe_cache[npipe_cache].fd[0]);
		close(pipe_cache[npipe_cache].fd[1]);
	}
}

static int conn_pipe_open(struct conn *c)
{
	int cap;

	if (c->c_pipe_cap > 0)
		return 0;
	if (npipe_cache > 0) {
		npipe_cache--;
		c->c_pipe[0] = pipe_cache[npipe_cache].fd[0];
		c->c_pipe[1] = pipe_cache[npipe_cache].fd[1];
		c->c_pipe_cap = pipe_cache[npipe_cache].cap;
		return 0;
	}
	if (pipe2(c->c_pipe, O_NONBLOCK | O_CLOEXEC) == -1)
		return -1;
	(void)fcntl(c->c_pipe[1], F_SETPIPE_SZ, PROXY_PIPE_SIZE);
	cap = fcntl(c->c_pipe[1], F_GETPIPE_SZ);
	c->c_pipe_cap = cap > 0 ? (size_t)cap : 65536;
	return 0;
}

/* Give the pipe back: to the cache when empty, else (bytes stuck) close. */
static void conn_pipe_close(struct conn *c)
{
	if (c->c_pipe_cap == 0)
		return;
	if (c->c_pipe_len == 0 && npipe_cache < PROXY_PIPE_CACHE) {
		pipe_cache[npipe_cache].fd[0] = c->c_pipe[0];
		pipe_cache[npipe_cache].fd[1] = c->c_pipe[1];
		pipe_cache[npipe_cache].cap = c->c_pipe_cap;
		npipe_cache++;
	} else {
		close(c->c_pipe[0]);
		close(c->c_pipe[1]);
	}
	c->c_pipe_cap = c->c_pipe_len = 0;
}

/* Server socket -> pipe.  false when nothing moved. */
static enum step conn_splice_in(struct conn *c)
{
	struct upstream *u = c->c_up;
	size_t want = c->c_pipe_cap - c->c_pipe_len;
	ssize_t n;

	if (!u->u_rdy.rd || u->u_eof || c->c_x.x_resp_left == 0 || want == 0)
		return STEP_BLOCKED;
	if (want > c->c_x.x_resp_left)
		want = (size_t)c->c_x.x_resp_left;
	n = transport_splice_in(&u->u_t, c->c_pipe[1], want);
	if (n > 0) {
		c->c_pipe_len += (size_t)n;
		c->c_x.x_resp_left -= (uint64_t)n;
		c->c_moved = true;
		return STEP_MOVED;
	}
	if (n == 0) {
		u->u_eof = true; /* cut short: conn_check_eof says so */
		return STEP_MOVED;
	}
	if (n != TRANSPORT_AGAIN)
		return conn_upstream_eof(c, true);
	/*
	 * Either side may be the one that would block: a pipe counts pages,
	 * not bytes, and fills up early with small segments.  Only an empty
	 * pipe proves the socket is drained; otherwise the next splice_out
	 * makes room and we try again.
	 */
	if (c->c_pipe_len == 0)
		u->u_rdy.rd = false;
	return STEP_BLOCKED;
}

/* Pipe -> client socket.  false when nothing moved. */
static enum step conn_splice_out(struct conn *c)
{
	ssize_t n;

	if (!c->c_rdy.wr || c->c_pipe_len == 0)
		return STEP_BLOCKED;
	n = transport_splice_out(&c->c_t, c->c_pipe[0], c->c_pipe_len);
	if (n > 0) {
		c->c_pipe_len -= (size_t)n;
		c->c_x.x_bytes_out += (uint64_t)n;
		c->c_moved = true;
		return STEP_MOVED;
	}
	if (n == TRANSPORT_AGAIN) {
		c->c_rdy.wr = false; /* the pipe is not empty: the socket is full */
		return STEP_BLOCKED;
	}
	return conn_abort(c);
}

/* One splice round; marks the body complete once it has all gone out. */
static enum step conn_step_splice(struct conn *c)
{
	enum step r = STEP_BLOCKED;

	if (conn_pipe_open(c) == -1)
		return STEP_BLOCKED; /* no descriptors: the buffered path goes on */
	if (step_ends(conn_splice_in(c), &r) ||
	    step_ends(conn_splice_out(c), &r))
		return r;
	if (c->c_x.x_resp_left == 0 && c->c_pipe_len == 0)
		c->c_x.x_resp_scanned = true;
	return r;
}

static enum step conn_read_upstream(struct conn *c)
{
	struct upstream *u = c->c_up;
	ssize_t n;

	if (!u->u_connected || !u->u_rdy.rd || u->u_eof ||
	    c->c_x.x_resp_scanned || conn_can_splice(c) ||
	    buf_reserve(&u->u_in) == -1)
		return STEP_BLOCKED;
	/*
	 * A response's first read takes PROXY_FIRST_READ at most (nginx's
	 * proxy_buffer_size default does the same): enough for a head and a
	 * small body, and a large body then goes through splice() almost
	 * whole instead of being copied in and out of u_in.
	 */
	n = io_read(&u->u_t, &u->u_in,
		    c->c_x.x_resp_head_done || buf_len(&u->u_in) > 0
			    ? SIZE_MAX
			    : PROXY_FIRST_READ,
		    &u->u_rdy);
	if (n == -1)
		return STEP_BLOCKED;
	if (n == -2)
		return conn_upstream_eof(c, true);
	if (n == 0) {
		u->u_eof = true; /* acted on once what it sent is parsed */
		return STEP_MOVED;
	}
	c->c_moved = true;
	return STEP_MOVED;
}

/* Proxy -> client: the response head, then body bytes from u_in. */
static enum step conn_write_client(struct conn *c)
{
	struct upstream *u = c->c_up;
	size_t hlen = buf_len(&c->c_out);
	ssize_t n;

	if (!c->c_rdy.wr || (hlen == 0 && c->c_x.x_resp_fwd == 0))
		return STEP_BLOCKED;
	n = io_write2(&c->c_t, buf_rptr(&c->c_out), hlen,
		      buf_rptr(&u->u_in), c->c_x.x_resp_fwd, &c->c_rdy);
	if (n == -1) {
		log_debug("listener %s: client %s: write: %s",
			  c->c_wl->wl_cfg->name, c->c_peer,
			  c->c_t.t_error ? c->c_t.t_error : strerror(errno));
		return conn_abort(c);
	}
	if (n == 0)
		return STEP_BLOCKED;
	c->c_x.x_resp_started = true;
	c->c_x.x_bytes_out += (uint64_t)n;
	if ((size_t)n > hlen) {
		buf_consume(&u->u_in, (size_t)n - hlen);
		c->c_x.x_resp_fwd -= (size_t)n - hlen;
		n = (ssize_t)hlen;
	}
	buf_consume(&c->c_out, (size_t)n);
	c->c_moved = true;
	return STEP_MOVED;
}

/* Client -> proxy: request body bytes into c_in.  false if none came. */
static enum step conn_read_body(struct conn *c)
{
	enum step r;

	if (c->c_x.x_req_scanned)
		return STEP_BLOCKED;
	r = conn_read_client(c);
	if (r != STEP_MOVED)
		return r;
	if (c->c_eof)
		return conn_abort(c); /* the client gave up mid-body */
	if (conn_scan_request(c) == -1)
		return conn_reply(c, 400);
	if (c->c_x.x_lim->max_body_size &&
	    c->c_x.x_req_total > c->c_x.x_lim->max_body_size)
		return conn_reply(c, 413);
	return STEP_MOVED;
}

/* The response is parsed, scanned and all sent? */
static bool conn_response_sent(const struct conn *c)
{
	return c->c_x.x_resp_head_done && c->c_x.x_resp_scanned &&
	       c->c_x.x_resp_fwd == 0 && buf_len(&c->c_out) == 0;
}

static enum step conn_step_proxy(struct conn *c)
{
	enum step r = STEP_BLOCKED;
	struct upstream *u;

	if (c->c_up == NULL)
		return STEP_BLOCKED;
	if (step_ends(conn_read_body(c), &r) ||
	    step_ends(conn_write_upstream(c), &r) ||
	    step_ends(conn_read_upstream(c), &r))
		return r;
	u = c->c_up;
	if (!c->c_x.x_resp_head_done && buf_len(&u->u_in) > 0 &&
	    buf_len(&c->c_out) == 0 && step_ends(conn_response_head(c), &r))
		return r; /* a 101 goes on tunnelling */
	if (c->c_x.x_resp_head_done && conn_scan_response(c) == -1) {
		log_warn("backend %s: server %s: malformed chunked response",
			 up_backend(u), up_addr(u));
		conn_server_broken(c);
		return conn_reply(c, 502);
	}
	if (step_ends(conn_check_eof(c), &r) ||
	    step_ends(conn_write_client(c), &r))
		return r;
	if (conn_can_splice(c) && step_ends(conn_step_splice(c), &r))
		return r;
	if (conn_response_sent(c))
		return conn_response_done(c);
	return r;
}

static enum step conn_step_reply(struct conn *c)
{
	ssize_t n;

	if (!c->c_rdy.wr)
		return STEP_BLOCKED;
	n = io_write2(&c->c_t, buf_rptr(&c->c_out), buf_len(&c->c_out),
		      NULL, 0, &c->c_rdy);
	if (n == -1)
		return conn_close(c);
	buf_consume(&c->c_out, (size_t)n);
	if (buf_len(&c->c_out) == 0)
		return conn_linger(c);
	return n > 0 ? STEP_MOVED : STEP_BLOCKED;
}

static enum step conn_step_linger(struct conn *c)
{
	ssize_t n;

	while (c->c_rdy.rd) {
		n = transport_drain(&c->c_t, &c->c_rdy);
		if (n > 0)
			continue;
		if (n == TRANSPORT_AGAIN)
			break;
		return conn_close(c);
	}
	return STEP_BLOCKED;
}

/* TCP tunnel: each direction's FIN is passed on once its bytes are. */
/* Server -> us in a tunnel: any bytes, until its FIN or an error. */
static enum step conn_tunnel_read_upstream(struct conn *c)
{
	struct upstream *u = c->c_up;
	ssize_t n;

	if (u->u_eof || !u->u_rdy.rd || buf_reserve(&u->u_in) == -1)
		return STEP_BLOCKED;
	n = io_read(&u->u_t, &u->u_in, SIZE_MAX, &u->u_rdy);
	if (n == -1)
		return STEP_BLOCKED;
	if (n == 0 || n == -2)
		u->u_eof = true;
	else
		c->c_moved = true;
	return STEP_MOVED;
}

/* TCP tunnel: each direction's FIN is passed on once its bytes are. */
static enum step conn_step_tunnel(struct conn *c)
{
	struct upstream *u = c->c_up;
	enum step r = STEP_BLOCKED;

	if (u == NULL || !u->u_connected)
		return STEP_BLOCKED;
	if (step_ends(conn_read_client(c), &r))
		return r;
	c->c_x.x_req_fwd = buf_len(&c->c_in);
	if (step_ends(conn_write_upstream(c), &r))
		return r;
	if (c->c_eof && c->c_x.x_req_fwd == 0 && !u->u_wr_shut) {
		(void)transport_shutdown_wr(&u->u_t);
		u->u_wr_shut = true;
	}
	(void)step_ends(conn_tunnel_read_upstream(c), &r);
	c->c_x.x_resp_fwd = buf_len(&u->u_in);
	if (step_ends(conn_write_client(c), &r))
		return r;
	if (u->u_eof && c->c_x.x_resp_fwd == 0) {
		if (c->c_eof && u->u_wr_shut)
			return conn_close(c);
		if (!c->c_eof) {
			if (!c->c_t.t_wr_shut)
				(void)transport_shutdown_wr(&c->c_t);
			if (u->u_wr_shut)
				return conn_close(c);
		}
	}
	return r;
}

static enum conn_phase conn_phase_now(const struct conn *c)
{
	if (c->c_up == NULL)
		return PH_NONE;
	if (!c->c_up->u_connected)
		return PH_CONNECT;
	if (c->c_state == CS_PROXY && !c->c_x.x_req_scanned && c->c_x.x_req_fwd == 0)
		return PH_BODY;
	return PH_RESPONSE;
}

/*
 * Does c need events from the client's socket?  Not while only the
 * server is awaited for a client that sends nothing more: a connection
 * whose request came whole with "Connection: close" and whose response
 * goes out in one write never enters the epoll set.
 */
static bool conn_wants_events(const struct conn *c)
{
	return !(c->c_state == CS_PROXY && c->c_rdy.wr && c->c_x.x_client_closes &&
		 c->c_x.x_req_scanned);
}

/*
 * Bytes a TLS transport decrypted and holds bring no epoll edge.  The
 * transports clear a read flag only once OpenSSL wants the socket, so
 * none should be left behind; if one is, it is served in a pass after
 * the loop turn (redis's tlsProcessPendingData) instead of stalling.
 */
static void conn_check_pending(struct conn *c)
{
	bool held = (!c->c_rdy.rd && transport_pending(&c->c_t) > 0) ||
		    (c->c_up != NULL && !c->c_up->u_rdy.rd &&
		     transport_pending(&c->c_up->u_t) > 0);

	if (!held || c->c_is_pending)
		return;
	c->c_is_pending = true;
	c->c_pending_next = c->c_w->w_proxy->p_pending;
	c->c_w->w_proxy->p_pending = c;
}

/*
 * Run the current state's step until nothing moves.  A step that changes
 * the state always gets the new state's step run too: with edge-triggered
 * events nobody else would.
 */
static void conn_pump(struct conn *c)
{
	enum step r;

	c->c_moved = false;
	do {
		switch (c->c_state) {
		case CS_PROXYHDR: r = conn_step_proxyhdr(c); break;
		case CS_HANDSHAKE: r = conn_step_handshake(c); break;
		case CS_HEAD: r = conn_step_head(c); break;
		case CS_PROXY: r = conn_step_proxy(c); break;
		case CS_REPLY: r = conn_step_reply(c); break;
		case CS_LINGER: r = conn_step_linger(c); break;
		case CS_TUNNEL: r = conn_step_tunnel(c); break;
		default: r = STEP_GONE; break;
		}
	} while (r == STEP_MOVED || r == STEP_NEXT);
	if (r == STEP_GONE)
		return;
	conn_check_pending(c);
	if (c->c_state == CS_PROXY || c->c_state == CS_TUNNEL)
		conn_set_phase(c, conn_phase_now(c));
	if (!c->c_io.io_added && conn_wants_events(c) &&
	    loop_add_fd(&c->c_w->w_loop, &c->c_io,
			EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) == -1) {
		log_warn("listener %s: epoll_ctl: %s", c->c_wl->wl_cfg->name,
			 strerror(errno));
		(void)conn_close(c);
	}
}

static void conn_on_io(struct loop_io *io, uint32_t ev)
{
	struct conn *c = io->io_data;

	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->c_rdy.rd = true;
	if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->c_rdy.hup = true;
	if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->c_rdy.wr = true;
	conn_pump(c);
}

/* Is the client the one not reading (our bytes wait for it)? */
static bool conn_client_stalls(const struct conn *c)
{
	return !c->c_rdy.wr &&
	       (buf_len(&c->c_out) > 0 || c->c_x.x_resp_fwd > 0 ||
		c->c_pipe_len > 0);
}

/*
 * response_timeout passed with nothing moving.  Only a server that sent
 * no response head in time is failing (passive checks); once the head
 * came, a stall is cut without blame: a client that stops reading a large
 * response must not take the server out for everyone.
 */
static enum step conn_response_timed_out(struct conn *c)
{
	const struct cfg_backend *be = c->c_x.x_be->be_cfg;
	uint32_t ms = be->response_timeout_ms;
	uint64_t now = c->c_w->w_loop.lp_now;

	if (be->response_total_timeout_ms != 0 &&
	    now - c->c_x.x_dispatch_at >= be->response_total_timeout_ms) {
		/* a bound the operator set, not a failure of the server */
		log_warn("backend %s: server %s: response not complete within "
			 "response_total_timeout %ums",
			 up_backend(c->c_up), up_addr(c->c_up),
			 be->response_total_timeout_ms);
		return c->c_x.x_resp_started ? conn_abort(c)
					     : conn_reply(c, 504);
	}

	if (!c->c_x.x_resp_head_done) {
		log_warn("backend %s: server %s: no response within %ums",
			 up_backend(c->c_up), up_addr(c->c_up), ms);
		balance_failed(c->c_up->u_srv, c->c_w->w_loop.lp_now,
			       "response timeout");
		return conn_reply(c, 504);
	}
	if (conn_client_stalls(c))
		log_info("listener %s: client %s read nothing of the response "
			 "for %ums; closing (not counted against server %s)",
			 c->c_wl->wl_cfg->name, c->c_peer, ms,
			 up_addr(c->c_up));
	else
		log_warn("backend %s: server %s: response stalled for %ums",
			 up_backend(c->c_up), up_addr(c->c_up), ms);
	return conn_abort(c);
}

/* The timer of a proxied exchange's phase fired. */
static enum step conn_phase_timed_out(struct conn *c)
{
	switch (c->c_x.x_phase) {
	case PH_CONNECT:
		c->c_x.x_connect_timed_out = true;
		return conn_connect_failed(c, "timed out");
	case PH_BODY:
		return conn_reply(c, 408);
	default:
		if (c->c_state == CS_TUNNEL)
			return conn_close(c);
		return conn_response_timed_out(c);
	}
}

static void conn_on_timer(struct timer *t)
{
	struct conn *c = t->tm_data;
	enum step r;

	switch (c->c_state) {
	case CS_PROXYHDR:
		log_info("listener %s: client %s: no PROXY header in time",
			 c->c_wl->wl_cfg->name, c->c_peer);
		r = conn_close(c);
		break;
	case CS_HANDSHAKE:
		log_info("listener %s: client %s: TLS handshake timed out",
			 c->c_wl->wl_cfg->name, c->c_peer);
		conn_count_listener(c->c_wl->wl_cfg,
				    offsetof(struct metrics_route, mr_tls_failed));
		r = conn_close(c);
		break;
	case CS_HEAD:
		r = c->c_is_idle ? conn_linger(c) : conn_reply(c, 408);
		break;
	case CS_PROXY:
	case CS_TUNNEL:
		r = c->c_up == NULL ? conn_close(c) : conn_phase_timed_out(c);
		break;
	default:
		r = conn_close(c);
		break;
	}
	if (r != STEP_GONE)
		conn_pump(c);
}

/* ---- worker-wide operations ------------------------------------------ */

int proxy_init(struct worker *w)
{
	w->w_proxy = calloc(1, sizeof(*w->w_proxy));
	return w->w_proxy != NULL ? 0 : -1;
}

size_t proxy_count(const struct worker *w)
{
	return w->w_proxy->p_nconns;
}

void proxy_drain(struct worker *w)
{
	for (struct conn *c = w->w_proxy->p_conns; c != NULL; c = c->c_next)
		if (c->c_state == CS_HEAD && c->c_is_idle)
			loop_timer_in(&w->w_loop, &c->c_timer,
				      PROXY_DRAIN_GRACE_MS);
}

void proxy_close_all(struct worker *w)
{
	while (w->w_proxy->p_conns != NULL)
		(void)conn_close(w->w_proxy->p_conns);
}

void proxy_run_pending(struct worker *w)
{
	struct proxy *px = w->w_proxy;

	for (int round = 0; round < 16 && px->p_pending != NULL; round++) {
		struct conn *list = px->p_pending;

		px->p_pending = NULL;
		while (list != NULL) {
			struct conn *c = list;

			list = c->c_pending_next;
			c->c_is_pending = false;
			if (c->c_state == CS_CLOSED)
				continue;
			c->c_rdy.rd = true;
			if (c->c_up != NULL)
				c->c_up->u_rdy.rd = true;
			conn_pump(c);
		}
	}
	/* still held after 16 rounds: a transport bug; never keep a list
	 * that could outlive its connections (proxy_reap frees them) */
	for (struct conn *c = px->p_pending; c != NULL; c = c->c_pending_next)
		c->c_is_pending = false;
	px->p_pending = NULL;
}

void proxy_reap(struct worker *w)
{
	struct proxy *px = w->w_proxy;

	while (px->p_dead != NULL) {
		struct conn *c = px->p_dead;

		px->p_dead = c->c_dead;
		if (px->p_nconn_cache < PROXY_CONN_CACHE) {
			c->c_dead = px->p_conn_cache;
			px->p_conn_cache = c;
			px->p_nconn_cache++;
		} else {
			free(c);
		}
	}
	while (px->p_dead_up != NULL) {
		struct upstream *u = px->p_dead_up;

		px->p_dead_up = u->u_next;
		free(u);
	}
}

void proxy_cleanup(struct worker *w)
{
	struct proxy *px = w->w_proxy;

	proxy_close_all(w);
	for (size_t i = 0; i < w->w_cfg->nbackends; i++) {
		struct balance_backend *be = &w->w_bes[i];

		for (size_t j = 0; j < be->be_nservers; j++)
			while (be->be_servers[j].srv_idle.kp_first != NULL)
				up_close(up_of_link(
					be->be_servers[j].srv_idle.kp_first));
	}
	proxy_reap(w);
	proxy_drop_pipes();
	while (px->p_conn_cache != NULL) {
		struct conn *c = px->p_conn_cache;

		px->p_conn_cache = c->c_dead;
		free(c);
	}
	free(px);
	w->w_proxy = NULL;
}
