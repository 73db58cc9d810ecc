/*
 * config.c: loading portcullis.yaml: the file, the YAML document, the top
 * level (workers, user, log, defaults, ...) and tearing a config down.
 *
 * The document is read whole with libyaml's node API, checked to be a tree,
 * then walked section by section against the tables of schema.h.  Every
 * problem is collected; a config with any problem is freed, never returned.
 */
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/shm.h"
#include "config/config_int.h"

#define CONFIG_MAX_FILE	   (16 << 20) /* no sane config is larger */
#define CONFIG_MAX_WORKERS 256
#define CONFIG_MAX_EXPANDED (8 << 20) /* scalars, once per use (aliases) */

/* ---- small shared pieces ---------------------------------------------- */

bool config_is_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_-.", *s))
			return false;
	return true;
}

/* RFC 9110 5.1: a field name is a token. */
bool config_is_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) &&
		    !strchr("!#$%&'*+-.^_`|~", *s))
			return false;
	return true;
}

int config_addr_load(struct schema_ctx *c, const char *key, yaml_node_t *v,
		     struct cfg_addr *a)
{
	const char *s = schema_scalar(v);

	a->line = (int)v->start_mark.line + 1;
	a->col = (int)v->start_mark.column + 1;
	if (!s || schema_is_null(v)) {
		schema_error(c, v, "'%s' must be an address (host:port)", key);
		return -1;
	}
	if (config_parse_addr(s, &a->sa, &a->salen) < 0) {
		schema_error(c, v,
			     "'%s' is not a valid address (host:port or "
			     "[v6]:port)",
			     s);
		return -1;
	}
	a->str = schema_strdup(c, s);
	return a->str ? 0 : -1;
}

bool config_addr_equal(const struct cfg_addr *a, const struct cfg_addr *b)
{
	return a->salen == b->salen && !memcmp(&a->sa, &b->sa, a->salen);
}

void config_limits_free(struct cfg_limits *l)
{
	size_t i;

	for (i = 0; i < l->nhide_response_headers; i++)
		free(l->hide_response_headers[i]);
	free(l->hide_response_headers);
	l->hide_response_headers = NULL;
	l->nhide_response_headers = 0;
}

void config_limits_copy(struct schema_ctx *c, struct cfg_limits *dst,
			const struct cfg_limits *src)
{
	size_t i, n = src->nhide_response_headers;

	*dst = *src;
	dst->hide_response_headers = schema_calloc(c, n, sizeof(char *));
	dst->nhide_response_headers = 0;
	if (!dst->hide_response_headers)
		return;
	for (i = 0; i < n; i++) {
		char *name = schema_strdup(c, src->hide_response_headers[i]);

		if (name == NULL)
			return; /* reported; the config will be refused */
		dst->hide_response_headers[dst->nhide_response_headers++] =
			name;
	}
}

void config_hide_headers(struct schema_ctx *c, const char *key, yaml_node_t *v,
			 void *field)
{
	struct cfg_limits *l = field;
	yaml_node_t *item;
	const char *s;
	char **names;
	long i;

	if (v->type != YAML_SEQUENCE_NODE) {
		schema_error(c, v, "'%s' must be a list of header names", key);
		return;
	}
	names = schema_calloc(c, (size_t)SCHEMA_ITEMS(v), sizeof(char *));
	if (!names)
		return;
	config_limits_free(l);
	l->hide_response_headers = names;
	for (i = 0; i < SCHEMA_ITEMS(v); i++) {
		item = SCHEMA_ITEM(c, v, i);
		s = schema_scalar(item);
		if (!s || !config_is_token(s)) {
			schema_error(c, item, "'%s' is not a valid header name",
				     s ? s : "(list or mapping)");
			continue;
		}
		names[l->nhide_response_headers] = schema_strdup(c, s);
		if (names[l->nhide_response_headers] != NULL)
			l->nhide_response_headers++;
	}
}

/* ---- top level -------------------------------------------------------- */

/* workers: auto is one per CPU; a huge machine still gets the maximum. */
static uint32_t config_cpus(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (cpus < 1)
		return 1;
	if (cpus > CONFIG_MAX_WORKERS)
		return CONFIG_MAX_WORKERS;
	return (uint32_t)cpus;
}

