/*
 * fake_host.h - a struct triaged_host for unit tests and benchmarks: real
 * image decoding (dicom_image_load) plus synthetic images registered by
 * path, a clock that can be frozen, and a result builder that records
 * everything a backend reports (struct triaged_result is defined here, for
 * the fake only) with the checks of backend.h: scores in [0,1], outcome
 * names, SOP Instance UIDs of the study, text lengths. Boxes are recorded as given (not
 * clamped), so tests can check a backend's own arithmetic.
 *
 * One fake host at a time (the host's image_load has no context pointer).
 */
#ifndef TRIAGED_FAKE_HOST_H
#define TRIAGED_FAKE_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "triaged/backend.h"

#define FAKE_MAX_FINDINGS      256
#define FAKE_MAX_MEASUREMENTS  16
#define FAKE_MAX_IMAGES        16
/* the limits of the real builder (and of DICOM LO): longer is -E2BIG */
#define FAKE_MAX_TEXT          64     /* label, name, unit, code fields */
#define FAKE_MAX_SUMMARY       1024

struct fake_code {
	char scheme[32], value[64], meaning[256];
	int  present;
};

struct fake_finding {
	char     label[128];
	double   score;
	struct fake_code code;
	char     sop_uid[65];
	uint32_t frame;
	int      has_box;
	double   box[4];
};

struct fake_measurement {
	char   name[64];
	double value;
	char   unit[32];
	struct fake_code code;
};

struct triaged_result {
	const struct triaged_study *study;     /* for the UID check; may be NULL */
	int    algorithm_set;
	char   alg_name[256], alg_version[64], alg_vendor[64];
	int    outcome_set;
	char   outcome[32];
	double score;
	char   summary[2048];
	size_t nfindings;
	struct fake_finding findings[FAKE_MAX_FINDINGS];
	size_t nmeasurements;
	struct fake_measurement measurements[FAKE_MAX_MEASUREMENTS];
	int    refused;                        /* calls that returned an error */
};

struct fake_host {
	struct triaged_host host;
	int     log_level;                     /* messages at or below go to stderr */
	int     clock_frozen;
	int64_t clock_ms;                      /* now_ms() when frozen */
	/* image_load statistics */
	unsigned image_loads;
	double   image_load_ms;                /* total wall time inside image_load */
	/* synthetic images, returned (copied) for their path */
	size_t  nimages;
	struct { char path[128]; struct triaged_image *img; } images[FAKE_MAX_IMAGES];
};

/* Set up FH and make it the current fake. */
void fake_host_init(struct fake_host *fh);
/* Free the synthetic images. NULL-tolerant. */
void fake_host_done(struct fake_host *fh);
/* Register a W x H image with SCALE (source = W*SCALE x H*SCALE) under
 * PATH; PIXELS are copied. 0 or -ENOMEM/-E2BIG. */
int  fake_host_add_image(struct fake_host *fh, const char *path, uint32_t w, uint32_t h,
                         const uint16_t *pixels, double scale);
/* An empty result for STUDY (may be NULL: no UID check). */
/* What config_get answers for KEY (every section), until changed; VALUE
 * NULL forgets KEY. At most 8 keys. */
void fake_host_config(const char *key, const char *value);
void fake_result_init(struct triaged_result *r, const struct triaged_study *study);
/* 1 when A and B hold the same result. */
int  fake_result_equal(const struct triaged_result *a, const struct triaged_result *b);

#endif
