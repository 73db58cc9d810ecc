/*
 * test_config.c: the config loader (config/): scalar forms, every valid
 * form of portcullis.yaml with its defaults and inheritance, and every
 * class of error with its exact "FILE:LINE:COL: message".
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

/* Lines 1-5 and 6-9 of most inline configs. */
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

/* Load yaml (named t.yaml), which must be valid. */

/* Load a file under $PORTCULLIS_TEST_DATA (ctest sets it to t/). */
static struct config *load_file(const char *rel, struct config_errors *errs)
{
	const char *dir = getenv("PORTCULLIS_TEST_DATA");
	char path[4096];

	ck_assert_msg(dir != NULL, "PORTCULLIS_TEST_DATA is not set");
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	return config_load(path, errs);
}

static uint16_t port_of(const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return ntohs(((const struct sockaddr_in *)sa)->sin_port);
}

/* The numeric text of an address, without the port. */
static const char *host_of(const struct sockaddr_storage *sa, char *buf,
			   size_t len)
{
	const void *a =
		sa->ss_family == AF_INET6
			? (const void *)&((const struct sockaddr_in6 *)sa)
				  ->sin6_addr
			: (const void *)&((const struct sockaddr_in *)sa)
				  ->sin_addr;

	return inet_ntop(sa->ss_family, a, buf, (socklen_t)len);
}

/* ---- scalar forms ----------------------------------------------------- */

