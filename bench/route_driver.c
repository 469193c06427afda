/*
 * route_driver.c - the routing cost per study: a database with STUDIES
 * complete studies (a 4-view mammogram, a 2-view chest, a child's hand,
 * cycling), routed by the embedded default routes. Prints microseconds per
 * study for the expected-set check and for making the jobs.
 * Usage: bench_route DIR [STUDIES]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "router.h"

static double
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int
main(int argc, char **argv)
{
	struct config *cfg = NULL;
	struct db *db = NULL;
	char path[4096], err[256];
	int n = argc > 2 ? atoi(argv[2]) : 300, made = 0, done;
	double t0, t1, t2;
	static const struct { const char *mod, *body, *lat, *view, *intent, *age; } kinds[3][4] = {
		{ { "MG", "BREAST", "R", "CC", "FOR PRESENTATION", "055Y" },
		  { "MG", "BREAST", "L", "CC", "FOR PRESENTATION", "055Y" },
		  { "MG", "BREAST", "R", "MLO", "FOR PRESENTATION", "055Y" },
		  { "MG", "BREAST", "L", "MLO", "FOR PRESENTATION", "055Y" } },
		{ { "CR", "CHEST", "", "PA", "", "060Y" }, { "CR", "CHEST", "", "LL", "", "060Y" } },
		{ { "DX", "HAND", "L", "PA", "FOR PRESENTATION", "009Y" } },
	};
	static const int counts[3] = { 4, 2, 1 };

	if (argc < 2) {
		fprintf(stderr, "usage: bench_route DIR [STUDIES]\n");
		return 2;
	}
	log_set_level(LOG_ERR);
	snprintf(path, sizeof(path), "%s/route.db", argv[1]);
	remove(path);
	if (config_load(NULL, &cfg, stderr) < 0 ||
	    db_open(path, DB_MIGRATE, &db, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_route: %s\n", err);
		return 1;
	}
	(void)db_exec(db, "PRAGMA synchronous=NORMAL");
	for (int s = 0; s < n; s++) {
		int k = s % 3;
		for (int i = 0; i < counts[k]; i++) {
			struct dicom_meta m;
			memset(&m, 0, sizeof(m));
			snprintf(m.study_uid, sizeof(m.study_uid), "2.25.%d", s + 1);
			snprintf(m.series_uid, sizeof(m.series_uid), "2.25.%d.1", s + 1);
			snprintf(m.sop_uid, sizeof(m.sop_uid), "2.25.%d.1.%d", s + 1, i + 1);
			snprintf(m.sop_class_uid, sizeof(m.sop_class_uid), "1.2.840.10008.5.1.4.1.1.1");
			snprintf(m.modality, sizeof(m.modality), "%s", kinds[k][i].mod);
			snprintf(m.body_part, sizeof(m.body_part), "%s", kinds[k][i].body);
			snprintf(m.laterality, sizeof(m.laterality), "%s", kinds[k][i].lat);
			snprintf(m.view_position, sizeof(m.view_position), "%s", kinds[k][i].view);
			snprintf(m.presentation_intent, sizeof(m.presentation_intent), "%s", kinds[k][i].intent);
			snprintf(m.patient_age, sizeof(m.patient_age), "%s", kinds[k][i].age);
			struct db_instance in = { .meta = &m, .path = "/x", .size = 1,
			    .calling_ae = "BENCH", .peer_ip = "127.0.0.1", .dimse_priority = -1,
			    .received_at = 1000 };
			if (db_instance_insert(db, &in) < 0)
				return 1;
		}
	}
	t0 = now_us();
	done = router_check_expected(db, cfg, 2000);
	t1 = now_us();
	(void)db_studies_complete_due(db, 5000, 20, 3600, NULL, NULL);
	for (int r; (r = router_route_complete(db, cfg, 5000)) > 0;)
		made += r;
	t2 = now_us();
	printf("studies %d (4-view MG, 2-view CR chest, child hand): expected-set check %.0f us/study "
	    "(%d completed on their views), routing %.0f us/study (%d jobs)\n", n,
	    (t1 - t0) / n, done, (t2 - t1) / n, made);
	db_close(db);
	config_unref(cfg);
	remove(path);
	return 0;
}
