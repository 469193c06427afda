/* test_queue.c - the job state machine: claim by priority then age, done
 * with its results in one transaction, a job cancelled during its analysis
 * records nothing. */
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
#include "queue.h"

struct fixture {
	char dir[PATH_MAX];
	struct db *db;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[PATH_MAX + 16], err[256];
	snprintf(f->dir, sizeof(f->dir), "/tmp/queuetest.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(path, sizeof(path), "%s/t.db", f->dir);
	assert_int_equal(db_open(path, DB_MIGRATE, &f->db, err, sizeof(err)), 0);
	assert_int_equal(db_exec(f->db,
	    "INSERT INTO studies (id, study_uid, first_received_at, last_received_at, opened_at)"
	    " VALUES (1, '1.2.3', 1, 1, 1);"
	    "INSERT INTO jobs (id, study_id, generation, route, backend, priority, created_at,"
	    " updated_at) VALUES (1, 1, 1, 'routine', 'reference', 5, 100, 100),"
	    " (2, 1, 1, 'stat', 'reference', 0, 200, 200),"
	    " (3, 1, 1, 'later', 'reference', 5, 300, 300)"), 0);
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
test_queue_claims_by_priority_then_age(void **state)
{
	struct fixture *f = *state;
	struct queue_job j;

	assert_int_equal(queue_claim(f->db, 1000, &j), 1);
	assert_int_equal(j.id, 2);              /* STAT first, although newer */
	assert_int_equal(j.attempts, 1);
	queue_job_done(&j);
	assert_int_equal(queue_claim(f->db, 1000, &j), 1);
	assert_int_equal(j.id, 1);              /* then the oldest */
	queue_job_done(&j);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM jobs WHERE state = 'running'"), 2);
	/* a retry waits for its time */
	assert_int_equal(queue_finish(f->db, 1, 1, QUEUE_RETRY, 1000, 2000, "busy", NULL, -1,
	    NULL), 0);
	assert_int_equal(queue_claim(f->db, 1500, &j), 1);
	assert_int_equal(j.id, 3);
	queue_job_done(&j);
	assert_int_equal(queue_claim(f->db, 1500, &j), 0);
	assert_int_equal(queue_claim(f->db, 2000, &j), 1);
	assert_int_equal(j.id, 1);
	assert_int_equal(j.attempts, 2);
	queue_job_done(&j);
	/* a restart puts running jobs back */
	assert_int_equal(queue_requeue_running(f->db, 3000), 3);
}

static void
test_queue_done_records_results_or_nothing_when_cancelled(void **state)
{
	struct fixture *f = *state;
	struct queue_job j;
	struct queue_result r = { .kind = "sr", .sop_uid = "2.25.1", .series_uid = "2.25.2",
	    .sop_class_uid = "1.2.840.10008.5.1.4.1.1.88.33",
	    .transfer_syntax = "1.2.840.10008.1.2.1", .path = "/spool/results/x.dcm", .size = 9 };

	assert_int_equal(queue_claim(f->db, 1000, &j), 1);      /* job 2 */
	queue_job_done(&j);
	assert_int_equal(queue_finish_done(f->db, 2, 1, 1100, "positive", 0.9, "{}", &r, 1), 0);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM results WHERE job_id = 2"), 1);
	assert_int_equal(scalar(f->db, "SELECT state = 'done' FROM jobs WHERE id = 2"), 1);

	assert_int_equal(queue_claim(f->db, 1000, &j), 1);      /* job 1 */
	queue_job_done(&j);
	/* triagectl cancel while the backend runs */
	assert_int_equal(db_exec(f->db, "UPDATE jobs SET state = 'cancelled' WHERE id = 1"), 0);
	r.sop_uid = "2.25.3";
	assert_int_equal(queue_finish_done(f->db, 1, 1, 1200, "negative", 0.1, "{}", &r, 1),
	    -ECANCELED);
	assert_int_equal(scalar(f->db, "SELECT count(*) FROM results WHERE job_id = 1"), 0);
	assert_int_equal(scalar(f->db, "SELECT state = 'cancelled' FROM jobs WHERE id = 1"), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_queue_claims_by_priority_then_age, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_done_records_results_or_nothing_when_cancelled, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
