/* test_reference.c - the built-in reference backend through the backend
 * ABI with a fake host: one bright blob is one finding, a flat image none,
 * the same study gives the same result, hand studies get the chronological
 * age as "bone age", deadlines, undecodable images, and real and generated
 * studies (boxes inside the source image). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "backend_reference.h"
#include "dicom/dicom.h"
#include "fake_host.h"
#include "log.h"

static char shared[1024];
static struct fake_host fh;

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
teardown(void **state)
{
	(void)state;
	dicom_global_done();
	return 0;
}

static int
each_setup(void **state)
{
	(void)state;
	fake_host_init(&fh);
	return 0;
}

static int
each_teardown(void **state)
{
	(void)state;
	fake_host_done(&fh);
	return 0;
}

/* A study of N instances with the given paths; strings are static. */
struct test_study {
	struct triaged_study st;
	struct triaged_instance in[64];
	char uid[64][DICOM_UID_LEN + 1];
	char body[64][65];
	char mod[64][17];
	char path[64][PATH_MAX];
};

static struct test_study *
study_new(void)
{
	struct test_study *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->st.job_id = 1;
	t->st.route = "test";
	t->st.study_uid = "1.2.3";
	t->st.modality = "CR";
	t->st.patient_age_years = -1;
	t->st.instances = t->in;
	return t;
}

/* Add an instance: from the file's own metadata when it is a DICOM file,
 * else (synthetic images) with the given size. */
static void
study_add(struct test_study *t, const char *path, const char *modality, const char *body_part,
    uint32_t cols, uint32_t rows)
{
	size_t i = t->st.ninstances++;
	struct dicom_meta m;
	char err[256];

	assert_true(i < 64);
	snprintf(t->path[i], sizeof(t->path[i]), "%s", path);
	snprintf(t->uid[i], sizeof(t->uid[i]), "1.2.3.4.%zu", i + 1);
	snprintf(t->mod[i], sizeof(t->mod[i]), "%s", modality ? modality : "");
	snprintf(t->body[i], sizeof(t->body[i]), "%s", body_part ? body_part : "");
	if (access(path, R_OK) == 0 && dicom_meta_read(path, &m, err, sizeof(err)) == 0) {
		cols = m.columns;
		rows = m.rows;
		if (!modality)
			snprintf(t->mod[i], sizeof(t->mod[i]), "%s", m.modality);
		if (!body_part)
			snprintf(t->body[i], sizeof(t->body[i]), "%s", m.body_part);
	}
	t->in[i].sop_instance_uid = t->uid[i];
	t->in[i].path = t->path[i];
	t->in[i].modality = t->mod[i];
	t->in[i].body_part = t->body[i];
	t->in[i].columns = cols;
	t->in[i].rows = rows;
	t->in[i].frames = 1;
}

struct run {
	int status;
	char msg[512];
	struct triaged_result *res;
};

static struct run
run_study(const struct test_study *t, int64_t deadline_ms)
{
	struct run r;
	void *state = NULL;
	char err[256];

	memset(&r, 0, sizeof(r));
	r.res = malloc(sizeof(*r.res));
	assert_non_null(r.res);
	fake_result_init(r.res, &t->st);
	assert_int_equal(backend_reference.ops->open(&fh.host, NULL, &state, err, sizeof(err)), 0);
	r.status = backend_reference.ops->analyze(state, &t->st, r.res, deadline_ms, r.msg,
	    sizeof(r.msg));
	backend_reference.ops->close(state);
	return r;
}

/* Every finding: a known UID, a score in [0,1], a box inside the source
 * image of its instance, and the result complete. */
