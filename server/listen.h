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
	bool ls_in_use;        /* wanted by the newest config */
};

struct listen_set {
	struct listen_sock *ls_socks;
	size_t ls_n, ls_cap;
};

/*
 * Make sure every bind address of cfg has a listening socket.  Fills
 * *fds (malloc'd, caller frees) with one fd per bind address in config
 * order.  On failure returns -1, writes a message to err, and closes only
 * the sockets this call opened.
 */
int listen_apply(struct listen_set *set, const struct config *cfg, int **fds,
		 size_t *nfds, char *err, size_t errlen);

/* Close the sockets the newest config no longer uses. */
void listen_prune(struct listen_set *set);

/* Close every socket and free the set. */
void listen_free(struct listen_set *set);

/* Is fd one of the set's sockets? (children close the others) */
bool listen_has_fd(const struct listen_set *set, int fd);

#endif
