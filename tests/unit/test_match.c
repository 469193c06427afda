/* test_match.c - route matching tables: every key, negation, globs, ages,
 * min_images, priorities, expected views; and the backoff arithmetic. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "backoff.h"
#include "config.h"
#include "match.h"
#include "router.h"

static struct config *
load(const char *ini)
{
	struct config *c = NULL;
	if (config_load_string(ini, "test.conf", &c, stderr) < 0)
		fail_msg("config did not load:\n%s", ini);
	return c;
}

static struct match_instance
inst(const char *modality, const char *body_part, const char *lat, const char *view,
     const char *intent, double age)
{
	return (struct match_instance){ .modality = modality, .body_part = body_part,
	    .sop_class = "1.2.840.10008.5.1.4.1.1.1", .calling_ae = "CR_ROOM1",
	    .study_description = "XR HAND LEFT", .series_description = "PA",
	    .laterality = lat, .view_position = view, .presentation_intent = intent,
	    .age_years = age };
}

static void
test_match_list_globs_negation_case(void **state)
{
	struct config *c = load("[route r]\nmodality = CR, D?\nbody_part = !CHEST, !ABD*\n"
	    "study_description = *hand*\n");
	const struct config_route *r = &c->routes[0];
	(void)state;
	assert_true(match_list(&r->modality, "CR"));
	assert_true(match_list(&r->modality, "dx"));          /* case-insensitive */
	assert_false(match_list(&r->modality, "MR"));
	assert_false(match_list(&r->modality, "DXX"));
	assert_true(match_list(&r->body_part, "HAND"));
	assert_true(match_list(&r->body_part, ""));           /* only exclusions: empty passes */
	assert_false(match_list(&r->body_part, "chest"));
	assert_false(match_list(&r->body_part, "ABDOMEN"));
	assert_true(match_list(&r->study_description, "XR HAND LEFT"));
	assert_false(match_list(&r->study_description, "XR FOOT"));
	assert_false(match_list(&r->modality, ""));           /* positives need a value */
	config_unref(c);
}

static void
test_match_multivalued_image_type(void **state)
{
	struct config *c = load("[route r]\nseries_description = ORIGINAL, !DERIVED\n");
	(void)state;
	assert_true(match_list(&c->routes[0].series_description, "ORIGINAL\\PRIMARY"));
	assert_false(match_list(&c->routes[0].series_description, "DERIVED\\SECONDARY"));
	assert_false(match_list(&c->routes[0].series_description, "ORIGINAL\\DERIVED"));
	config_unref(c);
}

static void
test_match_route_every_key(void **state)
{
	static const struct { const char *ini; bool expect; const char *why; } rows[] = {
		{ "modality = CR", true, NULL },
		{ "modality = MR", false, "modality" },
		{ "body_part = HAND", true, NULL },
		{ "body_part = !HAND", false, "body_part" },
		{ "sop_class = 1.2.840.10008.5.1.4.1.1.*", true, NULL },
		{ "sop_class = 1.2.840.10008.5.1.4.1.1.2", false, "sop_class" },
		{ "calling_ae = CR_*", true, NULL },
		{ "calling_ae = MG_*", false, "calling_ae" },
		{ "study_description = *HAND*", true, NULL },
		{ "study_description = *FOOT*", false, "study_description" },
		{ "series_description = PA", true, NULL },
		{ "series_description = LAT", false, "series_description" },
		{ "laterality = L", true, NULL },
		{ "laterality = R", false, "laterality" },
		{ "view_position = PA, AP", true, NULL },
		{ "view_position = LL", false, "view_position" },
		{ "presentation_intent = FOR PRESENTATION", true, NULL },
		{ "presentation_intent = FOR PROCESSING", false, "presentation_intent" },
		{ "patient_age_max = 18", true, NULL },
		{ "patient_age_max = 10", false, "above patient_age_max" },
		{ "patient_age_min = 12", true, NULL },
		{ "patient_age_min = 13", false, "below patient_age_min" },
	};
	struct match_instance m = inst("CR", "HAND", "L", "PA", "FOR PRESENTATION", 12.5);
	char ini[256], why[256];
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		snprintf(ini, sizeof(ini), "[route r]\n%s\n", rows[i].ini);
		struct config *c = load(ini);
		why[0] = '\0';
		bool got = match_route(&c->routes[0], &m, why, sizeof(why));
		if (got != rows[i].expect || (rows[i].why && !strstr(why, rows[i].why)))
			fail_msg("row %zu (%s): got %d why=\"%s\"", i, rows[i].ini, got, why);
		config_unref(c);
	}
}

