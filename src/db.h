/*
 * db.h - the SQLite queue database: open with the pragmas every connection
 * needs (WAL, busy_timeout, foreign keys), versioned schema migrations, and
 * the statements of the receive stage. One connection per thread.
 */
#ifndef TRIAGED_DB_H
#define TRIAGED_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#include "dicom/dicom.h"

#define DB_SCHEMA_VERSION 5

enum db_open_flags {
	DB_MIGRATE  = 1 << 0,   /* create or upgrade the schema (the daemon) */
	DB_READONLY = 1 << 1,   /* open an existing file read-only */
};

struct db;

/* 0, or a negative errno with ERR filled. */
int db_open(const char *path, unsigned flags, struct db **out, char *err, size_t errlen);
struct db *db_close(struct db *db);
sqlite3 *db_handle(struct db *db);
int db_schema_version(struct db *db);

/* Execute SQL without results; 0 or -EIO (logged). */
int db_exec(struct db *db, const char *sql);
int db_begin(struct db *db);            /* BEGIN IMMEDIATE */
int db_commit(struct db *db);
int db_rollback(struct db *db);

/* What the receiver knows about one stored instance. */
struct db_instance {
	const struct dicom_meta *meta;
	const char *path;
	uint64_t    size;
	const char *calling_ae;
	const char *peer_ip;
	int         dimse_priority;     /* C-STORE priority, -1 unknown */
	int64_t     received_at;        /* unix seconds */
};

/*
 * Record an instance and create or reopen its study, in one transaction.
 * Returns 0; -EEXIST when the SOP Instance UID is already recorded (nothing
 * changed); another negative errno on database failure.
 */
int db_instance_insert(struct db *db, const struct db_instance *in);

/*
 * Is SOP_UID recorded? 1 yes (STUDY_UID, 65 bytes, gets its study), 2 yes
 * but retention removed its file, 0 no, negative errno on failure.
 * STUDY_UID may be NULL.
 */
int db_instance_lookup(struct db *db, const char *sop_uid, char *study_uid);

/*
 * A removed instance received again: its row points at the new file PATH.
 * 0, -ENOENT when SOP_UID is not a removed instance, or a negative errno.
 */
int db_instance_restore(struct db *db, const char *sop_uid, const char *path, uint64_t size,
                        int64_t now);

/*
 * Mark complete every receiving study quiet for STABLE_S seconds or
 * receiving for FORCE_S seconds since it (re)opened. FN (may be NULL) is
 * called for each. Returns the number completed, or a negative errno.
 */
typedef void (*db_study_fn)(void *arg, const char *study_uid, int64_t instances,
                            int64_t generation, bool forced);
int db_studies_complete_due(struct db *db, int64_t now, int stable_s, int force_s,
                            db_study_fn fn, void *arg);

#endif
