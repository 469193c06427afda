/*
 * test_writers.c - the result writers behind dicom.h (SR, overlay,
 * summary): identity of what they write (our UIDs, the source study, the
 * SOP class, the image geometry), their refusals (bad arguments, unknown
 * template, findings on instances that are not sources, unreadable or
 * non-DICOM sources, unwritable output) and that a refusal leaves no file.
 * Sources: tests/data/samples. The content checks with the validators are
 * in tests/e2e/cases/5xx.
 */
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

#include "dicom/dicom.h"
#include "log.h"
#include "result.h"

#define SC_UID        "1.2.840.10008.5.1.4.1.1.7"
#define COMP_SR_UID   "1.2.840.10008.5.1.4.1.1.88.33"
#define MAMMO_CAD_UID "1.2.840.10008.5.1.4.1.1.88.50"

static char samples[PATH_MAX - 64];
static char tmpdir[PATH_MAX - 64];

static int
group_setup(void **state)
{
	const char *src = getenv("TRIAGED_SOURCE_DIR");
	char err[256];

	(void)state;
	if (src) {
		snprintf(samples, sizeof(samples), "%s/tests/data/samples", src);
	} else {
		/* __FILE__ is .../tests/unit/test_writers.c */
		snprintf(samples, sizeof(samples), "%s", __FILE__);
		char *p = strstr(samples, "/unit/test_writers.c");
		if (p)
			snprintf(p, sizeof(samples) - (size_t)(p - samples), "/data/samples");
	}
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_writers.XXXXXX", getenv("TMPDIR") ?
	    getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(tmpdir));
	log_set_level(LOG_ERR);
	assert_int_equal(dicom_global_init(err, sizeof(err)), 0);
	dicom_log_setup(LOG_ERR);
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	dicom_global_done();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	(void)system(cmd);
	return 0;
}

/* A job of the sample study KIND (its first N images) and its result. */
struct job {
	char paths[4][PATH_MAX];
	const char *sources[4];
	struct dicom_meta meta[4];
	struct result_image images[4];
	size_t n;
	struct triaged_result *r;
};

static void
job_open(struct job *j, const char *kind, size_t n)
{
	char err[256];

	memset(j, 0, sizeof(*j));
	j->n = n;
	for (size_t i = 0; i < n; i++) {
		snprintf(j->paths[i], sizeof(j->paths[i]), "%s/%s/1-%zu.dcm", samples, kind, i + 1);
		j->sources[i] = j->paths[i];
		assert_int_equal(dicom_meta_read(j->paths[i], &j->meta[i], err, sizeof(err)), 0);
		j->images[i].sop_uid = j->meta[i].sop_uid;
		j->images[i].columns = j->meta[i].columns;
		j->images[i].rows = j->meta[i].rows;
		j->images[i].frames = 1;
	}
	j->r = result_new(j->images, n);
	assert_non_null(j->r);
	assert_int_equal(result_set_algorithm(j->r, "UnitNet", "1.0", "Unit Tests"), 0);
	assert_int_equal(result_set_outcome(j->r, "positive", 0.8, "two findings"), 0);
	const double box[4] = { 50, 60, 150, 170 };
	const struct triaged_code fracture = { "SCT", "72704001", "Fracture" };
	assert_int_equal(result_add_finding(j->r, "fracture", 0.8, &fracture, j->meta[0].sop_uid,
	    1, box), 0);
	assert_int_equal(result_add_finding(j->r, "doubtful", 0.3, NULL, j->meta[n - 1].sop_uid,
	    1, box), 0);
	assert_int_equal(result_finish(j->r), 0);
}

static void
job_close(struct job *j)
{
	result_free(j->r);
}

static const struct dicom_result_info INFO = {
	.route = "unit", .backend = "exec", .sr_template = "tid1500", .job_id = 7,
	.not_for_diagnosis = false, .manufacturer = "triaged", .software_version = "0.0-test",
	.uid_root = "",
};

static const struct dicom_object_id ID = {
	"2.25.11111111111111111111111111111111", "2.25.22222222222222222222222222222222", 990, 1,
};

static void
out_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
	(void)unlink(buf);
}

static bool
exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Nothing but PATH (no PATH.tmp) is left, or nothing at all. */
static void
assert_no_temp(const char *path)
{
	char tmp[PATH_MAX + 8];

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_false(exists(tmp));
}

