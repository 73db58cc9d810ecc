/*
 * tls.c: the OpenSSL contexts of listeners and backends (see tls.h).
 *
 * A listener's certificates are grouped by the set of names they carry:
 * one SSL_CTX per name set, holding one certificate per key type, so an
 * ECDSA and an RSA certificate for the same names are both served and
 * OpenSSL picks between them from the client's signature algorithms.  The
 * servername callback moves a connection to the context of the name it
 * asked for (exact name first, then a one-label wildcard); the first
 * certificate's context is the default.  Every context of a listener is
 * set up identically apart from its certificates, so switching changes
 * nothing but the certificate (nginx ngx_http_ssl_servername).
 *
 * Session tickets are encrypted with keys from the shared zone, made by
 * the master (tls_tickets_rotate) and read by the workers under a
 * seqlock, so any worker of any generation resumes any other's tickets.
 */
#include "worker/tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "common/log.h"
#include "common/shm.h"

/* TLS 1.2: forward-secret AEAD only (TLS 1.3 suites are all of that kind). */
#define TLS_AEAD_CIPHERS                                                       \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"           \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"           \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:P-256:P-384"
/*
 * Writes may be partial and retried from another buffer address (the
 * transport writes from its ring buffer), and idle connections give
 * their record buffers back.  No automatic chain: a listener serves the
 * chain its file holds, never one built from the client CA store.
 */
#define TLS_MODES                                                              \
	(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | \
	 SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN)
#define TLS_ALPN_HTTP11	  "\x08http/1.1"
#define TLS_WARN_DAYS	  30 /* a certificate this close to expiry is logged */
#define TLS_MAX_FILE	  (16 << 20) /* larger PEM files are refused */
#define TLS_SEQ_TRIES	  10000	     /* seqlock retries before giving up */
#define TLS_DEFAULT_DEPTH 4

/* One configured certificate: its chain, key and names. */
struct tls_cert {
	const char *tc_path;	   /* borrowed from the config */
	X509 *tc_x509;		   /* the leaf */
	STACK_OF(X509) * tc_chain; /* the rest of the file, in order */
	EVP_PKEY *tc_key;
	char **tc_names; /* lowercased SAN DNS names (else CN),
			    in the certificate's order */
	size_t tc_nnames;
	int tc_type;	 /* EVP_PKEY base id: one per context */
	size_t tc_group; /* index of its context in ts_ctx */
};

/* A name of the SNI tables, and the context that serves it. */
struct tls_name {
	const char *tn_name; /* borrowed from a tls_cert; wildcards
				without the leading "*." */
	size_t tn_group;
};

struct tls_server {
	struct tls_cert *ts_certs; /* in config order */
	size_t ts_ncerts;
	SSL_CTX **ts_ctx; /* one per name set; [0] the default */
	size_t ts_nctx;
	struct tls_name *ts_exact; /* sorted by name, first group kept */
	size_t ts_nexact;
	struct tls_name *ts_wild; /* "*.b.c" stored as "b.c", sorted */
	size_t ts_nwild;
	/* The ticket key when there is no zone (or it has none yet): made
	 * before fork, so still shared by one generation's workers. */
	struct shm_ticket_key ts_fallback;
};

struct tls_client {
	SSL_CTX *tc_ctx;
	bool tc_verify; /* host names are checked too */
};

/* Where errors of the object being loaded are reported. */
struct tls_where {
	const char *path; /* the config file */
	int line, col;
	struct config_errors *errs;
};

#define TLS_ERR(w, ...)                                                        \
	config_error_at((w)->errs, (w)->path, (w)->line, (w)->col, __VA_ARGS__)

/* --- OpenSSL errors ---------------------------------------------------- */

/* The oldest queued OpenSSL error as text (or "unknown"); clears the queue. */
static const char *tls_ossl_error(char *buf, size_t cap)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		(void)snprintf(buf, cap, "unknown error");
	else
		ERR_error_string_n(e, buf, cap);
	ERR_clear_error();
	return buf;
}

/* --- files and PEM ------------------------------------------------------ */

/* The whole file at path, NUL-terminated; NULL with errno. */
static char *tls_slurp(const char *path, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	ssize_t n;
	int fd, saved;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		goto fail;
	}
	if (st.st_size > TLS_MAX_FILE) {
		errno = EFBIG;
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		goto fail;
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	*len = got;
	close(fd);
	return buf;
fail:
	saved = errno;
	free(buf);
	close(fd);
	errno = saved;
	return NULL;
}

/* Free a buffer that held key material. */
static void tls_wipe_free(char *buf, size_t len)
{
	if (!buf)
		return;
	explicit_bzero(buf, len);
	free(buf);
}

/*
 * Every certificate of a PEM buffer, in order.  NULL when there is none
 * or one of them does not parse.
 */
static STACK_OF(X509) * tls_pem_certs(const char *buf, size_t len)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	BIO *bio = BIO_new_mem_buf(buf, (int)len);
	unsigned long e;
	X509 *x;

	if (!sk || !bio)
		goto fail;
	for (;;) {
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		if (!x)
			break;
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			goto fail;
		}
	}
	/* the end of the buffer shows as "no start line" */
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) != ERR_LIB_PEM ||
	    ERR_GET_REASON(e) != PEM_R_NO_START_LINE || sk_X509_num(sk) == 0)
		goto fail;
	ERR_clear_error();
	BIO_free(bio);
	return sk;
fail:
	ERR_clear_error();
	sk_X509_pop_free(sk, X509_free);
	BIO_free(bio);
	return NULL;
}

/* Encrypted keys are not supported: never prompt on a terminal. */
static int tls_no_password(char *buf, int size, int rwflag, void *u)
{
	return 0;
}

