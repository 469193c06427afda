/* test_result.c - the result builder: every value a backend reports is
 * checked; a table of malformed and hostile JSON. */
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

#include <cjson/cJSON.h>

#include "result.h"

static const struct result_image images[] = {
	{ "1.2.3.1", 2048, 2500, 1 },
	{ "1.2.3.2", 1000, 800, 3 },
};

static struct triaged_result *
parse(const char *json, int *rc, char *msg, size_t msglen)
{
	struct triaged_result *r = result_new(images, 2);
	assert_non_null(r);
	*rc = result_parse_json(r, json, strlen(json), msg, msglen);
	return r;
}

static void
test_result_parses_the_design_example(void **state)
{
	const char *json =
	    "{\"status\":\"ok\",\"algorithm\":{\"name\":\"BoneAI\",\"version\":\"2.1\",\"vendor\":\"V\"},"
	    "\"study\":{\"outcome\":\"positive\",\"score\":0.93,\"summary\":\"one fracture\","
	    "\"measurements\":[{\"name\":\"bone age\",\"value\":132,\"unit\":\"mo\","
	    "\"code\":{\"scheme\":\"99X\",\"value\":\"BA\",\"meaning\":\"Bone age\"}}]},"
	    "\"findings\":[{\"label\":\"fracture\",\"score\":0.91,\"code\":{\"scheme\":\"SCT\","
	    "\"value\":\"125605004\",\"meaning\":\"Fracture of bone\"},\"sop_instance_uid\":\"1.2.3.1\","
	    "\"frame\":1,\"box\":[100,200,300,400]}]}";
	char msg[256];
	int rc;
	struct triaged_result *r = parse(json, &rc, msg, sizeof(msg));
	(void)state;
	assert_int_equal(rc, TRIAGED_OK);
	assert_int_equal(result_finish(r), 0);
	assert_string_equal(r->algo_name, "BoneAI");
	assert_int_equal(r->outcome, OUTCOME_POSITIVE);
	assert_true(fabs(r->score - 0.93) < 1e-9);
	assert_int_equal(r->nmeasurements, 1);
	assert_string_equal(r->measurements[0].unit, "mo");
	assert_int_equal(r->nfindings, 1);
	assert_true(r->findings[0].has_box);
	assert_false(r->findings[0].clamped);
	assert_true(r->findings[0].box[2] == 300);
	/* the normalized JSON round-trips */
	char *out = result_to_json(r);
	struct triaged_result *r2 = result_new(images, 2);
	assert_int_equal(result_parse_json(r2, out, strlen(out), msg, sizeof(msg)), TRIAGED_OK);
	assert_int_equal(r2->nfindings, 1);
	assert_string_equal(r2->findings[0].code.value, "125605004");
	free(out);
	result_free(r2);
	result_free(r);
}

static void
test_result_clamps_boxes_and_orders_corners(void **state)
{
	struct triaged_result *r = result_new(images, 2);
	double box[4] = { 2100, 2600, -50, 100 };   /* reversed, partly outside */
	(void)state;
	assert_int_equal(result_add_finding(r, "x", 0.5, NULL, "1.2.3.1", 1, box), 0);
	assert_true(r->findings[0].clamped);
	assert_true(r->findings[0].box[0] == 0 && r->findings[0].box[1] == 100);
	assert_true(r->findings[0].box[2] == 2048 && r->findings[0].box[3] == 2500);
	/* entirely outside: an error, not a zero-sized box */
	double out[4] = { 5000, 5000, 6000, 6000 };
	assert_int_equal(result_add_finding(r, "y", 0.5, NULL, "1.2.3.1", 1, out), -EINVAL);
	assert_non_null(strstr(r->error, "outside"));
	result_free(r);
}

static void
test_result_rejects_unknown_uid_and_bad_frame(void **state)
{
	struct triaged_result *r = result_new(images, 2);
	(void)state;
	assert_int_equal(result_add_finding(r, "x", 0.5, NULL, "9.9.9", 1, NULL), -ENOENT);
	assert_non_null(strstr(r->error, "unknown SOP Instance UID"));
	result_free(r);
	r = result_new(images, 2);
	assert_int_equal(result_add_finding(r, "x", 0.5, NULL, "1.2.3.2", 3, NULL), 0);
	assert_int_equal(result_add_finding(r, "x", 0.5, NULL, "1.2.3.2", 4, NULL), -EINVAL);
	result_free(r);
}

