/*
 * triaged/backend.h - the inference backend plug-in ABI of triaged.
 *
 * A backend is a table of function pointers (struct triaged_backend_ops)
 * under a descriptor (struct triaged_backend_type) with a name, flags and
 * the ABI version it was built against. The host (triaged) calls:
 *
 *   open()     once per worker thread (or once, with TRIAGED_BACKEND_THREADSAFE),
 *              with the backend's [backend NAME] section of the config;
 *   ready()    optional: before a batch of work and after failures (e.g. the
 *              KServe readiness endpoints, an HTTP health check);
 *   analyze()  once per job: one study's instances, a deadline, and a result
 *              builder owned by the host;
 *   close()    when the configuration is reloaded or triaged stops; never
 *              concurrently with analyze() on the same state.
 *
 * Everything a backend reports goes through the host's result builder
 * (struct triaged_host: result_*), which validates it: sizes, types, scores
 * in [0,1], boxes clamped to the image, SOP Instance UIDs that belong to the
 * job. The exec and http backends hand their JSON to result_parse_json(),
 * the same path. A backend never calls triaged's internals, and memory
 * crosses the boundary only in pairs (host->alloc / host->free).
 *
 * Threads: analyze() runs on a worker thread; with one state per worker
 * (the default) a backend needs no locking of its own.
 *
 * Compatibility: new members are only appended, each block marked with the
 * ABI version that added it; the host checks abi_version and struct sizes.
 */
#ifndef TRIAGED_BACKEND_H
#define TRIAGED_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TRIAGED_BACKEND_ABI_VERSION 1

/* What analyze() returns. */
enum triaged_status {
	TRIAGED_OK    = 0,   /* the result builder holds the result */
	TRIAGED_RETRY = 1,   /* transient: try again later, with backoff */
	TRIAGED_FAIL  = 2,   /* permanent: the job fails with the message */
};

/* Flags of a backend type. */
#define TRIAGED_BACKEND_THREADSAFE  (1u << 0)  /* one state shared by all workers */
#define TRIAGED_BACKEND_NEEDS_PIXELS (1u << 1) /* uses host->image_load */

/* Log levels: syslog's (3 err, 4 warning, 5 notice, 6 info, 7 debug). */

/* A coded concept (DICOM code sequence item). Strings may be NULL. */
struct triaged_code {
	const char *scheme;     /* Coding Scheme Designator, e.g. "SCT", "DCM", "99TRIAGED" */
	const char *value;      /* Code Value */
	const char *meaning;    /* Code Meaning */
};

/* One source instance of the job. */
struct triaged_instance {
	const char *sop_instance_uid;
	const char *sop_class_uid;
	const char *series_uid;
	const char *path;               /* Part 10 file in the spool (read-only) */
	const char *transfer_syntax;
	const char *modality;
	const char *body_part;
	const char *laterality;
	const char *view_position;
	const char *image_type;
	const char *presentation_intent;
	uint32_t    rows, columns, frames;
};

/* What is analysed: one study, the instances of one route. */
struct triaged_study {
	int64_t     job_id;
	const char *route;
	const char *study_uid;
	const char *study_dir;          /* spool folder of the study */
	const char *accession;
	const char *study_date;
	const char *study_description;
	const char *modality;
	const char *patient_id;
	const char *patient_name;
	const char *patient_birth_date;
	const char *patient_sex;
	const char *patient_age;        /* as sent, e.g. "011Y" */
	double      patient_age_years;  /* from PatientAge or birth + study date; < 0 unknown */
	size_t      ninstances;
	const struct triaged_instance *instances;
	const char *request_json;       /* the request of design.md section 5, UTF-8 */
};

/* A decoded image, ready for analysis: one frame, one sample per pixel,
 * modality LUT applied, MONOCHROME1 inverted (bigger = brighter), scaled
 * to 0..65535 through the image's VOI window (or min/max), and downsampled
 * so that neither side exceeds the requested max_dim (0 = full size). */
struct triaged_image {
	uint32_t  width, height;        /* after downsampling */
	uint32_t  src_columns, src_rows;/* of the source image */
	double    scale;                /* source pixels per image pixel (>= 1) */
	uint16_t *pixels;               /* width*height, row-major */
	int       was_monochrome1;
	int       was_color;            /* RGB/YBR converted to luminance */
};

