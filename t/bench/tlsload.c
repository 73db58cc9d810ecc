/*
 * t/bench/tlsload.c: the TLS handshake load client of tools/bench --tls.
 *
 * wrk cannot measure a full handshake per connection: on reconnect it
 * SSL_clear()s the same SSL object, which keeps the last session, so its
 * `-H "Connection: close"` runs resume (TLS 1.3 PSK) instead of doing full
 * handshakes.  This client does exactly one of the two and counts which
 * one the server really did (SSL_session_reused), so the harness can check.
 *
 *   tlsload -p PORT [-P /12] [-n PROCS] [-d SECONDS] [-r]
 *	new connection per request: TCP connect, handshake (full, or with -r
 *	resumed from the ticket of the previous connection of the same
 *	process), "GET PATH HTTP/1.1" with Connection: close, read to EOF,
 *	close; PROCS processes in parallel for SECONDS.  Prints
 *	TLSLOAD-RESULT conns=.. reused=.. errors=.. bytes=.. duration_us=..
 *	and the negotiated version, cipher and group of the first handshake.
 *   tlsload -p PORT -i N [-P /12]
 *	idle mode: opens N connections, one full handshake and one
 *	keep-alive GET on each, prints TLSLOAD-IDLE-READY open=N failed=F,
 *	then holds them until stdin is closed (or SIGTERM).
 *
 * No certificate verification (the harness's self-signed certificate); no
 * ALPN offered (wrk offers none either).  Build: cc -O2 tlsload.c -lssl
 * -lcrypto.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int port;
static const char *path = "/12";

struct result {
	long conns, reused, errors, bytes;
	char info[160];
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int tcp_connect(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((unsigned short)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static SSL_CTX *client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		exit(2);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	/* keep sessions ourselves (SSL_get1_session), no internal cache */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
}

static void describe(SSL *ssl, char *buf, size_t n)
{
	int g = SSL_get_negotiated_group(ssl);
	const char *gn = g ? OBJ_nid2sn(g & ~TLSEXT_nid_unknown) : "none";

	snprintf(buf, n, "version=%s cipher=%s group=%s", SSL_get_version(ssl),
		 SSL_get_cipher_name(ssl), gn ? gn : "?");
}

/* One connection: handshake, GET with Connection: close, read to EOF. */
static int one(SSL_CTX *ctx, SSL_SESSION **sess, struct result *r)
{
	char req[256], buf[16384];
	int fd, n, len, ok = 0;
	SSL *ssl;

	fd = tcp_connect();
	if (fd < 0)
		return 0;
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, "localhost");
	if (sess && *sess)
		SSL_set_session(ssl, *sess);
	if (SSL_connect(ssl) != 1)
		goto out;
	len = snprintf(req, sizeof(req),
		       "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		       "Connection: close\r\n\r\n",
		       path);
	if (SSL_write(ssl, req, len) != len)
		goto out;
	while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0)
		r->bytes += n;
	if (SSL_get_error(ssl, n) != SSL_ERROR_ZERO_RETURN &&
	    SSL_get_error(ssl, n) != SSL_ERROR_SYSCALL)
		goto out;
	if (!r->info[0])
		describe(ssl, r->info, sizeof(r->info));
	if (SSL_session_reused(ssl))
		r->reused++;
	/*
	 * The server closed with close_notify: mark ours as sent without
	 * sending it, or SSL_free() takes the session for a broken one and
	 * makes it not resumable.
	 */
	SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	if (sess) {
		SSL_SESSION *s = SSL_get1_session(ssl);

		if (s && SSL_SESSION_is_resumable(s)) {
			SSL_SESSION_free(*sess);
			*sess = s;
		} else {
			SSL_SESSION_free(s);
		}
	}
	ok = 1;
out:
	SSL_free(ssl);
	close(fd);
	ERR_clear_error();
	return ok;
}

static void loop(double secs, int reuse, struct result *r)
{
	SSL_CTX *ctx = client_ctx();
	SSL_SESSION *sess = NULL;
	double end = now() + secs;

	while (now() < end) {
		if (one(ctx, reuse ? &sess : NULL, r))
			r->conns++;
		else
			r->errors++;
	}
	SSL_SESSION_free(sess);
	SSL_CTX_free(ctx);
}

