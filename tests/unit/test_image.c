/* test_image.c - dicom_image_load: every transfer syntax of the shared test
 * data (JPEG 2000 through OpenJPEG), the same pixels whatever the syntax,
 * modality LUT, VOI, MONOCHROME1, colour, frames and area-averaging
 * downsampling on small files written by pydicom, and hostile files. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
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
#include "triaged/backend.h"

static char shared[1024];
static char gen_dir[1024];      /* files written by pydicom; "" when unavailable */

/* The files written by gen_script into its first argument. */
static const char gen_script[] =
"import sys\n"
"import numpy as np\n"
"import pydicom\n"
"from pydicom.dataset import Dataset, FileMetaDataset\n"
"from pydicom.uid import ExplicitVRLittleEndian, generate_uid\n"
"out = sys.argv[1]\n"
"def base(rows, cols, pi, stored=12, signed=0, spp=1, bits=16, frames=1):\n"
"    ds = Dataset()\n"
"    m = FileMetaDataset()\n"
"    m.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.7'\n"
"    m.MediaStorageSOPInstanceUID = generate_uid()\n"
"    m.TransferSyntaxUID = ExplicitVRLittleEndian\n"
"    ds.file_meta = m\n"
"    ds.is_little_endian = True\n"
"    ds.is_implicit_VR = False\n"
"    ds.SOPClassUID = m.MediaStorageSOPClassUID\n"
"    ds.SOPInstanceUID = m.MediaStorageSOPInstanceUID\n"
"    ds.StudyInstanceUID = generate_uid()\n"
"    ds.SeriesInstanceUID = generate_uid()\n"
"    ds.Modality = 'OT'\n"
"    ds.Rows, ds.Columns = rows, cols\n"
"    ds.SamplesPerPixel = spp\n"
"    ds.PhotometricInterpretation = pi\n"
"    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, stored, stored - 1\n"
"    ds.PixelRepresentation = signed\n"
"    if spp == 3:\n"
"        ds.PlanarConfiguration = 0\n"
"    if frames > 1:\n"
"        ds.NumberOfFrames = frames\n"
"    return ds\n"
"def save(ds, arr, name):\n"
"    ds.PixelData = arr.tobytes()\n"
"    ds.save_as(out + '/' + name, write_like_original=False)\n"
"ramp = (np.arange(48 * 64).reshape(48, 64) * 7 % 4096).astype('<u2')\n"
"save(base(48, 64, 'MONOCHROME1'), ramp, 'mono1.dcm')\n"
"save(base(48, 64, 'MONOCHROME2'), ramp, 'mono2.dcm')\n"
"for pi in ('MONOCHROME1', 'MONOCHROME2'):\n"
"    ds = base(48, 64, pi)\n"
"    ds.WindowCenter, ds.WindowWidth = '2048', '1024'\n"
"    save(ds, ramp, pi.lower() + '_win.dcm')\n"
"s = (np.arange(40 * 50).reshape(40, 50) - 1000).astype('<i2')\n"
"ds = base(40, 50, 'MONOCHROME2', stored=16, signed=1)\n"
"ds.RescaleSlope, ds.RescaleIntercept = '0.5', '10'\n"
"ds.WindowCenter, ds.WindowWidth = '10', '1001'\n"
"save(ds, s, 'signed_rescale.dcm')\n"
"rgb = np.zeros((8, 12, 3), np.uint8)\n"
"rgb[:, 0:4, 0] = 255\n"
"rgb[:, 4:8, 1] = 255\n"
"rgb[:, 8:12, 2] = 255\n"
"save(base(8, 12, 'RGB', stored=8, spp=3, bits=8), rgb, 'rgb.dcm')\n"
"fr = np.stack([np.full((16, 16), 1000 * (f + 1), np.uint16) for f in range(3)]).astype('<u2')\n"
"ds = base(16, 16, 'MONOCHROME2', frames=3)\n"
"ds.WindowCenter, ds.WindowWidth = '2000', '4000'\n"
"save(ds, fr, 'frames.dcm')\n"
"half = np.zeros((60, 100), np.uint16)\n"
"half[:, 50:] = 4095\n"
"save(base(60, 100, 'MONOCHROME2'), half.astype('<u2'), 'halves.dcm')\n"
/* multi-frame JPEG 2000 from a one-frame file: frame 2 is garbage, with
 * an offset table, and without one but with two fragments per frame */
