/* cli.c: `portcullis COMMAND`, the control socket's client side, in the
 * command-line process (see cli.h). */
#include "server/cli.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include <yaml.h>

#include "common/timer.h"
#include "config/config.h"
#include "server/conf.h"
#include "server/control.h"

#define CLI_DEFAULT_SOCKET	"/run/portcullis/portcullis.sock"
#define CLI_DEFAULT_PID_FILE	"/run/portcullis/portcullis.pid"
#define CLI_CONNECT_TRIES	3 /* a socket being replaced is briefly absent */
#define CLI_MAX_SOCKETS		256 /* socket descriptors of a master, looked at */
#define CLI_DEFAULT_SHUTDOWN_MS 30000
#define CLI_MARGIN_MS		10000
#define CLI_CHECK_MS		700 /* check, all told (keepalived: every 1 s) */
#define CLI_CHECK_CONNECT_MS	500 /* a master stopped, its backlog full */

static const char *const cli_commands[] = {
	"reload", "status", "check", "stop", "quit", "upgrade", "reopen",
	"drain", "enable"};

int cli_is_command(const char *cmd)
{
	for (size_t i = 0; i < sizeof(cli_commands) / sizeof(*cli_commands);
	     i++)
		if (strcmp(cmd, cli_commands[i]) == 0)
			return 1;
	return 0;
}

/* One top-level scalar pair of the document; the rest is not our business. */
static void cli_settings_pair(yaml_document_t *doc, yaml_node_pair_t *pair,
			      struct cli_settings *out)
{
	yaml_node_t *k = yaml_document_get_node(doc, pair->key);
	yaml_node_t *v = yaml_document_get_node(doc, pair->value);
	const char *key, *val;

	if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE ||
	    v->type != YAML_SCALAR_NODE)
		return;
	key = (const char *)k->data.scalar.value;
	val = (const char *)v->data.scalar.value;
	if (strcmp(key, "control_socket") == 0 && val[0] == '/' &&
	    strlen(val) < sizeof(out->st_socket))
		snprintf(out->st_socket, sizeof(out->st_socket), "%s", val);
	else if (strcmp(key, "pid_file") == 0 && val[0] == '/')
		snprintf(out->st_pid_file, sizeof(out->st_pid_file), "%s", val);
	else if (strcmp(key, "shutdown_timeout") == 0)
		(void)config_parse_duration(val, &out->st_shutdown_ms);
}

/*
 * A file YAML cannot read (a syntax error) still names its socket and pid
 * file on top-level lines: find them line by line, so that `reload`
 * reports on the master that really runs rather than on the defaults.
 */
static void cli_settings_scan(FILE *f, struct cli_settings *out)
{
	char line[4352];

	rewind(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		char *v = strchr(line, ':'), *end;

		if (v == NULL || line[0] == ' ' || line[0] == '#')
			continue;
		*v++ = '\0';
		v += strspn(v, " \t\"'");
		end = v + strcspn(v, " \t\"'#\r\n");
		*end = '\0';
		if (v[0] != '/')
			continue;
		if (strcmp(line, "control_socket") == 0 &&
		    strlen(v) < sizeof(out->st_socket))
			snprintf(out->st_socket, sizeof(out->st_socket), "%s", v);
		else if (strcmp(line, "pid_file") == 0)
			snprintf(out->st_pid_file, sizeof(out->st_pid_file),
				 "%s", v);
	}
}

void cli_settings_read(const char *path, struct cli_settings *out)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	FILE *f;

	snprintf(out->st_socket, sizeof(out->st_socket), "%s",
		 CLI_DEFAULT_SOCKET);
	snprintf(out->st_pid_file, sizeof(out->st_pid_file), "%s",
		 CLI_DEFAULT_PID_FILE);
	out->st_shutdown_ms = CLI_DEFAULT_SHUTDOWN_MS;
	f = fopen(path, "r");
	if (f == NULL)
		return;
	if (!yaml_parser_initialize(&parser)) {
		fclose(f);
		return;
	}
	yaml_parser_set_input_file(&parser, f);
	if (yaml_parser_load(&parser, &doc)) {
		root = yaml_document_get_root_node(&doc);
		if (root != NULL && root->type == YAML_MAPPING_NODE)
			for (yaml_node_pair_t *p =
				     root->data.mapping.pairs.start;
			     p < root->data.mapping.pairs.top; p++)
				cli_settings_pair(&doc, p, out);
		yaml_document_delete(&doc);
	} else {
		cli_settings_scan(f, out);
	}
	yaml_parser_delete(&parser);
	fclose(f);
}