static void
test_result_error_form_retryable_or_not(void **state)
{
	char msg[256];
	int rc;
	struct triaged_result *r;
	(void)state;
	r = parse("{\"status\":\"error\",\"retryable\":true,\"message\":\"GPU busy\"}", &rc, msg, sizeof(msg));
	assert_int_equal(rc, TRIAGED_RETRY);
	assert_non_null(strstr(msg, "GPU busy"));
	result_free(r);
	r = parse("{\"status\":\"error\",\"message\":\"unsupported\\nimage\"}", &rc, msg, sizeof(msg));
	assert_int_equal(rc, TRIAGED_FAIL);
	assert_null(strchr(msg, '\n'));   /* control characters never reach the log */
	result_free(r);
}

/* Malformed and hostile answers: each must end TRIAGED_FAIL with a reason
 * containing WHY. */
static void
test_result_malformed_table(void **state)
{
	static const struct { const char *json; const char *why; } bad[] = {
		{ "", "empty" },
		{ "not json", "not a JSON object" },
		{ "[1,2,3]", "not a JSON object" },
		{ "{\"status\":\"ok\"}", "study must be an object" },
		{ "{\"study\":{\"outcome\":\"positive\"}}", "status is missing" },
		{ "{\"status\":\"maybe\",\"study\":{\"outcome\":\"positive\"}}", "status must be" },
		{ "{\"status\":\"ok\",\"study\":{\"outcome\":\"great\"}}", "outcome must be" },
		{ "{\"status\":\"ok\",\"study\":{\"outcome\":1}}", "outcome must be a string" },
		{ "{\"status\":\"ok\",\"study\":{\"outcome\":\"positive\",\"score\":\"high\"}}", "score must be a number" },
		{ "{\"status\":\"ok\",\"study\":{\"outcome\":\"positive\",\"score\":1.5}}", "score must be a number in [0,1]" },
		{ "{\"status\":\"ok\",\"study\":{\"outcome\":\"positive\",\"score\":1e999}}", "score must be" },
		{ "{\"status\":\"ok\",\"study\":{\"outcome\":\"positive\",\"measurements\":{}}}", "measurements must be an array" },
		{ "{\"status\":\"ok\",\"study\":{\"outcome\":\"positive\",\"measurements\":[{\"name\":\"a\",\"unit\":\"mo\"}]}}", "value is missing" },
		{ "{\"status\":\"ok\",\"study\":{\"outcome\":\"positive\"},\"findings\":[{\"label\":\"f\",\"sop_instance_uid\":\"1.2.3.1\",\"box\":[1,2,3]}]}", "box must be" },
		{ "{\"status\":\"ok\",\"study\":{\"outcome\":\"positive\"},\"findings\":[{\"label\":\"f\",\"sop_instance_uid\":\"1.2.3.1\",\"box\":[1,2,\"3\",4]}]}", "box must hold numbers" },
		{ "{\"status\":\"ok\",\"study\":{\"outcome\":\"positive\"},\"findings\":[{\"label\":\"f\",\"sop_instance_uid\":\"../../etc/passwd\"}]}", "unknown SOP Instance UID" },
		{ "{\"status\":\"ok\",\"study\":{\"outcome\":\"positive\"},\"findings\":[{\"label\":\"f\"}]}", "sop_instance_uid is missing" },
		{ "{\"status\":\"ok\",\"study\":{\"outcome\":\"positive\"},\"findings\":[{\"label\":\"f\",\"sop_instance_uid\":\"1.2.3.1\",\"frame\":0.5}]}", "frame" },
		{ "{\"status\":\"ok\",\"study\":{\"outcome\":\"positive\"},\"findings\":[{\"label\":\"\\u0001bell\",\"sop_instance_uid\":\"1.2.3.1\"}]}", "not valid UTF-8 text" },
		{ "{\"status\":\"ok\",\"study\":{\"outcome\":\"positive\"},\"findings\":[{\"label\":\"f\",\"sop_instance_uid\":\"1.2.3.1\",\"code\":{\"scheme\":\"X\"}}]}", "code.value is missing" },
		{ "{\"status\":\"ok\",\"study\":{\"outcome\":\"positive\"},\"findings\":\"many\"}", "findings must be an array" },
		{ "{\"status\":\"ok\",\"study\":{\"outcome\":\"positive\"},\"findings\":[1]}", "finding must be an object" },
		{ "{\"status\":\"ok\",\"study\":{\"outcome\":\"positive\"}}}}}", "is not JSON" },
	};
	char msg[512];
	int rc;
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct triaged_result *r = parse(bad[i].json, &rc, msg, sizeof(msg));
		if (rc != TRIAGED_FAIL || !strstr(msg, bad[i].why))
			fail_msg("case %zu: rc=%d msg=\"%s\", expected FAIL with \"%s\"", i, rc, msg,
			    bad[i].why);
		result_free(r);
	}
}

