/*
 * triagectl.c - inspect and steer the queue through the daemon's SQLite
 * file; works while the daemon runs (WAL readers never block it) and while
 * it is stopped.
 *
 * DESIGN: a table of {name, handler, usage}; each handler builds one cJSON
 * document, printed as is with --json or as a table for people. Exit codes
 * (design.md section 2): 0 ok, 1 failure, 2 usage, 3 not found.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "config.h"
#include "db.h"
#include "dest.h"
#include "fs.h"
#include "dicom/dicom.h"
#include "log.h"
#include "match.h"
#include "retention.h"
#include "router.h"
#include "spool.h"
#include "uid.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NOTFOUND = 3 };

struct ctl {
	struct config *cfg;
	struct db *db;
	bool json;
	const char *state;
	const char *route;
	const char *destination;
	int64_t since_s;        /* 0 = no limit */
	long limit;
	bool studies;
	bool dispatches;
	bool dry_run;
	int64_t older_than_s;
	int argc;
	char **argv;
};

/*
 * The width a table row may take: the terminal's, COLUMNS when set, else
 * 132. Rows are cut to it; the whole text is in `show` and --json.
 */
static int
table_width(void)
{
	static int width;
	struct winsize ws;
	const char *env;

	if (width)
		return width;
	width = 132;
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		width = ws.ws_col < 40 ? 40 : ws.ws_col;
	else if ((env = getenv("COLUMNS")) && atoi(env) >= 40)
		width = atoi(env);
	return width;
}

/* One table row, printf-like, cut to the table width ("..." marks a cut). */
static void __attribute__((format(printf, 1, 2)))
row(const char *fmt, ...)
{
	char line[1024];
	int w = table_width(), n;
	va_list ap;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (w > (int)sizeof(line) - 1)
		w = (int)sizeof(line) - 1;
	if (n > w || n >= (int)sizeof(line)) {
		memcpy(line + w - 3, "...", 4);
	}
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	puts(line);
}

static void
iso_time(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t <= 0 || !gmtime_r(&tt, &tm)) {
		snprintf(buf, len, "-");
		return;
	}
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* KEY: the time as ISO 8601 UTC, or null when there is none. */
static void
add_time(cJSON *o, const char *key, int64_t t)
{
	char buf[32];

	if (t <= 0) {
		cJSON_AddNullToObject(o, key);
		return;
	}
	iso_time(t, buf, sizeof(buf));
	cJSON_AddStringToObject(o, key, buf);
}

static void
age_str(int64_t secs, char *buf, size_t len)
{
	if (secs < 0)
		secs = 0;
	if (secs < 120)
		snprintf(buf, len, "%llds", (long long)secs);
	else if (secs < 7200)
		snprintf(buf, len, "%lldm", (long long)secs / 60);
	else if (secs < 172800)
		snprintf(buf, len, "%lldh", (long long)secs / 3600);
	else
		snprintf(buf, len, "%lldd", (long long)secs / 86400);
}

/* A JSON string for printing: "-" when absent or null. */
static const char *
sv(const cJSON *j)
{
	const char *s = cJSON_GetStringValue(j);
	return s ? s : "-";
}

static const char *
col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : "";
}

static bool
table_exists(struct ctl *c, const char *name)
{
	sqlite3_stmt *st;
	bool yes = false;

	if (sqlite3_prepare_v2(db_handle(c->db),
	    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", -1, &st,
	    NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	yes = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return yes;
}

static int
print_json(cJSON *doc)
{
	char *s = cJSON_Print(doc);

	if (!s)
		return EXIT_FAIL;
	puts(s);
	free(s);
	return EXIT_OK;
}

static sqlite3_stmt *
prepare(struct ctl *c, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db_handle(c->db), sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "triagectl: database: %s\n", sqlite3_errmsg(db_handle(c->db)));
		return NULL;
	}
	return st;
}

/* ---- status ------------------------------------------------------------- */

/*
 * Into OBJ, name -> count from SQL (two columns) over TABLE, when the
 * schema has it; UNCONFIGURED: only names that are not a configured
 * destination.
 */
static void
add_counts(struct ctl *c, cJSON *obj, const char *table, const char *sql, bool unconfigured)
{
	sqlite3_stmt *st;

	if (!table_exists(c, table) || !(st = prepare(c, sql)))
		return;
	while (sqlite3_step(st) == SQLITE_ROW)
		if (!unconfigured || !config_destination_find(c->cfg, col_text(st, 0)))
			cJSON_AddNumberToObject(obj, col_text(st, 0),
			    (double)sqlite3_column_int64(st, 1));
	sqlite3_finalize(st);
}

static int
cmd_status(struct ctl *c)
{
	cJSON *doc = cJSON_CreateObject(), *studies, *jobs, *hour;
	sqlite3_stmt *st;
	pid_t pid = 0;
	int up, rc = EXIT_OK;
	uint64_t spool_b = 0, free_b = 0;
	int64_t now = (int64_t)time(NULL), oldest = 0, oldest_job = 0;
	long long n_receiving = 0, n_complete = 0, n_instances = 0;
	long long hour_instances = 0, hour_bytes = 0;
	char buf[64];

	up = spool_lock_probe(c->cfg->storage.spool_dir, &pid);
	cJSON_AddStringToObject(doc, "daemon", up > 0 ? "up" : "down");
	if (up > 0)
		cJSON_AddNumberToObject(doc, "pid", pid);
	if (!c->db) {
		/* never started here: say so rather than fail */
		cJSON_AddStringToObject(doc, "database", "missing");
		if (c->json)
			print_json(doc);
		else
			printf("daemon      %s\ndatabase    %s does not exist yet (triaged creates "
			    "it at its first start)\n", up > 0 ? "up" : "down",
			    c->cfg->storage.database);
		cJSON_Delete(doc);
		return EXIT_OK;
	}

	/* counts walk the (state, ...) indexes, not the wide rows */
	if ((st = prepare(c, "SELECT (SELECT count(*) FROM studies WHERE state = 'receiving'),"
	    " (SELECT count(*) FROM studies WHERE state = 'complete'),"
	    " (SELECT min(opened_at) FROM studies WHERE state = 'receiving')"))) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			n_receiving = sqlite3_column_int64(st, 0);
			n_complete = sqlite3_column_int64(st, 1);
			oldest = sqlite3_column_int64(st, 2);
		}
		sqlite3_finalize(st);
	} else {
		rc = EXIT_FAIL;
	}
	if ((st = prepare(c, "SELECT count(*), (SELECT count(*) FROM instances"
	    " WHERE received_at > ?1 - 3600), (SELECT coalesce(sum(size), 0) FROM instances"
	    " WHERE received_at > ?1 - 3600) FROM instances"))) {
		sqlite3_bind_int64(st, 1, now);
		if (sqlite3_step(st) == SQLITE_ROW) {
			n_instances = sqlite3_column_int64(st, 0);
			hour_instances = sqlite3_column_int64(st, 1);
			hour_bytes = sqlite3_column_int64(st, 2);
		}
		sqlite3_finalize(st);
	} else {
		rc = EXIT_FAIL;
	}
	studies = cJSON_AddObjectToObject(doc, "studies");
	cJSON_AddNumberToObject(studies, "receiving", (double)n_receiving);
	cJSON_AddNumberToObject(studies, "complete", (double)n_complete);
	cJSON_AddNumberToObject(doc, "instances", (double)n_instances);
	jobs = cJSON_AddObjectToObject(doc, "jobs");
	add_counts(c, jobs, "jobs", "SELECT state, count(*) FROM jobs GROUP BY state", false);
	cJSON *disp = cJSON_AddObjectToObject(doc, "dispatches");
	add_counts(c, disp, "dispatches", "SELECT state, count(*) FROM dispatches GROUP BY state",
	    false);
	/* undelivered dispatches whose destination has left the configuration:
	 * nobody sends them until it comes back */
	cJSON *orphans = cJSON_AddObjectToObject(doc, "unconfigured_destinations");
	add_counts(c, orphans, "dispatches", "SELECT destination, count(*) FROM dispatches"
	    " WHERE state IN ('pending','sending','dead') GROUP BY destination", true);
	cJSON_AddNumberToObject(doc, "oldest_receiving_age_s",
	    oldest > 0 ? (double)(now - oldest) : 0);
	/* the oldest job still waiting for its analysis */
	if (table_exists(c, "jobs") && (st = prepare(c,
	    "SELECT min(created_at) FROM jobs WHERE state = 'pending'"))) {
		if (sqlite3_step(st) == SQLITE_ROW)
			oldest_job = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	cJSON_AddNumberToObject(doc, "oldest_pending_job_age_s",
	    oldest_job > 0 ? (double)(now - oldest_job) : 0);
	/* received instances and written results: what retention frees */
	static const char *const areas[] = { "studies", "results" };
	for (size_t i = 0; i < 2; i++) {
		char p[4096];
		uint64_t b = 0;
		if (fs_path(p, sizeof(p), "%s/%s", c->cfg->storage.spool_dir, areas[i]) == 0 &&
		    fs_du(p, &b) == 0)
			spool_b += b;
	}
	(void)fs_free_bytes(c->cfg->storage.spool_dir, &free_b);
	cJSON_AddNumberToObject(doc, "spool_bytes", (double)spool_b);
	cJSON_AddNumberToObject(doc, "free_bytes", (double)free_b);
	hour = cJSON_AddObjectToObject(doc, "last_hour");
	cJSON_AddNumberToObject(hour, "instances", (double)hour_instances);
	cJSON_AddNumberToObject(hour, "bytes", (double)hour_bytes);

	if (c->json) {
		print_json(doc);
	} else {
		printf("daemon      %s", up > 0 ? "up" : "down");
		if (up > 0)
			printf(" (pid %ld)", (long)pid);
		printf("\nstudies     %lld receiving, %lld complete\n", n_receiving, n_complete);
		printf("instances   %lld\n", n_instances);
		printf("jobs       ");
		if (cJSON_GetArraySize(jobs) == 0)
			printf(" none");
		for (cJSON *j = jobs->child; j; j = j->next)
			printf(" %s %d", j->string, j->valueint);
		printf("\ndispatches ");
		if (cJSON_GetArraySize(disp) == 0)
			printf(" none");
		for (cJSON *j = disp->child; j; j = j->next)
			printf(" %s %d", j->string, j->valueint);
		age_str(oldest > 0 ? now - oldest : 0, buf, sizeof(buf));
		printf("\noldest      receiving study %s", oldest > 0 ? buf : "-");
		age_str(oldest_job > 0 ? now - oldest_job : 0, buf, sizeof(buf));
		printf(", pending job %s\n", oldest_job > 0 ? buf : "-");
		printf("spool       %.1f MB used, %.1f MB free\n", spool_b / 1048576.0,
		    free_b / 1048576.0);
		printf("last hour   %lld instances, %.1f MB\n", hour_instances,
		    hour_bytes / 1048576.0);
		for (cJSON *o = orphans->child; o; o = o->next)
			printf("WARNING     %d undelivered dispatches to destination %s, which is "
			    "not in the configuration: they wait until [destination %s] is back\n",
			    o->valueint, o->string, o->string);
	}
	cJSON_Delete(doc);
	return rc;
}

