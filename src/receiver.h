/*
 * receiver.h - the C-STORE policy: which associations are accepted, where
 * each dataset goes, and what status it is answered with.
 */
#ifndef TRIAGED_RECEIVER_H
#define TRIAGED_RECEIVER_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct spool;
struct receiver;

struct receiver_stats {
	uint64_t stored, duplicates, refused, rejected_assocs, bytes;
};

/* Open the listening socket with CFG's [server] settings. The receiver
 * keeps references to CFG and SPOOL (SPOOL must outlive it). */
int  receiver_new(struct config *cfg, struct spool *spool, struct receiver **out,
                  char *err, size_t errlen);
/* Accept loop, in its own thread; returns after receiver_stop(). */
int  receiver_run(struct receiver *r);
void receiver_stop(struct receiver *r);
/* Finish the C-STOREs in flight, abort idle associations; 0 when drained. */
int  receiver_drain(struct receiver *r, int timeout_ms);
/* New associations use CFG from now on (SIGHUP). */
void receiver_set_config(struct receiver *r, struct config *cfg);
int  receiver_port(const struct receiver *r);
int  receiver_active(struct receiver *r);
void receiver_get_stats(struct receiver *r, struct receiver_stats *out);
struct receiver *receiver_free(struct receiver *r);

/* Start-up reconciliation: record the file PATH, already in place in the
 * spool, in the database; its UIDs must be STUDY_UID and SOP_UID (as its
 * path says) unless those are NULL. 0, -EEXIST, or a negative errno. */
struct db;
int  receiver_index_file(struct db *db, const char *path, const char *study_uid,
                         const char *sop_uid, int64_t received_at,
                         char *err, size_t errlen);

#endif
