/*
 * backend_kserve.c - the kserve backend: the Open Inference Protocol v2
 * (KServe, Triton, MLServer, OpenVINO Model Server) over libcurl.
 *
 * DESIGN
 *
 * One state per worker thread (the type is not THREADSAFE): its own CURL
 * easy handle (connections are reused between requests), its own copy of
 * the options and of the model metadata.
 *
 *   open()     parses and checks the section; no network.
 *   ready()    GET {url}/v2/health/ready and the model's .../ready; the HTTP
 *              status alone decides (200 = ready), as servers differ in bodies.
 *   analyze()  on first use (and after the server rejected a request) GETs
 *              the model metadata and resolves the input tensor: the one
 *              named `input` or the first; its datatype (input_datatype
 *              overrides); its layout ([1,C,H,W], [1,H,W,C], [C,H,W],
 *              [H,W,C], [H,W]; C = 1 or 3, gray replicated to 3 channels);
 *              -1 dims filled from input_size. The configured outputs must
 *              exist. Then, for each frame of each instance: host->image_load
 *              (max_dim twice the input's larger side, so we do the final
 *              area-averaging resample ourselves), resize keeping the aspect,
 *              pad, normalize, convert, POST .../infer (JSON, or the binary
 *              tensor extension with binary = yes), parse and validate the
 *              response, map the boxes back to source pixels.
 *   close()    frees everything.
 *
 * Placement: `placement = center` (default, letterbox) or `top_left`
 * (torchvision/MONAI style: pad right and bottom). A box the model reports
 * in input coordinates u (pixels of the padded model input; normalized
 * boxes are multiplied by the input's columns/rows first) is cut to the
 * placed image, then mapped back exactly as the image was placed:
 *     loaded = (u - off) * img_w / placed_w        (undo padding and resize)
 *     source = loaded * img->scale                 (undo the host's downsampling)
 *
 * Values sent (the datatype's domain), from the 16-bit luminance v of the
 * host (0..65535) and x = v / 65535 (normalize = 0..1) or
 * x = (v - min) / (max - min) over the placed image (minmax):
 *     FP16, BF16, FP32, FP64:  x, or v itself with normalize = none;
 *     UINT8 round(255 x), INT8 round(127 x), INT16 round(32767 x),
 *     UINT16, (U)INT32, (U)INT64 round(65535 x)   (normalize = none is 0..1:
 *     the luminance scaled to the integer type's range).
 * Padding is 0.
 *
 * Errors: connection failures, timeouts, 408, 429 and 5xx (but 501) are
 * TRIAGED_RETRY; other 4xx and anything malformed are TRIAGED_FAIL with what
 * was wrong (the server's {"error": ...} text, sanitized, <= 200 chars).
 * Nothing from the server is trusted: sizes, shapes, datatypes, counts,
 * NaN/inf, labels and the response size (max_response_kb) are all checked.
 */
#include "backend_kserve.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#define LOG_ERR     3
#define LOG_WARNING 4
#define LOG_INFO    6
#define LOG_DEBUG   7

#define READY_TIMEOUT_MS    10000   /* each readiness GET */
#define CONNECT_TIMEOUT_MS  10000
#define VENDOR              "KServe model"
#define CODE_SCHEME         "99TRIAGED"

static int errf(char *err, size_t errlen, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Fill ERR (may be NULL) and return R. */
static int errf(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return r;
}

/* ------------------------------------------------------------------------ */
/* Datatypes                                                                */

static const struct {
	const char *name;
	size_t size;
} dtypes[] = {
	[KSERVE_BOOL] = { "BOOL", 1 },     [KSERVE_UINT8] = { "UINT8", 1 },
	[KSERVE_UINT16] = { "UINT16", 2 }, [KSERVE_UINT32] = { "UINT32", 4 },
	[KSERVE_UINT64] = { "UINT64", 8 }, [KSERVE_INT8] = { "INT8", 1 },
	[KSERVE_INT16] = { "INT16", 2 },   [KSERVE_INT32] = { "INT32", 4 },
	[KSERVE_INT64] = { "INT64", 8 },   [KSERVE_FP16] = { "FP16", 2 },
	[KSERVE_BF16] = { "BF16", 2 },     [KSERVE_FP32] = { "FP32", 4 },
	[KSERVE_FP64] = { "FP64", 8 },     [KSERVE_BYTES] = { "BYTES", 0 },
};
#define NDTYPES (sizeof(dtypes) / sizeof(dtypes[0]))

int kserve_dtype_parse(const char *s)
{
	size_t i;

	for (i = 0; s && i < NDTYPES; i++)
		if (strcmp(s, dtypes[i].name) == 0)
			return (int)i;
	return -EINVAL;
}

const char *kserve_dtype_name(enum kserve_dtype t)
{
	return (size_t)t < NDTYPES ? dtypes[t].name : "?";
}

size_t kserve_dtype_size(enum kserve_dtype t)
{
	return (size_t)t < NDTYPES ? dtypes[t].size : 0;
}

static bool dtype_is_float(enum kserve_dtype t)
{
	return t == KSERVE_FP16 || t == KSERVE_BF16 || t == KSERVE_FP32 || t == KSERVE_FP64;
}

uint16_t kserve_f32_to_f16(float f)
{
	uint32_t x, sign, mant, half, rem;
	int32_t exp;

	memcpy(&x, &f, sizeof(x));
	sign = (x >> 16) & 0x8000u;
	mant = x & 0x7fffffu;
	if (((x >> 23) & 0xffu) == 0xffu)               /* inf, NaN */
		return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0));
	exp = (int32_t)((x >> 23) & 0xffu) - 127 + 15;
	if (exp >= 31)                                   /* saturate */
		return (uint16_t)(sign | 0x7bffu);
	if (exp <= 0) {                                  /* subnormal or zero */
		uint32_t shift, mid;

		if (exp < -10)
			return (uint16_t)sign;
		mant |= 0x800000u;
		shift = (uint32_t)(14 - exp);
		half = mant >> shift;
		rem = mant & ((1u << shift) - 1);
		mid = 1u << (shift - 1);
		if (rem > mid || (rem == mid && (half & 1)))
			half++;
		return (uint16_t)(sign | half);
	}
	half = ((uint32_t)exp << 10) | (mant >> 13);
	rem = mant & 0x1fffu;
	if (rem > 0x1000u || (rem == 0x1000u && (half & 1)))
		half++;                                  /* may carry into the exponent */
	if (half >= 0x7c00u)
		half = 0x7bffu;
	return (uint16_t)(sign | half);
}

float kserve_f16_to_f32(uint16_t h)
{
	uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
	float f;

	if (exp == 0)
		f = ldexpf((float)mant, -24);
	else if (exp == 31)
		f = mant ? NAN : INFINITY;
	else
		f = ldexpf((float)(mant | 0x400u), (int)exp - 25);
	return (h & 0x8000u) ? -f : f;
}

uint16_t kserve_f32_to_bf16(float f)
{
	uint32_t x;

	memcpy(&x, &f, sizeof(x));
	if ((x & 0x7fffffffu) > 0x7f800000u)             /* NaN stays NaN */
		return (uint16_t)((x >> 16) | 0x40u);
	x += 0x7fffu + ((x >> 16) & 1u);
	return (uint16_t)(x >> 16);
}

float kserve_bf16_to_f32(uint16_t h)
{
	uint32_t x = (uint32_t)h << 16;
	float f;

	memcpy(&f, &x, sizeof(f));
	return f;
}

/* ------------------------------------------------------------------------ */
/* Little helpers                                                           */

static bool name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

/* A model or version name that is safe in a URL path segment. */
static bool url_name_ok(const char *s)
{
	const char *p;

	if (!*s || strlen(s) > KSERVE_NAME_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (p = s; *p; p++)
		if (!name_char(*p))
			return false;
	return true;
}

static bool tensor_name_ok(const char *s)
{
	const char *p;

	if (!*s || strlen(s) > KSERVE_NAME_MAX)
		return false;
	for (p = s; *p; p++)
		if (!name_char(*p) && *p != ':' && *p != '/')
			return false;
	return true;
}

/* Copy a string of a peer or the config, printable ASCII only. */
static void copy_printable(char *dst, size_t n, const char *src, size_t srclen)
{
	size_t i, o = 0;

	if (!n)
		return;
	for (i = 0; i < srclen && src[i] && o + 1 < n; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c == '\n' || c == '\r' || c == '\t')
			c = ' ';
		dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[o] = '\0';
}

static const char *cfg(const struct triaged_host *h, const struct triaged_section *s,
                       const char *key)
{
	const char *v = h->config_get ? h->config_get(s, key) : NULL;

	return v ? v : "";
}

static bool parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1", NULL };
	static const char *const no[] = { "no", "false", "off", "0", NULL };
	size_t i;

	for (i = 0; yes[i]; i++)
		if (strcasecmp(v, yes[i]) == 0)
			return *out = true, true;
	for (i = 0; no[i]; i++)
		if (strcasecmp(v, no[i]) == 0)
			return *out = false, true;
	return false;
}

static bool parse_long(const char *v, long min, long max, long *out)
{
	char *end;
	long l;

	errno = 0;
	l = strtol(v, &end, 10);
	if (errno || end == v || *end || l < min || l > max)
		return false;
	*out = l;
	return true;
}

/* "ROWSxCOLS", each 1..KSERVE_MAX_DIM */
static bool parse_rows_cols(const char *v, uint32_t *rows, uint32_t *cols)
{
	unsigned long r, c;
	char *end;

	if (*v < '1' || *v > '9')
		return false;
	r = strtoul(v, &end, 10);
	if (*end != 'x' || end[1] < '1' || end[1] > '9')
		return false;
	c = strtoul(end + 1, &end, 10);
	if (*end || r > KSERVE_MAX_DIM || c > KSERVE_MAX_DIM)
		return false;
	*rows = (uint32_t)r;
	*cols = (uint32_t)c;
	return true;
}

/* ------------------------------------------------------------------------ */
/* Options                                                                  */

void kserve_options_done(struct kserve_options *o)
{
	if (!o)
		return;
	config_list_done(&o->labels);
}

int kserve_options_parse(const struct triaged_host *h, const struct triaged_section *s,
                         struct kserve_options *o, char *err, size_t errlen)
{
	struct config_list outs = { 0, NULL };
	const char *v;
	size_t i, n;
	long l;
	double d;
	char *end;
	int r = 0;

	memset(o, 0, sizeof(*o));
	o->dtype = -1;

	v = cfg(h, s, "url");
	if (!*v) {
		r = errf(err, errlen, -EINVAL, "url: missing");
		goto out;
	}
	if (strncasecmp(v, "http://", 7) != 0 && strncasecmp(v, "https://", 8) != 0) {
		r = errf(err, errlen, -EINVAL, "url: '%.64s' is not an http:// or https:// URL", v);
		goto out;
	}
	if (strlen(v) >= sizeof(o->url) || strpbrk(v, " \t\r\n\"\\?#")) {
		r = errf(err, errlen, -EINVAL, "url: '%.64s' is too long or holds a space, "
		         "quote, backslash, query or fragment", v);
		goto out;
	}
	snprintf(o->url, sizeof(o->url), "%s", v);
	n = strlen(o->url);
	while (n > 0 && o->url[n - 1] == '/')
		o->url[--n] = '\0';
	v = o->url + (strncasecmp(o->url, "https://", 8) == 0 ? 8 : 7);
	{
		/* for messages: without user:password@ */
		size_t auth = strcspn(v, "/");
		const char *at = memrchr(v, '@', auth);

		snprintf(o->url_shown, sizeof(o->url_shown), "%.*s%s", (int)(v - o->url), o->url,
		         at ? at + 1 : v);
	}
	if (!*v || *v == '/') {
		v = cfg(h, s, "url");
		r = errf(err, errlen, -EINVAL, "url: '%.64s' has no host", v);
		goto out;
	}

