/*
 * test_config_tls.c: the tls: sections of listeners and backends and the
 * redirect: of routes (config/config_tls.c, config/config_listener.c):
 * every key with its values and defaults, the off forms, and the errors
 * with their exact "FILE:LINE:COL: message".
 *
 * Inline YAML is written one line per string literal so that the line and
 * column an error names can be read off the source.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config_expect.h"

/* Lines 1-5: an http listener whose one route goes to app. */
#define LISTENER_WEB                                                           \
	"listeners:\n"                                                         \
	"  - name: web\n"                                                      \
	"    bind: 127.0.0.1:8443\n"                                           \
	"    routes:\n"                                                        \
	"      - backend: app\n"
/* Four lines: the backend app; its keys are indented by four spaces. */
#define BACKEND_APP                                                            \
	"backends:\n"                                                          \
	"  app:\n"                                                             \
	"    servers:\n"                                                       \
	"      - address: 127.0.0.1:9000\n"
/* Line 6: tls: of the listener of LISTENER_WEB. */
#define TLS_HEAD "    tls:\n"
/* Line 7: a valid certificates list. */
#define TLS_CERTS                                                              \
	"      certificates: [{ cert: /etc/portcullis/a.pem, key: "           \
	"/etc/portcullis/a.key }]\n"

/* ---- helpers ---------------------------------------------------------- */

/* A listener tls: section whose line 8 is line8 (after TLS_CERTS). */
#define LISTENER_TLS(line8) LISTENER_WEB TLS_HEAD TLS_CERTS line8 BACKEND_APP

/* ---- listener tls: ---------------------------------------------------- */

START_TEST(test_listener_tls_full)
{
	struct config *cfg = load_ok(
		LISTENER_WEB TLS_HEAD
		"      certificates:\n"
		"        - { cert: /etc/portcullis/tls/a.pem, key: "
		"/etc/portcullis/tls/a.key }\n"
		"        - cert: /etc/portcullis/tls/b.pem\n"
		"          key: /etc/portcullis/tls/b.key\n"
		"      min_version: TLSv1.3\n"
		"      ciphers: \"ECDHE-ECDSA-AES128-GCM-SHA256:"
		"ECDHE-RSA-AES128-GCM-SHA256\"\n"
		"      ticket_rotation: 1h\n"
		"      handshake_timeout: 5s\n"
		"      client_ca: /etc/portcullis/ca.pem\n"
		"      verify: optional\n"
		"      verify_depth: 2\n"
		"      client_cert_headers: { subject: X-Subj, fingerprint: "
		"X-Fp }\n"
		"      hsts: 31536000\n" BACKEND_APP);
	const struct cfg_tls *t = cfg->listeners[0].tls;

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(t->line, 6);
	ck_assert_int_eq(t->col, 5);
	ck_assert_uint_eq(t->ncerts, 2);
	ck_assert_str_eq(t->certs[0].cert, "/etc/portcullis/tls/a.pem");
	ck_assert_str_eq(t->certs[0].key, "/etc/portcullis/tls/a.key");
	ck_assert_int_eq(t->certs[0].line, 8);
	ck_assert_int_eq(t->certs[0].col, 11);
	ck_assert_str_eq(t->certs[1].cert, "/etc/portcullis/tls/b.pem");
	ck_assert_str_eq(t->certs[1].key, "/etc/portcullis/tls/b.key");
	ck_assert_int_eq(t->certs[1].line, 9);
	ck_assert_int_eq(t->certs[1].col, 11);
	ck_assert_uint_eq(t->min_version, 13);
	ck_assert_str_eq(t->ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256:"
				     "ECDHE-RSA-AES128-GCM-SHA256");
	ck_assert_uint_eq(t->ticket_rotation_ms, 3600000);
	ck_assert_uint_eq(t->handshake_timeout_ms, 5000);
	ck_assert_str_eq(t->client_ca, "/etc/portcullis/ca.pem");
	ck_assert_int_eq(t->verify, CFG_TLS_VERIFY_OPTIONAL);
	ck_assert_uint_eq(t->verify_depth, 2);
	ck_assert_str_eq(t->subject_header, "X-Subj");
	ck_assert_str_eq(t->fingerprint_header, "X-Fp");
	ck_assert_uint_eq(t->hsts, 31536000);
	ck_assert_ptr_null(t->ctx);
	config_free(cfg);
}
END_TEST