"import os\n"
"from pydicom.encaps import generate_pixel_data_frame, encapsulate\n"
"src = sys.argv[2] if len(sys.argv) > 2 else ''\n"
"if os.path.exists(src):\n"
"    f = next(generate_pixel_data_frame(pydicom.dcmread(src).PixelData))\n"
"    junk = b'\\xff\\x4f\\xff\\x51' + bytes(range(256)) * 8\n"
"    for name, kw in (('j2k_frames_bot.dcm', dict(has_bot=True)),\n"
"                     ('j2k_frames_split.dcm', dict(has_bot=False, fragments_per_frame=2))):\n"
"        d = pydicom.dcmread(src)\n"
"        d.NumberOfFrames = 3\n"
"        d.PixelData = encapsulate([f, junk, f], **kw)\n"
"        d['PixelData'].is_undefined_length = True\n"
"        d.save_as(out + '/' + name)\n";

static void
rm_rf(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[PATH_MAX + 256];

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		(void)unlink(p);
	}
	closedir(d);
	(void)rmdir(dir);
}

static int
setup(void **state)
{
	const char *env = getenv("TRIAGED_SHARED");
	const char *src = getenv("TRIAGED_SOURCE_DIR");
	char err[256], script[PATH_MAX + 32], cmd[3 * PATH_MAX];
	(void)state;

	if (env)
		snprintf(shared, sizeof(shared), "%s", env);
	else
		snprintf(shared, sizeof(shared), "%s/../shared", src ? src : ".");
	log_set_level(LOG_ERR);
	assert_int_equal(dicom_global_init(err, sizeof(err)), 0);

	gen_dir[0] = '\0';
	snprintf(gen_dir, sizeof(gen_dir), "%s/triaged-test-image-XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(gen_dir)) {
		gen_dir[0] = '\0';
		return 0;
	}
	snprintf(script, sizeof(script), "%s/gen.py", gen_dir);
	FILE *f = fopen(script, "w");
	if (!f || fputs(gen_script, f) < 0) {
		if (f)
			fclose(f);
		rm_rf(gen_dir);
		gen_dir[0] = '\0';
		return 0;
	}
	fclose(f);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %s %s/testdata/misc-syntax/CR_chest_j2k-lossless.dcm "
	    ">/dev/null 2>&1", script, gen_dir, shared);
	if (access("/usr/bin/python3", X_OK) < 0 || system(cmd) != 0) {
		rm_rf(gen_dir);
		gen_dir[0] = '\0';
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (gen_dir[0])
		rm_rf(gen_dir);
	dicom_global_done();
	return 0;
}

static void
shared_path(char *p, size_t len, const char *rel)
{
	snprintf(p, len, "%s/testdata/%s", shared, rel);
}

/* Load a shared test file; skip the test when the shared data is absent. */
static int
load_shared(const char *rel, uint32_t max_dim, struct triaged_image **img, char *err,
    size_t errlen)
{
	char p[PATH_MAX + 64];

	shared_path(p, sizeof(p), rel);
	if (access(p, R_OK) < 0)
		skip();
	return dicom_image_load(p, 1, max_dim, img, err, errlen);
}

static struct triaged_image *
must_load_shared(const char *rel, uint32_t max_dim)
{
	struct triaged_image *img = NULL;
	char err[256];
	int r = load_shared(rel, max_dim, &img, err, sizeof(err));
	if (r != 0)
		fail_msg("%s: %d %s", rel, r, err);
	return img;
}

