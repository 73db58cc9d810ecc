/*
 * test_iptree.c: prefix sets for allow:/deny: (common/iptree.c): exact
 * hosts, nesting, /0, IPv4-mapped IPv6 (RFC 4291 section 2.5.5.2), edge
 * bits, random sets checked against a plain scan, and a 1,000,000-prefix
 * build held to 64 bytes a prefix.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cidr.h"
#include "common/iptree.h"

/* ---- helpers ---------------------------------------------------------- */

static struct sockaddr_storage sa_of(const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		ck_assert_int_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		ck_assert_int_eq(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	return ss;
}

/* A tree of the NULL-terminated list of CIDRs. */
static struct iptree *tree_of(const char *const *list)
{
	struct iptree_builder *b = iptree_builder_new();
	struct iptree *t;
	size_t n = 0;

	ck_assert_ptr_nonnull(b);
	for (; *list; list++, n++) {
		struct cidr c;

		ck_assert_msg(cidr_parse(*list, &c) == 0, "bad CIDR %s", *list);
		ck_assert_int_eq(iptree_builder_add_cidr(b, &c), 0);
	}
	t = iptree_build(b);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(iptree_count(t), n);
	return t;
}

static bool hit(const struct iptree *t, const char *ip)
{
	struct sockaddr_storage ss = sa_of(ip);

	return iptree_match(t, &ss);
}

#define TREE(...) tree_of((const char *const[]){__VA_ARGS__, NULL})

/* ---- fixed cases ------------------------------------------------------ */

START_TEST(test_empty)
{
	struct iptree *t = iptree_build(iptree_builder_new());
	struct sockaddr_storage unix_peer = {.ss_family = AF_UNIX};

	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(iptree_count(t), 0);
	ck_assert(!hit(t, "0.0.0.0"));
	ck_assert(!hit(t, "10.1.2.3"));
	ck_assert(!hit(t, "::"));
	ck_assert(!hit(t, "2001:db8::1"));
	ck_assert(!iptree_match(t, &unix_peer));
	iptree_free(t);
	iptree_free(NULL);
	iptree_builder_free(NULL);
}
END_TEST

START_TEST(test_exact_hosts)
{
	struct iptree *t = TREE("192.0.2.7", "198.51.100.255/32", "::1",
				"2001:db8::abcd/128", "::/128");

	ck_assert(hit(t, "192.0.2.7"));
	ck_assert(!hit(t, "192.0.2.6"));
	ck_assert(!hit(t, "192.0.2.8"));
	ck_assert(!hit(t, "193.0.2.7"));
	ck_assert(hit(t, "198.51.100.255"));
	ck_assert(!hit(t, "198.51.100.254"));
	ck_assert(hit(t, "::1"));
	ck_assert(!hit(t, "::2"));
	ck_assert(hit(t, "::"));
	ck_assert(hit(t, "2001:db8::abcd"));
	ck_assert(!hit(t, "2001:db8::abcc"));
	ck_assert(!hit(t, "2001:db8::abcd:0"));
	ck_assert(!hit(t, "8001:db8::abcd"));
	/* the families do not mix: 0.0.0.1 is not ::1 */
	ck_assert(!hit(t, "0.0.0.1"));
	iptree_free(t);
}
END_TEST

START_TEST(test_single_prefix)
{
	struct iptree *t = TREE("10.20.0.0/14");

	ck_assert(hit(t, "10.20.0.0"));
	ck_assert(hit(t, "10.23.255.255"));
	ck_assert(!hit(t, "10.24.0.0"));
	ck_assert(!hit(t, "10.19.255.255"));
	ck_assert(!hit(t, "::a14:0"));
	iptree_free(t);
}
END_TEST

START_TEST(test_nested_and_duplicates)
{
	struct iptree *t = TREE("10.0.0.0/8", "10.1.2.0/24", "10.1.2.3",
				"10.0.0.0/8", "10.1.2.0/24", "172.16.5.0/24",
				"172.16.0.0/12", "172.16.5.0/24", "2001:db8::/32",
				"2001:db8:1::/48", "2001:db8:1:2::/64");

	ck_assert_uint_eq(iptree_count(t), 11);
	ck_assert(hit(t, "10.0.0.0"));
	ck_assert(hit(t, "10.255.255.255"));
	ck_assert(hit(t, "10.1.2.3"));
	ck_assert(hit(t, "10.1.3.3"));
	ck_assert(!hit(t, "11.0.0.0"));
	ck_assert(!hit(t, "9.255.255.255"));
	ck_assert(hit(t, "172.31.255.255"));
	ck_assert(hit(t, "172.16.5.9"));
	ck_assert(!hit(t, "172.32.0.0"));
	ck_assert(hit(t, "2001:db8:ffff::1"));
	ck_assert(hit(t, "2001:db8:1:2::1"));
	ck_assert(!hit(t, "2001:db9::"));
	iptree_free(t);
}
END_TEST

/* A short prefix written after longer ones inside it still covers them. */
START_TEST(test_nested_short_after_long)
{
	struct iptree *t = TREE("10.1.2.0/24", "10.1.3.0/24", "10.200.0.0/16",
				"10.0.0.0/8");

	ck_assert(hit(t, "10.99.0.1"));
	ck_assert(hit(t, "10.1.2.200"));
	iptree_free(t);
}
END_TEST

START_TEST(test_default_routes)
{
	struct iptree *v4 = TREE("0.0.0.0/0"), *v6 = TREE("::/0"),
		      *both = TREE("0.0.0.0/0", "::/0", "10.0.0.0/8");

	ck_assert(hit(v4, "0.0.0.0"));
	ck_assert(hit(v4, "255.255.255.255"));
	ck_assert(hit(v4, "::ffff:1.2.3.4")); /* mapped: looked up as IPv4 */
	ck_assert(!hit(v4, "::1"));
	ck_assert(hit(v6, "::"));
	ck_assert(hit(v6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
	ck_assert(!hit(v6, "1.2.3.4"));
	/* ::/0 is IPv6 only: a mapped peer is an IPv4 client */
	ck_assert(!hit(v6, "::ffff:1.2.3.4"));
	ck_assert(hit(both, "1.2.3.4"));
	ck_assert(hit(both, "2001:db8::1"));
	iptree_free(v4);
	iptree_free(v6);
	iptree_free(both);
}
END_TEST

/* RFC 4291 section 2.5.5.2: ::ffff:a.b.c.d is the IPv4 node a.b.c.d. */
START_TEST(test_ipv4_mapped)
{
	struct iptree *t = TREE("192.0.2.0/24", "::ffff:198.51.100.0/120",
				"::ffff:0:0/95", "64:ff9b::/96");

	ck_assert(hit(t, "::ffff:192.0.2.1"));
	ck_assert(!hit(t, "::ffff:192.0.3.1"));
	/* an IPv6 spelling of an IPv4 prefix is that IPv4 prefix */
	ck_assert(hit(t, "198.51.100.77"));
	ck_assert(hit(t, "::ffff:198.51.100.77"));
	ck_assert(!hit(t, "198.51.101.77"));
	/* a mapped peer is looked up as IPv4 only, even under a /95 */
	ck_assert(!hit(t, "::ffff:203.0.113.1"));
	ck_assert(hit(t, "::fffe:203.0.113.1"));
	/* neither IPv4-compatible (::a.b.c.d) nor NAT64 are mapped */
	ck_assert(!hit(t, "::192.0.2.1"));
	ck_assert(hit(t, "64:ff9b::c000:201"));
	ck_assert(!hit(t, "64:ff9b::1:c000:201"));
	iptree_free(t);
}
END_TEST

START_TEST(test_ipv6_edges)
{
	struct iptree *t = TREE("8000::/1", "::/1", "2001:db8::1:0:0:1/127");
	struct iptree *deep = TREE("2001:db8::/127", "2001:db8::2/127",
				   "2001:db8::4/128", "2001:db8::6/128");
	struct iptree *bits = TREE("2001:db8:0:0:8000::/65",
				   "2001:db8:0:0:4000::/66",
				   "2001:db8:0:1::/64");

	ck_assert(hit(t, "8000::"));
	ck_assert(hit(t, "::1"));
	ck_assert(hit(t, "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
	iptree_free(t);
	/* the last bits of the address: neighbours at the bottom level */
	ck_assert(hit(deep, "2001:db8::"));
	ck_assert(hit(deep, "2001:db8::1"));
	ck_assert(hit(deep, "2001:db8::3"));
	ck_assert(hit(deep, "2001:db8::4"));
	ck_assert(!hit(deep, "2001:db8::5"));
	ck_assert(hit(deep, "2001:db8::6"));
	ck_assert(!hit(deep, "2001:db8::7"));
	ck_assert(!hit(deep, "2001:db8::8"));
	ck_assert(!hit(deep, "2001:db8::1:0"));
	iptree_free(deep);
	/* prefixes across the 64-bit half */
	ck_assert(hit(bits, "2001:db8::8000:0:0:0"));
	ck_assert(hit(bits, "2001:db8::ffff:ffff:ffff:ffff"));
	ck_assert(hit(bits, "2001:db8::4000:0:0:1"));
	ck_assert(!hit(bits, "2001:db8::3fff:ffff:ffff:ffff"));
	ck_assert(!hit(bits, "2001:db8::"));
	ck_assert(hit(bits, "2001:db8:0:1:1::"));
	ck_assert(!hit(bits, "2001:db8:0:2::"));
	iptree_free(bits);
}
END_TEST

/* Host bits are cleared, as cidr_parse, iptables and nftables do. */
START_TEST(test_host_bits)
{
	struct iptree_builder *b = iptree_builder_new();
	uint8_t a4[4] = {10, 1, 2, 3};
	uint8_t a6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
			  0,    0,    0,    0,    0, 0, 0, 9};
	struct iptree *t;

	ck_assert_int_eq(iptree_builder_add(b, AF_INET, a4, 8), 0);
	ck_assert_int_eq(iptree_builder_add(b, AF_INET6, a6, 32), 0);
	ck_assert_int_eq(iptree_builder_add(b, AF_INET, a4, 33), -1);
	ck_assert_int_eq(iptree_builder_add(b, AF_INET6, a6, 129), -1);
	ck_assert_int_eq(iptree_builder_add(b, AF_UNIX, a6, 1), -1);
	ck_assert_uint_eq(iptree_builder_count(b), 2);
	t = iptree_build(b);
	ck_assert(hit(t, "10.0.0.0"));
	ck_assert(hit(t, "10.200.0.1"));
	ck_assert(hit(t, "2001:db8:ffff::"));
	ck_assert(!hit(t, "2001:db9::9"));
	iptree_free(t);
}
END_TEST

/* ---- random sets against a scan --------------------------------------- */

struct ref {
	int fam;           /* AF_INET or AF_INET6 */
	uint8_t a[16];     /* host bits clear */
	unsigned len;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	/* xorshift64*: reproducible across runs */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static void clear_host(uint8_t *a, unsigned alen, unsigned len)
{
	for (unsigned i = 0; i < alen; i++) {
		int bits = (int)len - (int)i * 8;

		if (bits < 8)
			a[i] &= bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
	}
}

static bool ref_in(const struct ref *r, int fam, const uint8_t *a)
{
	unsigned full = r->len / 8, rest = r->len % 8;

	if (r->fam != fam || memcmp(r->a, a, full) != 0)
		return false;
	return rest == 0 ||
	       (a[full] & (uint8_t)(0xff << (8 - rest))) == r->a[full];
}

static void random_prefix(struct ref *r, unsigned lo4, unsigned hi4,
			  unsigned lo6, unsigned hi6)
{
	uint64_t x = rnd(), y = rnd();

	memset(r, 0, sizeof(*r));
	r->fam = (x & 1) ? AF_INET6 : AF_INET;
	memcpy(r->a, &x, 8);
	memcpy(r->a + 8, &y, 8);
	if (r->fam == AF_INET) {
		r->len = lo4 + (unsigned)(rnd() % (hi4 - lo4 + 1));
		clear_host(r->a, 4, r->len);
	} else {
		r->a[0] |= 0x20; /* clear of ::/8 (and so of ::ffff:0:0/96) */
		r->len = lo6 + (unsigned)(rnd() % (hi6 - lo6 + 1));
		clear_host(r->a, 16, r->len);
	}
}

/* An address near r: inside it, or with one bit flipped around its end. */
static int probe_near(const struct ref *r, uint8_t *a)
{
	unsigned alen = r->fam == AF_INET ? 4 : 16, bit;
	uint64_t x = rnd(), y = rnd();

	memcpy(a, r->a, 16);
	for (unsigned i = 0; i < alen; i++) {
		int fixed = (int)r->len - (int)i * 8;
		uint8_t noise = (uint8_t)((i < 8 ? x >> (8 * i) : y >> (8 * (i - 8))));

		if (fixed < 8)
			a[i] |= noise & (fixed <= 0 ? 0xff : 0xff >> fixed);
	}
	if (rnd() % 3 == 0 && r->len > 0) {
		bit = r->len - 1 - (unsigned)(rnd() % (r->len < 4 ? r->len : 4));
		a[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
	}
	return r->fam;
}

static void cross_check(size_t nprefix, size_t nlookup, unsigned lo4,
			unsigned hi4, unsigned lo6, unsigned hi6)
{
	struct ref *refs = calloc(nprefix, sizeof(*refs));
	struct iptree_builder *b = iptree_builder_new();
	struct iptree *t;
	size_t i, j, hits = 0;

	ck_assert_ptr_nonnull(refs);
	for (i = 0; i < nprefix; i++) {
		random_prefix(&refs[i], lo4, hi4, lo6, hi6);
		ck_assert_int_eq(iptree_builder_add(b, refs[i].fam, refs[i].a,
						    refs[i].len),
				 0);
	}
	t = iptree_build(b);
	ck_assert_ptr_nonnull(t);
	for (i = 0; i < nlookup; i++) {
		uint8_t a[16];
		int fam;
		bool want = false, got;

		if (i % 4 == 0) { /* anywhere */
			uint64_t x = rnd(), y = rnd();

			fam = (x & 1) ? AF_INET6 : AF_INET;
			memcpy(a, &x, 8);
			memcpy(a + 8, &y, 8);
			if (fam == AF_INET6)
				a[0] |= 0x20;
		} else {
			fam = probe_near(&refs[rnd() % nprefix], a);
		}
		for (j = 0; j < nprefix && !want; j++)
			want = ref_in(&refs[j], fam, a);
		got = fam == AF_INET ? iptree_match_v4(t, a)
				     : iptree_match_v6(t, a);
		ck_assert_msg(got == want, "lookup %zu: tree says %d, scan %d",
			      i, got, want);
		hits += want;
	}
	/* the probes must exercise both answers */
	ck_assert_uint_gt(hits, nlookup / 4);
	ck_assert_uint_lt(hits, nlookup);
	iptree_free(t);
	free(refs);
}

START_TEST(test_random_long)
{
	/* the benchmark's mix: few overlaps, deep tails */
	cross_check(1000, 100000, 16, 32, 32, 128);
}
END_TEST

START_TEST(test_random_nested)
{
	/* short prefixes over few bits: much nesting and many duplicates */
	rng_state = 42;
	cross_check(1000, 100000, 4, 20, 4, 40);
}
END_TEST

START_TEST(test_random_dense)
{
	/* neighbours differing only in their last bits */
	rng_state = 7;
	cross_check(500, 100000, 28, 32, 120, 128);
}
END_TEST

/* ---- a million prefixes ----------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(test_million)
{
	const size_t n = 1000000;
	struct ref *refs = calloc(n, sizeof(*refs));
	struct iptree_builder *b = iptree_builder_new();
	struct iptree *t;
	double t0, t1;
	size_t i;

	ck_assert_ptr_nonnull(refs);
	rng_state = 1;
	for (i = 0; i < n; i++) {
		random_prefix(&refs[i], 16, 32, 32, 128);
		ck_assert_int_eq(iptree_builder_add(b, refs[i].fam, refs[i].a,
						    refs[i].len),
				 0);
	}
	t0 = now_s();
	t = iptree_build(b);
	t1 = now_s();
	ck_assert_ptr_nonnull(t);
	printf("iptree: %zu prefixes built in %.3f s (this build's flags), "
	       "%zu bytes, %.1f bytes a prefix\n",
	       n, t1 - t0, iptree_bytes(t), (double)iptree_bytes(t) / n);
	ck_assert_uint_le(iptree_bytes(t), 64 * n);
	for (i = 0; i < n; i += 97) {
		uint8_t a[16];
		int fam = probe_near(&refs[i], a);

		/* a probe without a flipped bit is inside refs[i] */
		if (ref_in(&refs[i], fam, a))
			ck_assert(fam == AF_INET ? iptree_match_v4(t, a)
						 : iptree_match_v6(t, a));
	}
	iptree_free(t);
	free(refs);
}
END_TEST

static Suite *iptree_suite(void)
{
	Suite *s = suite_create("iptree");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 110);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_exact_hosts);
	tcase_add_test(tc, test_single_prefix);
	tcase_add_test(tc, test_nested_and_duplicates);
	tcase_add_test(tc, test_nested_short_after_long);
	tcase_add_test(tc, test_default_routes);
	tcase_add_test(tc, test_ipv4_mapped);
	tcase_add_test(tc, test_ipv6_edges);
	tcase_add_test(tc, test_host_bits);
	tcase_add_test(tc, test_random_long);
	tcase_add_test(tc, test_random_nested);
	tcase_add_test(tc, test_random_dense);
	tcase_add_test(tc, test_million);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(iptree_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : 0;
}