/* Idle mode: n keep-alive connections, one GET each, held open. */
static int idle(long n)
{
	SSL_CTX *ctx = client_ctx();
	SSL **ssls = calloc((size_t)n, sizeof(*ssls));
	char req[256], buf[16384];
	long open = 0, failed = 0;
	int len;

	len = snprintf(req, sizeof(req),
		       "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
	while (open < n && failed <= n / 10 + 100) {
		int fd = tcp_connect(), got = 0, want = -1;
		SSL *ssl;

		if (fd < 0) {
			failed++;
			continue;
		}
		ssl = SSL_new(ctx);
		SSL_set_fd(ssl, fd);
		SSL_set_tlsext_host_name(ssl, "localhost");
		if (SSL_connect(ssl) != 1 || SSL_write(ssl, req, len) != len)
			goto fail;
		for (;;) {
			int k = SSL_read(ssl, buf + got, (int)sizeof(buf) - got - 1);
			char *e, *cl;

			if (k <= 0)
				goto fail;
			got += k;
			buf[got] = 0;
			e = strstr(buf, "\r\n\r\n");
			if (!e)
				continue;
			if (want < 0) {
				cl = strcasestr(buf, "\r\ncontent-length:");
				if (!cl || cl > e)
					goto fail;
				want = (int)(e + 4 - buf) + atoi(cl + 17);
				if (strcasestr(buf, "\r\nconnection: close"))
					goto fail;
			}
			if (got >= want)
				break;
			if (got >= (int)sizeof(buf) - 1)
				goto fail;
		}
		ssls[open++] = ssl;
		continue;
fail:
		SSL_free(ssl);
		close(fd);
		ERR_clear_error();
		failed++;
	}
	printf("TLSLOAD-IDLE-READY open=%ld failed=%ld\n", open, failed);
	fflush(stdout);
	while (read(0, buf, sizeof(buf)) > 0)
		;
	/* no close_notify: close like the plain idle test (the harness
	 * kills us; the kernel closes the sockets) */
	return open == n ? 0 : 1;
}

int main(int argc, char **argv)
{
	int procs = 1, reuse = 0, c, pfd[2];
	double secs = 5, t0;
	long idle_n = 0;
	struct result tot = {0};

	while ((c = getopt(argc, argv, "p:P:n:d:ri:")) != -1) {
		switch (c) {
		case 'p': port = atoi(optarg); break;
		case 'P': path = optarg; break;
		case 'n': procs = atoi(optarg); break;
		case 'd': secs = atof(optarg); break;
		case 'r': reuse = 1; break;
		case 'i': idle_n = atol(optarg); break;
		default:
			fprintf(stderr, "usage: tlsload -p PORT [-P PATH] [-n PROCS] "
					"[-d SECS] [-r] | -p PORT -i N\n");
			return 2;
		}
	}
	if (port <= 0 || procs < 1)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	if (idle_n > 0)
		return idle(idle_n);
	if (pipe(pfd) != 0)
		return 2;
	t0 = now();
	for (int i = 0; i < procs; i++) {
		if (fork() == 0) {
			struct result r = {0};

			close(pfd[0]);
			loop(secs, reuse, &r);
			if (write(pfd[1], &r, sizeof(r)) != sizeof(r))
				_exit(1);
			_exit(0);
		}
	}
	close(pfd[1]);
	for (int i = 0; i < procs; i++) {
		struct result r;

		if (read(pfd[0], &r, sizeof(r)) != sizeof(r))
			return 1;
		tot.conns += r.conns;
		tot.reused += r.reused;
		tot.errors += r.errors;
		tot.bytes += r.bytes;
		if (!tot.info[0])
			memcpy(tot.info, r.info, sizeof(tot.info));
	}
	while (wait(NULL) > 0)
		;
	printf("TLSLOAD-RESULT conns=%ld reused=%ld errors=%ld bytes=%ld "
	       "duration_us=%ld %s\n",
	       tot.conns, tot.reused, tot.errors, tot.bytes,
	       (long)((now() - t0) * 1e6), tot.info[0] ? tot.info : "version=none");
	return 0;
}
