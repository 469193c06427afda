/* test_retention.c - spooled files go retention_hours after everything
 * about their study is delivered, never before; purge removes the rows of
 * settled studies only; a removed instance sent again is stored again. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "db.h"
#include "db_scalar.h"
#include "retention.h"

/*
 * Studies of the fixture, each with two instances and one result file:
 *   1 settled at 1000 (job done, everything delivered)
 *   2 one dispatch dead                  -> never settled
 *   3 its job still pending              -> never
 *   4 settled at 5000 (delivered late)
 *   5 still receiving                    -> never
 *   6 an instance not yet queued         -> never
 *   7 a webhook notice still pending     -> never
 */
#define NSTUDIES 7

struct fixture {
	char dir[64];
	char spool[128];
	struct db *db;
};

static void
touch(const char *path)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("DICM", f);
	fclose(f);
}

static void
file_path(struct fixture *f, const char *area, int study, int n, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s/1.2.%d/1.2.%d.%d.dcm", f->spool, area, study, study, n);
}

static bool
exists(const char *p)
{
	return access(p, F_OK) == 0;
}

static void
sql(struct fixture *f, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	assert_int_equal(db_exec(f->db, buf), 0);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[PATH_MAX + 32], err[256];

	snprintf(f->dir, sizeof(f->dir), "/tmp/retentiontest.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->spool, sizeof(f->spool), "%s/spool", f->dir);
	snprintf(path, sizeof(path), "%s/t.db", f->dir);
	assert_int_equal(db_open(path, DB_MIGRATE, &f->db, err, sizeof(err)), 0);

	for (int s = 1; s <= NSTUDIES; s++) {
		const char *st = s == 5 ? "receiving" : "complete";
		int done_at = s == 4 ? 5000 : 1000;
		char p[PATH_MAX];

		for (int a = 0; a < 2; a++) {
			snprintf(p, sizeof(p), "%s/%s/1.2.%d", f->spool,
			    a ? "results" : "studies", s);
			assert_int_equal(mkdir(f->spool, 0750) == 0 || errno == EEXIST, 1);
			snprintf(path, sizeof(path), "%s/%s", f->spool, a ? "results" : "studies");
			assert_int_equal(mkdir(path, 0750) == 0 || errno == EEXIST, 1);
			assert_int_equal(mkdir(p, 0750), 0);
		}
		sql(f, "INSERT INTO studies (id, study_uid, state, first_received_at,"
		    " last_received_at, opened_at, completed_at, generation, routed_generation)"
		    " VALUES (%d, '1.2.%d', '%s', 900, 900, 900, %s, 1, %d)", s, s, st,
		    s == 5 ? "NULL" : "950", s == 5 ? 0 : 1);
		for (int i = 1; i <= 2; i++) {
			file_path(f, "studies", s, i, p, sizeof(p));
			touch(p);
			sql(f, "INSERT INTO instances (id, study_id, sop_uid, series_uid,"
			    " sop_class_uid, transfer_syntax, path, size, received_at,"
			    " queued_dispatch) VALUES (%d, %d, '1.2.%d.%d', '1.2.%d.0', '1.2.840.10008.5.1.4.1.1.1',"
			    " '1.2.840.10008.1.2.1', '%s', 1000, 900, %d)", s * 10 + i, s, s, i, s, p,
			    s == 6 && i == 2 ? 0 : 1);
		}
		sql(f, "INSERT INTO jobs (id, study_id, generation, route, backend, state,"
		    " created_at, updated_at, finished_at) VALUES (%d, %d, 1, 'fracture',"
		    " 'reference', '%s', 950, %d, %s)", s, s, s == 3 ? "pending" : "done",
		    done_at, s == 3 ? "NULL" : "1000");
		sql(f, "INSERT INTO attempts (job_id, attempt, started_at, finished_at, status)"
		    " VALUES (%d, 1, 950, 1000, 'done')", s);
		sql(f, "INSERT INTO job_instances (job_id, instance_id) VALUES (%d, %d), (%d, %d)",
		    s, s * 10 + 1, s, s * 10 + 2);
		file_path(f, "results", s, 9, p, sizeof(p));
		touch(p);
		sql(f, "INSERT INTO results (id, job_id, study_id, kind, sop_uid, series_uid,"
		    " sop_class_uid, transfer_syntax, path, size, created_at, queued_dispatch)"
		    " VALUES (%d, %d, %d, 'sr', '1.2.%d.9', '1.2.%d.8', '1.2.840.10008.5.1.4.1.1.88.34',"
		    " '1.2.840.10008.1.2.1', '%s', 500, 1000, 1)", s, s, s, s, s, p);
		sql(f, "INSERT INTO dispatches (destination, study_id, instance_id, kind, state,"
		    " created_at, updated_at, delivered_at) VALUES"
		    " ('pacs', %d, %d, 'original', 'delivered', 950, %d, %d),"
		    " ('pacs', %d, %d, 'original', '%s', 950, %d, %s)",
		    s, s * 10 + 1, done_at, done_at,
		    s, s * 10 + 2, s == 2 ? "dead" : "delivered", done_at,
		    s == 2 ? "NULL" : (s == 4 ? "5000" : "1000"));
		sql(f, "INSERT INTO dispatches (destination, study_id, result_id, kind, state,"
		    " created_at, updated_at, delivered_at) VALUES"
		    " ('pacs', %d, %d, 'result', 'delivered', 1000, %d, %d)", s, s, done_at, done_at);
		sql(f, "INSERT INTO notices (job_id, url, body, state, created_at, updated_at)"
		    " VALUES (%d, 'http://127.0.0.1:9/hook', '{}', '%s', 1000, 1000)", s,
		    s == 7 ? "pending" : "delivered");
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[PATH_MAX + 16];
	db_close(f->db);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Are all three files of study S present (1), all gone (0), or mixed? */
static int
files_of(struct fixture *f, int s)
{
	char p[PATH_MAX];
	int n = 0;
	for (int i = 1; i <= 2; i++) {
		file_path(f, "studies", s, i, p, sizeof(p));
		n += exists(p);
	}
	file_path(f, "results", s, 9, p, sizeof(p));
	n += exists(p);
	return n == 3 ? 1 : n == 0 ? 0 : -1;
}

static void
test_retention_removes_only_settled_old_enough(void **state)
{
	struct fixture *f = *state;
	struct retention_counts c = { 0 };
	char p[PATH_MAX];

	/* one hour of retention, two hours after study 1 settled: only study 1 */
	assert_int_equal(retention_sweep(f->db, f->spool, 1000 + 7200, 3600, 100, &c), 1);
	assert_int_equal(c.studies, 1);
	assert_int_equal(c.files, 3);
	assert_int_equal(c.bytes, 2500);
	assert_int_equal(files_of(f, 1), 0);
	for (int s = 2; s <= NSTUDIES; s++)
		assert_int_equal(files_of(f, s), 1);
	/* the empty study directories went with them */
	snprintf(p, sizeof(p), "%s/studies/1.2.1", f->spool);
	assert_false(exists(p));
	snprintf(p, sizeof(p), "%s/results/1.2.1", f->spool);
	assert_false(exists(p));
	/* the rows stay, saying when */
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM instances WHERE study_id = 1"
	    " AND removed_at = 8200"), 2);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM results WHERE study_id = 1"
	    " AND removed_at = 8200"), 1);
	assert_int_equal(scalar(f->db, "SELECT files_removed_at FROM studies WHERE id = 1"), 8200);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM instances WHERE removed_at"
	    " IS NOT NULL"), 2);

	/* again: nothing more to do */
	memset(&c, 0, sizeof(c));
	assert_int_equal(retention_sweep(f->db, f->spool, 1000 + 7200, 3600, 100, &c), 0);
	assert_int_equal(c.files, 0);

	/* study 4 settled at 5000: not at 5000 + 3599, at 5000 + 3600 */
	assert_int_equal(retention_sweep(f->db, f->spool, 5000 + 3599, 3600, 100, NULL), 0);
	assert_int_equal(files_of(f, 4), 1);
	assert_int_equal(retention_sweep(f->db, f->spool, 5000 + 3600, 3600, 100, NULL), 1);
	assert_int_equal(files_of(f, 4), 0);

	/* a year later the others still have every file */
	assert_int_equal(retention_sweep(f->db, f->spool, 40000000, 3600, 100, NULL), 0);
	for (int s = 2; s <= NSTUDIES; s++)
		if (s != 4)
			assert_int_equal(files_of(f, s), 1);
}