/* "2027-01-01" for an ASN1 time. */
static void tls_date(const ASN1_TIME *t, char *out, size_t cap)
{
	struct tm tm;

	if (!ASN1_TIME_to_tm(t, &tm) ||
	    strftime(out, cap, "%Y-%m-%d", &tm) == 0)
		(void)snprintf(out, cap, "(unknown date)");
}

/* Days from now until t (negative when past); INT32_MIN if unreadable. */
static int tls_days_left(const ASN1_TIME *t)
{
	int days = 0, secs = 0;

	if (!ASN1_TIME_diff(&days, &secs, NULL, t))
		return INT32_MIN;
	return days;
}

/* --- certificates -------------------------------------------------------- */

static int tls_add_name(struct tls_cert *tc, const unsigned char *s, int len)
{
	char **names, *name;
	int i;

	if (len <= 0 || memchr(s, '\0', (size_t)len))
		return 0; /* empty or embedded NUL: never matches anything */
	names = realloc(tc->tc_names, (tc->tc_nnames + 1) * sizeof(*names));
	if (!names)
		return -1;
	tc->tc_names = names;
	name = malloc((size_t)len + 1);
	if (!name)
		return -1;
	for (i = 0; i < len; i++)
		name[i] = (char)tolower(s[i]);
	name[len] = '\0';
	tc->tc_names[tc->tc_nnames++] = name;
	return 0;
}

/* The names of the leaf: SAN DNS entries, else the subject CN. */
static int tls_cert_names(struct tls_cert *tc)
{
	GENERAL_NAMES *sans;
	const GENERAL_NAME *gn;
	X509_NAME_ENTRY *ne;
	ASN1_STRING *s;
	int i, rc = 0;

	sans = X509_get_ext_d2i(tc->tc_x509, NID_subject_alt_name, NULL, NULL);
	for (i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
		gn = sk_GENERAL_NAME_value(sans, i);
		if (gn->type != GEN_DNS)
			continue;
		s = gn->d.dNSName;
		if (tls_add_name(tc, ASN1_STRING_get0_data(s),
				 ASN1_STRING_length(s)) < 0)
			rc = -1;
	}
	GENERAL_NAMES_free(sans);
	if (tc->tc_nnames == 0) {
		i = X509_NAME_get_index_by_NID(
			X509_get_subject_name(tc->tc_x509), NID_commonName, -1);
		if (i >= 0) {
			ne = X509_NAME_get_entry(
				X509_get_subject_name(tc->tc_x509), i);
			s = X509_NAME_ENTRY_get_data(ne);
			if (tls_add_name(tc, ASN1_STRING_get0_data(s),
					 ASN1_STRING_length(s)) < 0)
				rc = -1;
		}
	}
	ERR_clear_error();
	return rc;
}

static void tls_cert_free(struct tls_cert *tc)
{
	size_t i;

	X509_free(tc->tc_x509);
	sk_X509_pop_free(tc->tc_chain, X509_free);
	EVP_PKEY_free(tc->tc_key);
	for (i = 0; i < tc->tc_nnames; i++)
		free(tc->tc_names[i]);
	free(tc->tc_names);
	memset(tc, 0, sizeof(*tc));
}

/* Each certificate of the chain issued by the next; none expired. */
static int tls_cert_check(struct tls_cert *tc, struct tls_where *w)
{
	int n = sk_X509_num(tc->tc_chain), i, days, rc = 0;
	const ASN1_TIME *na;
	X509 *x, *issuer;
	char date[32];

	for (i = 0; i < n; i++) {
		x = i == 0 ? tc->tc_x509 : sk_X509_value(tc->tc_chain, i - 1);
		issuer = sk_X509_value(tc->tc_chain, i);
		if (X509_check_issued(issuer, x) != X509_V_OK) {
			TLS_ERR(w,
				"certificate %s: chain out of order: "
				"certificate %d is not issued by certificate "
				"%d",
				tc->tc_path, i + 1, i + 2);
			rc = -1;
		}
	}
	for (i = 0; i <= n; i++) {
		x = i == 0 ? tc->tc_x509 : sk_X509_value(tc->tc_chain, i - 1);
		na = X509_get0_notAfter(x);
		tls_date(na, date, sizeof(date));
		days = tls_days_left(na);
		if (X509_cmp_current_time(na) <= 0) {
			if (i == 0)
				TLS_ERR(w, "certificate %s expired on %s",
					tc->tc_path, date);
			else
				TLS_ERR(w,
					"certificate %s: chain certificate %d "
					"expired on %s",
					tc->tc_path, i + 1, date);
			rc = -1;
		} else if (days < TLS_WARN_DAYS) {
			log_warn("%s:%d:%d: certificate %s%s expires on %s "
				 "(in %d days)",
				 w->path, w->line, w->col, tc->tc_path,
				 i == 0 ? "" : " (chain)", date, days);
		}
	}
	ERR_clear_error();
	return rc;
}

/*
 * Load the chain at certpath and the key at keypath into tc, checked:
 * readable, PEM, key matching, chain in order, not expired.
 */