static void
check_result(const struct test_study *t, const struct run *r)
{
	const struct triaged_result *res = r->res;

	if (r->status != TRIAGED_OK)
		fail_msg("analyze: %d %s", r->status, r->msg);
	assert_int_equal(res->refused, 0);
	assert_true(res->algorithm_set && res->outcome_set);
	assert_string_equal(res->alg_name, "triaged reference analysis (not for diagnosis)");
	assert_string_equal(res->alg_version, TRIAGED_VERSION);
	assert_string_equal(res->alg_vendor, "triaged");
	assert_non_null(strstr(res->summary, "NOT a diagnosis"));
	assert_true(res->score >= 0.0 && res->score <= 1.0);
	assert_true(res->nfindings <= REFERENCE_MAX_FINDINGS);
	double best = 0;
	for (size_t i = 0; i < res->nfindings; i++) {
		const struct fake_finding *f = &res->findings[i];
		const struct triaged_instance *in = NULL;
		for (size_t j = 0; j < t->st.ninstances; j++)
			if (strcmp(t->in[j].sop_instance_uid, f->sop_uid) == 0)
				in = &t->in[j];
		assert_non_null(in);
		assert_true(f->score >= REFERENCE_REPORT_MIN && f->score <= 1.0);
		assert_int_equal(f->frame, 1);
		assert_true(f->has_box);
		if (!(f->box[0] >= 0 && f->box[1] >= 0 && f->box[0] < f->box[2] &&
		    f->box[1] < f->box[3] && f->box[2] <= in->columns && f->box[3] <= in->rows))
			fail_msg("%s: box %.1f,%.1f,%.1f,%.1f outside %ux%u", in->path, f->box[0],
			    f->box[1], f->box[2], f->box[3], in->columns, in->rows);
		assert_true(f->code.present);
		assert_string_equal(f->code.scheme, "99TRIAGED");
		if (i)
			assert_true(f->score <= res->findings[i - 1].score);
		best = f->score > best ? f->score : best;
	}
	assert_true(res->score == best);
	assert_string_equal(res->outcome, best >= REFERENCE_POSITIVE ? "positive" :
	    strcmp(res->outcome, "indeterminate") == 0 ? "indeterminate" : "negative");
}

static void
run_free(struct run *r)
{
	free(r->res);
	r->res = NULL;
}

/* A smooth background (gradient, a slow wave, a little deterministic
 * noise) with an optional Gaussian blob. */
static uint16_t *
synthetic(uint32_t w, uint32_t h, double bx, double by, double sigma, double amp)
{
	uint16_t *p = malloc((size_t)w * h * sizeof(uint16_t));
	uint32_t seed = 12345;

	assert_non_null(p);
	for (uint32_t y = 0; y < h; y++) {
		for (uint32_t x = 0; x < w; x++) {
			seed = seed * 1103515245u + 12345u;
			double noise = ((seed >> 16) & 0x3ff) / 1023.0 - 0.5;
			double v = 18000 + 20.0 * x + 12.0 * y +
			    2500 * sin(x / 90.0) * cos(y / 110.0) + 300 * noise;
			if (amp != 0) {
				double dx = x - bx, dy = y - by;
				v += amp * exp(-(dx * dx + dy * dy) / (2 * sigma * sigma));
			}
			p[(size_t)y * w + x] = (uint16_t)(v < 0 ? 0 : v > 65535 ? 65535 : v);
		}
	}
	return p;
}

static void
test_reference_one_blob_one_finding(void **state)
{
	(void)state;
	/* 480 x 360 image of a 960 x 720 source (scale 2), blob at (300, 140) */
	uint16_t *px = synthetic(480, 360, 300, 140, 6, 16000);
	assert_int_equal(fake_host_add_image(&fh, "synthetic:blob", 480, 360, px, 2.0), 0);
	free(px);
	struct test_study *t = study_new();
	study_add(t, "synthetic:blob", "CR", "CHEST", 960, 720);
	struct run r = run_study(t, 0);
	check_result(t, &r);
	assert_int_equal(r.res->nfindings, 1);
	const struct fake_finding *f = &r.res->findings[0];
	/* the blob centre, in source pixels, inside the box; the box small */
	assert_true(f->box[0] < 600 && f->box[2] > 600 && f->box[1] < 280 && f->box[3] > 280);
	assert_true(f->box[2] - f->box[0] < 200 && f->box[3] - f->box[1] < 200);
	assert_true(f->box[2] - f->box[0] > 24);
	assert_true(f->score >= 0.5);
	assert_string_equal(f->label, "salient focal opacity");
	assert_string_equal(f->code.value, "REF-FOCAL-OPAC");
	assert_string_equal(r.res->outcome, "positive");
	assert_true(r.res->score == f->score);
	assert_int_equal(r.res->nmeasurements, 0);
	run_free(&r);
	free(t);
}

static void
test_reference_flat_image_no_finding(void **state)
{
	(void)state;
	uint16_t *flat = malloc(300 * 200 * sizeof(uint16_t));
	assert_non_null(flat);
	for (size_t i = 0; i < 300 * 200; i++)
		flat[i] = 30000;
	assert_int_equal(fake_host_add_image(&fh, "synthetic:flat", 300, 200, flat, 1.0), 0);
	free(flat);
	uint16_t *smooth = synthetic(300, 200, 0, 0, 1, 0);
	assert_int_equal(fake_host_add_image(&fh, "synthetic:smooth", 300, 200, smooth, 1.0), 0);
	free(smooth);

	struct test_study *t = study_new();
	t->st.modality = "MG";
	study_add(t, "synthetic:flat", "MG", "BREAST", 300, 200);
	study_add(t, "synthetic:smooth", "MG", "BREAST", 300, 200);
	struct run r = run_study(t, 0);
	check_result(t, &r);
	assert_int_equal(r.res->nfindings, 0);
	assert_string_equal(r.res->outcome, "negative");
	assert_true(r.res->score == 0.0);
	run_free(&r);
	free(t);
}