START_TEST(test_listener_tls_defaults)
{
	struct config *cfg = load_ok(LISTENER_TLS(""));
	const struct cfg_tls *t = cfg->listeners[0].tls;

	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->ncerts, 1);
	ck_assert_int_eq(t->certs[0].line, 7);
	ck_assert_int_eq(t->certs[0].col, 22);
	ck_assert_uint_eq(t->min_version, 12);
	ck_assert_ptr_null(t->ciphers);
	ck_assert_uint_eq(t->ticket_rotation_ms, 12u * 3600 * 1000);
	ck_assert_uint_eq(t->handshake_timeout_ms, 10000);
	ck_assert_ptr_null(t->client_ca);
	ck_assert_int_eq(t->verify, CFG_TLS_VERIFY_NONE);
	ck_assert_uint_eq(t->verify_depth, 4);
	ck_assert_str_eq(t->subject_header, "X-Client-Subject");
	ck_assert_str_eq(t->fingerprint_header, "X-Client-Fingerprint");
	ck_assert_uint_eq(t->hsts, 0);
	ck_assert_ptr_null(t->ctx);
	config_free(cfg);

	/* client_ca alone: certificates are required of clients. */
	cfg = load_ok(LISTENER_TLS("      client_ca: /etc/portcullis/ca.pem\n"
				   "      client_cert_headers: { subject: "
				   "X-Who }\n"
				   "      ticket_rotation: 2h\n"));
	t = cfg->listeners[0].tls;
	ck_assert_str_eq(t->client_ca, "/etc/portcullis/ca.pem");
	ck_assert_int_eq(t->verify, CFG_TLS_VERIFY_REQUIRED);
	ck_assert_str_eq(t->subject_header, "X-Who");
	ck_assert_str_eq(t->fingerprint_header, "X-Client-Fingerprint");
	config_free(cfg);
}
END_TEST

START_TEST(test_listener_tls_ranges_ok)
{
	struct config *cfg = load_ok(
		LISTENER_TLS("      ticket_rotation: 168h\n"
			     "      client_ca: /ca.pem\n"
			     "      verify: required\n"
			     "      verify_depth: 16\n"
			     "      hsts: 4294967295\n"));
	const struct cfg_tls *t = cfg->listeners[0].tls;

	ck_assert_uint_eq(t->ticket_rotation_ms, 7u * 24 * 3600 * 1000);
	ck_assert_int_eq(t->verify, CFG_TLS_VERIFY_REQUIRED);
	ck_assert_uint_eq(t->verify_depth, 16);
	ck_assert_uint_eq(t->hsts, UINT32_MAX);
	config_free(cfg);

	cfg = load_ok(LISTENER_TLS("      ticket_rotation: 1m\n"
				   "      verify_depth: 1\n"));
	ck_assert_uint_eq(cfg->listeners[0].tls->ticket_rotation_ms, 60000);
	ck_assert_uint_eq(cfg->listeners[0].tls->verify_depth, 1);
	config_free(cfg);
}
END_TEST

/* A tcp listener terminates TLS too. */
START_TEST(test_listener_tls_tcp)
{
	struct config *cfg = load_ok("listeners:\n"
				     "  - name: db\n"
				     "    bind: 127.0.0.1:5433\n"
				     "    protocol: tcp\n"
				     "    backend: app\n" TLS_HEAD TLS_CERTS
					     BACKEND_APP);

	ck_assert_ptr_nonnull(cfg->listeners[0].tls);
	ck_assert_uint_eq(cfg->listeners[0].tls->ncerts, 1);
	config_free(cfg);

	/* Headers are HTTP's: refused rather than ignored on tcp. */
	EXPECT_ERRORS("listeners:\n"
		      "  - name: db\n"
		      "    bind: 127.0.0.1:5433\n"
		      "    protocol: tcp\n"
		      "    backend: app\n" TLS_HEAD TLS_CERTS
		      "      hsts: 0\n"
		      "      client_cert_headers: { subject: X-S }\n"
			      BACKEND_APP,
		      "t.yaml:8:7: 'hsts' is only valid for http listeners",
		      "t.yaml:9:7: 'client_cert_headers' is only valid for "
		      "http listeners");
}
END_TEST

