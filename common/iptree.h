/*
 * iptree.h: a read-only set of IPv4 and IPv6 prefixes, for allow: and
 * deny: lists of up to millions of entries, asking only "is this address
 * inside any of them?".
 *
 * A builder collects prefixes (in any order, overlapping and duplicated
 * as they come); iptree_build() turns them into a multibit trie (6 bits a
 * level, children found by popcount over 64-bit maps, as in poptrie) with
 * path compression, held in one allocation.  A lookup visits about
 * log64(n) nodes and compares the address once at the end.  Built in the
 * master before fork and never written again, its pages are shared by
 * every worker.
 *
 * Addresses: an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is looked up
 * as the IPv4 address a.b.c.d, and an IPv6 prefix inside ::ffff:0:0/96 is
 * stored as the IPv4 prefix it spells.  Host bits set in a prefix
 * (10.1.2.3/8) are cleared, as cidr_parse(), iptables and nftables do.
 */
#ifndef PORTCULLIS_IPTREE_H
#define PORTCULLIS_IPTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr;
struct iptree;
struct iptree_builder;

/* An empty builder, or NULL without memory. */
struct iptree_builder *iptree_builder_new(void);

/*
 * Add the prefix addr/prefix_len of family (AF_INET: addr is 4 bytes in
 * network order, prefix_len <= 32; AF_INET6: 16 bytes, <= 128).  0, or -1
 * with errno EINVAL (bad family or length) or ENOMEM.
 */
int iptree_builder_add(struct iptree_builder *b, int family, const void *addr,
		       unsigned prefix_len);

/* The same for a parsed range (common/cidr.h). */
int iptree_builder_add_cidr(struct iptree_builder *b, const struct cidr *c);

/* Prefixes added so far (duplicates counted). */
size_t iptree_builder_count(const struct iptree_builder *b);

/* Free a builder that was not built; takes NULL. */
void iptree_builder_free(struct iptree_builder *b);

/*
 * Build the tree and free b (always, even on failure).  Returns the tree,
 * which the caller owns (iptree_free), or NULL with errno ENOMEM.  With no
 * prefixes added the tree is valid and matches nothing.
 */
struct iptree *iptree_build(struct iptree_builder *b);

/*
 * Is peer (AF_INET or AF_INET6; anything else: false) inside one of the
 * prefixes?  Reads t only: safe from any number of processes or threads.
 */
bool iptree_match(const struct iptree *t, const struct sockaddr_storage *peer);

/* The same for a raw address: 4 bytes (IPv4) or 16 bytes (IPv6, mapped
 * addresses looked up as IPv4), network order. */
bool iptree_match_v4(const struct iptree *t, const uint8_t addr[4]);
bool iptree_match_v6(const struct iptree *t, const uint8_t addr[16]);

/* Prefixes the tree was built from, as added (duplicates counted). */
size_t iptree_count(const struct iptree *t);

/* Bytes the built tree holds (the one allocation, header included). */
size_t iptree_bytes(const struct iptree *t);

/* Takes NULL. */
void iptree_free(struct iptree *t);

#endif
