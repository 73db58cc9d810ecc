/*
 * test_proxyproto.c: the PROXY protocol parser and builders
 * (worker/proxyproto.c) and the proxy_protocol keys of the config.
 * Section numbers are those of HAProxy's doc/proxy-protocol.txt.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "worker/proxyproto.h"

static const uint8_t SIG[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
				0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* ---- helpers ---------------------------------------------------------- */

/*
 * Parse the n bytes at p from a heap copy of exactly n bytes, so that
 * AddressSanitizer catches any read past the end.
 */
static enum proxyproto_result parse_n(const void *p, size_t n,
				      struct proxyproto_hdr *h, size_t *used)
{
	uint8_t *b = malloc(n ? n : 1);
	enum proxyproto_result r;

	ck_assert_ptr_nonnull(b);
	memcpy(b, p, n);
	r = proxyproto_parse(b, n, h, used);
	ck_assert_msg(memcmp(b, p, n) == 0, "the parser wrote to its input");
	free(b);
	return r;
}

static enum proxyproto_result parse_s(const char *s, struct proxyproto_hdr *h,
				      size_t *used)
{
	return parse_n(s, strlen(s), h, used);
}

static struct sockaddr_storage sa_of(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		ck_assert_int_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		ck_assert_int_eq(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	return ss;
}

/* ss holds ip (its family told by a ':') and port. */
static void ck_sa(const struct sockaddr_storage *ss, const char *ip,
		  uint16_t port)
{
	char text[INET6_ADDRSTRLEN] = "";
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

	if (strchr(ip, ':')) {
		ck_assert_int_eq(ss->ss_family, AF_INET6);
		inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof(text));
		ck_assert_uint_eq(ntohs(s6->sin6_port), port);
	} else {
		ck_assert_int_eq(ss->ss_family, AF_INET);
		inet_ntop(AF_INET, &s4->sin_addr, text, sizeof(text));
		ck_assert_uint_eq(ntohs(s4->sin_port), port);
	}
	ck_assert_str_eq(text, ip);
}

/*
 * Every prefix of p shorter than hlen is NEED_MORE; from hlen on, up to
 * all n bytes, it is OK and consumes exactly hlen.  Returns the header.
 */
static struct proxyproto_hdr ck_split(const void *p, size_t hlen, size_t n)
{
	struct proxyproto_hdr h;
	size_t k, used;

	for (k = 0; k < hlen; k++) {
		ck_assert_msg(parse_n(p, k, &h, &used) == PROXYPROTO_NEED_MORE,
			      "prefix of %zu bytes: %s", k,
			      h.pp_error ? h.pp_error : "OK");
		ck_assert_uint_eq(used, 0);
	}
	for (; k <= n; k++) {
		ck_assert_msg(parse_n(p, k, &h, &used) == PROXYPROTO_OK,
			      "%zu bytes: %s", k,
			      h.pp_error ? h.pp_error : "NEED_MORE");
		ck_assert_uint_eq(used, hlen);
	}
	return h;
}

