/*
 * config.h - triaged configuration: one INI file parsed by inih into an
 * immutable, reference-counted snapshot.
 *
 * Every key lives in one table per section (name, type, default, bounds),
 * in config.c.  Parsing never stops at the first error: every error is
 * printed as "file:line: [section] key: why" and config_load() fails at the
 * end.  A reload (SIGHUP) parses into a new snapshot and swaps it; threads
 * that hold the old one keep it until they drop their reference.
 */
#ifndef TRIAGED_CONFIG_H
#define TRIAGED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_AE_MAX      16      /* DICOM AE title, without padding */
#define CONFIG_NAME_MAX    64      /* route, backend, destination names */
#define CONFIG_LIST_MAX    64      /* items in one comma list */
#define CONFIG_SECTIONS_MAX 64     /* routes, backends, destinations each */

/* A comma-separated list value, items trimmed, empty items dropped. */
struct config_list {
	size_t   n;
	char   **items;                 /* n strings, owned */
};

/* A key=value pair kept verbatim for sections whose keys depend on the type
 * (backends, destinations): the type-specific code reads them through
 * config_kv_get(). Known keys are still checked by config.c. */
struct config_kv {
	char    *key;
	char    *value;
	int      line;                  /* 0: absent from the file, the default */
};

struct config_route {
	char     name[CONFIG_NAME_MAX + 1];
	int      line;                  /* line of the [route NAME] header */
	/* conditions: lists of case-insensitive globs, "!" prefix negates */
	struct config_list modality, body_part, sop_class, calling_ae,
	                   study_description, series_description, laterality,
	                   view_position, presentation_intent;
	int      patient_age_min;       /* years, -1 = unset */
	int      patient_age_max;       /* years, -1 = unset */
	/* actions */
	char     backend[CONFIG_NAME_MAX + 1];
	int      priority;              /* 0 (STAT) .. 9 (routine), default 5 */
	struct config_list destinations; /* empty = all */
	int      min_images;            /* default 1 */
	struct config_list expected_views; /* e.g. RCC, LCC, RMLO, LMLO */
	char     sr_template[16];       /* "tid1500" (default) or "mammo-cad" */
	char    *webhook;               /* URL or NULL */
};

struct config_backend {
	char     name[CONFIG_NAME_MAX + 1];
	int      line;
	char     type[16];              /* reference | exec | http | kserve */
	int      timeout_s;             /* default 300 */
	char    *algorithm_name;        /* NULL = what the backend reports */
	char    *algorithm_version;
	size_t   nkv;                   /* every key of the section, verbatim */
	struct config_kv *kv;
};

enum config_send {
	CONFIG_SEND_ORIGINALS = 1 << 0,
	CONFIG_SEND_RESULTS   = 1 << 1,
};

struct config_destination {
	char     name[CONFIG_NAME_MAX + 1];
	int      line;
	char     type[16];              /* dicom | folder | dicomweb */
	char    *host;                  /* dicom */
	int      port;                  /* dicom */
	char     ae_title[CONFIG_AE_MAX + 1];   /* dicom: called AE */
	unsigned send;                  /* enum config_send bits; default both */
	int      max_associations;      /* default 2 */
	int64_t  max_age_s;             /* default 7d */
	int      retry_base_s;          /* first retry after, default 10 */
	int      retry_max_s;           /* longest wait between tries, default 300 */
	char    *path;                  /* folder */
	char    *url;                   /* dicomweb */
	/* additions (config.c): */
	char     calling_ae[CONFIG_AE_MAX + 1]; /* dicom: our AE; default server.ae_title */
	int      timeout_s;             /* dicom, dicomweb: default 60; 0 for folder */
	char    *token_file;            /* dicomweb: bearer token file or NULL */
	size_t   nkv;
	struct config_kv *kv;
};

struct config {
	char    *path;                  /* file it was read from, or NULL */

	struct {
		char     ae_title[CONFIG_AE_MAX + 1];  /* default TRIAGED */
		int      port;                /* default 11112; 1..65535 */
		char    *bind;                /* default 0.0.0.0 */
		int      max_associations;    /* default 16; 1..1024 */
		struct config_list allowed_calling_aes; /* empty = any */
		int      max_pdu;             /* default 131072; 4096..131072 */
		int      acse_timeout_s;      /* default 10 */
		int      dimse_timeout_s;     /* default 60 */
	} server;

	struct {
		char    *spool_dir;           /* default /var/lib/triaged/spool */
		char    *database;            /* default /var/lib/triaged/triaged.db */
		int64_t  min_free_mb;         /* default 1024 */
		int      retention_hours;     /* default 72 */
	} storage;

	struct {
		int      stable_seconds;      /* default 20 */
		int      force_seconds;       /* default 3600 */
	} study;

	struct {
		int      workers;             /* default 2 */
		int      max_attempts;        /* default 5 */
		char    *uid_root;            /* default "" = 2.25.<UUID> */
		int      retry_base_s;        /* first backoff, default 30 */
		int      retry_max_s;         /* backoff cap, default 3600 */
	} analysis;

	size_t nroutes;       struct config_route       *routes;
	size_t nbackends;     struct config_backend     *backends;
	size_t ndestinations; struct config_destination *destinations;

	int      refs;                   /* see config_ref/config_unref */
};

/*
 * Parse FILE. On success *out holds a new snapshot (refs = 1) and 0 is
 * returned. On failure every error has been printed to ERRS (if not NULL),
 * one line each, "file:line: [section] key: why", and -EINVAL (or -errno
 * when the file cannot be read) is returned.
 * PATH NULL gives the embedded defaults (with the default routes and the
 * reference backend).
 */
int config_load(const char *path, struct config **out, FILE *errs);

/* The same, from a string (used by tests and for the embedded defaults).
 * NAME is used as the file name in error messages. */
int config_load_string(const char *text, const char *name,
                       struct config **out, FILE *errs);

/* Thread-safe reference counting of a snapshot. unref frees at zero and
 * returns NULL; both accept NULL. */
struct config *config_ref(struct config *c);
struct config *config_unref(struct config *c);

/* Lookup helpers: NULL when absent. */
const struct config_route       *config_route_find(const struct config *c, const char *name);
const struct config_backend     *config_backend_find(const struct config *c, const char *name);
const struct config_destination *config_destination_find(const struct config *c, const char *name);
const char *config_kv_get(const struct config_kv *kv, size_t n, const char *key);

/* true when LIST holds ITEM exactly (case-insensitive, as AE titles are
 * compared after trimming). */
bool config_list_contains(const struct config_list *l, const char *item);

/* Addition: split VALUE (e.g. a kv[] value such as kserve "labels") exactly
 * as list keys are split: items trimmed, empty items dropped. OUT is
 * overwritten; free it with config_list_done(). 0, -EINVAL or -ENOMEM. */
int config_list_split(const char *value, struct config_list *out);

/* Addition: free the items of L (NULL-tolerant); L becomes empty. */
void config_list_done(struct config_list *l);

/* Parse "7d", "12h", "30m", "45s" or a plain number of seconds.
 * 0 on success, -EINVAL otherwise. */
int config_parse_duration(const char *s, int64_t *out_s);

#endif
