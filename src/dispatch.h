/*
 * dispatch.h - store-and-forward: every received instance and every
 * result goes to the destinations that take it, with retries that never
 * drop anything (design.md section 4).
 */
#ifndef TRIAGED_DISPATCH_H
#define TRIAGED_DISPATCH_H

#include <stdint.h>

struct config;
struct db;
struct dispatcher;

/*
 * Make the dispatch rows of instances and results not yet queued: one per
 * destination whose `send` takes them (results: only the destinations of
 * their route, if it names some). Runs in the main loop. Returns the number
 * of rows made, or a negative errno.
 */
int  dispatch_queue_new(struct db *db, const struct config *cfg, int64_t now);

/* A study judged urgent (positive outcome, STAT): its pending dispatches
 * get PRIORITY if that is more urgent. */
int  dispatch_raise_priority(struct db *db, int64_t study_id, int priority);

/* At start: dispatches left "sending" by a stop are pending again. */
int  dispatch_requeue_sending(struct db *db, int64_t now);

/* max_associations sender threads per destination. */
int  dispatcher_start(struct config *cfg, struct dispatcher **out);
void dispatcher_wake(struct dispatcher *d);
/* Stop the senders (after their current batch, waiting at most TIMEOUT_MS;
 * a negative TIMEOUT_MS does not wait). Returns the number still busy; call
 * again until 0 before dispatcher_free(). */
int  dispatcher_stop(struct dispatcher *d, int timeout_ms);
struct dispatcher *dispatcher_free(struct dispatcher *d);

#endif
