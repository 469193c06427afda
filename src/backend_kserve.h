/*
 * backend_kserve.h - internals of the kserve backend (Open Inference
 * Protocol v2: KServe, Triton, MLServer, OpenVINO Model Server), exposed
 * for tests/unit/test_backend_kserve.c. The host knows only
 * `backend_kserve` (include/triaged/backend.h); everything else here is
 * pure (no network, no host) so it can be tested alone:
 *
 *   options   the [backend NAME] keys, parsed and checked;
 *   input     the model input chosen from the metadata (name, datatype,
 *             layout NCHW/NHWC, channels, rows, columns);
 *   geometry  where an image sits in the model input (resize keeping the
 *             aspect, padding) and the exact way back to source pixels;
 *   plane     the resized, normalized image, values in the datatype's domain;
 *   tensor    the plane as raw little-endian bytes or as a JSON array;
 *   response  an inference response (JSON data and/or binary tensors),
 *             every size, shape and datatype checked;
 *   detections boxes/scores/labels picked from a response and validated.
 */
#ifndef TRIAGED_BACKEND_KSERVE_H
#define TRIAGED_BACKEND_KSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "triaged/backend.h"

extern const struct triaged_backend_type backend_kserve;

/* Limits on what a server (or a configuration) may make us do. */
#define KSERVE_NAME_MAX        128          /* model, version, tensor names */
#define KSERVE_MAX_DIM         16384        /* rows or columns of the model input */
#define KSERVE_MAX_INPUT       (16u * 1024 * 1024) /* elements of the input tensor */
#define KSERVE_MAX_RANK        8            /* dims of a response tensor */
#define KSERVE_MAX_TENSORS     64           /* outputs in one response, inputs in metadata */
#define KSERVE_MAX_ELEMENTS    (64u * 1024 * 1024) /* elements of one response tensor */
#define KSERVE_MAX_DETECTIONS  100000       /* N of the boxes/scores/labels outputs */
#define KSERVE_MAX_FINDINGS    256          /* reported per study (the builder's limit) */
#define KSERVE_MAX_FRAMES      64           /* frames analysed per instance */
#define KSERVE_MAX_META        (1024 * 1024) /* bytes of metadata / health / error bodies */
#define KSERVE_MAX_ERROR       200          /* characters of a server's error message */
#define KSERVE_LABEL_MAX       64           /* characters of a label */

enum kserve_dtype {
	KSERVE_BOOL, KSERVE_UINT8, KSERVE_UINT16, KSERVE_UINT32, KSERVE_UINT64,
	KSERVE_INT8, KSERVE_INT16, KSERVE_INT32, KSERVE_INT64,
	KSERVE_FP16, KSERVE_BF16, KSERVE_FP32, KSERVE_FP64, KSERVE_BYTES,
};

enum kserve_normalize  { KSERVE_NORM_UNIT, KSERVE_NORM_MINMAX, KSERVE_NORM_NONE };
enum kserve_box_format { KSERVE_BOX_XYXY_NORMALIZED, KSERVE_BOX_XYXY_PIXELS,
                         KSERVE_BOX_YXYX_NORMALIZED };
enum kserve_layout     { KSERVE_NCHW, KSERVE_NHWC };
enum kserve_placement  { KSERVE_PLACE_CENTER, KSERVE_PLACE_TOP_LEFT };

/* "FP32" -> KSERVE_FP32 (case-sensitive, as the protocol is); -EINVAL. */
int kserve_dtype_parse(const char *s);
const char *kserve_dtype_name(enum kserve_dtype t);
/* Bytes per element; 0 for BYTES (variable). */
size_t kserve_dtype_size(enum kserve_dtype t);

/* FP16 / BF16 conversions (round to nearest even; FP16 saturates). */
uint16_t kserve_f32_to_f16(float f);
float    kserve_f16_to_f32(uint16_t h);
uint16_t kserve_f32_to_bf16(float f);
float    kserve_bf16_to_f32(uint16_t h);

/* ------------------------------------------------------------------ options */