	v = cfg(h, s, "model");
	if (!url_name_ok(v)) {
		r = errf(err, errlen, -EINVAL, "model: '%.64s' must be 1..%d letters, digits, "
		         "'_', '-' or '.' (not . or ..)", v, KSERVE_NAME_MAX);
		goto out;
	}
	snprintf(o->model, sizeof(o->model), "%s", v);

	v = cfg(h, s, "model_version");
	if (*v && !url_name_ok(v)) {
		r = errf(err, errlen, -EINVAL, "model_version: '%.64s' must be letters, digits, "
		         "'_', '-' or '.' (not . or ..)", v);
		goto out;
	}
	snprintf(o->version, sizeof(o->version), "%s", v);

	v = cfg(h, s, "input");
	if (*v && !tensor_name_ok(v)) {
		r = errf(err, errlen, -EINVAL, "input: '%.64s' is not a tensor name", v);
		goto out;
	}
	snprintf(o->input, sizeof(o->input), "%s", v);

	v = cfg(h, s, "input_size");
	if (*v && !parse_rows_cols(v, &o->in_rows, &o->in_cols)) {
		r = errf(err, errlen, -EINVAL, "input_size: '%.32s' must be ROWSxCOLUMNS, each "
		         "1..%d", v, KSERVE_MAX_DIM);
		goto out;
	}

	v = cfg(h, s, "input_datatype");
	if (*v) {
		o->dtype = kserve_dtype_parse(v);
		if (o->dtype < 0 || o->dtype == KSERVE_BOOL || o->dtype == KSERVE_BYTES) {
			r = errf(err, errlen, -EINVAL, "input_datatype: '%.16s' is not a numeric "
			         "datatype (UINT8, UINT16, INT16, FP16, BF16, FP32, FP64, ...)", v);
			goto out;
		}
	}

	v = cfg(h, s, "normalize");
	if (!*v || strcmp(v, "0..1") == 0)
		o->normalize = KSERVE_NORM_UNIT;
	else if (strcasecmp(v, "minmax") == 0)
		o->normalize = KSERVE_NORM_MINMAX;
	else if (strcasecmp(v, "none") == 0)
		o->normalize = KSERVE_NORM_NONE;
	else {
		r = errf(err, errlen, -EINVAL, "normalize: '%.16s' must be 0..1, minmax or none", v);
		goto out;
	}

	v = cfg(h, s, "box_format");
	if (!*v || strcasecmp(v, "xyxy_normalized") == 0)
		o->box_format = KSERVE_BOX_XYXY_NORMALIZED;
	else if (strcasecmp(v, "xyxy_pixels") == 0)
		o->box_format = KSERVE_BOX_XYXY_PIXELS;
	else if (strcasecmp(v, "yxyx_normalized") == 0)
		o->box_format = KSERVE_BOX_YXYX_NORMALIZED;
	else {
		r = errf(err, errlen, -EINVAL, "box_format: '%.32s' must be xyxy_normalized, "
		         "xyxy_pixels or yxyx_normalized", v);
		goto out;
	}

	v = cfg(h, s, "placement");
	if (!*v || strcasecmp(v, "center") == 0)
		o->placement = KSERVE_PLACE_CENTER;
	else if (strcasecmp(v, "top_left") == 0)
		o->placement = KSERVE_PLACE_TOP_LEFT;
	else {
		r = errf(err, errlen, -EINVAL, "placement: '%.16s' must be center or top_left", v);
		goto out;
	}

	v = cfg(h, s, "outputs");
	r = config_list_split(*v ? v : "boxes, scores, labels", &outs);
	if (r < 0) {
		r = errf(err, errlen, r, "outputs: cannot be split");
		goto out;
	}
	if (outs.n < 2 || outs.n > 3) {
		r = errf(err, errlen, -EINVAL, "outputs: give 2 or 3 names (boxes, scores[, labels]), "
		         "not %zu", outs.n);
		goto out;
	}
	for (i = 0; i < outs.n; i++) {
		if (!tensor_name_ok(outs.items[i])) {
			r = errf(err, errlen, -EINVAL, "outputs: '%.64s' is not a tensor name",
			         outs.items[i]);
			goto out;
		}
		snprintf(o->outputs[i], sizeof(o->outputs[i]), "%s", outs.items[i]);
	}
	o->noutputs = outs.n;

	v = cfg(h, s, "labels");
	r = config_list_split(v, &o->labels);
	if (r < 0) {
		r = errf(err, errlen, r, "labels: cannot be split");
		goto out;
	}
	for (i = 0; i < o->labels.n; i++) {
		const char *p;

		if (strlen(o->labels.items[i]) > KSERVE_LABEL_MAX) {
			r = errf(err, errlen, -EINVAL, "labels: '%.64s...' is longer than %d "
			         "characters", o->labels.items[i], KSERVE_LABEL_MAX);
			goto out;
		}
		for (p = o->labels.items[i]; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f) {
				r = errf(err, errlen, -EINVAL, "labels: control character in '%.64s'",
				         o->labels.items[i]);
				goto out;
			}
	}

	v = cfg(h, s, "score_threshold");
	o->score_threshold = 0.5;
	if (*v) {
		errno = 0;
		d = strtod(v, &end);
		if (errno || end == v || *end || !isfinite(d) || d < 0 || d > 1) {
			r = errf(err, errlen, -EINVAL, "score_threshold: '%.32s' must be a number "
			         "in 0..1", v);
			goto out;
		}
		o->score_threshold = d;
	}

	v = cfg(h, s, "binary");
	o->binary = true;
	if (*v && !parse_bool(v, &o->binary)) {
		r = errf(err, errlen, -EINVAL, "binary: '%.16s' must be yes or no", v);
		goto out;
	}

	v = cfg(h, s, "timeout_s");
	o->timeout_s = 300;
	if (*v) {
		if (!parse_long(v, 1, 86400, &l)) {
			r = errf(err, errlen, -EINVAL, "timeout_s: '%.16s' must be 1..86400", v);
			goto out;
		}
		o->timeout_s = (int)l;
	}

	v = cfg(h, s, "max_response_kb");
	o->max_response = (size_t)65536 * 1024;
	if (*v) {
		if (!parse_long(v, 1, 1048576, &l)) {
			r = errf(err, errlen, -EINVAL, "max_response_kb: '%.16s' must be 1..1048576", v);
			goto out;
		}
		o->max_response = (size_t)l * 1024;
	}

	v = cfg(h, s, "ca_file");
	if (strlen(v) >= sizeof(o->ca_file)) {
		r = errf(err, errlen, -EINVAL, "ca_file: too long");
		goto out;
	}
	snprintf(o->ca_file, sizeof(o->ca_file), "%s", v);

	v = cfg(h, s, "algorithm_name");
	copy_printable(o->algorithm_name, sizeof(o->algorithm_name), v, strlen(v));
	v = cfg(h, s, "algorithm_version");
	copy_printable(o->algorithm_version, sizeof(o->algorithm_version), v, strlen(v));
	r = 0;
out:
	config_list_done(&outs);
	if (r < 0)
		kserve_options_done(o);
	return r;
}

/* ------------------------------------------------------------------------ */
/* Model metadata                                                           */

static void shape_text(const int64_t *shape, int rank, char *buf, size_t n)
{
	size_t o = 0;
	int i;

	if (!n)
		return;
	buf[0] = '\0';
	o += (size_t)snprintf(buf + o, n - o, "[");
	for (i = 0; i < rank && o < n; i++)
		o += (size_t)snprintf(buf + o, n - o, "%s%" PRId64, i ? "," : "", shape[i]);
	if (o < n)
		snprintf(buf + o, n - o, "]");
}

/* A dimension of the spatial size: fixed DIM, or -1 filled from WANT. */
static int dim_resolve(int64_t dim, uint32_t want, const char *what, uint32_t *out,
                       char *err, size_t errlen)
{
	if (dim == -1) {
		if (!want)
			return errf(err, errlen, -EINVAL, "the model's input %s is variable (-1): "
			            "set input_size", what);
		*out = want;
		return 0;
	}
	if (dim < 1 || dim > KSERVE_MAX_DIM)
		return errf(err, errlen, -EINVAL, "the model's input %s %" PRId64 " is not "
		            "within 1..%d", what, dim, KSERVE_MAX_DIM);
	if (want && (uint32_t)dim != want)
		return errf(err, errlen, -EINVAL, "input_size gives %s %u, the model's input "
		            "has %" PRId64, what, want, dim);
	*out = (uint32_t)dim;
	return 0;
}

int kserve_input_resolve(const struct kserve_options *o, const char *name,
                         const char *datatype, const int64_t *shape, int rank,
                         struct kserve_input *in, char *err, size_t errlen)
{
	int hi, wi, ci = -1, bi = -1, dt, r;
	int64_t c = 1;
	char st[96];

	memset(in, 0, sizeof(*in));
	shape_text(shape, rank > 0 && rank <= 8 ? rank : 0, st, sizeof(st));
	if (!name || !tensor_name_ok(name))
		return errf(err, errlen, -EINVAL, "the model's input name '%.64s' is not usable",
		            name ? name : "");
	snprintf(in->name, sizeof(in->name), "%s", name);

	if (o->dtype >= 0) {
		dt = o->dtype;
	} else {
		dt = kserve_dtype_parse(datatype);
		if (dt < 0)
			return errf(err, errlen, -EINVAL, "input %s: unknown datatype '%.16s'",
			            name, datatype ? datatype : "");
	}
	if (dt == KSERVE_BOOL || dt == KSERVE_BYTES)
		return errf(err, errlen, -ENOTSUP, "input %s: datatype %s cannot carry an image "
		            "(set input_datatype)", name, kserve_dtype_name((enum kserve_dtype)dt));
	in->dtype = (enum kserve_dtype)dt;

	/* layout: the channel axis is the one holding 1 or 3 */
	switch (rank) {
	case 4:
		bi = 0;
		if (shape[1] == 1 || shape[1] == 3 || (shape[1] == -1 && shape[3] != 1 &&
		    shape[3] != 3))
			ci = 1, hi = 2, wi = 3, in->layout = KSERVE_NCHW;
		else if (shape[3] == 1 || shape[3] == 3 || shape[3] == -1)
			ci = 3, hi = 1, wi = 2, in->layout = KSERVE_NHWC;
		else
			return errf(err, errlen, -ENOTSUP, "input %s: shape %s has no channel axis "
			            "of 1 or 3", name, st);
		break;
	case 3:
		if (shape[0] == 1 || shape[0] == 3 || (shape[0] == -1 && shape[2] != 1 &&
		    shape[2] != 3))
			ci = 0, hi = 1, wi = 2, in->layout = KSERVE_NCHW;
		else if (shape[2] == 1 || shape[2] == 3 || shape[2] == -1)
			ci = 2, hi = 0, wi = 1, in->layout = KSERVE_NHWC;
		else
			return errf(err, errlen, -ENOTSUP, "input %s: shape %s has no channel axis "
			            "of 1 or 3", name, st);
		break;
	case 2:
		hi = 0, wi = 1, in->layout = KSERVE_NCHW;
		break;
	default:
		return errf(err, errlen, -ENOTSUP, "input %s: shape %s is not an image "
		            "([1,C,H,W], [1,H,W,C], [C,H,W], [H,W,C] or [H,W])", name, st);
	}
	if (bi >= 0 && shape[bi] != 1 && shape[bi] != -1)
		return errf(err, errlen, -ENOTSUP, "input %s: shape %s has a fixed batch of "
		            "%" PRId64 "; one image per request is sent", name, st, shape[bi]);
	if (ci >= 0) {
		c = shape[ci] == -1 ? 1 : shape[ci];
		if (c != 1 && c != 3)
			return errf(err, errlen, -ENOTSUP, "input %s: %" PRId64 " channels", name, c);
	}
	if ((r = dim_resolve(shape[hi], o->in_rows, "rows", &in->rows, err, errlen)) < 0 ||
	    (r = dim_resolve(shape[wi], o->in_cols, "columns", &in->cols, err, errlen)) < 0)
		return r;
	if ((uint64_t)in->rows * in->cols * (uint64_t)c > KSERVE_MAX_INPUT)
		return errf(err, errlen, -ENOTSUP, "input %s: %ux%ux%" PRId64 " is more than %u "
		            "elements", name, in->rows, in->cols, c, KSERVE_MAX_INPUT);
	in->channels = (uint32_t)c;
	in->rank = rank;
	if (bi >= 0)
		in->shape[bi] = 1;
	if (ci >= 0)
		in->shape[ci] = c;
	in->shape[hi] = in->rows;
	in->shape[wi] = in->cols;
	return 0;
}

