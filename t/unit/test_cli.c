/* test_cli.c: the control client (server/cli.c): its reading of the
 * config, and `check` against fake masters. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/timer.h"
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
	ck_assert(cli_is_command("check"));
	ck_assert(!cli_is_command("frobnicate"));
}
END_TEST

static char dir[64], conf[128], sock[96], out_path[128], err_path[128];

/* A config naming a control socket and a pid file in a fresh directory. */
static void check_setup(void)
{
	char text[512];

	strcpy(dir, "/tmp/pc-check-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/pc.yaml", dir);
	snprintf(sock, sizeof(sock), "%s/pc.sock", dir);
	snprintf(out_path, sizeof(out_path), "%s/out", dir);
	snprintf(err_path, sizeof(err_path), "%s/err", dir);
	snprintf(text, sizeof(text),
		 "control_socket: %s\npid_file: %s/pc.pid\n", sock, dir);
	write_file(conf, text);
}

static void check_teardown(void)
{
	unlink(conf);
	unlink(sock);
	unlink(out_path);
	unlink(err_path);
	rmdir(dir);
}

static int listen_at(const char *path, int backlog)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, backlog), 0);
	return fd;
}

/* A fake master: accepts one connection, reads the command, answers. */
static pid_t fake_master(int lfd, const char *expect, const char *answer)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char buf[256] = "";
		int c = accept(lfd, NULL, NULL);
		ssize_t n = c == -1 ? -1 : read(c, buf, sizeof(buf) - 1);

		if (n <= 0 || strncmp(buf, expect, strlen(expect)) != 0)
			_exit(1);
		(void)!write(c, answer, strlen(answer));
		close(c);
		_exit(0);
	}
	return pid;
}

/* cli_run(conf, "check") with stdout/stderr in files: its status, *ms. */
static int run_check(uint64_t *ms)
{
	int saved_out = dup(1), saved_err = dup(2), rc;
	int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	uint64_t t0 = timer_now_ms();

	fflush(stdout);
	fflush(stderr);
	dup2(fo, 1);
	dup2(fe, 2);
	rc = cli_run(conf, "check");
	fflush(stdout);
	fflush(stderr);
	*ms = timer_now_ms() - t0;
	dup2(saved_out, 1);
	dup2(saved_err, 2);
	close(fo);
	close(fe);
	close(saved_out);
	close(saved_err);
	return rc;
}

static void read_file(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* OK: exit 0 and not a byte of output (keepalived logs script output). */
START_TEST(test_check_ok_is_silent)
{
	char out[256], err[256];
	uint64_t ms;
	int lfd = listen_at(sock, 4), status;
	pid_t pid = fake_master(lfd, "check\n", "OK\n");

	ck_assert_int_eq(run_check(&ms), 0);
	read_file(out_path, out, sizeof(out));
	read_file(err_path, err, sizeof(err));
	ck_assert_str_eq(out, "");
	ck_assert_str_eq(err, "");
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	close(lfd);
}
END_TEST

/* ERR: exit 1 and the reason, one line on stderr. */
START_TEST(test_check_err_one_line)
{
	char out[256], err[256];
	uint64_t ms;
	int lfd = listen_at(sock, 4);
	pid_t pid = fake_master(lfd, "check\n",
				"ERR check failed: generation 2 has no "
				"worker running\n");

	ck_assert_int_eq(run_check(&ms), 1);
	read_file(out_path, out, sizeof(out));
	read_file(err_path, err, sizeof(err));
	ck_assert_str_eq(out, "");
	ck_assert_str_eq(err, "portcullis: check failed: generation 2 has no "
			      "worker running\n");
	waitpid(pid, NULL, 0);
	close(lfd);
}
END_TEST

/* A master that accepts nothing (stopped): the answer's bound, < 1 s. */
START_TEST(test_check_bounded_when_master_hangs)
{
	char err[256];
	uint64_t ms;
	int lfd = listen_at(sock, 0);
	/* fill the backlog so that the next connect() would block */
	int filler[4];

	for (int i = 0; i < 4; i++) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};

		filler[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
		(void)connect(filler[i], (struct sockaddr *)&sa, sizeof(sa));
	}
	ck_assert_int_eq(run_check(&ms), 1);
	ck_assert_uint_lt(ms, 1000);
	read_file(err_path, err, sizeof(err));
	ck_assert_msg(strstr(err, "does not accept connections") != NULL ||
			      strstr(err, "no answer from the master") != NULL,
		      "stderr: %s", err);
	for (int i = 0; i < 4; i++)
		close(filler[i]);
	/* connected but never answered */
	close(lfd);
	unlink(sock);
	lfd = listen_at(sock, 4);
	ck_assert_int_eq(run_check(&ms), 1);
	ck_assert_uint_lt(ms, 1000);
	ck_assert_uint_ge(ms, 600);
	read_file(err_path, err, sizeof(err));
	ck_assert_str_eq(err, "portcullis: check: no answer from the master "
			      "in time\n");
	close(lfd);
}
END_TEST

/* No socket at all: no master. */
START_TEST(test_check_no_master)
{
	char err[256];
	uint64_t ms;

	ck_assert_int_eq(run_check(&ms), 1);
	ck_assert_uint_lt(ms, 1000);
	read_file(err_path, err, sizeof(err));
	ck_assert_ptr_nonnull(strstr(err, "portcullis: no master is running"));
	/* one line */
	ck_assert_ptr_eq(strchr(err, '\n'), err + strlen(err) - 1);
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
	tc = tcase_create("check");
	tcase_add_checked_fixture(tc, check_setup, check_teardown);
	tcase_add_test(tc, test_check_ok_is_silent);
	tcase_add_test(tc, test_check_err_one_line);
	tcase_add_test(tc, test_check_bounded_when_master_hangs);
	tcase_add_test(tc, test_check_no_master);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
