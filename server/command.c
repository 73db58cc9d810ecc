/* command.c: executing control socket commands inside the master (see
 * command.h). */
#include "server/command.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/shm.h"
#include "common/timer.h"
#include "common/version.h"
#include "server/ban.h"
#include "server/logfiles.h"
#include "server/metrics_page.h"
#include "server/master_types.h"
#include "server/reload.h"
#include "server/scoreboard.h"
#include "server/upgrade.h"
#include "server/supervisor.h"
#include "worker/tls.h"

static const char *command_phase(const struct master *m)
{
	if (m->m_stopping == MASTER_STOP_FAST)
		return "stopping (fast)";
	if (m->m_stopping == MASTER_STOP_GRACEFUL)
		return m->m_up.up_handed_over ? "handed over, draining"
					      : "stopping (graceful)";
	switch (m->m_phase) {
	case MASTER_STARTING:
		return "reloading (new workers starting)";
	case MASTER_RETIRING:
		return "reloading (old workers leaving)";
	default:
		return m->m_up.up_child ? "upgrading" : "running";
	}
}

static void command_status_master(struct master *m, struct control_conn *cc,
				  uint64_t now)
{
	control_line(cc,
		     "master pid=%d version=%s uptime=%llus state=%s "
		     "config=%s",
		     (int)m->m_pid, PORTCULLIS_VERSION,
		     (unsigned long long)(now - m->m_started) / 1000,
		     command_phase(m), m->m_path);
	control_line(cc, "reloads ok=%u failed=%u last_error=%s",
		     m->m_reloads_ok, m->m_reloads_failed,
		     m->m_reload_error ? m->m_reload_error : "none");
	if (m->m_up.up_child != 0)
		control_line(cc, "upgrade new_master=%d starting",
			     (int)m->m_up.up_child);
	if (m->m_cur.mg_cfg != NULL && m->m_cur.mg_cfg->ban.after != 0)
		control_line(cc, "bans added=%llu failed=%llu set=%s",
			     (unsigned long long)ban_added(m->m_ban),
			     (unsigned long long)ban_failed(m->m_ban),
			     m->m_cur.mg_cfg->ban.nft_set);
}

/* One generation and its workers (gen: its number; what: its role). */
static void command_status_gen(struct master *m, struct control_conn *cc,
			       unsigned gen, const char *what, uint64_t now)
{
	unsigned long long conns = (unsigned long long)supervisor_conns(m, gen);

	control_line(cc, "generation %u %s workers=%zu connections=%llu", gen,
		     what, supervisor_count(m, gen, gen), conns);
	for (size_t i = 0; i < MASTER_MAX_WORKERS; i++) {
		const struct master_worker *mw = &m->m_workers[i];

		if (mw->mw_pid == 0 || mw->mw_gen != gen)
			continue;
		control_line(cc,
			     "  worker pid=%d slot=%u state=%s connections=%u "
			     "uptime=%llus",
			     (int)mw->mw_pid, mw->mw_slot,
			     supervisor_worker_state(m, mw),
			     scoreboard_get(m->m_board, i),
			     (unsigned long long)(now - mw->mw_started) / 1000);
	}
	if (gen != m->m_cur.mg_num)
		return;
	for (unsigned s = 0; s < m->m_cur.mg_nslots; s++)
		if (m->m_cur.mg_slots[s].ms_start_at != 0)
			control_line(cc,
				     "  slot %u restarting (died %u times "
				     "in a row right after start)",
				     s, m->m_cur.mg_slots[s].ms_fails);
}

static int command_cmp_desc(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* Every generation that has workers, and the serving one: newest first. */
static void command_status_gens(struct master *m, struct control_conn *cc,
				uint64_t now)
{
	unsigned gens[MASTER_MAX_WORKERS + 2];
	size_t n = 0;

	if (m->m_next.mg_num != 0)
		gens[n++] = m->m_next.mg_num;
	if (m->m_cur.mg_num != 0)
		gens[n++] = m->m_cur.mg_num;
	for (size_t i = 0; i < MASTER_MAX_WORKERS; i++) {
		size_t j;

		if (m->m_workers[i].mw_pid == 0)
			continue;
		for (j = 0; j < n && gens[j] != m->m_workers[i].mw_gen; j++)
			;
		if (j == n)
			gens[n++] = m->m_workers[i].mw_gen;
	}
	qsort(gens, n, sizeof(gens[0]), command_cmp_desc);
	for (size_t i = 0; i < n; i++)
		command_status_gen(m, cc, gens[i],
				   gens[i] == m->m_cur.mg_num	 ? "serving"
				   : gens[i] == m->m_next.mg_num ? "starting"
				   : gens[i] > m->m_cur.mg_num
					   ? "failed, stopping"
					   : "draining",
				   now);
}

/* A TLS listener's certificates: names and expiry, one line each. */
static void command_status_certs(struct control_conn *cc,
				 const struct tls_server *ts)
{
	char text[4096];
	char *line, *save = NULL;

	(void)tls_server_describe(ts, text, sizeof(text));
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save))
		control_line(cc, "%s", line);
}