static void
test_writers_sr_has_our_uids_in_the_source_study(void **state)
{
	struct job j;
	struct dicom_meta m;
	char path[PATH_MAX], err[512];

	(void)state;
	job_open(&j, "cr-chest-0001", 2);
	out_path(path, sizeof(path), "sr.dcm");
	assert_int_equal(dicom_write_sr(&INFO, j.r, j.sources, j.n, &ID, path, err, sizeof(err)), 0);
	assert_int_equal(dicom_meta_read(path, &m, err, sizeof(err)), 0);
	assert_string_equal(m.sop_class_uid, COMP_SR_UID);
	assert_string_equal(m.sop_uid, ID.sop_uid);
	assert_string_equal(m.series_uid, ID.series_uid);
	assert_string_equal(m.study_uid, j.meta[0].study_uid);
	assert_string_equal(m.patient_id, j.meta[0].patient_id);
	assert_string_equal(m.accession, j.meta[0].accession);
	assert_string_equal(m.modality, "SR");
	assert_string_equal(m.series_number, "990");
	assert_non_null(strstr(m.series_description, "UnitNet"));
	assert_non_null(strstr(m.series_description, "unit"));
	assert_no_temp(path);
	job_close(&j);
}

static void
test_writers_sr_mammo_cad_is_a_mammography_cad_sr(void **state)
{
	struct job j;
	struct dicom_meta m;
	struct dicom_result_info info = INFO;
	char path[PATH_MAX], err[512];

	(void)state;
	info.sr_template = "mammo-cad";
	job_open(&j, "mg-screening-0001", 4);
	out_path(path, sizeof(path), "cad.dcm");
	assert_int_equal(dicom_write_sr(&info, j.r, j.sources, j.n, &ID, path, err, sizeof(err)), 0);
	assert_int_equal(dicom_meta_read(path, &m, err, sizeof(err)), 0);
	assert_string_equal(m.sop_class_uid, MAMMO_CAD_UID);
	assert_string_equal(m.sop_uid, ID.sop_uid);
	assert_string_equal(m.study_uid, j.meta[0].study_uid);
	job_close(&j);
}

static void
test_writers_overlay_is_an_rgb_sc_of_the_source_below_a_banner(void **state)
{
	struct job j;
	struct dicom_meta m;
	char path[PATH_MAX], err[512];

	(void)state;
	job_open(&j, "cr-chest-0001", 2);
	out_path(path, sizeof(path), "overlay.dcm");
	assert_int_equal(dicom_write_overlay(&INFO, j.r, j.sources[0], &ID, path, err,
	    sizeof(err)), 0);
	assert_int_equal(dicom_meta_read(path, &m, err, sizeof(err)), 0);
	assert_string_equal(m.sop_class_uid, SC_UID);
	assert_string_equal(m.sop_uid, ID.sop_uid);
	assert_string_equal(m.study_uid, j.meta[0].study_uid);
	assert_int_equal(m.samples_per_pixel, 3);
	assert_int_equal(m.bits_allocated, 8);
	assert_int_equal(m.columns, j.meta[0].columns);
	assert_true(m.rows > j.meta[0].rows && m.rows < j.meta[0].rows + j.meta[0].rows / 4);
	assert_string_equal(m.image_type, "DERIVED\\SECONDARY");
	assert_no_temp(path);
	job_close(&j);
}

static void
test_writers_summary_is_a_1024x1280_page(void **state)
{
	struct job j;
	struct dicom_meta m;
	struct dicom_result_info info = INFO;
	char path[PATH_MAX], err[512];

	(void)state;
	info.not_for_diagnosis = true;
	info.backend = "reference";
	job_open(&j, "cr-chest-0001", 2);
	assert_int_equal(result_add_measurement(j.r, "bone age", 132, "mo", NULL), 0);
	out_path(path, sizeof(path), "summary.dcm");
	assert_int_equal(dicom_write_summary(&info, j.r, j.sources, j.n, &ID, path, err,
	    sizeof(err)), 0);
	assert_int_equal(dicom_meta_read(path, &m, err, sizeof(err)), 0);
	assert_string_equal(m.sop_class_uid, SC_UID);
	assert_int_equal(m.columns, 1024);
	assert_int_equal(m.rows, 1280);
	assert_int_equal(strncmp(m.series_description, "NOT FOR DIAGNOSIS", 17), 0);
	job_close(&j);
}

static void
test_writers_series_description_fits_64_bytes(void **state)
{
	struct job j;
	struct dicom_meta m;
	struct dicom_result_info info = INFO;
	char path[PATH_MAX], err[512], name[65];

	(void)state;
	memset(name, 'N', 64);
	name[64] = '\0';
	info.route = "a-route-name-that-is-also-rather-long-for-a-description";
	info.not_for_diagnosis = true;
	job_open(&j, "hand-bone-age-0001", 1);
	assert_int_equal(result_set_algorithm(j.r, name, "1", NULL), 0);
	out_path(path, sizeof(path), "long.dcm");
	assert_int_equal(dicom_write_sr(&info, j.r, j.sources, j.n, &ID, path, err, sizeof(err)), 0);
	assert_int_equal(dicom_meta_read(path, &m, err, sizeof(err)), 0);
	assert_true(strlen(m.series_description) <= 64);
	assert_int_equal(strncmp(m.series_description, "NOT FOR DIAGNOSIS", 17), 0);
	job_close(&j);
}

