/*
 * queue.c - jobs in SQL.
 *
 * DESIGN: a claim is one UPDATE ... WHERE id = (SELECT ... ORDER BY
 * priority, created_at LIMIT 1) RETURNING, atomic under SQLite's write
 * lock, so two workers never get the same job. Every attempt has a row
 * (attempts) with its end and message: "show" tells the whole story.
 */
#include "queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

static char *
dup_col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return strdup(t ? (const char *)t : "");
}

void
queue_job_done(struct queue_job *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->ninstances; i++) {
		struct queue_instance *q = &j->instances[i];
		free(q->sop_uid); free(q->sop_class_uid); free(q->series_uid); free(q->path);
		free(q->transfer_syntax); free(q->modality); free(q->body_part);
		free(q->laterality); free(q->view_position); free(q->image_type);
		free(q->presentation_intent);
	}
	free(j->instances);
	free(j->route); free(j->backend); free(j->sr_template); free(j->study_uid); free(j->accession);
	free(j->study_date); free(j->study_description); free(j->modality);
	free(j->patient_id); free(j->patient_name); free(j->patient_birth_date);
	free(j->patient_sex); free(j->patient_age);
	memset(j, 0, sizeof(*j));
}

static int
load_details(struct db *db, struct queue_job *j)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int r = -EIO;

	if (sqlite3_prepare_v2(db_handle(db),
	    "SELECT study_uid, accession, study_date, study_description, modalities,"
	    " patient_id, patient_name, patient_birth_date, patient_sex, patient_age"
	    " FROM studies WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, j->study_id);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	j->study_uid = dup_col(st, 0);
	j->accession = dup_col(st, 1);
	j->study_date = dup_col(st, 2);
	j->study_description = dup_col(st, 3);
	j->modality = dup_col(st, 4);
	j->patient_id = dup_col(st, 5);
	j->patient_name = dup_col(st, 6);
	j->patient_birth_date = dup_col(st, 7);
	j->patient_sex = dup_col(st, 8);
	j->patient_age = dup_col(st, 9);
	sqlite3_finalize(st);
	st = NULL;

	if (sqlite3_prepare_v2(db_handle(db),
	    "SELECT i.sop_uid, i.sop_class_uid, i.series_uid, i.path, i.transfer_syntax,"
	    " i.modality, i.body_part, i.laterality, i.view_position, i.image_type,"
	    " i.presentation_intent, i.rows, i.columns, i.frames"
	    " FROM job_instances ji JOIN instances i ON i.id = ji.instance_id"
	    " WHERE ji.job_id = ? ORDER BY i.series_uid, CAST(i.instance_number AS INTEGER), i.id",
	    -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, j->id);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (j->ninstances == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			void *p = realloc(j->instances, ncap * sizeof(*j->instances));
			if (!p) {
				r = -ENOMEM;
				goto out;
			}
			j->instances = p;
			cap = ncap;
		}
		struct queue_instance *q = &j->instances[j->ninstances++];
		memset(q, 0, sizeof(*q));
		q->sop_uid = dup_col(st, 0);
		q->sop_class_uid = dup_col(st, 1);
		q->series_uid = dup_col(st, 2);
		q->path = dup_col(st, 3);
		q->transfer_syntax = dup_col(st, 4);
		q->modality = dup_col(st, 5);
		q->body_part = dup_col(st, 6);
		q->laterality = dup_col(st, 7);
		q->view_position = dup_col(st, 8);
		q->image_type = dup_col(st, 9);
		q->presentation_intent = dup_col(st, 10);
		q->rows = (uint32_t)sqlite3_column_int64(st, 11);
		q->columns = (uint32_t)sqlite3_column_int64(st, 12);
		q->frames = (uint32_t)sqlite3_column_int64(st, 13);
	}
	r = r == SQLITE_DONE ? 0 : (r < 0 ? r : -EIO);
out:
	sqlite3_finalize(st);
	return r;
}

int
queue_claim(struct db *db, int64_t now, struct queue_job *j)
{
	sqlite3_stmt *st = NULL;
	int r;

	memset(j, 0, sizeof(*j));
	/* the claim and its attempt row: one transaction, one commit */
	if ((r = db_begin(db)) < 0)
		return r;
	if (sqlite3_prepare_v2(db_handle(db),
	    "UPDATE jobs SET state = 'running', attempts = attempts + 1, started_at = ?1,"
	    " updated_at = ?1 WHERE id = (SELECT id FROM jobs WHERE state = 'pending'"
	    "  AND not_before <= ?1 ORDER BY priority, created_at, id LIMIT 1)"
	    " RETURNING id, study_id, generation, attempts, route, backend, sr_template", -1, &st,
	    NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, now);
	r = sqlite3_step(st);
	if (r == SQLITE_DONE) {
		sqlite3_finalize(st);
		return db_commit(db) < 0 ? -EIO : 0;
	}
	if (r != SQLITE_ROW)
		goto fail;
	j->id = sqlite3_column_int64(st, 0);
	j->study_id = sqlite3_column_int64(st, 1);
	j->generation = sqlite3_column_int64(st, 2);
	j->attempts = sqlite3_column_int(st, 3);
	j->route = dup_col(st, 4);
	j->backend = dup_col(st, 5);
	j->sr_template = dup_col(st, 6);
	(void)sqlite3_step(st);
	sqlite3_finalize(st);
	st = NULL;

	/* numbered through the job's whole history: a retry starts
	 * jobs.attempts again at 1, the attempt rows go on counting */
	if (sqlite3_prepare_v2(db_handle(db),
	    "INSERT INTO attempts (job_id, attempt, started_at) VALUES (?1,"
	    " (SELECT coalesce(max(attempt), 0) + 1 FROM attempts WHERE job_id = ?1), ?2)"
	    " RETURNING attempt", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, j->id);
	sqlite3_bind_int64(st, 2, now);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto fail;
	j->attempt_no = sqlite3_column_int(st, 0);
	(void)sqlite3_step(st);
	sqlite3_finalize(st);
	st = NULL;
	if (db_commit(db) < 0)
		goto fail;

	if ((r = load_details(db, j)) < 0) {
		log_err("job=%lld: cannot load its study: %s", (long long)j->id,
		    sqlite3_errmsg(db_handle(db)));
		(void)queue_finish(db, j->id, j->attempt_no, QUEUE_RETRY, now, now + 60,
		    "cannot load the study from the database", NULL, -1, NULL);
		queue_job_done(j);
		return r;
	}
	return 1;
fail:
	log_err("database: claiming a job: %s", sqlite3_errmsg(db_handle(db)));
	sqlite3_finalize(st);
	(void)db_rollback(db);
	queue_job_done(j);
	memset(j, 0, sizeof(*j));
	return -EIO;
}

static int
finish_in_tx(struct db *db, int64_t job_id, int attempt, enum queue_outcome how,
             int64_t now, int64_t not_before, const char *message, const char *outcome,
             double score, const char *result_json)
{
	sqlite3_stmt *st = NULL;
	int changed;

	if (sqlite3_prepare_v2(db_handle(db),
	    "UPDATE jobs SET state = CASE ?2 WHEN 0 THEN 'done' WHEN 1 THEN 'pending'"
	    " ELSE 'failed' END, updated_at = ?3,"
	    " finished_at = CASE ?2 WHEN 1 THEN finished_at ELSE ?3 END,"
	    " not_before = CASE ?2 WHEN 1 THEN ?4 ELSE not_before END,"
	    " error = ?5, outcome = CASE ?2 WHEN 0 THEN ?6 ELSE outcome END,"
	    " score = CASE ?2 WHEN 0 THEN ?7 ELSE score END,"
	    " result_json = CASE ?2 WHEN 0 THEN ?8 ELSE result_json END"
	    " WHERE id = ?1 AND state = 'running'"
	    /* only the latest attempt: not one cancelled, retried and claimed anew */
	    "  AND (SELECT max(attempt) FROM attempts WHERE job_id = ?1) = ?9",
	    -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int(st, 9, attempt);
	sqlite3_bind_int64(st, 1, job_id);
	sqlite3_bind_int(st, 2, (int)how);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_int64(st, 4, not_before);
	sqlite3_bind_text(st, 5, how == QUEUE_DONE ? "" : (message ? message : ""), -1,
	    SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 6, outcome ? outcome : "", -1, SQLITE_TRANSIENT);
	if (score >= 0)
		sqlite3_bind_double(st, 7, score);
	else
		sqlite3_bind_null(st, 7);
	if (result_json)
		sqlite3_bind_text(st, 8, result_json, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, 8);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	changed = sqlite3_changes(db_handle(db));
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db_handle(db),
	    "UPDATE attempts SET finished_at = ?3, status = ?4, message = ?5"
	    " WHERE job_id = ?1 AND attempt = ?2 AND finished_at IS NULL", -1, &st,
	    NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, job_id);
	sqlite3_bind_int(st, 2, attempt);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_text(st, 4, how == QUEUE_DONE ? "ok" : how == QUEUE_RETRY ? "retry" :
	    "failed", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, message ? message : "", -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	return changed;
fail:
	log_err("database: finishing job=%lld: %s", (long long)job_id,
	    sqlite3_errmsg(db_handle(db)));
	sqlite3_finalize(st);
	return -EIO;
}

int
queue_finish(struct db *db, int64_t job_id, int attempt, enum queue_outcome how,
             int64_t now, int64_t not_before, const char *message, const char *outcome,
             double score, const char *result_json)
{
	if (db_begin(db) < 0)
		return -EIO;
	if (finish_in_tx(db, job_id, attempt, how, now, not_before, message, outcome, score,
	    result_json) < 0) {
		(void)db_rollback(db);
		return -EIO;
	}
	return db_commit(db);
}

int
queue_finish_done(struct db *db, int64_t job_id, int attempt, int64_t now,
                  const char *outcome, double score, const char *result_json,
                  const struct queue_result *res, size_t nres)
{
	sqlite3_stmt *st = NULL;

	if (db_begin(db) < 0)
		return -EIO;
	int r = finish_in_tx(db, job_id, attempt, QUEUE_DONE, now, 0, NULL, outcome, score,
	    result_json);
	if (r < 0)
		goto fail;
	if (r == 0) {
		/* cancelled meanwhile (triagectl cancel): nothing is recorded,
		 * the caller removes what it wrote */
		(void)db_rollback(db);
		return -ECANCELED;
	}
	if (nres > 0) {
		if (sqlite3_prepare_v2(db_handle(db),
		    "INSERT INTO results (job_id, study_id, kind, sop_uid, series_uid,"
		    " sop_class_uid, transfer_syntax, source_sop_uid, path, size, created_at)"
		    " SELECT ?1, study_id, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 FROM jobs"
		    " WHERE id = ?1 AND state = 'done'", -1, &st, NULL) != SQLITE_OK)
			goto fail;
		for (size_t i = 0; i < nres; i++) {
			sqlite3_reset(st);
			sqlite3_bind_int64(st, 1, job_id);
			sqlite3_bind_text(st, 2, res[i].kind, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, res[i].sop_uid, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 4, res[i].series_uid, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 5, res[i].sop_class_uid, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 6, res[i].transfer_syntax, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 7, res[i].source_sop_uid ? res[i].source_sop_uid : "",
			    -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 8, res[i].path, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 9, res[i].size);
			sqlite3_bind_int64(st, 10, now);
			if (sqlite3_step(st) != SQLITE_DONE)
				goto fail;
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	/* what the job it supersedes wrote is now superseded by this one */
	if (sqlite3_prepare_v2(db_handle(db),
	    "UPDATE results SET superseded_by = ?1 WHERE job_id ="
	    " (SELECT supersedes FROM jobs WHERE id = ?1) AND superseded_by IS NULL",
	    -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, job_id);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	return db_commit(db);
fail:
	log_err("database: recording the results of job=%lld: %s", (long long)job_id,
	    sqlite3_errmsg(db_handle(db)));
	sqlite3_finalize(st);
	(void)db_rollback(db);
	return -EIO;
}

int
queue_requeue_running(struct db *db, int64_t now)
{
	sqlite3_stmt *st = NULL;
	int n;

	if (db_begin(db) < 0)
		return -EIO;
	if (sqlite3_prepare_v2(db_handle(db),
	    "UPDATE attempts SET finished_at = ?1, status = 'interrupted',"
	    " message = 'triaged stopped during the attempt'"
	    " WHERE finished_at IS NULL", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, now);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db_handle(db),
	    "UPDATE jobs SET state = 'pending', updated_at = ?1 WHERE state = 'running'",
	    -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, now);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	n = sqlite3_changes(db_handle(db));
	sqlite3_finalize(st);
	if (db_commit(db) < 0)
		return -EIO;
	return n;
fail:
	sqlite3_finalize(st);
	(void)db_rollback(db);
	return -EIO;
}
