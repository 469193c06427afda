/*
 * result.c - the result builder: the one path through which everything a
 * backend reports enters triaged.
 *
 * DESIGN: builder calls (reference, kserve) and JSON (exec, http, through
 * result_parse_json) end in the same checks. Strings are bounded, valid
 * UTF-8 without control characters; numbers finite; scores in [0,1];
 * findings must name a SOP Instance UID of the job and a frame it has;
 * boxes are ordered and clamped to the image, and a box that does not
 * touch the image is an error. The first error is kept and fails the job:
 * a backend that reports about images it was not given is broken, not
 * transient.
 */
#include "result.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static int
fail(struct triaged_result *r, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
fail(struct triaged_result *r, int err, const char *fmt, ...)
{
	va_list ap;

	if (!r->error[0]) {
		va_start(ap, fmt);
		vsnprintf(r->error, sizeof(r->error), fmt, ap);
		va_end(ap);
	}
	return err;
}

struct triaged_result *
result_new(const struct result_image *images, size_t n)
{
	struct triaged_result *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->findings = calloc(RESULT_MAX_FINDINGS, sizeof(*r->findings));
	if (!r->findings) {
		free(r);
		return NULL;
	}
	r->images = images;
	r->nimages = n;
	r->score = -1;
	return r;
}

struct triaged_result *
result_free(struct triaged_result *r)
{
	if (!r)
		return NULL;
	free(r->findings);
	free(r);
	return NULL;
}

/* Valid UTF-8 without control characters? */
static bool
text_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int n;
		if (*p < 0x20 || *p == 0x7f)
			return false;
		n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 :
		    (*p & 0xf8) == 0xf0 ? 3 : -1;
		if (n < 0 || (n == 1 && *p < 0xc2))
			return false;
		for (int i = 1; i <= n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return false;
		p += n + 1;
	}
	return true;
}

/* Copy backend text FIELD into DST (MAX characters + NUL). */
static int
copy_text(struct triaged_result *r, char *dst, size_t max, const char *src,
          const char *field, bool required)
{
	size_t n;

	if (!src || !*src) {
		if (required)
			return fail(r, -EINVAL, "%s is missing", field);
		dst[0] = '\0';
		return 0;
	}
	n = strlen(src);
	if (n > max)
		return fail(r, -E2BIG, "%s is longer than %zu characters", field, max);
	if (!text_ok(src))
		return fail(r, -EINVAL, "%s is not valid UTF-8 text", field);
	memcpy(dst, src, n + 1);
	return 0;
}

static int
copy_code(struct triaged_result *r, struct result_code *dst, bool *has,
          const struct triaged_code *code, const char *field)
{
	char f[96];
	int e;

	*has = false;
	if (!code)
		return 0;
	snprintf(f, sizeof(f), "%s.scheme", field);
	if ((e = copy_text(r, dst->scheme, RESULT_MAX_TEXT, code->scheme, f, true)) < 0)
		return e;
	snprintf(f, sizeof(f), "%s.value", field);
	if ((e = copy_text(r, dst->value, RESULT_MAX_TEXT, code->value, f, true)) < 0)
		return e;
	snprintf(f, sizeof(f), "%s.meaning", field);
	if ((e = copy_text(r, dst->meaning, RESULT_MAX_TEXT, code->meaning, f, true)) < 0)
		return e;
	*has = true;
	return 0;
}

int
result_set_algorithm(struct triaged_result *r, const char *name, const char *version,
                     const char *vendor)
{
	int e;

	if ((e = copy_text(r, r->algo_name, RESULT_MAX_TEXT, name, "algorithm.name", true)) < 0 ||
	    (e = copy_text(r, r->algo_version, RESULT_MAX_TEXT, version, "algorithm.version",
	    false)) < 0 ||
	    (e = copy_text(r, r->algo_vendor, RESULT_MAX_TEXT, vendor, "algorithm.vendor",
	    false)) < 0)
		return e;
	return 0;
}

