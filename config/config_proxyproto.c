/*
 * config_proxyproto.c: a backend's proxy_protocol: off | v1 | v2, the
 * PROXY protocol header sent first on each new server connection.  (A
 * listener's proxy_protocol is a plain boolean in listener_keys.)
 */
#include <string.h>

#include "config/config_int.h"

void config_proxy_protocol(struct schema_ctx *c, const char *key,
			   yaml_node_t *v, void *field)
{
	enum cfg_proxy_protocol *pp = field;
	const char *s = schema_scalar(v);

	/* false / no / off / ~ / empty: the "off" forms of every key */
	if (schema_is_false(v))
		*pp = CFG_PROXY_PROTOCOL_OFF;
	else if (s && !strcmp(s, "v1"))
		*pp = CFG_PROXY_PROTOCOL_V1;
	else if (s && !strcmp(s, "v2"))
		*pp = CFG_PROXY_PROTOCOL_V2;
	else
		schema_error(c, v, "'%s' must be off, v1 or v2", key);
}