static int tls_cert_load(struct tls_cert *tc, const char *certpath,
			 const char *keypath, struct tls_where *w)
{
	char *buf = NULL;
	size_t len = 0;
	BIO *bio;
	STACK_OF(X509) * sk;

	memset(tc, 0, sizeof(*tc));
	tc->tc_path = certpath;
	buf = tls_slurp(certpath, &len);
	if (!buf) {
		TLS_ERR(w, "cannot read certificate %s: %s", certpath,
			strerror(errno));
		return -1;
	}
	sk = tls_pem_certs(buf, len);
	free(buf);
	if (!sk) {
		TLS_ERR(w, "certificate %s: not a PEM certificate", certpath);
		return -1;
	}
	tc->tc_x509 = sk_X509_shift(sk);
	tc->tc_chain = sk;

	buf = tls_slurp(keypath, &len);
	if (!buf) {
		TLS_ERR(w, "cannot read key %s: %s", keypath, strerror(errno));
		goto fail;
	}
	bio = BIO_new_mem_buf(buf, (int)len);
	if (bio)
		tc->tc_key = PEM_read_bio_PrivateKey(bio, NULL, tls_no_password,
						     NULL);
	BIO_free(bio);
	tls_wipe_free(buf, len);
	if (!tc->tc_key) {
		TLS_ERR(w,
			"key %s: not a PEM private key (encrypted keys are not "
			"supported)",
			keypath);
		goto fail;
	}
	if (X509_check_private_key(tc->tc_x509, tc->tc_key) != 1) {
		TLS_ERR(w, "key %s does not match its certificate %s", keypath,
			certpath);
		goto fail;
	}
	tc->tc_type = EVP_PKEY_get_base_id(tc->tc_key);
	if (tls_cert_check(tc, w) < 0)
		goto fail;
	if (tls_cert_names(tc) < 0) {
		TLS_ERR(w, "certificate %s: out of memory", certpath);
		goto fail;
	}
	ERR_clear_error();
	return 0;
fail:
	ERR_clear_error();
	tls_cert_free(tc);
	return -1;
}

/* Add tc (leaf, key, chain) to ctx, as the certificate of its key type. */
static int tls_ctx_use_cert(SSL_CTX *ctx, struct tls_cert *tc)
{
	if (SSL_CTX_use_certificate(ctx, tc->tc_x509) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, tc->tc_key) != 1 ||
	    SSL_CTX_set1_chain(ctx, tc->tc_chain) != 1)
		return -1;
	return 0;
}

/* --- the CA files --------------------------------------------------------- */

/*
 * A CA bundle as a store, and (if names) the subjects of its
 * certificates, for the CA list a server sends.  "what" names it in
 * errors ("client_ca", "ca_file").
 */
static X509_STORE *tls_ca_load(const char *file, const char *what,
			       STACK_OF(X509_NAME) * *names,
			       struct tls_where *w)
{
	STACK_OF(X509) * sk;
	X509_STORE *store = NULL;
	X509_NAME *nm;
	char *buf;
	size_t len;
	int i;

	buf = tls_slurp(file, &len);
	if (!buf) {
		TLS_ERR(w, "cannot read %s %s: %s", what, file,
			strerror(errno));
		return NULL;
	}
	sk = tls_pem_certs(buf, len);
	free(buf);
	if (!sk) {
		TLS_ERR(w, "%s %s: not a PEM certificate", what, file);
		return NULL;
	}
	store = X509_STORE_new();
	if (names)
		*names = sk_X509_NAME_new_null();
	if (!store || (names && !*names))
		goto fail;
	for (i = 0; i < sk_X509_num(sk); i++) {
		if (X509_STORE_add_cert(store, sk_X509_value(sk, i)) != 1)
			goto fail;
		if (!names)
			continue;
		nm = X509_NAME_dup(X509_get_subject_name(sk_X509_value(sk, i)));
		if (!nm || !sk_X509_NAME_push(*names, nm)) {
			X509_NAME_free(nm);
			goto fail;
		}
	}
	sk_X509_pop_free(sk, X509_free);
	return store;
fail:
	TLS_ERR(w, "%s %s: cannot load it", what, file);
	ERR_clear_error();
	sk_X509_pop_free(sk, X509_free);
	X509_STORE_free(store);
	if (names) {
		sk_X509_NAME_pop_free(*names, X509_NAME_free);
		*names = NULL;
	}
	return NULL;
}

/* --- session tickets -------------------------------------------------------
 */

/*
 * Copy the ticket keys into out ([0] current): the zone's, read under
 * its seqlock, else (no zone, no key yet, or a count that stays odd) the
 * listener's own.  The number copied, at least 1: an empty TLS 1.3
 * ticket would break the handshake, so there is always a key.
 */
static size_t tls_keys_copy(const struct tls_server *ts,
			    struct shm_ticket_key out[SHM_TICKET_KEYS])
{
	struct shm_zone *z = shm_zone();
	struct shm_tickets *tk;
	uint32_t s1, n;
	int i;

	if (z) {
		tk = &z->z_tickets;
		for (i = 0; i < TLS_SEQ_TRIES; i++) {
			s1 = atomic_load_explicit(&tk->tk_seq,
						  memory_order_acquire);
			if (s1 & 1)
				continue;
			n = tk->tk_n;
			if (n > SHM_TICKET_KEYS)
				n = SHM_TICKET_KEYS;
			memcpy(out, tk->tk_keys, n * sizeof(*out));
			atomic_thread_fence(memory_order_acquire);
			if (atomic_load_explicit(&tk->tk_seq,
						 memory_order_relaxed) != s1)
				continue;
			if (n > 0)
				return n;
			break; /* no key made yet */
		}
		/* stuck odd: a master died writing; the next rotation
		 * repairs it, meanwhile tickets still work here */
	}
	out[0] = ts->ts_fallback;
	return 1;
}

