/*
 * conf.h: a configuration as the master uses it: the file read and
 * validated (config/), and then what it points to loaded -- the TLS
 * certificates and private keys, read here, before any fork.
 */
#ifndef PORTCULLIS_CONF_H
#define PORTCULLIS_CONF_H

#include "config/config.h"

/*
 * config_load() and then tls_config_load(): a config whose every file is
 * loaded and checked, or NULL with every problem in errs as
 * "FILE:LINE:COL: message".
 */
struct config *conf_load(const char *path, struct config_errors *errs);

#endif
