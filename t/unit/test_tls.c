/*
 * test_tls.c: the OpenSSL contexts of listeners and backends
 * (worker/tls.c).  Certificates are made at test time with the OpenSSL
 * API in a temporary directory; handshakes run in memory over a
 * non-blocking socketpair, stepping both ends until both are done.
 */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/log.h"
#include "common/shm.h"
#include "config/config.h"
#include "worker/tls.h"

#define CFG_PATH "/etc/portcullis/t.yaml"
#define DAY	 86400L

static char dir[] = "/tmp/test_tls.XXXXXX";

/* A path in the test directory (rotating static buffers). */
static const char *path(const char *name)
{
	static char bufs[16][512];
	static int next;
	char *b = bufs[next++ % 16];

	snprintf(b, sizeof(bufs[0]), "%s/%s", dir, name);
	return b;
}

/* --- making certificates -------------------------------------------------- */

/* Outside any test (before the fork): fail loudly without check. */
#define MUST(x)                                                                \
	do {                                                                   \
		if (!(x)) {                                                    \
			fprintf(stderr, "%s:%d: %s failed\n", __FILE__,        \
				__LINE__, #x);                                 \
			ERR_print_errors_fp(stderr);                           \
			exit(1);                                               \
		}                                                              \
	} while (0)

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	MUST(ext != NULL);
	MUST(X509_add_ext(x, ext, -1) == 1);
	X509_EXTENSION_free(ext);
}

/*
 * A certificate for key: subject CN (and O), SANs ("DNS:a,DNS:b" or
 * NULL), valid from..to days from now, issued by issuer/ikey (NULL:
 * self-signed).
 */
static X509 *mkcert(EVP_PKEY *key, const char *cn, const char *o,
		    const char *sans, X509 *issuer, EVP_PKEY *ikey, long from,
		    long to, int is_ca)
{
	X509 *x = X509_new();
	X509_NAME *nm = X509_NAME_new();
	static long serial = 1;

	MUST(x != NULL);
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), from * DAY);
	X509_gmtime_adj(X509_getm_notAfter(x), to * DAY);
	X509_set_pubkey(x, key);
	if (o)
		X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC,
					   (const unsigned char *)o, -1, -1, 0);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, nm);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : nm);
	X509_NAME_free(nm);
	add_ext(x, issuer, NID_basic_constraints,
		is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	add_ext(x, issuer, NID_subject_key_identifier, "hash");
	if (issuer)
		add_ext(x, issuer, NID_authority_key_identifier,
			"keyid:always");
	if (is_ca)
		add_ext(x, issuer, NID_key_usage,
			"critical,keyCertSign,cRLSign");
	if (sans)
		add_ext(x, issuer, NID_subject_alt_name, sans);
	MUST(X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0);
	return x;
}

/* Write the certificates (NULL-terminated) as one PEM file. */
static void write_certs(const char *name, ...)
{
	FILE *f = fopen(path(name), "w");
	va_list ap;
	X509 *x;

	MUST(f != NULL);
	va_start(ap, name);
	while ((x = va_arg(ap, X509 *)) != NULL)
		MUST(PEM_write_X509(f, x) == 1);
	va_end(ap);
	fclose(f);
}

static void write_key(const char *name, EVP_PKEY *key)
{
	FILE *f = fopen(path(name), "w");

	MUST(f != NULL);
	MUST(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1);
	fclose(f);
}

static void write_file(const char *name, const char *text)
{
	FILE *f = fopen(path(name), "w");

	MUST(f != NULL);
	fputs(text, f);
	fclose(f);
}

/* Runs once, in the parent, before the tests fork. */
static void make_material(void)
{
	EVP_PKEY *ca_k, *in_k, *ec_k, *rsa_k, *b_k, *old_k, *soon_k, *i_k,
		*cl_k, *self_k;
	X509 *ca, *in, *a_ec, *a_rsa, *b, *old, *soon, *i, *cl, *self, *b2;

	MUST(mkdtemp(dir) != NULL);
	ca_k = EVP_EC_gen("P-256");
	in_k = EVP_EC_gen("P-256");
	ec_k = EVP_EC_gen("P-256");
	rsa_k = EVP_RSA_gen(2048);
	b_k = EVP_EC_gen("P-256");
	old_k = EVP_EC_gen("P-256");
	soon_k = EVP_EC_gen("P-256");
	i_k = EVP_EC_gen("P-256");
	cl_k = EVP_EC_gen("P-256");
	self_k = EVP_EC_gen("P-256");
	MUST(rsa_k != NULL);

	ca = mkcert(ca_k, "Test CA", "Example", NULL, NULL, NULL, -1, 3650, 1);
	in = mkcert(in_k, "Test Intermediate", "Example", NULL, ca, ca_k, -1,
		    3650, 1);
	a_ec = mkcert(ec_k, "a.example.test", NULL,
		      "DNS:a.example.test,DNS:*.w.example.test", ca, ca_k, -1,
		      365, 0);
	a_rsa = mkcert(rsa_k, "a.example.test", NULL,
		       "DNS:*.w.example.test,DNS:A.example.test", ca, ca_k, -1,
		       365, 0);
	b = mkcert(b_k, "b.example.test", NULL, "DNS:b.example.test", ca, ca_k,
		   -1, 365, 0);
	b2 = mkcert(b_k, "b.example.test", "Second", "DNS:b.example.test", ca,
		    ca_k, -1, 365, 0);
	old = mkcert(old_k, "old.example.test", NULL, "DNS:old.example.test",
		     ca, ca_k, -30, -1, 0);
	soon = mkcert(soon_k, "soon.example.test", NULL,
		      "DNS:soon.example.test", ca, ca_k, -1, 10, 0);
	i = mkcert(i_k, "i.example.test", NULL, "DNS:i.example.test", in, in_k,
		   -1, 365, 0);
	cl = mkcert(cl_k, "client", "Example", NULL, ca, ca_k, -1, 365, 0);
	self = mkcert(self_k, "a.example.test", NULL, "DNS:a.example.test",
		      NULL, NULL, -1, 365, 0);

	write_certs("ca.pem", ca, NULL);
	write_certs("a_ec.pem", a_ec, ca, NULL);
	write_key("a_ec.key", ec_k);
	write_certs("a_rsa.pem", a_rsa, NULL);
	write_key("a_rsa.key", rsa_k);
	write_certs("b.pem", b, NULL);
	write_certs("b2.pem", b2, NULL);
	write_key("b.key", b_k);
	write_certs("old.pem", old, NULL);
	write_key("old.key", old_k);
	write_certs("soon.pem", soon, NULL);
	write_key("soon.key", soon_k);
	write_certs("chain_good.pem", i, in, ca, NULL);
	write_certs("chain_bad.pem", i, ca, in, NULL);
	write_key("i.key", i_k);
	write_certs("client.pem", cl, NULL);
	write_key("client.key", cl_k);
	write_certs("self.pem", self, NULL);
	write_key("self.key", self_k);
	write_file("garbage.pem", "this is not a certificate\n");

	EVP_PKEY *keys[] = {ca_k,  in_k,   ec_k, rsa_k, b_k,
			    old_k, soon_k, i_k,	 cl_k,	self_k};
	X509 *certs[] = {ca, in, a_ec, a_rsa, b, b2, old, soon, i, cl, self};
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		EVP_PKEY_free(keys[k]);
	for (size_t k = 0; k < sizeof(certs) / sizeof(certs[0]); k++)
		X509_free(certs[k]);
}

