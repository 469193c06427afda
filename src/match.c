/*
 * match.c - route conditions.
 *
 * DESIGN: conditions are comma lists of globs (fnmatch with FNM_CASEFOLD);
 * "!" marks an exclusion. A list with positives needs one of them to match;
 * exclusions veto. Evaluated per instance; the router counts matches.
 */
#include "match.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"

static bool
one_value(const struct config_list *l, const char *v)
{
	bool has_pos = false, pos = false;

	for (size_t i = 0; i < l->n; i++) {
		const char *g = l->items[i];
		if (g[0] == '!') {
			if (fnmatch(g + 1, v, FNM_CASEFOLD) == 0)
				return false;
		} else {
			has_pos = true;
			if (!pos && fnmatch(g, v, FNM_CASEFOLD) == 0)
				pos = true;
		}
	}
	return has_pos ? pos : true;
}

bool
match_list(const struct config_list *l, const char *value)
{
	char buf[256];
	const char *p;

	if (!l || l->n == 0)
		return true;
	if (!value)
		value = "";
	if (!strchr(value, '\\'))
		return one_value(l, value);
	/* multi-valued: any value may satisfy the positives, none may hit an
	 * exclusion */
	snprintf(buf, sizeof(buf), "%s", value);
	bool any = false;
	for (p = strtok(buf, "\\"); p; p = strtok(NULL, "\\")) {
		for (size_t i = 0; i < l->n; i++)
			if (l->items[i][0] == '!' &&
			    fnmatch(l->items[i] + 1, p, FNM_CASEFOLD) == 0)
				return false;
		if (one_value(l, p))
			any = true;
	}
	return any;
}

static void
list_text(const struct config_list *l, char *out, size_t len)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < l->n && n + 1 < len; i++) {
		int w = snprintf(out + n, len - n, "%s%s", i ? ", " : "", l->items[i]);
		if (w < 0)
			break;
		n += (size_t)w;
	}
}

static bool
check(const struct config_list *l, const char *value, const char *key, char *why,
      size_t whylen)
{
	char items[160];

	if (match_list(l, value))
		return true;
	if (why) {
		list_text(l, items, sizeof(items));
		snprintf(why, whylen, "%s %s%s%s does not match %s", key,
		    value && *value ? "\"" : "", value && *value ? value : "(empty)",
		    value && *value ? "\"" : "", items);
	}
	return false;
}

bool
match_route(const struct config_route *r, const struct match_instance *in,
            char *why, size_t whylen)
{
	if (!check(&r->modality, in->modality, "modality", why, whylen) ||
	    !check(&r->body_part, in->body_part, "body_part", why, whylen) ||
	    !check(&r->sop_class, in->sop_class, "sop_class", why, whylen) ||
	    !check(&r->calling_ae, in->calling_ae, "calling_ae", why, whylen) ||
	    !check(&r->study_description, in->study_description, "study_description", why, whylen) ||
	    !check(&r->series_description, in->series_description, "series_description", why, whylen) ||
	    !check(&r->laterality, in->laterality, "laterality", why, whylen) ||
	    !check(&r->view_position, in->view_position, "view_position", why, whylen) ||
	    !check(&r->presentation_intent, in->presentation_intent, "presentation_intent",
	    why, whylen))
		return false;
	if (r->patient_age_min >= 0 || r->patient_age_max >= 0) {
		if (in->age_years < 0) {
			if (why)
				snprintf(why, whylen, "patient age unknown (no PatientAge, no "
				    "birth date) and the route limits it");
			return false;
		}
		if (r->patient_age_min >= 0 && in->age_years < r->patient_age_min) {
			if (why)
				snprintf(why, whylen, "patient age %.1f below patient_age_min %d",
				    in->age_years, r->patient_age_min);
			return false;
		}
		/* "patient_age_max = 18": up to (not including) the 19th birthday */
		if (r->patient_age_max >= 0 && in->age_years >= r->patient_age_max + 1) {
			if (why)
				snprintf(why, whylen, "patient age %.1f above patient_age_max %d",
				    in->age_years, r->patient_age_max);
			return false;
		}
	}
	return true;
}

static bool
parse_date(const char *s, int *y, int *m, int *d)
{
	if (!s || strlen(s) < 8)
		return false;
	for (int i = 0; i < 8; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	*y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	*m = (s[4] - '0') * 10 + (s[5] - '0');
	*d = (s[6] - '0') * 10 + (s[7] - '0');
	return *y >= 1850 && *m >= 1 && *m <= 12 && *d >= 1 && *d <= 31;
}

double
match_age_years(const char *age, const char *birth, const char *study)
{
	int by, bm, bd, sy, sm, sd;

	if (age && strlen(age) == 4 && isdigit((unsigned char)age[0]) &&
	    isdigit((unsigned char)age[1]) && isdigit((unsigned char)age[2])) {
		double n = (age[0] - '0') * 100 + (age[1] - '0') * 10 + (age[2] - '0');
		switch (toupper((unsigned char)age[3])) {
		case 'Y': return n;
		case 'M': return n / 12.0;
		case 'W': return n * 7 / 365.25;
		case 'D': return n / 365.25;
		default: break;
		}
	}
	if (parse_date(birth, &by, &bm, &bd) && parse_date(study, &sy, &sm, &sd)) {
		/* whole months, then the fraction of the current month */
		int months = (sy - by) * 12 + (sm - bm) - (sd < bd ? 1 : 0);
		if (months < 0)
			return -1;
		int days = sd >= bd ? sd - bd : sd + 30 - bd;
		return (months + days / 30.4375) / 12.0;
	}
	return -1;
}

void
match_view_name(const char *lat, const char *view, char *out, size_t len)
{
	char v[32];
	static const char *const mg_views[] = {
		"CC", "MLO", "ML", "LM", "LMO", "XCCL", "XCCM", "FB", "SIO", "AT", "CV",
	};
	size_t n = 0;

	for (const char *p = view ? view : ""; *p && n + 1 < sizeof(v); p++)
		if (!isspace((unsigned char)*p))
			v[n++] = (char)toupper((unsigned char)*p);
	v[n] = '\0';
	if (n >= 3 && (v[0] == 'R' || v[0] == 'L')) {
		for (size_t i = 0; i < sizeof(mg_views) / sizeof(mg_views[0]); i++) {
			if (strcmp(v + 1, mg_views[i]) == 0) {
				snprintf(out, len, "%s", v);  /* "RCC" names the side */
				return;
			}
		}
	}
	snprintf(out, len, "%c%s", lat && *lat ? toupper((unsigned char)lat[0]) : '?', v);
}
