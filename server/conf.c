/* conf.c: load a configuration and what it points to (see conf.h). */
#include "server/conf.h"

#include "server/ban.h"
#include "worker/tls.h"

struct config *conf_load(const char *path, struct config_errors *errs)
{
	struct config *cfg = config_load(path, errs);

	if (cfg == NULL)
		return NULL;
	if (tls_config_load(cfg, errs) == -1 ||
	    ban_config_check(cfg, errs) == -1) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}