START_TEST(test_listener_tls_off)
{
	static const char *const off[] = {"false", "off", "no", "~", ""};
	char yaml[1024];
	size_t i;

	for (i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
		struct config *cfg;

		snprintf(yaml, sizeof(yaml),
			 LISTENER_WEB "    tls: %s\n" BACKEND_APP
				      "    tls: %s\n",
			 off[i], off[i]);
		cfg = load_ok(yaml);
		ck_assert_ptr_null(cfg->listeners[0].tls);
		ck_assert_ptr_null(cfg->backends[0].tls);
		config_free(cfg);
	}
	/* No tls: at all. */
	{
		struct config *cfg = load_ok(LISTENER_WEB BACKEND_APP);

		ck_assert_ptr_null(cfg->listeners[0].tls);
		ck_assert_ptr_null(cfg->backends[0].tls);
		ck_assert_uint_eq(cfg->listeners[0].routes[0].redirect_status,
				  0);
		config_free(cfg);
	}
}
END_TEST

START_TEST(test_err_listener_certificates)
{
	EXPECT_ERROR(LISTENER_WEB "    tls: { min_version: TLSv1.2 }\n"
			BACKEND_APP,
		     "t.yaml:6:10: tls: missing required key 'certificates'");
	EXPECT_ERROR(LISTENER_WEB "    tls: {}\n" BACKEND_APP,
		     "t.yaml:6:10: tls: missing required key 'certificates'");
	EXPECT_ERROR(LISTENER_WEB "    tls: { certificates: [] }\n"
			BACKEND_APP,
		     "t.yaml:6:26: 'certificates' must list at least one "
		     "certificate");
	EXPECT_ERROR(LISTENER_WEB TLS_HEAD
		     "      certificates: /etc/portcullis/a.pem\n" BACKEND_APP,
		     "t.yaml:7:21: 'certificates' must be a list of "
		     "{cert, key}");
	EXPECT_ERROR(LISTENER_WEB TLS_HEAD "      certificates:\n"
		     "        - { cert: a.pem, key: /etc/portcullis/a.key }\n"
			BACKEND_APP,
		     "t.yaml:8:19: 'cert' must be an absolute path");
	EXPECT_ERROR(LISTENER_WEB TLS_HEAD "      certificates:\n"
		     "        - { cert: /a.pem, key: tls/a.key }\n" BACKEND_APP,
		     "t.yaml:8:32: 'key' must be an absolute path");
	EXPECT_ERROR(LISTENER_WEB TLS_HEAD "      certificates:\n"
		     "        - { cert: /a.pem }\n" BACKEND_APP,
		     "t.yaml:8:11: certificate: missing required key 'key'");
	EXPECT_ERROR(LISTENER_WEB TLS_HEAD "      certificates:\n"
		     "        - /a.pem\n" BACKEND_APP,
		     "t.yaml:8:11: certificate: expected a mapping");
	EXPECT_ERROR(LISTENER_WEB TLS_HEAD "      certificates:\n"
		     "        - { cert: /a.pem, key: /a.key, chain: /c }\n"
			BACKEND_APP,
		     "t.yaml:8:40: unknown key 'chain'");
	/* tls: true asks for TLS without saying with what. */
	EXPECT_ERROR(LISTENER_WEB "    tls: true\n" BACKEND_APP,
		     "t.yaml:6:10: tls: expected a mapping");
}
END_TEST

