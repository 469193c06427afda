/*
 * fake_host.c - see fake_host.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dicom/dicom.h"
#include "fake_host.h"

static struct fake_host *current;

static double
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void fake_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
fake_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (current && level > current->log_level)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "<%d>fake: ", level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

#define FAKE_CONFIG_MAX 8
static struct {
	char key[32];
	char value[256];
} fake_cfg[FAKE_CONFIG_MAX];

static const char *
fake_config_get(const struct triaged_section *section, const char *key)
{
	(void)section;
	for (size_t i = 0; i < FAKE_CONFIG_MAX; i++)
		if (fake_cfg[i].key[0] && strcmp(fake_cfg[i].key, key) == 0)
			return fake_cfg[i].value;
	return NULL;
}

void
fake_host_config(const char *key, const char *value)
{
	size_t free_slot = FAKE_CONFIG_MAX;

	for (size_t i = 0; i < FAKE_CONFIG_MAX; i++) {
		if (fake_cfg[i].key[0] && strcmp(fake_cfg[i].key, key) == 0) {
			fake_cfg[i].key[0] = '\0';
			free_slot = i;
		} else if (!fake_cfg[i].key[0] && free_slot == FAKE_CONFIG_MAX) {
			free_slot = i;
		}
	}
	if (!value || free_slot == FAKE_CONFIG_MAX)
		return;
	snprintf(fake_cfg[free_slot].key, sizeof(fake_cfg[free_slot].key), "%s", key);
	snprintf(fake_cfg[free_slot].value, sizeof(fake_cfg[free_slot].value), "%s", value);
}

static const char *
fake_section_name(const struct triaged_section *section)
{
	(void)section;
	return "reference";
}

static int64_t
fake_now_ms(void)
{
	if (current && current->clock_frozen)
		return current->clock_ms;
	return (int64_t)mono_ms();
}

static void *
fake_alloc(size_t n)
{
	return malloc(n);
}

static void
fake_free(void *p)
{
	free(p);
}

/* A malloc'd copy of the image SRC with the pixels PIXELS. */
static struct triaged_image *
image_copy(const struct triaged_image *src, const uint16_t *pixels)
{
	struct triaged_image *img = calloc(1, sizeof(*img));
	size_t n = (size_t)src->width * src->height;

	if (!img)
		return NULL;
	*img = *src;
	img->pixels = malloc(n * sizeof(uint16_t));
	if (!img->pixels) {
		free(img);
		return NULL;
	}
	memcpy(img->pixels, pixels, n * sizeof(uint16_t));
	return img;
}

static int
fake_image_load(const char *path, uint32_t frame, uint32_t max_dim,
    struct triaged_image **out, char *err, size_t errlen)
{
	double t0 = mono_ms();
	int r;

	if (current) {
		for (size_t i = 0; i < current->nimages; i++) {
			if (strcmp(current->images[i].path, path) == 0) {
				*out = image_copy(current->images[i].img,
				    current->images[i].img->pixels);
				if (!*out) {
					snprintf(err, errlen, "out of memory");
					return -ENOMEM;
				}
				current->image_loads++;
				return 0;
			}
		}
	}
	r = dicom_image_load(path, frame, max_dim, out, err, errlen);
	if (current) {
		current->image_loads++;
		current->image_load_ms += mono_ms() - t0;
	}
	return r;
}

static void
fake_image_free(struct triaged_image *img)
{
	dicom_image_free(img);
}

static void
copy_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

static void
copy_code(struct fake_code *dst, const struct triaged_code *code)
{
	memset(dst, 0, sizeof(*dst));
	if (!code)
		return;
	dst->present = 1;
	copy_str(dst->scheme, sizeof(dst->scheme), code->scheme);
	copy_str(dst->value, sizeof(dst->value), code->value);
	copy_str(dst->meaning, sizeof(dst->meaning), code->meaning);
}

static int
refuse(struct triaged_result *r, int err)
{
	r->refused++;
	return err;
}

