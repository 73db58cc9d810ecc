/*
 * test_auth.c: HTTP Basic authentication (worker/auth.c) and the users
 * files it checks against (common/htpasswd.c).
 *
 * Hashes are made at test time: bcrypt and SHA-512-crypt through
 * libxcrypt (crypt_gensalt_rn, crypt_r), and with the tools the manual
 * names (htpasswd -B, openssl passwd -6) when they are installed.
 */
#include <check.h>
#include <crypt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/htpasswd.h"
#include "worker/auth.h"

static char tmpdir[] = "/tmp/test_auth.XXXXXX";

/* ---- helpers ---------------------------------------------------------- */

static void setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	auth_cache_clear();
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Write text to tmpdir/name; returns the path (static, one at a time). */
static const char *write_file(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	return path;
}

/* A new hash of password with the setting prefix ("$2b$", "$6$"). */
static char *make_hash(const char *prefix, unsigned long cost,
		       const char *password)
{
	static struct crypt_data data;
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	char *out;

	ck_assert_ptr_nonnull(
		crypt_gensalt_rn(prefix, cost, NULL, 0, salt, sizeof(salt)));
	memset(&data, 0, sizeof(data));
	out = crypt_r(password, salt, &data);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_ne(out[0], '*');
	return strdup(out);
}

/* The first line a shell command prints, or NULL if it fails. */
static char *run(const char *cmd)
{
	char line[512];
	FILE *p = popen(cmd, "r");
	char *s = NULL;

	if (!p)
		return NULL;
	if (fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\r\n")] = '\0';
		s = strdup(line);
	}
	if (pclose(p) != 0) {
		free(s);
		return NULL;
	}
	return s;
}

static char *errs[HTPASSWD_MAX_ERRORS + 2];
static size_t nerrs;

static void collect(void *arg, const char *msg)
{
	(void)arg;
	ck_assert_uint_lt(nerrs, sizeof(errs) / sizeof(errs[0]));
	errs[nerrs++] = strdup(msg);
}

static void errs_clear(void)
{
	while (nerrs)
		free(errs[--nerrs]);
}

static struct htpasswd *load_ok(const char *path)
{
	struct htpasswd *h = htpasswd_load(path, collect, NULL);

	ck_assert_msg(h != NULL, "%s", nerrs ? errs[0] : "(no message)");
	ck_assert_uint_eq(nerrs, 0);
	return h;
}

/* Loading text must fail with exactly the messages given, in order; each
 * "%s" in them stands for the file's path. */
static void expect_load_errors(int line, const char *text, size_t n, ...)
{
	const char *path = write_file("users", text);
	struct htpasswd *h = htpasswd_load(path, collect, NULL);
	char want[512];
	va_list ap;
	size_t i;

	ck_assert_msg(h == NULL, "line %d: loaded a file with errors", line);
	ck_assert_msg(nerrs == n, "line %d: %zu errors, not %zu (first: %s)",
		      line, nerrs, n, nerrs ? errs[0] : "-");
	va_start(ap, n);
	for (i = 0; i < n; i++) {
		snprintf(want, sizeof(want), va_arg(ap, const char *), path);
		ck_assert_msg(!strcmp(errs[i], want),
			      "line %d: error %zu is\n  '%s'\nnot\n  '%s'",
			      line, i, errs[i], want);
	}
	va_end(ap);
	errs_clear();
}

#define EXPECT_LOAD_ERRORS(text, ...)                                          \
	expect_load_errors(__LINE__, text,                                     \
			   sizeof((const char *[]){__VA_ARGS__}) /             \
				   sizeof(const char *),                       \
			   __VA_ARGS__)

