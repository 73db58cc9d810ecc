/* access.c: the access log (see access.h). */
#include "worker/access.h"

#include "common/log.h"
#include "common/timer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ACCESS_BUF 65536
#define ACCESS_LINE_MAX 12288 /* a line never needs more; longer fields are cut */

int access_fd = -1;
static bool access_is_syslog;       /* access_fd is a datagram socket */
static char access_host[256];       /* RFC 5424 HOSTNAME */
static enum cfg_access_format access_format;
static char access_path[4096];
static char access_buf[ACCESS_BUF];
static size_t access_len;

/*
 * "syslog": a datagram socket connected to /dev/log (PORTCULLIS_SYSLOG_PATH
 * overrides it, for the tests).  The socket is opened before the worker
 * drops its privileges; /dev/log is writable by everyone, so a reconnect
 * after the syslog daemon restarted works as the worker's user too.
 */
static int access_syslog_connect(char *err, size_t errlen)
{
	const char *dev = getenv("PORTCULLIS_SYSLOG_PATH");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s",
		 dev != NULL && *dev == '/' ? dev : "/dev/log");
	if (fd != -1 &&
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	snprintf(err, errlen, "%s: %s", sa.sun_path, strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

int access_open(const char *path, enum cfg_access_format format, uid_t uid,
		gid_t gid, char *err, size_t errlen)
{
	access_close();
	if (path == NULL)
		return 0;
	access_format = format;
	snprintf(access_path, sizeof(access_path), "%s", path);
	if (strcmp(path, "syslog") == 0) {
		if (gethostname(access_host, sizeof(access_host) - 1) == -1 ||
		    access_host[0] == '\0')
			snprintf(access_host, sizeof(access_host), "-");
		access_fd = access_syslog_connect(err, errlen);
		access_is_syslog = access_fd >= 0;
		return access_fd >= 0 ? 0 : -1;
	}
	if (strcmp(path, "stderr") == 0) {
		access_fd = STDERR_FILENO;
		return 0;
	}
	access_fd = log_file_open(path, uid, gid, err, errlen);
	return access_fd >= 0 ? 0 : -1;
}

int access_prepare(const char *path, uid_t uid, gid_t gid, char *err,
		   size_t errlen)
{
	int fd;

	if (path == NULL || strcmp(path, "stderr") == 0 ||
	    strcmp(path, "syslog") == 0)
		return 0;
	fd = log_file_open(path, uid, gid, err, errlen);
	if (fd == -1)
		return -1;
	close(fd);
	return 0;
}

int access_reopen(char *err, size_t errlen)
{
	int fd;

	if (access_fd < 0 || access_fd == STDERR_FILENO || access_is_syslog)
		return 0;
	access_flush();
	/* a worker runs as its own user here: a plain open, same checks */
	fd = log_file_open(access_path, (uid_t)-1, (gid_t)-1, err, errlen);
	if (fd == -1)
		return -1;
	close(access_fd);
	access_fd = fd;
	return 0;
}

/*
 * Lines that could not be written (disk full, file too large) are dropped
 * rather than stall the worker, but never silently: the first loss is
 * logged with its reason, further ones at most every ACCESS_LOSS_LOG_MS
 * with a count, and the first write that succeeds again says how many
 * were lost in all.
 */
#define ACCESS_LOSS_LOG_MS 10000

static uint64_t access_lost;        /* lines lost since writing last worked */
static uint64_t access_loss_log_at; /* when the next report may go out */

static void access_count_loss(const char *from, size_t len, int err)
{
	uint64_t now = timer_now_ms();

	for (const char *p = from; (p = memchr(p, '\n', len - (size_t)(p - from)));
	     p++)
		access_lost++;
	if (now < access_loss_log_at)
		return;
	log_error("access log %s: %s: %" PRIu64 " lines lost so far",
		  access_path, strerror(err), access_lost);
	access_loss_log_at = now + ACCESS_LOSS_LOG_MS;
}

static void access_note_written(void)
{
	if (access_lost == 0)
		return;
	log_notice("access log %s: writing again; %" PRIu64 " lines were lost",
		   access_path, access_lost);
	access_lost = 0;
	access_loss_log_at = 0;
}

/*
 * Each queued line as one RFC 5424 message (§6): "<PRI>1 TIMESTAMP
 * HOSTNAME APP-NAME PROCID MSGID - MSG", facility daemon, severity info,
 * MSGID "access".  A message the socket will not take now (its queue is
 * full, the daemon is gone) is dropped and counted, never waited for.
 */
static void access_flush_syslog(void)
{
	char head[512], tz[8];
	struct timespec ts;
	struct tm tm;
	size_t off = 0;
	int hn;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(tz, sizeof(tz), "%z", &tm); /* +0100: RFC 3339 wants +01:00 */
	hn = (int)strftime(head, sizeof(head), "<30>1 %Y-%m-%dT%H:%M:%S", &tm);
	hn += snprintf(head + hn, sizeof(head) - (size_t)hn,
		       ".%03ld%.3s:%s %s portcullis %d access - ",
		       ts.tv_nsec / 1000000, tz, tz + 3, access_host,
		       (int)getpid());
	while (off < access_len) {
		char *nl = memchr(access_buf + off, '\n', access_len - off);
		size_t len = (nl ? (size_t)(nl - access_buf) : access_len) - off;
		struct iovec iov[2] = {{head, (size_t)hn},
				       {access_buf + off, len}};
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};

		if (sendmsg(access_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == -1) {
			access_count_loss(access_buf + off, access_len - off,
					  errno);
			break;
		}
		access_note_written();
		off += len + 1;
	}
	access_len = 0;
}

void access_flush(void)
{
	size_t off = 0;

	if (access_is_syslog) {
		access_flush_syslog();
		return;
	}

	while (off < access_len) {
		ssize_t n = write(access_fd, access_buf + off, access_len - off);

		if (n <= 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* disk full or gone: drop rather than stall, and say so */
			access_count_loss(access_buf + off, access_len - off,
					  n == 0 ? ENOSPC : errno);
			break;
		}
		off += (size_t)n;
		access_note_written();
	}
	access_len = 0;
}

void access_close(void)
{
	if (access_fd < 0)
		return;
	access_flush();
	if (access_fd != STDERR_FILENO)
		close(access_fd);
	access_fd = -1;
	access_is_syslog = false;
}

size_t access_escape(char *out, size_t cap, struct access_str s, bool json)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	if (s.len == 0 && cap > 0) {
		out[0] = '-';
		return 1;
	}
	for (size_t i = 0; i < s.len; i++) {
		unsigned char ch = (unsigned char)s.p[i];
		size_t width = ch == '"' || ch == '\\'     ? 2
			       : ch >= 0x20 && ch < 0x7f ? 1
			       : json                    ? 6
							 : 4;

		if (n + width > cap)
			break; /* a character fits whole or not at all */
		if (ch == '"' || ch == '\\') {
			out[n++] = '\\';
			out[n++] = (char)ch;
		} else if (ch >= 0x20 && ch < 0x7f) {
			out[n++] = (char)ch;
		} else if (json) {
			memcpy(out + n, "\\u00", 4);
			out[n + 4] = hex[ch >> 4];
			out[n + 5] = hex[ch & 15];
			n += 6;
		} else {
			out[n++] = '\\';
			out[n++] = 'x';
			out[n++] = hex[ch >> 4];
			out[n++] = hex[ch & 15];
		}
	}
	return n;
}

/* Append a formatted piece; the line buffer is large enough by design. */
static size_t put(char *line, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static size_t put(char *line, size_t n, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (n >= ACCESS_LINE_MAX)
		return n;
	va_start(ap, fmt);
	k = vsnprintf(line + n, ACCESS_LINE_MAX - n, fmt, ap);
	va_end(ap);
	if (k < 0)
		return n;
	n += (size_t)k;
	return n < ACCESS_LINE_MAX ? n : ACCESS_LINE_MAX - 1;
}

static size_t put_str(char *line, size_t n, struct access_str s, bool json,
		      size_t max)
{
	size_t room = ACCESS_LINE_MAX - 64 - n;

	return n + access_escape(line + n, room < max ? room : max, s, json);
}

static struct access_str cstr(const char *s)
{
	struct access_str a = {s, s ? strlen(s) : 0};

	return a;
}

static size_t access_combined(char *line, const struct access_rec *r,
			      const struct tm *tm)
{
	char ts[64];
	size_t n = 0;

	strftime(ts, sizeof(ts), "%d/%b/%Y:%H:%M:%S %z", tm);
	n = put(line, n, "%s - - [%s] \"", r->client, ts);
	if (r->method.len == 0) {
		/* never parsed: the raw request line is the whole field */
		n = put_str(line, n, r->uri, false, 8192);
	} else {
		n = put_str(line, n, r->method, false, 64);
		n = put(line, n, " ");
		n = put_str(line, n, r->uri, false, 8192);
		n = put(line, n, " HTTP/1.%u", r->version == 10 ? 0 : 1);
	}
	n = put(line, n, "\" %u %" PRIu64 " \"", r->status, r->bytes_out);
	n = put_str(line, n, r->referer, false, 1024);
	n = put(line, n, "\" \"");
	n = put_str(line, n, r->agent, false, 1024);
	return put(line, n, "\"\n");
}

static size_t access_json_str(char *line, size_t n, const char *key,
			      struct access_str s, size_t max)
{
	if (s.len == 0)
		return put(line, n, ",\"%s\":null", key);
	n = put(line, n, ",\"%s\":\"", key);
	n = put_str(line, n, s, true, max);
	return put(line, n, "\"");
}

static size_t access_json_ms(char *line, size_t n, const char *key, int64_t v)
{
	if (v < 0)
		return put(line, n, ",\"%s\":null", key);
	return put(line, n, ",\"%s\":%" PRId64, key, v);
}

static size_t access_json(char *line, const struct access_rec *r,
			  const struct tm *tm)
{
	char ts[64];
	size_t n = 0;

	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S%z", tm);
	n = put(line, n, "{\"time\":\"%s\",\"client\":\"%s\"", ts, r->client);
	n = access_json_str(line, n, "method", r->method, 64);
	n = access_json_str(line, n, "uri", r->uri, 8192);
	n = put(line, n,
		",\"status\":%u,\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64
		",\"duration_ms\":%" PRIu64,
		r->status, r->bytes_in, r->bytes_out, r->duration_ms);
	if (r->route)
		n = put(line, n, ",\"route\":\"%s#%u\"", r->listener, r->route);
	else
		n = put(line, n, ",\"route\":null");
	n = access_json_str(line, n, "backend", cstr(r->backend), 256);
	n = access_json_str(line, n, "server", cstr(r->server), 256);
	if (r->upstream_status)
		n = put(line, n, ",\"upstream_status\":%u", r->upstream_status);
	else
		n = put(line, n, ",\"upstream_status\":null");
	n = access_json_ms(line, n, "upstream_connect_ms", r->upstream_connect_ms);
	n = access_json_ms(line, n, "upstream_response_ms",
			   r->upstream_response_ms);
	n = access_json_str(line, n, "request_id", r->request_id, 128);
	n = access_json_str(line, n, "referer", r->referer, 1024);
	n = access_json_str(line, n, "user_agent", r->agent, 1024);
	n = access_json_str(line, n, "tls_version", cstr(r->tls_version), 32);
	n = access_json_str(line, n, "tls_cipher", cstr(r->tls_cipher), 64);
	n = access_json_str(line, n, "client_subject", r->client_subject, 1024);
	n = access_json_str(line, n, "client_fingerprint",
			    r->client_fingerprint, 64);
	return put(line, n, "}\n");
}

void access_log(const struct access_rec *r)
{
	static time_t cached_sec = -1;
	static struct tm cached_tm;
	time_t now = time(NULL);
	size_t n;

	if (access_fd < 0)
		return;
	if (now != cached_sec) {
		localtime_r(&now, &cached_tm);
		cached_sec = now;
	}
	if (access_len + ACCESS_LINE_MAX > ACCESS_BUF)
		access_flush();
	n = access_format == CFG_ACCESS_JSON
		    ? access_json(access_buf + access_len, r, &cached_tm)
		    : access_combined(access_buf + access_len, r, &cached_tm);
	if (n > 0 && access_buf[access_len + n - 1] != '\n')
		access_buf[access_len + n - 1] = '\n'; /* cut: keep lines whole */
	access_len += n;
}