START_TEST(test_err_listener_tls_values)
{
	EXPECT_ERROR(LISTENER_TLS("      min_version: TLSv1.1\n"),
		     "t.yaml:8:20: 'min_version' must be TLSv1.2 or TLSv1.3");
	EXPECT_ERROR(LISTENER_TLS("      min_version: 1.2\n"),
		     "t.yaml:8:20: 'min_version' must be TLSv1.2 or TLSv1.3");
	EXPECT_ERROR(LISTENER_TLS("      min_verison: TLSv1.2\n"),
		     "t.yaml:8:7: unknown key 'min_verison'; did you mean "
		     "'min_version'?");
	EXPECT_ERROR(LISTENER_TLS("      verify: required\n"),
		     "t.yaml:8:7: 'verify' is only valid with 'client_ca'");
	EXPECT_ERROR(LISTENER_TLS("      client_ca: /ca.pem\n"
				  "      verify: maybe\n"),
		     "t.yaml:9:15: 'verify' must be required or optional");
	EXPECT_ERROR(LISTENER_TLS("      client_ca: ca.pem\n"),
		     "t.yaml:8:18: 'client_ca' must be an absolute path");
	/* A bad client_ca is one error, not also one at verify. */
	EXPECT_ERROR(LISTENER_TLS("      client_ca: ca.pem\n"
				  "      verify: optional\n"),
		     "t.yaml:8:18: 'client_ca' must be an absolute path");
	EXPECT_ERROR(LISTENER_TLS("      verify_depth: 17\n"),
		     "t.yaml:8:21: 'verify_depth' must be between 1 and 16");
	EXPECT_ERROR(LISTENER_TLS("      verify_depth: 0\n"),
		     "t.yaml:8:21: 'verify_depth' must be between 1 and 16");
	EXPECT_ERROR(LISTENER_TLS("      ticket_rotation: 30s\n"),
		     "t.yaml:8:24: 'ticket_rotation' must be between 1m and "
		     "168h");
	EXPECT_ERROR(LISTENER_TLS("      ticket_rotation: 169h\n"),
		     "t.yaml:8:24: 'ticket_rotation' must be between 1m and "
		     "168h");
	EXPECT_ERROR(LISTENER_TLS("      ticket_rotation: soon\n"),
		     "t.yaml:8:24: 'ticket_rotation' must be a duration such "
		     "as 500ms, 2s, 1m or 1h");
	EXPECT_ERROR(LISTENER_TLS("      handshake_timeout: 0\n"),
		     "t.yaml:8:26: 'handshake_timeout' must be at least 1ms");
	EXPECT_ERROR(LISTENER_TLS("      ciphers: \"\"\n"),
		     "t.yaml:8:16: 'ciphers' must not be empty");
	EXPECT_ERROR(LISTENER_TLS("      hsts: -1\n"),
		     "t.yaml:8:13: 'hsts' must be an integer");
	EXPECT_ERROR(LISTENER_TLS("      hsts: 4294967296\n"),
		     "t.yaml:8:13: 'hsts' must be between 0 and 4294967295");
}
END_TEST

START_TEST(test_err_listener_tls_headers)
{
	EXPECT_ERROR(LISTENER_TLS("      client_cert_headers: { subject: "
				  "\"X Subject\" }\n"),
		     "t.yaml:8:39: 'X Subject' is not a valid header name");
	EXPECT_ERROR(LISTENER_TLS("      client_cert_headers: { fingerprint: "
				  "\"X-Fp:\" }\n"),
		     "t.yaml:8:43: 'X-Fp:' is not a valid header name");
	EXPECT_ERROR(LISTENER_TLS("      client_cert_headers: { subject: "
				  "[a] }\n"),
		     "t.yaml:8:39: 'subject' is not a valid header name");
	EXPECT_ERROR(LISTENER_TLS("      client_cert_headers: { subjet: X-S "
				  "}\n"),
		     "t.yaml:8:30: unknown key 'subjet'; did you mean "
		     "'subject'?");
	EXPECT_ERROR(LISTENER_TLS("      client_cert_headers: X-Subject\n"),
		     "t.yaml:8:28: client_cert_headers: expected a mapping");
}
END_TEST

/* Errors of several keys are all reported, in the order of the file. */
START_TEST(test_err_listener_tls_many)
{
	EXPECT_ERRORS(LISTENER_WEB TLS_HEAD
		      "      certificates: [{ cert: /a.pem, key: a.key }]\n"
		      "      min_version: TLSv1\n"
		      "      verify: optional\n"
		      "      hsts: 1y\n" BACKEND_APP,
		      "t.yaml:7:43: 'key' must be an absolute path",
		      "t.yaml:8:20: 'min_version' must be TLSv1.2 or TLSv1.3",
		      "t.yaml:9:7: 'verify' is only valid with 'client_ca'",
		      "t.yaml:10:13: 'hsts' must be an integer");
}
END_TEST

/* ---- backend tls: ----------------------------------------------------- */