static int tls_ticket_mac(EVP_MAC_CTX *hctx, uint8_t key[32])
{
	OSSL_PARAM params[3];

	params[0] =
		OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

/*
 * OpenSSL's ticket key callback: encrypt with the current key; decrypt
 * with the key named in the ticket, asking for a new ticket when that key
 * is no longer the current one (2); an unknown name means a full
 * handshake (0).
 */
static int tls_ticket_cb(SSL *ssl, unsigned char name[16],
			 unsigned char iv[EVP_MAX_IV_LENGTH],
			 EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
	const struct tls_server *ts =
		SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	struct shm_ticket_key keys[SHM_TICKET_KEYS];
	const EVP_CIPHER *cipher = EVP_aes_256_cbc();
	size_t n = tls_keys_copy(ts, keys), i;
	int ret = 0;

	if (enc) {
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) != 1 ||
		    EVP_EncryptInit_ex(ectx, cipher, NULL, keys[0].tk_aes,
				       iv) != 1 ||
		    tls_ticket_mac(hctx, keys[0].tk_hmac) < 0) {
			ret = -1;
			goto done;
		}
		memcpy(name, keys[0].tk_name, 16);
		ret = 1;
		goto done;
	}
	for (i = 0; i < n; i++)
		if (memcmp(name, keys[i].tk_name, 16) == 0)
			break;
	if (i == n)
		goto done; /* unknown or retired key: full handshake */
	if (EVP_DecryptInit_ex(ectx, cipher, NULL, keys[i].tk_aes, iv) != 1 ||
	    tls_ticket_mac(hctx, keys[i].tk_hmac) < 0) {
		ret = -1;
		goto done;
	}
	ret = i == 0 ? 1 : 2;
done:
	explicit_bzero(keys, sizeof(keys));
	return ret;
}

void tls_tickets_rotate(struct shm_zone *z, uint64_t now_wall_ms,
			uint32_t rotation_ms)
{
	struct shm_tickets *tk;
	struct shm_ticket_key key;
	uint32_t seq;

	if (!z)
		return;
	tk = &z->z_tickets;
	/* only the master writes: no need to read under the seqlock */
	if (tk->tk_n > 0 &&
	    (rotation_ms == 0 ||
	     tk->tk_keys[0].tk_created + rotation_ms > now_wall_ms))
		return;
	if (RAND_bytes(key.tk_name, sizeof(key.tk_name)) != 1 ||
	    RAND_bytes(key.tk_aes, sizeof(key.tk_aes)) != 1 ||
	    RAND_bytes(key.tk_hmac, sizeof(key.tk_hmac)) != 1) {
		log_warn("tls: no random bytes for a ticket key; the old one "
			 "stays in use");
		ERR_clear_error();
		explicit_bzero(&key, sizeof(key));
		return;
	}
	key.tk_created = now_wall_ms ? now_wall_ms : 1;

	/* an odd count left by a master that died while writing: skip it */
	seq = atomic_load_explicit(&tk->tk_seq, memory_order_relaxed);
	seq += seq & 1;
	atomic_store_explicit(&tk->tk_seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	memmove(&tk->tk_keys[1], &tk->tk_keys[0],
		(SHM_TICKET_KEYS - 1) * sizeof(tk->tk_keys[0]));
	tk->tk_keys[0] = key;
	if (tk->tk_n < SHM_TICKET_KEYS)
		tk->tk_n++;
	atomic_store_explicit(&tk->tk_seq, seq + 2, memory_order_release);
	explicit_bzero(&key, sizeof(key));
}

uint32_t tls_ticket_rotation(const struct config *cfg)
{
	uint32_t best = 0, r;
	size_t i;

	for (i = 0; i < cfg->nlisteners; i++) {
		if (!cfg->listeners[i].tls)
			continue;
		r = cfg->listeners[i].tls->ticket_rotation_ms;
		if (r && (best == 0 || r < best))
			best = r;
	}
	return best;
}

/* --- server contexts --------------------------------------------------- */

/* ALPN: http/1.1 when the client offers it; otherwise no ALPN at all. */
static int tls_alpn_cb(SSL *ssl, const unsigned char **out,
		       unsigned char *outlen, const unsigned char *in,
		       unsigned int inlen, void *arg)
{
	unsigned int i = 0;

	while (i < inlen) {
		unsigned int n = in[i];

		if (i + 1 + n > inlen)
			break;
		if (n == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
			*out = in + i + 1;
			*outlen = 8;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

static int tls_tn_cmp(const void *a, const void *b)
{
	const struct tls_name *x = a, *y = b;
	int c = strcmp(x->tn_name, y->tn_name);

	if (c)
		return c;
	return x->tn_group < y->tn_group ? -1 : (x->tn_group > y->tn_group);
}

static int tls_tn_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct tls_name *)elem)->tn_name);
}

/* The context index for an SNI name; -1 when nothing matches. */
static ssize_t tls_server_lookup(const struct tls_server *ts, const char *sni)
{
	char name[256];
	const struct tls_name *tn;
	const char *dot;
	size_t len = strlen(sni), i;

	if (len > 0 && sni[len - 1] == '.')
		len--;
	if (len == 0 || len >= sizeof(name))
		return -1;
	for (i = 0; i < len; i++)
		name[i] = (char)tolower((unsigned char)sni[i]);
	name[len] = '\0';
	tn = bsearch(name, ts->ts_exact, ts->ts_nexact, sizeof(*tn),
		     tls_tn_key_cmp);
	if (tn)
		return (ssize_t)tn->tn_group;
	/* a wildcard stands for exactly one non-empty leftmost label */
	dot = strchr(name, '.');
	if (!dot || dot == name || dot[1] == '\0')
		return -1;
	tn = bsearch(dot + 1, ts->ts_wild, ts->ts_nwild, sizeof(*tn),
		     tls_tn_key_cmp);
	return tn ? (ssize_t)tn->tn_group : -1;
}

/*
 * The servername callback: move the connection to the context of the
 * name it asked for.  SSL_set_SSL_CTX swaps the certificates and the
 * session id context only; verification and options are those of the
 * listener's contexts, which are all alike, and are applied again as
 * nginx does, so that they stay in force whatever OpenSSL copies.
 */