static int
too_long(const char *s, size_t max)
{
	return s && strlen(s) > max;
}

static int
code_too_long(const struct triaged_code *c)
{
	return c && (too_long(c->scheme, FAKE_MAX_TEXT) || too_long(c->value, FAKE_MAX_TEXT) ||
	    too_long(c->meaning, FAKE_MAX_TEXT));
}

static int
fake_set_algorithm(struct triaged_result *r, const char *name, const char *version,
    const char *vendor)
{
	if (!name || !*name)
		return refuse(r, -EINVAL);
	if (too_long(name, FAKE_MAX_TEXT) || too_long(version, FAKE_MAX_TEXT) ||
	    too_long(vendor, FAKE_MAX_TEXT))
		return refuse(r, -E2BIG);
	r->algorithm_set = 1;
	copy_str(r->alg_name, sizeof(r->alg_name), name);
	copy_str(r->alg_version, sizeof(r->alg_version), version);
	copy_str(r->alg_vendor, sizeof(r->alg_vendor), vendor);
	return 0;
}

static int
fake_set_outcome(struct triaged_result *r, const char *outcome, double score,
    const char *summary)
{
	if (!outcome || (strcmp(outcome, "positive") != 0 && strcmp(outcome, "negative") != 0 &&
	    strcmp(outcome, "indeterminate") != 0))
		return refuse(r, -EINVAL);
	if (score > 1.0 || score != score)
		return refuse(r, -EINVAL);
	if (too_long(summary, FAKE_MAX_SUMMARY))
		return refuse(r, -E2BIG);
	r->outcome_set = 1;
	copy_str(r->outcome, sizeof(r->outcome), outcome);
	r->score = score;
	copy_str(r->summary, sizeof(r->summary), summary);
	return 0;
}

static int
fake_add_measurement(struct triaged_result *r, const char *name, double value,
    const char *unit, const struct triaged_code *code)
{
	if (!name || !*name || value != value)
		return refuse(r, -EINVAL);
	if (too_long(name, FAKE_MAX_TEXT) || too_long(unit, FAKE_MAX_TEXT) || code_too_long(code))
		return refuse(r, -E2BIG);
	if (r->nmeasurements == FAKE_MAX_MEASUREMENTS)
		return refuse(r, -E2BIG);
	struct fake_measurement *m = &r->measurements[r->nmeasurements++];
	copy_str(m->name, sizeof(m->name), name);
	m->value = value;
	copy_str(m->unit, sizeof(m->unit), unit);
	copy_code(&m->code, code);
	return 0;
}

static int
fake_add_finding(struct triaged_result *r, const char *label, double score,
    const struct triaged_code *code, const char *sop_instance_uid, uint32_t frame,
    const double *box)
{
	if (!label || !*label || !(score >= 0.0 && score <= 1.0) || frame < 1)
		return refuse(r, -EINVAL);
	if (too_long(label, FAKE_MAX_TEXT) || code_too_long(code))
		return refuse(r, -E2BIG);
	if (!sop_instance_uid)
		return refuse(r, -ENOENT);
	if (r->study) {
		size_t i;
		for (i = 0; i < r->study->ninstances; i++) {
			const char *u = r->study->instances[i].sop_instance_uid;
			if (u && strcmp(u, sop_instance_uid) == 0)
				break;
		}
		if (i == r->study->ninstances)
			return refuse(r, -ENOENT);
	}
	if (r->nfindings == FAKE_MAX_FINDINGS)
		return refuse(r, -E2BIG);
	struct fake_finding *f = &r->findings[r->nfindings++];
	copy_str(f->label, sizeof(f->label), label);
	f->score = score;
	copy_code(&f->code, code);
	copy_str(f->sop_uid, sizeof(f->sop_uid), sop_instance_uid);
	f->frame = frame;
	f->has_box = box != NULL;
	if (box)
		memcpy(f->box, box, sizeof(f->box));
	return 0;
}