/* A v2 header: signature, ver_cmd, fam, the length of body, body. */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam,
		 const uint8_t *body, size_t blen)
{
	memcpy(out, SIG, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (uint8_t)(blen >> 8);
	out[15] = (uint8_t)blen;
	if (blen)
		memcpy(out + 16, body, blen);
	return 16 + blen;
}

/* The address block of TCP over IPv4 192.0.2.1:56324 -> 198.51.100.7:443 */
// clang-format off
static const uint8_t V4_BLOCK[12] = {192, 0, 2, 1, 198, 51, 100, 7,
				     0xDC, 0x04, 0x01, 0xBB};
// clang-format on

/* ---- v1 (2.1) --------------------------------------------------------- */

/* 2.1: the example line of the spec, followed by the request it heads. */
START_TEST(test_v1_tcp4)
{
	const char *s = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
			"GET / HTTP/1.1\r\n";
	struct proxyproto_hdr h;
	size_t used;

	ck_assert_int_eq(parse_s(s, &h, &used), PROXYPROTO_OK);
	ck_assert_uint_eq(used, strlen("PROXY TCP4 192.168.0.1 192.168.0.11 "
				       "56324 443\r\n"));
	ck_assert_uint_eq(h.pp_version, 1);
	ck_assert(h.pp_has_addr);
	ck_assert(!h.pp_is_local);
	ck_sa(&h.pp_src, "192.168.0.1", 56324);
	ck_sa(&h.pp_dst, "192.168.0.11", 443);

	/* 2.1: ports in [0..65535], "0" itself has no leading zero */
	ck_assert_int_eq(parse_s("PROXY TCP4 0.0.0.0 255.255.255.255 0 "
				 "65535\r\n",
				 &h, &used),
			 PROXYPROTO_OK);
	ck_sa(&h.pp_src, "0.0.0.0", 0);
	ck_sa(&h.pp_dst, "255.255.255.255", 65535);
}
END_TEST

START_TEST(test_v1_tcp6)
{
	const char *max = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
			  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 "
			  "65535\r\n";
	struct proxyproto_hdr h;
	size_t used;

	ck_assert_int_eq(parse_s("PROXY TCP6 2001:db8::1 2001:DB8::2 1 80\r\n",
				 &h, &used),
			 PROXYPROTO_OK);
	ck_assert(h.pp_has_addr);
	ck_sa(&h.pp_src, "2001:db8::1", 1);
	ck_sa(&h.pp_dst, "2001:db8::2", 80);

	/* 2.1: the longest TCP6 line is 104 bytes */
	ck_assert_uint_eq(strlen(max), 104);
	ck_assert_int_eq(parse_s(max, &h, &used), PROXYPROTO_OK);
	ck_assert_uint_eq(used, 104);

	/* IPv4-mapped (as HAProxy writes it) comes out as IPv4 */
	ck_assert_int_eq(parse_s("PROXY TCP6 ::ffff:10.1.2.3 ::1 1000 443\r\n",
				 &h, &used),
			 PROXYPROTO_OK);
	ck_sa(&h.pp_src, "10.1.2.3", 1000);
	ck_sa(&h.pp_dst, "::1", 443);
}
END_TEST

/* 2.1: UNKNOWN: anything up to the CRLF is ignored; keep the real peer. */
START_TEST(test_v1_unknown)
{
	const char *worst = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:"
			    "ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
			    "65535 65535\r\n";
	struct proxyproto_hdr h;
	size_t used;

	ck_assert_int_eq(parse_s("PROXY UNKNOWN\r\nGET", &h, &used),
			 PROXYPROTO_OK);
	ck_assert_uint_eq(used, 15);
	ck_assert(!h.pp_has_addr);
	ck_assert_uint_eq(h.pp_version, 1);

	/* the worst case of 2.1: 107 bytes, the most a line may take */
	ck_assert_uint_eq(strlen(worst), 107);
	ck_assert_int_eq(parse_s(worst, &h, &used), PROXYPROTO_OK);
	ck_assert_uint_eq(used, 107);
	ck_assert(!h.pp_has_addr);

	ck_assert_int_eq(parse_s("PROXY UNKNOWN whatever %$#\r\n", &h, &used),
			 PROXYPROTO_OK);
	ck_assert(!h.pp_has_addr);
}
END_TEST

/* 2.1: "Any sequence which does not exactly match the protocol must be
 * discarded and cause the receiver to abort the connection." */
START_TEST(test_v1_malformed)
{
	static const char *const bad[] = {
		/* spaces: exactly one between fields */
		"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
		"PROXY UNKNOWN\n",
		/* the line end: CRLF, never a single CR or LF */
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rGET",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2GET / HTTP/1.1\r\n",
		"PROXY TCP4 1.2.3.4\n5.6.7.8 1 2\r\n",
		/* fields */
		"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
		"PROXY TCP4\r\n",
		"PROXY TCP4 \r\n",
		"PROXY\r\n",
		"PROXY \r\n",
		"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY UNKNOWNX\r\n",
		"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
		/* addresses: 4 decimals in [0..255], no leading zeros */
		"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 .1.2.3 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4. 5.6.7.8 1 2\r\n",
		"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.08 1 2\r\n",
		"PROXY TCP4 1.2.3.1234 5.6.7.8 1 2\r\n",
		"PROXY TCP6 2001:db8::1::2 ::1 1 2\r\n",
		"PROXY TCP6 2001:db8:0:0:0:0:0:0:1 ::1 1 2\r\n",
		"PROXY TCP6 12345::1 ::1 1 2\r\n",
		"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
		"PROXY TCP6 ::ffff:01.2.3.4 ::1 1 2\r\n",
		"PROXY TCP6 [::1] ::1 1 2\r\n",
		/* the family must match the keyword */
		"PROXY TCP4 ::1 ::1 1 2\r\n",
		"PROXY TCP4 1.2.3.4 ::1 1 2\r\n",
		"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP6 ::1 5.6.7.8 1 2\r\n",
		/* ports: [0..65535], no leading zeros, digits only */
		"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 100000\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 00 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 +2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 0x10 2\r\n",
		"PROXY TCP6 ::1 ::1 1 a\r\n",
	};
	struct proxyproto_hdr h;
	size_t i, used;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(parse_s(bad[i], &h, &used) == PROXYPROTO_INVALID,
			      "accepted or waiting on '%s'", bad[i]);
		ck_assert_ptr_nonnull(h.pp_error);
		ck_assert_uint_eq(used, 0);
	}
}
END_TEST

/* 2.1: "If the CRLF sequence is not found in the first 107 characters,
 * the receiver should declare the line invalid." */
START_TEST(test_v1_too_long)
{
	char line[200];
	struct proxyproto_hdr h;
	size_t used;

	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	ck_assert_int_eq(parse_n(line, 106, &h, &used), PROXYPROTO_NEED_MORE);
	ck_assert_int_eq(parse_n(line, 107, &h, &used), PROXYPROTO_INVALID);
	ck_assert_int_eq(parse_n(line, 200, &h, &used), PROXYPROTO_INVALID);
	/* the CR as byte 107: its LF would make a 108-byte line */
	line[106] = '\r';
	line[107] = '\n';
	ck_assert_int_eq(parse_n(line, 107, &h, &used), PROXYPROTO_INVALID);
	ck_assert_int_eq(parse_n(line, 108, &h, &used), PROXYPROTO_INVALID);
	/* one byte shorter fits: 107 bytes with the CRLF */
	line[105] = '\r';
	line[106] = '\n';
	ck_assert_int_eq(parse_n(line, 108, &h, &used), PROXYPROTO_OK);
	ck_assert_uint_eq(used, 107);
}
END_TEST

