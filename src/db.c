/*
 * db.c - SQLite: connection set-up, schema migrations, receive-stage
 * statements.
 *
 * DESIGN: SQLite is the single source of truth for every state. Every
 * thread has its own connection; writers use BEGIN IMMEDIATE so that a busy
 * database waits (busy_timeout) instead of failing in the middle of a
 * transaction. synchronous=FULL: a commit is on disk before the C-STORE
 * response leaves. The schema version is PRAGMA user_version; migrations
 * are an append-only array, each run in its own transaction.
 */
#include "db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

struct db {
	sqlite3 *h;
};

static const char *const migrations[] = {
	/* 1: receive stage */
	"CREATE TABLE studies ("
	"  id INTEGER PRIMARY KEY,"
	"  study_uid TEXT NOT NULL UNIQUE,"
	"  state TEXT NOT NULL DEFAULT 'receiving'"
	"    CHECK (state IN ('receiving','complete')),"
	"  patient_id TEXT NOT NULL DEFAULT '', patient_name TEXT NOT NULL DEFAULT '',"
	"  patient_birth_date TEXT NOT NULL DEFAULT '', patient_sex TEXT NOT NULL DEFAULT '',"
	"  patient_age TEXT NOT NULL DEFAULT '', accession TEXT NOT NULL DEFAULT '',"
	"  study_date TEXT NOT NULL DEFAULT '', study_time TEXT NOT NULL DEFAULT '',"
	"  study_description TEXT NOT NULL DEFAULT '',"
	"  modalities TEXT NOT NULL DEFAULT '',"
	"  calling_ae TEXT NOT NULL DEFAULT '',"
	"  instance_count INTEGER NOT NULL DEFAULT 0,"
	"  bytes INTEGER NOT NULL DEFAULT 0,"
	"  first_received_at INTEGER NOT NULL,"
	"  last_received_at INTEGER NOT NULL,"
	"  opened_at INTEGER NOT NULL,"
	"  completed_at INTEGER,"
	"  generation INTEGER NOT NULL DEFAULT 1"
	");"
	"CREATE INDEX studies_state ON studies(state, last_received_at);"
	"CREATE INDEX studies_received ON studies(last_received_at);"
	"CREATE TABLE instances ("
	"  id INTEGER PRIMARY KEY,"
	"  study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,"
	"  sop_uid TEXT NOT NULL UNIQUE,"
	"  series_uid TEXT NOT NULL,"
	"  sop_class_uid TEXT NOT NULL,"
	"  transfer_syntax TEXT NOT NULL,"
	"  path TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  modality TEXT NOT NULL DEFAULT '', body_part TEXT NOT NULL DEFAULT '',"
	"  laterality TEXT NOT NULL DEFAULT '', view_position TEXT NOT NULL DEFAULT '',"
	"  image_type TEXT NOT NULL DEFAULT '', presentation_intent TEXT NOT NULL DEFAULT '',"
	"  patient_id TEXT NOT NULL DEFAULT '', patient_name TEXT NOT NULL DEFAULT '',"
	"  patient_birth_date TEXT NOT NULL DEFAULT '', patient_age TEXT NOT NULL DEFAULT '',"
	"  patient_sex TEXT NOT NULL DEFAULT '', accession TEXT NOT NULL DEFAULT '',"
	"  study_date TEXT NOT NULL DEFAULT '', study_description TEXT NOT NULL DEFAULT '',"
	"  series_description TEXT NOT NULL DEFAULT '',"
	"  series_number TEXT NOT NULL DEFAULT '', instance_number TEXT NOT NULL DEFAULT '',"
	"  requested_priority TEXT NOT NULL DEFAULT '',"
	"  dimse_priority INTEGER,"
	"  rows INTEGER NOT NULL DEFAULT 0, columns INTEGER NOT NULL DEFAULT 0,"
	"  frames INTEGER NOT NULL DEFAULT 0,"
	"  calling_ae TEXT NOT NULL DEFAULT '', peer_ip TEXT NOT NULL DEFAULT '',"
	"  received_at INTEGER NOT NULL,"
	"  generation INTEGER NOT NULL DEFAULT 1"
	");"
	"CREATE INDEX instances_study ON instances(study_id);"
	"CREATE INDEX instances_received ON instances(received_at);",

	/* 2: route and analyse */
	"ALTER TABLE studies ADD COLUMN routed_generation INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE studies ADD COLUMN views_checked INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX studies_routing ON studies(state, routed_generation);"
	"CREATE TABLE jobs ("
	"  id INTEGER PRIMARY KEY,"
	"  study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,"
	"  generation INTEGER NOT NULL,"
	"  route TEXT NOT NULL,"
	"  backend TEXT NOT NULL,"
	"  sr_template TEXT NOT NULL DEFAULT 'tid1500',"
	"  state TEXT NOT NULL DEFAULT 'pending'"
	"    CHECK (state IN ('pending','running','done','failed','cancelled')),"
	"  priority INTEGER NOT NULL DEFAULT 5,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  not_before INTEGER NOT NULL DEFAULT 0,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  started_at INTEGER,"
	"  finished_at INTEGER,"
	"  error TEXT NOT NULL DEFAULT '',"
	"  outcome TEXT NOT NULL DEFAULT '',"
	"  score REAL,"
	"  result_json TEXT,"
	"  supersedes INTEGER REFERENCES jobs(id),"
	"  UNIQUE (study_id, generation, route)"
	");"
	"CREATE INDEX jobs_claim ON jobs(state, priority, created_at, id);"
	"CREATE INDEX jobs_created ON jobs(created_at);"
	"CREATE INDEX jobs_study ON jobs(study_id);"
	"CREATE TABLE job_instances ("
	"  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
	"  instance_id INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,"
	"  PRIMARY KEY (job_id, instance_id)"
	") WITHOUT ROWID;"
	"CREATE TABLE attempts ("
	"  id INTEGER PRIMARY KEY,"
	"  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
	"  attempt INTEGER NOT NULL,"
	"  started_at INTEGER NOT NULL,"
	"  finished_at INTEGER,"
	"  status TEXT NOT NULL DEFAULT 'running',"
	"  message TEXT NOT NULL DEFAULT ''"
	");"
	"CREATE INDEX attempts_job ON attempts(job_id);",

	/* 3: results and delivery */
	"CREATE TABLE results ("
	"  id INTEGER PRIMARY KEY,"
	"  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
	"  study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,"
	"  kind TEXT NOT NULL CHECK (kind IN ('sr','overlay','summary')),"
	"  sop_uid TEXT NOT NULL UNIQUE,"
	"  series_uid TEXT NOT NULL,"
	"  sop_class_uid TEXT NOT NULL,"
	"  transfer_syntax TEXT NOT NULL,"
	"  source_sop_uid TEXT NOT NULL DEFAULT '',"
	"  path TEXT NOT NULL,"
	"  size INTEGER NOT NULL DEFAULT 0,"
	"  created_at INTEGER NOT NULL,"
	"  superseded_by INTEGER REFERENCES jobs(id),"
	"  queued_dispatch INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE INDEX results_job ON results(job_id);"
	"CREATE INDEX results_study ON results(study_id);"
	"CREATE INDEX results_unqueued ON results(queued_dispatch) WHERE queued_dispatch = 0;"
	"ALTER TABLE instances ADD COLUMN queued_dispatch INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX instances_unqueued ON instances(queued_dispatch) WHERE queued_dispatch = 0;"
	"CREATE TABLE dispatches ("
	"  id INTEGER PRIMARY KEY,"
	"  destination TEXT NOT NULL,"
	"  study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,"
	"  instance_id INTEGER REFERENCES instances(id) ON DELETE CASCADE,"
	"  result_id INTEGER REFERENCES results(id) ON DELETE CASCADE,"
	"  kind TEXT NOT NULL CHECK (kind IN ('original','result')),"
	"  state TEXT NOT NULL DEFAULT 'pending'"
	"    CHECK (state IN ('pending','sending','delivered','dead')),"
	"  priority INTEGER NOT NULL DEFAULT 5,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  not_before INTEGER NOT NULL DEFAULT 0,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  delivered_at INTEGER,"
	"  error TEXT NOT NULL DEFAULT '',"
	"  UNIQUE (destination, instance_id),"
	"  UNIQUE (destination, result_id)"
	");"
	"CREATE INDEX dispatches_claim ON dispatches(destination, state, priority, created_at, id);"
	"CREATE INDEX dispatches_study ON dispatches(study_id, destination, kind, state);",

	/* 4: webhook notices of positive outcomes */
	"CREATE TABLE notices ("
	"  id INTEGER PRIMARY KEY,"
	"  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
	"  url TEXT NOT NULL,"
	"  body TEXT NOT NULL,"
	"  state TEXT NOT NULL DEFAULT 'pending'"
	"    CHECK (state IN ('pending','sending','delivered','dead')),"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  not_before INTEGER NOT NULL DEFAULT 0,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  delivered_at INTEGER,"
	"  error TEXT NOT NULL DEFAULT '',"
	"  UNIQUE (job_id, url)"
	");"
	"CREATE INDEX notices_claim ON notices(state, not_before);",

	/* 5: retention, and list on a large queue */
	"ALTER TABLE studies ADD COLUMN files_removed_at INTEGER;"
	"ALTER TABLE instances ADD COLUMN removed_at INTEGER;"
	"ALTER TABLE results ADD COLUMN removed_at INTEGER;"
	"CREATE INDEX studies_retention ON studies(completed_at)"
	"  WHERE files_removed_at IS NULL AND state = 'complete';"
	"CREATE INDEX jobs_list ON jobs(state, created_at, id);"
	"CREATE INDEX jobs_route ON jobs(route, created_at, id);"
	"CREATE INDEX dispatches_list ON dispatches(state, created_at, id);"
	"CREATE INDEX dispatches_created ON dispatches(created_at, id);",
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == DB_SCHEMA_VERSION,
    "DB_SCHEMA_VERSION must be the number of migrations");

