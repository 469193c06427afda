/*
 * notice.c - webhook notices.
 *
 * DESIGN: a notice is a row (notices) made in the worker right after its
 * job is recorded done and positive, with the JSON body fixed then, so a
 * restart re-sends the same document. One thread posts them with libcurl
 * (TLS verification on, http/https only, no redirects, 10 s timeout); a
 * 2xx answer delivers it, anything else is retried with backoff, and after
 * 24 hours it is dead (kept, visible in triagectl show). Patient names
 * never go out: the notice names the study, the accession and the outcome.
 */
#include "notice.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "backoff.h"
#include "config.h"
#include "db.h"
#include "log.h"

#define NOTICE_MAX_AGE_S (24 * 3600)
#define NOTICE_BASE_S    10
#define NOTICE_MAX_S     600

int
notice_queue(struct db *db, const struct config *cfg, int64_t job_id, int64_t now)
{
	sqlite3_stmt *st = NULL;
	const struct config_route *route;
	cJSON *doc = NULL;
	char *body = NULL, t[32];
	struct tm tm;
	time_t tt = (time_t)now;
	int r = -EIO;

	if (sqlite3_prepare_v2(db_handle(db),
	    "SELECT j.route, j.backend, j.outcome, j.score, s.study_uid, s.accession,"
	    " s.modalities, s.study_date, j.priority, j.result_json"
	    " FROM jobs j JOIN studies s ON s.id = j.study_id WHERE j.id = ? AND j.state = 'done'",
	    -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, job_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		r = 0;
		goto out;
	}
	route = config_route_find(cfg, (const char *)sqlite3_column_text(st, 0));
	if (!route || !route->webhook ||
	    strcmp((const char *)sqlite3_column_text(st, 2), "positive") != 0) {
		r = 0;
		goto out;
	}
	gmtime_r(&tt, &tm);
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "event", "triage.positive");
	cJSON_AddNumberToObject(doc, "job_id", (double)job_id);
	cJSON_AddStringToObject(doc, "route", route->name);
	cJSON_AddStringToObject(doc, "backend", (const char *)sqlite3_column_text(st, 1));
	cJSON_AddStringToObject(doc, "outcome", "positive");
	if (sqlite3_column_type(st, 3) != SQLITE_NULL)
		cJSON_AddNumberToObject(doc, "score", sqlite3_column_double(st, 3));
	cJSON_AddStringToObject(doc, "study_uid", (const char *)sqlite3_column_text(st, 4));
	cJSON_AddStringToObject(doc, "accession", (const char *)sqlite3_column_text(st, 5));
	cJSON_AddStringToObject(doc, "modality", (const char *)sqlite3_column_text(st, 6));
	cJSON_AddStringToObject(doc, "study_date", (const char *)sqlite3_column_text(st, 7));
	cJSON_AddNumberToObject(doc, "priority", sqlite3_column_int(st, 8));
	{
		cJSON *res = cJSON_Parse((const char *)sqlite3_column_text(st, 9));
		cJSON *study = cJSON_GetObjectItem(res, "study");
		const char *summary = cJSON_GetStringValue(cJSON_GetObjectItem(study, "summary"));
		cJSON_AddStringToObject(doc, "summary", summary ? summary : "");
		cJSON_AddNumberToObject(doc, "findings",
		    cJSON_GetArraySize(cJSON_GetObjectItem(res, "findings")));
		cJSON_Delete(res);
	}
	cJSON_AddStringToObject(doc, "time", t);
	body = cJSON_PrintUnformatted(doc);
	sqlite3_finalize(st);
	st = NULL;
	if (!body) {
		r = -ENOMEM;
		goto out;
	}
	if (sqlite3_prepare_v2(db_handle(db),
	    "INSERT OR IGNORE INTO notices (job_id, url, body, created_at, updated_at)"
	    " VALUES (?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, job_id);
	sqlite3_bind_text(st, 2, route->webhook, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, body, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int64(st, 5, now);
	r = sqlite3_step(st) == SQLITE_DONE ? 1 : -EIO;
out:
	sqlite3_finalize(st);
	cJSON_Delete(doc);
	free(body);
	return r;
}

struct notifier {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct config *cfg;
	pthread_t tid;
	bool started, stop;
};

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* POST BODY to URL; 0 on 2xx, else a negative errno with MSG. */
static int
post(const char *url, const char *body, char *msg, size_t msglen)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	long code = 0;
	CURLcode rc;

	if (!c) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "triaged/" TRIAGED_VERSION);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		snprintf(msg, msglen, "%s", curl_easy_strerror(rc));
		return -EIO;
	}
	if (code < 200 || code > 299) {
		snprintf(msg, msglen, "HTTP %ld", code);
		return -EPROTO;
	}
	return 0;
}

