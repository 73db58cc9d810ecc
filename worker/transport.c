/*
 * transport.c: plain and TLS connection ends (see transport.h).
 *
 * The only file of the worker that reads, writes, splices or shuts down
 * a connection's descriptor.
 */
#include "worker/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#define TLS_JOIN_MAX 16384 /* gathered writes up to one record are joined */

/* ---- plain ------------------------------------------------------------ */

static enum transport_hs plain_handshake(struct transport *t,
					 struct transport_ready *r)
{
	return TRANSPORT_HS_DONE;
}

/* A failed read: would block (flag cleared) or broken. */
static ssize_t plain_read_failed(struct transport_ready *r)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		r->rd = false;
		return TRANSPORT_AGAIN;
	}
	return TRANSPORT_ERROR;
}

/*
 * A short read means the socket is drained: with edge-triggered events
 * the next byte brings a new event, so rd is cleared without paying for
 * a read that returns EAGAIN -- unless the peer's FIN is pending (hup),
 * which brings no further event and must still be read.
 */
static ssize_t plain_recv(struct transport *t, void *buf, size_t len,
			  struct transport_ready *r)
{
	ssize_t n;

	do
		n = read(t->t_fd, buf, len);
	while (n == -1 && errno == EINTR);
	if (n > 0) {
		if ((size_t)n < len && !r->hup)
			r->rd = false;
		return n;
	}
	if (n == 0)
		return 0;
	return plain_read_failed(r);
}

static ssize_t plain_sendv(struct transport *t, const struct iovec *iov,
			   int n, struct transport_ready *r)
{
	struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
	ssize_t w;

	do
		w = n == 1 ? send(t->t_fd, iov[0].iov_base, iov[0].iov_len,
				  MSG_NOSIGNAL)
			   : sendmsg(t->t_fd, &mh, MSG_NOSIGNAL);
	while (w == -1 && errno == EINTR);
	if (w >= 0)
		return w;
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		r->wr = false;
		return TRANSPORT_AGAIN;
	}
	return TRANSPORT_ERROR;
}

static int plain_shutdown_wr(struct transport *t)
{
	return shutdown(t->t_fd, SHUT_WR);
}

static void plain_close(struct transport *t)
{
	close(t->t_fd);
}

static ssize_t splice_result(ssize_t n)
{
	if (n >= 0)
		return n;
	return errno == EAGAIN ? TRANSPORT_AGAIN : TRANSPORT_ERROR;
}

static ssize_t plain_splice_in(struct transport *t, int pipe_wr, size_t len)
{
	return splice_result(splice(t->t_fd, NULL, pipe_wr, NULL, len,
				    SPLICE_F_MOVE | SPLICE_F_NONBLOCK));
}

static ssize_t plain_splice_out(struct transport *t, int pipe_rd, size_t len)
{
	return splice_result(splice(pipe_rd, NULL, t->t_fd, NULL, len,
				    SPLICE_F_MOVE | SPLICE_F_NONBLOCK));
}

const struct transport_ops transport_plain = {
	.name = "plain",
	.handshake = plain_handshake,
	.recv = plain_recv,
	.sendv = plain_sendv,
	.shutdown_wr = plain_shutdown_wr,
	.close = plain_close,
	.pending = NULL,
	.splice_in = plain_splice_in,
	.splice_out = plain_splice_out,
};

ssize_t transport_peek(struct transport *t, void *buf, size_t len,
		       struct transport_ready *r)
{
	ssize_t n;

	do
		n = recv(t->t_fd, buf, len, MSG_PEEK);
	while (n == -1 && errno == EINTR);
	if (n >= 0)
		return n;
	return plain_read_failed(r);
}

ssize_t transport_drain(struct transport *t, struct transport_ready *r)
{
	char junk[4096];
	struct transport raw = {.t_ops = &transport_plain, .t_fd = t->t_fd};

	return plain_recv(&raw, junk, sizeof(junk), r);
}

