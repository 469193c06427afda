/*
 * backend_reference.h - the built-in "reference" backend (design.md
 * section 5): a transparent, deterministic image analysis that exercises
 * the whole pipeline. It is NOT a diagnostic model.
 */
#ifndef TRIAGED_BACKEND_REFERENCE_H
#define TRIAGED_BACKEND_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

#include "triaged/backend.h"

extern const struct triaged_backend_type backend_reference;

/* Images are analysed at this size (longest side, in pixels). */
#define REFERENCE_MAX_DIM        512
/* At most this many regions per image, and findings per study. */
#define REFERENCE_MAX_PER_IMAGE  3
#define REFERENCE_MAX_FINDINGS   48
/* A region is reported from this saliency score on; a study is
 * "positive" when a finding reaches REFERENCE_POSITIVE. */
#define REFERENCE_REPORT_MIN     0.30
#define REFERENCE_POSITIVE       0.50

/* One salient region of an analysed image, in that image's pixels. */
struct reference_region {
	double   score;          /* saliency in [0,1], see backend_reference.c */
	double   z;              /* robust z-score of the top-hat peak */
	double   contrast;       /* top-hat peak, fraction of the display range */
	uint32_t x0, y0, x1, y1; /* bounding box, inclusive */
	uint32_t peak_x, peak_y;
	uint32_t area;           /* pixels above the threshold */
};

/*
 * Find the salient focal regions of IMG: up to MAX regions with a score of
 * at least MIN_SCORE, best first, into OUT; their number into *N.
 * Deterministic; touches nothing but its arguments. 0 or -ENOMEM.
 */
int reference_analyze_image(const struct triaged_image *img, double min_score,
                            struct reference_region *out, size_t max, size_t *n);

#endif