START_TEST(test_backend_tls_defaults)
{
	static const char *const forms[] = {"true", "on", "{}"};
	char yaml[1024];
	size_t i;

	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		const struct cfg_upstream_tls *t;
		struct config *cfg;

		snprintf(yaml, sizeof(yaml),
			 LISTENER_WEB BACKEND_APP "    tls: %s\n", forms[i]);
		cfg = load_ok(yaml);
		t = cfg->backends[0].tls;
		ck_assert_ptr_nonnull(t);
		ck_assert_int_eq(t->line, 10);
		ck_assert_int_eq(t->col, 5);
		ck_assert(t->verify);
		ck_assert_str_eq(t->ca_file, "system");
		ck_assert_ptr_null(t->sni);
		ck_assert_ptr_null(t->cert);
		ck_assert_ptr_null(t->key);
		ck_assert_uint_eq(t->min_version, 12);
		ck_assert_ptr_null(t->ctx);
		ck_assert_ptr_null(cfg->listeners[0].tls);
		config_free(cfg);
	}
}
END_TEST

START_TEST(test_backend_tls_full)
{
	struct config *cfg = load_ok(
		LISTENER_WEB BACKEND_APP
		"    tls: { verify: false, ca_file: /etc/ssl/internal.pem, "
		"sni: api.internal, cert: /etc/portcullis/client.pem, "
		"key: /etc/portcullis/client.key, min_version: TLSv1.3 }\n");
	const struct cfg_upstream_tls *t = cfg->backends[0].tls;

	ck_assert_ptr_nonnull(t);
	ck_assert(!t->verify);
	ck_assert_str_eq(t->ca_file, "/etc/ssl/internal.pem");
	ck_assert_str_eq(t->sni, "api.internal");
	ck_assert_str_eq(t->cert, "/etc/portcullis/client.pem");
	ck_assert_str_eq(t->key, "/etc/portcullis/client.key");
	ck_assert_uint_eq(t->min_version, 13);
	config_free(cfg);

	/* sni: "" sends none; ca_file: system is the default written out. */
	cfg = load_ok(LISTENER_WEB BACKEND_APP "    tls:\n"
					       "      sni: \"\"\n"
					       "      ca_file: system\n"
					       "      verify: true\n");
	t = cfg->backends[0].tls;
	ck_assert_str_eq(t->sni, "");
	ck_assert_str_eq(t->ca_file, "system");
	ck_assert(t->verify);
	config_free(cfg);
}
END_TEST

START_TEST(test_err_backend_tls)
{
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP
		     "    tls: { cert: /etc/portcullis/client.pem }\n",
		     "t.yaml:10:5: tls: 'cert' and 'key' must be given "
		     "together");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP
		     "    tls: { key: /etc/portcullis/client.key }\n",
		     "t.yaml:10:5: tls: 'cert' and 'key' must be given "
		     "together");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP
		     "    tls: { cert: client.pem, key: /c.key }\n",
		     "t.yaml:10:18: 'cert' must be an absolute path");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP "    tls: { ca_file: ca.pem }\n",
		     "t.yaml:10:21: 'ca_file' must be system or an absolute "
		     "path");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP "    tls: { verify: maybe }\n",
		     "t.yaml:10:20: 'verify' must be true or false");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP "    tls: { sni: \"a b\" }\n",
		     "t.yaml:10:17: 'sni' must be a host name or \"\" for "
		     "none");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP
		     "    tls: { min_version: TLSv1.0 }\n",
		     "t.yaml:10:25: 'min_version' must be TLSv1.2 or TLSv1.3");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP "    tls: { verfy: true }\n",
		     "t.yaml:10:12: unknown key 'verfy'; did you mean "
		     "'verify'?");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP "    tls: maybe\n",
		     "t.yaml:10:10: 'tls' must be a mapping, true or false");
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP "    tls: [verify]\n",
		     "t.yaml:10:10: tls: expected a mapping");
	/* A listener's keys are not a backend's. */
	EXPECT_ERROR(LISTENER_WEB BACKEND_APP "    tls: { certificates: [] }\n",
		     "t.yaml:10:12: unknown key 'certificates'");
}
END_TEST

/* ---- route redirect: -------------------------------------------------- */

/* Lines 1-4: an http listener whose routes start on line 5. */
#define LISTENER_ROUTES                                                        \
	"listeners:\n"                                                         \
	"  - name: web\n"                                                      \
	"    bind: 127.0.0.1:8080\n"                                           \
	"    routes:\n"