sqlite3 *
db_handle(struct db *db)
{
	return db->h;
}

struct db *
db_close(struct db *db)
{
	if (!db)
		return NULL;
	if (db->h)
		sqlite3_close_v2(db->h);
	free(db);
	return NULL;
}

int
db_exec(struct db *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_err("database: %s: %s", msg ? msg : "error",
		    strlen(sql) > 60 ? "(statement)" : sql);
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

int db_begin(struct db *db) { return db_exec(db, "BEGIN IMMEDIATE"); }
int db_commit(struct db *db) { return db_exec(db, "COMMIT"); }

int
db_rollback(struct db *db)
{
	if (sqlite3_get_autocommit(db->h))
		return 0;
	return db_exec(db, "ROLLBACK");
}

int
db_schema_version(struct db *db)
{
	sqlite3_stmt *st;
	int v = -1;

	if (sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int
migrate(struct db *db, char *err, size_t errlen)
{
	int v, r = 0;
	char pragma[64];

	if ((r = db_begin(db)) < 0) {
		snprintf(err, errlen, "cannot lock database for migration: %s",
		    sqlite3_errmsg(db->h));
		return r;
	}
	v = db_schema_version(db);
	if (v > NMIGRATIONS) {
		snprintf(err, errlen, "database schema version %d is newer than this "
		    "triaged (%d)", v, NMIGRATIONS);
		r = -EPROTO;
		goto done;
	}
	for (; v < NMIGRATIONS; v++) {
		if (db_exec(db, migrations[v]) < 0) {
			snprintf(err, errlen, "schema migration to version %d failed: %s",
			    v + 1, sqlite3_errmsg(db->h));
			r = -EIO;
			goto done;
		}
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", v + 1);
		if ((r = db_exec(db, pragma)) < 0)
			goto done;
		log_info("database schema migrated to version %d", v + 1);
	}
done:
	if (r < 0)
		(void)db_rollback(db);
	else
		r = db_commit(db);
	return r;
}

/*
 * Another connection holds the write lock (typically through its COMMIT's
 * WAL fdatasync, a few ms). sqlite3_busy_timeout() would sleep 1, 2, 5, 10,
 * 15, 20, 25 ms in turn, so association threads committing at the same
 * time stalled for tens of ms behind a lock held for 2; this polls every
 * 0.1 ms at first and never sleeps more than 2 ms, for up to 15 s in all.
 */
#define BUSY_LIMIT_US 15000000LL

static int
busy_wait(void *arg, int count)
{
	long long us = count < 5 ? 100LL << count : 2000;
	long long waited = count < 5 ? 100LL * ((1LL << count) - 1) :
	    3100 + (long long)(count - 5) * 2000;
	struct timespec ts;

	(void)arg;
	if (waited >= BUSY_LIMIT_US)
		return 0;               /* SQLITE_BUSY to the caller */
	ts.tv_sec = 0;
	ts.tv_nsec = us * 1000;
	nanosleep(&ts, NULL);
	return 1;
}

int
db_open(const char *path, unsigned flags, struct db **out, char *err, size_t errlen)
{
	struct db *db;
	int oflags, r, v;

	db = calloc(1, sizeof(*db));
	if (!db)
		return -ENOMEM;
	oflags = (flags & DB_READONLY) ? SQLITE_OPEN_READONLY :
	    SQLITE_OPEN_READWRITE | ((flags & DB_MIGRATE) ? SQLITE_OPEN_CREATE : 0);
	oflags |= SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(path, &db->h, oflags, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open database %s: %s", path,
		    db->h ? sqlite3_errmsg(db->h) : "out of memory");
		r = -ENOENT;
		goto fail;
	}
	sqlite3_busy_handler(db->h, busy_wait, NULL);
	sqlite3_extended_result_codes(db->h, 1);
	if (!(flags & DB_READONLY) &&
	    (db_exec(db, "PRAGMA journal_mode=WAL") < 0 ||
	     db_exec(db, "PRAGMA synchronous=FULL") < 0)) {
		snprintf(err, errlen, "cannot set up database %s: %s", path,
		    sqlite3_errmsg(db->h));
		r = -EIO;
		goto fail;
	}
	(void)db_exec(db, "PRAGMA foreign_keys=ON");
	if (flags & DB_MIGRATE) {
		if ((r = migrate(db, err, errlen)) < 0)
			goto fail;
	} else {
		v = db_schema_version(db);
		if (v != DB_SCHEMA_VERSION) {
			snprintf(err, errlen, "database %s has schema version %d, this "
			    "program needs %d (start triaged once to migrate it)",
			    path, v, DB_SCHEMA_VERSION);
			r = -EPROTO;
			goto fail;
		}
	}
	*out = db;
	return 0;
fail:
	db_close(db);
	return r;
}

static int
bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_STATIC);
}

