/* scoreboard.c: shared per-worker counters (see scoreboard.h). */
#include "server/scoreboard.h"

#include <sys/mman.h>

struct scoreboard_slot {
	_Atomic uint32_t sb_conns;	    /* open client connections */
	char sb_pad[64 - sizeof(uint32_t)]; /* one cache line per worker */
};

struct scoreboard {
	size_t sb_n;   /* slots that follow */
	size_t sb_len; /* bytes mapped, for munmap */
	char sb_pad[48];
	struct scoreboard_slot sb_slots[];
};

struct scoreboard *scoreboard_create(size_t nslots)
{
	size_t len = sizeof(struct scoreboard) +
		     nslots * sizeof(struct scoreboard_slot);
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
	if (sb != NULL && i < sb->sb_n)
		atomic_store_explicit(&sb->sb_slots[i].sb_conns, 0,
				      memory_order_relaxed);
}