static struct triaged_image *
must_load_gen(const char *name, uint32_t frame, uint32_t max_dim)
{
	struct triaged_image *img = NULL;
	char p[PATH_MAX + 64], err[256];

	if (!gen_dir[0])
		skip();
	snprintf(p, sizeof(p), "%s/%s", gen_dir, name);
	int r = dicom_image_load(p, frame, max_dim, &img, err, sizeof(err));
	if (r != 0)
		fail_msg("%s: %d %s", name, r, err);
	return img;
}

static double
mean_abs_diff(const struct triaged_image *a, const struct triaged_image *b)
{
	size_t n = (size_t)a->width * a->height;
	double sum = 0;

	assert_int_equal(a->width, b->width);
	assert_int_equal(a->height, b->height);
	for (size_t i = 0; i < n; i++)
		sum += abs((int)a->pixels[i] - (int)b->pixels[i]);
	return sum / (double)n;
}

static double
mean(const struct triaged_image *a)
{
	size_t n = (size_t)a->width * a->height;
	double sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += a->pixels[i];
	return sum / (double)n;
}

/* ---- the shared test data ------------------------------------------------ */

static void
test_image_decodes_every_shared_image(void **state)
{
	static const char *const dirs[] = { "cr", "dx", "mg", "hand", "misc-syntax" };
	char dir[PATH_MAX + 64], rel[512], err[256];
	int n = 0;
	(void)state;

	for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
		shared_path(dir, sizeof(dir), dirs[d]);
		DIR *dp = opendir(dir);
		if (!dp)
			skip();
		struct dirent *e;
		while ((e = readdir(dp))) {
			size_t l = strlen(e->d_name);
			if (l < 5 || strcmp(e->d_name + l - 4, ".dcm") != 0)
				continue;
			snprintf(rel, sizeof(rel), "%s/%s", dirs[d], e->d_name);
			char p[PATH_MAX + 64];
			shared_path(p, sizeof(p), rel);
			struct dicom_meta m;
			assert_int_equal(dicom_meta_read(p, &m, err, sizeof(err)), 0);

			struct triaged_image *full = must_load_shared(rel, 0);
			assert_int_equal(full->width, m.columns);
			assert_int_equal(full->height, m.rows);
			assert_int_equal(full->src_columns, m.columns);
			assert_int_equal(full->src_rows, m.rows);
			assert_true(full->scale == 1.0);
			assert_non_null(full->pixels);

			struct triaged_image *small = must_load_shared(rel, 512);
			uint32_t big = m.columns > m.rows ? m.columns : m.rows;
			assert_true(small->width <= 512 && small->height <= 512);
			assert_int_equal(small->width > small->height ? small->width :
			    small->height, big > 512 ? 512 : big);
			/* area averaging keeps the mean (JPEG 2000 may drop a
			 * resolution level first: a little more freedom) */
			double mf = mean(full), ms = mean(small);
			if (fabs(mf - ms) > 0.01 * 65535)
				fail_msg("%s: mean %.0f at full size, %.0f at 512", rel, mf, ms);
			dicom_image_free(full);
			dicom_image_free(small);
			n++;
		}
		closedir(dp);
	}
	assert_true(n >= 20);
}

static void
test_image_lossless_syntaxes_give_identical_pixels(void **state)
{
	static const char *const same[] = {
		"misc-syntax/CR_chest_implicit-le.dcm", "misc-syntax/CR_chest_explicit-be.dcm",
		"misc-syntax/CR_chest_deflated-explicit-le.dcm", "misc-syntax/CR_chest_rle.dcm",
		"misc-syntax/CR_chest_jpeg-lossless-sv1.dcm", "misc-syntax/CR_chest_jpegls-lossless.dcm",
		"misc-syntax/CR_chest_j2k-lossless.dcm", "cr/CR_chest_barre_implicit-le_no-meta.dcm",
	};
	(void)state;

	struct triaged_image *ref = must_load_shared("misc-syntax/CR_chest_explicit-le.dcm", 0);
	assert_true(ref->was_monochrome1);
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		struct triaged_image *img = must_load_shared(same[i], 0);
		assert_int_equal(img->width, ref->width);
		assert_int_equal(img->height, ref->height);
		if (memcmp(img->pixels, ref->pixels, (size_t)ref->width * ref->height * 2) != 0)
			fail_msg("%s differs from the explicit LE variant (mean abs diff %.2f)",
			    same[i], mean_abs_diff(img, ref));
		assert_int_equal(img->was_monochrome1, 1);
		dicom_image_free(img);
	}
	dicom_image_free(ref);
}

