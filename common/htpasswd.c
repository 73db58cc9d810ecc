/*
 * htpasswd.c: reading a users file (see htpasswd.h).
 *
 * The whole file is read into one buffer whose lines are cut in place:
 * each user is two pointers into it, and the users are sorted once so that
 * a lookup is a binary search.  Every problem is reported with its line;
 * the file is refused if there is any.
 */
#include "common/htpasswd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HTPASSWD_SHOW_USER 64 /* bytes of a user name shown in messages */

/* The 64 characters of the crypt(3) base64 alphabet. */
#define HTPASSWD_B64                                                           \
	"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

struct htpasswd_load {
	const char *path;
	htpasswd_report_fn *report;
	void *arg;
	size_t nerrors; /* found; only the first few reported */
};

static void htpasswd_error(struct htpasswd_load *ld, unsigned line,
			   const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void htpasswd_error(struct htpasswd_load *ld, unsigned line,
			   const char *fmt, ...)
{
	char msg[256], full[512];
	va_list ap;

	if (ld->nerrors++ >= HTPASSWD_MAX_ERRORS)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line)
		(void)snprintf(full, sizeof(full), "%s:%u: %s", ld->path, line,
			       msg);
	else
		(void)snprintf(full, sizeof(full), "%s: %s", ld->path, msg);
	ld->report(ld->arg, full);
}

/* A user name as messages show it: printable ASCII, bounded. */
static void htpasswd_show(const char *name, char *out, size_t size)
{
	size_t i, n = 0;

	for (i = 0; name[i] && n + 4 < size; i++) {
		if (i == HTPASSWD_SHOW_USER) {
			memcpy(out + n, "...", 3);
			n += 3;
			break;
		}
		out[n++] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
	}
	out[n] = '\0';
}

static bool htpasswd_is_b64(const char *s, size_t n)
{
	return strspn(s, HTPASSWD_B64) >= n;
}

/* "$2b$10$" + 22 characters of salt + 31 of hash; 0 or -1 (reported). */
static int htpasswd_check_bcrypt(struct htpasswd_load *ld, unsigned line,
				 const char *who, const char *hash)
{
	unsigned cost;

	if (strlen(hash) != 60 || hash[4] < '0' || hash[4] > '9' ||
	    hash[5] < '0' || hash[5] > '9' || hash[6] != '$' ||
	    !htpasswd_is_b64(hash + 7, 53)) {
		htpasswd_error(ld, line, "user '%s': malformed bcrypt hash",
			       who);
		return -1;
	}
	cost = (unsigned)(hash[4] - '0') * 10 + (unsigned)(hash[5] - '0');
	if (cost < 4 || cost > 31) {
		htpasswd_error(ld, line, "user '%s': malformed bcrypt hash",
			       who);
		return -1;
	}
	if (cost > HTPASSWD_MAX_BCRYPT_COST) {
		htpasswd_error(ld, line,
			       "user '%s': bcrypt cost %u is above %u (each "
			       "check would hold a worker too long)",
			       who, cost, HTPASSWD_MAX_BCRYPT_COST);
		return -1;
	}
	return 0;
}

/* "$6$" ["rounds=N$"] salt (1-16, no '$') "$" + 86 characters. */
static int htpasswd_check_sha512(struct htpasswd_load *ld, unsigned line,
				 const char *who, const char *hash)
{
	const char *p = hash + 3, *dollar;
	unsigned long rounds = 5000;
	char *end;

	if (!strncmp(p, "rounds=", 7)) {
		errno = 0;
		if (p[7] < '0' || p[7] > '9')
			goto malformed;
		rounds = strtoul(p + 7, &end, 10);
		if (errno || *end != '$')
			goto malformed;
		p = end + 1;
	}
	dollar = strchr(p, '$');
	if (!dollar || dollar == p || dollar - p > 16 ||
	    strlen(dollar + 1) != 86 || !htpasswd_is_b64(dollar + 1, 86))
		goto malformed;
	if (rounds > HTPASSWD_MAX_SHA512_ROUNDS) {
		htpasswd_error(ld, line,
			       "user '%s': sha512-crypt rounds %lu are above "
			       "%u (each check would hold a worker too long)",
			       who, rounds, HTPASSWD_MAX_SHA512_ROUNDS);
		return -1;
	}
	return 0;
malformed:
	htpasswd_error(ld, line, "user '%s': malformed sha512-crypt hash", who);
	return -1;
}