static void
test_match_age_unknown_fails_an_age_limited_route(void **state)
{
	struct config *c = load("[route r]\nmodality = CR\npatient_age_max = 18\n");
	struct match_instance m = inst("CR", "HAND", "L", "PA", "", -1);
	char why[256];
	(void)state;
	assert_false(match_route(&c->routes[0], &m, why, sizeof(why)));
	assert_non_null(strstr(why, "age unknown"));
	/* 18 years and 11 months is still "18" */
	m.age_years = 18.9;
	assert_true(match_route(&c->routes[0], &m, why, sizeof(why)));
	m.age_years = 19.0;
	assert_false(match_route(&c->routes[0], &m, why, sizeof(why)));
	config_unref(c);
}

static void
test_match_age_years(void **state)
{
	(void)state;
	assert_true(fabs(match_age_years("011Y", "", "") - 11) < 1e-9);
	assert_true(fabs(match_age_years("018M", "", "") - 1.5) < 1e-9);
	assert_true(fabs(match_age_years("052W", "", "") - 52 * 7 / 365.25) < 1e-9);
	assert_true(fabs(match_age_years("365D", "", "") - 365 / 365.25) < 1e-9);
	/* from dates when PatientAge is absent or malformed */
	assert_true(fabs(match_age_years("", "20100615", "20220615") - 12) < 0.01);
	assert_true(match_age_years("", "20100615", "20220614") < 12);
	assert_true(match_age_years("12", "20100615", "20220616") >= 12);
	assert_true(match_age_years("", "", "20220615") < 0);
	assert_true(match_age_years("", "20220615", "20100615") < 0);   /* born after the study */
	assert_true(match_age_years("", "2010-06-15", "20220615") < 0);
	assert_true(match_age_years("abcY", "x", "y") < 0);
}

static void
test_router_min_images_priority_and_views(void **state)
{
	struct config *c = load(
	    "[route mammo]\nmodality = MG\nexpected_views = RCC, LCC, RMLO, LMLO\nmin_images = 4\n"
	    "priority = 6\n");
	struct match_instance m[5] = {
		inst("MG", "BREAST", "R", "CC", "FOR PRESENTATION", 55),
		inst("MG", "BREAST", "L", "CC", "FOR PRESENTATION", 55),
		inst("MG", "BREAST", "R", "MLO", "FOR PRESENTATION", 55),
		inst("MG", "BREAST", "L", "MLO", "FOR PRESENTATION", 55),
		inst("CR", "CHEST", "", "PA", "", 55),
	};
	struct router_instance in[5];
	struct router_verdict v;
	(void)state;
	for (int i = 0; i < 5; i++)
		in[i] = (struct router_instance){ .id = i + 1, .sop_uid = "x", .m = &m[i],
		    .requested_priority = "", .dimse_priority = -1 };
	router_evaluate(&c->routes[0], in, 3, &v);
	assert_false(v.fires);
	assert_false(v.expected_complete);
	assert_non_null(strstr(v.why, "min_images"));
	router_evaluate(&c->routes[0], in, 5, &v);
	assert_true(v.fires);
	assert_int_equal(v.nmatch, 4);
	assert_true(v.expected_complete);
	assert_int_equal(v.priority, 6);
	/* STAT on one matching instance raises the job to 0, HIGH to 2 */
	in[1].requested_priority = "HIGH";
	router_evaluate(&c->routes[0], in, 5, &v);
	assert_int_equal(v.priority, 2);
	in[2].requested_priority = "stat";
	router_evaluate(&c->routes[0], in, 5, &v);
	assert_int_equal(v.priority, 0);
	/* a STAT tag on an instance the route does not take changes nothing */
	in[1].requested_priority = in[2].requested_priority = "";
	in[4].requested_priority = "STAT";
	router_evaluate(&c->routes[0], in, 5, &v);
	assert_int_equal(v.priority, 6);
	config_unref(c);
}

