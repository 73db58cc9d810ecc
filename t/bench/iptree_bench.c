/*
 * iptree_bench.c: allow/deny lists at scale (issue #12: a 1,000,000-prefix
 * list loads in <= 1 s, takes <= 64 bytes a prefix, costs <= 0.5 us a
 * lookup).  Not a ctest test: run it by hand on a Release build.
 *
 *   cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release
 *   cmake --build build-rel --target iptree_bench
 *   build-rel/t/iptree_bench [PREFIXES [LOOKUPS]]
 *
 * It writes a list file of PREFIXES (default 1,000,000) random prefixes,
 * half IPv4 /16-/32, half IPv6 /32-/128, loads it the way the master does
 * (config_load_string of a listener with deny: ["file:..."]: reading,
 * parsing and building), then times LOOKUPS (default 4,000,000)
 * iptree_match() calls over addresses half inside a listed prefix and
 * half anywhere, in CPU time.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/iptree.h"
#include "config/config.h"

#define ADDRS (1u << 18) /* sockaddr_storage probes, reused in turn */

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ull;
}

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long maxrss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

struct pfx {
	int fam;
	uint8_t a[16];
	unsigned len;
};

static void random_pfx(struct pfx *p)
{
	uint64_t x = rnd(), y = rnd();
	unsigned alen, i;

	p->fam = (x & 1) ? AF_INET6 : AF_INET;
	memcpy(p->a, &y, 8);
	y = rnd();
	memcpy(p->a + 8, &y, 8);
	if (p->fam == AF_INET) {
		p->len = 16 + (unsigned)(rnd() % 17);
		alen = 4;
	} else {
		p->a[0] = (uint8_t)(0x20 | (p->a[0] & 0x1f)); /* 2000::/3 */
		p->len = 32 + (unsigned)(rnd() % 97);
		alen = 16;
	}
	for (i = 0; i < alen; i++) {
		int bits = (int)p->len - (int)i * 8;

		if (bits < 8)
			p->a[i] &= bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
	}
}

/* An address inside p (its host bits random). */
static void inside(const struct pfx *p, struct sockaddr_storage *ss)
{
	uint8_t a[16];
	uint64_t x = rnd(), y = rnd();
	unsigned alen = p->fam == AF_INET ? 4 : 16, i;

	memcpy(a, &x, 8);
	memcpy(a + 8, &y, 8);
	for (i = 0; i < alen; i++) {
		int fixed = (int)p->len - (int)i * 8;

		if (fixed >= 8)
			a[i] = p->a[i];
		else if (fixed > 0)
			a[i] = (uint8_t)((p->a[i] & (0xff << (8 - fixed))) |
					 (a[i] & (0xff >> fixed)));
	}
	memset(ss, 0, sizeof(*ss));
	if (p->fam == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a, 4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a, 16);
	}
}

static int write_list(const char *path, struct pfx *p, size_t n)
{
	FILE *f = fopen(path, "w");
	char buf[INET6_ADDRSTRLEN];
	size_t i;

	if (!f)
		return -1;
	fprintf(f, "# %zu random prefixes (iptree_bench)\n", n);
	for (i = 0; i < n; i++) {
		random_pfx(&p[i]);
		inet_ntop(p[i].fam, p[i].a, buf, sizeof(buf));
		fprintf(f, "%s/%u\n", buf, p[i].len);
	}
	return fclose(f);
}

/* ns of CPU a lookup over the probes ss[0..ADDRS), n lookups. */
static double time_lookups(const struct iptree *t,
			   const struct sockaddr_storage *ss, size_t n,
			   size_t *hits)
{
	double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), c1;
	size_t i, h = 0;

	for (i = 0; i < n; i++)
		h += iptree_match(t, &ss[i & (ADDRS - 1)]);
	c1 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	*hits = h;
	return (c1 - c0) * 1e9 / (double)n;
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	size_t lookups = argc > 2 ? strtoul(argv[2], NULL, 10) : 4000000;
	char dir[] = "/tmp/iptree_bench.XXXXXX", path[64], yaml[512];
	struct pfx *p = calloc(n, sizeof(*p));
	struct sockaddr_storage *ss = calloc(ADDRS, sizeof(*ss));
	struct config_errors errs = {0};
	struct config *cfg;
	const struct iptree *t;
	double w0, c0, wall, cpu, ns;
	long rss0;
	size_t i, hits;

	if (!p || !ss || n == 0 || !mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/deny.txt", dir);
	if (write_list(path, p, n) < 0)
		return 1;
	snprintf(yaml, sizeof(yaml),
		 "listeners:\n"
		 "  - name: web\n"
		 "    bind: 127.0.0.1:8080\n"
		 "    deny: [\"file:%s\"]\n"
		 "    routes: [{backend: app}]\n"
		 "backends: {app: {servers: [{address: 127.0.0.1:9000}]}}\n",
		 path);

	rss0 = maxrss_kb();
	w0 = clock_s(CLOCK_MONOTONIC);
	c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	cfg = config_load_string("bench.yaml", yaml, &errs);
	cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
	wall = clock_s(CLOCK_MONOTONIC) - w0;
	if (!cfg) {
		fprintf(stderr, "%s\n", errs.count ? errs.msgs[0] : "?");
		return 1;
	}
	t = cfg->listeners[0].acl.deny;
	printf("prefixes         %zu (file %s)\n", n, path);
	printf("load (config)    %.3f s wall, %.3f s CPU: read, parse, build\n",
	       wall, cpu);
	printf("tree             %zu bytes, %.1f bytes a prefix\n",
	       iptree_bytes(t), (double)iptree_bytes(t) / (double)n);
	printf("peak RSS growth  %ld kB during the load (builder included)\n",
	       maxrss_kb() - rss0);

	for (i = 0; i < ADDRS; i++)
		inside(&p[rnd() % n], &ss[i]);
	ns = time_lookups(t, ss, lookups, &hits);
	printf("lookup, listed   %.1f ns CPU (%zu lookups, %zu hits)\n", ns,
	       lookups, hits);
	for (i = 0; i < ADDRS; i++) {
		struct pfx any;

		random_pfx(&any);
		any.len = 0;
		inside(&any, &ss[i]);
	}
	ns = time_lookups(t, ss, lookups, &hits);
	printf("lookup, random   %.1f ns CPU (%zu lookups, %zu hits)\n", ns,
	       lookups, hits);
	for (i = 0; i < ADDRS; i++)
		ss[i] = ss[0];
	ns = time_lookups(t, ss, lookups, &hits);
	printf("lookup, one peer %.1f ns CPU (cache-hot)\n", ns);

	config_free(cfg);
	unlink(path);
	rmdir(dir);
	free(p);
	free(ss);
	return 0;
}