static void remove_material(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

/* --- hand-built configurations ---------------------------------------- */

static struct config *cfg_new(void)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	ck_assert_ptr_nonnull(cfg);
	cfg->path = strdup(CFG_PATH);
	return cfg;
}

/* A listener with tls: at line 10 col 5. */
static struct cfg_tls *cfg_listener(struct config *cfg, const char *name,
				    enum cfg_protocol proto)
{
	struct cfg_listener *l;
	struct cfg_tls *t = calloc(1, sizeof(*t));

	cfg->listeners =
		realloc(cfg->listeners, (cfg->nlisteners + 1) * sizeof(*l));
	l = &cfg->listeners[cfg->nlisteners++];
	memset(l, 0, sizeof(*l));
	l->name = strdup(name);
	l->protocol = proto;
	l->tls = t;
	t->line = 10;
	t->col = 5;
	t->min_version = 12;
	t->ticket_rotation_ms = 12 * 3600 * 1000;
	t->verify_depth = 4;
	return t;
}

/* A certificate item at line, col 11; names are files in the test dir. */
static void cfg_cert(struct cfg_tls *t, const char *cert, const char *key,
		     int line)
{
	struct cfg_tls_cert *c;

	t->certs = realloc(t->certs, (t->ncerts + 1) * sizeof(*c));
	c = &t->certs[t->ncerts++];
	c->cert = strdup(cert[0] == '/' ? cert : path(cert));
	c->key = strdup(key[0] == '/' ? key : path(key));
	c->line = line;
	c->col = 11;
}

/* A backend with tls: at line 40 col 5, verifying against ca (or NULL). */
static struct cfg_upstream_tls *cfg_backend(struct config *cfg, const char *ca)
{
	struct cfg_backend *be;
	struct cfg_upstream_tls *u = calloc(1, sizeof(*u));

	cfg->backends =
		realloc(cfg->backends, (cfg->nbackends + 1) * sizeof(*be));
	be = &cfg->backends[cfg->nbackends++];
	memset(be, 0, sizeof(*be));
	be->name = strdup("web");
	be->tls = u;
	u->line = 40;
	u->col = 5;
	u->verify = true;
	u->ca_file = ca ? strdup(ca[0] == '/' ? ca : path(ca)) : NULL;
	u->min_version = 12;
	return u;
}

/* Free what the tests built by hand (the parser's config_free may not
 * know cfg_tls yet), after the contexts through cfg->tls_free. */
static void cfg_done(struct config *cfg)
{
	size_t i, j;

	if (cfg->tls_free)
		cfg->tls_free(cfg);
	for (i = 0; i < cfg->nlisteners; i++) {
		struct cfg_tls *t = cfg->listeners[i].tls;

		ck_assert_ptr_null(t->ctx);
		for (j = 0; j < t->ncerts; j++) {
			free(t->certs[j].cert);
			free(t->certs[j].key);
		}
		free(t->certs);
		free(t->ciphers);
		free(t->client_ca);
		free(t);
		free(cfg->listeners[i].name);
	}
	for (i = 0; i < cfg->nbackends; i++) {
		struct cfg_upstream_tls *u = cfg->backends[i].tls;

		ck_assert_ptr_null(u->ctx);
		free(u->ca_file);
		free(u->cert);
		free(u->key);
		free(u);
		free(cfg->backends[i].name);
	}
	free(cfg->listeners);
	free(cfg->backends);
	free(cfg->path);
	free(cfg);
}

static void load_ok(struct config *cfg)
{
	struct config_errors errs = {0};

	if (tls_config_load(cfg, &errs) != 0) {
		for (size_t i = 0; i < errs.count && i < CONFIG_MAX_ERRORS; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		ck_abort_msg("tls_config_load failed");
	}
	ck_assert_uint_eq(errs.count, 0);
}

/* Load must fail with a message that starts with prefix and contains
 * what. */
static void load_fails(struct config *cfg, const char *prefix, const char *what)
{
	struct config_errors errs = {0};
	size_t i;
	int found = 0;

	ck_assert_int_eq(tls_config_load(cfg, &errs), -1);
	ck_assert_uint_ge(errs.count, 1);
	for (i = 0; i < errs.count && i < CONFIG_MAX_ERRORS; i++)
		if (strncmp(errs.msgs[i], prefix, strlen(prefix)) == 0 &&
		    strstr(errs.msgs[i], what))
			found = 1;
	if (!found)
		for (i = 0; i < errs.count && i < CONFIG_MAX_ERRORS; i++)
			fprintf(stderr, "got: %s\n", errs.msgs[i]);
	ck_assert_msg(found, "no error '%s...%s'", prefix, what);
	config_errors_clear(&errs);
}

/* --- handshakes in memory ---------------------------------------------- */

struct conn {
	int fd[2]; /* [0] client, [1] server */
	SSL *c, *s;
	int failed; /* 0, or the side that failed first: 1 client, 2 server */
	unsigned long err; /* its OpenSSL error */
};

static void conn_pair(struct conn *cn)
{
	memset(cn, 0, sizeof(*cn));
	ck_assert_int_eq(
		socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, cn->fd), 0);
}

/*
 * A clean close (close_notify sent) when both ends finished: SSL_free of
 * an SSL that did not shut down marks its session not resumable.
 */
static void conn_close(struct conn *cn)
{
	if (cn->c && SSL_is_init_finished(cn->c))
		(void)SSL_shutdown(cn->c);
	if (cn->s && SSL_is_init_finished(cn->s))
		(void)SSL_shutdown(cn->s);
	ERR_clear_error();
	SSL_free(cn->c);
	SSL_free(cn->s);
	close(cn->fd[0]);
	close(cn->fd[1]);
	memset(cn, 0, sizeof(*cn));
}

/* An abortive close: no close_notify from either end. */
static void conn_abort(struct conn *cn)
{
	SSL_free(cn->c);
	SSL_free(cn->s);
	close(cn->fd[0]);
	close(cn->fd[1]);
	memset(cn, 0, sizeof(*cn));
}