/* "Basic " + base64(credentials), in a static buffer. */
static const char *basic(const char *credentials)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqr"
				  "stuvwxyz0123456789+/";
	static char out[2048];
	const unsigned char *s = (const unsigned char *)credentials;
	size_t len = strlen(credentials), i, n;
	uint32_t q;

	n = (size_t)sprintf(out, "Basic ");
	for (i = 0; i < len; i += 3) {
		q = (uint32_t)s[i] << 16;
		if (i + 1 < len)
			q |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < len)
			q |= s[i + 2];
		out[n++] = b64[q >> 18 & 63];
		out[n++] = b64[q >> 12 & 63];
		out[n++] = i + 1 < len ? b64[q >> 6 & 63] : '=';
		out[n++] = i + 2 < len ? b64[q & 63] : '=';
	}
	out[n] = '\0';
	return out;
}

static enum auth_result check(const struct htpasswd *h, const char *value,
			      uint64_t now)
{
	return auth_check(h, value, strlen(value), now, NULL, 0);
}

/* CPU time of this thread: what a check costs a worker, however loaded
 * the machine that runs the test. */
static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* ---- the users file --------------------------------------------------- */

START_TEST(test_load_schemes)
{
	char *b = make_hash("$2b$", 4, "b-pass");
	char *y = make_hash("$2y$", 4, "y-pass");
	char *a = make_hash("$2a$", 4, "a-pass");
	char *six = make_hash("$6$", 0, "six-pass");
	char text[1024];
	struct htpasswd *h;

	snprintf(text, sizeof(text),
		 "# users of ops\n"
		 "\n"
		 "bob:%s\n"
		 "   \n"
		 "yann:%s\r\n"
		 "ann:%s\n"
		 "sixtine:%s",
		 b, y, a, six);
	h = load_ok(write_file("users", text));
	ck_assert_uint_eq(h->ht_nusers, 4);
	ck_assert_str_eq(htpasswd_lookup(h, "bob", 3), b);
	ck_assert_str_eq(htpasswd_lookup(h, "yann", 4), y); /* CRLF cut */
	ck_assert_str_eq(htpasswd_lookup(h, "ann", 3), a);
	ck_assert_str_eq(htpasswd_lookup(h, "sixtine", 7), six);
	ck_assert_ptr_null(htpasswd_lookup(h, "bo", 2));
	ck_assert_ptr_null(htpasswd_lookup(h, "bobby", 5));
	ck_assert_ptr_null(htpasswd_lookup(h, "", 0));
	ck_assert_str_eq(htpasswd_lookup(h, "bobby", 3), b);
	htpasswd_free(h);
	free(b), free(y), free(a), free(six);
}
END_TEST

/* A lookup finds each of many users, and nothing between them. */
START_TEST(test_load_many)
{
	const char *hash = "$2b$04$abcdefghijklmnopqrstuuOQiyCxlgf/"
			   "oeuTqixKmWdcYUh4Hjl0a";
	size_t n = 5000, i, len = 0;
	char *text = malloc(n * 80), name[32];
	struct htpasswd *h;

	for (i = n; i-- > 0;)
		len += (size_t)sprintf(text + len, "user%zu:%s\n", i * 2, hash);
	h = load_ok(write_file("users", text));
	ck_assert_uint_eq(h->ht_nusers, n);
	for (i = 0; i < 2 * n; i++) {
		snprintf(name, sizeof(name), "user%zu", i);
		ck_assert_msg((htpasswd_lookup(h, name, strlen(name)) !=
			       NULL) == (i % 2 == 0),
			      "%s", name);
	}
	htpasswd_free(h);
	free(text);
}
END_TEST

START_TEST(test_load_unsupported)
{
	/* Each refused with its line: MD5 (Apache and crypt), SHA-1, DES,
	 * SHA-256-crypt, yescrypt, plain text. */
	EXPECT_LOAD_ERRORS(
		"# old\n"
		"alice:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n"
		"bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"
		"carol:$1$saltsalt$qjXMvbEw8oaL.CzflDugX/\n"
		"dave:rqXexS6ZhobKA\n"
		"erin:$5$saltsalt$Gcm6FsVtF/Qa77ZKD.iwsJlCVPY0XSMgLJL0Hnww/c1\n"
		"frank:$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o."
		"9agCG9G317fhZg9"
		"SqC.5i5rd.RhAtQ7\n"
		"grace:secret\n",
		"%s:2: user 'alice': unsupported hash (use bcrypt or "
		"sha512-crypt)",
		"%s:3: user 'bob': unsupported hash (use bcrypt or "
		"sha512-crypt)",
		"%s:4: user 'carol': unsupported hash (use bcrypt or "
		"sha512-crypt)",
		"%s:5: user 'dave': unsupported hash (use bcrypt or "
		"sha512-crypt)",
		"%s:6: user 'erin': unsupported hash (use bcrypt or "
		"sha512-crypt)",
		"%s:7: user 'frank': unsupported hash (use bcrypt or "
		"sha512-crypt)",
		"%s:8: user 'grace': unsupported hash (use bcrypt or "
		"sha512-crypt)");
}
END_TEST

