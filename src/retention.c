/*
 * retention.c - remove what a settled study no longer needs: its spooled
 * files after retention_hours (the daemon, once a minute), its rows with
 * `triagectl purge` (see retention.h for "settled").
 *
 * DESIGN: each batch is one BEGIN IMMEDIATE transaction that selects the
 * studies that are settled *now*, unlinks their files and records that,
 * so nothing another thread adds meanwhile (a late instance, a retried
 * dispatch) can be removed by mistake. A crash after the unlinks but before
 * the commit leaves rows that point at missing files; the next sweep
 * finishes the job. A crash after the commit may resurrect a file whose
 * unlink was not yet durable; the start-up reconcile removes files whose
 * row says they were removed. Only paths inside the spool are unlinked.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "retention.h"

#define BATCH 16

/* The conditions on study s that make it settled (retention.h). */
#define SETTLED \
	" s.state = 'complete' AND s.routed_generation >= s.generation" \
	" AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.study_id = s.id" \
	"  AND j.state IN ('pending','running'))" \
	" AND NOT EXISTS (SELECT 1 FROM dispatches d WHERE d.study_id = s.id" \
	"  AND d.state <> 'delivered')" \
	" AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.study_id = s.id" \
	"  AND i.queued_dispatch = 0)" \
	" AND NOT EXISTS (SELECT 1 FROM results r WHERE r.study_id = s.id" \
	"  AND r.queued_dispatch = 0)" \
	" AND NOT EXISTS (SELECT 1 FROM notices n JOIN jobs j ON j.id = n.job_id" \
	"  WHERE j.study_id = s.id AND n.state IN ('pending','sending'))"

/* When it became settled: the latest thing that happened to it. */
#define SETTLED_AT \
	" max(coalesce(s.completed_at, 0)," \
	"  coalesce((SELECT max(coalesce(j.finished_at, j.updated_at)) FROM jobs j" \
	"   WHERE j.study_id = s.id), 0)," \
	"  coalesce((SELECT max(coalesce(d.delivered_at, d.updated_at)) FROM dispatches d" \
	"   WHERE d.study_id = s.id), 0)," \
	"  coalesce((SELECT max(n.updated_at) FROM notices n JOIN jobs j ON j.id = n.job_id" \
	"   WHERE j.study_id = s.id), 0))"

/* Is PATH a file inside ROOT (no "..", no escape through the prefix)? */
static bool
inside_spool(const char *root, const char *path)
{
	size_t n = strlen(root);

	while (n > 1 && root[n - 1] == '/')
		n--;
	if (strncmp(path, root, n) != 0 || path[n] != '/')
		return false;
	return strstr(path + n, "/../") == NULL && strstr(path + n, "/./") == NULL;
}

/* Remove PATH's directory when it has become empty. */
static void
rmdir_parent(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return;
	if ((slash = strrchr(dir, '/')) && slash != dir) {
		*slash = '\0';
		(void)rmdir(dir);       /* ENOTEMPTY: a late instance lives there */
	}
}

enum mode {
	COUNT,          /* dry run: count only */
	REMOVE,         /* unlink, mark the rows removed (retention) */
	DELETE,         /* unlink; the rows are deleted after (purge) */
};

/*
 * -EPERM when a file of study SID still present is recorded outside the
 * spool (the rows of another spool_dir): the study is then left alone,
 * whole, rather than half removed.
 */
static int
check_paths(sqlite3 *h, const char *root, int64_t sid)
{
	static const char *const sql[] = {
		"SELECT path FROM instances WHERE study_id = ? AND removed_at IS NULL",
		"SELECT path FROM results WHERE study_id = ? AND removed_at IS NULL",
	};
	sqlite3_stmt *st;
	int r = 0;

	for (size_t i = 0; i < 2 && r == 0; i++) {
		if (sqlite3_prepare_v2(h, sql[i], -1, &st, NULL) != SQLITE_OK)
			return -EIO;
		sqlite3_bind_int64(st, 1, sid);
		while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
			const char *p = (const char *)sqlite3_column_text(st, 0);
			if (p && !inside_spool(root, p)) {
				log_warnx("retention: %s is outside the spool %s: its study is "
				    "left alone (was spool_dir changed?)", p, root);
				r = -EPERM;
			}
		}
		sqlite3_finalize(st);
	}
	return r;
}