int
result_set_outcome(struct triaged_result *r, const char *outcome, double score,
                   const char *summary)
{
	if (!outcome)
		return fail(r, -EINVAL, "study.outcome is missing");
	if (strcmp(outcome, "positive") == 0)
		r->outcome = OUTCOME_POSITIVE;
	else if (strcmp(outcome, "negative") == 0)
		r->outcome = OUTCOME_NEGATIVE;
	else if (strcmp(outcome, "indeterminate") == 0)
		r->outcome = OUTCOME_INDETERMINATE;
	else
		return fail(r, -EINVAL, "study.outcome must be positive, negative or "
		    "indeterminate");
	if (!isfinite(score) || score > 1)
		return fail(r, -EINVAL, "study.score must be a number in [0,1]");
	r->score = score < 0 ? -1 : score;
	return copy_text(r, r->summary, RESULT_MAX_SUMMARY, summary, "study.summary", false);
}

int
result_add_measurement(struct triaged_result *r, const char *name, double value,
                       const char *unit, const struct triaged_code *code)
{
	struct result_measurement *m;
	int e;

	if (r->nmeasurements >= RESULT_MAX_MEASUREMENTS)
		return fail(r, -E2BIG, "more than %d measurements", RESULT_MAX_MEASUREMENTS);
	m = &r->measurements[r->nmeasurements];
	memset(m, 0, sizeof(*m));
	if ((e = copy_text(r, m->name, RESULT_MAX_TEXT, name, "measurement.name", true)) < 0 ||
	    (e = copy_text(r, m->unit, RESULT_MAX_TEXT, unit, "measurement.unit", true)) < 0 ||
	    (e = copy_code(r, &m->code, &m->has_code, code, "measurement.code")) < 0)
		return e;
	if (!isfinite(value) || fabs(value) > 1e12)
		return fail(r, -EINVAL, "measurement %s: value is not a finite number", m->name);
	m->value = value;
	r->nmeasurements++;
	return 0;
}

static const struct result_image *
find_image(const struct triaged_result *r, const char *sop)
{
	for (size_t i = 0; i < r->nimages; i++)
		if (r->images[i].sop_uid && strcmp(r->images[i].sop_uid, sop) == 0)
			return &r->images[i];
	return NULL;
}

static double
clampd(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

int
result_add_finding(struct triaged_result *r, const char *label, double score,
                   const struct triaged_code *code, const char *sop_uid,
                   uint32_t frame, const double *box)
{
	const struct result_image *img;
	struct result_finding *f;
	int e;

	if (r->nfindings >= RESULT_MAX_FINDINGS)
		return fail(r, -E2BIG, "more than %d findings", RESULT_MAX_FINDINGS);
	f = &r->findings[r->nfindings];
	memset(f, 0, sizeof(*f));
	if ((e = copy_text(r, f->label, RESULT_MAX_TEXT, label, "finding.label", true)) < 0 ||
	    (e = copy_code(r, &f->code, &f->has_code, code, "finding.code")) < 0)
		return e;
	if (!isfinite(score) || score > 1)
		return fail(r, -EINVAL, "finding %s: score must be a number in [0,1]", f->label);
	f->score = score < 0 ? -1 : score;
	if (!sop_uid || !*sop_uid)
		return fail(r, -EINVAL, "finding %s: sop_instance_uid is missing", f->label);
	img = find_image(r, sop_uid);
	if (!img)
		return fail(r, -ENOENT, "finding %s: unknown SOP Instance UID %.64s (not an "
		    "instance of this job)", f->label, sop_uid);
	snprintf(f->sop_uid, sizeof(f->sop_uid), "%s", sop_uid);
	if (frame == 0)
		frame = 1;
	if (frame > (img->frames ? img->frames : 1))
		return fail(r, -EINVAL, "finding %s: frame %u, the image has %u", f->label,
		    frame, img->frames ? img->frames : 1);
	f->frame = frame;
	if (box) {
		double x0 = box[0], y0 = box[1], x1 = box[2], y1 = box[3], t;
		for (int i = 0; i < 4; i++)
			if (!isfinite(box[i]))
				return fail(r, -EINVAL, "finding %s: box is not 4 finite numbers",
				    f->label);
		if (x0 > x1) { t = x0; x0 = x1; x1 = t; }
		if (y0 > y1) { t = y0; y0 = y1; y1 = t; }
		f->box[0] = clampd(x0, 0, img->columns);
		f->box[1] = clampd(y0, 0, img->rows);
		f->box[2] = clampd(x1, 0, img->columns);
		f->box[3] = clampd(y1, 0, img->rows);
		f->clamped = f->box[0] != x0 || f->box[1] != y0 || f->box[2] != x1 ||
		    f->box[3] != y1;
		if (img->columns && img->rows &&
		    (f->box[2] - f->box[0] <= 0 || f->box[3] - f->box[1] <= 0))
			return fail(r, -EINVAL, "finding %s: box lies outside the %ux%u image",
			    f->label, img->columns, img->rows);
		f->has_box = true;
	}
	r->nfindings++;
	return 0;
}

/* ---- JSON --------------------------------------------------------------- */

/* Deepest nesting of arrays/objects, outside strings; -1 if unbalanced. */
static int
json_depth(const char *s, size_t len)
{
	int depth = 0, max = 0;
	bool str = false;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				str = false;
			continue;
		}
		if (c == '"')
			str = true;
		else if (c == '{' || c == '[') {
			if (++depth > max)
				max = depth;
		} else if (c == '}' || c == ']') {
			if (--depth < 0)
				return -1;
		}
	}
	return max;
}

