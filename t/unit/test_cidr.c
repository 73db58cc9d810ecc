/* test_cidr.c: address ranges (common/cidr.c), used by trusted_proxies. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/cidr.h"

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

static bool in(const char *range, const char *ip)
{
	struct cidr c;
	struct sockaddr_storage ss = sa_of(ip);

	ck_assert_int_eq(cidr_parse(range, &c), 0);
	return cidr_match(&c, &ss);
}

START_TEST(test_ipv4_ranges)
{
	ck_assert(in("10.0.0.0/8", "10.255.1.2"));
	ck_assert(!in("10.0.0.0/8", "11.0.0.1"));
	ck_assert(in("192.168.1.128/25", "192.168.1.200"));
	ck_assert(!in("192.168.1.128/25", "192.168.1.127"));
	ck_assert(in("127.0.0.1", "127.0.0.1"));   /* bare address = /32 */
	ck_assert(!in("127.0.0.1", "127.0.0.2"));
	ck_assert(in("0.0.0.0/0", "8.8.8.8"));
	ck_assert(in("10.1.2.3/8", "10.9.9.9"));   /* host bits ignored */
}
END_TEST

START_TEST(test_ipv6_ranges)
{
	ck_assert(in("::1/128", "::1"));
	ck_assert(!in("::1/128", "::2"));
	ck_assert(in("2001:db8::/32", "2001:db8:1::5"));
	ck_assert(!in("2001:db8::/32", "2001:db9::5"));
	ck_assert(in("fe80::/10", "febf::1"));
	ck_assert(!in("fe80::/10", "fec0::1"));
	/* IPv4-mapped IPv6 peers match IPv4 ranges, not the other way */
	ck_assert(in("10.0.0.0/8", "::ffff:10.1.2.3"));
	ck_assert(!in("::/0", "10.1.2.3"));
}
END_TEST

START_TEST(test_parse_errors)
{
	struct cidr c;
	const char *bad[] = {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129",
			     "10.0.0.0/-1", "10.0.0.0/8x", "example.com",
			     "10.0.0.256", "10.0.0.0/0008", NULL};

	for (int i = 0; bad[i]; i++)
		ck_assert_msg(cidr_parse(bad[i], &c) == -1, "accepted '%s'",
			      bad[i]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cidr");
	TCase *tc = tcase_create("cidr");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_ipv4_ranges);
	tcase_add_test(tc, test_ipv6_ranges);
	tcase_add_test(tc, test_parse_errors);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
