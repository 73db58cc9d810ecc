/*
 * access.h: the access log: one line per request, in Apache/nginx
 * "combined" format or as one JSON object per line.  Lines are gathered
 * in a per-worker buffer and written with one write() per loop turn (or
 * when the buffer fills), to a file opened O_APPEND that every worker
 * shares: a write() of whole lines is never split between workers.
 */
#ifndef PORTCULLIS_ACCESS_H
#define PORTCULLIS_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"

/* A byte string borrowed from the caller; len 0 logs "-". */
struct access_str {
	const char *p;
	size_t len;
};

/* One request, as the log line will tell it.  Everything is borrowed. */
struct access_rec {
	const char *client;            /* peer address */
	struct access_str method, uri, referer, agent, request_id;
	unsigned version;              /* 10 or 11; 0 when unknown */
	unsigned status;               /* sent to the client (0: none) */
	uint64_t bytes_in, bytes_out;  /* whole request / response bytes */
	uint64_t duration_ms;          /* first request byte to last response byte */
	const char *listener;
	unsigned route;                /* 1-based route index, 0 = none */
	const char *backend, *server;  /* NULL: none was picked */
	unsigned upstream_status;      /* 0: no response from a server */
	int64_t upstream_connect_ms;   /* -1: no connect was needed / made */
	int64_t upstream_response_ms;  /* -1: no response head */
	const char *tls_version;       /* "TLSv1.3"; NULL: plain */
	const char *tls_cipher;
	struct access_str client_subject;     /* verified client certificate */
	struct access_str client_fingerprint; /* SHA-256, hex */
};

/*
 * Open the log ("stderr" or a path) in the given format, with
 * log_file_open(path, uid, gid) (a worker calls it as root, before it
 * drops to uid:gid).  0, or -1 with the reason in err.  path NULL turns
 * the access log off.
 */
int access_open(const char *path, enum cfg_access_format format, uid_t uid,
		gid_t gid, char *err, size_t errlen);

/*
 * Master side: create the log file if it is missing, as uid:gid (not -1)
 * would (log_file_open), so that workers, which run as that user, can
 * reopen it after rotation.  Does nothing for off / stderr.  0, or -1
 * with the reason in err.
 */
int access_prepare(const char *path, uid_t uid, gid_t gid, char *err,
		   size_t errlen);

/* Reopen the file after rotation (SIGUSR1).  0, or -1 with err filled. */
int access_reopen(char *err, size_t errlen);

static inline bool access_enabled(void)
{
	extern int access_fd;

	return access_fd >= 0;
}

/* Format r and queue the line. */
void access_log(const struct access_rec *r);

/* Write the queued lines (end of every loop turn). */
void access_flush(void);

/* Flush and close. */
void access_close(void);

/*
 * Append s to out (at most cap bytes) escaped for a JSON string or for a
 * quoted field of the combined format.  Returns the bytes written.
 * Exported for tests.
 */
size_t access_escape(char *out, size_t cap, struct access_str s, bool json);

#endif