START_TEST(test_load_errors)
{
	char text[512];
	char *b = make_hash("$2b$", 4, "pw");

	/* Duplicate users, each named with the line of the first. */
	snprintf(text, sizeof(text), "bob:%s\nann:%s\nbob:%s\nann:%s\n", b, b,
		 b, b);
	EXPECT_LOAD_ERRORS(
		text, "%s:4: user 'ann': duplicate user (first at line 2)",
		"%s:3: user 'bob': duplicate user (first at line 1)");
	/* Lines that are not user:hash. */
	snprintf(text, sizeof(text), "bob\n:%s\nann\t:%s\n", b, b);
	EXPECT_LOAD_ERRORS(text, "%s:1: malformed line (want user:hash)",
			   "%s:2: malformed line (want user:hash)",
			   "%s:3: malformed line (a user name has no control "
			   "characters)");
	/* Hashes of the right scheme but the wrong form. */
	EXPECT_LOAD_ERRORS("bob:$2b$04$short\n"
			   "ann:$2y$99$abcdefghijklmnopqrstuuOQiyCxlgf/"
			   "oeuTqixKmWdcYUh4Hjl0a\n"
			   "six:$6$salt$tooshort\n"
			   "sam:$6$rounds=x$salt$" /* then 86 characters */
			   "IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY.."
			   "TKjv1T..8RadRt2qvUHYRLr/TsVArtr91iR1\n",
			   "%s:1: user 'bob': malformed bcrypt hash",
			   "%s:2: user 'ann': malformed bcrypt hash",
			   "%s:3: user 'six': malformed sha512-crypt hash",
			   "%s:4: user 'sam': malformed sha512-crypt hash");
	/* Hashes too slow for an event loop. */
	EXPECT_LOAD_ERRORS("bob:$2b$13$abcdefghijklmnopqrstuuOQiyCxlgf/"
			   "oeuTqixKmWdcYUh4Hjl0a\n"
			   "six:$6$rounds=300000$salt$"
			   "IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY.."
			   "TKjv1T..8RadRt2qvUHYRLr/TsVArtr91iR1\n",
			   "%s:1: user 'bob': bcrypt cost 13 is above 12 (each "
			   "check would hold a worker too long)",
			   "%s:2: user 'six': sha512-crypt rounds 300000 are "
			   "above 200000 (each check would hold a worker too "
			   "long)");
	/* Nothing but comments. */
	EXPECT_LOAD_ERRORS("# nobody\n\n", "%s: no users");
	/* Only the first HTPASSWD_MAX_ERRORS are told, then a count. */
	EXPECT_LOAD_ERRORS("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\n",
			   "%s:1: malformed line (want user:hash)",
			   "%s:2: malformed line (want user:hash)",
			   "%s:3: malformed line (want user:hash)",
			   "%s:4: malformed line (want user:hash)",
			   "%s:5: malformed line (want user:hash)",
			   "%s:6: malformed line (want user:hash)",
			   "%s:7: malformed line (want user:hash)",
			   "%s:8: malformed line (want user:hash)",
			   "%s:9: malformed line (want user:hash)",
			   "%s:10: malformed line (want user:hash)",
			   "%s: 2 more errors");
	free(b);
}
END_TEST

