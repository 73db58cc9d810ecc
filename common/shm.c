/* shm.c: the shared-memory zone (see shm.h). */
#include "common/shm.h"

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

int shm_fd(void)
{
	return shm_the_fd;
}

struct shm_zone *shm_create(void)
{
	int fd = memfd_create("portcullis-shm", MFD_CLOEXEC);
	struct shm_zone *z;

	if (fd == -1 || ftruncate(fd, sizeof(*z)) == -1)
		goto fail;
	z = mmap(NULL, sizeof(*z), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (z == MAP_FAILED)
		goto fail;
	z->z_magic = SHM_MAGIC;
	z->z_size = sizeof(*z);
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

	if (fstat(fd, &st) == -1 || (size_t)st.st_size != sizeof(*z))
		return NULL;
	z = mmap(NULL, sizeof(*z), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (z == MAP_FAILED)
		return NULL;
	if (z->z_magic != SHM_MAGIC || z->z_size != sizeof(*z)) {
		munmap(z, sizeof(*z));
		return NULL;
	}
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	shm_the_fd = fd;
	return z;
}

void shm_destroy(struct shm_zone *z)
{
	if (z != NULL)
		munmap(z, sizeof(*z));
}

uint64_t shm_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void server_key(char *out, const char *backend, const char *addr)
{
	snprintf(out, SHM_KEY_LEN, "%s\n%s", backend, addr);
}

/* Is the slot taken by a generation that is still alive? */
static bool slot_live(const char *key, uint32_t gen, unsigned oldest_live)
{
	return key[0] != '\0' && gen >= oldest_live;
}

static int assign_server(struct shm_zone *z, struct cfg_server *s,
			 const char *backend, unsigned gen, unsigned oldest)
{
	char key[SHM_KEY_LEN];
	int free_slot = -1;

	server_key(key, backend, s->addr.str);
	for (int i = 0; i < SHM_MAX_SERVERS; i++) {
		struct shm_server *sv = &z->z_servers[i];
		uint32_t g = atomic_load(&sv->sv_gen);

		if (slot_live(sv->sv_key, g, oldest) || g == gen) {
			if (strcmp(sv->sv_key, key) == 0) {
				atomic_store(&sv->sv_gen, gen);
				s->slot = i;
				return 0;
			}
		} else if (free_slot < 0) {
			free_slot = i;
		}
	}
	if (free_slot < 0)
		return -1;
	memset(&z->z_servers[free_slot], 0, sizeof(z->z_servers[free_slot]));
	memcpy(z->z_servers[free_slot].sv_key, key, SHM_KEY_LEN);
	atomic_store(&z->z_servers[free_slot].sv_changed, shm_wall_ms());
	atomic_store(&z->z_servers[free_slot].sv_gen, gen);
	s->slot = free_slot;
	return 0;
}

static int assign_route(struct shm_zone *z, struct cfg_route *r,
			const char *listener, size_t idx, unsigned gen,
			unsigned oldest)
{
	char key[SHM_KEY_LEN];
	int free_slot = -1;

	snprintf(key, sizeof(key), "%s#%zu", listener, idx + 1);
	for (int i = 0; i < SHM_MAX_ROUTES; i++) {
		struct shm_route *rt = &z->z_routes[i];
		uint32_t g = atomic_load(&rt->rt_gen);

		if (slot_live(rt->rt_key, g, oldest) || g == gen) {
			if (strcmp(rt->rt_key, key) == 0) {
				atomic_store(&rt->rt_gen, gen);
				r->slot = i;
				return 0;
			}
		} else if (free_slot < 0) {
			free_slot = i;
		}
	}
	if (free_slot < 0)
		return -1;
	memset(&z->z_routes[free_slot], 0, sizeof(z->z_routes[free_slot]));
	memcpy(z->z_routes[free_slot].rt_key, key, SHM_KEY_LEN);
	atomic_store(&z->z_routes[free_slot].rt_gen, gen);
	r->slot = free_slot;
	return 0;
}

int shm_assign(struct shm_zone *z, struct config *cfg, unsigned gen,
	       unsigned oldest_live, char *err, size_t errlen)
{
	for (size_t i = 0; i < cfg->nbackends; i++) {
		struct cfg_backend *b = &cfg->backends[i];

		for (size_t j = 0; j < b->nservers; j++)
			if (assign_server(z, &b->servers[j], b->name, gen,
					  oldest_live) == -1)
				goto full;
	}
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		struct cfg_listener *l = &cfg->listeners[i];

		for (size_t j = 0; j < l->nroutes; j++)
			if (assign_route(z, &l->routes[j], l->name, j, gen,
					 oldest_live) == -1)
				goto full;
	}
	return 0;
full:
	snprintf(err, errlen,
		 "%s: more than %d servers or routes in the live generations",
		 cfg->path, SHM_MAX_SERVERS);
	return -1;
}

struct shm_server *shm_server(struct shm_zone *z, const struct cfg_server *s)
{
	return &z->z_servers[s->slot];
}

struct shm_route *shm_route(struct shm_zone *z, const struct cfg_route *r)
{
	return &z->z_routes[r->slot];
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
