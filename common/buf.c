/* buf.c: byte buffers and their pool (see buf.h). */
#include "common/buf.h"

#include <stdlib.h>
#include <string.h>

/* Free storage is chained through its first bytes. */
struct buf_free {
	struct buf_free *next;
};

static struct {
	size_t size;
	size_t max_free;
	size_t nfree;
	size_t in_use;
	struct buf_free *free;
} pool = {16384, 256, 0, 0, NULL};

void buf_pool_init(size_t size, size_t max_free)
{
	buf_pool_destroy();
	pool.size = size < sizeof(struct buf_free) ? sizeof(struct buf_free) : size;
	pool.max_free = max_free;
}

void buf_pool_destroy(void)
{
	while (pool.free != NULL) {
		struct buf_free *f = pool.free;

		pool.free = f->next;
		free(f);
	}
	pool.nfree = 0;
}

size_t buf_pool_in_use(void)
{
	return pool.in_use;
}

void buf_consume(struct buf *b, size_t n)
{
	b->b_r += (uint32_t)n;
	if (b->b_r == b->b_w)
		b->b_r = b->b_w = 0;
}

void buf_compact(struct buf *b)
{
	size_t n = buf_len(b);

	if (b->b_r == 0)
		return;
	if (n > 0)
		memmove(b->b_data, b->b_data + b->b_r, n);
	b->b_r = 0;
	b->b_w = (uint32_t)n;
}

int buf_reserve(struct buf *b)
{
	if (b->b_data != NULL)
		return 0;
	if (pool.free != NULL) {
		b->b_data = (char *)pool.free;
		pool.free = pool.free->next;
		pool.nfree--;
	} else {
		b->b_data = malloc(pool.size);
		if (b->b_data == NULL)
			return -1;
	}
	b->b_cap = (uint32_t)pool.size;
	b->b_r = b->b_w = 0;
	pool.in_use++;
	return 0;
}

void buf_drop(struct buf *b)
{
	if (b->b_data == NULL)
		return;
	pool.in_use--;
	if (pool.nfree < pool.max_free) {
		struct buf_free *f = (struct buf_free *)b->b_data;

		f->next = pool.free;
		pool.free = f;
		pool.nfree++;
	} else {
		free(b->b_data);
	}
	b->b_data = NULL;
	b->b_cap = b->b_r = b->b_w = 0;
}

void buf_release(struct buf *b)
{
	if (buf_len(b) == 0)
		buf_drop(b);
}
