/*
 * proxyproto.c: parsing and building PROXY protocol headers.
 *
 * Section numbers below are those of HAProxy's doc/proxy-protocol.txt
 * (2020/03/05).  Choices the document leaves to the receiver:
 *  - v1 and v2 are both accepted on a proxy_protocol listener; which one
 *    is told by the first byte ('P' or '\r'), anything else is refused
 *    at once so that a client talking HTTP or TLS directly is closed
 *    without waiting for the timeout.
 *  - v1 is checked strictly: single spaces, no leading zeros, the family
 *    of both addresses matching TCP4/TCP6, a CRLF within 107 bytes.  An
 *    IPv6 address may end in dotted IPv4 (::ffff:1.2.3.4), which is what
 *    HAProxy and others send for a mapped address.
 *  - v2 PROXY with a family or protocol we do not relay (AF_UNSPEC,
 *    AF_UNIX, DGRAM) is accepted as if it were LOCAL: the real peer is
 *    kept (2.2: "the receiver is free to accept the connection anyway and
 *    use the real endpoint addresses").
 *  - v2 headers longer than PROXYPROTO_MAX_LEN are refused; the TLVs of
 *    an AF_INET/AF_INET6 header are walked, each within the header, and
 *    PP2_TYPE_CRC32C (2.2.3) is verified when present.  Other TLVs are
 *    skipped; LOCAL and unrelayed families skip the whole block unread.
 *  - IPv4-mapped IPv6 addresses are handed out as AF_INET, so that access
 *    lists, logs and hashing see one form of an IPv4 client.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "worker/proxyproto.h"

/* 2.2: the 12 bytes that start a v2 header. */
static const uint8_t pp_v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
				      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

#define PP2_CMD_LOCAL	0x0
#define PP2_CMD_PROXY	0x1
#define PP2_TCP4	0x11
#define PP2_TCP6	0x21
#define PP2_LEN_INET	12  /* 2 * 4 + 2 * 2 */
#define PP2_LEN_INET6	36  /* 2 * 16 + 2 * 2 */
#define PP2_LEN_UNIX	216 /* 2 * 108 */
#define PP2_TYPE_CRC32C 0x03

#define PP_V1_ADDR_MAX 45 /* INET6_ADDRSTRLEN - 1: longest text address */

static enum proxyproto_result pp_invalid(struct proxyproto_hdr *out,
					 const char *why)
{
	out->pp_error = why;
	return PROXYPROTO_INVALID;
}

/* Does buf[0..len) agree with the first len bytes of the n-byte want? */
static bool pp_is_prefix(const uint8_t *buf, size_t len, const void *want,
			 size_t n)
{
	return memcmp(buf, want, len < n ? len : n) == 0;
}

static bool pp_is_digit(uint8_t ch)
{
	return ch >= '0' && ch <= '9';
}

static bool pp_is_hex(uint8_t ch)
{
	return pp_is_digit(ch) || (ch >= 'a' && ch <= 'f') ||
	       (ch >= 'A' && ch <= 'F');
}

/* ---- v1: the text line (2.1) ----------------------------------------- */

enum pp_v1_proto {
	PP_V1_TCP4,
	PP_V1_TCP6,
	PP_V1_UNKNOWN,
};

/* The line after "PROXY ": what each keyword allows to follow it. */
static const struct {
	const char *kw; /* with the space or CR that must follow it */
	size_t len;
	enum pp_v1_proto proto;
} pp_v1_kws[] = {
	{"TCP4 ", 5, PP_V1_TCP4},
	{"TCP6 ", 5, PP_V1_TCP6},
	{"UNKNOWN ", 8, PP_V1_UNKNOWN},
	{"UNKNOWN\r", 8, PP_V1_UNKNOWN},
};

/*
 * Which keyword follows "PROXY " in line[0..len), which may be cut short:
 * 0 with *proto set, 1 if no keyword is ruled out yet, -1 if none fits.
 */
static int pp_v1_keyword(const uint8_t *line, size_t len,
			 enum pp_v1_proto *proto)
{
	size_t i;
	bool is_open = false;