static void
test_image_lossy_syntaxes_give_close_pixels(void **state)
{
	static const char *const close_ones[] = {
		"misc-syntax/CR_chest_jpeg-baseline.dcm", "misc-syntax/CR_chest_jpeg-extended-lossy.dcm",
	};
	(void)state;

	struct triaged_image *ref = must_load_shared("misc-syntax/CR_chest_explicit-le.dcm", 0);
	for (size_t i = 0; i < sizeof(close_ones) / sizeof(close_ones[0]); i++) {
		struct triaged_image *img = must_load_shared(close_ones[i], 0);
		double d = mean_abs_diff(img, ref);
		/* within 1% of the display range on average */
		if (d > 0.01 * 65535)
			fail_msg("%s: mean abs diff %.1f", close_ones[i], d);
		dicom_image_free(img);
	}
	dicom_image_free(ref);
}

/* J2K lossless (OpenJPEG) against the same pixels through DCMTK codecs. */
static void
test_image_j2k_lossless_equals_uncompressed(void **state)
{
	(void)state;
	struct triaged_image *a = must_load_shared("misc-syntax/CR_chest_j2k-lossless.dcm", 0);
	struct triaged_image *b = must_load_shared("misc-syntax/CR_chest_explicit-le.dcm", 0);
	assert_memory_equal(a->pixels, b->pixels, (size_t)a->width * a->height * 2);
	dicom_image_free(a);
	dicom_image_free(b);

	/* a Kakadu codestream against its JPEG-LS transcode */
	a = must_load_shared("hand/CR_hand_gdcm-Kakadu44_j2k-lossless.dcm", 0);
	b = must_load_shared("hand/CR_hand_gdcm-Kakadu44_jpegls-lossless.dcm", 0);
	assert_int_equal(a->width, 2048);
	assert_int_equal(a->height, 2500);
	assert_memory_equal(a->pixels, b->pixels, (size_t)a->width * a->height * 2);
	dicom_image_free(a);
	dicom_image_free(b);

	/* downsampled: JPEG 2000 drops a resolution level, then averages */
	a = must_load_shared("hand/CR_hand_gdcm-Kakadu44_j2k-lossless.dcm", 512);
	b = must_load_shared("hand/CR_hand_gdcm-Kakadu44_jpegls-lossless.dcm", 512);
	assert_int_equal(a->width, b->width);
	assert_int_equal(a->height, 512);
	assert_true(a->scale == b->scale);
	double d = mean_abs_diff(a, b);
	if (d > 0.005 * 65535)
		fail_msg("reduced J2K vs JPEG-LS: mean abs diff %.1f", d);
	dicom_image_free(a);
	dicom_image_free(b);
}

static void
test_image_j2k_lossy_close_to_near_lossless(void **state)
{
	(void)state;
	struct triaged_image *a = must_load_shared("cr/CR_chest_RG1_j2k-lossy.dcm", 0);
	struct triaged_image *b = must_load_shared("cr/CR_chest_RG1_jpegls-nearlossless.dcm", 0);
	assert_true(a->was_monochrome1 && b->was_monochrome1);
	double d = mean_abs_diff(a, b);
	if (d > 0.01 * 65535)
		fail_msg("RG1 J2K lossy vs JPEG-LS near-lossless: mean abs diff %.1f", d);
	dicom_image_free(a);
	dicom_image_free(b);
}