struct kserve_options {
	char     url[2049];             /* without trailing '/' */
	char     url_shown[2049];       /* the same without user:password@, for messages */
	char     model[KSERVE_NAME_MAX + 1];
	char     version[KSERVE_NAME_MAX + 1];   /* "" = the server's choice */
	char     input[KSERVE_NAME_MAX + 1];     /* "" = the model's first input */
	uint32_t in_rows, in_cols;      /* input_size; 0 = from the model */
	int      dtype;                 /* enum kserve_dtype, -1 = from the model */
	enum kserve_normalize  normalize;
	enum kserve_box_format box_format;
	enum kserve_placement  placement;
	size_t   noutputs;              /* 2 (boxes, scores) or 3 (+ labels) */
	char     outputs[3][KSERVE_NAME_MAX + 1];
	struct config_list labels;      /* names of label indices 0, 1, ... */
	double   score_threshold;
	bool     binary;
	int      timeout_s;
	size_t   max_response;          /* bytes */
	char     ca_file[4097];         /* "" = the system's CA store */
	char     algorithm_name[65];    /* "" = the model name */
	char     algorithm_version[65]; /* "" = model_version, or what the server says */
};

/* Read the section's keys through HOST->config_get (absent keys take the
 * defaults of design.md section 5). 0, or -EINVAL with ERR. Free with
 * kserve_options_done(). */
int  kserve_options_parse(const struct triaged_host *host, const struct triaged_section *sec,
                          struct kserve_options *o, char *err, size_t errlen);
void kserve_options_done(struct kserve_options *o);

/* ------------------------------------------------------------------ model */

struct kserve_input {
	char     name[KSERVE_NAME_MAX + 1];
	enum kserve_dtype dtype;
	enum kserve_layout layout;
	int      rank;                  /* 2 [H,W], 3 [C,H,W]/[H,W,C], 4 [1,C,H,W]/[1,H,W,C] */
	int64_t  shape[4];              /* as sent: no -1 left */
	uint32_t channels, rows, cols;
};

/* Resolve the input tensor from its metadata: SHAPE (RANK dims, -1 =
 * variable) and DATATYPE, with the options' input_size and input_datatype.
 * 0, or -EINVAL / -ENOTSUP with ERR. */
int kserve_input_resolve(const struct kserve_options *o, const char *name,
                         const char *datatype, const int64_t *shape, int rank,
                         struct kserve_input *in, char *err, size_t errlen);

struct kserve_model {
	struct kserve_input input;
	char     version[KSERVE_NAME_MAX + 1];   /* the last of "versions", or "" */
	char     platform[65];
};

/* Parse a model metadata response (JSON) against the options: choose the
 * input, check that the configured outputs exist. 0, or -EINVAL with ERR. */
int kserve_metadata_parse(const struct kserve_options *o, const char *json, size_t len,
                          struct kserve_model *m, char *err, size_t errlen);

/* ------------------------------------------------------------------ geometry */

/* The loaded image (IMG_W x IMG_H, SRC_SCALE source pixels per image pixel)
 * resized by PLACED_W/IMG_W horizontally and PLACED_H/IMG_H vertically
 * (the same factor up to rounding: the aspect is kept) and put at
 * (OFF_X, OFF_Y) of the IN_COLS x IN_ROWS model input; the rest is
 * padding (value 0). Coordinates are continuous: pixel i spans [i, i+1). */
struct kserve_geometry {
	uint32_t in_rows, in_cols;
	uint32_t img_w, img_h;
	uint32_t placed_w, placed_h;
	uint32_t off_x, off_y;
	double   src_scale;
	uint32_t src_cols, src_rows;    /* 0 = unknown (no clamping) */
};

int kserve_geometry_init(struct kserve_geometry *g, uint32_t in_rows, uint32_t in_cols,
                         uint32_t img_w, uint32_t img_h, double src_scale,
                         uint32_t src_cols, uint32_t src_rows, enum kserve_placement p);

/* Map box IN (as the model reports it, in format F) to source pixels
 * {x0, y0, x1, y1}, clamped to the placed image (a box in the padding is
 * cut to the image). 0; -EINVAL for a non-finite value; -ERANGE when
 * nothing of the box is left on the image. */