/*
 * 2.1: "It is recommended to abort the connection as soon as possible":
 * a client talking HTTP or TLS directly, or a line going wrong, is
 * refused on the first byte that rules a header out, not at the timeout.
 */
START_TEST(test_early_refusal)
{
	static const struct {
		const char *s;
		size_t n; /* refused with this many bytes, not fewer */
	} cases[] = {
		// clang-format off
		{"GET / HTTP/1.1\r\n", 1},
		{"\x16\x03\x01\x02\x00", 1},
		{"POST / HTTP/1.1\r\n", 2},
		{"PUT / HTTP/1.1\r\n", 2},
		{"PROPFIND / HTTP/1.1\r\n", 4},
		{"PROXY TCP4 1.2.3.4 x", 20},
		{"PROXY TCP4 ::1", 12},
		{"PROXY TCP7", 10},
		{"\r\n\r\n\0\r\nQUIX", 11},
		{"\r\nGET", 3},
		// clang-format on
	};
	struct proxyproto_hdr h;
	size_t i, k, used;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (k = 0; k < cases[i].n; k++)
			ck_assert_msg(parse_n(cases[i].s, k, &h, &used) ==
					      PROXYPROTO_NEED_MORE,
				      "case %zu refused at %zu bytes", i, k);
		ck_assert_msg(parse_n(cases[i].s, cases[i].n, &h, &used) ==
				      PROXYPROTO_INVALID,
			      "case %zu not refused at %zu bytes", i,
			      cases[i].n);
	}
}
END_TEST

/* 2.1/2.2: "The receiver MUST NOT start processing the connection before
 * it receives a complete and valid PROXY protocol header": NEED_MORE on
 * every cut, then OK with the bytes after it left alone. */
START_TEST(test_v1_split)
{
	static const char *const lines[] = {
		"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
		"PROXY TCP6 2001:db8::1 ::ffff:1.2.3.4 0 65535\r\n",
		"PROXY UNKNOWN\r\n",
		"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n",
	};
	char buf[256];
	size_t i, n;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		n = strlen(lines[i]);
		memcpy(buf, lines[i], n);
		memcpy(buf + n, "\x16\x03\x01", 3); /* a ClientHello begins */
		ck_split(buf, n, n + 3);
	}
}
END_TEST

/* ---- v2 (2.2) --------------------------------------------------------- */

START_TEST(test_v2_proxy_v4)
{
	uint8_t b[64];
	size_t n = v2(b, 0x21, 0x11, V4_BLOCK, sizeof(V4_BLOCK)), used;
	struct proxyproto_hdr h;

	ck_assert_uint_eq(n, 28);
	memcpy(b + n, "GET", 3);
	ck_assert_int_eq(parse_n(b, n + 3, &h, &used), PROXYPROTO_OK);
	ck_assert_uint_eq(used, 28);
	ck_assert_uint_eq(h.pp_version, 2);
	ck_assert(h.pp_has_addr);
	ck_assert(!h.pp_is_local);
	ck_sa(&h.pp_src, "192.0.2.1", 56324);
	ck_sa(&h.pp_dst, "198.51.100.7", 443);
}
END_TEST

START_TEST(test_v2_proxy_v6)
{
	uint8_t body[36], b[64];
	struct in6_addr a;
	struct proxyproto_hdr h;
	size_t n, used;

	inet_pton(AF_INET6, "2001:db8::1", &a);
	memcpy(body, &a, 16);
	inet_pton(AF_INET6, "::ffff:10.9.8.7", &a);
	memcpy(body + 16, &a, 16);
	body[32] = 0xFF, body[33] = 0xFF, body[34] = 0, body[35] = 0;
	n = v2(b, 0x21, 0x21, body, sizeof(body));
	ck_assert_int_eq(parse_n(b, n, &h, &used), PROXYPROTO_OK);
	ck_assert_uint_eq(used, 52);
	ck_sa(&h.pp_src, "2001:db8::1", 65535);
	ck_sa(&h.pp_dst, "10.9.8.7", 0); /* mapped: IPv4 */
}
END_TEST

/* 2.2: LOCAL: "use the real connection endpoints and discard the
 * protocol block including the family which is ignored"; "must not
 * assume zero is presented for LOCAL connections". */