/* One step of one side: 1 done, 0 wants more, -1 failed. */
static int step(struct conn *cn, SSL *ssl, int side)
{
	int rc = SSL_do_handshake(ssl), e;

	if (rc == 1)
		return 1;
	e = SSL_get_error(ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	if (!cn->failed) {
		cn->failed = side;
		cn->err = ERR_peek_error();
	}
	ERR_clear_error();
	return -1;
}

/* Step both ends until both are done (0) or one fails (-1). */
static int drive(struct conn *cn)
{
	int cdone = 0, sdone = 0, i, r;

	for (i = 0; i < 200 && !(cdone && sdone); i++) {
		if (!cdone) {
			r = step(cn, cn->c, 1);
			if (r < 0)
				return -1;
			cdone = r;
		}
		if (!sdone) {
			r = step(cn, cn->s, 2);
			if (r < 0)
				return -1;
			sdone = r;
		}
	}
	return cdone && sdone ? 0 : -1;
}

/* A handshake between a client of cctx (SNI sni) and the listener. */
static int shake(struct conn *cn, SSL_CTX *cctx, struct tls_server *ts,
		 const char *sni, SSL_SESSION *sess)
{
	conn_pair(cn);
	cn->c = SSL_new(cctx);
	ck_assert_ptr_nonnull(cn->c);
	SSL_set_fd(cn->c, cn->fd[0]);
	SSL_set_connect_state(cn->c);
	if (sni)
		SSL_set_tlsext_host_name(cn->c, sni);
	if (sess)
		ck_assert_int_eq(SSL_set_session(cn->c, sess), 1);
	cn->s = tls_server_ssl(ts, cn->fd[1]);
	ck_assert_ptr_nonnull(cn->s);
	return drive(cn);
}

/*
 * A test client: versions (0 = any), signature algorithms and TLS 1.2
 * ciphers (NULL = OpenSSL's defaults), no verification.
 */
static SSL_CTX *client_ctx(int minv, int maxv, const char *sigalgs,
			   const char *ciphers)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());

	ck_assert_ptr_nonnull(c);
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	ck_assert_int_eq(SSL_CTX_set_min_proto_version(c, minv), 1);
	ck_assert_int_eq(SSL_CTX_set_max_proto_version(c, maxv), 1);
	if (sigalgs)
		ck_assert_int_eq(SSL_CTX_set1_sigalgs_list(c, sigalgs), 1);
	if (ciphers)
		ck_assert_int_eq(SSL_CTX_set_cipher_list(c, ciphers), 1);
	return c;
}

/* The CN of the certificate the server showed the client. */
static const char *served_cn(SSL *c)
{
	static char cn[256];
	X509 *x = SSL_get0_peer_certificate(c);

	ck_assert_ptr_nonnull(x);
	cn[0] = '\0';
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
				  sizeof(cn));
	return cn;
}

static int served_type(SSL *c)
{
	X509 *x = SSL_get0_peer_certificate(c);

	ck_assert_ptr_nonnull(x);
	return EVP_PKEY_get_base_id(X509_get0_pubkey(x));
}

/*
 * The client's session once the server's tickets arrived: TLS 1.3 sends
 * them after the handshake, so read once (nothing else will come).
 */
static SSL_SESSION *client_session(SSL *c)
{
	char b;

	ck_assert_int_le(SSL_read(c, &b, 1), 0);
	ERR_clear_error();
	return SSL_get1_session(c);
}

/* The listener of most tests: b (default), then a as ECDSA and RSA. */
static struct config *cfg_sni(enum cfg_protocol proto)
{
	struct config *cfg = cfg_new();
	struct cfg_tls *t = cfg_listener(cfg, "https", proto);

	cfg_cert(t, "b.pem", "b.key", 11);
	cfg_cert(t, "a_ec.pem", "a_ec.key", 12);
	cfg_cert(t, "a_rsa.pem", "a_rsa.key", 13);
	load_ok(cfg);
	return cfg;
}

static struct tls_server *ts_of(struct config *cfg, size_t i)
{
	ck_assert_ptr_nonnull(cfg->listeners[i].tls->ctx);
	return cfg->listeners[i].tls->ctx;
}

static struct shm_zone *zone_new(void)
{
	struct shm_zone *z = calloc(1, sizeof(*z));

	ck_assert_ptr_nonnull(z);
	shm_zone_set(z);
	return z;
}

static void zone_free(struct shm_zone *z)
{
	shm_zone_set(NULL);
	free(z);
}

/* --- loading: located errors ------------------------------------------- */

START_TEST(test_load_key_mismatch)
{
	struct config *cfg = cfg_new();
	struct cfg_tls *t = cfg_listener(cfg, "https", CFG_PROTO_HTTP);

	cfg_cert(t, "a_ec.pem", "b.key", 12);
	load_fails(cfg, CFG_PATH ":12:11: key ",
		   "does not match its certificate");
	cfg_done(cfg);
}
END_TEST

START_TEST(test_load_expired)
{
	struct config *cfg = cfg_new();
	struct cfg_tls *t = cfg_listener(cfg, "https", CFG_PROTO_HTTP);

	cfg_cert(t, "b.pem", "b.key", 12);
	cfg_cert(t, "old.pem", "old.key", 13);
	load_fails(cfg, CFG_PATH ":13:11: certificate ",
		   "old.pem expired on 20");
	cfg_done(cfg);
}
END_TEST

START_TEST(test_load_chain_order)
{
	struct config *cfg = cfg_new();
	struct cfg_tls *t = cfg_listener(cfg, "https", CFG_PROTO_HTTP);

	cfg_cert(t, "chain_bad.pem", "i.key", 14);
	load_fails(cfg, CFG_PATH ":14:11: certificate ",
		   "chain out of order: certificate 1 is not issued by "
		   "certificate 2");
	cfg_done(cfg);

	/* the same certificates in order load */
	cfg = cfg_new();
	t = cfg_listener(cfg, "https", CFG_PROTO_HTTP);
	cfg_cert(t, "chain_good.pem", "i.key", 14);
	load_ok(cfg);
	cfg_done(cfg);
}
END_TEST

START_TEST(test_load_unreadable)
{
	struct config *cfg = cfg_new();
	struct cfg_tls *t = cfg_listener(cfg, "https", CFG_PROTO_HTTP);

	cfg_cert(t, "missing.pem", "b.key", 15);
	cfg_cert(t, "garbage.pem", "b.key", 16);
	cfg_cert(t, "b.pem", "missing.key", 17);
	load_fails(cfg, CFG_PATH ":15:11: cannot read certificate ",
		   "missing.pem: No such file or directory");
	cfg_done(cfg);

	cfg = cfg_new();
	t = cfg_listener(cfg, "https", CFG_PROTO_HTTP);
	cfg_cert(t, "garbage.pem", "b.key", 16);
	load_fails(cfg, CFG_PATH ":16:11: certificate ",
		   "garbage.pem: not a PEM certificate");
	cfg_done(cfg);

	cfg = cfg_new();
	t = cfg_listener(cfg, "https", CFG_PROTO_HTTP);
	cfg_cert(t, "b.pem", "missing.key", 17);
	load_fails(cfg, CFG_PATH ":17:11: cannot read key ",
		   "missing.key: No such file or directory");
	cfg_done(cfg);
}
END_TEST

START_TEST(test_load_client_ca_and_ciphers)
{
	struct config *cfg = cfg_new();
	struct cfg_tls *t = cfg_listener(cfg, "https", CFG_PROTO_HTTP);

	cfg_cert(t, "b.pem", "b.key", 11);
	t->client_ca = strdup(path("missing-ca.pem"));
	load_fails(cfg, CFG_PATH ":10:5: cannot read client_ca ",
		   "No such file or directory");
	cfg_done(cfg);

	cfg = cfg_new();
	t = cfg_listener(cfg, "https", CFG_PROTO_HTTP);
	cfg_cert(t, "b.pem", "b.key", 11);
	t->ciphers = strdup("NO-SUCH-CIPHER");
	load_fails(cfg, CFG_PATH ":10:5: ciphers 'NO-SUCH-CIPHER'",
		   "match no TLS 1.2 cipher");
	cfg_done(cfg);
}
END_TEST

/* Two certificates that could never both be served are refused. */
START_TEST(test_load_shadowed_cert)
{
	struct config *cfg = cfg_new();
	struct cfg_tls *t = cfg_listener(cfg, "https", CFG_PROTO_HTTP);

	cfg_cert(t, "b.pem", "b.key", 11);
	cfg_cert(t, "b2.pem", "b.key", 12);
	load_fails(cfg, CFG_PATH ":12:11: certificate ",
		   "same names and key type");
	cfg_done(cfg);
}
END_TEST

