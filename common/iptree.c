/*
 * iptree.c: prefix sets (see iptree.h).
 *
 * Only membership is asked, so the build first reduces the prefixes to a
 * disjoint set: sorted by (address, length), a prefix inside the last one
 * kept adds nothing (a /24 inside a /8, a duplicate) and is dropped.
 * Every address then lies in at most one prefix, and no longest-match
 * bookkeeping (leaf pushing) is needed.
 *
 * Each family (IPv4 keys are shifted to the top of the 128-bit key, so one
 * code path serves both) becomes a trie of nodes.  A node looks at the 6
 * bits at offset off of the address and has 64 children, each one of:
 *   - inner: a node (its index is n_inner_base + the rank of the bit);
 *   - full:  the whole slot lies in a prefix (one that ended at this node);
 *   - tail:  exactly one prefix lies in the slot, stored whole in the tail
 *            arrays (index n_tail_base + rank), compared at the end;
 *   - empty: no prefix.
 * A child node starts at the first bit where its prefixes differ, not at
 * off + 6 (path compression), so a chain of one-way nodes never exists
 * and every node has two children or more: nodes < prefixes.  The skipped
 * bits are not checked on the way down; the one comparison at the end
 * (with the node's key for a full slot, with the prefix for a tail)
 * covers every bit above it.
 *
 * Memory: a node is 48 bytes, a tail 17; with n disjoint prefixes at most
 * n - 1 nodes and n tails, so 65 bytes a prefix in the worst case (pairs
 * of prefixes sharing long paths), about 21 on random lists (the top of
 * the trie is shared), see t/bench/iptree_bench.c.
 */
#include "common/iptree.h"

#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/cidr.h"

#define IPT_STRIDE    6
#define IPT_MAX_OFF   122 /* a node's 6 bits stay inside the 128 */
#define IPT_BASE_BITS 25  /* n_tail_base: 25 bits of index, 7 of off */
#define IPT_BASE_MASK ((1u << IPT_BASE_BITS) - 1)
#define IPT_MAX_TAILS IPT_BASE_MASK
#define IPT_V4        0
#define IPT_V6        1

typedef unsigned __int128 ipt_u128;

struct ipt_key {
	uint64_t k_hi, k_lo;        /* the address, most significant first */
};

struct ipt_node {
	uint64_t n_inner;           /* children that are nodes */
	uint32_t n_inner_base;      /* index of the first child node */
	uint32_t n_tail_base;       /* first tail (25 bits) | off << 25 */
	uint64_t n_tail;            /* children holding one tail prefix */
	uint64_t n_full;            /* children inside a prefix */
	struct ipt_key n_key;       /* bits above off, for a full slot */
};

/* A tail: one prefix, its length beside it (one cache miss, not two). */
struct ipt_tail {
	uint8_t t_key[16];          /* most significant byte first */
	uint8_t t_len;
} __attribute__((packed));

/* A prefix as the builder keeps it; host bits clear. */
struct ipt_pfx {
	struct ipt_key p_key;
	uint8_t p_len;              /* 0..128 (IPv4: 0..32) */
	uint8_t p_fam;              /* IPT_V4, IPT_V6: sorts IPv4 first */
};

struct iptree_builder {
	struct ipt_pfx *b_pfx;
	size_t b_n, b_cap;
};

struct iptree {
	size_t t_count;             /* prefixes added */
	size_t t_bytes;             /* of this allocation */
	const struct ipt_node *t_nodes;
	const struct ipt_tail *t_tails;
	bool (*t_lookup)(const struct iptree *, uint32_t, ipt_u128);
	uint32_t t_root[2];         /* node index, IPv4 and IPv6 */
	/* nodes and tails follow */
};

/* ---- 128-bit keys ----------------------------------------------------- */

static inline ipt_u128 ipt_u(const struct ipt_key *k)
{
	return (ipt_u128)k->k_hi << 64 | k->k_lo;
}

static inline struct ipt_key ipt_key_of(ipt_u128 v)
{
	return (struct ipt_key){(uint64_t)(v >> 64), (uint64_t)v};
}

/* Do a and b agree on their first len bits (0..128)? */
static inline bool ipt_same(ipt_u128 a, ipt_u128 b, unsigned len)
{
	return len == 0 || ((a ^ b) >> (128 - len)) == 0;
}