/* SHAPE of a metadata tensor: integers, -1 allowed. */
static int meta_shape(const cJSON *j, int64_t *shape, int *rank)
{
	const cJSON *d;
	int n = 0;

	if (!cJSON_IsArray(j))
		return -EINVAL;
	cJSON_ArrayForEach(d, j) {
		if (n >= KSERVE_MAX_RANK || !cJSON_IsNumber(d) || d->valuedouble != floor(d->valuedouble) ||
		    d->valuedouble < -1 || d->valuedouble > 1e12)
			return -EINVAL;
		shape[n++] = (int64_t)d->valuedouble;
	}
	*rank = n;
	return 0;
}

static const char *json_str(const cJSON *o, const char *key)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(j) ? j->valuestring : NULL;
}

int kserve_metadata_parse(const struct kserve_options *o, const char *json, size_t len,
                          struct kserve_model *m, char *err, size_t errlen)
{
	const cJSON *inputs, *outputs, *versions, *t, *chosen = NULL;
	cJSON *root = NULL;
	char names[256];
	int64_t shape[KSERVE_MAX_RANK];
	int rank, r;
	size_t i, no = 0;

	memset(m, 0, sizeof(*m));
	if (len > KSERVE_MAX_META)
		return errf(err, errlen, -EINVAL, "model metadata larger than %d bytes",
		            KSERVE_MAX_META);
	root = cJSON_ParseWithLength(json, len);
	if (!cJSON_IsObject(root)) {
		r = errf(err, errlen, -EINVAL, "model metadata is not a JSON object");
		goto out;
	}
	inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
	if (!cJSON_IsArray(inputs) || cJSON_GetArraySize(inputs) < 1 ||
	    cJSON_GetArraySize(inputs) > KSERVE_MAX_TENSORS) {
		r = errf(err, errlen, -EINVAL, "model metadata: \"inputs\" is not an array of "
		         "1..%d tensors", KSERVE_MAX_TENSORS);
		goto out;
	}
	names[0] = '\0';
	cJSON_ArrayForEach(t, inputs) {
		const char *n = json_str(t, "name");

		if (!n) {
			r = errf(err, errlen, -EINVAL, "model metadata: an input has no name");
			goto out;
		}
		if (strlen(names) + strlen(n) + 3 < sizeof(names))
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
			         names[0] ? ", " : "", n);
		if (!chosen && (!o->input[0] || strcmp(n, o->input) == 0))
			chosen = t;
	}
	if (!chosen) {
		r = errf(err, errlen, -EINVAL, "the model has no input '%s' (inputs: %.120s)",
		         o->input, names);
		goto out;
	}
	if (meta_shape(cJSON_GetObjectItemCaseSensitive(chosen, "shape"), shape, &rank) < 0) {
		r = errf(err, errlen, -EINVAL, "model metadata: input %.64s: \"shape\" is not an "
		         "array of at most %d integers >= -1", json_str(chosen, "name"),
		         KSERVE_MAX_RANK);
		goto out;
	}
	r = kserve_input_resolve(o, json_str(chosen, "name"), json_str(chosen, "datatype"),
	                         shape, rank, &m->input, err, errlen);
	if (r < 0)
		goto out;

	outputs = cJSON_GetObjectItemCaseSensitive(root, "outputs");
	if (outputs && !cJSON_IsArray(outputs)) {
		r = errf(err, errlen, -EINVAL, "model metadata: \"outputs\" is not an array");
		goto out;
	}
	if (outputs) {
		names[0] = '\0';
		cJSON_ArrayForEach(t, outputs) {
			const char *n = json_str(t, "name");

			if (n && strlen(names) + strlen(n) + 3 < sizeof(names))
				snprintf(names + strlen(names), sizeof(names) - strlen(names),
				         "%s%s", names[0] ? ", " : "", n);
			no++;
		}
		for (i = 0; i < o->noutputs; i++) {
			bool found = false;

			cJSON_ArrayForEach(t, outputs) {
				const char *n = json_str(t, "name");

				if (n && strcmp(n, o->outputs[i]) == 0)
					found = true;
			}
			if (!found) {
				r = errf(err, errlen, -EINVAL, "the model has no output '%s' "
				         "(outputs: %.120s)", o->outputs[i], no ? names : "none");
				goto out;
			}
		}
	}

	versions = cJSON_GetObjectItemCaseSensitive(root, "versions");
	if (cJSON_IsArray(versions) && cJSON_GetArraySize(versions) > 0) {
		const char *v;

		t = cJSON_GetArrayItem(versions, cJSON_GetArraySize(versions) - 1);
		v = cJSON_IsString(t) ? t->valuestring : NULL;
		if (v)
			copy_printable(m->version, sizeof(m->version), v, strlen(v));
	}
	if (json_str(root, "platform"))
		copy_printable(m->platform, sizeof(m->platform), json_str(root, "platform"),
		               strlen(json_str(root, "platform")));
	r = 0;
out:
	cJSON_Delete(root);
	return r;
}

/* ------------------------------------------------------------------------ */
/* Geometry                                                                 */

int kserve_geometry_init(struct kserve_geometry *g, uint32_t in_rows, uint32_t in_cols,
                         uint32_t img_w, uint32_t img_h, double src_scale,
                         uint32_t src_cols, uint32_t src_rows, enum kserve_placement p)
{
	double fit, w, h;

	memset(g, 0, sizeof(*g));
	if (!in_rows || !in_cols || !img_w || !img_h || in_rows > KSERVE_MAX_DIM ||
	    in_cols > KSERVE_MAX_DIM || !isfinite(src_scale) || src_scale <= 0)
		return -EINVAL;
	fit = fmin((double)in_cols / img_w, (double)in_rows / img_h);
	w = round(img_w * fit);
	h = round(img_h * fit);
	g->in_rows = in_rows;
	g->in_cols = in_cols;
	g->img_w = img_w;
	g->img_h = img_h;
	g->placed_w = w < 1 ? 1 : w > in_cols ? in_cols : (uint32_t)w;
	g->placed_h = h < 1 ? 1 : h > in_rows ? in_rows : (uint32_t)h;
	if (p == KSERVE_PLACE_CENTER) {
		g->off_x = (in_cols - g->placed_w) / 2;
		g->off_y = (in_rows - g->placed_h) / 2;
	}
	g->src_scale = src_scale;
	g->src_cols = src_cols;
	g->src_rows = src_rows;
	return 0;
}

