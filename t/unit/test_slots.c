/* test_slots.c: the master's slot policy (server/slots.c). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics.h"
#include "config/config.h"
#include "server/slots.h"

/* Generation 1: two backends, one address in both, two routes. */
#define GEN1                                                                   \
	"listeners:\n"                                                         \
	"  - name: web\n"                                                      \
	"    bind: 127.0.0.1:8080\n"                                           \
	"    routes:\n"                                                        \
	"      - path_prefix: /api/\n"                                         \
	"        backend: api\n"                                               \
	"      - backend: app\n"                                               \
	"backends:\n"                                                          \
	"  app:\n"                                                             \
	"    servers:\n"                                                       \
	"      - address: 127.0.0.1:9000\n"                                    \
	"      - address: 127.0.0.1:9001\n"                                    \
	"  api:\n"                                                             \
	"    servers:\n"                                                       \
	"      - address: 127.0.0.1:9000\n"

/* Generation 2: app's servers reordered, 9001 gone, 9002 new. */
#define GEN2                                                                   \
	"listeners:\n"                                                         \
	"  - name: web\n"                                                      \
	"    bind: 127.0.0.1:8080\n"                                           \
	"    routes:\n"                                                        \
	"      - path_prefix: /api/\n"                                         \
	"        backend: api\n"                                               \
	"      - backend: app\n"                                               \
	"backends:\n"                                                          \
	"  api:\n"                                                             \
	"    servers:\n"                                                       \
	"      - address: 127.0.0.1:9000\n"                                    \
	"  app:\n"                                                             \
	"    servers:\n"                                                       \
	"      - address: 127.0.0.1:9002\n"                                    \
	"      - address: 127.0.0.1:9000\n"

static struct shm_zone *zone;

static void setup(void)
{
	zone = shm_create();
	ck_assert_ptr_nonnull(zone);
}

static void teardown(void)
{
	shm_destroy(zone);
	zone = NULL;
}

static struct config *load(const char *yaml)
{
	struct config_errors errs = {0};
	struct config *cfg = config_load_string("t.yaml", yaml, &errs);

	ck_assert_msg(cfg != NULL, "unexpected error: %s",
		      errs.count ? errs.msgs[0] : "(none)");
	return cfg;
}

/* Assign cfg as generation gen with oldest_live; must succeed. */
static void assign(struct config *cfg, unsigned gen, unsigned oldest_live)
{
	char err[256] = "";

	ck_assert_msg(slots_assign(zone, cfg, gen, oldest_live, err,
				   sizeof(err)) == 0,
		      "slots_assign: %s", err);
}

static const struct cfg_server *server(const struct config *cfg,
				       const char *backend, const char *addr)
{
	const struct cfg_backend *be = config_backend(cfg, backend);

	ck_assert_ptr_nonnull(be);
	for (size_t i = 0; i < be->nservers; i++)
		if (strcmp(be->servers[i].addr.str, addr) == 0)
			return &be->servers[i];
	ck_abort_msg("no server %s in %s", addr, backend);
	return NULL;
}

static int slot_of(const struct config *cfg, const char *backend,
		   const char *addr)
{
	return server(cfg, backend, addr)->slot;
}

/* Slots are named "backend\naddress" and "listener#N". */
START_TEST(test_slot_names)
{
	struct config *cfg = load(GEN1);
	const struct cfg_listener *l = &cfg->listeners[0];

	assign(cfg, 1, 1);
	ck_assert_str_eq(
		shm_server_at(zone, slot_of(cfg, "app", "127.0.0.1:9001"))
			->sv_key,
		"app\n127.0.0.1:9001");
	ck_assert_uint_eq(l->nroutes, 2);
	ck_assert_str_eq(shm_route_at(zone, l->routes[0].slot)->rt_key,
			 "web#1");
	ck_assert_str_eq(shm_route_at(zone, l->routes[1].slot)->rt_key,
			 "web#2");
	/* one address in two backends: two servers, two slots */
	ck_assert_int_ne(slot_of(cfg, "app", "127.0.0.1:9000"),
			 slot_of(cfg, "api", "127.0.0.1:9000"));
	config_free(cfg);
}
END_TEST