/* The 6 bits of a at offset off (<= IPT_MAX_OFF). */
static inline unsigned ipt_chunk(ipt_u128 a, unsigned off)
{
	return (unsigned)((a << off) >> (128 - IPT_STRIDE));
}

static ipt_u128 ipt_mask(ipt_u128 a, unsigned len)
{
	if (len == 0)
		return 0;
	return a & ~(ipt_u128)0 << (128 - len);
}

/* Bits a and b share from the top; a != b. */
static unsigned ipt_common(ipt_u128 a, ipt_u128 b)
{
	ipt_u128 x = a ^ b;
	uint64_t hi = (uint64_t)(x >> 64);

	if (hi)
		return (unsigned)__builtin_clzll(hi);
	return 64 + (unsigned)__builtin_clzll((uint64_t)x);
}

static inline __attribute__((always_inline)) unsigned
ipt_rank(uint64_t map, unsigned bit)
{
	return (unsigned)__builtin_popcountll(map & ((2ull << bit) - 1)) - 1;
}

/* ---- lookup ----------------------------------------------------------- */

static inline ipt_u128 ipt_load16(const uint8_t *p)
{
	uint64_t hi, lo;

	memcpy(&hi, p, 8);
	memcpy(&lo, p + 8, 8);
	return (ipt_u128)be64toh(hi) << 64 | be64toh(lo);
}

/*
 * The walk, inlined into two copies: x86-64 CPUs before 2008 lack the
 * popcnt instruction, and without it the compiler calls a slow library
 * routine; iptree_build picks the copy the CPU can run.
 */
static inline __attribute__((always_inline)) bool
ipt_walk(const struct iptree *t, uint32_t root, ipt_u128 a)
{
	const struct ipt_node *n = &t->t_nodes[root];

	for (;;) {
		unsigned off = n->n_tail_base >> IPT_BASE_BITS;
		unsigned s = ipt_chunk(a, off);
		uint64_t bit = 1ull << s;

		if (n->n_inner & bit) {
			n = &t->t_nodes[n->n_inner_base + ipt_rank(n->n_inner, s)];
			continue;
		}
		if (n->n_tail & bit) {
			const struct ipt_tail *tl =
				&t->t_tails[(n->n_tail_base & IPT_BASE_MASK) +
					    ipt_rank(n->n_tail, s)];

			return ipt_same(a, ipt_load16(tl->t_key), tl->t_len);
		}
		return (n->n_full & bit) && ipt_same(a, ipt_u(&n->n_key), off);
	}
}

static bool ipt_lookup(const struct iptree *t, uint32_t root, ipt_u128 a)
{
	return ipt_walk(t, root, a);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("popcnt"))) static bool
ipt_lookup_popcnt(const struct iptree *t, uint32_t root, ipt_u128 a)
{
	return ipt_walk(t, root, a);
}
#endif

bool iptree_match_v4(const struct iptree *t, const uint8_t addr[4])
{
	uint32_t v = (uint32_t)addr[0] << 24 | (uint32_t)addr[1] << 16 |
		     (uint32_t)addr[2] << 8 | addr[3];

	return t->t_lookup(t, t->t_root[IPT_V4], (ipt_u128)v << 96);
}

bool iptree_match_v6(const struct iptree *t, const uint8_t addr[16])
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0,
					   0, 0, 0, 0, 0xff, 0xff};

	if (memcmp(addr, mapped, sizeof(mapped)) == 0)
		return iptree_match_v4(t, addr + 12);
	return t->t_lookup(t, t->t_root[IPT_V6], ipt_load16(addr));
}

bool iptree_match(const struct iptree *t, const struct sockaddr_storage *peer)
{
	if (peer->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)peer;

		return iptree_match_v4(t, (const uint8_t *)&in->sin_addr);
	}
	if (peer->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)peer;

		return iptree_match_v6(t, in6->sin6_addr.s6_addr);
	}
	return false;
}

size_t iptree_count(const struct iptree *t)
{
	return t->t_count;
}

size_t iptree_bytes(const struct iptree *t)
{
	return t->t_bytes;
}

