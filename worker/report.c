/* report.c: messages from a worker to its master (see report.h). */
#include "worker/report.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static bool report_send(int fd, const struct worker_msg *m)
{
	if (fd < 0)
		return false;
	if (write(fd, m, sizeof(*m)) == (ssize_t)sizeof(*m))
		return true;
	log_warn("reporting to the master: %s",
		 errno == EAGAIN ? "its pipe is full" : strerror(errno));
	return false;
}

bool report_event(int fd, enum worker_event ev)
{
	struct worker_msg m = {.wm_pid = (int32_t)getpid(),
			       .wm_event = (int32_t)ev};

	return report_send(fd, &m);
}

bool report_ban(int fd, const struct sockaddr_storage *client)
{
	struct worker_msg m = {.wm_pid = (int32_t)getpid(),
			       .wm_event = WORKER_EV_BAN};

	if (client->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)client;

		m.wm_family = 4;
		memcpy(m.wm_addr, &in->sin_addr, 4);
	} else if (client->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)client;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			m.wm_family = 4;
			memcpy(m.wm_addr, in6->sin6_addr.s6_addr + 12, 4);
		} else {
			m.wm_family = 6;
			memcpy(m.wm_addr, &in6->sin6_addr, 16);
		}
	} else {
		return false;
	}
	return report_send(fd, &m);
}

bool report_ban_addr(const struct worker_msg *m, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (m->wm_event != WORKER_EV_BAN)
		return false;
	if (m->wm_family == 4) {
		struct sockaddr_in *in = (void *)out;

		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, m->wm_addr, 4);
		return true;
	}
	if (m->wm_family == 6) {
		struct sockaddr_in6 *in6 = (void *)out;

		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, m->wm_addr, 16);
		return true;
	}
	return false;
}