START_TEST(test_v2_local)
{
	uint8_t b[64], junk[5] = {1, 2, 3, 4, 5};
	struct proxyproto_hdr h;
	size_t n, used;

	n = v2(b, 0x20, 0x00, NULL, 0);
	ck_assert_int_eq(parse_n(b, n, &h, &used), PROXYPROTO_OK);
	ck_assert_uint_eq(used, 16);
	ck_assert(h.pp_is_local);
	ck_assert(!h.pp_has_addr);

	n = v2(b, 0x20, 0xFF, junk, sizeof(junk));
	ck_assert_int_eq(parse_n(b, n, &h, &used), PROXYPROTO_OK);
	ck_assert_uint_eq(used, 21);
	ck_assert(h.pp_is_local);
	ck_assert(!h.pp_has_addr);

	n = v2(b, 0x20, 0x11, V4_BLOCK, sizeof(V4_BLOCK));
	ck_assert_int_eq(parse_n(b, n, &h, &used), PROXYPROTO_OK);
	ck_assert(!h.pp_has_addr);
}
END_TEST

/* 2.2: families we do not relay fall back to UNSPEC: accepted, the real
 * peer kept; their address block must still be as long as they say. */
START_TEST(test_v2_unrelayed_families)
{
	static const uint8_t fams[] = {0x00, 0x12, 0x22, 0x31,
				       0x32, 0x10, 0x01, 0x02};
	uint8_t body[216] = {0}, b[256];
	struct proxyproto_hdr h;
	size_t i, n, used;

	for (i = 0; i < sizeof(fams); i++) {
		n = v2(b, 0x21, fams[i], body, sizeof(body));
		ck_assert_msg(parse_n(b, n, &h, &used) == PROXYPROTO_OK,
			      "fam %#x: %s", fams[i], h.pp_error);
		ck_assert_uint_eq(used, n);
		ck_assert(!h.pp_has_addr);
		ck_assert(!h.pp_is_local);
	}
	n = v2(b, 0x21, 0x00, NULL, 0);
	ck_assert_int_eq(parse_n(b, n, &h, &used), PROXYPROTO_OK);
	/* AF_UNIX addresses are 108 bytes each; UDP/IPv4 needs 12 */
	n = v2(b, 0x21, 0x31, body, 215);
	ck_assert_int_eq(parse_n(b, n, &h, &used), PROXYPROTO_INVALID);
	n = v2(b, 0x21, 0x12, body, 11);
	ck_assert_int_eq(parse_n(b, n, &h, &used), PROXYPROTO_INVALID);
}
END_TEST

/*
 * An independent CRC32C (RFC 4960 appendix B: polynomial 0x1EDC6F41,
 * reflected), table-driven, checked against the standard check value.
 */
static uint32_t crc32c(const uint8_t *p, size_t n)
{
	static uint32_t table[256];
	uint32_t crc = 0xFFFFFFFFu, c;
	int i, k;

	if (table[1] == 0) {
		for (i = 0; i < 256; i++) {
			c = (uint32_t)i;
			for (k = 0; k < 8; k++)
				c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
			table[i] = c;
		}
	}
	while (n--)
		crc = table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
	return ~crc;
}

/* Append a TLV to body at *len. */
static void tlv(uint8_t *body, size_t *len, uint8_t type, const void *v,
		size_t vlen)
{
	body[(*len)++] = type;
	body[(*len)++] = (uint8_t)(vlen >> 8);
	body[(*len)++] = (uint8_t)vlen;
	if (vlen)
		memcpy(body + *len, v, vlen);
	*len += vlen;
}

/* 2.2: TLVs after the addresses: skipped, each within the header. */
START_TEST(test_v2_tlvs)
{
	/* client SSL, verify 0, sub-TLV SSL_VERSION "TLSv1.3" */
	static const char ssl[] = "\x01\0\0\0\0\x21\0\x07TLSv1.3";
	uint8_t body[512], b[600];
	struct proxyproto_hdr h;
	size_t blen = sizeof(V4_BLOCK), n, used;

	memcpy(body, V4_BLOCK, blen);
	tlv(body, &blen, 0x04, NULL, 0);	      /* NOOP */
	tlv(body, &blen, 0x02, "example.com", 11);    /* AUTHORITY */
	tlv(body, &blen, 0x20, ssl, sizeof(ssl) - 1); /* SSL */
	tlv(body, &blen, 0xEA, "\x01vpce-0abc", 10);  /* AWS, unknown */
	n = v2(b, 0x21, 0x11, body, blen);
	memcpy(b + n, "GET", 3);
	ck_assert_int_eq(parse_n(b, n + 3, &h, &used), PROXYPROTO_OK);
	ck_assert_uint_eq(used, n);
	ck_sa(&h.pp_src, "192.0.2.1", 56324);
	ck_split(b, n, n + 3);

	/* one or two bytes left: no room for a TLV's type and length */
	n = v2(b, 0x21, 0x11, body, sizeof(V4_BLOCK) + 2);
	ck_assert_int_eq(parse_n(b, n, &h, &used), PROXYPROTO_INVALID);
	n = v2(b, 0x21, 0x11, body, sizeof(V4_BLOCK) + 1);
	ck_assert_int_eq(parse_n(b, n, &h, &used), PROXYPROTO_INVALID);
	/* a TLV cut by the header's end (AUTHORITY's last byte) */
	blen = sizeof(V4_BLOCK) + 3 + 3 + 10;
	n = v2(b, 0x21, 0x11, body, blen);
	ck_assert_int_eq(parse_n(b, n, &h, &used), PROXYPROTO_INVALID);
	ck_assert(!h.pp_has_addr);
	/* a TLV that claims more than the header holds, though the buffer
	 * has those bytes after it */
	blen = sizeof(V4_BLOCK);
	tlv(body, &blen, 0x05, "id", 2);
	body[blen - 4] = 0x10; /* its length: 0x1002 */
	n = v2(b, 0x21, 0x11, body, blen);
	memset(b + n, 'x', 100);
	ck_assert_int_eq(parse_n(b, n + 100, &h, &used), PROXYPROTO_INVALID);
}
END_TEST

