/*
 * dispatch.c - the dispatcher: per-destination ordered delivery with
 * retries.
 *
 * DESIGN: a dispatch row is made for every (destination, instance) and
 * (destination, result) pair, in the main loop, from rows not yet queued;
 * the state machine pending -> sending -> delivered | dead lives in SQLite,
 * so a restart resumes exactly where it stopped (sending -> pending: a
 * re-send is safe, the SOP Instance UID is the same). Each destination
 * has max_associations sender threads; a thread claims a batch (one
 * association) in priority then age order, where a result is claimable
 * only once no original of its study is pending or sending for that
 * destination: a study's results reach the PACS after its originals. A
 * destination that is down pauses its threads with exponential backoff;
 * every row keeps its attempts and last error, and becomes dead (kept,
 * retryable with triagectl retry) after max_age.
 */
#include "clock.h"
#include "dispatch.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "config.h"
#include "db.h"
#include "dest.h"
#include "log.h"

#define BATCH_MAX 32

/* ---- queueing (main loop) ----------------------------------------------- */

static bool
route_takes(const struct config *cfg, const char *route, const char *dest)
{
	const struct config_route *r = config_route_find(cfg, route);

	if (!r || r->destinations.n == 0)
		return true;
	for (size_t i = 0; i < r->destinations.n; i++)
		if (strcmp(r->destinations.items[i], dest) == 0)
			return true;
	return false;
}