int kserve_box_map(const struct kserve_geometry *g, enum kserve_box_format f,
                   const double in[4], double out[4]);

/* ------------------------------------------------------------------ tensor */

/* The model input plane: in_rows x in_cols floats, row-major, holding the
 * values to send (already in the datatype's domain, see backend_kserve.c),
 * padding 0. PIXELS is the loaded image (g->img_w x g->img_h, 0..65535).
 * 0 or -ENOMEM / -EINVAL. */
int kserve_plane_make(const struct kserve_geometry *g, const uint16_t *pixels,
                      enum kserve_normalize norm, enum kserve_dtype dtype, float **plane);

/* The plane as the raw little-endian tensor of IN (gray replicated to every
 * channel, NCHW or NHWC). *OUT malloc'd, *LEN bytes. */
int kserve_tensor_binary(const struct kserve_input *in, const float *plane,
                         uint8_t **out, size_t *len);
/* The same as a flat JSON array "[v,v,...]" (NUL-terminated, malloc'd). */
int kserve_tensor_json(const struct kserve_input *in, const float *plane,
                       char **out, size_t *len);

/* ------------------------------------------------------------------ response */

struct kserve_tensor {
	char     name[KSERVE_NAME_MAX + 1];
	enum kserve_dtype dtype;
	int      rank;
	int64_t  shape[KSERVE_MAX_RANK];
	size_t   count;                 /* product of shape */
	bool     binary;                /* came as binary data */
	double  *values;                /* numeric types (BOOL as 0/1), when decoded */
	char   **strings;               /* BYTES, when decoded */
};

struct kserve_response {
	size_t   ntensors;
	struct kserve_tensor *tensors;
	char     id[KSERVE_NAME_MAX + 1];
	char     model_version[KSERVE_NAME_MAX + 1];
};

/* Parse an inference response body of LEN bytes. HEADER_LEN is the value of
 * Inference-Header-Content-Length (-1 when absent): the JSON is then the
 * first HEADER_LEN bytes and the binary tensors follow in output order.
 * Only the tensors named in WANT (NWANT names) are decoded; every tensor is
 * checked (datatype, shape, element count, binary_data_size, the binary
 * part's total). 0, or -EINVAL / -ENOMEM with ERR. */
int  kserve_response_parse(const char *body, size_t len, long long header_len,
                           const char *const *want, size_t nwant,
                           struct kserve_response *r, char *err, size_t errlen);
void kserve_response_done(struct kserve_response *r);
const struct kserve_tensor *kserve_response_find(const struct kserve_response *r,
                                                 const char *name);

struct kserve_detection {
	double   box[4];                /* as the model reports it */
	double   score;
	int64_t  label;                 /* index, or -1 with label_text */
	const char *label_text;         /* BYTES label (borrowed from the response) */
};

/* Pick the detections of R through the options' output names; check shapes
 * (boxes [N,4] or [1,N,4]; scores and labels [N], [1,N] or [N,1]), N, and
 * every value (finite, scores in 0..1, labels integral >= 0 or text).
 * *OUT (malloc'd, may be NULL when *N is 0) holds those with score >=
 * threshold, best first; *MAX_SCORE the best score of all (-1 if none).
 * 0, or -EINVAL / -ENOMEM with ERR. */
int kserve_detections(const struct kserve_options *o, const struct kserve_response *r,
                      struct kserve_detection **out, size_t *n, double *max_score,
                      char *err, size_t errlen);

/* The label of D: labels[index], "class N" past the list, or the BYTES
 * text; CODE_VALUE gets it upper-cased for a DICOM Code Value (SH, <= 16
 * characters, letters, digits, space, '_', '-', '.'). */
void kserve_label(const struct kserve_options *o, const struct kserve_detection *d,
                  char *label, size_t labellen, char *code_value, size_t codelen);

/* A server's error body as text for a job message: the "error" member of
 * {"error": ...} or the body itself; printable ASCII, <= KSERVE_MAX_ERROR. */
void kserve_error_text(const char *body, size_t len, char *out, size_t outlen);

#endif