static void
test_image_jpeg_lossless_equals_jpegls(void **state)
{
	(void)state;
	struct triaged_image *a = must_load_shared("cr/CR_hip_RG2_jpeg-lossless-sv1.dcm", 0);
	struct triaged_image *b = must_load_shared("cr/CR_hip_RG2_jpegls-lossless.dcm", 0);
	assert_memory_equal(a->pixels, b->pixels, (size_t)a->width * a->height * 2);
	assert_false(a->was_monochrome1);
	dicom_image_free(a);
	dicom_image_free(b);
}

static void
test_image_hostile_files_fail_cleanly(void **state)
{
	static const char *const bad[] = {
		"malformed/CR_chest_meta-says-RLE-but-native-pixels.dcm",
		"malformed/CR_chest_pixeldata-shorter-than-rows-x-cols.dcm",
		"malformed/CR_chest_truncated-in-header.dcm",
		"malformed/CR_chest_truncated-in-pixeldata.dcm",
		"malformed/MR_truncated-pixeldata.dcm",
		"malformed/NM_j2k-embedded-sequence-delimiter.dcm",
		"malformed/empty-0-bytes.dcm",
		"malformed/meta-missing-transfer-syntax.dcm",
		"malformed/not-dicom-text.dcm",
		"malformed/preamble-DICM-then-garbage.dcm",
	};
	/* broken elsewhere than in the pixels: decoding may work; it must
	 * give an error or a sane image, never crash */
	static const char *const odd[] = {
		"malformed/CR_chest_empty-PatientID-and-StudyUID.dcm",
		"malformed/CR_chest_missing-SOPInstanceUID.dcm",
		"malformed/CR_hip_RG2_jpeg-extended_bad-SOS-Se.dcm",
		"malformed/CT_bad-sequence-UN.dcm",
		"malformed/CT_meta-missing-sop-class.dcm",
		"malformed/RTDOSE_bad-VR.dcm",
	};
	struct triaged_image *img;
	char err[256];
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (uint32_t md = 0; md <= 256; md += 256) {
			img = (struct triaged_image *)1;
			int r = load_shared(bad[i], md, &img, err, sizeof(err));
			if (r >= 0)
				fail_msg("%s: decoded", bad[i]);
			assert_null(img);
			assert_true(err[0] != '\0');
		}
	}
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		img = NULL;
		int r = load_shared(odd[i], 256, &img, err, sizeof(err));
		if (r == 0) {
			assert_true(img->width > 0 && img->width <= 256 && img->height <= 256);
			dicom_image_free(img);
		} else {
			assert_null(img);
			assert_true(err[0] != '\0');
		}
	}
	img = (struct triaged_image *)1;
	assert_int_equal(dicom_image_load("/nonexistent/x.dcm", 1, 0, &img, err, sizeof(err)),
	    -ENOENT);
	assert_null(img);
	/* a Structured Report has no pixels */
	assert_int_equal(load_shared("sr/SR_comprehensive_dcmtk-test-SR.dcm", 0, &img, err,
	    sizeof(err)), -ENOTSUP);
	/* a frame that is not there */
	char p[PATH_MAX + 64];
	shared_path(p, sizeof(p), "misc-syntax/CR_chest_explicit-le.dcm");
	assert_int_equal(dicom_image_load(p, 2, 0, &img, err, sizeof(err)), -EINVAL);
	assert_null(img);
	dicom_image_free(NULL);
}

/* ---- generated files ------------------------------------------------------ */

static void
test_image_monochrome1_is_inverted(void **state)
{
	(void)state;
	static const char *const pairs[][2] = {
		{ "mono1.dcm", "mono2.dcm" }, { "monochrome1_win.dcm", "monochrome2_win.dcm" },
	};
	for (size_t p = 0; p < 2; p++) {
		struct triaged_image *a = must_load_gen(pairs[p][0], 1, 0);
		struct triaged_image *b = must_load_gen(pairs[p][1], 1, 0);
		assert_true(a->was_monochrome1);
		assert_false(b->was_monochrome1);
		size_t n = (size_t)a->width * a->height;
		for (size_t i = 0; i < n; i++)
			assert_int_equal(a->pixels[i] + b->pixels[i], 65535);
		dicom_image_free(a);
		dicom_image_free(b);
	}
	/* min/max: stored 0 is black in MONOCHROME2, white in MONOCHROME1 */
	struct triaged_image *m2 = must_load_gen("mono2.dcm", 1, 0);
	assert_int_equal(m2->pixels[0], 0);
	dicom_image_free(m2);
	struct triaged_image *m1 = must_load_gen("mono1.dcm", 1, 0);
	assert_int_equal(m1->pixels[0], 65535);
	dicom_image_free(m1);
}