START_TEST(test_load_files)
{
	ck_assert_ptr_null(htpasswd_load("/nonexistent/users", collect, NULL));
	ck_assert_uint_eq(nerrs, 1);
	ck_assert_str_eq(errs[0], "/nonexistent/users: cannot open: No such "
				  "file or directory");
	errs_clear();
	/* Never a device or a pipe: the master must not block on it. */
	ck_assert_ptr_null(htpasswd_load("/dev/zero", collect, NULL));
	ck_assert_uint_eq(nerrs, 1);
	ck_assert_str_eq(errs[0], "/dev/zero: not a regular file");
	errs_clear();
	ck_assert_ptr_null(htpasswd_load(tmpdir, collect, NULL));
	ck_assert_uint_eq(nerrs, 1);
	errs_clear();
}
END_TEST

/* ---- checking credentials --------------------------------------------- */

/* Users bob (bcrypt $2b$), yann ($2y$) and six (sha512-crypt). */
static struct htpasswd *users_bys(void)
{
	char *b = make_hash("$2b$", 5, "bob-pw");
	char *y = run("htpasswd -nbB -C 5 yann 'yann pw:x' 2>/dev/null");
	char *six = run("openssl passwd -6 'six-pw' 2>/dev/null");
	char text[1024];
	struct htpasswd *h;

	/* htpasswd -B writes "yann:$2y$..."; without the tools, libxcrypt. */
	if (y && strncmp(y, "yann:$2y$05$", 12)) {
		free(y);
		y = NULL;
	}
	if (!y) {
		char *hash = make_hash("$2y$", 5, "yann pw:x");

		ck_assert_int_ne(asprintf(&y, "yann:%s", hash), -1);
		free(hash);
	}
	if (!six)
		six = make_hash("$6$", 0, "six-pw");
	ck_assert_int_eq(strncmp(six, "$6$", 3), 0);
	snprintf(text, sizeof(text), "bob:%s\n%s\nsix:%s\n", b, y, six);
	h = load_ok(write_file("users", text));
	free(b), free(y), free(six);
	return h;
}

START_TEST(test_check_good)
{
	struct htpasswd *h = users_bys();
	const char *v;
	char user[16];

	v = basic("bob:bob-pw");
	ck_assert_int_eq(auth_check(h, v, strlen(v), 0, user, sizeof(user)),
			 AUTH_OK);
	ck_assert_str_eq(user, "bob");
	/* RFC 7617 section 2: the password may hold ':' (and spaces). */
	v = basic("yann:yann pw:x");
	ck_assert_int_eq(auth_check(h, v, strlen(v), 0, user, sizeof(user)),
			 AUTH_OK);
	ck_assert_str_eq(user, "yann");
	v = basic("six:six-pw");
	ck_assert_int_eq(auth_check(h, v, strlen(v), 0, user, 3), AUTH_OK);
	ck_assert_str_eq(user, "si"); /* truncated to the buffer */
	htpasswd_free(h);
}
END_TEST

START_TEST(test_check_bad)
{
	struct htpasswd *h = users_bys();
	const struct auth_stats *st = auth_stats();
	uint64_t hashes = st->as_hashes;
	char user[16] = "x";
	const char *v;

	v = basic("bob:wrong");
	ck_assert_int_eq(auth_check(h, v, strlen(v), 0, user, sizeof(user)),
			 AUTH_BAD);
	ck_assert_str_eq(user, "");
	ck_assert_int_eq(check(h, basic("bob:bob-pw "), 0), AUTH_BAD);
	ck_assert_int_eq(check(h, basic("bob:"), 0), AUTH_BAD);
	ck_assert_int_eq(check(h, basic("Bob:bob-pw"), 0), AUTH_BAD);
	ck_assert_int_eq(check(h, basic("six:bob-pw"), 0), AUTH_BAD);
	ck_assert_uint_eq(st->as_hashes, hashes + 5);
	/* An unknown user costs a hash too: no enumeration by timing. */
	ck_assert_int_eq(check(h, basic("mallory:bob-pw"), 0), AUTH_BAD);
	ck_assert_int_eq(check(h, basic(":bob-pw"), 0), AUTH_BAD);
	ck_assert_uint_eq(st->as_hashes, hashes + 7);
	/* Failures are not cached: a retry hashes again. */
	ck_assert_int_eq(check(h, basic("bob:wrong"), 0), AUTH_BAD);
	ck_assert_uint_eq(st->as_hashes, hashes + 8);
	htpasswd_free(h);
}
END_TEST