/* Every bad listener and backend is reported, not just the first. */
START_TEST(test_load_reports_all)
{
	struct config *cfg = cfg_new();
	struct config_errors errs = {0};
	struct cfg_tls *t = cfg_listener(cfg, "one", CFG_PROTO_HTTP);
	struct cfg_upstream_tls *u;

	cfg_cert(t, "old.pem", "old.key", 11);
	t = cfg_listener(cfg, "two", CFG_PROTO_HTTP);
	cfg_cert(t, "b.pem", "b.key", 21);
	t = cfg_listener(cfg, "three", CFG_PROTO_HTTP);
	cfg_cert(t, "a_ec.pem", "b.key", 31);
	u = cfg_backend(cfg, "missing-ca.pem");
	ck_assert_int_eq(tls_config_load(cfg, &errs), -1);
	ck_assert_uint_eq(errs.count, 3);
	ck_assert_ptr_null(cfg->listeners[0].tls->ctx);
	ck_assert_ptr_nonnull(cfg->listeners[1].tls->ctx);
	ck_assert_ptr_null(cfg->listeners[2].tls->ctx);
	ck_assert_ptr_null(u->ctx);
	ck_assert(strstr(errs.msgs[2], CFG_PATH ":40:5: cannot read ca_file "));
	config_errors_clear(&errs);
	cfg_done(cfg);
}
END_TEST

/* A certificate expiring within 30 days loads, with a warning logged. */
START_TEST(test_load_expiring_warns)
{
	struct config *cfg = cfg_new();
	struct cfg_tls *t = cfg_listener(cfg, "https", CFG_PROTO_HTTP);
	char err[256], buf[4096];
	const char *logf = path("warn.log");
	FILE *f;
	size_t n;

	ck_assert_int_eq(log_open(logf, LOG_LVL_INFO, (uid_t)-1, (gid_t)-1, err,
				  sizeof(err)),
			 0);
	cfg_cert(t, "soon.pem", "soon.key", 18);
	load_ok(cfg);
	f = fopen(logf, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	ck_assert_ptr_nonnull(strstr(buf, "[warn]"));
	ck_assert_ptr_nonnull(strstr(buf, CFG_PATH ":18:11: certificate "));
	ck_assert_ptr_nonnull(strstr(buf, "soon.pem expires on "));
	/* 10 days from the making, less the seconds since */
	ck_assert(strstr(buf, "(in 9 days)") || strstr(buf, "(in 10 days)"));
	cfg_done(cfg);
}
END_TEST

START_TEST(test_describe)
{
	struct config *cfg = cfg_sni(CFG_PROTO_HTTP);
	char out[2048], want[600], small[40];
	size_t n;

	n = tls_server_describe(ts_of(cfg, 0), out, sizeof(out));
	ck_assert_uint_eq(n, strlen(out));
	snprintf(want, sizeof(want),
		 "  cert %s: names b.example.test; expires ", path("b.pem"));
	ck_assert_ptr_eq(strstr(out, want), out);
	snprintf(want, sizeof(want),
		 "  cert %s: names a.example.test, *.w.example.test; expires ",
		 path("a_ec.pem"));
	ck_assert_ptr_nonnull(strstr(out, want));
	ck_assert_ptr_nonnull(strstr(out, " days)\n"));
	ck_assert(strstr(out, "(in 364 days)\n") ||
		  strstr(out, "(in 365 days)\n"));
	/* three lines */
	ck_assert_ptr_nonnull(strstr(out, "a_rsa.pem"));
	ck_assert_int_eq(out[n - 1], '\n');
	/* a small buffer is cut, terminated */
	n = tls_server_describe(ts_of(cfg, 0), small, sizeof(small));
	ck_assert_uint_eq(n, sizeof(small) - 1);
	ck_assert_uint_eq(strlen(small), n);
	cfg_done(cfg);
}
END_TEST

/* --- SNI, key types, ALPN, versions, ciphers --------------------------------
 */

START_TEST(test_sni_selects)
{
	struct config *cfg = cfg_sni(CFG_PROTO_HTTP);
	struct tls_server *ts = ts_of(cfg, 0);
	SSL_CTX *cc = client_ctx(0, 0, NULL, NULL);
	static const struct {
		const char *sni, *cn;
	} cases[] = {
		{"a.example.test", "a.example.test"}, /* exact */
		{"b.example.test", "b.example.test"},
		{"A.Example.TEST", "a.example.test"},	/* any case */
		{"x.w.example.test", "a.example.test"}, /* wildcard */
		{"X.W.EXAMPLE.TEST", "a.example.test"},
		{"y.x.w.example.test", "b.example.test"}, /* one label only */
		{"w.example.test", "b.example.test"},
		{"nothing.test", "b.example.test"}, /* no match: default */
		{NULL, "b.example.test"},	    /* no SNI: default */
	};
	struct conn cn;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(shake(&cn, cc, ts, cases[i].sni, NULL), 0);
		ck_assert_msg(strcmp(served_cn(cn.c), cases[i].cn) == 0,
			      "SNI %s: got %s, want %s", cases[i].sni,
			      served_cn(cn.c), cases[i].cn);
		conn_close(&cn);
	}
	SSL_CTX_free(cc);
	cfg_done(cfg);
}
END_TEST

/* ECDSA and RSA certificates of the same names: each client gets the one
 * it can verify, in TLS 1.2 and 1.3. */
START_TEST(test_key_types)
{
	struct config *cfg = cfg_sni(CFG_PROTO_HTTP);
	struct tls_server *ts = ts_of(cfg, 0);
	static const struct {
		int version;
		const char *sigalgs;
		int type;
	} cases[] = {
		{TLS1_2_VERSION, "ECDSA+SHA256", EVP_PKEY_EC},
		{TLS1_3_VERSION, "ECDSA+SHA256", EVP_PKEY_EC},
		{TLS1_2_VERSION, "RSA+SHA256:RSA-PSS+SHA256", EVP_PKEY_RSA},
		{TLS1_3_VERSION, "rsa_pss_rsae_sha256", EVP_PKEY_RSA},
		{TLS1_3_VERSION, NULL, EVP_PKEY_EC}, /* both: ECDSA first */
	};
	struct conn cn;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		SSL_CTX *cc = client_ctx(cases[i].version, cases[i].version,
					 cases[i].sigalgs, NULL);

		ck_assert_int_eq(shake(&cn, cc, ts, "a.example.test", NULL), 0);
		ck_assert_int_eq(SSL_version(cn.c), cases[i].version);
		ck_assert_str_eq(served_cn(cn.c), "a.example.test");
		ck_assert_msg(served_type(cn.c) == cases[i].type,
			      "case %zu: key type %d", i, served_type(cn.c));
		conn_close(&cn);
		/* the wildcard name too */
		ck_assert_int_eq(shake(&cn, cc, ts, "z.w.example.test", NULL),
				 0);
		ck_assert_int_eq(served_type(cn.c), cases[i].type);
		conn_close(&cn);
		SSL_CTX_free(cc);
	}
	cfg_done(cfg);
}
END_TEST

