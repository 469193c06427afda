/*
 * study.c - study completion, run once a second by the main loop.
 *
 * DESIGN: completion is a single UPDATE ... RETURNING over the studies
 * table, so a restart needs no memory of timers: a study that became quiet
 * while triaged was down is completed by the first sweep after start.
 */
#include "study.h"

#include <stdbool.h>

#include "config.h"
#include "db.h"
#include "log.h"

static void
on_complete(void *arg, const char *study_uid, int64_t instances, int64_t generation,
            bool forced)
{
	(void)arg;
	log_info("study=%s complete instances=%lld generation=%lld%s", study_uid,
	    (long long)instances, (long long)generation,
	    forced ? " (force_seconds reached while still receiving)" : "");
}

int
study_sweep(struct db *db, const struct config *cfg, int64_t now)
{
	return db_studies_complete_due(db, now, cfg->study.stable_seconds,
	    cfg->study.force_seconds, on_complete, NULL);
}