/*
 * The files of study SID still present in TABLE (instances or results):
 * counted, and unlinked unless MODE is COUNT, their directory removed when
 * that leaves it empty. ROWS gets the number of rows. check_paths() first.
 */
static int
remove_files(sqlite3 *h, const char *table, int64_t sid, int64_t now,
             enum mode mode, int64_t *rows, struct retention_counts *c)
{
	char sql[256], dir[PATH_MAX] = "";
	sqlite3_stmt *st = NULL;
	int r;

	snprintf(sql, sizeof(sql), "SELECT path, size, removed_at IS NULL FROM %s"
	    " WHERE study_id = ?", table);
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, sid);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *p = (const char *)sqlite3_column_text(st, 0);
		(*rows)++;
		if (!sqlite3_column_int(st, 2) || !p)
			continue;
		c->files++;
		c->bytes += (uint64_t)sqlite3_column_int64(st, 1);
		if (mode == COUNT)
			continue;
		if (unlink(p) < 0 && errno != ENOENT) {
			r = -errno;
			log_errno(LOG_ERR, r, "retention: removing %s", p);
			sqlite3_finalize(st);
			return r;
		}
		if (!dir[0])
			snprintf(dir, sizeof(dir), "%s", p);
	}
	sqlite3_finalize(st);
	if (r != SQLITE_DONE)
		return -EIO;
	if (dir[0])
		rmdir_parent(dir);
	if (mode != REMOVE)
		return 0;
	snprintf(sql, sizeof(sql), "UPDATE %s SET removed_at = ?2 WHERE study_id = ?1"
	    " AND removed_at IS NULL", table);
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, sid);
	sqlite3_bind_int64(st, 2, now);
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	return r;
}

/* Where a pass has got to: (completed_at, id) for retention, id for purge. */
struct cursor {
	int64_t completed_at;
	int64_t id;
};

/*
 * One transaction: up to LIMIT studies settled at or before CUT, after
 * CUR, lose their files (REMOVE) or everything (DELETE). Returns the number
 * handled and moves CUR past them.
 */
