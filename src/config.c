/*
 * config.c - the triaged configuration file.
 *
 * DESIGN
 *
 * Every key of every section is one row of a static table (struct key_def):
 * name, type, default (as text, parsed by the same setter as a value read
 * from the file), bounds, where it lands in the struct, an optional extra
 * check and flags. The defaults, the validation and --check-config all come
 * from these tables; conf/triaged.conf documents them.
 *
 * inih splits "key = value" lines. It is fed through ini_parse_stream() by
 * our own line reader, which is what makes the parse independent of how the
 * distribution compiled inih (Debian's libinih has no handler line numbers,
 * 200-byte lines, multi-line continuations and no callback for empty
 * sections). The reader counts lines, drops a UTF-8 BOM, strips leading
 * whitespace (so an indented key is never a continuation of the previous
 * value), strips inline comments (';' preceded by whitespace), handles
 * "[section NAME]" headers itself and reports malformed lines, so inih only
 * ever sees blank lines and well-formed "key = value" lines. Values longer
 * than inih's line buffer are handed to the handler from the reader's own
 * buffer.
 *
 * Sections whose keys depend on their type ([backend], [destination]) keep
 * every key verbatim in kv[] and are validated when the section ends, once
 * the type is known. Keys absent from the file that have a default are
 * appended to kv[] with line 0, so type-specific code reads one place.
 *
 * Parsing never stops at an error: each one is printed as
 * "file:line: [section] key: why" and counted; config_load() fails at the
 * end. A file without any [route] gets the default routes, and a file
 * without [backend reference] gets the built-in reference backend, both
 * parsed from embedded INI text by the same code. Cross-section checks
 * (route -> backend, route -> destinations, force_seconds >= stable_seconds)
 * run last.
 *
 * The result is immutable once returned; config_ref()/config_unref() are
 * atomic so a reload can swap snapshots while other threads hold the old one.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONFIG_FILE_MAX   (1024 * 1024)   /* bytes in one config file */
#define CONFIG_LINE_MAX   4096            /* characters in one line */
#define KEYS_MAX          32              /* keys in one section table */
#define NO_FIELD          SIZE_MAX
#define WHY_MAX           256
#define BUILTIN_NAME      "(built-in)"

#define FIELD(type, member) \
	.off = offsetof(type, member), .size = sizeof(((type *)0)->member)

/* ------------------------------------------------------------------------ */
/* Key tables                                                               */

enum key_type {
	KT_STRING,      /* char *, owned */
	KT_STRBUF,      /* char[size] */
	KT_AE,          /* char[CONFIG_AE_MAX + 1], a valid AE title */
	KT_INT,         /* int, min..max */
	KT_INT64,       /* int64_t, min..max */
	KT_DURATION,    /* int64_t seconds, min..max */
	KT_NUMBER,      /* double, min..max */
	KT_BOOL,        /* bool: yes or no */
	KT_ENUM,        /* char[size], one of choices */
	KT_LIST,        /* struct config_list, at most max items */
	KT_SEND,        /* unsigned, enum config_send bits */
};

enum key_flag {
	KF_REQUIRED       = 1 << 0,  /* typed sections: must be present */
	KF_NONEMPTY       = 1 << 1,  /* string: empty value is an error */
	KF_EMPTY_NULL     = 1 << 2,  /* string: empty value stored as NULL */
	KF_NO_EMPTY_ITEMS = 1 << 3,  /* list: "a,,b" is an error */
};

/* Extra check of a non-empty value (of each item, for lists). 0 or -EINVAL
 * with the reason in WHY. */
typedef int check_fn(const char *v, char *why, size_t n);

struct key_def {
	const char          *name;
	enum key_type        type;
	const char          *def;      /* default, as text; NULL: none */
	int64_t              min, max; /* numbers; strings: max length; lists: max items */
	size_t               off;      /* into the section struct, or NO_FIELD */
	size_t               size;     /* of the field */
	const char *const   *choices;  /* KT_ENUM, NULL-terminated */
	check_fn            *check;
	unsigned             flags;
};

/* A type of a typed section and the keys that type takes. */
struct type_def {
	const char           *name;
	const struct key_def *keys;
	size_t                nkeys;
};

static check_fn check_ae, check_host, check_ip, check_dicom_host, check_abs_path,
	check_uid_root, check_glob,
	check_name, check_view, check_url, check_command, check_model,
	check_tensor, check_rows_cols, check_datatype, check_label;

static const char *const route_templates[] = { "tid1500", "mammo-cad", NULL };
static const char *const backend_types[] = {
	"reference", "exec", "http", "kserve", NULL };
static const char *const destination_types[] = {
	"dicom", "folder", "dicomweb", NULL };
static const char *const http_send[] = { "dicom", "png", NULL };
static const char *const reference_tasks[] = { "auto", "findings", "bone-age", NULL };
static const char *const kserve_normalize[] = { "0..1", "minmax", "none", NULL };
static const char *const kserve_box_formats[] = {
	"xyxy_normalized", "xyxy_pixels", "yxyx_normalized", NULL };
static const char *const kserve_placements[] = { "center", "top_left", NULL };

#define DURATION_MAX  ((int64_t)3650 * 86400)   /* ten years */
#define MB_MAX        (INT64_MAX / (1024 * 1024))

static const struct key_def server_keys[] = {
	{ .name = "ae_title", .type = KT_AE, .def = "TRIAGED",
	  FIELD(struct config, server.ae_title) },
	{ .name = "port", .type = KT_INT, .def = "11112", .min = 1, .max = 65535,
	  FIELD(struct config, server.port) },
	{ .name = "bind", .type = KT_STRING, .def = "0.0.0.0", .max = 255,
	  .check = check_ip, .flags = KF_NONEMPTY,
	  FIELD(struct config, server.bind) },
	{ .name = "max_associations", .type = KT_INT, .def = "16", .min = 1, .max = 1024,
	  FIELD(struct config, server.max_associations) },
	{ .name = "allowed_calling_aes", .type = KT_LIST, .def = "",
	  .max = CONFIG_LIST_MAX, .check = check_ae,
	  FIELD(struct config, server.allowed_calling_aes) },
	{ .name = "max_pdu", .type = KT_INT, .def = "131072", .min = 4096, .max = 131072,
	  FIELD(struct config, server.max_pdu) },
	{ .name = "acse_timeout_s", .type = KT_INT, .def = "10", .min = 1, .max = 600,
	  FIELD(struct config, server.acse_timeout_s) },
	{ .name = "dimse_timeout_s", .type = KT_INT, .def = "60", .min = 1, .max = 3600,
	  FIELD(struct config, server.dimse_timeout_s) },
};

static const struct key_def storage_keys[] = {
	{ .name = "spool_dir", .type = KT_STRING, .def = "/var/lib/triaged/spool",
	  .max = PATH_MAX, .flags = KF_NONEMPTY, .check = check_abs_path,
	  FIELD(struct config, storage.spool_dir) },
	{ .name = "database", .type = KT_STRING, .def = "/var/lib/triaged/triaged.db",
	  .max = PATH_MAX, .flags = KF_NONEMPTY, .check = check_abs_path,
	  FIELD(struct config, storage.database) },
	{ .name = "min_free_mb", .type = KT_INT64, .def = "1024", .min = 0, .max = MB_MAX,
	  FIELD(struct config, storage.min_free_mb) },
	{ .name = "retention_hours", .type = KT_INT, .def = "72", .min = 0, .max = 87600,
	  FIELD(struct config, storage.retention_hours) },
};

static const struct key_def study_keys[] = {
	{ .name = "stable_seconds", .type = KT_INT, .def = "20", .min = 1, .max = 86400,
	  FIELD(struct config, study.stable_seconds) },
	{ .name = "force_seconds", .type = KT_INT, .def = "3600", .min = 1, .max = 2592000,
	  FIELD(struct config, study.force_seconds) },
};

static const struct key_def analysis_keys[] = {
	{ .name = "workers", .type = KT_INT, .def = "2", .min = 1, .max = 64,
	  FIELD(struct config, analysis.workers) },
	{ .name = "max_attempts", .type = KT_INT, .def = "5", .min = 1, .max = 100,
	  FIELD(struct config, analysis.max_attempts) },
	{ .name = "uid_root", .type = KT_STRING, .def = "", .max = 24,
	  .check = check_uid_root, FIELD(struct config, analysis.uid_root) },
	{ .name = "retry_base_s", .type = KT_INT, .def = "30", .min = 1, .max = 86400,
	  FIELD(struct config, analysis.retry_base_s) },
	{ .name = "retry_max_s", .type = KT_INT, .def = "3600", .min = 1, .max = 604800,
	  FIELD(struct config, analysis.retry_max_s) },
};