/*
 * The same config loaded again and assigned as generation 2: every
 * server and route keeps its slot, and so its drain flag and counters.
 */
START_TEST(test_same_server_same_slot)
{
	struct config *a = load(GEN1), *b = load(GEN1);
	struct shm_server *sv;

	assign(a, 1, 1);
	sv = shm_server_at(zone, slot_of(a, "app", "127.0.0.1:9001"));
	atomic_store(&sv->sv_drain, 1);
	shm_metrics(zone)->mx_retired.mb_servers[slot_of(a, "app", "127.0.0.1:9001")].ms_requests = 12;
	assign(b, 2, 1);
	for (size_t i = 0; i < a->nbackends; i++)
		for (size_t j = 0; j < a->backends[i].nservers; j++)
			ck_assert_int_eq(a->backends[i].servers[j].slot,
					 b->backends[i].servers[j].slot);
	for (size_t j = 0; j < a->listeners[0].nroutes; j++)
		ck_assert_int_eq(a->listeners[0].routes[j].slot,
				 b->listeners[0].routes[j].slot);
	sv = shm_server_at(zone, slot_of(b, "app", "127.0.0.1:9001"));
	ck_assert_uint_eq(atomic_load(&sv->sv_drain), 1);
	ck_assert_uint_eq(shm_metrics(zone)->mx_retired.mb_servers[slot_of(b, "app", "127.0.0.1:9001")].ms_requests, 12);
	ck_assert_uint_eq(atomic_load(&sv->sv_gen), 2);
	config_free(a);
	config_free(b);
}
END_TEST

/*
 * A changed config: a kept server keeps its slot wherever it now sits;
 * a removed server's slot is not given away while its generation lives,
 * and is reused once the oldest live generation is newer.
 */
START_TEST(test_changed_config)
{
	struct config *a = load(GEN1), *b = load(GEN2);
	struct config *c = load(GEN2 "      - address: 127.0.0.1:9003\n");
	int gone, fresh;

	assign(a, 1, 1);
	gone = slot_of(a, "app", "127.0.0.1:9001");
	assign(b, 2, 1);
	ck_assert_int_eq(slot_of(b, "app", "127.0.0.1:9000"),
			 slot_of(a, "app", "127.0.0.1:9000"));
	ck_assert_int_eq(slot_of(b, "api", "127.0.0.1:9000"),
			 slot_of(a, "api", "127.0.0.1:9000"));
	fresh = slot_of(b, "app", "127.0.0.1:9002");
	ck_assert_int_ne(fresh, gone);
	ck_assert_str_eq(shm_server_at(zone, gone)->sv_key,
			 "app\n127.0.0.1:9001");
	/* generation 1 has exited: its slot goes to a new server */
	assign(c, 3, 2);
	ck_assert_int_eq(slot_of(c, "app", "127.0.0.1:9002"), fresh);
	ck_assert_int_eq(slot_of(c, "app", "127.0.0.1:9003"), gone);
	ck_assert_str_eq(shm_server_at(zone, gone)->sv_key,
			 "app\n127.0.0.1:9003");
	ck_assert_uint_eq(atomic_load(&shm_server_at(zone, gone)->sv_gen), 3);
	config_free(a);
	config_free(b);
	config_free(c);
}
END_TEST

/* A zone with every server slot in use refuses the config, with why. */
START_TEST(test_full_zone_is_refused)
{
	struct config *cfg = load(GEN1);
	char key[SHM_KEY_LEN], err[256] = "";

	for (int i = 0; i < SHM_MAX_SERVERS; i++) {
		snprintf(key, sizeof(key), "old\n10.0.%d.%d:80", i / 256,
			 i % 256);
		ck_assert_int_ge(shm_server_claim(zone, key, 1, 1), 0);
	}
	ck_assert_int_eq(slots_assign(zone, cfg, 2, 1, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "t.yaml: more than 4096 servers or routes in the "
			      "live generations");
	/* once generation 1 is gone, the same config fits */
	assign(cfg, 3, 3);
	config_free(cfg);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("slots");
	TCase *tc = tcase_create("assign");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_slot_names);
	tcase_add_test(tc, test_same_server_same_slot);
	tcase_add_test(tc, test_changed_config);
	tcase_add_test(tc, test_full_zone_is_refused);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