START_TEST(test_parse_duration)
{
	static const struct {
		const char *s;
		uint32_t ms;
	} ok[] = {
		{"500ms", 500},
		{"2s", 2000},
		{"1m", 60000},
		{"1h", 3600000},
		{"7", 7000},
		{"0", 0},
		{"0ms", 0},
		{"0h", 0},
		{"007s", 7000},
		{"4294967295ms", UINT32_MAX},
		{"4294967s", 4294967000u},
		{"71582m", 4294920000u},
		{"1193h", 4294800000u},
	};
	static const char *const bad[] = {
		"",
		"-1s",
		"+1s",
		"1.5s",
		"1d",
		"s",
		"ms",
		"1 s",
		" 1s",
		"1s ",
		"1S",
		"1MS",
		"1m30s",
		"1sec",
		"0x10",
		"4294967296ms",
		"4294968s",
		"71583m",
		"1194h",
		"4294968",
		"99999999999999999999999",
		"99999999999999999999999ms",
	};
	uint32_t ms;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ms = 12345;
		ck_assert_msg(config_parse_duration(ok[i].s, &ms) == 0, "%s",
			      ok[i].s);
		ck_assert_msg(ms == ok[i].ms, "%s: %u", ok[i].s, ms);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(config_parse_duration(bad[i], &ms) == -1,
			      "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(test_parse_size)
{
	static const struct {
		const char *s;
		uint64_t bytes;
	} ok[] = {
		{"512", 512},
		{"0", 0},
		{"0k", 0},
		{"16k", 16384},
		{"16K", 16384},
		{"10m", 10485760},
		{"10M", 10485760},
		{"1g", 1073741824},
		{"1G", 1073741824},
		{"18446744073709551615", UINT64_MAX},
		{"17179869183g", 17179869183ULL << 30},
		{"18014398509481983k", 18014398509481983ULL << 10},
	};
	static const char *const bad[] = {
		"",
		"k",
		"-1",
		"+1",
		"1.5k",
		"1kb",
		"1KB",
		"1t",
		"1b",
		" 1k",
		"1k ",
		"1 k",
		"0x10",
		"18446744073709551616",
		"17179869184g",
		"18014398509481984k",
		"99999999999999999999999",
	};
	uint64_t bytes;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		bytes = 12345;
		ck_assert_msg(config_parse_size(ok[i].s, &bytes) == 0, "%s",
			      ok[i].s);
		ck_assert_msg(bytes == ok[i].bytes, "%s: %llu", ok[i].s,
			      (unsigned long long)bytes);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(config_parse_size(bad[i], &bytes) == -1,
			      "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(test_parse_addr)
{
	static const struct {
		const char *s;
		int family;
		const char *host;
		uint16_t port;
	} ok[] = {
		{"1.2.3.4:80", AF_INET, "1.2.3.4", 80},
		{"0.0.0.0:65535", AF_INET, "0.0.0.0", 65535},
		{"*:80", AF_INET, "0.0.0.0", 80},
		{"localhost:8080", AF_INET, "127.0.0.1", 8080},
		{"127.0.0.1:1", AF_INET, "127.0.0.1", 1},
		{"[::1]:8080", AF_INET6, "::1", 8080},
		{"[::]:80", AF_INET6, "::", 80},
		{"[2001:db8::1]:443", AF_INET6, "2001:db8::1", 443},
		{"[::ffff:10.0.0.1]:80", AF_INET6, "::ffff:10.0.0.1", 80},
	};
	static const char *const bad[] = {
		"",
		"1.2.3.4",
		"1.2.3.4:",
		"1.2.3.4:0",
		"1.2.3.4:65536",
		"1.2.3.4:99999",
		"1.2.3.4:123456",
		"1.2.3.4:-1",
		"1.2.3.4:+80",
		"1.2.3.4:80x",
		"1.2.3.4: 80",
		" 1.2.3.4:80",
		"1.2.3:80",
		"256.1.1.1:80",
		":80",
		"*:0",
		"[::1]",
		"[::1]:",
		"[::1]80",
		"::1:80",
		"[]:80",
		"[1.2.3.4]:80",
		"[::1:80",
		"example.com:80",
		"[localhost]:80",
		"*",
		"[*]:80",
	};
	struct sockaddr_storage sa;
	socklen_t salen;
	char buf[INET6_ADDRSTRLEN];
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_msg(config_parse_addr(ok[i].s, &sa, &salen) == 0,
			      "%s", ok[i].s);
		ck_assert_int_eq(sa.ss_family, ok[i].family);
		ck_assert_uint_eq(salen, ok[i].family == AF_INET
						 ? sizeof(struct sockaddr_in)
						 : sizeof(struct sockaddr_in6));
		ck_assert_str_eq(host_of(&sa, buf, sizeof(buf)), ok[i].host);
		ck_assert_uint_eq(port_of(&sa), ok[i].port);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(config_parse_addr(bad[i], &sa, &salen) == -1,
			      "'%s' accepted", bad[i]);
}
END_TEST

/* ---- valid configurations --------------------------------------------- */

START_TEST(test_minimal_defaults)
{
	struct config *cfg = load_ok(LISTENER_WEB BACKEND_APP);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct cfg_listener *l;
	struct cfg_route *r;
	struct cfg_backend *b;
	struct cfg_server *s;

	ck_assert_str_eq(cfg->path, "t.yaml");
	ck_assert_uint_eq(cfg->workers, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
	ck_assert_str_eq(cfg->user, "portcullis");
	ck_assert_str_eq(cfg->group, "portcullis");
	ck_assert_str_eq(cfg->pid_file, "/run/portcullis/portcullis.pid");
	ck_assert_str_eq(cfg->control_socket,
			 "/run/portcullis/portcullis.sock");
	ck_assert_uint_eq(cfg->shutdown_timeout_ms, 30000);
	ck_assert_str_eq(cfg->error_log_path, "stderr");
	ck_assert_int_eq(cfg->error_log_level, CFG_LOG_INFO);
	ck_assert_uint_eq(cfg->defaults.client_header_timeout_ms, 10000);
	ck_assert_uint_eq(cfg->defaults.client_body_timeout_ms, 60000);
	ck_assert_uint_eq(cfg->defaults.keepalive_timeout_ms, 75000);
	ck_assert_uint_eq(cfg->defaults.max_header_size, 32768);
	ck_assert_uint_eq(cfg->defaults.max_body_size, 0);
	ck_assert_uint_eq(cfg->defaults.nhide_response_headers, 2);
	ck_assert_str_eq(cfg->defaults.hide_response_headers[0], "Server");
	ck_assert_str_eq(cfg->defaults.hide_response_headers[1],
			 "X-Powered-By");
	ck_assert(cfg->defaults.forwarded_headers);

	ck_assert_uint_eq(cfg->nlisteners, 1);
	l = &cfg->listeners[0];
	ck_assert_str_eq(l->name, "web");
	ck_assert_int_eq(l->line, 2);
	ck_assert_int_eq(l->col, 5);
	ck_assert_int_eq(l->protocol, CFG_PROTO_HTTP);
	ck_assert(!l->reuseport);
	ck_assert_uint_eq(l->nbinds, 1);
	ck_assert_str_eq(l->binds[0].str, "127.0.0.1:8080");
	ck_assert_int_eq(l->binds[0].line, 3);
	ck_assert_int_eq(l->binds[0].col, 11);
	ck_assert_uint_eq(l->limits.max_header_size, 32768);
	ck_assert_uint_eq(l->limits.nhide_response_headers, 2);
	ck_assert_ptr_null(l->backend);
	ck_assert_uint_eq(l->nroutes, 1);
	r = &l->routes[0];
	ck_assert_uint_eq(r->nhosts, 0);
	ck_assert_str_eq(r->path_prefix, "/");
	ck_assert_str_eq(r->backend_name, "app");
	ck_assert_int_eq(r->line, 5);
	ck_assert_int_eq(r->col, 9);
	ck_assert_uint_eq(r->limits.keepalive_timeout_ms, 75000);

	ck_assert_uint_eq(cfg->nbackends, 1);
	b = config_backend(cfg, "app");
	ck_assert_ptr_eq(b, &cfg->backends[0]);
	ck_assert_ptr_eq(r->backend, b);
	ck_assert_ptr_null(config_backend(cfg, "nope"));
	ck_assert_str_eq(b->name, "app");
	ck_assert_int_eq(b->line, 7);
	ck_assert_int_eq(b->col, 3);
	ck_assert_int_eq(b->balance, CFG_BALANCE_ROUND_ROBIN);
	ck_assert_uint_eq(b->connect_timeout_ms, 5000);
	ck_assert_uint_eq(b->response_timeout_ms, 60000);
	ck_assert_uint_eq(b->retries, 1);
	ck_assert_uint_eq(b->keepalive, 32);
	ck_assert_uint_eq(b->nservers, 1);
	s = &b->servers[0];
	ck_assert_str_eq(s->addr.str, "127.0.0.1:9000");
	ck_assert_uint_eq(port_of(&s->addr.sa), 9000);
	ck_assert_uint_eq(s->weight, 1);
	ck_assert(!s->backup);
	ck_assert_uint_eq(s->max_connections, 0);
	config_free(cfg);
}
END_TEST

START_TEST(test_full_fixture)
{
	struct config_errors errs = {0};
	struct config *cfg = load_file("data/config/valid_full.yaml", &errs);
	struct cfg_listener *web, *db;
	struct cfg_route *r;
	struct cfg_backend *b;
	char buf[INET6_ADDRSTRLEN];

	ck_assert_msg(cfg != NULL, "%s", errs.count ? errs.msgs[0] : "");
	ck_assert_uint_eq(cfg->workers, 3);
	ck_assert_str_eq(cfg->user, "www-data");
	ck_assert_str_eq(cfg->pid_file, "/tmp/p.pid");
	ck_assert_str_eq(cfg->control_socket, "/tmp/p.sock");
	ck_assert_uint_eq(cfg->shutdown_timeout_ms, 60000);
	ck_assert_str_eq(cfg->error_log_path, "/var/log/portcullis/error.log");
	ck_assert_int_eq(cfg->error_log_level, CFG_LOG_WARN);
	ck_assert_uint_eq(cfg->defaults.client_header_timeout_ms, 500);
	ck_assert_uint_eq(cfg->defaults.client_body_timeout_ms, 120000);
	ck_assert_uint_eq(cfg->defaults.keepalive_timeout_ms, 3600000);
	ck_assert_uint_eq(cfg->defaults.max_header_size, 16384);
	ck_assert_uint_eq(cfg->defaults.max_body_size, 1ULL << 30);
	ck_assert_uint_eq(cfg->defaults.nhide_response_headers, 3);
	ck_assert_str_eq(cfg->defaults.hide_response_headers[2],
			 "X-AspNet-Version");
	ck_assert(!cfg->defaults.forwarded_headers);

	ck_assert_uint_eq(cfg->nlisteners, 2);
	web = &cfg->listeners[0];
	ck_assert(!web->reuseport);
	ck_assert_uint_eq(web->nbinds, 2);
	ck_assert_int_eq(web->binds[0].sa.ss_family, AF_INET);
	ck_assert_int_eq(web->binds[1].sa.ss_family, AF_INET6);
	ck_assert_str_eq(web->binds[1].str, "[::]:80");
	ck_assert_uint_eq(port_of(&web->binds[1].sa), 80);
	/* Inherited from defaults, except what the listener overrides. */
	ck_assert_uint_eq(web->limits.client_header_timeout_ms, 500);
	ck_assert_uint_eq(web->limits.keepalive_timeout_ms, 5000);
	ck_assert_uint_eq(web->limits.nhide_response_headers, 3);
	ck_assert(!web->limits.forwarded_headers);
	ck_assert_uint_eq(web->nroutes, 2);
	r = &web->routes[0];
	ck_assert_uint_eq(r->nhosts, 2);
	ck_assert_str_eq(r->hosts[0], "example.com");
	ck_assert_str_eq(r->hosts[1], "*.example.com");
	ck_assert_str_eq(r->path_prefix, "/api/");
	ck_assert_ptr_eq(r->backend, config_backend(cfg, "api"));
	ck_assert_uint_eq(r->limits.max_body_size, 10 << 20);
	ck_assert_uint_eq(r->limits.client_body_timeout_ms, 30000);
	ck_assert_uint_eq(r->limits.keepalive_timeout_ms, 5000);
	ck_assert_uint_eq(r->limits.max_header_size, 16384);
	ck_assert_uint_eq(r->limits.nhide_response_headers, 3);
	r = &web->routes[1];
	ck_assert_uint_eq(r->nhosts, 1);
	ck_assert_str_eq(r->hosts[0], "www.example.org");
	ck_assert_uint_eq(r->limits.max_body_size, 1ULL << 30);
	ck_assert_uint_eq(r->limits.client_body_timeout_ms, 120000);

	db = &cfg->listeners[1];
	ck_assert_int_eq(db->protocol, CFG_PROTO_TCP);
	ck_assert_uint_eq(db->nroutes, 0);
	ck_assert_str_eq(db->backend_name, "db");
	ck_assert_ptr_eq(db->backend, config_backend(cfg, "db"));
	ck_assert_str_eq(host_of(&db->binds[0].sa, buf, sizeof(buf)),
			 "0.0.0.0");

	b = config_backend(cfg, "web");
	ck_assert_uint_eq(b->connect_timeout_ms, 1000);
	ck_assert_uint_eq(b->response_timeout_ms, 120000);
	ck_assert_uint_eq(b->retries, 0);
	ck_assert_uint_eq(b->keepalive, 0);
	ck_assert_uint_eq(b->nservers, 2);
	ck_assert_uint_eq(b->servers[1].weight, 1000);
	ck_assert(b->servers[1].backup);
	ck_assert_uint_eq(b->servers[1].max_connections, 0);
	ck_assert_str_eq(host_of(&b->servers[1].addr.sa, buf, sizeof(buf)),
			 "2001:db8::1");
	b = config_backend(cfg, "api");
	ck_assert_uint_eq(b->servers[0].weight, 3);
	ck_assert_str_eq(host_of(&b->servers[0].addr.sa, buf, sizeof(buf)),
			 "127.0.0.1");
	b = config_backend(cfg, "db");
	ck_assert_uint_eq(b->retries, 16);
	ck_assert_uint_eq(b->keepalive, 10000);
	config_free(cfg);
}
END_TEST

START_TEST(test_shipped_configs)
{
	struct config_errors errs = {0};
	struct config *cfg;

	cfg = load_file("../config/demo.yaml", &errs);
	ck_assert_msg(cfg != NULL, "%s", errs.count ? errs.msgs[0] : "");
	ck_assert_uint_eq(cfg->workers, 2);
	ck_assert_str_eq(cfg->user, "nobody");
	ck_assert_str_eq(cfg->group, "nogroup");
	ck_assert_str_eq(cfg->pid_file, "/tmp/portcullis-demo.pid");
	ck_assert_str_eq(cfg->control_socket, "/tmp/portcullis-demo.sock");
	ck_assert_uint_eq(cfg->shutdown_timeout_ms, 5000);
	ck_assert_uint_eq(cfg->nlisteners, 1);
	ck_assert_str_eq(cfg->listeners[0].name, "web");
	ck_assert_uint_eq(cfg->listeners[0].nbinds, 2);
	ck_assert_str_eq(cfg->listeners[0].binds[0].str, "127.0.0.1:8080");
	ck_assert_str_eq(cfg->listeners[0].binds[1].str, "[::1]:8080");
	ck_assert_ptr_eq(cfg->listeners[0].routes[0].backend,
			 config_backend(cfg, "demo"));
	ck_assert_uint_eq(config_backend(cfg, "demo")->nservers, 2);
	config_free(cfg);

	cfg = load_file("../config/portcullis.yaml", &errs);
	ck_assert_msg(cfg != NULL, "%s", errs.count ? errs.msgs[0] : "");
	ck_assert_str_eq(cfg->user, "portcullis");
	ck_assert_uint_eq(cfg->nbackends, 3);
	config_free(cfg);

	/* the Debian package's /etc/portcullis/portcullis.yaml: serves nothing */
	cfg = load_file("../config/default.yaml", &errs);
	ck_assert_msg(cfg != NULL, "%s", errs.count ? errs.msgs[0] : "");
	ck_assert_uint_eq(cfg->nlisteners, 0);
	ck_assert_uint_eq(cfg->nbackends, 0);
	ck_assert_str_eq(cfg->user, "portcullis");
	ck_assert_str_eq(cfg->control_socket, "/run/portcullis/portcullis.sock");
	config_free(cfg);

	cfg = load_file("data/config/valid_minimal.yaml", &errs);
	ck_assert_msg(cfg != NULL, "%s", errs.count ? errs.msgs[0] : "");
	config_free(cfg);
	ck_assert_uint_eq(errs.count, 0);
}
END_TEST

/*
 * "listeners: []" with "backends: {}" is a master that serves nothing
 * (the package's default file); a route still needs a defined backend,
 * and leaving either key out is still an error.
 */
START_TEST(test_empty_config)
{
	struct config *cfg = load_ok("listeners: []\nbackends: {}\n");

	ck_assert_uint_eq(cfg->nlisteners, 0);
	ck_assert_uint_eq(cfg->nbackends, 0);
	ck_assert_ptr_null(config_backend(cfg, "app"));
	config_free(cfg);
	cfg = load_ok("listeners: []\n" BACKEND_APP);
	ck_assert_uint_eq(cfg->nbackends, 1);
	config_free(cfg);
	EXPECT_ERROR(LISTENER_WEB "backends: {}\n",
		     "t.yaml:5:18: undefined backend 'app'");
	EXPECT_ERROR("backends: {}\n",
		     "t.yaml:1:1: missing required key 'listeners'");
	EXPECT_ERROR("listeners: []\n",
		     "t.yaml:1:1: missing required key 'backends'");
}
END_TEST

/* control_socket_group: a group of this system, resolved at load. */
START_TEST(test_control_socket_group)
{
	struct config *cfg = load_ok(LISTENER_WEB BACKEND_APP);

	ck_assert_ptr_null(cfg->control_socket_group);
	ck_assert_uint_eq(cfg->control_socket_gid, (gid_t)-1);
	config_free(cfg);
	cfg = load_ok("control_socket_group: root\n" LISTENER_WEB BACKEND_APP);
	ck_assert_str_eq(cfg->control_socket_group, "root");
	ck_assert_uint_eq(cfg->control_socket_gid, 0);
	config_free(cfg);
	cfg = load_ok("control_socket_group: \"\"\n" LISTENER_WEB BACKEND_APP);
	ck_assert_ptr_null(cfg->control_socket_group);
	ck_assert_uint_eq(cfg->control_socket_gid, (gid_t)-1);
	config_free(cfg);
	EXPECT_ERROR("control_socket_group: pc-no-such-group\n" LISTENER_WEB
		     BACKEND_APP,
		     "t.yaml:1:23: 'control_socket_group': no group "
		     "'pc-no-such-group' on this system");
	EXPECT_ERROR("control_socket_group: [adm]\n" LISTENER_WEB BACKEND_APP,
		     "t.yaml:1:23: 'control_socket_group' must be a string");
	EXPECT_ERROR("control_socket_grup: adm\n" LISTENER_WEB BACKEND_APP,
		     "t.yaml:1:1: unknown key 'control_socket_grup'; did you "
		     "mean 'control_socket_group'?");
}
END_TEST

START_TEST(test_bind_forms)
{
	struct config *cfg =
		load_ok("listeners:\n"
			"  - name: a\n"
			"    bind: \"[::1]:8080\"\n"
			"    routes: [{backend: app}]\n"
			"  - name: b\n"
			"    bind:\n"
			"      - 127.0.0.1:8081\n"
			"      - \"[2001:db8::1]:8081\"\n"
			"      - localhost:8082\n"
			"    routes: [{backend: app}]\n" BACKEND_APP);
	struct cfg_listener *b = &cfg->listeners[1];

	ck_assert_uint_eq(cfg->listeners[0].nbinds, 1);
	ck_assert_int_eq(cfg->listeners[0].binds[0].sa.ss_family, AF_INET6);
	ck_assert_uint_eq(b->nbinds, 3);
	ck_assert_str_eq(b->binds[1].str, "[2001:db8::1]:8081");
	ck_assert_int_eq(b->binds[1].sa.ss_family, AF_INET6);
	ck_assert_int_eq(b->binds[1].line, 8);
	ck_assert_int_eq(b->binds[1].col, 9);
	ck_assert_uint_eq(port_of(&b->binds[2].sa), 8082);
	config_free(cfg);
}
END_TEST

START_TEST(test_workers_and_bools)
{
	struct config *cfg;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	cfg = load_ok("workers: auto\n" LISTENER_WEB BACKEND_APP);
	ck_assert_uint_eq(cfg->workers, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
	config_free(cfg);
	cfg = load_ok("workers: 256\n" LISTENER_WEB BACKEND_APP);
	ck_assert_uint_eq(cfg->workers, 256);
	config_free(cfg);
	cfg = load_ok("workers: 1\n"
		      "defaults: {forwarded_headers: off}\n" LISTENER_WEB
		      "    reuseport: no\n" BACKEND_APP
		      "        backup: True\n");
	ck_assert_uint_eq(cfg->workers, 1);
	ck_assert(!cfg->defaults.forwarded_headers);
	ck_assert(!cfg->listeners[0].reuseport);
	ck_assert(cfg->backends[0].servers[0].backup);
	config_free(cfg);
	cfg = load_ok(LISTENER_WEB "    reuseport: yes\n" BACKEND_APP);
	ck_assert(cfg->listeners[0].reuseport);
	config_free(cfg);
}
END_TEST

START_TEST(test_units_in_config)
{
	struct config *cfg = load_ok("shutdown_timeout: 0\n"
				     "defaults:\n"
				     "  client_header_timeout: 250ms\n"
				     "  client_body_timeout: 3\n"
				     "  keepalive_timeout: 2h\n"
				     "  max_header_size: 1m\n"
				     "  max_body_size: 512\n" LISTENER_WEB
				     "    max_header_size: 1k\n"
				     "    max_body_size: 4K\n" BACKEND_APP
				     "    connect_timeout: 90s\n"
				     "    response_timeout: 10m\n");

	ck_assert_uint_eq(cfg->shutdown_timeout_ms, 0);
	ck_assert_uint_eq(cfg->defaults.client_header_timeout_ms, 250);
	ck_assert_uint_eq(cfg->defaults.client_body_timeout_ms, 3000);
	ck_assert_uint_eq(cfg->defaults.keepalive_timeout_ms, 7200000);
	ck_assert_uint_eq(cfg->defaults.max_header_size, 1 << 20);
	ck_assert_uint_eq(cfg->defaults.max_body_size, 512);
	ck_assert_uint_eq(cfg->listeners[0].limits.max_header_size, 1024);
	ck_assert_uint_eq(cfg->listeners[0].limits.max_body_size, 4096);
	/* routes were written before the listener's overrides */
	ck_assert_uint_eq(cfg->listeners[0].routes[0].limits.max_body_size,
			  4096);
	ck_assert_uint_eq(cfg->backends[0].connect_timeout_ms, 90000);
	ck_assert_uint_eq(cfg->backends[0].response_timeout_ms, 600000);
	config_free(cfg);
}
END_TEST

START_TEST(test_inheritance)
{
	struct config *cfg = load_ok("defaults:\n"
				     "  client_header_timeout: 5s\n"
				     "  max_body_size: 1m\n"
				     "  hide_response_headers: [X-A]\n"
				     "listeners:\n"
				     "  - name: web\n"
				     "    bind: 127.0.0.1:8080\n"
				     "    client_body_timeout: 7s\n"
				     "    max_body_size: 2m\n"
				     "    routes:\n"
				     "      - backend: app\n"
				     "        max_body_size: 3m\n"
				     "      - backend: app\n"
				     "        client_body_timeout: 500ms\n"
				     "        host: WWW.Example.COM\n"
				     "    hide_response_headers: []\n"
				     "  - name: other\n"
				     "    bind: 127.0.0.1:8081\n"
				     "    routes:\n"
				     "      - backend: app\n" BACKEND_APP);
	struct cfg_listener *l = &cfg->listeners[0], *o = &cfg->listeners[1];

	ck_assert_uint_eq(l->limits.client_header_timeout_ms, 5000);
	ck_assert_uint_eq(l->limits.client_body_timeout_ms, 7000);
	ck_assert_uint_eq(l->limits.max_body_size, 2 << 20);
	ck_assert_uint_eq(l->limits.nhide_response_headers, 0);
	ck_assert_uint_eq(l->routes[0].limits.max_body_size, 3 << 20);
	ck_assert_uint_eq(l->routes[0].limits.client_body_timeout_ms, 7000);
	ck_assert_uint_eq(l->routes[0].limits.client_header_timeout_ms, 5000);
	ck_assert_uint_eq(l->routes[0].limits.nhide_response_headers, 0);
	ck_assert_uint_eq(l->routes[1].limits.max_body_size, 2 << 20);
	ck_assert_uint_eq(l->routes[1].limits.client_body_timeout_ms, 500);
	ck_assert_str_eq(l->routes[1].hosts[0], "www.example.com");
	ck_assert_uint_eq(o->limits.max_body_size, 1 << 20);
	ck_assert_uint_eq(o->limits.client_body_timeout_ms, 60000);
	ck_assert_uint_eq(o->limits.nhide_response_headers, 1);
	ck_assert_str_eq(o->limits.hide_response_headers[0], "X-A");
	ck_assert_uint_eq(o->routes[0].limits.nhide_response_headers, 1);
	/* copies, not shared: each is freed on its own */
	ck_assert_ptr_ne(o->limits.hide_response_headers[0],
			 cfg->defaults.hide_response_headers[0]);
	config_free(cfg);
}
END_TEST

START_TEST(test_off_forms_and_aliases)
{
	/* Unsupported keys in their "off" form ask for nothing: accepted. */
	struct config *cfg = load_ok("admin: off\n"
				     "user: &u www\n"
				     "group: *u\n"
				     "log:\n"
				     "  access: {path: off, format: combined}\n"
				     "listeners:\n"
				     "  - name: web\n"
				     "    bind: 127.0.0.1:8080\n"
				     "    proxy_protocol: false\n"
				     "    trusted_proxies: []\n"
				     "    allow: []\n"
				     "    deny: []\n"
				     "    max_connections_per_client: 0\n"
				     "    routes:\n"
				     "      - backend: app\n"
				     "        rate_limit: {}\n" BACKEND_APP
				     "    proxy_protocol: off\n"
				     "    passive: {}\n");

	ck_assert_str_eq(cfg->group, "www");
	config_free(cfg);
}
END_TEST

/* trusted_proxies: addresses and CIDRs; worker_connections: a count. */
START_TEST(test_trusted_proxies_and_worker_connections)
{
	struct config *cfg = load_ok("worker_connections: 500\n"
				     "listeners:\n"
				     "  - name: web\n"
				     "    bind: 127.0.0.1:8080\n"
				     "    trusted_proxies: [10.0.0.0/8, \"::1\", "
				     "192.168.1.7]\n"
				     "    routes:\n"
				     "      - backend: app\n" BACKEND_APP);

	ck_assert_uint_eq(cfg->worker_connections, 500);
	ck_assert_uint_eq(cfg->listeners[0].ntrusted_proxies, 3);
	ck_assert_int_eq(cfg->listeners[0].trusted_proxies[0].cd_prefix, 8);
	ck_assert_int_eq(cfg->listeners[0].trusted_proxies[1].cd_family,
			 AF_INET6);
	ck_assert_int_eq(cfg->listeners[0].trusted_proxies[2].cd_prefix, 32);
	config_free(cfg);
	cfg = load_ok(LISTENER_WEB BACKEND_APP);
	ck_assert_uint_eq(cfg->worker_connections, 10000);
	ck_assert_uint_eq(cfg->listeners[0].ntrusted_proxies, 0);
	config_free(cfg);
}
END_TEST

START_TEST(test_err_trusted_proxies_and_worker_connections)
{
	EXPECT_ERROR("listeners:\n"
		     "  - name: web\n"
		     "    bind: 127.0.0.1:8080\n"
		     "    trusted_proxies: [10.0.0.0/33]\n"
		     "    routes:\n"
		     "      - backend: app\n" BACKEND_APP,
		     "t.yaml:4:23: '10.0.0.0/33' is not an address or CIDR "
		     "(like 10.0.0.0/8 or ::1/128)");
	EXPECT_ERROR("listeners:\n"
		     "  - name: web\n"
		     "    bind: 127.0.0.1:8080\n"
		     "    trusted_proxies: 10.0.0.0/8\n"
		     "    routes:\n"
		     "      - backend: app\n" BACKEND_APP,
		     "t.yaml:4:22: 'trusted_proxies' must be a list of "
		     "addresses or CIDRs");
	EXPECT_ERROR("worker_connections: 0\n" LISTENER_WEB BACKEND_APP,
		     "t.yaml:1:21: 'worker_connections' must be between 1 and "
		     "1000000");
}
END_TEST

/* balance, hash_key, health_check and passive (issue 4). */
START_TEST(test_balancing_and_health)
{
	struct config *cfg = load_ok(
		LISTENER_WEB "backends:\n"
			     "  app:\n"
			     "    balance: hash\n"
			     "    hash_key: header:X-User\n"
			     "    passive: {max_fails: 5, fail_timeout: 30s}\n"
			     "    health_check:\n"
			     "      type: http\n"
			     "      path: /healthz\n"
			     "      expect_status: [200, 204]\n"
			     "      body: ok\n"
			     "      interval: 500ms\n"
			     "      timeout: 200ms\n"
			     "      rise: 1\n"
			     "      fall: 2\n"
			     "    servers:\n"
			     "      - {address: 127.0.0.1:9000, max_connections: 8}\n");
	const struct cfg_backend *b = &cfg->backends[0];

	ck_assert_int_eq(b->balance, CFG_BALANCE_HASH);
	ck_assert_int_eq(b->hash_key, CFG_HASH_HEADER);
	ck_assert_str_eq(b->hash_header, "X-User");
	ck_assert_uint_eq(b->max_fails, 5);
	ck_assert_uint_eq(b->fail_timeout_ms, 30000);
	ck_assert_int_eq(b->health.type, CFG_CHECK_HTTP);
	ck_assert_str_eq(b->health.path, "/healthz");
	ck_assert_str_eq(b->health.body, "ok");
	ck_assert_uint_eq(b->health.nexpect_status, 2);
	ck_assert_uint_eq(b->health.expect_status[1], 204);
	ck_assert_uint_eq(b->health.interval_ms, 500);
	ck_assert_uint_eq(b->health.timeout_ms, 200);
	ck_assert_uint_eq(b->health.rise, 1);
	ck_assert_uint_eq(b->health.fall, 2);
	ck_assert_uint_eq(b->servers[0].max_connections, 8);
	config_free(cfg);

	cfg = load_ok(LISTENER_WEB BACKEND_APP "    health_check: {}\n"
					       "    balance: least_conn\n");
	b = &cfg->backends[0];
	ck_assert_int_eq(b->balance, CFG_BALANCE_LEAST_CONN);
	ck_assert_int_eq(b->health.type, CFG_CHECK_TCP);
	ck_assert_uint_eq(b->health.interval_ms, 2000);
	ck_assert_uint_eq(b->health.timeout_ms, 1000);
	ck_assert_uint_eq(b->health.rise, 2);
	ck_assert_uint_eq(b->health.fall, 3);
	ck_assert_uint_eq(b->max_fails, 3);
	ck_assert_uint_eq(b->fail_timeout_ms, 10000);
	config_free(cfg);
	cfg = load_ok(LISTENER_WEB BACKEND_APP);
	ck_assert_int_eq(cfg->backends[0].health.type, CFG_CHECK_NONE);
	config_free(cfg);
}
END_TEST

START_TEST(test_err_balancing_and_health)
{
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP "    hash_key: uri\n",
		     "t.yaml:10:5: 'hash_key' is only used with balance: hash");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP "    balance: hash\n"
					      "    hash_key: cookie\n",
		     "t.yaml:11:15: 'hash_key' must be client_ip, uri or "
		     "header:NAME");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP
		     "    health_check: {type: udp}\n",
		     "t.yaml:10:26: 'type' must be tcp or http");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP
		     "    health_check: {interval: 1s, timeout: 2s}\n",
		     "t.yaml:10:19: health_check: 'timeout' must not be longer "
		     "than 'interval'");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP
		     "    health_check: {expect_status: [200, 600]}\n",
		     "t.yaml:10:41: '600' is not a status code (100..599)");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP
		     "    health_check: {type: http, path: healthz}\n",
		     "t.yaml:10:38: 'path' must be a path starting with /");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP "    passive: {max_fail: 2}\n",
		     "t.yaml:10:15: unknown key 'max_fail'; did you mean "
		     "'max_fails'?");
}
END_TEST