	for (i = 0; i < sizeof(pp_v1_kws) / sizeof(pp_v1_kws[0]); i++) {
		if (!pp_is_prefix(line, len, pp_v1_kws[i].kw, pp_v1_kws[i].len))
			continue;
		if (len >= pp_v1_kws[i].len) {
			*proto = pp_v1_kws[i].proto;
			return 0;
		}
		is_open = true;
	}
	return is_open ? 1 : -1;
}

/*
 * A bad character in a line still arriving is worth refusing early: a
 * client that happens to start with "PROXY " is not kept waiting.
 */
static bool pp_v1_is_addr_char(enum pp_v1_proto proto, uint8_t ch)
{
	if (ch == ' ' || ch == '.' || pp_is_digit(ch))
		return true;
	return proto == PP_V1_TCP6 && (ch == ':' || pp_is_hex(ch));
}

/* 2.1: a port is a decimal in [0..65535] without leading zeros. */
static int pp_v1_port(const uint8_t *s, size_t n, uint16_t *port)
{
	unsigned v = 0;
	size_t i;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (!pp_is_digit(s[i]))
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = htons((uint16_t)v);
	return 0;
}

/* 2.1: exactly 4 decimals in [0..255], single dots, no leading zeros. */
static int pp_v1_ipv4(const uint8_t *s, size_t n, struct in_addr *a)
{
	uint8_t b[4];
	size_t i = 0, part, start;
	unsigned v;

	for (part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= n || s[i] != '.')
				return -1;
			i++;
		}
		start = i;
		v = 0;
		while (i < n && pp_is_digit(s[i]) && i - start < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == start || v > 255 || (i - start > 1 && s[start] == '0'))
			return -1;
		b[part] = (uint8_t)v;
	}
	if (i != n)
		return -1;
	memcpy(a, b, 4);
	return 0;
}

/* 2.1: hex groups and one "::" (inet_pton), optionally ending in IPv4. */
static int pp_v1_ipv6(const uint8_t *s, size_t n, struct in6_addr *a)
{
	char text[PP_V1_ADDR_MAX + 1];
	size_t i;

	if (n == 0 || n > PP_V1_ADDR_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		if (!pp_is_hex(s[i]) && s[i] != ':' && s[i] != '.')
			return -1;
	}
	memcpy(text, s, n);
	text[n] = '\0';
	return inet_pton(AF_INET6, text, a) == 1 ? 0 : -1;
}

/* Store address a (4 or 16 bytes) and port (network order) into ss; an
 * IPv4-mapped IPv6 address is stored as AF_INET. */
static void pp_store(struct sockaddr_storage *ss, int family, const uint8_t *a,
		     uint16_t port)
{
	static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};

	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6 && memcmp(a, mapped, sizeof(mapped)) == 0) {
		family = AF_INET;
		a += sizeof(mapped);
	}
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a, 4);
		s4->sin_port = port;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a, 16);
		s6->sin6_port = port;
	}
}

/* One address of a TCP4/TCP6 line into a (16 bytes). */
static int pp_v1_addr(enum pp_v1_proto proto, const uint8_t *s, size_t n,
		      uint8_t *a)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (proto == PP_V1_TCP4) {
		if (pp_v1_ipv4(s, n, &a4) < 0)
			return -1;
		memcpy(a, &a4, 4);
	} else {
		if (pp_v1_ipv6(s, n, &a6) < 0)
			return -1;
		memcpy(a, &a6, 16);
	}
	return 0;
}

/*
 * The fields of a whole TCP4/TCP6 line: "src dst sport dport", which is
 * line[0..n) after the keyword and its space, without the CRLF.
 */
