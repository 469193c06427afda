/*
 * match.h - route conditions against one instance: case-insensitive
 * globs, "!" negation, patient age from PatientAge or birth date + study
 * date. Pure functions, table-tested.
 */
#ifndef TRIAGED_MATCH_H
#define TRIAGED_MATCH_H

#include <stdbool.h>
#include <stddef.h>

struct config_list;
struct config_route;

/* The attributes a route looks at. Empty strings when absent. */
struct match_instance {
	const char *modality, *body_part, *sop_class, *calling_ae, *study_description,
	           *series_description, *laterality, *view_position, *presentation_intent;
	double age_years;   /* < 0 unknown */
};

/*
 * Does VALUE satisfy LIST? An empty list always does. Otherwise VALUE must
 * match one of the positive globs (if there is any) and none of the "!"
 * ones. Case-insensitive; VALUE may hold several values separated by
 * backslashes (image type), each is tried.
 */
bool match_list(const struct config_list *list, const char *value);

/* Every condition of ROUTE against IN. On a miss, WHY (if not NULL) says
 * which condition failed, e.g. "modality MR not in CR, DX". */
bool match_route(const struct config_route *route, const struct match_instance *in,
                 char *why, size_t whylen);

/* Age in years from PatientAge ("011Y", "006M", "020W", "100D"), else from
 * birth date and study date (YYYYMMDD); -1 when neither is usable. */
double match_age_years(const char *patient_age, const char *birth_date,
                       const char *study_date);

/* "RCC" from laterality "R" and view position "CC" (how expected_views are
 * written); view positions already holding the side ("RCC") are kept. */
void match_view_name(const char *laterality, const char *view_position, char *out,
                     size_t len);

#endif
