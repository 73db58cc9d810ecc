/*
 * proxy.h: client connections and the upstream connections that serve
 * them: HTTP/1.1 request/response proxying with streamed bodies, and
 * plain TCP tunnelling for `protocol: tcp` listeners.
 *
 * Sockets are registered edge-triggered once; each side keeps "ready"
 * flags that an event sets and EAGAIN clears, and proxy_pump() moves
 * bytes until nothing more can move.  Objects closed during a loop turn
 * are freed by proxy_reap() at its end.
 */
#ifndef PORTCULLIS_PROXY_H
#define PORTCULLIS_PROXY_H

#include <sys/socket.h>

#include "worker/worker.h"

/*
 * Give w its connection table (w->w_proxy), freed by proxy_cleanup().
 * 0, or -1 when out of memory.
 */
int proxy_init(struct worker *w);

/* Client connections open now (worker_connections, drain, status). */
size_t proxy_count(const struct worker *w);

/* Take ownership of an accepted client socket fd. */
void proxy_accept(struct worker *w, struct worker_listener *wl, int fd,
		  const struct sockaddr_storage *peer);

/*
 * Graceful stop: idle keep-alive connections get a short grace for one
 * more request, in-flight responses carry Connection: close.
 */
void proxy_drain(struct worker *w);

/* Fast stop: close every connection now. */
void proxy_close_all(struct worker *w);

/* Close the empty splice pipes kept for reuse (out of descriptors). */
void proxy_drop_pipes(void);

/* Free the objects closed during this loop turn (loop lp_after hook). */
void proxy_reap(struct worker *w);

/*
 * Serve the connections whose TLS transport holds decrypted bytes that no
 * epoll edge will announce; after each loop turn, before proxy_reap.
 */
void proxy_run_pending(struct worker *w);

/* Close everything, free cached structures, idle upstream connections
 * and the table itself at exit. */
void proxy_cleanup(struct worker *w);

#endif