/* How long cmd may take before the client gives up. */
static uint64_t cli_timeout_ms(const char *cmd, const struct cli_settings *s)
{
	if (strcmp(cmd, "quit") == 0)
		return (uint64_t)s->st_shutdown_ms + 2000 + CLI_MARGIN_MS;
	if (strcmp(cmd, "reload") == 0)
		return 40000; /* one queued ahead of it, each at most ~15 s */
	if (strcmp(cmd, "upgrade") == 0)
		return 60000; /* the new master's start is bounded at 45 s */
	if (strcmp(cmd, "check") == 0)
		return CLI_CHECK_MS;
	return CLI_MARGIN_MS + 5000;
}

/*
 * connect() to an AF_UNIX socket blocks while the listener's backlog is
 * full (a master that is stopped or wedged): SO_SNDTIMEO bounds it, and
 * it fails with EAGAIN.
 */
static int cli_connect_path(const char *path, uint64_t timeout_ms)
{
	struct timeval tv = {
		.tv_sec = (time_t)(timeout_ms / 1000),
		.tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000,
	};
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), saved;

	if (fd == -1)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* The inodes of pid's sockets; how many were found. */
static size_t cli_socket_inodes(pid_t pid, unsigned long *ino, size_t max)
{
	char dir[64], path[320], link[64];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (d == NULL)
		return 0;
	while (n < max && (de = readdir(d)) != NULL) {
		ssize_t k;

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		k = readlink(path, link, sizeof(link) - 1);
		if (k <= 0)
			continue;
		link[k] = '\0';
		if (sscanf(link, "socket:[%lu]", &ino[n]) == 1)
			n++;
	}
	closedir(d);
	return n;
}

/*
 * The path of the listening AF_UNIX socket of the master in pid_file:
 * /proc/net/unix lists "Num RefCount Protocol Flags Type St Inode Path",
 * Flags 00010000 (__SO_ACCEPTCON) marking a listening socket.
 */
static int cli_socket_of_master(const char *pid_file, char *out, size_t len)
{
	unsigned long ino[CLI_MAX_SOCKETS];
	char line[512];
	size_t n;
	int pid = 0, rc = -1;
	FILE *f = fopen(pid_file, "r");

	if (f == NULL)
		return -1;
	if (fscanf(f, "%d", &pid) != 1 || pid <= 1) {
		fclose(f);
		return -1;
	}
	fclose(f);
	n = cli_socket_inodes((pid_t)pid, ino, CLI_MAX_SOCKETS);
	f = n ? fopen("/proc/net/unix", "r") : NULL;
	if (f == NULL)
		return -1;
	while (rc == -1 && fgets(line, sizeof(line), f) != NULL) {
		unsigned long flags, inode;
		int pos = 0;

		if (sscanf(line, "%*s %*s %*s %lx %*s %*s %lu %n", &flags,
			   &inode, &pos) != 2 ||
		    pos == 0 || !(flags & 0x10000) || line[pos] != '/')
			continue;
		line[strcspn(line, "\n")] = '\0';
		for (size_t i = 0; i < n; i++)
			if (ino[i] == inode && strlen(line + pos) < len) {
				snprintf(out, len, "%s", line + pos);
				rc = 0;
			}
	}
	fclose(f);
	return rc;
}

/*
 * Connect to the master's socket (or where it moved), each try bounded by
 * timeout_ms; -1 with errno.
 */
static int cli_connect_quiet(const struct cli_settings *s, uint64_t timeout_ms)
{
	char moved[sizeof(s->st_socket)];
	int fd = -1, saved;

	for (int i = 0; i < CLI_CONNECT_TRIES && fd == -1; i++) {
		if (i > 0)
			usleep(100 * 1000);
		fd = cli_connect_path(s->st_socket, timeout_ms);
		if (fd == -1 && errno != ENOENT && errno != ECONNREFUSED)
			break;
	}
	if (fd != -1)
		return fd;
	saved = errno;
	if ((saved == ENOENT || saved == ECONNREFUSED) &&
	    cli_socket_of_master(s->st_pid_file, moved, sizeof(moved)) == 0) {
		fd = cli_connect_path(moved, timeout_ms);
		if (fd != -1)
			return fd;
	}
	errno = saved;
	return -1;
}

static int cli_connect(const struct cli_settings *s, uint64_t timeout_ms)
{
	int fd = cli_connect_quiet(s, timeout_ms);

	if (fd != -1)
		return fd;
	if (errno == ENOENT || errno == ECONNREFUSED)
		fprintf(stderr,
			"portcullis: no master is running (control socket "
			"%s: %s)\n",
			s->st_socket, strerror(errno));
	else if (errno == EAGAIN)
		fprintf(stderr,
			"portcullis: control socket %s: the master does not "
			"accept connections (stopped or busy)\n",
			s->st_socket);
	else if (errno == EACCES || errno == EPERM)
		fprintf(stderr,
			"portcullis: control socket %s: %s (run as root "
			"or as the master's user)\n",
			s->st_socket, strerror(errno));
	else
		fprintf(stderr, "portcullis: control socket %s: %s\n",
			s->st_socket, strerror(errno));
	return -1;
}

