/*
 * transport.h: the bytes of one connection end, plain or TLS.
 *
 * Every read, write, splice, half-close and close on a connection's
 * descriptor -- client, server, tunnel or health check -- goes through a
 * transport (HAProxy's xprt_ops, redis's ConnectionType), so that the
 * proxy's state machine does not know whether TLS is under it.
 *
 * The calls never block.  Each takes the end's readiness flags (struct
 * transport_ready) and clears the one the transport is waiting for when
 * it would block: for TLS, a read may wait for the socket to be writable
 * (and a write for it to be readable), so it is not always the flag of
 * the call's own direction.  With edge-triggered epoll a flag is cleared
 * only when the kernel will announce the next change; a TLS read that
 * returns a record leaves the read flag set, since more records may sit
 * in the socket and bring no new edge.
 *
 * Room is left for kernel TLS (no `tls` ULP on these machines yet): an
 * implementation whose records the kernel frames would offer splice_in
 * and splice_out.
 */
#ifndef PORTCULLIS_TRANSPORT_H
#define PORTCULLIS_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <openssl/ssl.h>

struct transport;

/* Readiness of one end, as the epoll edges said (see above). */
struct transport_ready {
	bool rd;   /* a read may find bytes (or the FIN) */
	bool wr;   /* a write may find room */
	bool hup;  /* FIN or error seen: read to the end, no edge will come */
};

/* Results of recv/send/splice besides a byte count. */
#define TRANSPORT_AGAIN (-1)  /* would block: a ready flag was cleared */
#define TRANSPORT_ERROR (-2)  /* the connection is broken */

/* Results of handshake. */
enum transport_hs {
	TRANSPORT_HS_DONE,     /* established (plain: at once) */
	TRANSPORT_HS_AGAIN,    /* waiting: a ready flag was cleared */
	TRANSPORT_HS_FAILED,   /* give up: the reason is in t_error */
	TRANSPORT_HS_PLAIN,    /* plain HTTP sent to a TLS port */
};

struct transport_ops {
	const char *name;
	enum transport_hs (*handshake)(struct transport *t,
				       struct transport_ready *r);
	/* >0 bytes, 0 end of stream, TRANSPORT_AGAIN, TRANSPORT_ERROR */
	ssize_t (*recv)(struct transport *t, void *buf, size_t len,
			struct transport_ready *r);
	/* bytes written (>0), TRANSPORT_AGAIN, TRANSPORT_ERROR */
	ssize_t (*sendv)(struct transport *t, const struct iovec *iov, int n,
			 struct transport_ready *r);
	/* our end of the stream: TLS close_notify, then the TCP FIN; 0 or -1 */
	int (*shutdown_wr)(struct transport *t);
	/* free what the transport holds and close the descriptor */
	void (*close)(struct transport *t);
	/* plaintext already decrypted and waiting to be read; NULL: never */
	size_t (*pending)(const struct transport *t);
	/*
	 * socket -> pipe and pipe -> socket without a copy; NULL: not
	 * possible (TLS in user space), use the buffered path.  These leave
	 * the ready flags alone: on TRANSPORT_AGAIN either the socket or the
	 * pipe may be the side that would block, and only the caller, who
	 * knows what is in the pipe, can tell which.
	 */
	ssize_t (*splice_in)(struct transport *t, int pipe_wr, size_t len);
	ssize_t (*splice_out)(struct transport *t, int pipe_rd, size_t len);
};

struct transport {
	const struct transport_ops *t_ops;
	int t_fd;                 /* -1 once closed */
	SSL *t_ssl;               /* TLS only */
	bool t_wr_shut;           /* shutdown_wr done */
	const char *t_error;      /* the last failure, for the log; static */
};

extern const struct transport_ops transport_plain;
extern const struct transport_ops transport_tls;

/*
 * Look at the bytes waiting on a plain socket without taking them (a
 * PROXY protocol header is read this way, so that nothing after it is
 * taken from TLS).  >0 bytes, 0 end of stream, TRANSPORT_AGAIN (r->rd
 * cleared), TRANSPORT_ERROR.
 */
ssize_t transport_peek(struct transport *t, void *buf, size_t len,
		       struct transport_ready *r);

/*
 * Write buf whole on t's socket, below TLS if t has it: a PROXY header
 * goes before the handshake.  For a few bytes on a fresh connection,
 * whose socket buffer takes them at once.  0, or -1 (short or failed).
 */
int transport_send_raw(struct transport *t, const void *buf, size_t len);

/*
 * After shutdown_wr: read and drop whatever the peer still sends, below
 * TLS (nothing of it is for us, and a record OpenSSL cannot decrypt
 * after our close_notify must not make us close with bytes unread, which
 * would reset the connection and may destroy the response the peer has
 * not read yet).  Same results as recv.
 */
ssize_t transport_drain(struct transport *t, struct transport_ready *r);

/* A plain transport over fd. */
void transport_init_plain(struct transport *t, int fd);

/* A TLS transport over fd with ssl (owned from now on). */
void transport_init_tls(struct transport *t, int fd, SSL *ssl);

/* Give up TLS and go on in plain text (an HTTP request on a TLS port). */
void transport_downgrade(struct transport *t);

static inline bool transport_is_open(const struct transport *t)
{
	return t->t_fd >= 0;
}

static inline bool transport_is_tls(const struct transport *t)
{
	return t->t_ssl != NULL;
}

static inline enum transport_hs transport_handshake(struct transport *t,
						    struct transport_ready *r)
{
	return t->t_ops->handshake(t, r);
}

static inline ssize_t transport_recv(struct transport *t, void *buf,
				     size_t len, struct transport_ready *r)
{
	return t->t_ops->recv(t, buf, len, r);
}

static inline ssize_t transport_sendv(struct transport *t,
				      const struct iovec *iov, int n,
				      struct transport_ready *r)
{
	return t->t_ops->sendv(t, iov, n, r);
}

static inline int transport_shutdown_wr(struct transport *t)
{
	t->t_wr_shut = true;
	return t->t_ops->shutdown_wr(t);
}

static inline void transport_close(struct transport *t)
{
	if (t->t_fd >= 0)
		t->t_ops->close(t);
	t->t_fd = -1;
}

static inline size_t transport_pending(const struct transport *t)
{
	return t->t_ops->pending ? t->t_ops->pending(t) : 0;
}

static inline bool transport_can_splice(const struct transport *t)
{
	return t->t_ops->splice_in != NULL;
}

static inline ssize_t transport_splice_in(struct transport *t, int pipe_wr,
					  size_t len)
{
	return t->t_ops->splice_in(t, pipe_wr, len);
}

static inline ssize_t transport_splice_out(struct transport *t, int pipe_rd,
					   size_t len)
{
	return t->t_ops->splice_out(t, pipe_rd, len);
}

#endif