/* The window of the file: LINEAR of PS3.3 C.11.2.1.2 on the stored ramp. */
static void
test_image_applies_the_first_window(void **state)
{
	(void)state;
	struct triaged_image *img = must_load_gen("monochrome2_win.dcm", 1, 0);
	for (uint32_t i = 0; i < 48 * 64; i++) {
		double x = (double)(i * 7 % 4096), c = 2048, w = 1024, y;
		if (x <= c - 0.5 - (w - 1) / 2)
			y = 0;
		else if (x > c - 0.5 + (w - 1) / 2)
			y = 1;
		else
			y = (x - (c - 0.5)) / (w - 1) + 0.5;
		assert_int_equal(img->pixels[i], (uint16_t)lround(y * 65535));
	}
	dicom_image_free(img);
}

/* Signed stored values, a non-integer Rescale Slope, then the window. */
static void
test_image_applies_rescale_then_window(void **state)
{
	(void)state;
	struct triaged_image *img = must_load_gen("signed_rescale.dcm", 1, 0);
	assert_int_equal(img->width, 50);
	assert_int_equal(img->height, 40);
	for (int i = 0; i < 40 * 50; i++) {
		double m = 0.5 * (i - 1000) + 10, c = 10, w = 1001, y;
		if (m <= c - 0.5 - (w - 1) / 2)
			y = 0;
		else if (m > c - 0.5 + (w - 1) / 2)
			y = 1;
		else
			y = (m - (c - 0.5)) / (w - 1) + 0.5;
		assert_int_equal(img->pixels[i], (uint16_t)lround(y * 65535));
	}
	dicom_image_free(img);
}

static void
test_image_colour_becomes_luminance(void **state)
{
	(void)state;
	struct triaged_image *img = must_load_gen("rgb.dcm", 1, 0);
	assert_true(img->was_color);
	assert_int_equal(img->width, 12);
	assert_int_equal(img->height, 8);
	/* Rec. 601 weights of full red, green, blue */
	assert_true(abs(img->pixels[1] - 19595) <= 2);
	assert_true(abs(img->pixels[5] - 38469) <= 2);
	assert_true(abs(img->pixels[9] - 7471) <= 2);
	dicom_image_free(img);
	/* downsampled by 2: the same three bands, 2 columns each */
	img = must_load_gen("rgb.dcm", 1, 6);
	assert_int_equal(img->width, 6);
	assert_int_equal(img->height, 4);
	assert_true(abs(img->pixels[1] - 19595) <= 2);
	assert_true(abs(img->pixels[3] - 38469) <= 2);
	assert_true(abs(img->pixels[4] - 7471) <= 2);
	dicom_image_free(img);
}

static void
test_image_selects_the_frame(void **state)
{
	(void)state;
	char p[PATH_MAX + 64], err[256];
	struct triaged_image *img;
	uint16_t v[3];

	for (uint32_t f = 1; f <= 3; f++) {
		img = must_load_gen("frames.dcm", f, 0);
		v[f - 1] = img->pixels[17];
		/* window 2000/4000 on 1000, 2000, 3000 */
		double x = 1000.0 * f, y = (x - 1999.5) / 3999 + 0.5;
		assert_int_equal(v[f - 1], (uint16_t)lround(y * 65535));
		dicom_image_free(img);
	}
	assert_true(v[0] < v[1] && v[1] < v[2]);
	snprintf(p, sizeof(p), "%s/frames.dcm", gen_dir);
	assert_int_equal(dicom_image_load(p, 4, 0, &img, err, sizeof(err)), -EINVAL);
	assert_int_equal(dicom_image_load(p, 0, 0, &img, err, sizeof(err)), -EINVAL);
}

