/*
 * backend_reference.c - the built-in "reference" backend: a transparent,
 * deterministic image analysis that exercises the whole pipeline (pixels,
 * findings with boxes, a study outcome, a measurement, SR and overlays).
 * It is NOT a diagnostic model and says so in everything it reports.
 *
 * DESIGN: every instance with pixels is decoded (frame 1) by the host at
 * REFERENCE_MAX_DIM on its longest side, with its VOI window, MONOCHROME1
 * inverted (bright = dense). On that image:
 *
 *   1. g = the image smoothed by a 3x3 box, in 0..1;
 *   2. the white top-hat t = g - opening(g), the opening a grey erosion
 *      then dilation with a square of side k = max(w,h)/16 (odd, 5..63),
 *      by van Herk/Gil-Werman running min/max filters (O(1) per pixel):
 *      t is large where something is brighter than its surroundings and
 *      smaller than k x k;
 *   3. only pixels on tissue count: the opening (the local background)
 *      must reach air + 10% (p99 - air), so markers and labels on the
 *      air around the body are ignored; air is the level (histogram
 *      mode) of the darkest 30% of the range [p1, p99] of g when at least
 *      5% of the image is there, else p1. A border band of 2%, at least
 *      k/2 wide, is ignored (collimator edges, the clipped filters);
 *   4. robust statistics of t over those pixels: median m and
 *      s = max(1.4826 MAD, 0.004);
 *   5. z = (t - m) / s; pixels with z >= 5 and t >= 0.03 form regions
 *      (8-connected); a region is focal when its box is at most 1.5 k on
 *      its longest side and at most 3 times as long as wide, it fills at
 *      least a quarter of its box (lines, edges and ridges are not), and
 *      it has at least 6 pixels;
 *   6. saliency score = 1 - exp(-(z_peak - 5) / 10), in [0,1): 0.5 at
 *      z = 11.9, 0.9 at z = 28;
 *   7. the best REFERENCE_MAX_PER_IMAGE regions with a score of at least
 *      REFERENCE_REPORT_MIN become findings, their box grown by a quarter
 *      of its size (at least 2 pixels) and given in source pixels.
 *
 * Study outcome: "positive" when any finding scores >= REFERENCE_POSITIVE
 * (0.5), else "negative" ("indeterminate" when negative but some image
 * could not be decoded); study score = the highest finding score (0 when
 * there is none).
 *
 * [backend NAME] task = bone-age (or auto, the default, for a route whose
 * name contains "bone", as the default route bone-age): no image analysis;
 * a study with a hand radiograph (Body Part Examined HAND) of a patient of
 * known age gets one measurement "bone age" whose value is the
 * chronological age in months - a stand-in, and the summary says so.
 * task = findings (or auto for any other route): the analysis above only.
 *
 * Instances without Rows/Columns (reports, presentation states) are
 * skipped; an image the host cannot decode (-EBADMSG, -ENOTSUP, ...) is
 * skipped and named in the summary, and the job fails when no image is
 * left; out of memory and I/O errors make it TRIAGED_RETRY. The deadline
 * is checked before each image (deadline_ms <= 0: none); past it, the job
 * is TRIAGED_RETRY. At most REFERENCE_MAX_FINDINGS findings per study, the
 * best ones.
 *
 * The state is read-only (the host pointer), so one state serves every
 * worker (TRIAGED_BACKEND_THREADSAFE). Same input, same output: no clock in
 * the analysis, no randomness, ties broken by position. One configuration
 * key: task.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend_reference.h"

#define REF_ALGORITHM_NAME  "triaged reference analysis (not for diagnosis)"
#define REF_VENDOR          "triaged"
#define REF_SCHEME          "99TRIAGED"

#define Z_MIN        5.0     /* robust z-score where saliency starts */
#define Z_SCALE      10.0    /* saliency 1 - exp(-(z - Z_MIN) / Z_SCALE) */
#define T_MIN        0.03    /* top-hat peak of at least 3% of the range */
#define SIGMA_FLOOR  0.004   /* noise floor of the robust spread */
#define MIN_AREA     6

