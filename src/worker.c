/*
 * worker.c - inference workers.
 *
 * DESIGN: like Redis's bio threads: each worker owns a database connection
 * and its opened backends (one backend state per worker, so backends need
 * no locks), waits on a condition variable that the router signals, and
 * also polls every second, so a lost wake-up only costs latency and
 * backoff deadlines are met. The receiver never waits for a worker: they
 * share nothing but SQLite, where a worker holds the write lock only for
 * the short claim and finish statements.
 */
#include "worker.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "backend.h"
#include "backoff.h"
#include "config.h"
#include "db.h"
#include "dispatch.h"
#include "notice.h"
#include "log.h"
#include "match.h"
#include "queue.h"
#include "result.h"
#include "spool.h"
#include "writer.h"

#define MAX_BACKENDS 32

struct worker {
	struct workers *pool;
	pthread_t tid;
	int index;
	bool started, busy;
};

struct workers {
	pthread_mutex_t mu;
	pthread_cond_t cv;             /* work may be there (wake, stop) */
	pthread_cond_t idle_cv;        /* a thread left its work (stop waits) */
	struct config *cfg;            /* current snapshot, under mu */
	unsigned cfg_serial;           /* bumps on every set_config */
	bool stop;
	unsigned wakeups;
	int n;
	struct worker *w;
};

/* A worker's opened backends for one config snapshot. */
struct opened {
	struct config *cfg;
	unsigned serial;
	size_t n;
	struct backend *b[MAX_BACKENDS];
};

static void
opened_clear(struct opened *o)
{
	for (size_t i = 0; i < o->n; i++)
		o->b[i] = backend_close(o->b[i]);
	o->n = 0;
	o->cfg = config_unref(o->cfg);
}

static int
opened_get(struct opened *o, const char *name, struct backend **out, char *err, size_t errlen)
{
	int r;

	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->b[i]->name, name) == 0) {
			*out = o->b[i];
			return 0;
		}
	if (o->n >= MAX_BACKENDS) {
		snprintf(err, errlen, "too many backends");
		return -E2BIG;
	}
	if ((r = backend_open(o->cfg, name, &o->b[o->n], err, errlen)) < 0)
		return r;
	*out = o->b[o->n++];
	return 0;
}

static int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

static char *
request_json(const struct queue_job *j, const char *study_dir)
{
	cJSON *root = cJSON_CreateObject(), *o, *arr;
	char *s;

	if (!root)
		return NULL;
	cJSON_AddNumberToObject(root, "job_id", (double)j->id);
	cJSON_AddStringToObject(root, "route", j->route);
	cJSON_AddStringToObject(root, "study_uid", j->study_uid);
	cJSON_AddStringToObject(root, "study_dir", study_dir);
	o = cJSON_AddObjectToObject(root, "patient");
	cJSON_AddStringToObject(o, "id", j->patient_id);
	cJSON_AddStringToObject(o, "name", j->patient_name);
	cJSON_AddStringToObject(o, "birth_date", j->patient_birth_date);
	cJSON_AddStringToObject(o, "sex", j->patient_sex);
	cJSON_AddStringToObject(o, "age", j->patient_age);
	o = cJSON_AddObjectToObject(root, "study");
	cJSON_AddStringToObject(o, "accession", j->accession);
	cJSON_AddStringToObject(o, "date", j->study_date);
	cJSON_AddStringToObject(o, "description", j->study_description);
	cJSON_AddStringToObject(o, "modality", j->modality);
	arr = cJSON_AddArrayToObject(root, "instances");
	for (size_t i = 0; i < j->ninstances; i++) {
		const struct queue_instance *q = &j->instances[i];
		cJSON *it = cJSON_CreateObject();
		cJSON_AddStringToObject(it, "sop_instance_uid", q->sop_uid);
		cJSON_AddStringToObject(it, "sop_class_uid", q->sop_class_uid);
		cJSON_AddStringToObject(it, "series_uid", q->series_uid);
		cJSON_AddStringToObject(it, "path", q->path);
		cJSON_AddStringToObject(it, "transfer_syntax", q->transfer_syntax);
		cJSON_AddStringToObject(it, "modality", q->modality);
		cJSON_AddNumberToObject(it, "rows", q->rows);
		cJSON_AddNumberToObject(it, "columns", q->columns);
		cJSON_AddNumberToObject(it, "frames", q->frames ? q->frames : 1);
		cJSON_AddStringToObject(it, "laterality", q->laterality);
		cJSON_AddStringToObject(it, "view_position", q->view_position);
		cJSON_AddStringToObject(it, "body_part", q->body_part);
		cJSON_AddItemToArray(arr, it);
	}
	s = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return s;
}

