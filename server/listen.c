/* listen.c: listening sockets kept across reloads (see listen.h). */
#include "server/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096

/* Same family, address and port (padding and flow info ignored). */
static bool sa_equal(const struct sockaddr_storage *a, socklen_t alen,
		     const struct sockaddr_storage *b, socklen_t blen)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       x->sin6_scope_id == y->sin6_scope_id &&
		       memcmp(&x->sin6_addr, &y->sin6_addr,
			      sizeof(x->sin6_addr)) == 0;
	}
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* The socket for a, shared (shard -1) or worker slot shard's own. */
static struct listen_sock *listen_find(struct listen_set *set,
				       const struct cfg_addr *a, int shard)
{
	for (size_t i = 0; i < set->ls_n; i++)
		if (set->ls_socks[i].ls_shard == shard &&
		    sa_equal(&set->ls_socks[i].ls_sa, set->ls_socks[i].ls_salen,
			     &a->sa, a->salen))
			return &set->ls_socks[i];
	return NULL;
}

/* Is a bound the other way (shared vs per-worker) than `reuseport`? */
static bool listen_mode_differs(const struct listen_set *set,
				const struct cfg_addr *a, bool reuseport)
{
	for (size_t i = 0; i < set->ls_n; i++)
		if ((set->ls_socks[i].ls_shard >= 0) != reuseport &&
		    sa_equal(&set->ls_socks[i].ls_sa, set->ls_socks[i].ls_salen,
			     &a->sa, a->salen))
			return true;
	return false;
}

static int listen_open(const struct cfg_addr *a, bool reuseport, char *err,
		       size_t errlen)
{
	int fd, one = 1;

	fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd == -1)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	if (reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
		goto fail;
	if (a->sa.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&a->sa, a->salen) == -1 ||
	    listen(fd, LISTEN_BACKLOG) == -1)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "listen on %s: %s", a->str, strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

static size_t count_binds(const struct config *cfg)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->nlisteners; i++)
		n += cfg->listeners[i].nbinds;
	return n;
}

static int listen_push(struct listen_set *set, const struct cfg_addr *a, int fd,
		       int shard)
{
	struct listen_sock *ls;

	if (set->ls_n == set->ls_cap) {
		size_t cap = set->ls_cap ? set->ls_cap * 2 : 8;
		struct listen_sock *p = realloc(set->ls_socks, cap * sizeof(*p));

		if (p == NULL)
			return -1;
		set->ls_socks = p;
		set->ls_cap = cap;
	}
	ls = &set->ls_socks[set->ls_n++];
	memset(ls, 0, sizeof(*ls));
	memcpy(&ls->ls_sa, &a->sa, a->salen);
	ls->ls_salen = a->salen;
	ls->ls_fd = fd;
	ls->ls_shard = shard;
	ls->ls_in_use = true;
	return 0;
}

/* Find or open the socket of (a, shard); its fd, or -1 with err. */
static int listen_get(struct listen_set *set, const struct cfg_addr *a,
		      int shard, char *err, size_t errlen)
{
	struct listen_sock *ls = listen_find(set, a, shard);
	int fd;

	if (ls != NULL) {
		ls->ls_in_use = true;
		return ls->ls_fd;
	}
	fd = listen_open(a, shard >= 0, err, errlen);
	if (fd != -1 && listen_push(set, a, fd, shard) == -1) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return fd;
}

int listen_apply(struct listen_set *set, const struct config *cfg, int **fds,
		 size_t *nfds, char *err, size_t errlen)
{
	size_t n = count_binds(cfg), k = 0, old_n = set->ls_n;
	size_t nslots = cfg->workers ? cfg->workers : 1;
	int *out = calloc(n ? n * nslots : 1, sizeof(*out));

	if (out == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < set->ls_n; i++)
		set->ls_socks[i].ls_in_use = false;
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];

		for (size_t j = 0; j < l->nbinds; j++, k++) {
			const struct cfg_addr *a = &l->binds[j];

			/*
			 * A shared socket and SO_REUSEPORT ones cannot be
			 * bound to one address together: switching takes a
			 * restart (the old sockets are still serving).
			 */
			if (listen_mode_differs(set, a, l->reuseport)) {
				snprintf(err, errlen, "listen on %s: turning "
					 "reuseport %s needs a restart", a->str,
					 l->reuseport ? "on" : "off");
				goto fail;
			}
			for (size_t w = 0; w < nslots; w++) {
				int fd = w > 0 && !l->reuseport
						 ? out[k]
						 : listen_get(set, a,
							      l->reuseport ? (int)w
									   : -1,
							      err, errlen);

				if (fd == -1)
					goto fail;
				out[w * n + k] = fd;
			}
		}
	}
	*fds = out;
	*nfds = n;
	return 0;
