/*
 * test_config_auth.c: the auth: key of a route (config/config_auth.c):
 * its keys and defaults, the off forms, the users file loaded with the
 * configuration, and the errors with their exact "FILE:LINE:COL: message".
 *
 * Inline YAML is written one line per string literal so that the line and
 * column an error names can be read off the source.
 */
#include <check.h>
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/htpasswd.h"
#include "config/config.h"
#include "config_expect.h"

static char tmpdir[] = "/tmp/test_config_auth.XXXXXX";
static char users[256]; /* tmpdir/users: bob with a bcrypt hash */

/* Lines 1-4: an http listener; its route (line 5) goes to app. */
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

static void write_users(const char *text)
{
	FILE *f = fopen(users, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static void setup(void)
{
	static struct crypt_data data;
	char line[256];

	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(users, sizeof(users), "%s/users", tmpdir);
	snprintf(line, sizeof(line), "bob:%s\n",
		 crypt_r("pw", "$2b$04$abcdefghijklmnopqrstuu", &data));
	write_users(line);
}

static void teardown(void)
{
	unlink(users);
	rmdir(tmpdir);
}

/* The config text with line 6 of the route (indented by 8) as given. */
static char *yaml_with(const char *route_line6)
{
	char *s;

	ck_assert_int_ne(
		asprintf(&s, LISTENER_WEB "%s" BACKEND_APP, route_line6), -1);
	return s;
}

START_TEST(test_auth_full)
{
	char line[512], *yaml;
	struct config *cfg;
	struct cfg_auth *a;

	snprintf(line, sizeof(line),
		 "        auth: { realm: \"ops \\\"team\\\"\", users_file: %s, "
		 "forward: true }\n",
		 users);
	yaml = yaml_with(line);
	cfg = load_ok(yaml);
	a = cfg->listeners[0].routes[0].auth;
	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(a->realm, "ops \"team\"");
	ck_assert_str_eq(a->users_file, users);
	ck_assert(a->forward);
	ck_assert_ptr_nonnull(a->users);
	ck_assert_uint_eq(a->users->ht_nusers, 1);
	ck_assert_ptr_nonnull(htpasswd_lookup(a->users, "bob", 3));
	ck_assert_int_eq(a->line, 6);
	ck_assert_int_eq(a->col, 15);
	config_free(cfg);
	free(yaml);
}
END_TEST

START_TEST(test_auth_defaults_and_off)
{
	char line[512], *yaml;
	struct config *cfg;
	static const char *const off[] = {
		"        auth: off\n", "        auth: false\n",
		"        auth: ~\n", "        auth:\n"};
	size_t i;

	snprintf(line, sizeof(line),
		 "        auth: { realm: ops, users_file: %s }\n", users);
	yaml = yaml_with(line);
	cfg = load_ok(yaml);
	ck_assert(!cfg->listeners[0].routes[0].auth->forward);
	config_free(cfg);
	free(yaml);
	for (i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
		yaml = yaml_with(off[i]);
		cfg = load_ok(yaml);
		ck_assert_ptr_null(cfg->listeners[0].routes[0].auth);
		config_free(cfg);
		free(yaml);
	}
	/* Without the key: no authentication. */
	cfg = load_ok(LISTENER_WEB BACKEND_APP);
	ck_assert_ptr_null(cfg->listeners[0].routes[0].auth);
	config_free(cfg);
}
END_TEST

START_TEST(test_auth_errors)
{
	char line[512], *yaml;

	yaml = yaml_with("        auth: {}\n");
	EXPECT_ERRORS(yaml, "t.yaml:6:15: auth: missing required key 'realm'",
		      "t.yaml:6:15: auth: missing required key 'users_file'");
	free(yaml);
	yaml = yaml_with("        auth: { realm: \"\", users_file: x, "
			 "forward: 2, x: 1 }\n");
	EXPECT_ERRORS(yaml, "t.yaml:6:24: 'realm' must be a non-empty string",
		      "t.yaml:6:40: 'users_file' must be an absolute path",
		      "t.yaml:6:52: 'forward' must be true or false",
		      "t.yaml:6:55: unknown key 'x'");
	free(yaml);
	/* (realm is at column 24, as in each line below) */
	snprintf(line, sizeof(line),
		 "        auth: { realm: \"a\\tb\", users_file: %s }\n", users);
	yaml = yaml_with(line);
	EXPECT_ERRORS(yaml, "t.yaml:6:24: 'realm' must be printable ASCII");
	free(yaml);
	snprintf(line, sizeof(line),
		 "        auth: { realm: \"caf\xc3\xa9\", users_file: %s }\n",
		 users);
	yaml = yaml_with(line);
	EXPECT_ERRORS(yaml, "t.yaml:6:24: 'realm' must be printable ASCII");
	free(yaml);
	snprintf(line, sizeof(line),
		 "        auth: { realm: %0129d, users_file: %s }\n", 0, users);
	yaml = yaml_with(line);
	EXPECT_ERRORS(yaml, "t.yaml:6:24: 'realm' must be at most 128 bytes");
	free(yaml);
	yaml = yaml_with("        auth: yes\n");
	EXPECT_ERRORS(yaml, "t.yaml:6:15: auth: expected a mapping");
	free(yaml);
	/* The file cannot be read: said at users_file. */
	yaml = yaml_with("        auth: { realm: ops, users_file: /nonexistent "
			 "}\n");
	EXPECT_ERRORS(yaml, "t.yaml:6:41: /nonexistent: cannot open: No such "
			    "file or directory");
	free(yaml);
}
END_TEST

/* A users file with a refused hash: its line, at the users_file value. */
START_TEST(test_auth_file_errors)
{
	char line[512], want1[512], want2[512], *yaml;

	write_users("# ops\n"
		    "alice:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n"
		    "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n");
	snprintf(line, sizeof(line),
		 "        auth:\n"
		 "          realm: ops\n"
		 "          users_file: %s\n",
		 users);
	yaml = yaml_with(line);
	snprintf(want1, sizeof(want1),
		 "t.yaml:8:23: %s:2: user 'alice': unsupported hash (use "
		 "bcrypt or sha512-crypt)",
		 users);
	snprintf(want2, sizeof(want2),
		 "t.yaml:8:23: %s:3: user 'alice': unsupported hash (use "
		 "bcrypt or sha512-crypt)",
		 users);
	EXPECT_ERRORS(yaml, want1, want2);
	free(yaml);
}
END_TEST

static Suite *config_auth_suite(void)
{
	Suite *s = suite_create("config_auth");
	TCase *tc = tcase_create("config_auth");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_auth_full);
	tcase_add_test(tc, test_auth_defaults_and_off);
	tcase_add_test(tc, test_auth_errors);
	tcase_add_test(tc, test_auth_file_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_auth_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