/* The fragments of each frame: by the offset table, and by the SOC
 * markers when there is none and a frame has several fragments. */
static void
test_image_j2k_selects_the_frame(void **state)
{
	static const char *const files[] = { "j2k_frames_bot.dcm", "j2k_frames_split.dcm" };
	char p[PATH_MAX + 64], err[256];
	(void)state;

	if (!gen_dir[0])
		skip();
	snprintf(p, sizeof(p), "%s/%s", gen_dir, files[0]);
	if (access(p, R_OK) < 0)
		skip();
	struct triaged_image *ref = must_load_shared("misc-syntax/CR_chest_j2k-lossless.dcm", 0);
	for (size_t i = 0; i < 2; i++) {
		for (uint32_t f = 1; f <= 3; f += 2) {
			struct triaged_image *img = must_load_gen(files[i], f, 0);
			assert_int_equal(img->width, ref->width);
			assert_memory_equal(img->pixels, ref->pixels,
			    (size_t)ref->width * ref->height * 2);
			dicom_image_free(img);
		}
		struct triaged_image *img = NULL;
		snprintf(p, sizeof(p), "%s/%s", gen_dir, files[i]);
		int r = dicom_image_load(p, 2, 0, &img, err, sizeof(err));
		assert_int_equal(r, -EBADMSG);
		assert_null(img);
		assert_non_null(strstr(err, "JPEG 2000"));
	}
	dicom_image_free(ref);
}

/* Two halves, black and white, 100 x 60: the boundary lands where the
 * scale says, and a cut through an output pixel is averaged by area. */
static void
test_image_downsampling_keeps_aspect_and_scale(void **state)
{
	(void)state;
	struct triaged_image *img = must_load_gen("halves.dcm", 1, 10);
	assert_int_equal(img->width, 10);
	assert_int_equal(img->height, 6);
	assert_true(fabs(img->scale - 10.0) < 1e-9);
	assert_int_equal(img->src_columns, 100);
	assert_int_equal(img->src_rows, 60);
	for (uint32_t y = 0; y < 6; y++)
		for (uint32_t x = 0; x < 10; x++)
			assert_int_equal(img->pixels[y * 10 + x], x < 5 ? 0 : 65535);
	dicom_image_free(img);

	img = must_load_gen("halves.dcm", 1, 30);
	assert_int_equal(img->width, 30);
	assert_int_equal(img->height, 18);
	assert_int_equal(img->pixels[14], 0);
	assert_int_equal(img->pixels[15], 65535);
	dicom_image_free(img);

	/* 100/7 = 14.29 source pixels per output pixel: output column 3
	 * covers 42.9 .. 57.1, half black and half white */
	img = must_load_gen("halves.dcm", 1, 7);
	assert_int_equal(img->width, 7);
	assert_int_equal(img->height, 5);
	assert_true(abs((int)img->pixels[3] - 32768) <= 2);
	assert_int_equal(img->pixels[2], 0);
	assert_int_equal(img->pixels[4], 65535);
	/* the last row covers 57.1 .. 60 only: still a clean average */
	assert_int_equal(img->pixels[4 * 7 + 0], 0);
	assert_int_equal(img->pixels[4 * 7 + 6], 65535);
	dicom_image_free(img);

	/* larger than the image: full size */
	img = must_load_gen("halves.dcm", 1, 1000);
	assert_int_equal(img->width, 100);
	assert_true(img->scale == 1.0);
	dicom_image_free(img);

	/* a real mammogram: 1318 x 788 to 256 x 154, scale 1318/256 */
	img = must_load_shared("misc-syntax/MG_forpresentation_overlay_explicit-le.dcm", 256);
	assert_int_equal(img->width, 256);
	assert_int_equal(img->height, 154);
	assert_true(fabs(img->scale - 1318.0 / 256) < 1e-9);
	assert_true(fabs((double)img->width / img->height - 1318.0 / 788) < 0.02);
	struct triaged_image *full = must_load_shared("misc-syntax/MG_forpresentation_overlay_explicit-le.dcm", 0);
	assert_true(fabs(mean(img) - mean(full)) < 0.002 * 65535);
	/* a block average at a whole-pixel position matches the full image */
	double s = img->scale, acc = 0, wsum = 0;
	uint32_t ox = 100, oy = 50;
	for (uint32_t y = 0; y < full->height; y++) {
		for (uint32_t x = 0; x < full->width; x++) {
			double wx = fmin(x + 1.0, (ox + 1) * s) - fmax((double)x, ox * s);
			double wy = fmin(y + 1.0, (oy + 1) * s) - fmax((double)y, oy * s);
			if (wx > 0 && wy > 0) {
				acc += wx * wy * full->pixels[(size_t)y * full->width + x];
				wsum += wx * wy;
			}
		}
	}
	assert_true(fabs(acc / wsum - img->pixels[oy * img->width + ox]) <= 2.0);
	dicom_image_free(full);
	dicom_image_free(img);
}