/* The answer's last line ("OK ..." / "ERR ..."), NULL until it arrived. */
static char *cli_verdict(char *acc)
{
	for (char *p = acc, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1)
		if (*p != '|')
			return p;
	return NULL;
}

/* Print a complete answer: to stdout if OK, to stderr if not.  0 if OK. */
static int cli_print(char *acc, char *verdict)
{
	bool ok = strncmp(verdict, "OK", 2) == 0 &&
		  (verdict[2] == '\n' || verdict[2] == ' ');
	FILE *out = ok ? stdout : stderr;

	*strchr(verdict, '\n') = '\0';
	for (char *p = acc, *nl; p < verdict; p = nl + 1) {
		nl = strchr(p, '\n');
		*nl = '\0';
		fprintf(out, "%s\n", p[1] == ' ' ? p + 2 : p + 1);
	}
	if (ok && verdict[2] == ' ')
		printf("%s\n", verdict + 3);
	else if (!ok)
		fprintf(stderr, "portcullis: %s\n",
			strncmp(verdict, "ERR ", 4) == 0 ? verdict + 4
							 : verdict);
	return ok ? 0 : 1;
}

/* Read the answer up to its last line, within the deadline, and print it. */
static int cli_read_answer(int fd, uint64_t deadline, const char *cmd)
{
	char *acc = NULL, *verdict = NULL;
	size_t len = 0;
	int rc = 1;

	while (verdict == NULL) {
		uint64_t now = timer_now_ms();
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		char buf[8192], *p;
		ssize_t n;

		if (now >= deadline) {
			fprintf(stderr,
				"portcullis: %s: no answer from the "
				"master in time\n",
				cmd);
			goto done;
		}
		if (poll(&pfd, 1, (int)(deadline - now)) <= 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr,
				"portcullis: %s: the master closed the "
				"connection without an answer\n",
				cmd);
			goto done;
		}
		p = realloc(acc, len + (size_t)n + 1);
		if (p == NULL)
			goto done;
		acc = p;
		memcpy(acc + len, buf, (size_t)n);
		len += (size_t)n;
		acc[len] = '\0';
		verdict = cli_verdict(acc);
	}
	rc = cli_print(acc, verdict);
done:
	free(acc);
	return rc;
}

/*
 * No master answers a reload of path: if the file would be refused anyway,
 * print its errors (FILE:LINE:COL) before saying so, as -t would.
 */
static void cli_print_config_errors(const char *path)
{
	struct config_errors errs = {0};
	struct config *cfg = conf_load(path, &errs);

	for (size_t i = 0; i < errs.count && i < CONFIG_MAX_ERRORS; i++)
		fprintf(stderr, "%s\n", errs.msgs[i]);
	if (errs.count > CONFIG_MAX_ERRORS)
		fprintf(stderr, "... and %zu more errors\n",
			errs.count - CONFIG_MAX_ERRORS);
	config_errors_clear(&errs);
	config_free(cfg);
}

int cli_run(const char *config_path, const char *cmd)
{
	struct cli_settings s;
	char line[CONTROL_LINE_MAX];
	uint64_t deadline, conn_ms = CONTROL_IO_TIMEOUT_MS;
	int fd, rc, n;

	cli_settings_read(config_path, &s);
	deadline = timer_now_ms() + cli_timeout_ms(cmd, &s);
	if (strcmp(cmd, "check") == 0)
		conn_ms = CLI_CHECK_CONNECT_MS;
	fd = strcmp(cmd, "reload") == 0 ? cli_connect_quiet(&s, conn_ms)
					: cli_connect(&s, conn_ms);
	if (fd == -1 && strcmp(cmd, "reload") == 0) {
		/* the errors of the file first, then that nobody runs it */
		cli_print_config_errors(config_path);
		fd = cli_connect(&s, conn_ms);
	}
	if (fd == -1)
		return 1;
	n = snprintf(line, sizeof(line), "%s\n", cmd);
	if (n < 0 || (size_t)n >= sizeof(line) ||
	    send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
		fprintf(stderr, "portcullis: %s: sending to %s: %s\n", cmd,
			s.st_socket, strerror(errno));
		close(fd);
		return 1;
	}
	rc = cli_read_answer(fd, deadline, cmd);
	close(fd);
	return rc;
}
