/*
 * auth.c: HTTP Basic authentication (see auth.h).
 *
 * A check parses "Basic <base64>" (RFC 7617 section 2, RFC 9110 section
 * 11.4), decodes the credentials into a stack buffer, and looks for them
 * in the cache: a set-associative table of SHA-256 digests of the users
 * file's id and the credentials, AUTH_CACHE_WAYS entries per bucket,
 * least recently used out.  Only verified credentials are cached, so that
 * junk cannot push good entries out; a miss runs crypt_r, whose state
 * (32 KiB) is kept once per process.  The password never outlives the
 * check: the buffer that held it is wiped.
 */
#include "worker/auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#define AUTH_DIGEST_LEN 32 /* SHA-256 */
#define AUTH_BUCKETS	(AUTH_CACHE_ENTRIES / AUTH_CACHE_WAYS)

_Static_assert((AUTH_BUCKETS & (AUTH_BUCKETS - 1)) == 0,
	       "AUTH_CACHE_ENTRIES / AUTH_CACHE_WAYS must be a power of 2");

struct auth_entry {
	unsigned char ae_digest[AUTH_DIGEST_LEN];
	uint64_t ae_expires_ms; /* 0: empty */
	uint64_t ae_used_ms;	/* last hit, for eviction */
};

/* The decoded credentials of one header: "user:password". */
struct auth_cred {
	char ac_buf[AUTH_MAX_CREDENTIALS + 1]; /* + NUL after the password */
	size_t ac_len;
	size_t ac_user_len; /* bytes before the first ':' */
};

static struct auth_entry auth_cache[AUTH_BUCKETS][AUTH_CACHE_WAYS];
static struct crypt_data auth_crypt; /* crypt_r's state: 32 KiB */
static struct auth_stats auth_counters;
static EVP_MD *auth_sha256; /* fetched once */
static EVP_MD_CTX *auth_md;

/* ---- parsing ---------------------------------------------------------- */

static int auth_b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Strict base64 (RFC 4648 section 4): whole quanta of 4 characters, '='
 * only as the padding of the last one, padding bits zero (section 3.5).
 * Decodes into out (size bytes); the length, or -1.
 */
static ssize_t auth_b64_decode(const char *s, size_t len, char *out,
			       size_t size)
{
	size_t i, n = 0, pad = 0;
	uint32_t q;
	int k, v;

	if (len == 0 || len % 4)
		return -1;
	if (s[len - 1] == '=')
		pad = s[len - 2] == '=' ? 2 : 1;
	if (len / 4 * 3 - pad > size)
		return -1;
	for (i = 0; i < len; i += 4) {
		q = 0;
		for (k = 0; k < 4; k++) {
			bool is_pad = i + 4 == len && k >= 4 - (int)pad;

			v = is_pad ? 0
				   : auth_b64_value((unsigned char)s[i + k]);
			if (v < 0)
				return -1;
			q = q << 6 | (uint32_t)v;
		}
		out[n++] = (char)(q >> 16);
		if (i + 4 < len) {
			out[n++] = (char)(q >> 8);
			out[n++] = (char)q;
			continue;
		}
		/* The last quantum: padding bits must be zero. */
		if ((pad == 1 && (q & 0xff)) || (pad == 2 && (q & 0xffff)))
			return -1;
		if (pad < 2)
			out[n++] = (char)(q >> 8);
		if (pad < 1)
			out[n++] = (char)q;
	}
	return (ssize_t)n;
}

