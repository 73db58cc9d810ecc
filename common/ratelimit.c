/* ratelimit.c: shared rate limits and connection caps (see ratelimit.h). */
#include "common/ratelimit.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"

#define RATE_MAGIC     UINT64_C(0x7063726c74763031) /* "pcrltv01": layout */
#define RATE_NS_PER_MS UINT64_C(1000000)
#define RATE_NS_PER_S  UINT64_C(1000000000)
#define RATE_TRIES     8 /* lost races before an operation gives up (fail-open) */

/*
 * One client entry, 16 bytes.  re_key packs the key's 48-bit tag (0 =
 * empty) and, for a connection entry, its count (low 16 bits), so that
 * replacing an entry ("tag V with no connections" -> "tag K") and
 * counting on it ("tag K, n" -> "tag K, n+1") are each one CAS and can
 * never mix.  re_tat is, for a token bucket, the GCRA theoretical
 * arrival time in monotonic nanoseconds (0: a full bucket) and, for a
 * connection entry, when it was last used; either way the entry with the
 * smallest re_tat is the least recently seen.
 */
struct rate_entry {
	_Atomic uint64_t re_key;
	_Atomic uint64_t re_tat;
};

struct rate_listener {
	char rl_key[RATE_LISTENER_KEY]; /* "" = free; the master writes it */
	_Atomic uint32_t rl_gen;	/* newest generation that uses it */
	_Atomic uint32_t rl_conns;	/* connections, all workers */
} __attribute__((aligned(128)));

struct rate_table {
	uint64_t rt_magic;   /* RATE_MAGIC */
	uint64_t rt_size;    /* bytes mapped */
	uint64_t rt_seed[2]; /* SipHash key: tags cannot be chosen */
	uint32_t rt_ngroups; /* groups of RATE_WAYS entries */
	uint32_t rt_unused;
	_Atomic uint64_t rt_evictions; /* entries replaced */
	char rt_pad[64 - 6 * 8];
	struct rate_listener rt_listeners[RATE_MAX_LISTENERS];
	struct rate_entry rt_entries[] __attribute__((aligned(64)));
};

/* A hold: (entry index + 1) | (listener slot + 1) << 32; 0 = free. */
#define HOLD_ENTRY(r) ((uint32_t)(r))
#define HOLD_LSLOT(r) ((uint32_t)((r) >> 32) & 0xffff)

struct rate_holds {
	size_t rh_len; /* bytes mapped */
	uint32_t rh_nworkers;
	uint32_t rh_per_worker;
	char rh_pad[48];
	_Atomic uint64_t rh_holds[]; /* [worker][per_worker] */
};

struct rate_worker {
	struct rate_table *w_table;
	_Atomic uint64_t *w_holds; /* this worker's list in rate_holds */
	uint32_t *w_free;	   /* stack of free hold indices */
	uint32_t w_nfree;
	uint64_t w_untracked;
};

static struct rate_table *rate_the_table;

/*
 * The memfd of each table this process mapped.  Not in the table: the
 * old and the new master of an upgrade hold it under different numbers.
 */
#define RATE_MAX_MAPS 16
static struct {
	struct rate_table *rm_table;
	int rm_fd;
} rate_maps[RATE_MAX_MAPS];

static bool rate_map_add(struct rate_table *t, int fd)
{
	for (int i = 0; i < RATE_MAX_MAPS; i++)
		if (rate_maps[i].rm_table == NULL) {
			rate_maps[i].rm_table = t;
			rate_maps[i].rm_fd = fd;
			return true;
		}
	return false;
}

static int rate_map_fd(const struct rate_table *t, bool forget)
{
	for (int i = 0; t != NULL && i < RATE_MAX_MAPS; i++)
		if (rate_maps[i].rm_table == t) {
			int fd = rate_maps[i].rm_fd;

			if (forget)
				rate_maps[i].rm_table = NULL;
			return fd;
		}
	return -1;
}

struct rate_table *rate_table(void)
{
	return rate_the_table;
}