static double clampd(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

int kserve_box_map(const struct kserve_geometry *g, enum kserve_box_format f,
                   const double in[4], double out[4])
{
	double x0, y0, x1, y1, t, sx, sy;
	int i;

	for (i = 0; i < 4; i++)
		if (!isfinite(in[i]))
			return -EINVAL;
	switch (f) {
	case KSERVE_BOX_YXYX_NORMALIZED:
		y0 = in[0] * g->in_rows, x0 = in[1] * g->in_cols;
		y1 = in[2] * g->in_rows, x1 = in[3] * g->in_cols;
		break;
	case KSERVE_BOX_XYXY_PIXELS:
		x0 = in[0], y0 = in[1], x1 = in[2], y1 = in[3];
		break;
	case KSERVE_BOX_XYXY_NORMALIZED:
	default:
		x0 = in[0] * g->in_cols, y0 = in[1] * g->in_rows;
		x1 = in[2] * g->in_cols, y1 = in[3] * g->in_rows;
		break;
	}
	if (x0 > x1)
		t = x0, x0 = x1, x1 = t;
	if (y0 > y1)
		t = y0, y0 = y1, y1 = t;
	/* cut to the placed image (drops the padding) */
	x0 = clampd(x0, g->off_x, (double)g->off_x + g->placed_w);
	x1 = clampd(x1, g->off_x, (double)g->off_x + g->placed_w);
	y0 = clampd(y0, g->off_y, (double)g->off_y + g->placed_h);
	y1 = clampd(y1, g->off_y, (double)g->off_y + g->placed_h);
	if (!(x1 > x0) || !(y1 > y0))
		return -ERANGE;
	/* undo padding and resize, then the host's downsampling */
	sx = (double)g->img_w / g->placed_w * g->src_scale;
	sy = (double)g->img_h / g->placed_h * g->src_scale;
	out[0] = (x0 - g->off_x) * sx;
	out[1] = (y0 - g->off_y) * sy;
	out[2] = (x1 - g->off_x) * sx;
	out[3] = (y1 - g->off_y) * sy;
	if (g->src_cols) {
		out[0] = clampd(out[0], 0, g->src_cols);
		out[2] = clampd(out[2], 0, g->src_cols);
	}
	if (g->src_rows) {
		out[1] = clampd(out[1], 0, g->src_rows);
		out[3] = clampd(out[3], 0, g->src_rows);
	}
	if (!(out[2] > out[0]) || !(out[3] > out[1]))
		return -ERANGE;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Resampling: separable, bilinear up, area-averaging down                  */

struct axis {
	uint32_t  taps;                 /* weights per output sample */
	uint32_t *first;                /* first source index per output */
	uint32_t *count;                /* used taps per output */
	float    *w;                    /* out * taps weights */
};

static void axis_done(struct axis *a)
{
	free(a->first);
	free(a->count);
	free(a->w);
	memset(a, 0, sizeof(*a));
}

/* N source samples -> M output samples. */
static int axis_init(struct axis *a, uint32_t n, uint32_t m)
{
	double f = (double)m / n;
	uint32_t j, k;

	memset(a, 0, sizeof(*a));
	a->taps = f >= 1 ? 2 : (uint32_t)ceil(1 / f) + 2;
	a->first = calloc(m, sizeof(*a->first));
	a->count = calloc(m, sizeof(*a->count));
	a->w = calloc((size_t)m * a->taps, sizeof(*a->w));
	if (!a->first || !a->count || !a->w) {
		axis_done(a);
		return -ENOMEM;
	}
	for (j = 0; j < m; j++) {
		float *w = a->w + (size_t)j * a->taps;

		if (f >= 1) {
			double c = (j + 0.5) / f - 0.5, t;
			uint32_t i0;

			if (c < 0)
				c = 0;
			i0 = (uint32_t)floor(c);
			if (i0 >= n - 1) {
				i0 = n - 1;
				t = 0;
			} else {
				t = c - i0;
			}
			a->first[j] = i0;
			a->count[j] = t > 0 ? 2 : 1;
			w[0] = (float)(1 - t);
			w[1] = (float)t;
		} else {
			double lo = j / f, hi = (j + 1) / f, sum = 0;
			uint32_t i = (uint32_t)floor(lo);

			if (hi > n)
				hi = n;
			if (i >= n)
				i = n - 1;
			a->first[j] = i;
			for (k = 0; i + k < n && i + k < hi && k < a->taps; k++) {
				double wt = fmin(hi, i + k + 1.0) - fmax(lo, (double)(i + k));

				w[k] = (float)(wt > 0 ? wt : 0);
				sum += w[k];
			}
			a->count[j] = k ? k : 1;
			if (sum > 0)
				for (k = 0; k < a->count[j]; k++)
					w[k] = (float)(w[k] / sum);
			else
				w[0] = 1;
		}
	}
	return 0;
}

/* Value of luminance V (0..65535) or normalized X (0..1) in DT's domain. */
static float domain_value(enum kserve_dtype dt, enum kserve_normalize norm, double v, double x)
{
	double range;

	if (dtype_is_float(dt))
		return (float)(norm == KSERVE_NORM_NONE ? v : x);
	switch (dt) {
	case KSERVE_UINT8:  range = 255; break;
	case KSERVE_INT8:   range = 127; break;
	case KSERVE_INT16:  range = 32767; break;
	default:            range = 65535; break;
	}
	return (float)round(clampd(x, 0, 1) * range);
}

int kserve_plane_make(const struct kserve_geometry *g, const uint16_t *pixels,
                      enum kserve_normalize norm, enum kserve_dtype dtype, float **plane)
{
	struct axis ax = { 0 }, ay = { 0 };
	float *tmp = NULL, *res = NULL, *out = NULL;
	uint32_t x, y, k, pw, ph;
	double mn = INFINITY, mx = -INFINITY;
	int r;

	*plane = NULL;
	if (!g->img_w || !g->img_h || !g->placed_w || !g->placed_h || !pixels)
		return -EINVAL;
	pw = g->placed_w;
	ph = g->placed_h;
	if ((r = axis_init(&ax, g->img_w, pw)) < 0 || (r = axis_init(&ay, g->img_h, ph)) < 0)
		goto out;
	tmp = malloc((size_t)g->img_h * pw * sizeof(*tmp));
	res = calloc((size_t)ph * pw, sizeof(*res));
	out = calloc((size_t)g->in_rows * g->in_cols, sizeof(*out));
	if (!tmp || !res || !out) {
		r = -ENOMEM;
		goto out;
	}
	for (y = 0; y < g->img_h; y++) {
		const uint16_t *src = pixels + (size_t)y * g->img_w;
		float *dst = tmp + (size_t)y * pw;

		for (x = 0; x < pw; x++) {
			const float *w = ax.w + (size_t)x * ax.taps;
			const uint16_t *s = src + ax.first[x];
			float acc = 0;

			for (k = 0; k < ax.count[x]; k++)
				acc += w[k] * s[k];
			dst[x] = acc;
		}
	}
	for (y = 0; y < ph; y++) {
		const float *w = ay.w + (size_t)y * ay.taps;
		float *dst = res + (size_t)y * pw;

		for (k = 0; k < ay.count[y]; k++) {
			const float *s = tmp + (size_t)(ay.first[y] + k) * pw;

			for (x = 0; x < pw; x++)
				dst[x] += w[k] * s[x];
		}
		for (x = 0; x < pw; x++) {
			mn = fmin(mn, dst[x]);
			mx = fmax(mx, dst[x]);
		}
	}
	for (y = 0; y < ph; y++) {
		const float *src = res + (size_t)y * pw;
		float *dst = out + (size_t)(g->off_y + y) * g->in_cols + g->off_x;

		for (x = 0; x < pw; x++) {
			double v = clampd(src[x], 0, 65535), xn;

			if (norm == KSERVE_NORM_MINMAX)
				xn = mx - mn > 1e-6 ? (v - mn) / (mx - mn) : 0;
			else
				xn = v / 65535.0;
			dst[x] = domain_value(dtype, norm, v, xn);
		}
	}
	*plane = out;
	out = NULL;
	r = 0;
out:
	axis_done(&ax);
	axis_done(&ay);
	free(tmp);
	free(res);
	free(out);
	return r;
}

/* ------------------------------------------------------------------------ */
/* Tensor encoding                                                          */

static size_t input_count(const struct kserve_input *in)
{
	return (size_t)in->rows * in->cols * in->channels;
}

/* Element E (0-based, row-major in the tensor's layout) -> plane index. */
static size_t plane_index(const struct kserve_input *in, size_t e)
{
	size_t hw = (size_t)in->rows * in->cols;

	if (in->layout == KSERVE_NHWC)
		return e / in->channels;
	return e % hw;
}

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* One value of DT as little-endian bytes at P. */
static void encode_value(enum kserve_dtype dt, float v, uint8_t *p)
{
	uint32_t u32;
	uint64_t u64;
	double d;

	switch (dt) {
	case KSERVE_BOOL:
	case KSERVE_UINT8:  p[0] = (uint8_t)clampd(v, 0, 255); break;
	case KSERVE_INT8:   p[0] = (uint8_t)(int8_t)clampd(v, -128, 127); break;
	case KSERVE_UINT16: put_le(p, (uint16_t)clampd(v, 0, 65535), 2); break;
	case KSERVE_INT16:  put_le(p, (uint16_t)(int16_t)clampd(v, -32768, 32767), 2); break;
	case KSERVE_UINT32: put_le(p, (uint32_t)clampd(v, 0, 4294967295.0), 4); break;
	case KSERVE_INT32:  put_le(p, (uint32_t)(int32_t)clampd(v, -2147483648.0, 2147483647.0), 4); break;
	case KSERVE_UINT64: put_le(p, (uint64_t)clampd(v, 0, 1e18), 8); break;
	case KSERVE_INT64:  put_le(p, (uint64_t)(int64_t)clampd(v, -1e18, 1e18), 8); break;
	case KSERVE_FP16:   put_le(p, kserve_f32_to_f16(v), 2); break;
	case KSERVE_BF16:   put_le(p, kserve_f32_to_bf16(v), 2); break;
	case KSERVE_FP32:   memcpy(&u32, &v, 4); put_le(p, u32, 4); break;
	case KSERVE_FP64:   d = v; memcpy(&u64, &d, 8); put_le(p, u64, 8); break;
	case KSERVE_BYTES:  break;
	}
}

int kserve_tensor_binary(const struct kserve_input *in, const float *plane,
                         uint8_t **out, size_t *len)
{
	size_t n = input_count(in), es = kserve_dtype_size(in->dtype), e;
	uint8_t *buf;

	*out = NULL;
	*len = 0;
	if (!n || !es)
		return -EINVAL;
	buf = malloc(n * es);
	if (!buf)
		return -ENOMEM;
	for (e = 0; e < n; e++)
		encode_value(in->dtype, plane[plane_index(in, e)], buf + e * es);
	*out = buf;
	*len = n * es;
	return 0;
}

int kserve_tensor_json(const struct kserve_input *in, const float *plane,
                       char **out, size_t *len)
{
	size_t n = input_count(in), e, cap, o = 0;
	char *buf;

	*out = NULL;
	*len = 0;
	if (!n || !kserve_dtype_size(in->dtype) || in->dtype == KSERVE_BOOL)
		return -EINVAL;
	cap = n * 18 + 3;               /* "%.9g" of [0,1] or an integer, plus ',' */
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	buf[o++] = '[';
	for (e = 0; e < n; e++) {
		float v = plane[plane_index(in, e)];
		int w;

		if (e)
			buf[o++] = ',';
		switch (in->dtype) {
		case KSERVE_FP32:
			w = snprintf(buf + o, cap - o, "%.9g", (double)v);
			break;
		case KSERVE_FP64:
			w = snprintf(buf + o, cap - o, "%.9g", (double)v);
			break;
		case KSERVE_FP16:
			w = snprintf(buf + o, cap - o, "%.5g",
			             (double)kserve_f16_to_f32(kserve_f32_to_f16(v)));
			break;
		case KSERVE_BF16:
			w = snprintf(buf + o, cap - o, "%.4g",
			             (double)kserve_bf16_to_f32(kserve_f32_to_bf16(v)));
			break;
		default:
			w = snprintf(buf + o, cap - o, "%.0f", (double)v);
			break;
		}
		if (w < 0 || (size_t)w >= cap - o - 2) {
			free(buf);
			return -EOVERFLOW;
		}
		o += (size_t)w;
	}
	buf[o++] = ']';
	buf[o] = '\0';
	*out = buf;
	*len = o;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Responses                                                                */

void kserve_response_done(struct kserve_response *r)
{
	size_t i, j;

	if (!r)
		return;
	for (i = 0; r->tensors && i < r->ntensors; i++) {
		struct kserve_tensor *t = &r->tensors[i];

		free(t->values);
		for (j = 0; t->strings && j < t->count; j++)
			free(t->strings[j]);
		free(t->strings);
	}
	free(r->tensors);
	memset(r, 0, sizeof(*r));
}

const struct kserve_tensor *kserve_response_find(const struct kserve_response *r,
                                                 const char *name)
{
	size_t i;

	for (i = 0; i < r->ntensors; i++)
		if (strcmp(r->tensors[i].name, name) == 0)
			return &r->tensors[i];
	return NULL;
}

/* Valid UTF-8 of N bytes without control characters. */
static bool utf8_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	while (p < end) {
		int k, i;

		if (*p < 0x20 || *p == 0x7f)
			return false;
		k = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 :
		    (*p & 0xf8) == 0xf0 ? 3 : -1;
		if (k < 0 || (k == 1 && *p < 0xc2) || end - p <= k)
			return false;
		for (i = 1; i <= k; i++)
			if ((p[i] & 0xc0) != 0x80)
				return false;
		p += k + 1;
	}
	return true;
}

/* Largest tensor we decode into doubles (boxes of the most detections). */
#define DECODE_MAX ((size_t)KSERVE_MAX_DETECTIONS * 4)

struct walk {
	struct kserve_tensor *t;
	size_t   n;                     /* leaves seen */
	bool     decode;
	const char *why;                /* first problem */
};

/* Flatten the nested JSON array A (row-major) into W. */
static void walk_data(const cJSON *a, int depth, struct walk *w)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, a) {
		if (w->why)
			return;
		if (cJSON_IsArray(e)) {
			if (depth >= KSERVE_MAX_RANK) {
				w->why = "is nested deeper than its shape";
				return;
			}
			walk_data(e, depth + 1, w);
			continue;
		}
		if (w->n >= w->t->count) {
			w->why = "holds more values than its shape";
			return;
		}
		if (w->t->dtype == KSERVE_BYTES) {
			if (!cJSON_IsString(e)) {
				w->why = "holds a non-string value (datatype BYTES)";
				return;
			}
			if (w->decode) {
				w->t->strings[w->n] = strdup(e->valuestring);
				if (!w->t->strings[w->n]) {
					w->why = "cannot be copied (out of memory)";
					return;
				}
			}
		} else if (cJSON_IsNumber(e)) {
			if (w->decode)
				w->t->values[w->n] = e->valuedouble;
		} else if (cJSON_IsBool(e) && w->t->dtype == KSERVE_BOOL) {
			if (w->decode)
				w->t->values[w->n] = cJSON_IsTrue(e) ? 1 : 0;
		} else {
			w->why = "holds a value that is not a number";
			return;
		}
		w->n++;
	}
}

/* Decode the binary tensor T from P (SIZE bytes, checked by the caller for
 * numeric types). BYTES: count length-prefixed strings filling SIZE exactly. */
