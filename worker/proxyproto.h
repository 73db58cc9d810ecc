/*
 * proxyproto.h: the PROXY protocol, versions 1 and 2 (HAProxy's
 * doc/proxy-protocol.txt), both ways.
 *
 * In: a listener with proxy_protocol: true expects a header before any
 * other byte (TLS or HTTP) from the L4 balancer in front of it, which
 * tells the address of the client it relays.  proxyproto_parse() checks
 * it strictly and incrementally, on whatever prefix has arrived so far.
 *
 * Out: a backend with proxy_protocol: v1 or v2 sends one header first on
 * every new server connection; proxyproto_build_v1/_v2 write it.
 *
 * Nothing here allocates, logs or touches a socket: the caller owns the
 * bytes both ways.
 */
#ifndef PORTCULLIS_PROXYPROTO_H
#define PORTCULLIS_PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * The longest header proxyproto_parse() accepts, in bytes: a v2 header
 * whose address block and TLVs take more than PROXYPROTO_MAX_LEN - 16
 * bytes is refused as soon as its length field arrives.  A caller that
 * peeks or reads this many bytes always has enough to decide.
 */
#define PROXYPROTO_MAX_LEN 4096

#define PROXYPROTO_V1_MAX_LEN 107 /* spec 2.1: "PROXY UNKNOWN <v6> ..." */
#define PROXYPROTO_V2_HDR_LEN 16  /* signature, ver/cmd, fam, length */

/* What the builders may write at most: the v1 worst case plus a NUL, and
 * a v2 header with two IPv6 addresses and ports (no TLVs). */
#define PROXYPROTO_BUILD_MAX 108

enum proxyproto_result {
	PROXYPROTO_NEED_MORE, /* a valid prefix: wait for more bytes */
	PROXYPROTO_OK,	      /* a whole valid header: *consumed bytes */
	PROXYPROTO_INVALID,   /* not a valid header: close the connection */
};

struct proxyproto_hdr {
	uint8_t pp_version; /* 1 or 2 */
	bool pp_has_addr;   /* false: LOCAL (v2), UNKNOWN (v1) or a family
			       we do not relay (v2 UNSPEC, UNIX, DGRAM):
			       keep the real peer; pp_src/pp_dst are zero */
	bool pp_is_local;   /* v2 command LOCAL: the balancer's own
			       connection (its health check) */
	struct sockaddr_storage pp_src; /* the client: AF_INET or AF_INET6,
					   port set; IPv4-mapped IPv6 comes
					   out as AF_INET */
	struct sockaddr_storage pp_dst; /* the address it connected to */
	const char *pp_error; /* INVALID: why, a static string for the log */
};

/*
 * Parse the header at the start of buf[0..len).  Reads no byte at or past
 * buf + len.  Returns:
 *  - PROXYPROTO_OK: *out is filled and *consumed is the header's length
 *    (<= len, <= PROXYPROTO_MAX_LEN); the bytes after it belong to the
 *    protocol that follows and are not looked at.
 *  - PROXYPROTO_NEED_MORE: buf is a valid beginning of a header, but not
 *    all of it (len 0 included); call again with more bytes.
 *  - PROXYPROTO_INVALID: no header can start with these bytes (a first
 *    byte other than 'P' or '\r' is refused at once); out->pp_error says
 *    why.
 * *consumed is 0 unless OK.  out may be partly written on any result.
 */
enum proxyproto_result proxyproto_parse(const uint8_t *buf, size_t len,
					struct proxyproto_hdr *out,
					size_t *consumed);

/*
 * Write a v1 header ("PROXY TCP4 <src> <dst> <sport> <dport>\r\n") for a
 * connection from src (the client) to dst (the address it connected to)
 * into out, NUL-terminated.  IPv4-mapped IPv6 addresses are written as
 * IPv4; if one address is IPv4 and the other IPv6, both are written as
 * TCP6 (the IPv4 one as ::ffff:a.b.c.d).  A family other than AF_INET or
 * AF_INET6 gives "PROXY UNKNOWN\r\n".  Returns the length without the NUL,
 * or 0 if cap is too small (PROXYPROTO_BUILD_MAX is always enough).
 */
size_t proxyproto_build_v1(char *out, size_t cap,
			   const struct sockaddr_storage *src,
			   const struct sockaddr_storage *dst);

/*
 * Write a v2 header (command PROXY, TCP over AF_INET or AF_INET6, no TLVs)
 * for src -> dst into out, with the same address mapping as
 * proxyproto_build_v1.  A family other than AF_INET or AF_INET6 gives a
 * LOCAL header.  Returns its length (28 or 52; 16 for LOCAL), or 0 if cap
 * is too small.
 */
size_t proxyproto_build_v2(uint8_t *out, size_t cap,
			   const struct sockaddr_storage *src,
			   const struct sockaddr_storage *dst);

/*
 * Write a v2 LOCAL header (the sender's own connection, e.g. a health
 * check: the receiver keeps the real endpoints).  Returns 16, or 0 if cap
 * is too small.
 */
size_t proxyproto_build_v2_local(uint8_t *out, size_t cap);

#endif
