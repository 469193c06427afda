/*
 * db_scalar.h - for the unit tests that look into the queue database
 * (include after <cmocka.h> and "db.h"): the first column of the first row
 * of SQL, -1 when there is no row; a statement that does not prepare fails
 * the test.
 */
#ifndef TRIAGED_TEST_DB_SCALAR_H
#define TRIAGED_TEST_DB_SCALAR_H

static inline int64_t
scalar(struct db *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(db_handle(db), sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

#endif
