/*
 * config_scalar.c: the scalar forms of portcullis.yaml: durations, sizes,
 * socket addresses.  Strict: no signs, no spaces, no fractions, no
 * overflow; anything unexpected is rejected rather than guessed at.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "config/config_int.h"

#define ADDR_MAX_LEN 64 /* "[ffff:...:255.255.255.255]:65535" fits */

int config_parse_uint(const char *s, uint64_t *v)
{
	uint64_t n = 0;
	unsigned d;

	if (!*s) {
		errno = EINVAL;
		return -1;
	}
	for (; *s; s++) {
		if (*s < '0' || *s > '9') {
			errno = EINVAL;
			return -1;
		}
		d = (unsigned)(*s - '0');
		if (n > (UINT64_MAX - d) / 10) {
			errno = ERANGE;
			return -1;
		}
		n = n * 10 + d;
	}
	*v = n;
	return 0;
}

/* Split "123unit" into its number and unit; the unit may be empty. */
static int scalar_split(const char *s, uint64_t *n, const char **unit)
{
	char digits[24];
	size_t len = strspn(s, "0123456789");

	if (len == 0 || len >= sizeof(digits))
		return -1;
	memcpy(digits, s, len);
	digits[len] = '\0';
	*unit = s + len;
	return config_parse_uint(digits, n);
}

int config_parse_duration(const char *s, uint32_t *ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"", 1000},
		     {"ms", 1},
		     {"s", 1000},
		     {"m", 60000},
		     {"h", 3600000}};
	const char *unit;
	uint64_t n;
	size_t i;

	if (scalar_split(s, &n, &unit) < 0)
		return -1;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(unit, units[i].unit))
			continue;
		if (n > UINT32_MAX / units[i].ms)
			return -1;
		*ms = (uint32_t)(n * units[i].ms);
		return 0;
	}
	return -1;
}

int config_parse_size(const char *s, uint64_t *bytes)
{
	const char *unit;
	uint64_t n;
	int shift;

	if (scalar_split(s, &n, &unit) < 0)
		return -1;
	if (!*unit)
		shift = 0;
	else if (!strcasecmp(unit, "k"))
		shift = 10;
	else if (!strcasecmp(unit, "m"))
		shift = 20;
	else if (!strcasecmp(unit, "g"))
		shift = 30;
	else
		return -1;
	if (n > UINT64_MAX >> shift)
		return -1;
	*bytes = n << shift;
	return 0;
}

/* A port: 1 to 5 digits, 1..65535. */
static int scalar_port(const char *s, uint16_t *port)
{
	uint64_t n;

	if (strlen(s) > 5 || config_parse_uint(s, &n) < 0 || n < 1 || n > 65535)
		return -1;
	*port = (uint16_t)n;
	return 0;
}

static int scalar_inet(const char *host, uint16_t port,
		       struct sockaddr_storage *sa, socklen_t *salen)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)sa;

	memset(sa, 0, sizeof(*sa));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	/* "*" is the IPv4 wildcard; [::] is written for the IPv6 one. */
	if (!strcmp(host, "*"))
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (!strcmp(host, "localhost"))
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -1;
	*salen = sizeof(*sin);
	return 0;
}

static int scalar_inet6(const char *host, uint16_t port,
			struct sockaddr_storage *sa, socklen_t *salen)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;

	memset(sa, 0, sizeof(*sa));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
		return -1;
	*salen = sizeof(*sin6);
	return 0;
}

/*
 * Only numeric addresses, "*" and "localhost": a name that needs DNS would
 * make loading slow and its result depend on when it ran.
 */
int config_parse_addr(const char *s, struct sockaddr_storage *sa,
		      socklen_t *salen)
{
	char host[ADDR_MAX_LEN];
	const char *end, *port_str;
	bool is_v6 = s[0] == '[';
	uint16_t port;
	size_t len;

	if (is_v6) {
		end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -1;
		s++;
		port_str = end + 2;
	} else {
		end = strrchr(s, ':');
		if (!end)
			return -1;
		port_str = end + 1;
	}
	len = (size_t)(end - s);
	if (len == 0 || len >= sizeof(host))
		return -1;
	memcpy(host, s, len);
	host[len] = '\0';
	if (scalar_port(port_str, &port) < 0)
		return -1;
	if (is_v6)
		return scalar_inet6(host, port, sa, salen);
	return scalar_inet(host, port, sa, salen);
}
