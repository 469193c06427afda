/*
 * test_backend_kserve.c - the kserve backend: tensor encoding (resize, pad,
 * normalize, datatypes, layouts), box mapping for every box_format and
 * placement, parsing of JSON and binary responses with a table of malformed
 * ones, and the whole backend against tests/e2e/servers/oip_server.py (a
 * real Open Inference Protocol v2 server, started on a free port; skipped
 * when python3 or numpy is missing).
 *
 * The host is a fake (struct triaged_host of this file): config from a
 * key/value table, a synthetic image_load (a bright rectangle on a dark
 * background, downsampled by an integer factor like the real one), and a
 * result builder that records what the backend reports.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "backend_kserve.h"

/* ------------------------------------------------------------------------ */
/* Fake host                                                                */

struct triaged_section {
	const char *const *kv;          /* key, value, ..., NULL */
};

#define MAX_FINDINGS 300

struct fake_finding {
	char     label[80];
	double   score;
	char     scheme[32], value[32], meaning[80];
	char     sop[80];
	uint32_t frame;
	bool     has_box;
	double   box[4];
};

struct triaged_result {
	char     name[80], version[80], vendor[80];
	char     outcome[32];
	double   score;
	char     summary[400];
	size_t   nfindings;
	struct fake_finding f[MAX_FINDINGS];
};

/* The synthetic source image image_load "decodes". */
static struct {
	uint32_t cols, rows;            /* source size */
	uint32_t x0, y0, x1, y1;        /* bright rectangle [x0,x1) x [y0,y1), source pixels */
	int      fail;                  /* image_load returns this (negative) */
	uint32_t last_max_dim;
	int      loads;
} fake_img;

static int verbose;

static void fake_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fake_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (!verbose)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "<%d>", level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static const char *fake_config_get(const struct triaged_section *s, const char *key)
{
	size_t i;

	for (i = 0; s && s->kv[i]; i += 2)
		if (strcmp(s->kv[i], key) == 0)
			return s->kv[i + 1];
	return NULL;
}

static const char *fake_section_name(const struct triaged_section *s)
{
	(void)s;
	return "test-kserve";
}

static int64_t fake_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *fake_alloc(size_t n) { return malloc(n); }
static void fake_free(void *p) { free(p); }

static int fake_image_load(const char *path, uint32_t frame, uint32_t max_dim,
                           struct triaged_image **out, char *err, size_t errlen)
{
	struct triaged_image *img;
	uint32_t f = 1, x, y, big;

	(void)path;
	(void)frame;
	fake_img.last_max_dim = max_dim;
	fake_img.loads++;
	if (fake_img.fail) {
		snprintf(err, errlen, "fake decode failure");
		return fake_img.fail;
	}
	big = fake_img.cols > fake_img.rows ? fake_img.cols : fake_img.rows;
	while (max_dim && big / f > max_dim)
		f++;
	img = calloc(1, sizeof(*img));
	img->width = fake_img.cols / f;
	img->height = fake_img.rows / f;
	img->src_columns = fake_img.cols;
	img->src_rows = fake_img.rows;
	img->scale = f;
	img->pixels = malloc((size_t)img->width * img->height * sizeof(uint16_t));
	for (y = 0; y < img->height; y++)
		for (x = 0; x < img->width; x++) {
			double cx = (x + 0.5) * f, cy = (y + 0.5) * f;
			bool in = cx >= fake_img.x0 && cx < fake_img.x1 && cy >= fake_img.y0 &&
			          cy < fake_img.y1;

			img->pixels[(size_t)y * img->width + x] = in ? 60000 : 4000 + (uint16_t)((x + y) % 7);
		}
	*out = img;
	return 0;
}

static void fake_image_free(struct triaged_image *img)
{
	if (!img)
		return;
	free(img->pixels);
	free(img);
}

static int fake_set_algorithm(struct triaged_result *r, const char *name, const char *version,
                              const char *vendor)
{
	snprintf(r->name, sizeof(r->name), "%s", name ? name : "");
	snprintf(r->version, sizeof(r->version), "%s", version ? version : "");
	snprintf(r->vendor, sizeof(r->vendor), "%s", vendor ? vendor : "");
	return 0;
}

static int fake_set_outcome(struct triaged_result *r, const char *outcome, double score,
                            const char *summary)
{
	snprintf(r->outcome, sizeof(r->outcome), "%s", outcome);
	r->score = score;
	snprintf(r->summary, sizeof(r->summary), "%s", summary ? summary : "");
	return isfinite(score) && score <= 1 ? 0 : -EINVAL;
}

static int fake_add_finding(struct triaged_result *r, const char *label, double score,
                            const struct triaged_code *code, const char *sop,
                            uint32_t frame, const double *box)
{
	struct fake_finding *f;

	if (r->nfindings >= MAX_FINDINGS)
		return -E2BIG;
	if (!isfinite(score) || score < 0 || score > 1)
		return -EINVAL;
	f = &r->f[r->nfindings++];
	memset(f, 0, sizeof(*f));
	snprintf(f->label, sizeof(f->label), "%s", label);
	f->score = score;
	if (code) {
		snprintf(f->scheme, sizeof(f->scheme), "%s", code->scheme);
		snprintf(f->value, sizeof(f->value), "%s", code->value);
		snprintf(f->meaning, sizeof(f->meaning), "%s", code->meaning);
	}
	snprintf(f->sop, sizeof(f->sop), "%s", sop);
	f->frame = frame;
	if (box) {
		f->has_box = true;
		memcpy(f->box, box, sizeof(f->box));
	}
	return 0;
}

static const struct triaged_host fake_host = {
	.abi_version = TRIAGED_BACKEND_ABI_VERSION,
	.size = sizeof(struct triaged_host),
	.log = fake_log,
	.config_get = fake_config_get,
	.section_name = fake_section_name,
	.now_ms = fake_now_ms,
	.alloc = fake_alloc,
	.free = fake_free,
	.image_load = fake_image_load,
	.image_free = fake_image_free,
	.result_set_algorithm = fake_set_algorithm,
	.result_set_outcome = fake_set_outcome,
	.result_add_finding = fake_add_finding,
};

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

static struct kserve_options opts(const char *const *kv)
{
	struct triaged_section s = { kv };
	struct kserve_options o;
	char err[256];
	int r = kserve_options_parse(&fake_host, &s, &o, err, sizeof(err));

	if (r < 0)
		fail_msg("options: %s", err);
	return o;
}

static const char *const base_kv[] = { "url", "http://127.0.0.1:1", "model", "m", NULL };

static void check_close(double got, double want, double tol, const char *what)
{
	if (!(fabs(got - want) <= tol))
		fail_msg("%s: got %.4f, want %.4f (+-%.4f)", what, got, want, tol);
}

/* ------------------------------------------------------------------------ */
/* Datatypes                                                                */

static void test_kserve_dtype_names_and_sizes(void **state)
{
	(void)state;
	assert_int_equal(kserve_dtype_parse("FP32"), KSERVE_FP32);
	assert_int_equal(kserve_dtype_parse("UINT16"), KSERVE_UINT16);
	assert_int_equal(kserve_dtype_parse("BYTES"), KSERVE_BYTES);
	assert_int_equal(kserve_dtype_parse("fp32"), -EINVAL);
	assert_int_equal(kserve_dtype_parse(""), -EINVAL);
	assert_int_equal(kserve_dtype_size(KSERVE_FP16), 2);
	assert_int_equal(kserve_dtype_size(KSERVE_INT64), 8);
	assert_int_equal(kserve_dtype_size(KSERVE_BYTES), 0);
	assert_string_equal(kserve_dtype_name(KSERVE_BF16), "BF16");
}

static void test_kserve_half_and_bfloat16_conversions(void **state)
{
	(void)state;
	assert_int_equal(kserve_f32_to_f16(0.0f), 0x0000);
	assert_int_equal(kserve_f32_to_f16(1.0f), 0x3c00);
	assert_int_equal(kserve_f32_to_f16(0.5f), 0x3800);
	assert_int_equal(kserve_f32_to_f16(-2.0f), 0xc000);
	assert_int_equal(kserve_f32_to_f16(65504.0f), 0x7bff);
	assert_int_equal(kserve_f32_to_f16(65535.0f), 0x7bff);      /* saturates */
	assert_int_equal(kserve_f32_to_f16(5.9604645e-08f), 0x0001); /* smallest subnormal */
	check_close(kserve_f16_to_f32(0x3555), 0.33325195, 1e-7, "f16 1/3");
	check_close(kserve_f16_to_f32(kserve_f32_to_f16(0.1f)), 0.1, 1e-4, "f16 0.1");
	assert_true(isnan(kserve_f16_to_f32(0x7e00)));
	assert_true(isinf(kserve_f16_to_f32(0x7c00)));
	assert_int_equal(kserve_f32_to_bf16(1.0f), 0x3f80);
	check_close(kserve_bf16_to_f32(kserve_f32_to_bf16(0.75f)), 0.75, 0, "bf16 0.75");
	assert_true(isnan(kserve_bf16_to_f32(kserve_f32_to_bf16(NAN))));
}

/* ------------------------------------------------------------------------ */
/* Options                                                                  */

static void test_kserve_options_defaults(void **state)
{
	struct kserve_options o = opts((const char *const[]){
		"url", "http://inference.local:8000///", "model", "mammo_detector", NULL });

	(void)state;
	assert_string_equal(o.url, "http://inference.local:8000");
	assert_string_equal(o.url_shown, "http://inference.local:8000");
	assert_string_equal(o.model, "mammo_detector");
	assert_string_equal(o.version, "");
	assert_int_equal(o.dtype, -1);
	assert_int_equal(o.in_rows, 0);
	assert_int_equal(o.normalize, KSERVE_NORM_UNIT);
	assert_int_equal(o.box_format, KSERVE_BOX_XYXY_NORMALIZED);
	assert_int_equal(o.placement, KSERVE_PLACE_CENTER);
	assert_int_equal(o.noutputs, 3);
	assert_string_equal(o.outputs[2], "labels");
	check_close(o.score_threshold, 0.5, 0, "threshold");
	assert_true(o.binary);
	assert_int_equal(o.timeout_s, 300);
	assert_int_equal(o.max_response, 65536u * 1024);
	assert_int_equal(o.labels.n, 0);
	kserve_options_done(&o);
}

