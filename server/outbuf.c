/* outbuf.c: a bounded, growing text buffer (see outbuf.h). */
#include "server/outbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Room for n more bytes and a NUL; false when over the bound. */
static bool outbuf_room(struct outbuf *o, size_t n)
{
	size_t max = o->ob_max ? o->ob_max : OUTBUF_DEFAULT_MAX;
	size_t cap = o->ob_cap ? o->ob_cap : 4096;
	char *p;

	if (o->ob_is_full || o->ob_len + n + 1 > max) {
		o->ob_is_full = true;
		return false;
	}
	if (o->ob_len + n + 1 <= o->ob_cap)
		return true;
	while (cap < o->ob_len + n + 1)
		cap *= 2;
	if (cap > max)
		cap = max;
	p = realloc(o->ob_buf, cap);
	if (p == NULL) {
		o->ob_is_full = true;
		return false;
	}
	o->ob_buf = p;
	o->ob_cap = cap;
	return true;
}

void outbuf_putn(struct outbuf *o, const char *s, size_t n)
{
	if (!outbuf_room(o, n))
		return;
	memcpy(o->ob_buf + o->ob_len, s, n);
	o->ob_len += n;
	o->ob_buf[o->ob_len] = '\0';
}

void outbuf_puts(struct outbuf *o, const char *s)
{
	outbuf_putn(o, s, strlen(s));
}

void outbuf_printf(struct outbuf *o, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		outbuf_putn(o, small, (size_t)n);
		return;
	}
	if (!outbuf_room(o, (size_t)n))
		return;
	va_start(ap, fmt);
	(void)vsnprintf(o->ob_buf + o->ob_len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	o->ob_len += (size_t)n;
}

void outbuf_reset(struct outbuf *o)
{
	o->ob_len = 0;
	o->ob_is_full = false;
	if (o->ob_buf != NULL)
		o->ob_buf[0] = '\0';
}

void outbuf_free(struct outbuf *o)
{
	free(o->ob_buf);
	o->ob_buf = NULL;
	o->ob_len = o->ob_cap = 0;
	o->ob_is_full = false;
}

int outbuf_send(int fd, const char *buf, size_t len, size_t *off)
{
	while (*off < len) {
		ssize_t n = send(fd, buf + *off, len - *off, MSG_NOSIGNAL);

		if (n > 0) {
			*off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		return n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)
			       ? 0
			       : -1;
	}
	return 0;
}
