/*
 * config.h: the typed, validated configuration of one generation.
 *
 * config_load() parses a YAML file (libyaml) into a struct config and
 * validates all of it.  Every problem found is reported as
 * "FILE:LINE:COL: message" into a struct config_errors; a config that has
 * any error is never returned.  One struct config owns everything below it
 * and is torn down by one config_free().
 */
#ifndef PORTCULLIS_CONFIG_H
#define PORTCULLIS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "common/cidr.h"

#define CONFIG_DEFAULT_PATH "/etc/portcullis/portcullis.yaml"
#define CONFIG_MAX_ERRORS 64 /* more than this are counted, not kept */

enum cfg_log_level {
	CFG_LOG_DEBUG,
	CFG_LOG_INFO,
	CFG_LOG_NOTICE,
	CFG_LOG_WARN,
	CFG_LOG_ERROR,
};

enum cfg_access_format {
	CFG_ACCESS_COMBINED,
	CFG_ACCESS_JSON,
};

enum cfg_protocol {
	CFG_PROTO_HTTP,
	CFG_PROTO_TCP,
};

enum cfg_balance {
	CFG_BALANCE_ROUND_ROBIN,
	CFG_BALANCE_LEAST_CONN,
	CFG_BALANCE_RANDOM_TWO,
	CFG_BALANCE_HASH,
};

enum cfg_hash_key {
	CFG_HASH_CLIENT_IP,
	CFG_HASH_URI,
	CFG_HASH_HEADER,
};

enum cfg_check_type {
	CFG_CHECK_NONE, /* no health_check: */
	CFG_CHECK_TCP,
	CFG_CHECK_HTTP,
};

#define CFG_MAX_EXPECT_STATUS 16

/* health_check: active checks of every server of a backend. */
struct cfg_health {
	enum cfg_check_type type;
	char *path;                /* http: request path, default "/" */
	char *host;                /* http: Host header, NULL = server address */
	char *body;                /* http: the body must contain it; NULL = any */
	uint16_t expect_status[CFG_MAX_EXPECT_STATUS]; /* default [200] */
	size_t nexpect_status;
	uint32_t interval_ms;      /* default 2s */
	uint32_t timeout_ms;       /* default 1s, at most interval */
	uint32_t rise, fall;       /* default 2 and 3 */
};

/* A parsed socket address: "1.2.3.4:80", "[::1]:80", "*:80" / "0.0.0.0:80". */
struct cfg_addr {
	char *str;                  /* as written in the file, owned */
	struct sockaddr_storage sa; /* resolved numeric address */
	socklen_t salen;
	int line, col;              /* where it was written */
};

/* Limits and timeouts: set in defaults, overridable per listener and route. */
struct cfg_limits {
	uint32_t client_header_timeout_ms; /* whole request head; default 10s */
	uint32_t client_body_timeout_ms;   /* between two body reads; 60s */
	uint32_t client_body_min_rate;     /* bytes/s a body must average once
					      client_body_timeout is used up
					      (Apache's MinRate); 500, 0 = off */
	uint32_t keepalive_timeout_ms;     /* idle client keep-alive; 75s */
	uint32_t max_header_size;          /* request line + headers; 32k */
	uint64_t max_body_size;            /* 0 = unlimited */
	char **hide_response_headers;      /* default Server, X-Powered-By */
	size_t nhide_response_headers;
	bool forwarded_headers;            /* X-Forwarded-*; default true */
};

struct cfg_server {
	struct cfg_addr addr;   /* (required) */
	uint32_t weight;        /* 1..1000, default 1 */
	bool backup;            /* default false */
	uint32_t max_connections; /* 0 = unlimited */
	int slot;               /* shared-memory slot, set by the master */
};

struct tls_server; /* worker/tls.h */
struct tls_client;
struct iptree;     /* common/iptree.h */
struct htpasswd;   /* worker/auth.h */