static const char *
jstr(struct triaged_result *r, const cJSON *o, const char *key, const char *where, int *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!v || cJSON_IsNull(v))
		return NULL;
	if (!cJSON_IsString(v)) {
		*err = fail(r, -EINVAL, "%s.%s must be a string", where, key);
		return NULL;
	}
	return v->valuestring;
}

static double
jnum(struct triaged_result *r, const cJSON *o, const char *key, const char *where,
     double def, bool required, int *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!v || cJSON_IsNull(v)) {
		if (required)
			*err = fail(r, -EINVAL, "%s.%s is missing", where, key);
		return def;
	}
	if (!cJSON_IsNumber(v)) {
		*err = fail(r, -EINVAL, "%s.%s must be a number", where, key);
		return def;
	}
	return v->valuedouble;
}

static int
jcode(struct triaged_result *r, const cJSON *o, const char *where,
      struct triaged_code *code, bool *has)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "code");
	int err = 0;

	*has = false;
	if (!c || cJSON_IsNull(c))
		return 0;
	if (!cJSON_IsObject(c))
		return fail(r, -EINVAL, "%s.code must be an object", where);
	code->scheme = jstr(r, c, "scheme", where, &err);
	code->value = jstr(r, c, "value", where, &err);
	code->meaning = jstr(r, c, "meaning", where, &err);
	*has = true;
	return err;
}