static int tls_sni_cb(SSL *ssl, int *alert, void *arg)
{
	const struct tls_server *ts = arg;
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	SSL_CTX *ctx;
	ssize_t g;

	if (!sni)
		return SSL_TLSEXT_ERR_NOACK;
	g = tls_server_lookup(ts, sni);
	if (g < 0)
		return SSL_TLSEXT_ERR_NOACK; /* the default certificate */
	ctx = ts->ts_ctx[g];
	if (SSL_get_SSL_CTX(ssl) == ctx)
		return SSL_TLSEXT_ERR_OK;
	if (SSL_set_SSL_CTX(ssl, ctx) != ctx) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	SSL_set_verify(ssl, SSL_CTX_get_verify_mode(ctx),
		       SSL_CTX_get_verify_callback(ctx));
	SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(ctx));
	SSL_clear_options(ssl,
			  SSL_get_options(ssl) & ~SSL_CTX_get_options(ctx));
	SSL_set_options(ssl, SSL_CTX_get_options(ctx));
	return SSL_TLSEXT_ERR_OK;
}

/*
 * The session id context: the same for every context of a listener and
 * every generation with the same listener, certificates and client CA,
 * so tickets resume across workers and reloads but never on another
 * listener or after the client CA changed.
 */
static int tls_sid_ctx(const struct cfg_listener *l,
		       const struct tls_server *ts,
		       unsigned char out[SHA256_DIGEST_LENGTH])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const struct cfg_tls *t = l->tls;
	unsigned char *der;
	unsigned int n;
	size_t i;
	int len, rc = -1;

	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto done;
	EVP_DigestUpdate(md, "portcullis", 11);
	if (l->name)
		EVP_DigestUpdate(md, l->name, strlen(l->name) + 1);
	for (i = 0; i < ts->ts_ncerts; i++) {
		der = NULL;
		len = i2d_X509(ts->ts_certs[i].tc_x509, &der);
		if (len < 0)
			goto done;
		EVP_DigestUpdate(md, der, (size_t)len);
		OPENSSL_free(der);
	}
	if (t->client_ca) {
		EVP_DigestUpdate(md, t->client_ca, strlen(t->client_ca) + 1);
		EVP_DigestUpdate(md, &t->verify, sizeof(t->verify));
	}
	if (EVP_DigestFinal_ex(md, out, &n) == 1)
		rc = 0;
done:
	EVP_MD_CTX_free(md);
	return rc;
}

/* Shared by every context of a listener. */
struct tls_server_setup {
	const struct cfg_listener *l;
	X509_STORE *ca_store;		/* client_ca: verify store */
	STACK_OF(X509_NAME) * ca_names; /* client_ca: names sent */
	unsigned char sid[SHA256_DIGEST_LENGTH];
};

/* A server context with everything but certificates, per the listener. */
static SSL_CTX *tls_server_ctx(struct tls_server *ts,
			       const struct tls_server_setup *su,
			       struct tls_where *w)
{
	const struct cfg_tls *t = su->l->tls;
	STACK_OF(X509_NAME) * names;
	SSL_CTX *ctx;
	char ebuf[256];
	int mode;

	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		goto fail;
	SSL_CTX_set_app_data(ctx, ts);
	if (SSL_CTX_set_min_proto_version(ctx, t->min_version == 13
						       ? TLS1_3_VERSION
						       : TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
		goto fail;
	if (SSL_CTX_set_cipher_list(ctx, t->ciphers ? t->ciphers
						    : TLS_AEAD_CIPHERS) != 1) {
		TLS_ERR(w, "ciphers '%s' match no TLS 1.2 cipher",
			t->ciphers ? t->ciphers : TLS_AEAD_CIPHERS);
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_NO_COMPRESSION |
					 SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, TLS_MODES);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/*
	 * One TLS 1.3 ticket, not two: a client resumes with one, and the
	 * second cost 6% of a full handshake's instructions (tools/bench
	 * --tls).  Read-ahead would halve the reads per connection, but
	 * with it wrk saw connections reset across reloads
	 * (test_tls.py, TlsReloadUnderLoadTest): left off until understood.
	 */
	SSL_CTX_set_num_tickets(ctx, 1);
	if (SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1 ||
	    SSL_CTX_set_session_id_context(ctx, su->sid, sizeof(su->sid)) !=
		    1 ||
	    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb) != 1)
		goto fail;
	SSL_CTX_set_tlsext_servername_callback(ctx, tls_sni_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, ts);
	if (su->l->protocol == CFG_PROTO_HTTP)
		SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_cb, NULL);
	if (su->ca_store) {
		mode = SSL_VERIFY_PEER;
		if (t->verify != CFG_TLS_VERIFY_OPTIONAL)
			mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
		SSL_CTX_set_verify(ctx, mode, NULL);
		SSL_CTX_set_verify_depth(ctx, t->verify_depth
						      ? (int)t->verify_depth
						      : TLS_DEFAULT_DEPTH);
		SSL_CTX_set1_cert_store(ctx, su->ca_store);
		names = SSL_dup_CA_list(su->ca_names);
		if (!names)
			goto fail;
		SSL_CTX_set_client_CA_list(ctx, names);
	}
	return ctx;
fail:
	TLS_ERR(w, "cannot set up the TLS context: %s",
		tls_ossl_error(ebuf, sizeof(ebuf)));
	SSL_CTX_free(ctx);
	return NULL;
}

static void tls_server_free(struct tls_server *ts)
{
	size_t i;

	if (!ts)
		return;
	for (i = 0; ts->ts_ctx && i < ts->ts_nctx; i++)
		SSL_CTX_free(ts->ts_ctx[i]);
	free(ts->ts_ctx);
	for (i = 0; i < ts->ts_ncerts; i++)
		tls_cert_free(&ts->ts_certs[i]);
	free(ts->ts_certs);
	free(ts->ts_exact);
	free(ts->ts_wild);
	explicit_bzero(&ts->ts_fallback, sizeof(ts->ts_fallback));
	free(ts);
}