static enum proxyproto_result pp_v1_fields(const uint8_t *s, size_t n,
					   enum pp_v1_proto proto,
					   struct proxyproto_hdr *out)
{
	const uint8_t *f[4];
	size_t flen[4], i, nf = 0, start = 0;
	uint8_t a[2][16];
	uint16_t port[2];
	int family = proto == PP_V1_TCP4 ? AF_INET : AF_INET6;
	const char *bad_addr = proto == PP_V1_TCP4
				       ? "v1: not an IPv4 address in TCP4"
				       : "v1: not an IPv6 address in TCP6";

	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != ' ')
			continue;
		if (i == start)
			return pp_invalid(out, "v1: empty field (two spaces, "
					       "or a space at the end)");
		if (nf == 4)
			return pp_invalid(out, "v1: more than 4 fields after "
					       "the protocol");
		f[nf] = s + start;
		flen[nf++] = i - start;
		start = i + 1;
	}
	if (nf != 4)
		return pp_invalid(out, "v1: fewer than 4 fields after the "
				       "protocol");
	for (i = 0; i < 2; i++) {
		if (pp_v1_addr(proto, f[i], flen[i], a[i]) < 0)
			return pp_invalid(out, bad_addr);
		if (pp_v1_port(f[2 + i], flen[2 + i], &port[i]) < 0)
			return pp_invalid(out, "v1: port not in 0..65535 "
					       "without leading zeros");
	}
	pp_store(&out->pp_src, family, a[0], port[0]);
	pp_store(&out->pp_dst, family, a[1], port[1]);
	out->pp_has_addr = true;
	return PROXYPROTO_OK;
}

/*
 * Where the line ends: the CR of its CRLF in *eol and 0, 1 if it has not
 * arrived yet, -1 if the line is bad or too long.  Only buf[0..len) read.
 */
static int pp_v1_eol(const uint8_t *buf, size_t len, size_t *eol,
		     struct proxyproto_hdr *out)
{
	size_t i, n = len < PROXYPROTO_V1_MAX_LEN ? len : PROXYPROTO_V1_MAX_LEN;

	for (i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			pp_invalid(out, "v1: LF without CR");
			return -1;
		}
		if (buf[i] != '\r')
			continue;
		if (i + 1 < n) {
			if (buf[i + 1] != '\n') {
				pp_invalid(out, "v1: CR without LF");
				return -1;
			}
			*eol = i;
			return 0;
		}
		break; /* the CR is the last byte we may look at */
	}
	if (len >= PROXYPROTO_V1_MAX_LEN) {
		pp_invalid(out, "v1: no CRLF within 107 bytes");
		return -1;
	}
	return 1;
}

static enum proxyproto_result pp_v1(const uint8_t *buf, size_t len,
				    struct proxyproto_hdr *out,
				    size_t *consumed)
{
	enum pp_v1_proto proto = PP_V1_UNKNOWN;
	size_t i, eol = 0, end;
	int rc;

	out->pp_version = 1;
	if (!pp_is_prefix(buf, len, "PROXY ", 6))
		return pp_invalid(out, "v1: does not start with \"PROXY \"");
	if (len <= 6)
		return PROXYPROTO_NEED_MORE;
	rc = pp_v1_keyword(buf + 6, len - 6, &proto);
	if (rc < 0)
		return pp_invalid(out, "v1: protocol is not TCP4, TCP6 or "
				       "UNKNOWN");
	if (rc > 0)
		proto = PP_V1_UNKNOWN; /* not known yet: no address checks */
	rc = pp_v1_eol(buf, len, &eol, out);
	if (rc < 0)
		return PROXYPROTO_INVALID;
	if (rc > 0) {
		/* Refuse what no more bytes can mend (UNKNOWN takes any). */
		end = len < PROXYPROTO_V1_MAX_LEN ? len : PROXYPROTO_V1_MAX_LEN;
		for (i = 11; proto != PP_V1_UNKNOWN && i < end; i++) {
			if (!pp_v1_is_addr_char(proto, buf[i]) &&
			    buf[i] != '\r')
				return pp_invalid(out, "v1: a character that "
						       "is not in an address "
						       "or port");
		}
		return PROXYPROTO_NEED_MORE;
	}
	/* 2.1: UNKNOWN: "the receiver must ignore anything presented before
	 * the CRLF" and use the real connection's endpoints. */
	if (proto == PP_V1_UNKNOWN) {
		*consumed = eol + 2;
		return PROXYPROTO_OK;
	}
	if (pp_v1_fields(buf + 11, eol - 11, proto, out) != PROXYPROTO_OK)
		return PROXYPROTO_INVALID;
	*consumed = eol + 2;
	return PROXYPROTO_OK;
}