/* ---- threads ------------------------------------------------------------- */

struct job {
	char path[PATH_MAX + 64];
	struct triaged_image *img;
	int r;
};

static void *
decode_job(void *arg)
{
	struct job *j = arg;
	char err[256];

	for (int i = 0; i < 3; i++) {
		dicom_image_free(j->img);
		j->img = NULL;
		j->r = dicom_image_load(j->path, 1, 384, &j->img, err, sizeof(err));
		if (j->r)
			break;
	}
	return NULL;
}

static void
test_image_decodes_concurrently(void **state)
{
	static const char *const files[] = {
		"hand/CR_hand_gdcm-Kakadu44_j2k-lossless.dcm", "mg/MG_forpresentation_GH133_jpeg-lossless-sv1.dcm",
		"cr/CR_chest_RG1_jpegls-nearlossless.dcm", "cr/CR_leg_RG3_j2k-lossless.dcm",
	};
	struct job jobs[4];
	pthread_t th[4];
	(void)state;

	memset(jobs, 0, sizeof(jobs));
	for (int i = 0; i < 4; i++) {
		shared_path(jobs[i].path, sizeof(jobs[i].path), files[i]);
		if (access(jobs[i].path, R_OK) < 0)
			skip();
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, decode_job, &jobs[i]), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(jobs[i].r, 0);
		struct triaged_image *ref = must_load_shared(files[i], 384);
		assert_int_equal(ref->width, jobs[i].img->width);
		assert_memory_equal(ref->pixels, jobs[i].img->pixels,
		    (size_t)ref->width * ref->height * 2);
		dicom_image_free(ref);
		dicom_image_free(jobs[i].img);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_image_decodes_every_shared_image),
		cmocka_unit_test(test_image_lossless_syntaxes_give_identical_pixels),
		cmocka_unit_test(test_image_lossy_syntaxes_give_close_pixels),
		cmocka_unit_test(test_image_j2k_lossless_equals_uncompressed),
		cmocka_unit_test(test_image_j2k_lossy_close_to_near_lossless),
		cmocka_unit_test(test_image_jpeg_lossless_equals_jpegls),
		cmocka_unit_test(test_image_hostile_files_fail_cleanly),
		cmocka_unit_test(test_image_monochrome1_is_inverted),
		cmocka_unit_test(test_image_applies_the_first_window),
		cmocka_unit_test(test_image_applies_rescale_then_window),
		cmocka_unit_test(test_image_colour_becomes_luminance),
		cmocka_unit_test(test_image_selects_the_frame),
		cmocka_unit_test(test_image_j2k_selects_the_frame),
		cmocka_unit_test(test_image_downsampling_keeps_aspect_and_scale),
		cmocka_unit_test(test_image_decodes_concurrently),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
