/* scoreboard.c: shared per-worker counters (see scoreboard.h). */
#include "server/scoreboard.h"

#include <sys/mman.h>

struct scoreboard_slot {
	_Atomic uint32_t sb_conns;	    /* open client connections */
	_Atomic uint32_t sb_gen;	    /* its worker's generation, 0: free */
	_Atomic uint64_t sb_beat;	    /* last loop turn, monotonic ms */
	char sb_pad[64 - 2 * sizeof(uint64_t)]; /* a cache line a worker */
};

/*
 * By zone server slot, worker i's part of sv_active.  Kept apart from the
 * slots, after them, so that the pages of workers and servers never used
 * are never touched: 16 KiB a worker of address space, not of memory.
 */
struct scoreboard_shares {
	_Atomic uint32_t ss_count[SHM_MAX_SERVERS];
};

struct scoreboard {
	size_t sb_n;   /* slots that follow */
	size_t sb_len; /* bytes mapped, for munmap */
	char sb_pad[48];
	struct scoreboard_slot sb_slots[];
};

static struct scoreboard_shares *sb_shares_of(struct scoreboard *sb,
					       size_t i)
{
	char *end = (char *)&sb->sb_slots[sb->sb_n];

	return (struct scoreboard_shares *)end + i;
}

struct scoreboard *scoreboard_create(size_t nslots)
{
	size_t len = sizeof(struct scoreboard) +
		     nslots * sizeof(struct scoreboard_slot) +
		     nslots * sizeof(struct scoreboard_shares);
	struct scoreboard *sb = mmap(NULL, len, PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (sb == MAP_FAILED)
		return NULL;
	sb->sb_n = nslots;
	sb->sb_len = len;
	for (size_t i = 0; i < nslots; i++)
		atomic_init(&sb->sb_slots[i].sb_conns, 0);
	return sb;
}

void scoreboard_free(struct scoreboard *sb)
{
	if (sb != NULL)
		munmap(sb, sb->sb_len);
}

_Atomic uint32_t *scoreboard_conns(struct scoreboard *sb, size_t i)
{
	if (sb == NULL || i >= sb->sb_n)
		return NULL;
	return &sb->sb_slots[i].sb_conns;
}

uint32_t scoreboard_get(const struct scoreboard *sb, size_t i)
{
	if (sb == NULL || i >= sb->sb_n)
		return 0;
	return atomic_load_explicit(&sb->sb_slots[i].sb_conns,
				    memory_order_relaxed);
}

void scoreboard_reset(struct scoreboard *sb, size_t i)
{
	if (sb == NULL || i >= sb->sb_n)
		return;
	atomic_store_explicit(&sb->sb_slots[i].sb_conns, 0,
			      memory_order_relaxed);
	atomic_store_explicit(&sb->sb_slots[i].sb_beat, 0,
			      memory_order_relaxed);
	atomic_store_explicit(&sb->sb_slots[i].sb_gen, 0, memory_order_relaxed);
}

void scoreboard_set_gen(struct scoreboard *sb, size_t i, unsigned gen)
{
	if (sb != NULL && i < sb->sb_n)
		atomic_store_explicit(&sb->sb_slots[i].sb_gen, gen,
				      memory_order_relaxed);
}

void scoreboard_peers(struct scoreboard *sb, struct worker_peers *out)
{
	*out = (struct worker_peers){0};
	if (sb == NULL || sb->sb_n == 0)
		return;
	out->wp_conns = &sb->sb_slots[0].sb_conns;
	out->wp_gens = &sb->sb_slots[0].sb_gen;
	out->wp_stride = sizeof(sb->sb_slots[0]);
	out->wp_n = sb->sb_n;
}

_Atomic uint64_t *scoreboard_beat(struct scoreboard *sb, size_t i)
{
	if (sb == NULL || i >= sb->sb_n)
		return NULL;
	return &sb->sb_slots[i].sb_beat;
}

uint64_t scoreboard_last_beat(const struct scoreboard *sb, size_t i)
{
	if (sb == NULL || i >= sb->sb_n)
		return 0;
	return atomic_load_explicit(&sb->sb_slots[i].sb_beat,
				    memory_order_relaxed);
}

_Atomic uint32_t *scoreboard_shares(struct scoreboard *sb, size_t i)
{
	if (sb == NULL || i >= sb->sb_n)
		return NULL;
	return sb_shares_of(sb, i)->ss_count;
}

uint64_t scoreboard_give_back(struct scoreboard *sb, size_t i,
			      struct shm_zone *z)
{
	uint64_t total = 0;

	if (sb == NULL || i >= sb->sb_n || z == NULL)
		return 0;
	for (size_t k = 0; k < SHM_MAX_SERVERS; k++) {
		_Atomic uint32_t *share = &sb_shares_of(sb, i)->ss_count[k];
		uint32_t n;

		if (atomic_load_explicit(share, memory_order_relaxed) == 0)
			continue; /* do not dirty what the worker never used */
		n = atomic_exchange_explicit(share, 0, memory_order_relaxed);
		shm_active_sub(shm_server_at(z, k), n);
		total += n;
	}
	return total;
}