START_TEST(test_check_missing)
{
	struct htpasswd *h = users_bys();

	ck_assert_int_eq(auth_check(h, NULL, 0, 0, NULL, 0), AUTH_MISSING);
	/* An empty header is there, and wrong. */
	ck_assert_int_eq(auth_check(h, "", 0, 0, NULL, 0), AUTH_BAD);
	htpasswd_free(h);
}
END_TEST

START_TEST(test_check_malformed)
{
	struct htpasswd *h = users_bys();
	const struct auth_stats *st = auth_stats();
	uint64_t hashes = st->as_hashes;
	static const char *const bad[] = {
		"Basic",
		"Basic ",
		"Basic  ",
		"Basi Ym9iOmJvYi1wdw==",
		"BasicYm9iOmJvYi1wdw==", /* RFC 9110 11.4: 1*SP */
		"Basic\tYm9iOmJvYi1wdw==",
		"Bearer Ym9iOmJvYi1wdw==",
		"Digest username=\"bob\"",
		"Basic Ym9iOmJvYi1wdw", /* RFC 4648 4: padding */
		"Basic Ym9iOmJvYi1wdw=",
		"Basic Ym9iOmJvYi1wdw===",
		"Basic Ym9iOm=JvYi1wdw==",
		"Basic Ym9iOmJvYi1wdw==,",
		"Basic Ym9iOmJvYi1wdw== x",
		"Basic Ym9iOmJvYi1wdx==", /* 3.5: non-zero pad bits */
		"Basic Ym9i-mJvYi1wdw==", /* base64url is not base64 */
		"Basic Ym9iOmJvYi1wdw==\r\n",
		"Basic Ym9i", /* "bob": no ':' (RFC 7617 2) */
	};
	size_t i;

	/* The good one, for reference: "bob:bob-pw". */
	ck_assert_str_eq(basic("bob:bob-pw"), "Basic Ym9iOmJvYi1wdw==");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(check(h, bad[i], 0) == AUTH_BAD, "'%s'", bad[i]);
	/* RFC 7617 section 2: no control characters, NUL included. */
	ck_assert_int_eq(check(h, basic("bob:bob\x01pw"), 0), AUTH_BAD);
	ck_assert_int_eq(check(h, basic("b\x7f:bob-pw"), 0), AUTH_BAD);
	ck_assert_int_eq(check(h, "Basic Ym9iOmJvYgBwdw==", 0), AUTH_BAD);
	/* None of them got as far as a hash. */
	ck_assert_uint_eq(st->as_hashes, hashes);
	/* Credentials longer than AUTH_MAX_CREDENTIALS. */
	{
		char *big = malloc(AUTH_MAX_CREDENTIALS + 8);

		memset(big, 'a', AUTH_MAX_CREDENTIALS + 7);
		memcpy(big, "bob:", 4);
		big[AUTH_MAX_CREDENTIALS + 1] = '\0';
		ck_assert_int_eq(check(h, basic(big), 0), AUTH_BAD);
		ck_assert_uint_eq(st->as_hashes, hashes);
		free(big);
	}
	htpasswd_free(h);
}
END_TEST

/* RFC 9110 section 11.1: the scheme is case-insensitive; 11.4: 1*SP;
 * 5.5: whitespace around the field value is not part of it. */