static void test_kserve_options_all_keys(void **state)
{
	struct kserve_options o = opts((const char *const[]){
		"url", "https://triaged:s3cret@gpu:8443/kserve", "model", "m", "model_version", "3",
		"input", "serving_default_input:0", "input_size", "1024x832",
		"input_datatype", "UINT16", "normalize", "minmax", "outputs", "b, s",
		"box_format", "yxyx_normalized", "placement", "top_left",
		"labels", "mass, calcification", "score_threshold", "0.25", "binary", "no",
		"timeout_s", "12", "max_response_kb", "2048", NULL });

	(void)state;
	assert_string_equal(o.version, "3");
	assert_string_equal(o.url, "https://triaged:s3cret@gpu:8443/kserve");
	assert_string_equal(o.url_shown, "https://gpu:8443/kserve");
	assert_string_equal(o.input, "serving_default_input:0");
	assert_int_equal(o.in_rows, 1024);
	assert_int_equal(o.in_cols, 832);
	assert_int_equal(o.dtype, KSERVE_UINT16);
	assert_int_equal(o.normalize, KSERVE_NORM_MINMAX);
	assert_int_equal(o.noutputs, 2);
	assert_string_equal(o.outputs[1], "s");
	assert_int_equal(o.box_format, KSERVE_BOX_YXYX_NORMALIZED);
	assert_int_equal(o.placement, KSERVE_PLACE_TOP_LEFT);
	assert_int_equal(o.labels.n, 2);
	assert_string_equal(o.labels.items[1], "calcification");
	check_close(o.score_threshold, 0.25, 0, "threshold");
	assert_false(o.binary);
	assert_int_equal(o.timeout_s, 12);
	assert_int_equal(o.max_response, 2048u * 1024);
	kserve_options_done(&o);
}

static void test_kserve_options_rejects_bad_values(void **state)
{
	static const struct { const char *key, *value, *why; } bad[] = {
		{ "url", "ftp://x", "not an http" },
		{ "url", "http://", "no host" },
		{ "url", "http:///v2", "no host" },
		{ "url", "http://a b", "space" },
		{ "model", "..", "not . or .." },
		{ "model", "a/b", "letters" },
		{ "model_version", "../1", "model_version" },
		{ "input_size", "1024*832", "ROWSxCOLUMNS" },
		{ "input_size", "0x5", "ROWSxCOLUMNS" },
		{ "input_size", "20000x5", "ROWSxCOLUMNS" },
		{ "input_datatype", "BYTES", "numeric" },
		{ "input_datatype", "float", "numeric" },
		{ "normalize", "0..255", "normalize" },
		{ "box_format", "cxcywh", "box_format" },
		{ "placement", "middle", "placement" },
		{ "outputs", "boxes", "2 or 3" },
		{ "outputs", "a, b, c, d", "2 or 3" },
		{ "outputs", "boxes, sc ores", "tensor name" },
		{ "score_threshold", "nan", "0..1" },
		{ "score_threshold", "1.5", "0..1" },
		{ "binary", "maybe", "yes or no" },
		{ "timeout_s", "0", "timeout_s" },
		{ "max_response_kb", "-1", "max_response_kb" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *kv[] = { "url", "http://h:1", "model", "m", bad[i].key, bad[i].value, NULL };
		struct triaged_section s = { kv };
		struct kserve_options o;
		char err[256] = "";

		if (strcmp(bad[i].key, "url") == 0 || strcmp(bad[i].key, "model") == 0) {
			kv[strcmp(bad[i].key, "url") == 0 ? 1 : 3] = bad[i].value;
			kv[4] = NULL;
		}
		if (kserve_options_parse(&fake_host, &s, &o, err, sizeof(err)) != -EINVAL)
			fail_msg("%s = %s was accepted", bad[i].key, bad[i].value);
		if (!strstr(err, bad[i].why))
			fail_msg("%s = %s: error '%s' lacks '%s'", bad[i].key, bad[i].value, err,
			         bad[i].why);
	}
}

/* ------------------------------------------------------------------------ */
/* Model input                                                              */

static void test_kserve_input_layouts(void **state)
{
	static const struct {
		int rank;
		int64_t shape[4];
		const char *size;               /* input_size or NULL */
		enum kserve_layout layout;
		uint32_t c, rows, cols;
		int64_t sent[4];
	} ok[] = {
		{ 4, { 1, 1, 512, 384 }, NULL, KSERVE_NCHW, 1, 512, 384, { 1, 1, 512, 384 } },
		{ 4, { -1, 1, 512, 384 }, NULL, KSERVE_NCHW, 1, 512, 384, { 1, 1, 512, 384 } },
		{ 4, { 1, 3, 224, 224 }, NULL, KSERVE_NCHW, 3, 224, 224, { 1, 3, 224, 224 } },
		{ 4, { 1, 224, 200, 1 }, NULL, KSERVE_NHWC, 1, 224, 200, { 1, 224, 200, 1 } },
		{ 4, { 1, 224, 200, 3 }, NULL, KSERVE_NHWC, 3, 224, 200, { 1, 224, 200, 3 } },
		{ 4, { -1, 1, -1, -1 }, "640x480", KSERVE_NCHW, 1, 640, 480, { 1, 1, 640, 480 } },
		{ 4, { -1, -1, -1, 3 }, "64x32", KSERVE_NHWC, 3, 64, 32, { 1, 64, 32, 3 } },
		{ 4, { -1, -1, -1, -1 }, "64x32", KSERVE_NCHW, 1, 64, 32, { 1, 1, 64, 32 } },
		{ 3, { 1, 100, 80 }, NULL, KSERVE_NCHW, 1, 100, 80, { 1, 100, 80 } },
		{ 3, { 100, 80, 3 }, NULL, KSERVE_NHWC, 3, 100, 80, { 100, 80, 3 } },
		{ 2, { 100, -1 }, "100x50", KSERVE_NCHW, 1, 100, 50, { 100, 50 } },
		{ 4, { 1, 1, 512, 384 }, "512x384", KSERVE_NCHW, 1, 512, 384, { 1, 1, 512, 384 } },
	};
	size_t i;
	int d;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		const char *kv[] = { "url", "http://h:1", "model", "m", "input_size", ok[i].size, NULL };
		struct kserve_options o;
		struct kserve_input in;
		char err[256] = "";

		if (!ok[i].size)
			kv[4] = NULL;
		o = opts(kv);
		if (kserve_input_resolve(&o, "x", "FP32", ok[i].shape, ok[i].rank, &in, err,
		                         sizeof(err)) < 0)
			fail_msg("case %zu: %s", i, err);
		assert_int_equal(in.layout, ok[i].layout);
		assert_int_equal(in.channels, ok[i].c);
		assert_int_equal(in.rows, ok[i].rows);
		assert_int_equal(in.cols, ok[i].cols);
		for (d = 0; d < ok[i].rank; d++)
			assert_int_equal(in.shape[d], ok[i].sent[d]);
		kserve_options_done(&o);
	}
}

static void test_kserve_input_rejects(void **state)
{
	static const struct {
		int rank;
		int64_t shape[5];
		const char *dtype, *size, *override, *why;
	} bad[] = {
		{ 4, { 1, 1, -1, -1 }, "FP32", NULL, NULL, "set input_size" },
		{ 4, { 1, 1, 512, 512 }, "FP32", "256x256", NULL, "input_size gives rows 256" },
		{ 4, { 4, 1, 512, 512 }, "FP32", NULL, NULL, "fixed batch of 4" },
		{ 4, { 1, 2, 64, 64 }, "FP32", NULL, NULL, "no channel axis" },
		{ 4, { 1, 1, 0, 64 }, "FP32", NULL, NULL, "not within" },
		{ 4, { 1, 1, 20000, 64 }, "FP32", NULL, NULL, "not within" },
		{ 5, { 1, 1, 1, 64, 64 }, "FP32", NULL, NULL, "not an image" },
		{ 1, { 64 }, "FP32", NULL, NULL, "not an image" },
		{ 4, { 1, 1, 64, 64 }, "BYTES", NULL, NULL, "cannot carry an image" },
		{ 4, { 1, 1, 64, 64 }, "BOOL", NULL, NULL, "cannot carry an image" },
		{ 4, { 1, 1, 64, 64 }, "FLOAT", NULL, NULL, "unknown datatype" },
		{ 4, { 1, 3, 16384, 16384 }, "FP32", NULL, NULL, "more than 16777216 elements" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *kv[] = { "url", "http://h:1", "model", "m", "input_size", bad[i].size, NULL };
		struct kserve_options o;
		struct kserve_input in;
		char err[256] = "";

		if (!bad[i].size)
			kv[4] = NULL;
		o = opts(kv);
		if (kserve_input_resolve(&o, "x", bad[i].dtype, bad[i].shape, bad[i].rank, &in, err,
		                         sizeof(err)) >= 0)
			fail_msg("case %zu accepted", i);
		if (!strstr(err, bad[i].why))
			fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].why);
		kserve_options_done(&o);
	}
}

static void test_kserve_input_datatype_override(void **state)
{
	struct kserve_options o = opts((const char *const[]){
		"url", "http://h:1", "model", "m", "input_datatype", "UINT8", NULL });
	int64_t shape[4] = { 1, 1, 8, 8 };
	struct kserve_input in;
	char err[128];

	(void)state;
	assert_int_equal(kserve_input_resolve(&o, "x", "FP32", shape, 4, &in, err, sizeof(err)), 0);
	assert_int_equal(in.dtype, KSERVE_UINT8);
	kserve_options_done(&o);
}

