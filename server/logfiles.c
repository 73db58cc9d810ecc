/* logfiles.c: reopening the log files after rotation (see logfiles.h). */
#include "server/logfiles.h"

#include <signal.h>
#include <stdio.h>

#include "common/log.h"
#include "server/supervisor.h"
#include "worker/access.h"

int logfiles_reopen(struct master *m, char *err, size_t errlen)
{
	const struct config *cfg = m->m_cur.mg_cfg;
	char why[256];
	int rc = 0;

	if (log_reopen(why, sizeof(why)) == -1) {
		log_error("reopening the error log: %s", why);
		snprintf(err, errlen, "error log: %s", why);
		rc = -1;
	}
	/* a rotated access log is re-created here, owned by the workers */
	if (cfg != NULL && access_prepare(cfg->access_log_path, m->m_cur.mg_uid,
					  m->m_cur.mg_gid, why,
					  sizeof(why)) == -1) {
		log_error("access log %s: %s", cfg->access_log_path, why);
		if (rc == 0)
			snprintf(err, errlen, "access log %s: %s",
				 cfg->access_log_path, why);
		rc = -1;
	}
	supervisor_signal_all(m, SIGUSR1);
	log_notice("error log reopened");
	return rc;
}
