/*
 * notify.h: the systemd notification protocol (sd_notify(3)), written out
 * instead of linking libsystemd: one datagram of "KEY=VALUE\n" lines to
 * the AF_UNIX socket named by $NOTIFY_SOCKET (an abstract address when
 * the name starts with '@').  Without $NOTIFY_SOCKET every call is a
 * no-op, so the master calls it unconditionally.
 *
 * The master sends: READY=1 once a generation serves; RELOADING=1 with
 * MONOTONIC_USEC= when a reload starts and READY=1 when it ends (either
 * way); STOPPING=1; STATUS= with the serving generation and the last
 * reload error; MAINPID= when a binary upgrade hands over.
 */
#ifndef PORTCULLIS_NOTIFY_H
#define PORTCULLIS_NOTIFY_H

#include <stddef.h>

/*
 * Read $NOTIFY_SOCKET and open a datagram socket for it.  0 when it is
 * unset or usable, -1 (with a message in err) when it is malformed or
 * the socket cannot be created.  The variable stays in the environment:
 * a master started by a binary upgrade needs it too.
 */
int notify_open(char *err, size_t errlen);

/* The socket's descriptor, -1 if none (children close it). */
int notify_fd(void);

/*
 * Send one message built like printf, e.g. notify_send("READY=1\nSTATUS=%s",
 * s).  0, or -1 with errno (also logged once at debug level); the daemon
 * never depends on the notification arriving.
 */
int notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Close the socket. */
void notify_close(void);

#endif
