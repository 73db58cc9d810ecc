/* cidr.c: address ranges (see cidr.h). */
#include "common/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static void cidr_mask(struct cidr *c)
{
	size_t len = c->cd_family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < len; i++) {
		int bits = (int)c->cd_prefix - (int)i * 8;

		if (bits >= 8)
			continue;
		c->cd_addr[i] &= bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
	}
}

int cidr_parse(const char *s, struct cidr *c)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned max;

	if (alen == 0 || alen >= sizeof(buf))
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, buf, c->cd_addr) == 1) {
		c->cd_family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c->cd_addr) == 1) {
		c->cd_family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	c->cd_prefix = (uint8_t)max;
	if (slash != NULL) {
		char *end;
		unsigned long p;

		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		p = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || p > max || end - (slash + 1) > 3)
			return -1;
		c->cd_prefix = (uint8_t)p;
	}
	cidr_mask(c);
	return 0;
}

static bool cidr_match_bytes(const struct cidr *c, const uint8_t *a)
{
	unsigned full = c->cd_prefix / 8, rest = c->cd_prefix % 8;

	if (memcmp(c->cd_addr, a, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return (a[full] & (uint8_t)(0xff << (8 - rest))) == c->cd_addr[full];
}

bool cidr_match(const struct cidr *c, const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		return c->cd_family == AF_INET &&
		       cidr_match_bytes(c, (const uint8_t *)&in->sin_addr);
	}
	if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		const uint8_t *a = in6->sin6_addr.s6_addr;

		if (c->cd_family == AF_INET6)
			return cidr_match_bytes(c, a);
		return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
		       cidr_match_bytes(c, a + 12);
	}
	return false;
}

bool cidr_match_any(const struct cidr *list, size_t n,
		    const struct sockaddr_storage *sa)
{
	for (size_t i = 0; i < n; i++)
		if (cidr_match(&list[i], sa))
			return true;
	return false;
}