static const unsigned char alpn_h2_http11[] = "\x02h2\x08http/1.1";
static const unsigned char alpn_h2_only[] = "\x02h2";

START_TEST(test_alpn)
{
	struct config *cfg = cfg_sni(CFG_PROTO_HTTP);
	struct config *tcp = cfg_sni(CFG_PROTO_TCP);
	SSL_CTX *cc = client_ctx(0, 0, NULL, NULL);
	const unsigned char *p;
	unsigned int n;
	struct conn cn;

	ck_assert_int_eq(SSL_CTX_set_alpn_protos(cc, alpn_h2_http11,
						 sizeof(alpn_h2_http11) - 1),
			 0);
	/* http/1.1 chosen, never h2 */
	ck_assert_int_eq(shake(&cn, cc, ts_of(cfg, 0), "a.example.test", NULL),
			 0);
	SSL_get0_alpn_selected(cn.s, &p, &n);
	ck_assert_uint_eq(n, 8);
	ck_assert_int_eq(memcmp(p, "http/1.1", 8), 0);
	SSL_get0_alpn_selected(cn.c, &p, &n);
	ck_assert_uint_eq(n, 8);
	conn_close(&cn);
	/* a tcp listener answers no ALPN */
	ck_assert_int_eq(shake(&cn, cc, ts_of(tcp, 0), "a.example.test", NULL),
			 0);
	SSL_get0_alpn_selected(cn.s, &p, &n);
	ck_assert_uint_eq(n, 0);
	conn_close(&cn);
	/* only h2 offered: no ALPN, no failure */
	ck_assert_int_eq(SSL_CTX_set_alpn_protos(cc, alpn_h2_only,
						 sizeof(alpn_h2_only) - 1),
			 0);
	ck_assert_int_eq(shake(&cn, cc, ts_of(cfg, 0), NULL, NULL), 0);
	SSL_get0_alpn_selected(cn.s, &p, &n);
	ck_assert_uint_eq(n, 0);
	SSL_get0_alpn_selected(cn.c, &p, &n);
	ck_assert_uint_eq(n, 0);
	conn_close(&cn);
	SSL_CTX_free(cc);
	cfg_done(cfg);
	cfg_done(tcp);
}
END_TEST

START_TEST(test_versions_and_ciphers)
{
	struct config *cfg = cfg_sni(CFG_PROTO_HTTP);
	struct config *only13 = cfg_new();
	struct cfg_tls *t = cfg_listener(only13, "https", CFG_PROTO_HTTP);
	SSL_CTX *old = client_ctx(TLS1_VERSION, TLS1_1_VERSION, NULL,
				  "DEFAULT:@SECLEVEL=0");
	SSL_CTX *c12 = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION, NULL, NULL);
	SSL_CTX *cbc =
		client_ctx(TLS1_2_VERSION, TLS1_2_VERSION, NULL,
			   "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA");
	SSL_CTX *any = client_ctx(0, 0, NULL, NULL);
	struct conn cn;

	SSL_CTX_set_security_level(old, 0);
	t->min_version = 13;
	cfg_cert(t, "b.pem", "b.key", 11);
	load_ok(only13);

	/* TLS 1.1: refused by the server */
	ck_assert_int_eq(shake(&cn, old, ts_of(cfg, 0), NULL, NULL), -1);
	ck_assert_int_eq(cn.failed, 2);
	ck_assert_int_eq(ERR_GET_REASON(cn.err), SSL_R_UNSUPPORTED_PROTOCOL);
	conn_close(&cn);
	/* TLS 1.2 with an AEAD cipher: fine */
	ck_assert_int_eq(shake(&cn, c12, ts_of(cfg, 0), NULL, NULL), 0);
	ck_assert_int_eq(SSL_version(cn.s), TLS1_2_VERSION);
	ck_assert_ptr_nonnull(strstr(SSL_get_cipher_name(cn.s), "GCM"));
	conn_close(&cn);
	/* TLS 1.2 with CBC only: no shared cipher */
	ck_assert_int_eq(shake(&cn, cbc, ts_of(cfg, 0), NULL, NULL), -1);
	ck_assert_int_eq(cn.failed, 2);
	ck_assert_int_eq(ERR_GET_REASON(cn.err), SSL_R_NO_SHARED_CIPHER);
	conn_close(&cn);
	/* min_version 13: a 1.2-only client refused, 1.3 fine */
	ck_assert_int_eq(shake(&cn, c12, ts_of(only13, 0), NULL, NULL), -1);
	ck_assert_int_eq(cn.failed, 2);
	ck_assert_int_eq(ERR_GET_REASON(cn.err), SSL_R_UNSUPPORTED_PROTOCOL);
	conn_close(&cn);
	ck_assert_int_eq(shake(&cn, any, ts_of(only13, 0), NULL, NULL), 0);
	ck_assert_int_eq(SSL_version(cn.s), TLS1_3_VERSION);
	/* the modes the transport relies on */
	ck_assert_uint_eq(SSL_get_mode(cn.s) &
				  (SSL_MODE_ENABLE_PARTIAL_WRITE |
				   SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				   SSL_MODE_RELEASE_BUFFERS),
			  SSL_MODE_ENABLE_PARTIAL_WRITE |
				  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				  SSL_MODE_RELEASE_BUFFERS);
	ck_assert(SSL_get_options(cn.s) & SSL_OP_NO_RENEGOTIATION);
	ck_assert(SSL_get_options(cn.s) & SSL_OP_CIPHER_SERVER_PREFERENCE);
	conn_close(&cn);
	SSL_CTX_free(old);
	SSL_CTX_free(c12);
	SSL_CTX_free(cbc);
	SSL_CTX_free(any);
	cfg_done(cfg);
	cfg_done(only13);
}
END_TEST

/* --- session tickets ----------------------------------------------------- */

/*
 * One connection offering sess; *reused says whether it resumed.
 * Returns the client's session afterwards (the caller frees it).
 */
static SSL_SESSION *connect_once(SSL_CTX *cc, struct tls_server *ts,
				 SSL_SESSION *sess, int *reused)
{
	struct conn cn;
	SSL_SESSION *out;

	ck_assert_int_eq(shake(&cn, cc, ts, "a.example.test", sess), 0);
	*reused = SSL_session_reused(cn.c);
	out = client_session(cn.c);
	ck_assert_ptr_nonnull(out);
	ck_assert(SSL_SESSION_is_resumable(out));
	conn_close(&cn);
	return out;
}

static bool same_ticket(SSL_SESSION *a, SSL_SESSION *b)
{
	const unsigned char *ta, *tb;
	size_t la, lb;

	SSL_SESSION_get0_ticket(a, &ta, &la);
	SSL_SESSION_get0_ticket(b, &tb, &lb);
	return la == lb && memcmp(ta, tb, la) == 0;
}

