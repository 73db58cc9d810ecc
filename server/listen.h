/*
 * listen.h: the master's listening sockets.  They are bound once and kept
 * across reloads: a reload reuses the socket of every address that is
 * still configured, binds the new ones and closes those that went away,
 * so no connection is ever refused while a new generation starts.
 */
#ifndef PORTCULLIS_LISTEN_H
#define PORTCULLIS_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "config/config.h"

struct listen_sock {
	struct sockaddr_storage ls_sa;
	socklen_t ls_salen;
	int ls_fd;
	int ls_shard;          /* -1: shared by all workers; else the worker
				  slot whose own SO_REUSEPORT socket it is */
	bool ls_in_use;        /* wanted by the newest config */
};

struct listen_set {
	struct listen_sock *ls_socks;
	size_t ls_n, ls_cap;
};

/*
 * Make sure every bind address of cfg has its listening socket: one shared
 * by all workers, or with `reuseport` one SO_REUSEPORT socket per worker
 * slot.  Fills *fds (malloc'd, caller frees) with cfg->workers rows of
 * *nfds descriptors, one per bind address in config order: row k is what
 * worker slot k accepts from (listen_row).  On failure returns -1, writes
 * a message to err, and closes only the sockets this call opened.
 */
int listen_apply(struct listen_set *set, const struct config *cfg, int **fds,
		 size_t *nfds, char *err, size_t errlen);

/* Worker slot k's row of a listen_apply array (slots beyond: row 0). */
static inline const int *listen_row(const int *fds, size_t nfds, size_t nslots,
				    size_t k)
{
	return fds + (k < nslots ? k : 0) * nfds;
}

/* Close the sockets the newest config no longer uses. */
void listen_prune(struct listen_set *set);

/* Close every socket and free the set. */
void listen_free(struct listen_set *set);

/* Is fd one of the set's sockets? (children close the others) */
bool listen_has_fd(const struct listen_set *set, int fd);

/*
 * Binary upgrade, old side.  Write "FD=ADDR;FD=ADDR..." (e.g.
 * "5=127.0.0.1:8080;6=[::1]:8080") for every socket of the set into buf,
 * the value of LISTEN_ENV_FDS for the new binary.  -1 if it does not fit.
 */
#define LISTEN_ENV_FDS "PORTCULLIS_LISTEN_FDS"
int listen_export(const struct listen_set *set, char *buf, size_t len);

/* In the child about to exec the new binary: keep the sockets open. */
void listen_inherit(const struct listen_set *set);

/*
 * Binary upgrade, new side.  Take over the sockets named in value (the
 * format of listen_export) into an empty set: each must be a listening
 * TCP socket; its address is read back with getsockname().  listen_apply
 * then reuses those the config still names, and listen_prune closes the
 * rest.  0, or -1 with a message in err (the set keeps what was adopted).
 */
int listen_adopt(struct listen_set *set, const char *value, char *err,
		 size_t errlen);

/* "127.0.0.1:80" or "[::1]:80" for a socket of the set, into buf. */
void listen_addr_str(const struct listen_sock *ls, char *buf, size_t len);

#endif
