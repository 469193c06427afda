/* test_spool.c - durable store: paths from validated UIDs only, commit that
 * never replaces, tmp clean-up, walk, the daemon lock. */
#include <errno.h>
#include <fcntl.h>
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

#include "fs.h"
#include "spool.h"

struct fixture {
	char dir[PATH_MAX];
	struct spool *s;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "%s/spooltest.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(spool_open(f->dir, &f->s), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[PATH_MAX + 16];
	spool_free(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void
write_file(const char *path, const char *content)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(content, fp);
	fclose(fp);
}

static void
test_spool_paths_refuse_invalid_uids(void **state)
{
	struct fixture *f = *state;
	char p[PATH_MAX];

	assert_int_equal(spool_instance_path(f->s, "1.2.3", "1.2.3.4", p, sizeof(p)), 0);
	assert_non_null(strstr(p, "/studies/1.2.3/1.2.3.4.dcm"));
	assert_int_equal(spool_instance_path(f->s, "../../x", "1.2", p, sizeof(p)), -EINVAL);
	assert_int_equal(spool_instance_path(f->s, "1.2", "../../x", p, sizeof(p)), -EINVAL);
	assert_int_equal(spool_instance_path(f->s, "1.2", "1.2/../3", p, sizeof(p)), -EINVAL);
	assert_int_equal(spool_study_dir(f->s, "", p, sizeof(p)), -EINVAL);
	assert_int_equal(spool_study_dir(f->s,
	    "1234567890123456789012345678901234567890123456789012345678901234567890", p,
	    sizeof(p)), -EINVAL);
	/* a buffer that is too small fails instead of truncating */
	assert_int_equal(spool_instance_path(f->s, "1.2.3", "1.2.3.4", p, 8), -ENAMETOOLONG);
}

static void
test_spool_commit_places_file_and_never_replaces(void **state)
{
	struct fixture *f = *state;
	char tmp[PATH_MAX], tmp2[PATH_MAX], final[PATH_MAX], buf[64] = "";
	FILE *fp;

	assert_int_equal(spool_tmp_path(f->s, tmp, sizeof(tmp)), 0);
	assert_int_equal(spool_tmp_path(f->s, tmp2, sizeof(tmp2)), 0);
	assert_string_not_equal(tmp, tmp2);
	assert_non_null(strstr(tmp, "/tmp/"));
	write_file(tmp, "first");
	write_file(tmp2, "second");

	assert_int_equal(spool_commit(f->s, tmp, "1.2.3", "1.2.3.4", final, sizeof(final)), 0);
	assert_int_equal(access(tmp, F_OK), -1);          /* moved, not copied */
	assert_int_equal(spool_commit(f->s, tmp2, "1.2.3", "1.2.3.4", final, sizeof(final)),
	    -EEXIST);
	assert_int_equal(access(tmp2, F_OK), 0);          /* left for the caller */
	fp = fopen(final, "r");
	assert_non_null(fp);
	assert_non_null(fgets(buf, sizeof(buf), fp));
	fclose(fp);
	assert_string_equal(buf, "first");
	assert_int_equal(spool_commit(f->s, tmp2, "../x", "1.2", final, sizeof(final)), -EINVAL);
}

static int walked, walked_bad;

static int
walk_cb(void *arg, const char *study, const char *sop, const char *path, int valid)
{
	(void)arg; (void)path;
	if (valid) {
		assert_string_equal(study, "1.2.3");
		assert_true(strcmp(sop, "1.2.3.4") == 0 || strcmp(sop, "1.2.3.5") == 0);
		walked++;
	} else {
		walked_bad++;
	}
	return 0;
}

static void
test_spool_clean_tmp_and_walk(void **state)
{
	struct fixture *f = *state;
	char tmp[PATH_MAX], final[PATH_MAX], p[PATH_MAX];

	for (int i = 0; i < 2; i++) {
		assert_int_equal(spool_tmp_path(f->s, tmp, sizeof(tmp)), 0);
		write_file(tmp, "x");
		assert_int_equal(spool_commit(f->s, tmp, "1.2.3", i ? "1.2.3.5" : "1.2.3.4",
		    final, sizeof(final)), 0);
	}
	assert_int_equal(spool_tmp_path(f->s, tmp, sizeof(tmp)), 0);
	write_file(tmp, "unfinished");
	assert_int_equal(fs_path(p, sizeof(p), "%s/studies/1.2.3/notes.txt", f->dir), 0);
	write_file(p, "foreign");
	assert_int_equal(fs_path(p, sizeof(p), "%s/studies/not-a-uid", f->dir), 0);
	assert_int_equal(mkdir(p, 0700), 0);

	assert_int_equal(spool_clean_tmp(f->s), 1);
	assert_int_equal(access(tmp, F_OK), -1);
	walked = walked_bad = 0;
	assert_int_equal(spool_walk(f->s, walk_cb, NULL), 0);
	assert_int_equal(walked, 2);
	assert_int_equal(walked_bad, 2);
}

static void
test_spool_lock_is_exclusive(void **state)
{
	struct fixture *f = *state;
	pid_t holder = 0, pid = 0;
	int fd, fd2;

	assert_int_equal(spool_lock_probe(f->dir, &pid), 0);
	fd = spool_lock(f->s, &holder);
	assert_true(fd >= 0);
	/* flock locks belong to the open file description: a second open
	 * in the same process conflicts, as another daemon's would */
	fd2 = spool_lock(f->s, &holder);
	assert_int_equal(fd2, -EWOULDBLOCK);
	assert_int_equal(holder, getpid());
	assert_int_equal(spool_lock_probe(f->dir, &pid), 1);
	assert_int_equal(pid, getpid());
	close(fd);
	assert_int_equal(spool_lock_probe(f->dir, &pid), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_spool_paths_refuse_invalid_uids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_commit_places_file_and_never_replaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_clean_tmp_and_walk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_lock_is_exclusive, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