int transport_send_raw(struct transport *t, const void *buf, size_t len)
{
	ssize_t n;

	do
		n = send(t->t_fd, buf, len, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	return n == (ssize_t)len ? 0 : -1;
}

void transport_init_plain(struct transport *t, int fd)
{
	*t = (struct transport){.t_ops = &transport_plain, .t_fd = fd};
}

/* ---- TLS (OpenSSL, in user space) -------------------------------------- */

/*
 * The reason of the last OpenSSL failure, for the log.  One worker is one
 * thread, and the caller logs it before the next TLS call.
 */
static const char *tls_reason(int ssl_err)
{
	static char msg[256];
	unsigned long e = ERR_peek_last_error();

	if (e != 0) {
		ERR_error_string_n(e, msg, sizeof(msg));
		ERR_clear_error();
		return msg;
	}
	if (ssl_err == SSL_ERROR_SYSCALL)
		return errno != 0 ? strerror(errno) : "connection closed";
	return "protocol error";
}

/*
 * Map a failed OpenSSL call: TRANSPORT_AGAIN with the flag of the
 * direction OpenSSL waits for cleared, 0 for the end of the stream, or
 * TRANSPORT_ERROR with t_error set.
 */
static ssize_t tls_failed(struct transport *t, int ret,
			  struct transport_ready *r)
{
	int err = SSL_get_error(t->t_ssl, ret);

	switch (err) {
	case SSL_ERROR_WANT_READ:
		r->rd = false;
		return TRANSPORT_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		r->wr = false;
		return TRANSPORT_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		t->t_error = tls_reason(err);
		return TRANSPORT_ERROR;
	}
}

/* Does the first byte say the client speaks plain HTTP, not TLS? */
static bool tls_looks_plain(unsigned char b)
{
	return b >= 'A' && b <= 'Z';
}

static enum transport_hs tls_handshake(struct transport *t,
				       struct transport_ready *r)
{
	int ret;

	if (SSL_is_server(t->t_ssl) && SSL_in_before(t->t_ssl)) {
		/* a TLS record starts 0x16; "GET /" is someone on http:// */
		unsigned char b;
		ssize_t n = recv(t->t_fd, &b, 1, MSG_PEEK);

		if (n == 0) {
			t->t_error = "closed before the handshake";
			return TRANSPORT_HS_FAILED;
		}
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			r->rd = false;
			return TRANSPORT_HS_AGAIN;
		}
		if (n == 1 && tls_looks_plain(b))
			return TRANSPORT_HS_PLAIN;
	}
	ERR_clear_error();
	ret = SSL_do_handshake(t->t_ssl);
	if (ret == 1)
		return TRANSPORT_HS_DONE;
	switch (tls_failed(t, ret, r)) {
	case TRANSPORT_AGAIN:
		return TRANSPORT_HS_AGAIN;
	case 0:
		t->t_error = "closed during the handshake";
		return TRANSPORT_HS_FAILED;
	default:
		return TRANSPORT_HS_FAILED;
	}
}

/*
 * SSL_read returns one record at a time and may leave the rest in the
 * socket with no new edge to come: rd stays set until OpenSSL itself
 * says it wants more from the socket.
 */
static ssize_t tls_recv(struct transport *t, void *buf, size_t len,
			struct transport_ready *r)
{
	int n;

	if (len > INT32_MAX)
		len = INT32_MAX;
	ERR_clear_error();
	n = SSL_read(t->t_ssl, buf, (int)len);
	if (n > 0)
		return n;
	return tls_failed(t, n, r);
}

/*
 * Gathered writes are joined, up to a record's size, so that a response
 * head and a short body go out as one record.  A write OpenSSL could not
 * finish is retried with the same bytes in front (the caller consumes
 * only what was written) and never fewer of them, as SSL_write requires:
 * so the join is always made, and capped, never skipped.
 */
static ssize_t tls_sendv(struct transport *t, const struct iovec *iov, int n,
			 struct transport_ready *r)
{
	static char joined[TLS_JOIN_MAX];
	const void *p = iov[0].iov_base;
	size_t len = iov[0].iov_len;
	int w;

	if (n > 1) {
		len = 0;
		for (int i = 0; i < n && len < sizeof(joined); i++) {
			size_t take = iov[i].iov_len;

			if (take > sizeof(joined) - len)
				take = sizeof(joined) - len;
			memcpy(joined + len, iov[i].iov_base, take);
			len += take;
		}
		p = joined;
	}
	if (len > INT32_MAX)
		len = INT32_MAX;
	ERR_clear_error();
	w = SSL_write(t->t_ssl, p, (int)len);
	if (w > 0)
		return w;
	w = (int)tls_failed(t, w, r);
	return w == 0 ? TRANSPORT_ERROR : w;
}

static int tls_shutdown_wr(struct transport *t)
{
	/* close_notify, best effort: a full socket buffer loses it */
	ERR_clear_error();
	(void)SSL_shutdown(t->t_ssl);
	ERR_clear_error();
	return shutdown(t->t_fd, SHUT_WR);
}

static void tls_close(struct transport *t)
{
	SSL_free(t->t_ssl);
	t->t_ssl = NULL;
	close(t->t_fd);
}

/*
 * Plaintext decrypted and not read yet.  Bytes read ahead but not yet
 * decrypted (SSL_has_pending) do not count: the read flag is cleared only
 * when SSL_read says WANT_READ, which it says only when what it holds is
 * not a whole record -- more must come from the socket, with an edge.
 * Counting them would queue such a connection for a pass that finds
 * nothing, turn after turn.
 */
static size_t tls_pending(const struct transport *t)
{
	int n = SSL_pending(t->t_ssl);

	return n > 0 ? (size_t)n : 0;
}

const struct transport_ops transport_tls = {
	.name = "tls",
	.handshake = tls_handshake,
	.recv = tls_recv,
	.sendv = tls_sendv,
	.shutdown_wr = tls_shutdown_wr,
	.close = tls_close,
	.pending = tls_pending,
	.splice_in = NULL,  /* kernel TLS would splice; user-space TLS cannot */
	.splice_out = NULL,
};

void transport_init_tls(struct transport *t, int fd, SSL *ssl)
{
	*t = (struct transport){.t_ops = &transport_tls, .t_fd = fd, .t_ssl = ssl};
	/*
	 * A peer that closes without close_notify ends the stream like a FIN:
	 * HTTP framing, not TLS, says whether the message was complete.
	 */
	SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
				  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				  SSL_MODE_RELEASE_BUFFERS);
}

void transport_downgrade(struct transport *t)
{
	SSL_free(t->t_ssl);
	t->t_ssl = NULL;
	t->t_ops = &transport_plain;
}