static void config_workers(struct schema_ctx *c, const char *key,
			   yaml_node_t *v, void *field)
{
	const char *s = schema_scalar(v);
	uint64_t n;

	if (s && !strcmp(s, "auto")) {
		*(uint32_t *)field = config_cpus();
	} else if (s && config_parse_uint(s, &n) == 0 && n >= 1 &&
		   n <= CONFIG_MAX_WORKERS) {
		*(uint32_t *)field = (uint32_t)n;
	} else {
		schema_error(c, v, "'%s' must be 'auto' or an integer 1..%d",
			     key, CONFIG_MAX_WORKERS);
	}
}

static void config_control_socket(struct schema_ctx *c, const char *key,
				  yaml_node_t *v, void *field)
{
	const char *s = schema_scalar(v);
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;

	if (s && *s && *s != '/' && !schema_is_null(v))
		schema_error(c, v, "'%s' must be an absolute path", key);
	else if (s && strlen(s) > max)
		schema_error(c, v,
			     "'%s' is too long for a unix socket path (at most "
			     "%zu bytes)",
			     key, max);
	else
		schema_string(c, key, v, field);
}

/*
 * control_socket_group: NAME, a group that exists here (its members may
 * run the read-only commands); null or empty: none.  field is the config.
 */
static void config_control_group(struct schema_ctx *c, const char *key,
				 yaml_node_t *v, void *field)
{
	struct config *cfg = field;
	const char *s = schema_scalar(v);
	struct group *gr;

	if (s && (!*s || schema_is_null(v))) {
		free(cfg->control_socket_group);
		cfg->control_socket_group = NULL;
		cfg->control_socket_gid = (gid_t)-1;
		return;
	}
	if (schema_string(c, key, v, &cfg->control_socket_group) == -1)
		return;
	errno = 0;
	gr = getgrnam(s);
	if (gr == NULL) {
		schema_error(c, v, "'%s': no group '%s' on this system%s%s",
			     key, s, errno ? ": " : "",
			     errno ? strerror(errno) : "");
		return;
	}
	cfg->control_socket_gid = gr->gr_gid;
}

static void config_log_path(struct schema_ctx *c, const char *key,
			    yaml_node_t *v, void *field)
{
	const char *s = schema_scalar(v);

	if (s && strcmp(s, "stderr") && strcmp(s, "syslog") && *s != '/')
		schema_error(c, v,
			     "'%s' must be stderr, syslog or an absolute path",
			     key);
	else
		schema_string(c, key, v, field);
}

static void config_log_level(struct schema_ctx *c, const char *key,
			     yaml_node_t *v, void *field)
{
	static const char *const names[] = {[CFG_LOG_DEBUG] = "debug",
					    [CFG_LOG_INFO] = "info",
					    [CFG_LOG_NOTICE] = "notice",
					    [CFG_LOG_WARN] = "warn",
					    [CFG_LOG_ERROR] = "error"};
	const char *s = schema_scalar(v);
	size_t i;

	for (i = 0; s && i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(s, names[i])) {
			*(enum cfg_log_level *)field = (enum cfg_log_level)i;
			return;
		}
	}
	schema_error(c, v,
		     "'%s' must be one of debug, info, notice, warn, error",
		     key);
}

/* access: {path: off | stderr | /abs/path}; field is the struct config. */
static void config_access_path(struct schema_ctx *c, const char *key,
			       yaml_node_t *v, void *field)
{
	struct config *cfg = field;
	const char *s = schema_scalar(v);
	bool on = true;

	if (s && schema_bool(s, &on) == 0 && !on) {
		free(cfg->access_log_path);
		cfg->access_log_path = NULL;
		return;
	}
	if (!s || (strcmp(s, "stderr") && strcmp(s, "syslog") && *s != '/')) {
		schema_error(c, v,
			     "'%s' must be off, stderr, syslog or an absolute "
			     "path",
			     key);
		return;
	}
	free(cfg->access_log_path);
	cfg->access_log_path = schema_strdup(c, s);
}

static void config_access_format(struct schema_ctx *c, const char *key,
				 yaml_node_t *v, void *field)
{
	struct config *cfg = field;
	const char *s = schema_scalar(v);

	if (s && !strcmp(s, "combined"))
		cfg->access_log_format = CFG_ACCESS_COMBINED;
	else if (s && !strcmp(s, "json"))
		cfg->access_log_format = CFG_ACCESS_JSON;
	else
		schema_error(c, v, "'%s' must be combined or json", key);
}

