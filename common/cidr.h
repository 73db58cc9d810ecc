/*
 * cidr.h: IPv4/IPv6 address ranges ("10.0.0.0/8", "::1/128", or a bare
 * address meaning a single host) and matching socket addresses against
 * them.  IPv4-mapped IPv6 peers (::ffff:a.b.c.d) match IPv4 ranges.
 */
#ifndef PORTCULLIS_CIDR_H
#define PORTCULLIS_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
	int cd_family;        /* AF_INET or AF_INET6 */
	uint8_t cd_addr[16];  /* network address, host bits cleared */
	uint8_t cd_prefix;    /* 0..32 or 0..128 */
};

/* Parse s into c.  0, or -1 if s is not an address or address/prefix. */
int cidr_parse(const char *s, struct cidr *c);

/* Is sa inside c? */
bool cidr_match(const struct cidr *c, const struct sockaddr_storage *sa);

/* Is sa inside any of the n ranges? */
bool cidr_match_any(const struct cidr *list, size_t n,
		    const struct sockaddr_storage *sa);

#endif
