/* loop.c: epoll + timer heap (see loop.h). */
#include "worker/loop.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

#define LOOP_MAX_EVENTS 256

int loop_init(struct loop *lp)
{
	memset(lp, 0, sizeof(*lp));
	lp->lp_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (lp->lp_epfd == -1)
		return -1;
	lp->lp_now = timer_now_ms();
	return 0;
}

void loop_free(struct loop *lp)
{
	if (lp->lp_epfd != -1)
		close(lp->lp_epfd);
	lp->lp_epfd = -1;
	timer_heap_free(&lp->lp_timers);
}

void loop_io_init(struct loop_io *io, int fd, loop_io_cb cb, void *data)
{
	io->io_fd = fd;
	io->io_events = 0;
	io->io_added = false;
	io->io_cb = cb;
	io->io_data = data;
}

int loop_add_fd(struct loop *lp, struct loop_io *io, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = io};

	if (io->io_added)
		return loop_set_fd(lp, io, events);
	if (epoll_ctl(lp->lp_epfd, EPOLL_CTL_ADD, io->io_fd, &ev) == -1)
		return -1;
	io->io_added = true;
	io->io_events = events;
	return 0;
}

int loop_set_fd(struct loop *lp, struct loop_io *io, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = io};

	if (!io->io_added)
		return loop_add_fd(lp, io, events);
	if (io->io_events == events)
		return 0;
	if (epoll_ctl(lp->lp_epfd, EPOLL_CTL_MOD, io->io_fd, &ev) == -1)
		return -1;
	io->io_events = events;
	return 0;
}

void loop_del_fd(struct loop *lp, struct loop_io *io)
{
	if (!io->io_added)
		return;
	(void)epoll_ctl(lp->lp_epfd, EPOLL_CTL_DEL, io->io_fd, NULL);
	io->io_added = false;
	io->io_events = 0;
}

void loop_forget_fd(struct loop_io *io)
{
	io->io_added = false;
	io->io_events = 0;
}

void loop_timer_in(struct loop *lp, struct timer *t, uint64_t ms)
{
	if (timer_add(&lp->lp_timers, t, lp->lp_now + ms) == -1)
		fatal("timer heap: out of memory");
}

void loop_timer_del(struct loop *lp, struct timer *t)
{
	timer_del(&lp->lp_timers, t);
}

static int loop_wait_ms(struct loop *lp)
{
	struct timer *t = timer_first(&lp->lp_timers);

	if (t == NULL)
		return -1;
	if (t->tm_when <= lp->lp_now)
		return 0;
	/* a timer weeks away: wake before epoll_wait's int runs out */
	if (t->tm_when - lp->lp_now > INT_MAX)
		return INT_MAX;
	return (int)(t->tm_when - lp->lp_now);
}

int loop_run(struct loop *lp)
{
	struct epoll_event evs[LOOP_MAX_EVENTS];

	lp->lp_stop = false;
	while (!lp->lp_stop) {
		int n = epoll_wait(lp->lp_epfd, evs, LOOP_MAX_EVENTS,
				   loop_wait_ms(lp));

		if (n == -1 && errno != EINTR)
			return -1;
		lp->lp_now = timer_now_ms();
		for (int i = 0; i < n; i++) {
			struct loop_io *io = evs[i].data.ptr;

			/* closed earlier in this turn; freed in lp_after */
			if (io->io_fd >= 0)
				io->io_cb(io, evs[i].events);
		}
		timer_run(&lp->lp_timers, lp->lp_now);
		if (lp->lp_after != NULL)
			lp->lp_after(lp);
	}
	return 0;
}

void loop_stop(struct loop *lp)
{
	lp->lp_stop = true;
}