/*
 * Tables whose handlers need the whole struct config use offset 0: the
 * field they get is the config itself.
 */
static const struct schema_key config_error_log_keys[] = {
	SK_CUSTOM("path", struct config, error_log_path, config_log_path),
	SK_CUSTOM("level", struct config, error_log_level, config_log_level),
	SK_END,
};
SCHEMA_TABLE_CHECK(config_error_log_keys);

static const struct schema_key config_access_log_keys[] = {
	SK_WHOLE("path", config_access_path),
	SK_WHOLE("format", config_access_format),
	SK_END,
};
SCHEMA_TABLE_CHECK(config_access_log_keys);

/* log: {error: {...}, access: {...}}; field is the struct config. */
static void config_log_error(struct schema_ctx *c, const char *key,
			     yaml_node_t *v, void *field)
{
	schema_walk(c, v, config_error_log_keys, key, field);
}

static void config_log_access(struct schema_ctx *c, const char *key,
			      yaml_node_t *v, void *field)
{
	schema_walk(c, v, config_access_log_keys, key, field);
}

static const struct schema_key config_log_keys[] = {
	SK_WHOLE("error", config_log_error),
	SK_WHOLE("access", config_log_access),
	SK_END,
};
SCHEMA_TABLE_CHECK(config_log_keys);

static void config_log(struct schema_ctx *c, const char *key, yaml_node_t *v,
		       void *field)
{
	schema_walk(c, v, config_log_keys, key, field);
}

static const struct schema_key config_defaults_keys[] = {
	CONFIG_LIMIT_KEYS(0),
	SK_END,
};
SCHEMA_TABLE_CHECK(config_defaults_keys);

static const struct schema_key config_top_keys[] = {
	SK_CUSTOM("workers", struct config, workers, config_workers),
	SK_UINT("worker_connections", struct config, worker_connections, 1,
		1000000),
	SK_STRING("user", struct config, user),
	SK_BOOL("allow_root_workers", struct config, allow_root_workers),
	SK_STRING("group", struct config, group),
	SK_PATH("pid_file", struct config, pid_file),
	SK_CUSTOM("control_socket", struct config, control_socket,
		  config_control_socket),
	SK_WHOLE("control_socket_group", config_control_group),
	/* 0 is allowed: stop without waiting for in-flight requests */
	SK_DURATION("shutdown_timeout", struct config, shutdown_timeout_ms, 0),
	/* 0 turns the watchdog off */
	SK_DURATION("watchdog", struct config, watchdog_ms, 0),
	SK_WHOLE("log", config_log),
	SK_UINT("rate_limit_table", struct config, rate_limit_table, 16,
		1u << 24),
	SK_CUSTOM("ban", struct config, ban, config_ban),
	SK_CUSTOM("admin", struct config, admin, config_admin),
	SK_LATER("defaults"),
	SK_REQUIRED("listeners"),
	SK_REQUIRED("backends"),
	SK_END,
};
SCHEMA_TABLE_CHECK(config_top_keys);

/* A config holding every default of portcullis.yaml(5); NULL if no memory. */
static struct config *config_new(struct schema_ctx *c, const char *path)
{
	static const char *const hide[] = {"Server", "X-Powered-By"};
	struct config *cfg = schema_calloc(c, 1, sizeof(*cfg));
	size_t i;

	if (!cfg)
		return NULL;
	cfg->path = schema_strdup(c, path);
	cfg->workers = config_cpus();
	cfg->worker_connections = 10000;
	cfg->user = schema_strdup(c, "portcullis");
	cfg->group = schema_strdup(c, "portcullis");
	cfg->pid_file = schema_strdup(c, "/run/portcullis/portcullis.pid");
	cfg->control_socket =
		schema_strdup(c, "/run/portcullis/portcullis.sock");
	cfg->control_socket_gid = (gid_t)-1;
	cfg->shutdown_timeout_ms = 30000;
	cfg->watchdog_ms = 10000;
	cfg->rate_limit_table = 100000;
	config_ban_defaults(c, &cfg->ban);
	cfg->error_log_path = schema_strdup(c, "stderr");
	cfg->error_log_level = CFG_LOG_INFO;
	cfg->defaults = (struct cfg_limits){
		.client_header_timeout_ms = 10000,
		.client_body_timeout_ms = 60000,
		.client_body_min_rate = 500,
		.keepalive_timeout_ms = 75000,
		.max_header_size = 32 * 1024,
		.max_body_size = 0,
		.forwarded_headers = true,
	};
	cfg->defaults.hide_response_headers =
		schema_calloc(c, 2, sizeof(char *));
	for (i = 0; cfg->defaults.hide_response_headers && i < 2; i++)
		cfg->defaults.hide_response_headers
			[cfg->defaults.nhide_response_headers++] =
			schema_strdup(c, hide[i]);
	return cfg;
}

