/*
 * dest.h - delivery destinations behind one table of function pointers,
 * like the backends: dicom (C-STORE), folder, dicomweb (STOW-RS).
 */
#ifndef TRIAGED_DEST_H
#define TRIAGED_DEST_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct config_destination;

enum dest_status {
	DEST_OK    = 0,   /* delivered (the peer answered Success or a warning) */
	DEST_RETRY = 1,   /* not delivered, may work later (peer down, refused A7xx, timeout) */
	DEST_FAIL  = 2,   /* the peer will never take it as it is (e.g. C000, A900) */
};

/* One instance to deliver: a Part 10 file, sent bit-identical. */
struct dest_item {
	const char *path;
	const char *sop_uid;
	const char *sop_class_uid;
	const char *transfer_syntax;
	const char *study_uid;
};

struct dest_item_result {
	int  status;                 /* enum dest_status */
	uint16_t dimse_status;       /* dicom: the C-STORE status, 0xFFFF if none */
	char message[256];
};

struct dest_ops {
	/* Read the [destination NAME] section. 0 or a negative errno + ERR. */
	int  (*open)(const struct config *cfg, const struct config_destination *d,
	             void **state, char *err, size_t errlen);
	/* Reachability: C-ECHO, HTTP OPTIONS/GET, folder writable. 0, or a
	 * negative errno with MSG saying why. May be NULL. */
	int  (*echo)(void *state, char *msg, size_t msglen);
	/* Deliver N items, as one association / request where the protocol
	 * allows, before DEADLINE_MS (CLOCK_MONOTONIC ms). Fills RES[i] for
	 * every item. Returns 0, or a negative errno when nothing could be
	 * tried at all (every RES[i] is then DEST_RETRY with the reason). */
	int  (*send)(void *state, const struct dest_item *items, size_t n,
	             struct dest_item_result *res, int64_t deadline_ms);
	void (*close)(void *state);
};

struct dest_type {
	const char *name;            /* the config's "type = NAME" */
	const struct dest_ops *ops;
};

extern const struct dest_type dest_dicom;
extern const struct dest_type dest_folder;
extern const struct dest_type dest_dicomweb;

/* By name, or NULL. */
const struct dest_type *dest_type_find(const char *name);

/* Addition, pure (exported for the unit tests): the dicomweb type's reading
 * of a STOW-RS answer (HTTP status HTTP, body BODY of LEN bytes) to the N
 * ITEMS of one request, into RES[0..N-1]. Per instance from the body's
 * ReferencedSOPSequence (stored) and FailedSOPSequence (FailureReason A7xx:
 * DEST_RETRY, else DEST_FAIL); in neither after 2xx: DEST_RETRY "not
 * confirmed"; 5xx, 408, 429, 401, 403: all DEST_RETRY; other statuses
 * (3xx, 4xx, 400/409 without lists): all DEST_FAIL, with the status and a
 * body excerpt. */
void dest_dicomweb_map_response(long http, const char *body, size_t len,
                                const struct dest_item *items, size_t n,
                                struct dest_item_result *res);

#endif
