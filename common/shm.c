/* shm.c: the shared-memory zone (see shm.h). */
#include "common/shm.h"
#include "common/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

static struct shm_zone *shm_the_zone;

struct shm_zone *shm_zone(void)
{
	return shm_the_zone;
}

void shm_zone_set(struct shm_zone *z)
{
	shm_the_zone = z;
}

static int shm_the_fd = -1;

/* The metrics area starts on the first page boundary after the zone. */
#define SHM_METRICS_OFF ((sizeof(struct shm_zone) + 4095) & ~(size_t)4095)
#define SHM_TOTAL (SHM_METRICS_OFF + sizeof(struct metrics_area))

struct metrics_area *shm_metrics(struct shm_zone *z)
{
	if (z == NULL || z->z_total != SHM_TOTAL)
		return NULL;
	return (struct metrics_area *)((char *)z + SHM_METRICS_OFF);
}

int shm_fd(void)
{
	return shm_the_fd;
}

struct shm_zone *shm_create(void)
{
	int fd = memfd_create("portcullis-shm", MFD_CLOEXEC);
	struct shm_zone *z;

	/* sparse: pages cost memory only once written (metrics.h) */
	if (fd == -1 || ftruncate(fd, (off_t)SHM_TOTAL) == -1)
		goto fail;
	z = mmap(NULL, SHM_TOTAL, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (z == MAP_FAILED)
		goto fail;
	z->z_magic = SHM_MAGIC;
	z->z_size = sizeof(*z);
	z->z_total = SHM_TOTAL;
	shm_the_fd = fd;
	return z;
fail:
	if (fd != -1)
		close(fd);
	return NULL;
}

struct shm_zone *shm_adopt(int fd)
{
	struct stat st;
	struct shm_zone *z;

	if (fstat(fd, &st) == -1 || (size_t)st.st_size != SHM_TOTAL)
		return NULL;
	z = mmap(NULL, SHM_TOTAL, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (z == MAP_FAILED)
		return NULL;
	if (z->z_magic != SHM_MAGIC || z->z_size != sizeof(*z) ||
	    z->z_total != SHM_TOTAL) {
		munmap(z, SHM_TOTAL);
		return NULL;
	}
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	shm_the_fd = fd;
	return z;
}

void shm_destroy(struct shm_zone *z)
{
	if (z != NULL)
		munmap(z, z->z_total == SHM_TOTAL ? SHM_TOTAL : sizeof(*z));
}

uint64_t shm_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Is a slot last used by generation g in use for a claim by gen?  A slot
 * of a generation older than the oldest live one is free again.
 */
static bool shm_in_use(const char *key, uint32_t g, unsigned gen,
		       unsigned oldest_live)
{
	return (key[0] != '\0' && g >= oldest_live) || g == gen;
}

int shm_server_claim(struct shm_zone *z, const char *key, unsigned gen,
		     unsigned oldest_live)
{
	int free_slot = -1;

	for (int i = 0; i < SHM_MAX_SERVERS; i++) {
		struct shm_server *sv = &z->z_servers[i];
		uint32_t g = atomic_load(&sv->sv_gen);

		if (shm_in_use(sv->sv_key, g, gen, oldest_live)) {
			if (strncmp(sv->sv_key, key, SHM_KEY_LEN - 1) == 0) {
				atomic_store(&sv->sv_gen, gen);
				return i;
			}
		} else if (free_slot < 0) {
			free_slot = i;
		}
	}
	if (free_slot < 0)
		return -1;
	memset(&z->z_servers[free_slot], 0, sizeof(z->z_servers[free_slot]));
	snprintf(z->z_servers[free_slot].sv_key, SHM_KEY_LEN, "%s", key);
	atomic_store(&z->z_servers[free_slot].sv_changed, shm_wall_ms());
	if (shm_metrics(z) != NULL)
		metrics_server_reset(shm_metrics(z), free_slot);
	atomic_store(&z->z_servers[free_slot].sv_gen, gen);
	return free_slot;
}

int shm_route_claim(struct shm_zone *z, const char *key, unsigned gen,
		    unsigned oldest_live)
{
	int free_slot = -1;

	for (int i = 0; i < SHM_MAX_ROUTES; i++) {
		struct shm_route *rt = &z->z_routes[i];
		uint32_t g = atomic_load(&rt->rt_gen);

		if (shm_in_use(rt->rt_key, g, gen, oldest_live)) {
			if (strncmp(rt->rt_key, key, SHM_KEY_LEN - 1) == 0) {
				atomic_store(&rt->rt_gen, gen);
				return i;
			}
		} else if (free_slot < 0) {
			free_slot = i;
		}
	}
	if (free_slot < 0)
		return -1;
	memset(&z->z_routes[free_slot], 0, sizeof(z->z_routes[free_slot]));
	snprintf(z->z_routes[free_slot].rt_key, SHM_KEY_LEN, "%s", key);
	if (shm_metrics(z) != NULL)
		metrics_route_reset(shm_metrics(z), free_slot);
	atomic_store(&z->z_routes[free_slot].rt_gen, gen);
	return free_slot;
}

struct shm_server *shm_server_at(struct shm_zone *z, int idx)
{
	return &z->z_servers[idx];
}

struct shm_route *shm_route_at(struct shm_zone *z, int idx)
{
	return &z->z_routes[idx];
}

void shm_active_sub(struct shm_server *sv, uint32_t n)
{
	uint32_t cur = atomic_load_explicit(&sv->sv_active, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(
		&sv->sv_active, &cur, cur > n ? cur - n : 0,
		memory_order_relaxed, memory_order_relaxed))
		;
}

void shm_set_health(struct shm_server *sv, enum shm_health h,
		    const char *reason)
{
	uint32_t seq = atomic_load_explicit(&sv->sv_seq, memory_order_relaxed);

	atomic_store_explicit(&sv->sv_seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	snprintf(sv->sv_reason, sizeof(sv->sv_reason), "%s", reason);
	atomic_store_explicit(&sv->sv_seq, seq + 2, memory_order_release);
	atomic_store(&sv->sv_changed, shm_wall_ms());
	atomic_store(&sv->sv_health, (uint32_t)h);
}

void shm_reason(const struct shm_server *sv, char *out, size_t cap)
{
	for (int tries = 0; tries < 100; tries++) {
		uint32_t a = atomic_load_explicit(&sv->sv_seq,
						  memory_order_acquire);

		if (a & 1)
			continue;
		snprintf(out, cap, "%s", sv->sv_reason);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&sv->sv_seq, memory_order_relaxed) == a)
			return;
	}
	snprintf(out, cap, "?");
}