/*
 * allow: / deny: of a listener or a route (issue #12): inline CIDRs and
 * "file:/path" lists, built into lookup trees when the config is loaded
 * (in the master, before fork: the workers share them).  Deny wins; no
 * allow list admits everyone.
 */
struct cfg_acl {
	struct iptree *allow;       /* NULL: everyone */
	struct iptree *deny;        /* NULL: nobody */
	int line, col;              /* of allow: (or deny: without allow) */
};

/* rate_limit: a token bucket per client address (/prefix), all workers. */
struct cfg_rate_limit {
	uint32_t rps;               /* requests_per_second; 0 = off */
	uint32_t burst;             /* default 0: rps alone */
	uint8_t prefix_v4;          /* key_prefix_v4, default 32 */
	uint8_t prefix_v6;          /* key_prefix_v6, default 64 */
	uint32_t id;                /* set by the loader: this limit's key
				       space in the shared table, the same
				       across reloads for the same listener
				       (and route) name */
};

enum cfg_underscores {
	CFG_UNDERSCORES_DROP = 0,   /* default: such headers are not forwarded */
	CFG_UNDERSCORES_REJECT,     /* 400 */
	CFG_UNDERSCORES_ALLOW,
};

enum cfg_ambiguous {
	CFG_AMBIGUOUS_CLOSE = 0,    /* default: forward, then close both sides */
	CFG_AMBIGUOUS_REJECT,       /* 400 */
};

enum cfg_normalize {
	CFG_NORMALIZE_MATCH = 0,    /* default: match on the normalised path,
				       forward the client's bytes */
	CFG_NORMALIZE_FORWARD,      /* forward the normalised path too */
};

enum cfg_proxy_protocol {
	CFG_PROXY_PROTOCOL_OFF = 0,
	CFG_PROXY_PROTOCOL_V1,
	CFG_PROXY_PROTOCOL_V2,
};

/* auth: HTTP Basic on a route. */
struct cfg_auth {
	char *realm;                /* (required) */
	char *users_file;           /* (required) htpasswd: bcrypt, sha512-crypt */
	struct htpasswd *users;     /* loaded with the config */
	bool forward;               /* pass Authorization on; default false */
	int line, col;
};

/* One certificate of a TLS listener: PEM chain (leaf first) and its key. */
struct cfg_tls_cert {
	char *cert;                 /* (required) absolute path */
	char *key;                  /* (required) absolute path */
	int line, col;              /* of the list item */
};

enum cfg_tls_verify {
	CFG_TLS_VERIFY_NONE = 0,    /* no client_ca: no client certificate asked */
	CFG_TLS_VERIFY_OPTIONAL,    /* asked; a missing one is accepted */
	CFG_TLS_VERIFY_REQUIRED,    /* default with client_ca */
};

/*
 * A listener's tls: (TLS termination).  The contexts built from it
 * (worker/tls.h) hang off ctx, owned by the config.
 */
struct cfg_tls {
	int line, col;              /* of the tls: key */
	struct cfg_tls_cert *certs; /* (required) at least one; [0] is the default */
	size_t ncerts;
	unsigned min_version;       /* 12 (TLSv1.2, default) or 13 (TLSv1.3) */
	char *ciphers;              /* TLS 1.2 cipher list; NULL = safe AEAD default */
	uint32_t ticket_rotation_ms; /* default 12h */
	uint32_t handshake_timeout_ms; /* default 10s */
	char *client_ca;            /* mTLS: CA file (PEM); NULL = off */
	enum cfg_tls_verify verify; /* REQUIRED with client_ca unless set */
	uint32_t verify_depth;      /* default 4 */
	char *subject_header;       /* default X-Client-Subject */
	char *fingerprint_header;   /* default X-Client-Fingerprint */
	uint32_t hsts;              /* Strict-Transport-Security max-age; 0 = off */
	struct tls_server *ctx;     /* built by tls_config_load() */
};

