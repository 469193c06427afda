/* test_db.c - schema migrations, recording instances, duplicates, study
 * completion and reopening. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "db.h"
#include "db_scalar.h"

struct fixture {
	char dir[PATH_MAX];
	char path[PATH_MAX + 16];
	struct db *db;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];
	snprintf(f->dir, sizeof(f->dir), "/tmp/dbtest.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/t.db", f->dir);
	assert_int_equal(db_open(f->path, DB_MIGRATE, &f->db, err, sizeof(err)), 0);
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

static void
meta(struct dicom_meta *m, const char *study, const char *sop, const char *modality)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->study_uid, sizeof(m->study_uid), "%s", study);
	snprintf(m->series_uid, sizeof(m->series_uid), "%s.1", study);
	snprintf(m->sop_uid, sizeof(m->sop_uid), "%s", sop);
	snprintf(m->sop_class_uid, sizeof(m->sop_class_uid), "1.2.840.10008.5.1.4.1.1.1");
	snprintf(m->transfer_syntax, sizeof(m->transfer_syntax), "1.2.840.10008.1.2.1");
	snprintf(m->modality, sizeof(m->modality), "%s", modality);
	snprintf(m->patient_id, sizeof(m->patient_id), "PID1");
	snprintf(m->patient_name, sizeof(m->patient_name), "M\xc3\xbcller^Hans");
}

static int
insert(struct db *db, const char *study, const char *sop, const char *modality, int64_t t)
{
	struct dicom_meta m;
	struct db_instance in;
	meta(&m, study, sop, modality);
	in = (struct db_instance){ .meta = &m, .path = "/spool/x.dcm", .size = 100,
	    .calling_ae = "CR1", .peer_ip = "127.0.0.1", .dimse_priority = 0,
	    .received_at = t };
	return db_instance_insert(db, &in);
}

static void
test_db_migrates_to_current_version_and_reopens(void **state)
{
	struct fixture *f = *state;
	struct db *db2 = NULL;
	char err[256];

	assert_int_equal(db_schema_version(f->db), DB_SCHEMA_VERSION);
	/* a second open (as triagectl does) needs no migration */
	assert_int_equal(db_open(f->path, 0, &db2, err, sizeof(err)), 0);
	db_close(db2);
	/* a database from a newer triaged is refused, not damaged */
	assert_int_equal(db_exec(f->db, "PRAGMA user_version=999"), 0);
	assert_int_equal(db_open(f->path, DB_MIGRATE, &db2, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "newer"));
	assert_int_equal(db_open(f->path, 0, &db2, err, sizeof(err)), -EPROTO);
}

static void
test_db_records_instances_and_counts_study(void **state)
{
	struct fixture *f = *state;
	char study[65];

	assert_int_equal(insert(f->db, "1.2.3", "1.2.3.1", "CR", 1000), 0);
	assert_int_equal(insert(f->db, "1.2.3", "1.2.3.2", "DX", 1001), 0);
	assert_int_equal(insert(f->db, "1.2.3", "1.2.3.3", "CR", 1002), 0);
	assert_int_equal(scalar(f->db, "SELECT instance_count FROM studies"), 3);
	assert_int_equal(scalar(f->db, "SELECT bytes FROM studies"), 300);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM studies WHERE modalities = 'CR\\DX'"), 1);
	assert_int_equal(scalar(f->db, "SELECT first_received_at FROM studies"), 1000);
	assert_int_equal(scalar(f->db, "SELECT last_received_at FROM studies"), 1002);
	assert_int_equal(db_instance_lookup(f->db, "1.2.3.2", study), 1);
	assert_string_equal(study, "1.2.3");
	assert_int_equal(db_instance_lookup(f->db, "9.9", study), 0);
}

static void
test_db_duplicate_sop_is_kept_once_and_leaves_study_alone(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(insert(f->db, "1.2.3", "1.2.3.1", "CR", 1000), 0);
	assert_int_equal(insert(f->db, "1.2.3", "1.2.3.1", "CR", 1005), -EEXIST);
	assert_int_equal(insert(f->db, "7.7", "1.2.3.1", "CR", 1006), -EEXIST);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM instances"), 1);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM studies"), 1);
	assert_int_equal(scalar(f->db, "SELECT instance_count FROM studies"), 1);
	assert_int_equal(scalar(f->db, "SELECT last_received_at FROM studies"), 1000);
}

static int completed;
static void
on_done(void *arg, const char *uid, int64_t n, int64_t gen, bool forced)
{
	(void)arg; (void)uid; (void)n; (void)gen; (void)forced;
	completed++;
}

static void
test_db_study_completes_after_quiet_period_and_reopens(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(insert(f->db, "1.2.3", "1.2.3.1", "CR", 1000), 0);
	assert_int_equal(insert(f->db, "4.5.6", "4.5.6.1", "MG", 1015), 0);
	completed = 0;
	/* at 1019 only 1.2.3 has been quiet for 20 s */
	assert_int_equal(db_studies_complete_due(f->db, 1019, 20, 3600, on_done, NULL), 0);
	assert_int_equal(db_studies_complete_due(f->db, 1020, 20, 3600, on_done, NULL), 1);
	assert_int_equal(completed, 1);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM studies WHERE state = 'complete'"
	    " AND study_uid = '1.2.3' AND completed_at = 1020"), 1);
	/* a late instance reopens it in a new generation */
	assert_int_equal(insert(f->db, "1.2.3", "1.2.3.2", "CR", 1100), 0);
	assert_int_equal(scalar(f->db, "SELECT state = 'receiving' AND generation = 2"
	    " AND opened_at = 1100 FROM studies WHERE study_uid = '1.2.3'"), 1);
	assert_int_equal(scalar(f->db, "SELECT generation FROM instances WHERE sop_uid = '1.2.3.2'"), 2);
	/* both are quiet now: 1.2.3 since 1100, 4.5.6 since 1015 */
	assert_int_equal(db_studies_complete_due(f->db, 1121, 20, 3600, NULL, NULL), 2);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM studies WHERE state = 'complete'"), 2);
}

static void
test_db_force_seconds_closes_a_study_still_receiving(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < 10; i++) {
		char sop[32];
		snprintf(sop, sizeof(sop), "1.2.3.%d", i + 1);
		assert_int_equal(insert(f->db, "1.2.3", sop, "CR", 1000 + i * 10), 0);
	}
	/* never quiet for 20 s, but open for 60 s */
	assert_int_equal(db_studies_complete_due(f->db, 1089, 20, 100, NULL, NULL), 0);
	assert_int_equal(db_studies_complete_due(f->db, 1100, 20, 100, NULL, NULL), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_db_migrates_to_current_version_and_reopens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_records_instances_and_counts_study, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_duplicate_sop_is_kept_once_and_leaves_study_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_study_completes_after_quiet_period_and_reopens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_force_seconds_closes_a_study_still_receiving, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
