/*
 * router.h - routes to jobs: every [route] of the config is evaluated per
 * instance of a complete study; each route that fires makes its own job
 * holding its matching instances. Also the expected-set completion
 * (expected_views) of receiving studies, and the dry run of triagectl.
 */
#ifndef TRIAGED_ROUTER_H
#define TRIAGED_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct config_route;
struct db;
struct match_instance;

/* One instance as the router sees it. */
struct router_instance {
	int64_t id;                     /* instances.id, 0 in a dry run */
	const char *sop_uid;
	const char *requested_priority; /* "STAT", "HIGH", ... */
	int dimse_priority;             /* 1 = HIGH, else -1/0/2 */
	const struct match_instance *m;
};

/* The verdict of one route over a study's instances. */
struct router_verdict {
	size_t nmatch;                  /* instances that satisfy the conditions */
	bool   fires;                   /* nmatch >= min_images */
	int    priority;                /* route priority, raised by STAT/HIGH */
	char   why[256];                /* when it does not fire: the first failed condition */
	char   views[128];              /* views seen among matches, e.g. "RCC, LCC" */
	bool   expected_complete;       /* every expected view is present */
};

void router_evaluate(const struct config_route *route, const struct router_instance *in,
                     size_t n, struct router_verdict *v);

/* Complete receiving studies whose expected set is in (expected_views).
 * Returns the number completed, or a negative errno. */
int router_check_expected(struct db *db, const struct config *cfg, int64_t now);

/* Make the jobs of every complete study not yet routed in its current
 * generation. Returns the number of jobs made, or a negative errno. */
int router_route_complete(struct db *db, const struct config *cfg, int64_t now);

#endif