/* ---- list --------------------------------------------------------------- */

static cJSON *
study_json(sqlite3_stmt *st)
{
	/* columns: see STUDY_COLUMNS */
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "study_uid", col_text(st, 0));
	cJSON_AddStringToObject(o, "state", col_text(st, 1));
	cJSON_AddNumberToObject(o, "instances", (double)sqlite3_column_int64(st, 2));
	cJSON_AddStringToObject(o, "patient_id", col_text(st, 3));
	cJSON_AddStringToObject(o, "accession", col_text(st, 4));
	cJSON_AddStringToObject(o, "modality", col_text(st, 5));
	cJSON_AddStringToObject(o, "study_date", col_text(st, 6));
	cJSON_AddStringToObject(o, "study_description", col_text(st, 7));
	cJSON_AddStringToObject(o, "calling_ae", col_text(st, 8));
	add_time(o, "first_received", sqlite3_column_int64(st, 9));
	add_time(o, "last_received", sqlite3_column_int64(st, 10));
	add_time(o, "completed", sqlite3_column_int64(st, 11));
	cJSON_AddNumberToObject(o, "bytes", (double)sqlite3_column_int64(st, 12));
	cJSON_AddNumberToObject(o, "generation", (double)sqlite3_column_int64(st, 13));
	add_time(o, "files_removed", sqlite3_column_int64(st, 15));
	return o;
}

#define STUDY_COLUMNS \
	"study_uid, state, instance_count, patient_id, accession, modalities," \
	" study_date, study_description, calling_ae, first_received_at," \
	" last_received_at, completed_at, bytes, generation, id, files_removed_at"

static int
list_studies(struct ctl *c)
{
	cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "studies");
	sqlite3_stmt *st;
	int64_t now = (int64_t)time(NULL);
	int n = 0;

	if (c->state && strcmp(c->state, "receiving") != 0 && strcmp(c->state, "complete") != 0) {
		fprintf(stderr, "triagectl: study state is receiving or complete\n");
		cJSON_Delete(doc);
		return EXIT_USAGE;
	}
	char sql[512];
	snprintf(sql, sizeof(sql), "SELECT " STUDY_COLUMNS " FROM studies WHERE 1%s%s"
	    " ORDER BY last_received_at DESC, id DESC LIMIT ?3",
	    c->state ? " AND state = ?1" : "", c->since_s ? " AND last_received_at >= ?2" : "");
	st = prepare(c, sql);
	if (!st) {
		cJSON_Delete(doc);
		return EXIT_FAIL;
	}
	if (c->state)
		sqlite3_bind_text(st, 1, c->state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, c->since_s ? now - c->since_s : 0);
	sqlite3_bind_int64(st, 3, c->limit);
	if (!c->json)
		row("%-9s %5s %-6s %-14s %-12s %-8s %-5s %s", "STATE", "IMGS",
		    "MOD", "ACCESSION", "PATIENT ID", "DATE", "AGE", "STUDY UID");
	while (sqlite3_step(st) == SQLITE_ROW) {
		n++;
		if (c->json) {
			cJSON_AddItemToArray(arr, study_json(st));
			continue;
		}
		char age[16];
		age_str(now - sqlite3_column_int64(st, 10), age, sizeof(age));
		row("%-9s %5lld %-6.6s %-14.14s %-12.12s %-8.8s %-5s %s",
		    col_text(st, 1), (long long)sqlite3_column_int64(st, 2), col_text(st, 5),
		    col_text(st, 4), col_text(st, 3), col_text(st, 6), age, col_text(st, 0));
	}
	sqlite3_finalize(st);
	if (c->json)
		print_json(doc);
	else if (n == 0)
		printf("(no studies)\n");
	cJSON_Delete(doc);
	return EXIT_OK;
}

static int
list_dispatches(struct ctl *c)
{
	cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "dispatches");
	sqlite3_stmt *st;
	int64_t now = (int64_t)time(NULL);
	int n = 0;

	char sql[768];
	snprintf(sql, sizeof(sql), "SELECT d.id, d.destination, d.kind, d.state, d.priority,"
	    " d.attempts, d.created_at, d.error, s.study_uid, s.accession,"
	    " coalesce(i.sop_uid, r.sop_uid)"
	    " FROM dispatches d JOIN studies s ON s.id = d.study_id"
	    " LEFT JOIN instances i ON i.id = d.instance_id LEFT JOIN results r ON r.id = d.result_id"
	    " WHERE 1%s%s%s ORDER BY d.created_at DESC, d.id DESC LIMIT ?4",
	    c->state ? " AND d.state = ?1" : "", c->destination ? " AND d.destination = ?2" : "",
	    c->since_s ? " AND d.created_at >= ?3" : "");
	st = prepare(c, sql);
	if (!st) {
		cJSON_Delete(doc);
		return EXIT_FAIL;
	}
	if (c->state)
		sqlite3_bind_text(st, 1, c->state, -1, SQLITE_STATIC);
	if (c->destination)
		sqlite3_bind_text(st, 2, c->destination, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, c->since_s ? now - c->since_s : 0);
	sqlite3_bind_int64(st, 4, c->limit);
	if (!c->json)
		row("%-7s %-10s %-8s %-9s %-3s %-3s %-5s %-14s %s", "ID", "DESTINATION", "KIND",
		    "STATE", "PRI", "TRY", "AGE", "ACCESSION", "SOP INSTANCE UID / ERROR");
	while (sqlite3_step(st) == SQLITE_ROW) {
		char age[16];
		n++;
		age_str(now - sqlite3_column_int64(st, 6), age, sizeof(age));
		if (c->json) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
			cJSON_AddStringToObject(o, "destination", col_text(st, 1));
			cJSON_AddStringToObject(o, "kind", col_text(st, 2));
			cJSON_AddStringToObject(o, "state", col_text(st, 3));
			cJSON_AddNumberToObject(o, "priority", sqlite3_column_int(st, 4));
			cJSON_AddNumberToObject(o, "attempts", sqlite3_column_int(st, 5));
			cJSON_AddNumberToObject(o, "age_s", (double)(now - sqlite3_column_int64(st, 6)));
			cJSON_AddStringToObject(o, "error", col_text(st, 7));
			cJSON_AddStringToObject(o, "study_uid", col_text(st, 8));
			cJSON_AddStringToObject(o, "accession", col_text(st, 9));
			cJSON_AddStringToObject(o, "sop_instance_uid", col_text(st, 10));
			cJSON_AddItemToArray(arr, o);
			continue;
		}
		row("%-7lld %-10.10s %-8s %-9s %-3d %-3d %-5s %-14.14s %s",
		    (long long)sqlite3_column_int64(st, 0), col_text(st, 1), col_text(st, 2),
		    col_text(st, 3), sqlite3_column_int(st, 4), sqlite3_column_int(st, 5), age,
		    col_text(st, 9), col_text(st, 7)[0] ? col_text(st, 7) : col_text(st, 10));
	}
	sqlite3_finalize(st);
	if (c->json)
		print_json(doc);
	else if (n == 0)
		printf("(no dispatches)\n");
	cJSON_Delete(doc);
	return EXIT_OK;
}

