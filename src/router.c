/*
 * router.c - routes to jobs.
 *
 * DESIGN: the router runs in the main loop after the completion sweep. It
 * works from the database only: a complete study whose routed_generation
 * is behind its generation gets one job per route that fires, made in one
 * transaction with routed_generation advanced, so a crash routes it again
 * or not at all, never twice (jobs are also UNIQUE per study, generation
 * and route). A late instance reopens the study in a new generation; its
 * jobs then cover all the study's matching instances and record the job
 * they supersede.
 */
#include "router.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "db.h"
#include "dispatch.h"
#include "log.h"
#include "match.h"

#define STUDY_MAX_INSTANCES 100000

void
router_evaluate(const struct config_route *route, const struct router_instance *in,
                size_t n, struct router_verdict *v)
{
	char seen[64][16];
	size_t nseen = 0;

	memset(v, 0, sizeof(*v));
	v->priority = route->priority;
	for (size_t i = 0; i < n; i++) {
		char why[256];
		if (!match_route(route, in[i].m, why, sizeof(why))) {
			if (!v->why[0])
				snprintf(v->why, sizeof(v->why), "%s", why);
			continue;
		}
		v->nmatch++;
		if (in[i].requested_priority && strcasecmp(in[i].requested_priority, "STAT") == 0)
			v->priority = 0;
		else if (((in[i].requested_priority &&
		    strcasecmp(in[i].requested_priority, "HIGH") == 0) ||
		    in[i].dimse_priority == 1) && v->priority > 2)
			v->priority = 2;
		if (nseen < 64) {
			char name[16];
			bool dup = false;
			match_view_name(in[i].m->laterality, in[i].m->view_position, name, sizeof(name));
			for (size_t k = 0; k < nseen; k++)
				dup |= strcmp(seen[k], name) == 0;
			if (!dup)
				memcpy(seen[nseen++], name, sizeof(name));
		}
	}
	for (size_t k = 0, w = 0; k < nseen; k++) {
		int r = snprintf(v->views + w, sizeof(v->views) - w, "%s%s", k ? ", " : "", seen[k]);
		if (r < 0 || (size_t)r >= sizeof(v->views) - w)
			break;
		w += (size_t)r;
	}
	v->fires = v->nmatch >= (size_t)(route->min_images > 0 ? route->min_images : 1);
	if (!v->fires && v->nmatch > 0)
		snprintf(v->why, sizeof(v->why), "%zu matching instance(s), min_images is %d",
		    v->nmatch, route->min_images);
	else if (!v->fires && n == 0)
		snprintf(v->why, sizeof(v->why), "no instances");
	if (route->expected_views.n > 0 && v->nmatch > 0) {
		v->expected_complete = true;
		for (size_t e = 0; e < route->expected_views.n; e++) {
			bool found = false;
			for (size_t k = 0; k < nseen; k++)
				found |= strcasecmp(seen[k], route->expected_views.items[e]) == 0;
			if (!found) {
				v->expected_complete = false;
				break;
			}
		}
	}
}

/* The instances of a study, loaded from the database. */
struct study_set {
	int64_t study_id, generation;
	size_t n;
	struct router_instance *in;
	struct match_instance *m;
	char **strings;                 /* owned copies, freed with the set */
	size_t nstrings;
};

static void
set_done(struct study_set *s)
{
	for (size_t i = 0; i < s->nstrings; i++)
		free(s->strings[i]);
	free(s->strings);
	free(s->in);
	free(s->m);
	memset(s, 0, sizeof(*s));
}

static const char *
keep(struct study_set *s, const unsigned char *t)
{
	char *c = strdup(t ? (const char *)t : "");
	if (!c)
		return "";
	s->strings[s->nstrings++] = c;
	return c;
}

#define SET_STRINGS 12   /* strings kept per instance */