/* [backend NAME] task: what the analysis reports */
enum ref_task {
	TASK_AUTO,              /* by the route's name: "bone" in it -> bone age */
	TASK_FINDINGS,          /* salient regions as findings, and the outcome */
	TASK_BONE_AGE,          /* the bone-age stand-in only */
};

struct ref_state {
	const struct triaged_host *host;
	enum ref_task task;
};

/* ---- image operations ---------------------------------------------------- */

/* 1-D running min (WANT_MAX 0) or max of window 2R+1 over BUF[0..N), in
 * place, the window clipped at the ends (van Herk/Gil-Werman: a prefix and
 * a suffix extreme per block of 2R+1, one comparison each per sample).
 * PAD, G and H have room for N + 4R + 1 values. */
static void
running_extreme(float *buf, size_t n, size_t r, int want_max, float *pad, float *g, float *h)
{
	size_t k = 2 * r + 1, len = n + 2 * r;
	float id = want_max ? -INFINITY : INFINITY;

	size_t blocks = (len + k - 1) / k, plen = blocks * k;
	for (size_t i = 0; i < plen; i++)
		pad[i] = (i >= r && i < r + n) ? buf[i - r] : id;
	for (size_t b = 0; b < plen; b += k) {
		g[b] = pad[b];
		for (size_t i = b + 1; i < b + k; i++)
			g[i] = want_max ? fmaxf(g[i - 1], pad[i]) : fminf(g[i - 1], pad[i]);
		h[b + k - 1] = pad[b + k - 1];
		for (size_t i = b + k - 1; i-- > b;)
			h[i] = want_max ? fmaxf(h[i + 1], pad[i]) : fminf(h[i + 1], pad[i]);
	}
	/* window [j, j+k-1] of PAD is centred on sample j */
	for (size_t j = 0; j < n; j++)
		buf[j] = want_max ? fmaxf(h[j], g[j + k - 1]) : fminf(h[j], g[j + k - 1]);
}

/* Square min or max filter of side 2R+1, separable, in place. */
static int
square_filter(float *img, uint32_t w, uint32_t h, size_t r, int want_max)
{
	size_t n = (w > h ? w : h) + 4 * r + 1;
	float *tmp = malloc(4 * n * sizeof(float));
	if (!tmp)
		return -ENOMEM;
	float *line = tmp, *pad = tmp + n, *g = tmp + 2 * n, *hh = tmp + 3 * n;

	for (uint32_t y = 0; y < h; y++)
		running_extreme(img + (size_t)y * w, w, r, want_max, pad, g, hh);
	for (uint32_t x = 0; x < w; x++) {
		for (uint32_t y = 0; y < h; y++)
			line[y] = img[(size_t)y * w + x];
		running_extreme(line, h, r, want_max, pad, g, hh);
		for (uint32_t y = 0; y < h; y++)
			img[(size_t)y * w + x] = line[y];
	}
	free(tmp);
	return 0;
}

/* 3x3 box mean (clipped at the borders) of SRC into DST. */
static void
box3(const float *src, float *dst, float *tmp, uint32_t w, uint32_t h)
{
	for (uint32_t y = 0; y < h; y++) {
		const float *s = src + (size_t)y * w;
		float *t = tmp + (size_t)y * w;
		for (uint32_t x = 0; x < w; x++) {
			float sum = s[x];
			int c = 1;
			if (x > 0) { sum += s[x - 1]; c++; }
			if (x + 1 < w) { sum += s[x + 1]; c++; }
			t[x] = sum / (float)c;
		}
	}
	for (uint32_t y = 0; y < h; y++) {
		for (uint32_t x = 0; x < w; x++) {
			size_t i = (size_t)y * w + x;
			float sum = tmp[i];
			int c = 1;
			if (y > 0) { sum += tmp[i - w]; c++; }
			if (y + 1 < h) { sum += tmp[i + w]; c++; }
			dst[i] = sum / (float)c;
		}
	}
}