START_TEST(test_check_scheme_case)
{
	struct htpasswd *h = users_bys();

	ck_assert_int_eq(check(h, "basic Ym9iOmJvYi1wdw==", 0), AUTH_OK);
	ck_assert_int_eq(check(h, "BASIC Ym9iOmJvYi1wdw==", 0), AUTH_OK);
	ck_assert_int_eq(check(h, "bAsIc Ym9iOmJvYi1wdw==", 0), AUTH_OK);
	ck_assert_int_eq(check(h, "Basic   Ym9iOmJvYi1wdw==", 0), AUTH_OK);
	ck_assert_int_eq(check(h, " \tBasic Ym9iOmJvYi1wdw== \t", 0), AUTH_OK);
	/* The length given is what counts, not a NUL. */
	ck_assert_int_eq(
		auth_check(h, "Basic Ym9iOmJvYi1wdw==XYZ", 22, 0, NULL, 0),
		AUTH_OK);
	htpasswd_free(h);
}
END_TEST

/* The cache: a verified credential is hashed once, then answered from
 * memory until it expires or the users file is reloaded. */
START_TEST(test_cache_hit)
{
	char *b = make_hash("$2b$", 10, "costly");
	char *six = make_hash("$6$", 0, "costly");
	char text[512];
	const struct auth_stats *st = auth_stats();
	struct htpasswd *h, *h2;
	uint64_t hashes;
	double t0, t1, t2, t3;
	const char *v;
	char user[16];
	int i;

	snprintf(text, sizeof(text), "bob:%s\nsix:%s\n", b, six);
	h = load_ok(write_file("users", text));
	v = basic("bob:costly");

	hashes = st->as_hashes;
	t0 = now_us();
	ck_assert_int_eq(check(h, v, 1000), AUTH_OK);
	t1 = now_us();
	ck_assert_int_eq(auth_check(h, v, strlen(v), 2000, user, sizeof(user)),
			 AUTH_OK);
	t2 = now_us();
	ck_assert_str_eq(user, "bob");
	ck_assert_uint_eq(st->as_hashes, hashes + 1);
	for (i = 0; i < 1000; i++)
		ck_assert_int_eq(check(h, v, 2000), AUTH_OK);
	t3 = now_us();
	ck_assert_uint_eq(st->as_hashes, hashes + 1);
	printf("auth: bcrypt cost 10: first check %.1f us CPU, cached %.2f us "
	       "(mean of 1000 more: %.2f us)\n",
	       t1 - t0, t2 - t1, (t3 - t2) / 1000);

	v = basic("six:costly");
	t0 = now_us();
	ck_assert_int_eq(check(h, v, 1000), AUTH_OK);
	t1 = now_us();
	ck_assert_int_eq(check(h, v, 2000), AUTH_OK);
	t2 = now_us();
	ck_assert_uint_eq(st->as_hashes, hashes + 2);
	printf("auth: sha512-crypt 5000 rounds: first check %.1f us CPU, "
	       "cached "
	       "%.2f us\n",
	       t1 - t0, t2 - t1);

	/* The same credential spelled with another scheme case is a hit. */
	ck_assert_int_eq(check(h, "BASIC Ym9iOmNvc3RseQ==", 3000), AUTH_OK);
	ck_assert_uint_eq(st->as_hashes, hashes + 2);
	/* A wrong password never hits, even right after a good one. */
	ck_assert_int_eq(check(h, basic("bob:costlY"), 3000), AUTH_BAD);
	ck_assert_uint_eq(st->as_hashes, hashes + 3);

	/* Expired AUTH_CACHE_TTL_MS after it was verified: hashed again. */
	v = basic("bob:costly");
	ck_assert_int_eq(check(h, v, 1000 + AUTH_CACHE_TTL_MS - 1), AUTH_OK);
	ck_assert_uint_eq(st->as_hashes, hashes + 3);
	ck_assert_int_eq(check(h, v, 1000 + AUTH_CACHE_TTL_MS), AUTH_OK);
	ck_assert_uint_eq(st->as_hashes, hashes + 4);

	/* A reload (a new htpasswd, even of the same file) misses. */
	h2 = load_ok(write_file("users", text));
	ck_assert_int_eq(check(h2, v, 5000), AUTH_OK);
	ck_assert_uint_eq(st->as_hashes, hashes + 5);
	/* ... and bob removed from the file is refused at once. */
	htpasswd_free(h2);
	snprintf(text, sizeof(text), "six:%s\n", six);
	h2 = load_ok(write_file("users", text));
	ck_assert_int_eq(check(h2, v, 5000), AUTH_BAD);

	htpasswd_free(h);
	htpasswd_free(h2);
	free(b), free(six);
}
END_TEST