int
db_instance_lookup(struct db *db, const char *sop_uid, char *study_uid)
{
	sqlite3_stmt *st = NULL;
	int r;

	if (sqlite3_prepare_v2(db->h,
	    "SELECT s.study_uid, i.removed_at IS NOT NULL FROM instances i"
	    " JOIN studies s ON s.id = i.study_id WHERE i.sop_uid = ?", -1, &st,
	    NULL) != SQLITE_OK)
		return -EIO;
	bind_text(st, 1, sop_uid);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		if (study_uid)
			snprintf(study_uid, DICOM_UID_LEN + 1, "%s",
			    (const char *)sqlite3_column_text(st, 0));
		r = sqlite3_column_int(st, 1) ? 2 : 1;
	} else {
		r = r == SQLITE_DONE ? 0 : -EIO;
	}
	sqlite3_finalize(st);
	return r;
}

int
db_instance_insert(struct db *db, const struct db_instance *in)
{
	static const char study_sql[] =
	    "INSERT INTO studies (study_uid, patient_id, patient_name, patient_birth_date,"
	    " patient_sex, patient_age, accession, study_date, study_time, study_description,"
	    " modalities, calling_ae, instance_count, bytes, first_received_at,"
	    " last_received_at, opened_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 1, ?13, ?14, ?14, ?14)"
	    " ON CONFLICT (study_uid) DO UPDATE SET"
	    "  state = 'receiving',"
	    "  files_removed_at = NULL,"
	    "  generation = generation + (state = 'complete'),"
	    "  opened_at = CASE WHEN state = 'complete' THEN excluded.opened_at ELSE opened_at END,"
	    "  instance_count = instance_count + 1,"
	    "  bytes = bytes + excluded.bytes,"
	    "  first_received_at = min(first_received_at, excluded.first_received_at),"
	    "  last_received_at = max(last_received_at, excluded.last_received_at),"
	    "  modalities = CASE"
	    "   WHEN excluded.modalities = '' OR instr('\\' || modalities || '\\',"
	    "        '\\' || excluded.modalities || '\\') > 0 THEN modalities"
	    "   WHEN modalities = '' THEN excluded.modalities"
	    "   ELSE modalities || '\\' || excluded.modalities END"
	    " RETURNING id, generation";
	static const char inst_sql[] =
	    "INSERT INTO instances (study_id, sop_uid, series_uid, sop_class_uid,"
	    " transfer_syntax, path, size, modality, body_part, laterality, view_position,"
	    " image_type, presentation_intent, patient_id, patient_name, patient_birth_date,"
	    " patient_age, patient_sex, accession, study_date, study_description,"
	    " series_description, series_number, instance_number, requested_priority,"
	    " dimse_priority, rows, columns, frames, calling_ae, peer_ip, received_at,"
	    " generation) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
	    " ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28,"
	    " ?29, ?30, ?31, ?32, ?33)";
	const struct dicom_meta *m = in->meta;
	sqlite3_stmt *st = NULL;
	sqlite3_int64 study_id = 0, generation = 1;
	int r;

	if ((r = db_begin(db)) < 0)
		return r;

	/* the SOP Instance UID first: a duplicate must not touch its study */
	r = db_instance_lookup(db, m->sop_uid, NULL);
	if (r != 0) {
		r = r > 0 ? -EEXIST : r;
		goto done;
	}

	r = -EIO;
	if (sqlite3_prepare_v2(db->h, study_sql, -1, &st, NULL) != SQLITE_OK)
		goto done;
	bind_text(st, 1, m->study_uid);
	bind_text(st, 2, m->patient_id);
	bind_text(st, 3, m->patient_name);
	bind_text(st, 4, m->patient_birth_date);
	bind_text(st, 5, m->patient_sex);
	bind_text(st, 6, m->patient_age);
	bind_text(st, 7, m->accession);
	bind_text(st, 8, m->study_date);
	bind_text(st, 9, m->study_time);
	bind_text(st, 10, m->study_description);
	bind_text(st, 11, m->modality);
	bind_text(st, 12, in->calling_ae);
	sqlite3_bind_int64(st, 13, (sqlite3_int64)in->size);
	sqlite3_bind_int64(st, 14, in->received_at);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto done;
	study_id = sqlite3_column_int64(st, 0);
	generation = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	st = NULL;

	if (sqlite3_prepare_v2(db->h, inst_sql, -1, &st, NULL) != SQLITE_OK)
		goto done;
	sqlite3_bind_int64(st, 1, study_id);
	bind_text(st, 2, m->sop_uid);
	bind_text(st, 3, m->series_uid);
	bind_text(st, 4, m->sop_class_uid);
	bind_text(st, 5, m->transfer_syntax);
	bind_text(st, 6, in->path);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)in->size);
	bind_text(st, 8, m->modality);
	bind_text(st, 9, m->body_part);
	bind_text(st, 10, m->laterality);
	bind_text(st, 11, m->view_position);
	bind_text(st, 12, m->image_type);
	bind_text(st, 13, m->presentation_intent);
	bind_text(st, 14, m->patient_id);
	bind_text(st, 15, m->patient_name);
	bind_text(st, 16, m->patient_birth_date);
	bind_text(st, 17, m->patient_age);
	bind_text(st, 18, m->patient_sex);
	bind_text(st, 19, m->accession);
	bind_text(st, 20, m->study_date);
	bind_text(st, 21, m->study_description);
	bind_text(st, 22, m->series_description);
	bind_text(st, 23, m->series_number);
	bind_text(st, 24, m->instance_number);
	bind_text(st, 25, m->requested_priority);
	if (in->dimse_priority >= 0)
		sqlite3_bind_int(st, 26, in->dimse_priority);
	else
		sqlite3_bind_null(st, 26);
	sqlite3_bind_int64(st, 27, m->rows);
	sqlite3_bind_int64(st, 28, m->columns);
	sqlite3_bind_int64(st, 29, m->frames);
	bind_text(st, 30, in->calling_ae);
	bind_text(st, 31, in->peer_ip);
	sqlite3_bind_int64(st, 32, in->received_at);
	sqlite3_bind_int64(st, 33, generation);
	if (sqlite3_step(st) != SQLITE_DONE) {
		if (sqlite3_extended_errcode(db->h) == SQLITE_CONSTRAINT_UNIQUE)
			r = -EEXIST;
		goto done;
	}
	r = 0;
