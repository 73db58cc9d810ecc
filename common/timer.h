/*
 * timer.h: timers kept in a binary min-heap keyed by monotonic
 * milliseconds.  A struct timer is embedded in the object that owns it;
 * the heap only holds pointers, so add/del are O(log n) and nothing is
 * allocated once the heap array has grown to the number of live timers.
 */
#ifndef PORTCULLIS_TIMER_H
#define PORTCULLIS_TIMER_H

#include <stddef.h>
#include <stdint.h>

struct timer;
typedef void (*timer_cb)(struct timer *t);

struct timer {
	uint64_t tm_when;   /* expiry, monotonic ms */
	size_t tm_idx;      /* position in the heap, TIMER_IDLE if not armed */
	timer_cb tm_cb;     /* called once on expiry, timer already disarmed */
	void *tm_data;      /* owner */
	uint64_t tm_seq;    /* when it was armed, in th_seq's count */
};

#define TIMER_IDLE ((size_t)-1)

struct timer_heap {
	struct timer **th_items;
	size_t th_len, th_cap;
	uint64_t th_seq;    /* timers armed so far */
};

/* Monotonic clock in milliseconds. */
uint64_t timer_now_ms(void);

/* Set up t as not armed, with its callback and owner. */
void timer_init(struct timer *t, timer_cb cb, void *data);

/*
 * Arm t to fire at `when`, or move it there if it is armed already (it
 * fires once, at the new time).  0, or -1 if out of memory (t unchanged).
 */
int timer_add(struct timer_heap *h, struct timer *t, uint64_t when);

/* Disarm t; harmless if it is not armed. */
void timer_del(struct timer_heap *h, struct timer *t);

static inline int timer_is_armed(const struct timer *t)
{
	return t->tm_idx != TIMER_IDLE;
}

/* The earliest armed timer, or NULL. */
struct timer *timer_first(const struct timer_heap *h);

/*
 * Fire every timer due at or before now, earliest first; a timer a
 * callback disarms does not fire.  One that a callback arms or re-arms,
 * even due by now, waits for the next call (the next loop turn), so that
 * a callback re-arming itself with 0 ms cannot keep the loop from its
 * descriptors; timers due behind it wait too.  Returns how many fired.
 */
size_t timer_run(struct timer_heap *h, uint64_t now);

/*
 * Release the heap array; the heap is then empty and usable again.  The
 * timers belong to their owners; those still armed are marked disarmed.
 */
void timer_heap_free(struct timer_heap *h);

#endif