static void command_status_listeners(struct master *m, struct control_conn *cc)
{
	const struct config *cfg = m->m_cur.mg_cfg;
	size_t k = 0;

	for (size_t i = 0; cfg != NULL && i < cfg->nlisteners; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];

		control_line(cc, "listener %s protocol=%s", l->name,
			     l->protocol == CFG_PROTO_TCP ? "tcp" : "http");
		for (size_t j = 0; j < l->nbinds; j++, k++) {
			char fds[128] = "";
			size_t off = 0;

			for (size_t w = 0; k < m->m_cur.mg_nfds &&
					   w < (l->reuseport ? m->m_cur.mg_nslots : 1) &&
					   off < sizeof(fds) - 12; w++)
				off += (size_t)snprintf(
					fds + off, sizeof(fds) - off, "%s%d",
					w ? "," : "",
					m->m_cur.mg_fds[w * m->m_cur.mg_nfds + k]);
			control_line(cc, "  bind %s %s=%s", l->binds[j].str,
				     l->reuseport ? "reuseport fds" : "fd",
				     off ? fds : "-1");
		}
		if (l->tls != NULL && l->tls->ctx != NULL)
			command_status_certs(cc, l->tls->ctx);
	}
}

static const char *const command_balance[] = {
	[CFG_BALANCE_ROUND_ROBIN] = "round_robin",
	[CFG_BALANCE_LEAST_CONN] = "least_conn",
	[CFG_BALANCE_RANDOM_TWO] = "random_two",
	[CFG_BALANCE_HASH] = "hash",
};

/* One server's machine-wide state, from the shared-memory zone. */
static void command_status_server(struct control_conn *cc,
				  const struct cfg_backend *be,
				  const struct cfg_server *s, uint64_t now_mono)
{
	struct shm_server *sv = shm_server_at(shm_zone(), s->slot);
	char reason[SHM_REASON_LEN];
	uint64_t until = atomic_load(&sv->sv_down_until);
	uint64_t since = atomic_load(&sv->sv_changed);
	bool is_up = be->health.type == CFG_CHECK_NONE ||
		     atomic_load(&sv->sv_health) == SHM_UP;
	struct metrics_area *ma = metrics_area(shm_zone());
	struct metrics_server ms = {0};
	uint64_t idle;

	if (ma != NULL)
		metrics_sum_server(ma, s->slot, &ms, &idle);
	shm_reason(sv, reason, sizeof(reason));
	control_line(cc,
		     "  server %s weight=%u backup=%s max_connections=%u "
		     "health=%s drain=%s connections=%u requests=%llu "
		     "failures=%llu",
		     s->addr.str, s->weight, s->backup ? "yes" : "no",
		     s->max_connections,
		     !is_up ? "down" : until > now_mono ? "down (passive)" : "up",
		     atomic_load(&sv->sv_drain) ? "yes" : "no",
		     atomic_load(&sv->sv_active),
		     (unsigned long long)ms.ms_requests,
		     (unsigned long long)ms.ms_failures);
	if (reason[0] != '\0')
		control_line(cc, "    last change %llus ago: %s",
			     (unsigned long long)(shm_wall_ms() - since) / 1000,
			     reason);
}

/* Backends and servers with their health, drain state and load. */
static void command_status_backends(struct master *m, struct control_conn *cc)
{
	const struct config *cfg = m->m_cur.mg_cfg;
	uint64_t now = timer_now_ms();

	for (size_t i = 0; cfg != NULL && i < cfg->nbackends; i++) {
		const struct cfg_backend *be = &cfg->backends[i];

		control_line(cc, "backend %s balance=%s servers=%zu", be->name,
			     be->balance <= CFG_BALANCE_HASH
				     ? command_balance[be->balance]
				     : "?",
			     be->nservers);
		for (size_t j = 0; j < be->nservers; j++)
			command_status_server(cc, be, &be->servers[j], now);
	}
}

static void command_status(struct master *m, struct control_conn *cc)
{
	uint64_t now = timer_now_ms();

	command_status_master(m, cc, now);
	command_status_gens(m, cc, now);
	command_status_listeners(m, cc);
	command_status_backends(m, cc);
	control_finish(cc, true, "%s", "");
}

/*
 * "status --json": the document of /status.json (metrics_page.h), one
 * "| " line per line of it, for scripts that have no admin endpoint.
 */
static void command_status_json(struct master *m, struct control_conn *cc)
{
	struct outbuf o = {.ob_max = 1u << 20};
	char *line, *save = NULL;

	metrics_json(m, &o);
	if (o.ob_is_full || o.ob_buf == NULL) {
		outbuf_free(&o);
		control_finish(cc, false, "status too large for the control "
					  "socket (1 MiB): use the admin "
					  "endpoint's /status.json");
		return;
	}
	for (line = strtok_r(o.ob_buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save))
		control_line(cc, "%s", line);
	outbuf_free(&o);
	control_finish(cc, true, "%s", "");
}