/* 2.2.3: PP2_TYPE_CRC32C is verified: a mismatch is an invalid header. */
START_TEST(test_v2_crc32c)
{
	uint8_t body[64], b[128], zero[4] = {0};
	struct proxyproto_hdr h;
	size_t blen = sizeof(V4_BLOCK), n, used, at;
	uint32_t crc;

	ck_assert_uint_eq(crc32c((const uint8_t *)"123456789", 9), 0xE3069283u);
	memcpy(body, V4_BLOCK, blen);
	tlv(body, &blen, 0x02, "a.example", 9);
	at = 16 + blen + 3; /* the value of the CRC TLV in the header */
	tlv(body, &blen, 0x03, zero, 4);
	n = v2(b, 0x21, 0x11, body, blen);
	crc = crc32c(b, n);
	b[at] = (uint8_t)(crc >> 24), b[at + 1] = (uint8_t)(crc >> 16);
	b[at + 2] = (uint8_t)(crc >> 8), b[at + 3] = (uint8_t)crc;
	ck_assert_int_eq(parse_n(b, n, &h, &used), PROXYPROTO_OK);
	ck_assert_uint_eq(used, n);
	ck_assert(h.pp_has_addr);

	b[20] ^= 1; /* the source address changed on the way */
	ck_assert_int_eq(parse_n(b, n, &h, &used), PROXYPROTO_INVALID);
	b[20] ^= 1;
	b[at + 3] ^= 0x80;
	ck_assert_int_eq(parse_n(b, n, &h, &used), PROXYPROTO_INVALID);

	/* a CRC32C TLV is 4 bytes */
	blen = sizeof(V4_BLOCK);
	tlv(body, &blen, 0x03, zero, 3);
	n = v2(b, 0x21, 0x11, body, blen);
	ck_assert_int_eq(parse_n(b, n, &h, &used), PROXYPROTO_INVALID);
}
END_TEST

/*
 * Headers as HAProxy 2.6 sends them (send-proxy-v2 with proxy-v2-options
 * crc32c,authority,unique-id,ssl), recorded at a server: a CRC32C, an
 * empty UNIQUE_ID and an SSL TLV saying "not TLS".
 */
// clang-format off
static const uint8_t HAPROXY_V4[46] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
	0x21, 0x11, 0x00, 0x1e,
	0x7f, 0x00, 0x00, 0x01, 0x7f, 0x00, 0x00, 0x01, 0xaf, 0xf8, 0x46, 0xb6,
	0x03, 0x00, 0x04, 0x19, 0xc6, 0x93, 0xf0,
	0x05, 0x00, 0x00,
	0x20, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00};
static const uint8_t HAPROXY_V6[70] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
	0x21, 0x21, 0x00, 0x36,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x10, 0x92, 0x01, 0xbb,
	0x03, 0x00, 0x04, 0x04, 0x07, 0x4b, 0x83,
	0x05, 0x00, 0x00,
	0x20, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00};
// clang-format on

START_TEST(test_v2_haproxy)
{
	uint8_t b[128];
	struct proxyproto_hdr h;
	size_t used;

	ck_assert_int_eq(parse_n(HAPROXY_V4, sizeof(HAPROXY_V4), &h, &used),
			 PROXYPROTO_OK);
	ck_assert_uint_eq(used, 46);
	ck_sa(&h.pp_src, "127.0.0.1", 45048);
	ck_sa(&h.pp_dst, "127.0.0.1", 18102);
	h = ck_split(HAPROXY_V6, sizeof(HAPROXY_V6), sizeof(HAPROXY_V6));
	ck_sa(&h.pp_src, "2001:db8::7", 4242);
	ck_sa(&h.pp_dst, "2001:db8::1", 443);

	/* 2.2.3: a port changed on the way no longer matches the CRC */
	memcpy(b, HAPROXY_V4, sizeof(HAPROXY_V4));
	b[25] ^= 1;
	ck_assert_int_eq(parse_n(b, sizeof(HAPROXY_V4), &h, &used),
			 PROXYPROTO_INVALID);
}
END_TEST

