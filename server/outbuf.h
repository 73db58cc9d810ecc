/*
 * outbuf.h: a bounded, growing text buffer for the admin endpoint's
 * answers (/metrics, /status, /status.json) and `status --json`: the
 * renderers append to it, and past ob_max it stops growing and says so
 * (ob_is_full) instead of failing half-way through a line.
 */
#ifndef PORTCULLIS_OUTBUF_H
#define PORTCULLIS_OUTBUF_H

#include <stdbool.h>
#include <stddef.h>

struct outbuf {
	char *ob_buf;       /* owned; NUL-terminated when ob_len > 0 */
	size_t ob_len;
	size_t ob_cap;
	size_t ob_max;      /* 0: OUTBUF_DEFAULT_MAX */
	bool ob_is_full;    /* something was dropped: out of room or memory */
};

#define OUTBUF_DEFAULT_MAX (16u << 20)

/* Append n bytes of s / a string / a formatted string. */
void outbuf_putn(struct outbuf *o, const char *s, size_t n);
void outbuf_puts(struct outbuf *o, const char *s);
void outbuf_printf(struct outbuf *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Empty it, keeping its memory. */
void outbuf_reset(struct outbuf *o);

/* Free its memory; o is empty and reusable afterwards. */
void outbuf_free(struct outbuf *o);

/*
 * Send buf[*off, len) on the non-blocking socket fd, moving *off on:
 * 0 when it is all sent or the socket takes no more for now (*off says
 * which), -1 when the peer is gone.  Shared by the admin endpoint and
 * the control socket, the master's two servers.
 */
int outbuf_send(int fd, const char *buf, size_t len, size_t *off);

#endif