static void
test_retention_zero_hours_and_limit(void **state)
{
	struct fixture *f = *state;

	/* retention_hours = 0: as soon as settled; MAX_STUDIES bounds a sweep */
	assert_int_equal(retention_sweep(f->db, f->spool, 5000, 0, 1, NULL), 1);
	assert_int_equal(files_of(f, 1), 0);
	assert_int_equal(files_of(f, 4), 1);
	assert_int_equal(retention_sweep(f->db, f->spool, 5000, 0, 1, NULL), 1);
	assert_int_equal(files_of(f, 4), 0);
}

static void
test_retention_dead_dispatch_retried_then_delivered(void **state)
{
	struct fixture *f = *state;

	/* study 2's dead dispatch is retried and delivered: now it may go */
	sql(f, "UPDATE dispatches SET state = 'delivered', delivered_at = 2000, updated_at = 2000"
	    " WHERE state = 'dead'");
	assert_int_equal(retention_sweep(f->db, f->spool, 2000 + 3599, 3600, 100, NULL), 1);
	assert_int_equal(files_of(f, 2), 1);   /* only study 1 */
	assert_int_equal(retention_sweep(f->db, f->spool, 2000 + 3600, 3600, 100, NULL), 1);
	assert_int_equal(files_of(f, 2), 0);
}