static int
load_study(struct db *db, int64_t study_id, struct study_set *s)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int r;

	memset(s, 0, sizeof(*s));
	s->study_id = study_id;
	if (sqlite3_prepare_v2(db_handle(db),
	    "SELECT i.id, i.sop_uid, i.modality, i.body_part, i.sop_class_uid, i.calling_ae,"
	    " s.study_description, i.series_description, i.laterality, i.view_position,"
	    " i.presentation_intent, i.patient_age, i.patient_birth_date, i.study_date,"
	    " i.requested_priority, coalesce(i.dimse_priority, -1)"
	    " FROM instances i JOIN studies s ON s.id = i.study_id WHERE i.study_id = ?"
	    " AND i.removed_at IS NULL ORDER BY i.id", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, study_id);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (s->n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			if (ncap > STUDY_MAX_INSTANCES) {
				r = -E2BIG;
				goto fail;
			}
			void *a = realloc(s->in, ncap * sizeof(*s->in));
			if (!a) { r = -ENOMEM; goto fail; }
			s->in = a;
			void *b = realloc(s->m, ncap * sizeof(*s->m));
			if (!b) { r = -ENOMEM; goto fail; }
			s->m = b;
			void *c = realloc(s->strings, ncap * SET_STRINGS * sizeof(*s->strings));
			if (!c) { r = -ENOMEM; goto fail; }
			s->strings = c;
			cap = ncap;
		}
		struct match_instance *m = &s->m[s->n];
		struct router_instance *in = &s->in[s->n];
		in->id = sqlite3_column_int64(st, 0);
		in->sop_uid = keep(s, sqlite3_column_text(st, 1));
		m->modality = keep(s, sqlite3_column_text(st, 2));
		m->body_part = keep(s, sqlite3_column_text(st, 3));
		m->sop_class = keep(s, sqlite3_column_text(st, 4));
		m->calling_ae = keep(s, sqlite3_column_text(st, 5));
		m->study_description = keep(s, sqlite3_column_text(st, 6));
		m->series_description = keep(s, sqlite3_column_text(st, 7));
		m->laterality = keep(s, sqlite3_column_text(st, 8));
		m->view_position = keep(s, sqlite3_column_text(st, 9));
		m->presentation_intent = keep(s, sqlite3_column_text(st, 10));
		m->age_years = match_age_years((const char *)sqlite3_column_text(st, 11),
		    (const char *)sqlite3_column_text(st, 12),
		    (const char *)sqlite3_column_text(st, 13));
		in->requested_priority = keep(s, sqlite3_column_text(st, 14));
		in->dimse_priority = sqlite3_column_int(st, 15);
		s->n++;
	}
	sqlite3_finalize(st);
	if (r != SQLITE_DONE) {
		set_done(s);
		return -EIO;
	}
	for (size_t i = 0; i < s->n; i++)      /* s->m has moved while growing */
		s->in[i].m = &s->m[i];
	return 0;
fail:
	sqlite3_finalize(st);
	set_done(s);
	return r;
}