/* ---- v2: the binary header (2.2) ------------------------------------- */

/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78) as RFC 4960
 * appendix B defines it, computed bit by bit: headers carrying it are a
 * few dozen bytes, and a table is not worth its cache lines here.
 */
static uint32_t pp_crc32c_update(uint32_t crc, const uint8_t *p, size_t n)
{
	int k;

	while (n--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
	}
	return crc;
}

/* 2.2.3: the CRC32C of hdr[0..n) with the 4 bytes at off taken as 0. */
static uint32_t pp_crc32c_masked(const uint8_t *hdr, size_t n, size_t off)
{
	static const uint8_t zero[4];
	uint32_t crc = 0xFFFFFFFFu;

	crc = pp_crc32c_update(crc, hdr, off);
	crc = pp_crc32c_update(crc, zero, 4);
	crc = pp_crc32c_update(crc, hdr + off + 4, n - off - 4);
	return ~crc;
}

/* 2.2: the TLVs at hdr[off..n), each within the header. */
static enum proxyproto_result pp_v2_tlvs(const uint8_t *hdr, size_t n,
					 size_t off, struct proxyproto_hdr *out)
{
	bool has_crc = false;
	size_t tlen;
	uint32_t want;

	while (off < n) {
		if (n - off < 3)
			return pp_invalid(out, "v2: bytes after the last TLV "
					       "too short for a TLV");
		tlen = (size_t)hdr[off + 1] << 8 | hdr[off + 2];
		if (tlen > n - off - 3)
			return pp_invalid(out, "v2: a TLV goes past the end "
					       "of the header");
		if (hdr[off] == PP2_TYPE_CRC32C) {
			if (tlen != 4 || has_crc)
				return pp_invalid(out, "v2: CRC32C TLV not "
						       "4 bytes, or twice");
			has_crc = true;
			want = (uint32_t)hdr[off + 3] << 24 |
			       (uint32_t)hdr[off + 4] << 16 |
			       (uint32_t)hdr[off + 5] << 8 | hdr[off + 6];
			if (pp_crc32c_masked(hdr, n, off + 3) != want)
				return pp_invalid(out, "v2: CRC32C mismatch");
		}
		off += 3 + tlen;
	}
	return PROXYPROTO_OK;
}

/*
 * The minimum address block of a relayed family/protocol byte, 0 for
 * those that carry no address we read, -1 for values 2.2 says to reject.
 */
static int pp_v2_addr_len(uint8_t fam)
{
	uint8_t af = fam >> 4, proto = fam & 0x0F;

	if (af > 3 || proto > 2)
		return -1;
	if (proto == 0)
		return 0;
	switch (af) {
	case 1:
		return PP2_LEN_INET;
	case 2:
		return PP2_LEN_INET6;
	case 3:
		return PP2_LEN_UNIX;
	default:
		return 0;
	}
}

/* A whole PROXY-command header of n bytes: its addresses and TLVs. */
static enum proxyproto_result pp_v2_proxy(const uint8_t *hdr, size_t n,
					  struct proxyproto_hdr *out)
{
	const uint8_t *a = hdr + PROXYPROTO_V2_HDR_LEN;
	uint16_t sport, dport;

