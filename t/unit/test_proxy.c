/*
 * test_proxy.c: the proxy's state machine (worker/proxy.c) driven without
 * a daemon.  The client is one end of a socketpair handed to
 * proxy_accept(); the server is a TCP listener on 127.0.0.1 in this
 * process; both sides are scripted here, and the worker's event loop is
 * turned a few times at a time between their moves.  RFC 9112 sections are
 * named where a case checks one.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/shm.h"
#include "worker/proxy.h"
#include "worker/worker.h"

#define TURN_MS	   5
#define WAIT_TURNS 400 /* 2 s of turns at most, for any one wait */

static struct worker w;
static struct worker_listener wl;
static struct config *cfg;
static struct shm_zone *zone;
static int server_lfd = -1;
static struct timer tick;
static int turns_left;

static void on_tick(struct timer *t)
{
	(void)t; /* only bounds epoll_wait */
}

static void after_turn(struct loop *lp)
{
	proxy_reap(&w);
	if (--turns_left <= 0)
		loop_stop(lp);
	loop_timer_in(lp, &tick, TURN_MS); /* the next turn waits no longer */
}

/* Run n turns of the worker's loop, none waiting longer than TURN_MS. */
static void turns(int n)
{
	turns_left = n;
	loop_timer_in(&w.w_loop, &tick, TURN_MS);
	ck_assert_int_eq(loop_run(&w.w_loop), 0);
}

static void setup(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	struct config_errors errs = {0};
	char yaml[1024];

	server_lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(server_lfd, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(server_lfd, (struct sockaddr *)&sin, sizeof(sin)),
			 0);
	ck_assert_int_eq(listen(server_lfd, 16), 0);
	ck_assert_int_eq(getsockname(server_lfd, (struct sockaddr *)&sin, &len),
			 0);
	snprintf(yaml, sizeof(yaml),
		 "listeners:\n"
		 "  - name: web\n"
		 "    bind: 127.0.0.1:1\n"
		 "    routes: [{path_prefix: /, backend: b}]\n"
		 "backends:\n"
		 "  b:\n"
		 "    response_timeout: 300ms\n"
		 "    servers: [{address: 127.0.0.1:%d}]\n",
		 ntohs(sin.sin_port));
	cfg = config_load_string("test.yaml", yaml, &errs);
	ck_assert_msg(cfg != NULL, "%s", errs.count ? errs.msgs[0] : "?");
	cfg->backends[0].servers[0].slot = 0;
	cfg->listeners[0].routes[0].slot = 0;
	zone = shm_create();
	ck_assert_ptr_nonnull(zone);
	memset(&w, 0, sizeof(w));
	w.w_cfg = cfg;
	ck_assert_int_eq(loop_init(&w.w_loop), 0);
	w.w_loop.lp_after = after_turn;
	w.w_loop.lp_now = timer_now_ms();
	timer_init(&tick, on_tick, NULL);
	buf_pool_init(16384 + 4096, 8);
	w.w_bes = balance_init(cfg, zone, NULL);
	ck_assert_ptr_nonnull(w.w_bes);
	ck_assert_int_eq(proxy_init(&w), 0);
	wl.wl_cfg = &cfg->listeners[0];
	wl.wl_w = &w;
}

static void teardown(void)
{
	proxy_cleanup(&w);
	balance_free(w.w_bes, cfg->nbackends);
	loop_free(&w.w_loop);
	buf_pool_destroy();
	shm_destroy(zone);
	config_free(cfg);
	close(server_lfd);
}

/* A new client: our end; the proxy's end goes to proxy_accept. */
static int client_connect(void)
{
	struct sockaddr_storage peer = {.ss_family = AF_UNIX};
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX,
				    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
				    0, sv),
			 0);
	proxy_accept(&w, &wl, sv[1], &peer);
	return sv[0];
}

static void send_all(int fd, const char *s)
{
	ck_assert_int_eq(send(fd, s, strlen(s), MSG_NOSIGNAL),
			 (ssize_t)strlen(s));
}

/*
 * Turn the loop until fd has given want bytes, or end (when want is 0:
 * until EOF).  Returns the bytes read into out (NUL-terminated); *eof says
 * whether the peer closed.
 */
static size_t pumped_read(int fd, char *out, size_t cap, size_t want, bool *eof)
{
	size_t got = 0;

	*eof = false;
	for (int i = 0; i < WAIT_TURNS && !*eof && (want == 0 || got < want);
	     i++) {
		ssize_t n;

		turns(1);
		while ((n = recv(fd, out + got, cap - 1 - got, MSG_DONTWAIT)) >
		       0)
			got += (size_t)n;
		if (n == 0)
			*eof = true;
	}
	out[got] = '\0';
	return got;
}

/* Turn the loop until the server side has a connection; -1 if none. */
static int pumped_accept(void)
{
	for (int i = 0; i < WAIT_TURNS; i++) {
		struct pollfd p = {.fd = server_lfd, .events = POLLIN};

		turns(1);
		if (poll(&p, 1, 0) == 1)
			return accept(server_lfd, NULL, NULL);
	}
	return -1;
}

/* Turn the loop until s holds a whole head (and body_len more bytes). */
static void server_read_request(int s, char *out, size_t cap, size_t body_len)
{
	size_t got = 0;
	char *end = NULL;

	for (int i = 0; i < WAIT_TURNS; i++) {
		ssize_t n;

		turns(1);
		while ((n = recv(s, out + got, cap - 1 - got, MSG_DONTWAIT)) >
		       0)
			got += (size_t)n;
		out[got] = '\0';
		end = strstr(out, "\r\n\r\n");
		if (end != NULL && got >= (size_t)(end + 4 - out) + body_len)
			return;
	}
	ck_abort_msg("the server got no whole request: \"%s\"", out);
}