/* The value below which FRAC of the histogram HIST (NB bins) lies. */
static uint32_t
hist_quantile(const uint32_t *hist, uint32_t nb, uint64_t total, double frac)
{
	uint64_t want = (uint64_t)(frac * (double)total), acc = 0;

	for (uint32_t i = 0; i < nb; i++) {
		acc += hist[i];
		if (acc > want)
			return i;
	}
	return nb - 1;
}

static int
region_better(const struct reference_region *a, const struct reference_region *b)
{
	if (a->score != b->score)
		return a->score > b->score;
	if (a->peak_y != b->peak_y)
		return a->peak_y < b->peak_y;
	return a->peak_x < b->peak_x;
}

/* Keep OUT (N of MAX) sorted best first with R inserted when it ranks. */
static void
region_insert(struct reference_region *out, size_t max, size_t *n,
    const struct reference_region *r)
{
	size_t i = *n;

	if (i == max) {
		if (!region_better(r, &out[max - 1]))
			return;
		i = max - 1;
	} else {
		(*n)++;
	}
	while (i > 0 && region_better(r, &out[i - 1])) {
		out[i] = out[i - 1];
		i--;
	}
	out[i] = *r;
}

int
reference_analyze_image(const struct triaged_image *img, double min_score,
    struct reference_region *out, size_t max, size_t *n)
{
	int ret = -ENOMEM;
	float *g = NULL, *o = NULL, *t = NULL;
	uint32_t *hist = NULL, *stack = NULL;
	uint8_t *mask = NULL;

	*n = 0;
	if (!img || !img->pixels || img->width == 0 || img->height == 0 || max == 0)
		return 0;
	uint32_t w = img->width, h = img->height;
	size_t np = (size_t)w * h;
	uint32_t big = w > h ? w : h;

	g = malloc(np * sizeof(float));
	o = malloc(np * sizeof(float));
	t = malloc(np * sizeof(float));
	mask = malloc(np);
	hist = calloc(65536, sizeof(uint32_t));
	stack = malloc(np * sizeof(uint32_t));
	if (!g || !o || !t || !mask || !hist || !stack)
		goto cleanup;

	/* 1. smoothed image in 0..1 */
	for (size_t i = 0; i < np; i++)
		t[i] = img->pixels[i] / 65535.0f;
	box3(t, g, o, w, h);

	/* 2. white top-hat with a square of side k */
	uint32_t k = (uint32_t)lround(big / 16.0) | 1u;
	k = k < 5 ? 5 : k > 63 ? 63 : k;
	size_t r = k / 2;
	memcpy(o, g, np * sizeof(float));
	if (square_filter(o, w, h, r, 0) < 0 || square_filter(o, w, h, r, 1) < 0)
		goto cleanup;
	for (size_t i = 0; i < np; i++)
		t[i] = g[i] > o[i] ? g[i] - o[i] : 0.0f;

	/* 3. tissue: the local background above the level of air */
	for (size_t i = 0; i < np; i++)
		hist[(uint32_t)lrintf(g[i] * 4095.0f)]++;
	uint32_t q1 = hist_quantile(hist, 4096, np, 0.01);
	uint32_t q99 = hist_quantile(hist, 4096, np, 0.99);
	double p1 = q1 / 4095.0, p99 = q99 / 4095.0;
	double air = p1;
	{
		/* a large dark area (direct exposure): its level is the mode of
		 * the darkest 30% of the range; without one, p1 */
		uint32_t qd = q1 + (q99 - q1) * 3 / 10;
		uint64_t dark = 0, best = 0;
		for (uint32_t q = q1; q <= qd; q++)
			dark += hist[q];
		if (dark * 20 >= np) {
			for (uint32_t q = q1; q <= qd; q++) {
				uint64_t sum = 0;
				for (uint32_t j = q >= 16 ? q - 16 : 0; j <= q + 16 && j < 4096; j++)
					sum += hist[j];
				if (sum > best) {
					best = sum;
					air = q / 4095.0;
				}
			}
		}
	}
	float body = (float)(air + 0.10 * (p99 - air));
	uint32_t band = (uint32_t)lround(0.02 * big);
	band = band < r ? (uint32_t)r : band;
	uint64_t count = 0;
	memset(hist, 0, 65536 * sizeof(uint32_t));
	for (uint32_t y = 0; y < h; y++) {
		for (uint32_t x = 0; x < w; x++) {
			size_t i = (size_t)y * w + x;
			int in = x >= band && y >= band && x + band < w && y + band < h &&
			    o[i] >= body && p99 > p1;
			mask[i] = (uint8_t)in;
			if (in) {
				hist[(uint32_t)lrintf(t[i] * 65535.0f)]++;
				count++;
			}
		}
	}
	if (count < 16) {
		ret = 0;
		goto cleanup;
	}