static void
test_writers_refuse_bad_arguments_and_leave_no_file(void **state)
{
	struct job j;
	struct dicom_result_info info = INFO;
	struct dicom_object_id bad = ID;
	char path[PATH_MAX], err[512];

	(void)state;
	job_open(&j, "cr-chest-0001", 2);
	out_path(path, sizeof(path), "refused.dcm");
	assert_int_equal(dicom_write_sr(&INFO, NULL, j.sources, j.n, &ID, path, err, sizeof(err)),
	    -EINVAL);
	assert_int_equal(dicom_write_sr(&INFO, j.r, j.sources, 0, &ID, path, err, sizeof(err)),
	    -EINVAL);
	assert_true(err[0] != '\0');
	bad.sop_uid = "1.2.abc";
	assert_int_equal(dicom_write_overlay(&INFO, j.r, j.sources[0], &bad, path, err,
	    sizeof(err)), -EINVAL);
	assert_int_equal(dicom_write_summary(&INFO, j.r, j.sources, j.n, &ID, NULL, err,
	    sizeof(err)), -EINVAL);
	info.sr_template = "tid9999";
	assert_int_equal(dicom_write_sr(&info, j.r, j.sources, j.n, &ID, path, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "tid9999"));
	assert_false(exists(path));
	assert_no_temp(path);
	job_close(&j);
}

static void
test_writers_refuse_a_finding_on_an_instance_that_is_not_a_source(void **state)
{
	struct job j;
	struct dicom_result_info info = INFO;
	char path[PATH_MAX], err[512];

	(void)state;
	job_open(&j, "cr-chest-0001", 2);       /* findings on both images */
	out_path(path, sizeof(path), "partial.dcm");
	assert_int_equal(dicom_write_sr(&INFO, j.r, j.sources, 1, &ID, path, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "not a source"));
	info.sr_template = "mammo-cad";
	assert_int_equal(dicom_write_sr(&info, j.r, j.sources, 1, &ID, path, err, sizeof(err)),
	    -EINVAL);
	assert_false(exists(path));
	job_close(&j);
}

static void
test_writers_refuse_missing_and_non_dicom_sources(void **state)
{
	struct job j;
	char path[PATH_MAX], junk[PATH_MAX], err[512];
	const char *srcs[1];
	FILE *f;

	(void)state;
	job_open(&j, "cr-chest-0001", 2);
	out_path(path, sizeof(path), "nosource.dcm");
	srcs[0] = "/nonexistent/source.dcm";
	assert_int_equal(dicom_write_sr(&INFO, j.r, srcs, 1, &ID, path, err, sizeof(err)), -ENOENT);
	assert_int_equal(dicom_write_overlay(&INFO, j.r, srcs[0], &ID, path, err, sizeof(err)),
	    -ENOENT);
	snprintf(junk, sizeof(junk), "%s/junk.dcm", tmpdir);
	f = fopen(junk, "w");
	assert_non_null(f);
	fputs("this is not DICOM\n", f);
	fclose(f);
	srcs[0] = junk;
	assert_int_equal(dicom_write_summary(&INFO, j.r, srcs, 1, &ID, path, err, sizeof(err)),
	    -EBADMSG);
	assert_int_equal(dicom_write_overlay(&INFO, j.r, junk, &ID, path, err, sizeof(err)),
	    -EBADMSG);
	assert_false(exists(path));
	job_close(&j);
}

static void
test_writers_report_an_unwritable_output(void **state)
{
	struct job j;
	char err[512];
	int e;

	(void)state;
	job_open(&j, "cr-chest-0001", 2);
	e = dicom_write_sr(&INFO, j.r, j.sources, j.n, &ID, "/nonexistent/dir/sr.dcm", err,
	    sizeof(err));
	assert_true(e < 0);
	assert_true(err[0] != '\0');
	e = dicom_write_overlay(&INFO, j.r, j.sources[0], &ID, "/nonexistent/dir/ov.dcm", err,
	    sizeof(err));
	assert_true(e < 0);
	job_close(&j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writers_sr_has_our_uids_in_the_source_study),
		cmocka_unit_test(test_writers_sr_mammo_cad_is_a_mammography_cad_sr),
		cmocka_unit_test(test_writers_overlay_is_an_rgb_sc_of_the_source_below_a_banner),
		cmocka_unit_test(test_writers_summary_is_a_1024x1280_page),
		cmocka_unit_test(test_writers_series_description_fits_64_bytes),
		cmocka_unit_test(test_writers_refuse_bad_arguments_and_leave_no_file),
		cmocka_unit_test(test_writers_refuse_a_finding_on_an_instance_that_is_not_a_source),
		cmocka_unit_test(test_writers_refuse_missing_and_non_dicom_sources),
		cmocka_unit_test(test_writers_report_an_unwritable_output),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