static void test_kserve_metadata_parse(void **state)
{
	static const char meta[] =
		"{\"name\":\"m\",\"versions\":[\"1\",\"2\"],\"platform\":\"onnx_onnxv1\","
		"\"inputs\":[{\"name\":\"aux\",\"datatype\":\"FP32\",\"shape\":[1]},"
		"{\"name\":\"image\",\"datatype\":\"UINT16\",\"shape\":[-1,1,256,-1]}],"
		"\"outputs\":[{\"name\":\"boxes\",\"datatype\":\"FP32\",\"shape\":[-1,4]},"
		"{\"name\":\"scores\",\"datatype\":\"FP32\",\"shape\":[-1]},"
		"{\"name\":\"labels\",\"datatype\":\"INT64\",\"shape\":[-1]}]}";
	struct kserve_options o = opts((const char *const[]){
		"url", "http://h:1", "model", "m", "input", "image", "input_size", "256x200", NULL });
	struct kserve_model m;
	char err[256];

	(void)state;
	if (kserve_metadata_parse(&o, meta, strlen(meta), &m, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_string_equal(m.input.name, "image");
	assert_int_equal(m.input.dtype, KSERVE_UINT16);
	assert_int_equal(m.input.cols, 200);
	assert_string_equal(m.version, "2");
	assert_string_equal(m.platform, "onnx_onnxv1");
	kserve_options_done(&o);

	/* no input named so */
	o = opts((const char *const[]){ "url", "http://h:1", "model", "m", "input", "pixels", NULL });
	assert_int_equal(kserve_metadata_parse(&o, meta, strlen(meta), &m, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no input 'pixels' (inputs: aux, image)"));
	kserve_options_done(&o);

	/* the first input is taken without `input`: [1] is no image */
	o = opts(base_kv);
	assert_true(kserve_metadata_parse(&o, meta, strlen(meta), &m, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "input aux"));
	kserve_options_done(&o);

	/* a configured output the model lacks */
	o = opts((const char *const[]){ "url", "http://h:1", "model", "m", "input", "image",
	                                "input_size", "256x200", "outputs", "boxes, probs", NULL });
	assert_true(kserve_metadata_parse(&o, meta, strlen(meta), &m, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "no output 'probs' (outputs: boxes, scores, labels)"));
	kserve_options_done(&o);

	/* garbage */
	o = opts(base_kv);
	assert_true(kserve_metadata_parse(&o, "[1,2]", 5, &m, err, sizeof(err)) < 0);
	assert_true(kserve_metadata_parse(&o, "{\"inputs\":[]}", 13, &m, err, sizeof(err)) < 0);
	assert_true(kserve_metadata_parse(&o, "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\","
	            "\"shape\":[1,1,1.5,4]}]}", 58, &m, err, sizeof(err)) < 0);
	kserve_options_done(&o);
}

/* ------------------------------------------------------------------------ */
/* Geometry and box mapping                                                 */

static void test_kserve_geometry_center_and_top_left(void **state)
{
	struct kserve_geometry g;

	(void)state;
	/* 500 x 400 (landscape) into 256 x 256: 256 x 205, 25 rows of padding above */
	assert_int_equal(kserve_geometry_init(&g, 256, 256, 500, 400, 2.0, 1000, 800,
	                                      KSERVE_PLACE_CENTER), 0);
	assert_int_equal(g.placed_w, 256);
	assert_int_equal(g.placed_h, 205);
	assert_int_equal(g.off_x, 0);
	assert_int_equal(g.off_y, 25);
	assert_int_equal(kserve_geometry_init(&g, 256, 256, 500, 400, 2.0, 1000, 800,
	                                      KSERVE_PLACE_TOP_LEFT), 0);
	assert_int_equal(g.off_y, 0);
	/* portrait into landscape input: padding left and right */
	assert_int_equal(kserve_geometry_init(&g, 100, 300, 50, 100, 1.0, 0, 0,
	                                      KSERVE_PLACE_CENTER), 0);
	assert_int_equal(g.placed_w, 50);
	assert_int_equal(g.placed_h, 100);
	assert_int_equal(g.off_x, 125);
	assert_int_equal(g.off_y, 0);
	/* upscaling a small image */
	assert_int_equal(kserve_geometry_init(&g, 512, 512, 64, 32, 1.0, 64, 32,
	                                      KSERVE_PLACE_CENTER), 0);
	assert_int_equal(g.placed_w, 512);
	assert_int_equal(g.placed_h, 256);
	assert_int_equal(g.off_y, 128);
	assert_int_equal(kserve_geometry_init(&g, 0, 512, 64, 32, 1.0, 0, 0, 0), -EINVAL);
	assert_int_equal(kserve_geometry_init(&g, 512, 512, 0, 32, 1.0, 0, 0, 0), -EINVAL);
	assert_int_equal(kserve_geometry_init(&g, 512, 512, 64, 32, NAN, 0, 0, 0), -EINVAL);
}

static void test_kserve_box_map_formats(void **state)
{
	struct kserve_geometry g;
	double out[4];
	/* source 1000 x 800, loaded at scale 2 (500 x 400), model 256 x 256:
	 * placed 256 x 205 at (0, 25); 1 model pixel = 500/256 loaded = 3.90625 source
	 * pixels across, 400/205 * 2 = 3.9024 down. Source box (200,100)-(600,500). */
	const double sx = 500.0 / 256 * 2, sy = 400.0 / 205 * 2;
	const double px[4] = { 200 / sx, 25 + 100 / sy, 600 / sx, 25 + 500 / sy };
	const double xyxy[4] = { px[0] / 256, px[1] / 256, px[2] / 256, px[3] / 256 };
	const double yxyx[4] = { xyxy[1], xyxy[0], xyxy[3], xyxy[2] };
	const double swapped[4] = { px[2], px[3], px[0], px[1] };
	const double *in[] = { xyxy, px, yxyx, swapped };
	const enum kserve_box_format fmt[] = { KSERVE_BOX_XYXY_NORMALIZED, KSERVE_BOX_XYXY_PIXELS,
	                                       KSERVE_BOX_YXYX_NORMALIZED, KSERVE_BOX_XYXY_PIXELS };
	size_t i;

	(void)state;
	assert_int_equal(kserve_geometry_init(&g, 256, 256, 500, 400, 2.0, 1000, 800,
	                                      KSERVE_PLACE_CENTER), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(kserve_box_map(&g, fmt[i], in[i], out), 0);
		check_close(out[0], 200, 1e-6, "x0");
		check_close(out[1], 100, 1e-6, "y0");
		check_close(out[2], 600, 1e-6, "x1");
		check_close(out[3], 500, 1e-6, "y1");
	}
	/* the same with top-left placement: no offset to undo */
	assert_int_equal(kserve_geometry_init(&g, 256, 256, 500, 400, 2.0, 1000, 800,
	                                      KSERVE_PLACE_TOP_LEFT), 0);
	{
		const double tl[4] = { 200 / sx, 100 / sy, 600 / sx, 500 / sy };

		assert_int_equal(kserve_box_map(&g, KSERVE_BOX_XYXY_PIXELS, tl, out), 0);
		check_close(out[1], 100, 1e-6, "top-left y0");
		check_close(out[3], 500, 1e-6, "top-left y1");
	}
	/* a box reaching into the padding is cut to the image */
	assert_int_equal(kserve_geometry_init(&g, 256, 256, 500, 400, 2.0, 1000, 800,
	                                      KSERVE_PLACE_CENTER), 0);
	{
		const double pad[4] = { 0, 0, 1, 0.5 };

		assert_int_equal(kserve_box_map(&g, KSERVE_BOX_XYXY_NORMALIZED, pad, out), 0);
		check_close(out[0], 0, 1e-9, "cut x0");
		check_close(out[1], 0, 1e-9, "cut y0");
		check_close(out[2], 1000, 1e-6, "cut x1");
		check_close(out[3], (128 - 25) * sy, 1e-6, "cut y1");
	}
	/* entirely in the padding; empty; not finite */
	{
		const double top[4] = { 0.1, 0.0, 0.5, 0.05 };
		const double empty[4] = { 0.3, 0.3, 0.3, 0.6 };
		const double nan4[4] = { 0.1, NAN, 0.2, 0.3 };
		const double inf4[4] = { 0.1, 0.1, INFINITY, 0.3 };

		assert_int_equal(kserve_box_map(&g, KSERVE_BOX_XYXY_NORMALIZED, top, out), -ERANGE);
		assert_int_equal(kserve_box_map(&g, KSERVE_BOX_XYXY_NORMALIZED, empty, out), -ERANGE);
		assert_int_equal(kserve_box_map(&g, KSERVE_BOX_XYXY_NORMALIZED, nan4, out), -EINVAL);
		assert_int_equal(kserve_box_map(&g, KSERVE_BOX_XYXY_NORMALIZED, inf4, out), -EINVAL);
	}
	/* huge values are clamped, not trusted */
	{
		const double huge[4] = { -1e30, -1e30, 1e30, 1e30 };

		assert_int_equal(kserve_box_map(&g, KSERVE_BOX_XYXY_PIXELS, huge, out), 0);
		check_close(out[2], 1000, 1e-6, "huge x1");
		check_close(out[3], 800, 1e-3, "huge y1");
	}
}

/* ------------------------------------------------------------------------ */
/* Plane (resize, pad, normalize)                                           */

static uint16_t *gradient(uint32_t w, uint32_t h)
{
	uint16_t *p = malloc((size_t)w * h * sizeof(*p));
	uint32_t x, y;

	for (y = 0; y < h; y++)
		for (x = 0; x < w; x++)
			p[(size_t)y * w + x] = (uint16_t)(10000 + 100 * x);
	return p;
}

static void test_kserve_plane_resize_pad_normalize(void **state)
{
	struct kserve_geometry g;
	uint16_t *px;
	float *pl;
	uint32_t x, y;

	(void)state;
	/* 8 x 4 image, value 60000 in its left half, into 4 x 8 (rows x cols):
	 * placed 8 x 4 at rows 0..3 -> no resize; center: 0 rows above (4-4)/2 */
	px = calloc(32, sizeof(*px));
	for (y = 0; y < 4; y++)
		for (x = 0; x < 4; x++)
			px[y * 8 + x] = 60000;
	assert_int_equal(kserve_geometry_init(&g, 8, 8, 8, 4, 1, 0, 0, KSERVE_PLACE_CENTER), 0);
	assert_int_equal(g.off_y, 2);
	assert_int_equal(kserve_plane_make(&g, px, KSERVE_NORM_UNIT, KSERVE_FP32, &pl), 0);
	for (x = 0; x < 8; x++) {
		assert_true(pl[0 * 8 + x] == 0.0f);          /* padding */
		assert_true(pl[7 * 8 + x] == 0.0f);
	}
	check_close(pl[2 * 8 + 0], 60000.0 / 65535, 1e-6, "0..1 bright");
	check_close(pl[2 * 8 + 7], 0, 1e-6, "0..1 dark");
	free(pl);

	assert_int_equal(kserve_plane_make(&g, px, KSERVE_NORM_NONE, KSERVE_FP32, &pl), 0);
	check_close(pl[3 * 8 + 1], 60000, 1e-3, "none bright");
	free(pl);
	assert_int_equal(kserve_plane_make(&g, px, KSERVE_NORM_UNIT, KSERVE_UINT8, &pl), 0);
	check_close(pl[3 * 8 + 1], 233, 0, "uint8 bright");   /* round(60000/65535*255) */
	free(pl);
	assert_int_equal(kserve_plane_make(&g, px, KSERVE_NORM_MINMAX, KSERVE_UINT16, &pl), 0);
	check_close(pl[3 * 8 + 1], 65535, 0, "uint16 minmax bright");
	check_close(pl[3 * 8 + 6], 0, 0, "uint16 minmax dark");
	free(pl);
	assert_int_equal(kserve_plane_make(&g, px, KSERVE_NORM_MINMAX, KSERVE_INT16, &pl), 0);
	check_close(pl[3 * 8 + 1], 32767, 0, "int16 minmax bright");
	free(pl);
	free(px);

	/* downsampling by 4 averages: a 16 x 16 gradient into 4 x 4 */
	px = gradient(16, 16);
	assert_int_equal(kserve_geometry_init(&g, 4, 4, 16, 16, 1, 0, 0, KSERVE_PLACE_CENTER), 0);
	assert_int_equal(kserve_plane_make(&g, px, KSERVE_NORM_NONE, KSERVE_FP32, &pl), 0);
	for (x = 0; x < 4; x++)
		check_close(pl[x], 10000 + 100 * (4 * x + 1.5), 1e-2, "area average");
	free(pl);
	/* minmax over the placed image only (padding is not part of it) */
	assert_int_equal(kserve_geometry_init(&g, 4, 8, 16, 16, 1, 0, 0, KSERVE_PLACE_CENTER), 0);
	assert_int_equal(g.off_x, 2);
	assert_int_equal(kserve_plane_make(&g, px, KSERVE_NORM_MINMAX, KSERVE_FP32, &pl), 0);
	check_close(pl[0 * 8 + 2], 0, 1e-6, "minmax min");
	check_close(pl[0 * 8 + 5], 1, 1e-6, "minmax max");
	check_close(pl[0 * 8 + 0], 0, 0, "padding");
	free(pl);
	free(px);

	/* upscaling 2 x 1 -> 8 x 4 bilinear: monotonic, ends kept */
	px = calloc(2, sizeof(*px));
	px[1] = 65535;
	assert_int_equal(kserve_geometry_init(&g, 4, 8, 2, 1, 1, 0, 0, KSERVE_PLACE_CENTER), 0);
	assert_int_equal(g.placed_w, 8);
	assert_int_equal(g.placed_h, 4);
	assert_int_equal(kserve_plane_make(&g, px, KSERVE_NORM_UNIT, KSERVE_FP32, &pl), 0);
	check_close(pl[0], 0, 1e-6, "left end");
	check_close(pl[7], 1, 1e-6, "right end");
	for (x = 1; x < 8; x++)
		assert_true(pl[x] >= pl[x - 1]);
	check_close(pl[3 * 8 + 4], pl[4], 1e-6, "rows equal");
	free(pl);
	free(px);
}

/* ------------------------------------------------------------------------ */
/* Tensor encoding                                                          */

static void test_kserve_tensor_binary_layouts_and_types(void **state)
{
	/* a 2 x 3 plane (rows x cols) */
	const float plane[6] = { 0, 1, 2, 3, 4, 5 };
	struct kserve_input in = { .dtype = KSERVE_UINT16, .layout = KSERVE_NCHW, .rank = 4,
	                           .channels = 3, .rows = 2, .cols = 3 };
	uint8_t *b;
	size_t n, i;

	(void)state;
	/* NCHW, 3 channels: the plane three times, UINT16 little-endian */
	assert_int_equal(kserve_tensor_binary(&in, plane, &b, &n), 0);
	assert_int_equal(n, 36);
	for (i = 0; i < 18; i++) {
		assert_int_equal(b[2 * i], (uint8_t)(i % 6));
		assert_int_equal(b[2 * i + 1], 0);
	}
	free(b);
	/* NHWC: every pixel three times */
	in.layout = KSERVE_NHWC;
	assert_int_equal(kserve_tensor_binary(&in, plane, &b, &n), 0);
	for (i = 0; i < 18; i++)
		assert_int_equal(b[2 * i], (uint8_t)(i / 3));
	free(b);
	/* FP32 one channel: IEEE little-endian bits */
	in.channels = 1;
	in.dtype = KSERVE_FP32;
	assert_int_equal(kserve_tensor_binary(&in, plane, &b, &n), 0);
	assert_int_equal(n, 24);
	assert_memory_equal(b + 4, "\x00\x00\x80\x3f", 4);   /* 1.0f */
	assert_memory_equal(b + 8, "\x00\x00\x00\x40", 4);   /* 2.0f */
	free(b);
	in.dtype = KSERVE_FP16;
	assert_int_equal(kserve_tensor_binary(&in, plane, &b, &n), 0);
	assert_int_equal(n, 12);
	assert_memory_equal(b + 2, "\x00\x3c", 2);           /* 1.0 half */
	free(b);
	in.dtype = KSERVE_BF16;
	assert_int_equal(kserve_tensor_binary(&in, plane, &b, &n), 0);
	assert_memory_equal(b + 2, "\x80\x3f", 2);           /* 1.0 bfloat16 */
	free(b);
	in.dtype = KSERVE_INT64;
	assert_int_equal(kserve_tensor_binary(&in, plane, &b, &n), 0);
	assert_int_equal(n, 48);
	assert_memory_equal(b + 40, "\x05\0\0\0\0\0\0\0", 8);
	free(b);
	in.dtype = KSERVE_FP64;
	assert_int_equal(kserve_tensor_binary(&in, plane, &b, &n), 0);
	assert_memory_equal(b + 8, "\0\0\0\0\0\0\xf0\x3f", 8);  /* 1.0 double */
	free(b);
	in.dtype = KSERVE_UINT8;
	{
		const float sat[6] = { -5, 300, 255, 0, 1, 2 };

		assert_int_equal(kserve_tensor_binary(&in, sat, &b, &n), 0);
		assert_memory_equal(b, "\x00\xff\xff\x00\x01\x02", 6);
		free(b);
	}
	in.dtype = KSERVE_BYTES;
	assert_int_equal(kserve_tensor_binary(&in, plane, &b, &n), -EINVAL);
}

static void test_kserve_tensor_json(void **state)
{
	const float plane[4] = { 0, 0.5f, 0.1f, 1 };
	struct kserve_input in = { .dtype = KSERVE_FP32, .layout = KSERVE_NCHW, .rank = 4,
	                           .channels = 1, .rows = 2, .cols = 2 };
	const float ints[4] = { 0, 255, 7, 65535 };
	char *j;
	size_t n;

	(void)state;
	assert_int_equal(kserve_tensor_json(&in, plane, &j, &n), 0);
	assert_string_equal(j, "[0,0.5,0.100000001,1]");
	assert_int_equal(n, strlen(j));
	free(j);
	in.dtype = KSERVE_UINT16;
	in.channels = 3;
	in.layout = KSERVE_NHWC;
	assert_int_equal(kserve_tensor_json(&in, ints, &j, &n), 0);
	assert_string_equal(j, "[0,0,0,255,255,255,7,7,7,65535,65535,65535]");
	free(j);
}

/* ------------------------------------------------------------------------ */
/* Responses                                                                */

static const char *const want3[] = { "boxes", "scores", "labels" };

/* Build HEADER + binary parts into a body; returns its length. */
static size_t body_of(char *buf, const char *json, const void *bin, size_t binlen)
{
	size_t n = strlen(json);

	memcpy(buf, json, n);
	if (binlen)
		memcpy(buf + n, bin, binlen);
	return n + binlen;
}

static void test_kserve_response_json(void **state)
{
	static const char body[] =
		"{\"model_name\":\"m\",\"model_version\":\"7\",\"id\":\"r1\",\"outputs\":["
		"{\"name\":\"boxes\",\"datatype\":\"FP32\",\"shape\":[1,2,4],"
		"\"data\":[[[0.1,0.2,0.3,0.4],[0.5,0.5,0.6,0.7]]]},"
		"{\"name\":\"scores\",\"datatype\":\"FP32\",\"shape\":[2],\"data\":[0.3,0.9]},"
		"{\"name\":\"labels\",\"datatype\":\"INT64\",\"shape\":[2,1],\"data\":[[1],[4]]},"
		"{\"name\":\"masks\",\"datatype\":\"UINT8\",\"shape\":[2,2],\"data\":[1,2,3,4]}]}";
	struct kserve_options o = opts((const char *const[]){
		"url", "http://h:1", "model", "m", "labels", "mass, calc", "score_threshold", "0.2",
		NULL });
	struct kserve_response r;
	struct kserve_detection *d;
	char err[256], label[80], code[20];
	size_t n;
	double best;

	(void)state;
	if (kserve_response_parse(body, strlen(body), -1, want3, 3, &r, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_string_equal(r.id, "r1");
	assert_string_equal(r.model_version, "7");
	assert_int_equal(r.ntensors, 4);
	assert_null(kserve_response_find(&r, "masks")->values);   /* not wanted: not decoded */
	assert_int_equal(kserve_detections(&o, &r, &d, &n, &best, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	check_close(best, 0.9, 1e-9, "best");
	check_close(d[0].score, 0.9, 1e-9, "sorted");          /* best first */
	check_close(d[0].box[3], 0.7, 1e-9, "box");
	assert_int_equal(d[0].label, 4);
	kserve_label(&o, &d[0], label, sizeof(label), code, sizeof(code));
	assert_string_equal(label, "class 4");                  /* past the labels list */
	assert_string_equal(code, "CLASS 4");
	kserve_label(&o, &d[1], label, sizeof(label), code, sizeof(code));
	assert_string_equal(label, "calc");
	assert_string_equal(code, "CALC");
	free(d);
	kserve_response_done(&r);
	kserve_options_done(&o);

	/* threshold 0.5 keeps one; without a labels output, label 0 */
	o = opts((const char *const[]){ "url", "http://h:1", "model", "m", "outputs", "boxes,scores",
	                                "labels", "Soft tissue/mass (L)", NULL });
	assert_int_equal(kserve_response_parse(body, strlen(body), -1, want3, 2, &r, err,
	                                       sizeof(err)), 0);
	assert_int_equal(kserve_detections(&o, &r, &d, &n, &best, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(d[0].label, 0);
	kserve_label(&o, &d[0], label, sizeof(label), code, sizeof(code));
	assert_string_equal(label, "Soft tissue/mass (L)");
	assert_string_equal(code, "SOFT TISSUE_MASS");          /* SH: 16 characters */
	free(d);
	kserve_response_done(&r);
	kserve_options_done(&o);
}

static void test_kserve_response_binary(void **state)
{
	/* boxes binary FP32 [2,4], scores JSON, labels binary BYTES */
	const float boxes[8] = { 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.5f, 0.6f, 0.7f };
	char bin[64 + 32], body[1024], head[512];
	struct kserve_options o = opts(base_kv);
	struct kserve_response r;
	struct kserve_detection *d;
	char err[256], label[80], code[20];
	size_t n, len;
	double best;

	(void)state;
	memcpy(bin, boxes, 32);                         /* the test machine is little-endian */
	memcpy(bin + 32, "\x04\0\0\0mass\x05\0\0\0calc.", 17);
	snprintf(head, sizeof(head),
	         "{\"outputs\":[{\"name\":\"boxes\",\"datatype\":\"FP32\",\"shape\":[2,4],"
	         "\"parameters\":{\"binary_data_size\":32}},"
	         "{\"name\":\"scores\",\"datatype\":\"FP64\",\"shape\":[1,2],\"data\":[0.6,0.8]},"
	         "{\"name\":\"labels\",\"datatype\":\"BYTES\",\"shape\":[2],"
	         "\"parameters\":{\"binary_data_size\":17}}]}");
	len = body_of(body, head, bin, 49);
	if (kserve_response_parse(body, len, (long long)strlen(head), want3, 3, &r, err,
	                          sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_true(kserve_response_find(&r, "boxes")->binary);
	assert_int_equal(kserve_detections(&o, &r, &d, &n, &best, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	check_close(d[0].box[1], 0.5, 1e-6, "binary box");
	assert_string_equal(d[0].label_text, "calc.");
	kserve_label(&o, &d[1], label, sizeof(label), code, sizeof(code));
	assert_string_equal(label, "mass");
	assert_string_equal(code, "MASS");
	free(d);
	kserve_response_done(&r);

	/* JSON BYTES labels, INT32 labels in binary, FP16 scores in binary */
	{
		uint16_t s16[2] = { kserve_f32_to_f16(0.75f), kserve_f32_to_f16(0.25f) };
		int32_t l32[2] = { 1, 0 };

		memcpy(bin, s16, 4);
		memcpy(bin + 4, l32, 8);
		snprintf(head, sizeof(head),
		         "{\"outputs\":[{\"name\":\"boxes\",\"datatype\":\"FP32\",\"shape\":[2,4],"
		         "\"data\":[0,0,1,1,0,0,0.5,0.5]},"
		         "{\"name\":\"scores\",\"datatype\":\"FP16\",\"shape\":[2],"
		         "\"parameters\":{\"binary_data_size\":4}},"
		         "{\"name\":\"labels\",\"datatype\":\"INT32\",\"shape\":[2],"
		         "\"parameters\":{\"binary_data_size\":8}}]}");
		len = body_of(body, head, bin, 12);
		if (kserve_response_parse(body, len, (long long)strlen(head), want3, 3, &r, err,
		                          sizeof(err)) < 0)
			fail_msg("%s", err);
		assert_int_equal(kserve_detections(&o, &r, &d, &n, &best, err, sizeof(err)), 0);
		assert_int_equal(n, 1);
		check_close(d[0].score, 0.75, 1e-6, "fp16 score");
		assert_int_equal(d[0].label, 1);
		check_close(best, 0.75, 1e-6, "best");
		free(d);
		kserve_response_done(&r);
	}
	/* no detections at all */
	{
		static const char none[] =
			"{\"outputs\":[{\"name\":\"boxes\",\"datatype\":\"FP32\",\"shape\":[0,4],\"data\":[]},"
			"{\"name\":\"scores\",\"datatype\":\"FP32\",\"shape\":[0],\"data\":[]},"
			"{\"name\":\"labels\",\"datatype\":\"INT64\",\"shape\":[0],\"data\":[]}]}";

		assert_int_equal(kserve_response_parse(none, strlen(none), -1, want3, 3, &r, err,
		                                       sizeof(err)), 0);
		assert_int_equal(kserve_detections(&o, &r, &d, &n, &best, err, sizeof(err)), 0);
		assert_int_equal(n, 0);
		assert_null(d);
		check_close(best, -1, 0, "no best");
		kserve_response_done(&r);
	}
	kserve_options_done(&o);
}

/* A malformed response and the error it must give. BIN_LEN < 0: no binary
 * part and no Inference-Header-Content-Length. */
struct malformed {
	const char *name;
	const char *json;
	const char *bin;
	long        bin_len;
	long long   header_len;             /* 0 = strlen(json), else this value */
	const char *why;                    /* in the parse or detections error */
};

#define B4 "\"name\":\"boxes\",\"datatype\":\"FP32\""
#define S1 "{\"name\":\"scores\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[0.9]}"
#define L1 "{\"name\":\"labels\",\"datatype\":\"INT64\",\"shape\":[1],\"data\":[0]}"
#define BOX1 "{" B4 ",\"shape\":[1,4],\"data\":[0.1,0.1,0.2,0.2]}"

static const struct malformed malformed[] = {
	{ "not json", "<html>busy</html>", NULL, -1, 0, "not a JSON object (starts '<html>busy" },
	{ "json array", "[1,2,3]", NULL, -1, 0, "not a JSON object" },
	{ "truncated json", "{\"outputs\":[{\"name\":", NULL, -1, 0, "not a JSON object" },
	{ "no outputs", "{\"model_name\":\"m\"}", NULL, -1, 0, "\"outputs\" is not an array" },
	{ "empty outputs", "{\"outputs\":[]}", NULL, -1, 0, "\"outputs\" is not an array" },
	{ "id not a string", "{\"id\":5,\"outputs\":[" BOX1 "]}", NULL, -1, 0, "\"id\" is not" },
	{ "output without name", "{\"outputs\":[{\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1]}]}",
	  NULL, -1, 0, "output 0 has no usable name" },
	{ "unknown datatype", "{\"outputs\":[{\"name\":\"boxes\",\"datatype\":\"FLOAT\",\"shape\":[1,4],"
	  "\"data\":[1,2,3,4]}," S1 "," L1 "]}", NULL, -1, 0, "unknown datatype 'FLOAT'" },
	{ "negative dim", "{\"outputs\":[{" B4 ",\"shape\":[-1,4],\"data\":[1,2,3,4]}]}", NULL, -1, 0,
	  "shape dim 0 is not an integer" },
	{ "fractional dim", "{\"outputs\":[{" B4 ",\"shape\":[1.5,4],\"data\":[1,2,3,4]}]}", NULL, -1,
	  0, "shape dim 0" },
	{ "huge shape", "{\"outputs\":[{" B4 ",\"shape\":[100000000,4],\"data\":[1,2,3,4]}]}", NULL,
	  -1, 0, "shape dim 0 is not an integer in 0..67108864" },
	{ "overflowing shape", "{\"outputs\":[{" B4 ",\"shape\":[60000000,60000000,60000000],"
	  "\"data\":[1]}]}", NULL, -1, 0, "more than" },
	{ "too many dims", "{\"outputs\":[{" B4 ",\"shape\":[1,1,1,1,1,1,1,1,1],\"data\":[1]}]}",
	  NULL, -1, 0, "more than 8 dims" },
	{ "shape not array", "{\"outputs\":[{" B4 ",\"shape\":4,\"data\":[1,2,3,4]}]}", NULL, -1, 0,
	  "\"shape\" is not an array" },
	{ "too few values", "{\"outputs\":[{" B4 ",\"shape\":[1,4],\"data\":[1,2,3]}]}", NULL, -1, 0,
	  "holds 3 values, shape [1,4] needs 4" },
	{ "too many values", "{\"outputs\":[{" B4 ",\"shape\":[1,4],\"data\":[1,2,3,4,5]}]}", NULL,
	  -1, 0, "more values than its shape" },
	{ "string in numbers", "{\"outputs\":[{" B4 ",\"shape\":[1,4],\"data\":[1,\"2\",3,4]}]}",
	  NULL, -1, 0, "not a number" },
	{ "null in numbers", "{\"outputs\":[{" B4 ",\"shape\":[1,4],\"data\":[1,null,3,4]}]}", NULL,
	  -1, 0, "not a number" },
	{ "data not array", "{\"outputs\":[{" B4 ",\"shape\":[1,4],\"data\":\"AAAA\"}]}", NULL, -1,
	  0, "\"data\" is not an array" },
	{ "no data", "{\"outputs\":[{" B4 ",\"shape\":[1,4]}]}", NULL, -1, 0,
	  "neither \"data\" nor binary_data_size" },
	{ "deep nesting", "{\"outputs\":[{" B4 ",\"shape\":[1,4],\"data\":[[[[[[[[[[1]]]]]]]]]]}]}",
	  NULL, -1, 0, "nested deeper" },
	{ "binary size without header", "{\"outputs\":[{" B4 ",\"shape\":[1,4],"
	  "\"parameters\":{\"binary_data_size\":16}}]}", NULL, -1, 0, "without Inference-Header" },
	{ "binary size mismatch", "{\"outputs\":[{" B4 ",\"shape\":[1,4],"
	  "\"parameters\":{\"binary_data_size\":12}}]}", "0123456789ab", 12, 0,
	  "binary_data_size 12, but shape [1,4] of FP32 is 16 bytes" },
	{ "binary size beyond body", "{\"outputs\":[{" B4 ",\"shape\":[1,4],"
	  "\"parameters\":{\"binary_data_size\":16}}]}", "0123456789ab", 12, 0,
	  "exceeds the 12 bytes" },
	{ "binary size negative", "{\"outputs\":[{" B4 ",\"shape\":[1,4],"
	  "\"parameters\":{\"binary_data_size\":-16}}]}", "0123456789abcdef", 16, 0,
	  "not a non-negative integer" },
	{ "binary size huge", "{\"outputs\":[{" B4 ",\"shape\":[1,4],"
	  "\"parameters\":{\"binary_data_size\":1e300}}]}", "0123456789abcdef", 16, 0, "exceeds" },
	{ "binary trailing bytes", "{\"outputs\":[{" B4 ",\"shape\":[1,4],"
	  "\"parameters\":{\"binary_data_size\":16}}]}", "0123456789abcdefXY", 18, 0,
	  "2 bytes of binary data after the last" },
	{ "binary and data", "{\"outputs\":[{" B4 ",\"shape\":[1,4],\"data\":[1,2,3,4],"
	  "\"parameters\":{\"binary_data_size\":16}}]}", "0123456789abcdef", 16, 0, "both" },
	{ "header length beyond body", "{\"outputs\":[" BOX1 "]}", "", 0, 100000,
	  "exceeds the" },
	{ "raw binary response", "{\"outputs\":[" BOX1 "]}", "", 0, -2, "raw binary response" },
	{ "bytes truncated length", "{\"outputs\":[{\"name\":\"labels\",\"datatype\":\"BYTES\","
	  "\"shape\":[1],\"parameters\":{\"binary_data_size\":3}}]}", "\x05\0\0", 3, 0,
	  "BYTES element 0 is truncated" },
	{ "bytes overlong element", "{\"outputs\":[{\"name\":\"labels\",\"datatype\":\"BYTES\","
	  "\"shape\":[1],\"parameters\":{\"binary_data_size\":6}}]}", "\x09\0\0\0ab", 6, 0,
	  "claims 9 bytes, 2 are left" },
	{ "bytes extra data", "{\"outputs\":[{\"name\":\"labels\",\"datatype\":\"BYTES\","
	  "\"shape\":[1],\"parameters\":{\"binary_data_size\":7}}]}", "\x02\0\0\0abX", 7, 0,
	  "past its 1 elements" },
	{ "bytes not strings", "{\"outputs\":[{\"name\":\"labels\",\"datatype\":\"BYTES\","
	  "\"shape\":[1],\"data\":[3]}]}", NULL, -1, 0, "non-string" },
	/* detections */
	{ "missing output", "{\"outputs\":[" BOX1 "," S1 "]}", NULL, -1, 0,
	  "no output 'labels'" },
	{ "boxes [N,3]", "{\"outputs\":[{" B4 ",\"shape\":[1,3],\"data\":[1,2,3]}," S1 "," L1 "]}",
	  NULL, -1, 0, "shape [1,3], expected [N,4] or [1,N,4]" },
	{ "boxes [2,1,4]", "{\"outputs\":[{" B4 ",\"shape\":[2,1,4],\"data\":[1,2,3,4,1,2,3,4]},"
	  S1 "," L1 "]}", NULL, -1, 0, "expected [N,4]" },
	{ "boxes BYTES", "{\"outputs\":[{\"name\":\"boxes\",\"datatype\":\"BYTES\",\"shape\":[1,4],"
	  "\"data\":[\"a\",\"b\",\"c\",\"d\"]}," S1 "," L1 "]}", NULL, -1, 0, "datatype BYTES" },
	{ "scores [2,2]", "{\"outputs\":[" BOX1 ",{\"name\":\"scores\",\"datatype\":\"FP32\","
	  "\"shape\":[2,2],\"data\":[1,1,1,1]}," L1 "]}", NULL, -1, 0,
	  "expected [N], [1,N] or [N,1]" },
	{ "scores count", "{\"outputs\":[" BOX1 ",{\"name\":\"scores\",\"datatype\":\"FP32\","
	  "\"shape\":[2],\"data\":[0.5,0.5]}," L1 "]}", NULL, -1, 0, "2 scores for 1 boxes" },
	{ "labels count", "{\"outputs\":[" BOX1 "," S1 ",{\"name\":\"labels\",\"datatype\":\"INT64\","
	  "\"shape\":[0],\"data\":[]}]}", NULL, -1, 0, "0 labels for 1 boxes" },
	{ "score above one", "{\"outputs\":[" BOX1 ",{\"name\":\"scores\",\"datatype\":\"FP32\","
	  "\"shape\":[1],\"data\":[1.7]}," L1 "]}", NULL, -1, 0, "score 1.7 is outside 0..1" },
	{ "score negative", "{\"outputs\":[" BOX1 ",{\"name\":\"scores\",\"datatype\":\"FP32\","
	  "\"shape\":[1],\"data\":[-0.1]}," L1 "]}", NULL, -1, 0, "outside 0..1" },
	{ "score NaN (binary)", "{\"outputs\":[" BOX1 ",{\"name\":\"scores\",\"datatype\":\"FP32\","
	  "\"shape\":[1],\"parameters\":{\"binary_data_size\":4}}," L1 "]}", "\x00\x00\xc0\x7f", 4, 0,
	  "detection 0: score is NaN" },
	{ "score inf (binary fp16)", "{\"outputs\":[" BOX1 ",{\"name\":\"scores\",\"datatype\":"
	  "\"FP16\",\"shape\":[1],\"parameters\":{\"binary_data_size\":2}}," L1 "]}", "\x00\x7c", 2, 0,
	  "score is infinite" },
	{ "box NaN (binary)", "{\"outputs\":[{" B4 ",\"shape\":[1,4],"
	  "\"parameters\":{\"binary_data_size\":16}}," S1 "," L1 "]}",
	  "\0\0\0\0\0\0\0\0\x00\x00\xc0\x7f\0\0\0\0", 16, 0, "box value 2 is NaN" },
	{ "label fractional", "{\"outputs\":[" BOX1 "," S1 ",{\"name\":\"labels\",\"datatype\":"
	  "\"FP32\",\"shape\":[1],\"data\":[2.5]}]}", NULL, -1, 0, "label 2.5 is not an index" },
	{ "label negative", "{\"outputs\":[" BOX1 "," S1 ",{\"name\":\"labels\",\"datatype\":"
	  "\"INT64\",\"shape\":[1],\"data\":[-1]}]}", NULL, -1, 0, "label -1 is not an index" },
	{ "label huge", "{\"outputs\":[" BOX1 "," S1 ",{\"name\":\"labels\",\"datatype\":"
	  "\"INT64\",\"shape\":[1],\"data\":[1e15]}]}", NULL, -1, 0, "is not an index" },
	{ "label text control", "{\"outputs\":[" BOX1 "," S1 ",{\"name\":\"labels\",\"datatype\":"
	  "\"BYTES\",\"shape\":[1],\"data\":[\"a\\u0001b\"]}]}", NULL, -1, 0, "not printable" },
	{ "label text empty", "{\"outputs\":[" BOX1 "," S1 ",{\"name\":\"labels\",\"datatype\":"
	  "\"BYTES\",\"shape\":[1],\"data\":[\"\"]}]}", NULL, -1, 0, "empty" },
	{ "label text bad utf8 (binary)", "{\"outputs\":[" BOX1 "," S1 ",{\"name\":\"labels\","
	  "\"datatype\":\"BYTES\",\"shape\":[1],\"parameters\":{\"binary_data_size\":6}}]}",
	  "\x02\0\0\0\xc3\x28", 6, 0, "not printable UTF-8" },
	{ "label text NUL (binary)", "{\"outputs\":[" BOX1 "," S1 ",{\"name\":\"labels\","
	  "\"datatype\":\"BYTES\",\"shape\":[1],\"parameters\":{\"binary_data_size\":6}}]}",
	  "\x02\0\0\0a\0", 6, 0, "holds a NUL" },
	{ "labels BOOL", "{\"outputs\":[" BOX1 "," S1 ",{\"name\":\"labels\",\"datatype\":"
	  "\"BOOL\",\"shape\":[1],\"data\":[true]}]}", NULL, -1, 0, "datatype BOOL" },
};

static void test_kserve_response_malformed_table(void **state)
{
	struct kserve_options o = opts(base_kv);
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		const struct malformed *m = &malformed[i];
		char body[4096], err[512] = "";
		struct kserve_response r;
		struct kserve_detection *d = NULL;
		size_t len, n;
		long long hl;
		double best;
		int rc;

		len = body_of(body, m->json, m->bin, m->bin_len > 0 ? (size_t)m->bin_len : 0);
		hl = m->bin_len < 0 ? -1 : m->header_len == 0 ? (long long)strlen(m->json) :
		     m->header_len == -2 ? 0 : m->header_len;
		rc = kserve_response_parse(body, len, hl, want3, 3, &r, err, sizeof(err));
		if (rc == 0) {
			rc = kserve_detections(&o, &r, &d, &n, &best, err, sizeof(err));
			free(d);
			kserve_response_done(&r);
		}
		if (rc >= 0)
			fail_msg("malformed '%s' was accepted", m->name);
		if (!strstr(err, m->why))
			fail_msg("malformed '%s': error '%s' lacks '%s'", m->name, err, m->why);
	}
	kserve_options_done(&o);
}

static void test_kserve_response_too_many_detections(void **state)
{
	const size_t n = KSERVE_MAX_DETECTIONS + 1;
	struct kserve_options o = opts(base_kv);
	struct kserve_response r;
	struct kserve_detection *d;
	char head[512], err[256], *body;
	size_t len, hl, cnt;
	double best;

	(void)state;
	snprintf(head, sizeof(head),
	         "{\"outputs\":[{\"name\":\"boxes\",\"datatype\":\"FP32\",\"shape\":[%zu,4],"
	         "\"parameters\":{\"binary_data_size\":%zu}},"
	         "{\"name\":\"scores\",\"datatype\":\"FP32\",\"shape\":[%zu],"
	         "\"parameters\":{\"binary_data_size\":%zu}},"
	         "{\"name\":\"labels\",\"datatype\":\"UINT8\",\"shape\":[%zu],"
	         "\"parameters\":{\"binary_data_size\":%zu}}]}", n, n * 16, n, n * 4, n, n);
	hl = strlen(head);
	len = hl + n * 21;
	body = calloc(1, len);
	memcpy(body, head, hl);
	assert_int_equal(kserve_response_parse(body, len, (long long)hl, want3, 3, &r, err,
	                                       sizeof(err)), 0);
	assert_null(kserve_response_find(&r, "boxes")->values);     /* too big to decode */
	assert_int_equal(kserve_detections(&o, &r, &d, &cnt, &best, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "holds 100001 detections, more than 100000"));
	kserve_response_done(&r);
	free(body);
	kserve_options_done(&o);
}

static void test_kserve_error_text(void **state)
{
	char out[KSERVE_MAX_ERROR + 1], big[1000];
	static const char e1[] = "{\"error\":\"Request for unknown model: 'x' is not found\"}";
	static const char e2[] = "{\"error\":{\"code\":\"unavailable\",\"message\":\"GPU busy\"}}";
	static const char e3[] = "{\"error\":\"bad\\ninput\\u0007 \\u00e9\"}";

	(void)state;
	kserve_error_text(e1, strlen(e1), out, sizeof(out));
	assert_string_equal(out, "Request for unknown model: 'x' is not found");
	kserve_error_text(e2, strlen(e2), out, sizeof(out));
	assert_string_equal(out, "GPU busy");
	kserve_error_text(e3, strlen(e3), out, sizeof(out));
	assert_string_equal(out, "bad input? ??");
	kserve_error_text("Service Unavailable", 19, out, sizeof(out));
	assert_string_equal(out, "Service Unavailable");
	kserve_error_text("", 0, out, sizeof(out));
	assert_string_equal(out, "(empty body)");
	memset(big, 'x', sizeof(big));
	kserve_error_text(big, sizeof(big), out, sizeof(out));
	assert_int_equal(strlen(out), KSERVE_MAX_ERROR);
}

/* ------------------------------------------------------------------------ */
/* Against oip_server.py                                                    */

static const char *python(void)
{
	const char *p = getenv("TRIAGED_PYTHON");

	return p && *p ? p : "/usr/bin/python3";
}

static bool have_python_numpy(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "%s -c 'import numpy' >/dev/null 2>&1", python());
	return access(python(), X_OK) == 0 && system(cmd) == 0;
}

static void server_script(char *buf, size_t n)
{
	const char *src = getenv("TRIAGED_SOURCE_DIR");

	if (src && *src) {
		snprintf(buf, n, "%s/tests/e2e/servers/oip_server.py", src);
	} else {
		/* __FILE__ is .../tests/unit/test_backend_kserve.c */
		snprintf(buf, n, "%s", __FILE__);
		if (strstr(buf, "/tests/unit/"))
			snprintf(strstr(buf, "/tests/unit/"), n - (size_t)(strstr(buf, "/tests/unit/") - buf),
			         "/tests/e2e/servers/oip_server.py");
	}
}

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

struct server {
	pid_t pid;
	int   port;
	bool  tls;                      /* https (args carry --tls-cert/--tls-key) */
	char  url[64];
};

/* Something accepts TCP connections on 127.0.0.1:PORT. */
static bool tcp_open(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static size_t sink(char *p, size_t s, size_t n, void *u)
{
	(void)p;
	(void)u;
	return s * n;
}

/* GET or POST (BODY) a URL; the HTTP status or -1. */
static long http_status(const char *url, const char *body)
{
	CURL *c = curl_easy_init();
	long status = -1;

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	return status;
}

/* Start oip_server.py with ARGS (NULL-terminated); wait until it answers. */
static void server_start(struct server *s, const char *const *args)
{
	char script[4096], port[16], live[128];
	const char *argv[40];
	size_t n = 0, i;
	int tries;

	server_script(script, sizeof(script));
	s->port = free_port();
	snprintf(port, sizeof(port), "%d", s->port);
	snprintf(s->url, sizeof(s->url), "%s://127.0.0.1:%d", s->tls ? "https" : "http", s->port);
	argv[n++] = python();
	argv[n++] = script;
	argv[n++] = port;
	for (i = 0; args && args[i] && n < 38; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		if (!verbose && devnull >= 0) {
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		execv(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	snprintf(live, sizeof(live), "%s/v2/health/live", s->url);
	for (tries = 0; tries < 200; tries++) {
		if (s->tls ? tcp_open(s->port) : http_status(live, NULL) == 200)
			return;
		usleep(50 * 1000);
	}
	fail_msg("oip_server.py did not start on port %d", s->port);
}

static void server_stop(struct server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
	}
	s->pid = 0;
}

static void server_fault(const struct server *s, const char *fault, int count)
{
	char url[128], body[128];

	snprintf(url, sizeof(url), "%s/debug/fault", s->url);
	snprintf(body, sizeof(body), "{\"fault\":\"%s\",\"count\":%d}", fault, count);
	assert_int_equal(http_status(url, body), 200);
}

static int server_setup(void **state)
{
	(void)state;
	verbose = getenv("TEST_VERBOSE") != NULL;
	/* loopback must not go through a proxy of the environment */
	setenv("no_proxy", "127.0.0.1,localhost", 1);
	setenv("NO_PROXY", "127.0.0.1,localhost", 1);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return 0;
}

static int server_teardown(void **state)
{
	(void)state;
	curl_global_cleanup();
	return 0;
}

/* A study of NINST instances, each the fake image. */
static const struct triaged_instance test_instances[] = {
	{ .sop_instance_uid = "1.2.3.4.1", .path = "/nonexistent/1.dcm", .rows = 800,
	  .columns = 1000, .frames = 1 },
	{ .sop_instance_uid = "1.2.3.4.2", .path = "/nonexistent/2.dcm", .rows = 800,
	  .columns = 1000, .frames = 1 },
};

static struct triaged_study test_study(size_t n)
{
	struct triaged_study st = { .job_id = 42, .route = "mammo", .study_uid = "1.2.3",
	                            .ninstances = n, .instances = test_instances };
	return st;
}

/* Open the backend on the server S with extra KV; run analyze; return the
 * status, *R the result, MSG the message. */
static int run_backend(const struct server *s, const char *const *extra, size_t ninst,
                       int64_t budget_ms, struct triaged_result *r, char *msg, size_t msglen,
                       int *ready)
{
	const char *kv[64];
	size_t n = 0, i;
	struct triaged_section sec;
	struct triaged_study st = test_study(ninst);
	void *state = NULL;
	char err[256];
	int rc;

	kv[n++] = "url";
	kv[n++] = s->url;
	kv[n++] = "model";
	kv[n++] = "detector";
	for (i = 0; extra && extra[i] && n < 62; i++)
		kv[n++] = extra[i];
	kv[n] = NULL;
	sec.kv = kv;
	memset(r, 0, sizeof(*r));
	msg[0] = '\0';
	if (backend_kserve.ops->open(&fake_host, &sec, &state, err, sizeof(err)) < 0)
		fail_msg("open: %s", err);
	*ready = backend_kserve.ops->ready(state, err, sizeof(err));
	if (*ready < 0 && verbose)
		fprintf(stderr, "ready: %s\n", err);
	rc = backend_kserve.ops->analyze(state, &st, r, fake_now_ms() + budget_ms, msg, msglen);
	if (verbose)
		fprintf(stderr, "analyze -> %d: %s\n", rc, msg);
	backend_kserve.ops->close(state);
	return rc;
}

static void set_fake_image(void)
{
	memset(&fake_img, 0, sizeof(fake_img));
	fake_img.cols = 1000;
	fake_img.rows = 800;
	fake_img.x0 = 600;
	fake_img.x1 = 720;
	fake_img.y0 = 200;
	fake_img.y1 = 300;
}

/* The finding on the bright rectangle, in source pixels, within TOL. */
static void check_bright_box(const struct fake_finding *f, double tol)
{
	assert_true(f->has_box);
	check_close(f->box[0], fake_img.x0, tol, "x0");
	check_close(f->box[1], fake_img.y0, tol, "y0");
	check_close(f->box[2], fake_img.x1, tol, "x1");
	check_close(f->box[3], fake_img.y1, tol, "y1");
}

#define SKIP_WITHOUT_PYTHON() do { \
	if (!have_python_numpy()) { \
		print_message("python3 with numpy not found (%s): skipped\n", python()); \
		skip(); \
	} } while (0)

static void test_kserve_server_json_and_binary(void **state)
{
	static const char *const modes[] = { "no", "yes" };
	struct triaged_result *r = calloc(1, sizeof(*r));
	struct server s = { 0 };
	char msg[512];
	size_t m;
	int ready, rc;

	(void)state;
	SKIP_WITHOUT_PYTHON();
	set_fake_image();
	server_start(&s, (const char *const[]){ "--shape", "1,1,256,256", "--version", "5", NULL });
	for (m = 0; m < 2; m++) {
		rc = run_backend(&s, (const char *const[]){ "binary", modes[m], "labels", "mass, calc",
		                 NULL }, 2, 20000, r, msg, sizeof(msg), &ready);
		if (rc != TRIAGED_OK)
			fail_msg("binary=%s: %d %s", modes[m], rc, msg);
		assert_int_equal(ready, 0);
		/* max_dim >= the input size: the fake decodes at scale 2 (500 x 400) */
		assert_int_equal(fake_img.last_max_dim, 512);
		assert_string_equal(r->name, "detector");
		assert_string_equal(r->version, "5");
		assert_string_equal(r->vendor, "KServe model");
		assert_string_equal(r->outcome, "positive");
		assert_int_equal(r->nfindings, 2);     /* one per image; the weak ones dropped */
		assert_string_equal(r->f[0].label, "mass");
		assert_string_equal(r->f[0].scheme, "99TRIAGED");
		assert_string_equal(r->f[0].value, "MASS");
		assert_string_equal(r->f[0].meaning, "mass");
		assert_int_equal(r->f[0].frame, 1);
		assert_true(strcmp(r->f[0].sop, "1.2.3.4.1") == 0 || strcmp(r->f[0].sop, "1.2.3.4.2") == 0);
		assert_string_not_equal(r->f[0].sop, r->f[1].sop);
		assert_true(r->f[0].score > 0.8 && r->f[0].score <= 1);
		check_close(r->score, r->f[0].score, 1e-9, "study score");
		/* one model pixel is ~3.9 source pixels */
		check_bright_box(&r->f[0], 8);
		check_bright_box(&r->f[1], 8);
	}
	server_stop(&s);
	free(r);
}

static void test_kserve_server_layouts_and_formats(void **state)
{
	static const struct {
		const char *server[12];
		const char *kv[12];
		double tol;
	} cases[] = {
		/* NHWC 3-channel UINT8, top-left placement, pixel boxes in [1,N,4] */
		{ { "--shape", "1,320,320,3", "--datatype", "UINT8", "--box-format", "xyxy_pixels",
		    "--batch-boxes", NULL },
		  { "box_format", "xyxy_pixels", "placement", "top_left", "binary", "yes", NULL }, 8 },
		/* variable dims from input_size, UINT16 minmax, yxyx, FP32 labels */
		{ { "--shape=-1,1,-1,-1", "--datatype", "UINT16", "--box-format", "yxyx_normalized",
		    "--labels-dtype", "FP32", NULL },
		  { "input_size", "384x448", "normalize", "minmax", "box_format", "yxyx_normalized",
		    "binary", "no", NULL }, 8 },
		/* FP16 in binary, BYTES labels, named outputs */
		{ { "--shape", "1,1,256,256", "--datatype", "FP16", "--labels-dtype", "BYTES",
		    "--label-names", "lesion,artifact", "--outputs", "det_boxes,det_scores,det_classes",
		    NULL },
		  { "outputs", "det_boxes, det_scores, det_classes", "binary", "yes", NULL }, 8 },
		/* BF16 with JSON, normalize none, no labels output */
		{ { "--shape", "1,1,256,256", "--datatype", "BF16", "--outputs", "boxes,scores", NULL },
		  { "outputs", "boxes, scores", "normalize", "none", "binary", "no", "labels", "mass",
		    NULL }, 8 },
	};
	struct triaged_result *r = calloc(1, sizeof(*r));
	struct server s = { 0 };
	char msg[512];
	size_t i;
	int ready, rc;

	(void)state;
	SKIP_WITHOUT_PYTHON();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		set_fake_image();
		server_start(&s, cases[i].server);
		rc = run_backend(&s, cases[i].kv, 1, 20000, r, msg, sizeof(msg), &ready);
		if (rc != TRIAGED_OK)
			fail_msg("case %zu: %d %s", i, rc, msg);
		assert_int_equal(ready, 0);
		assert_int_equal(r->nfindings, 1);
		check_bright_box(&r->f[0], cases[i].tol);
		if (i == 2) {
			assert_string_equal(r->f[0].label, "lesion");
			assert_string_equal(r->f[0].value, "LESION");
		}
		if (i == 3)
			assert_string_equal(r->f[0].label, "mass");
		server_stop(&s);
	}
	free(r);
}

static void test_kserve_server_threshold_and_class_names(void **state)
{
	struct triaged_result *r = calloc(1, sizeof(*r));
	struct server s = { 0 };
	char msg[512];
	int ready, rc;

	(void)state;
	SKIP_WITHOUT_PYTHON();
	set_fake_image();
	server_start(&s, (const char *const[]){ "--shape", "1,1,256,256", "--second-label", "7",
	             NULL });
	/* threshold 0.05 keeps the weak detection too: label 7 is past the list */
	rc = run_backend(&s, (const char *const[]){ "score_threshold", "0.05", "labels", "mass",
	                 NULL }, 1, 20000, r, msg, sizeof(msg), &ready);
	assert_int_equal(rc, TRIAGED_OK);
	assert_int_equal(r->nfindings, 2);
	assert_string_equal(r->f[0].label, "mass");
	assert_string_equal(r->f[1].label, "class 7");
	assert_string_equal(r->f[1].value, "CLASS 7");
	check_close(r->f[1].score, 0.1, 1e-6, "weak score");
	/* threshold 1: nothing kept, negative with the best score */
	rc = run_backend(&s, (const char *const[]){ "score_threshold", "1", NULL }, 1, 20000, r,
	                 msg, sizeof(msg), &ready);
	assert_int_equal(rc, TRIAGED_OK);
	assert_int_equal(r->nfindings, 0);
	assert_string_equal(r->outcome, "negative");
	assert_true(r->score > 0.5 && r->score < 1);
	server_stop(&s);
	free(r);
}

static void test_kserve_server_faults(void **state)
{
	static const struct {
		const char *fault;
		const char *binary;
		int status;
		const char *why;
	} faults[] = {
		{ "500", "no", TRIAGED_RETRY, "HTTP 500 on POST /v2/models/detector/infer: fault injected" },
		{ "503", "yes", TRIAGED_RETRY, "HTTP 503" },
		{ "429", "yes", TRIAGED_RETRY, "HTTP 429" },
		{ "400", "yes", TRIAGED_FAIL, "HTTP 400 on POST /v2/models/detector/infer: fault "
		  "injected: invalid argument ? with a control character" },
		{ "garbage", "no", TRIAGED_FAIL, "malformed inference response: response is not a JSON "
		  "object (starts '<html>" },
		{ "wrong-shape", "no", TRIAGED_FAIL, "expected [N,4] or [1,N,4]" },
		{ "wrong-shape", "yes", TRIAGED_FAIL, "expected [N,4] or [1,N,4]" },
		{ "nan", "yes", TRIAGED_FAIL, "detection 0: score is NaN" },
		{ "inf-box", "yes", TRIAGED_FAIL, "box value 2 is infinite" },
		{ "bad-label", "no", TRIAGED_FAIL, "label 2.5 is not an index" },
		{ "huge-n", "no", TRIAGED_FAIL, "holds 8 values, shape [10000000,4] needs 40000000" },
		{ "huge-n", "yes", TRIAGED_FAIL, "binary_data_size 32, but shape [10000000,4] of FP32 "
		  "is 160000000 bytes" },
		{ "bad-binary-size", "yes", TRIAGED_FAIL, "binary_data_size 12, but shape [2] of FP32 is "
		  "8 bytes" },
		{ "truncated", "yes", TRIAGED_FAIL, "exceeds the" },
		{ "mismatch-id", "no", TRIAGED_FAIL, "the response is for request 'someone-else'" },
		{ "oversized", "yes", TRIAGED_FAIL, "larger than 1024 KiB (max_response_kb)" },
	};
	struct triaged_result *r = calloc(1, sizeof(*r));
	struct server s = { 0 };
	char msg[512];
	size_t i;
	int ready, rc;

	(void)state;
	SKIP_WITHOUT_PYTHON();
	set_fake_image();
	server_start(&s, (const char *const[]){ "--shape", "1,1,128,128", NULL });
	for (i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		server_fault(&s, faults[i].fault, 1);
		rc = run_backend(&s, (const char *const[]){ "binary", faults[i].binary,
		                 "max_response_kb", "1024", NULL }, 1, 20000, r, msg, sizeof(msg),
		                 &ready);
		if (rc != faults[i].status || !strstr(msg, faults[i].why))
			fail_msg("fault %s (binary=%s): status %d '%s', want %d '%s'", faults[i].fault,
			         faults[i].binary, rc, msg, faults[i].status, faults[i].why);
		assert_int_equal(strlen(msg) < 512, 1);
		assert_non_null(strstr(msg, "instance 1.2.3.4.1"));
		/* healthy again after the one fault */
		rc = run_backend(&s, NULL, 1, 20000, r, msg, sizeof(msg), &ready);
		if (rc != TRIAGED_OK)
			fail_msg("after fault %s: %d %s", faults[i].fault, rc, msg);
	}
	server_stop(&s);
	free(r);
}

static void test_kserve_server_readiness_and_metadata(void **state)
{
	struct triaged_result *r = calloc(1, sizeof(*r));
	struct triaged_section sec;
	struct server s = { 0 };
	char msg[512], err[256];
	void *st = NULL;
	int ready, rc;

	(void)state;
	SKIP_WITHOUT_PYTHON();
	set_fake_image();
	server_start(&s, (const char *const[]){ "--shape", "1,1,128,128", "--fault", "not-ready",
	             NULL });
	sec.kv = (const char *const[]){ "url", s.url, "model", "detector", NULL };
	assert_int_equal(backend_kserve.ops->open(&fake_host, &sec, &st, err, sizeof(err)), 0);
	assert_int_equal(backend_kserve.ops->ready(st, err, sizeof(err)), -EAGAIN);
	assert_non_null(strstr(err, "HTTP 503 on GET /v2/health/ready"));
	server_fault(&s, "model-not-ready", 0);
	assert_int_equal(backend_kserve.ops->ready(st, err, sizeof(err)), -EAGAIN);
	assert_non_null(strstr(err, "/v2/models/detector/ready"));
	server_fault(&s, "none", 0);
	assert_int_equal(backend_kserve.ops->ready(st, err, sizeof(err)), 0);
	backend_kserve.ops->close(st);

	/* an unknown model: 404 on ready; the metadata 404 fails the job */
	sec.kv = (const char *const[]){ "url", s.url, "model", "other", NULL };
	assert_int_equal(backend_kserve.ops->open(&fake_host, &sec, &st, err, sizeof(err)), 0);
	assert_int_equal(backend_kserve.ops->ready(st, err, sizeof(err)), -ENOENT);
	backend_kserve.ops->close(st);
	server_fault(&s, "metadata-404", 0);
	rc = run_backend(&s, NULL, 1, 20000, r, msg, sizeof(msg), &ready);
	assert_int_equal(rc, TRIAGED_FAIL);
	assert_non_null(strstr(msg, "model metadata: HTTP 404 on GET /v2/models/detector: Request "
	                       "for unknown model"));
	server_fault(&s, "none", 0);
	/* a configured input or output the model lacks; input_size against a fixed size */
	rc = run_backend(&s, (const char *const[]){ "input", "pixels", NULL }, 1, 20000, r, msg,
	                 sizeof(msg), &ready);
	assert_int_equal(rc, TRIAGED_FAIL);
	assert_non_null(strstr(msg, "no input 'pixels' (inputs: image)"));
	rc = run_backend(&s, (const char *const[]){ "outputs", "boxes, probabilities", NULL }, 1,
	                 20000, r, msg, sizeof(msg), &ready);
	assert_int_equal(rc, TRIAGED_FAIL);
	assert_non_null(strstr(msg, "no output 'probabilities'"));
	rc = run_backend(&s, (const char *const[]){ "input_size", "256x256", NULL }, 1, 20000, r,
	                 msg, sizeof(msg), &ready);
	assert_int_equal(rc, TRIAGED_FAIL);
	assert_non_null(strstr(msg, "input_size gives rows 256, the model's input has 128"));
	/* a datatype the server does not take: its 400 message */
	rc = run_backend(&s, (const char *const[]){ "input_datatype", "UINT8", NULL }, 1, 20000, r,
	                 msg, sizeof(msg), &ready);
	assert_int_equal(rc, TRIAGED_FAIL);
	assert_non_null(strstr(msg, "HTTP 400"));
	assert_non_null(strstr(msg, "datatype UINT8, the model expects FP32"));
	/* a decode failure is the job's failure; ENOMEM is transient */
	fake_img.fail = -EINVAL;
	rc = run_backend(&s, NULL, 1, 20000, r, msg, sizeof(msg), &ready);
	assert_int_equal(rc, TRIAGED_FAIL);
	assert_non_null(strstr(msg, "cannot be decoded: fake decode failure"));
	fake_img.fail = -ENOMEM;
	assert_int_equal(run_backend(&s, NULL, 1, 20000, r, msg, sizeof(msg), &ready), TRIAGED_RETRY);
	fake_img.fail = 0;
	server_stop(&s);
	free(r);
}

static void test_kserve_server_down_and_slow(void **state)
{
	struct triaged_result *r = calloc(1, sizeof(*r));
	struct server s = { 0 };
	char msg[512];
	int ready, rc;
	int64_t t0;

	(void)state;
	SKIP_WITHOUT_PYTHON();
	set_fake_image();
	/* nobody listens */
	s.port = free_port();
	snprintf(s.url, sizeof(s.url), "http://127.0.0.1:%d", s.port);
	rc = run_backend(&s, NULL, 1, 5000, r, msg, sizeof(msg), &ready);
	assert_int_equal(rc, TRIAGED_RETRY);
	assert_int_equal(ready, -EHOSTUNREACH);
	assert_non_null(strstr(msg, "model metadata: GET"));
	assert_non_null(strstr(msg, "onnect"));       /* "Connection refused" / "Couldn't connect" */

	/* slower than the deadline: retried, in time */
	server_start(&s, (const char *const[]){ "--shape", "1,1,128,128", "--slow-s", "3", NULL });
	server_fault(&s, "slow", 1);
	t0 = fake_now_ms();
	rc = run_backend(&s, NULL, 1, 1200, r, msg, sizeof(msg), &ready);
	assert_int_equal(rc, TRIAGED_RETRY);
	assert_non_null(strstr(msg, "timed out after"));
	assert_true(fake_now_ms() - t0 < 2500);
	/* no time at all */
	rc = run_backend(&s, NULL, 1, -1, r, msg, sizeof(msg), &ready);
	assert_int_equal(rc, TRIAGED_RETRY);
	assert_non_null(strstr(msg, "deadline"));
	server_stop(&s);
	free(r);
}

static void test_kserve_server_tls_verified(void **state)
{
	struct triaged_result *r = calloc(1, sizeof(*r));
	struct server s = { .tls = true };
	char dir[] = "/tmp/kserve-tls.XXXXXX", cmd[1024], cert[128], key[128], msg[512];
	int ready, rc;

	(void)state;
	SKIP_WITHOUT_PYTHON();
	if (system("command -v openssl >/dev/null 2>&1") != 0) {
		print_message("openssl not found: skipped\n");
		free(r);
		skip();
	}
	assert_non_null(mkdtemp(dir));
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
	         "/CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s "
	         ">/dev/null 2>&1", key, cert);
	assert_int_equal(system(cmd), 0);
	set_fake_image();
	server_start(&s, (const char *const[]){ "--shape", "1,1,128,128", "--tls-cert", cert,
	             "--tls-key", key, NULL });
	/* a certificate the system does not trust: refused, not retried */
	rc = run_backend(&s, NULL, 1, 20000, r, msg, sizeof(msg), &ready);
	assert_true(ready < 0);
	assert_int_equal(rc, TRIAGED_FAIL);
	assert_non_null(strstr(msg, "https://127.0.0.1:"));
	assert_non_null(strstr(msg, "certificate"));
	/* trusted through ca_file: works */
	rc = run_backend(&s, (const char *const[]){ "ca_file", cert, NULL }, 1, 20000, r, msg,
	                 sizeof(msg), &ready);
	if (rc != TRIAGED_OK)
		fail_msg("https with ca_file: %d %s", rc, msg);
	assert_int_equal(ready, 0);
	assert_int_equal(r->nfindings, 1);
	check_bright_box(&r->f[0], 16);
	server_stop(&s);
	unlink(cert);
	unlink(key);
	rmdir(dir);
	free(r);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_kserve_dtype_names_and_sizes),
		cmocka_unit_test(test_kserve_half_and_bfloat16_conversions),
		cmocka_unit_test(test_kserve_options_defaults),
		cmocka_unit_test(test_kserve_options_all_keys),
		cmocka_unit_test(test_kserve_options_rejects_bad_values),
		cmocka_unit_test(test_kserve_input_layouts),
		cmocka_unit_test(test_kserve_input_rejects),
		cmocka_unit_test(test_kserve_input_datatype_override),
		cmocka_unit_test(test_kserve_metadata_parse),
		cmocka_unit_test(test_kserve_geometry_center_and_top_left),
		cmocka_unit_test(test_kserve_box_map_formats),
		cmocka_unit_test(test_kserve_plane_resize_pad_normalize),
		cmocka_unit_test(test_kserve_tensor_binary_layouts_and_types),
		cmocka_unit_test(test_kserve_tensor_json),
		cmocka_unit_test(test_kserve_response_json),
		cmocka_unit_test(test_kserve_response_binary),
		cmocka_unit_test(test_kserve_response_malformed_table),
		cmocka_unit_test(test_kserve_response_too_many_detections),
		cmocka_unit_test(test_kserve_error_text),
	};
	const struct CMUnitTest served[] = {
		cmocka_unit_test(test_kserve_server_json_and_binary),
		cmocka_unit_test(test_kserve_server_layouts_and_formats),
		cmocka_unit_test(test_kserve_server_threshold_and_class_names),
		cmocka_unit_test(test_kserve_server_faults),
		cmocka_unit_test(test_kserve_server_readiness_and_metadata),
		cmocka_unit_test(test_kserve_server_down_and_slow),
		cmocka_unit_test(test_kserve_server_tls_verified),
	};
	int failed;

	signal(SIGPIPE, SIG_IGN);
	failed = cmocka_run_group_tests_name("kserve (pure)", pure, NULL, NULL);
	failed += cmocka_run_group_tests_name("kserve (oip_server.py)", served, server_setup,
	                                      server_teardown);
	return failed ? 1 : 0;
}