static void
test_retention_refuses_paths_outside_the_spool(void **state)
{
	struct fixture *f = *state;
	struct retention_counts c = { 0 };
	char outside[PATH_MAX];

	snprintf(outside, sizeof(outside), "%s/precious.dcm", f->dir);
	touch(outside);
	sql(f, "UPDATE instances SET path = '%s' WHERE id = 12", outside);
	/* study 1 is left alone, whole; study 4 (settled too) goes on */
	assert_int_equal(retention_sweep(f->db, f->spool, 10000, 0, 100, &c), 2);
	assert_int_equal(c.refused, 1);
	assert_int_equal(c.studies, 1);
	assert_true(exists(outside));
	char p[PATH_MAX];
	file_path(f, "studies", 1, 1, p, sizeof(p));
	assert_true(exists(p));                  /* not half removed */
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM instances WHERE study_id = 1"
	    " AND removed_at IS NOT NULL"), 0);
	assert_int_equal(files_of(f, 4), 0);

	sql(f, "UPDATE instances SET path = '%s/../precious.dcm' WHERE id = 12", f->spool);
	memset(&c, 0, sizeof(c));
	assert_int_equal(retention_sweep(f->db, f->spool, 10000, 0, 100, &c), 1);
	assert_int_equal(c.refused, 1);
	assert_true(exists(outside));

	/* purge leaves it alone too, and counts it as kept */
	memset(&c, 0, sizeof(c));
	assert_int_equal(retention_purge(f->db, f->spool, 10000, 0, false, &c), 0);
	assert_int_equal(c.refused, 1);
	assert_true(exists(outside));
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM studies WHERE id = 1"), 1);
}

static void
test_purge_dry_run_then_rows(void **state)
{
	struct fixture *f = *state;
	struct retention_counts c = { 0 };

	/* dry run: counts, changes nothing */
	assert_int_equal(retention_purge(f->db, f->spool, 1000 + 86400, 86400, true, &c), 0);
	assert_int_equal(c.studies, 1);
	assert_int_equal(c.instances, 2);
	assert_int_equal(c.jobs, 1);
	assert_int_equal(c.results, 1);
	assert_int_equal(c.files, 3);
	assert_int_equal(c.kept, 6);         /* 2 to 7: unsettled, or settled too recently */
	assert_int_equal(files_of(f, 1), 1);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM studies"), NSTUDIES);

	memset(&c, 0, sizeof(c));
	assert_int_equal(retention_purge(f->db, f->spool, 1000 + 86400, 86400, false, &c), 0);
	assert_int_equal(c.studies, 1);
	assert_int_equal(files_of(f, 1), 0);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM studies WHERE id = 1"), 0);
	/* every row of it went, nothing of the others */
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM instances WHERE study_id = 1"), 0);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM jobs WHERE study_id = 1"), 0);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM attempts WHERE job_id = 1"), 0);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM results WHERE study_id = 1"), 0);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM dispatches WHERE study_id = 1"), 0);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM notices WHERE job_id = 1"), 0);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM job_instances WHERE job_id = 1"), 0);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM studies"), NSTUDIES - 1);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM instances"), 2 * (NSTUDIES - 1));
	for (int s = 2; s <= NSTUDIES; s++)
		assert_int_equal(files_of(f, s), 1);

	/* long after: study 4 goes too; the unsettled ones stay */
	memset(&c, 0, sizeof(c));
	assert_int_equal(retention_purge(f->db, f->spool, 40000000, 86400, false, &c), 0);
	assert_int_equal(c.studies, 1);
	assert_int_equal(c.kept, 5);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM studies"), NSTUDIES - 2);
}