/* ---- errors ----------------------------------------------------------- */

START_TEST(test_err_unknown_keys)
{
	EXPECT_ERROR("listner: []\n" LISTENER_WEB BACKEND_APP,
		     "t.yaml:1:1: unknown key 'listner'; did you mean "
		     "'listeners'?");
	EXPECT_ERROR("USER: x\n" LISTENER_WEB BACKEND_APP,
		     "t.yaml:1:1: unknown key 'USER'; did you mean 'user'?");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP "frobnicate: 1\n",
		     "t.yaml:10:1: unknown key 'frobnicate'");
	EXPECT_ERRORS("listeners:\n"
		      "  - name: web\n"
		      "    bnd: 127.0.0.1:80\n"
		      "    routes:\n"
		      "      - backend: app\n"
		      "        path_prefx: /x\n" BACKEND_APP
		      "    conect_timeout: 2s\n",
		      "t.yaml:2:5: listener: missing required key 'bind'",
		      "t.yaml:3:5: unknown key 'bnd'; did you mean 'bind'?",
		      "t.yaml:6:9: unknown key 'path_prefx'; did you mean "
		      "'path_prefix'?",
		      "t.yaml:11:5: unknown key 'conect_timeout'; did you mean "
		      "'connect_timeout'?");
	EXPECT_ERROR("log:\n"
		     "  eror: {level: info}\n" LISTENER_WEB BACKEND_APP,
		     "t.yaml:2:3: unknown key 'eror'; did you mean 'error'?");
}
END_TEST