static void
test_reference_mammogram_label(void **state)
{
	(void)state;
	uint16_t *px = synthetic(400, 500, 220, 260, 5, 20000);
	assert_int_equal(fake_host_add_image(&fh, "synthetic:mg", 400, 500, px, 1.0), 0);
	free(px);
	struct test_study *t = study_new();
	t->st.modality = "MG";
	study_add(t, "synthetic:mg", "MG", "BREAST", 400, 500);
	struct run r = run_study(t, 0);
	check_result(t, &r);
	assert_int_equal(r.res->nfindings, 1);
	assert_string_equal(r.res->findings[0].label, "salient focal density");
	assert_string_equal(r.res->findings[0].code.value, "REF-FOCAL-DENS");
	run_free(&r);
	free(t);
}

static void
test_reference_is_deterministic(void **state)
{
	char p[PATH_MAX];
	(void)state;

	snprintf(p, sizeof(p), "%s/testdata/mg/MG_forpresentation_GH133_jpeg-lossless-sv1.dcm", shared);
	if (access(p, R_OK) < 0)
		skip();
	struct test_study *t = study_new();
	study_add(t, p, NULL, NULL, 0, 0);
	snprintf(p, sizeof(p), "%s/testdata/cr/CR_chest_RG1_j2k-lossy.dcm", shared);
	study_add(t, p, NULL, NULL, 0, 0);
	struct run a = run_study(t, 0);
	struct run b = run_study(t, 0);
	check_result(t, &a);
	check_result(t, &b);
	assert_true(fake_result_equal(a.res, b.res));
	run_free(&a);
	run_free(&b);
	free(t);
}

/* A one-image DX hand study (a synthetic 200 x 240 image) of AGE years. */
static struct test_study *
hand_study(double age)
{
	uint16_t *px = synthetic(200, 240, 0, 0, 1, 0);
	assert_int_equal(fake_host_add_image(&fh, "synthetic:hand", 200, 240, px, 1.0), 0);
	free(px);
	struct test_study *t = study_new();
	t->st.patient_age_years = age;
	study_add(t, "synthetic:hand", "DX", "hand", 200, 240);
	return t;
}

/* [backend NAME] task overrides what the route's name would choose. */
static void
test_reference_task_key(void **state)
{
	(void)state;
	struct test_study *t = hand_study(9);

	fake_host_config("task", "findings");
	t->st.route = "bone-age";
	struct run r = run_study(t, 0);
	check_result(t, &r);
	assert_int_equal(r.res->nmeasurements, 0);
	assert_non_null(strstr(r.res->summary, "Reference image analysis"));
	run_free(&r);

	fake_host_config("task", "bone-age");
	t->st.route = "fracture";
	r = run_study(t, 0);
	check_result(t, &r);
	assert_int_equal(r.res->nmeasurements, 1);
	assert_true(fabs(r.res->measurements[0].value - 108.0) < 1e-9);
	assert_int_equal(r.res->nfindings, 0);
	run_free(&r);

	/* a value the config parser would refuse is refused here too */
	void *st = NULL;
	char err[256] = "";
	fake_host_config("task", "everything");
	assert_int_equal(backend_reference.ops->open(&fh.host, NULL, &st, err, sizeof(err)),
	    -EINVAL);
	assert_null(st);
	assert_non_null(strstr(err, "task must be auto, findings or bone-age"));
	fake_host_config("task", NULL);
	free(t);
}