/* 2.2: signature, version 2 only, LOCAL or PROXY, known families. */
START_TEST(test_v2_malformed)
{
	uint8_t b[64];
	struct proxyproto_hdr h;
	size_t i, n, used;

	/* every byte of the signature matters, and is checked on arrival */
	for (i = 0; i < 12; i++) {
		n = v2(b, 0x21, 0x11, V4_BLOCK, sizeof(V4_BLOCK));
		b[i] ^= 0x40;
		ck_assert_int_eq(parse_n(b, i + 1, &h, &used),
				 PROXYPROTO_INVALID);
		ck_assert_int_eq(parse_n(b, n, &h, &used), PROXYPROTO_INVALID);
	}
	/* "it must always be sent as \x2 and the receiver must only accept
	 * this value" */
	static const uint8_t bad_vc[] = {0x11, 0x31, 0x01, 0xF1, 0x22, 0x2F};
	for (i = 0; i < sizeof(bad_vc); i++) {
		n = v2(b, bad_vc[i], 0x11, V4_BLOCK, sizeof(V4_BLOCK));
		ck_assert_int_eq(parse_n(b, 13, &h, &used), PROXYPROTO_INVALID);
	}
	/* family > 3 or protocol > 2: "must be rejected as invalid" */
	static const uint8_t bad_fam[] = {0x41, 0x13, 0xF1, 0x1F};
	for (i = 0; i < sizeof(bad_fam); i++) {
		n = v2(b, 0x21, bad_fam[i], V4_BLOCK, sizeof(V4_BLOCK));
		ck_assert_int_eq(parse_n(b, 14, &h, &used), PROXYPROTO_INVALID);
	}
	/* an address block shorter than its family: refused at 16 bytes */
	n = v2(b, 0x21, 0x11, V4_BLOCK, 11);
	ck_assert_int_eq(parse_n(b, 16, &h, &used), PROXYPROTO_INVALID);
	n = v2(b, 0x21, 0x21, V4_BLOCK, 12);
	ck_assert_int_eq(parse_n(b, 16, &h, &used), PROXYPROTO_INVALID);
	(void)n;
}
END_TEST

/* The declared length is bounded: refused as soon as it is read. */
START_TEST(test_v2_oversized)
{
	uint8_t *b = calloc(1, PROXYPROTO_MAX_LEN + 16);
	struct proxyproto_hdr h;
	size_t used, max = PROXYPROTO_MAX_LEN - 16;

	ck_assert_ptr_nonnull(b);
	v2(b, 0x21, 0x11, V4_BLOCK, sizeof(V4_BLOCK));
	b[14] = (uint8_t)((max + 1) >> 8);
	b[15] = (uint8_t)(max + 1);
	ck_assert_int_eq(parse_n(b, 16, &h, &used), PROXYPROTO_INVALID);
	b[14] = b[15] = 0xFF;
	ck_assert_int_eq(parse_n(b, 16, &h, &used), PROXYPROTO_INVALID);
	/* the largest accepted, with one NOOP TLV filling it */
	b[14] = (uint8_t)(max >> 8);
	b[15] = (uint8_t)max;
	b[28] = 0x04;
	b[29] = (uint8_t)((max - 12 - 3) >> 8);
	b[30] = (uint8_t)(max - 12 - 3);
	ck_assert_int_eq(parse_n(b, PROXYPROTO_MAX_LEN - 1, &h, &used),
			 PROXYPROTO_NEED_MORE);
	ck_assert_int_eq(parse_n(b, PROXYPROTO_MAX_LEN, &h, &used),
			 PROXYPROTO_OK);
	ck_assert_uint_eq(used, PROXYPROTO_MAX_LEN);
	free(b);
}
END_TEST

START_TEST(test_v2_split)
{
	uint8_t b[64];
	size_t n;

	n = v2(b, 0x21, 0x11, V4_BLOCK, sizeof(V4_BLOCK));
	memcpy(b + n, "\x16\x03\x01", 3);
	ck_split(b, n, n + 3);
	n = v2(b, 0x20, 0x00, NULL, 0);
	memcpy(b + n, "GET", 3);
	ck_split(b, n, n + 3);
}
END_TEST

/* ---- builders --------------------------------------------------------- */

START_TEST(test_build_v1)
{
	struct sockaddr_storage s4 = sa_of("192.0.2.1", 56324),
				d4 = sa_of("198.51.100.7", 443),
				s6 = sa_of("2001:db8::1", 1),
				m4 = sa_of("::ffff:10.1.2.3", 80), un;
	char out[PROXYPROTO_BUILD_MAX];
	struct proxyproto_hdr h;
	size_t n, used;

	n = proxyproto_build_v1(out, sizeof(out), &s4, &d4);
	ck_assert_str_eq(out,
			 "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n");
	ck_assert_uint_eq(n, strlen(out));
	ck_assert_int_eq(parse_n(out, n, &h, &used), PROXYPROTO_OK);
	ck_assert_uint_eq(used, n);
	ck_sa(&h.pp_src, "192.0.2.1", 56324);
	ck_sa(&h.pp_dst, "198.51.100.7", 443);

	/* IPv4-mapped on both ends: TCP4 */
	n = proxyproto_build_v1(out, sizeof(out), &m4, &d4);
	ck_assert_str_eq(out, "PROXY TCP4 10.1.2.3 198.51.100.7 80 443\r\n");

	/* mixed: TCP6 with the IPv4 end as ::ffff:a.b.c.d */
	n = proxyproto_build_v1(out, sizeof(out), &s6, &d4);
	ck_assert_str_eq(out, "PROXY TCP6 2001:db8::1 ::ffff:198.51.100.7 1 "
			      "443\r\n");
	ck_assert_int_eq(parse_n(out, n, &h, &used), PROXYPROTO_OK);
	ck_sa(&h.pp_src, "2001:db8::1", 1);
	ck_sa(&h.pp_dst, "198.51.100.7", 443);

	n = proxyproto_build_v1(out, sizeof(out), &s6, &s6);
	ck_assert_str_eq(out, "PROXY TCP6 2001:db8::1 2001:db8::1 1 1\r\n");

	memset(&un, 0, sizeof(un));
	un.ss_family = AF_UNIX;
	n = proxyproto_build_v1(out, sizeof(out), &un, &d4);
	ck_assert_str_eq(out, "PROXY UNKNOWN\r\n");
	ck_assert_int_eq(parse_n(out, n, &h, &used), PROXYPROTO_OK);
	ck_assert(!h.pp_has_addr);

	/* too small: 0, never a cut header */
	ck_assert_uint_eq(proxyproto_build_v1(out, 20, &s4, &d4), 0);
	ck_assert_uint_eq(proxyproto_build_v1(out, 45, &s4, &d4), 0);
	ck_assert_uint_eq(proxyproto_build_v1(out, 46, &s4, &d4), 45);
}
END_TEST

