/*
 * method.c: a route's methods: allow list.  The list is short and written
 * by the operator; a scan of it costs less than any index would.
 */
#include "worker/method.h"

#include <string.h>

static bool method_is(const char *m, const char *method, size_t len)
{
	return strlen(m) == len && memcmp(m, method, len) == 0;
}

static bool method_listed(const struct cfg_route *r, const char *method,
			  size_t len)
{
	for (size_t i = 0; i < r->nmethods; i++)
		if (method_is(r->methods[i], method, len))
			return true;
	return false;
}

bool method_allowed(const struct cfg_route *r, const char *method, size_t len)
{
	if (r->methods == NULL)
		return true;
	if (method_listed(r, method, len))
		return true;
	/* RFC 9110 §9.3.2: HEAD is GET without the content */
	return method_is("HEAD", method, len) && method_listed(r, "GET", 3);
}

/* Append ", " (but not first) and s to out at *n; false if it is full. */
static bool method_append(char *out, size_t cap, size_t *n, const char *s)
{
	size_t len = strlen(s), sep = *n ? 2 : 0;

	if (cap - *n < sep + len)
		return false;
	memcpy(out + *n, ", ", sep);
	memcpy(out + *n + sep, s, len);
	*n += sep + len;
	return true;
}

size_t method_allow_value(const struct cfg_route *r, char *out, size_t cap)
{
	bool has_head = method_listed(r, "HEAD", 4);
	size_t n = 0;

	if (r->methods == NULL)
		return 0;
	for (size_t i = 0; i < r->nmethods; i++) {
		if (!method_append(out, cap, &n, r->methods[i]))
			return 0;
		if (!has_head && !strcmp(r->methods[i], "GET") &&
		    !method_append(out, cap, &n, "HEAD"))
			return 0;
	}
	return n;
}