	/* 4. robust statistics of the top-hat on tissue */
	uint32_t qmed = hist_quantile(hist, 65536, count, 0.5);
	uint32_t *dev = hist;   /* reuse: histogram of |q - qmed| */
	{
		uint32_t *tmp = malloc(65536 * sizeof(uint32_t));
		if (!tmp)
			goto cleanup;
		memset(tmp, 0, 65536 * sizeof(uint32_t));
		for (uint32_t q = 0; q < 65536; q++)
			tmp[q > qmed ? q - qmed : qmed - q] += hist[q];
		memcpy(dev, tmp, 65536 * sizeof(uint32_t));
		free(tmp);
	}
	double med = qmed / 65535.0;
	double mad = hist_quantile(dev, 65536, count, 0.5) / 65535.0;
	double sigma = 1.4826 * mad;
	sigma = sigma < SIGMA_FLOOR ? SIGMA_FLOOR : sigma;
	float thr = (float)(med + Z_MIN * sigma);
	thr = thr < (float)T_MIN ? (float)T_MIN : thr;

	/* 5. regions: 8-connected, in raster order */
	for (size_t i = 0; i < np; i++)
		mask[i] = mask[i] && t[i] >= thr ? 1 : 0;
	for (size_t seed = 0; seed < np; seed++) {
		if (mask[seed] != 1)
			continue;
		struct reference_region reg;
		memset(&reg, 0, sizeof(reg));
		reg.x0 = reg.x1 = (uint32_t)(seed % w);
		reg.y0 = reg.y1 = (uint32_t)(seed / w);
		float peak = -1.0f;
		size_t sp = 0;
		stack[sp++] = (uint32_t)seed;
		mask[seed] = 2;
		while (sp) {
			uint32_t i = stack[--sp];
			uint32_t x = i % w, y = i / w;
			reg.area++;
			if (t[i] > peak || (t[i] == peak && i < reg.peak_y * w + reg.peak_x)) {
				peak = t[i];
				reg.peak_x = x;
				reg.peak_y = y;
			}
			reg.x0 = x < reg.x0 ? x : reg.x0;
			reg.x1 = x > reg.x1 ? x : reg.x1;
			reg.y0 = y < reg.y0 ? y : reg.y0;
			reg.y1 = y > reg.y1 ? y : reg.y1;
			for (int dy = -1; dy <= 1; dy++) {
				for (int dx = -1; dx <= 1; dx++) {
					int64_t nx = (int64_t)x + dx, ny = (int64_t)y + dy;
					if (nx < 0 || ny < 0 || nx >= w || ny >= h)
						continue;
					size_t j = (size_t)ny * w + (size_t)nx;
					if (mask[j] == 1) {
						mask[j] = 2;
						stack[sp++] = (uint32_t)j;
					}
				}
			}
		}
		uint32_t bw = reg.x1 - reg.x0 + 1, bh = reg.y1 - reg.y0 + 1;
		uint32_t side = bw > bh ? bw : bh;
		uint32_t narrow = bw < bh ? bw : bh;
		if (reg.area < MIN_AREA || side * 2 > 3 * k || side > 3 * narrow ||
		    (uint64_t)reg.area * 4 < (uint64_t)bw * bh)
			continue;
		reg.contrast = peak;
		reg.z = (peak - med) / sigma;
		/* 6. saliency */
		reg.score = reg.z <= Z_MIN ? 0.0 : 1.0 - exp(-(reg.z - Z_MIN) / Z_SCALE);
		if (reg.score < min_score)
			continue;
		region_insert(out, max, n, &reg);
	}
	ret = 0;

cleanup:
	free(g);
	free(o);
	free(t);
	free(mask);
	free(hist);
	free(stack);
	return ret;
}