static void
test_reference_hand_reports_chronological_age(void **state)
{
	(void)state;
	struct test_study *t = hand_study(11.5);

	/* task = auto, a route that is not about bone age: findings only */
	struct run r = run_study(t, 0);
	check_result(t, &r);
	assert_int_equal(r.res->nmeasurements, 0);
	run_free(&r);

	/* task = auto, route bone-age: the stand-in only, no image analysis */
	t->st.route = "bone-age";
	r = run_study(t, 0);
	check_result(t, &r);
	assert_int_equal(r.res->nfindings, 0);
	assert_string_equal(r.res->outcome, "negative");
	assert_int_equal(r.res->nmeasurements, 1);
	const struct fake_measurement *m = &r.res->measurements[0];
	assert_string_equal(m->name, "bone age");
	assert_true(fabs(m->value - 138.0) < 1e-9);
	assert_string_equal(m->unit, "mo");
	assert_string_equal(m->code.scheme, "99TRIAGED");
	assert_string_equal(m->code.value, "REF-CHRONO-AGE");
	assert_string_equal(m->code.meaning, "Chronological age (reference stand-in for bone age)");
	assert_non_null(strstr(r.res->summary, "chronological age"));
	assert_non_null(strstr(r.res->summary, "138.0 months"));
	run_free(&r);

	/* rounded to 0.1 month */
	t->st.patient_age_years = 7.0 + 1.0 / 30;
	r = run_study(t, 0);
	check_result(t, &r);
	assert_true(fabs(r.res->measurements[0].value - 84.4) < 1e-9);
	run_free(&r);

	/* age unknown: no measurement, and the summary says why */
	t->st.patient_age_years = -1;
	r = run_study(t, 0);
	check_result(t, &r);
	assert_int_equal(r.res->nmeasurements, 0);
	assert_non_null(strstr(r.res->summary, "age is unknown"));
	run_free(&r);

	/* not a hand: no measurement even with an age */
	t->st.patient_age_years = 11.5;
	snprintf(t->body[0], sizeof(t->body[0]), "CHEST");
	r = run_study(t, 0);
	check_result(t, &r);
	assert_int_equal(r.res->nmeasurements, 0);
	run_free(&r);
	free(t);
}

static void
test_reference_respects_the_deadline(void **state)
{
	(void)state;
	uint16_t *px = synthetic(100, 100, 50, 50, 4, 10000);
	assert_int_equal(fake_host_add_image(&fh, "synthetic:a", 100, 100, px, 1.0), 0);
	free(px);
	struct test_study *t = study_new();
	study_add(t, "synthetic:a", "CR", "CHEST", 100, 100);
	fh.clock_frozen = 1;
	fh.clock_ms = 5000;
	struct run r = run_study(t, 4000);
	assert_int_equal(r.status, TRIAGED_RETRY);
	assert_non_null(strstr(r.msg, "deadline"));
	assert_false(r.res->outcome_set);
	run_free(&r);
	r = run_study(t, 6000);
	check_result(t, &r);
	run_free(&r);
	free(t);
}

static void
test_reference_undecodable_images(void **state)
{
	char bad[PATH_MAX];
	(void)state;

	snprintf(bad, sizeof(bad), "%s/testdata/malformed/CR_chest_truncated-in-pixeldata.dcm", shared);
	if (access(bad, R_OK) < 0)
		skip();
	/* only broken images: the job fails */
	struct test_study *t = study_new();
	study_add(t, bad, "CR", "CHEST", 440, 440);
	struct run r = run_study(t, 0);
	assert_int_equal(r.status, TRIAGED_FAIL);
	assert_non_null(strstr(r.msg, "decoded"));
	run_free(&r);

	/* one good, one broken: the good one is analysed, and a negative
	 * result is only "indeterminate" */
	uint16_t *px = synthetic(200, 200, 0, 0, 1, 0);
	assert_int_equal(fake_host_add_image(&fh, "synthetic:ok", 200, 200, px, 1.0), 0);
	free(px);
	study_add(t, "synthetic:ok", "CR", "CHEST", 200, 200);
	r = run_study(t, 0);
	check_result(t, &r);
	assert_string_equal(r.res->outcome, "indeterminate");
	assert_non_null(strstr(r.res->summary, "could not be decoded"));
	run_free(&r);
	free(t);

	/* no image at all (a report only) */
	t = study_new();
	study_add(t, "synthetic:none", "SR", "", 0, 0);
	r = run_study(t, 0);
	assert_int_equal(r.status, TRIAGED_FAIL);
	run_free(&r);
	free(t);
	backend_reference.ops->close(NULL);
}

static void
test_reference_descriptor(void **state)
{
	(void)state;
	assert_int_equal(backend_reference.abi_version, TRIAGED_BACKEND_ABI_VERSION);
	assert_string_equal(backend_reference.name, "reference");
	assert_true(backend_reference.flags & TRIAGED_BACKEND_NEEDS_PIXELS);
	assert_true(backend_reference.flags & TRIAGED_BACKEND_THREADSAFE);
	assert_non_null(backend_reference.ops->open);
	assert_non_null(backend_reference.ops->analyze);
	assert_non_null(backend_reference.ops->close);
}