static int htpasswd_check_hash(struct htpasswd_load *ld, unsigned line,
			       const char *name, const char *hash)
{
	char who[HTPASSWD_SHOW_USER + 4];

	htpasswd_show(name, who, sizeof(who));
	if (!strncmp(hash, "$2y$", 4) || !strncmp(hash, "$2b$", 4) ||
	    !strncmp(hash, "$2a$", 4))
		return htpasswd_check_bcrypt(ld, line, who, hash);
	if (!strncmp(hash, "$6$", 3))
		return htpasswd_check_sha512(ld, line, who, hash);
	htpasswd_error(ld, line,
		       "user '%s': unsupported hash (use bcrypt or "
		       "sha512-crypt)",
		       who);
	return -1;
}

/* RFC 7617 section 2: a user-id has no control character (nor ':'). */
static bool htpasswd_is_user(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (!*p)
		return false;
	for (; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* Cut line (NUL-terminated, no '\n') into a user; 1 if it is one, 0 if
 * it is blank or a comment, -1 if it is bad (reported). */
static int htpasswd_line(struct htpasswd_load *ld, unsigned line, char *s,
			 size_t len, struct htpasswd_user *u)
{
	char *colon;

	if (len && s[len - 1] == '\r')
		s[--len] = '\0';
	if (strlen(s) != len) {
		htpasswd_error(ld, line, "malformed line (a NUL byte)");
		return -1;
	}
	if (s[strspn(s, " \t")] == '\0' || s[0] == '#')
		return 0;
	colon = strchr(s, ':');
	if (!colon || colon == s) {
		htpasswd_error(ld, line, "malformed line (want user:hash)");
		return -1;
	}
	*colon = '\0';
	if (!htpasswd_is_user(s)) {
		htpasswd_error(ld, line,
			       "malformed line (a user name has no control "
			       "characters)");
		return -1;
	}
	if (htpasswd_check_hash(ld, line, s, colon + 1) == -1)
		return -1;
	u->hu_name = s;
	u->hu_hash = colon + 1;
	u->hu_line = line;
	return 1;
}

static int htpasswd_cmp(const void *a, const void *b)
{
	const struct htpasswd_user *x = a, *y = b;
	int d = strcmp(x->hu_name, y->hu_name);

	if (d)
		return d;
	return x->hu_line < y->hu_line ? -1 : x->hu_line > y->hu_line;
}

/* Sort the users; report every name given twice. */
static void htpasswd_sort(struct htpasswd_load *ld, struct htpasswd *h)
{
	char who[HTPASSWD_SHOW_USER + 4];
	size_t i;

	qsort(h->ht_users, h->ht_nusers, sizeof(*h->ht_users), htpasswd_cmp);
	for (i = 1; i < h->ht_nusers; i++) {
		const struct htpasswd_user *u = &h->ht_users[i];

		if (strcmp(u[-1].hu_name, u->hu_name))
			continue;
		htpasswd_show(u->hu_name, who, sizeof(who));
		htpasswd_error(ld, u->hu_line,
			       "user '%s': duplicate user (first at line %u)",
			       who, h->ht_users[i - 1].hu_line);
	}
}

/* Cut every line of h->ht_text into h->ht_users. */
static void htpasswd_parse(struct htpasswd_load *ld, struct htpasswd *h)
{
	char *s = h->ht_text, *end = h->ht_text + h->ht_len, *nl;
	unsigned line = 0;
	int rc;

	for (; s < end; s = nl + 1) {
		line++;
		nl = memchr(s, '\n', (size_t)(end - s));
		if (!nl)
			nl = end; /* ht_text has a NUL after its last byte */
		*nl = '\0';
		/* ht_users has a spare slot past HTPASSWD_MAX_USERS. */
		rc = htpasswd_line(ld, line, s, (size_t)(nl - s),
				   &h->ht_users[h->ht_nusers]);
		if (rc == 1 && h->ht_nusers++ == HTPASSWD_MAX_USERS) {
			h->ht_nusers--;
			htpasswd_error(ld, line, "more than %u users",
				       HTPASSWD_MAX_USERS);
			return;
		}
	}
}

/* Read the regular file at path, bounded, NUL-terminated; 0 or -1. */
static int htpasswd_read(struct htpasswd_load *ld, struct htpasswd *h)
{
	struct stat st;
	ssize_t n;
	size_t cap;
	int fd;

	fd = open(ld->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		htpasswd_error(ld, 0, "cannot open: %s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		htpasswd_error(ld, 0, "not a regular file");
		goto fail;
	}
	if ((uint64_t)st.st_size > HTPASSWD_MAX_BYTES) {
		htpasswd_error(ld, 0, "bigger than %u bytes",
			       HTPASSWD_MAX_BYTES);
		goto fail;
	}
	/* One byte more than the size, to see a file that grows. */
	cap = (size_t)st.st_size;
	h->ht_text = malloc(cap + 2);
	if (!h->ht_text) {
		htpasswd_error(ld, 0, "out of memory");
		goto fail;
	}
	while (h->ht_len <= cap) {
		n = read(fd, h->ht_text + h->ht_len, cap + 1 - h->ht_len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			htpasswd_error(ld, 0, "cannot read: %s",
				       strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		h->ht_len += (size_t)n;
	}
	if (h->ht_len > cap) {
		htpasswd_error(ld, 0, "changed while it was read");
		goto fail;
	}
	h->ht_text[h->ht_len] = '\0';
	close(fd);
	return 0;
fail:
	close(fd);
	return -1;
}

/* A fresh identity for this load, so that caches keyed by it never mix
 * two generations of a file (a new object may reuse an old address). */
static uint64_t htpasswd_new_id(void)
{
	static uint64_t serial;
	struct timespec ts;
	uint64_t id;

	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) == sizeof(id))
		return id ^ ++serial;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
	       (++serial << 48);
}

struct htpasswd *htpasswd_load(const char *path, htpasswd_report_fn *report,
			       void *arg)
{
	struct htpasswd_load ld = {path, report, arg, 0};
	struct htpasswd *h = calloc(1, sizeof(*h));
	size_t maxusers;

	if (!h) {
		htpasswd_error(&ld, 0, "out of memory");
		return NULL;
	}
	if (htpasswd_read(&ld, h) == -1)
		goto fail;
	/* Each user takes at least "u:" and a hash of 60 bytes (bcrypt). */
	maxusers = h->ht_len / 62 + 1;
	if (maxusers > HTPASSWD_MAX_USERS)
		maxusers = HTPASSWD_MAX_USERS;
	h->ht_users = calloc(maxusers + 1, sizeof(*h->ht_users));
	if (!h->ht_users) {
		htpasswd_error(&ld, 0, "out of memory");
		goto fail;
	}
	htpasswd_parse(&ld, h);
	if (ld.nerrors == 0 && h->ht_nusers == 0)
		htpasswd_error(&ld, 0, "no users");
	htpasswd_sort(&ld, h);
	if (ld.nerrors > HTPASSWD_MAX_ERRORS) {
		char msg[512];

		(void)snprintf(msg, sizeof(msg), "%s: %zu more errors", path,
			       ld.nerrors - HTPASSWD_MAX_ERRORS);
		report(arg, msg);
	}
	if (ld.nerrors)
		goto fail;
	h->ht_id = htpasswd_new_id();
	return h;
fail:
	htpasswd_free(h);
	return NULL;
}

const char *htpasswd_lookup(const struct htpasswd *h, const char *user,
			    size_t len)
{
	size_t lo = 0, hi = h->ht_nusers, mid;
	const char *name;
	int d;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		name = h->ht_users[mid].hu_name;
		d = strncmp(name, user, len);
		if (d == 0)
			d = name[len] != '\0'; /* name is longer: after user */
		if (d == 0)
			return h->ht_users[mid].hu_hash;
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void htpasswd_free(struct htpasswd *h)
{
	if (!h)
		return;
	if (h->ht_text)
		explicit_bzero(h->ht_text, h->ht_len);
	free(h->ht_text);
	free(h->ht_users);
	free(h);
}