/* ---- the backend ----------------------------------------------------------- */

static int
ref_open(const struct triaged_host *host, const struct triaged_section *section,
    void **state, char *err, size_t errlen)
{
	if (!host || host->abi_version < 1 || host->size < sizeof(struct triaged_host) ||
	    !host->image_load || !host->image_free || !host->now_ms ||
	    !host->result_set_algorithm || !host->result_set_outcome ||
	    !host->result_add_measurement || !host->result_add_finding) {
		snprintf(err, errlen, "host interface too old for the reference backend");
		return -EINVAL;
	}
	const char *task = host->config_get ? host->config_get(section, "task") : NULL;
	enum ref_task t = TASK_AUTO;
	if (task && strcmp(task, "findings") == 0)
		t = TASK_FINDINGS;
	else if (task && strcmp(task, "bone-age") == 0)
		t = TASK_BONE_AGE;
	else if (task && task[0] && strcmp(task, "auto") != 0) {
		snprintf(err, errlen, "task must be auto, findings or bone-age, not '%.32s'", task);
		return -EINVAL;
	}
	struct ref_state *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->host = host;
	s->task = t;
	*state = s;
	return 0;
}

static void
ref_close(void *state)
{
	free(state);
}

static int
is_hand(const char *body_part)
{
	if (!body_part)
		return 0;
	while (*body_part == ' ')
		body_part++;
	size_t n = strlen(body_part);
	while (n && body_part[n - 1] == ' ')
		n--;
	return n == 4 && strncasecmp(body_part, "HAND", 4) == 0;
}

static int
retryable(int err)
{
	return err == -ENOMEM || err == -EIO || err == -EAGAIN || err == -EINTR ||
	    err == -EMFILE || err == -ENFILE;
}

struct ref_finding {
	struct reference_region reg;
	size_t   instance;
	double   box[4];
	int      mg;
};

static int
finding_better(const struct ref_finding *a, const struct ref_finding *b)
{
	if (a->reg.score != b->reg.score)
		return a->reg.score > b->reg.score;
	if (a->instance != b->instance)
		return a->instance < b->instance;
	return region_better(&a->reg, &b->reg);
}

static int
finding_cmp(const void *pa, const void *pb)
{
	const struct ref_finding *a = pa, *b = pb;

	if (finding_better(a, b))
		return -1;
	if (finding_better(b, a))
		return 1;
	return 0;
}

static const struct triaged_code code_density = {
	REF_SCHEME, "REF-FOCAL-DENS",
	"Salient focal density (reference analysis, not a diagnosis)",
};
static const struct triaged_code code_opacity = {
	REF_SCHEME, "REF-FOCAL-OPAC",
	"Salient focal opacity (reference analysis, not a diagnosis)",
};
static const struct triaged_code code_chrono_age = {
	REF_SCHEME, "REF-CHRONO-AGE",
	"Chronological age (reference stand-in for bone age)",
};

/*
 * The bone-age stand-in: the chronological age in months of a patient whose
 * hand radiograph (Body Part Examined HAND) is in the study, from
 * PatientAge or the birth and study dates; no image is decoded. Outcome
 * "negative" (a stand-in deviates by nothing), "indeterminate" without a
 * hand or an age.
 */
static int
ref_bone_age(const struct ref_state *s, const struct triaged_study *study,
             struct triaged_result *res, char *msg, size_t msglen)
{
	const struct triaged_host *host = s->host;
	char summary[512];
	bool hand = false;
	int r;