void rate_table_set(struct rate_table *t)
{
	rate_the_table = t;
}

/* ---- the table --------------------------------------------------------- */

static size_t rate_size(uint32_t ngroups)
{
	return sizeof(struct rate_table) +
	       (size_t)ngroups * RATE_WAYS * sizeof(struct rate_entry);
}

struct rate_table *rate_table_create(uint32_t nentries)
{
	uint32_t ngroups;
	struct rate_table *t;
	size_t size;
	int fd;

	if (nentries < RATE_MIN_ENTRIES || nentries > RATE_MAX_ENTRIES) {
		errno = EINVAL;
		return NULL;
	}
	ngroups = (nentries + RATE_WAYS - 1) / RATE_WAYS;
	size = rate_size(ngroups);
	fd = memfd_create("portcullis-rate", MFD_CLOEXEC);
	if (fd == -1)
		return NULL;
	if (ftruncate(fd, (off_t)size) == -1)
		goto fail;
	t = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (t == MAP_FAILED)
		goto fail;
	if (getrandom(t->rt_seed, sizeof(t->rt_seed), 0) !=
	    (ssize_t)sizeof(t->rt_seed)) {
		/* not a secret worth failing for: the clock, at least */
		t->rt_seed[0] = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
		t->rt_seed[1] = (uint64_t)(uintptr_t)t;
	}
	t->rt_ngroups = ngroups;
	t->rt_size = size;
	t->rt_magic = RATE_MAGIC;
	if (!rate_map_add(t, fd)) {
		munmap(t, size);
		errno = EMFILE;
		goto fail;
	}
	return t;
fail:
	close(fd);
	return NULL;
}

struct rate_table *rate_table_adopt(int fd)
{
	struct rate_table head, *t;
	struct stat st;