START_TEST(test_build_v2)
{
	struct sockaddr_storage s4 = sa_of("192.0.2.1", 56324),
				d4 = sa_of("198.51.100.7", 443),
				s6 = sa_of("2001:db8::1", 1),
				m4 = sa_of("::ffff:192.0.2.1", 56324), un;
	uint8_t out[PROXYPROTO_BUILD_MAX], want[64];
	struct proxyproto_hdr h;
	size_t n, used;

	/* byte for byte what 2.2 describes */
	n = proxyproto_build_v2(out, sizeof(out), &s4, &d4);
	ck_assert_uint_eq(n, v2(want, 0x21, 0x11, V4_BLOCK, 12));
	ck_assert(memcmp(out, want, n) == 0);
	n = proxyproto_build_v2(out, sizeof(out), &m4, &d4);
	ck_assert(memcmp(out, want, n) == 0);

	n = proxyproto_build_v2(out, sizeof(out), &s6, &d4);
	ck_assert_uint_eq(n, 52);
	ck_assert_uint_eq(out[13], 0x21);
	ck_assert_int_eq(parse_n(out, n, &h, &used), PROXYPROTO_OK);
	ck_assert_uint_eq(used, 52);
	ck_sa(&h.pp_src, "2001:db8::1", 1);
	ck_sa(&h.pp_dst, "198.51.100.7", 443);

	n = proxyproto_build_v2(out, sizeof(out), &d4, &s6);
	ck_assert_int_eq(parse_n(out, n, &h, &used), PROXYPROTO_OK);
	ck_sa(&h.pp_src, "198.51.100.7", 443);
	ck_sa(&h.pp_dst, "2001:db8::1", 1);

	memset(&un, 0, sizeof(un));
	un.ss_family = AF_UNIX;
	n = proxyproto_build_v2(out, sizeof(out), &un, &d4);
	ck_assert_uint_eq(n, 16);
	ck_assert_int_eq(parse_n(out, n, &h, &used), PROXYPROTO_OK);
	ck_assert(h.pp_is_local);

	ck_assert_uint_eq(proxyproto_build_v2_local(out, sizeof(out)), 16);
	ck_assert(memcmp(out, SIG, 12) == 0);
	ck_assert_uint_eq(out[12], 0x20);
	ck_assert_uint_eq(out[13], 0x00);
	ck_assert_uint_eq(out[14] | out[15], 0);
	ck_assert_uint_eq(proxyproto_build_v2_local(out, 15), 0);
	ck_assert_uint_eq(proxyproto_build_v2(out, 27, &s4, &d4), 0);
	ck_assert_uint_eq(proxyproto_build_v2(out, 51, &s6, &d4), 0);
}
END_TEST