/* RFC 7617 section 2: neither user-id nor password holds a CTL. */
static bool auth_has_ctl(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

/*
 * credentials = auth-scheme [ 1*SP token68 ] (RFC 9110 section 11.4), the
 * scheme "Basic" in any case (section 11.1), around it optional
 * whitespace (section 5.5).  Fills c; 0 or -1.
 */
static int auth_parse(const char *v, size_t len, struct auth_cred *c)
{
	const char *colon;
	ssize_t n;

	while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	while (len && (*v == ' ' || *v == '\t'))
		v++, len--;
	if (len < 6 || strncasecmp(v, "Basic", 5) || v[5] != ' ')
		return -1;
	v += 5, len -= 5;
	while (len && *v == ' ')
		v++, len--;
	n = auth_b64_decode(v, len, c->ac_buf, AUTH_MAX_CREDENTIALS);
	if (n < 0)
		return -1;
	c->ac_len = (size_t)n;
	c->ac_buf[n] = '\0';
	colon = memchr(c->ac_buf, ':', c->ac_len);
	if (!colon || auth_has_ctl(c->ac_buf, c->ac_len))
		return -1;
	c->ac_user_len = (size_t)(colon - c->ac_buf);
	return 0;
}

/* ---- the cache -------------------------------------------------------- */

/* SHA-256 of the users file's id and the credentials; 0 or -1. */
static int auth_digest(const struct htpasswd *h, const struct auth_cred *c,
		       unsigned char *out)
{
	unsigned char id[8];
	int i;

	if (!auth_sha256) {
		auth_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
		auth_md = EVP_MD_CTX_new();
		if (!auth_sha256 || !auth_md)
			return -1;
	}
	for (i = 0; i < 8; i++)
		id[i] = (unsigned char)(h->ht_id >> (8 * i));
	if (!EVP_DigestInit_ex2(auth_md, auth_sha256, NULL) ||
	    !EVP_DigestUpdate(auth_md, id, sizeof(id)) ||
	    !EVP_DigestUpdate(auth_md, c->ac_buf, c->ac_len) ||
	    !EVP_DigestFinal_ex(auth_md, out, NULL))
		return -1;
	return 0;
}

static struct auth_entry *auth_bucket(const unsigned char *digest)
{
	uint32_t i = (uint32_t)digest[0] | (uint32_t)digest[1] << 8;

	return auth_cache[i & (AUTH_BUCKETS - 1)];
}

static bool auth_cache_hit(const unsigned char *digest, uint64_t now_ms)
{
	struct auth_entry *e = auth_bucket(digest);
	int i;

	for (i = 0; i < AUTH_CACHE_WAYS; i++)
		if (e[i].ae_expires_ms > now_ms &&
		    !CRYPTO_memcmp(e[i].ae_digest, digest, AUTH_DIGEST_LEN)) {
			e[i].ae_used_ms = now_ms;
			return true;
		}
	return false;
}

static void auth_cache_put(const unsigned char *digest, uint64_t now_ms)
{
	struct auth_entry *e = auth_bucket(digest), *victim = &e[0];
	int i;

	for (i = 0; i < AUTH_CACHE_WAYS; i++) {
		if (e[i].ae_expires_ms <= now_ms) {
			victim = &e[i];
			break;
		}
		if (e[i].ae_used_ms < victim->ae_used_ms)
			victim = &e[i];
	}
	if (victim->ae_expires_ms > now_ms)
		auth_counters.as_evictions++;
	memcpy(victim->ae_digest, digest, AUTH_DIGEST_LEN);
	victim->ae_expires_ms = now_ms + AUTH_CACHE_TTL_MS;
	victim->ae_used_ms = now_ms;
}

void auth_cache_clear(void)
{
	memset(auth_cache, 0, sizeof(auth_cache));
}

/* ---- verifying -------------------------------------------------------- */

/* Does password hash to hash?  Runs crypt_r: the costly part. */
static bool auth_verify(const char *password, const char *hash)
{
	size_t len = strlen(hash);
	const char *out;
	bool is_ok;

	auth_counters.as_hashes++;
	out = crypt_r(password, hash, &auth_crypt);
	is_ok = out && out[0] != '*' && strlen(out) == len &&
		!CRYPTO_memcmp(out, hash, len);
	explicit_bzero(&auth_crypt, sizeof(auth_crypt));
	return is_ok;
}

/* Check c against h, by the cache or by crypt_r. */
static enum auth_result auth_check_cred(const struct htpasswd *h,
					struct auth_cred *c, uint64_t now_ms)
{
	unsigned char digest[AUTH_DIGEST_LEN];
	bool has_digest = auth_digest(h, c, digest) == 0;
	const char *hash;

	if (has_digest && auth_cache_hit(digest, now_ms)) {
		auth_counters.as_hits++;
		return AUTH_OK;
	}
	auth_counters.as_misses++;
	c->ac_buf[c->ac_user_len] = '\0'; /* the user, then the password */
	hash = htpasswd_lookup(h, c->ac_buf, c->ac_user_len);
	if (!hash) {
		/* As long as a known user's check: no user enumeration by
		 * timing. */
		(void)auth_verify(c->ac_buf + c->ac_user_len + 1,
				  h->ht_users[0].hu_hash);
		return AUTH_BAD;
	}
	if (!auth_verify(c->ac_buf + c->ac_user_len + 1, hash))
		return AUTH_BAD;
	if (has_digest)
		auth_cache_put(digest, now_ms);
	return AUTH_OK;
}

enum auth_result auth_check(const struct htpasswd *h, const char *value,
			    size_t len, uint64_t now_ms, char *user,
			    size_t size)
{
	struct auth_cred c;
	enum auth_result r;
	size_t n;

	if (user && size)
		user[0] = '\0';
	if (!value)
		return AUTH_MISSING;
	if (auth_parse(value, len, &c) == -1)
		r = AUTH_BAD;
	else
		r = auth_check_cred(h, &c, now_ms);
	if (r == AUTH_OK && user && size) {
		n = c.ac_user_len < size - 1 ? c.ac_user_len : size - 1;
		memcpy(user, c.ac_buf, n);
		user[n] = '\0';
	}
	explicit_bzero(&c, sizeof(c));
	return r;
}

/* ---- the challenge ---------------------------------------------------- */

int auth_challenge(const char *realm, char *buf, size_t size)
{
	static const char head[] = "Basic realm=\"";
	static const char tail[] = "\", charset=\"UTF-8\"";
	size_t n = 0;

	if (size < sizeof(head))
		return -1;
	memcpy(buf, head, sizeof(head) - 1);
	n = sizeof(head) - 1;
	for (; *realm; realm++) {
		/* quoted-string (RFC 9110 section 5.6.4): escape '"', '\' */
		bool is_escaped = *realm == '"' || *realm == '\\';

		if (n + 1 + is_escaped >= size)
			return -1;
		if (is_escaped)
			buf[n++] = '\\';
		buf[n++] = *realm;
	}
	if (n + sizeof(tail) > size)
		return -1;
	memcpy(buf + n, tail, sizeof(tail));
	return (int)(n + sizeof(tail) - 1);
}

const struct auth_stats *auth_stats(void)
{
	return &auth_counters;
}