/* admin: off by default and when false; loopback only unless allow: */
START_TEST(test_admin)
{
	struct config *cfg = load_ok(LISTENER_WEB BACKEND_APP);
	struct sockaddr_storage lo = {0}, other = {0};

	ck_assert_ptr_null(cfg->admin.bind.str);
	config_free(cfg);
	cfg = load_ok("admin: false\n" LISTENER_WEB BACKEND_APP);
	ck_assert_ptr_null(cfg->admin.bind.str);
	config_free(cfg);
	lo.ss_family = other.ss_family = AF_INET;
	((struct sockaddr_in *)&lo)->sin_addr.s_addr = htonl(0x7f000002);
	((struct sockaddr_in *)&other)->sin_addr.s_addr = htonl(0x0a000001);
	cfg = load_ok("admin: {bind: 127.0.0.1:9901}\n" LISTENER_WEB
		      BACKEND_APP);
	ck_assert_str_eq(cfg->admin.bind.str, "127.0.0.1:9901");
	ck_assert(iptree_match(cfg->admin.acl.allow, &lo));
	ck_assert(!iptree_match(cfg->admin.acl.allow, &other));
	config_free(cfg);
	cfg = load_ok("admin: {bind: \"[::1]:9901\", allow: [10.0.0.0/8]}\n"
		      LISTENER_WEB BACKEND_APP);
	ck_assert(!iptree_match(cfg->admin.acl.allow, &lo));
	ck_assert(iptree_match(cfg->admin.acl.allow, &other));
	config_free(cfg);
}
END_TEST