int
dispatch_queue_new(struct db *db, const struct config *cfg, int64_t now)
{
	sqlite3 *h = db_handle(db);
	sqlite3_stmt *st = NULL, *ins = NULL;
	int made = 0, r = -EIO;
	bool any_originals = false, any_results = false;

	for (size_t i = 0; i < cfg->ndestinations; i++) {
		any_originals |= (cfg->destinations[i].send & CONFIG_SEND_ORIGINALS) != 0;
		any_results |= (cfg->destinations[i].send & CONFIG_SEND_RESULTS) != 0;
	}
	if (db_begin(db) < 0)
		return -EIO;

	/* originals: every instance, routed or not */
	if (any_originals) {
		if (sqlite3_prepare_v2(h,
		    "INSERT OR IGNORE INTO dispatches (destination, study_id, instance_id, kind,"
		    " priority, created_at, updated_at)"
		    " SELECT ?1, i.study_id, i.id, 'original',"
		    "  coalesce((SELECT min(j.priority) FROM jobs j WHERE j.study_id = i.study_id), 5),"
		    "  ?2, ?2 FROM instances i WHERE i.queued_dispatch = 0", -1, &ins, NULL) != SQLITE_OK)
			goto fail;
		for (size_t i = 0; i < cfg->ndestinations; i++) {
			if (!(cfg->destinations[i].send & CONFIG_SEND_ORIGINALS))
				continue;
			sqlite3_reset(ins);
			sqlite3_bind_text(ins, 1, cfg->destinations[i].name, -1, SQLITE_STATIC);
			sqlite3_bind_int64(ins, 2, now);
			if (sqlite3_step(ins) != SQLITE_DONE)
				goto fail;
			made += sqlite3_changes(h);
		}
		sqlite3_finalize(ins);
		ins = NULL;
	}
	if (db_exec(db, "UPDATE instances SET queued_dispatch = 1 WHERE queued_dispatch = 0") < 0)
		goto fail;

	/* results: to the destinations their route allows */
	if (any_results) {
		if (sqlite3_prepare_v2(h,
		    "SELECT r.id, r.study_id, j.route, CASE WHEN j.outcome = 'positive' THEN 0"
		    " ELSE j.priority END FROM results r JOIN jobs j ON j.id = r.job_id"
		    " WHERE r.queued_dispatch = 0", -1, &st, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v2(h,
		    "INSERT OR IGNORE INTO dispatches (destination, study_id, result_id, kind,"
		    " priority, created_at, updated_at) VALUES (?1, ?2, ?3, 'result', ?4, ?5, ?5)",
		    -1, &ins, NULL) != SQLITE_OK)
			goto fail;
		while ((r = sqlite3_step(st)) == SQLITE_ROW) {
			const char *route = (const char *)sqlite3_column_text(st, 2);
			for (size_t i = 0; i < cfg->ndestinations; i++) {
				const struct config_destination *d = &cfg->destinations[i];
				if (!(d->send & CONFIG_SEND_RESULTS) || !route_takes(cfg, route, d->name))
					continue;
				sqlite3_reset(ins);
				sqlite3_bind_text(ins, 1, d->name, -1, SQLITE_STATIC);
				sqlite3_bind_int64(ins, 2, sqlite3_column_int64(st, 1));
				sqlite3_bind_int64(ins, 3, sqlite3_column_int64(st, 0));
				sqlite3_bind_int(ins, 4, sqlite3_column_int(st, 3));
				sqlite3_bind_int64(ins, 5, now);
				if (sqlite3_step(ins) != SQLITE_DONE)
					goto fail;
				made += sqlite3_changes(h);
			}
		}
		if (r != SQLITE_DONE)
			goto fail;
	}
	if (db_exec(db, "UPDATE results SET queued_dispatch = 1 WHERE queued_dispatch = 0") < 0)
		goto fail;
	sqlite3_finalize(st);
	sqlite3_finalize(ins);
	if (db_commit(db) < 0)
		return -EIO;
	return made;
fail:
	log_err("database: queueing dispatches: %s", sqlite3_errmsg(h));
	sqlite3_finalize(st);
	sqlite3_finalize(ins);
	(void)db_rollback(db);
	return -EIO;
}

int
dispatch_raise_priority(struct db *db, int64_t study_id, int priority)
{
	sqlite3_stmt *st = NULL;
	int r = -EIO;

	if (sqlite3_prepare_v2(db_handle(db),
	    "UPDATE dispatches SET priority = ?2 WHERE study_id = ?1 AND state = 'pending'"
	    " AND priority > ?2", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, study_id);
	sqlite3_bind_int(st, 2, priority);
	if (sqlite3_step(st) == SQLITE_DONE)
		r = sqlite3_changes(db_handle(db));
	sqlite3_finalize(st);
	return r;
}

int
dispatch_requeue_sending(struct db *db, int64_t now)
{
	sqlite3_stmt *st = NULL;
	int r = -EIO;

	if (sqlite3_prepare_v2(db_handle(db),
	    "UPDATE dispatches SET state = 'pending', updated_at = ?1 WHERE state = 'sending'",
	    -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, now);
	if (sqlite3_step(st) == SQLITE_DONE)
		r = sqlite3_changes(db_handle(db));
	sqlite3_finalize(st);
	/* webhook notices too: posting one twice is harmless */
	(void)db_exec(db, "UPDATE notices SET state = 'pending' WHERE state = 'sending'");
	return r;
}

/* ---- sender threads ----------------------------------------------------- */

struct sender {
	struct dispatcher *d;
	const struct config_destination *dest;   /* in d->cfg */
	pthread_t tid;
	int index;
	bool started, busy;
};

struct dispatcher {
	pthread_mutex_t mu;
	pthread_cond_t cv;             /* work may be there (wake, stop) */
	pthread_cond_t idle_cv;        /* a thread left its work (stop waits) */
	struct config *cfg;
	bool stop;
	unsigned wakeups;
	size_t n;
	struct sender *s;
};

struct claimed {
	int64_t id, created_at;
	int attempts, priority;
	char *kind, *path, *sop_uid, *sop_class_uid, *transfer_syntax, *study_uid;
};

static void
claimed_done(struct claimed *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(c[i].kind); free(c[i].path); free(c[i].sop_uid);
		free(c[i].sop_class_uid); free(c[i].transfer_syntax); free(c[i].study_uid);
	}
}

static char *
dup_col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return strdup(t ? (const char *)t : "");
}

static int
cmp_claimed(const void *a, const void *b)
{
	const struct claimed *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	if (x->created_at != y->created_at)
		return x->created_at < y->created_at ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Claim up to BATCH_MAX due dispatches of DEST. Returns how many. */
static int
claim(struct db *db, const char *dest, int64_t now, struct claimed *c)
{
	sqlite3_stmt *st = NULL, *q = NULL;
	int n = 0;

	/* one priority level per batch: a STAT or positive study's results
	 * (which wait for its originals) go before routine originals */
	if (sqlite3_prepare_v2(db_handle(db),
	    "WITH due AS (SELECT d.id, d.priority, d.created_at FROM dispatches d"
	    "  WHERE d.destination = ?1 AND d.state = 'pending' AND d.not_before <= ?2"
	    "  AND (d.kind = 'original' OR NOT EXISTS (SELECT 1 FROM dispatches o"
	    "   WHERE o.destination = d.destination AND o.study_id = d.study_id"
	    "   AND o.kind = 'original' AND o.state IN ('pending', 'sending'))))"
	    " UPDATE dispatches SET state = 'sending', attempts = attempts + 1, updated_at = ?2"
	    " WHERE id IN (SELECT id FROM due WHERE priority = (SELECT min(priority) FROM due)"
	    "  ORDER BY created_at, id LIMIT ?3)"
	    " RETURNING id, attempts, created_at, priority", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int(st, 3, BATCH_MAX);
	while (n < BATCH_MAX && sqlite3_step(st) == SQLITE_ROW) {
		memset(&c[n], 0, sizeof(c[n]));
		c[n].id = sqlite3_column_int64(st, 0);
		c[n].attempts = sqlite3_column_int(st, 1);
		c[n].created_at = sqlite3_column_int64(st, 2);
		c[n].priority = sqlite3_column_int(st, 3);
		n++;
	}
	sqlite3_finalize(st);
	if (n == 0)
		return 0;
	if (sqlite3_prepare_v2(db_handle(db),
	    "SELECT d.kind, coalesce(i.path, r.path), coalesce(i.sop_uid, r.sop_uid),"
	    " coalesce(i.sop_class_uid, r.sop_class_uid),"
	    " coalesce(i.transfer_syntax, r.transfer_syntax), s.study_uid"
	    " FROM dispatches d LEFT JOIN instances i ON i.id = d.instance_id"
	    " LEFT JOIN results r ON r.id = d.result_id JOIN studies s ON s.id = d.study_id"
	    " WHERE d.id = ?", -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	for (int i = 0; i < n; i++) {
		sqlite3_reset(q);
		sqlite3_bind_int64(q, 1, c[i].id);
		if (sqlite3_step(q) == SQLITE_ROW) {
			c[i].kind = dup_col(q, 0);
			c[i].path = dup_col(q, 1);
			c[i].sop_uid = dup_col(q, 2);
			c[i].sop_class_uid = dup_col(q, 3);
			c[i].transfer_syntax = dup_col(q, 4);
			c[i].study_uid = dup_col(q, 5);
		}
	}
	sqlite3_finalize(q);
	qsort(c, (size_t)n, sizeof(*c), cmp_claimed);
	return n;
}

/* Record how each item of a batch ended. */
static void
finish(struct db *db, const struct config_destination *dest, struct claimed *c,
       const struct dest_item_result *res, int n, int64_t now, bool dest_down,
       int *delivered, int *retried, int *dead)
{
	sqlite3_stmt *st = NULL;

	if (db_begin(db) < 0)
		return;
	if (sqlite3_prepare_v2(db_handle(db),
	    "UPDATE dispatches SET state = ?2, not_before = ?3, error = ?4, updated_at = ?5,"
	    " delivered_at = CASE ?2 WHEN 'delivered' THEN ?5 ELSE delivered_at END"
	    " WHERE id = ?1", -1, &st, NULL) != SQLITE_OK) {
		(void)db_rollback(db);
		return;
	}
	for (int i = 0; i < n; i++) {
		const char *state;
		char msg[400];
		int64_t nb = 0;

		snprintf(msg, sizeof(msg), "%s", res[i].message);
		if (res[i].status == DEST_OK) {
			state = "delivered";
			msg[0] = '\0';
			(*delivered)++;
		} else if (res[i].status == DEST_FAIL) {
			state = "dead";
			(*dead)++;
			log_warnx("dispatch=%lld dest=%s sop=%s refused for good: %s", (long long)c[i].id,
			    dest->name, c[i].sop_uid, res[i].message);
		} else if (now - c[i].created_at >= dest->max_age_s) {
			state = "dead";
			snprintf(msg, sizeof(msg), "not delivered within max_age (%lld s): %.300s",
			    (long long)dest->max_age_s, res[i].message);
			(*dead)++;
			log_warnx("dispatch=%lld dest=%s sop=%s dead: %s", (long long)c[i].id,
			    dest->name, c[i].sop_uid, msg);
		} else {
			/* a destination that is down pauses as a whole (the sender's
			 * backoff) and its rows stay due, so that when it is back they
			 * go in priority order; an item refused on its own waits */
			state = "pending";
			nb = dest_down ? 0 : now + backoff_delay_s(c[i].attempts,
			    dest->retry_base_s, dest->retry_max_s, (uint64_t)c[i].id);
			(*retried)++;
		}
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, c[i].id);
		sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, nb);
		sqlite3_bind_text(st, 4, msg, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 5, now);
		(void)sqlite3_step(st);
	}
	sqlite3_finalize(st);
	(void)db_commit(db);
}

static void *
sender_main(void *arg)
{
	struct sender *s = arg;
	struct dispatcher *d = s->d;
	const struct dest_type *type = dest_type_find(s->dest->type);
	struct claimed c[BATCH_MAX];
	struct dest_item items[BATCH_MAX];
	struct dest_item_result res[BATCH_MAX];
	struct db *db = NULL;
	void *state = NULL;
	char err[512];
	int failures = 0;
	int64_t pause_until = 0;

	if (!type) {
		log_err("destination %s: type %s is not built in", s->dest->name, s->dest->type);
		return NULL;
	}
	if (db_open(d->cfg->storage.database, 0, &db, err, sizeof(err)) < 0) {
		log_err("destination %s: %s", s->dest->name, err);
		return NULL;
	}
	for (;;) {
		int64_t now = (int64_t)time(NULL);
		int n;

		pthread_mutex_lock(&d->mu);
		while (!d->stop && pause_until > now) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&d->cv, &d->mu, &ts);
			now = (int64_t)time(NULL);
		}
		if (d->stop) {
			pthread_mutex_unlock(&d->mu);
			break;
		}
		s->busy = true;
		pthread_mutex_unlock(&d->mu);

		if (!state && type->ops->open(d->cfg, s->dest, &state, err, sizeof(err)) < 0) {
			state = NULL;
			log_err("destination %s: %s, will retry", s->dest->name, err);
			pause_until = now + 30;
			n = 0;
			goto idle;
		}
		n = claim(db, s->dest->name, now, c);
		if (n > 0) {
			int64_t t0 = mono_ms();
			int delivered = 0, retried = 0, dead = 0, rc;
			for (int i = 0; i < n; i++) {
				items[i] = (struct dest_item){ .path = c[i].path, .sop_uid = c[i].sop_uid,
				    .sop_class_uid = c[i].sop_class_uid,
				    .transfer_syntax = c[i].transfer_syntax, .study_uid = c[i].study_uid };
				memset(&res[i], 0, sizeof(res[i]));
				res[i].status = DEST_RETRY;
				res[i].dimse_status = 0xFFFF;
				snprintf(res[i].message, sizeof(res[i].message), "not attempted");
				if (!c[i].path || access(c[i].path, R_OK) < 0) {
					res[i].status = DEST_FAIL;
					snprintf(res[i].message, sizeof(res[i].message),
					    "file %s is missing", c[i].path ? c[i].path : "(none)");
				}
			}
			rc = type->ops->send(state, items, (size_t)n, res,
			    t0 + (int64_t)(s->dest->timeout_s > 0 ? s->dest->timeout_s : 60) * 1000 *
			    (n < 4 ? 1 : n / 4));
			bool down = rc < 0;
			if (!down) {
				down = true;
				for (int i = 0; i < n; i++)
					down &= res[i].status == DEST_RETRY;
			}
			finish(db, s->dest, c, res, n, (int64_t)time(NULL), down, &delivered, &retried,
			    &dead);
			if (rc < 0 || (delivered == 0 && retried > 0)) {
				failures++;
				pause_until = (int64_t)time(NULL) + backoff_delay_s(failures,
				    s->dest->retry_base_s, s->dest->retry_max_s, (uint64_t)s->index);
				log_notice("destination %s: %d of %d not delivered (%s), next try in %lld s",
				    s->dest->name, retried, n, res[0].message,
				    (long long)(pause_until - (int64_t)time(NULL)));
				/* a broken association is not reused */
				type->ops->close(state);
				state = NULL;
			} else {
				if (failures > 0)
					log_notice("destination %s: delivering again", s->dest->name);
				failures = 0;
				log_info("destination %s: batch of %d: %d delivered, %d to retry, %d dead "
				    "in %.2f s", s->dest->name, n, delivered, retried, dead,
				    (double)(mono_ms() - t0) / 1000.0);
			}
			claimed_done(c, (size_t)n);
		}
idle:
		pthread_mutex_lock(&d->mu);
		s->busy = false;
		pthread_cond_broadcast(&d->idle_cv);   /* for a stop; never wakes senders */
		if (n <= 0 && !d->stop && d->wakeups == 0) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&d->cv, &d->mu, &ts);
		}
		if (d->wakeups > 0)
			d->wakeups--;
		pthread_mutex_unlock(&d->mu);
	}
	if (state)
		type->ops->close(state);
	db_close(db);
	return NULL;
}