	for (size_t i = 0; i < study->ninstances; i++)
		hand = hand || is_hand(study->instances[i].body_part);
	r = host->result_set_algorithm(res, REF_ALGORITHM_NAME, TRIAGED_VERSION, REF_VENDOR);
	if (r < 0)
		goto refused;
	if (hand && study->patient_age_years >= 0) {
		double months = round(study->patient_age_years * 120.0) / 10.0;
		snprintf(summary, sizeof(summary), "Reference bone-age stand-in by triaged: "
		    "NOT a diagnosis. Bone age was NOT assessed: the \"bone age\" reported "
		    "(%.1f months) is the patient's chronological age.", months);
		r = host->result_add_measurement(res, "bone age", months, "mo", &code_chrono_age);
		if (r < 0)
			goto refused;
		r = host->result_set_outcome(res, "negative", 0.0, summary);
	} else {
		snprintf(summary, sizeof(summary), "Reference bone-age stand-in by triaged: "
		    "NOT a diagnosis. No measurement: %s.", hand ? "the patient's age is unknown" :
		    "no hand radiograph (Body Part Examined HAND) in the study");
		r = host->result_set_outcome(res, "indeterminate", 0.0, summary);
	}
	if (r < 0)
		goto refused;
	return TRIAGED_OK;
refused:
	snprintf(msg, msglen, "result refused by the host: %s", strerror(-r));
	return TRIAGED_FAIL;
}

