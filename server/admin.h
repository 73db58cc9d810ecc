/*
 * admin.h: the admin endpoint's HTTP server, in the master (admin: bind,
 * allow; portcullis.yaml(5)): read-only GET/HEAD of /metrics, /status and
 * /status.json (server/metrics.h renders them).
 *
 * Why the master: it is never on the request path, so a scrape cannot
 * delay proxied traffic; it sees every generation's workers (their
 * counters are summed from the zone, common/metrics.h); and it lives
 * across reloads and worker restarts.  Its loop is ppoll(), like the
 * control socket's (control.h): admin_pollfds() adds the listening socket
 * and the connections, admin_dispatch() handles what they report, and
 * nothing ever blocks:
 *
 *   - at most ADMIN_MAX_CONNS connections; more wait in the backlog;
 *   - a client not in allow is closed at accept (and counted in the log,
 *     once per interval);
 *   - the request line and headers, ADMIN_REQ_MAX bytes at most, must
 *     arrive within ADMIN_READ_TIMEOUT_MS (else 400 / closed);
 *   - one request per connection: the answer is rendered into one
 *     bounded buffer, written without blocking within
 *     ADMIN_WRITE_TIMEOUT_MS, and the connection closed ("Connection:
 *     close").
 */
#ifndef PORTCULLIS_ADMIN_H
#define PORTCULLIS_ADMIN_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "server/outbuf.h"

#define ADMIN_MAX_CONNS 16
#define ADMIN_REQ_MAX 8192
#define ADMIN_READ_TIMEOUT_MS 1000
#define ADMIN_WRITE_TIMEOUT_MS 5000
#define ADMIN_OUT_MAX (8u << 20)
#define ADMIN_REFUSAL_LOG_MS 10000
#define ADMIN_RETRY_MS 1000     /* bind again after a failure */

struct iptree;

struct admin_conn {
	int ac_fd;
	uint64_t ac_deadline;       /* monotonic ms */
	bool ac_is_writing;         /* the answer is in ac_out */
	size_t ac_inlen;
	char ac_in[ADMIN_REQ_MAX];
	struct outbuf ac_out;
	size_t ac_outoff;           /* bytes of ac_out sent */
};

/*
 * Render the answer to GET (or HEAD) of path into body; returns the HTTP
 * status (200, 404, ...) and sets *ctype.  Borrowed data: the master.
 */
typedef unsigned (*admin_render_fn)(void *data, const char *path,
				    struct outbuf *body, const char **ctype);

struct admin {
	int ad_fd;                  /* listening socket, -1: none */
	char *ad_bind;              /* owned: the bind it is bound to */
	char *ad_want;              /* owned: the bind asked for, NULL: off */
	struct sockaddr_storage ad_sa; /* ad_want, resolved */
	socklen_t ad_salen;
	uint64_t ad_retry_at;       /* next bind attempt, 0: none due */
	bool ad_bind_logged;        /* the last bind failure was logged */
	uint64_t ad_quiet_until;    /* EADDRINUSE before then is expected (a
				       binary upgrade's old master has it):
				       logged at info level only */
	int ad_listen_idx;          /* pollfd of the socket this turn, or -1 */
	int ad_idx[ADMIN_MAX_CONNS]; /* pollfd of each connection, or -1 */
	struct admin_conn *ad_conns[ADMIN_MAX_CONNS]; /* owned, NULL: free */
	uint64_t ad_refused;        /* refusals not yet logged */
	uint64_t ad_refusal_log_at;
	admin_render_fn ad_render;
	void *ad_data;
};

/* Set up ad: off, nothing bound. */
void admin_init(struct admin *ad, admin_render_fn render, void *data);

/*
 * Serve on bind (host:port as in the config; NULL: off) from now on.  The
 * socket is kept when bind is unchanged, else closed and bound anew; a
 * failure is logged and retried every ADMIN_RETRY_MS (the address may be
 * freed later; an old master that did not hand it over lets go once the
 * new one serves).  sa/salen: bind resolved.
 */
void admin_configure(struct admin *ad, const char *bind,
		     const struct sockaddr_storage *sa, socklen_t salen,
		     uint64_t now);

/* Add the pollfds of the socket and the connections; returns how many. */
size_t admin_pollfds(struct admin *ad, struct pollfd *pfd, size_t max);

/*
 * Handle what the pollfds report.  allow: who may connect (the serving
 * config's admin.allow; NULL: nobody).
 */
void admin_dispatch(struct admin *ad, const struct pollfd *pfd,
		    const struct iptree *allow);

/* Deadlines and bind retries.  Returns ms to the next, or -1. */
int64_t admin_timers(struct admin *ad, uint64_t now);

/* Close the socket and every connection (stop, or handed over). */
void admin_close(struct admin *ad);

/*
 * Binary upgrade.  admin_inherit(), in the child about to exec the new
 * binary: the listening socket stays open across exec and its number and
 * bind go in PORTCULLIS_ADMIN_FD.  admin_adopt(), in the new master at
 * start: serve on that socket; admin_configure() with the same bind then
 * keeps it, so the endpoint has no gap.  Both ignore a missing socket.
 */
void admin_inherit(const struct admin *ad);
void admin_adopt(struct admin *ad);

/* In a forked child: close every descriptor of ad, touch nothing else. */
void admin_close_fds(const struct admin *ad);

/*
 * Parse a request head (NUL-terminated, complete): the method and the
 * path without query into the buffers.  0, or the HTTP status to answer:
 * 400 (malformed), 405 (not GET/HEAD), 505 (not HTTP/1.x).  Exposed for
 * the unit tests.
 */
unsigned admin_parse_request(const char *head, bool *is_head, char *path,
			     size_t pathcap);

#endif
