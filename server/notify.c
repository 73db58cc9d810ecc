/* notify.c: sd_notify without libsystemd (see notify.h). */
#include "server/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"

#define NOTIFY_MSG_MAX 2048

static int notify_sock = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_addrlen;

int notify_open(char *err, size_t errlen)
{
	const char *name = getenv("NOTIFY_SOCKET");
	size_t len;

	notify_close();
	if (name == NULL || *name == '\0')
		return 0;
	len = strlen(name);
	if ((name[0] != '/' && name[0] != '@') ||
	    len >= sizeof(notify_addr.sun_path)) {
		snprintf(err, errlen,
			 "NOTIFY_SOCKET '%s': not an absolute path "
			 "or '@' abstract name that fits a unix socket",
			 name);
		return -1;
	}
	memset(&notify_addr, 0, sizeof(notify_addr));
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, name, len);
	if (name[0] == '@')
		notify_addr.sun_path[0] = '\0';
	notify_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				     len + (name[0] == '/'));
	notify_sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (notify_sock == -1) {
		snprintf(err, errlen, "NOTIFY_SOCKET: socket: %s",
			 strerror(errno));
		return -1;
	}
	return 0;
}

int notify_fd(void)
{
	return notify_sock;
}

int notify_send(const char *fmt, ...)
{
	char msg[NOTIFY_MSG_MAX];
	va_list ap;
	int n;

	if (notify_sock == -1)
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	if (sendto(notify_sock, msg, (size_t)n, MSG_NOSIGNAL,
		   (const struct sockaddr *)&notify_addr,
		   notify_addrlen) == -1) {
		log_debug("sd_notify: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void notify_close(void)
{
	if (notify_sock != -1)
		close(notify_sock);
	notify_sock = -1;
}