void iptree_free(struct iptree *t)
{
	free(t);
}

/* ---- builder ---------------------------------------------------------- */

struct iptree_builder *iptree_builder_new(void)
{
	return calloc(1, sizeof(struct iptree_builder));
}

void iptree_builder_free(struct iptree_builder *b)
{
	if (b)
		free(b->b_pfx);
	free(b);
}

size_t iptree_builder_count(const struct iptree_builder *b)
{
	return b->b_n;
}

static int ipt_push(struct iptree_builder *b, int fam, ipt_u128 a,
		    unsigned len)
{
	if (b->b_n == b->b_cap) {
		size_t cap = b->b_cap ? b->b_cap * 2 : 64;
		struct ipt_pfx *p;

		if (b->b_n >= IPT_MAX_TAILS) {
			errno = E2BIG;
			return -1;
		}
		p = realloc(b->b_pfx, cap * sizeof(*p));
		if (!p)
			return -1;
		b->b_pfx = p;
		b->b_cap = cap;
	}
	b->b_pfx[b->b_n++] = (struct ipt_pfx){
		.p_key = ipt_key_of(ipt_mask(a, len)),
		.p_len = (uint8_t)len,
		.p_fam = (uint8_t)fam,
	};
	return 0;
}

int iptree_builder_add(struct iptree_builder *b, int family, const void *addr,
		       unsigned prefix_len)
{
	const uint8_t *p = addr;
	ipt_u128 a;

	if (family == AF_INET && prefix_len <= 32) {
		a = (ipt_u128)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
			       (uint32_t)p[2] << 8 | p[3])
		    << 96;
		return ipt_push(b, IPT_V4, a, prefix_len);
	}
	if (family != AF_INET6 || prefix_len > 128) {
		errno = EINVAL;
		return -1;
	}
	a = ipt_load16(p);
	/* ::ffff:a.b.c.d/96+n is a.b.c.d/n: mapped peers are looked up so. */
	if (prefix_len >= 96 && (a >> 32) == 0xffff)
		return ipt_push(b, IPT_V4, a << 96, prefix_len - 96);
	return ipt_push(b, IPT_V6, a, prefix_len);
}

int iptree_builder_add_cidr(struct iptree_builder *b, const struct cidr *c)
{
	return iptree_builder_add(b, c->cd_family, c->cd_addr, c->cd_prefix);
}

/* ---- build ------------------------------------------------------------ */

/* Order of the build: family, address, then length (shorter first). */
static inline bool ipt_less(const struct ipt_pfx *a, const struct ipt_pfx *b)
{
	if (a->p_fam != b->p_fam)
		return a->p_fam < b->p_fam;
	if (a->p_key.k_hi != b->p_key.k_hi)
		return a->p_key.k_hi < b->p_key.k_hi;
	if (a->p_key.k_lo != b->p_key.k_lo)
		return a->p_key.k_lo < b->p_key.k_lo;
	return a->p_len < b->p_len;
}

static int ipt_pfx_cmp(const void *x, const void *y)
{
	return ipt_less(x, y) ? -1 : ipt_less(y, x);
}

static inline void ipt_swap(struct ipt_pfx *a, struct ipt_pfx *b)
{
	struct ipt_pfx t = *a;

	*a = *b;
	*b = t;
}

/*
 * Sort p[0..n): quicksort with the comparison inlined (three times faster
 * than qsort on a million prefixes), insertion sort below 16, and qsort's
 * merge sort past a depth that only a crafted input reaches.
 */
