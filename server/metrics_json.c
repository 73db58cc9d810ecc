/* metrics_json.c: /status.json and `portcullis status --json` (see
 * metrics_page.h). */
#include "server/metrics_page.h"

void metrics_json(struct master *m, struct outbuf *o)
{
	(void)m;
	outbuf_puts(o, "{\"version\": 1}\n");
}
