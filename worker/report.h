/*
 * report.h: what a worker tells its master over the report pipe
 * (server/supervisor.c reads it): that it accepts, that it drains, and
 * which clients to ban (server/ban.c).
 *
 * Each message is written whole in one write() smaller than PIPE_BUF, so
 * it is atomic and the master never reads part of one.  The pipe is
 * non-blocking: a worker never waits for its master, and a message that
 * does not fit is dropped (and logged).
 */
#ifndef PORTCULLIS_REPORT_H
#define PORTCULLIS_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

enum worker_event {
	WORKER_EV_READY = 1,    /* its listeners are in its epoll set */
	WORKER_EV_RETIRED = 2,  /* draining: it will accept nothing more */
	WORKER_EV_BAN = 3,      /* ban wm_addr (config ban:) */
};

struct worker_msg {
	int32_t wm_pid;
	int32_t wm_event;       /* enum worker_event */
	uint8_t wm_family;      /* WORKER_EV_BAN: 4 or 6 */
	uint8_t wm_addr[16];    /* the first 4 bytes for IPv4 */
};

/* Send ev to the master on fd (-1: none).  false when it was lost. */
bool report_event(int fd, enum worker_event ev);

/*
 * Ask the master to ban client (IPv4, IPv6, IPv4-mapped IPv6 as IPv4).
 * false when it was lost or client is not an IP address.
 */
bool report_ban(int fd, const struct sockaddr_storage *client);

/*
 * Decode a WORKER_EV_BAN message into out (AF_INET or AF_INET6, port
 * 0).  false when it is malformed.
 */
bool report_ban_addr(const struct worker_msg *m, struct sockaddr_storage *out);

#endif