START_TEST(test_err_admin)
{
	EXPECT_ERROR("admin:\n"
		     "  allow: [127.0.0.1]\n" LISTENER_WEB BACKEND_APP,
		     "t.yaml:2:3: 'admin' needs 'bind' (host:port)");
	EXPECT_ERROR("admin: {bind: 127.0.0.1:99999}\n" LISTENER_WEB
		     BACKEND_APP,
		     "t.yaml:1:15: '127.0.0.1:99999' is not a valid address "
		     "(host:port or [v6]:port)");
	EXPECT_ERROR("admin: {bind: 127.0.0.1:9901, alow: []}\n" LISTENER_WEB
		     BACKEND_APP,
		     "t.yaml:1:31: unknown key 'alow'; did you mean 'allow'?");
	EXPECT_ERROR("admin: yes\n" LISTENER_WEB BACKEND_APP,
		     "t.yaml:1:8: 'admin' must be a mapping {bind, allow} or "
		     "false");
	/* never on a proxied listener's port */
	EXPECT_ERROR("admin: {bind: 127.0.0.1:8080}\n" LISTENER_WEB
		     BACKEND_APP,
		     "t.yaml:1:15: admin bind 127.0.0.1:8080: listener web "
		     "binds 127.0.0.1:8080 on the same port; the admin "
		     "endpoint needs its own");
	EXPECT_ERROR("admin: {bind: \"*:8080\"}\n" LISTENER_WEB BACKEND_APP,
		     "t.yaml:1:15: admin bind *:8080: listener web binds "
		     "127.0.0.1:8080 on the same port; the admin endpoint "
		     "needs its own");
}
END_TEST

START_TEST(test_err_unsupported)
{
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP "    balance: fastest\n",
		     "t.yaml:10:14: 'balance' must be one of round_robin, "
		     "least_conn, random_two, hash");
	EXPECT_ERROR("user: root\n" LISTENER_WEB BACKEND_APP,
		     "t.yaml:1:7: 'user' is root: workers that parse what "
		     "clients send would run with every privilege; set "
		     "allow_root_workers: true to mean it");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP "    panic_threshold: 150%\n",
		     "t.yaml:10:22: 'panic_threshold' must be a percentage "
		     "from 0% to 100%");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP "    panic_threshold: half\n",
		     "t.yaml:10:22: 'panic_threshold' must be a percentage "
		     "from 0% to 100%");
	EXPECT_ERROR(
		"log:\n"
		"  access: {path: var/log/a.log}\n" LISTENER_WEB BACKEND_APP,
		"t.yaml:2:18: 'path' must be off, stderr, syslog or an "
		"absolute path");
	EXPECT_ERROR(
		"log:\n"
		"  access: {path: stderr, format: clf}\n" LISTENER_WEB BACKEND_APP,
		"t.yaml:2:34: 'format' must be combined or json");
}
END_TEST

/*
 * Issue #14 item 4: a scalar anchor used many times costs nothing in the
 * file and a copy per use in the config.  A 64 KiB anchor used 200 times
 * (12.8 MB once expanded) is refused at the anchor, quickly; the same
 * anchor used 3 times loads.
 */