static int
cmd_list(struct ctl *c)
{
	cJSON *doc, *arr;
	sqlite3_stmt *st;
	int64_t now = (int64_t)time(NULL);
	int n = 0;
	static const char *const states[] = { "pending", "running", "done", "failed",
	    "cancelled" };
	bool ok = !c->state;

	if (c->studies)
		return list_studies(c);
	if (c->dispatches)
		return list_dispatches(c);
	for (size_t i = 0; c->state && i < sizeof(states) / sizeof(states[0]); i++)
		ok |= strcmp(c->state, states[i]) == 0;
	if (!ok) {
		fprintf(stderr, "triagectl: job state is pending, running, done, failed or "
		    "cancelled\n");
		return EXIT_USAGE;
	}
	/*
	 * Only the conditions given, so that SQLite walks jobs_list (state,
	 * created_at, id) or jobs_route backwards and stops after LIMIT rows:
	 * "?1 IS NULL OR state = ?1" would make it scan and sort every job.
	 */
	char sql[768];
	snprintf(sql, sizeof(sql), "SELECT j.id, j.state, j.priority, j.route, j.backend,"
	    " s.study_uid, s.accession, s.patient_id, s.modalities, s.study_date, j.attempts,"
	    " j.created_at, j.outcome, j.score, j.error, j.updated_at"
	    " FROM jobs j JOIN studies s ON s.id = j.study_id WHERE 1%s%s%s"
	    " ORDER BY j.created_at DESC, j.id DESC LIMIT ?4",
	    c->state ? " AND j.state = ?1" : "", c->route ? " AND j.route = ?2" : "",
	    c->since_s ? " AND j.created_at >= ?3" : "");
	st = prepare(c, sql);
	if (!st)
		return EXIT_FAIL;
	if (c->state)
		sqlite3_bind_text(st, 1, c->state, -1, SQLITE_STATIC);
	if (c->route)
		sqlite3_bind_text(st, 2, c->route, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, c->since_s ? now - c->since_s : 0);
	sqlite3_bind_int64(st, 4, c->limit);
	doc = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(doc, "jobs");
	if (!c->json)
		row("%-7s %-9s %-3s %-12s %-10s %-14s %-12s %-4s %-8s %-4s %-5s %s", "ID",
		    "STATE", "PRI", "ROUTE", "BACKEND", "ACCESSION", "PATIENT ID", "MOD",
		    "DATE", "TRY", "AGE", "OUTCOME");
	while (sqlite3_step(st) == SQLITE_ROW) {
		char age[16];
		n++;
		age_str(now - sqlite3_column_int64(st, 11), age, sizeof(age));
		if (c->json) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
			cJSON_AddStringToObject(o, "state", col_text(st, 1));
			cJSON_AddNumberToObject(o, "priority", sqlite3_column_int(st, 2));
			cJSON_AddStringToObject(o, "route", col_text(st, 3));
			cJSON_AddStringToObject(o, "backend", col_text(st, 4));
			cJSON_AddStringToObject(o, "study_uid", col_text(st, 5));
			cJSON_AddStringToObject(o, "accession", col_text(st, 6));
			cJSON_AddStringToObject(o, "patient_id", col_text(st, 7));
			cJSON_AddStringToObject(o, "modality", col_text(st, 8));
			cJSON_AddStringToObject(o, "study_date", col_text(st, 9));
			cJSON_AddNumberToObject(o, "attempts", sqlite3_column_int(st, 10));
			cJSON_AddNumberToObject(o, "age_s", (double)(now - sqlite3_column_int64(st, 11)));
			cJSON_AddStringToObject(o, "outcome", col_text(st, 12));
			if (sqlite3_column_type(st, 13) != SQLITE_NULL)
				cJSON_AddNumberToObject(o, "score", sqlite3_column_double(st, 13));
			else
				cJSON_AddNullToObject(o, "score");
			cJSON_AddStringToObject(o, "error", col_text(st, 14));
			cJSON_AddItemToArray(arr, o);
			continue;
		}
		char outcome[80];
		if (sqlite3_column_type(st, 13) != SQLITE_NULL)
			snprintf(outcome, sizeof(outcome), "%s %.2f", col_text(st, 12),
			    sqlite3_column_double(st, 13));
		else
			snprintf(outcome, sizeof(outcome), "%s", col_text(st, 12));
		if (!outcome[0] && col_text(st, 14)[0])
			snprintf(outcome, sizeof(outcome), "%.70s", col_text(st, 14));
		row("%-7lld %-9s %-3d %-12.12s %-10.10s %-14.14s %-12.12s %-4.4s %-8.8s %-4d "
		    "%-5s %s", (long long)sqlite3_column_int64(st, 0), col_text(st, 1),
		    sqlite3_column_int(st, 2), col_text(st, 3), col_text(st, 4), col_text(st, 6),
		    col_text(st, 7), col_text(st, 8), col_text(st, 9), sqlite3_column_int(st, 10),
		    age, outcome);
	}
	sqlite3_finalize(st);
	if (c->json)
		print_json(doc);
	else if (n == 0)
		printf("(no jobs)\n");
	cJSON_Delete(doc);
	return EXIT_OK;
}

/* ---- show --------------------------------------------------------------- */

