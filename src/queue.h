/*
 * queue.h - the job state machine in SQL: claim by priority then age,
 * finish as done / retry with backoff / failed, requeue after a restart.
 */
#ifndef TRIAGED_QUEUE_H
#define TRIAGED_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct db;

/* A claimed job with everything a backend needs; strings owned. */
struct queue_job {
	int64_t id, study_id, generation;
	int attempts;                   /* since created or retried, including this one */
	int attempt_no;                 /* this attempt's row: 1, 2, ... over the job's life */
	char *route, *backend, *sr_template;
	char *study_uid, *accession, *study_date, *study_description, *modality;
	char *patient_id, *patient_name, *patient_birth_date, *patient_sex, *patient_age;
	size_t ninstances;
	struct queue_instance {
		char *sop_uid, *sop_class_uid, *series_uid, *path, *transfer_syntax,
		     *modality, *body_part, *laterality, *view_position, *image_type,
		     *presentation_intent;
		uint32_t rows, columns, frames;
	} *instances;
};

/*
 * Claim the most urgent pending job that is due at NOW (priority, then
 * age): it becomes running, its attempt counted and recorded. 1 with *JOB
 * filled, 0 when there is none, a negative errno on failure.
 */
int  queue_claim(struct db *db, int64_t now, struct queue_job *job);
void queue_job_done(struct queue_job *job);

enum queue_outcome { QUEUE_DONE, QUEUE_RETRY, QUEUE_FAILED };

/* A result object written for a done job (writer.c). */
struct queue_result {
	const char *kind;               /* sr | overlay | summary */
	const char *sop_uid, *series_uid, *sop_class_uid, *transfer_syntax;
	const char *source_sop_uid;     /* overlays: the image they show */
	const char *path;
	int64_t size;
};

/*
 * Record how an attempt ended. DONE stores OUTCOME, SCORE (< 0 none) and
 * RESULT_JSON; RETRY makes the job pending again at NOT_BEFORE; FAILED
 * stores MESSAGE as its reason. A job cancelled meanwhile stays cancelled.
 */
int  queue_finish(struct db *db, int64_t job_id, int attempt, enum queue_outcome how,
                  int64_t now, int64_t not_before, const char *message,
                  const char *outcome, double score, const char *result_json);

/* DONE with the result objects written for it, in the same transaction;
 * the results of the job this one supersedes are marked superseded.
 * -ECANCELED (nothing recorded) when the job was cancelled meanwhile. */
int  queue_finish_done(struct db *db, int64_t job_id, int attempt, int64_t now,
                       const char *outcome, double score, const char *result_json,
                       const struct queue_result *res, size_t nres);

/* At start: jobs left running by a stop become pending. Returns how many. */
int  queue_requeue_running(struct db *db, int64_t now);

#endif