static void
test_purge_after_retention(void **state)
{
	struct fixture *f = *state;
	struct retention_counts c = { 0 };

	assert_int_equal(retention_sweep(f->db, f->spool, 10000, 3600, 100, NULL), 2);
	assert_int_equal(retention_purge(f->db, f->spool, 10000, 3600, false, &c), 0);
	assert_int_equal(c.studies, 2);
	assert_int_equal(c.files, 0);           /* already removed */
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM studies"), NSTUDIES - 2);
}

static void
test_removed_instance_received_again(void **state)
{
	struct fixture *f = *state;
	char study[DICOM_UID_LEN + 1], p[PATH_MAX];
	struct dicom_meta m;
	struct db_instance in;

	assert_int_equal(retention_sweep(f->db, f->spool, 10000, 3600, 100, NULL), 2);
	assert_int_equal(db_instance_lookup(f->db, "1.2.1.1", study), 2);
	assert_string_equal(study, "1.2.1");
	assert_int_equal(db_instance_lookup(f->db, "1.2.2.1", study), 1);

	/* the same instance again: its row points at the new file */
	file_path(f, "studies", 1, 1, p, sizeof(p));
	assert_int_equal(db_instance_restore(f->db, "1.2.1.1", p, 1234, 20000), 0);
	assert_int_equal(db_instance_lookup(f->db, "1.2.1.1", study), 1);
	assert_int_equal(scalar(f->db, "SELECT size FROM instances WHERE sop_uid = '1.2.1.1'"),
	    1234);
	assert_int_equal(scalar(f->db, "SELECT files_removed_at IS NULL FROM studies"
	    " WHERE id = 1"), 1);
	assert_int_equal(db_instance_restore(f->db, "1.2.1.1", p, 1, 20000), -ENOENT);
	assert_int_equal(db_instance_restore(f->db, "1.2.2.1", p, 1, 20000), -ENOENT);

	/* a new instance of a removed study reopens it for retention too */
	memset(&m, 0, sizeof(m));
	snprintf(m.study_uid, sizeof(m.study_uid), "1.2.4");
	snprintf(m.sop_uid, sizeof(m.sop_uid), "1.2.4.3");
	snprintf(m.series_uid, sizeof(m.series_uid), "1.2.4.0");
	snprintf(m.sop_class_uid, sizeof(m.sop_class_uid), "1.2.840.10008.5.1.4.1.1.1");
	snprintf(m.transfer_syntax, sizeof(m.transfer_syntax), "1.2.840.10008.1.2.1");
	in = (struct db_instance){ .meta = &m, .path = "/nonexistent", .size = 1,
	    .calling_ae = "CR", .peer_ip = "127.0.0.1", .dimse_priority = -1,
	    .received_at = 20000 };
	assert_int_equal(db_instance_insert(f->db, &in), 0);
	assert_int_equal(scalar(f->db, "SELECT files_removed_at IS NULL AND state = 'receiving'"
	    " AND generation = 2 FROM studies WHERE id = 4"), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_retention_removes_only_settled_old_enough,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_zero_hours_and_limit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_retention_dead_dispatch_retried_then_delivered,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_refuses_paths_outside_the_spool,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_purge_dry_run_then_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_purge_after_retention, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed_instance_received_again, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
