/* keepalive.c: the idle connection pool of one server (see keepalive.h). */
#include "worker/keepalive.h"

#include <stddef.h>

void keepalive_put(struct keepalive_pool *p, struct keepalive_link *l)
{
	l->kl_prev = NULL;
	l->kl_next = p->kp_first;
	if (p->kp_first != NULL)
		p->kp_first->kl_prev = l;
	p->kp_first = l;
	l->kl_is_pooled = true;
	p->kp_count++;
}

void keepalive_remove(struct keepalive_pool *p, struct keepalive_link *l)
{
	if (!l->kl_is_pooled)
		return;
	if (l->kl_prev != NULL)
		l->kl_prev->kl_next = l->kl_next;
	else
		p->kp_first = l->kl_next;
	if (l->kl_next != NULL)
		l->kl_next->kl_prev = l->kl_prev;
	l->kl_prev = l->kl_next = NULL;
	l->kl_is_pooled = false;
	p->kp_count--;
}

struct keepalive_link *keepalive_take(struct keepalive_pool *p)
{
	struct keepalive_link *l = p->kp_first;

	if (l != NULL)
		keepalive_remove(p, l);
	return l;
}
