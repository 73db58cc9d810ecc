/*
 * tls.h: OpenSSL contexts for TLS termination (listeners) and TLS to
 * servers (backends), and the session-ticket keys every worker shares.
 *
 * The master builds every context when it loads a configuration, before
 * it forks: private keys are read there (they may be 0600 root) and the
 * workers inherit the contexts in memory, never opening a key file.  The
 * transport (worker/transport.h) makes one SSL per connection from them.
 */
#ifndef PORTCULLIS_TLS_H
#define PORTCULLIS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "config/config.h"

struct shm_zone;

/*
 * Build the contexts of every listener and backend of cfg that has tls:
 * (cfg_tls.ctx, cfg_upstream_tls.ctx) and set cfg->tls_free.  Checks that
 * each key matches its certificate, that each chain is in order (every
 * certificate issued by the next), and that no certificate has expired;
 * one that expires within 30 days is logged as a warning.  Problems go to
 * errs as "FILE:LINE:COL: message" at the tls: key or certificate item.
 * 0, or -1 when anything failed (the caller frees cfg as usual).
 */
int tls_config_load(struct config *cfg, struct config_errors *errs);

/*
 * A new server-side SSL for an accepted connection on fd, in accept
 * state, with SNI, ALPN, tickets and client verification set up from the
 * listener's context.  NULL when OpenSSL fails (logged).
 */
SSL *tls_server_ssl(struct tls_server *ts, int fd);

/*
 * A new client-side SSL to a server on fd, in connect state: SNI and
 * host-name verification for host (the backend's sni, else the server's
 * host name), verification per the backend's settings, and the last
 * session of that server (*session, kept by the caller per server) offered
 * for resumption.  NULL when OpenSSL fails (logged).
 */
SSL *tls_client_ssl(struct tls_client *tc, int fd, const char *host,
		    SSL_SESSION *session);

/*
 * After a client handshake: keep its session for the next connection to
 * the same server (replacing and freeing *slot's).
 */
void tls_client_keep_session(SSL *ssl, SSL_SESSION **slot);

/*
 * The names (subjectAltName DNS entries, else the CN) and notAfter of each
 * certificate of a listener, for `portcullis status`: writes one line per
 * certificate "  cert PATH: names a.example, *.b.example; expires
 * 2027-01-01 (in 30 days)" into out.  Returns the length written.
 */
size_t tls_server_describe(const struct tls_server *ts, char *out, size_t cap);

/*
 * Session-ticket keys, shared by every worker of every generation through
 * the zone (common/shm.h: z_tickets) and kept across reloads and binary
 * upgrades.  The master calls this at start and then at least once a
 * minute: when the current key is older than rotation_ms (or there is
 * none), a new key becomes current and the previous ones are kept for
 * decryption only.  Workers read the keys under a seqlock.
 */
void tls_tickets_rotate(struct shm_zone *z, uint64_t now_wall_ms,
			uint32_t rotation_ms);

/* The smallest ticket_rotation of cfg's TLS listeners; 0 when none. */
uint32_t tls_ticket_rotation(const struct config *cfg);

/*
 * After a handshake, for the access log and the headers to servers:
 * the verified client certificate's subject (RFC 2253) and SHA-256
 * fingerprint (64 hex digits).  false when no certificate was verified.
 */
bool tls_peer_subject(SSL *ssl, char *out, size_t cap);
bool tls_peer_fingerprint(SSL *ssl, char out[65]);

#endif