static int binary_decode(struct kserve_tensor *t, const uint8_t *p, size_t size, bool decode,
                         char *err, size_t errlen)
{
	size_t es = kserve_dtype_size(t->dtype), i, off = 0;

	if (t->dtype == KSERVE_BYTES) {
		for (i = 0; i < t->count; i++) {
			uint32_t n;

			if (size - off < 4)
				return errf(err, errlen, -EINVAL, "output %s: BYTES element %zu is "
				            "truncated", t->name, i);
			n = (uint32_t)get_le(p + off, 4);
			off += 4;
			if (n > size - off)
				return errf(err, errlen, -EINVAL, "output %s: BYTES element %zu claims "
				            "%u bytes, %zu are left", t->name, i, n, size - off);
			if (decode) {
				t->strings[i] = malloc((size_t)n + 1);
				if (!t->strings[i])
					return errf(err, errlen, -ENOMEM, "out of memory");
				memcpy(t->strings[i], p + off, n);
				t->strings[i][n] = '\0';
				if (memchr(p + off, '\0', n))
					return errf(err, errlen, -EINVAL, "output %s: BYTES element %zu "
					            "holds a NUL", t->name, i);
			}
			off += n;
		}
		if (off != size)
			return errf(err, errlen, -EINVAL, "output %s: %zu bytes of BYTES data "
			            "past its %zu elements", t->name, size - off, t->count);
		return 0;
	}
	if (!decode)
		return 0;
	for (i = 0; i < t->count; i++) {
		const uint8_t *q = p + i * es;
		uint64_t u = get_le(q, es);
		double v;

		switch (t->dtype) {
		case KSERVE_BOOL:   v = u ? 1 : 0; break;
		case KSERVE_UINT8: case KSERVE_UINT16: case KSERVE_UINT32: case KSERVE_UINT64:
			v = (double)u; break;
		case KSERVE_INT8:   v = (int8_t)u; break;
		case KSERVE_INT16:  v = (int16_t)u; break;
		case KSERVE_INT32:  v = (int32_t)u; break;
		case KSERVE_INT64:  v = (double)(int64_t)u; break;
		case KSERVE_FP16:   v = kserve_f16_to_f32((uint16_t)u); break;
		case KSERVE_BF16:   v = kserve_bf16_to_f32((uint16_t)u); break;
		case KSERVE_FP32: {
			uint32_t u32 = (uint32_t)u;
			float f;

			memcpy(&f, &u32, 4);
			v = f;
			break;
		}
		case KSERVE_FP64:   memcpy(&v, &u, 8); break;
		default:            v = NAN; break;
		}
		t->values[i] = v;
	}
	return 0;
}

static bool wanted(const char *name, const char *const *want, size_t nwant)
{
	size_t i;

	for (i = 0; i < nwant; i++)
		if (want[i] && strcmp(want[i], name) == 0)
			return true;
	return false;
}

/* One output object O (index I) into T; binary data at BIN + *OFF. */
static int output_parse(const cJSON *o, size_t i, struct kserve_tensor *t,
                        const uint8_t *bin, size_t binlen, bool have_bin, size_t *off,
                        const char *const *want, size_t nwant, char *err, size_t errlen)
{
	const cJSON *name, *dt, *shape, *d, *params, *bds, *data;
	char st[96];
	size_t es, k;
	bool decode;
	int r;

	name = cJSON_GetObjectItemCaseSensitive(o, "name");
	if (!cJSON_IsObject(o) || !cJSON_IsString(name) || !name->valuestring[0] ||
	    strlen(name->valuestring) > KSERVE_NAME_MAX)
		return errf(err, errlen, -EINVAL, "output %zu has no usable name", i);
	copy_printable(t->name, sizeof(t->name), name->valuestring, strlen(name->valuestring));

	dt = cJSON_GetObjectItemCaseSensitive(o, "datatype");
	r = cJSON_IsString(dt) ? kserve_dtype_parse(dt->valuestring) : -EINVAL;
	if (r < 0)
		return errf(err, errlen, -EINVAL, "output %s: unknown datatype '%.16s'", t->name,
		            cJSON_IsString(dt) ? dt->valuestring : "");
	t->dtype = (enum kserve_dtype)r;
	es = kserve_dtype_size(t->dtype);

	shape = cJSON_GetObjectItemCaseSensitive(o, "shape");
	if (!cJSON_IsArray(shape))
		return errf(err, errlen, -EINVAL, "output %s: \"shape\" is not an array", t->name);
	t->count = 1;
	cJSON_ArrayForEach(d, shape) {
		if (t->rank >= KSERVE_MAX_RANK)
			return errf(err, errlen, -EINVAL, "output %s: shape has more than %d dims",
			            t->name, KSERVE_MAX_RANK);
		if (!cJSON_IsNumber(d) || d->valuedouble != floor(d->valuedouble) ||
		    d->valuedouble < 0 || d->valuedouble > KSERVE_MAX_ELEMENTS)
			return errf(err, errlen, -EINVAL, "output %s: shape dim %d is not an "
			            "integer in 0..%u", t->name, t->rank, KSERVE_MAX_ELEMENTS);
		t->shape[t->rank] = (int64_t)d->valuedouble;
		if (t->shape[t->rank] && t->count > KSERVE_MAX_ELEMENTS / (size_t)t->shape[t->rank])
			return errf(err, errlen, -EINVAL, "output %s: shape holds more than %u "
			            "elements", t->name, KSERVE_MAX_ELEMENTS);
		t->count *= (size_t)t->shape[t->rank];
		t->rank++;
	}
	shape_text(t->shape, t->rank, st, sizeof(st));

	decode = wanted(t->name, want, nwant) && t->count <= DECODE_MAX;
	if (decode && t->count) {
		if (t->dtype == KSERVE_BYTES)
			t->strings = calloc(t->count, sizeof(*t->strings));
		else
			t->values = calloc(t->count, sizeof(*t->values));
		if (!t->strings && !t->values)
			return errf(err, errlen, -ENOMEM, "out of memory");
	}

	params = cJSON_GetObjectItemCaseSensitive(o, "parameters");
	if (params && !cJSON_IsObject(params))
		return errf(err, errlen, -EINVAL, "output %s: \"parameters\" is not an object",
		            t->name);
	bds = params ? cJSON_GetObjectItemCaseSensitive(params, "binary_data_size") : NULL;
	data = cJSON_GetObjectItemCaseSensitive(o, "data");

	if (bds) {
		size_t size;

		if (data)
			return errf(err, errlen, -EINVAL, "output %s: both \"data\" and "
			            "binary_data_size", t->name);
		if (!have_bin)
			return errf(err, errlen, -EINVAL, "output %s: binary_data_size without "
			            "Inference-Header-Content-Length", t->name);
		if (!cJSON_IsNumber(bds) || bds->valuedouble != floor(bds->valuedouble) ||
		    bds->valuedouble < 0)
			return errf(err, errlen, -EINVAL, "output %s: binary_data_size is not a "
			            "non-negative integer", t->name);
		if (bds->valuedouble > (double)(binlen - *off))
			return errf(err, errlen, -EINVAL, "output %s: binary_data_size %.0f exceeds "
			            "the %zu bytes of binary data left in the response", t->name,
			            bds->valuedouble, binlen - *off);
		size = (size_t)bds->valuedouble;
		if (t->dtype != KSERVE_BYTES && size != t->count * es)
			return errf(err, errlen, -EINVAL, "output %s: binary_data_size %zu, but "
			            "shape %s of %s is %zu bytes", t->name, size, st,
			            kserve_dtype_name(t->dtype), t->count * es);
		t->binary = true;
		r = binary_decode(t, bin + *off, size, decode, err, errlen);
		if (r < 0)
			return r;
		*off += size;
		return 0;
	}
	if (!data)
		return errf(err, errlen, -EINVAL, "output %s: neither \"data\" nor "
		            "binary_data_size", t->name);
	if (!cJSON_IsArray(data))
		return errf(err, errlen, -EINVAL, "output %s: \"data\" is not an array", t->name);
	{
		struct walk w = { .t = t, .decode = decode };

		walk_data(data, 1, &w);
		if (w.why && strstr(w.why, "memory"))
			return errf(err, errlen, -ENOMEM, "out of memory");
		if (w.why)
			return errf(err, errlen, -EINVAL, "output %s: \"data\" %s", t->name, w.why);
		if (w.n != t->count)
			return errf(err, errlen, -EINVAL, "output %s: \"data\" holds %zu values, "
			            "shape %s needs %zu", t->name, w.n, st, t->count);
	}
	for (k = 0; decode && t->dtype == KSERVE_BYTES && k < t->count; k++)
		if (!t->strings[k])
			return errf(err, errlen, -EINVAL, "output %s: missing string", t->name);
	return 0;
}

int kserve_response_parse(const char *body, size_t len, long long header_len,
                          const char *const *want, size_t nwant,
                          struct kserve_response *r, char *err, size_t errlen)
{
	const cJSON *outputs, *o, *j;
	cJSON *root = NULL;
	const uint8_t *bin = NULL;
	size_t json_len = len, binlen = 0, off = 0, i = 0;
	int n, rc;

