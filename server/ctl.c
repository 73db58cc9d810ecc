/* ctl.c: `portcullis COMMAND`, the control socket's client (see ctl.h). */
#include "server/ctl.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <yaml.h>

#include "common/timer.h"
#include "config/config.h"
#include "server/control.h"

#define CTL_DEFAULT_SOCKET "/run/portcullis/portcullis.sock"
#define CTL_DEFAULT_SHUTDOWN_MS 30000
#define CTL_MARGIN_MS 10000

static const char *const ctl_commands[] = {"reload", "status", "stop", "quit",
					   "upgrade"};

int ctl_is_command(const char *cmd)
{
	for (size_t i = 0; i < sizeof(ctl_commands) / sizeof(*ctl_commands); i++)
		if (strcmp(cmd, ctl_commands[i]) == 0)
			return 1;
	return 0;
}

/* One top-level scalar pair of the document; the rest is not our business. */
static void ctl_settings_pair(yaml_document_t *doc, yaml_node_pair_t *pair,
			      struct ctl_settings *out)
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
	    strlen(val) < sizeof(out->cs_socket))
		snprintf(out->cs_socket, sizeof(out->cs_socket), "%s", val);
	else if (strcmp(key, "shutdown_timeout") == 0)
		(void)config_parse_duration(val, &out->cs_shutdown_ms);
}

void ctl_settings_read(const char *path, struct ctl_settings *out)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	FILE *f;

	snprintf(out->cs_socket, sizeof(out->cs_socket), "%s", CTL_DEFAULT_SOCKET);
	out->cs_shutdown_ms = CTL_DEFAULT_SHUTDOWN_MS;
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
			for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
			     p < root->data.mapping.pairs.top; p++)
				ctl_settings_pair(&doc, p, out);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	fclose(f);
}

/* How long cmd may take before the client gives up. */
static uint64_t ctl_timeout_ms(const char *cmd, const struct ctl_settings *s)
{
	if (strcmp(cmd, "quit") == 0)
		return (uint64_t)s->cs_shutdown_ms + 2000 + CTL_MARGIN_MS;
	if (strcmp(cmd, "reload") == 0)
		return 40000; /* one queued ahead of it, each at most ~15 s */
	if (strcmp(cmd, "upgrade") == 0)
		return 60000; /* the new master's start is bounded at 45 s */
	return CTL_MARGIN_MS + 5000;
}

static int ctl_connect(const struct ctl_settings *s)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd == -1) {
		fprintf(stderr, "portcullis: socket: %s\n", strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->cs_socket);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (errno == ENOENT || errno == ECONNREFUSED)
		fprintf(stderr, "portcullis: no master is running (control socket "
			"%s: %s)\n", s->cs_socket, strerror(errno));
	else if (errno == EACCES || errno == EPERM)
		fprintf(stderr, "portcullis: control socket %s: %s (run as root "
			"or as the master's user)\n", s->cs_socket, strerror(errno));
	else
		fprintf(stderr, "portcullis: control socket %s: %s\n",
			s->cs_socket, strerror(errno));
	close(fd);
	return -1;
}

/* The answer's last line ("OK ..." / "ERR ..."), NULL until it arrived. */
static char *ctl_verdict(char *acc)
{
	for (char *p = acc, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1)
		if (*p != '|')
			return p;
	return NULL;
}

/* Print a complete answer: to stdout if OK, to stderr if not.  0 if OK. */
static int ctl_print(char *acc, char *verdict)
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
			strncmp(verdict, "ERR ", 4) == 0 ? verdict + 4 : verdict);
	return ok ? 0 : 1;
}

/* Read the answer up to its last line, within the deadline, and print it. */
static int ctl_read_answer(int fd, uint64_t deadline, const char *cmd)
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
			fprintf(stderr, "portcullis: %s: no answer from the "
				"master in time\n", cmd);
			goto done;
		}
		if (poll(&pfd, 1, (int)(deadline - now)) <= 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "portcullis: %s: the master closed the "
				"connection without an answer\n", cmd);
			goto done;
		}
		p = realloc(acc, len + (size_t)n + 1);
		if (p == NULL)
			goto done;
		acc = p;
		memcpy(acc + len, buf, (size_t)n);
		len += (size_t)n;
		acc[len] = '\0';
		verdict = ctl_verdict(acc);
	}
	rc = ctl_print(acc, verdict);
done:
	free(acc);
	return rc;
}

int ctl_run(const char *config_path, const char *cmd)
{
	struct ctl_settings s;
	char line[CONTROL_LINE_MAX];
	uint64_t deadline;
	int fd, rc, n;

	ctl_settings_read(config_path, &s);
	deadline = timer_now_ms() + ctl_timeout_ms(cmd, &s);
	fd = ctl_connect(&s);
	if (fd == -1)
		return 1;
	n = snprintf(line, sizeof(line), "%s\n", cmd);
	if (n < 0 || (size_t)n >= sizeof(line) ||
	    send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
		fprintf(stderr, "portcullis: %s: sending to %s: %s\n", cmd,
			s.cs_socket, strerror(errno));
		close(fd);
		return 1;
	}
	rc = ctl_read_answer(fd, deadline, cmd);
	close(fd);
	return rc;
}
