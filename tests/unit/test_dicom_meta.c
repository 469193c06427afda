/* test_dicom_meta.c - what is recorded per instance, and the structural
 * checks that decide between storing a file and an error status, on the
 * real files of ../shared/testdata. */
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

#include "dicom/dicom.h"
#include "log.h"

static char shared[PATH_MAX];

static int
setup(void **state)
{
	const char *env = getenv("TRIAGED_SHARED");
	const char *src = getenv("TRIAGED_SOURCE_DIR");
	char err[256];
	(void)state;
	if (env)
		snprintf(shared, sizeof(shared), "%s", env);
	else
		snprintf(shared, sizeof(shared), "%s/../shared", src ? src : ".");
	log_set_level(LOG_ERR);
	assert_int_equal(dicom_global_init(err, sizeof(err)), 0);
	return 0;
}

static int
read_file(const char *rel, struct dicom_meta *m, char *err, size_t errlen)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/testdata/%s", shared, rel);
	if (access(p, R_OK) < 0)
		skip();
	return dicom_meta_read(p, m, err, errlen);
}

static void
test_meta_reads_mammogram_fields(void **state)
{
	struct dicom_meta m;
	char err[256];
	(void)state;
	assert_int_equal(read_file("mg/MG_forpresentation_GH133_jpeg-lossless-sv1.dcm", &m, err,
	    sizeof(err)), 0);
	assert_string_equal(m.modality, "MG");
	assert_string_equal(m.sop_class_uid, "1.2.840.10008.5.1.4.1.1.1.2");
	assert_string_equal(m.transfer_syntax, "1.2.840.10008.1.2.4.70");
	assert_string_equal(m.presentation_intent, "FOR PRESENTATION");
	assert_true(m.laterality[0] == 'L' || m.laterality[0] == 'R');
	assert_true(m.rows > 1000 && m.columns > 1000);
	assert_true(m.has_pixels);
}

static void
test_meta_reads_every_transfer_syntax(void **state)
{
	static const char *const files[] = {
		"misc-syntax/CR_chest_deflated-explicit-le.dcm", "misc-syntax/CR_chest_explicit-be.dcm",
		"misc-syntax/CR_chest_explicit-le.dcm", "misc-syntax/CR_chest_implicit-le.dcm",
		"misc-syntax/CR_chest_j2k-lossless.dcm", "misc-syntax/CR_chest_jpeg-baseline.dcm",
		"misc-syntax/CR_chest_jpeg-extended-lossy.dcm", "misc-syntax/CR_chest_jpeg-lossless-sv1.dcm",
		"misc-syntax/CR_chest_jpegls-lossless.dcm", "misc-syntax/CR_chest_rle.dcm",
		"cr/CR_chest_barre_implicit-le_no-meta.dcm", "dx/DX_chest_pydicom966fixed_j2k-lossless.dcm",
		"hand/CR_hand_gdcm-Kakadu44_j2k-lossless.dcm", "sr/SR_comprehensive_dcmtk-test-SR.dcm",
	};
	struct dicom_meta m;
	char err[256];
	(void)state;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		int r = read_file(files[i], &m, err, sizeof(err));
		if (r != 0)
			fail_msg("%s: %d %s", files[i], r, err);
		assert_true(m.sop_uid[0] && m.study_uid[0] && m.series_uid[0]);
		assert_true(m.transfer_syntax[0]);
	}
}

static void
test_meta_refuses_structurally_broken_files(void **state)
{
	static const struct { const char *file; const char *why; } bad[] = {
		{ "malformed/CR_chest_truncated-in-header.dcm", "" },
		{ "malformed/CR_chest_truncated-in-pixeldata.dcm", "" },
		{ "malformed/CR_chest_pixeldata-shorter-than-rows-x-cols.dcm", "pixel data" },
		{ "malformed/CR_chest_missing-SOPInstanceUID.dcm", "SOP Instance UID" },
		{ "malformed/CR_chest_empty-PatientID-and-StudyUID.dcm", "Study Instance UID" },
		{ "malformed/CR_chest_meta-says-RLE-but-native-pixels.dcm", "" },
		{ "malformed/MR_truncated-pixeldata.dcm", "" },
		{ "malformed/empty-0-bytes.dcm", "" },
		{ "malformed/not-dicom-text.dcm", "" },
		{ "malformed/preamble-DICM-then-garbage.dcm", "" },
	};
	struct dicom_meta m;
	char err[256];
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = read_file(bad[i].file, &m, err, sizeof(err));
		if (r != -EBADMSG)
			fail_msg("%s: expected -EBADMSG, got %d (%s)", bad[i].file, r, err);
		assert_non_null(strstr(err, bad[i].why));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_meta_reads_mammogram_fields),
		cmocka_unit_test(test_meta_reads_every_transfer_syntax),
		cmocka_unit_test(test_meta_refuses_structurally_broken_files),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