/* Every name of a is one of b's. */
static bool tls_names_within(const struct tls_cert *a, const struct tls_cert *b)
{
	size_t i, j;

	for (i = 0; i < a->tc_nnames; i++) {
		for (j = 0; j < b->tc_nnames; j++)
			if (strcmp(a->tc_names[i], b->tc_names[j]) == 0)
				break;
		if (j == b->tc_nnames)
			return false;
	}
	return true;
}

/* The same set of names, in any order. */
static bool tls_same_names(const struct tls_cert *a, const struct tls_cert *b)
{
	return a->tc_nnames == b->tc_nnames && tls_names_within(a, b) &&
	       tls_names_within(b, a);
}

/*
 * Put each certificate in the group of its name set (a new group when
 * none has the same names).  A second certificate of one key type for
 * the same names would never be served: an error.
 */
static int tls_server_group(struct tls_server *ts, const struct cfg_tls *t,
			    struct tls_where *w)
{
	struct tls_cert *a, *b;
	size_t i, j, ngroups = 0;
	int rc = 0;

	for (i = 0; i < ts->ts_ncerts; i++) {
		a = &ts->ts_certs[i];
		a->tc_group = ngroups;
		for (j = 0; j < i; j++) {
			b = &ts->ts_certs[j];
			if (!tls_same_names(a, b))
				continue;
			a->tc_group = b->tc_group;
			if (a->tc_type == b->tc_type) {
				w->line = t->certs[i].line;
				w->col = t->certs[i].col;
				TLS_ERR(w,
					"certificate %s has the same names "
					"and key type as %s: it would never be "
					"served",
					a->tc_path, b->tc_path);
				rc = -1;
			}
			break;
		}
		if (a->tc_group == ngroups)
			ngroups++;
	}
	ts->ts_nctx = ngroups;
	return rc;
}

/* The exact and wildcard SNI tables: sorted, the first group kept. */
static int tls_server_names(struct tls_server *ts)
{
	struct tls_name *tn;
	size_t i, j, n = 0, k;

	for (i = 0; i < ts->ts_ncerts; i++)
		n += ts->ts_certs[i].tc_nnames;
	ts->ts_exact = calloc(n ? n : 1, sizeof(*tn));
	ts->ts_wild = calloc(n ? n : 1, sizeof(*tn));
	if (!ts->ts_exact || !ts->ts_wild)
		return -1;
	for (i = 0; i < ts->ts_ncerts; i++) {
		const struct tls_cert *tc = &ts->ts_certs[i];

		for (j = 0; j < tc->tc_nnames; j++) {
			const char *nm = tc->tc_names[j];

			if (strncmp(nm, "*.", 2) == 0 && nm[2] != '\0')
				tn = &ts->ts_wild[ts->ts_nwild++], nm += 2;
			else if (strchr(nm, '*'))
				continue; /* partial wildcards: never matched */
			else
				tn = &ts->ts_exact[ts->ts_nexact++];
			tn->tn_name = nm;
			tn->tn_group = tc->tc_group;
		}
	}
	/* sort by (name, group) and keep the first of each name */
	for (k = 0; k < 2; k++) {
		struct tls_name *v = k ? ts->ts_wild : ts->ts_exact;
		size_t *nv = k ? &ts->ts_nwild : &ts->ts_nexact, out = 0;

		qsort(v, *nv, sizeof(*v), tls_tn_cmp);
		for (i = 0; i < *nv; i++)
			if (out == 0 ||
			    strcmp(v[out - 1].tn_name, v[i].tn_name) != 0)
				v[out++] = v[i];
		*nv = out;
	}
	return 0;
}

/* Build the contexts of one listener, or NULL with errs filled. */
static struct tls_server *tls_server_build(const struct config *cfg,
					   const struct cfg_listener *l,
					   struct config_errors *errs)
{
	const struct cfg_tls *t = l->tls;
	struct tls_where w = {cfg->path, t->line, t->col, errs};
	struct tls_server_setup su = {.l = l};
	struct tls_server *ts;
	size_t i;
	int failed = 0;

	ts = calloc(1, sizeof(*ts));
	if (!ts || t->ncerts == 0 ||
	    !(ts->ts_certs = calloc(t->ncerts, sizeof(*ts->ts_certs)))) {
		TLS_ERR(&w, t->ncerts ? "out of memory"
				      : "tls: needs at least one certificate");
		goto fail;
	}
	for (i = 0; i < t->ncerts; i++) {
		struct tls_where cw = {cfg->path, t->certs[i].line,
				       t->certs[i].col, errs};

		if (tls_cert_load(&ts->ts_certs[i], t->certs[i].cert,
				  t->certs[i].key, &cw) < 0)
			failed = 1;
	}
	ts->ts_ncerts = t->ncerts;
	if (t->client_ca) {
		su.ca_store = tls_ca_load(t->client_ca, "client_ca",
					  &su.ca_names, &w);
		if (!su.ca_store)
			failed = 1;
	}
	if (failed || tls_server_group(ts, t, &w) < 0)
		goto fail;
	w.line = t->line;
	w.col = t->col;
	if (tls_server_names(ts) < 0 || tls_sid_ctx(l, ts, su.sid) < 0 ||
	    RAND_bytes((unsigned char *)&ts->ts_fallback,
		       sizeof(ts->ts_fallback)) != 1) {
		TLS_ERR(&w, "cannot set up TLS: out of memory");
		goto fail;
	}
	ts->ts_ctx = calloc(ts->ts_nctx, sizeof(*ts->ts_ctx));
	if (!ts->ts_ctx) {
		TLS_ERR(&w, "cannot set up TLS: out of memory");
		goto fail;
	}
	for (i = 0; i < ts->ts_nctx; i++) {
		ts->ts_ctx[i] = tls_server_ctx(ts, &su, &w);
		if (!ts->ts_ctx[i])
			goto fail;
	}
	for (i = 0; i < ts->ts_ncerts; i++) {
		struct tls_cert *tc = &ts->ts_certs[i];
		char ebuf[256];

		if (tls_ctx_use_cert(ts->ts_ctx[tc->tc_group], tc) < 0) {
			w.line = t->certs[i].line;
			w.col = t->certs[i].col;
			TLS_ERR(&w, "certificate %s: %s", tc->tc_path,
				tls_ossl_error(ebuf, sizeof(ebuf)));
			goto fail;
		}
	}
	X509_STORE_free(su.ca_store);
	sk_X509_NAME_pop_free(su.ca_names, X509_NAME_free);
	return ts;
fail:
	X509_STORE_free(su.ca_store);
	sk_X509_NAME_pop_free(su.ca_names, X509_NAME_free);
	tls_server_free(ts);
	return NULL;
}

