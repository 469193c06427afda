/*
 * notice.h - webhook notices of positive outcomes: a route's `webhook`
 * URL receives a JSON POST when one of its jobs ends positive, retried
 * like a dispatch until it is taken or a day has passed (then dead, kept).
 */
#ifndef TRIAGED_NOTICE_H
#define TRIAGED_NOTICE_H

#include <stdint.h>

struct config;
struct db;
struct notifier;

/* Queue the notice of done job JOB_ID, if its route has a webhook and its
 * outcome is positive. 1 queued, 0 not needed, negative errno. */
int  notice_queue(struct db *db, const struct config *cfg, int64_t job_id, int64_t now);

/* One thread that posts pending notices. */
int  notifier_start(struct config *cfg, struct notifier **out);
void notifier_stop(struct notifier *n);
struct notifier *notifier_free(struct notifier *n);

#endif