/*
 * The shared-memory zone has a slot per server and per route; a file with
 * more can never start, so -t and a reload refuse it where it is written,
 * not at the next start.
 */
static void config_check_capacity(struct schema_ctx *c,
				  const struct config *cfg, yaml_node_t *root)
{
	yaml_node_t *key;
	size_t nservers = 0, nroutes = 0;

	for (size_t i = 0; i < cfg->nbackends; i++)
		nservers += cfg->backends[i].nservers;
	for (size_t i = 0; i < cfg->nlisteners; i++)
		nroutes += cfg->listeners[i].nroutes + 1; /* + its own */
	if (nservers > SHM_MAX_SERVERS &&
	    schema_get(c, root, "backends", &key))
		schema_error(c, key,
			     "%zu servers in all: the shared-memory zone holds "
			     "%d",
			     nservers, SHM_MAX_SERVERS);
	if (nroutes > SHM_MAX_ROUTES && schema_get(c, root, "listeners", &key))
		schema_error(c, key,
			     "%zu routes and listeners in all: the "
			     "shared-memory zone holds %d",
			     nroutes, SHM_MAX_ROUTES);
}

/*
 * Workers parse what any client sends: running them as root must be meant
 * (allow_root_workers: true), never the result of a typo or a copy-paste.
 */
static void config_check_user(struct schema_ctx *c, const struct config *cfg,
			      yaml_node_t *root)
{
	yaml_node_t *v;

	if (cfg->user == NULL || strcmp(cfg->user, "root") != 0 ||
	    cfg->allow_root_workers)
		return;
	v = schema_get(c, root, "user", NULL);
	schema_error(c, v,
		     "'user' is root: workers that parse what clients send "
		     "would run with every privilege; set allow_root_workers: "
		     "true to mean it");
}

/* Walk the root mapping, then the sections in dependency order. */
static struct config *config_build(struct schema_ctx *c, const char *path,
				   yaml_node_t *root)
{
	struct config *cfg = config_new(c, path);
	yaml_node_t *n;

	if (!cfg || !schema_walk(c, root, config_top_keys, NULL, cfg))
		return cfg;
	if ((n = schema_get(c, root, "defaults", NULL)))
		schema_walk(c, n, config_defaults_keys, "defaults",
			    &cfg->defaults);
	if ((n = schema_get(c, root, "backends", NULL)))
		config_load_backends(c, cfg, n);
	if ((n = schema_get(c, root, "listeners", NULL)))
		config_load_listeners(c, cfg, n);
	config_check_capacity(c, cfg, root);
	config_check_user(c, cfg, root);
	config_admin_check(c, cfg, root);
	config_limits_finish(c, cfg, root);
	return cfg;
}

/* ---- the YAML document ------------------------------------------------ */

/* 1-based line and column of byte offset off in buf. */
static void config_offset_pos(const char *buf, size_t len, size_t off,
			      int *line, int *col)
{
	size_t i;

	*line = *col = 1;
	for (i = 0; i < off && i < len; i++) {
		if (buf[i] == '\n') {
			++*line;
			*col = 1;
		} else {
			++*col;
		}
	}
}

static void config_yaml_error(struct schema_ctx *c, const yaml_parser_t *p,
			      const char *buf, size_t len)
{
	const char *problem = p->problem ? p->problem : "invalid YAML";
	int line = (int)p->problem_mark.line + 1;
	int col = (int)p->problem_mark.column + 1;

	if (p->error == YAML_MEMORY_ERROR) {
		schema_error_at(c, 0, 0, "out of memory");
	} else if (p->error == YAML_READER_ERROR) {
		/* The reader reports a byte offset, not a mark. */
		config_offset_pos(buf, len, p->problem_offset, &line, &col);
		if (p->problem_value >= 0)
			schema_error_at(c, line, col, "%s (#%X)", problem,
					(unsigned)p->problem_value);
		else
			schema_error_at(c, line, col, "%s", problem);
	} else if (p->context) {
		schema_error_at(c, line, col, "%s (%s that starts at line %d)",
				problem, p->context,
				(int)p->context_mark.line + 1);
	} else {
		schema_error_at(c, line, col, "%s", problem);
	}
}

