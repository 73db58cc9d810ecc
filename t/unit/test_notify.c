/* test_notify.c: sd_notify without libsystemd (server/notify.c). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "server/notify.h"

/* A datagram socket bound at name ("@x" = abstract), standing in for systemd.
 */
static int listener(const char *name)
{
	struct sockaddr_un sa;
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, name);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
			  strlen(name));
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	else
		len++;
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, len), 0);
	return fd;
}

static void recv_is(int fd, const char *want)
{
	char buf[512];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, want);
}

START_TEST(test_path_socket)
{
	char dir[] = "/tmp/pc-notify-XXXXXX", path[128], err[256];
	int fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/notify", dir);
	fd = listener(path);
	setenv("NOTIFY_SOCKET", path, 1);
	ck_assert_int_eq(notify_open(err, sizeof(err)), 0);
	ck_assert_int_ge(notify_fd(), 0);
	ck_assert_int_eq(
		notify_send("READY=1\nSTATUS=generation %u serving", 3u), 0);
	recv_is(fd, "READY=1\nSTATUS=generation 3 serving");
	/* the variable stays for a master started by a binary upgrade */
	ck_assert_str_eq(getenv("NOTIFY_SOCKET"), path);
	notify_close();
	close(fd);
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(test_abstract_socket)
{
	char name[64], err[256];
	int fd;

	snprintf(name, sizeof(name), "@pc-notify-test-%d", (int)getpid());
	fd = listener(name);
	setenv("NOTIFY_SOCKET", name, 1);
	ck_assert_int_eq(notify_open(err, sizeof(err)), 0);
	ck_assert_int_eq(notify_send("STOPPING=1"), 0);
	recv_is(fd, "STOPPING=1");
	notify_close();
	close(fd);
}
END_TEST

START_TEST(test_unset_and_malformed)
{
	char err[256] = "";

	unsetenv("NOTIFY_SOCKET");
	ck_assert_int_eq(notify_open(err, sizeof(err)), 0);
	ck_assert_int_eq(notify_fd(), -1);
	ck_assert_int_eq(notify_send("READY=1"), 0); /* a no-op */
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	ck_assert_int_eq(notify_open(err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "NOTIFY_SOCKET"));
	ck_assert_int_eq(notify_fd(), -1);
	unsetenv("NOTIFY_SOCKET");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("notify");
	TCase *tc = tcase_create("notify");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_path_socket);
	tcase_add_test(tc, test_abstract_socket);
	tcase_add_test(tc, test_unset_and_malformed);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