	if (hdr[13] == PP2_TCP4) {
		memcpy(&sport, a + 8, 2);
		memcpy(&dport, a + 10, 2);
		pp_store(&out->pp_src, AF_INET, a, sport);
		pp_store(&out->pp_dst, AF_INET, a + 4, dport);
		out->pp_has_addr = true;
		return pp_v2_tlvs(hdr, n, PROXYPROTO_V2_HDR_LEN + PP2_LEN_INET,
				  out);
	}
	if (hdr[13] == PP2_TCP6) {
		memcpy(&sport, a + 32, 2);
		memcpy(&dport, a + 34, 2);
		pp_store(&out->pp_src, AF_INET6, a, sport);
		pp_store(&out->pp_dst, AF_INET6, a + 16, dport);
		out->pp_has_addr = true;
		return pp_v2_tlvs(hdr, n, PROXYPROTO_V2_HDR_LEN + PP2_LEN_INET6,
				  out);
	}
	/* UNSPEC, UDP, UNIX: fall back to UNSPEC (2.2), keep the peer. */
	return PROXYPROTO_OK;
}

static enum proxyproto_result pp_v2(const uint8_t *buf, size_t len,
				    struct proxyproto_hdr *out,
				    size_t *consumed)
{
	uint8_t cmd;
	size_t total;
	int need;

	out->pp_version = 2;
	if (!pp_is_prefix(buf, len, pp_v2_sig, sizeof(pp_v2_sig)))
		return pp_invalid(out, "v2: bad signature");
	if (len < 13)
		return PROXYPROTO_NEED_MORE;
	if (buf[12] >> 4 != 2)
		return pp_invalid(out, "v2: version is not 2");
	cmd = buf[12] & 0x0F;
	if (cmd != PP2_CMD_LOCAL && cmd != PP2_CMD_PROXY)
		return pp_invalid(out, "v2: command is neither LOCAL nor "
				       "PROXY");
	if (len < 14)
		return PROXYPROTO_NEED_MORE;
	/* LOCAL: "discard the protocol block including the family". */
	need = cmd == PP2_CMD_PROXY ? pp_v2_addr_len(buf[13]) : 0;
	if (need < 0)
		return pp_invalid(out, "v2: unknown address family or "
				       "transport protocol");
	if (len < PROXYPROTO_V2_HDR_LEN)
		return PROXYPROTO_NEED_MORE;
	total = PROXYPROTO_V2_HDR_LEN + ((size_t)buf[14] << 8 | buf[15]);
	if (total > PROXYPROTO_MAX_LEN)
		return pp_invalid(out, "v2: header longer than we accept");
	if (total < PROXYPROTO_V2_HDR_LEN + (size_t)need)
		return pp_invalid(out, "v2: length too short for the address "
				       "family");
	if (len < total)
		return PROXYPROTO_NEED_MORE;
	if (cmd == PP2_CMD_LOCAL) {
		out->pp_is_local = true;
	} else if (pp_v2_proxy(buf, total, out) != PROXYPROTO_OK) {
		out->pp_has_addr = false;
		return PROXYPROTO_INVALID;
	}
	*consumed = total;
	return PROXYPROTO_OK;
}

enum proxyproto_result proxyproto_parse(const uint8_t *buf, size_t len,
					struct proxyproto_hdr *out,
					size_t *consumed)
{
	memset(out, 0, sizeof(*out));
	*consumed = 0;
	if (len == 0)
		return PROXYPROTO_NEED_MORE;
	if (buf[0] == 'P')
		return pp_v1(buf, len, out, consumed);
	if (buf[0] == pp_v2_sig[0])
		return pp_v2(buf, len, out, consumed);
	return pp_invalid(out, "not a PROXY protocol header");
}

/* ---- building ---------------------------------------------------------- */

/* The two ends of a connection as the builders write them. */
struct pp_ends {
	int family;	     /* AF_INET or AF_INET6, the same for both */
	uint8_t addr[2][16]; /* 4 or 16 bytes used */
	uint16_t port[2];    /* network order */
};

/* Address of ss into a (4 or 16 bytes) and its family; mapped -> IPv4. */
static int pp_end(const struct sockaddr_storage *ss, uint8_t *a, uint16_t *port)
{
	static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

	if (ss->ss_family == AF_INET) {
		memcpy(a, &s4->sin_addr, 4);
		*port = s4->sin_port;
		return AF_INET;
	}
	if (ss->ss_family != AF_INET6)
		return -1;
	*port = s6->sin6_port;
	if (memcmp(&s6->sin6_addr, mapped, sizeof(mapped)) == 0) {
		memcpy(a, s6->sin6_addr.s6_addr + 12, 4);
		return AF_INET;
	}
	memcpy(a, &s6->sin6_addr, 16);
	return AF_INET6;
}

