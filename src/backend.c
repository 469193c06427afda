/*
 * backend.c - the host side of the backend ABI.
 *
 * DESIGN: a static table of the built-in types (curl's Curl_scheme
 * style), found by the config's "type = NAME". A backend gets one
 * const struct triaged_host: logging into log.c, its config section,
 * a monotonic clock, an allocator, image decoding (dicom_image_load) and
 * the result builder (result.c). Version and size are checked before a
 * type is used, so a plug-in built against another ABI is refused.
 */
#include "clock.h"
#include "backend.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "dicom/dicom.h"
#include "log.h"
#include "result.h"

extern const struct triaged_backend_type backend_reference;
extern const struct triaged_backend_type backend_exec;
extern const struct triaged_backend_type backend_http;
extern const struct triaged_backend_type backend_kserve;

static const struct triaged_backend_type *const builtin[] = {
	&backend_reference,
	&backend_exec,
	&backend_http,
	&backend_kserve,
};

const struct triaged_backend_type *
backend_type_find(const char *name)
{
	for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
		if (strcasecmp(builtin[i]->name, name) == 0)
			return builtin[i];
	return NULL;
}

static void
host_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

static const char *
host_config_get(const struct triaged_section *s, const char *key)
{
	if (!s || !s->cb)
		return NULL;
	return config_kv_get(s->cb->kv, s->cb->nkv, key);
}

static const char *
host_section_name(const struct triaged_section *s)
{
	return s && s->cb ? s->cb->name : "reference";
}

static int64_t host_now_ms(void) { return mono_ms(); }

static void *host_alloc(size_t n) { return malloc(n); }
static void host_free(void *p) { free(p); }

static const struct triaged_host host = {
	.abi_version = TRIAGED_BACKEND_ABI_VERSION,
	.size = sizeof(struct triaged_host),
	.log = host_log,
	.config_get = host_config_get,
	.section_name = host_section_name,
	.now_ms = host_now_ms,
	.alloc = host_alloc,
	.free = host_free,
	.image_load = dicom_image_load,
	.image_free = dicom_image_free,
	.result_set_algorithm = result_set_algorithm,
	.result_set_outcome = result_set_outcome,
	.result_add_measurement = result_add_measurement,
	.result_add_finding = result_add_finding,
	.result_parse_json = result_parse_json,
};

const struct triaged_host *
backend_host(void)
{
	return &host;
}

int
backend_open(const struct config *cfg, const char *name, struct backend **out,
             char *err, size_t errlen)
{
	const struct config_backend *cb = config_backend_find(cfg, name);
	const struct triaged_backend_type *type;
	struct backend *b;
	int r;

	type = backend_type_find(cb ? cb->type : "reference");
	if (!type || (!cb && strcmp(name, "reference") != 0)) {
		snprintf(err, errlen, "backend %s: %s", name,
		    !cb ? "no such [backend] section" : "type is not built in");
		return -ENOENT;
	}
	if (type->abi_version != TRIAGED_BACKEND_ABI_VERSION || !type->ops ||
	    !type->ops->open || !type->ops->analyze || !type->ops->close) {
		snprintf(err, errlen, "backend type %s: ABI version %u, this triaged speaks "
		    "%u", type->name, type->abi_version, TRIAGED_BACKEND_ABI_VERSION);
		return -EPROTO;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->type = type;
	b->section.cb = cb;
	err[0] = '\0';
	r = type->ops->open(&host, &b->section, &b->state, err, errlen);
	if (r < 0) {
		if (!err[0])
			snprintf(err, errlen, "backend %s: open failed: %s", name, strerror(-r));
		free(b);
		return r;
	}
	*out = b;
	return 0;
}

struct backend *
backend_close(struct backend *b)
{
	if (!b)
		return NULL;
	b->type->ops->close(b->state);
	free(b);
	return NULL;
}
