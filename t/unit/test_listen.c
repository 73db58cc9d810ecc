/* test_listen.c: listening sockets kept across reloads and handed to a new
 * binary (server/listen.c). */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "server/listen.h"

static struct config *load(int port1, int port2)
{
	char yaml[1024];
	struct config_errors errs = {0};
	struct config *cfg;

	snprintf(yaml, sizeof(yaml),
		 "workers: 1\n"
		 "listeners:\n"
		 "  - name: web\n"
		 "    bind: [\"127.0.0.1:%d\", \"[::1]:%d\"]\n"
		 "    routes: [{backend: a}]\n"
		 "backends:\n"
		 "  a: {servers: [{address: 127.0.0.1:9}]}\n",
		 port1, port2);
	cfg = config_load_string("test.yaml", yaml, &errs);
	for (size_t i = 0; i < errs.count && i < CONFIG_MAX_ERRORS; i++)
		fprintf(stderr, "%s\n", errs.msgs[i]);
	ck_assert_ptr_nonnull(cfg);
	return cfg;
}

static int port_base(void)
{
	return 20000 + (int)(getpid() % 10000);
}

/* export -> adopt: the same sockets, found by their address, reused by apply.
 */
START_TEST(test_export_adopt_roundtrip)
{
	struct listen_set old = {0}, adopted = {0};
	struct config *cfg = load(port_base(), port_base());
	char env[256], err[256] = "";
	int *fds, *fds2;
	size_t n, n2;

	ck_assert_int_eq(listen_apply(&old, cfg, &fds, &n, err, sizeof(err)),
			 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(listen_export(&old, env, sizeof(env)), 0);
	{
		char want[128];

		snprintf(want, sizeof(want), "%d=127.0.0.1:%d;%d=[::1]:%d",
			 fds[0], port_base(), fds[1], port_base());
		ck_assert_str_eq(env, want);
	}
	/* the new binary: adopt, then apply the same config binds nothing */
	ck_assert_int_eq(listen_adopt(&adopted, env, err, sizeof(err)), 0);
	ck_assert_uint_eq(adopted.ls_n, 2);
	ck_assert_int_eq(
		listen_apply(&adopted, cfg, &fds2, &n2, err, sizeof(err)), 0);
	ck_assert_uint_eq(adopted.ls_n, 2);
	ck_assert_int_eq(fds2[0], fds[0]);
	ck_assert_int_eq(fds2[1], fds[1]);
	/* adopted sockets get FD_CLOEXEC back */
	ck_assert_int_ne(fcntl(fds[0], F_GETFD) & FD_CLOEXEC, 0);
	free(fds);
	free(fds2);
	free(adopted.ls_socks); /* same descriptors as old: close them once */
	listen_free(&old);
	config_free(cfg);
}
END_TEST

/* An adopted socket the config no longer names is closed by prune. */
START_TEST(test_adopt_then_prune)
{
	struct listen_set old = {0}, adopted = {0};
	struct config *a = load(port_base() + 1, port_base() + 1);
	struct config *b = load(port_base() + 2, port_base() + 1);
	char env[256], err[256] = "";
	int *fds;
	size_t n;

	ck_assert_int_eq(listen_apply(&old, a, &fds, &n, err, sizeof(err)), 0);
	free(fds);
	ck_assert_int_eq(listen_export(&old, env, sizeof(env)), 0);
	ck_assert_int_eq(listen_adopt(&adopted, env, err, sizeof(err)), 0);
	old.ls_n = 0; /* now owned by `adopted` */
	ck_assert_int_eq(listen_apply(&adopted, b, &fds, &n, err, sizeof(err)),
			 0);
	ck_assert_uint_eq(adopted.ls_n, 3);
	listen_prune(&adopted);
	ck_assert_uint_eq(adopted.ls_n, 2);
	free(fds);
	listen_free(&adopted);
	listen_free(&old);
	config_free(a);
	config_free(b);
}
END_TEST

START_TEST(test_adopt_rejects)
{
	struct listen_set set = {0};
	char err[256] = "", env[64];
	int p[2];

	ck_assert_int_eq(listen_adopt(&set, "x=1.2.3.4:5", err, sizeof(err)),
			 -1);
	ck_assert_ptr_nonnull(strstr(err, "malformed"));
	ck_assert_int_eq(pipe(p), 0);
	snprintf(env, sizeof(env), "%d=127.0.0.1:1", p[0]);
	ck_assert_int_eq(listen_adopt(&set, env, err, sizeof(err)), -1);
	ck_assert_uint_eq(set.ls_n, 0);
	close(p[0]);
	close(p[1]);
	listen_free(&set);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("listen");
	TCase *tc = tcase_create("listen");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_export_adopt_roundtrip);
	tcase_add_test(tc, test_adopt_then_prune);
	tcase_add_test(tc, test_adopt_rejects);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