static void config_ref(uint32_t *refs, int id)
{
	if (refs[id] < UINT32_MAX)
		refs[id]++;
}

/*
 * An alias costs nothing in the file and a copy of its scalar in the
 * config: a 1 MiB anchor used 14,000 times is a 1 MB file that would
 * take 14 GB.  Refuse, at the scalar that does it, a document whose
 * scalars, counted once per use, exceed CONFIG_MAX_EXPANDED.
 */
static bool config_check_expansion(struct schema_ctx *c, const uint32_t *refs,
				   size_t count)
{
	yaml_node_t *start = c->doc->nodes.start, *worst = NULL;
	uint64_t total = 0, worst_cost = 0;

	for (size_t i = 0; i < count; i++) {
		yaml_node_t *n = &start[i];
		uint64_t cost;

		if (n->type != YAML_SCALAR_NODE)
			continue;
		cost = (uint64_t)n->data.scalar.length * refs[i + 1];
		total += cost;
		if (refs[i + 1] > 1 && cost > worst_cost) {
			worst = n;
			worst_cost = cost;
		}
	}
	if (total <= CONFIG_MAX_EXPANDED)
		return true;
	if (worst != NULL)
		schema_error(c, worst,
			     "this scalar of %zu bytes is used %u times through "
			     "aliases: the configuration would expand past %d MiB",
			     worst->data.scalar.length,
			     refs[worst - start + 1], CONFIG_MAX_EXPANDED >> 20);
	else
		schema_error_at(c, 1, 1,
				"the configuration expands past %d MiB",
				CONFIG_MAX_EXPANDED >> 20);
	return false;
}

/*
 * libyaml turns an alias into a second reference to the anchored node, and
 * registers the anchor before the node's children: "&a [*a]" is a cycle.
 * Require every list and mapping to have one parent (the root none), so that
 * the walk is over a finite tree.  Reject NUL bytes in scalars too: the
 * loader works with C strings.
 */
static bool config_check_tree(struct schema_ctx *c)
{
	yaml_node_t *start = c->doc->nodes.start, *n;
	size_t i, count = (size_t)(c->doc->nodes.top - start);
	uint32_t *refs = schema_calloc(c, count + 1, sizeof(*refs));
	bool ok = refs != NULL;
	long j;

	for (i = 0; refs && i < count; i++) {
		n = &start[i];
		for (j = 0; n->type == YAML_MAPPING_NODE && j < SCHEMA_PAIRS(n);
		     j++) {
			config_ref(refs, SCHEMA_PAIR(n, j)->key);
			config_ref(refs, SCHEMA_PAIR(n, j)->value);
		}
		for (j = 0;
		     n->type == YAML_SEQUENCE_NODE && j < SCHEMA_ITEMS(n); j++)
			config_ref(refs, n->data.sequence.items.start[j]);
		if (n->type == YAML_SCALAR_NODE &&
		    strlen((char *)n->data.scalar.value) !=
			    n->data.scalar.length) {
			schema_error(c, n, "NUL characters are not allowed");
			ok = false;
		}
	}
	for (i = 0; refs && i < count; i++) {
		n = &start[i];
		if (n->type != YAML_SCALAR_NODE && refs[i + 1] >= (i ? 2 : 1)) {
			schema_error(c, n,
				     "aliases of lists and mappings are not "
				     "supported");
			ok = false;
		}
	}
	if (refs != NULL && ok)
		ok = config_check_expansion(c, refs, count);
	free(refs);
	return ok;
}

/* Only one document: a second one would be silently ignored otherwise. */
static bool config_check_single(struct schema_ctx *c, yaml_parser_t *p,
				const char *buf, size_t len)
{
	yaml_document_t next;
	yaml_node_t *root;
	bool ok = true;

	if (!yaml_parser_load(p, &next)) {
		config_yaml_error(c, p, buf, len);
		return false;
	}
	root = yaml_document_get_root_node(&next);
	if (root) {
		schema_error(c, root, "only one YAML document is allowed");
		ok = false;
	}
	yaml_document_delete(&next);
	return ok;
}