static void command_upgrade(struct master *m, struct control_conn *cc)
{
	char err[256];

	cc->cc_wait = CONTROL_WAIT_UPGRADE;
	if (upgrade_start(m, err, sizeof(err)) == -1) {
		log_warn("upgrade refused: %s", err);
		control_finish(cc, false, "upgrade refused: %s", err);
	}
}

/*
 * "drain BACKEND SERVER" / "enable BACKEND SERVER": set the server's
 * drain flag in shared memory.  Every worker stops (or resumes) sending
 * it new requests at once; in-flight ones finish.  The flag lives in the
 * server's slot, so it survives reloads that keep the server.
 */
static void command_drain(struct master *m, struct control_conn *cc,
			  const char *cmd)
{
	char verb[16], backend[128], addr[128];
	const struct cfg_backend *be;
	struct shm_server *sv = NULL;
	bool on;

	if (sscanf(cmd, "%15s %127s %127s", verb, backend, addr) != 3) {
		control_finish(cc, false, "usage: %s BACKEND SERVER", verb);
		return;
	}
	on = strcmp(verb, "drain") == 0;
	be = m->m_cur.mg_cfg ? config_backend(m->m_cur.mg_cfg, backend) : NULL;
	for (size_t i = 0; be != NULL && i < be->nservers; i++)
		if (strcmp(be->servers[i].addr.str, addr) == 0)
			sv = shm_server_at(shm_zone(), be->servers[i].slot);
	if (sv == NULL) {
		control_finish(cc, false, "no server %.127s in backend %.127s",
			       addr, backend);
		return;
	}
	atomic_store(&sv->sv_drain, on ? 1 : 0);
	log_notice("backend %s: server %s %s by the operator", backend, addr,
		   on ? "drained" : "enabled");
	control_finish(cc, true, "backend %s: server %s %s", backend, addr,
		       on ? "drained: no new requests" : "enabled");
}

/*
 * "stop" / "quit": the master's loop stops as it does for TERM / QUIT
 * (m_stop_asked is its flag); cc is answered just before the exit.
 */
static void command_stop(struct master *m, struct control_conn *cc,
			 bool fast)
{
	enum master_stopping how =
		fast ? MASTER_STOP_FAST : MASTER_STOP_GRACEFUL;

	cc->cc_wait = CONTROL_WAIT_EXIT;
	if (m->m_stop_asked < how)
		m->m_stop_asked = how;
}

/* "reopen": SIGUSR1 over the socket, which only a real master answers
 * (logrotate's postrotate, instead of a pid file that may be stale). */
static void command_reopen(struct master *m, struct control_conn *cc)
{
	char err[300];

	if (logfiles_reopen(m, err, sizeof(err)) == -1)
		control_finish(cc, false, "%s", err);
	else
		control_finish(cc, true, "log files reopened");
}

/*
 * "check": keepalived's track_script asks every second or so, so that
 * the address moves away from a node that does not serve.  OK with no
 * text (the CLI prints nothing), or ERR with the reason.
 */
static void command_check(struct master *m, struct control_conn *cc)
{
	char why[160];

	if (supervisor_check(m, timer_now_ms(), why, sizeof(why)) == -1)
		control_finish(cc, false, "check failed: %s", why);
	else
		control_finish(cc, true, "%s", "");
}

void command_run(struct control *ctl, struct control_conn *cc, const char *cmd)
{
	struct master *m = ctl->ctl_data;

	/* check comes every second from keepalived: not worth a line each */
	log_msg(strcmp(cmd, "check") == 0 ? LOG_LVL_DEBUG : LOG_LVL_INFO,
		"control socket: %s", cmd);
	if (strcmp(cmd, "check") == 0) {
		command_check(m, cc);
	} else if (strcmp(cmd, "status") == 0) {
		command_status(m, cc);
	} else if (strcmp(cmd, "status --json") == 0) {
		command_status_json(m, cc);
	} else if (strcmp(cmd, "reload") == 0) {
		cc->cc_wait = CONTROL_WAIT_RELOAD_QUEUED;
		reload_request(m);
	} else if (strcmp(cmd, "upgrade") == 0) {
		command_upgrade(m, cc);
	} else if (strncmp(cmd, "drain ", 6) == 0 ||
		   strncmp(cmd, "enable ", 7) == 0) {
		command_drain(m, cc, cmd);
	} else if (strcmp(cmd, "reopen") == 0) {
		command_reopen(m, cc);
	} else if (strcmp(cmd, "stop") == 0 || strcmp(cmd, "quit") == 0) {
		command_stop(m, cc, cmd[0] == 's');
	} else {
		control_finish(cc, false,
			       "unknown command '%.64s' (commands: "
			       "status, check, reload, upgrade, reopen, stop, "
			       "quit, drain, enable)",
			       cmd);
	}
}
