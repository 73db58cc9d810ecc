/*
 * test_config_acl.c: allow: and deny: of listeners and routes
 * (config/config_acl.c): inline lists, list files (comments, blanks,
 * spaces), IPv6 and IPv4-mapped entries, and the errors with their exact
 * "FILE:LINE:COL: message", those inside list files naming FILE:LINE too.
 *
 * Inline YAML is written one line per string literal so that the line and
 * column an error names can be read off the source.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/iptree.h"
#include "config/config.h"
#include "config_expect.h"

/* Lines 1-5: an http listener whose one route goes to app. */
#define LISTENER_WEB                                                           \
	"listeners:\n"                                                         \
	"  - name: web\n"                                                      \
	"    bind: 127.0.0.1:8080\n"                                           \
	"    routes:\n"                                                        \
	"      - backend: app\n"
#define BACKEND_APP                                                            \
	"backends:\n"                                                          \
	"  app:\n"                                                             \
	"    servers:\n"                                                       \
	"      - address: 127.0.0.1:9000\n"

/* ---- helpers ---------------------------------------------------------- */

static bool hit(const struct iptree *t, const char *ip)
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
	return iptree_match(t, &ss);
}

/* A list file holding text, in a fresh temporary directory. */
static char dir[64];
static char path[128];

static const char *list_file(const char *text)
{
	FILE *f;

	if (!dir[0]) {
		strcpy(dir, "/tmp/test_config_acl.XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(dir));
	}
	snprintf(path, sizeof(path), "%s/list.txt", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void list_cleanup(void)
{
	if (dir[0]) {
		unlink(path);
		rmdir(dir);
	}
}

/* yaml with each "@" replaced by p. */
static char *with_path(const char *yaml, const char *p)
{
	static char out[4096];
	size_t n = 0;

	for (; *yaml; yaml++) {
		if (*yaml == '@') {
			n += (size_t)snprintf(out + n, sizeof(out) - n, "%s", p);
		} else {
			out[n++] = *yaml;
		}
		ck_assert_uint_lt(n, sizeof(out) - 1);
	}
	out[n] = '\0';
	return out;
}

/* ---- inline lists ----------------------------------------------------- */

START_TEST(test_inline_listener)
{
	struct config *cfg = load_ok(LISTENER_WEB
				     "    allow: [10.0.0.0/8, \"::1\", "
				     "2001:db8::/32, 192.0.2.7]\n"
				     "    deny:\n"
				     "      - 10.1.0.0/16\n"
				     "      - \"2001:db8:bad::/48\"\n" BACKEND_APP);
	const struct cfg_acl *a = &cfg->listeners[0].acl;

	ck_assert_ptr_nonnull(a->allow);
	ck_assert_ptr_nonnull(a->deny);
	ck_assert_int_eq(a->line, 6); /* of allow: */
	ck_assert_int_eq(a->col, 5);
	ck_assert_uint_eq(iptree_count(a->allow), 4);
	ck_assert_uint_eq(iptree_count(a->deny), 2);
	ck_assert(hit(a->allow, "10.1.2.3"));
	ck_assert(hit(a->allow, "::1"));
	ck_assert(hit(a->allow, "2001:db8:bad::1"));
	ck_assert(hit(a->allow, "192.0.2.7"));
	ck_assert(hit(a->allow, "::ffff:10.9.9.9"));
	ck_assert(!hit(a->allow, "192.0.2.8"));
	ck_assert(!hit(a->allow, "::2"));
	ck_assert(hit(a->deny, "10.1.255.255"));
	ck_assert(!hit(a->deny, "10.2.0.0"));
	ck_assert(hit(a->deny, "2001:db8:bad:1::"));
	ck_assert(!hit(a->deny, "2001:db8:bae::"));
	ck_assert_ptr_null(cfg->listeners[0].routes[0].acl.allow);
	ck_assert_ptr_null(cfg->listeners[0].routes[0].acl.deny);
	config_free(cfg);
}
END_TEST

START_TEST(test_absent_and_empty)
{
	struct config *cfg = load_ok(LISTENER_WEB BACKEND_APP);

	ck_assert_ptr_null(cfg->listeners[0].acl.allow);
	ck_assert_ptr_null(cfg->listeners[0].acl.deny);
	ck_assert_int_eq(cfg->listeners[0].acl.line, 0);
	config_free(cfg);
	/* empty lists: allow everyone, deny nobody, as when absent */
	cfg = load_ok(LISTENER_WEB "    allow: []\n"
				   "    deny: []\n" BACKEND_APP);
	ck_assert_ptr_null(cfg->listeners[0].acl.allow);
	ck_assert_ptr_null(cfg->listeners[0].acl.deny);
	config_free(cfg);
}
END_TEST

/* Without allow:, the position is deny:'s; allow: wins in any order. */
START_TEST(test_position)
{
	struct config *cfg = load_ok(LISTENER_WEB "    deny: [10.0.0.1]\n"
						  "    allow: [10.0.0.0/8]\n"
						  BACKEND_APP);

	ck_assert_int_eq(cfg->listeners[0].acl.line, 7);
	ck_assert_int_eq(cfg->listeners[0].acl.col, 5);
	config_free(cfg);
	cfg = load_ok(LISTENER_WEB "    deny: [10.0.0.1]\n" BACKEND_APP);
	ck_assert_int_eq(cfg->listeners[0].acl.line, 6);
	ck_assert_int_eq(cfg->listeners[0].acl.col, 5);
	config_free(cfg);
}
END_TEST

START_TEST(test_route_allow_deny)
{
	struct config *cfg = load_ok(
		"listeners:\n"
		"  - name: web\n"
		"    bind: 127.0.0.1:8080\n"
		"    deny: [\"2001:db8:dead::/48\"]\n"
		"    routes:\n"
		"      - path_prefix: /admin\n"
		"        backend: app\n"
		"        allow: [127.0.0.0/8, \"::1/128\", \"fd00::/8\"]\n"
		"        deny: [127.0.0.5, \"fd00::5\"]\n"
		"      - backend: app\n" BACKEND_APP);
	const struct cfg_listener *l = &cfg->listeners[0];
	const struct cfg_acl *a = &l->routes[0].acl;

	ck_assert(hit(l->acl.deny, "2001:db8:dead::1"));
	ck_assert_ptr_null(l->acl.allow);
	ck_assert_int_eq(a->line, 8);
	ck_assert_int_eq(a->col, 9);
	ck_assert(hit(a->allow, "127.0.0.6"));
	ck_assert(hit(a->allow, "::1"));
	ck_assert(hit(a->allow, "fd00::5"));
	ck_assert(!hit(a->allow, "10.0.0.1"));
	ck_assert(hit(a->deny, "127.0.0.5"));
	ck_assert(hit(a->deny, "::ffff:127.0.0.5")); /* mapped = IPv4 */
	ck_assert(!hit(a->deny, "127.0.0.6"));
	ck_assert(hit(a->deny, "fd00::5"));
	ck_assert(!hit(a->deny, "fd00::6"));
	/* a route's lists are its own: nothing inherited from the listener */
	ck_assert_ptr_null(l->routes[1].acl.allow);
	ck_assert_ptr_null(l->routes[1].acl.deny);
	config_free(cfg);
}
END_TEST

START_TEST(test_tcp_listener)
{
	struct config *cfg = load_ok("listeners:\n"
				     "  - name: db\n"
				     "    protocol: tcp\n"
				     "    bind: 127.0.0.1:5433\n"
				     "    backend: app\n"
				     "    allow: [10.0.0.0/8]\n" BACKEND_APP);

	ck_assert(hit(cfg->listeners[0].acl.allow, "10.0.0.1"));
	config_free(cfg);
}
END_TEST

START_TEST(test_inline_errors)
{
	EXPECT_ERRORS(LISTENER_WEB
		      "    allow: [10.0.0.0/8, 10.0.0.0/33, nope, "
		      "\"2001:db8::/129\"]\n"
		      "    deny: [{a: b}, ~]\n" BACKEND_APP,
		      "t.yaml:6:25: '10.0.0.0/33' is not an address, CIDR "
		      "(like 10.0.0.0/8 or ::1/128) or file:/path",
		      "t.yaml:6:38: 'nope' is not an address, CIDR (like "
		      "10.0.0.0/8 or ::1/128) or file:/path",
		      "t.yaml:6:44: '2001:db8::/129' is not an address, CIDR "
		      "(like 10.0.0.0/8 or ::1/128) or file:/path",
		      "t.yaml:7:12: 'deny' must list addresses, CIDRs or "
		      "file:/path entries",
		      "t.yaml:7:20: 'deny' must list addresses, CIDRs or "
		      "file:/path entries");
	EXPECT_ERROR(LISTENER_WEB "    allow: 10.0.0.0/8\n" BACKEND_APP,
		     "t.yaml:6:12: 'allow' must be a list of addresses, CIDRs "
		     "or file:/path entries");
	EXPECT_ERROR("listeners:\n"
		     "  - name: web\n"
		     "    bind: 127.0.0.1:8080\n"
		     "    routes:\n"
		     "      - backend: app\n"
		     "        deny: [10.0.0.256]\n" BACKEND_APP,
		     "t.yaml:6:16: '10.0.0.256' is not an address, CIDR (like "
		     "10.0.0.0/8 or ::1/128) or file:/path");
}
END_TEST

/* ---- list files ------------------------------------------------------- */

/* Lines 1-4: a listener without its routes: (written by the test). */
#define LISTENER_HEAD                                                          \
	"listeners:\n"                                                         \
	"  - name: web\n"                                                      \
	"    bind: 127.0.0.1:8080\n"

START_TEST(test_file)
{
	const char *p = list_file("# blocked clients\n"
				  "\n"
				  "10.0.0.0/8\n"
				  "   192.0.2.7   # one host, with spaces\n"
				  "\t2001:db8::/32\t\n"
				  "#11.99.0.0/16 commented out\n"
				  "198.51.100.0/24\r\n"
				  "::ffff:203.0.113.0/120\n"
				  "   \n"
				  "172.16.0.1"); /* no newline at the end */
	struct config *cfg = load_ok(with_path(
		LISTENER_HEAD "    deny: [\"file:@\", 127.0.0.9]\n"
			      "    allow: [\"file: @\"]\n"
			      "    routes:\n"
			      "      - backend: app\n"
			      "        deny:\n"
			      "          - file: @\n" BACKEND_APP,
		p));
	const struct cfg_acl *a = &cfg->listeners[0].acl;
	const struct cfg_acl *r = &cfg->listeners[0].routes[0].acl;

	ck_assert_uint_eq(iptree_count(a->deny), 7);
	ck_assert_uint_eq(iptree_count(a->allow), 6);
	ck_assert_uint_eq(iptree_count(r->deny), 6);
	ck_assert(hit(a->deny, "10.200.0.1"));
	ck_assert(hit(a->deny, "192.0.2.7"));
	ck_assert(!hit(a->deny, "192.0.2.8"));
	ck_assert(hit(a->deny, "2001:db8::1"));
	ck_assert(!hit(a->deny, "11.99.0.1"));
	ck_assert(hit(a->deny, "198.51.100.1"));
	ck_assert(hit(a->deny, "203.0.113.9"));
	ck_assert(hit(a->deny, "172.16.0.1"));
	ck_assert(!hit(a->deny, "172.16.0.2"));
	ck_assert(hit(a->deny, "127.0.0.9"));
	ck_assert(!hit(a->allow, "127.0.0.9"));
	ck_assert(hit(a->allow, "192.0.2.7"));
	ck_assert(hit(r->deny, "172.16.0.1"));
	config_free(cfg);
	list_cleanup();
}
END_TEST

/* Reading the file at every load is what makes a reload see its edits. */
START_TEST(test_file_reread)
{
	const char *yaml;
	struct config *cfg;

	yaml = with_path(LISTENER_WEB "    deny: [\"file:@\"]\n" BACKEND_APP,
			 list_file("127.0.0.5\n"));
	cfg = load_ok(yaml);
	ck_assert(hit(cfg->listeners[0].acl.deny, "127.0.0.5"));
	ck_assert(!hit(cfg->listeners[0].acl.deny, "127.0.0.6"));
	config_free(cfg);
	list_file("127.0.0.6\n");
	cfg = load_ok(yaml);
	ck_assert(!hit(cfg->listeners[0].acl.deny, "127.0.0.5"));
	ck_assert(hit(cfg->listeners[0].acl.deny, "127.0.0.6"));
	config_free(cfg);
	list_cleanup();
}
END_TEST

/* An allow: that names only empty files admits nobody (fails closed). */
START_TEST(test_file_empty_allow)
{
	struct config *cfg = load_ok(with_path(
		LISTENER_WEB "    allow: [\"file:@\"]\n" BACKEND_APP,
		list_file("# nobody yet\n\n")));

	ck_assert_ptr_nonnull(cfg->listeners[0].acl.allow);
	ck_assert_uint_eq(iptree_count(cfg->listeners[0].acl.allow), 0);
	ck_assert(!hit(cfg->listeners[0].acl.allow, "127.0.0.1"));
	ck_assert(!hit(cfg->listeners[0].acl.allow, "::1"));
	config_free(cfg);
	list_cleanup();
}
END_TEST

START_TEST(test_file_errors)
{
	const char *p = list_file("10.0.0.0/8\n"
				  "# fine so far\n"
				  "10.0.0.0/8 10.1.0.0/16\n"
				  "x\n"
				  "\n"
				  "2001:db8::/200   # too long\n"
				  "192.0.2.1/\n");
	char want[4][256];

	snprintf(want[0], sizeof(want[0]),
		 "t.yaml:6:12: deny: %s:3: '10.0.0.0/8 10.1.0.0/16' is not an "
		 "address or CIDR",
		 p);
	snprintf(want[1], sizeof(want[1]),
		 "t.yaml:6:12: deny: %s:4: 'x' is not an address or CIDR", p);
	snprintf(want[2], sizeof(want[2]),
		 "t.yaml:6:12: deny: %s:6: '2001:db8::/200' is not an address "
		 "or CIDR",
		 p);
	snprintf(want[3], sizeof(want[3]),
		 "t.yaml:6:12: deny: %s:7: '192.0.2.1/' is not an address or "
		 "CIDR",
		 p);
	EXPECT_ERRORS(with_path(LISTENER_WEB "    deny: [\"file:@\"]\n"
					     BACKEND_APP,
				p),
		      want[0], want[1], want[2], want[3]);
	list_cleanup();
}
END_TEST

/* A file of garbage is not a flood: ten lines, then a count. */
START_TEST(test_file_many_errors)
{
	char text[512] = "", want[12][256];
	const char *p;
	int i;

	for (i = 1; i <= 25; i++)
		strcat(text, "bad\n");
	p = list_file(text);
	for (i = 0; i < 10; i++)
		snprintf(want[i], sizeof(want[i]),
			 "t.yaml:6:13: allow: %s:%d: 'bad' is not an address "
			 "or CIDR",
			 p, i + 1);
	snprintf(want[10], sizeof(want[10]),
		 "t.yaml:6:13: allow: %s: 15 more bad lines", p);
	EXPECT_ERRORS(with_path(LISTENER_WEB "    allow: [\"file:@\"]\n"
					     BACKEND_APP,
				p),
		      want[0], want[1], want[2], want[3], want[4], want[5],
		      want[6], want[7], want[8], want[9], want[10]);
	list_cleanup();
}
END_TEST

START_TEST(test_file_unreadable)
{
	char want[256];

	EXPECT_ERROR(LISTENER_WEB
		     "    deny: [\"file:/nonexistent/portcullis/deny.txt\"]\n"
		     BACKEND_APP,
		     "t.yaml:6:12: deny: cannot read "
		     "/nonexistent/portcullis/deny.txt: No such file or "
		     "directory");
	EXPECT_ERROR(LISTENER_WEB "    deny: [\"file:etc/deny.txt\"]\n"
		     BACKEND_APP,
		     "t.yaml:6:12: deny: 'etc/deny.txt' must be an absolute "
		     "path");
	EXPECT_ERROR(LISTENER_WEB "    deny: [\"file:\"]\n" BACKEND_APP,
		     "t.yaml:6:12: deny: '' must be an absolute path");
	/* a directory, a device: not lists (and /dev/zero never ends) */
	list_file("");
	snprintf(want, sizeof(want),
		 "t.yaml:6:12: deny: %s is not a regular file", dir);
	EXPECT_ERROR(with_path(LISTENER_WEB "    deny: [\"file:@\"]\n"
					    BACKEND_APP,
			       dir),
		     want);
	EXPECT_ERROR(LISTENER_WEB "    deny: [\"file:/dev/zero\"]\n"
		     BACKEND_APP,
		     "t.yaml:6:12: deny: /dev/zero is not a regular file");
	list_cleanup();
}
END_TEST

START_TEST(test_file_binary)
{
	const char *p;
	char want[256];
	FILE *f;

	p = list_file("");
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fwrite("10.0.0.1\n10.0.0.2\0junk\n", 1, 23, f);
	fclose(f);
	snprintf(want, sizeof(want),
		 "t.yaml:6:12: deny: %s:2: a NUL byte: not a text file", p);
	EXPECT_ERROR(with_path(LISTENER_WEB "    deny: [\"file:@\"]\n"
					    BACKEND_APP,
			       p),
		     want);
	list_cleanup();
}
END_TEST

static Suite *config_acl_suite(void)
{
	Suite *s = suite_create("config_acl");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_inline_listener);
	tcase_add_test(tc, test_absent_and_empty);
	tcase_add_test(tc, test_position);
	tcase_add_test(tc, test_route_allow_deny);
	tcase_add_test(tc, test_tcp_listener);
	tcase_add_test(tc, test_inline_errors);
	tcase_add_test(tc, test_file);
	tcase_add_test(tc, test_file_reread);
	tcase_add_test(tc, test_file_empty_allow);
	tcase_add_test(tc, test_file_errors);
	tcase_add_test(tc, test_file_many_errors);
	tcase_add_test(tc, test_file_unreadable);
	tcase_add_test(tc, test_file_binary);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_acl_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : 0;
}
