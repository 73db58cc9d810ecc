/*
 * fuzz_msg.h: compare two parsed heads field by field.  The parser leaves
 * headers[] past nheaders as they were (clearing 1.6 KB per head cost more
 * than the parse), so a whole-struct memcmp would see stale entries.
 */
#ifndef PORTCULLIS_FUZZ_MSG_H
#define PORTCULLIS_FUZZ_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "worker/http.h"

static inline bool fuzz_msg_same(const struct http_msg *a,
				 const struct http_msg *b)
{
	size_t tail = offsetof(struct http_msg, nheaders);

	return memcmp(a, b, offsetof(struct http_msg, headers)) == 0 &&
	       memcmp(&a->nheaders, &b->nheaders, sizeof(*a) - tail) == 0 &&
	       memcmp(a->headers, b->headers,
		      a->nheaders * sizeof(a->headers[0])) == 0;
}

#endif