/* The results and dispatches of study SID (of job JOB only, if > 0). */
static void
add_results_dispatches(struct ctl *c, cJSON *doc, int64_t sid, int64_t job)
{
	cJSON *arr = cJSON_AddArrayToObject(doc, "results");
	sqlite3_stmt *st;

	if ((st = prepare(c, "SELECT id, job_id, kind, sop_uid, series_uid, sop_class_uid,"
	    " source_sop_uid, path, size, created_at, superseded_by FROM results"
	    " WHERE study_id = ?1 AND (?2 = 0 OR job_id = ?2) ORDER BY id"))) {
		sqlite3_bind_int64(st, 1, sid);
		sqlite3_bind_int64(st, 2, job);
		while (sqlite3_step(st) == SQLITE_ROW) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
			cJSON_AddNumberToObject(o, "job", (double)sqlite3_column_int64(st, 1));
			cJSON_AddStringToObject(o, "kind", col_text(st, 2));
			cJSON_AddStringToObject(o, "sop_instance_uid", col_text(st, 3));
			cJSON_AddStringToObject(o, "series_uid", col_text(st, 4));
			cJSON_AddStringToObject(o, "sop_class_uid", col_text(st, 5));
			cJSON_AddStringToObject(o, "source_sop_instance_uid", col_text(st, 6));
			cJSON_AddStringToObject(o, "path", col_text(st, 7));
			cJSON_AddNumberToObject(o, "size", (double)sqlite3_column_int64(st, 8));
			add_time(o, "created", sqlite3_column_int64(st, 9));
			if (sqlite3_column_type(st, 10) != SQLITE_NULL)
				cJSON_AddNumberToObject(o, "superseded_by",
				    (double)sqlite3_column_int64(st, 10));
			else
				cJSON_AddNullToObject(o, "superseded_by");
			cJSON_AddItemToArray(arr, o);
		}
		sqlite3_finalize(st);
	}
	arr = cJSON_AddArrayToObject(doc, "dispatches");
	if ((st = prepare(c, "SELECT d.id, d.destination, d.kind, d.state, d.priority,"
	    " d.attempts, d.created_at, d.updated_at, d.delivered_at, d.not_before, d.error,"
	    " coalesce(i.sop_uid, r.sop_uid) FROM dispatches d"
	    " LEFT JOIN instances i ON i.id = d.instance_id LEFT JOIN results r ON r.id = d.result_id"
	    " WHERE d.study_id = ?1 AND (?2 = 0 OR r.job_id = ?2) ORDER BY d.id"))) {
		sqlite3_bind_int64(st, 1, sid);
		sqlite3_bind_int64(st, 2, job);
		while (sqlite3_step(st) == SQLITE_ROW) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
			cJSON_AddStringToObject(o, "destination", col_text(st, 1));
			cJSON_AddStringToObject(o, "kind", col_text(st, 2));
			cJSON_AddStringToObject(o, "state", col_text(st, 3));
			cJSON_AddNumberToObject(o, "priority", sqlite3_column_int(st, 4));
			cJSON_AddNumberToObject(o, "attempts", sqlite3_column_int(st, 5));
			add_time(o, "created", sqlite3_column_int64(st, 6));
			add_time(o, "updated", sqlite3_column_int64(st, 7));
			add_time(o, "delivered", sqlite3_column_int64(st, 8));
			if (!strcmp(col_text(st, 3), "pending"))
				add_time(o, "next_attempt", sqlite3_column_int64(st, 9));
			cJSON_AddStringToObject(o, "error", col_text(st, 10));
			cJSON_AddStringToObject(o, "sop_instance_uid", col_text(st, 11));
			cJSON_AddItemToArray(arr, o);
		}
		sqlite3_finalize(st);
	}
}

static void
print_results_dispatches(const cJSON *doc)
{
	const cJSON *it, *res = cJSON_GetObjectItem(doc, "results"),
	    *dis = cJSON_GetObjectItem(doc, "dispatches");

	printf("\nresults (%d)\n", cJSON_GetArraySize(res));
	cJSON_ArrayForEach(it, res)
		printf("  %-8s job %-5d %s%s\n", sv(cJSON_GetObjectItem(it, "kind")),
		    cJSON_GetObjectItem(it, "job")->valueint,
		    sv(cJSON_GetObjectItem(it, "sop_instance_uid")),
		    cJSON_IsNumber(cJSON_GetObjectItem(it, "superseded_by")) ? " (superseded)" : "");
	printf("\ndispatches (%d)\n", cJSON_GetArraySize(dis));
	cJSON_ArrayForEach(it, dis)
		printf("  %-6d %-12s %-8s %-9s try %-3d %s %s\n", cJSON_GetObjectItem(it, "id")->valueint,
		    sv(cJSON_GetObjectItem(it, "destination")), sv(cJSON_GetObjectItem(it, "kind")),
		    sv(cJSON_GetObjectItem(it, "state")), cJSON_GetObjectItem(it, "attempts")->valueint,
		    sv(cJSON_GetObjectItem(it, "sop_instance_uid")), sv(cJSON_GetObjectItem(it, "error")));
}

static int
show_study(struct ctl *c, const char *uid)
{
	cJSON *doc, *study, *arr;
	sqlite3_stmt *st;
	int64_t sid;
	char t[32];

	st = prepare(c, "SELECT " STUDY_COLUMNS " FROM studies WHERE study_uid = ?");
	if (!st)
		return EXIT_FAIL;
	sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		fprintf(stderr, "triagectl: no study or job %s\n", uid);
		return EXIT_NOTFOUND;
	}
	doc = cJSON_CreateObject();
	study = study_json(st);
	sid = sqlite3_column_int64(st, 14);
	sqlite3_finalize(st);
	cJSON_AddItemToObject(doc, "study", study);
	arr = cJSON_AddArrayToObject(doc, "instances");

	st = prepare(c, "SELECT sop_uid, series_uid, sop_class_uid, transfer_syntax, path,"
	    " size, modality, body_part, laterality, view_position, calling_ae, peer_ip,"
	    " received_at, series_number, instance_number, image_type, presentation_intent,"
	    " rows, columns, generation, removed_at FROM instances WHERE study_id = ?"
	    " ORDER BY series_uid, CAST(instance_number AS INTEGER), id");
	if (!st) {
		cJSON_Delete(doc);
		return EXIT_FAIL;
	}
	sqlite3_bind_int64(st, 1, sid);
	while (sqlite3_step(st) == SQLITE_ROW) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "sop_instance_uid", col_text(st, 0));
		cJSON_AddStringToObject(o, "series_uid", col_text(st, 1));
		cJSON_AddStringToObject(o, "sop_class_uid", col_text(st, 2));
		cJSON_AddStringToObject(o, "transfer_syntax", col_text(st, 3));
		cJSON_AddStringToObject(o, "path", col_text(st, 4));
		cJSON_AddNumberToObject(o, "size", (double)sqlite3_column_int64(st, 5));
		cJSON_AddStringToObject(o, "modality", col_text(st, 6));
		cJSON_AddStringToObject(o, "body_part", col_text(st, 7));
		cJSON_AddStringToObject(o, "laterality", col_text(st, 8));
		cJSON_AddStringToObject(o, "view_position", col_text(st, 9));
		cJSON_AddStringToObject(o, "calling_ae", col_text(st, 10));
		cJSON_AddStringToObject(o, "peer_ip", col_text(st, 11));
		iso_time(sqlite3_column_int64(st, 12), t, sizeof(t));
		cJSON_AddStringToObject(o, "received_at", t);
		cJSON_AddStringToObject(o, "series_number", col_text(st, 13));
		cJSON_AddStringToObject(o, "instance_number", col_text(st, 14));
		cJSON_AddStringToObject(o, "image_type", col_text(st, 15));
		cJSON_AddStringToObject(o, "presentation_intent", col_text(st, 16));
		cJSON_AddNumberToObject(o, "rows", (double)sqlite3_column_int64(st, 17));
		cJSON_AddNumberToObject(o, "columns", (double)sqlite3_column_int64(st, 18));
		cJSON_AddNumberToObject(o, "generation", (double)sqlite3_column_int64(st, 19));
		add_time(o, "file_removed", sqlite3_column_int64(st, 20));
		cJSON_AddItemToArray(arr, o);
	}
	sqlite3_finalize(st);
	cJSON *jobs = cJSON_AddArrayToObject(doc, "jobs");
	if ((st = prepare(c, "SELECT id, state, route, backend, generation, attempts, outcome,"
	    " score, error FROM jobs WHERE study_id = ? ORDER BY id"))) {
		sqlite3_bind_int64(st, 1, sid);
		while (sqlite3_step(st) == SQLITE_ROW) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
			cJSON_AddStringToObject(o, "state", col_text(st, 1));
			cJSON_AddStringToObject(o, "route", col_text(st, 2));
			cJSON_AddStringToObject(o, "backend", col_text(st, 3));
			cJSON_AddNumberToObject(o, "generation", sqlite3_column_int(st, 4));
			cJSON_AddNumberToObject(o, "attempts", sqlite3_column_int(st, 5));
			cJSON_AddStringToObject(o, "outcome", col_text(st, 6));
			if (sqlite3_column_type(st, 7) != SQLITE_NULL)
				cJSON_AddNumberToObject(o, "score", sqlite3_column_double(st, 7));
			else
				cJSON_AddNullToObject(o, "score");
			cJSON_AddStringToObject(o, "error", col_text(st, 8));
			cJSON_AddItemToArray(jobs, o);
		}
		sqlite3_finalize(st);
	}
	add_results_dispatches(c, doc, sid, 0);

	if (c->json) {
		print_json(doc);
	} else {
		cJSON *s = study;
#define F(k) sv(cJSON_GetObjectItem(s, k))
		printf("study       %s\n", F("study_uid"));
		printf("state       %s (generation %d)\n", F("state"),
		    cJSON_GetObjectItem(s, "generation")->valueint);
		printf("patient id  %s\naccession   %s\nmodality    %s\ndate        %s\n"
		    "description %s\ncalling AE  %s\nreceived    %s .. %s\ncompleted   %s\n",
		    F("patient_id"), F("accession"), F("modality"), F("study_date"),
		    F("study_description"), F("calling_ae"), F("first_received"),
		    F("last_received"), F("completed"));
		if (cJSON_IsString(cJSON_GetObjectItem(s, "files_removed")))
			printf("files       removed by retention at %s\n", F("files_removed"));
#undef F
		printf("\ninstances (%d)\n", cJSON_GetArraySize(arr));
		printf("  %-4s %-6s %-4s %-6s %-10s %-22s %s\n", "MOD", "BODY", "LAT", "VIEW",
		    "SIZE", "TRANSFER SYNTAX", "SOP INSTANCE UID");
		for (cJSON *o = arr->child; o; o = o->next) {
#define G(k) sv(cJSON_GetObjectItem(o, k))
			printf("  %-4.4s %-6.6s %-4.4s %-6.6s %-10.0f %-22.22s %s\n", G("modality"),
			    G("body_part"), G("laterality"), G("view_position"),
			    cJSON_GetObjectItem(o, "size")->valuedouble, G("transfer_syntax"),
			    G("sop_instance_uid"));
#undef G
		}
		printf("\njobs (%d)\n", cJSON_GetArraySize(jobs));
		for (cJSON *o = jobs->child; o; o = o->next)
			printf("  %-6d %-9s %-14s %-12s %s %s\n",
			    cJSON_GetObjectItem(o, "id")->valueint,
			    sv(cJSON_GetObjectItem(o, "state")),
			    sv(cJSON_GetObjectItem(o, "route")),
			    sv(cJSON_GetObjectItem(o, "backend")),
			    sv(cJSON_GetObjectItem(o, "outcome")),
			    sv(cJSON_GetObjectItem(o, "error")));
		print_results_dispatches(doc);
	}
	cJSON_Delete(doc);
	return EXIT_OK;
}