static char *alias_yaml(size_t len, unsigned uses)
{
	size_t cap = len + 8 * (size_t)uses + 512;
	char *y = malloc(cap), *p = y;

	ck_assert_ptr_nonnull(y);
	p += sprintf(p, "defaults:\n  hide_response_headers: [&a ");
	memset(p, 'X', len);
	p += len;
	for (unsigned i = 1; i < uses; i++)
		p += sprintf(p, ", *a");
	sprintf(p, "]\n" LISTENER_WEB BACKEND_APP);
	return y;
}

START_TEST(test_alias_expansion_bounded)
{
	char *y = alias_yaml(65536, 200);
	struct config *cfg;

	EXPECT_ERROR(y, "t.yaml:2:27: this scalar of 65536 bytes is used 200 "
			"times through aliases: the configuration would expand "
			"past 8 MiB");
	free(y);
	y = alias_yaml(64, 3);
	cfg = load_ok(y);
	ck_assert_uint_eq(cfg->defaults.nhide_response_headers, 3);
	config_free(cfg);
	free(y);
}
END_TEST

/* More servers than the zone has slots: refused by -t, where written. */
START_TEST(test_zone_capacity)
{
	size_t cap = 200 + 4100 * 40;
	char *y = malloc(cap), *p = y;
	struct config_errors errs = {0};
	struct config *cfg;

	ck_assert_ptr_nonnull(y);
	p += sprintf(p, LISTENER_WEB "backends:\n  app:\n    servers:\n");
	for (int i = 0; i < 4097; i++)
		p += sprintf(p, "      - address: 10.%d.%d.1:80\n", i / 256,
			     i % 256);
	cfg = config_load_string("t.yaml", y, &errs);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(errs.count, 1);
	ck_assert_str_eq(errs.msgs[0], "t.yaml:6:1: 4097 servers in all: the "
				       "shared-memory zone holds 4096");
	config_errors_clear(&errs);
	free(y);
}
END_TEST

/* panic_threshold: 50% by default; "N%" or a bare N; 0 turns it off. */
START_TEST(test_panic_threshold)
{
	struct config *cfg = load_ok("user: root\nallow_root_workers: true\n"
				     LISTENER_WEB BACKEND_APP);

	ck_assert(cfg->allow_root_workers); /* root only when meant */
	config_free(cfg);
	cfg = load_ok(LISTENER_WEB BACKEND_APP);

	ck_assert_uint_eq(cfg->backends[0].panic_threshold, 50);
	config_free(cfg);
	cfg = load_ok(LISTENER_WEB BACKEND_APP "    panic_threshold: 0%\n");
	ck_assert_uint_eq(cfg->backends[0].panic_threshold, 0);
	config_free(cfg);
	cfg = load_ok(LISTENER_WEB BACKEND_APP "    panic_threshold: 75\n");
	ck_assert_uint_eq(cfg->backends[0].panic_threshold, 75);
	config_free(cfg);
}
END_TEST

/* log.access: off by default; a path or stderr with either format. */
START_TEST(test_access_log)
{
	struct config *cfg = load_ok(LISTENER_WEB BACKEND_APP);

	ck_assert_ptr_null(cfg->access_log_path);
	config_free(cfg);
	cfg = load_ok("log:\n"
		      "  access: {path: /var/log/a.log, format: json}\n"
		      LISTENER_WEB BACKEND_APP);
	ck_assert_str_eq(cfg->access_log_path, "/var/log/a.log");
	ck_assert_int_eq(cfg->access_log_format, CFG_ACCESS_JSON);
	config_free(cfg);
	cfg = load_ok("log: {access: {path: stderr}}\n" LISTENER_WEB BACKEND_APP);
	ck_assert_str_eq(cfg->access_log_path, "stderr");
	ck_assert_int_eq(cfg->access_log_format, CFG_ACCESS_COMBINED);
	config_free(cfg);
}
END_TEST

START_TEST(test_err_types)
{
	EXPECT_ERROR(
		"workers: many\n" LISTENER_WEB BACKEND_APP,
		"t.yaml:1:10: 'workers' must be 'auto' or an integer 1..256");
	EXPECT_ERROR(
		"workers: 0\n" LISTENER_WEB BACKEND_APP,
		"t.yaml:1:10: 'workers' must be 'auto' or an integer 1..256");
	EXPECT_ERROR(
		"workers: 257\n" LISTENER_WEB BACKEND_APP,
		"t.yaml:1:10: 'workers' must be 'auto' or an integer 1..256");
	EXPECT_ERROR("user: [a]\n" LISTENER_WEB BACKEND_APP,
		     "t.yaml:1:7: 'user' must be a string");
	EXPECT_ERROR("group:\n" LISTENER_WEB BACKEND_APP,
		     "t.yaml:1:7: 'group' must not be empty");
	EXPECT_ERROR("pid_file: run/p.pid\n" LISTENER_WEB BACKEND_APP,
		     "t.yaml:1:11: 'pid_file' must be an absolute path");
	EXPECT_ERROR("log: 5\n" LISTENER_WEB BACKEND_APP,
		     "t.yaml:1:6: log: expected a mapping");
	EXPECT_ERRORS(
		"log:\n"
		"  error:\n"
		"    level: loud\n"
		"    path: error.log\n" LISTENER_WEB BACKEND_APP,
		"t.yaml:3:12: 'level' must be one of debug, info, notice, "
		"warn, error",
		"t.yaml:4:11: 'path' must be stderr, syslog or an absolute "
		"path");
	EXPECT_ERROR(
		"log:\n"
		"  error: {path: error.log}\n" LISTENER_WEB BACKEND_APP,
		"t.yaml:2:17: 'path' must be stderr, syslog or an absolute "
		"path");
	EXPECT_ERROR(
		"listeners:\n"
		"  - name: web\n"
		"    bind: {a: 1}\n"
		"    routes:\n"
		"      - backend: app\n" BACKEND_APP,
		"t.yaml:3:11: 'bind' must be a string or a list of strings");
	EXPECT_ERROR("listeners:\n"
		     "  - name: web\n"
		     "    bind: []\n"
		     "    routes:\n"
		     "      - backend: app\n" BACKEND_APP,
		     "t.yaml:3:11: 'bind' must list at least one address");
	EXPECT_ERROR("listeners:\n"
		     "  - web\n" BACKEND_APP,
		     "t.yaml:2:5: listener: expected a mapping");
	EXPECT_ERROR("listeners: {web: 1}\n" BACKEND_APP,
		     "t.yaml:1:12: 'listeners' must be a list of listeners");
	EXPECT_ERROR(LISTENER_WEB "backends: [app]\n",
		     "t.yaml:6:11: 'backends' must be a mapping of names to "
		     "backends");
	EXPECT_ERROR(LISTENER_WEB "    reuseport: sometimes\n" BACKEND_APP,
		     "t.yaml:6:16: 'reuseport' must be true or false");
	EXPECT_ERROR(LISTENER_WEB "    protocol: udp\n" BACKEND_APP,
		     "t.yaml:6:15: 'protocol' must be http or tcp");
	EXPECT_ERROR("listeners:\n"
		     "  - name: web\n"
		     "    bind: 127.0.0.1:8080\n"
		     "    routes: []\n" BACKEND_APP,
		     "t.yaml:4:13: 'routes' must list at least one route");
	EXPECT_ERROR(LISTENER_WEB "backends:\n"
				  "  app:\n"
				  "    servers: []\n",
		     "t.yaml:8:14: 'servers' must list at least one server");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP "    retries: x\n",
		     "t.yaml:10:14: 'retries' must be an integer");
	EXPECT_ERROR(
		LISTENER_WEB BACKEND_APP "    connect_timeout: 5 minutes\n",
		"t.yaml:10:22: 'connect_timeout' must be a duration such as "
		"500ms, 2s, 1m or 1h");
	EXPECT_ERROR("defaults:\n"
		     "  max_body_size: 1t\n" LISTENER_WEB BACKEND_APP,
		     "t.yaml:2:18: 'max_body_size' must be a size such as 512, "
		     "16k, 10m or 1g");
	EXPECT_ERROR("defaults:\n"
		     "  keepalive_timeout: 0\n" LISTENER_WEB BACKEND_APP,
		     "t.yaml:2:22: 'keepalive_timeout' must be at least 1ms");
	EXPECT_ERROR("defaults:\n"
		     "  client_header_timeout: 9999999999h\n" LISTENER_WEB
			     BACKEND_APP,
		     "t.yaml:2:26: 'client_header_timeout' is too large");
}
END_TEST

