/*
 * loop.h: the worker's event loop: epoll for descriptors, a timer heap
 * for deadlines.  It knows nothing of HTTP.  An object that wants events
 * embeds a struct loop_io (and struct timer from common/timer.h).
 */
#ifndef PORTCULLIS_LOOP_H
#define PORTCULLIS_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "common/timer.h"

struct loop;
struct loop_io;

typedef void (*loop_io_cb)(struct loop_io *io, uint32_t events);

struct loop_io {
	int io_fd;
	uint32_t io_events;   /* the mask registered with epoll, 0 if none */
	bool io_added;        /* registered with epoll */
	loop_io_cb io_cb;
	void *io_data;        /* owner */
};

struct loop {
	int lp_epfd;
	bool lp_stop;
	uint64_t lp_now;            /* cached monotonic ms, updated each turn */
	struct timer_heap lp_timers;
	void (*lp_after)(struct loop *lp); /* run at the end of each turn */
};

/* Create the epoll instance.  0, or -1 with errno. */
int loop_init(struct loop *lp);

/* Close the epoll instance and free the timer heap. */
void loop_free(struct loop *lp);

/* Set up io for fd, not registered; cb gets io and the epoll events. */
void loop_io_init(struct loop_io *io, int fd, loop_io_cb cb, void *data);

/*
 * Register io->io_fd for `events` (EPOLLIN/EPOLLOUT/...), or change the
 * mask when already registered; no syscall when the mask is unchanged.
 * Returns 0 or -1 with errno.
 */
int loop_set_fd(struct loop *lp, struct loop_io *io, uint32_t events);

/* Same as loop_set_fd, with extra flags (EPOLLEXCLUSIVE) for a first add. */
int loop_add_fd(struct loop *lp, struct loop_io *io, uint32_t events);

/* Unregister; harmless when not registered.  Does not close the fd. */
void loop_del_fd(struct loop *lp, struct loop_io *io);

/*
 * io->io_fd is about to be closed, which takes it out of the epoll set
 * (no other descriptor refers to its file: workers never dup or pass
 * them): forget the registration without an epoll_ctl.
 */
void loop_forget_fd(struct loop_io *io);

/*
 * Arm (or move) t to fire `ms` milliseconds after lp_now, the time cached
 * at the start of the turn.  A timer callback that re-arms with 0 ms is
 * due at once and fires in the next turn, after that turn's events (see
 * timer_run).  Out of memory is fatal.
 */
void loop_timer_in(struct loop *lp, struct timer *t, uint64_t ms);

/* Disarm t. */
void loop_timer_del(struct loop *lp, struct timer *t);

/*
 * Run turns until loop_stop(): wait for events or the first timer, refresh
 * lp_now, call the io callbacks (not that of an io whose io_fd a callback
 * of this turn set to -1), fire the due timers, run lp_after.  A signal
 * (EINTR) does not end it.  Returns 0, or -1 if epoll_wait failed.
 */
int loop_run(struct loop *lp);

/* Make loop_run() return at the end of the current turn. */
void loop_stop(struct loop *lp);

#endif
