/* metrics_html.c: /status, one HTML page (see metrics_page.h). */
#include "server/metrics_page.h"

void metrics_html(struct master *m, struct outbuf *o)
{
	(void)m;
	outbuf_puts(o, "<!DOCTYPE html><title>portcullis</title>\n");
}