/*
 * [backend NAME] algorithm_name / algorithm_version: what the SR and the
 * overlays name, over what the backend reported (design.md section 5).
 */
static int
override_algorithm(const struct config *cfg, const char *backend, struct triaged_result *res)
{
	const struct config_backend *b = config_backend_find(cfg, backend);
	char name[RESULT_MAX_TEXT + 1], version[RESULT_MAX_TEXT + 1];
	char vendor[RESULT_MAX_TEXT + 1];

	if (!b || (!b->algorithm_name && !b->algorithm_version))
		return 0;
	snprintf(name, sizeof(name), "%s", b->algorithm_name ? b->algorithm_name : res->algo_name);
	snprintf(version, sizeof(version), "%s",
	    b->algorithm_version ? b->algorithm_version : res->algo_version);
	if (!name[0])
		snprintf(name, sizeof(name), "%s", backend);
	snprintf(vendor, sizeof(vendor), "%s", res->algo_vendor);
	return result_set_algorithm(res, name, version[0] ? version : NULL,
	    vendor[0] ? vendor : NULL);
}

/* Run one claimed job to its end state. */
static void
run_job(struct worker *w, struct db *db, struct spool *spool, struct opened *o,
        struct queue_job *j)
{
	const struct config *cfg = o->cfg;
	struct backend *b = NULL;
	struct triaged_instance *ti = NULL;
	struct result_image *ri = NULL;
	struct triaged_result *res = NULL;
	struct triaged_study study;
	char msg[1024] = "", study_dir[4096], *req = NULL, *json = NULL;
	const struct config_backend *cb = config_backend_find(cfg, j->backend);
	int timeout_s = cb ? cb->timeout_s : 300, rc;
	int64_t t0 = backend_host()->now_ms();
	enum queue_outcome how;
	int64_t not_before = 0;
	struct written *written = NULL;
	size_t nwritten = 0;

	/* the study folder is where its files are: the first file's directory */
	snprintf(study_dir, sizeof(study_dir), "%s", j->ninstances ? j->instances[0].path : "");
	{
		char *slash = strrchr(study_dir, '/');
		if (slash)
			*slash = '\0';
	}
	ti = calloc(j->ninstances ? j->ninstances : 1, sizeof(*ti));
	ri = calloc(j->ninstances ? j->ninstances : 1, sizeof(*ri));
	req = request_json(j, study_dir);
	if (!ti || !ri || !req) {
		rc = TRIAGED_RETRY;
		snprintf(msg, sizeof(msg), "out of memory");
		goto finish;
	}
	for (size_t i = 0; i < j->ninstances; i++) {
		const struct queue_instance *q = &j->instances[i];
		ti[i] = (struct triaged_instance){
			.sop_instance_uid = q->sop_uid, .sop_class_uid = q->sop_class_uid,
			.series_uid = q->series_uid, .path = q->path,
			.transfer_syntax = q->transfer_syntax, .modality = q->modality,
			.body_part = q->body_part, .laterality = q->laterality,
			.view_position = q->view_position, .image_type = q->image_type,
			.presentation_intent = q->presentation_intent,
			.rows = q->rows, .columns = q->columns, .frames = q->frames ? q->frames : 1,
		};
		ri[i] = (struct result_image){ .sop_uid = q->sop_uid, .columns = q->columns,
		    .rows = q->rows, .frames = q->frames ? q->frames : 1 };
	}
	study = (struct triaged_study){
		.job_id = j->id, .route = j->route, .study_uid = j->study_uid,
		.study_dir = study_dir, .accession = j->accession, .study_date = j->study_date,
		.study_description = j->study_description, .modality = j->modality,
		.patient_id = j->patient_id, .patient_name = j->patient_name,
		.patient_birth_date = j->patient_birth_date, .patient_sex = j->patient_sex,
		.patient_age = j->patient_age,
		.patient_age_years = match_age_years(j->patient_age, j->patient_birth_date,
		    j->study_date),
		.ninstances = j->ninstances, .instances = ti, .request_json = req,
	};