START_TEST(test_err_ranges)
{
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP "        weight: 0\n",
		     "t.yaml:10:17: 'weight' must be between 1 and 1000");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP "        weight: 1001\n",
		     "t.yaml:10:17: 'weight' must be between 1 and 1000");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP "    retries: 17\n",
		     "t.yaml:10:14: 'retries' must be between 0 and 16");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP "    keepalive: 10001\n",
		     "t.yaml:10:16: 'keepalive' must be between 0 and 10000");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP
		     "        max_connections: 1000001\n",
		     "t.yaml:10:26: 'max_connections' must be between 0 and "
		     "1000000");
	EXPECT_ERROR(
		"defaults:\n"
		"  max_header_size: 512\n" LISTENER_WEB BACKEND_APP,
		"t.yaml:2:20: 'max_header_size' must be between 1k and 1m");
	EXPECT_ERROR(
		LISTENER_WEB "    max_header_size: 2m\n" BACKEND_APP,
		"t.yaml:6:22: 'max_header_size' must be between 1k and 1m");
}
END_TEST

START_TEST(test_err_missing)
{
	EXPECT_ERROR(BACKEND_APP,
		     "t.yaml:1:1: missing required key 'listeners'");
	EXPECT_ERROR(LISTENER_WEB,
		     "t.yaml:1:1: missing required key 'backends'");
	EXPECT_ERROR("listeners:\n"
		     "  - bind: 127.0.0.1:8080\n"
		     "    routes:\n"
		     "      - backend: app\n" BACKEND_APP,
		     "t.yaml:2:5: listener: missing required key 'name'");
	EXPECT_ERROR("listeners:\n"
		     "  - name: web\n"
		     "    bind: 127.0.0.1:8080\n" BACKEND_APP,
		     "t.yaml:2:5: listener: missing required key 'routes'");
	EXPECT_ERROR("listeners:\n"
		     "  - name: db\n"
		     "    bind: 127.0.0.1:5432\n"
		     "    protocol: tcp\n" BACKEND_APP,
		     "t.yaml:2:5: listener: missing required key 'backend'");
	EXPECT_ERROR("listeners:\n"
		     "  - name: web\n"
		     "    bind: 127.0.0.1:8080\n"
		     "    routes:\n"
		     "      - path_prefix: /\n" BACKEND_APP,
		     "t.yaml:5:9: route: missing required key 'backend'");
	EXPECT_ERROR(LISTENER_WEB "backends:\n"
				  "  app:\n"
				  "    servers:\n"
				  "      - weight: 2\n",
		     "t.yaml:9:9: server: missing required key 'address'");
	EXPECT_ERROR(
		LISTENER_WEB "backends:\n"
			     "  app:\n"
			     "    retries: 2\n",
		"t.yaml:8:5: backend 'app': missing required key 'servers'");
}
END_TEST

START_TEST(test_err_duplicates)
{
	EXPECT_ERROR("user: a\n"
		     "user: b\n" LISTENER_WEB BACKEND_APP,
		     "t.yaml:2:1: duplicate key 'user'");
	EXPECT_ERROR(LISTENER_WEB "    bind: 127.0.0.1:8081\n" BACKEND_APP,
		     "t.yaml:6:5: duplicate key 'bind'");
	EXPECT_ERROR(LISTENER_WEB "  - name: web\n"
				  "    bind: 127.0.0.1:8081\n"
				  "    routes:\n"
				  "      - backend: app\n" BACKEND_APP,
		     "t.yaml:6:11: duplicate listener name 'web'");
	EXPECT_ERROR(
		LISTENER_WEB "  - name: api\n"
			     "    bind: 127.0.0.1:8080\n"
			     "    routes:\n"
			     "      - backend: app\n" BACKEND_APP,
		"t.yaml:7:11: address '127.0.0.1:8080' is already bound by "
		"listener 'web'");
	EXPECT_ERROR("listeners:\n"
		     "  - name: web\n"
		     "    bind: [\"127.0.0.1:8080\", \"127.0.0.1:8080\"]\n"
		     "    routes:\n"
		     "      - backend: app\n" BACKEND_APP,
		     "t.yaml:3:30: address '127.0.0.1:8080' is listed twice");
	EXPECT_ERROR("listeners:\n"
		     "  - name: web\n"
		     "    bind: [\"*:80\", 0.0.0.0:80]\n"
		     "    routes:\n"
		     "      - backend: app\n" BACKEND_APP,
		     "t.yaml:3:20: address '0.0.0.0:80' is listed twice");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP
		     "  app:\n"
		     "    servers:\n"
		     "      - address: 127.0.0.1:9001\n",
		     "t.yaml:10:3: duplicate backend name 'app'");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP
		     "      - address: 127.0.0.1:9000\n",
		     "t.yaml:10:18: server '127.0.0.1:9000' is listed twice in "
		     "backend 'app'");
}
END_TEST

START_TEST(test_err_values)
{
	EXPECT_ERROR("listeners:\n"
		     "  - name: web\n"
		     "    bind: 10.0.0.1:99999\n"
		     "    routes:\n"
		     "      - backend: app\n" BACKEND_APP,
		     "t.yaml:3:11: '10.0.0.1:99999' is not a valid address "
		     "(host:port or [v6]:port)");
	EXPECT_ERROR(LISTENER_WEB "backends:\n"
				  "  app:\n"
				  "    servers:\n"
				  "      - address: example.com:80\n",
		     "t.yaml:9:18: 'example.com:80' is not a valid address "
		     "(host:port or [v6]:port)");
	EXPECT_ERROR("listeners:\n"
		     "  - name: web\n"
		     "    bind: 127.0.0.1:8080\n"
		     "    routes:\n"
		     "      - backend: nope\n" BACKEND_APP,
		     "t.yaml:5:18: undefined backend 'nope'");
	EXPECT_ERROR("listeners:\n"
		     "  - name: db\n"
		     "    bind: 127.0.0.1:5432\n"
		     "    protocol: tcp\n"
		     "    backend: nope\n" BACKEND_APP,
		     "t.yaml:5:14: undefined backend 'nope'");
	EXPECT_ERROR("listeners:\n"
		     "  - name: db\n"
		     "    bind: 127.0.0.1:5432\n"
		     "    protocol: tcp\n"
		     "    backend: app\n"
		     "    routes:\n"
		     "      - backend: app\n" BACKEND_APP,
		     "t.yaml:6:5: 'routes' is only valid for http listeners");
	EXPECT_ERROR(LISTENER_WEB "    backend: app\n" BACKEND_APP,
		     "t.yaml:6:5: 'backend' is only valid for tcp listeners; "
		     "http listeners use 'routes'");
	EXPECT_ERROR(LISTENER_WEB "        host: \"a b.com\"\n" BACKEND_APP,
		     "t.yaml:6:15: 'a b.com' is not a valid host name "
		     "(example.com or *.example.com)");
	EXPECT_ERROR(LISTENER_WEB
		     "        host: [ok.com, \"*.\"]\n" BACKEND_APP,
		     "t.yaml:6:24: '*.' is not a valid host name (example.com "
		     "or *.example.com)");
	EXPECT_ERROR(LISTENER_WEB "        path_prefix: api\n" BACKEND_APP,
		     "t.yaml:6:22: 'path_prefix' must start with '/'");
	EXPECT_ERROR(LISTENER_WEB "        path_prefix: \"/a b\"\n" BACKEND_APP,
		     "t.yaml:6:22: 'path_prefix' must not contain spaces or "
		     "control characters");
	EXPECT_ERROR("defaults:\n"
		     "  hide_response_headers: [Server, \"Bad "
		     "Header\"]\n" LISTENER_WEB BACKEND_APP,
		     "t.yaml:2:35: 'Bad Header' is not a valid header name");
	EXPECT_ERROR("listeners:\n"
		     "  - name: \"my web\"\n"
		     "    bind: 127.0.0.1:8080\n"
		     "    routes:\n"
		     "      - backend: app\n" BACKEND_APP,
		     "t.yaml:2:11: 'my web' is not a valid listener name "
		     "(letters, digits, '_', '-', '.')");
}
END_TEST

