/*
 * writer.h - what a finished job writes back: one SR, one overlay per
 * source image with findings, one summary image (design.md section 6).
 */
#ifndef TRIAGED_WRITER_H
#define TRIAGED_WRITER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue.h"

struct config;
struct spool;
struct triaged_result;

struct written {
	char kind[16];                  /* sr | overlay | summary */
	char sop_uid[65], series_uid[65], sop_class_uid[65], transfer_syntax[65];
	char source_sop_uid[65];
	char path[PATH_MAX];
	int64_t size;
};

/*
 * Write the job's result objects under spool_dir/results/<study>/, each
 * complete and fsynced before it is listed. *OUT (malloc'd, *N entries)
 * describes them. 0, or a negative errno with ERR (nothing listed; files
 * already written are removed).
 */
int writer_write(const struct config *cfg, const struct spool *spool,
                 const struct queue_job *job, const struct triaged_result *res,
                 bool not_for_diagnosis, struct written **out, size_t *n,
                 char *err, size_t errlen);

/* The written objects as queue_result rows (pointing into W). */
void writer_as_rows(const struct written *w, size_t n, struct queue_result *rows);

#endif