done:
	if (r == -EIO)
		log_err("database: recording sop=%s: %s", m->sop_uid, sqlite3_errmsg(db->h));
	sqlite3_finalize(st);
	if (r < 0) {
		(void)db_rollback(db);
		return r;
	}
	return db_commit(db);
}

int
db_instance_restore(struct db *db, const char *sop_uid, const char *path, uint64_t size,
                    int64_t now)
{
	sqlite3_stmt *st = NULL;
	int r = -EIO;

	if ((r = db_begin(db)) < 0)
		return r;
	r = -EIO;
	if (sqlite3_prepare_v2(db->h,
	    "UPDATE instances SET path = ?2, size = ?3, removed_at = NULL, received_at = ?4"
	    " WHERE sop_uid = ?1 AND removed_at IS NOT NULL RETURNING study_id", -1, &st,
	    NULL) != SQLITE_OK)
		goto done;
	bind_text(st, 1, sop_uid);
	bind_text(st, 2, path);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)size);
	sqlite3_bind_int64(st, 4, now);
	if ((r = sqlite3_step(st)) != SQLITE_ROW) {
		r = r == SQLITE_DONE ? -ENOENT : -EIO;
		goto done;
	}
	sqlite3_int64 sid = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	/* the study has a file again: retention looks at it again */
	if (sqlite3_prepare_v2(db->h, "UPDATE studies SET files_removed_at = NULL WHERE id = ?",
	    -1, &st, NULL) != SQLITE_OK)
		goto done;
	sqlite3_bind_int64(st, 1, sid);
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
done:
	if (r == -EIO)
		log_err("database: restoring sop=%s: %s", sop_uid, sqlite3_errmsg(db->h));
	sqlite3_finalize(st);
	if (r < 0) {
		(void)db_rollback(db);
		return r;
	}
	return db_commit(db);
}

int
db_studies_complete_due(struct db *db, int64_t now, int stable_s, int force_s,
                        db_study_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	int n = 0, r;

	if (sqlite3_prepare_v2(db->h,
	    "UPDATE studies SET state = 'complete', completed_at = ?1"
	    " WHERE state = 'receiving'"
	    "  AND (last_received_at <= ?1 - ?2 OR opened_at <= ?1 - ?3)"
	    " RETURNING study_uid, instance_count, generation, last_received_at > ?1 - ?2",
	    -1, &st, NULL) != SQLITE_OK) {
		log_err("database: %s", sqlite3_errmsg(db->h));
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int(st, 2, stable_s);
	sqlite3_bind_int(st, 3, force_s);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		if (fn)
			fn(arg, (const char *)sqlite3_column_text(st, 0),
			    sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
			    sqlite3_column_int(st, 3) != 0);
	}
	sqlite3_finalize(st);
	if (r != SQLITE_DONE) {
		log_err("database: completing studies: %s", sqlite3_errmsg(db->h));
		return -EIO;
	}
	return n;
}