fail:
	/* undo: close what this call opened, the old sockets stay in use */
	while (set->ls_n > old_n)
		close(set->ls_socks[--set->ls_n].ls_fd);
	for (size_t i = 0; i < set->ls_n; i++)
		set->ls_socks[i].ls_in_use = true;
	free(out);
	return -1;
}

void listen_prune(struct listen_set *set)
{
	size_t k = 0;

	for (size_t i = 0; i < set->ls_n; i++) {
		if (set->ls_socks[i].ls_in_use)
			set->ls_socks[k++] = set->ls_socks[i];
		else
			close(set->ls_socks[i].ls_fd);
	}
	set->ls_n = k;
}

void listen_free(struct listen_set *set)
{
	for (size_t i = 0; i < set->ls_n; i++)
		close(set->ls_socks[i].ls_fd);
	free(set->ls_socks);
	memset(set, 0, sizeof(*set));
}

bool listen_has_fd(const struct listen_set *set, int fd)
{
	for (size_t i = 0; i < set->ls_n; i++)
		if (set->ls_socks[i].ls_fd == fd)
			return true;
	return false;
}

void listen_addr_str(const struct listen_sock *ls, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (ls->ls_sa.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)&ls->ls_sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else {
		const struct sockaddr_in *sin = (const void *)&ls->ls_sa;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
	}
}

int listen_export(const struct listen_set *set, char *buf, size_t len)
{
	size_t off = 0;

	if (len == 0)
		return -1;
	buf[0] = '\0';
	for (size_t i = 0; i < set->ls_n; i++) {
		char addr[INET6_ADDRSTRLEN + 16];
		int n;

		listen_addr_str(&set->ls_socks[i], addr, sizeof(addr));
		n = snprintf(buf + off, len - off, "%s%d=%s", i ? ";" : "",
			     set->ls_socks[i].ls_fd, addr);
		if (n < 0 || (size_t)n >= len - off)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

void listen_inherit(const struct listen_set *set)
{
	for (size_t i = 0; i < set->ls_n; i++) {
		int fd = set->ls_socks[i].ls_fd;
		int fl = fcntl(fd, F_GETFD);

		if (fl != -1)
			(void)fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
	}
}

/* Check that fd is an inherited listening TCP socket and add it. */
static int listen_adopt_fd(struct listen_set *set, int fd, char *err,
			   size_t errlen)
{
	struct cfg_addr a;
	int type = 0, acc = 0, rp = 0, shard = -1;
	socklen_t tl = sizeof(type), al = sizeof(acc), rl = sizeof(rp);

	memset(&a, 0, sizeof(a));
	a.salen = sizeof(a.sa);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == -1 ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == -1 ||
	    getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &rp, &rl) == -1 ||
	    getsockname(fd, (struct sockaddr *)&a.sa, &a.salen) == -1) {
		snprintf(err, errlen, "inherited socket %d: %s", fd,
			 strerror(errno));
		return -1;
	}
	if (type != SOCK_STREAM || !acc ||
	    (a.sa.ss_family != AF_INET && a.sa.ss_family != AF_INET6)) {
		snprintf(err, errlen, "inherited descriptor %d is not a listening "
			 "TCP socket", fd);
		return -1;
	}
	/* per-worker sockets are interchangeable: number them as they come */
	if (rp)
		while (listen_find(set, &a, ++shard) != NULL)
			;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1 ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1 ||
	    listen_push(set, &a, fd, shard) == -1) {
		snprintf(err, errlen, "inherited socket %d: %s", fd,
			 strerror(errno));
		return -1;
	}
	set->ls_socks[set->ls_n - 1].ls_in_use = false;
	return 0;
}

int listen_adopt(struct listen_set *set, const char *value, char *err,
		 size_t errlen)
{
	const char *p = value;

	while (*p != '\0') {
		char *end;
		long fd = strtol(p, &end, 10);

		if (end == p || *end != '=' || fd < 3 || fd > INT_MAX) {
			snprintf(err, errlen, "%s: malformed entry at '%.40s'",
				 LISTEN_ENV_FDS, p);
			return -1;
		}
		if (listen_has_fd(set, (int)fd)) {
			snprintf(err, errlen, "%s: descriptor %ld listed twice",
				 LISTEN_ENV_FDS, fd);
			return -1;
		}
		if (listen_adopt_fd(set, (int)fd, err, errlen) == -1)
			return -1;
		p = strchr(end, ';');
		if (p == NULL)
			break;
		p++;
	}
	return 0;
}
