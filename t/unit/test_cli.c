/* test_cli.c: the control client's reading of the config (server/cli.c). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/cli.h"

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* A config broken elsewhere still yields control_socket and friends. */
START_TEST(test_settings_from_broken_config)
{
	char path[] = "/tmp/pc-ctl-XXXXXX";
	struct cli_settings s;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	close(fd);
	write_file(path, "workers: many\nbogus: 1\ncontrol_socket: /x/y.sock\n"
			 "pid_file: /x/y.pid\nshutdown_timeout: 2m\n"
			 "listeners: [{name: web}]\n");
	cli_settings_read(path, &s);
	ck_assert_str_eq(s.st_socket, "/x/y.sock");
	ck_assert_str_eq(s.st_pid_file, "/x/y.pid");
	ck_assert_uint_eq(s.st_shutdown_ms, 120000);
	unlink(path);
}
END_TEST

START_TEST(test_settings_defaults)
{
	struct cli_settings s;

	cli_settings_read("/nonexistent/portcullis.yaml", &s);
	ck_assert_str_eq(s.st_socket, "/run/portcullis/portcullis.sock");
	ck_assert_str_eq(s.st_pid_file, "/run/portcullis/portcullis.pid");
	ck_assert_uint_eq(s.st_shutdown_ms, 30000);
	ck_assert(cli_is_command("reload"));
	ck_assert(cli_is_command("upgrade"));
	ck_assert(cli_is_command("drain"));
	ck_assert(cli_is_command("enable"));
	ck_assert(!cli_is_command("frobnicate"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("ctl");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_settings_from_broken_config);
	tcase_add_test(tc, test_settings_defaults);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