static void check_rotation(int version)
{
	struct shm_zone *z = zone_new();
	struct config *cfg = cfg_sni(CFG_PROTO_HTTP);
	struct tls_server *ts = ts_of(cfg, 0);
	SSL_CTX *cc = client_ctx(version, version, NULL, NULL);
	SSL_SESSION *s1, *s2;
	uint64_t now = 1000000;
	int reused, i;

	tls_tickets_rotate(z, now, 1000);
	s1 = connect_once(cc, ts, NULL, &reused);
	ck_assert_int_eq(reused, 0);
	/* resumed with the current key: no new ticket needed in 1.2 */
	s2 = connect_once(cc, ts, s1, &reused);
	ck_assert_int_eq(reused, 1);
	if (version == TLS1_2_VERSION)
		ck_assert(same_ticket(s1, s2));
	SSL_SESSION_free(s2);
	/* one rotation: the old key still decrypts, and a ticket under the
	 * new key is issued */
	tls_tickets_rotate(z, now += 1000, 1000);
	s2 = connect_once(cc, ts, s1, &reused);
	ck_assert_int_eq(reused, 1);
	if (version == TLS1_2_VERSION)
		ck_assert(!same_ticket(s1, s2));
	SSL_SESSION_free(s2);
	/* SHM_TICKET_KEYS rotations: the first key is gone */
	for (i = 1; i < SHM_TICKET_KEYS; i++)
		tls_tickets_rotate(z, now += 1000, 1000);
	s2 = connect_once(cc, ts, s1, &reused);
	ck_assert_int_eq(reused, 0);
	SSL_SESSION_free(s2);
	SSL_SESSION_free(s1);
	SSL_CTX_free(cc);
	cfg_done(cfg);
	zone_free(z);
}

START_TEST(test_tickets_tls12)
{
	check_rotation(TLS1_2_VERSION);
}
END_TEST

START_TEST(test_tickets_tls13)
{
	check_rotation(TLS1_3_VERSION);
}
END_TEST

/* Another generation (a reload: new contexts, same zone) resumes the
 * tickets of the first; another listener does not. */
START_TEST(test_tickets_across_generations)
{
	struct shm_zone *z = zone_new();
	struct config *gen1 = cfg_sni(CFG_PROTO_HTTP);
	struct config *gen2 = cfg_sni(CFG_PROTO_HTTP);
	struct config *other = cfg_new();
	struct cfg_tls *t = cfg_listener(other, "other", CFG_PROTO_HTTP);
	SSL_CTX *cc = client_ctx(0, 0, NULL, NULL);
	SSL_SESSION *s1, *s2;
	int reused;

	cfg_cert(t, "b.pem", "b.key", 11);
	cfg_cert(t, "a_ec.pem", "a_ec.key", 12);
	cfg_cert(t, "a_rsa.pem", "a_rsa.key", 13);
	load_ok(other);
	tls_tickets_rotate(z, 5000, 1000);
	s1 = connect_once(cc, ts_of(gen1, 0), NULL, &reused);
	s2 = connect_once(cc, ts_of(gen2, 0), s1, &reused);
	ck_assert_int_eq(reused, 1);
	SSL_SESSION_free(s2);
	s2 = connect_once(cc, ts_of(other, 0), s1, &reused);
	ck_assert_int_eq(reused, 0);
	SSL_SESSION_free(s2);
	SSL_SESSION_free(s1);
	SSL_CTX_free(cc);
	cfg_done(gen1);
	cfg_done(gen2);
	cfg_done(other);
	zone_free(z);
}
END_TEST

/* No zone: each listener's own key, still resuming. */
START_TEST(test_tickets_without_zone)
{
	struct config *cfg = cfg_sni(CFG_PROTO_HTTP);
	SSL_CTX *cc = client_ctx(0, 0, NULL, NULL);
	SSL_SESSION *s1, *s2;
	int reused;

	shm_zone_set(NULL);
	s1 = connect_once(cc, ts_of(cfg, 0), NULL, &reused);
	s2 = connect_once(cc, ts_of(cfg, 0), s1, &reused);
	ck_assert_int_eq(reused, 1);
	SSL_SESSION_free(s1);
	SSL_SESSION_free(s2);
	SSL_CTX_free(cc);
	cfg_done(cfg);
}
END_TEST

/*
 * A master stuck in the middle of a write (a count left odd): handshakes
 * go on, with tickets under the listener's own key, in 1.2 and 1.3.
 */
START_TEST(test_tickets_seqlock_stuck)
{
	struct shm_zone *z = zone_new();
	struct config *cfg = cfg_sni(CFG_PROTO_HTTP);
	static const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};
	SSL_SESSION *s1, *s2;
	size_t i;
	int reused;

	tls_tickets_rotate(z, 5000, 1000);
	atomic_fetch_add(&z->z_tickets.tk_seq, 1);
	for (i = 0; i < 2; i++) {
		SSL_CTX *cc = client_ctx(versions[i], versions[i], NULL, NULL);

		s1 = connect_once(cc, ts_of(cfg, 0), NULL, &reused);
		ck_assert(SSL_SESSION_has_ticket(s1));
		s2 = connect_once(cc, ts_of(cfg, 0), s1, &reused);
		ck_assert_int_eq(reused, 1);
		SSL_SESSION_free(s1);
		SSL_SESSION_free(s2);
		SSL_CTX_free(cc);
	}
	/* the next rotation repairs the count */
	tls_tickets_rotate(z, 7000, 1000);
	ck_assert_uint_eq(atomic_load(&z->z_tickets.tk_seq) & 1, 0);
	cfg_done(cfg);
	zone_free(z);
}
END_TEST

START_TEST(test_rotate_bookkeeping)
{
	struct shm_zone *z = zone_new();
	struct shm_tickets *tk = &z->z_tickets;
	struct config *cfg = cfg_new();
	uint8_t first[16];

	tls_tickets_rotate(NULL, 1, 1); /* no zone: nothing */
	tls_tickets_rotate(z, 10000, 3000);
	ck_assert_uint_eq(tk->tk_n, 1);
	ck_assert_uint_eq(tk->tk_keys[0].tk_created, 10000);
	ck_assert_uint_eq(atomic_load(&tk->tk_seq), 2);
	memcpy(first, tk->tk_keys[0].tk_name, 16);
	tls_tickets_rotate(z, 12999, 3000); /* not due */
	ck_assert_uint_eq(tk->tk_n, 1);
	ck_assert_uint_eq(atomic_load(&tk->tk_seq), 2);
	tls_tickets_rotate(z, 13000, 3000); /* due */
	ck_assert_uint_eq(tk->tk_n, 2);
	ck_assert_uint_eq(tk->tk_keys[0].tk_created, 13000);
	ck_assert_int_eq(memcmp(tk->tk_keys[1].tk_name, first, 16), 0);
	ck_assert_int_ne(memcmp(tk->tk_keys[0].tk_name, first, 16), 0);
	tls_tickets_rotate(z, 16000, 3000);
	tls_tickets_rotate(z, 19000, 3000);
	ck_assert_uint_eq(tk->tk_n, SHM_TICKET_KEYS);
	ck_assert_uint_eq(tk->tk_keys[SHM_TICKET_KEYS - 1].tk_created, 13000);
	ck_assert_uint_eq(atomic_load(&tk->tk_seq) & 1, 0);

	/* the smallest rotation of the TLS listeners */
	ck_assert_uint_eq(tls_ticket_rotation(cfg), 0);
	cfg_listener(cfg, "a", CFG_PROTO_HTTP)->ticket_rotation_ms = 7200000;
	cfg_listener(cfg, "b", CFG_PROTO_HTTP)->ticket_rotation_ms = 3600000;
	ck_assert_uint_eq(tls_ticket_rotation(cfg), 3600000);
	cfg_done(cfg);
	zone_free(z);
}
END_TEST

/* --- client certificates (mTLS) ------------------------------------------- */

