/* timer.c: binary min-heap of timers (see timer.h). */
#include "common/timer.h"

#include <stdlib.h>
#include <time.h>

uint64_t timer_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void timer_init(struct timer *t, timer_cb cb, void *data)
{
	t->tm_when = 0;
	t->tm_idx = TIMER_IDLE;
	t->tm_cb = cb;
	t->tm_data = data;
}

static void heap_set(struct timer_heap *h, size_t i, struct timer *t)
{
	h->th_items[i] = t;
	t->tm_idx = i;
}

static void heap_up(struct timer_heap *h, size_t i)
{
	struct timer *t = h->th_items[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (h->th_items[parent]->tm_when <= t->tm_when)
			break;
		heap_set(h, i, h->th_items[parent]);
		i = parent;
	}
	heap_set(h, i, t);
}

static void heap_down(struct timer_heap *h, size_t i)
{
	struct timer *t = h->th_items[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->th_len)
			break;
		if (c + 1 < h->th_len &&
		    h->th_items[c + 1]->tm_when < h->th_items[c]->tm_when)
			c++;
		if (t->tm_when <= h->th_items[c]->tm_when)
			break;
		heap_set(h, i, h->th_items[c]);
		i = c;
	}
	heap_set(h, i, t);
}

int timer_add(struct timer_heap *h, struct timer *t, uint64_t when)
{
	if (timer_is_armed(t)) {
		uint64_t old = t->tm_when;

		t->tm_seq = h->th_seq++;
		t->tm_when = when;
		if (when < old)
			heap_up(h, t->tm_idx);
		else
			heap_down(h, t->tm_idx);
		return 0;
	}
	if (h->th_len == h->th_cap) {
		size_t cap = h->th_cap ? h->th_cap * 2 : 64;
		struct timer **items = realloc(h->th_items, cap * sizeof(*items));

		if (items == NULL)
			return -1;
		h->th_items = items;
		h->th_cap = cap;
	}
	t->tm_seq = h->th_seq++;
	t->tm_when = when;
	heap_set(h, h->th_len++, t);
	heap_up(h, t->tm_idx);
	return 0;
}

void timer_del(struct timer_heap *h, struct timer *t)
{
	size_t i = t->tm_idx;
	struct timer *last;

	if (i == TIMER_IDLE)
		return;
	t->tm_idx = TIMER_IDLE;
	last = h->th_items[--h->th_len];
	if (last == t)
		return;
	heap_set(h, i, last);
	if (i > 0 && h->th_items[(i - 1) / 2]->tm_when > last->tm_when)
		heap_up(h, i);
	else
		heap_down(h, i);
}

struct timer *timer_first(const struct timer_heap *h)
{
	return h->th_len ? h->th_items[0] : NULL;
}

size_t timer_run(struct timer_heap *h, uint64_t now)
{
	uint64_t armed_before = h->th_seq;
	size_t fired = 0;
	struct timer *t;

	while ((t = timer_first(h)) != NULL && t->tm_when <= now &&
	       t->tm_seq < armed_before) {
		timer_del(h, t);
		t->tm_cb(t);
		fired++;
	}
	return fired;
}

void timer_heap_free(struct timer_heap *h)
{
	for (size_t i = 0; i < h->th_len; i++)
		h->th_items[i]->tm_idx = TIMER_IDLE;
	free(h->th_items);
	h->th_items = NULL;
	h->th_len = h->th_cap = 0;
}
