/*
 * retention.h - what happens to a study once nothing about it is left to
 * do: its spooled files are removed retention_hours later (the rows stay,
 * so the history can still be read), and `triagectl purge` removes the
 * rows too.
 *
 * A study is *settled* when it is complete and routed, no job of it is
 * pending or running, every instance and result of it has been queued for
 * delivery, every dispatch of it is delivered (a dead one keeps it, and its
 * files, until someone retries it) and no webhook notice of it is waiting.
 * Its settled time is the latest of its completion, its jobs' ends, its
 * deliveries and its notices.
 */
#ifndef TRIAGED_RETENTION_H
#define TRIAGED_RETENTION_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"

struct retention_counts {
	int64_t  studies;       /* studies whose files (or rows) went */
	int64_t  instances;     /* instance rows touched */
	int64_t  results;       /* result rows touched */
	int64_t  jobs;          /* job rows deleted (purge) */
	int64_t  files;         /* files unlinked */
	uint64_t bytes;         /* their recorded sizes */
	int64_t  kept;          /* old enough, but not settled (purge) */
	int64_t  refused;       /* settled, but a file is recorded outside the
	                         * spool: left alone, whole */
};

/*
 * Remove the spooled files of up to MAX_STUDIES studies settled at or
 * before NOW - AFTER_S, a few studies per transaction. Only paths under
 * SPOOL_ROOT are unlinked: a study with a file recorded elsewhere is left
 * alone, whole, and counted in refused. Adds to OUT (may be NULL); returns
 * the number of studies looked at or a negative errno.
 */
int retention_sweep(struct db *db, const char *spool_root, int64_t now, int64_t after_s,
                    int max_studies, struct retention_counts *out);

/*
 * Remove the files and then every row of the studies settled at or before
 * NOW - OLDER_S. With DRY_RUN nothing changes and OUT says what would go.
 * Returns 0 or a negative errno.
 */
int retention_purge(struct db *db, const char *spool_root, int64_t now, int64_t older_s,
                    bool dry_run, struct retention_counts *out);

#endif