static struct config *cfg_mtls(enum cfg_tls_verify verify, int version)
{
	struct config *cfg = cfg_new();
	struct cfg_tls *t = cfg_listener(cfg, "mtls", CFG_PROTO_HTTP);

	cfg_cert(t, "b.pem", "b.key", 11);
	cfg_cert(t, "a_ec.pem", "a_ec.key", 12);
	t->client_ca = strdup(path("ca.pem"));
	t->verify = verify;
	t->min_version = (unsigned)version;
	load_ok(cfg);
	return cfg;
}

static SSL_CTX *client_with_cert(const char *cert, const char *key)
{
	SSL_CTX *cc = client_ctx(0, 0, NULL, NULL);

	ck_assert_int_eq(
		SSL_CTX_use_certificate_file(cc, path(cert), SSL_FILETYPE_PEM),
		1);
	ck_assert_int_eq(
		SSL_CTX_use_PrivateKey_file(cc, path(key), SSL_FILETYPE_PEM),
		1);
	return cc;
}

/* The SHA-256 of the client certificate, computed here. */
static void client_fingerprint(char out[65])
{
	FILE *f = fopen(path("client.pem"), "r");
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	unsigned char md[32];
	unsigned int n, i;

	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(X509_digest(x, EVP_sha256(), md, &n), 1);
	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	X509_free(x);
	fclose(f);
}

static void check_mtls_required(int version)
{
	struct config *cfg = cfg_mtls(CFG_TLS_VERIFY_REQUIRED, 12);
	SSL_CTX *none = client_ctx(version, version, NULL, NULL);
	SSL_CTX *good = client_with_cert("client.pem", "client.key");
	SSL_CTX *bad = client_with_cert("self.pem", "self.key");
	char subject[256], fp[65], want[65];
	struct conn cn;

	SSL_CTX_set_max_proto_version(good, version);
	SSL_CTX_set_max_proto_version(bad, version);
	/* no certificate: refused */
	ck_assert_int_eq(shake(&cn, none, ts_of(cfg, 0), NULL, NULL), -1);
	ck_assert_int_eq(cn.failed, 2);
	ck_assert_int_eq(ERR_GET_REASON(cn.err),
			 SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE);
	conn_close(&cn);
	/* a certificate from another CA: refused */
	ck_assert_int_eq(shake(&cn, bad, ts_of(cfg, 0), NULL, NULL), -1);
	ck_assert_int_eq(cn.failed, 2);
	conn_close(&cn);
	/* the CA's client: accepted, named (also after SNI moved it) */
	ck_assert_int_eq(
		shake(&cn, good, ts_of(cfg, 0), "a.example.test", NULL), 0);
	ck_assert_str_eq(served_cn(cn.c), "a.example.test");
	ck_assert(tls_peer_subject(cn.s, subject, sizeof(subject)));
	ck_assert_str_eq(subject, "CN=client,O=Example");
	ck_assert(!tls_peer_subject(cn.s, subject, 10)); /* never cut */
	ck_assert(tls_peer_fingerprint(cn.s, fp));
	client_fingerprint(want);
	ck_assert_str_eq(fp, want);
	conn_close(&cn);
	SSL_CTX_free(none);
	SSL_CTX_free(good);
	SSL_CTX_free(bad);
	cfg_done(cfg);
}

START_TEST(test_mtls_required_tls12)
{
	check_mtls_required(TLS1_2_VERSION);
}
END_TEST

START_TEST(test_mtls_required_tls13)
{
	check_mtls_required(TLS1_3_VERSION);
}
END_TEST

START_TEST(test_mtls_optional)
{
	struct config *cfg = cfg_mtls(CFG_TLS_VERIFY_OPTIONAL, 12);
	struct config *plain = cfg_sni(CFG_PROTO_HTTP);
	SSL_CTX *none = client_ctx(0, 0, NULL, NULL);
	SSL_CTX *good = client_with_cert("client.pem", "client.key");
	char subject[256] = "x", fp[65];
	struct conn cn;

	ck_assert_int_eq(
		shake(&cn, none, ts_of(cfg, 0), "a.example.test", NULL), 0);
	ck_assert(!tls_peer_subject(cn.s, subject, sizeof(subject)));
	ck_assert_str_eq(subject, "");
	ck_assert(!tls_peer_fingerprint(cn.s, fp));
	conn_close(&cn);
	ck_assert_int_eq(shake(&cn, good, ts_of(cfg, 0), NULL, NULL), 0);
	ck_assert(tls_peer_subject(cn.s, subject, sizeof(subject)));
	ck_assert_str_eq(subject, "CN=client,O=Example");
	conn_close(&cn);
	/* no client_ca: no certificate asked, none reported */
	ck_assert_int_eq(shake(&cn, good, ts_of(plain, 0), NULL, NULL), 0);
	ck_assert(!tls_peer_subject(cn.s, subject, sizeof(subject)));
	conn_close(&cn);
	SSL_CTX_free(none);
	SSL_CTX_free(good);
	cfg_done(cfg);
	cfg_done(plain);
}
END_TEST

/* --- client contexts (TLS to servers) ----------------------------------- */

/* A handshake from backend u's context to the listener of srv. */
static int backend_shake(struct conn *cn, struct cfg_upstream_tls *u,
			 struct tls_server *ts, const char *host,
			 SSL_SESSION *sess)
{
	conn_pair(cn);
	cn->c = tls_client_ssl(u->ctx, cn->fd[0], host, sess);
	ck_assert_ptr_nonnull(cn->c);
	cn->s = tls_server_ssl(ts, cn->fd[1]);
	ck_assert_ptr_nonnull(cn->s);
	return drive(cn);
}

START_TEST(test_client_verify)
{
	struct config *srv = cfg_sni(CFG_PROTO_HTTP);
	struct config *cfg = cfg_new();
	struct cfg_upstream_tls *ca = cfg_backend(cfg, "ca.pem");
	struct cfg_upstream_tls *sys = cfg_backend(cfg, NULL);
	struct cfg_upstream_tls *off = cfg_backend(cfg, NULL);
	struct tls_server *ts = ts_of(srv, 0);
	const unsigned char *p;
	unsigned int n;
	struct conn cn;

	off->verify = false;
	load_ok(cfg);
	/* the right CA and name: verified, SNI sent, ALPN http/1.1 */
	ck_assert_int_eq(backend_shake(&cn, ca, ts, "a.example.test", NULL), 0);
	ck_assert_int_eq(SSL_get_verify_result(cn.c), X509_V_OK);
	ck_assert_str_eq(SSL_get_servername(cn.s, TLSEXT_NAMETYPE_host_name),
			 "a.example.test");
	ck_assert_str_eq(served_cn(cn.c), "a.example.test");
	SSL_get0_alpn_selected(cn.c, &p, &n);
	ck_assert_uint_eq(n, 8);
	ck_assert_int_eq(memcmp(p, "http/1.1", 8), 0);
	conn_close(&cn);
	/* a wildcard name */
	ck_assert_int_eq(backend_shake(&cn, ca, ts, "q.w.example.test", NULL),
			 0);
	conn_close(&cn);
	/* another name: refused by the client */
	ck_assert_int_eq(backend_shake(&cn, ca, ts, "b2.example.test", NULL),
			 -1);
	ck_assert_int_eq(cn.failed, 1);
	ck_assert_int_eq(ERR_GET_REASON(cn.err),
			 SSL_R_CERTIFICATE_VERIFY_FAILED);
	ck_assert_int_eq(SSL_get_verify_result(cn.c),
			 X509_V_ERR_HOSTNAME_MISMATCH);
	conn_close(&cn);
	/* an IP literal: no SNI, checked as an address */
	ck_assert_int_eq(backend_shake(&cn, ca, ts, "127.0.0.1", NULL), -1);
	ck_assert_ptr_null(SSL_get_servername(cn.s, TLSEXT_NAMETYPE_host_name));
	ck_assert_int_eq(SSL_get_verify_result(cn.c),
			 X509_V_ERR_IP_ADDRESS_MISMATCH);
	conn_close(&cn);
	/* the system store does not know the test CA */
	ck_assert_int_eq(backend_shake(&cn, sys, ts, "a.example.test", NULL),
			 -1);
	ck_assert_int_eq(cn.failed, 1);
	ck_assert_int_ne(SSL_get_verify_result(cn.c), X509_V_OK);
	conn_close(&cn);
	/* verify: false takes anything */
	ck_assert_int_eq(backend_shake(&cn, off, ts, "c.example.test", NULL),
			 0);
	conn_close(&cn);
	cfg_done(cfg);
	cfg_done(srv);
}
END_TEST