#define ROUTE_CONDITION(key) \
	{ .name = #key, .type = KT_LIST, .max = CONFIG_LIST_MAX, \
	  .check = check_glob, FIELD(struct config_route, key) }

static const struct key_def route_keys[] = {
	ROUTE_CONDITION(modality),
	ROUTE_CONDITION(body_part),
	ROUTE_CONDITION(sop_class),
	ROUTE_CONDITION(calling_ae),
	ROUTE_CONDITION(study_description),
	ROUTE_CONDITION(series_description),
	ROUTE_CONDITION(laterality),
	ROUTE_CONDITION(view_position),
	ROUTE_CONDITION(presentation_intent),
	/* no default: -1 (unset) is set by route_begin() */
	{ .name = "patient_age_min", .type = KT_INT, .min = 0, .max = 150,
	  FIELD(struct config_route, patient_age_min) },
	{ .name = "patient_age_max", .type = KT_INT, .min = 0, .max = 150,
	  FIELD(struct config_route, patient_age_max) },
	{ .name = "backend", .type = KT_STRBUF, .def = "reference",
	  .check = check_name, .flags = KF_NONEMPTY,
	  FIELD(struct config_route, backend) },
	{ .name = "priority", .type = KT_INT, .def = "5", .min = 0, .max = 9,
	  FIELD(struct config_route, priority) },
	{ .name = "destinations", .type = KT_LIST, .max = CONFIG_SECTIONS_MAX,
	  .check = check_name, FIELD(struct config_route, destinations) },
	{ .name = "min_images", .type = KT_INT, .def = "1", .min = 1, .max = 10000,
	  FIELD(struct config_route, min_images) },
	{ .name = "expected_views", .type = KT_LIST, .max = CONFIG_LIST_MAX,
	  .check = check_view, .flags = KF_NO_EMPTY_ITEMS,
	  FIELD(struct config_route, expected_views) },
	{ .name = "sr_template", .type = KT_ENUM, .def = "tid1500",
	  .choices = route_templates, FIELD(struct config_route, sr_template) },
	{ .name = "webhook", .type = KT_STRING, .max = 2048, .check = check_url,
	  .flags = KF_EMPTY_NULL, FIELD(struct config_route, webhook) },
};

static const struct key_def backend_keys[] = {
	{ .name = "type", .type = KT_ENUM, .choices = backend_types,
	  .flags = KF_REQUIRED, FIELD(struct config_backend, type) },
	{ .name = "timeout_s", .type = KT_INT, .def = "300", .min = 1, .max = 86400,
	  FIELD(struct config_backend, timeout_s) },
	{ .name = "algorithm_name", .type = KT_STRING, .max = 64,
	  .flags = KF_EMPTY_NULL, FIELD(struct config_backend, algorithm_name) },
	{ .name = "algorithm_version", .type = KT_STRING, .max = 64,
	  .flags = KF_EMPTY_NULL, FIELD(struct config_backend, algorithm_version) },
};

static const struct key_def reference_keys[] = {
	{ .name = "task", .type = KT_ENUM, .def = "auto", .choices = reference_tasks,
	  .off = NO_FIELD },
};

static const struct key_def exec_keys[] = {
	{ .name = "command", .type = KT_STRING, .max = CONFIG_LINE_MAX,
	  .check = check_command, .flags = KF_REQUIRED | KF_NONEMPTY,
	  .off = NO_FIELD },
	{ .name = "max_output_kb", .type = KT_INT, .def = "1024", .min = 1, .max = 1048576,
	  .off = NO_FIELD },
};

static const struct key_def http_keys[] = {
	{ .name = "url", .type = KT_STRING, .max = 2048, .check = check_url,
	  .flags = KF_REQUIRED | KF_NONEMPTY, .off = NO_FIELD },
	{ .name = "token_file", .type = KT_STRING, .max = PATH_MAX,
	  .off = NO_FIELD },
	{ .name = "send", .type = KT_ENUM, .def = "dicom", .choices = http_send,
	  .off = NO_FIELD },
	{ .name = "poll_interval_s", .type = KT_INT, .def = "2", .min = 1, .max = 3600,
	  .off = NO_FIELD },
	{ .name = "max_response_kb", .type = KT_INT, .def = "1024", .min = 1, .max = 1048576,
	  .off = NO_FIELD },
	{ .name = "connect_timeout_s", .type = KT_INT, .def = "10", .min = 1, .max = 600,
	  .off = NO_FIELD },
	{ .name = "ca_file", .type = KT_STRING, .max = PATH_MAX, .off = NO_FIELD },
	{ .name = "health_url", .type = KT_STRING, .max = 2048, .check = check_url,
	  .off = NO_FIELD },
};

static const struct key_def kserve_keys[] = {
	{ .name = "url", .type = KT_STRING, .max = 2048, .check = check_url,
	  .flags = KF_REQUIRED | KF_NONEMPTY, .off = NO_FIELD },
	{ .name = "model", .type = KT_STRING, .max = 128, .check = check_model,
	  .flags = KF_REQUIRED | KF_NONEMPTY, .off = NO_FIELD },
	{ .name = "model_version", .type = KT_STRING, .max = 128,
	  .check = check_model, .off = NO_FIELD },
	{ .name = "input", .type = KT_STRING, .max = 128, .check = check_tensor,
	  .off = NO_FIELD },
	{ .name = "input_size", .type = KT_STRING, .max = 16,
	  .check = check_rows_cols, .off = NO_FIELD },
	{ .name = "input_datatype", .type = KT_STRING, .max = 8,
	  .check = check_datatype, .off = NO_FIELD },
	{ .name = "normalize", .type = KT_ENUM, .def = "0..1",
	  .choices = kserve_normalize, .off = NO_FIELD },
	{ .name = "outputs", .type = KT_LIST, .max = 3, .check = check_tensor,
	  .flags = KF_NO_EMPTY_ITEMS, .off = NO_FIELD },
	{ .name = "box_format", .type = KT_ENUM, .def = "xyxy_normalized",
	  .choices = kserve_box_formats, .off = NO_FIELD },
	{ .name = "labels", .type = KT_LIST, .max = CONFIG_LIST_MAX,
	  .check = check_label, .off = NO_FIELD },
	{ .name = "score_threshold", .type = KT_NUMBER, .def = "0.5", .min = 0, .max = 1,
	  .off = NO_FIELD },
	{ .name = "binary", .type = KT_BOOL, .def = "yes", .off = NO_FIELD },
	{ .name = "placement", .type = KT_ENUM, .def = "center",
	  .choices = kserve_placements, .off = NO_FIELD },
	{ .name = "max_response_kb", .type = KT_INT, .def = "65536", .min = 1, .max = 1048576,
	  .off = NO_FIELD },
	{ .name = "ca_file", .type = KT_STRING, .max = PATH_MAX, .off = NO_FIELD },
};

static const struct type_def backend_type_defs[] = {
	{ "reference", reference_keys, sizeof(reference_keys) / sizeof(reference_keys[0]) },
	{ "exec", exec_keys, sizeof(exec_keys) / sizeof(exec_keys[0]) },
	{ "http", http_keys, sizeof(http_keys) / sizeof(http_keys[0]) },
	{ "kserve", kserve_keys, sizeof(kserve_keys) / sizeof(kserve_keys[0]) },
	{ NULL, NULL, 0 },
};

static const struct key_def destination_keys[] = {
	{ .name = "type", .type = KT_ENUM, .choices = destination_types,
	  .flags = KF_REQUIRED, FIELD(struct config_destination, type) },
	{ .name = "send", .type = KT_SEND, .def = "originals, results",
	  FIELD(struct config_destination, send) },
	{ .name = "max_associations", .type = KT_INT, .def = "2", .min = 1, .max = 64,
	  FIELD(struct config_destination, max_associations) },
	{ .name = "max_age", .type = KT_DURATION, .def = "7d", .min = 1,
	  .max = DURATION_MAX, FIELD(struct config_destination, max_age_s) },
	{ .name = "retry_base_s", .type = KT_INT, .def = "10", .min = 1, .max = 86400,
	  FIELD(struct config_destination, retry_base_s) },
	{ .name = "retry_max_s", .type = KT_INT, .def = "300", .min = 1, .max = 86400,
	  FIELD(struct config_destination, retry_max_s) },
};

