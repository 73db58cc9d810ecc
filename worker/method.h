/*
 * method.h: a route's methods: allow list (issue #12).
 *
 * A route with methods: answers every other method with 405 and an Allow
 * header listing those it takes (RFC 9110 §15.5.6).  GET implies HEAD
 * (RFC 9110 §9.3.2: HEAD is GET without the content; nginx's limit_except
 * does the same), so "methods: [GET]" admits HEAD and says so in Allow.
 */
#ifndef PORTCULLIS_METHOD_H
#define PORTCULLIS_METHOD_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

/*
 * Room for any Allow value method_allow_value() builds from a loaded
 * config: the loader takes at most 32 methods of at most 24 bytes each
 * (config/config_hygiene.c), and 32 * (24 + 2) + 6 < 1024.
 */
#define METHOD_ALLOW_MAX 1024

/*
 * May a request with this method (method[0..len), case-sensitive, RFC
 * 9110 §9.1) use route r?  true when r has no methods: list.  Borrows r.
 */
bool method_allowed(const struct cfg_route *r, const char *method, size_t len);

/*
 * Write r's Allow value ("GET, HEAD, POST": the listed methods joined by
 * ", ", HEAD added after GET when not listed) into out[0..cap), not NUL-
 * terminated.  Returns its length, or 0 when r takes every method (no 405
 * is sent then) or the value does not fit in cap.
 */
size_t method_allow_value(const struct cfg_route *r, char *out, size_t cap);

#endif
