/*
 * keepalive.h: the idle keep-alive connections a worker holds to one
 * server, as nginx's upstream keepalive module keeps them apart from the
 * balancer: the balancer picks a server, this pool hands out one of its
 * idle connections (the most recently used first) and takes it back.
 *
 * The pool knows nothing of what a connection is: the connection embeds
 * a struct keepalive_link, and the caller maps a link back to its
 * connection (container_of).  Every operation is O(1), so a server that
 * closes an idle connection costs no list walk.  A zeroed pool and a
 * zeroed link are valid and empty.
 */
#ifndef PORTCULLIS_KEEPALIVE_H
#define PORTCULLIS_KEEPALIVE_H

#include <stdbool.h>
#include <stdint.h>

struct keepalive_link {
	struct keepalive_link *kl_prev, *kl_next;
	bool kl_is_pooled; /* in a pool now */
};

struct keepalive_pool {
	struct keepalive_link *kp_first; /* most recently put */
	uint32_t kp_count;
};

/* Put an idle connection's link first in p.  It must not be pooled. */
void keepalive_put(struct keepalive_pool *p, struct keepalive_link *l);

/* Take the most recently put link out of p; NULL when p is empty. */
struct keepalive_link *keepalive_take(struct keepalive_pool *p);

/*
 * Take l out of p wherever it is (the server closed it, or its idle time
 * ran out).  Does nothing when l is not pooled.
 */
void keepalive_remove(struct keepalive_pool *p, struct keepalive_link *l);

/* Would one more connection exceed limit? */
static inline bool keepalive_is_full(const struct keepalive_pool *p,
				     uint32_t limit)
{
	return p->kp_count >= limit;
}

#endif