/* Parse and validate buf; the one place where a config is made. */
static struct config *config_parse(const char *path, const char *buf,
				   size_t len, struct config_errors *errs)
{
	struct schema_ctx c;
	struct config *cfg = NULL;
	yaml_document_t doc;
	yaml_parser_t p;
	yaml_node_t *root;

	schema_init(&c, path, &doc);
	if (!yaml_parser_initialize(&p)) {
		schema_error_at(&c, 0, 0, "out of memory");
		goto done;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&p, &doc)) {
		config_yaml_error(&c, &p, buf, len);
		yaml_parser_delete(&p);
		goto done;
	}
	root = yaml_document_get_root_node(&doc);
	if (!root)
		schema_error_at(&c, 1, 1, "the configuration is empty");
	else if (config_check_single(&c, &p, buf, len) && config_check_tree(&c))
		cfg = config_build(&c, path, root);
	yaml_document_delete(&doc);
	yaml_parser_delete(&p);
done:
	if (schema_flush(&c, errs) > 0) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

struct config *config_load_string(const char *path, const char *yaml,
				  struct config_errors *errs)
{
	return config_parse(path, yaml, strlen(yaml), errs);
}

/* Read all of fd into a new buffer; -1 with errno set. */
static int config_read_all(int fd, char **out, size_t *outlen)
{
	size_t len = 0, cap = 0;
	char *buf = NULL, *p;
	ssize_t n;

	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 8192;
			if (cap > CONFIG_MAX_FILE) {
				free(buf);
				errno = EFBIG;
				return -1;
			}
			p = realloc(buf, cap);
			if (!p) {
				free(buf);
				return -1;
			}
			buf = p;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

static void config_file_error(const char *path, const char *what,
			      struct config_errors *errs)
{
	struct schema_ctx c;

	schema_init(&c, path, NULL);
	schema_error_at(&c, 0, 0, "%s: %s", what, strerror(errno));
	schema_flush(&c, errs);
}

struct config *config_load(const char *path, struct config_errors *errs)
{
	struct config *cfg;
	size_t len;
	char *buf;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		config_file_error(path, "cannot open", errs);
		return NULL;
	}
	if (config_read_all(fd, &buf, &len) < 0) {
		config_file_error(path, "cannot read", errs);
		close(fd);
		return NULL;
	}
	close(fd);
	cfg = config_parse(path, buf, len, errs);
	free(buf);
	return cfg;
}

/* ---- lookup and teardown ---------------------------------------------- */

struct cfg_backend *config_backend(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; cfg && name && i < cfg->nbackends; i++)
		if (cfg->backends[i].name &&
		    !strcmp(cfg->backends[i].name, name))
			return &cfg->backends[i];
	return NULL;
}

void config_free(struct config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	if (cfg->tls_free)
		cfg->tls_free(cfg);
	for (i = 0; i < cfg->nlisteners; i++)
		config_listener_free(&cfg->listeners[i]);
	free(cfg->listeners);
	for (i = 0; i < cfg->nbackends; i++)
		config_backend_free(&cfg->backends[i]);
	free(cfg->backends);
	config_limits_free(&cfg->defaults);
	config_admin_free(&cfg->admin);
	free(cfg->path);
	free(cfg->user);
	free(cfg->group);
	free(cfg->pid_file);
	free(cfg->control_socket);
	free(cfg->ban.nft_set);
	free(cfg->ban.nft_set6);
	free(cfg->control_socket_group);
	free(cfg->error_log_path);
	free(cfg->access_log_path);
	free(cfg);
}

void config_error_at(struct config_errors *errs, const char *path, int line,
		     int col, const char *fmt, ...)
{
	char msg[512], *full;
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (errs->count < CONFIG_MAX_ERRORS &&
	    asprintf(&full, "%s:%d:%d: %s", path, line, col, msg) != -1)
		errs->msgs[errs->count] = full;
	errs->count++;
}

void config_errors_clear(struct config_errors *errs)
{
	size_t i;

	if (!errs)
		return;
	for (i = 0; i < errs->count && i < CONFIG_MAX_ERRORS; i++)
		free(errs->msgs[i]);
	memset(errs, 0, sizeof(*errs));
}