/* A backend's tls: (TLS to the servers). */
struct cfg_upstream_tls {
	int line, col;
	bool verify;                /* default true */
	char *ca_file;              /* default "system": the system store */
	char *sni;                  /* default: the server's host name; "" = none
				       when the address is an IP literal */
	char *cert, *key;           /* client certificate; both or neither */
	unsigned min_version;       /* 12 (default) or 13 */
	struct tls_client *ctx;     /* built by tls_config_load() */
};

struct cfg_backend {
	char *name;                 /* the mapping key under backends: */
	int line, col;
	enum cfg_balance balance;   /* default round_robin */
	uint32_t connect_timeout_ms;  /* default 5s */
	uint32_t response_timeout_ms; /* default 60s */
	uint32_t response_total_timeout_ms; /* whole response; 0 = none */
	uint32_t retries;           /* default 1 */
	uint32_t keepalive;         /* idle upstream conns per worker; 32 */
	enum cfg_hash_key hash_key; /* balance: hash; default client_ip */
	char *hash_header;          /* hash_key: header:NAME */
	struct cfg_health health;   /* type NONE without health_check: */
	uint32_t max_fails;         /* passive: failures in a row; 3, 0 = off */
	uint32_t fail_timeout_ms;   /* passive: how long down; 10s */
	uint32_t panic_threshold;   /* percent healthy below which every
				       server is used; 50, 0 = never */
	struct cfg_server *servers; /* (required) at least one */
	size_t nservers;
	struct cfg_upstream_tls *tls; /* NULL = plain */
	enum cfg_proxy_protocol proxy_protocol; /* sent to servers */
};

struct cfg_route {
	char **hosts;          /* exact "a.com" or wildcard "*.a.com"; lowercased */
	size_t nhosts;         /* 0 = any host */
	char *path_prefix;     /* default "/" */
	char *backend_name;    /* (required) unless redirect is set */
	struct cfg_backend *backend; /* resolved, borrowed from config */
	unsigned redirect_status;    /* redirect: {scheme: https, status}: 301,
					302, 307 or 308 (default); 0 = none */
	struct cfg_acl acl;          /* checked at dispatch: 403 */
	struct cfg_rate_limit rate_limit; /* in addition to the listener's */
	char **methods;              /* allowed methods; NULL = any (405) */
	size_t nmethods;
	struct cfg_auth *auth;       /* NULL = none */
	struct cfg_limits limits;    /* inherited from the listener */
	int line, col;
	int slot;                    /* shared-memory slot, set by the master */
};

/*
 * admin: the read-only HTTP endpoint the master serves (/metrics, /status,
 * /status.json; server/admin.h).  Off unless bind is set.
 */
struct cfg_admin {
	struct cfg_addr bind;        /* bind.str NULL: off */
	struct cfg_acl acl;          /* allow (default loopback only) */
};

struct cfg_listener {
	char *name;                  /* (required) unique */
	int line, col;
	struct cfg_addr *binds;      /* (required) one or a list */
	size_t nbinds;
	enum cfg_protocol protocol;  /* default http */
	bool reuseport;
	struct cfg_limits limits;    /* inherited from defaults */
	struct cfg_route *routes;    /* http: first match wins */
	size_t nroutes;
	char *backend_name;          /* tcp: the one backend */
	struct cfg_backend *backend;
	struct cidr *trusted_proxies; /* peers whose X-Forwarded-For is kept */
	size_t ntrusted_proxies;
	struct cfg_tls *tls;         /* NULL = plain */
	struct cfg_acl acl;          /* checked at accept: closed */
	bool proxy_protocol;         /* PROXY v1/v2 header expected first */
	uint32_t max_connections;    /* all workers; 0 = unlimited */
	uint32_t max_connections_per_client; /* all workers; 0 = unlimited */
	struct cfg_rate_limit rate_limit;
	enum cfg_underscores underscores_in_headers;
	enum cfg_ambiguous ambiguous_requests;
	enum cfg_normalize normalize_path;
	int slot;                    /* shared-memory slot, set by the master */
	int route_slot;              /* its requests without a route (and
					connection counters): a route slot of
					the zone, set by the master */
};