/* A server whose certificate the CA file does not vouch for. */
START_TEST(test_client_untrusted)
{
	struct config *srv = cfg_new();
	struct cfg_tls *t = cfg_listener(srv, "self", CFG_PROTO_HTTP);
	struct config *cfg = cfg_new();
	struct cfg_upstream_tls *ca = cfg_backend(cfg, "ca.pem");
	struct conn cn;

	cfg_cert(t, "self.pem", "self.key", 11);
	load_ok(srv);
	load_ok(cfg);
	ck_assert_int_eq(
		backend_shake(&cn, ca, ts_of(srv, 0), "a.example.test", NULL),
		-1);
	ck_assert_int_eq(cn.failed, 1);
	ck_assert_int_eq(SSL_get_verify_result(cn.c),
			 X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
	conn_close(&cn);
	cfg_done(cfg);
	cfg_done(srv);
}
END_TEST

static void check_client_resume(unsigned version)
{
	struct shm_zone *z = zone_new();
	struct config *srv = cfg_sni(CFG_PROTO_HTTP);
	struct config *cfg = cfg_new();
	struct cfg_upstream_tls *u = cfg_backend(cfg, "ca.pem");
	SSL_SESSION *slot = NULL;
	struct conn cn;
	char b;

	u->min_version = version;
	load_ok(cfg);
	tls_tickets_rotate(z, 5000, 1000);
	ck_assert_int_eq(
		backend_shake(&cn, u, ts_of(srv, 0), "a.example.test", NULL),
		0);
	tls_client_keep_session(cn.c, &slot);
	if (version == 13)
		ck_assert_ptr_null(slot); /* no ticket before a read */
	ck_assert_int_le(SSL_read(cn.c, &b, 1), 0);
	ERR_clear_error();
	tls_client_keep_session(cn.c, &slot);
	ck_assert_ptr_nonnull(slot);
	/* an idle connection dropped without close_notify: the kept
	 * session still resumes */
	conn_abort(&cn);

	ck_assert_int_eq(
		backend_shake(&cn, u, ts_of(srv, 0), "a.example.test", slot),
		0);
	ck_assert(SSL_session_reused(cn.c));
	ck_assert_int_eq(SSL_get_verify_result(cn.c), X509_V_OK);
	ck_assert_int_le(SSL_read(cn.c, &b, 1), 0);
	ERR_clear_error();
	tls_client_keep_session(cn.c, &slot); /* replaces, frees the old */
	ck_assert_ptr_nonnull(slot);
	conn_close(&cn);
	SSL_SESSION_free(slot);
	cfg_done(cfg);
	cfg_done(srv);
	zone_free(z);
}

START_TEST(test_client_resume_tls12)
{
	check_client_resume(12);
}
END_TEST

START_TEST(test_client_resume_tls13)
{
	check_client_resume(13);
}
END_TEST

/* A client certificate for the servers: checked at load, presented. */
START_TEST(test_client_cert)
{
	struct config *srv = cfg_mtls(CFG_TLS_VERIFY_REQUIRED, 12);
	struct config *cfg = cfg_new();
	struct cfg_upstream_tls *u = cfg_backend(cfg, "ca.pem");
	char subject[256];
	struct conn cn;

	u->cert = strdup(path("client.pem"));
	u->key = strdup(path("client.key"));
	load_ok(cfg);
	ck_assert_int_eq(
		backend_shake(&cn, u, ts_of(srv, 0), "b.example.test", NULL),
		0);
	ck_assert(tls_peer_subject(cn.s, subject, sizeof(subject)));
	ck_assert_str_eq(subject, "CN=client,O=Example");
	conn_close(&cn);
	cfg_done(cfg);
	cfg_done(srv);

	cfg = cfg_new();
	u = cfg_backend(cfg, "ca.pem");
	u->cert = strdup(path("client.pem"));
	u->key = strdup(path("b.key"));
	load_fails(cfg, CFG_PATH ":40:5: key ",
		   "does not match its certificate");
	cfg_done(cfg);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tls");
	TCase *load = tcase_create("load");
	TCase *hs = tcase_create("handshake");
	TCase *tk = tcase_create("tickets");
	TCase *cl = tcase_create("client");
	SRunner *sr;
	int failed;

	make_material();
	tcase_add_test(load, test_load_key_mismatch);
	tcase_add_test(load, test_load_expired);
	tcase_add_test(load, test_load_chain_order);
	tcase_add_test(load, test_load_unreadable);
	tcase_add_test(load, test_load_client_ca_and_ciphers);
	tcase_add_test(load, test_load_shadowed_cert);
	tcase_add_test(load, test_load_reports_all);
	tcase_add_test(load, test_load_expiring_warns);
	tcase_add_test(load, test_describe);
	tcase_add_test(hs, test_sni_selects);
	tcase_add_test(hs, test_key_types);
	tcase_add_test(hs, test_alpn);
	tcase_add_test(hs, test_versions_and_ciphers);
	tcase_add_test(hs, test_mtls_required_tls12);
	tcase_add_test(hs, test_mtls_required_tls13);
	tcase_add_test(hs, test_mtls_optional);
	tcase_add_test(tk, test_tickets_tls12);
	tcase_add_test(tk, test_tickets_tls13);
	tcase_add_test(tk, test_tickets_across_generations);
	tcase_add_test(tk, test_tickets_without_zone);
	tcase_add_test(tk, test_tickets_seqlock_stuck);
	tcase_add_test(tk, test_rotate_bookkeeping);
	tcase_add_test(cl, test_client_verify);
	tcase_add_test(cl, test_client_untrusted);
	tcase_add_test(cl, test_client_resume_tls12);
	tcase_add_test(cl, test_client_resume_tls13);
	tcase_add_test(cl, test_client_cert);
	tcase_set_timeout(hs, 60);
	tcase_set_timeout(tk, 60);
	tcase_set_timeout(cl, 60);
	suite_add_tcase(s, load);
	suite_add_tcase(s, hs);
	suite_add_tcase(s, tk);
	suite_add_tcase(s, cl);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	remove_material();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
