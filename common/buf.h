/*
 * buf.h: fixed-capacity byte buffers with a read and a write position,
 * and a per-process pool of their storage.  A connection holds storage
 * only while it has bytes to keep; idle connections give it back.
 * A zeroed struct buf is valid and holds no storage.  Nothing here checks
 * bounds: callers keep n within buf_len() / buf_space().
 */
#ifndef PORTCULLIS_BUF_H
#define PORTCULLIS_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	char *b_data;     /* storage from the pool, NULL when released */
	uint32_t b_cap;   /* storage size */
	uint32_t b_r;     /* first unread byte */
	uint32_t b_w;     /* first free byte */
};

/* Bytes waiting to be read; 0 for a buffer without storage. */
static inline size_t buf_len(const struct buf *b)
{
	return b->b_w - b->b_r;
}

/* Room left at the end for writing; 0 for a buffer without storage. */
static inline size_t buf_space(const struct buf *b)
{
	return b->b_cap - b->b_w;
}

/* The first unread byte; b must hold storage. */
static inline char *buf_rptr(const struct buf *b)
{
	return b->b_data + b->b_r;
}

/* Where the next written byte goes; b must hold storage. */
static inline char *buf_wptr(const struct buf *b)
{
	return b->b_data + b->b_w;
}

/*
 * Mark n (at most buf_len()) bytes as read.  When that empties b, both
 * positions go back to 0, so buf_space() is the whole capacity again.
 */
void buf_consume(struct buf *b, size_t n);

/* Mark n (at most buf_space()) bytes as written at buf_wptr(). */
static inline void buf_commit(struct buf *b, size_t n)
{
	b->b_w += (uint32_t)n;
}

/* Move unread bytes to the front so buf_space() is maximal; no-op if there. */
void buf_compact(struct buf *b);

/*
 * Give b storage of the pool's size, empty, if it has none (from the pool's
 * free list first, else malloc); storage b already holds is kept with its
 * bytes.  Returns 0, or -1 when out of memory (b is left without storage).
 */
int buf_reserve(struct buf *b);

/*
 * Return b's storage to the pool if b holds no unread bytes; if it still
 * holds some, do nothing and keep them (callers call it on every idle
 * moment and rely on that).  A no-op for a buffer without storage.
 */
void buf_release(struct buf *b);

/*
 * Return b's storage to the pool even if it holds bytes, which are lost;
 * b is left zeroed.  A no-op for a buffer without storage.
 */
void buf_drop(struct buf *b);

/*
 * Configure the pool: every buffer is `size` bytes (at least a pointer's
 * size), and at most `max_free` released buffers are kept for reuse; more
 * are freed.  Frees the buffers kept so far.  Call it before the first
 * buf_reserve(): buffers handed out earlier keep their old size and would
 * come back to the free list with it.  Until then: 16 KiB, 256 kept.
 */
void buf_pool_init(size_t size, size_t max_free);

/*
 * Free the buffers kept for reuse (at exit, for leak checkers); buffers
 * handed out are not touched.
 */
void buf_pool_destroy(void);

/* Buffers handed out: reserved and not yet released (for the tests). */
size_t buf_pool_in_use(void);

#endif
