/* test_loop.c: the worker's event loop (worker/loop.c) and its timers. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "worker/loop.h"

/*
 * A turn is one epoll_wait and what follows it.  The tick timer wakes the
 * loop every TICK_MS so that a turn without events still ends; after
 * `turns_left` turns, lp_after stops the loop.
 */
#define TICK_MS 5

static struct loop lp;
static struct timer tick;
static int turns, turns_left;

/* What the callbacks saw, in order: 'a'/'b' for ios, '0'.. for timers. */
static char trace[256];
static size_t ntrace;
static uint32_t last_events;

static void trace_add(char c)
{
	if (ntrace < sizeof(trace) - 1)
		trace[ntrace++] = c;
	trace[ntrace] = '\0';
}

static void on_tick(struct timer *t)
{
	(void)t;
}

static void after_turn(struct loop *l)
{
	turns++;
	trace_add('|');
	if (--turns_left <= 0)
		loop_stop(l);
	else if (!timer_is_armed(&tick))
		loop_timer_in(l, &tick, TICK_MS);
}

static void on_io(struct loop_io *io, uint32_t events)
{
	last_events = events;
	trace_add((char)(intptr_t)io->io_data);
}

static void setup(void)
{
	ck_assert_int_eq(loop_init(&lp), 0);
	timer_init(&tick, on_tick, NULL);
	lp.lp_after = after_turn;
	turns = 0;
	ntrace = 0;
	trace[0] = '\0';
	last_events = 0;
}

static void teardown(void)
{
	loop_free(&lp);
}

/* Run n turns; each ends within TICK_MS when nothing happens. */
static void run_turns(int n)
{
	turns_left = n;
	loop_timer_in(&lp, &tick, TICK_MS);
	ck_assert_int_eq(loop_run(&lp), 0);
	loop_timer_del(&lp, &tick);
}

static int count(char c)
{
	int n = 0;

	for (size_t i = 0; i < ntrace; i++)
		n += trace[i] == c;
	return n;
}

/* Where c first appears in the trace, or -1. */
static int pos(char c)
{
	const char *p = strchr(trace, c);

	return p == NULL ? -1 : (int)(p - trace);
}

