/* test_control.c: the control socket's server side (server/control.c),
 * driven in-process: a client socket talks to control_pollfds/dispatch. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <grp.h>
#include <signal.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/control.h"

static int commands;

/* "status": two lines and OK; "wait": wait for a reload; else ERR. */
static void on_command(struct control *ctl, struct control_conn *cc,
		       const char *cmd)
{
	commands++;
	if (strcmp(cmd, "status") == 0) {
		control_line(cc, "first %d", 1);
		control_line(cc, "second\nthird");
		control_finish(cc, true, "%s", "");
	} else if (strcmp(cmd, "wait") == 0) {
		cc->cc_wait = CONTROL_WAIT_RELOAD;
	} else {
		control_finish(cc, false, "unknown command '%s'", cmd);
	}
}

static char dir[64];
static char path[128];

static void setup(void)
{
	strcpy(dir, "/tmp/pc-control-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a/b/pc.sock", dir);
}

/* Remove what setup() made (the socket itself is gone by then). */
static void cleanup(void)
{
	char sub[160];

	unlink(path);
	snprintf(sub, sizeof(sub), "%s/a/b", dir);
	rmdir(sub);
	snprintf(sub, sizeof(sub), "%s/a", dir);
	rmdir(sub);
	rmdir(dir);
}

static int client(void)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Run the server side for ms milliseconds. */
static void pump(struct control *ctl, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		struct pollfd pfd[CONTROL_MAX_CONNS + 1];
		size_t n = control_pollfds(ctl, pfd, CONTROL_MAX_CONNS + 1);

		if (poll(pfd, n, 10) > 0)
			control_dispatch(ctl, pfd);
	}
}

/* Read what the server sent until EOF (or nothing more for a while). */
static void read_all(struct control *ctl, int fd, char *buf, size_t len)
{
	size_t off = 0;

	for (int i = 0; i < 100; i++) {
		ssize_t n;

		pump(ctl, 20);
		n = recv(fd, buf + off, len - 1 - off, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n > 0)
			off += (size_t)n;
	}
	buf[off] = '\0';
}

START_TEST(test_socket_mode_and_second_master)
{
	struct control_sock cs, cs2;
	struct stat st;
	char err[256] = "";

	setup();
	ck_assert_int_eq(control_sock_open(&cs, path, false, err, sizeof(err)),
			 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_uint_eq(st.st_uid, geteuid());
	/* a live socket there: another master */
	ck_assert_int_eq(control_sock_open(&cs2, path, false, err, sizeof(err)),
			 -1);
	ck_assert_ptr_nonnull(strstr(err, "another portcullis master"));
	/* replace (binary upgrade): takes the path over */
	ck_assert_int_eq(control_sock_open(&cs2, path, true, err, sizeof(err)),
			 0);
	control_sock_close(&cs, true); /* not ours any more: stays */
	ck_assert_int_eq(stat(path, &st), 0);
	control_sock_close(&cs2, true);
	ck_assert_int_eq(stat(path, &st), -1);
	cleanup();
}
END_TEST

START_TEST(test_protocol)
{
	struct control ctl;
	struct control_sock cs;
	char err[256], buf[1024];
	int fd;

	setup();
	control_init(&ctl, on_command, NULL);
	ck_assert_int_eq(control_sock_open(&cs, path, false, err, sizeof(err)),
			 0);
	control_set_sock(&ctl, &cs);

	fd = client();
	ck_assert_int_eq(send(fd, "status\r\n", 8, 0), 8);
	read_all(&ctl, fd, buf, sizeof(buf));
	ck_assert_str_eq(buf, "| first 1\n| second\n| third\nOK\n");
	close(fd);

	fd = client();
	ck_assert_int_eq(send(fd, "nope\n", 5, 0), 5);
	read_all(&ctl, fd, buf, sizeof(buf));
	ck_assert_str_eq(buf, "ERR unknown command 'nope'\n");
	close(fd);

	/* a waiting command is answered later, with lines */
	fd = client();
	ck_assert_int_eq(send(fd, "wait\n", 5, 0), 5);
	pump(&ctl, 50);
	ck_assert_uint_eq(control_waiting(&ctl, CONTROL_WAIT_RELOAD), 1);
	{
		char *lines[] = {"f.yaml:1:2: bad"};

		control_finish_all(&ctl, CONTROL_WAIT_RELOAD, false, lines, 1,
				   "reload failed");
	}
	read_all(&ctl, fd, buf, sizeof(buf));
	ck_assert_str_eq(buf, "| f.yaml:1:2: bad\nERR reload failed\n");
	close(fd);
	ck_assert_int_eq(commands, 3);
	control_close_all(&ctl);
	control_sock_close(&ctl.ctl_sock, true);
	cleanup();
}
END_TEST

START_TEST(test_long_line_and_timeout)
{
	struct control ctl;
	struct control_sock cs;
	char err[256], buf[1024], big[400];
	int fd;

	setup();
	control_init(&ctl, on_command, NULL);
	ck_assert_int_eq(control_sock_open(&cs, path, false, err, sizeof(err)),
			 0);
	control_set_sock(&ctl, &cs);
	memset(big, 'x', sizeof(big));
	fd = client();
	ck_assert_int_eq(send(fd, big, sizeof(big), 0), (ssize_t)sizeof(big));
	read_all(&ctl, fd, buf, sizeof(buf));
	ck_assert_str_eq(buf, "ERR command line too long\n");
	close(fd);

	/* silent client: dropped at its deadline */
	fd = client();
	pump(&ctl, 50);
	ck_assert_int_eq(control_timers(&ctl, UINT64_MAX - 1), -1);
	ck_assert_int_eq(recv(fd, buf, sizeof(buf), 0), 0);
	close(fd);
	control_sock_close(&ctl.ctl_sock, true);
	cleanup();
}
END_TEST

/* control_socket_group members: the read-only commands, by first word. */
START_TEST(test_readonly_table)
{
	ck_assert(control_cmd_is_readonly("status"));
	ck_assert(control_cmd_is_readonly("status --json"));
	ck_assert(control_cmd_is_readonly("check"));
	ck_assert(!control_cmd_is_readonly("statusx"));
	ck_assert(!control_cmd_is_readonly("stat"));
	ck_assert(!control_cmd_is_readonly(""));
	ck_assert(!control_cmd_is_readonly("reload"));
	ck_assert(!control_cmd_is_readonly("stop"));
	ck_assert(!control_cmd_is_readonly("quit"));
	ck_assert(!control_cmd_is_readonly("upgrade"));
	ck_assert(!control_cmd_is_readonly("reopen"));
	ck_assert(!control_cmd_is_readonly("drain web 127.0.0.1:1"));
	ck_assert(!control_cmd_is_readonly("enable web 127.0.0.1:1"));
}
END_TEST

/* The group gets the socket 0660; without one it is 0600 again. */
START_TEST(test_grant_mode)
{
	struct control ctl;
	struct control_sock cs;
	struct stat st;
	char err[256];

	setup();
	control_init(&ctl, on_command, NULL);
	ck_assert_int_eq(control_sock_open(&cs, path, false, err, sizeof(err)),
			 0);
	control_set_group(&ctl, getegid());
	control_set_sock(&ctl, &cs); /* takes the group on */
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0660);
	ck_assert_uint_eq(st.st_gid, getegid());
	control_set_group(&ctl, (gid_t)-1);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	control_sock_close(&ctl.ctl_sock, true);
	cleanup();
}
END_TEST