int
dispatcher_start(struct config *cfg, struct dispatcher **out)
{
	struct dispatcher *d = calloc(1, sizeof(*d));
	size_t total = 0, k = 0;
	int r;

	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	pthread_cond_init(&d->idle_cv, NULL);
	d->cfg = config_ref(cfg);
	for (size_t i = 0; i < cfg->ndestinations; i++)
		total += (size_t)cfg->destinations[i].max_associations;
	d->s = calloc(total ? total : 1, sizeof(*d->s));
	if (!d->s) {
		dispatcher_free(d);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cfg->ndestinations; i++)
		for (int a = 0; a < cfg->destinations[i].max_associations; a++, k++) {
			d->s[k].d = d;
			d->s[k].dest = &cfg->destinations[i];
			d->s[k].index = (int)k;
			if ((r = pthread_create(&d->s[k].tid, NULL, sender_main, &d->s[k])) != 0) {
				d->n = k;
				(void)dispatcher_stop(d, 0);
				dispatcher_free(d);
				return -r;
			}
			d->s[k].started = true;
		}
	d->n = k;
	*out = d;
	return 0;
}

void
dispatcher_wake(struct dispatcher *d)
{
	pthread_mutex_lock(&d->mu);
	d->wakeups = (unsigned)d->n;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

int
dispatcher_stop(struct dispatcher *d, int timeout_ms)
{
	struct timespec until;
	int busy = 0;

	if (!d)
		return 0;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000 + 1;
	pthread_mutex_lock(&d->mu);
	d->stop = true;
	pthread_cond_broadcast(&d->cv);
	for (;;) {
		busy = 0;
		for (size_t i = 0; i < d->n; i++)
			busy += d->s[i].busy;
		if (busy == 0 || timeout_ms < 0 ||
		    pthread_cond_timedwait(&d->idle_cv, &d->mu, &until) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&d->mu);
	if (busy > 0)
		return busy;
	for (size_t i = 0; i < d->n; i++)
		if (d->s[i].started) {
			pthread_join(d->s[i].tid, NULL);
			d->s[i].started = false;
		}
	return 0;
}

struct dispatcher *
dispatcher_free(struct dispatcher *d)
{
	if (!d)
		return NULL;
	config_unref(d->cfg);
	pthread_cond_destroy(&d->cv);
	pthread_cond_destroy(&d->idle_cv);
	pthread_mutex_destroy(&d->mu);
	free(d->s);
	free(d);
	return NULL;
}