static int
batch(struct db *db, const char *root, int64_t now, int64_t cut, enum mode mode,
      bool purge, int limit, struct cursor *cur, struct retention_counts *c)
{
	struct cursor next = *cur;
	sqlite3 *h = db_handle(db);
	sqlite3_stmt *st = NULL, *del = NULL, *jobs = NULL;
	int64_t ids[BATCH];
	int n = 0, r;

	if (mode != COUNT && (r = db_begin(db)) < 0)
		return r;
	r = -EIO;
	if (sqlite3_prepare_v2(h, purge ?
	    "SELECT s.id FROM studies s WHERE s.id > ?3 AND s.completed_at <= ?1 AND" SETTLED
	    " AND" SETTLED_AT " <= ?1 ORDER BY s.id LIMIT ?2" :
	    /* walks studies_retention: only studies that still have files */
	    "SELECT s.id, s.completed_at FROM studies s WHERE s.files_removed_at IS NULL"
	    " AND s.state = 'complete' AND s.completed_at <= ?1"
	    " AND (s.completed_at > ?4 OR (s.completed_at = ?4 AND s.id > ?3)) AND" SETTLED
	    " AND" SETTLED_AT " <= ?1 ORDER BY s.completed_at, s.id LIMIT ?2", -1, &st,
	    NULL) != SQLITE_OK) {
		log_err("retention: %s", sqlite3_errmsg(h));
		goto done;
	}
	sqlite3_bind_int64(st, 1, cut);
	sqlite3_bind_int(st, 2, limit < BATCH ? limit : BATCH);
	sqlite3_bind_int64(st, 3, cur->id);
	if (!purge)
		sqlite3_bind_int64(st, 4, cur->completed_at);
	while (n < BATCH && (r = sqlite3_step(st)) == SQLITE_ROW) {
		ids[n++] = sqlite3_column_int64(st, 0);
		next.id = ids[n - 1];
		if (!purge)
			next.completed_at = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (r != SQLITE_ROW && r != SQLITE_DONE) {
		r = -EIO;
		goto done;
	}
	if (sqlite3_prepare_v2(h, "SELECT count(*) FROM jobs WHERE study_id = ?", -1, &jobs,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(h, purge ? "DELETE FROM studies WHERE id = ?1" :
	    "UPDATE studies SET files_removed_at = ?2 WHERE id = ?1", -1, &del,
	    NULL) != SQLITE_OK) {
		r = -EIO;
		goto done;
	}
	for (int i = 0; i < n; i++) {
		if ((r = check_paths(h, root, ids[i])) == -EPERM) {
			c->refused++;
			continue;
		}
		if (r < 0 ||
		    (r = remove_files(h, "instances", ids[i], now, mode, &c->instances, c)) < 0 ||
		    (r = remove_files(h, "results", ids[i], now, mode, &c->results, c)) < 0)
			goto done;
		c->studies++;
		if (purge) {
			sqlite3_reset(jobs);
			sqlite3_bind_int64(jobs, 1, ids[i]);
			if (sqlite3_step(jobs) == SQLITE_ROW)
				c->jobs += sqlite3_column_int64(jobs, 0);
		}
		if (mode == COUNT)
			continue;
		sqlite3_reset(del);
		sqlite3_bind_int64(del, 1, ids[i]);
		if (!purge)
			sqlite3_bind_int64(del, 2, now);
		if (sqlite3_step(del) != SQLITE_DONE) {
			log_err("retention: study %lld: %s", (long long)ids[i], sqlite3_errmsg(h));
			r = -EIO;
			goto done;
		}
	}
	r = n;
	*cur = next;
done:
	sqlite3_finalize(st);
	sqlite3_finalize(del);
	sqlite3_finalize(jobs);
	if (mode == COUNT)
		return r;
	if (r < 0) {
		(void)db_rollback(db);
		return r;
	}
	return db_commit(db) < 0 ? -EIO : r;
}

int
retention_sweep(struct db *db, const char *spool_root, int64_t now, int64_t after_s,
                int max_studies, struct retention_counts *out)
{
	struct retention_counts c = { 0 };
	struct cursor cur = { 0, 0 };
	int done = 0, r = 0;

	while (done < max_studies) {
		r = batch(db, spool_root, now, now - after_s, REMOVE, false,
		    max_studies - done, &cur, &c);
		if (r <= 0)
			break;
		done += r;
	}
	if (c.studies > 0)
		log_info("retention: removed %lld file(s), %.1f MB, of %lld settled "
		    "study(ies)", (long long)c.files, c.bytes / 1048576.0,
		    (long long)c.studies);
	if (out) {
		out->studies += c.studies;
		out->instances += c.instances;
		out->results += c.results;
		out->files += c.files;
		out->refused += c.refused;
		out->bytes += c.bytes;
	}
	return r < 0 ? r : done;
}

int
retention_purge(struct db *db, const char *spool_root, int64_t now, int64_t older_s,
                bool dry_run, struct retention_counts *out)
{
	sqlite3_stmt *st = NULL;
	struct cursor cur = { 0, 0 };
	int64_t old = 0;
	int r;

	/* what is old enough: studies last touched before the cut-off */
	if (sqlite3_prepare_v2(db_handle(db), "SELECT count(*) FROM studies"
	    " WHERE coalesce(completed_at, last_received_at) <= ?", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, now - older_s);
	if (sqlite3_step(st) == SQLITE_ROW)
		old = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);

	do {
		r = batch(db, spool_root, now, now - older_s, dry_run ? COUNT : DELETE,
		    true, BATCH, &cur, out);
	} while (r > 0);
	if (r < 0)
		return r;
	out->kept = old - out->studies;
	if (out->kept < 0)
		out->kept = 0;
	if (!dry_run && out->studies > 0)
		log_notice("purge: removed %lld study(ies), %lld job(s), %lld file(s) settled "
		    "before %llds ago", (long long)out->studies, (long long)out->jobs,
		    (long long)out->files, (long long)older_s);
	return 0;
}