/*
 * In a child that runs as uid/gid 65534 with supplementary group `group`:
 * send cmd and compare the whole answer with want.  Exit 0 if equal.
 */
static void child_ask(gid_t group, const char *cmd, const char *want)
{
	char buf[512];
	size_t off = 0;
	ssize_t n;
	int fd;

	struct sockaddr_un sa;

	/* no ck_assert in here: check would count the child's failure */
	if (setgroups(1, &group) == -1 || setgid(65534) == -1 ||
	    setuid(65534) == -1)
		_exit(3);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		_exit(6); /* the file mode kept it out */
	/* a refused peer may be closed before it sends: read the answer */
	(void)send(fd, cmd, strlen(cmd), MSG_NOSIGNAL);
	while (off < sizeof(buf) - 1 &&
	       (n = recv(fd, buf + off, sizeof(buf) - 1 - off, 0)) > 0)
		off += (size_t)n;
	buf[off] = '\0';
	_exit(strcmp(buf, want) == 0 ? 0 : 5);
}

/* Pump the server side until the child exits; its exit status. */
static int wait_child(struct control *ctl, pid_t pid)
{
	int status = -1;

	for (int i = 0; i < 300; i++) {
		pump(ctl, 20);
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return 98;
}

static int ask_as_member(struct control *ctl, gid_t group, const char *cmd,
			 const char *want)
{
	pid_t pid = fork();

	ck_assert_int_ne(pid, -1);
	if (pid == 0)
		child_ask(group, cmd, want);
	return wait_child(ctl, pid);
}

/*
 * As root: a member of the group runs status, is told "permission denied"
 * for reload and stop (never a broken pipe), and a non-member is refused.
 */
START_TEST(test_group_member_readonly)
{
	struct control ctl;
	struct control_sock cs;
	char err[256];
	gid_t group = 4242; /* any gid: membership is what SO_PEERGROUPS says */

	if (geteuid() != 0)
		return; /* needs setuid(); the integration test covers it too */
	setup();
	ck_assert_int_eq(chmod(dir, 0755), 0);
	control_init(&ctl, on_command, NULL);
	ck_assert_int_eq(control_sock_open(&cs, path, false, err, sizeof(err)),
			 0);
	control_set_group(&ctl, group);
	control_set_sock(&ctl, &cs);
	commands = 0;
	ck_assert_int_eq(ask_as_member(&ctl, group, "status\n",
				       "| first 1\n| second\n| third\nOK\n"),
			 0);
	ck_assert_int_eq(commands, 1);
	ck_assert_int_eq(ask_as_member(&ctl, group, "reload\n",
				       "ERR permission denied\n"),
			 0);
	ck_assert_int_eq(ask_as_member(&ctl, group, "stop\n",
				       "ERR permission denied\n"),
			 0);
	ck_assert_int_eq(commands, 1); /* neither reached the master */
	/* not a member: the socket's mode (0660) already keeps it out */
	ck_assert_int_eq(ask_as_member(&ctl, group + 1, "status\n",
				       "| first 1\n| second\n| third\nOK\n"),
			 6);
	ck_assert_int_eq(commands, 1);
	/* and without the mode, SO_PEERCRED does */
	ck_assert_int_eq(chmod(path, 0666), 0);
	ck_assert_int_eq(ask_as_member(&ctl, group + 1, "status\n",
				       "ERR permission denied\n"),
			 0);
	ck_assert_int_eq(commands, 1);
	control_sock_close(&ctl.ctl_sock, true);
	cleanup();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("control");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_socket_mode_and_second_master);
	tcase_add_test(tc, test_protocol);
	tcase_add_test(tc, test_long_line_and_timeout);
	tcase_add_test(tc, test_readonly_table);
	tcase_add_test(tc, test_grant_mode);
	tcase_add_test(tc, test_group_member_readonly);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