static void
test_result_limits_size_depth_and_counts(void **state)
{
	char msg[256];
	int rc;
	size_t n;
	char *big;
	struct triaged_result *r;
	(void)state;

	/* nesting 1000 deep */
	big = malloc(4096);
	n = 0;
	for (int i = 0; i < 1000; i++)
		big[n++] = '[';
	for (int i = 0; i < 1000; i++)
		big[n++] = ']';
	big[n] = '\0';
	r = parse(big, &rc, msg, sizeof(msg));
	assert_int_equal(rc, TRIAGED_FAIL);
	assert_non_null(strstr(msg, "deeper"));
	result_free(r);
	free(big);

	/* over 1 MiB */
	big = malloc(RESULT_MAX_JSON + 100);
	memset(big, ' ', RESULT_MAX_JSON + 99);
	big[0] = '{';
	big[RESULT_MAX_JSON + 98] = '}';
	big[RESULT_MAX_JSON + 99] = '\0';
	r = parse(big, &rc, msg, sizeof(msg));
	assert_int_equal(rc, TRIAGED_FAIL);
	assert_non_null(strstr(msg, "larger"));
	result_free(r);
	free(big);

	/* 10000 findings */
	cJSON *root = cJSON_CreateObject(), *arr;
	cJSON_AddStringToObject(root, "status", "ok");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(root, "study"), "outcome", "positive");
	arr = cJSON_AddArrayToObject(root, "findings");
	for (int i = 0; i < 10000; i++) {
		cJSON *f = cJSON_CreateObject();
		cJSON_AddStringToObject(f, "label", "x");
		cJSON_AddStringToObject(f, "sop_instance_uid", "1.2.3.1");
		cJSON_AddItemToArray(arr, f);
	}
	big = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	r = parse(big, &rc, msg, sizeof(msg));
	assert_int_equal(rc, TRIAGED_FAIL);
	assert_non_null(strstr(msg, "more than"));
	result_free(r);
	free(big);

	/* a 100-character label */
	r = result_new(images, 2);
	char label[101];
	memset(label, 'a', 100);
	label[100] = '\0';
	assert_int_equal(result_add_finding(r, label, 0.5, NULL, "1.2.3.1", 1, NULL), -E2BIG);
	result_free(r);
}

static void
test_result_finish_needs_an_outcome(void **state)
{
	struct triaged_result *r = result_new(images, 2);
	(void)state;
	assert_int_equal(result_finish(r), -EINVAL);
	assert_non_null(strstr(r->error, "outcome"));
	result_free(r);
	r = result_new(images, 2);
	assert_int_equal(result_set_outcome(r, "negative", -1, NULL), 0);
	assert_int_equal(result_finish(r), 0);
	assert_int_equal(result_set_outcome(r, "negative", NAN, NULL), -EINVAL);
	result_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_result_parses_the_design_example),
		cmocka_unit_test(test_result_clamps_boxes_and_orders_corners),
		cmocka_unit_test(test_result_rejects_unknown_uid_and_bad_frame),
		cmocka_unit_test(test_result_error_form_retryable_or_not),
		cmocka_unit_test(test_result_malformed_table),
		cmocka_unit_test(test_result_limits_size_depth_and_counts),
		cmocka_unit_test(test_result_finish_needs_an_outcome),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