static int
parse_ok(struct triaged_result *r, const cJSON *root)
{
	const cJSON *algo, *study, *arr, *it;
	int err = 0;

	algo = cJSON_GetObjectItemCaseSensitive(root, "algorithm");
	if (algo && !cJSON_IsNull(algo)) {
		if (!cJSON_IsObject(algo))
			return fail(r, -EINVAL, "algorithm must be an object");
		const char *name = jstr(r, algo, "name", "algorithm", &err);
		const char *ver = jstr(r, algo, "version", "algorithm", &err);
		const char *vendor = jstr(r, algo, "vendor", "algorithm", &err);
		if (err < 0 || (err = result_set_algorithm(r, name, ver, vendor)) < 0)
			return err;
	}

	study = cJSON_GetObjectItemCaseSensitive(root, "study");
	if (!cJSON_IsObject(study))
		return fail(r, -EINVAL, "study must be an object");
	{
		const char *outcome = jstr(r, study, "outcome", "study", &err);
		double score = jnum(r, study, "score", "study", -1, false, &err);
		const char *summary = jstr(r, study, "summary", "study", &err);
		if (err < 0 || (err = result_set_outcome(r, outcome, score, summary)) < 0)
			return err;
	}
	arr = cJSON_GetObjectItemCaseSensitive(study, "measurements");
	if (arr && !cJSON_IsNull(arr)) {
		if (!cJSON_IsArray(arr))
			return fail(r, -EINVAL, "study.measurements must be an array");
		if (cJSON_GetArraySize(arr) > RESULT_MAX_MEASUREMENTS)
			return fail(r, -E2BIG, "more than %d measurements", RESULT_MAX_MEASUREMENTS);
		cJSON_ArrayForEach(it, arr) {
			struct triaged_code code;
			bool has;
			if (!cJSON_IsObject(it))
				return fail(r, -EINVAL, "a measurement must be an object");
			const char *name = jstr(r, it, "name", "measurement", &err);
			double value = jnum(r, it, "value", "measurement", 0, true, &err);
			const char *unit = jstr(r, it, "unit", "measurement", &err);
			if (err < 0 || (err = jcode(r, it, "measurement", &code, &has)) < 0 ||
			    (err = result_add_measurement(r, name, value, unit, has ? &code : NULL)) < 0)
				return err;
		}
	}

	arr = cJSON_GetObjectItemCaseSensitive(root, "findings");
	if (arr && !cJSON_IsNull(arr)) {
		if (!cJSON_IsArray(arr))
			return fail(r, -EINVAL, "findings must be an array");
		if (cJSON_GetArraySize(arr) > RESULT_MAX_FINDINGS)
			return fail(r, -E2BIG, "more than %d findings", RESULT_MAX_FINDINGS);
		cJSON_ArrayForEach(it, arr) {
			struct triaged_code code;
			bool has;
			double box[4], frame;
			const cJSON *jb;
			if (!cJSON_IsObject(it))
				return fail(r, -EINVAL, "a finding must be an object");
			const char *label = jstr(r, it, "label", "finding", &err);
			double score = jnum(r, it, "score", "finding", -1, false, &err);
			const char *sop = jstr(r, it, "sop_instance_uid", "finding", &err);
			frame = jnum(r, it, "frame", "finding", 1, false, &err);
			if (err < 0 || (err = jcode(r, it, "finding", &code, &has)) < 0)
				return err;
			if (frame < 1 || frame > 100000 || frame != floor(frame))
				return fail(r, -EINVAL, "finding.frame must be a whole number >= 1");
			jb = cJSON_GetObjectItemCaseSensitive(it, "box");
			if (jb && !cJSON_IsNull(jb)) {
				int i = 0;
				const cJSON *n;
				if (!cJSON_IsArray(jb) || cJSON_GetArraySize(jb) != 4)
					return fail(r, -EINVAL, "finding.box must be [x0, y0, x1, y1]");
				cJSON_ArrayForEach(n, jb) {
					if (!cJSON_IsNumber(n))
						return fail(r, -EINVAL, "finding.box must hold numbers");
					box[i++] = n->valuedouble;
				}
			}
			if ((err = result_add_finding(r, label, score, has ? &code : NULL, sop,
			    (uint32_t)frame, jb && !cJSON_IsNull(jb) ? box : NULL)) < 0)
				return err;
		}
	}
	return 0;
}

int
result_parse_json(struct triaged_result *r, const char *json, size_t len,
                  char *msg, size_t msglen)
{
	cJSON *root = NULL;
	const cJSON *status;
	int rc = TRIAGED_FAIL, depth;

	msg[0] = '\0';
	if (!json || len == 0) {
		snprintf(msg, msglen, "empty answer");
		return TRIAGED_FAIL;
	}
	if (len > RESULT_MAX_JSON) {
		snprintf(msg, msglen, "answer larger than %d bytes", RESULT_MAX_JSON);
		return TRIAGED_FAIL;
	}
	depth = json_depth(json, len);
	if (depth < 0 || depth > RESULT_MAX_DEPTH) {
		snprintf(msg, msglen, depth < 0 ? "answer is not JSON" :
		    "answer nests deeper than %d levels", RESULT_MAX_DEPTH);
		return TRIAGED_FAIL;
	}
	root = cJSON_ParseWithLength(json, len);
	if (!root || !cJSON_IsObject(root)) {
		snprintf(msg, msglen, "answer is not a JSON object");
		goto done;
	}
	status = cJSON_GetObjectItemCaseSensitive(root, "status");
	if (!cJSON_IsString(status)) {
		snprintf(msg, msglen, "invalid result: status is missing");
		goto done;
	}
	if (strcmp(status->valuestring, "error") == 0) {
		const cJSON *retry = cJSON_GetObjectItemCaseSensitive(root, "retryable");
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "message");
		char text[RESULT_MAX_MESSAGE + 1] = "no message";
		if (cJSON_IsString(m)) {
			snprintf(text, sizeof(text), "%s", m->valuestring);
			for (char *p = text; *p; p++)
				if ((unsigned char)*p < 0x20)
					*p = ' ';
		}
		snprintf(msg, msglen, "backend error: %s", text);
		rc = cJSON_IsTrue(retry) ? TRIAGED_RETRY : TRIAGED_FAIL;
		goto done;
	}
	if (strcmp(status->valuestring, "ok") != 0) {
		snprintf(msg, msglen, "invalid result: status must be \"ok\" or \"error\"");
		goto done;
	}
	if (parse_ok(r, root) < 0) {
		snprintf(msg, msglen, "invalid result: %s", r->error);
		goto done;
	}
	rc = TRIAGED_OK;