START_TEST(test_err_yaml)
{
	EXPECT_ERROR(
		"a: b: c\n",
		"t.yaml:1:5: mapping values are not allowed in this context");
	EXPECT_ERROR("listeners:\n"
		     "  - name: web\n"
		     " bind: 1\n",
		     "t.yaml:3:2: did not find expected key (while parsing a "
		     "block mapping that starts at line 1)");
	EXPECT_ERROR("", "t.yaml:1:1: the configuration is empty");
	EXPECT_ERROR("# nothing\n", "t.yaml:1:1: the configuration is empty");
	EXPECT_ERROR("- a\n", "t.yaml:1:1: expected a mapping");
	EXPECT_ERROR("hello\n", "t.yaml:1:1: expected a mapping");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP "---\nuser: x\n",
		     "t.yaml:11:1: only one YAML document is allowed");
	EXPECT_ERROR("user: &u [a]\ngroup: *u\n",
		     "t.yaml:1:7: aliases of lists and mappings are not "
		     "supported");
	EXPECT_ERROR("x: &a [*a]\n",
		     "t.yaml:1:4: aliases of lists and mappings are not "
		     "supported");
	EXPECT_ERROR("user: *nope\n", "t.yaml:1:7: found undefined alias");
	EXPECT_ERROR("user: \"a\\0b\"\n",
		     "t.yaml:1:7: NUL characters are not allowed");
	EXPECT_ERROR("user: \xff\n",
		     "t.yaml:1:7: invalid leading UTF-8 octet (#FF)");
}
END_TEST

START_TEST(test_err_many_sorted)
{
	/* Found in the order top level, backends, listeners; reported by
	 * position. */
	EXPECT_ERRORS(
		"workers: 0\n"
		"listeners:\n"
		"  - name: web\n"
		"    bind: 127.0.0.1:8080\n"
		"    routes:\n"
		"      - backend: nope\n"
		"backends:\n"
		"  app:\n"
		"    servers:\n"
		"      - address: 127.0.0.1:9000\n"
		"        weight: 0\n"
		"group: [x]\n",
		"t.yaml:1:10: 'workers' must be 'auto' or an integer 1..256",
		"t.yaml:6:18: undefined backend 'nope'",
		"t.yaml:11:17: 'weight' must be between 1 and 1000",
		"t.yaml:12:8: 'group' must be a string");
}
END_TEST

START_TEST(test_err_cap)
{
	struct config_errors errs = {0};
	char yaml[4096] = "";
	size_t i, len = 0;

	for (i = 0; i < 70; i++)
		len += (size_t)snprintf(yaml + len, sizeof(yaml) - len,
					"zzz%zu: 1\n", i);
	ck_assert_ptr_null(config_load_string("t.yaml", yaml, &errs));
	/* 70 unknown keys + missing listeners + missing backends */
	ck_assert_uint_eq(errs.count, 72);
	/* same position: in the order found */
	ck_assert_str_eq(errs.msgs[0], "t.yaml:1:1: unknown key 'zzz0'");
	ck_assert_str_eq(errs.msgs[1],
			 "t.yaml:1:1: missing required key 'listeners'");
	ck_assert_str_eq(errs.msgs[3], "t.yaml:2:1: unknown key 'zzz1'");
	ck_assert_ptr_nonnull(errs.msgs[CONFIG_MAX_ERRORS - 1]);
	/* A second load appends to what is there. */
	ck_assert_ptr_null(config_load_string("t.yaml", "", &errs));
	ck_assert_uint_eq(errs.count, 73);
	config_errors_clear(&errs);
	ck_assert_uint_eq(errs.count, 0);
	ck_assert_ptr_null(errs.msgs[0]);
	config_errors_clear(&errs);
	config_errors_clear(NULL);
	config_free(NULL);
	/* errs may be NULL: the caller only learns that it failed. */
	ck_assert_ptr_null(config_load_string("t.yaml", "- a\n", NULL));
}
END_TEST

START_TEST(test_err_files)
{
	struct config_errors errs = {0};
	const char *dir = getenv("PORTCULLIS_TEST_DATA");
	char want[4200];
	size_t i;

	ck_assert_ptr_null(config_load("/nonexistent/portcullis.yaml", &errs));
	ck_assert_uint_eq(errs.count, 1);
	ck_assert_str_eq(errs.msgs[0], "/nonexistent/portcullis.yaml: cannot "
				       "open: No such file or directory");
	config_errors_clear(&errs);

	ck_assert_ptr_null(load_file("data/config/five_mistakes.yaml", &errs));
	ck_assert_uint_eq(errs.count, 5);
	snprintf(want, sizeof(want),
		 "%s/data/config/five_mistakes.yaml:10:18: undefined backend "
		 "'statc'",
		 dir);
	ck_assert_str_eq(errs.msgs[0], want);
	for (i = 0; i < errs.count; i++)
		ck_assert_msg(strstr(errs.msgs[i], "five_mistakes.yaml:"), "%s",
			      errs.msgs[i]);
	ck_assert_ptr_nonnull(strstr(errs.msgs[1], "duplicate listener name"));
	ck_assert_ptr_nonnull(strstr(errs.msgs[2], "did you mean "
						   "'connect_timeout'?"));
	ck_assert_ptr_nonnull(strstr(errs.msgs[3], "'weight' must be between"));
	ck_assert_ptr_nonnull(strstr(errs.msgs[4], "is not a valid address"));
	config_errors_clear(&errs);

	ck_assert_ptr_null(load_file("data/config/admin_on_listener.yaml", &errs));
	ck_assert_uint_eq(errs.count, 1);
	config_errors_clear(&errs);
	ck_assert_ptr_null(load_file("data/config/syntax_error.yaml", &errs));
	ck_assert_uint_eq(errs.count, 1);
	config_errors_clear(&errs);
	ck_assert_ptr_null(load_file("data/config/not_a_mapping.yaml", &errs));
	ck_assert_uint_eq(errs.count, 1);
	config_errors_clear(&errs);
	ck_assert_ptr_null(load_file("data/config/empty.yaml", &errs));
	ck_assert_uint_eq(errs.count, 1);
	config_errors_clear(&errs);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_test(tc, test_parse_duration);
	tcase_add_test(tc, test_parse_size);
	tcase_add_test(tc, test_parse_addr);
	tcase_add_test(tc, test_minimal_defaults);
	tcase_add_test(tc, test_full_fixture);
	tcase_add_test(tc, test_shipped_configs);
	tcase_add_test(tc, test_empty_config);
	tcase_add_test(tc, test_control_socket_group);
	tcase_add_test(tc, test_bind_forms);
	tcase_add_test(tc, test_workers_and_bools);
	tcase_add_test(tc, test_units_in_config);
	tcase_add_test(tc, test_inheritance);
	tcase_add_test(tc, test_off_forms_and_aliases);
	tcase_add_test(tc, test_err_unknown_keys);
	tcase_add_test(tc, test_err_unsupported);
	tcase_add_test(tc, test_admin);
	tcase_add_test(tc, test_err_admin);
	tcase_add_test(tc, test_err_types);
	tcase_add_test(tc, test_err_ranges);
	tcase_add_test(tc, test_err_missing);
	tcase_add_test(tc, test_err_duplicates);
	tcase_add_test(tc, test_err_values);
	tcase_add_test(tc, test_err_yaml);
	tcase_add_test(tc, test_err_many_sorted);
	tcase_add_test(tc, test_err_cap);
	tcase_add_test(tc, test_err_files);
	tcase_add_test(tc, test_trusted_proxies_and_worker_connections);
	tcase_add_test(tc, test_access_log);
	tcase_add_test(tc, test_panic_threshold);
	tcase_add_test(tc, test_alias_expansion_bounded);
	tcase_add_test(tc, test_zone_capacity);
	tcase_add_test(tc, test_balancing_and_health);
	tcase_add_test(tc, test_err_balancing_and_health);
	tcase_add_test(tc, test_err_trusted_proxies_and_worker_connections);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
