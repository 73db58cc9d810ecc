/*
 * fuzz_proxyproto.c: libFuzzer harness for the PROXY protocol parser
 * (worker/proxyproto.c).
 *
 * Beyond "no crash, no read past the end" (ASan), it checks what the
 * caller relies on: consumed is 0 unless OK and never past len; a header
 * is decided within PROXYPROTO_MAX_LEN bytes; an OK header has a version,
 * valid families and is OK again on exactly its own bytes and NEED_MORE on
 * a prefix of them; and the addresses it gives, built again as v1 and v2
 * headers, parse back to the same addresses.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "worker/proxyproto.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

/* Parse a heap copy of exactly n bytes, so that ASan sees overreads. */
static enum proxyproto_result parse_copy(const uint8_t *p, size_t n,
					 struct proxyproto_hdr *h, size_t *used)
{
	uint8_t *b = malloc(n ? n : 1);
	enum proxyproto_result r;

	CHECK(b != NULL);
	if (n)
		memcpy(b, p, n);
	r = proxyproto_parse(b, n, h, used);
	free(b);
	return r;
}

static bool sa_is_valid(const struct sockaddr_storage *ss)
{
	static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET)
		return true;
	/* mapped addresses come out as AF_INET */
	return ss->ss_family == AF_INET6 &&
	       memcmp(&s6->sin6_addr, mapped, sizeof(mapped)) != 0;
}

static bool sa_equal(const struct sockaddr_storage *a,
		     const struct sockaddr_storage *b)
{
	const struct sockaddr_in *a4 = (const void *)a, *b4 = (const void *)b;
	const struct sockaddr_in6 *a6 = (const void *)a, *b6 = (const void *)b;

	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return a4->sin_port == b4->sin_port &&
		       a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	return a6->sin6_port == b6->sin6_port &&
	       memcmp(&a6->sin6_addr, &b6->sin6_addr, 16) == 0;
}

static void check_round_trip(const struct proxyproto_hdr *h)
{
	uint8_t out[PROXYPROTO_BUILD_MAX];
	struct proxyproto_hdr back;
	size_t n, used;
	int v;

	for (v = 1; v <= 2; v++) {
		n = v == 1 ? proxyproto_build_v1((char *)out, sizeof(out),
						 &h->pp_src, &h->pp_dst)
			   : proxyproto_build_v2(out, sizeof(out), &h->pp_src,
						 &h->pp_dst);
		CHECK(n > 0 && n <= sizeof(out));
		CHECK(parse_copy(out, n, &back, &used) == PROXYPROTO_OK);
		CHECK(used == n);
		CHECK(back.pp_version == v && back.pp_has_addr);
		CHECK(sa_equal(&back.pp_src, &h->pp_src));
		CHECK(sa_equal(&back.pp_dst, &h->pp_dst));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxyproto_hdr h, again;
	enum proxyproto_result r;
	size_t used, used2, cut;

	r = proxyproto_parse(data, size, &h, &used);
	CHECK(used <= size);
	if (r == PROXYPROTO_NEED_MORE) {
		CHECK(used == 0 && size < PROXYPROTO_MAX_LEN);
		return 0;
	}
	if (r == PROXYPROTO_INVALID) {
		CHECK(used == 0 && h.pp_error != NULL);
		return 0;
	}
	CHECK(r == PROXYPROTO_OK);
	CHECK(used >= 15 && used <= PROXYPROTO_MAX_LEN);
	CHECK(h.pp_version == 1 || h.pp_version == 2);
	CHECK(h.pp_version == 2 || used <= PROXYPROTO_V1_MAX_LEN);
	CHECK(!(h.pp_is_local && h.pp_has_addr));
	CHECK(!h.pp_is_local || h.pp_version == 2);
	if (h.pp_has_addr) {
		CHECK(sa_is_valid(&h.pp_src) && sa_is_valid(&h.pp_dst));
		check_round_trip(&h);
	}
	/* the header alone is the same header; any prefix of it waits */
	CHECK(parse_copy(data, used, &again, &used2) == PROXYPROTO_OK);
	CHECK(used2 == used && again.pp_has_addr == h.pp_has_addr);
	CHECK(!h.pp_has_addr || (sa_equal(&again.pp_src, &h.pp_src) &&
				 sa_equal(&again.pp_dst, &h.pp_dst)));
	for (cut = 1; cut <= used; cut = cut < 8 ? cut + 1 : cut * 2)
		CHECK(parse_copy(data, used - cut, &again, &used2) ==
		      PROXYPROTO_NEED_MORE);
	return 0;
}
