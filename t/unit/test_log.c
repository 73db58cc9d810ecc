/*
 * test_log.c: log_file_open (common/log.c), the way a root master opens a
 * log file in a directory its workers' user may own (CVE-2016-1247 class):
 * a planted symbolic link, FIFO or hard link is refused and its target is
 * left untouched; only a file the opener created is given to the workers.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

static char dir[64];
static char victim[128];
static char err[256];

/* A fresh directory, and a "root-owned" file outside it to protect. */
static void setup(void)
{
	int fd;

	snprintf(dir, sizeof(dir), "/tmp/pc-log-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(victim, sizeof(victim), "%s.victim", dir);
	fd = open(victim, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "secret\n", 7), 7);
	close(fd);
	err[0] = '\0';
}

static void teardown(void)
{
	char cmd[320];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, victim);
	ck_assert_int_eq(system(cmd), 0);
}

static void in_dir(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

/* The victim still holds exactly what setup() wrote, owned as before. */
static void assert_victim_untouched(uid_t owner)
{
	struct stat st;

	ck_assert_int_eq(stat(victim, &st), 0);
	ck_assert_int_eq(st.st_size, 7);
	ck_assert_uint_eq(st.st_uid, owner);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
}

START_TEST(test_creates_0640_and_appends)
{
	char path[128];
	struct stat st;
	int fd;

	in_dir(path, sizeof(path), "error.log");
	fd = log_file_open(path, (uid_t)-1, (gid_t)-1, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	ck_assert_int_eq(write(fd, "a\n", 2), 2);
	close(fd);
	fd = log_file_open(path, (uid_t)-1, (gid_t)-1, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	ck_assert_int_eq(write(fd, "b\n", 2), 2);
	/* the descriptor is blocking again once checked */
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	ck_assert_int_ne(fcntl(fd, F_GETFL) & O_APPEND, 0);
	close(fd);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, 4);
	ck_assert_uint_eq(st.st_mode & 0777, 0640);
}
END_TEST

START_TEST(test_symlink_refused)
{
	char path[128];

	in_dir(path, sizeof(path), "error.log");
	ck_assert_int_eq(symlink(victim, path), 0);
	ck_assert_int_eq(
		log_file_open(path, (uid_t)-1, (gid_t)-1, err, sizeof(err)),
		-1);
	ck_assert_msg(strstr(err, "symbolic link") != NULL, "%s", err);
	assert_victim_untouched(geteuid());
}
END_TEST

START_TEST(test_dangling_symlink_not_created)
{
	char path[128], target[160];
	struct stat st;

	in_dir(path, sizeof(path), "access.log");
	snprintf(target, sizeof(target), "%s.created", dir);
	ck_assert_int_eq(symlink(target, path), 0);
	ck_assert_int_eq(
		log_file_open(path, (uid_t)-1, (gid_t)-1, err, sizeof(err)),
		-1);
	ck_assert_int_eq(lstat(target, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_fifo_refused_without_blocking)
{
	char path[128];

	in_dir(path, sizeof(path), "error.log");
	ck_assert_int_eq(mkfifo(path, 0666), 0);
	/* no reader: a blocking open would hang here (the test's timeout) */
	ck_assert_int_eq(
		log_file_open(path, (uid_t)-1, (gid_t)-1, err, sizeof(err)),
		-1);
}
END_TEST

START_TEST(test_hard_link_refused)
{
	char path[128];

	in_dir(path, sizeof(path), "error.log");
	ck_assert_int_eq(link(victim, path), 0);
	ck_assert_int_eq(
		log_file_open(path, (uid_t)-1, (gid_t)-1, err, sizeof(err)),
		-1);
	ck_assert_msg(strstr(err, "hard link") != NULL, "%s", err);
	assert_victim_untouched(geteuid());
}
END_TEST

/*
 * As root, for workers running as nobody, in a directory nobody owns (the
 * package's /var/log/portcullis): a new file is created as nobody; a link
 * nobody planted to a root-only file is refused and the file keeps its
 * owner and content.
 */
START_TEST(test_root_in_workers_directory)
{
	struct passwd *pw = getpwnam("nobody");
	char path[128];
	struct stat st;
	int fd;

	if (geteuid() != 0 || pw == NULL) {
		/* the unprivileged paths are covered above; say so loudly */
		fprintf(stderr, "test_root_in_workers_directory: needs root "
				"and user nobody, not run\n");
		return;
	}
	ck_assert_int_eq(chown(dir, pw->pw_uid, pw->pw_gid), 0);
	in_dir(path, sizeof(path), "error.log");
	fd = log_file_open(path, pw->pw_uid, pw->pw_gid, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	close(fd);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_uid, pw->pw_uid);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(symlink(victim, path), 0);
	ck_assert_int_eq(
		log_file_open(path, pw->pw_uid, pw->pw_gid, err, sizeof(err)),
		-1);
	assert_victim_untouched(0);
	/* the master's own identity is back: it can still write as root */
	ck_assert_int_eq(access(victim, W_OK), 0);
	ck_assert_uint_eq(geteuid(), 0);
}
END_TEST

/*
 * As root, in a directory only root may write (/var/log itself): root
 * creates the file and gives it to the workers; an existing root-owned
 * file is used as it is, never chowned.
 */
START_TEST(test_root_in_root_directory)
{
	struct passwd *pw = getpwnam("nobody");
	char path[128], other[128];
	struct stat st;
	int fd;

	if (geteuid() != 0 || pw == NULL) {
		fprintf(stderr, "test_root_in_root_directory: needs root and "
				"user nobody, not run\n");
		return;
	}
	ck_assert_int_eq(chmod(dir, 0755), 0);
	in_dir(path, sizeof(path), "new.log");
	fd = log_file_open(path, pw->pw_uid, pw->pw_gid, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	close(fd);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_uid, pw->pw_uid);
	in_dir(other, sizeof(other), "root.log");
	fd = open(other, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	fd = log_file_open(other, pw->pw_uid, pw->pw_gid, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	close(fd);
	ck_assert_int_eq(stat(other, &st), 0);
	ck_assert_uint_eq(st.st_uid, 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
}
END_TEST

/*
 * As root, in a set-group-ID directory only root writes (the Debian
 * package's /var/log/portcullis, root:adm 2750): the file root creates is
 * the workers' user's, 0640, with the directory's group, not theirs.
 */
START_TEST(test_root_in_setgid_directory)
{
	struct passwd *pw = getpwnam("nobody");
	const gid_t readers = 4242; /* stands for adm */
	char path[128];
	struct stat st;
	int fd;

	if (geteuid() != 0 || pw == NULL) {
		fprintf(stderr, "test_root_in_setgid_directory: needs root "
				"and user nobody, not run\n");
		return;
	}
	ck_assert_int_eq(chown(dir, 0, readers), 0);
	ck_assert_int_eq(chmod(dir, 02750), 0);
	in_dir(path, sizeof(path), "access.log");
	fd = log_file_open(path, pw->pw_uid, pw->pw_gid, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	close(fd);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_uid, pw->pw_uid);
	ck_assert_uint_eq(st.st_gid, readers);
	ck_assert_uint_eq(st.st_mode & 0777, 0640);
	/* a link planted there is still refused */
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(symlink(victim, path), 0);
	ck_assert_int_eq(
		log_file_open(path, pw->pw_uid, pw->pw_gid, err, sizeof(err)),
		-1);
	assert_victim_untouched(0);
}
END_TEST

static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("file_open");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_creates_0640_and_appends);
	tcase_add_test(tc, test_symlink_refused);
	tcase_add_test(tc, test_dangling_symlink_not_created);
	tcase_add_test(tc, test_fifo_refused_without_blocking);
	tcase_add_test(tc, test_hard_link_refused);
	tcase_add_test(tc, test_root_in_workers_directory);
	tcase_add_test(tc, test_root_in_root_directory);
	tcase_add_test(tc, test_root_in_setgid_directory);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(log_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
