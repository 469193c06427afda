/*
 * backend.h - the host side of the backend ABI: the table of built-in
 * backend types, the services given to backends, and the set of opened
 * backends each worker thread keeps.
 */
#ifndef TRIAGED_BACKEND_HOST_H
#define TRIAGED_BACKEND_HOST_H

#include <stddef.h>

#include "triaged/backend.h"

struct config;
struct config_backend;

/* The host services (log, config, clock, allocator, images, results). */
const struct triaged_host *backend_host(void);

/* Built-in type by name (case-insensitive), or NULL. */
const struct triaged_backend_type *backend_type_find(const char *name);

/* A config section as the ABI sees it. */
struct triaged_section {
	const struct config_backend *cb;
};

/* One opened backend. */
struct backend {
	char name[65];
	const struct triaged_backend_type *type;
	struct triaged_section section;
	void *state;
};

/* Open backend NAME of CFG (the [backend NAME] section, or the built-in
 * reference backend). 0 or a negative errno with ERR. */
int  backend_open(const struct config *cfg, const char *name, struct backend **out,
                  char *err, size_t errlen);
struct backend *backend_close(struct backend *b);

#endif
