/*
 * result.h - the host-owned result builder behind the backend ABI: every
 * value a backend reports is checked here (sizes, types, scores, boxes
 * clamped to the image, SOP Instance UIDs of the job), whether it comes
 * through the builder calls or as JSON (exec, http).
 */
#ifndef TRIAGED_RESULT_H
#define TRIAGED_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "triaged/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits on what a backend may report. */
#define RESULT_MAX_JSON        (1024 * 1024)   /* bytes of result JSON */
#define RESULT_MAX_DEPTH       16              /* JSON nesting */
#define RESULT_MAX_FINDINGS    256
#define RESULT_MAX_MEASUREMENTS 64
#define RESULT_MAX_TEXT        64              /* label, name, code fields, unit */
#define RESULT_MAX_SUMMARY     1024
#define RESULT_MAX_MESSAGE     512

enum result_outcome {
	OUTCOME_NONE = 0, OUTCOME_POSITIVE, OUTCOME_NEGATIVE, OUTCOME_INDETERMINATE,
};

struct result_code {
	char scheme[RESULT_MAX_TEXT + 1];
	char value[RESULT_MAX_TEXT + 1];
	char meaning[RESULT_MAX_TEXT + 1];
};

struct result_measurement {
	char   name[RESULT_MAX_TEXT + 1];
	double value;
	char   unit[RESULT_MAX_TEXT + 1];     /* UCUM */
	bool   has_code;
	struct result_code code;
};

struct result_finding {
	char     label[RESULT_MAX_TEXT + 1];
	double   score;                       /* 0..1, or < 0 for none */
	bool     has_code;
	struct result_code code;
	char     sop_uid[65];
	uint32_t frame;                       /* 1-based */
	bool     has_box;
	double   box[4];                      /* x0 y0 x1 y1, clamped, x0 <= x1 */
	bool     clamped;                     /* the box was changed to fit */
};

/* What the builder knows of each instance of the job (to check references). */
struct result_image {
	const char *sop_uid;
	uint32_t    columns, rows, frames;
};

struct triaged_result {
	/* the job's instances (borrowed) */
	const struct result_image *images;
	size_t nimages;

	char algo_name[RESULT_MAX_TEXT + 1];
	char algo_version[RESULT_MAX_TEXT + 1];
	char algo_vendor[RESULT_MAX_TEXT + 1];
	enum result_outcome outcome;
	double score;                         /* < 0: none */
	char summary[RESULT_MAX_SUMMARY + 1];
	size_t nmeasurements;
	struct result_measurement measurements[RESULT_MAX_MEASUREMENTS];
	size_t nfindings;
	struct result_finding *findings;      /* RESULT_MAX_FINDINGS entries */
	char error[RESULT_MAX_MESSAGE + 1];   /* first validation error */
};

/* A builder for a job with these instances (borrowed for its life). */
struct triaged_result *result_new(const struct result_image *images, size_t n);
struct triaged_result *result_free(struct triaged_result *r);

/* The builder calls of struct triaged_host (same contract). */
int result_set_algorithm(struct triaged_result *r, const char *name, const char *version,
                         const char *vendor);
int result_set_outcome(struct triaged_result *r, const char *outcome, double score,
                       const char *summary);
int result_add_measurement(struct triaged_result *r, const char *name, double value,
                           const char *unit, const struct triaged_code *code);
int result_add_finding(struct triaged_result *r, const char *label, double score,
                       const struct triaged_code *code, const char *sop_uid,
                       uint32_t frame, const double *box);
/* Returns TRIAGED_OK, TRIAGED_RETRY or TRIAGED_FAIL (see backend.h). */
int result_parse_json(struct triaged_result *r, const char *json, size_t len,
                      char *msg, size_t msglen);

/* A completed result must have an outcome; 0 or -EINVAL with r->error. */
int result_finish(struct triaged_result *r);
/* The normalized result as JSON (design.md section 5), malloc'd. */
char *result_to_json(const struct triaged_result *r);
const char *result_outcome_name(enum result_outcome o);

#ifdef __cplusplus
}
#endif

#endif
