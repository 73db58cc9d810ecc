/*
 * fuzz_config.c: libFuzzer harness for the configuration loader
 * (config/config.c, libyaml underneath).  Any input must give either a
 * config or at least one located error, never both, never a crash, a
 * leak or unbounded memory (libFuzzer's -rss_limit_mb catches the alias
 * bombs of issue #14 item 4 if the expansion bound ever goes).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors errs = {0};
	struct config *cfg;
	char *text = malloc(size + 1);

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	cfg = config_load_string("fuzz.yaml", text, &errs);
	CHECK((cfg == NULL) == (errs.count > 0));
	for (size_t i = 0; i < errs.count && i < CONFIG_MAX_ERRORS; i++)
		CHECK(strncmp(errs.msgs[i], "fuzz.yaml:", 10) == 0);
	config_free(cfg);
	config_errors_clear(&errs);
	free(text);
	return 0;
}
