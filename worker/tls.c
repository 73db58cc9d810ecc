#include "worker/tls.h"
SSL *tls_server_ssl(struct tls_server *ts, int fd) { return NULL; }
int tls_config_load(struct config *cfg, struct config_errors *errs) { return 0; }
void tls_tickets_rotate(struct shm_zone *z, uint64_t now, uint32_t r) {}
uint32_t tls_ticket_rotation(const struct config *cfg) { return 0; }
SSL *tls_client_ssl(struct tls_client *tc, int fd, const char *host, SSL_SESSION *session) { return NULL; }
void tls_client_keep_session(SSL *ssl, SSL_SESSION **slot) {}
bool tls_peer_subject(SSL *ssl, char *out, size_t cap) { return false; }
bool tls_peer_fingerprint(SSL *ssl, char out[65]) { return false; }
size_t tls_server_describe(const struct tls_server *ts, char *out, size_t cap) { if (cap) out[0] = 0; return 0; }