static void socket_pair(int sv[2])
{
	ck_assert_int_eq(
		socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
}

static void send_byte(int fd)
{
	ck_assert_int_eq(write(fd, "x", 1), 1);
}

START_TEST(test_init_and_free)
{
	uint64_t now = timer_now_ms();
	int fl = fcntl(lp.lp_epfd, F_GETFD);

	ck_assert_int_ge(lp.lp_epfd, 0);
	ck_assert(fl & FD_CLOEXEC);
	ck_assert_uint_le(lp.lp_now, now);
	ck_assert_uint_ge(lp.lp_now + 1000, now);
	ck_assert_ptr_null(timer_first(&lp.lp_timers));

	int epfd = lp.lp_epfd;

	loop_free(&lp);
	ck_assert_int_eq(lp.lp_epfd, -1);
	ck_assert_int_eq(fcntl(epfd, F_GETFD), -1);
	ck_assert_int_eq(errno, EBADF);
	loop_free(&lp); /* twice is harmless; teardown frees again */
}
END_TEST

/* Edge-triggered: one callback per edge, not one per turn while readable. */
START_TEST(test_edge_triggered_once_per_edge)
{
	struct loop_io io;
	int sv[2];

	socket_pair(sv);
	loop_io_init(&io, sv[0], on_io, (void *)'a');
	ck_assert_int_eq(loop_add_fd(&lp, &io, EPOLLIN | EPOLLET), 0);
	ck_assert(io.io_added);
	ck_assert_uint_eq(io.io_events, EPOLLIN | EPOLLET);

	send_byte(sv[1]);
	run_turns(4); /* the byte stays unread */
	ck_assert_int_eq(count('a'), 1);
	ck_assert(last_events & EPOLLIN);

	send_byte(sv[1]); /* a new edge */
	run_turns(4);
	ck_assert_int_eq(count('a'), 2);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* The contrast: level-triggered reports unread data on every turn. */
START_TEST(test_level_triggered_every_turn)
{
	struct loop_io io;
	int sv[2];

	socket_pair(sv);
	loop_io_init(&io, sv[0], on_io, (void *)'a');
	ck_assert_int_eq(loop_add_fd(&lp, &io, EPOLLIN), 0);
	send_byte(sv[1]);
	run_turns(4);
	ck_assert_int_eq(count('a'), 4);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* loop_set_fd changes the mask: only the events asked for are reported. */
START_TEST(test_set_fd_changes_mask)
{
	struct loop_io io;
	int sv[2];

	socket_pair(sv);
	loop_io_init(&io, sv[0], on_io, (void *)'a');
	/* not registered yet: loop_set_fd adds */
	ck_assert_int_eq(loop_set_fd(&lp, &io, EPOLLIN), 0);
	ck_assert(io.io_added);
	run_turns(2); /* writable, but only EPOLLIN asked for */
	ck_assert_int_eq(count('a'), 0);

	ck_assert_int_eq(loop_set_fd(&lp, &io, EPOLLOUT), 0);
	ck_assert_uint_eq(io.io_events, EPOLLOUT);
	run_turns(1);
	ck_assert_int_eq(count('a'), 1);
	ck_assert_uint_eq(last_events, EPOLLOUT);

	/* loop_add_fd on a registered io changes its mask too */
	ck_assert_int_eq(loop_add_fd(&lp, &io, EPOLLIN), 0);
	ck_assert_uint_eq(io.io_events, EPOLLIN);
	run_turns(2);
	ck_assert_int_eq(count('a'), 1);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* An unchanged mask makes no epoll_ctl: it succeeds even without epoll. */
START_TEST(test_set_fd_same_mask_no_syscall)
{
	struct loop_io io;
	int sv[2], epfd = lp.lp_epfd;

	socket_pair(sv);
	loop_io_init(&io, sv[0], on_io, (void *)'a');
	ck_assert_int_eq(loop_set_fd(&lp, &io, EPOLLIN), 0);
	lp.lp_epfd = -1;
	ck_assert_int_eq(loop_set_fd(&lp, &io, EPOLLIN), 0);
	errno = 0;
	ck_assert_int_eq(loop_set_fd(&lp, &io, EPOLLOUT), -1);
	ck_assert_int_eq(errno, EBADF);
	ck_assert_uint_eq(io.io_events, EPOLLIN); /* unchanged on failure */
	lp.lp_epfd = epfd;
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_add_fd_failure)
{
	struct loop_io io;

	loop_io_init(&io, 1000000, on_io, (void *)'a');
	errno = 0;
	ck_assert_int_eq(loop_add_fd(&lp, &io, EPOLLIN), -1);
	ck_assert_int_eq(errno, EBADF);
	ck_assert(!io.io_added);
	ck_assert_uint_eq(io.io_events, 0);
}
END_TEST

/* loop_del_fd stops the events, leaves the fd open, and may be repeated. */
START_TEST(test_del_fd_stops_events)
{
	struct loop_io io;
	int sv[2];

	socket_pair(sv);
	loop_io_init(&io, sv[0], on_io, (void *)'a');
	loop_del_fd(&lp, &io); /* not registered: harmless */
	ck_assert_int_eq(loop_add_fd(&lp, &io, EPOLLIN), 0);
	send_byte(sv[1]);
	run_turns(1);
	ck_assert_int_eq(count('a'), 1);

	loop_del_fd(&lp, &io);
	ck_assert(!io.io_added);
	ck_assert_uint_eq(io.io_events, 0);
	send_byte(sv[1]);
	run_turns(3);
	ck_assert_int_eq(count('a'), 1);
	ck_assert_int_ne(fcntl(sv[0], F_GETFD), -1);
	loop_del_fd(&lp, &io);

	/* and it can be registered again */
	ck_assert_int_eq(loop_add_fd(&lp, &io, EPOLLIN), 0);
	run_turns(1);
	ck_assert_int_eq(count('a'), 2);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/*
 * loop_forget_fd, for an fd about to be closed: the registration is
 * forgotten, the close ends the events, and the io can take a new fd.
 */
START_TEST(test_forget_fd)
{
	struct loop_io io;
	int sv[2], sw[2];

	socket_pair(sv);
	socket_pair(sw);
	loop_io_init(&io, sv[0], on_io, (void *)'a');
	ck_assert_int_eq(loop_add_fd(&lp, &io, EPOLLIN), 0);
	send_byte(sv[1]); /* readable, and registered level-triggered */
	loop_forget_fd(&io);
	ck_assert(!io.io_added);
	ck_assert_uint_eq(io.io_events, 0);
	close(sv[0]); /* which takes it out of the epoll set */
	run_turns(2);
	ck_assert_int_eq(count('a'), 0);

	/* a new fd in the same io is added, not modified (ENOENT) */
	io.io_fd = sw[0];
	send_byte(sw[1]);
	ck_assert_int_eq(loop_add_fd(&lp, &io, EPOLLIN), 0);
	run_turns(1);
	ck_assert_int_eq(count('a'), 1);
	close(sv[1]);
	close(sw[0]);
	close(sw[1]);
}
END_TEST

static struct loop_io *pair[2];

/* Whichever of the pair comes first "closes" the other. */
static void on_io_closing(struct loop_io *io, uint32_t events)
{
	on_io(io, events);
	for (int i = 0; i < 2; i++)
		if (pair[i] != io)
			pair[i]->io_fd = -1;
}

/* An io whose fd a callback set to -1 gets no callback later that turn. */
START_TEST(test_closed_in_turn_skipped)
{
	struct loop_io a, b;
	int sa[2], sb[2];

	socket_pair(sa);
	socket_pair(sb);
	loop_io_init(&a, sa[0], on_io_closing, (void *)'a');
	loop_io_init(&b, sb[0], on_io_closing, (void *)'b');
	pair[0] = &a;
	pair[1] = &b;
	ck_assert_int_eq(loop_add_fd(&lp, &a, EPOLLIN), 0);
	ck_assert_int_eq(loop_add_fd(&lp, &b, EPOLLIN), 0);
	send_byte(sa[1]);
	send_byte(sb[1]);
	usleep(10 * 1000); /* both readable before the turn starts */
	run_turns(1);
	ck_assert_int_eq(count('a') + count('b'), 1);
	close(sa[0]);
	close(sa[1]);
	close(sb[0]);
	close(sb[1]);
}
END_TEST

static struct timer tm[4];

static void on_timer(struct timer *t)
{
	/* a fired timer is already disarmed, and lp_now has reached it */
	ck_assert(!timer_is_armed(t));
	ck_assert_uint_ge(lp.lp_now, t->tm_when);
	trace_add((char)('0' + (intptr_t)t->tm_data));
}

static void arm(int i, uint64_t ms)
{
	timer_init(&tm[i], on_timer, (void *)(intptr_t)i);
	loop_timer_in(&lp, &tm[i], ms);
}

/* Timers fire in deadline order, each in a turn at or after its deadline. */
START_TEST(test_timers_deadline_order)
{
	uint64_t start = lp.lp_now; /* deadlines count from it */

	arm(0, 60);
	arm(1, 20);
	arm(2, 40);
	while (count('0') == 0)
		run_turns(1);
	ck_assert_uint_ge(timer_now_ms() - start, 60);
	ck_assert_int_eq(count('1') + count('2'), 2);
	ck_assert_int_lt(pos('1'), pos('2'));
	ck_assert_int_lt(pos('2'), pos('0'));
	/* deadlines 20 ms apart, more than a tick: each in a turn of its own */
	ck_assert_ptr_nonnull(
		memchr(trace + pos('1'), '|', pos('2') - pos('1')));
	ck_assert_ptr_nonnull(
		memchr(trace + pos('2'), '|', pos('0') - pos('2')));
}
END_TEST

/* Timers due in the same turn still fire in deadline order. */
START_TEST(test_timers_same_turn_order)
{
	lp.lp_now -= 1000; /* deadlines are from the loop's cached time */
	arm(0, 30);
	ck_assert_uint_eq(tm[0].tm_when, lp.lp_now + 30);
	arm(1, 10);
	arm(2, 20);
	arm(3, 10);
	run_turns(1);
	ck_assert(strcmp(trace, "1320|") == 0 || strcmp(trace, "3120|") == 0);
}
END_TEST

/* Deleted timers never fire; a re-armed one fires at its new deadline only. */
START_TEST(test_timer_del_and_rearm)
{
	arm(0, 20);
	loop_timer_del(&lp, &tm[0]);
	loop_timer_del(&lp, &tm[0]); /* twice is harmless */
	arm(1, 20);
	loop_timer_in(&lp, &tm[1], 150); /* later */
	arm(2, 300);
	loop_timer_in(&lp, &tm[2], 10); /* earlier */

	uint64_t start = timer_now_ms();

	while (timer_now_ms() - start < 80)
		run_turns(1);
	ck_assert_int_eq(count('0'), 0);
	ck_assert_int_eq(count('1'), 0); /* not at its old 20 ms */
	ck_assert_int_eq(count('2'), 1);
	while (timer_now_ms() - start < 350)
		run_turns(1);
	ck_assert_int_eq(count('0'), 0);
	ck_assert_int_eq(count('1'), 1);
	ck_assert_int_eq(count('2'), 1); /* not again at its old 300 ms */
	ck_assert_ptr_null(timer_first(&lp.lp_timers));
}
END_TEST

static void on_io_stop(struct loop_io *io, uint32_t events)
{
	on_io(io, events);
	loop_stop(&lp);
}

/*
 * loop_stop from a callback ends loop_run after the current turn: lp_after
 * still runs for it, and loop_run returns 0.  A later loop_run runs again.
 */
START_TEST(test_stop_ends_run)
{
	struct loop_io io;
	int sv[2];

	socket_pair(sv);
	loop_io_init(&io, sv[0], on_io_stop, (void *)'a');
	ck_assert_int_eq(loop_add_fd(&lp, &io, EPOLLIN), 0);
	send_byte(sv[1]);
	turns_left = 1000; /* lp_after would not stop it for long */
	loop_timer_in(&lp, &tick, TICK_MS);
	ck_assert_int_eq(loop_run(&lp), 0);
	ck_assert_str_eq(trace, "a|");
	ck_assert_int_eq(turns, 1);

	/* the byte is still unread (level-triggered): run again */
	ck_assert_int_eq(loop_run(&lp), 0);
	ck_assert_str_eq(trace, "a|a|");
	loop_timer_del(&lp, &tick);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* lp_after runs once per turn, after that turn's io callbacks and timers. */
START_TEST(test_after_runs_after_each_turn)
{
	struct loop_io io;
	int sv[2];

	socket_pair(sv);
	loop_io_init(&io, sv[0], on_io, (void *)'a');
	ck_assert_int_eq(loop_add_fd(&lp, &io, EPOLLIN | EPOLLET), 0);
	send_byte(sv[1]);
	lp.lp_now -= 1000;
	arm(0, 0); /* due now: fires in the first turn, with the io */
	run_turns(3);
	ck_assert_int_eq(turns, 3);
	ck_assert_str_eq(trace, "a0|||");
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* lp_now is refreshed each turn, before the callbacks run. */
START_TEST(test_now_updated_each_turn)
{
	uint64_t before = lp.lp_now;

	usleep(30 * 1000);
	ck_assert_uint_eq(lp.lp_now, before); /* cached between turns */
	run_turns(1);
	ck_assert_uint_ge(lp.lp_now, before + 30);
	ck_assert_uint_le(lp.lp_now, timer_now_ms());
}
END_TEST

/* loop_run returns -1 when epoll_wait fails. */
START_TEST(test_run_fails_on_bad_epoll)
{
	int p[2], epfd = lp.lp_epfd;

	ck_assert_int_eq(pipe(p), 0);
	lp.lp_epfd = p[0]; /* not an epoll descriptor */
	errno = 0;
	turns_left = 1000;
	loop_timer_in(&lp, &tick, TICK_MS);
	ck_assert_int_eq(loop_run(&lp), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(turns, 0);
	lp.lp_epfd = epfd;
	close(p[0]);
	close(p[1]);
}
END_TEST

static void on_alarm(int sig)
{
	(void)sig;
}

static void on_timer_stop(struct timer *t)
{
	on_timer(t);
	loop_stop(&lp);
}

/* A signal that interrupts epoll_wait (EINTR) does not end loop_run. */
START_TEST(test_run_survives_eintr)
{
	struct sigaction sa;
	struct itimerval it = {.it_value = {.tv_usec = 20 * 1000}};
	uint64_t start = lp.lp_now;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
	lp.lp_after = NULL; /* only the timer stops the loop */
	timer_init(&tm[0], on_timer_stop, (void *)0);
	loop_timer_in(&lp, &tm[0], 100);
	ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	ck_assert_int_eq(loop_run(&lp), 0);
	ck_assert_str_eq(trace, "0");
	ck_assert_uint_ge(timer_now_ms() - start, 100);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("loop");
	TCase *io = tcase_create("io");
	TCase *tim = tcase_create("timers");
	TCase *run = tcase_create("run");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(io, setup, teardown);
	tcase_add_checked_fixture(tim, setup, teardown);
	tcase_add_checked_fixture(run, setup, teardown);
	tcase_add_test(io, test_init_and_free);
	tcase_add_test(io, test_edge_triggered_once_per_edge);
	tcase_add_test(io, test_level_triggered_every_turn);
	tcase_add_test(io, test_set_fd_changes_mask);
	tcase_add_test(io, test_set_fd_same_mask_no_syscall);
	tcase_add_test(io, test_add_fd_failure);
	tcase_add_test(io, test_del_fd_stops_events);
	tcase_add_test(io, test_forget_fd);
	tcase_add_test(io, test_closed_in_turn_skipped);
	tcase_add_test(tim, test_timers_deadline_order);
	tcase_add_test(tim, test_timers_same_turn_order);
	tcase_add_test(tim, test_timer_del_and_rearm);
	tcase_add_test(run, test_stop_ends_run);
	tcase_add_test(run, test_after_runs_after_each_turn);
	tcase_add_test(run, test_now_updated_each_turn);
	tcase_add_test(run, test_run_fails_on_bad_epoll);
	tcase_add_test(run, test_run_survives_eintr);
	suite_add_tcase(s, io);
	suite_add_tcase(s, tim);
	suite_add_tcase(s, run);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