static int
show_job(struct ctl *c, int64_t id)
{
	cJSON *doc, *job, *arr;
	sqlite3_stmt *st;
	char t[32];
	const char *result_json = NULL;
	int64_t study_id = 0;

	st = prepare(c, "SELECT j.id, j.state, j.priority, j.route, j.backend, s.study_uid,"
	    " s.accession, s.patient_id, s.modalities, s.study_date, j.attempts, j.created_at,"
	    " j.updated_at, j.started_at, j.finished_at, j.not_before, j.outcome, j.score,"
	    " j.error, j.generation, j.supersedes, j.sr_template, j.result_json, j.study_id"
	    " FROM jobs j JOIN studies s ON s.id = j.study_id WHERE j.id = ?");
	if (!st)
		return EXIT_FAIL;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		fprintf(stderr, "triagectl: no job %lld\n", (long long)id);
		return EXIT_NOTFOUND;
	}
	doc = cJSON_CreateObject();
	job = cJSON_AddObjectToObject(doc, "job");
	cJSON_AddNumberToObject(job, "id", (double)sqlite3_column_int64(st, 0));
	cJSON_AddStringToObject(job, "state", col_text(st, 1));
	cJSON_AddNumberToObject(job, "priority", sqlite3_column_int(st, 2));
	cJSON_AddStringToObject(job, "route", col_text(st, 3));
	cJSON_AddStringToObject(job, "backend", col_text(st, 4));
	cJSON_AddStringToObject(job, "study_uid", col_text(st, 5));
	cJSON_AddStringToObject(job, "accession", col_text(st, 6));
	cJSON_AddStringToObject(job, "patient_id", col_text(st, 7));
	cJSON_AddStringToObject(job, "modality", col_text(st, 8));
	cJSON_AddStringToObject(job, "study_date", col_text(st, 9));
	cJSON_AddNumberToObject(job, "attempts", sqlite3_column_int(st, 10));
	iso_time(sqlite3_column_int64(st, 11), t, sizeof(t));
	cJSON_AddStringToObject(job, "created", t);
	iso_time(sqlite3_column_int64(st, 12), t, sizeof(t));
	cJSON_AddStringToObject(job, "updated", t);
	add_time(job, "finished", sqlite3_column_int64(st, 14));
	if (!strcmp(col_text(st, 1), "pending") && sqlite3_column_int64(st, 15) > 0) {
		iso_time(sqlite3_column_int64(st, 15), t, sizeof(t));
		cJSON_AddStringToObject(job, "next_attempt", t);
	}
	cJSON_AddStringToObject(job, "outcome", col_text(st, 16));
	if (sqlite3_column_type(st, 17) != SQLITE_NULL)
		cJSON_AddNumberToObject(job, "score", sqlite3_column_double(st, 17));
	else
		cJSON_AddNullToObject(job, "score");
	cJSON_AddStringToObject(job, "error", col_text(st, 18));
	cJSON_AddNumberToObject(job, "generation", sqlite3_column_int(st, 19));
	if (sqlite3_column_type(st, 20) != SQLITE_NULL)
		cJSON_AddNumberToObject(job, "supersedes", (double)sqlite3_column_int64(st, 20));
	cJSON_AddStringToObject(job, "sr_template", col_text(st, 21));
	result_json = (const char *)sqlite3_column_text(st, 22);
	study_id = sqlite3_column_int64(st, 23);
	if (result_json) {
		cJSON *r = cJSON_Parse(result_json);
		cJSON_AddItemToObject(doc, "result", r ? r : cJSON_CreateNull());
	} else {
		cJSON_AddNullToObject(doc, "result");
	}
	sqlite3_finalize(st);

	arr = cJSON_AddArrayToObject(doc, "attempts");
	if ((st = prepare(c, "SELECT attempt, started_at, finished_at, status, message"
	    " FROM attempts WHERE job_id = ? ORDER BY attempt, id"))) {
		sqlite3_bind_int64(st, 1, id);
		while (sqlite3_step(st) == SQLITE_ROW) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddNumberToObject(o, "attempt", sqlite3_column_int(st, 0));
			iso_time(sqlite3_column_int64(st, 1), t, sizeof(t));
			cJSON_AddStringToObject(o, "started", t);
			add_time(o, "finished", sqlite3_column_int64(st, 2));
			cJSON_AddStringToObject(o, "status", col_text(st, 3));
			cJSON_AddStringToObject(o, "message", col_text(st, 4));
			cJSON_AddItemToArray(arr, o);
		}
		sqlite3_finalize(st);
	}
	arr = cJSON_AddArrayToObject(doc, "instances");
	if ((st = prepare(c, "SELECT i.sop_uid, i.sop_class_uid, i.modality, i.laterality,"
	    " i.view_position, i.body_part, i.rows, i.columns, i.path FROM job_instances ji"
	    " JOIN instances i ON i.id = ji.instance_id WHERE ji.job_id = ? ORDER BY i.id"))) {
		sqlite3_bind_int64(st, 1, id);
		while (sqlite3_step(st) == SQLITE_ROW) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "sop_instance_uid", col_text(st, 0));
			cJSON_AddStringToObject(o, "sop_class_uid", col_text(st, 1));
			cJSON_AddStringToObject(o, "modality", col_text(st, 2));
			cJSON_AddStringToObject(o, "laterality", col_text(st, 3));
			cJSON_AddStringToObject(o, "view_position", col_text(st, 4));
			cJSON_AddStringToObject(o, "body_part", col_text(st, 5));
			cJSON_AddNumberToObject(o, "rows", sqlite3_column_int(st, 6));
			cJSON_AddNumberToObject(o, "columns", sqlite3_column_int(st, 7));
			cJSON_AddStringToObject(o, "path", col_text(st, 8));
			cJSON_AddItemToArray(arr, o);
		}
		sqlite3_finalize(st);
	}
	add_results_dispatches(c, doc, study_id, id);
	arr = cJSON_AddArrayToObject(doc, "notices");
	if (table_exists(c, "notices") && (st = prepare(c, "SELECT id, url, state, attempts,"
	    " delivered_at, error FROM notices WHERE job_id = ? ORDER BY id"))) {
		sqlite3_bind_int64(st, 1, id);
		while (sqlite3_step(st) == SQLITE_ROW) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
			cJSON_AddStringToObject(o, "url", col_text(st, 1));
			cJSON_AddStringToObject(o, "state", col_text(st, 2));
			cJSON_AddNumberToObject(o, "attempts", sqlite3_column_int(st, 3));
			add_time(o, "delivered", sqlite3_column_int64(st, 4));
			cJSON_AddStringToObject(o, "error", col_text(st, 5));
			cJSON_AddItemToArray(arr, o);
		}
		sqlite3_finalize(st);
	}

	if (c->json) {
		print_json(doc);
	} else {
#define F(k) sv(cJSON_GetObjectItem(job, k))
		cJSON *sc = cJSON_GetObjectItem(job, "score"), *res;
		printf("job         %lld\nstate       %s\nroute       %s (backend %s, priority %d)\n",
		    (long long)id, F("state"), F("route"), F("backend"),
		    cJSON_GetObjectItem(job, "priority")->valueint);
		printf("study       %s (accession %s, patient id %s, %s %s)\n", F("study_uid"),
		    F("accession"), F("patient_id"), F("modality"), F("study_date"));
		printf("created     %s, finished %s, attempts %d\n", F("created"), F("finished"),
		    cJSON_GetObjectItem(job, "attempts")->valueint);
		if (cJSON_GetObjectItem(job, "next_attempt"))
			printf("next try    %s\n", F("next_attempt"));
		if (F("outcome")[0])
			printf("outcome     %s%s", F("outcome"), cJSON_IsNumber(sc) ? "" : "\n");
		if (F("outcome")[0] && cJSON_IsNumber(sc))
			printf(" (score %.2f)\n", sc->valuedouble);
		if (F("error")[0])
			printf("error       %s\n", F("error"));
#undef F
		res = cJSON_GetObjectItem(doc, "result");
		cJSON *algo = cJSON_GetObjectItem(res, "algorithm");
		if (algo)
			printf("algorithm   %s %s\n", sv(cJSON_GetObjectItem(algo, "name")),
			    sv(cJSON_GetObjectItem(algo, "version")));
		cJSON *study = cJSON_GetObjectItem(res, "study"), *it;
		cJSON_ArrayForEach(it, cJSON_GetObjectItem(study, "measurements"))
			printf("measurement %s = %g %s\n",
			    sv(cJSON_GetObjectItem(it, "name")),
			    cJSON_GetObjectItem(it, "value")->valuedouble,
			    sv(cJSON_GetObjectItem(it, "unit")));
		cJSON_ArrayForEach(it, cJSON_GetObjectItem(res, "findings")) {
			cJSON *b = cJSON_GetObjectItem(it, "box"), *s2 = cJSON_GetObjectItem(it, "score");
			printf("finding     %s", sv(cJSON_GetObjectItem(it, "label")));
			if (cJSON_IsNumber(s2))
				printf(" %.2f", s2->valuedouble);
			if (cJSON_GetArraySize(b) == 4)
				printf(" box [%.0f %.0f %.0f %.0f]", cJSON_GetArrayItem(b, 0)->valuedouble,
				    cJSON_GetArrayItem(b, 1)->valuedouble,
				    cJSON_GetArrayItem(b, 2)->valuedouble,
				    cJSON_GetArrayItem(b, 3)->valuedouble);
			printf(" on %s\n", sv(cJSON_GetObjectItem(it, "sop_instance_uid")));
		}
		printf("\nattempts\n");
		cJSON_ArrayForEach(it, cJSON_GetObjectItem(doc, "attempts"))
			printf("  #%d %s %-11s %s\n", cJSON_GetObjectItem(it, "attempt")->valueint,
			    sv(cJSON_GetObjectItem(it, "started")),
			    sv(cJSON_GetObjectItem(it, "status")),
			    sv(cJSON_GetObjectItem(it, "message")));
		printf("\ninstances (%d)\n", cJSON_GetArraySize(cJSON_GetObjectItem(doc, "instances")));
		cJSON_ArrayForEach(it, cJSON_GetObjectItem(doc, "instances"))
			printf("  %-4s %-3s %-5s %s\n",
			    sv(cJSON_GetObjectItem(it, "modality")),
			    sv(cJSON_GetObjectItem(it, "laterality")),
			    sv(cJSON_GetObjectItem(it, "view_position")),
			    sv(cJSON_GetObjectItem(it, "sop_instance_uid")));
		print_results_dispatches(doc);
	}
	cJSON_Delete(doc);
	return EXIT_OK;
}