static void
test_router_default_routes(void **state)
{
	struct config *c = load("[server]\nae_title = X\n");   /* no routes: the defaults */
	struct match_instance hand = inst("DX", "HAND", "L", "PA", "FOR PRESENTATION", 9);
	struct match_instance adult = inst("CR", "HAND", "L", "PA", "", 40);
	struct match_instance mg = inst("MG", "BREAST", "R", "CC", "FOR PRESENTATION", 50);
	struct match_instance mgp = inst("MG", "BREAST", "R", "CC", "FOR PROCESSING", 50);
	const struct config_route *frac = config_route_find(c, "fracture");
	const struct config_route *bone = config_route_find(c, "bone-age");
	const struct config_route *mam = config_route_find(c, "mammo");
	(void)state;
	assert_non_null(frac);
	assert_non_null(bone);
	assert_non_null(mam);
	assert_true(match_route(frac, &hand, NULL, 0));
	assert_true(match_route(bone, &hand, NULL, 0));
	assert_false(match_route(bone, &adult, NULL, 0));
	assert_true(match_route(frac, &adult, NULL, 0));
	assert_true(match_route(mam, &mg, NULL, 0));
	assert_false(match_route(mam, &mgp, NULL, 0));
	assert_false(match_route(frac, &mg, NULL, 0));
	config_unref(c);
}

static void
test_view_names(void **state)
{
	char v[16];
	(void)state;
	match_view_name("R", "CC", v, sizeof(v));
	assert_string_equal(v, "RCC");
	match_view_name("l", "mlo", v, sizeof(v));
	assert_string_equal(v, "LMLO");
	match_view_name("L", "RCC", v, sizeof(v));   /* already carries a side */
	assert_string_equal(v, "RCC");
	match_view_name("L", "LM", v, sizeof(v));    /* latero-medial, not "L" + "M" */
	assert_string_equal(v, "LLM");
	match_view_name("", "CC", v, sizeof(v));
	assert_string_equal(v, "?CC");
}

static void
test_backoff_doubles_caps_and_spreads(void **state)
{
	(void)state;
	for (uint64_t salt = 0; salt < 50; salt++) {
		int64_t d1 = backoff_delay_s(1, 30, 3600, salt);
		int64_t d2 = backoff_delay_s(2, 30, 3600, salt);
		int64_t d5 = backoff_delay_s(5, 30, 3600, salt);
		int64_t d20 = backoff_delay_s(20, 30, 3600, salt);
		assert_true(d1 >= 30 && d1 <= 33);
		assert_true(d2 >= 60 && d2 <= 66);
		assert_true(d5 >= 480 && d5 <= 528);
		assert_true(d20 == 3600);              /* capped, spread included */
	}
	assert_int_equal(backoff_delay_s(0, 0, 0, 7), 1);
	assert_int_equal(backoff_delay_s(1000000, 1, 10, 0), 10);   /* no overflow */
	/* different salts spread */
	int differ = 0;
	for (uint64_t s = 1; s < 20; s++)
		differ += backoff_delay_s(4, 100, 100000, s) != backoff_delay_s(4, 100, 100000, 0);
	assert_true(differ > 5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match_list_globs_negation_case),
		cmocka_unit_test(test_match_multivalued_image_type),
		cmocka_unit_test(test_match_route_every_key),
		cmocka_unit_test(test_match_age_unknown_fails_an_age_limited_route),
		cmocka_unit_test(test_match_age_years),
		cmocka_unit_test(test_router_min_images_priority_and_views),
		cmocka_unit_test(test_router_default_routes),
		cmocka_unit_test(test_view_names),
		cmocka_unit_test(test_backoff_doubles_caps_and_spreads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