	if ((rc = opened_get(o, j->backend, &b, msg, sizeof(msg))) < 0) {
		/* a backend that cannot even be opened (program missing,
		 * bad URL) may come back after a fix and a reload */
		rc = TRIAGED_RETRY;
		goto finish;
	}
	if (b->type->ops->ready && b->type->ops->ready(b->state, msg, sizeof(msg)) < 0) {
		rc = TRIAGED_RETRY;
		if (!msg[0])
			snprintf(msg, sizeof(msg), "backend not ready");
		goto finish;
	}
	res = result_new(ri, j->ninstances);
	if (!res) {
		rc = TRIAGED_RETRY;
		snprintf(msg, sizeof(msg), "out of memory");
		goto finish;
	}
	log_debug("job=%lld attempt=%d backend=%s instances=%zu started", (long long)j->id,
	    j->attempts, j->backend, j->ninstances);
	rc = b->type->ops->analyze(b->state, &study, res, t0 + (int64_t)timeout_s * 1000,
	    msg, sizeof(msg));
	if (rc == TRIAGED_OK && !res->error[0])
		(void)override_algorithm(cfg, j->backend, res);
	if (rc != TRIAGED_OK && res->error[0]) {
		/* the builder refused something: its reason is the better one */
		rc = TRIAGED_FAIL;
		snprintf(msg, sizeof(msg), "invalid result: %s", res->error);
	} else if (rc == TRIAGED_OK && result_finish(res) < 0) {
		rc = TRIAGED_FAIL;
		snprintf(msg, sizeof(msg), "invalid result: %s", res->error);
	} else if (rc == TRIAGED_OK && res->error[0]) {
		rc = TRIAGED_FAIL;
		snprintf(msg, sizeof(msg), "invalid result: %s", res->error);
	} else if (rc != TRIAGED_OK && rc != TRIAGED_RETRY && rc != TRIAGED_FAIL) {
		rc = TRIAGED_FAIL;
		snprintf(msg, sizeof(msg), "backend returned an unknown status");
	}
	if (rc == TRIAGED_OK) {
		json = result_to_json(res);
		char werr[512] = "";
		if (writer_write(cfg, spool, j, res, strcmp(b->type->name, "reference") == 0,
		    &written, &nwritten, werr, sizeof(werr)) < 0) {
			rc = TRIAGED_RETRY;
			snprintf(msg, sizeof(msg), "writing the results: %s", werr);
		}
	}

finish:
	if (!msg[0] && rc != TRIAGED_OK)
		snprintf(msg, sizeof(msg), rc == TRIAGED_RETRY ? "transient failure" : "failed");
	/* one line: control characters from backends never split the log */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	double secs = (double)(backend_host()->now_ms() - t0) / 1000.0;
	if (rc == TRIAGED_OK) {
		how = QUEUE_DONE;
		log_info("job=%lld route=%s backend=%s done outcome=%s score=%.2f findings=%zu "
		    "measurements=%zu in %.1f s", (long long)j->id, j->route, j->backend,
		    result_outcome_name(res->outcome), res->score, res->nfindings,
		    res->nmeasurements, secs);
	} else if (rc == TRIAGED_RETRY && j->attempts < cfg->analysis.max_attempts) {
		int64_t d = backoff_delay_s(j->attempts, cfg->analysis.retry_base_s,
		    cfg->analysis.retry_max_s, (uint64_t)j->id);
		how = QUEUE_RETRY;
		not_before = now_s() + d;
		log_notice("job=%lld route=%s backend=%s attempt %d/%d failed: %s, will retry in "
		    "%lld s", (long long)j->id, j->route, j->backend, j->attempts,
		    cfg->analysis.max_attempts, msg, (long long)d);
	} else {
		how = QUEUE_FAILED;
		if (rc == TRIAGED_RETRY) {
			char m2[sizeof(msg)];
			snprintf(m2, sizeof(m2), "gave up after %d attempts: %.990s", j->attempts, msg);
			memcpy(msg, m2, sizeof(msg));
		}
		log_warnx("job=%lld route=%s backend=%s failed: %s", (long long)j->id, j->route,
		    j->backend, msg);
	}
	if (how == QUEUE_DONE) {
		struct queue_result *rows = calloc(nwritten ? nwritten : 1, sizeof(*rows));
		if (rows)
			writer_as_rows(written, nwritten, rows);
		int fr = rows ? queue_finish_done(db, j->id, j->attempt_no, now_s(),
		    result_outcome_name(res->outcome), res->score, json, rows, nwritten) : -ENOMEM;
		if (fr < 0) {
			/* not recorded (cancelled meanwhile, or the job stays running
			 * and is redone after a restart): what was written goes */
			if (fr == -ECANCELED)
				log_notice("job=%lld was cancelled during its analysis, results "
				    "discarded", (long long)j->id);
			for (size_t i = 0; i < nwritten; i++)
				(void)unlink(written[i].path);
		} else {
			log_info("job=%lld wrote %zu result object(s) (SR, %zu overlay(s), summary)",
			    (long long)j->id, nwritten, nwritten >= 2 ? nwritten - 2 : 0);
			if (res->outcome == OUTCOME_POSITIVE)
				(void)notice_queue(db, cfg, j->id, now_s());
		}
		free(rows);
	} else {
		(void)queue_finish(db, j->id, j->attempt_no, how, now_s(), not_before, msg,
		    NULL, -1, NULL);
	}
	/* a positive study jumps the delivery queue */
	if (how == QUEUE_DONE && res->outcome == OUTCOME_POSITIVE)
		(void)dispatch_raise_priority(db, j->study_id, 0);
	(void)w;
	free(written);
	free(json);
	result_free(res);
	free(req);
	free(ti);
	free(ri);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct workers *p = w->pool;
	struct opened o = { 0 };
	struct db *db = NULL;
	struct spool *spool = NULL;
	char err[512];
	int r;