done:
	cJSON_Delete(root);
	return rc;
}

int
result_finish(struct triaged_result *r)
{
	if (r->error[0])
		return -EINVAL;
	if (r->outcome == OUTCOME_NONE)
		return fail(r, -EINVAL, "the backend reported no study outcome");
	return 0;
}

const char *
result_outcome_name(enum result_outcome o)
{
	switch (o) {
	case OUTCOME_POSITIVE: return "positive";
	case OUTCOME_NEGATIVE: return "negative";
	case OUTCOME_INDETERMINATE: return "indeterminate";
	default: return "";
	}
}

static void
add_code(cJSON *o, bool has, const struct result_code *c)
{
	cJSON *j;

	if (!has)
		return;
	j = cJSON_AddObjectToObject(o, "code");
	cJSON_AddStringToObject(j, "scheme", c->scheme);
	cJSON_AddStringToObject(j, "value", c->value);
	cJSON_AddStringToObject(j, "meaning", c->meaning);
}

char *
result_to_json(const struct triaged_result *r)
{
	cJSON *root = cJSON_CreateObject(), *algo, *study, *arr;
	char *s;

	if (!root)
		return NULL;
	cJSON_AddStringToObject(root, "status", "ok");
	algo = cJSON_AddObjectToObject(root, "algorithm");
	cJSON_AddStringToObject(algo, "name", r->algo_name);
	cJSON_AddStringToObject(algo, "version", r->algo_version);
	cJSON_AddStringToObject(algo, "vendor", r->algo_vendor);
	study = cJSON_AddObjectToObject(root, "study");
	cJSON_AddStringToObject(study, "outcome", result_outcome_name(r->outcome));
	if (r->score >= 0)
		cJSON_AddNumberToObject(study, "score", r->score);
	cJSON_AddStringToObject(study, "summary", r->summary);
	arr = cJSON_AddArrayToObject(study, "measurements");
	for (size_t i = 0; i < r->nmeasurements; i++) {
		const struct result_measurement *m = &r->measurements[i];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", m->name);
		cJSON_AddNumberToObject(o, "value", m->value);
		cJSON_AddStringToObject(o, "unit", m->unit);
		add_code(o, m->has_code, &m->code);
		cJSON_AddItemToArray(arr, o);
	}
	arr = cJSON_AddArrayToObject(root, "findings");
	for (size_t i = 0; i < r->nfindings; i++) {
		const struct result_finding *f = &r->findings[i];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "label", f->label);
		if (f->score >= 0)
			cJSON_AddNumberToObject(o, "score", f->score);
		add_code(o, f->has_code, &f->code);
		cJSON_AddStringToObject(o, "sop_instance_uid", f->sop_uid);
		cJSON_AddNumberToObject(o, "frame", f->frame);
		if (f->has_box)
			cJSON_AddItemToObject(o, "box", cJSON_CreateDoubleArray(f->box, 4));
		if (f->clamped)
			cJSON_AddTrueToObject(o, "box_clamped");
		cJSON_AddItemToArray(arr, o);
	}
	s = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return s;
}
