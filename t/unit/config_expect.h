/*
 * config_expect.h: what the config unit tests (t/unit/test_config*.c)
 * share: load a YAML string that must load, or that must fail with
 * exactly the given "FILE:LINE:COL: message" errors, in order.
 */
#ifndef PORTCULLIS_T_CONFIG_EXPECT_H
#define PORTCULLIS_T_CONFIG_EXPECT_H

#include <check.h>
#include <string.h>

#include "config/config.h"

static inline struct config *load_ok(const char *yaml)
{
	struct config_errors errs = {0};
	struct config *cfg = config_load_string("t.yaml", yaml, &errs);

	ck_assert_msg(cfg != NULL, "unexpected error: %s",
		      errs.count ? errs.msgs[0] : "(none)");
	ck_assert_uint_eq(errs.count, 0);
	return cfg;
}

/* Loading yaml must fail with exactly the n messages want, in order. */
static inline void expect_errors(int line, const char *yaml, const char *const *want,
			  size_t n)
{
	struct config_errors errs = {0};
	struct config *cfg = config_load_string("t.yaml", yaml, &errs);
	size_t i;

	ck_assert_msg(cfg == NULL, "line %d: loaded a config with errors",
		      line);
	for (i = 0; i < errs.count && i < n; i++)
		ck_assert_msg(!strcmp(errs.msgs[i], want[i]),
			      "line %d: error %zu is\n  '%s'\nnot\n  '%s'",
			      line, i, errs.msgs[i], want[i]);
	ck_assert_msg(errs.count == n,
		      "line %d: %zu errors, not %zu (first: %s)", line,
		      errs.count, n, errs.count ? errs.msgs[0] : "-");
	config_errors_clear(&errs);
}

#define EXPECT_ERRORS(yaml, ...)                                               \
	expect_errors(__LINE__, yaml, (const char *const[]){__VA_ARGS__},      \
		      sizeof((const char *const[]){__VA_ARGS__}) /             \
			      sizeof(const char *))
#define EXPECT_ERROR(yaml, msg) EXPECT_ERRORS(yaml, msg)

#endif