	if (fstat(fd, &st) == -1 || (size_t)st.st_size < sizeof(head) ||
	    pread(fd, &head, sizeof(head), 0) != (ssize_t)sizeof(head))
		return NULL;
	if (head.rt_magic != RATE_MAGIC || head.rt_size != (size_t)st.st_size ||
	    head.rt_ngroups == 0 || rate_size(head.rt_ngroups) != head.rt_size)
		return NULL;
	t = mmap(NULL, head.rt_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (t == MAP_FAILED)
		return NULL;
	if (!rate_map_add(t, fd)) {
		munmap(t, head.rt_size);
		return NULL;
	}
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	return t;
}

static uint32_t rate_round(uint32_t nentries)
{
	return (nentries + RATE_WAYS - 1) / RATE_WAYS * RATE_WAYS;
}

bool rate_table_fits(const struct rate_table *t, uint32_t nentries)
{
	return t != NULL && rate_table_capacity(t) == rate_round(nentries);
}

struct rate_table *rate_table_open(uint32_t nentries, bool *adopted,
				   bool *size_kept)
{
	const char *env = getenv(RATE_ENV_FD);
	struct rate_table *t = NULL;

	*adopted = *size_kept = false;
	if (env != NULL) {
		int fd = atoi(env);

		unsetenv(RATE_ENV_FD);
		t = rate_table_adopt(fd);
		if (t == NULL)
			close(fd); /* another layout: a fresh table */
	}
	if (t != NULL) {
		*adopted = true;
		*size_kept = !rate_table_fits(t, nentries);
		return t;
	}
	return rate_table_create(nentries);
}

int rate_table_export(const struct rate_table *t)
{
	int fd = rate_map_fd(t, false);
	char num[16];

	if (fd < 0)
		return 0;
	if (fcntl(fd, F_SETFD, 0) == -1)
		return -1;
	snprintf(num, sizeof(num), "%d", fd);
	return setenv(RATE_ENV_FD, num, 1);
}

int rate_table_fd(const struct rate_table *t)
{
	return rate_map_fd(t, false);
}

uint32_t rate_table_capacity(const struct rate_table *t)
{
	return t->rt_ngroups * RATE_WAYS;
}

uint64_t rate_table_evictions(const struct rate_table *t)
{
	return atomic_load_explicit(&t->rt_evictions, memory_order_relaxed);
}

void rate_table_destroy(struct rate_table *t)
{
	int fd;

	if (t == NULL)
		return;
	fd = rate_map_fd(t, true);
	munmap(t, t->rt_size);
	if (fd != -1)
		close(fd);
}

/* ---- keys --------------------------------------------------------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                               \
	do {                                                                   \
		v0 += v1;                                                      \
		v1 = ROTL(v1, 13);                                             \
		v1 ^= v0;                                                      \
		v0 = ROTL(v0, 32);                                             \
		v2 += v3;                                                      \
		v3 = ROTL(v3, 16);                                             \
		v3 ^= v2;                                                      \
		v0 += v3;                                                      \
		v3 = ROTL(v3, 21);                                             \
		v3 ^= v0;                                                      \
		v2 += v1;                                                      \
		v1 = ROTL(v1, 17);                                             \
		v1 ^= v2;                                                      \
		v2 = ROTL(v2, 32);                                             \
	} while (0)

/* SipHash-1-3 of three words (24 bytes) under the table's seed. */
static uint64_t rate_siphash(const uint64_t seed[2], const uint64_t m[3])
{
	uint64_t v0 = UINT64_C(0x736f6d6570736575) ^ seed[0];
	uint64_t v1 = UINT64_C(0x646f72616e646f6d) ^ seed[1];
	uint64_t v2 = UINT64_C(0x6c7967656e657261) ^ seed[0];
	uint64_t v3 = UINT64_C(0x7465646279746573) ^ seed[1];
	uint64_t last = UINT64_C(24) << 56;

	for (int i = 0; i < 3; i++) {
		v3 ^= m[i];
		SIPROUND;
		v0 ^= m[i];
	}
	v3 ^= last;
	SIPROUND;
	v0 ^= last;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/*
 * The words a key is hashed from: what (a limit id, or a listener slot
 * with bit 63 set for connection entries), the family and prefix, and
 * the masked address.  IPv4-mapped IPv6 counts as IPv4; an address of
 * another family (none) is one key of its own.
 */
static void rate_key_words(uint64_t what, const struct sockaddr_storage *sa,
			   unsigned p4, unsigned p6, uint64_t m[3])
{
	uint8_t a[16] = {0};
	unsigned family = 0, prefix = 0, bytes = 0;

	if (sa != NULL && sa->ss_family == AF_INET) {
		memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		family = 4, prefix = p4, bytes = 4;
	} else if (sa != NULL && sa->ss_family == AF_INET6) {
		const struct in6_addr *in =
			&((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(in)) {
			memcpy(a, in->s6_addr + 12, 4);
			family = 4, prefix = p4, bytes = 4;
		} else {
			memcpy(a, in->s6_addr, 16);
			family = 6, prefix = p6, bytes = 16;
		}
	}
	if (prefix > bytes * 8)
		prefix = bytes * 8;
	for (unsigned i = 0; i < bytes; i++) {
		unsigned keep = prefix >= 8 * (i + 1) ? 8
				: prefix > 8 * i      ? prefix - 8 * i
						      : 0;

		a[i] &= (uint8_t)(0xff00u >> keep);
	}
	m[0] = what ^ (uint64_t)family << 48 ^ (uint64_t)prefix << 40;
	memcpy(&m[1], a, 8);
	memcpy(&m[2], a + 8, 8);
}

struct rate_key {
	uint64_t tag; /* 48 bits, never 0 */
	uint32_t group;
};

static struct rate_key rate_key(const struct rate_table *t, uint64_t what,
				const struct sockaddr_storage *sa, unsigned p4,
				unsigned p6)
{
	uint64_t m[3], h;
	struct rate_key k;

	rate_key_words(what, sa, p4, p6, m);
	h = rate_siphash(t->rt_seed, m);
	k.tag = h >> 16;
	if (k.tag == 0)
		k.tag = 1;
	k.group = (uint32_t)(((uint64_t)(uint32_t)h * t->rt_ngroups) >> 32);
	return k;
}

#define KEY_TAG(k)   ((k) >> 16)
#define KEY_CONNS(k) ((uint32_t)((k)&0xffff))

/* ---- finding an entry --------------------------------------------------- */

/*
 * Replace victim (whose key word was vk, no connections) by k.  Its
 * re_tat becomes init.  A worker that found the victim's old key a moment
 * ago may still CAS its re_tat once: one request charged to the wrong
 * client, at the moment of the replacement only.
 */
static bool rate_replace(struct rate_table *t, struct rate_entry *e,
			 uint64_t vk, struct rate_key k, uint64_t init)
{
	if (!atomic_compare_exchange_strong_explicit(
		    &e->re_key, &vk, k.tag << 16, memory_order_acq_rel,
		    memory_order_relaxed))
		return false;
	atomic_store_explicit(&e->re_tat, init, memory_order_release);
	return true;
}

/*
 * The entry of k in its group, made if need be (an empty entry, else the
 * least recently seen one without connections).  NULL when every entry
 * of the group holds connections, or after RATE_TRIES lost races.
 */
static struct rate_entry *rate_find(struct rate_table *t, struct rate_key k,
				    uint64_t init)
{
	struct rate_entry *g = &t->rt_entries[(size_t)k.group * RATE_WAYS];

	for (int tries = 0; tries < RATE_TRIES; tries++) {
		struct rate_entry *victim = NULL;
		uint64_t vk = 0, vtat = UINT64_MAX;

		for (int i = 0; i < RATE_WAYS; i++) {
			uint64_t key = atomic_load_explicit(
				&g[i].re_key, memory_order_acquire);
			uint64_t tat;

			if (KEY_TAG(key) == k.tag)
				return &g[i];
			if (key == 0) {
				/* entries fill in order: k is not further on */
				victim = &g[i];
				vk = 0;
				break;
			}
			if (KEY_CONNS(key) != 0)
				continue;
			tat = atomic_load_explicit(&g[i].re_tat,
						   memory_order_relaxed);
			if (tat < vtat) {
				victim = &g[i], vk = key, vtat = tat;
			}
		}
		if (victim == NULL)
			return NULL;
		if (rate_replace(t, victim, vk, k, init)) {
			if (vk != 0)
				atomic_fetch_add_explicit(&t->rt_evictions, 1,
							  memory_order_relaxed);
			return victim;
		}
	}
	return NULL;
}

/* ---- token buckets ------------------------------------------------------ */

/*
 * GCRA (the token bucket as one timestamp): emission interval T = 1 s /
 * rps, tolerance tau = burst * T.  A request at now is admitted when
 * max(tat, now) - now <= tau, and then tat = max(tat, now) + T: a client
 * idle long enough sends burst + 1 at once, then rps a second.  now only
 * has millisecond resolution (the true time is in [now, now + 1 ms)), so
 * tau gets 1 ms - 1 ns more: a rate above 1000/s is not capped at one
 * request per clock tick.
 */
bool rate_take(struct rate_table *t, const struct cfg_rate_limit *lim,
	       const struct sockaddr_storage *client, uint64_t now_ms,
	       uint32_t *retry_after_s)
{
	uint64_t now = now_ms * RATE_NS_PER_MS, interval, tau, tat;
	struct rate_entry *e;

	if (t == NULL || lim->rps == 0)
		return true;
	e = rate_find(
		t, rate_key(t, lim->id, client, lim->prefix_v4, lim->prefix_v6),
		0);
	if (e == NULL)
		return true; /* the group is pinned by connections: fail open */
	interval = RATE_NS_PER_S / lim->rps;
	tau = (uint64_t)lim->burst * interval + RATE_NS_PER_MS - 1;
	tat = atomic_load_explicit(&e->re_tat, memory_order_relaxed);
	for (;;) {
		uint64_t base = tat > now ? tat : now;

		if (base - now > tau) {
			uint64_t wait = base - now - tau;

			*retry_after_s = (uint32_t)((wait + RATE_NS_PER_S - 1) /
						    RATE_NS_PER_S);
			if (*retry_after_s == 0)
				*retry_after_s = 1;
			return false;
		}
		if (atomic_compare_exchange_weak_explicit(
			    &e->re_tat, &tat, base + interval,
			    memory_order_relaxed, memory_order_relaxed))
			return true;
	}
}

/* ---- refusals, for bans --------------------------------------------------- */

/* The key space of refusal counts: no limit id or connection key has it. */
#define RATE_STRIKE_WHAT (UINT64_C(1) << 62)
#define RATE_STRIKE_MAX	 999999 /* refusals counted below RATE_NS_PER_MS */

/*
 * A count in a window that opens at the first refusal (fail2ban's
 * findtime, with a fixed start): re_tat holds the window's start, in
 * whole milliseconds scaled to nanoseconds like a token bucket's time
 * (so that eviction, least recently seen first, treats both alike),
 * plus the count in the low part (after <= RATE_STRIKE_MAX < 10^6).
 * The refusal that makes the count reach after bans, and the count
 * starts again from zero, so that a client let in again after its ban
 * is not banned at its first refusal.  Refusals that reach a worker
 * after the kernel dropped the client cost nothing; if the set could not
 * be filled, the next `after` refusals try again.
 */
bool rate_strike(struct rate_table *t, const struct sockaddr_storage *client,
		 uint32_t after, uint64_t within_ms, uint64_t now_ms)
{
	struct rate_entry *e;
	uint64_t tat;

	if (t == NULL || after == 0)
		return false;
	if (after == 1)
		return true;
	if (after > RATE_STRIKE_MAX)
		after = RATE_STRIKE_MAX;
	e = rate_find(t, rate_key(t, RATE_STRIKE_WHAT, client, 32, 128), 0);
	if (e == NULL)
		return false; /* pinned by connections: not counted */
	tat = atomic_load_explicit(&e->re_tat, memory_order_relaxed);
	for (int tries = 0; tries < RATE_TRIES; tries++) {
		uint64_t start = tat / RATE_NS_PER_MS, n = tat % RATE_NS_PER_MS;
		uint64_t next;
		bool ban;

		if (tat == 0 || now_ms - start >= within_ms)
			start = now_ms, n = 0; /* a new window */
		ban = n + 1 >= after;
		next = ban ? now_ms * RATE_NS_PER_MS
			   : start * RATE_NS_PER_MS + n + 1;
		if (atomic_compare_exchange_weak_explicit(
			    &e->re_tat, &tat, next, memory_order_relaxed,
			    memory_order_relaxed))
			return ban;
	}
	return false;
}

/* ---- connection counts -------------------------------------------------- */

#define RATE_CONN_WHAT(lslot) (UINT64_C(1) << 63 | (uint64_t)(uint32_t)(lslot))

static struct rate_key rate_conn_key(const struct rate_table *t, int lslot,
				     const struct sockaddr_storage *client)
{
	return rate_key(t, RATE_CONN_WHAT(lslot), client, 32, 128);
}

/* One connection less on entry idx, never below 0. */
static void rate_client_dec(struct rate_table *t, uint32_t idx, uint64_t now_ns)
{
	struct rate_entry *e = &t->rt_entries[idx];
	uint64_t key = atomic_load_explicit(&e->re_key, memory_order_relaxed);

	while (KEY_CONNS(key) != 0 &&
	       !atomic_compare_exchange_weak_explicit(&e->re_key, &key, key - 1,
						      memory_order_acq_rel,
						      memory_order_relaxed))
		;
	if (now_ns != 0)
		atomic_store_explicit(&e->re_tat, now_ns, memory_order_relaxed);
}

static bool rate_listener_inc(struct rate_table *t, int lslot, uint32_t max)
{
	_Atomic uint32_t *n = &t->rt_listeners[lslot].rl_conns;
	uint32_t cur = atomic_load_explicit(n, memory_order_relaxed);

	do {
		if (cur >= max)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(
		n, &cur, cur + 1, memory_order_relaxed, memory_order_relaxed));
	return true;
}

static void rate_listener_dec(struct rate_table *t, uint32_t lslot)
{
	_Atomic uint32_t *n = &t->rt_listeners[lslot].rl_conns;
	uint32_t cur = atomic_load_explicit(n, memory_order_relaxed);

	while (cur != 0 && !atomic_compare_exchange_weak_explicit(
				   n, &cur, cur - 1, memory_order_relaxed,
				   memory_order_relaxed))
		;
}

/* Take what record r counted off t.  now_ns 0: do not touch re_tat. */
static void rate_hold_undo(struct rate_table *t, uint64_t r, uint64_t now_ns)
{
	if (HOLD_ENTRY(r) != 0 &&
	    HOLD_ENTRY(r) <= (uint64_t)t->rt_ngroups * RATE_WAYS)
		rate_client_dec(t, HOLD_ENTRY(r) - 1, now_ns);
	if (HOLD_LSLOT(r) != 0 && HOLD_LSLOT(r) <= RATE_MAX_LISTENERS)
		rate_listener_dec(t, HOLD_LSLOT(r) - 1);
}

int rate_listener_claim(struct rate_table *t, const char *name, unsigned gen,
			unsigned oldest_live)
{
	int free_slot = -1;

	for (int i = 0; i < RATE_MAX_LISTENERS; i++) {
		struct rate_listener *l = &t->rt_listeners[i];
		uint32_t g = atomic_load(&l->rl_gen);
		bool in_use =
			(l->rl_key[0] != '\0' && g >= oldest_live) || g == gen;

		if (in_use) {
			if (strncmp(l->rl_key, name, RATE_LISTENER_KEY - 1) ==
			    0) {
				atomic_store(&l->rl_gen, gen);
				return i;
			}
		} else if (free_slot < 0) {
			free_slot = i;
		}
	}
	if (free_slot < 0)
		return -1;
	atomic_store(&t->rt_listeners[free_slot].rl_conns, 0);
	snprintf(t->rt_listeners[free_slot].rl_key, RATE_LISTENER_KEY, "%s",
		 name);
	atomic_store(&t->rt_listeners[free_slot].rl_gen, gen);
	return free_slot;
}

uint32_t rate_listener_count(const struct rate_table *t, int slot)
{
	if (t == NULL || slot < 0 || slot >= RATE_MAX_LISTENERS)
		return 0;
	return atomic_load_explicit(&t->rt_listeners[slot].rl_conns,
				    memory_order_relaxed);
}

uint32_t rate_client_count(struct rate_table *t, int slot,
			   const struct sockaddr_storage *client)
{
	struct rate_key k = rate_conn_key(t, slot, client);
	struct rate_entry *g = &t->rt_entries[(size_t)k.group * RATE_WAYS];

	for (int i = 0; i < RATE_WAYS; i++) {
		uint64_t key = atomic_load(&g[i].re_key);

		if (KEY_TAG(key) == k.tag)
			return KEY_CONNS(key);
	}
	return 0;
}

/* ---- hold lists -----------------------------------------------------------
 */

struct rate_holds *rate_holds_create(uint32_t nworkers, uint32_t per_worker)
{
	size_t len = sizeof(struct rate_holds) +
		     (size_t)nworkers * per_worker * sizeof(uint64_t);
	struct rate_holds *h;

	if (nworkers == 0 || per_worker == 0) {
		errno = EINVAL;
		return NULL;
	}
	/* untouched pages cost nothing: only live workers' lists are used */
	h = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (h == MAP_FAILED)
		return NULL;
	h->rh_len = len;
	h->rh_nworkers = nworkers;
	h->rh_per_worker = per_worker;
	return h;
}

void rate_holds_free(struct rate_holds *h)
{
	if (h != NULL)
		munmap(h, h->rh_len);
}

uint32_t rate_holds_per_worker(const struct rate_holds *h)
{
	return h->rh_per_worker;
}

static _Atomic uint64_t *rate_holds_of(struct rate_holds *h, uint32_t w)
{
	return &h->rh_holds[(size_t)w * h->rh_per_worker];
}

uint64_t rate_holds_give_back(struct rate_holds *h, uint32_t w,
			      struct rate_table *t)
{
	_Atomic uint64_t *list;
	uint64_t n = 0;

	if (h == NULL || t == NULL || w >= h->rh_nworkers)
		return 0;
	list = rate_holds_of(h, w);
	for (uint32_t i = 0; i < h->rh_per_worker; i++) {
		uint64_t r;

		if (atomic_load_explicit(&list[i], memory_order_relaxed) == 0)
			continue; /* do not dirty pages never used */
		r = atomic_exchange_explicit(&list[i], 0, memory_order_acq_rel);
		rate_hold_undo(t, r, 0);
		n++;
	}
	return n;
}

struct rate_worker *rate_worker_new(struct rate_table *t, struct rate_holds *h,
				    uint32_t w)
{
	struct rate_worker *rw;

	if (t == NULL || h == NULL || w >= h->rh_nworkers)
		return NULL;
	rw = calloc(1, sizeof(*rw));
	if (rw == NULL)
		return NULL;
	rw->w_free = malloc((size_t)h->rh_per_worker * sizeof(*rw->w_free));
	if (rw->w_free == NULL) {
		free(rw);
		return NULL;
	}
	/* what a dead predecessor left, if the master has not yet */
	(void)rate_holds_give_back(h, w, t);
	rw->w_table = t;
	rw->w_holds = rate_holds_of(h, w);
	/* pop from the end: the lowest indices (fewest pages) first */
	for (uint32_t i = 0; i < h->rh_per_worker; i++)
		rw->w_free[i] = h->rh_per_worker - 1 - i;
	rw->w_nfree = h->rh_per_worker;
	return rw;
}

void rate_worker_free(struct rate_worker *w)
{
	if (w == NULL)
		return;
	free(w->w_free);
	free(w);
}

uint64_t rate_worker_untracked(const struct rate_worker *w)
{
	return w->w_untracked;
}

/*
 * A hold records a count before the count is made, and is cleared only
 * after the count is undone: a worker killed in between leaves the
 * master one to subtract that was never added (saturating at 0: a count
 * one too low until that client or listener is idle), never one that
 * would stay counted for ever.
 */
static int32_t rate_hold_get(struct rate_worker *w)
{
	if (w->w_nfree == 0) {
		w->w_untracked++;
		return -1;
	}
	return (int32_t)w->w_free[--w->w_nfree];
}

static void rate_hold_put(struct rate_worker *w, int32_t hold)
{
	atomic_store_explicit(&w->w_holds[hold], 0, memory_order_release);
	w->w_free[w->w_nfree++] = (uint32_t)hold;
}

static void rate_hold_set(struct rate_worker *w, int32_t hold, uint64_t r)
{
	atomic_store_explicit(&w->w_holds[hold], r, memory_order_release);
}

static uint64_t rate_hold_rec(struct rate_worker *w, int32_t hold)
{
	return atomic_load_explicit(&w->w_holds[hold], memory_order_relaxed);
}

/*
 * Count a connection of client, recorded in hold (whose entry part is
 * empty).  The entry is recorded before it is counted on: it can only be
 * replaced while it has no connections, and then the count fails and the
 * search starts again.  RATE_OK (counted, or no entry to be had: not
 * counted, fail open) or RATE_OVER_CLIENT (nothing counted).
 */
static enum rate_verdict
rate_client_acquire(struct rate_worker *w, int32_t hold, int lslot,
		    const struct sockaddr_storage *client, uint32_t max,
		    uint64_t now_ns)
{
	struct rate_table *t = w->w_table;
	struct rate_key k = rate_conn_key(t, lslot, client);
	uint64_t r = rate_hold_rec(w, hold) & ~UINT64_C(0xffffffff);

	if (max > RATE_MAX_PER_CLIENT)
		max = RATE_MAX_PER_CLIENT; /* the count has 16 bits */
	for (int tries = 0; tries < RATE_TRIES; tries++) {
		struct rate_entry *e = rate_find(t, k, now_ns);
		uint64_t key;

		if (e == NULL)
			break;
		rate_hold_set(w, hold, r | (uint64_t)(e - t->rt_entries + 1));
		key = atomic_load_explicit(&e->re_key, memory_order_relaxed);
		while (KEY_TAG(key) == k.tag) {
			if (KEY_CONNS(key) >= max) {
				rate_hold_set(w, hold, r);
				return RATE_OVER_CLIENT;
			}
			if (atomic_compare_exchange_weak_explicit(
				    &e->re_key, &key, key + 1,
				    memory_order_acq_rel,
				    memory_order_relaxed)) {
				atomic_store_explicit(&e->re_tat, now_ns,
						      memory_order_relaxed);
				return RATE_OK;
			}
		}
	}
	rate_hold_set(w, hold, r);
	return RATE_OK;
}

enum rate_verdict rate_conn_acquire(struct rate_worker *w, int lslot,
				    uint32_t max_conns,
				    const struct sockaddr_storage *client,
				    uint32_t max_per_client, uint64_t now_ms,
				    int32_t *hold)
{
	struct rate_table *t;
	bool by_listener =
		max_conns != 0 && lslot >= 0 && lslot < RATE_MAX_LISTENERS;
	bool by_client = max_per_client != 0 && client != NULL && lslot >= 0;
	enum rate_verdict v;

	*hold = -1;
	if (w == NULL || (!by_listener && !by_client))
		return RATE_OK;
	t = w->w_table;
	*hold = rate_hold_get(w);
	if (*hold < 0)
		return RATE_OK; /* the list is full: admitted, not counted */
	if (by_listener) {
		rate_hold_set(w, *hold, (uint64_t)(lslot + 1) << 32);
		if (!rate_listener_inc(t, lslot, max_conns)) {
			rate_hold_put(w, *hold);
			*hold = -1;
			return RATE_OVER_LISTENER;
		}
	}
	if (by_client) {
		v = rate_client_acquire(w, *hold, lslot, client, max_per_client,
					now_ms * RATE_NS_PER_MS);
		if (v != RATE_OK) {
			rate_conn_release(w, *hold, now_ms);
			*hold = -1;
			return v;
		}
	}
	return RATE_OK;
}

enum rate_verdict rate_conn_rebind(struct rate_worker *w, int lslot,
				   int32_t *hold,
				   const struct sockaddr_storage *client,
				   uint32_t max_per_client, uint64_t now_ms)
{
	uint64_t now_ns = now_ms * RATE_NS_PER_MS, r;

	if (w == NULL || max_per_client == 0 || client == NULL || lslot < 0)
		return RATE_OK;
	if (*hold < 0) {
		*hold = rate_hold_get(w);
		if (*hold < 0)
			return RATE_OK;
	}
	r = rate_hold_rec(w, *hold);
	if (HOLD_ENTRY(r) != 0) {
		rate_client_dec(w->w_table, HOLD_ENTRY(r) - 1, now_ns);
		rate_hold_set(w, *hold, r & ~UINT64_C(0xffffffff));
	}
	return rate_client_acquire(w, *hold, lslot, client, max_per_client,
				   now_ns);
}

void rate_conn_release(struct rate_worker *w, int32_t hold, uint64_t now_ms)
{
	if (w == NULL || hold < 0)
		return;
	rate_hold_undo(w->w_table, rate_hold_rec(w, hold),
		       now_ms * RATE_NS_PER_MS);
	rate_hold_put(w, hold);
}
