/*
 * study.h - study completion: a study is complete after stable_seconds
 * without a new instance (or force_seconds after it opened); a late
 * instance reopens it (receiver). The state lives in SQLite.
 */
#ifndef TRIAGED_STUDY_H
#define TRIAGED_STUDY_H

#include <stdint.h>

struct config;
struct db;

/* One pass over the receiving studies at time NOW; returns how many were
 * completed, or a negative errno. */
int study_sweep(struct db *db, const struct config *cfg, int64_t now);

#endif