int
router_check_expected(struct db *db, const struct config *cfg, int64_t now)
{
	sqlite3_stmt *st = NULL;
	int64_t ids[256], counts[256];
	size_t n = 0;
	int done = 0;
	bool any = false;

	for (size_t i = 0; i < cfg->nroutes; i++)
		any |= cfg->routes[i].expected_views.n > 0;
	if (!any)
		return 0;
	if (sqlite3_prepare_v2(db_handle(db),
	    "SELECT id, instance_count FROM studies WHERE state = 'receiving'"
	    " AND views_checked != instance_count LIMIT 256", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	while (sqlite3_step(st) == SQLITE_ROW && n < 256) {
		ids[n] = sqlite3_column_int64(st, 0);
		counts[n++] = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);

	for (size_t k = 0; k < n; k++) {
		struct study_set s;
		const char *why_route = NULL;
		if (load_study(db, ids[k], &s) < 0)
			continue;
		for (size_t i = 0; i < cfg->nroutes && !why_route; i++) {
			struct router_verdict v;
			if (cfg->routes[i].expected_views.n == 0)
				continue;
			router_evaluate(&cfg->routes[i], s.in, s.n, &v);
			if (v.expected_complete)
				why_route = cfg->routes[i].name;
		}
		set_done(&s);
		sqlite3_stmt *up;
		if (sqlite3_prepare_v2(db_handle(db), why_route ?
		    "UPDATE studies SET views_checked = ?2, state = 'complete', completed_at = ?3"
		    " WHERE id = ?1 AND state = 'receiving' AND instance_count = ?2"
		    " RETURNING study_uid" :
		    "UPDATE studies SET views_checked = ?2 WHERE id = ?1 RETURNING study_uid",
		    -1, &up, NULL) != SQLITE_OK)
			return -EIO;
		sqlite3_bind_int64(up, 1, ids[k]);
		sqlite3_bind_int64(up, 2, counts[k]);
		sqlite3_bind_int64(up, 3, now);
		if (sqlite3_step(up) == SQLITE_ROW && why_route) {
			log_info("study=%s complete: every expected view of route %s is in",
			    (const char *)sqlite3_column_text(up, 0), why_route);
			done++;
		}
		sqlite3_finalize(up);
	}
	return done;
}

/* Jobs for one study, in one transaction. Returns jobs made or < 0. */
static int
route_study(struct db *db, const struct config *cfg, int64_t study_id, int64_t generation,
            const char *study_uid, int64_t now)
{
	struct study_set s;
	sqlite3_stmt *job = NULL, *ji = NULL, *mark = NULL;
	int made = 0, r;

	if ((r = load_study(db, study_id, &s)) < 0)
		return r;
	if ((r = db_begin(db)) < 0)
		goto out;
	r = -EIO;
	if (sqlite3_prepare_v2(db_handle(db),
	    "INSERT INTO jobs (study_id, generation, route, backend, sr_template, priority,"
	    " created_at, updated_at, supersedes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7,"
	    " (SELECT id FROM jobs WHERE study_id = ?1 AND route = ?3 AND generation < ?2"
	    "  ORDER BY generation DESC LIMIT 1))"
	    " ON CONFLICT DO NOTHING RETURNING id, supersedes", -1, &job, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db_handle(db),
	    "INSERT OR IGNORE INTO job_instances (job_id, instance_id) VALUES (?, ?)",
	    -1, &ji, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db_handle(db),
	    "UPDATE studies SET routed_generation = ?2 WHERE id = ?1", -1, &mark,
	    NULL) != SQLITE_OK)
		goto rollback;

	for (size_t i = 0; i < cfg->nroutes; i++) {
		const struct config_route *route = &cfg->routes[i];
		struct router_verdict v;
		router_evaluate(route, s.in, s.n, &v);
		if (!v.fires) {
			log_debug("study=%s route=%s does not fire: %s", study_uid, route->name, v.why);
			continue;
		}
		sqlite3_reset(job);
		sqlite3_bind_int64(job, 1, study_id);
		sqlite3_bind_int64(job, 2, generation);
		sqlite3_bind_text(job, 3, route->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(job, 4, route->backend[0] ? route->backend : "reference", -1,
		    SQLITE_STATIC);
		sqlite3_bind_text(job, 5, route->sr_template[0] ? route->sr_template : "tid1500",
		    -1, SQLITE_STATIC);
		sqlite3_bind_int(job, 6, v.priority);
		sqlite3_bind_int64(job, 7, now);
		r = sqlite3_step(job);
		if (r == SQLITE_DONE)
			continue;               /* already made (UNIQUE) */
		if (r != SQLITE_ROW) {
			r = -EIO;
			goto rollback;
		}
		int64_t job_id = sqlite3_column_int64(job, 0);
		int64_t sup = sqlite3_column_int64(job, 1);
		(void)sqlite3_step(job);
		for (size_t k = 0; k < s.n; k++) {
			if (!match_route(route, s.in[k].m, NULL, 0))
				continue;
			sqlite3_reset(ji);
			sqlite3_bind_int64(ji, 1, job_id);
			sqlite3_bind_int64(ji, 2, s.in[k].id);
			if (sqlite3_step(ji) != SQLITE_DONE) {
				r = -EIO;
				goto rollback;
			}
		}
		if (v.priority < 5)     /* STAT/HIGH: its originals go first too */
			(void)dispatch_raise_priority(db, study_id, v.priority);
		log_info("job=%lld study=%s route=%s backend=%s instances=%zu priority=%d%s",
		    (long long)job_id, study_uid, route->name,
		    route->backend[0] ? route->backend : "reference", v.nmatch, v.priority,
		    sup ? " (supersedes an earlier job)" : "");
		made++;
	}
	sqlite3_bind_int64(mark, 1, study_id);
	sqlite3_bind_int64(mark, 2, generation);
	if (sqlite3_step(mark) != SQLITE_DONE) {
		r = -EIO;
		goto rollback;
	}
	if (made == 0)
		log_info("study=%s generation=%lld: no route fires (%zu instances)", study_uid,
		    (long long)generation, s.n);
	r = db_commit(db) < 0 ? -EIO : made;
	goto out;
rollback:
	log_err("routing study=%s: %s", study_uid, sqlite3_errmsg(db_handle(db)));
	(void)db_rollback(db);
out:
	sqlite3_finalize(job);
	sqlite3_finalize(ji);
	sqlite3_finalize(mark);
	set_done(&s);
	return r;
}

int
router_route_complete(struct db *db, const struct config *cfg, int64_t now)
{
	sqlite3_stmt *st = NULL;
	struct { int64_t id, gen; char uid[65]; } todo[64];
	size_t n = 0;
	int total = 0, r;

	if (sqlite3_prepare_v2(db_handle(db),
	    "SELECT id, generation, study_uid FROM studies WHERE state = 'complete'"
	    " AND routed_generation < generation ORDER BY completed_at LIMIT 64", -1, &st,
	    NULL) != SQLITE_OK)
		return -EIO;
	while (sqlite3_step(st) == SQLITE_ROW && n < 64) {
		todo[n].id = sqlite3_column_int64(st, 0);
		todo[n].gen = sqlite3_column_int64(st, 1);
		snprintf(todo[n].uid, sizeof(todo[n].uid), "%s",
		    (const char *)sqlite3_column_text(st, 2));
		n++;
	}
	sqlite3_finalize(st);
	for (size_t i = 0; i < n; i++) {
		r = route_study(db, cfg, todo[i].id, todo[i].gen, todo[i].uid, now);
		if (r < 0)
			return r;
		total += r;
	}
	return total;
}
