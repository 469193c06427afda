/*
 * worker.h - the inference worker pool: N threads claim jobs by priority
 * then age, run the backend under a deadline, record the result, retry
 * transient failures with backoff.
 */
#ifndef TRIAGED_WORKER_H
#define TRIAGED_WORKER_H

struct config;
struct workers;

/* Start CFG->analysis.workers threads (each opens its own database). */
int  workers_start(struct config *cfg, struct workers **out);
/* New jobs may be there: wake an idle worker. */
void workers_wake(struct workers *w);
/* New configuration: each worker reopens its backends between jobs. */
void workers_set_config(struct workers *w, struct config *cfg);
/*
 * Stop: no new claims; wait up to TIMEOUT_MS for the jobs in progress.
 * Returns the number of workers still inside a backend (their jobs stay
 * "running" and are made pending again at the next start).
 */
int  workers_stop(struct workers *w, int timeout_ms);
/* Free after a stop that returned 0. NULL-tolerant. */
struct workers *workers_free(struct workers *w);

#endif