static bool server_got_nothing(void)
{
	struct pollfd p = {.fd = server_lfd, .events = POLLIN};

	turns(10);
	return poll(&p, 1, 0) == 0;
}

/* HEAD -> PROXY -> HEAD: a response, then the next request on both
 * connections kept (the idle pool hands the server connection back). */
START_TEST(test_keepalive_both_sides)
{
	char buf[4096];
	bool eof;
	int c = client_connect(), s;

	send_all(c, "GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
	s = pumped_accept();
	ck_assert_int_ge(s, 0);
	server_read_request(s, buf, sizeof(buf), 0);
	ck_assert_msg(strncmp(buf, "GET /a HTTP/1.1\r\n", 17) == 0, "%s", buf);
	ck_assert_ptr_nonnull(strstr(buf, "X-Forwarded-For: "));
	send_all(s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
	pumped_read(c, buf, sizeof(buf), 40, &eof);
	ck_assert_msg(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", buf);
	ck_assert_msg(strstr(buf, "\r\n\r\nhi") != NULL, "%s", buf);
	ck_assert(!eof);
	ck_assert_uint_eq(proxy_count(&w), 1);

	send_all(c, "GET /b HTTP/1.1\r\nHost: t\r\n\r\n");
	server_read_request(s, buf, sizeof(buf),
			    0); /* same server connection */
	ck_assert_msg(strncmp(buf, "GET /b HTTP/1.1\r\n", 17) == 0, "%s", buf);
	ck_assert(server_got_nothing()); /* no second connect */
	send_all(s, "HTTP/1.1 204 No Content\r\n\r\n");
	pumped_read(c, buf, sizeof(buf), 25, &eof);
	ck_assert_msg(strncmp(buf, "HTTP/1.1 204 ", 13) == 0, "%s", buf);
	close(c);
	turns(5);
	ck_assert_uint_eq(proxy_count(&w), 0);
	close(s);
}
END_TEST

/* HEAD -> REPLY -> LINGER -> closed: an ambiguous head gets 400 and the
 * connection closes (RFC 9112 §6.3: Content-Length with
 * Transfer-Encoding); nothing reaches a server. */
START_TEST(test_bad_request_closes)
{
	char buf[4096];
	bool eof;
	int c = client_connect();

	send_all(c, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
	pumped_read(c, buf, sizeof(buf), 0, &eof);
	ck_assert_msg(strncmp(buf, "HTTP/1.1 400 ", 13) == 0, "%s", buf);
	ck_assert_ptr_nonnull(strstr(buf, "Connection: close\r\n"));
	ck_assert(eof);
	ck_assert(server_got_nothing());
	close(c);
	turns(5);
	ck_assert_uint_eq(proxy_count(&w), 0);
}
END_TEST

/* PROXY -> REPLY: the server closes before any response byte: 502, and
 * the client's connection is closed after it. */
START_TEST(test_server_closes_early)
{
	char buf[4096];
	bool eof;
	int c = client_connect(), s;

	send_all(c,
		 "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nz");
	s = pumped_accept();
	ck_assert_int_ge(s, 0);
	server_read_request(s, buf, sizeof(buf), 1);
	close(s);
	pumped_read(c, buf, sizeof(buf), 0, &eof);
	ck_assert_msg(strncmp(buf, "HTTP/1.1 502 ", 13) == 0, "%s", buf);
	ck_assert(eof);
	close(c);
}
END_TEST

/* PROXY timer: no response head within response_timeout: 504. */
START_TEST(test_response_timeout)
{
	char buf[4096];
	bool eof;
	int c = client_connect(), s;

	send_all(c, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
	s = pumped_accept();
	ck_assert_int_ge(s, 0);
	server_read_request(s, buf, sizeof(buf), 0);
	pumped_read(c, buf, sizeof(buf), 0, &eof); /* 300 ms, then 504 */
	ck_assert_msg(strncmp(buf, "HTTP/1.1 504 ", 13) == 0, "%s", buf);
	ck_assert(eof);
	close(s);
	close(c);
}
END_TEST

/* A request pipelined behind "Connection: close" is never forwarded
 * (RFC 9112 §9.6): the server sees one request, the client one answer. */
START_TEST(test_nothing_after_close)
{
	char buf[4096];
	bool eof;
	int c = client_connect(), s;

	send_all(c, "GET /1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
		    "GET /2 HTTP/1.1\r\nHost: t\r\n\r\n");
	s = pumped_accept();
	ck_assert_int_ge(s, 0);
	server_read_request(s, buf, sizeof(buf), 0);
	ck_assert_ptr_null(strstr(buf, "GET /2"));
	send_all(s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	pumped_read(c, buf, sizeof(buf), 0, &eof);
	ck_assert_msg(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", buf);
	ck_assert_ptr_null(strstr(buf + 4, "HTTP/1.1"));
	ck_assert(eof);
	turns(20); /* the server connection went back to the idle pool */
	ck_assert_int_eq(recv(s, buf, sizeof(buf), MSG_DONTWAIT), -1);
	ck_assert_int_eq(errno, EAGAIN);
	close(s);
	close(c);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("proxy");
	TCase *tc = tcase_create("state_machine");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_keepalive_both_sides);
	tcase_add_test(tc, test_bad_request_closes);
	tcase_add_test(tc, test_server_closes_early);
	tcase_add_test(tc, test_response_timeout);
	tcase_add_test(tc, test_nothing_after_close);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