/* Each image of the shared test data as a one-instance study. */
static void
test_reference_runs_on_shared_images(void **state)
{
	static const char *const dirs[] = { "cr", "dx", "mg", "hand", "misc-syntax" };
	char dir[PATH_MAX], p[PATH_MAX + 300];
	int n = 0;
	(void)state;

	for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
		snprintf(dir, sizeof(dir), "%s/testdata/%s", shared, dirs[d]);
		DIR *dp = opendir(dir);
		if (!dp)
			skip();
		struct dirent *e;
		while ((e = readdir(dp))) {
			size_t l = strlen(e->d_name);
			if (l < 5 || strcmp(e->d_name + l - 4, ".dcm") != 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			struct test_study *t = study_new();
			study_add(t, p, NULL, NULL, 0, 0);
			t->st.patient_age_years = 40;
			struct run r = run_study(t, 0);
			check_result(t, &r);
			assert_int_equal(r.res->nmeasurements, 0);      /* findings */
			run_free(&r);
			t->st.route = "bone-age";
			r = run_study(t, 0);
			check_result(t, &r);
			int hand = strcmp(t->body[0], "HAND") == 0;
			assert_int_equal(r.res->nmeasurements, hand ? 1 : 0);
			assert_int_equal(r.res->nfindings, 0);
			run_free(&r);
			free(t);
			n++;
		}
		closedir(dp);
	}
	assert_true(n >= 20);
}

static void
rm_rf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char p[PATH_MAX];

	if (!d) {
		(void)unlink(path);
		return;
	}
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(p, sizeof(p), "%s/%s", path, e->d_name) < sizeof(p))
			rm_rf(p);
	}
	closedir(d);
	(void)rmdir(path);
}

/* Studies of tools/make-studies (small sizes), each folder one study. */
static void
test_reference_runs_on_generated_studies(void **state)
{
	static const char *const kinds[] = {
		"--kind mg-screening --size 832x640",
		"--kind mg-screening --for-processing --size 832x640",
		"--kind cr-chest --size 625x512 --syntax rle",
		"--kind hand-bone-age --size 512x416",
		"--kind dx-wrist --size 576x464",
	};
	char tool[PATH_MAX], tmp[PATH_MAX], cmd[3 * PATH_MAX];
	(void)state;

	snprintf(tool, sizeof(tool), "%s/tools/make-studies", shared);
	if (access(tool, X_OK) < 0 || access("/usr/bin/python3", X_OK) < 0)
		skip();
	snprintf(tmp, sizeof(tmp), "%s/triaged-test-reference-XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(tmp));
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %s --count 1 --seed %zu "
		    "--out %s/%zu >/dev/null 2>&1", tool, kinds[k], k + 1, tmp, k);
		if (system(cmd) != 0) {
			rm_rf(tmp);
			skip();
		}
	}
	int studies = 0, measured = 0;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		char kd[PATH_MAX];
		snprintf(kd, sizeof(kd), "%.2000s/%zu", tmp, k);
		DIR *dk = opendir(kd);
		assert_non_null(dk);
		struct dirent *s;
		while ((s = readdir(dk))) {
			if (s->d_name[0] == '.')
				continue;
			char sd[PATH_MAX];
			snprintf(sd, sizeof(sd), "%.2000s/%.255s", kd, s->d_name);
			DIR *di = opendir(sd);
			assert_non_null(di);
			struct test_study *t = study_new();
			t->st.patient_age_years = 9.25;
			struct dirent *f;
			while ((f = readdir(di))) {
				if (f->d_name[0] == '.')
					continue;
				char fp[PATH_MAX];
				snprintf(fp, sizeof(fp), "%.2000s/%.255s", sd, f->d_name);
				study_add(t, fp, NULL, NULL, 0, 0);
			}
			closedir(di);
			assert_true(t->st.ninstances >= 1);
			struct run r = run_study(t, 0);
			check_result(t, &r);
			assert_int_equal(r.res->nmeasurements, 0);      /* findings */
			run_free(&r);
			t->st.route = "bone-age";
			r = run_study(t, 0);
			check_result(t, &r);
			if (r.res->nmeasurements) {
				assert_true(fabs(r.res->measurements[0].value - 111.0) < 1e-9);
				measured++;
			}
			run_free(&r);
			free(t);
			studies++;
		}
		closedir(dk);
	}
	rm_rf(tmp);
	assert_int_equal(studies, 5);
	assert_int_equal(measured, 1);   /* the hand; the wrist is not a hand */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reference_descriptor, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_reference_one_blob_one_finding, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_reference_flat_image_no_finding, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_reference_mammogram_label, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_reference_is_deterministic, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_reference_hand_reports_chronological_age, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_reference_task_key, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_reference_respects_the_deadline, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_reference_undecodable_images, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_reference_runs_on_shared_images, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_reference_runs_on_generated_studies, each_setup, each_teardown),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
