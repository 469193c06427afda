/*
 * queue_driver.c - a large queue for bench/queue.
 *
 *   bench_queue fill DB JOBS SPOOL
 *                              a database of the daemon's schema holding
 *                              JOBS jobs over a year: two per study (a
 *                              study of two instances), 1 % pending, 0.1 %
 *                              running, 2 % failed, 1 % cancelled, the rest
 *                              done; an attempt per job, a delivered dispatch
 *                              per instance, a few dead ones
 *   bench_queue claim DB N     N job claims as the worker makes them (one
 *                              transaction: the job to running, its attempt
 *                              row, commit with synchronous=FULL; then its
 *                              study and instances read); prints the
 *                              median, 99th percentile and maximum in ms
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"
#include "queue.h"

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static sqlite3_stmt *
prep(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "bench_queue: %s\n", sqlite3_errmsg(h));
		exit(1);
	}
	return st;
}

static void
step(sqlite3_stmt *st)
{
	if (sqlite3_step(st) != SQLITE_DONE) {
		fprintf(stderr, "bench_queue: %s\n", sqlite3_errmsg(sqlite3_db_handle(st)));
		exit(1);
	}
	sqlite3_reset(st);
}

static int
fill(const char *path, long njobs, const char *spool)
{
	static const char *const routes[] = { "fracture", "bone-age", "mammo", "mammo-2" };
	static const char *const mods[] = { "CR", "DX", "MG", "MG" };
	struct db *db;
	char err[256], uid[64], sop[80], file[4096];
	int64_t now = (int64_t)time(NULL), year = 365 * 86400;
	long nstudies = (njobs + 1) / 2, job = 0;
	sqlite3 *h;
	double t0 = now_ms();

	if (db_open(path, DB_MIGRATE, &db, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_queue: %s\n", err);
		return 1;
	}
	h = db_handle(db);
	(void)db_exec(db, "PRAGMA synchronous=OFF");
	(void)db_exec(db, "BEGIN");
	sqlite3_stmt *s_st = prep(h, "INSERT INTO studies (id, study_uid, state, patient_id,"
	    " accession, study_date, modalities, calling_ae, instance_count, bytes,"
	    " first_received_at, last_received_at, opened_at, completed_at, routed_generation)"
	    " VALUES (?1, ?2, 'complete', ?3, ?4, '20260101', ?5, 'MODALITY', 2, 20000000,"
	    " ?6, ?6, ?6, ?6 + 20, 1)");
	sqlite3_stmt *i_st = prep(h, "INSERT INTO instances (id, study_id, sop_uid, series_uid,"
	    " sop_class_uid, transfer_syntax, path, size, modality, received_at,"
	    " queued_dispatch) VALUES (?1, ?2, ?3, ?4, '1.2.840.10008.5.1.4.1.1.1.1',"
	    " '1.2.840.10008.1.2.1', ?5, 10000000, ?6, ?7, 1)");
	sqlite3_stmt *j_st = prep(h, "INSERT INTO jobs (id, study_id, generation, route,"
	    " backend, state, priority, attempts, created_at, updated_at, started_at,"
	    " finished_at, error, outcome, score) VALUES (?1, ?2, 1, ?3, 'reference', ?4, ?5,"
	    " ?6, ?7, ?7 + 5, ?8, ?9, ?10, ?11, ?12)");
	sqlite3_stmt *ji_st = prep(h, "INSERT INTO job_instances (job_id, instance_id)"
	    " VALUES (?1, ?2)");
	sqlite3_stmt *a_st = prep(h, "INSERT INTO attempts (job_id, attempt, started_at,"
	    " finished_at, status, message) VALUES (?1, 1, ?2, ?3, ?4, ?5)");
	sqlite3_stmt *d_st = prep(h, "INSERT INTO dispatches (destination, study_id,"
	    " instance_id, kind, state, created_at, updated_at, delivered_at, error)"
	    " VALUES ('pacs', ?1, ?2, 'original', ?3, ?4, ?4 + 30, ?5, ?6)");

	srand(42);
	for (long s = 1; s <= nstudies; s++) {
		int64_t at = now - year + (int64_t)((double)s / nstudies * year);
		int kind = (int)(s % 4);
		snprintf(uid, sizeof(uid), "1.2.826.0.1.3680043.10.1138.%ld", s);
		sqlite3_bind_int64(s_st, 1, s);
		sqlite3_bind_text(s_st, 2, uid, -1, SQLITE_TRANSIENT);
		snprintf(sop, sizeof(sop), "P%07ld", s % 200000);
		sqlite3_bind_text(s_st, 3, sop, -1, SQLITE_TRANSIENT);
		snprintf(sop, sizeof(sop), "A%09ld", s);
		sqlite3_bind_text(s_st, 4, sop, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(s_st, 5, mods[kind], -1, SQLITE_STATIC);
		sqlite3_bind_int64(s_st, 6, at);
		step(s_st);
		for (int i = 1; i <= 2; i++) {
			long iid = s * 2 + i - 2;
			snprintf(sop, sizeof(sop), "%s.%d", uid, i);
			snprintf(file, sizeof(file), "%s/studies/%s/%s.dcm", spool, uid, sop);
			sqlite3_bind_int64(i_st, 1, iid);
			sqlite3_bind_int64(i_st, 2, s);
			sqlite3_bind_text(i_st, 3, sop, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(i_st, 4, uid, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(i_st, 5, file, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(i_st, 6, mods[kind], -1, SQLITE_STATIC);
			sqlite3_bind_int64(i_st, 7, at);
			step(i_st);
			int dead = rand() % 1000 == 0;
			sqlite3_bind_int64(d_st, 1, s);
			sqlite3_bind_int64(d_st, 2, iid);
			sqlite3_bind_text(d_st, 3, dead ? "dead" : "delivered", -1, SQLITE_STATIC);
			sqlite3_bind_int64(d_st, 4, at);
			if (dead)
				sqlite3_bind_null(d_st, 5);
			else
				sqlite3_bind_int64(d_st, 5, at + 30);
			sqlite3_bind_text(d_st, 6, dead ? "association rejected" : "", -1,
			    SQLITE_STATIC);
			step(d_st);
		}
		for (int k = 0; k < 2 && job < njobs; k++) {
			int r = rand() % 1000;
			const char *state = r < 10 ? "pending" : r < 11 ? "running" :
			    r < 31 ? "failed" : r < 41 ? "cancelled" : "done";
			int64_t created = at + 20;
			bool ended = strcmp(state, "pending") != 0 && strcmp(state, "running") != 0;
			job++;
			sqlite3_bind_int64(j_st, 1, job);
			sqlite3_bind_int64(j_st, 2, s);
			sqlite3_bind_text(j_st, 3, routes[(kind + k) % 4], -1, SQLITE_STATIC);
			sqlite3_bind_text(j_st, 4, state, -1, SQLITE_STATIC);
			sqlite3_bind_int(j_st, 5, rand() % 20 == 0 ? 0 : 5);
			sqlite3_bind_int(j_st, 6, strcmp(state, "pending") == 0 ? 0 : 1);
			sqlite3_bind_int64(j_st, 7, created);
			if (strcmp(state, "pending") == 0)
				sqlite3_bind_null(j_st, 8);
			else
				sqlite3_bind_int64(j_st, 8, created + 1);
			if (ended)
				sqlite3_bind_int64(j_st, 9, created + 2);
			else
				sqlite3_bind_null(j_st, 9);
			sqlite3_bind_text(j_st, 10, strcmp(state, "failed") == 0 ?
			    "backend timed out after 120 s" : "", -1, SQLITE_STATIC);
			if (strcmp(state, "done") == 0) {
				sqlite3_bind_text(j_st, 11, r % 7 == 0 ? "positive" : "negative",
				    -1, SQLITE_STATIC);
				sqlite3_bind_double(j_st, 12, (r % 100) / 100.0);
			} else {
				sqlite3_bind_text(j_st, 11, "", -1, SQLITE_STATIC);
				sqlite3_bind_null(j_st, 12);
			}
			step(j_st);
			for (int i = 1; i <= 2; i++) {
				sqlite3_bind_int64(ji_st, 1, job);
				sqlite3_bind_int64(ji_st, 2, s * 2 + i - 2);
				step(ji_st);
			}
			if (strcmp(state, "pending") != 0) {
				sqlite3_bind_int64(a_st, 1, job);
				sqlite3_bind_int64(a_st, 2, created + 1);
				if (ended)
					sqlite3_bind_int64(a_st, 3, created + 2);
				else
					sqlite3_bind_null(a_st, 3);
				sqlite3_bind_text(a_st, 4, ended ? state : "running", -1,
				    SQLITE_STATIC);
				sqlite3_bind_text(a_st, 5, "", -1, SQLITE_STATIC);
				step(a_st);
			}
		}
	}
	sqlite3_finalize(s_st);
	sqlite3_finalize(i_st);
	sqlite3_finalize(j_st);
	sqlite3_finalize(ji_st);
	sqlite3_finalize(a_st);
	sqlite3_finalize(d_st);
	if (db_exec(db, "COMMIT") < 0 || db_exec(db, "ANALYZE") < 0 ||
	    db_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)") < 0)
		return 1;
	db_close(db);
	printf("filled %s: %ld jobs, %ld studies in %.1f s\n", path, job, nstudies,
	    (now_ms() - t0) / 1e3);
	return 0;
}

static int
claim(const char *path, int n)
{
	struct db *db;
	struct queue_job j;
	char err[256];
	double *t = calloc((size_t)n, sizeof(double));
	int got = 0;

	if (!t || db_open(path, 0, &db, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_queue: %s\n", t ? err : "out of memory");
		return 1;
	}
	for (int i = 0; i < n; i++) {
		double t0 = now_ms();
		int r = queue_claim(db, (int64_t)time(NULL), &j);
		t[i] = now_ms() - t0;
		if (r < 0) {
			fprintf(stderr, "bench_queue: claim failed\n");
			return 1;
		}
		got += r;
		queue_job_done(&j);
	}
	qsort(t, (size_t)n, sizeof(double), cmp_double);
	printf("claims %d (jobs claimed %d): median %.3f ms, p99 %.3f ms, max %.3f ms\n",
	    n, got, t[n / 2], t[(int)(n * 0.99)], t[n - 1]);
	free(t);
	db_close(db);
	return got == n ? 0 : 1;
}

int
main(int argc, char **argv)
{
	log_set_level(LOG_WARNING);
	if (argc == 5 && strcmp(argv[1], "fill") == 0)
		return fill(argv[2], atol(argv[3]), argv[4]);
	if (argc == 4 && strcmp(argv[1], "claim") == 0)
		return claim(argv[2], atoi(argv[3]));
	fprintf(stderr, "usage: bench_queue fill DB JOBS SPOOL | claim DB N\n");
	return 2;
}