static void ipt_sort(struct ipt_pfx *p, size_t n, unsigned depth)
{
	while (n > 16) {
		struct ipt_pfx pivot;
		size_t i = 0, j = n - 1, m = n / 2;

		if (depth-- == 0) {
			qsort(p, n, sizeof(*p), ipt_pfx_cmp);
			return;
		}
		/* median of three, then Hoare's partition */
		if (ipt_less(&p[m], &p[0]))
			ipt_swap(&p[m], &p[0]);
		if (ipt_less(&p[n - 1], &p[m]))
			ipt_swap(&p[n - 1], &p[m]);
		if (ipt_less(&p[m], &p[0]))
			ipt_swap(&p[m], &p[0]);
		pivot = p[m];
		for (;;) {
			while (ipt_less(&p[i], &pivot))
				i++;
			while (ipt_less(&pivot, &p[j]))
				j--;
			if (i >= j)
				break;
			ipt_swap(&p[i++], &p[j--]);
		}
		/* p[0..j] <= pivot <= p[j+1..n): recurse on the smaller */
		if (j + 1 < n - j - 1) {
			ipt_sort(p, j + 1, depth);
			p += j + 1;
			n -= j + 1;
		} else {
			ipt_sort(p + j + 1, n - j - 1, depth);
			n = j + 1;
		}
	}
	for (size_t i = 1; i < n; i++) {
		struct ipt_pfx x = p[i];
		size_t j = i;

		for (; j > 0 && ipt_less(&x, &p[j - 1]); j--)
			p[j] = p[j - 1];
		p[j] = x;
	}
}

/*
 * Drop, from the sorted p[0..n), every prefix inside the last one kept.
 * Kept prefixes are disjoint and sorted, so only the last can contain the
 * next.  Returns how many are kept, at the front of p.
 */
static size_t ipt_disjoint(struct ipt_pfx *p, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		if (k > 0 && p[k - 1].p_fam == p[i].p_fam &&
		    p[k - 1].p_len <= p[i].p_len &&
		    ipt_same(ipt_u(&p[k - 1].p_key), ipt_u(&p[i].p_key),
			     p[k - 1].p_len))
			continue;
		p[k++] = p[i];
	}
	return k;
}

struct ipt_work {
	struct ipt_node *w_nodes;
	size_t w_nnodes, w_capnodes;
	struct ipt_tail *w_tails;
	size_t w_ntails;
	bool w_is_oom;
};

/* count zeroed nodes at the end; their first index, or SIZE_MAX. */
static size_t ipt_nodes_add(struct ipt_work *w, size_t count)
{
	size_t at = w->w_nnodes;

	if (at + count > w->w_capnodes) {
		size_t cap = w->w_capnodes ? w->w_capnodes * 2 : 256;
		struct ipt_node *nodes;

		while (cap < at + count)
			cap *= 2;
		nodes = cap > UINT32_MAX
				? NULL
				: realloc(w->w_nodes, cap * sizeof(*nodes));
		if (!nodes) {
			w->w_is_oom = true;
			return SIZE_MAX;
		}
		w->w_nodes = nodes;
		w->w_capnodes = cap;
	}
	memset(&w->w_nodes[at], 0, count * sizeof(*w->w_nodes));
	w->w_nnodes += count;
	return at;
}

/* Room was reserved for every prefix: a prefix is a tail at most once. */
static void ipt_tail_add(struct ipt_work *w, const struct ipt_pfx *p)
{
	struct ipt_tail *t = &w->w_tails[w->w_ntails++];
	uint64_t hi = htobe64(p->p_key.k_hi), lo = htobe64(p->p_key.k_lo);

	memcpy(t->t_key, &hi, 8);
	memcpy(t->t_key + 8, &lo, 8);
	t->t_len = p->p_len;
}

/* Where the node above the disjoint, sorted p[0..n) starts looking. */
static unsigned ipt_node_off(const struct ipt_pfx *p, size_t n)
{
	unsigned common;

	if (n < 2)
		return 0;
	common = ipt_common(ipt_u(&p[0].p_key), ipt_u(&p[n - 1].p_key));
	return common < IPT_MAX_OFF ? common : IPT_MAX_OFF;
}

/*
 * Fill node idx with the disjoint, sorted p[0..n), all sharing their first
 * off bits and all longer than off, then its child nodes, depth first.
 */