static int
cmd_show(struct ctl *c)
{
	char u[UID_MAX + 1], *end;

	if (c->argc == 1 && c->argv[0][0] >= '1' && c->argv[0][0] <= '9' &&
	    !strchr(c->argv[0], '.')) {
		long long id;
		errno = 0;
		id = strtoll(c->argv[0], &end, 10);
		if (!errno && !*end)
			return show_job(c, id);
	}
	if (c->argc != 1) {
		fprintf(stderr, "usage: triagectl show ID|STUDY_UID\n");
		return EXIT_USAGE;
	}
	if (uid_normalize(c->argv[0], u) < 0) {
		fprintf(stderr, "triagectl: %s is neither a job id nor a study UID\n",
		    c->argv[0]);
		return EXIT_NOTFOUND;
	}
	return show_study(c, u);
}

/* ---- retry, cancel ------------------------------------------------------- */

/* Run one UPDATE with ?1 = now and ?2 = ARG; returns rows changed or -1. */
static int
update(struct ctl *c, const char *sql, int64_t arg, const char *text)
{
	sqlite3_stmt *st;
	int n = -1;

	if (!(st = prepare(c, sql)))
		return -1;
	sqlite3_bind_int64(st, 1, (int64_t)time(NULL));
	sqlite3_bind_int64(st, 2, arg);
	if (text)
		sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_DONE)
		n = sqlite3_changes(db_handle(c->db));
	else
		fprintf(stderr, "triagectl: database: %s\n", sqlite3_errmsg(db_handle(c->db)));
	sqlite3_finalize(st);
	return n;
}

static int
job_state(struct ctl *c, int64_t id, char *state, size_t len)
{
	sqlite3_stmt *st = prepare(c, "SELECT state FROM jobs WHERE id = ?");
	int found = 0;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(state, len, "%s", col_text(st, 0));
		found = 1;
	}
	sqlite3_finalize(st);
	return found;
}

static int
report(struct ctl *c, const char *what, int n)
{
	if (n < 0)
		return EXIT_FAIL;
	if (c->json) {
		cJSON *doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "action", what);
		cJSON_AddNumberToObject(doc, "changed", n);
		print_json(doc);
		cJSON_Delete(doc);
	} else {
		printf("%s: %d\n", what, n);
	}
	return EXIT_OK;
}

static int
parse_id(const char *s, int64_t *id)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v <= 0)
		return -1;
	*id = v;
	return 0;
}

/* Has retention removed a file that job ID needs? */
static bool
files_removed(struct ctl *c, int64_t id)
{
	sqlite3_stmt *st = prepare(c, "SELECT 1 FROM job_instances ji JOIN instances i"
	    " ON i.id = ji.instance_id WHERE ji.job_id = ? AND i.removed_at IS NOT NULL");
	bool r = false;

	if (!st)
		return false;
	sqlite3_bind_int64(st, 1, id);
	r = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return r;
}

static int
cmd_retry(struct ctl *c)
{
	int64_t id;
	char state[16];
	int r;

	if (c->argc == 1 && !c->state) {
		if (parse_id(c->argv[0], &id) < 0) {
			fprintf(stderr, "usage: triagectl retry ID | --state failed|dead\n");
			return EXIT_USAGE;
		}
		if ((r = job_state(c, id, state, sizeof(state))) <= 0) {
			if (r == 0)
				fprintf(stderr, "triagectl: no job %lld\n", (long long)id);
			return r == 0 ? EXIT_NOTFOUND : EXIT_FAIL;
		}
		if (strcmp(state, "failed") != 0 && strcmp(state, "cancelled") != 0) {
			fprintf(stderr, "triagectl: job %lld is %s; only failed or cancelled jobs "
			    "are retried\n", (long long)id, state);
			return EXIT_FAIL;
		}
		if (files_removed(c, id)) {
			fprintf(stderr, "triagectl: job %lld: retention has removed the files of "
			    "its study; send the study again (it is stored again, not analysed "
			    "again), then retry\n", (long long)id);
			return EXIT_FAIL;
		}
		/* the state is tested again in the UPDATE: no lost update */
		r = update(c, "UPDATE jobs SET state = 'pending', attempts = 0, not_before = 0,"
		    " error = '', updated_at = ?1 WHERE id = ?2 AND state IN ('failed','cancelled')",
		    id, NULL);
		if (r == 0) {
			fprintf(stderr, "triagectl: job %lld changed state meanwhile, not "
			    "retried\n", (long long)id);
			return EXIT_FAIL;
		}
		return report(c, "jobs retried", r);
	}
	if (c->argc == 0 && c->state && strcmp(c->state, "failed") == 0)
		return report(c, "jobs retried", update(c,
		    "UPDATE jobs SET state = 'pending', attempts = 0, not_before = 0, error = '',"
		    " updated_at = ?1 WHERE state = 'failed' AND (?3 IS NULL OR route = ?3) AND ?2 = ?2"
		    " AND NOT EXISTS (SELECT 1 FROM job_instances ji JOIN instances i"
		    "  ON i.id = ji.instance_id WHERE ji.job_id = jobs.id AND i.removed_at IS NOT NULL)",
		    0, c->route));
	if (c->argc == 0 && c->state && strcmp(c->state, "dead") == 0)
		/* a new max_age window from now */
		return report(c, "dispatches retried", update(c,
		    "UPDATE dispatches SET state = 'pending', attempts = 0, not_before = 0,"
		    " created_at = ?1, updated_at = ?1, error = '' WHERE state = 'dead'"
		    " AND (?3 IS NULL OR destination = ?3) AND ?2 = ?2", 0, c->destination));
	fprintf(stderr, "usage: triagectl retry ID | --state failed [--route R] | --state dead "
	    "[--destination D]\n");
	return EXIT_USAGE;
}