	memset(r, 0, sizeof(*r));
	if (header_len >= 0) {
		if (header_len == 0)
			return errf(err, errlen, -EINVAL, "raw binary response "
			            "(Inference-Header-Content-Length: 0) is not supported");
		if ((unsigned long long)header_len > len)
			return errf(err, errlen, -EINVAL, "Inference-Header-Content-Length %lld "
			            "exceeds the %zu-byte body", header_len, len);
		json_len = (size_t)header_len;
		bin = (const uint8_t *)body + json_len;
		binlen = len - json_len;
	}
	root = cJSON_ParseWithLength(body, json_len);
	if (!cJSON_IsObject(root)) {
		char head[48];

		copy_printable(head, sizeof(head), body, json_len);
		rc = errf(err, errlen, -EINVAL, "response is not a JSON object (starts '%s')", head);
		goto out;
	}
	j = cJSON_GetObjectItemCaseSensitive(root, "id");
	if (j && !cJSON_IsString(j)) {
		rc = errf(err, errlen, -EINVAL, "response \"id\" is not a string");
		goto out;
	}
	if (j)
		copy_printable(r->id, sizeof(r->id), j->valuestring, strlen(j->valuestring));
	j = cJSON_GetObjectItemCaseSensitive(root, "model_version");
	if (cJSON_IsString(j))
		copy_printable(r->model_version, sizeof(r->model_version), j->valuestring,
		               strlen(j->valuestring));
	outputs = cJSON_GetObjectItemCaseSensitive(root, "outputs");
	n = cJSON_IsArray(outputs) ? cJSON_GetArraySize(outputs) : -1;
	if (n < 1 || n > KSERVE_MAX_TENSORS) {
		rc = errf(err, errlen, -EINVAL, "response \"outputs\" is not an array of 1..%d "
		          "tensors", KSERVE_MAX_TENSORS);
		goto out;
	}
	r->tensors = calloc((size_t)n, sizeof(*r->tensors));
	if (!r->tensors) {
		rc = errf(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	r->ntensors = (size_t)n;
	cJSON_ArrayForEach(o, outputs) {
		rc = output_parse(o, i, &r->tensors[i], bin, binlen, header_len >= 0, &off,
		                  want, nwant, err, errlen);
		if (rc < 0)
			goto out;
		i++;
	}
	if (off != binlen) {
		rc = errf(err, errlen, -EINVAL, "%zu bytes of binary data after the last binary "
		          "output", binlen - off);
		goto out;
	}
	rc = 0;
out:
	cJSON_Delete(root);
	if (rc < 0)
		kserve_response_done(r);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Detections                                                               */

/* N of a per-detection vector: [N], [1,N] or [N,1]. */
static bool vector_len(const struct kserve_tensor *t, size_t *n)
{
	if (t->rank == 1)
		return *n = (size_t)t->shape[0], true;
	if (t->rank == 2 && t->shape[0] == 1)
		return *n = (size_t)t->shape[1], true;
	if (t->rank == 2 && t->shape[1] == 1)
		return *n = (size_t)t->shape[0], true;
	return false;
}

static int detection_cmp(const void *a, const void *b)
{
	const struct kserve_detection *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x < y ? -1 : x > y;
}

int kserve_detections(const struct kserve_options *o, const struct kserve_response *r,
                      struct kserve_detection **out, size_t *nout, double *max_score,
                      char *err, size_t errlen)
{
	const struct kserve_tensor *boxes, *scores, *labels = NULL;
	struct kserve_detection *kept = NULL;
	size_t n, ns, nl, i, k = 0;
	char st[96];
	int rc;

	*out = NULL;
	*nout = 0;
	*max_score = -1;
	boxes = kserve_response_find(r, o->outputs[0]);
	scores = kserve_response_find(r, o->outputs[1]);
	if (o->noutputs > 2)
		labels = kserve_response_find(r, o->outputs[2]);
	for (i = 0; i < o->noutputs; i++)
		if (!kserve_response_find(r, o->outputs[i]))
			return errf(err, errlen, -EINVAL, "the response has no output '%s'",
			            o->outputs[i]);

	shape_text(boxes->shape, boxes->rank, st, sizeof(st));
	if (boxes->dtype == KSERVE_BYTES || boxes->dtype == KSERVE_BOOL)
		return errf(err, errlen, -EINVAL, "boxes output %s has datatype %s", boxes->name,
		            kserve_dtype_name(boxes->dtype));
	if (!((boxes->rank == 2 && boxes->shape[1] == 4) ||
	      (boxes->rank == 3 && boxes->shape[0] == 1 && boxes->shape[2] == 4)))
		return errf(err, errlen, -EINVAL, "boxes output %s has shape %s, expected [N,4] "
		            "or [1,N,4]", boxes->name, st);
	n = (size_t)boxes->shape[boxes->rank - 2];
	if (n > KSERVE_MAX_DETECTIONS)
		return errf(err, errlen, -EINVAL, "boxes output %s holds %zu detections, more "
		            "than %d", boxes->name, n, KSERVE_MAX_DETECTIONS);

	shape_text(scores->shape, scores->rank, st, sizeof(st));
	if (scores->dtype == KSERVE_BYTES || scores->dtype == KSERVE_BOOL)
		return errf(err, errlen, -EINVAL, "scores output %s has datatype %s", scores->name,
		            kserve_dtype_name(scores->dtype));
	if (!vector_len(scores, &ns))
		return errf(err, errlen, -EINVAL, "scores output %s has shape %s, expected [N], "
		            "[1,N] or [N,1]", scores->name, st);
	if (ns != n)
		return errf(err, errlen, -EINVAL, "scores output %s holds %zu scores for %zu boxes",
		            scores->name, ns, n);
	if (labels) {
		shape_text(labels->shape, labels->rank, st, sizeof(st));
		if (labels->dtype == KSERVE_BOOL)
			return errf(err, errlen, -EINVAL, "labels output %s has datatype BOOL",
			            labels->name);
		if (!vector_len(labels, &nl))
			return errf(err, errlen, -EINVAL, "labels output %s has shape %s, expected "
			            "[N], [1,N] or [N,1]", labels->name, st);
		if (nl != n)
			return errf(err, errlen, -EINVAL, "labels output %s holds %zu labels for %zu "
			            "boxes", labels->name, nl, n);
	}
	if (!n)
		return 0;
	if (!boxes->values || !scores->values || (labels && !labels->values && !labels->strings))
		return errf(err, errlen, -EINVAL, "detection outputs were not decoded");

	kept = calloc(n, sizeof(*kept));
	if (!kept)
		return errf(err, errlen, -ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		double s = scores->values[i];
		struct kserve_detection d = { .label = 0 };
		int c;

		if (!isfinite(s)) {
			rc = errf(err, errlen, -EINVAL, "detection %zu: score is %s", i,
			          isnan(s) ? "NaN" : "infinite");
			goto fail;
		}
		if (s < 0 || s > 1) {
			rc = errf(err, errlen, -EINVAL, "detection %zu: score %g is outside 0..1", i, s);
			goto fail;
		}
		for (c = 0; c < 4; c++) {
			d.box[c] = boxes->values[i * 4 + (size_t)c];
			if (!isfinite(d.box[c])) {
				rc = errf(err, errlen, -EINVAL, "detection %zu: box value %d is %s", i, c,
				          isnan(d.box[c]) ? "NaN" : "infinite");
				goto fail;
			}
		}
		if (labels && labels->strings) {
			const char *txt = labels->strings[i];
			size_t len = strlen(txt);

			if (!len || len > KSERVE_LABEL_MAX || !utf8_ok(txt, len)) {
				rc = errf(err, errlen, -EINVAL, "detection %zu: label text is empty, "
				          "longer than %d bytes or not printable UTF-8", i,
				          KSERVE_LABEL_MAX);
				goto fail;
			}
			d.label = -1;
			d.label_text = txt;
		} else if (labels) {
			double l = labels->values[i];

			if (!isfinite(l) || l != floor(l) || l < 0 || l > INT32_MAX) {
				rc = errf(err, errlen, -EINVAL, "detection %zu: label %g is not an index "
				          "(an integer >= 0)", i, l);
				goto fail;
			}
			d.label = (int64_t)l;
		}
		d.score = s;
		if (s > *max_score)
			*max_score = s;
		if (s >= o->score_threshold)
			kept[k++] = d;
	}
	if (!k) {
		free(kept);
		return 0;
	}
	qsort(kept, k, sizeof(*kept), detection_cmp);
	*out = kept;
	*nout = k;
	return 0;
fail:
	free(kept);
	return rc;
}

void kserve_label(const struct kserve_options *o, const struct kserve_detection *d,
                  char *label, size_t labellen, char *code, size_t codelen)
{
	size_t i, n = 0;

	if (d->label_text)
		snprintf(label, labellen, "%s", d->label_text);
	else if (d->label >= 0 && (uint64_t)d->label < o->labels.n)
		snprintf(label, labellen, "%s", o->labels.items[d->label]);
	else
		snprintf(label, labellen, "class %" PRId64, d->label);
	if (!codelen)
		return;
	for (i = 0; label[i] && n + 1 < codelen && n < 16; i++) {
		unsigned char c = (unsigned char)label[i];

		if (isalnum(c) && c < 0x80)
			code[n++] = (char)toupper(c);
		else if (c == ' ' || c == '_' || c == '-' || c == '.')
			code[n++] = (char)c;
		else
			code[n++] = '_';
	}
	while (n > 0 && code[n - 1] == ' ')
		n--;
	code[n] = '\0';
	if (!n)
		snprintf(code, codelen, "FINDING");
}

void kserve_error_text(const char *body, size_t len, char *out, size_t outlen)
{
	cJSON *root = NULL;
	const cJSON *e;
	const char *s = body;
	size_t n = len;

	if (!outlen)
		return;
	if (outlen > KSERVE_MAX_ERROR + 1)
		outlen = KSERVE_MAX_ERROR + 1;
	if (body && len && len <= KSERVE_MAX_META)
		root = cJSON_ParseWithLength(body, len);
	e = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "error") : NULL;
	if (cJSON_IsObject(e))
		e = cJSON_GetObjectItemCaseSensitive(e, "message");
	if (cJSON_IsString(e)) {
		s = e->valuestring;
		n = strlen(s);
	}
	if (s && n)
		copy_printable(out, outlen, s, n);
	else
		snprintf(out, outlen, "(empty body)");
	cJSON_Delete(root);
}

/* ------------------------------------------------------------------------ */
/* HTTP                                                                     */

#ifndef TRIAGED_VERSION
#define TRIAGED_VERSION "0"
#endif

struct kserve {
	const struct triaged_host *host;
	char     name[65];              /* the section's name, for logs */
	struct kserve_options o;
	CURL    *curl;
	char     curl_err[CURL_ERROR_SIZE];
	bool     have_model;
	struct kserve_model model;
};

#define klog(k, level, ...) \
	do { if ((k)->host->log) (k)->host->log(level, __VA_ARGS__); } while (0)

struct reply {
	long     status;
	char    *body;
	size_t   len, cap, limit;
	bool     too_big;
	long long header_len;           /* Inference-Header-Content-Length, -1 */
};

static void reply_done(struct reply *rp)
{
	free(rp->body);
	memset(rp, 0, sizeof(*rp));
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct reply *rp = userp;
	size_t n = size * nmemb;

	if (n > rp->limit - rp->len) {
		rp->too_big = true;
		return 0;
	}
	if (rp->len + n + 1 > rp->cap) {
		size_t cap = rp->cap ? rp->cap : 16384;
		char *p;

		while (cap < rp->len + n + 1)
			cap *= 2;
		p = realloc(rp->body, cap);
		if (!p)
			return 0;
		rp->body = p;
		rp->cap = cap;
	}
	memcpy(rp->body + rp->len, data, n);
	rp->len += n;
	rp->body[rp->len] = '\0';
	return n;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	static const char hdr[] = "inference-header-content-length:";
	struct reply *rp = userp;
	size_t n = size * nmemb;

	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		rp->header_len = -1;    /* a new response (after 100 Continue...) */
	} else if (n > sizeof(hdr) - 1 && strncasecmp(data, hdr, sizeof(hdr) - 1) == 0) {
		char num[64];
		char *end;
		long long v;

		if (n - (sizeof(hdr) - 1) >= sizeof(num)) {
			rp->header_len = -2;
			return n;
		}
		copy_printable(num, sizeof(num), data + sizeof(hdr) - 1, n - (sizeof(hdr) - 1));
		errno = 0;
		v = strtoll(num, &end, 10);
		while (*end == ' ')
			end++;
		rp->header_len = (errno || end == num || *end || v < 0) ? -2 : v;
	}
	return n;
}

/* Milliseconds left for a request: min(deadline, timeout_s); <= 0 = none. */
static long request_budget(const struct kserve *k, int64_t deadline_ms)
{
	int64_t left = deadline_ms - k->host->now_ms();
	int64_t cap = (int64_t)k->o.timeout_s * 1000;

	if (left > cap)
		left = cap;
	return left > 0 ? (long)left : 0;
}

/* One request. Returns TRIAGED_OK (2xx... only 200), TRIAGED_RETRY or
 * TRIAGED_FAIL with MSG; RP holds the status and body either way. */
static int http_request(struct kserve *k, const char *path, const char *ctype,
                        const void *body, size_t blen, long long inference_header,
                        long timeout_ms, size_t limit, struct reply *rp,
                        char *msg, size_t msglen)
{
	struct curl_slist *hdrs = NULL, *h;
	char url[2400], shown[2400], line[96], etext[KSERVE_MAX_ERROR + 1];
	const char *what = body ? "POST" : "GET";
	CURLcode cc;
	int rc;

	memset(rp, 0, sizeof(*rp));
	rp->header_len = -1;
	rp->limit = limit;
	snprintf(url, sizeof(url), "%s%s", k->o.url, path);
	snprintf(shown, sizeof(shown), "%s%s", k->o.url_shown, path);
	if (timeout_ms <= 0)
		return errf(msg, msglen, TRIAGED_RETRY, "%s %s: no time left before the job's "
		            "deadline", what, path);

	curl_easy_reset(k->curl);
	k->curl_err[0] = '\0';
	h = curl_slist_append(hdrs, "Expect:");
	if (h)
		hdrs = h;
	if (ctype) {
		snprintf(line, sizeof(line), "Content-Type: %s", ctype);
		if ((h = curl_slist_append(hdrs, line)))
			hdrs = h;
	}
	if (inference_header >= 0) {
		snprintf(line, sizeof(line), "Inference-Header-Content-Length: %lld",
		         inference_header);
		if ((h = curl_slist_append(hdrs, line)))
			hdrs = h;
	}
	if (!hdrs) {
		rc = errf(msg, msglen, TRIAGED_RETRY, "%s %s: out of memory", what, path);
		goto out;
	}
	curl_easy_setopt(k->curl, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(k->curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(k->curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(k->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(k->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(k->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(k->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (k->o.ca_file[0])
		curl_easy_setopt(k->curl, CURLOPT_CAINFO, k->o.ca_file);
	curl_easy_setopt(k->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(k->curl, CURLOPT_CONNECTTIMEOUT_MS,
	                 timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms : (long)CONNECT_TIMEOUT_MS);
	curl_easy_setopt(k->curl, CURLOPT_ERRORBUFFER, k->curl_err);
	curl_easy_setopt(k->curl, CURLOPT_USERAGENT, "triaged/" TRIAGED_VERSION);
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(k->curl, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(k->curl, CURLOPT_WRITEDATA, rp);
	curl_easy_setopt(k->curl, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(k->curl, CURLOPT_HEADERDATA, rp);
	curl_easy_setopt(k->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)limit);
	if (body) {
		curl_easy_setopt(k->curl, CURLOPT_POST, 1L);
		curl_easy_setopt(k->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(k->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
	} else {
		curl_easy_setopt(k->curl, CURLOPT_HTTPGET, 1L);
	}

	cc = curl_easy_perform(k->curl);
	curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &rp->status);
	if (cc != CURLE_OK) {
		const char *why = k->curl_err[0] ? k->curl_err : curl_easy_strerror(cc);

		switch (cc) {
		case CURLE_WRITE_ERROR:
		case CURLE_FILESIZE_EXCEEDED:
			if (rp->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
				rc = errf(msg, msglen, TRIAGED_FAIL, "%s %s: the response is larger "
				          "than %zu KiB (max_response_kb)", what, path, limit / 1024);
				goto out;
			}
			rc = errf(msg, msglen, TRIAGED_RETRY, "%s %s: %s", what, path, why);
			goto out;
		case CURLE_UNSUPPORTED_PROTOCOL:
		case CURLE_URL_MALFORMAT:
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_ISSUER_ERROR:
			rc = errf(msg, msglen, TRIAGED_FAIL, "%s %s: %s", what, shown, why);
			goto out;
		case CURLE_OPERATION_TIMEDOUT:
			rc = errf(msg, msglen, TRIAGED_RETRY, "%s %s: timed out after %ld ms",
			          what, path, timeout_ms);
			goto out;
		default:
			rc = errf(msg, msglen, TRIAGED_RETRY, "%s %s: %s", what, shown, why);
			goto out;
		}
	}
	if (rp->status == 200) {
		rc = TRIAGED_OK;
		goto out;
	}
	kserve_error_text(rp->body, rp->len, etext, sizeof(etext));
	if (rp->status == 408 || rp->status == 429 ||
	    (rp->status >= 500 && rp->status != 501 && rp->status != 505))
		rc = errf(msg, msglen, TRIAGED_RETRY, "HTTP %ld on %s %s: %s", rp->status, what,
		          path, etext);
	else
		rc = errf(msg, msglen, TRIAGED_FAIL, "HTTP %ld on %s %s: %s", rp->status, what,
		          path, etext);
out:
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	return rc;
}

/* "/v2/models/{model}[/versions/{v}]" + SUFFIX */
static void model_path(const struct kserve *k, const char *suffix, char *buf, size_t n)
{
	if (k->o.version[0])
		snprintf(buf, n, "/v2/models/%s/versions/%s%s", k->o.model, k->o.version, suffix);
	else
		snprintf(buf, n, "/v2/models/%s%s", k->o.model, suffix);
}

/* ------------------------------------------------------------------------ */
/* The backend                                                              */

static void kserve_close(void *state)
{
	struct kserve *k = state;

	if (!k)
		return;
	if (k->curl)
		curl_easy_cleanup(k->curl);
	kserve_options_done(&k->o);
	free(k);
	curl_global_cleanup();
}

static int kserve_open(const struct triaged_host *host, const struct triaged_section *section,
                       void **state, char *err, size_t errlen)
{
	struct kserve *k;
	const char *name;
	int r;

	*state = NULL;
	if (!host || !host->now_ms || !host->image_load || !host->image_free ||
	    !host->result_add_finding || !host->result_set_outcome ||
	    !host->result_set_algorithm)
		return errf(err, errlen, -EINVAL, "kserve: the host lacks services");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return errf(err, errlen, -ENOMEM, "kserve: libcurl initialisation failed");
	k = calloc(1, sizeof(*k));
	if (!k) {
		curl_global_cleanup();
		return errf(err, errlen, -ENOMEM, "kserve: out of memory");
	}
	k->host = host;
	name = host->section_name ? host->section_name(section) : NULL;
	copy_printable(k->name, sizeof(k->name), name ? name : "kserve",
	               strlen(name ? name : "kserve"));
	r = kserve_options_parse(host, section, &k->o, err, errlen);
	if (r < 0)
		goto fail;
	k->curl = curl_easy_init();
	if (!k->curl) {
		r = errf(err, errlen, -ENOMEM, "kserve: curl_easy_init failed");
		goto fail;
	}
	*state = k;
	return 0;
fail:
	kserve_close(k);
	return r;
}

static int kserve_ready(void *state, char *err, size_t errlen)
{
	struct kserve *k = state;
	struct reply rp;
	char path[400];
	long budget = (long)k->o.timeout_s * 1000;
	long status;
	int rc;

	if (budget > READY_TIMEOUT_MS)
		budget = READY_TIMEOUT_MS;
	rc = http_request(k, "/v2/health/ready", NULL, NULL, 0, -1, budget, KSERVE_MAX_META,
	                  &rp, err, errlen);
	status = rp.status;
	reply_done(&rp);
	if (rc != TRIAGED_OK)
		return status ? -EAGAIN : -EHOSTUNREACH;
	model_path(k, "/ready", path, sizeof(path));
	rc = http_request(k, path, NULL, NULL, 0, -1, budget, KSERVE_MAX_META, &rp, err, errlen);
	status = rp.status;
	reply_done(&rp);
	if (rc != TRIAGED_OK)
		return status == 404 ? -ENOENT : status ? -EAGAIN : -EHOSTUNREACH;
	return 0;
}

/* Fetch and resolve the model metadata unless known. */
static int ensure_model(struct kserve *k, int64_t deadline_ms, char *msg, size_t msglen)
{
	struct reply rp;
	char path[400], why[300];
	int rc;

	if (k->have_model)
		return TRIAGED_OK;
	model_path(k, "", path, sizeof(path));
	rc = http_request(k, path, NULL, NULL, 0, -1, request_budget(k, deadline_ms),
	                  KSERVE_MAX_META, &rp, why, sizeof(why));
	if (rc != TRIAGED_OK) {
		errf(msg, msglen, rc, "model metadata: %s", why);
		goto out;
	}
	if (kserve_metadata_parse(&k->o, rp.body ? rp.body : "", rp.len, &k->model, why,
	                          sizeof(why)) < 0) {
		rc = errf(msg, msglen, TRIAGED_FAIL, "model %s: %s", k->o.model, why);
		goto out;
	}
	k->have_model = true;
	{
		char st[96];

		shape_text(k->model.input.shape, k->model.input.rank, st, sizeof(st));
		klog(k, LOG_INFO, "kserve backend=%s model=%s version=%s input=%s datatype=%s "
		     "shape=%s layout=%s binary=%s", k->name, k->o.model,
		     k->o.version[0] ? k->o.version : k->model.version[0] ? k->model.version : "-",
		     k->model.input.name, kserve_dtype_name(k->model.input.dtype), st,
		     k->model.input.layout == KSERVE_NHWC ? "NHWC" : "NCHW",
		     k->o.binary ? "yes" : "no");
	}
out:
	reply_done(&rp);
	return rc;
}

/* A finding waiting to be reported. */
struct pending {
	const char *sop_uid;            /* borrowed from the study */
	uint32_t frame;
	double   score;
	double   box[4];
	char     label[KSERVE_LABEL_MAX + 1];
	char     code[17];
	size_t   seq;                   /* arrival order, for a stable sort */
};

struct study_acc {
	struct pending items[KSERVE_MAX_FINDINGS];
	size_t   n, dropped, images, positive_images, seq;
	double   max_score;
	char     model_version[KSERVE_NAME_MAX + 1];
};

/* Keep the KSERVE_MAX_FINDINGS best. */
static void acc_add(struct study_acc *a, const struct pending *p)
{
	size_t i, worst = 0;

	if (a->n < KSERVE_MAX_FINDINGS) {
		a->items[a->n] = *p;
		a->items[a->n++].seq = a->seq++;
		return;
	}
	for (i = 1; i < a->n; i++)
		if (a->items[i].score < a->items[worst].score)
			worst = i;
	a->dropped++;
	if (p->score > a->items[worst].score) {
		a->items[worst] = *p;
		a->items[worst].seq = a->seq++;
	}
}

static int pending_cmp(const void *x, const void *y)
{
	const struct pending *a = x, *b = y;

	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The request body for PLANE. *BODY malloc'd; *HEADER_LEN the JSON
 * header's length in binary mode, -1 otherwise. */
static int request_build(const struct kserve *k, const char *id, const float *plane,
                         char **body, size_t *blen, long long *header_len)
{
	const struct kserve_input *in = &k->model.input;
	cJSON *root = NULL, *inputs, *input, *outs, *o, *params;
	char *json = NULL, *data = NULL;
	uint8_t *raw = NULL;
	size_t rawlen = 0, datalen = 0, jlen, i;
	int r = -ENOMEM;

	*body = NULL;
	*blen = 0;
	*header_len = -1;
	if (k->o.binary)
		r = kserve_tensor_binary(in, plane, &raw, &rawlen);
	else
		r = kserve_tensor_json(in, plane, &data, &datalen);
	if (r < 0)
		goto out;
	r = -ENOMEM;
	root = cJSON_CreateObject();
	if (!root || !cJSON_AddStringToObject(root, "id", id) ||
	    !(inputs = cJSON_AddArrayToObject(root, "inputs")) ||
	    !(input = cJSON_CreateObject()))
		goto out;
	cJSON_AddItemToArray(inputs, input);
	{
		double shape[4];

		for (i = 0; i < (size_t)in->rank; i++)
			shape[i] = (double)in->shape[i];
		if (!cJSON_AddStringToObject(input, "name", in->name) ||
		    !cJSON_AddItemToObject(input, "shape", cJSON_CreateDoubleArray(shape, in->rank)) ||
		    !cJSON_AddStringToObject(input, "datatype", kserve_dtype_name(in->dtype)))
			goto out;
	}
	if (k->o.binary) {
		if (!(params = cJSON_AddObjectToObject(input, "parameters")) ||
		    !cJSON_AddNumberToObject(params, "binary_data_size", (double)rawlen))
			goto out;
	} else {
		if (!cJSON_AddRawToObject(input, "data", data))
			goto out;
		free(data);
		data = NULL;
	}
	if (!(outs = cJSON_AddArrayToObject(root, "outputs")))
		goto out;
	for (i = 0; i < k->o.noutputs; i++) {
		if (!(o = cJSON_CreateObject()))
			goto out;
		cJSON_AddItemToArray(outs, o);
		if (!cJSON_AddStringToObject(o, "name", k->o.outputs[i]) ||
		    !(params = cJSON_AddObjectToObject(o, "parameters")) ||
		    !cJSON_AddBoolToObject(params, "binary_data", k->o.binary))
			goto out;
	}
	json = cJSON_PrintUnformatted(root);
	if (!json)
		goto out;
	jlen = strlen(json);
	if (k->o.binary) {
		char *b = malloc(jlen + rawlen);

		if (!b)
			goto out;
		memcpy(b, json, jlen);
		memcpy(b + jlen, raw, rawlen);
		*body = b;
		*blen = jlen + rawlen;
		*header_len = (long long)jlen;
	} else {
		*body = json;
		json = NULL;
		*blen = jlen;
	}
	r = 0;
out:
	cJSON_Delete(root);
	free(json);
	free(data);
	free(raw);
	return r;
}

static bool transient_errno(int r)
{
	return r == -ENOMEM || r == -EAGAIN || r == -EINTR || r == -EMFILE || r == -ENFILE ||
	       r == -EIO;
}

/* Analyse one frame of one instance into ACC. */
static int analyze_image(struct kserve *k, const struct triaged_study *st, size_t idx,
                         uint32_t frame, int64_t deadline_ms, struct study_acc *acc,
                         char *msg, size_t msglen)
{
	const struct triaged_instance *inst = &st->instances[idx];
	const struct kserve_input *in = &k->model.input;
	const char *want[3];
	struct triaged_image *img = NULL;
	struct kserve_geometry g;
	struct kserve_response resp = { 0 };
	struct kserve_detection *dets = NULL;
	struct reply rp = { 0 };
	char path[400], id[96], why[300];
	float *plane = NULL;
	char *body = NULL;
	size_t blen = 0, ndets = 0, i, mapped = 0, outside = 0;
	long long header_len;
	uint32_t max_dim;
	double maxs = -1;
	int64_t t0 = k->host->now_ms();
	int r, rc;

	if (t0 >= deadline_ms)
		return errf(msg, msglen, TRIAGED_RETRY, "the job's deadline passed before image "
		            "%zu of %zu", idx + 1, st->ninstances);
	max_dim = 2 * (in->rows > in->cols ? in->rows : in->cols);
	if (max_dim > 65535)
		max_dim = 65535;
	why[0] = '\0';
	r = k->host->image_load(inst->path, frame, max_dim, &img, why, sizeof(why));
	if (r < 0 || !img) {
		rc = errf(msg, msglen, transient_errno(r) ? TRIAGED_RETRY : TRIAGED_FAIL,
		          "instance %.64s frame %u: cannot be decoded: %s", inst->sop_instance_uid,
		          frame, why[0] ? why : strerror(r < 0 ? -r : EINVAL));
		img = NULL;
		goto out;
	}
	if (!img->pixels || !img->width || !img->height || img->width > 65536 ||
	    img->height > 65536 || !isfinite(img->scale) || img->scale <= 0) {
		rc = errf(msg, msglen, TRIAGED_FAIL, "instance %.64s: the decoded image is "
		          "unusable (%ux%u, scale %g)", inst->sop_instance_uid, img->width,
		          img->height, img->scale);
		goto out;
	}
	r = kserve_geometry_init(&g, in->rows, in->cols, img->width, img->height, img->scale,
	                         img->src_columns ? img->src_columns : inst->columns,
	                         img->src_rows ? img->src_rows : inst->rows, k->o.placement);
	if (r == 0)
		r = kserve_plane_make(&g, img->pixels, k->o.normalize, in->dtype, &plane);
	k->host->image_free(img);
	img = NULL;
	if (r < 0) {
		rc = errf(msg, msglen, r == -ENOMEM ? TRIAGED_RETRY : TRIAGED_FAIL, "instance "
		          "%.64s: cannot prepare the input tensor: %s", inst->sop_instance_uid,
		          strerror(-r));
		goto out;
	}
	snprintf(id, sizeof(id), "triaged-%" PRId64 "-%zu-%u", st->job_id, idx + 1, frame);
	r = request_build(k, id, plane, &body, &blen, &header_len);
	free(plane);
	plane = NULL;
	if (r < 0) {
		rc = errf(msg, msglen, TRIAGED_RETRY, "cannot build the request: %s", strerror(-r));
		goto out;
	}

	model_path(k, "/infer", path, sizeof(path));
	rc = http_request(k, path, k->o.binary ? "application/octet-stream" : "application/json",
	                  body, blen, header_len, request_budget(k, deadline_ms),
	                  k->o.max_response, &rp, why, sizeof(why));
	free(body);
	body = NULL;
	if (rc != TRIAGED_OK) {
		if (rp.status == 400 || rp.status == 404)
			k->have_model = false;   /* the model may have changed: look again */
		errf(msg, msglen, rc, "instance %.64s: %s", inst->sop_instance_uid, why);
		goto out;
	}
	if (rp.header_len == -2) {
		rc = errf(msg, msglen, TRIAGED_FAIL, "instance %.64s: bad "
		          "Inference-Header-Content-Length header", inst->sop_instance_uid);
		goto out;
	}
	want[0] = k->o.outputs[0];
	want[1] = k->o.outputs[1];
	want[2] = k->o.noutputs > 2 ? k->o.outputs[2] : NULL;
	if (kserve_response_parse(rp.body ? rp.body : "", rp.len, rp.header_len, want,
	                          k->o.noutputs, &resp, why, sizeof(why)) < 0 ||
	    kserve_detections(&k->o, &resp, &dets, &ndets, &maxs, why, sizeof(why)) < 0) {
		rc = errf(msg, msglen, TRIAGED_FAIL, "instance %.64s: malformed inference "
		          "response: %s", inst->sop_instance_uid, why);
		goto out;
	}
	if (resp.id[0] && strcmp(resp.id, id) != 0) {
		rc = errf(msg, msglen, TRIAGED_FAIL, "instance %.64s: the response is for request "
		          "'%.64s', not '%s'", inst->sop_instance_uid, resp.id, id);
		goto out;
	}
	if (resp.model_version[0] && !acc->model_version[0])
		snprintf(acc->model_version, sizeof(acc->model_version), "%s", resp.model_version);
	for (i = 0; i < ndets; i++) {
		struct pending p = { .sop_uid = inst->sop_instance_uid, .frame = frame };

		r = kserve_box_map(&g, k->o.box_format, dets[i].box, p.box);
		if (r < 0) {
			outside++;
			continue;
		}
		p.score = dets[i].score;
		kserve_label(&k->o, &dets[i], p.label, sizeof(p.label), p.code, sizeof(p.code));
		acc_add(acc, &p);
		mapped++;
	}
	if (maxs > acc->max_score)
		acc->max_score = maxs;
	acc->images++;
	if (mapped)
		acc->positive_images++;
	klog(k, LOG_DEBUG, "kserve backend=%s job=%" PRId64 " sop=%s frame=%u input=%ux%u "
	     "placed=%ux%u+%u+%u detections=%zu kept=%zu outside=%zu best=%.3f ms=%" PRId64,
	     k->name, st->job_id, inst->sop_instance_uid, frame, in->cols, in->rows,
	     g.placed_w, g.placed_h, g.off_x, g.off_y, ndets, mapped, outside, maxs,
	     k->host->now_ms() - t0);
	rc = TRIAGED_OK;
out:
	if (img)
		k->host->image_free(img);
	free(plane);
	free(body);
	free(dets);
	kserve_response_done(&resp);
	reply_done(&rp);
	return rc;
}

static int kserve_analyze(void *state, const struct triaged_study *st, struct triaged_result *res,
                          int64_t deadline_ms, char *msg, size_t msglen)
{
	struct kserve *k = state;
	struct study_acc *acc;
	struct triaged_code code = { .scheme = CODE_SCHEME };
	char summary[300], name[65], version[65];
	const char *v;
	size_t i;
	uint32_t f, frames;
	int rc, r;

	if (!st || !st->ninstances || !st->instances)
		return errf(msg, msglen, TRIAGED_FAIL, "the job has no instances");
	acc = calloc(1, sizeof(*acc));
	if (!acc)
		return errf(msg, msglen, TRIAGED_RETRY, "out of memory");
	acc->max_score = -1;
	rc = ensure_model(k, deadline_ms, msg, msglen);
	if (rc != TRIAGED_OK)
		goto out;
	for (i = 0; i < st->ninstances; i++) {
		frames = st->instances[i].frames ? st->instances[i].frames : 1;
		if (frames > KSERVE_MAX_FRAMES)
			frames = KSERVE_MAX_FRAMES;
		for (f = 1; f <= frames; f++) {
			rc = analyze_image(k, st, i, f, deadline_ms, acc, msg, msglen);
			if (rc != TRIAGED_OK)
				goto out;
		}
	}

	/* the builder takes 64 characters; names and versions may be 128 */
	v = k->o.algorithm_name[0] ? k->o.algorithm_name : k->o.model;
	copy_printable(name, sizeof(name), v, strlen(v));
	v = k->o.algorithm_version[0] ? k->o.algorithm_version : k->o.version[0] ? k->o.version :
	    acc->model_version[0] ? acc->model_version : k->model.version;
	copy_printable(version, sizeof(version), v, strlen(v));
	r = k->host->result_set_algorithm(res, name, version[0] ? version : NULL, VENDOR);
	if (r < 0) {
		rc = errf(msg, msglen, TRIAGED_FAIL, "the result builder refused the algorithm: %s",
		          strerror(-r));
		goto out;
	}
	qsort(acc->items, acc->n, sizeof(acc->items[0]), pending_cmp);
	for (i = 0; i < acc->n; i++) {
		const struct pending *p = &acc->items[i];

		code.value = p->code;
		code.meaning = p->label;
		r = k->host->result_add_finding(res, p->label, p->score, &code, p->sop_uid,
		                                p->frame, p->box);
		if (r < 0) {
			rc = errf(msg, msglen, TRIAGED_FAIL, "the result builder refused finding "
			          "%s on %.64s: %s", p->label, p->sop_uid, strerror(-r));
			goto out;
		}
	}
	snprintf(summary, sizeof(summary), "%zu finding%s on %zu of %zu image%s (model %s, "
	         "score threshold %.2f)%s", acc->n, acc->n == 1 ? "" : "s",
	         acc->positive_images, acc->images, acc->images == 1 ? "" : "s", k->o.model,
	         k->o.score_threshold, acc->dropped ? "; weaker findings past the limit "
	         "dropped" : "");
	r = k->host->result_set_outcome(res, acc->n ? "positive" : "negative",
	                                acc->max_score < 0 ? 0 : acc->max_score, summary);
	if (r < 0) {
		rc = errf(msg, msglen, TRIAGED_FAIL, "the result builder refused the outcome: %s",
		          strerror(-r));
		goto out;
	}
	rc = TRIAGED_OK;
out:
	free(acc);
	return rc;
}

static const struct triaged_backend_ops kserve_ops = {
	.open = kserve_open,
	.ready = kserve_ready,
	.analyze = kserve_analyze,
	.close = kserve_close,
};

const struct triaged_backend_type backend_kserve = {
	.abi_version = TRIAGED_BACKEND_ABI_VERSION,
	.name = "kserve",
	.flags = TRIAGED_BACKEND_NEEDS_PIXELS,
	.ops = &kserve_ops,
};