static void ipt_fill(struct ipt_work *w, size_t idx, const struct ipt_pfx *p,
		     size_t n, unsigned off)
{
	uint64_t inner = 0, full = 0, tail = 0;
	size_t i = 0, j, tail_base = w->w_ntails, base, k;
	struct ipt_node *node;

	while (i < n) {
		ipt_u128 a = ipt_u(&p[i].p_key);
		unsigned s = ipt_chunk(a, off);

		if (p[i].p_len <= off + IPT_STRIDE) {
			unsigned span = 1u << (off + IPT_STRIDE - p[i].p_len);

			full |= (span == 64 ? ~0ull : ((1ull << span) - 1))
				<< s;
			i++;
			continue;
		}
		for (j = i + 1;
		     j < n && ipt_chunk(ipt_u(&p[j].p_key), off) == s; j++)
			;
		if (j - i == 1) {
			ipt_tail_add(w, &p[i]);
			tail |= 1ull << s;
		} else {
			inner |= 1ull << s;
		}
		i = j;
	}
	base = ipt_nodes_add(w, (size_t)__builtin_popcountll(inner));
	if (base == SIZE_MAX)
		return;
	node = &w->w_nodes[idx];
	if (n > 0)
		node->n_key = ipt_key_of(ipt_mask(ipt_u(&p[0].p_key), off));
	node->n_inner = inner;
	node->n_full = full;
	node->n_tail = tail;
	node->n_inner_base = (uint32_t)base;
	node->n_tail_base = (uint32_t)tail_base | (uint32_t)off << IPT_BASE_BITS;
	/* Second pass: the groups of two or more, in slot order. */
	for (i = 0, k = 0; i < n && !w->w_is_oom; i = j) {
		unsigned s = ipt_chunk(ipt_u(&p[i].p_key), off);

		for (j = i + 1;
		     j < n && ipt_chunk(ipt_u(&p[j].p_key), off) == s; j++)
			;
		if (!(inner & (1ull << s)))
			continue;
		ipt_fill(w, base + k++, &p[i], j - i,
			 ipt_node_off(&p[i], j - i));
	}
}

/* The root node of one family's disjoint, sorted p[0..n). */
static uint32_t ipt_root(struct ipt_work *w, const struct ipt_pfx *p,
			 size_t n)
{
	size_t idx = ipt_nodes_add(w, 1);

	if (idx == SIZE_MAX)
		return 0;
	ipt_fill(w, idx, p, n, ipt_node_off(p, n));
	return (uint32_t)idx;
}

/* One allocation: header, nodes, tails. */
static struct iptree *ipt_pack(const struct ipt_work *w, size_t count,
			       const uint32_t root[2])
{
	size_t nodes = w->w_nnodes * sizeof(struct ipt_node);
	size_t tails = w->w_ntails * sizeof(struct ipt_tail);
	size_t bytes = sizeof(struct iptree) + nodes + tails;
	struct iptree *t = malloc(bytes);
	char *at;

	if (!t)
		return NULL;
	at = (char *)(t + 1);
	memcpy(at, w->w_nodes, nodes);
	t->t_nodes = (const struct ipt_node *)at;
	at += nodes;
	if (tails)
		memcpy(at, w->w_tails, tails);
	t->t_tails = (const struct ipt_tail *)at;
	t->t_count = count;
	t->t_bytes = bytes;
	t->t_root[IPT_V4] = root[IPT_V4];
	t->t_root[IPT_V6] = root[IPT_V6];
	t->t_lookup = ipt_lookup;
#if defined(__x86_64__) || defined(__i386__)
	if (__builtin_cpu_supports("popcnt"))
		t->t_lookup = ipt_lookup_popcnt;
#endif
	return t;
}

struct iptree *iptree_build(struct iptree_builder *b)
{
	struct ipt_work w = {0};
	struct iptree *t = NULL;
	uint32_t root[2];
	size_t n, nv4, count = b->b_n;

	if (b->b_n > 1)
		ipt_sort(b->b_pfx, b->b_n, 2 * 64);
	n = ipt_disjoint(b->b_pfx, b->b_n);
	for (nv4 = 0; nv4 < n && b->b_pfx[nv4].p_fam == IPT_V4; nv4++)
		;
	w.w_tails = malloc((n ? n : 1) * sizeof(*w.w_tails));
	if (!w.w_tails)
		goto fail;
	root[IPT_V4] = ipt_root(&w, b->b_pfx, nv4);
	root[IPT_V6] = ipt_root(&w, b->b_pfx + nv4, n - nv4);
	if (w.w_is_oom)
		goto fail;
	t = ipt_pack(&w, count, root);
fail:
	free(w.w_nodes);
	free(w.w_tails);
	iptree_builder_free(b);
	if (!t)
		errno = ENOMEM;
	return t;
}