static const struct key_def dicom_keys[] = {
	{ .name = "host", .type = KT_STRING, .max = 255, .check = check_dicom_host,
	  .flags = KF_REQUIRED | KF_NONEMPTY,
	  FIELD(struct config_destination, host) },
	{ .name = "port", .type = KT_INT, .min = 1, .max = 65535,
	  .flags = KF_REQUIRED, FIELD(struct config_destination, port) },
	{ .name = "ae_title", .type = KT_AE, .flags = KF_REQUIRED,
	  FIELD(struct config_destination, ae_title) },
	/* no default here: the server's ae_title, filled in at the end */
	{ .name = "calling_ae", .type = KT_AE,
	  FIELD(struct config_destination, calling_ae) },
	{ .name = "timeout_s", .type = KT_INT, .def = "60", .min = 1, .max = 86400,
	  FIELD(struct config_destination, timeout_s) },
	/* our maximum receive PDU on associations to the peer (dest_dicom.c) */
	{ .name = "max_pdu", .type = KT_INT, .def = "65536", .min = 4096, .max = 131072,
	  .off = NO_FIELD },
};

static const struct key_def folder_keys[] = {
	{ .name = "path", .type = KT_STRING, .max = PATH_MAX,
	  .flags = KF_REQUIRED | KF_NONEMPTY,
	  FIELD(struct config_destination, path) },
};

static const struct key_def dicomweb_keys[] = {
	{ .name = "url", .type = KT_STRING, .max = 2048, .check = check_url,
	  .flags = KF_REQUIRED | KF_NONEMPTY,
	  FIELD(struct config_destination, url) },
	{ .name = "token_file", .type = KT_STRING, .max = PATH_MAX,
	  .flags = KF_EMPTY_NULL,
	  FIELD(struct config_destination, token_file) },
	{ .name = "timeout_s", .type = KT_INT, .def = "60", .min = 1, .max = 86400,
	  FIELD(struct config_destination, timeout_s) },
	/* dest_dicomweb.c: CA bundle for a private PKI (verification stays
	 * on), and the largest STOW-RS response read */
	{ .name = "ca_file", .type = KT_STRING, .max = PATH_MAX, .off = NO_FIELD },
	{ .name = "max_response_kb", .type = KT_INT, .def = "1024", .min = 1, .max = 65536,
	  .off = NO_FIELD },
};

static const struct type_def destination_type_defs[] = {
	{ "dicom", dicom_keys, sizeof(dicom_keys) / sizeof(dicom_keys[0]) },
	{ "folder", folder_keys, sizeof(folder_keys) / sizeof(folder_keys[0]) },
	{ "dicomweb", dicomweb_keys, sizeof(dicomweb_keys) / sizeof(dicomweb_keys[0]) },
	{ NULL, NULL, 0 },
};

#define NKEYS(t) (sizeof(t) / sizeof((t)[0]))

/* Sections. The four fixed ones come first, in this order. */
enum sect_kind {
	SK_SERVER,
	SK_STORAGE,
	SK_STUDY,
	SK_ANALYSIS,
	SK_FIXED_N,
	SK_ROUTE = SK_FIXED_N,
	SK_BACKEND,
	SK_DESTINATION,
	SK_NONE,        /* before the first section header */
	SK_IGNORE,      /* a section in error: its keys are skipped */
};

static const struct {
	const char           *name;
	const struct key_def *keys;
	size_t                nkeys;
} sections[] = {
	[SK_SERVER]      = { "server",      server_keys,      NKEYS(server_keys) },
	[SK_STORAGE]     = { "storage",     storage_keys,     NKEYS(storage_keys) },
	[SK_STUDY]       = { "study",       study_keys,       NKEYS(study_keys) },
	[SK_ANALYSIS]    = { "analysis",    analysis_keys,    NKEYS(analysis_keys) },
	[SK_ROUTE]       = { "route",       route_keys,       NKEYS(route_keys) },
	[SK_BACKEND]     = { "backend",     backend_keys,     NKEYS(backend_keys) },
	[SK_DESTINATION] = { "destination", destination_keys, NKEYS(destination_keys) },
};

_Static_assert(NKEYS(server_keys) <= KEYS_MAX, "KEYS_MAX");
_Static_assert(NKEYS(storage_keys) <= KEYS_MAX, "KEYS_MAX");
_Static_assert(NKEYS(study_keys) <= KEYS_MAX, "KEYS_MAX");
_Static_assert(NKEYS(analysis_keys) <= KEYS_MAX, "KEYS_MAX");
_Static_assert(NKEYS(route_keys) <= KEYS_MAX, "KEYS_MAX");

/* The default routes of design.md section 3, used when a file has no
 * [route] at all, and the built-in backend, used when no backend is named
 * "reference". Parsed by the same code as the file. */
static const char default_routes[] =
	"[route fracture]\n"
	"modality = CR, DX\n"
	"backend = reference\n"
	"priority = 5\n"
	"\n"
	"[route bone-age]\n"
	"modality = CR, DX\n"
	"body_part = HAND\n"
	"patient_age_max = 18\n"
	"backend = reference\n"
	"\n"
	"[route mammo]\n"
	"modality = MG\n"
	"presentation_intent = FOR PRESENTATION\n"
	"expected_views = RCC, LCC, RMLO, LMLO\n"
	"sr_template = tid1500\n"
	"backend = reference\n";

static const char default_backend[] =
	"[backend reference]\n"
	"type = reference\n";

/* ------------------------------------------------------------------------ */
/* Parser state                                                             */

struct parser {
	struct config *c;
	FILE          *errs;
	const char    *file;        /* name of the user's file, for final checks */
	const char    *name;        /* name of the text being parsed now */
	int            nerrors;
	bool           oom;

	/* line reader */
	const char    *text;
	size_t         len, pos;
	int            line;
	char          *buf;
	size_t         cap;
	const char    *long_value;  /* value of a line too long for inih */

	/* current section */
	enum sect_kind kind;
	char           label[CONFIG_NAME_MAX + 32];
	int            header_line;
	size_t         index;       /* into routes, backends or destinations */

	int            route_headers;    /* [route ...] headers seen, even bad */
	int            fixed_header[SK_FIXED_N];
	int            fixed_lines[SK_FIXED_N][KEYS_MAX];
	int            route_lines[CONFIG_SECTIONS_MAX][KEYS_MAX];
};

__attribute__((format(printf, 5, 6)))
static void report(struct parser *p, int line, const char *section,
                   const char *key, const char *fmt, ...)
{
	va_list ap;

	p->nerrors++;
	if (!p->errs)
		return;
	fprintf(p->errs, "%s:%d: ", p->name, line);
	if (section)
		fprintf(p->errs, "[%s] ", section);
	if (key)
		fprintf(p->errs, "%s: ", key);
	va_start(ap, fmt);
	vfprintf(p->errs, fmt, ap);
	va_end(ap);
	fputc('\n', p->errs);
}

static void report_oom(struct parser *p)
{
	if (!p->oom)
		report(p, p->line, NULL, NULL, "out of memory");
	p->oom = true;
}

__attribute__((format(printf, 3, 4)))
static int why_set(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

static char *trim(char *s)
{
	char *e;

	while (is_blank(*s))
		s++;
	e = s + strlen(s);
	while (e > s && is_blank(e[-1]))
		*--e = '\0';
	return s;
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t')
			return true;
		else if (*s == 0x7f)
			return true;
	return false;
}

static bool is_name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
}