SSL *tls_server_ssl(struct tls_server *ts, int fd)
{
	char ebuf[256];
	SSL *ssl;

	ssl = SSL_new(ts->ts_ctx[0]);
	if (!ssl || SSL_set_fd(ssl, fd) != 1) {
		log_warn("tls: cannot make a server connection: %s",
			 tls_ossl_error(ebuf, sizeof(ebuf)));
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_accept_state(ssl);
	return ssl;
}

size_t tls_server_describe(const struct tls_server *ts, char *out, size_t cap)
{
	size_t len = 0, i, j;
	char date[32];
	int n;

	if (cap == 0)
		return 0;
	out[0] = '\0';
	for (i = 0; i < ts->ts_ncerts && len < cap; i++) {
		const struct tls_cert *tc = &ts->ts_certs[i];
		const ASN1_TIME *na = X509_get0_notAfter(tc->tc_x509);
		int days = tls_days_left(na);

		n = snprintf(out + len, cap - len, "  cert %s: names ",
			     tc->tc_path);
		for (j = 0; n >= 0 && j < tc->tc_nnames; j++) {
			len += (size_t)n;
			if (len >= cap)
				break;
			n = snprintf(out + len, cap - len, "%s%s",
				     j ? ", " : "", tc->tc_names[j]);
		}
		if (n < 0 || (len += (size_t)n) >= cap)
			break;
		tls_date(na, date, sizeof(date));
		if (days >= 0)
			n = snprintf(out + len, cap - len,
				     "; expires %s (in %d days)\n", date, days);
		else
			n = snprintf(out + len, cap - len,
				     "; expired %s (%d days ago)\n", date,
				     -days);
		if (n < 0)
			break;
		len += (size_t)n;
	}
	if (len >= cap)
		len = cap - 1; /* truncated: snprintf kept it terminated */
	return len;
}

/* --- client contexts ---------------------------------------------------- */

static void tls_client_free(struct tls_client *tc)
{
	if (!tc)
		return;
	SSL_CTX_free(tc->tc_ctx);
	free(tc);
}

static struct tls_client *tls_client_build(const struct config *cfg,
					   const struct cfg_backend *be,
					   struct config_errors *errs)
{
	const struct cfg_upstream_tls *u = be->tls;
	struct tls_where w = {cfg->path, u->line, u->col, errs};
	struct tls_cert cert = {0};
	struct tls_client *tc;
	X509_STORE *store;
	char ebuf[256];

	tc = calloc(1, sizeof(*tc));
	if (!tc) {
		TLS_ERR(&w, "out of memory");
		return NULL;
	}
	tc->tc_verify = u->verify;
	tc->tc_ctx = SSL_CTX_new(TLS_client_method());
	if (!tc->tc_ctx)
		goto ossl_fail;
	if (SSL_CTX_set_min_proto_version(
		    tc->tc_ctx, u->min_version == 13 ? TLS1_3_VERSION
						     : TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(tc->tc_ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(tc->tc_ctx, TLS_AEAD_CIPHERS) != 1 ||
	    SSL_CTX_set1_groups_list(tc->tc_ctx, TLS_GROUPS) != 1 ||
	    SSL_CTX_set_alpn_protos(tc->tc_ctx,
				    (const unsigned char *)TLS_ALPN_HTTP11,
				    sizeof(TLS_ALPN_HTTP11) - 1) != 0)
		goto ossl_fail;
	SSL_CTX_set_options(tc->tc_ctx,
			    SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(tc->tc_ctx, TLS_MODES);
	/* the caller keeps one session per server */
	SSL_CTX_set_session_cache_mode(tc->tc_ctx, SSL_SESS_CACHE_OFF);
	if (u->verify) {
		SSL_CTX_set_verify(tc->tc_ctx, SSL_VERIFY_PEER, NULL);
		if (!u->ca_file || strcmp(u->ca_file, "system") == 0) {
			if (SSL_CTX_set_default_verify_paths(tc->tc_ctx) != 1)
				goto ossl_fail;
		} else {
			store = tls_ca_load(u->ca_file, "ca_file", NULL, &w);
			if (!store)
				goto fail;
			SSL_CTX_set_cert_store(tc->tc_ctx, store); /* owns it */
		}
	} else {
		SSL_CTX_set_verify(tc->tc_ctx, SSL_VERIFY_NONE, NULL);
	}
	if ((u->cert != NULL) != (u->key != NULL)) {
		TLS_ERR(&w, "tls: cert and key go together");
		goto fail;
	}
	if (u->cert) {
		if (tls_cert_load(&cert, u->cert, u->key, &w) < 0)
			goto fail;
		if (tls_ctx_use_cert(tc->tc_ctx, &cert) < 0) {
			TLS_ERR(&w, "certificate %s: %s", u->cert,
				tls_ossl_error(ebuf, sizeof(ebuf)));
			goto fail;
		}
		tls_cert_free(&cert);
	}
	return tc;
ossl_fail:
	TLS_ERR(&w, "cannot set up the TLS context: %s",
		tls_ossl_error(ebuf, sizeof(ebuf)));
fail:
	tls_cert_free(&cert);
	tls_client_free(tc);
	return NULL;
}

/* host is an IPv4 or IPv6 literal (IPv6 possibly in brackets): ip gets it. */
static bool tls_is_ip(const char *host, char *ip, size_t cap)
{
	unsigned char bin[sizeof(struct in6_addr)];
	size_t len = strlen(host);

	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		host++;
		len -= 2;
	}
	if (len == 0 || len >= cap)
		return false;
	memcpy(ip, host, len);
	ip[len] = '\0';
	return inet_pton(AF_INET, ip, bin) == 1 ||
	       inet_pton(AF_INET6, ip, bin) == 1;
}

SSL *tls_client_ssl(struct tls_client *tc, int fd, const char *host,
		    SSL_SESSION *session)
{
	char ebuf[256], ip[INET6_ADDRSTRLEN + 1];
	bool has_host = host && *host, is_ip;
	SSL *ssl;

	ssl = SSL_new(tc->tc_ctx);
	if (!ssl || SSL_set_fd(ssl, fd) != 1)
		goto fail;
	is_ip = has_host && tls_is_ip(host, ip, sizeof(ip));
	if (has_host && !is_ip && SSL_set_tlsext_host_name(ssl, host) != 1)
		goto fail;
	if (tc->tc_verify && has_host) {
		if (is_ip) {
			if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
							  ip) != 1)
				goto fail;
		} else {
			SSL_set_hostflags(ssl,
					  X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			if (SSL_set1_host(ssl, host) != 1)
				goto fail;
		}
	}
	if (session && SSL_set_session(ssl, session) != 1)
		goto fail;
	SSL_set_connect_state(ssl);
	return ssl;
fail:
	log_warn("tls: cannot make a connection to %s: %s",
		 has_host ? host : "(no name)",
		 tls_ossl_error(ebuf, sizeof(ebuf)));
	SSL_free(ssl);
	return NULL;
}

/*
 * The slot holds a copy: SSL_free of a connection that did not shut down
 * cleanly marks its session not resumable, and a server connection that
 * timed out in the idle pool must not spoil the next one's resumption
 * (nginx keeps such sessions too, through a quiet shutdown).
 */
void tls_client_keep_session(SSL *ssl, SSL_SESSION **slot)
{
	SSL_SESSION *sess = SSL_get0_session(ssl), *copy;

	/* TLS 1.3: no ticket yet, right after the handshake */
	if (!sess || !SSL_SESSION_is_resumable(sess))
		return;
	copy = SSL_SESSION_dup(sess);
	if (!copy) {
		ERR_clear_error();
		return;
	}
	SSL_SESSION_free(*slot);
	*slot = copy;
}

/* --- the peer ------------------------------------------------------------- */

/* The client certificate, when one was presented and verified. */
static X509 *tls_peer_verified(SSL *ssl)
{
	X509 *x = SSL_get0_peer_certificate(ssl);

	if (!x || SSL_get_verify_result(ssl) != X509_V_OK)
		return NULL;
	return x;
}

bool tls_peer_subject(SSL *ssl, char *out, size_t cap)
{
	X509 *x = tls_peer_verified(ssl);
	BIO *bio;
	char *p;
	long n;
	bool ok = false;

	if (cap > 0)
		out[0] = '\0';
	if (!x || cap == 0)
		return false;
	bio = BIO_new(BIO_s_mem());
	if (!bio)
		return false;
	if (X509_NAME_print_ex(bio, X509_get_subject_name(x), 0,
			       XN_FLAG_RFC2253) >= 0) {
		n = BIO_get_mem_data(bio, &p);
		/* a cut subject could name someone else: all or nothing */
		if (n >= 0 && (size_t)n < cap) {
			memcpy(out, p, (size_t)n);
			out[n] = '\0';
			ok = true;
		}
	}
	BIO_free(bio);
	ERR_clear_error();
	return ok;
}

bool tls_peer_fingerprint(SSL *ssl, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	X509 *x = tls_peer_verified(ssl);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	out[0] = '\0';
	if (!x || X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32) {
		ERR_clear_error();
		return false;
	}
	for (i = 0; i < n; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
	return true;
}

/* --- the configuration -----------------------------------------------------
 */

static void tls_free(struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->nlisteners; i++) {
		struct cfg_tls *t = cfg->listeners[i].tls;

		if (t) {
			tls_server_free(t->ctx);
			t->ctx = NULL;
		}
	}
	for (i = 0; i < cfg->nbackends; i++) {
		struct cfg_upstream_tls *u = cfg->backends[i].tls;

		if (u) {
			tls_client_free(u->ctx);
			u->ctx = NULL;
		}
	}
}

int tls_config_load(struct config *cfg, struct config_errors *errs)
{
	size_t i;
	int rc = 0;

	cfg->tls_free = tls_free;
	for (i = 0; i < cfg->nlisteners; i++) {
		struct cfg_listener *l = &cfg->listeners[i];

		if (!l->tls || l->tls->ctx)
			continue;
		l->tls->ctx = tls_server_build(cfg, l, errs);
		if (!l->tls->ctx)
			rc = -1;
	}
	for (i = 0; i < cfg->nbackends; i++) {
		struct cfg_backend *be = &cfg->backends[i];

		if (!be->tls || be->tls->ctx)
			continue;
		be->tls->ctx = tls_client_build(cfg, be, errs);
		if (!be->tls->ctx)
			rc = -1;
	}
	ERR_clear_error();
	return rc;
}
