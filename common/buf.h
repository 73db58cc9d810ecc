/*
 * buf.h: fixed-capacity byte buffers with a read and a write position,
 * and a per-process pool of their storage.  A connection holds storage
 * only while it has bytes to keep; idle connections give it back.
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

/* Bytes waiting to be read. */
static inline size_t buf_len(const struct buf *b)
{
	return b->b_w - b->b_r;
}

/* Room left at the end for writing. */
static inline size_t buf_space(const struct buf *b)
{
	return b->b_cap - b->b_w;
}

static inline char *buf_rptr(const struct buf *b)
{
	return b->b_data + b->b_r;
}

static inline char *buf_wptr(const struct buf *b)
{
	return b->b_data + b->b_w;
}

/* Mark n bytes as read; the buffer rewinds when it becomes empty. */
void buf_consume(struct buf *b, size_t n);

/* Mark n bytes as written at buf_wptr(). */
static inline void buf_commit(struct buf *b, size_t n)
{
	b->b_w += (uint32_t)n;
}

/* Move unread bytes to the front so buf_space() is maximal. */
void buf_compact(struct buf *b);

/*
 * Give b storage of the pool's size if it has none.  Returns 0, or -1
 * when out of memory.  Storage comes from the pool's free list first.
 */
int buf_reserve(struct buf *b);

/* Return b's storage to the pool; b must be empty. */
void buf_release(struct buf *b);

/* Release b's storage whether or not it holds bytes. */
void buf_drop(struct buf *b);

/*
 * Configure the pool: every buffer is `size` bytes, and at most
 * `max_free` released buffers are kept for reuse.  Call before use.
 */
void buf_pool_init(size_t size, size_t max_free);

/* Free every pooled buffer (at exit, for leak checkers). */
void buf_pool_destroy(void);

/* Buffers currently handed out (for tests and status). */
size_t buf_pool_in_use(void);

#endif