	pthread_mutex_lock(&p->mu);
	o.cfg = config_ref(p->cfg);
	o.serial = p->cfg_serial;
	pthread_mutex_unlock(&p->mu);
	if (db_open(o.cfg->storage.database, 0, &db, err, sizeof(err)) < 0) {
		log_err("worker %d: %s", w->index, err);
		goto out;
	}
	if ((r = spool_open(o.cfg->storage.spool_dir, &spool)) < 0) {
		log_errno(LOG_ERR, r, "worker %d: spool %s", w->index, o.cfg->storage.spool_dir);
		goto out;
	}
	for (;;) {
		struct queue_job job;

		pthread_mutex_lock(&p->mu);
		if (p->stop) {
			pthread_mutex_unlock(&p->mu);
			break;
		}
		if (o.serial != p->cfg_serial) {
			/* reload: backends reopen with the new sections */
			pthread_mutex_unlock(&p->mu);
			opened_clear(&o);
			pthread_mutex_lock(&p->mu);
			o.cfg = config_ref(p->cfg);
			o.serial = p->cfg_serial;
		}
		w->busy = true;           /* from the claim on: a stop waits for us */
		pthread_mutex_unlock(&p->mu);

		r = queue_claim(db, now_s(), &job);
		if (r > 0) {
			run_job(w, db, spool, &o, &job);
			queue_job_done(&job);
		}
		pthread_mutex_lock(&p->mu);
		w->busy = false;
		pthread_cond_broadcast(&p->idle_cv);   /* for a stop; never wakes workers */
		pthread_mutex_unlock(&p->mu);
		if (r > 0)
			continue;
		/* nothing due: sleep until woken or a second has passed */
		pthread_mutex_lock(&p->mu);
		if (!p->stop && p->wakeups == 0) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&p->cv, &p->mu, &ts);
		}
		if (p->wakeups > 0)
			p->wakeups--;
		pthread_mutex_unlock(&p->mu);
	}
out:
	opened_clear(&o);
	spool_free(spool);
	db_close(db);
	return NULL;
}

int
workers_start(struct config *cfg, struct workers **out)
{
	struct workers *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	pthread_cond_init(&p->idle_cv, NULL);
	p->cfg = config_ref(cfg);
	p->n = cfg->analysis.workers;
	p->w = calloc((size_t)p->n, sizeof(*p->w));
	if (!p->w) {
		workers_free(p);
		return -ENOMEM;
	}
	for (int i = 0; i < p->n; i++) {
		p->w[i].pool = p;
		p->w[i].index = i;
		if ((r = pthread_create(&p->w[i].tid, NULL, worker_main, &p->w[i])) != 0) {
			(void)workers_stop(p, 0);
			workers_free(p);
			return -r;
		}
		p->w[i].started = true;
	}
	*out = p;
	return 0;
}

void
workers_wake(struct workers *p)
{
	pthread_mutex_lock(&p->mu);
	p->wakeups = (unsigned)p->n;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void
workers_set_config(struct workers *p, struct config *cfg)
{
	struct config *old;

	pthread_mutex_lock(&p->mu);
	old = p->cfg;
	p->cfg = config_ref(cfg);
	p->cfg_serial++;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	config_unref(old);
}

int
workers_stop(struct workers *p, int timeout_ms)
{
	struct timespec until;
	int busy = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	for (;;) {
		busy = 0;
		for (int i = 0; i < p->n; i++)
			busy += p->w[i].busy;
		if (busy == 0 || pthread_cond_timedwait(&p->idle_cv, &p->mu, &until) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&p->mu);
	if (busy > 0)
		return busy;
	for (int i = 0; i < p->n; i++)
		if (p->w[i].started) {
			pthread_join(p->w[i].tid, NULL);
			p->w[i].started = false;
		}
	return 0;
}

struct workers *
workers_free(struct workers *p)
{
	if (!p)
		return NULL;
	config_unref(p->cfg);
	pthread_cond_destroy(&p->cv);
	pthread_cond_destroy(&p->idle_cv);
	pthread_mutex_destroy(&p->mu);
	free(p->w);
	free(p);
	return NULL;
}