static void *
notifier_main(void *arg)
{
	struct notifier *n = arg;
	struct db *db = NULL;
	char err[512];

	if (db_open(n->cfg->storage.database, 0, &db, err, sizeof(err)) < 0) {
		log_err("notifier: %s", err);
		return NULL;
	}
	for (;;) {
		sqlite3_stmt *st = NULL;
		int64_t now = (int64_t)time(NULL), id = 0, created = 0;
		int attempts = 0;
		char *url = NULL, *body = NULL;

		pthread_mutex_lock(&n->mu);
		if (n->stop) {
			pthread_mutex_unlock(&n->mu);
			break;
		}
		pthread_mutex_unlock(&n->mu);

		if (sqlite3_prepare_v2(db_handle(db),
		    "UPDATE notices SET state = 'sending', attempts = attempts + 1, updated_at = ?1"
		    " WHERE id = (SELECT id FROM notices WHERE state = 'pending' AND not_before <= ?1"
		    " ORDER BY id LIMIT 1) RETURNING id, url, body, attempts, created_at",
		    -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, now);
			if (sqlite3_step(st) == SQLITE_ROW) {
				id = sqlite3_column_int64(st, 0);
				url = strdup((const char *)sqlite3_column_text(st, 1));
				body = strdup((const char *)sqlite3_column_text(st, 2));
				attempts = sqlite3_column_int(st, 3);
				created = sqlite3_column_int64(st, 4);
				(void)sqlite3_step(st);
			}
			sqlite3_finalize(st);
		}
		if (id && url && body) {
			char msg[256] = "";
			int r = post(url, body, msg, sizeof(msg));
			const char *state = r == 0 ? "delivered" :
			    now - created >= NOTICE_MAX_AGE_S ? "dead" : "pending";
			int64_t nb = r == 0 ? 0 : now + backoff_delay_s(attempts, NOTICE_BASE_S,
			    NOTICE_MAX_S, (uint64_t)id);
			if (r == 0)
				log_info("notice=%lld posted to the route's webhook", (long long)id);
			else
				log_notice("notice=%lld webhook failed: %s, %s", (long long)id, msg,
				    strcmp(state, "dead") == 0 ? "giving up" : "will retry");
			if (sqlite3_prepare_v2(db_handle(db),
			    "UPDATE notices SET state = ?2, not_before = ?3, error = ?4, updated_at = ?5,"
			    " delivered_at = CASE ?2 WHEN 'delivered' THEN ?5 END WHERE id = ?1",
			    -1, &st, NULL) == SQLITE_OK) {
				sqlite3_bind_int64(st, 1, id);
				sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
				sqlite3_bind_int64(st, 3, nb);
				sqlite3_bind_text(st, 4, msg, -1, SQLITE_STATIC);
				sqlite3_bind_int64(st, 5, (int64_t)time(NULL));
				(void)sqlite3_step(st);
				sqlite3_finalize(st);
			}
		}
		free(url);
		free(body);
		if (!id) {
			struct timespec ts;
			pthread_mutex_lock(&n->mu);
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			if (!n->stop)
				pthread_cond_timedwait(&n->cv, &n->mu, &ts);
			pthread_mutex_unlock(&n->mu);
		}
	}
	db_close(db);
	return NULL;
}

int
notifier_start(struct config *cfg, struct notifier **out)
{
	struct notifier *n = calloc(1, sizeof(*n));
	int r;

	if (!n)
		return -ENOMEM;
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->cv, NULL);
	n->cfg = config_ref(cfg);
	/* sending as "sending" at a stop: pending again (a re-post is fine) */
	if ((r = pthread_create(&n->tid, NULL, notifier_main, n)) != 0) {
		notifier_free(n);
		return -r;
	}
	n->started = true;
	*out = n;
	return 0;
}

void
notifier_stop(struct notifier *n)
{
	if (!n || !n->started)
		return;
	pthread_mutex_lock(&n->mu);
	n->stop = true;
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->mu);
	pthread_join(n->tid, NULL);   /* a post takes 10 s at most */
	n->started = false;
}

struct notifier *
notifier_free(struct notifier *n)
{
	if (!n)
		return NULL;
	notifier_stop(n);
	config_unref(n->cfg);
	pthread_cond_destroy(&n->cv);
	pthread_mutex_destroy(&n->mu);
	free(n);
	return NULL;
}