/* The cache holds at most AUTH_CACHE_ENTRIES: more credentials evict. */
START_TEST(test_cache_bound)
{
	/* 2048 users, one cheap hash (sha512-crypt, 1000 rounds) of "pw". */
	static struct crypt_data data;
	const size_t n = 2 * AUTH_CACHE_ENTRIES;
	const struct auth_stats *st = auth_stats();
	char *text = malloc(n * 140), cred[32], *hash;
	uint64_t hashes, hits, evictions;
	struct htpasswd *h;
	size_t i, len = 0;

	hash = crypt_r("pw", "$6$rounds=1000$saltsalt$", &data);
	ck_assert_int_eq(hash[0], '$');
	for (i = 0; i < n; i++)
		len += (size_t)sprintf(text + len, "u%zu:%s\n", i, hash);
	h = load_ok(write_file("users", text));
	evictions = st->as_evictions;
	hashes = st->as_hashes;
	for (i = 0; i < n; i++) {
		snprintf(cred, sizeof(cred), "u%zu:pw", i);
		ck_assert_int_eq(check(h, basic(cred), 1), AUTH_OK);
	}
	ck_assert_uint_eq(st->as_hashes, hashes + n);
	/* Each credential past the capacity replaced a live one. */
	ck_assert_uint_ge(st->as_evictions - evictions, n - AUTH_CACHE_ENTRIES);
	/* And at most AUTH_CACHE_ENTRIES of them are still there. */
	hits = st->as_hits;
	for (i = 0; i < n; i++) {
		snprintf(cred, sizeof(cred), "u%zu:pw", i);
		(void)check(h, basic(cred), 1);
	}
	ck_assert_uint_le(st->as_hits - hits, AUTH_CACHE_ENTRIES);
	ck_assert_uint_gt(st->as_hits - hits, 0);
	htpasswd_free(h);
	free(text);
}
END_TEST

/* RFC 7617 section 2: realm and charset, the realm a quoted-string
 * (RFC 9110 section 5.6.4). */
START_TEST(test_challenge)
{
	char buf[AUTH_CHALLENGE_MAX], realm[129];

	ck_assert_int_eq(auth_challenge("ops", buf, sizeof(buf)), 34);
	ck_assert_str_eq(buf, "Basic realm=\"ops\", charset=\"UTF-8\"");
	ck_assert_int_eq(auth_challenge("a \"b\" \\c", buf, sizeof(buf)), 42);
	ck_assert_str_eq(
		buf, "Basic realm=\"a \\\"b\\\" \\\\c\", charset=\"UTF-8\"");
	/* The longest realm, all escaped, fits in AUTH_CHALLENGE_MAX. */
	memset(realm, '"', 128);
	realm[128] = '\0';
	ck_assert_int_eq(auth_challenge(realm, buf, sizeof(buf)), 31 + 2 * 128);
	/* Too small: -1, never a cut header. */
	ck_assert_int_eq(auth_challenge("ops", buf, 34), -1);
	ck_assert_int_eq(auth_challenge("ops", buf, 35), 34);
	ck_assert_int_eq(auth_challenge("ops", buf, 4), -1);
}
END_TEST

static Suite *auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *tc = tcase_create("auth");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_load_schemes);
	tcase_add_test(tc, test_load_many);
	tcase_add_test(tc, test_load_unsupported);
	tcase_add_test(tc, test_load_errors);
	tcase_add_test(tc, test_load_files);
	tcase_add_test(tc, test_check_good);
	tcase_add_test(tc, test_check_bad);
	tcase_add_test(tc, test_check_missing);
	tcase_add_test(tc, test_check_malformed);
	tcase_add_test(tc, test_check_scheme_case);
	tcase_add_test(tc, test_cache_hit);
	tcase_add_test(tc, test_cache_bound);
	tcase_add_test(tc, test_challenge);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(auth_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