static int
cmd_cancel(struct ctl *c)
{
	int64_t id;
	char state[16];
	int r;

	if (c->argc != 1 || parse_id(c->argv[0], &id) < 0) {
		fprintf(stderr, "usage: triagectl cancel ID\n");
		return EXIT_USAGE;
	}
	if ((r = job_state(c, id, state, sizeof(state))) <= 0) {
		if (r == 0)
			fprintf(stderr, "triagectl: no job %lld\n", (long long)id);
		return r == 0 ? EXIT_NOTFOUND : EXIT_FAIL;
	}
	if (strcmp(state, "pending") != 0 && strcmp(state, "running") != 0) {
		fprintf(stderr, "triagectl: job %lld is %s already\n", (long long)id, state);
		return EXIT_FAIL;
	}
	/* a running job's analysis finishes, but its end is not recorded */
	r = update(c, "UPDATE jobs SET state = 'cancelled', updated_at = ?1, finished_at = ?1,"
	    " error = 'cancelled by triagectl' WHERE id = ?2 AND state IN ('pending','running')",
	    id, NULL);
	if (r == 0) {
		fprintf(stderr, "triagectl: job %lld finished meanwhile, not cancelled\n",
		    (long long)id);
		return EXIT_FAIL;
	}
	return report(c, "jobs cancelled", r);
}

/* ---- purge --------------------------------------------------------------- */

static int
cmd_purge(struct ctl *c)
{
	struct retention_counts n = { 0 };
	cJSON *doc;
	int r;

	if (c->argc != 0 || c->older_than_s <= 0) {
		fprintf(stderr, "usage: triagectl purge --older-than DURATION [--dry-run]\n");
		return EXIT_USAGE;
	}
	r = retention_purge(c->db, c->cfg->storage.spool_dir, (int64_t)time(NULL),
	    c->older_than_s, c->dry_run, &n);
	if (r < 0) {
		fprintf(stderr, "triagectl: purge failed: %s\n", sqlite3_errmsg(db_handle(c->db)));
		return EXIT_FAIL;
	}
	if (c->json) {
		doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "action", c->dry_run ? "purge (dry run)" : "purge");
		cJSON_AddBoolToObject(doc, "dry_run", c->dry_run);
		cJSON_AddNumberToObject(doc, "older_than_s", (double)c->older_than_s);
		cJSON_AddNumberToObject(doc, "studies", (double)n.studies);
		cJSON_AddNumberToObject(doc, "instances", (double)n.instances);
		cJSON_AddNumberToObject(doc, "jobs", (double)n.jobs);
		cJSON_AddNumberToObject(doc, "results", (double)n.results);
		cJSON_AddNumberToObject(doc, "files", (double)n.files);
		cJSON_AddNumberToObject(doc, "bytes", (double)n.bytes);
		cJSON_AddNumberToObject(doc, "kept", (double)n.kept);
		cJSON_AddNumberToObject(doc, "refused_outside_spool", (double)n.refused);
		print_json(doc);
		cJSON_Delete(doc);
	} else {
		printf("%s %lld studies (%lld instances, %lld jobs, %lld results), %lld files, "
		    "%.1f MB\n", c->dry_run ? "would purge" : "purged", (long long)n.studies,
		    (long long)n.instances, (long long)n.jobs, (long long)n.results,
		    (long long)n.files, n.bytes / 1048576.0);
		if (n.kept > 0)
			printf("kept %lld old studies with work pending or a dead dispatch "
			    "(see triagectl list --dispatches --state dead)\n", (long long)n.kept);
		if (n.refused > 0)
			printf("WARNING: %lld settled studies have files recorded outside %s "
			    "and were left alone (was spool_dir changed?)\n", (long long)n.refused,
			    c->cfg->storage.spool_dir);
	}
	return EXIT_OK;
}

/* ---- echo ---------------------------------------------------------------- */

static int
cmd_echo(struct ctl *c)
{
	const struct config_destination *d;
	const struct dest_type *t;
	void *state = NULL;
	char err[512] = "", msg[512] = "";
	int r;

	if (c->argc != 1) {
		fprintf(stderr, "usage: triagectl echo DESTINATION\n");
		return EXIT_USAGE;
	}
	d = config_destination_find(c->cfg, c->argv[0]);
	if (!d) {
		fprintf(stderr, "triagectl: no [destination %s] in the configuration\n", c->argv[0]);
		return EXIT_NOTFOUND;
	}
	t = dest_type_find(d->type);
	if (!t || !t->ops->echo) {
		fprintf(stderr, "triagectl: destination type %s has no echo\n", d->type);
		return EXIT_FAIL;
	}
	if (dicom_global_init(err, sizeof(err)) < 0 ||
	    t->ops->open(c->cfg, d, &state, err, sizeof(err)) < 0) {
		fprintf(stderr, "triagectl: %s: %s\n", d->name, err);
		return EXIT_FAIL;
	}
	r = t->ops->echo(state, msg, sizeof(msg));
	t->ops->close(state);
	if (c->json) {
		cJSON *doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "destination", d->name);
		cJSON_AddStringToObject(doc, "type", d->type);
		cJSON_AddBoolToObject(doc, "ok", r == 0);
		cJSON_AddStringToObject(doc, "message", msg);
		print_json(doc);
		cJSON_Delete(doc);
	} else {
		printf("%s (%s): %s%s%s\n", d->name, d->type, r == 0 ? "ok" : "FAILED",
		    msg[0] ? ": " : "", msg);
	}
	return r == 0 ? EXIT_OK : EXIT_FAIL;
}

/* ---- route (dry run) ---------------------------------------------------- */