/* Both ends in one family: IPv4 if both are, else IPv6 (::ffff:a.b.c.d
 * for an IPv4 end).  -1 if either is neither. */
static int pp_ends(const struct sockaddr_storage *src,
		   const struct sockaddr_storage *dst, struct pp_ends *e)
{
	int af[2];
	size_t i;

	memset(e, 0, sizeof(*e));
	af[0] = pp_end(src, e->addr[0], &e->port[0]);
	af[1] = pp_end(dst, e->addr[1], &e->port[1]);
	if (af[0] < 0 || af[1] < 0)
		return -1;
	e->family = af[0] == af[1] ? af[0] : AF_INET6;
	for (i = 0; i < 2; i++) {
		if (e->family == AF_INET6 && af[i] == AF_INET) {
			memmove(e->addr[i] + 12, e->addr[i], 4);
			memset(e->addr[i], 0, 10);
			e->addr[i][10] = e->addr[i][11] = 0xff;
		}
	}
	return 0;
}

size_t proxyproto_build_v1(char *out, size_t cap,
			   const struct sockaddr_storage *src,
			   const struct sockaddr_storage *dst)
{
	char a[2][INET6_ADDRSTRLEN];
	struct pp_ends e;
	size_t i;
	int n;

	if (pp_ends(src, dst, &e) < 0) {
		n = snprintf(out, cap, "PROXY UNKNOWN\r\n");
	} else {
		for (i = 0; i < 2; i++)
			inet_ntop(e.family, e.addr[i], a[i], sizeof(a[i]));
		n = snprintf(out, cap, "PROXY TCP%c %s %s %u %u\r\n",
			     e.family == AF_INET ? '4' : '6', a[0], a[1],
			     (unsigned)ntohs(e.port[0]),
			     (unsigned)ntohs(e.port[1]));
	}
	if (n < 0 || (size_t)n >= cap)
		return 0;
	return (size_t)n;
}

/* The 16 fixed bytes of a v2 header. */
static void pp_v2_fixed(uint8_t *out, uint8_t ver_cmd, uint8_t fam, size_t alen)
{
	memcpy(out, pp_v2_sig, sizeof(pp_v2_sig));
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (uint8_t)(alen >> 8);
	out[15] = (uint8_t)alen;
}

size_t proxyproto_build_v2_local(uint8_t *out, size_t cap)
{
	if (cap < PROXYPROTO_V2_HDR_LEN)
		return 0;
	pp_v2_fixed(out, 0x20 | PP2_CMD_LOCAL, 0x00, 0);
	return PROXYPROTO_V2_HDR_LEN;
}

size_t proxyproto_build_v2(uint8_t *out, size_t cap,
			   const struct sockaddr_storage *src,
			   const struct sockaddr_storage *dst)
{
	struct pp_ends e;
	size_t alen, n;
	uint8_t *p;

	if (pp_ends(src, dst, &e) < 0)
		return proxyproto_build_v2_local(out, cap);
	n = e.family == AF_INET ? 4 : 16;
	alen = e.family == AF_INET ? PP2_LEN_INET : PP2_LEN_INET6;
	if (cap < PROXYPROTO_V2_HDR_LEN + alen)
		return 0;
	pp_v2_fixed(out, 0x20 | PP2_CMD_PROXY,
		    e.family == AF_INET ? PP2_TCP4 : PP2_TCP6, alen);
	p = out + PROXYPROTO_V2_HDR_LEN;
	memcpy(p, e.addr[0], n);
	memcpy(p + n, e.addr[1], n);
	memcpy(p + 2 * n, &e.port[0], 2);
	memcpy(p + 2 * n + 2, &e.port[1], 2);
	return PROXYPROTO_V2_HDR_LEN + alen;
}