/*
 * ban: a client refused (403, 429, 401 for a wrong password, closed at
 * admission) `after` times within `within` is put by the master into an
 * nftables set with a timeout of `for` (server/ban.c).  after 0 = off.
 */
struct cfg_ban {
	uint32_t after;             /* refusals; 0 = off (default) */
	uint32_t within_ms;         /* default 60s */
	uint32_t for_ms;            /* default 10m */
	char *nft_set;              /* "FAMILY TABLE SET" for IPv4 clients;
				       default "inet portcullis banned" */
	char *nft_set6;             /* the same for IPv6 clients; NULL = none */
	int line, col;              /* of ban:, for errors found later */
};

struct config {
	char *path;                 /* the file it was read from */
	uint32_t workers;           /* resolved: auto = number of CPUs */
	uint32_t worker_connections; /* client connections per worker; 10000 */
	char *user, *group;         /* default portcullis / portcullis */
	bool allow_root_workers;    /* user may be root; default false */
	char *pid_file;             /* default /run/portcullis/portcullis.pid */
	char *control_socket;       /* default /run/portcullis/portcullis.sock */
	char *control_socket_group; /* may run read-only commands; NULL = none */
	gid_t control_socket_gid;   /* resolved at load; (gid_t)-1 = none */
	uint32_t shutdown_timeout_ms; /* default 30s */
	uint32_t watchdog_ms;       /* a worker whose loop stops turning this
				       long is replaced; 10s, 0 = off */
	char *error_log_path;       /* "stderr" (default), "syslog" or a path */
	enum cfg_log_level error_log_level; /* default info */
	char *access_log_path;      /* NULL = off, "stderr" or a path */
	enum cfg_access_format access_log_format; /* default combined */
	struct cfg_limits defaults;
	uint32_t rate_limit_table;  /* client entries in the shared rate and
				       connection tables; 100000 */
	struct cfg_ban ban;
	struct cfg_admin admin;     /* the admin endpoint; default off */
	struct cfg_listener *listeners;
	size_t nlisteners;
	struct cfg_backend *backends;
	size_t nbackends;
	/*
	 * The TLS contexts of the listeners and backends (worker/tls.c) are
	 * freed through this when the config is: config/ links no OpenSSL.
	 */
	void (*tls_free)(struct config *cfg);
};

/* Errors collected while loading, each "FILE:LINE:COL: message". */
struct config_errors {
	char *msgs[CONFIG_MAX_ERRORS];
	size_t count;   /* how many were found, may exceed CONFIG_MAX_ERRORS */
};

/*
 * Read and validate the file at path.  Returns a new config the caller owns
 * (free with config_free), or NULL with every problem appended to errs.
 */
struct config *config_load(const char *path, struct config_errors *errs);

/* Parse from a memory string instead of a file (unit tests); path names it. */
struct config *config_load_string(const char *path, const char *yaml,
				  struct config_errors *errs);

/* Free a config and everything it owns.  NULL is fine. */
void config_free(struct config *cfg);

/*
 * Append "PATH:LINE:COL: message" to errs, for checks made after loading
 * (TLS keys and certificates: worker/tls.c).
 */
void config_error_at(struct config_errors *errs, const char *path, int line,
		     int col, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Free the messages held by errs and reset it to empty. */
void config_errors_clear(struct config_errors *errs);

/* Find a backend by name; NULL if none. Borrowed pointer. */
struct cfg_backend *config_backend(const struct config *cfg, const char *name);

/*
 * Parsers for the scalar forms, exported for tests.  Each returns 0 and
 * stores the value, or -1 if s is not a valid value of that kind.
 */
int config_parse_duration(const char *s, uint32_t *ms); /* 500ms 2s 1m 1h, bare = s */
int config_parse_size(const char *s, uint64_t *bytes);   /* 512 16k 10m 1g */
int config_parse_addr(const char *s, struct sockaddr_storage *sa,
		      socklen_t *salen);                 /* host:port, [v6]:port */

#endif