/* Whatever the builders write, the parser reads back the same ends. */
START_TEST(test_build_round_trip)
{
	static const char *const ips[] = {"127.0.0.5",
					  "0.0.0.0",
					  "255.255.255.255",
					  "::1",
					  "::",
					  "fe80::1:2:3:4",
					  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"};
	static const uint16_t ports[] = {0, 1, 80, 65535};
	uint8_t out[PROXYPROTO_BUILD_MAX];
	struct sockaddr_storage s, d;
	struct proxyproto_hdr h;
	size_t i, j, n, used;
	int v;

	for (i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
		for (j = 0; j < sizeof(ips) / sizeof(ips[0]); j++) {
			s = sa_of(ips[i], ports[i % 4]);
			d = sa_of(ips[j], ports[j % 4]);
			for (v = 1; v <= 2; v++) {
				n = v == 1 ? proxyproto_build_v1((char *)out,
								 sizeof(out),
								 &s, &d)
					   : proxyproto_build_v2(
						     out, sizeof(out), &s, &d);
				ck_assert_uint_ne(n, 0);
				ck_assert_int_eq(parse_n(out, n, &h, &used),
						 PROXYPROTO_OK);
				ck_assert_uint_eq(used, n);
				ck_assert_uint_eq(h.pp_version, v);
				ck_sa(&h.pp_src, ips[i], ports[i % 4]);
				ck_sa(&h.pp_dst, ips[j], ports[j % 4]);
			}
		}
	}
}
END_TEST

/* ---- config ------------------------------------------------------------ */

#define LISTENER_PP(v)                                                         \
	"listeners:\n"                                                         \
	"  - name: web\n"                                                      \
	"    bind: 127.0.0.1:8080\n"                                           \
	"    proxy_protocol: " v "\n"                                          \
	"    routes:\n"                                                        \
	"      - backend: app\n"
#define BACKEND_PP(v)                                                          \
	"backends:\n"                                                          \
	"  app:\n"                                                             \
	"    proxy_protocol: " v "\n"                                          \
	"    servers:\n"                                                       \
	"      - address: 127.0.0.1:9000\n"

static struct config *load(const char *yaml, struct config_errors *errs)
{
	memset(errs, 0, sizeof(*errs));
	return config_load_string("t.yaml", yaml, errs);
}

START_TEST(test_config_keys)
{
	static const struct {
		const char *l, *b;
		bool want_l;
		enum cfg_proxy_protocol want_b;
	} ok[] = {
		{"true", "v1", true, CFG_PROXY_PROTOCOL_V1},
		{"yes", "v2", true, CFG_PROXY_PROTOCOL_V2},
		{"false", "off", false, CFG_PROXY_PROTOCOL_OFF},
		{"off", "false", false, CFG_PROXY_PROTOCOL_OFF},
	};
	struct config_errors errs;
	struct config *cfg;
	char yaml[512];
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(yaml, sizeof(yaml), LISTENER_PP("%s") BACKEND_PP("%s"),
			 ok[i].l, ok[i].b);
		cfg = load(yaml, &errs);
		ck_assert_msg(cfg != NULL, "%s",
			      errs.count ? errs.msgs[0] : "?");
		ck_assert_int_eq(cfg->listeners[0].proxy_protocol,
				 ok[i].want_l);
		ck_assert_int_eq(cfg->backends[0].proxy_protocol, ok[i].want_b);
		config_free(cfg);
	}
	/* the defaults: off both ways */
	cfg = load("listeners:\n  - name: web\n    bind: 127.0.0.1:8080\n"
		   "    routes:\n      - backend: app\n" BACKEND_PP("~"),
		   &errs);
	ck_assert_ptr_nonnull(cfg);
	ck_assert(!cfg->listeners[0].proxy_protocol);
	ck_assert_int_eq(cfg->backends[0].proxy_protocol,
			 CFG_PROXY_PROTOCOL_OFF);
	config_free(cfg);
}
END_TEST

START_TEST(test_config_errors)
{
	static const struct {
		const char *yaml, *want;
	} bad[] = {
		{LISTENER_PP("v2") BACKEND_PP("off"),
		 "t.yaml:4:21: 'proxy_protocol' must be true or false"},
		{LISTENER_PP("false") BACKEND_PP("v3"),
		 "t.yaml:9:21: 'proxy_protocol' must be off, v1 or v2"},
		{LISTENER_PP("false") BACKEND_PP("true"),
		 "t.yaml:9:21: 'proxy_protocol' must be off, v1 or v2"},
		{LISTENER_PP("false") BACKEND_PP("V1"),
		 "t.yaml:9:21: 'proxy_protocol' must be off, v1 or v2"},
		{LISTENER_PP("false") BACKEND_PP("[v1]"),
		 "t.yaml:9:21: 'proxy_protocol' must be off, v1 or v2"},
	};
	struct config_errors errs;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_ptr_null(load(bad[i].yaml, &errs));
		ck_assert_uint_eq(errs.count, 1);
		ck_assert_str_eq(errs.msgs[0], bad[i].want);
		config_errors_clear(&errs);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("proxyproto");
	TCase *tc = tcase_create("proxyproto");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_v1_tcp4);
	tcase_add_test(tc, test_v1_tcp6);
	tcase_add_test(tc, test_v1_unknown);
	tcase_add_test(tc, test_v1_malformed);
	tcase_add_test(tc, test_v1_too_long);
	tcase_add_test(tc, test_early_refusal);
	tcase_add_test(tc, test_v1_split);
	tcase_add_test(tc, test_v2_proxy_v4);
	tcase_add_test(tc, test_v2_proxy_v6);
	tcase_add_test(tc, test_v2_local);
	tcase_add_test(tc, test_v2_unrelayed_families);
	tcase_add_test(tc, test_v2_tlvs);
	tcase_add_test(tc, test_v2_crc32c);
	tcase_add_test(tc, test_v2_haproxy);
	tcase_add_test(tc, test_v2_malformed);
	tcase_add_test(tc, test_v2_oversized);
	tcase_add_test(tc, test_v2_split);
	tcase_add_test(tc, test_build_v1);
	tcase_add_test(tc, test_build_v2);
	tcase_add_test(tc, test_build_round_trip);
	tcase_add_test(tc, test_config_keys);
	tcase_add_test(tc, test_config_errors);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