static int
ref_analyze(void *state, const struct triaged_study *study, struct triaged_result *res,
    int64_t deadline_ms, char *msg, size_t msglen)
{
	const struct ref_state *s = state;
	const struct triaged_host *host = s->host;
	struct ref_finding *found = NULL;
	size_t nfound = 0, cap = 0;
	size_t with_pixels = 0, analysed = 0, skipped = 0, images_with = 0;
	int ret = TRIAGED_FAIL, r;
	char first_err[256] = "";
	char summary[1024];
	enum ref_task task = s->task;

	if (task == TASK_AUTO)
		task = study->route && strcasestr(study->route, "bone") ? TASK_BONE_AGE :
		    TASK_FINDINGS;
	if (task == TASK_BONE_AGE)
		return ref_bone_age(s, study, res, msg, msglen);

	for (size_t i = 0; i < study->ninstances; i++) {
		const struct triaged_instance *in = &study->instances[i];
		if (in->rows == 0 || in->columns == 0 || !in->path)
			continue;
		with_pixels++;
		if (deadline_ms > 0 && host->now_ms() >= deadline_ms) {
			snprintf(msg, msglen, "deadline passed after %zu of %zu images",
			    analysed + skipped, with_pixels);
			ret = TRIAGED_RETRY;
			goto cleanup;
		}
		struct triaged_image *img = NULL;
		char err[256];
		r = host->image_load(in->path, 1, REFERENCE_MAX_DIM, &img, err, sizeof(err));
		if (r < 0) {
			if (retryable(r)) {
				snprintf(msg, msglen, "cannot decode %s: %s, will retry",
				    in->sop_instance_uid ? in->sop_instance_uid : "?", err);
				ret = TRIAGED_RETRY;
				goto cleanup;
			}
			if (!first_err[0])
				snprintf(first_err, sizeof(first_err), "%s", err);
			skipped++;
			continue;
		}
		struct reference_region regs[REFERENCE_MAX_PER_IMAGE];
		size_t nr = 0;
		r = reference_analyze_image(img, REFERENCE_REPORT_MIN, regs,
		    REFERENCE_MAX_PER_IMAGE, &nr);
		double sc = img->scale, sw = img->src_columns, sh = img->src_rows;
		uint32_t iw = img->width, ih = img->height;
		host->image_free(img);
		if (r < 0) {
			snprintf(msg, msglen, "out of memory analysing an image, will retry");
			ret = TRIAGED_RETRY;
			goto cleanup;
		}
		analysed++;
		if (nr)
			images_with++;
		if (nfound + nr > cap) {
			size_t ncap = cap ? cap * 2 : 16;
			while (ncap < nfound + nr)
				ncap *= 2;
			struct ref_finding *nf = realloc(found, ncap * sizeof(*nf));
			if (!nf) {
				snprintf(msg, msglen, "out of memory, will retry");
				ret = TRIAGED_RETRY;
				goto cleanup;
			}
			found = nf;
			cap = ncap;
		}
		for (size_t j = 0; j < nr; j++) {
			struct ref_finding *f = &found[nfound++];
			const struct reference_region *g = &regs[j];
			double bw = g->x1 - g->x0 + 1.0, bh = g->y1 - g->y0 + 1.0;
			double m = 0.25 * (bw > bh ? bw : bh);
			m = m < 2.0 ? 2.0 : m;
			double x0 = g->x0 - m, y0 = g->y0 - m;
			double x1 = g->x1 + 1.0 + m, y1 = g->y1 + 1.0 + m;
			x0 = x0 < 0 ? 0 : x0;
			y0 = y0 < 0 ? 0 : y0;
			x1 = x1 > iw ? iw : x1;
			y1 = y1 > ih ? ih : y1;
			f->reg = *g;
			f->instance = i;
			f->box[0] = fmin(floor(x0 * sc), sw);
			f->box[1] = fmin(floor(y0 * sc), sh);
			f->box[2] = fmin(ceil(x1 * sc), sw);
			f->box[3] = fmin(ceil(y1 * sc), sh);
			const char *mod = in->modality && in->modality[0] ? in->modality :
			    study->modality;
			f->mg = mod && strcasecmp(mod, "MG") == 0;
		}
	}
	if (with_pixels == 0) {
		snprintf(msg, msglen, "no image in the study");
		ret = TRIAGED_FAIL;
		goto cleanup;
	}
	if (analysed == 0) {
		snprintf(msg, msglen, "no image could be decoded: %s", first_err);
		ret = TRIAGED_FAIL;
		goto cleanup;
	}

	if (nfound)
		qsort(found, nfound, sizeof(*found), finding_cmp);
	size_t report = nfound < REFERENCE_MAX_FINDINGS ? nfound : REFERENCE_MAX_FINDINGS;
	double best = report ? found[0].reg.score : 0.0;

	r = host->result_set_algorithm(res, REF_ALGORITHM_NAME, TRIAGED_VERSION, REF_VENDOR);
	if (r < 0)
		goto refused;
	for (size_t j = 0; j < report; j++) {
		const struct ref_finding *f = &found[j];
		const struct triaged_instance *in = &study->instances[f->instance];
		r = host->result_add_finding(res,
		    f->mg ? "salient focal density" : "salient focal opacity",
		    f->reg.score, f->mg ? &code_density : &code_opacity,
		    in->sop_instance_uid, 1, f->box);
		if (r < 0)
			goto refused;
	}

	int n = snprintf(summary, sizeof(summary),
	    "Reference image analysis by triaged: NOT a diagnosis and not a "
	    "diagnostic model. It marks the most salient focal bright regions "
	    "(white top-hat, saliency 1 - exp(-(z - 5)/10) of the robust z-score). "
	    "%zu of %zu image(s) analysed; %zu with salient regions; highest "
	    "saliency %.2f (positive from %.2f).",
	    analysed, with_pixels, images_with, best, REFERENCE_POSITIVE);
	if (skipped && n > 0 && (size_t)n < sizeof(summary))
		n += snprintf(summary + n, sizeof(summary) - (size_t)n,
		    " %zu image(s) could not be decoded and were not analysed.", skipped);
	const char *outcome = best >= REFERENCE_POSITIVE ? "positive" :
	    skipped ? "indeterminate" : "negative";
	r = host->result_set_outcome(res, outcome, best, summary);
	if (r < 0)
		goto refused;
	ret = TRIAGED_OK;
	goto cleanup;

refused:
	snprintf(msg, msglen, "result refused by the host: %s", strerror(-r));
	ret = TRIAGED_FAIL;
cleanup:
	free(found);
	return ret;
}

static const struct triaged_backend_ops reference_ops = {
	.open = ref_open,
	.ready = NULL,
	.analyze = ref_analyze,
	.close = ref_close,
};

const struct triaged_backend_type backend_reference = {
	.abi_version = TRIAGED_BACKEND_ABI_VERSION,
	.name = "reference",
	.flags = TRIAGED_BACKEND_THREADSAFE | TRIAGED_BACKEND_NEEDS_PIXELS,
	.ops = &reference_ops,
};