static const struct key_def *key_find(const struct key_def *keys, size_t n,
                                      const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static const struct type_def *type_find(const struct type_def *types,
                                        const char *name)
{
	for (; name && types->name; types++)
		if (strcmp(types->name, name) == 0)
			return types;
	return NULL;
}

static int parse_int64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!*s || is_blank(*s))
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int config_parse_duration(const char *s, int64_t *out_s)
{
	int64_t v = 0, mult = 1;
	const char *q;

	if (!s || !out_s || *s < '0' || *s > '9')
		return -EINVAL;
	for (q = s; *q >= '0' && *q <= '9'; q++) {
		if (v > (INT64_MAX - (*q - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (*q - '0');
	}
	switch (*q) {
	case '\0': break;
	case 's': mult = 1; q++; break;
	case 'm': mult = 60; q++; break;
	case 'h': mult = 3600; q++; break;
	case 'd': mult = 86400; q++; break;
	case 'w': mult = 7 * 86400; q++; break;
	default: return -EINVAL;
	}
	if (*q || v > INT64_MAX / mult)
		return -EINVAL;
	*out_s = v * mult;
	return 0;
}

/* Only "yes" and "no": typed sections keep values verbatim in kv[], so the
 * code reading them compares with one spelling. */
static int parse_bool(const char *s, bool *out)
{
	if (strcmp(s, "yes") == 0)
		*out = true;
	else if (strcmp(s, "no") == 0)
		*out = false;
	else
		return -EINVAL;
	return 0;
}

static void choices_join(const char *const *choices, char *buf, size_t n)
{
	size_t used = 0;

	buf[0] = '\0';
	for (; *choices && used < n; choices++) {
		int w = snprintf(buf + used, n - used, "%s%s",
		                 used ? ", " : "", *choices);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* ------------------------------------------------------------------------ */
/* Value checks                                                             */

static int check_ae(const char *v, char *why, size_t n)
{
	size_t len = strlen(v), i;
	bool spaces = true;

	if (len == 0)
		return why_set(why, n, "AE title is empty");
	if (len > CONFIG_AE_MAX)
		return why_set(why, n, "AE title '%.64s' is longer than %d characters",
		               v, CONFIG_AE_MAX);
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (ch < 0x20 || ch > 0x7e)
			return why_set(why, n, "AE title '%s' has a character that is not printable ASCII", v);
		if (ch == '\\')
			return why_set(why, n, "AE title '%s' contains a backslash", v);
		if (ch != ' ')
			spaces = false;
	}
	if (spaces)
		return why_set(why, n, "AE title is all spaces");
	return 0;
}

/* An IPv4/IPv6 literal or a host name: dot-separated labels of 1..63
 * letters, digits, '-' or '_', optionally one trailing dot. */
static int check_host(const char *v, char *why, size_t n)
{
	unsigned char addr[16];
	size_t label = 0;
	const char *s;

	if (inet_pton(AF_INET, v, addr) == 1 || inet_pton(AF_INET6, v, addr) == 1)
		return 0;
	for (s = v; *s; s++) {
		if (*s == '.' && label > 0 && label <= 63)
			label = 0;
		else if (is_name_char(*s) && *s != '.')
			label++;
		else
			goto bad;
	}
	if (label <= 63 && (label > 0 || (s - v > 1 && s[-1] == '.')))
		return 0;
bad:
	return why_set(why, n, "'%.64s' is not an IP address or a host name", v);
}

/*
 * The spool and the database: absolute, so that triaged and triagectl,
 * whatever their working directories, mean the same files (the rows record
 * absolute paths, and retention unlinks them).
 */
static int check_abs_path(const char *v, char *why, size_t n)
{
	if (v[0] != '/')
		return why_set(why, n, "'%.64s' is not an absolute path", v);
	if (strstr(v, "/../") || (strlen(v) >= 3 && strcmp(v + strlen(v) - 3, "/..") == 0))
		return why_set(why, n, "'%.64s' contains '..'", v);
	return 0;
}

/* The listening address: numeric, as the receiver binds it. */
static int check_ip(const char *v, char *why, size_t n)
{
	unsigned char addr[16];

	if (inet_pton(AF_INET, v, addr) == 1 || inet_pton(AF_INET6, v, addr) == 1)
		return 0;
	return why_set(why, n, "'%.64s' is not an IPv4 or IPv6 address (no host names)", v);
}

/* A DICOM peer: DCMTK 3.6.7's SCU connects over IPv4 only. */
static int check_dicom_host(const char *v, char *why, size_t n)
{
	unsigned char addr[16];

	if (inet_pton(AF_INET6, v, addr) == 1)
		return why_set(why, n, "'%.64s': IPv6 is not supported by the DICOM SCU "
		    "(DCMTK 3.6.7); use an IPv4 address or a host name", v);
	return check_host(v, why, n);
}

/* Digits and dots, components without leading zeros, none empty. */
static int check_uid_root(const char *v, char *why, size_t n)
{
	const char *s, *comp = v;

	for (s = v;; s++) {
		if (*s == '.' || *s == '\0') {
			if (s == comp)
				return why_set(why, n, "'%s' has an empty component", v);
			if (*comp == '0' && s - comp > 1)
				return why_set(why, n, "'%s' has a component with a leading zero", v);
			if (*s == '\0')
				break;
			comp = s + 1;
		} else if (*s < '0' || *s > '9') {
			return why_set(why, n, "'%s' must contain only digits and dots", v);
		}
	}
	return 0;
}

static int check_glob(const char *v, char *why, size_t n)
{
	if (v[0] == '!' && !v[1])
		return why_set(why, n, "'!' must be followed by a pattern");
	if (v[0] == '!' && is_blank(v[1]))
		return why_set(why, n, "write '!PATTERN' without a space: '%.64s'", v);
	return 0;
}

static int check_name(const char *v, char *why, size_t n)
{
	const char *s;

	if (strlen(v) > CONFIG_NAME_MAX)
		return why_set(why, n, "name '%.80s' is longer than %d characters",
		               v, CONFIG_NAME_MAX);
	for (s = v; *s; s++)
		if (!is_name_char(*s))
			return why_set(why, n, "name '%s' may only contain letters, digits, '_', '-' and '.'", v);
	return 0;
}

static int check_view(const char *v, char *why, size_t n)
{
	const char *s;

	for (s = v; *s; s++)
		if (!is_name_char(*s) || *s == '.')
			return why_set(why, n, "view '%s' may only contain letters, digits, '_' and '-'", v);
	return 0;
}

static int check_url(const char *v, char *why, size_t n)
{
	const char *host, *s;

	if (strncasecmp(v, "http://", 7) == 0)
		host = v + 7;
	else if (strncasecmp(v, "https://", 8) == 0)
		host = v + 8;
	else
		return why_set(why, n, "'%.64s' is not an http:// or https:// URL", v);
	if (!*host || *host == '/' || *host == '?' || *host == '#')
		return why_set(why, n, "URL '%.64s' has no host", v);
	for (s = v; *s; s++)
		if (*s == ' ' || *s == '\t' || *s == '"' || *s == '\\')
			return why_set(why, n, "URL '%.64s' contains a space, quote or backslash", v);
	return 0;
}

/* An argv line split like a shell would (quotes, backslashes), never run
 * by one: quotes must balance and there must be a program. */
static int check_command(const char *v, char *why, size_t n)
{
	const char *s;
	char quote = 0;
	bool word = false;

	for (s = v; *s; s++) {
		if (quote) {
			if (*s == quote)
				quote = 0;
			else if (quote == '"' && *s == '\\' && s[1])
				s++;
		} else if (*s == '\'' || *s == '"') {
			quote = *s;
			word = true;
		} else if (*s == '\\') {
			if (!s[1])
				return why_set(why, n, "ends with a backslash");
			s++;
			word = true;
		} else if (!is_blank(*s)) {
			word = true;
		}
	}
	if (quote)
		return why_set(why, n, "unterminated %c quote", quote);
	if (!word)
		return why_set(why, n, "names no program");
	return 0;
}

/* Goes into a URL path (/v2/models/NAME/versions/V). */
static int check_model(const char *v, char *why, size_t n)
{
	const char *s;

	for (s = v; *s; s++)
		if (!is_name_char(*s))
			return why_set(why, n, "'%.64s' may only contain letters, digits, '_', '-' and '.'", v);
	return 0;
}

static int check_tensor(const char *v, char *why, size_t n)
{
	const char *s;

	for (s = v; *s; s++)
		if (!is_name_char(*s) && *s != ':' && *s != '/')
			return why_set(why, n, "tensor name '%.64s' may only contain letters, digits and _ - . : /", v);
	return 0;
}

static int check_rows_cols(const char *v, char *why, size_t n)
{
	unsigned long rows, cols;
	char *end;

	if (*v < '1' || *v > '9')
		goto bad;
	rows = strtoul(v, &end, 10);
	if (*end != 'x' || end[1] < '1' || end[1] > '9')
		goto bad;
	cols = strtoul(end + 1, &end, 10);
	if (*end || rows > 16384 || cols > 16384)
		goto bad;
	return 0;
bad:
	return why_set(why, n, "'%.64s' must be ROWSxCOLUMNS, each 1..16384 (e.g. 1024x832)", v);
}

static int check_datatype(const char *v, char *why, size_t n)
{
	static const char *const types[] = {
		"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
		"INT64", "FP16", "BF16", "FP32", "FP64", NULL };
	char list[128];
	size_t i;

	for (i = 0; types[i]; i++)
		if (strcmp(v, types[i]) == 0)
			return 0;
	choices_join(types, list, sizeof(list));
	return why_set(why, n, "must be empty or one of %s, not '%.32s'", list, v);
}

static int check_label(const char *v, char *why, size_t n)
{
	if (strlen(v) > 64)
		return why_set(why, n, "label '%.64s...' is longer than 64 characters", v);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Lists                                                                    */

void config_list_done(struct config_list *l)
{
	if (!l)
		return;
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

/* Split V on commas into OUT, items trimmed, empty items dropped (or an
 * error with KF_NO_EMPTY_ITEMS), each item checked. */
static int list_parse(const struct key_def *k, const char *v,
                      struct config_list *out, char *why, size_t n)
{
	struct config_list l = { 0, NULL };
	char *copy, *item, *next;
	size_t count = 1;
	const char *s;
	int r = 0;

	for (s = v; *s; s++)
		if (*s == ',')
			count++;
	copy = strdup(v);
	l.items = calloc(count, sizeof(*l.items));
	if (!copy || !l.items) {
		r = -ENOMEM;
		goto out;
	}
	for (item = copy; item; item = next) {
		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		item = trim(item);
		if (!*item) {
			if ((k->flags & KF_NO_EMPTY_ITEMS) && *v) {
				r = why_set(why, n, "empty item in '%.64s'", v);
				goto out;
			}
			continue;
		}
		if (k->max && (int64_t)l.n >= k->max) {
			r = why_set(why, n, "more than %lld items", (long long)k->max);
			goto out;
		}
		if (k->check && (r = k->check(item, why, n)) < 0)
			goto out;
		l.items[l.n] = strdup(item);
		if (!l.items[l.n]) {
			r = -ENOMEM;
			goto out;
		}
		l.n++;
	}
	if (l.n == 0) {
		free(l.items);
		l.items = NULL;
	}
	config_list_done(out);
	*out = l;
	l.n = 0;
	l.items = NULL;
out:
	config_list_done(&l);
	free(copy);
	return r;
}

int config_list_split(const char *value, struct config_list *out)
{
	static const struct key_def k = { .name = "list", .type = KT_LIST };
	char why[WHY_MAX];

	if (!value || !out)
		return -EINVAL;
	out->n = 0;
	out->items = NULL;
	return list_parse(&k, value, out, why, sizeof(why));
}

static int send_parse(const char *v, unsigned *out, char *why, size_t n)
{
	static const struct key_def k = { .name = "send", .type = KT_LIST,
	                                  .max = CONFIG_LIST_MAX };
	struct config_list l = { 0, NULL };
	unsigned bits = 0;
	size_t i;
	int r;

	r = list_parse(&k, v, &l, why, n);
	if (r < 0)
		return r;
	for (i = 0; i < l.n; i++) {
		if (strcasecmp(l.items[i], "originals") == 0) {
			bits |= CONFIG_SEND_ORIGINALS;
		} else if (strcasecmp(l.items[i], "results") == 0) {
			bits |= CONFIG_SEND_RESULTS;
		} else {
			r = why_set(why, n, "items must be originals or results, not '%.64s'",
			            l.items[i]);
			goto out;
		}
	}
	if (!bits) {
		r = why_set(why, n, "must list originals, results or both");
		goto out;
	}
	*out = bits;
out:
	config_list_done(&l);
	return r;
}

/* ------------------------------------------------------------------------ */
/* Setting one value                                                        */

/* Parse V as K and store it at BASE + K->off (validate only when BASE is
 * NULL or the key has no field). 0, -EINVAL with WHY, or -ENOMEM. */
static int set_value(const struct key_def *k, void *base, const char *v,
                     char *why, size_t n)
{
	void *dst = base && k->off != NO_FIELD ? (char *)base + k->off : NULL;
	char list[128];
	int64_t i64;
	double d;
	char *end;
	bool b;
	int r;

	if (has_control(v))
		return why_set(why, n, "contains control characters");

	switch (k->type) {
	case KT_STRING:
		if (!*v && (k->flags & KF_NONEMPTY))
			return why_set(why, n, "must not be empty");
		if (k->max && (int64_t)strlen(v) > k->max)
			return why_set(why, n, "longer than %lld characters", (long long)k->max);
		if (*v && k->check && (r = k->check(v, why, n)) < 0)
			return r;
		if (dst) {
			char *s = NULL;

			if (*v || !(k->flags & KF_EMPTY_NULL)) {
				s = strdup(v);
				if (!s)
					return -ENOMEM;
			}
			free(*(char **)dst);
			*(char **)dst = s;
		}
		return 0;

	case KT_STRBUF:
	case KT_AE:
	case KT_ENUM:
		if (k->type == KT_AE && (r = check_ae(v, why, n)) < 0)
			return r;
		if (k->type == KT_ENUM) {
			const char *const *c;

			for (c = k->choices; *c; c++)
				if (strcmp(*c, v) == 0)
					break;
			if (!*c) {
				choices_join(k->choices, list, sizeof(list));
				return why_set(why, n, "must be one of %s, not '%.64s'", list, v);
			}
		}
		if (!*v && (k->flags & KF_NONEMPTY))
			return why_set(why, n, "must not be empty");
		if (*v && k->check && (r = k->check(v, why, n)) < 0)
			return r;
		if (dst) {
			if (strlen(v) >= k->size)
				return why_set(why, n, "longer than %zu characters", k->size - 1);
			memcpy(dst, v, strlen(v) + 1);
		}
		return 0;

	case KT_INT:
	case KT_INT64:
		if (parse_int64(v, &i64) < 0 || i64 < k->min || i64 > k->max)
			return why_set(why, n, "must be an integer between %lld and %lld, not '%.64s'",
			               (long long)k->min, (long long)k->max, v);
		if (dst && k->type == KT_INT)
			*(int *)dst = (int)i64;
		else if (dst)
			*(int64_t *)dst = i64;
		return 0;

	case KT_DURATION:
		if (config_parse_duration(v, &i64) < 0 || i64 < k->min || i64 > k->max)
			return why_set(why, n, "must be a duration (45s, 30m, 12h, 7d, 2w or plain seconds) "
			               "between %lld and %lld seconds, not '%.64s'",
			               (long long)k->min, (long long)k->max, v);
		if (dst)
			*(int64_t *)dst = i64;
		return 0;

	case KT_NUMBER:
		errno = 0;
		d = *v && !is_blank(*v) ? strtod(v, &end) : NAN;
		if (isnan(d) || errno || *end || !isfinite(d) ||
		    d < (double)k->min || d > (double)k->max)
			return why_set(why, n, "must be a number between %lld and %lld, not '%.64s'",
			               (long long)k->min, (long long)k->max, v);
		if (dst)
			*(double *)dst = d;
		return 0;

	case KT_BOOL:
		if (parse_bool(v, &b) < 0)
			return why_set(why, n, "must be yes or no, not '%.64s'", v);
		if (dst)
			*(bool *)dst = b;
		return 0;

	case KT_LIST:
		if (dst)
			return list_parse(k, v, dst, why, n);
		else {
			struct config_list l = { 0, NULL };

			r = list_parse(k, v, &l, why, n);
			config_list_done(&l);
			return r;
		}

	case KT_SEND: {
		unsigned bits = 0;

		r = send_parse(v, &bits, why, n);
		if (r == 0 && dst)
			*(unsigned *)dst = bits;
		return r;
	}
	}
	return why_set(why, n, "internal error: bad key type");
}

/* The line where NAME was set in a section whose key lines are LINES. */
static int key_line(const int *lines, const struct key_def *keys, size_t n,
                    const char *name)
{
	const struct key_def *k = key_find(keys, n, name);

	return k ? lines[k - keys] : 0;
}

/* Set every key of KEYS that has a default and a field. */
static void set_defaults(struct parser *p, const struct key_def *keys,
                         size_t n, void *base)
{
	char why[WHY_MAX];
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		if (!keys[i].def || keys[i].off == NO_FIELD)
			continue;
		r = set_value(&keys[i], base, keys[i].def, why, sizeof(why));
		if (r == -ENOMEM)
			report_oom(p);
		else if (r < 0)
			report(p, 0, NULL, keys[i].name, "internal error: bad default: %s", why);
	}
}

/* ------------------------------------------------------------------------ */
/* Sections                                                                 */

static void kv_free(struct config_kv *kv, size_t n)
{
	size_t i;

	for (i = 0; kv && i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

static int kv_add(struct config_kv **kv, size_t *n, const char *key,
                  const char *value, int line)
{
	struct config_kv *grown;
	char *k, *v;

	grown = realloc(*kv, (*n + 1) * sizeof(**kv));
	if (!grown)
		return -ENOMEM;
	*kv = grown;
	k = strdup(key);
	v = strdup(value);
	if (!k || !v) {
		free(k);
		free(v);
		return -ENOMEM;
	}
	grown[*n].key = k;
	grown[*n].value = v;
	grown[*n].line = line;
	(*n)++;
	return 0;
}

static void route_done(struct config_route *r)
{
	config_list_done(&r->modality);
	config_list_done(&r->body_part);
	config_list_done(&r->sop_class);
	config_list_done(&r->calling_ae);
	config_list_done(&r->study_description);
	config_list_done(&r->series_description);
	config_list_done(&r->laterality);
	config_list_done(&r->view_position);
	config_list_done(&r->presentation_intent);
	config_list_done(&r->destinations);
	config_list_done(&r->expected_views);
	free(r->webhook);
	r->webhook = NULL;
}

static void backend_done(struct config_backend *b)
{
	free(b->algorithm_name);
	free(b->algorithm_version);
	kv_free(b->kv, b->nkv);
	b->kv = NULL;
	b->nkv = 0;
}

static void destination_done(struct config_destination *d)
{
	free(d->host);
	free(d->path);
	free(d->url);
	free(d->token_file);
	kv_free(d->kv, d->nkv);
	d->kv = NULL;
	d->nkv = 0;
}

static void config_free(struct config *c)
{
	size_t i;

	if (!c)
		return;
	free(c->path);
	free(c->server.bind);
	config_list_done(&c->server.allowed_calling_aes);
	free(c->storage.spool_dir);
	free(c->storage.database);
	free(c->analysis.uid_root);
	for (i = 0; i < c->nroutes; i++)
		route_done(&c->routes[i]);
	free(c->routes);
	for (i = 0; i < c->nbackends; i++)
		backend_done(&c->backends[i]);
	free(c->backends);
	for (i = 0; i < c->ndestinations; i++)
		destination_done(&c->destinations[i]);
	free(c->destinations);
	free(c);
}

/* Validate a typed section ([backend], [destination]) once all its keys are
 * in KV: its type, every key against the common table and the type's table,
 * required keys, then defaults of absent keys (also appended to KV). */
static void typed_finish(struct parser *p, void *base, const struct key_def *common,
                         size_t ncommon, const struct type_def *types,
                         struct config_kv **kv, size_t *nkv, const char *what)
{
	const struct type_def *td, *other;
	const char *type = config_kv_get(*kv, *nkv, "type");
	char why[WHY_MAX];
	size_t i, j, nkv_file = *nkv;
	int r;

	td = type_find(types, type);
	for (i = 0; i < nkv_file; i++) {
		const struct config_kv *e = &(*kv)[i];
		const struct key_def *k = key_find(common, ncommon, e->key);

		if (!k && td)
			k = key_find(td->keys, td->nkeys, e->key);
		if (!k) {
			if (!td)
				continue;       /* the bad type is reported already */
			for (other = types; other->name; other++)
				if (key_find(other->keys, other->nkeys, e->key))
					break;
			if (other->name)
				report(p, e->line, p->label, e->key,
				       "not a key of type %s %ss", td->name, what);
			else
				report(p, e->line, p->label, e->key, "unknown key");
			continue;
		}
		r = set_value(k, base, e->value, why, sizeof(why));
		if (r == -ENOMEM)
			report_oom(p);
		else if (r < 0)
			report(p, e->line, p->label, e->key, "%s", why);
	}

	for (j = 0; j < 2; j++) {
		const struct key_def *keys = j == 0 ? common : td ? td->keys : NULL;
		size_t n = j == 0 ? ncommon : td ? td->nkeys : 0;

		for (i = 0; i < n; i++) {
			if (config_kv_get(*kv, nkv_file, keys[i].name))
				continue;
			if (keys[i].flags & KF_REQUIRED) {
				if (strcmp(keys[i].name, "type") == 0) {
					char list[128];

					choices_join(keys[i].choices, list, sizeof(list));
					report(p, p->header_line, p->label, "type",
					       "missing; one of %s", list);
				} else {
					report(p, p->header_line, p->label, keys[i].name,
					       "missing; required for type %s",
					       td ? td->name : what);
				}
				continue;
			}
			if (!keys[i].def)
				continue;
			r = set_value(&keys[i], base, keys[i].def, why, sizeof(why));
			if (r == 0)
				r = kv_add(kv, nkv, keys[i].name, keys[i].def, 0);
			if (r == -ENOMEM)
				report_oom(p);
			else if (r < 0)
				report(p, 0, p->label, keys[i].name,
				       "internal error: bad default: %s", why);
		}
	}
}

static void section_end(struct parser *p)
{
	if (p->kind == SK_ROUTE) {
		struct config_route *r = &p->c->routes[p->index];
		const int *lines = p->route_lines[p->index];

		if (r->patient_age_min >= 0 && r->patient_age_max >= 0 &&
		    r->patient_age_min > r->patient_age_max) {
			report(p, key_line(lines, route_keys, NKEYS(route_keys),
			                   "patient_age_max"),
			       p->label, "patient_age_max",
			       "%d is below patient_age_min (%d)",
			       r->patient_age_max, r->patient_age_min);
		}
	} else if (p->kind == SK_BACKEND) {
		struct config_backend *b = &p->c->backends[p->index];

		typed_finish(p, b, backend_keys, NKEYS(backend_keys),
		             backend_type_defs, &b->kv, &b->nkv, "backend");
		if (strcmp(b->name, "reference") == 0 && b->type[0] &&
		    strcmp(b->type, "reference") != 0) {
			const struct config_kv *e = NULL;
			size_t i;

			for (i = 0; i < b->nkv; i++)
				if (strcmp(b->kv[i].key, "type") == 0)
					e = &b->kv[i];
			report(p, e ? e->line : b->line, p->label, "type",
			       "the backend named 'reference' must have type reference");
		}
	} else if (p->kind == SK_DESTINATION) {
		struct config_destination *d = &p->c->destinations[p->index];

		typed_finish(p, d, destination_keys, NKEYS(destination_keys),
		             destination_type_defs, &d->kv, &d->nkv, "destination");
	}
	p->kind = SK_NONE;
	p->label[0] = '\0';
}

/* Grow ARRAY (of N elements of SIZE) by one zeroed element. */
static void *array_push(void *array, size_t *n, size_t size)
{
	char *grown = realloc(array, (*n + 1) * size);

	if (!grown)
		return NULL;
	memset(grown + *n * size, 0, size);
	(*n)++;
	return grown;
}

static bool name_taken(const struct parser *p, enum sect_kind kind,
                       const char *name, int *line)
{
	const struct config *c = p->c;
	size_t i;

	for (i = 0; kind == SK_ROUTE && i < c->nroutes; i++)
		if (strcmp(c->routes[i].name, name) == 0)
			return *line = c->routes[i].line, true;
	for (i = 0; kind == SK_BACKEND && i < c->nbackends; i++)
		if (strcmp(c->backends[i].name, name) == 0)
			return *line = c->backends[i].line, true;
	for (i = 0; kind == SK_DESTINATION && i < c->ndestinations; i++)
		if (strcmp(c->destinations[i].name, name) == 0)
			return *line = c->destinations[i].line, true;
	return false;
}

/* "[TYPE NAME]": INSIDE is what is between the brackets. */
static void section_begin(struct parser *p, char *inside)
{
	struct config *c = p->c;
	enum sect_kind kind;
	char *type, *name, why[WHY_MAX];
	size_t *count = NULL;
	int first;

	section_end(p);
	p->kind = SK_IGNORE;
	p->header_line = p->line;

	type = trim(inside);
	name = type;
	while (*name && !is_blank(*name))
		name++;
	if (*name)
		*name++ = '\0';
	name = trim(name);
	if (*name)
		snprintf(p->label, sizeof(p->label), "%.20s %.*s", type,
		         CONFIG_NAME_MAX + 1, name);
	else
		snprintf(p->label, sizeof(p->label), "%.*s",
		         (int)sizeof(p->label) - 1, type);

	for (kind = 0; kind < SK_NONE; kind++)
		if (strcmp(sections[kind].name, type) == 0)
			break;
	if (kind == SK_ROUTE)
		p->route_headers++;
	if (kind == SK_NONE) {
		report(p, p->line, p->label, NULL,
		       "unknown section (server, storage, study, analysis, "
		       "route NAME, backend NAME, destination NAME)");
		return;
	}

	if (kind < SK_FIXED_N) {
		if (*name) {
			report(p, p->line, p->label, NULL, "this section takes no name");
			return;
		}
		if (p->fixed_header[kind]) {
			report(p, p->line, p->label, NULL,
			       "duplicate section (first on line %d)", p->fixed_header[kind]);
			return;
		}
		p->fixed_header[kind] = p->line;
		p->kind = kind;
		return;
	}

	if (!*name) {
		report(p, p->line, p->label, NULL, "a name is required: [%s NAME]",
		       sections[kind].name);
		return;
	}
	if (check_name(name, why, sizeof(why)) < 0) {
		report(p, p->line, p->label, NULL, "%s", why);
		return;
	}
	if (name_taken(p, kind, name, &first)) {
		report(p, p->line, p->label, NULL,
		       "duplicate section (first on line %d)", first);
		return;
	}
	count = kind == SK_ROUTE ? &c->nroutes :
	        kind == SK_BACKEND ? &c->nbackends : &c->ndestinations;
	if (*count >= CONFIG_SECTIONS_MAX) {
		report(p, p->line, p->label, NULL, "more than %d %s sections",
		       CONFIG_SECTIONS_MAX, sections[kind].name);
		return;
	}

	p->index = *count;
	if (kind == SK_ROUTE) {
		struct config_route *r = array_push(c->routes, &c->nroutes, sizeof(*r));

		if (!r)
			goto oom;
		c->routes = r;
		r = &r[p->index];
		snprintf(r->name, sizeof(r->name), "%s", name);
		r->line = p->line;
		r->patient_age_min = -1;
		r->patient_age_max = -1;
		memset(p->route_lines[p->index], 0, sizeof(p->route_lines[0]));
		set_defaults(p, route_keys, NKEYS(route_keys), r);
	} else if (kind == SK_BACKEND) {
		struct config_backend *b = array_push(c->backends, &c->nbackends, sizeof(*b));

		if (!b)
			goto oom;
		c->backends = b;
		b = &b[p->index];
		snprintf(b->name, sizeof(b->name), "%s", name);
		b->line = p->line;
	} else {
		struct config_destination *d = array_push(c->destinations,
		                                          &c->ndestinations, sizeof(*d));

		if (!d)
			goto oom;
		c->destinations = d;
		d = &d[p->index];
		snprintf(d->name, sizeof(d->name), "%s", name);
		d->line = p->line;
	}
	p->kind = kind;
	return;
oom:
	report_oom(p);
}

/* A key of a fixed section or a route: set it now. */
static void table_set(struct parser *p, const struct key_def *keys, size_t n,
                      void *base, int *lines, const char *name, const char *value)
{
	const struct key_def *k = key_find(keys, n, name);
	char why[WHY_MAX];
	size_t i;
	int r;

	if (!k) {
		report(p, p->line, p->label, name, "unknown key");
		return;
	}
	i = (size_t)(k - keys);
	if (lines[i]) {
		report(p, p->line, p->label, name,
		       "duplicate key (first set on line %d)", lines[i]);
		return;
	}
	lines[i] = p->line;
	r = set_value(k, base, value, why, sizeof(why));
	if (r == -ENOMEM)
		report_oom(p);
	else if (r < 0)
		report(p, p->line, p->label, name, "%s", why);
}

/* A key of a typed section: keep it verbatim, check it at section end. */
static void typed_add(struct parser *p, struct config_kv **kv, size_t *nkv,
                      const char *name, const char *value)
{
	size_t i;

	for (i = 0; i < *nkv; i++) {
		if (strcmp((*kv)[i].key, name) == 0) {
			report(p, p->line, p->label, name,
			       "duplicate key (first set on line %d)", (*kv)[i].line);
			return;
		}
	}
	if (kv_add(kv, nkv, name, value, p->line) < 0)
		report_oom(p);
}

static int on_key(void *user, const char *section, const char *name,
                  const char *value)
{
	struct parser *p = user;
	struct config *c = p->c;

	(void)section;          /* the reader tracks sections itself */
	if (p->long_value)
		value = p->long_value;
	if (!name || !*name) {
		report(p, p->line, p->kind == SK_NONE ? NULL : p->label, NULL,
		       "missing key name before '='");
		return 1;
	}
	if (!value)
		value = "";

	switch (p->kind) {
	case SK_SERVER:
	case SK_STORAGE:
	case SK_STUDY:
	case SK_ANALYSIS:
		table_set(p, sections[p->kind].keys, sections[p->kind].nkeys, c,
		          p->fixed_lines[p->kind], name, value);
		break;
	case SK_ROUTE:
		table_set(p, route_keys, NKEYS(route_keys), &c->routes[p->index],
		          p->route_lines[p->index], name, value);
		break;
	case SK_BACKEND:
		typed_add(p, &c->backends[p->index].kv, &c->backends[p->index].nkv,
		          name, value);
		break;
	case SK_DESTINATION:
		typed_add(p, &c->destinations[p->index].kv,
		          &c->destinations[p->index].nkv, name, value);
		break;
	case SK_NONE:
		report(p, p->line, NULL, name, "key outside of any section");
		break;
	case SK_IGNORE:
		break;
	}
	return 1;
}

/* ------------------------------------------------------------------------ */
/* Line reader                                                              */

/* Strip an inline comment: ';' preceded by whitespace. */
static void strip_comment(char *s)
{
	char *q;

	for (q = s + 1; *s && *q; q++) {
		if (*q == ';' && is_blank(q[-1])) {
			*q = '\0';
			return;
		}
	}
}

/* fgets-like reader for ini_parse_stream(): returns the next line of the
 * text, cleaned up so that inih only ever sees blank lines and well-formed
 * "key = value" lines. Section headers and malformed lines are handled
 * here, because inih reports only the first error and no line numbers. */
static char *reader_next(char *str, int num, void *stream)
{
	struct parser *p = stream;
	const char *start, *eol;
	const char *out = "";
	size_t n;
	char *s;

	p->long_value = NULL;
	if (p->pos >= p->len || p->oom || num < 2)
		return NULL;
	start = p->text + p->pos;
	eol = memchr(start, '\n', p->len - p->pos);
	n = eol ? (size_t)(eol - start) : p->len - p->pos;
	p->pos += n + (eol ? 1 : 0);
	p->line++;

	if (n + 1 > p->cap) {
		char *grown = realloc(p->buf, n + 1);

		if (!grown) {
			report_oom(p);
			return NULL;
		}
		p->buf = grown;
		p->cap = n + 1;
	}
	memcpy(p->buf, start, n);
	p->buf[n] = '\0';
	s = p->buf;
	if (p->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	while (is_blank(*s))
		s++;
	if (*s == ';' || *s == '#' || !*s)
		goto out;               /* blank line or comment */
	strip_comment(s);
	s = trim(s);

	if (strlen(s) > CONFIG_LINE_MAX) {
		report(p, p->line, p->kind == SK_NONE ? NULL : p->label, NULL,
		       "line longer than %d characters", CONFIG_LINE_MAX);
		goto out;
	}
	if (*s == '[') {
		char *close = strchr(s, ']');

		if (!close) {
			section_end(p);
			p->kind = SK_IGNORE;
			report(p, p->line, NULL, NULL, "section header without ']'");
			goto out;
		}
		*close = '\0';
		if (*trim(close + 1)) {
			section_end(p);
			p->kind = SK_IGNORE;
			report(p, p->line, NULL, NULL, "text after the section header");
			goto out;
		}
		section_begin(p, s + 1);
		goto out;
	}
	if (!strpbrk(s, "=:")) {
		report(p, p->line, p->kind == SK_NONE ? NULL : p->label, NULL,
		       "expected 'key = value'");
		goto out;
	}
	if (strlen(s) + 1 < (size_t)num) {
		out = s;
		goto out;
	}
	/* Too long for inih's buffer: give it the key, keep the value here. */
	{
		char *sep = strpbrk(s, "=:");
		char *key = s;

		*sep = '\0';
		key = trim(key);
		if (strlen(key) + 2 > (size_t)num) {
			report(p, p->line, p->kind == SK_NONE ? NULL : p->label, NULL,
			       "key name too long");
			goto out;
		}
		p->long_value = trim(sep + 1);
		snprintf(str, (size_t)num, "%s=", key);
		return str;
	}
out:
	snprintf(str, (size_t)num, "%s", out);
	return str;
}

static void parse_text(struct parser *p, const char *text, const char *name)
{
	int r;

	p->name = name;
	p->text = text;
	p->len = strlen(text);
	p->pos = 0;
	p->line = 0;
	p->kind = SK_NONE;
	r = ini_parse_stream(reader_next, p, on_key, p);
	section_end(p);
	if (r == -2)
		report_oom(p);
	else if (r > 0 && p->nerrors == 0)
		report(p, r, NULL, NULL, "syntax error");  /* should not happen */
}

/* ------------------------------------------------------------------------ */
/* Checks across sections                                                   */

static void check_all(struct parser *p)
{
	struct config *c = p->c;
	char label[CONFIG_NAME_MAX + 32];
	size_t i, j;
	int line;

	p->name = p->file;

	if (c->study.force_seconds < c->study.stable_seconds) {
		const int *lines = p->fixed_lines[SK_STUDY];
		int force = key_line(lines, study_keys, NKEYS(study_keys), "force_seconds");

		if (force)
			report(p, force, "study", "force_seconds",
			       "%d is below stable_seconds (%d)",
			       c->study.force_seconds, c->study.stable_seconds);
		else
			report(p, key_line(lines, study_keys, NKEYS(study_keys),
			                   "stable_seconds"),
			       "study", "stable_seconds",
			       "%d is above force_seconds (%d)",
			       c->study.stable_seconds, c->study.force_seconds);
	}

	for (i = 0; i < c->ndestinations; i++) {
		struct config_destination *d = &c->destinations[i];

		if (strcmp(d->type, "dicom") == 0 && !d->calling_ae[0]) {
			memcpy(d->calling_ae, c->server.ae_title, sizeof(d->calling_ae));
			if (kv_add(&d->kv, &d->nkv, "calling_ae", d->calling_ae, 0) < 0)
				report_oom(p);
		}
	}

	for (i = 0; i < c->nroutes; i++) {
		const struct config_route *r = &c->routes[i];
		const int *lines = p->route_lines[i];

		snprintf(label, sizeof(label), "route %s", r->name);
		line = key_line(lines, route_keys, NKEYS(route_keys), "backend");
		if (r->backend[0] && !config_backend_find(c, r->backend))
			report(p, line ? line : r->line, label, "backend",
			       "no [backend %s] is defined", r->backend);
		line = key_line(lines, route_keys, NKEYS(route_keys), "destinations");
		if (!line)
			line = r->line;
		for (j = 0; j < r->destinations.n; j++)
			if (!config_destination_find(c, r->destinations.items[j]))
				report(p, line, label, "destinations",
				       "no [destination %s] is defined",
				       r->destinations.items[j]);
	}
}

/* ------------------------------------------------------------------------ */
/* API                                                                      */

int config_load_string(const char *text, const char *name,
                       struct config **out, FILE *errs)
{
	struct parser *p = NULL;
	struct config *c = NULL;
	int r = 0;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!text)
		return -EINVAL;
	if (!name)
		name = "(string)";

	p = calloc(1, sizeof(*p));
	c = calloc(1, sizeof(*c));
	if (!p || !c) {
		r = -ENOMEM;
		goto out;
	}
	c->refs = 1;
	p->c = c;
	p->errs = errs;
	p->file = name;
	p->name = name;

	set_defaults(p, server_keys, NKEYS(server_keys), c);
	set_defaults(p, storage_keys, NKEYS(storage_keys), c);
	set_defaults(p, study_keys, NKEYS(study_keys), c);
	set_defaults(p, analysis_keys, NKEYS(analysis_keys), c);

	parse_text(p, text, name);
	if (p->route_headers == 0 && !p->oom)
		parse_text(p, default_routes, BUILTIN_NAME);
	if (!config_backend_find(c, "reference") && !p->oom)
		parse_text(p, default_backend, BUILTIN_NAME);
	if (!p->oom)
		check_all(p);

	if (p->oom)
		r = -ENOMEM;
	else if (p->nerrors)
		r = -EINVAL;
	else
	{
		*out = c;
		c = NULL;
	}
out:
	if (p)
		free(p->buf);
	free(p);
	config_free(c);
	return r;
}

int config_load(const char *path, struct config **out, FILE *errs)
{
	char *text = NULL;
	FILE *f = NULL;
	size_t n = 0;
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!path)
		return config_load_string(default_routes, BUILTIN_NAME, out, errs);

	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		if (errs)
			fprintf(errs, "%s: cannot open: %s\n", path, strerror(-r));
		goto out;
	}
	text = malloc(CONFIG_FILE_MAX + 1);
	if (!text) {
		r = -ENOMEM;
		goto out;
	}
	n = fread(text, 1, CONFIG_FILE_MAX + 1, f);
	if (ferror(f)) {
		r = -EIO;
		if (errs)
			fprintf(errs, "%s: cannot read: %s\n", path, strerror(EIO));
		goto out;
	}
	if (n > CONFIG_FILE_MAX) {
		r = -EFBIG;
		if (errs)
			fprintf(errs, "%s: larger than %d bytes\n", path, CONFIG_FILE_MAX);
		goto out;
	}
	text[n] = '\0';
	if (memchr(text, '\0', n)) {
		r = -EINVAL;
		if (errs)
			fprintf(errs, "%s: contains a NUL byte, not a text file\n", path);
		goto out;
	}

	r = config_load_string(text, path, out, errs);
	if (r == 0) {
		(*out)->path = strdup(path);
		if (!(*out)->path) {
			*out = config_unref(*out);
			r = -ENOMEM;
		}
	}
out:
	if (f)
		fclose(f);
	free(text);
	return r;
}

struct config *config_ref(struct config *c)
{
	if (c)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

struct config *config_unref(struct config *c)
{
	if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		config_free(c);
	return NULL;
}

const struct config_route *config_route_find(const struct config *c, const char *name)
{
	size_t i;

	for (i = 0; c && name && i < c->nroutes; i++)
		if (strcmp(c->routes[i].name, name) == 0)
			return &c->routes[i];
	return NULL;
}

const struct config_backend *config_backend_find(const struct config *c, const char *name)
{
	size_t i;

	for (i = 0; c && name && i < c->nbackends; i++)
		if (strcmp(c->backends[i].name, name) == 0)
			return &c->backends[i];
	return NULL;
}

const struct config_destination *config_destination_find(const struct config *c,
                                                         const char *name)
{
	size_t i;

	for (i = 0; c && name && i < c->ndestinations; i++)
		if (strcmp(c->destinations[i].name, name) == 0)
			return &c->destinations[i];
	return NULL;
}

const char *config_kv_get(const struct config_kv *kv, size_t n, const char *key)
{
	size_t i;

	for (i = 0; kv && key && i < n; i++)
		if (strcmp(kv[i].key, key) == 0)
			return kv[i].value;
	return NULL;
}

bool config_list_contains(const struct config_list *l, const char *item)
{
	size_t i, len;

	if (!l || !item)
		return false;
	while (*item == ' ')
		item++;
	len = strlen(item);
	while (len > 0 && item[len - 1] == ' ')
		len--;
	for (i = 0; i < l->n; i++)
		if (strlen(l->items[i]) == len &&
		    strncasecmp(l->items[i], item, len) == 0)
			return true;
	return false;
}