static int
cmd_route(struct ctl *c)
{
	struct dicom_meta *m;
	struct match_instance *mi;
	struct router_instance *ri;
	cJSON *doc, *files, *routes;
	char err[256];
	size_t n = 0;
	int rc = EXIT_OK;

	if (c->argc < 1) {
		fprintf(stderr, "usage: triagectl route FILE...\n");
		return EXIT_USAGE;
	}
	if (dicom_global_init(err, sizeof(err)) < 0) {
		fprintf(stderr, "triagectl: %s\n", err);
		return EXIT_FAIL;
	}
	m = calloc((size_t)c->argc, sizeof(*m));
	mi = calloc((size_t)c->argc, sizeof(*mi));
	ri = calloc((size_t)c->argc, sizeof(*ri));
	doc = cJSON_CreateObject();
	if (!m || !mi || !ri || !doc) {
		rc = EXIT_FAIL;
		goto out;
	}
	files = cJSON_AddArrayToObject(doc, "files");
	for (int i = 0; i < c->argc; i++) {
		cJSON *f = cJSON_CreateObject();
		cJSON_AddStringToObject(f, "path", c->argv[i]);
		cJSON_AddItemToArray(files, f);
		if (dicom_meta_read(c->argv[i], &m[n], err, sizeof(err)) < 0) {
			cJSON_AddStringToObject(f, "error", err[0] ? err : "cannot read");
			if (!c->json)
				printf("%s: not usable: %s\n", c->argv[i], err[0] ? err : "cannot read");
			continue;
		}
		mi[n] = (struct match_instance){
			.modality = m[n].modality, .body_part = m[n].body_part,
			.sop_class = m[n].sop_class_uid, .calling_ae = "",
			.study_description = m[n].study_description,
			.series_description = m[n].series_description,
			.laterality = m[n].laterality, .view_position = m[n].view_position,
			.presentation_intent = m[n].presentation_intent,
			.age_years = match_age_years(m[n].patient_age, m[n].patient_birth_date,
			    m[n].study_date),
		};
		ri[n] = (struct router_instance){ .sop_uid = m[n].sop_uid,
		    .requested_priority = m[n].requested_priority, .dimse_priority = -1,
		    .m = &mi[n] };
		cJSON_AddStringToObject(f, "sop_instance_uid", m[n].sop_uid);
		cJSON_AddStringToObject(f, "study_uid", m[n].study_uid);
		cJSON_AddStringToObject(f, "modality", m[n].modality);
		cJSON_AddStringToObject(f, "body_part", m[n].body_part);
		cJSON_AddStringToObject(f, "laterality", m[n].laterality);
		cJSON_AddStringToObject(f, "view_position", m[n].view_position);
		cJSON_AddStringToObject(f, "presentation_intent", m[n].presentation_intent);
		if (mi[n].age_years >= 0)
			cJSON_AddNumberToObject(f, "patient_age_years",
			    (double)(int)(mi[n].age_years * 10) / 10);
		n++;
	}
	if (n == 0) {
		fprintf(stderr, "triagectl: none of the files is a usable DICOM instance\n");
		rc = EXIT_FAIL;
		goto out;
	}
	if (!c->json)
		printf("%zu instance(s); the calling AE is not known in a dry run (calling_ae "
		    "conditions see an empty value)\n\n", n);
	routes = cJSON_AddArrayToObject(doc, "routes");
	for (size_t i = 0; i < c->cfg->nroutes; i++) {
		const struct config_route *r = &c->cfg->routes[i];
		struct router_verdict v;
		router_evaluate(r, ri, n, &v);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "route", r->name);
		cJSON_AddStringToObject(o, "backend", r->backend[0] ? r->backend : "reference");
		cJSON_AddBoolToObject(o, "fires", v.fires);
		cJSON_AddNumberToObject(o, "matching", (double)v.nmatch);
		cJSON_AddNumberToObject(o, "priority", v.priority);
		if (r->expected_views.n)
			cJSON_AddBoolToObject(o, "expected_views_complete", v.expected_complete);
		cJSON_AddStringToObject(o, "why", v.fires ? "" : v.why);
		cJSON_AddItemToArray(routes, o);
		if (c->json)
			continue;
		if (v.fires)
			printf("route %-14s FIRES  -> backend %s, %zu of %zu instance(s), priority %d%s%s\n",
			    r->name, r->backend[0] ? r->backend : "reference", v.nmatch, n,
			    v.priority, r->expected_views.n ? (v.expected_complete ?
			    ", expected views complete" : ", expected views incomplete: ") : "",
			    r->expected_views.n && !v.expected_complete ? v.views : "");
		else
			printf("route %-14s no     (%s)\n", r->name, v.why);
	}
	if (c->json)
		print_json(doc);
out:
	cJSON_Delete(doc);
	free(m);
	free(mi);
	free(ri);
	return rc;
}

/* ---- main --------------------------------------------------------------- */

/*
 * Run as root (sudo triagectl ...), become the database's owner - the
 * triaged user - before opening it: SQLite creates the -wal and -shm files
 * as whoever opens the database first, and root-owned ones would lock the
 * daemon out of its own queue. Files that purge removes are the daemon's
 * too. 0, or -1 with errno.
 */
static int
become_owner(const char *database)
{
	struct stat st;

	if (geteuid() != 0 || stat(database, &st) < 0 || st.st_uid == 0)
		return 0;
	if (setgroups(0, NULL) < 0 || setgid(st.st_gid) < 0 || setuid(st.st_uid) < 0)
		return -1;
	return 0;
}

static const struct command {
	const char *name;
	int (*fn)(struct ctl *);
	const char *usage;
} commands[] = {
	{ "status", cmd_status, "status" },
	{ "list", cmd_list, "list [--studies | --dispatches [--destination D]] [--state S] [--route R] [--since DURATION] [--limit N]" },
	{ "show", cmd_show, "show ID|STUDY_UID" },
	{ "route", cmd_route, "route FILE...   (dry run: which routes fire, and why not)" },
	{ "retry", cmd_retry, "retry ID | --state failed [--route R] | --state dead [--destination D]" },
	{ "cancel", cmd_cancel, "cancel ID" },
	{ "purge", cmd_purge, "purge --older-than DURATION [--dry-run]" },
	{ "echo", cmd_echo, "echo DESTINATION" },
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: triagectl [-c FILE] COMMAND [--json]\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %s\n", commands[i].usage);
	fprintf(f, "exit codes: 0 ok, 1 failure, 2 usage error, 3 not found\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "state", required_argument, NULL, 's' },
		{ "route", required_argument, NULL, 'r' },
		{ "since", required_argument, NULL, 'S' },
		{ "limit", required_argument, NULL, 'l' },
		{ "studies", no_argument, NULL, 'T' },
		{ "destination", required_argument, NULL, 'D' },
		{ "dispatches", no_argument, NULL, 'P' },
		{ "older-than", required_argument, NULL, 'O' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl c = { .limit = 50 };
	const char *path = getenv("TRIAGED_CONFIG");
	const struct command *cmd = NULL;
	char err[512], *end;
	int o, rc;

	if (!path)
		path = "/etc/triaged/triaged.conf";
	log_set_ident("triagectl");
	log_set_level(LOG_ERR);
	while ((o = getopt_long(argc, argv, "+c:jh", opts, NULL)) != -1) {
		switch (o) {
		case 'c': path = optarg; break;
		case 'j': c.json = true; break;
		case 'h': usage(stdout); return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			cmd = &commands[i];
	if (!cmd) {
		fprintf(stderr, "triagectl: unknown command %s\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	/* options may follow the command */
	argc -= optind;
	argv += optind;
	static char progname[] = "triagectl";
	argv[0] = progname;              /* getopt's messages name the program */
	optind = 0;            /* GNU getopt: start afresh, permuting again */
	while ((o = getopt_long(argc, argv, "c:jh", opts, NULL)) != -1) {
		switch (o) {
		case 'c': path = optarg; break;
		case 'j': c.json = true; break;
		case 's': c.state = optarg; break;
		case 'r': c.route = optarg; break;
		case 'T': c.studies = true; break;
		case 'D': c.destination = optarg; break;
		case 'P': c.dispatches = true; break;
		case 'n': c.dry_run = true; break;
		case 'O':
			if (config_parse_duration(optarg, &c.older_than_s) < 0 ||
			    c.older_than_s <= 0) {
				fprintf(stderr, "triagectl: --older-than wants a duration like "
				    "7d or 12h\n");
				return EXIT_USAGE;
			}
			break;
		case 'S':
			if (config_parse_duration(optarg, &c.since_s) < 0) {
				fprintf(stderr, "triagectl: --since wants a duration like 2h or 7d\n");
				return EXIT_USAGE;
			}
			break;
		case 'l':
			errno = 0;
			c.limit = strtol(optarg, &end, 10);
			if (errno || *end || c.limit < 1 || c.limit > 1000000) {
				fprintf(stderr, "triagectl: --limit wants 1..1000000\n");
				return EXIT_USAGE;
			}
			break;
		case 'h': usage(stdout); return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	c.argc = argc - optind;
	c.argv = argv + optind;

	if (config_load(path, &c.cfg, stderr) < 0)
		return EXIT_FAIL;
	if (cmd->fn != cmd_route && cmd->fn != cmd_echo &&
	    become_owner(c.cfg->storage.database) < 0) {
		fprintf(stderr, "triagectl: cannot switch to the owner of %s: %s\n",
		    c.cfg->storage.database, strerror(errno));
		config_unref(c.cfg);
		return EXIT_FAIL;
	}
	if (cmd->fn == cmd_status && access(c.cfg->storage.database, F_OK) < 0) {
		c.db = NULL;     /* status works before the first start */
	} else if (cmd->fn != cmd_route && cmd->fn != cmd_echo &&
	    db_open(c.cfg->storage.database, 0, &c.db, err, sizeof(err)) < 0) {
		fprintf(stderr, "triagectl: %s\n", err);
		config_unref(c.cfg);
		return EXIT_FAIL;
	}
	rc = cmd->fn(&c);
	db_close(c.db);
	config_unref(c.cfg);
	return rc;
}