static int
fake_parse_json(struct triaged_result *r, const char *json, size_t len, char *msg,
    size_t msglen)
{
	(void)r;
	(void)json;
	(void)len;
	snprintf(msg, msglen, "the fake host does not parse JSON");
	return TRIAGED_FAIL;
}

void
fake_host_init(struct fake_host *fh)
{
	memset(fh, 0, sizeof(*fh));
	fh->host.abi_version = TRIAGED_BACKEND_ABI_VERSION;
	fh->host.size = sizeof(fh->host);
	fh->host.log = fake_log;
	fh->host.config_get = fake_config_get;
	fh->host.section_name = fake_section_name;
	fh->host.now_ms = fake_now_ms;
	fh->host.alloc = fake_alloc;
	fh->host.free = fake_free;
	fh->host.image_load = fake_image_load;
	fh->host.image_free = fake_image_free;
	fh->host.result_set_algorithm = fake_set_algorithm;
	fh->host.result_set_outcome = fake_set_outcome;
	fh->host.result_add_measurement = fake_add_measurement;
	fh->host.result_add_finding = fake_add_finding;
	fh->host.result_parse_json = fake_parse_json;
	fh->log_level = 3;
	current = fh;
}

void
fake_host_done(struct fake_host *fh)
{
	if (!fh)
		return;
	for (size_t i = 0; i < fh->nimages; i++)
		dicom_image_free(fh->images[i].img);
	fh->nimages = 0;
	if (current == fh)
		current = NULL;
}

int
fake_host_add_image(struct fake_host *fh, const char *path, uint32_t w, uint32_t h,
    const uint16_t *pixels, double scale)
{
	struct triaged_image src;

	if (fh->nimages == FAKE_MAX_IMAGES)
		return -E2BIG;
	memset(&src, 0, sizeof(src));
	src.width = w;
	src.height = h;
	src.scale = scale;
	src.src_columns = (uint32_t)(w * scale + 0.5);
	src.src_rows = (uint32_t)(h * scale + 0.5);
	struct triaged_image *img = image_copy(&src, pixels);
	if (!img)
		return -ENOMEM;
	copy_str(fh->images[fh->nimages].path, sizeof(fh->images[0].path), path);
	fh->images[fh->nimages++].img = img;
	return 0;
}

void
fake_result_init(struct triaged_result *r, const struct triaged_study *study)
{
	memset(r, 0, sizeof(*r));
	r->study = study;
}

int
fake_result_equal(const struct triaged_result *a, const struct triaged_result *b)
{
	if (a->algorithm_set != b->algorithm_set || a->outcome_set != b->outcome_set ||
	    strcmp(a->alg_name, b->alg_name) || strcmp(a->alg_version, b->alg_version) ||
	    strcmp(a->alg_vendor, b->alg_vendor) || strcmp(a->outcome, b->outcome) ||
	    a->score != b->score || strcmp(a->summary, b->summary) ||
	    a->nfindings != b->nfindings || a->nmeasurements != b->nmeasurements)
		return 0;
	for (size_t i = 0; i < a->nfindings; i++) {
		const struct fake_finding *x = &a->findings[i], *y = &b->findings[i];
		if (strcmp(x->label, y->label) || x->score != y->score ||
		    strcmp(x->sop_uid, y->sop_uid) || x->frame != y->frame ||
		    x->has_box != y->has_box || memcmp(x->box, y->box, sizeof(x->box)) ||
		    memcmp(&x->code, &y->code, sizeof(x->code)))
			return 0;
	}
	for (size_t i = 0; i < a->nmeasurements; i++) {
		const struct fake_measurement *x = &a->measurements[i], *y = &b->measurements[i];
		if (strcmp(x->name, y->name) || x->value != y->value || strcmp(x->unit, y->unit) ||
		    memcmp(&x->code, &y->code, sizeof(x->code)))
			return 0;
	}
	return 1;
}