START_TEST(test_redirect)
{
	struct config *cfg = load_ok(LISTENER_ROUTES
				     "      - path_prefix: /old\n"
				     "        redirect: { scheme: https, status: "
				     "301 }\n"
				     "      - host: a.example.com\n"
				     "        redirect: { scheme: https }\n"
				     "      - backend: app\n" BACKEND_APP);
	const struct cfg_listener *l = &cfg->listeners[0];

	ck_assert_uint_eq(l->nroutes, 3);
	ck_assert_uint_eq(l->routes[0].redirect_status, 301);
	ck_assert_ptr_null(l->routes[0].backend);
	ck_assert_ptr_null(l->routes[0].backend_name);
	ck_assert_str_eq(l->routes[0].path_prefix, "/old");
	ck_assert_uint_eq(l->routes[1].redirect_status, 308);
	ck_assert_ptr_null(l->routes[1].backend);
	ck_assert_str_eq(l->routes[1].hosts[0], "a.example.com");
	ck_assert_uint_eq(l->routes[2].redirect_status, 0);
	ck_assert_ptr_eq(l->routes[2].backend, &cfg->backends[0]);
	config_free(cfg);

	cfg = load_ok(LISTENER_ROUTES "      - redirect: {scheme: https, "
				      "status: 302}\n"
				      "      - redirect: {scheme: https, "
				      "status: 307}\n" BACKEND_APP);
	ck_assert_uint_eq(cfg->listeners[0].routes[0].redirect_status, 302);
	ck_assert_uint_eq(cfg->listeners[0].routes[1].redirect_status, 307);
	config_free(cfg);
}
END_TEST

START_TEST(test_err_redirect)
{
	EXPECT_ERROR(LISTENER_ROUTES "      - path_prefix: /\n"
				     "        redirect: { scheme: http }\n"
					     BACKEND_APP,
		     "t.yaml:6:29: 'scheme' must be https");
	EXPECT_ERROR(LISTENER_ROUTES "      - path_prefix: /\n"
				     "        redirect: { scheme: https, status: "
				     "303 }\n" BACKEND_APP,
		     "t.yaml:6:44: 'status' must be 301, 302, 307 or 308");
	EXPECT_ERROR(LISTENER_ROUTES "      - path_prefix: /\n"
				     "        redirect: { scheme: https, status: "
				     "permanent }\n" BACKEND_APP,
		     "t.yaml:6:44: 'status' must be 301, 302, 307 or 308");
	EXPECT_ERROR(LISTENER_ROUTES "      - path_prefix: /\n"
				     "        redirect: { status: 308 }\n"
					     BACKEND_APP,
		     "t.yaml:6:19: redirect: missing required key 'scheme'");
	EXPECT_ERROR(LISTENER_ROUTES "      - path_prefix: /\n"
				     "        redirect: https\n" BACKEND_APP,
		     "t.yaml:6:19: redirect: expected a mapping");
	EXPECT_ERROR(LISTENER_ROUTES "      - path_prefix: /\n"
				     "        redirect: { scheme: https }\n"
				     "        backend: app\n" BACKEND_APP,
		     "t.yaml:7:9: a route with 'redirect' must not name a "
		     "'backend'");
	EXPECT_ERROR(LISTENER_ROUTES "      - path_prefix: /\n" BACKEND_APP,
		     "t.yaml:5:9: route: missing required key 'backend'");
	EXPECT_ERRORS(LISTENER_ROUTES "      - path_prefix: /\n"
				      "        redirct: { scheme: https }\n"
					     BACKEND_APP,
		     "t.yaml:5:9: route: missing required key 'backend'",
		     "t.yaml:6:9: unknown key 'redirct'; did you mean "
		     "'redirect'?");
}
END_TEST

static Suite *config_tls_suite(void)
{
	Suite *s = suite_create("config_tls");
	TCase *tc = tcase_create("config_tls");

	tcase_add_test(tc, test_listener_tls_full);
	tcase_add_test(tc, test_listener_tls_defaults);
	tcase_add_test(tc, test_listener_tls_ranges_ok);
	tcase_add_test(tc, test_listener_tls_tcp);
	tcase_add_test(tc, test_listener_tls_off);
	tcase_add_test(tc, test_err_listener_certificates);
	tcase_add_test(tc, test_err_listener_tls_values);
	tcase_add_test(tc, test_err_listener_tls_headers);
	tcase_add_test(tc, test_err_listener_tls_many);
	tcase_add_test(tc, test_backend_tls_defaults);
	tcase_add_test(tc, test_backend_tls_full);
	tcase_add_test(tc, test_err_backend_tls);
	tcase_add_test(tc, test_redirect);
	tcase_add_test(tc, test_err_redirect);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_tls_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