struct triaged_result;                  /* host-owned result builder */
struct triaged_section;                 /* a [backend NAME] config section */

/* Services the host gives a backend. */
struct triaged_host {
	uint32_t abi_version;           /* TRIAGED_BACKEND_ABI_VERSION of the host */
	uint32_t size;                  /* sizeof(struct triaged_host) of the host */

	/* ---- valid from ABI version 1 ---- */
	void    (*log)(int level, const char *fmt, ...)
	            __attribute__((format(printf, 2, 3)));
	/* The value of KEY in SECTION, or NULL when absent. */
	const char *(*config_get)(const struct triaged_section *section, const char *key);
	const char *(*section_name)(const struct triaged_section *section);
	/* Milliseconds on a monotonic clock (deadlines are on it). */
	int64_t (*now_ms)(void);
	void   *(*alloc)(size_t n);
	void    (*free)(void *p);

	/* Decode frame FRAME (1-based) of the instance file PATH (any transfer
	 * syntax triaged receives, JPEG 2000 included). 0, or a negative errno
	 * with ERR filled. Free with image_free. */
	int     (*image_load)(const char *path, uint32_t frame, uint32_t max_dim,
	                      struct triaged_image **out, char *err, size_t errlen);
	void    (*image_free)(struct triaged_image *img);

	/* The result builder. Each returns 0, or a negative errno with the
	 * reason in the builder (the job fails with it): -EINVAL for a value
	 * out of range, -E2BIG past a size limit, -ENOENT for a SOP Instance
	 * UID that is not one of the job's. Strings are copied. */
	int (*result_set_algorithm)(struct triaged_result *r, const char *name,
	                            const char *version, const char *vendor);
	/* OUTCOME: "positive", "negative" or "indeterminate"; SCORE in [0,1]
	 * or negative for none; SUMMARY may be NULL. */
	int (*result_set_outcome)(struct triaged_result *r, const char *outcome,
	                          double score, const char *summary);
	/* A study-level numeric measurement, e.g. bone age 132 "mo". */
	int (*result_add_measurement)(struct triaged_result *r, const char *name,
	                              double value, const char *ucum_unit,
	                              const struct triaged_code *code);
	/* A finding on one instance: BOX is {x0, y0, x1, y1} in the source
	 * image's pixel coordinates (column, row), or NULL for none; it is
	 * clamped to the image. FRAME is 1-based. */
	int (*result_add_finding)(struct triaged_result *r, const char *label, double score,
	                          const struct triaged_code *code, const char *sop_instance_uid,
	                          uint32_t frame, const double *box);
	/* Parse the normalized result JSON of design.md section 5 into R
	 * (or its {"status":"error","retryable":…,"message":…} form, which
	 * returns TRIAGED_RETRY or TRIAGED_FAIL with the message in MSG).
	 * Returns a triaged_status. */
	int (*result_parse_json)(struct triaged_result *r, const char *json, size_t len,
	                         char *msg, size_t msglen);
};

struct triaged_backend_ops {
	/* ---- valid from ABI version 1 ---- */
	/* Read the section, set up, and put the backend's state in *STATE.
	 * 0, or a negative errno with ERR filled (the config is refused). */
	int  (*open)(const struct triaged_host *host, const struct triaged_section *section,
	             void **state, char *err, size_t errlen);
	/* Optional (may be NULL): 0 when the backend can take work now, a
	 * negative errno with ERR filled otherwise (the job is retried). */
	int  (*ready)(void *state, char *err, size_t errlen);
	/* Analyse STUDY into R before DEADLINE_MS (host->now_ms scale).
	 * Returns a triaged_status; MSG (MSGLEN bytes) says why on RETRY/FAIL. */
	int  (*analyze)(void *state, const struct triaged_study *study,
	                struct triaged_result *r, int64_t deadline_ms,
	                char *msg, size_t msglen);
	/* Free STATE. NULL-tolerant. */
	void (*close)(void *state);
};

struct triaged_backend_type {
	uint32_t    abi_version;        /* TRIAGED_BACKEND_ABI_VERSION it was built with */
	const char *name;               /* the config's "type = NAME" */
	uint32_t    flags;              /* TRIAGED_BACKEND_* */
	const struct triaged_backend_ops *ops;
};

#ifdef __cplusplus
}
#endif

#endif
