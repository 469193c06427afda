/*
 * test_config.c - unit tests of src/config.c.
 *
 * Table-driven: reject_cases are config texts that must fail with exactly
 * the listed error lines (a line ending in '*' matches as a prefix);
 * accept_cases must load, and their check function looks at the result.
 * Each row runs as its own cmocka test, under its own name. The remaining
 * tests (durations, defaults, the shipped conf/triaged.conf, reference
 * counting, lookups) are plain functions.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

/* Load TEXT as "t.conf"; *ERRS receives what was printed (caller frees). */
static int load(const char *text, struct config **c, char **errs)
{
	size_t n = 0;
	FILE *f;
	int r;

	*errs = NULL;
	f = open_memstream(errs, &n);
	assert_non_null(f);
	r = config_load_string(text, "t.conf", c, f);
	fclose(f);
	return r;
}

/* Load TEXT, which must succeed with nothing printed. */
static struct config *load_ok(const char *text)
{
	struct config *c = NULL;
	char *errs = NULL;
	int r = load(text, &c, &errs);

	if (r != 0 || (errs && *errs))
		print_error("unexpected errors (r=%d):\n%s", r, errs ? errs : "");
	assert_int_equal(r, 0);
	assert_string_equal(errs, "");
	assert_non_null(c);
	free(errs);
	return c;
}

/* Compare the printed errors with EXPECT, line by line; a line of EXPECT
 * ending in '*' only has to be a prefix of the actual line. */
static void assert_errors(const char *actual, const char *expect)
{
	const char *a = actual, *e = expect;

	while (*e) {
		const char *ee = strchr(e, '\n'), *ae = strchr(a, '\n');
		size_t el = ee ? (size_t)(ee - e) : strlen(e);
		size_t al = ae ? (size_t)(ae - a) : strlen(a);
		int ok;

		if (el > 0 && e[el - 1] == '*')
			ok = al >= el - 1 && memcmp(a, e, el - 1) == 0;
		else
			ok = al == el && memcmp(a, e, el) == 0;
		if (!ok || !*a) {
			print_error("expected errors:\n%s\nactual errors:\n%s\n", expect, actual);
			fail();
		}
		e += el + (ee ? 1 : 0);
		a += al + (ae ? 1 : 0);
	}
	if (*a) {
		print_error("expected errors:\n%s\nactual errors:\n%s\n", expect, actual);
		fail();
	}
}

/* ------------------------------------------------------------------------ */
/* Rejected configurations                                                  */

struct reject_case {
	const char *name;
	const char *text;
	const char *errors;     /* exact lines; a trailing '*' = prefix */
};

#define AE17 "ABCDEFGHIJKLMNOPQ"

static const struct reject_case reject_cases[] = {
	/* [server] */
	{ "test_config_rejects_port_zero", "[server]\nport = 0\n",
	  "t.conf:2: [server] port: must be an integer between 1 and 65535, not '0'\n" },
	{ "test_config_rejects_port_65536", "[server]\nport = 65536\n",
	  "t.conf:2: [server] port: must be an integer between 1 and 65535, not '65536'\n" },
	{ "test_config_rejects_port_negative", "[server]\nport = -1\n",
	  "t.conf:2: [server] port: must be an integer between 1 and 65535, not '-1'\n" },
	{ "test_config_rejects_port_not_a_number", "[server]\nport = http\n",
	  "t.conf:2: [server] port: must be an integer between 1 and 65535, not 'http'\n" },
	{ "test_config_rejects_port_trailing_junk", "[server]\nport = 104x\n",
	  "t.conf:2: [server] port: must be an integer between 1 and 65535, not '104x'\n" },
	{ "test_config_rejects_port_empty", "[server]\nport =\n",
	  "t.conf:2: [server] port: must be an integer between 1 and 65535, not ''\n" },
	{ "test_config_rejects_port_huge", "[server]\nport = 99999999999999999999999\n",
	  "t.conf:2: [server] port: must be an integer between 1 and 65535, not *\n" },
	{ "test_config_rejects_max_associations_zero", "[server]\nmax_associations = 0\n",
	  "t.conf:2: [server] max_associations: must be an integer between 1 and 1024, not '0'\n" },
	{ "test_config_rejects_max_associations_1025", "[server]\nmax_associations = 1025\n",
	  "t.conf:2: [server] max_associations: must be an integer between 1 and 1024, not '1025'\n" },
	{ "test_config_rejects_max_pdu_4095", "[server]\nmax_pdu = 4095\n",
	  "t.conf:2: [server] max_pdu: must be an integer between 4096 and 131072, not '4095'\n" },
	{ "test_config_rejects_max_pdu_131073", "[server]\nmax_pdu = 131073\n",
	  "t.conf:2: [server] max_pdu: must be an integer between 4096 and 131072, not '131073'\n" },
	{ "test_config_rejects_acse_timeout_zero", "[server]\nacse_timeout_s = 0\n",
	  "t.conf:2: [server] acse_timeout_s: must be an integer between 1 and 600, not '0'\n" },
	{ "test_config_rejects_acse_timeout_601", "[server]\nacse_timeout_s = 601\n",
	  "t.conf:2: [server] acse_timeout_s: must be an integer between 1 and 600, not '601'\n" },
	{ "test_config_rejects_dimse_timeout_zero", "[server]\ndimse_timeout_s = 0\n",
	  "t.conf:2: [server] dimse_timeout_s: must be an integer between 1 and 3600, not '0'\n" },
	{ "test_config_rejects_dimse_timeout_3601", "[server]\ndimse_timeout_s = 3601\n",
	  "t.conf:2: [server] dimse_timeout_s: must be an integer between 1 and 3600, not '3601'\n" },
	{ "test_config_rejects_ae_title_empty", "[server]\nae_title =\n",
	  "t.conf:2: [server] ae_title: AE title is empty\n" },
	{ "test_config_rejects_ae_title_17_chars", "[server]\nae_title = " AE17 "\n",
	  "t.conf:2: [server] ae_title: AE title '" AE17 "' is longer than 16 characters\n" },
	{ "test_config_rejects_ae_title_backslash", "[server]\nae_title = TRI\\AGED\n",
	  "t.conf:2: [server] ae_title: AE title 'TRI\\AGED' contains a backslash\n" },
	{ "test_config_rejects_ae_title_non_ascii", "[server]\nae_title = TRIAG\xc3\x89\n",
	  "t.conf:2: [server] ae_title: AE title 'TRIAG\xc3\x89' has a character that is not printable ASCII\n" },
	{ "test_config_rejects_ae_title_control_char", "[server]\nae_title = TRI\x01G\n",
	  "t.conf:2: [server] ae_title: contains control characters\n" },
	{ "test_config_rejects_bind_garbage", "[server]\nbind = not a host!\n",
	  "t.conf:2: [server] bind: 'not a host!' is not an IPv4 or IPv6 address (no host names)\n" },
	{ "test_config_rejects_relative_spool_dir", "[storage]\nspool_dir = var/spool\n",
	  "t.conf:2: [storage] spool_dir: 'var/spool' is not an absolute path\n" },
	{ "test_config_rejects_dotdot_database", "[storage]\ndatabase = /var/lib/../triaged.db\n",
	  "t.conf:2: [storage] database: '/var/lib/../triaged.db' contains '..'\n" },
	{ "test_config_rejects_bind_empty", "[server]\nbind =\n",
	  "t.conf:2: [server] bind: must not be empty\n" },
	{ "test_config_rejects_bind_host_name", "[server]\nbind = triaged.example.org\n",
	  "t.conf:2: [server] bind: 'triaged.example.org' is not an IPv4 or IPv6 address (no host names)\n" },
	{ "test_config_rejects_dicom_host_ipv6", "[destination d]\ntype = dicom\nport = 104\nae_title = PACS\nhost = ::1\n",
	  "t.conf:5: [destination d] host: '::1': IPv6 is not supported by the DICOM SCU (DCMTK 3.6.7); use an IPv4 address or a host name\n" },
	{ "test_config_rejects_host_garbage", "[destination d]\ntype = dicom\nport = 104\nae_title = PACS\nhost = not a host!\n",
	  "t.conf:5: [destination d] host: 'not a host!' is not an IP address or a host name\n" },
	{ "test_config_rejects_host_double_dot", "[destination d]\ntype = dicom\nport = 104\nae_title = PACS\nhost = a..b\n",
	  "t.conf:5: [destination d] host: 'a..b' is not an IP address or a host name\n" },
	{ "test_config_rejects_host_leading_dot", "[destination d]\ntype = dicom\nport = 104\nae_title = PACS\nhost = .example.org\n",
	  "t.conf:5: [destination d] host: '.example.org' is not an IP address or a host name\n" },
	{ "test_config_rejects_host_lone_dot", "[destination d]\ntype = dicom\nport = 104\nae_title = PACS\nhost = .\n",
	  "t.conf:5: [destination d] host: '.' is not an IP address or a host name\n" },
	{ "test_config_rejects_host_label_64_chars",
	  "[destination d]\ntype = dicom\nport = 104\nae_title = PACS\nhost = a123456789012345678901234567890123456789012345678901234567890123.org\n",
	  "t.conf:5: [destination d] host: 'a123456789012345678901234567890123456789012345678901234567890123' "
	  "is not an IP address or a host name\n" },
	{ "test_config_rejects_allowed_calling_aes_bad_item",
	  "[server]\nallowed_calling_aes = CR1, " AE17 ", DX1\n",
	  "t.conf:2: [server] allowed_calling_aes: AE title '" AE17 "' is longer than 16 characters\n" },
	{ "test_config_rejects_allowed_calling_aes_backslash",
	  "[server]\nallowed_calling_aes = CR1, A\\B\n",
	  "t.conf:2: [server] allowed_calling_aes: AE title 'A\\B' contains a backslash\n" },
	{ "test_config_rejects_allowed_calling_aes_65_items",
	  "[server]\nallowed_calling_aes = "
	  "A1,A2,A3,A4,A5,A6,A7,A8,A9,A10,A11,A12,A13,A14,A15,A16,A17,A18,A19,A20,"
	  "A21,A22,A23,A24,A25,A26,A27,A28,A29,A30,A31,A32,A33,A34,A35,A36,A37,A38,"
	  "A39,A40,A41,A42,A43,A44,A45,A46,A47,A48,A49,A50,A51,A52,A53,A54,A55,A56,"
	  "A57,A58,A59,A60,A61,A62,A63,A64,A65\n",
	  "t.conf:2: [server] allowed_calling_aes: more than 64 items\n" },

	/* [storage] */
	{ "test_config_rejects_spool_dir_empty", "[storage]\nspool_dir =\n",
	  "t.conf:2: [storage] spool_dir: must not be empty\n" },
	{ "test_config_rejects_database_empty", "[storage]\ndatabase =\n",
	  "t.conf:2: [storage] database: must not be empty\n" },
	{ "test_config_rejects_min_free_mb_negative", "[storage]\nmin_free_mb = -1\n",
	  "t.conf:2: [storage] min_free_mb: must be an integer between 0 and 8796093022207, not '-1'\n" },
	{ "test_config_rejects_min_free_mb_overflow", "[storage]\nmin_free_mb = 8796093022208\n",
	  "t.conf:2: [storage] min_free_mb: must be an integer between 0 and 8796093022207, not '8796093022208'\n" },
	{ "test_config_rejects_retention_hours_negative", "[storage]\nretention_hours = -1\n",
	  "t.conf:2: [storage] retention_hours: must be an integer between 0 and 87600, not '-1'\n" },
	{ "test_config_rejects_retention_hours_87601", "[storage]\nretention_hours = 87601\n",
	  "t.conf:2: [storage] retention_hours: must be an integer between 0 and 87600, not '87601'\n" },

	/* [study] */
	{ "test_config_rejects_stable_seconds_zero", "[study]\nstable_seconds = 0\n",
	  "t.conf:2: [study] stable_seconds: must be an integer between 1 and 86400, not '0'\n" },
	{ "test_config_rejects_stable_seconds_86401", "[study]\nstable_seconds = 86401\n",
	  "t.conf:2: [study] stable_seconds: must be an integer between 1 and 86400, not '86401'\n" },
	{ "test_config_rejects_force_seconds_zero", "[study]\nforce_seconds = 0\n",
	  "t.conf:2: [study] force_seconds: must be an integer between 1 and 2592000, not '0'\n" },
	{ "test_config_rejects_force_below_stable",
	  "[study]\nstable_seconds = 60\nforce_seconds = 30\n",
	  "t.conf:3: [study] force_seconds: 30 is below stable_seconds (60)\n" },
	{ "test_config_rejects_stable_above_default_force",
	  "[study]\n\nstable_seconds = 7200\n",
	  "t.conf:3: [study] stable_seconds: 7200 is above force_seconds (3600)\n" },

	/* [analysis] */
	{ "test_config_rejects_workers_zero", "[analysis]\nworkers = 0\n",
	  "t.conf:2: [analysis] workers: must be an integer between 1 and 64, not '0'\n" },
	{ "test_config_rejects_workers_65", "[analysis]\nworkers = 65\n",
	  "t.conf:2: [analysis] workers: must be an integer between 1 and 64, not '65'\n" },
	{ "test_config_rejects_max_attempts_zero", "[analysis]\nmax_attempts = 0\n",
	  "t.conf:2: [analysis] max_attempts: must be an integer between 1 and 100, not '0'\n" },
	{ "test_config_rejects_max_attempts_101", "[analysis]\nmax_attempts = 101\n",
	  "t.conf:2: [analysis] max_attempts: must be an integer between 1 and 100, not '101'\n" },
	{ "test_config_rejects_uid_root_leading_zero", "[analysis]\nuid_root = 1.2.03\n",
	  "t.conf:2: [analysis] uid_root: '1.2.03' has a component with a leading zero\n" },
	{ "test_config_rejects_uid_root_empty_component", "[analysis]\nuid_root = 1..2\n",
	  "t.conf:2: [analysis] uid_root: '1..2' has an empty component\n" },
	{ "test_config_rejects_uid_root_trailing_dot", "[analysis]\nuid_root = 1.2.\n",
	  "t.conf:2: [analysis] uid_root: '1.2.' has an empty component\n" },
	{ "test_config_rejects_uid_root_leading_dot", "[analysis]\nuid_root = .1.2\n",
	  "t.conf:2: [analysis] uid_root: '.1.2' has an empty component\n" },
	{ "test_config_rejects_uid_root_letters", "[analysis]\nuid_root = 1.2.abc\n",
	  "t.conf:2: [analysis] uid_root: '1.2.abc' must contain only digits and dots\n" },
	{ "test_config_rejects_uid_root_25_chars", "[analysis]\nuid_root = 1.2.3.4.5.6.7.8.9.10.1112\n",
	  "t.conf:2: [analysis] uid_root: longer than 24 characters\n" },
	{ "test_config_rejects_uid_root_semicolon_kept", "[analysis]\nuid_root = 1.2;3\n",
	  "t.conf:2: [analysis] uid_root: '1.2;3' must contain only digits and dots\n" },
	{ "test_config_rejects_uid_root_hash_kept", "[analysis]\nuid_root = 1.2 #3\n",
	  "t.conf:2: [analysis] uid_root: '1.2 #3' must contain only digits and dots\n" },

	/* [route NAME] */
	{ "test_config_rejects_route_priority_10", "[route r]\npriority = 10\n",
	  "t.conf:2: [route r] priority: must be an integer between 0 and 9, not '10'\n" },
	{ "test_config_rejects_route_priority_negative", "[route r]\npriority = -1\n",
	  "t.conf:2: [route r] priority: must be an integer between 0 and 9, not '-1'\n" },
	{ "test_config_rejects_route_min_images_zero", "[route r]\nmin_images = 0\n",
	  "t.conf:2: [route r] min_images: must be an integer between 1 and 10000, not '0'\n" },
	{ "test_config_rejects_route_min_images_10001", "[route r]\nmin_images = 10001\n",
	  "t.conf:2: [route r] min_images: must be an integer between 1 and 10000, not '10001'\n" },
	{ "test_config_rejects_route_age_min_151", "[route r]\npatient_age_min = 151\n",
	  "t.conf:2: [route r] patient_age_min: must be an integer between 0 and 150, not '151'\n" },
	{ "test_config_rejects_route_age_max_negative", "[route r]\npatient_age_max = -1\n",
	  "t.conf:2: [route r] patient_age_max: must be an integer between 0 and 150, not '-1'\n" },
	{ "test_config_rejects_route_age_min_above_max",
	  "[route r]\npatient_age_max = 10\npatient_age_min = 18\n",
	  "t.conf:2: [route r] patient_age_max: 10 is below patient_age_min (18)\n" },
	{ "test_config_rejects_route_sr_template_unknown", "[route r]\nsr_template = tid4000\n",
	  "t.conf:2: [route r] sr_template: must be one of tid1500, mammo-cad, not 'tid4000'\n" },
	{ "test_config_rejects_route_unknown_backend",
	  "[route r]\nmodality = CR\nbackend = nowhere\n",
	  "t.conf:3: [route r] backend: no [backend nowhere] is defined\n" },
	{ "test_config_rejects_route_backend_bad_name", "[route r]\nbackend = a b\n",
	  "t.conf:2: [route r] backend: name 'a b' may only contain letters, digits, '_', '-' and '.'\n" },
	{ "test_config_rejects_route_backend_empty", "[route r]\nbackend =\n",
	  "t.conf:2: [route r] backend: must not be empty\n" },
	{ "test_config_rejects_route_unknown_destination",
	  "[destination pacs]\ntype = folder\npath = /tmp/x\n"
	  "[route r]\ndestinations = pacs, archive\n",
	  "t.conf:5: [route r] destinations: no [destination archive] is defined\n" },
	{ "test_config_rejects_route_expected_views_empty_item",
	  "[route r]\nexpected_views = RCC,,LCC\n",
	  "t.conf:2: [route r] expected_views: empty item in 'RCC,,LCC'\n" },
	{ "test_config_rejects_route_expected_views_trailing_comma",
	  "[route r]\nexpected_views = RCC, LCC,\n",
	  "t.conf:2: [route r] expected_views: empty item in 'RCC, LCC,'\n" },
	{ "test_config_rejects_route_expected_views_glob",
	  "[route r]\nexpected_views = R*\n",
	  "t.conf:2: [route r] expected_views: view 'R*' may only contain letters, digits, '_' and '-'\n" },
	{ "test_config_rejects_route_bare_negation", "[route r]\nmodality = CR, !\n",
	  "t.conf:2: [route r] modality: '!' must be followed by a pattern\n" },
	{ "test_config_rejects_route_negation_with_space", "[route r]\nbody_part = ! CHEST\n",
	  "t.conf:2: [route r] body_part: write '!PATTERN' without a space: '! CHEST'\n" },
	{ "test_config_rejects_route_webhook_not_http", "[route r]\nwebhook = ftp://example.org/x\n",
	  "t.conf:2: [route r] webhook: 'ftp://example.org/x' is not an http:// or https:// URL\n" },
	{ "test_config_rejects_route_webhook_no_host", "[route r]\nwebhook = https:///x\n",
	  "t.conf:2: [route r] webhook: URL 'https:///x' has no host\n" },
	{ "test_config_rejects_route_unknown_key", "[route r]\nmodalty = CR\n",
	  "t.conf:2: [route r] modalty: unknown key\n" },
	{ "test_config_rejects_route_without_name", "[route]\nmodality = CR\n",
	  "t.conf:1: [route] a name is required: [route NAME]\n" },
	{ "test_config_rejects_route_bad_name", "[route a/b]\nmodality = CR\n",
	  "t.conf:1: [route a/b] name 'a/b' may only contain letters, digits, '_', '-' and '.'\n" },
	{ "test_config_rejects_route_name_with_space", "[route a b]\n",
	  "t.conf:1: [route a b] name 'a b' may only contain letters, digits, '_', '-' and '.'\n" },
	{ "test_config_rejects_route_name_too_long",
	  "[route a1234567890123456789012345678901234567890123456789012345678901234]\n",
	  "t.conf:1: [route a1234567890123456789012345678901234567890123456789012345678901234] "
	  "name 'a1234567890123456789012345678901234567890123456789012345678901234' "
	  "is longer than 64 characters\n" },
	{ "test_config_rejects_duplicate_route",
	  "[route r]\nmodality = CR\n\n[route r]\nmodality = DX\n",
	  "t.conf:4: [route r] duplicate section (first on line 1)\n" },

	/* [backend NAME] */
	{ "test_config_rejects_backend_without_type", "[backend b]\ntimeout_s = 10\n",
	  "t.conf:1: [backend b] type: missing; one of reference, exec, http, kserve\n" },
	{ "test_config_rejects_backend_unknown_type", "[backend b]\ntype = grpc\nurl = x\n",
	  "t.conf:2: [backend b] type: must be one of reference, exec, http, kserve, not 'grpc'\n" },
	{ "test_config_rejects_backend_timeout_zero", "[backend b]\ntype = reference\ntimeout_s = 0\n",
	  "t.conf:3: [backend b] timeout_s: must be an integer between 1 and 86400, not '0'\n" },
	{ "test_config_rejects_backend_timeout_86401", "[backend b]\ntimeout_s = 86401\ntype = reference\n",
	  "t.conf:2: [backend b] timeout_s: must be an integer between 1 and 86400, not '86401'\n" },
	{ "test_config_rejects_backend_algorithm_name_too_long",
	  "[backend b]\ntype = reference\nalgorithm_name = "
	  "12345678901234567890123456789012345678901234567890123456789012345\n",
	  "t.conf:3: [backend b] algorithm_name: longer than 64 characters\n" },
	{ "test_config_rejects_backend_unknown_key", "[backend b]\ntype = reference\ncolour = red\n",
	  "t.conf:3: [backend b] colour: unknown key\n" },
	{ "test_config_rejects_backend_key_of_other_type",
	  "[backend b]\ntype = http\nurl = http://x\ncommand = /bin/true\n",
	  "t.conf:4: [backend b] command: not a key of type http backends\n" },
	{ "test_config_rejects_backend_duplicate_key",
	  "[backend b]\ntype = reference\ntimeout_s = 5\ntimeout_s = 6\n",
	  "t.conf:4: [backend b] timeout_s: duplicate key (first set on line 3)\n" },
	{ "test_config_rejects_backend_reference_of_other_type",
	  "[backend reference]\ntype = exec\ncommand = /bin/true\n",
	  "t.conf:2: [backend reference] type: the backend named 'reference' must have type reference\n" },
	{ "test_config_rejects_duplicate_backend",
	  "[backend b]\ntype = reference\n[backend b]\ntype = reference\n",
	  "t.conf:3: [backend b] duplicate section (first on line 1)\n" },
	{ "test_config_rejects_exec_without_command", "[backend b]\ntype = exec\n",
	  "t.conf:1: [backend b] command: missing; required for type exec\n" },
	{ "test_config_rejects_exec_empty_command", "[backend b]\ntype = exec\ncommand =\n",
	  "t.conf:3: [backend b] command: must not be empty\n" },
	{ "test_config_rejects_exec_unbalanced_quote",
	  "[backend b]\ntype = exec\ncommand = /bin/ai --name \"fracture\n",
	  "t.conf:3: [backend b] command: unterminated \" quote\n" },
	{ "test_config_rejects_exec_trailing_backslash",
	  "[backend b]\ntype = exec\ncommand = /bin/ai \\\n",
	  "t.conf:3: [backend b] command: ends with a backslash\n" },
	{ "test_config_rejects_exec_max_output_zero",
	  "[backend b]\ntype = exec\ncommand = /bin/ai\nmax_output_kb = 0\n",
	  "t.conf:4: [backend b] max_output_kb: must be an integer between 1 and 1048576, not '0'\n" },
	{ "test_config_rejects_http_without_url", "[backend b]\ntype = http\n",
	  "t.conf:1: [backend b] url: missing; required for type http\n" },
	{ "test_config_rejects_http_bad_url", "[backend b]\ntype = http\nurl = ai.example.org\n",
	  "t.conf:3: [backend b] url: 'ai.example.org' is not an http:// or https:// URL\n" },
	{ "test_config_rejects_http_url_with_space", "[backend b]\ntype = http\nurl = http://a b\n",
	  "t.conf:3: [backend b] url: URL 'http://a b' contains a space, quote or backslash\n" },
	{ "test_config_rejects_http_send_unknown",
	  "[backend b]\ntype = http\nurl = http://ai\nsend = jpeg\n",
	  "t.conf:4: [backend b] send: must be one of dicom, png, not 'jpeg'\n" },
	{ "test_config_rejects_http_poll_interval_zero",
	  "[backend b]\ntype = http\nurl = http://ai\npoll_interval_s = 0\n",
	  "t.conf:4: [backend b] poll_interval_s: must be an integer between 1 and 3600, not '0'\n" },
	{ "test_config_rejects_http_max_response_zero",
	  "[backend b]\ntype = http\nurl = http://ai\nmax_response_kb = 0\n",
	  "t.conf:4: [backend b] max_response_kb: must be an integer between 1 and 1048576, not '0'\n" },
	{ "test_config_rejects_http_connect_timeout_too_long",
	  "[backend b]\ntype = http\nurl = http://ai\nconnect_timeout_s = 601\n",
	  "t.conf:4: [backend b] connect_timeout_s: must be an integer between 1 and 600, not '601'\n" },
	{ "test_config_rejects_http_health_url_not_http",
	  "[backend b]\ntype = http\nurl = http://ai\nhealth_url = ftp://ai/health\n",
	  "t.conf:4: [backend b] health_url: 'ftp://ai/health' is not an http:// or https:// URL\n" },
	{ "test_config_rejects_kserve_without_url_and_model", "[backend b]\ntype = kserve\n",
	  "t.conf:1: [backend b] url: missing; required for type kserve\n"
	  "t.conf:1: [backend b] model: missing; required for type kserve\n" },
	{ "test_config_rejects_kserve_model_with_slash",
	  "[backend b]\ntype = kserve\nurl = http://t\nmodel = ../admin\n",
	  "t.conf:4: [backend b] model: '../admin' may only contain letters, digits, '_', '-' and '.'\n" },
	{ "test_config_rejects_kserve_input_size",
	  "[backend b]\ntype = kserve\nurl = http://t\nmodel = m\ninput_size = 1024*832\n",
	  "t.conf:5: [backend b] input_size: '1024*832' must be ROWSxCOLUMNS, each 1..16384 (e.g. 1024x832)\n" },
	{ "test_config_rejects_kserve_input_size_zero",
	  "[backend b]\ntype = kserve\nurl = http://t\nmodel = m\ninput_size = 0x832\n",
	  "t.conf:5: [backend b] input_size: '0x832' must be ROWSxCOLUMNS*\n" },
	{ "test_config_rejects_kserve_input_datatype",
	  "[backend b]\ntype = kserve\nurl = http://t\nmodel = m\ninput_datatype = fp32\n",
	  "t.conf:5: [backend b] input_datatype: must be empty or one of UINT8, *\n" },
	{ "test_config_rejects_kserve_normalize",
	  "[backend b]\ntype = kserve\nurl = http://t\nmodel = m\nnormalize = 0..255\n",
	  "t.conf:5: [backend b] normalize: must be one of 0..1, minmax, none, not '0..255'\n" },
	{ "test_config_rejects_kserve_box_format",
	  "[backend b]\ntype = kserve\nurl = http://t\nmodel = m\nbox_format = xywh\n",
	  "t.conf:5: [backend b] box_format: must be one of xyxy_normalized, xyxy_pixels, yxyx_normalized, not 'xywh'\n" },
	{ "test_config_rejects_kserve_score_threshold_above_one",
	  "[backend b]\ntype = kserve\nurl = http://t\nmodel = m\nscore_threshold = 1.5\n",
	  "t.conf:5: [backend b] score_threshold: must be a number between 0 and 1, not '1.5'\n" },
	{ "test_config_rejects_kserve_score_threshold_text",
	  "[backend b]\ntype = kserve\nurl = http://t\nmodel = m\nscore_threshold = nan\n",
	  "t.conf:5: [backend b] score_threshold: must be a number between 0 and 1, not 'nan'\n" },
	{ "test_config_rejects_kserve_binary",
	  "[backend b]\ntype = kserve\nurl = http://t\nmodel = m\nbinary = maybe\n",
	  "t.conf:5: [backend b] binary: must be yes or no, not 'maybe'\n" },
	{ "test_config_rejects_kserve_binary_true",
	  "[backend b]\ntype = kserve\nurl = http://t\nmodel = m\nbinary = true\n",
	  "t.conf:5: [backend b] binary: must be yes or no, not 'true'\n" },
	{ "test_config_rejects_kserve_four_outputs",
	  "[backend b]\ntype = kserve\nurl = http://t\nmodel = m\noutputs = a, b, c, d\n",
	  "t.conf:5: [backend b] outputs: more than 3 items\n" },
	{ "test_config_rejects_kserve_placement",
	  "[backend b]\ntype = kserve\nurl = http://t\nmodel = m\nplacement = middle\n",
	  "t.conf:5: [backend b] placement: must be one of center, top_left, not 'middle'\n" },
	{ "test_config_rejects_kserve_max_response_kb_zero",
	  "[backend b]\ntype = kserve\nurl = http://t\nmodel = m\nmax_response_kb = 0\n",
	  "t.conf:5: [backend b] max_response_kb: must be an integer between 1 and 1048576, "
	  "not '0'\n" },

	/* [destination NAME] */
	{ "test_config_rejects_destination_without_type", "[destination d]\nhost = pacs\n",
	  "t.conf:1: [destination d] type: missing; one of dicom, folder, dicomweb\n" },
	{ "test_config_rejects_destination_unknown_type", "[destination d]\ntype = ftp\n",
	  "t.conf:2: [destination d] type: must be one of dicom, folder, dicomweb, not 'ftp'\n" },
	{ "test_config_rejects_dicom_destination_without_host_port_ae",
	  "[destination d]\ntype = dicom\n",
	  "t.conf:1: [destination d] host: missing; required for type dicom\n"
	  "t.conf:1: [destination d] port: missing; required for type dicom\n"
	  "t.conf:1: [destination d] ae_title: missing; required for type dicom\n" },
	{ "test_config_rejects_dicom_destination_port_zero",
	  "[destination d]\ntype = dicom\nhost = pacs\nport = 0\nae_title = PACS\n",
	  "t.conf:4: [destination d] port: must be an integer between 1 and 65535, not '0'\n" },
	{ "test_config_rejects_dicom_destination_long_ae",
	  "[destination d]\ntype = dicom\nhost = pacs\nport = 104\nae_title = " AE17 "\n",
	  "t.conf:5: [destination d] ae_title: AE title '" AE17 "' is longer than 16 characters\n" },
	{ "test_config_rejects_dicom_destination_bad_calling_ae",
	  "[destination d]\ntype = dicom\nhost = pacs\nport = 104\nae_title = PACS\ncalling_ae = A\\B\n",
	  "t.conf:6: [destination d] calling_ae: AE title 'A\\B' contains a backslash\n" },
	{ "test_config_rejects_dicom_destination_bad_host",
	  "[destination d]\ntype = dicom\nhost = pacs server\nport = 104\nae_title = PACS\n",
	  "t.conf:3: [destination d] host: 'pacs server' is not an IP address or a host name\n" },
	{ "test_config_rejects_dicom_destination_token_file",
	  "[destination d]\ntype = dicom\nhost = pacs\nport = 104\nae_title = PACS\ntoken_file = /x\n",
	  "t.conf:6: [destination d] token_file: not a key of type dicom destinations\n" },
	{ "test_config_rejects_folder_destination_without_path", "[destination d]\ntype = folder\n",
	  "t.conf:1: [destination d] path: missing; required for type folder\n" },
	{ "test_config_rejects_dicomweb_destination_without_url", "[destination d]\ntype = dicomweb\n",
	  "t.conf:1: [destination d] url: missing; required for type dicomweb\n" },
	{ "test_config_rejects_destination_send_unknown",
	  "[destination d]\ntype = folder\npath = /x\nsend = everything\n",
	  "t.conf:4: [destination d] send: items must be originals or results, not 'everything'\n" },
	{ "test_config_rejects_destination_send_empty",
	  "[destination d]\ntype = folder\npath = /x\nsend =\n",
	  "t.conf:4: [destination d] send: must list originals, results or both\n" },
	{ "test_config_rejects_destination_max_associations_zero",
	  "[destination d]\ntype = folder\npath = /x\nmax_associations = 0\n",
	  "t.conf:4: [destination d] max_associations: must be an integer between 1 and 64, not '0'\n" },
	{ "test_config_rejects_destination_max_associations_65",
	  "[destination d]\ntype = folder\npath = /x\nmax_associations = 65\n",
	  "t.conf:4: [destination d] max_associations: must be an integer between 1 and 64, not '65'\n" },
	{ "test_config_rejects_destination_max_age_unit",
	  "[destination d]\ntype = folder\npath = /x\nmax_age = 7y\n",
	  "t.conf:4: [destination d] max_age: must be a duration (45s, 30m, 12h, 7d, 2w or plain seconds) "
	  "between 1 and 315360000 seconds, not '7y'\n" },
	{ "test_config_rejects_destination_max_age_zero",
	  "[destination d]\ntype = folder\npath = /x\nmax_age = 0\n",
	  "t.conf:4: [destination d] max_age: must be a duration*\n" },
	{ "test_config_rejects_destination_timeout_zero",
	  "[destination d]\ntype = dicomweb\nurl = https://pacs/dicom-web\ntimeout_s = 0\n",
	  "t.conf:4: [destination d] timeout_s: must be an integer between 1 and 86400, not '0'\n" },
	{ "test_config_rejects_dicom_destination_max_pdu_small",
	  "[destination d]\ntype = dicom\nhost = pacs\nport = 104\nae_title = PACS\nmax_pdu = 1024\n",
	  "t.conf:6: [destination d] max_pdu: must be an integer between 4096 and 131072, not '1024'\n" },
	{ "test_config_rejects_folder_destination_max_pdu",
	  "[destination d]\ntype = folder\npath = /x\nmax_pdu = 16384\n",
	  "t.conf:4: [destination d] max_pdu: not a key of type folder destinations\n" },
	{ "test_config_rejects_dicomweb_destination_max_response_kb_zero",
	  "[destination d]\ntype = dicomweb\nurl = https://pacs/dicom-web\nmax_response_kb = 0\n",
	  "t.conf:4: [destination d] max_response_kb: must be an integer between 1 and 65536, not '0'\n" },
	{ "test_config_rejects_duplicate_destination",
	  "[destination d]\ntype = folder\npath = /x\n[destination d]\ntype = folder\npath = /y\n",
	  "t.conf:4: [destination d] duplicate section (first on line 1)\n" },

	/* file structure */
	{ "test_config_rejects_unknown_section", "[serverr]\nport = 1\n",
	  "t.conf:1: [serverr] unknown section (server, storage, study, analysis, "
	  "route NAME, backend NAME, destination NAME)\n" },
	{ "test_config_rejects_unknown_key", "[server]\nportt = 1\n",
	  "t.conf:2: [server] portt: unknown key\n" },
	{ "test_config_rejects_key_case_mismatch", "[server]\nPort = 1\n",
	  "t.conf:2: [server] Port: unknown key\n" },
	{ "test_config_rejects_duplicate_section", "[server]\nport = 1\n[storage]\n[server]\nport = 2\n",
	  "t.conf:4: [server] duplicate section (first on line 1)\n" },
	{ "test_config_rejects_duplicate_key", "[server]\nport = 1\n\nport = 2\n",
	  "t.conf:4: [server] port: duplicate key (first set on line 2)\n" },
	{ "test_config_rejects_named_fixed_section", "[server main]\nport = 1\n",
	  "t.conf:1: [server main] this section takes no name\n" },
	{ "test_config_rejects_key_outside_section", "port = 1\n[server]\n",
	  "t.conf:1: port: key outside of any section\n" },
	{ "test_config_rejects_line_without_equals", "[server]\nport 11112\n",
	  "t.conf:2: [server] expected 'key = value'\n" },
	{ "test_config_rejects_missing_key_name", "[server]\n= 11112\n",
	  "t.conf:2: [server] missing key name before '='\n" },
	{ "test_config_rejects_header_without_bracket", "[server\nport = 1\n",
	  "t.conf:1: section header without ']'\n" },
	{ "test_config_rejects_text_after_header", "[server] port = 1\n",
	  "t.conf:1: text after the section header\n" },
	{ "test_config_rejects_empty_header", "[]\n",
	  "t.conf:1: [] unknown section*\n" },
	{ "test_config_rejects_long_value_checked",
	  "[server]\nbind = "
#define X64 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  X64 X64 X64 X64 "\n",
	  "t.conf:2: [server] bind: longer than 255 characters\n" },

	/* many errors, all reported, in order, with their lines */
	{ "test_config_reports_every_error",
	  "; a comment\n"
	  "[server]\n"
	  "port = 0                ; bad\n"
	  "ae_title = " AE17 "\n"
	  "[bogus]\n"
	  "anything = goes        ; ignored: the section is reported\n"
	  "[study]\n"
	  "stable_seconds = 100\n"
	  "force_seconds = 50\n"
	  "[route r]\n"
	  "priority = 11\n"
	  "backend = missing\n"
	  "[backend b]\n"
	  "type = exec\n"
	  "[destination d]\n"
	  "type = dicom\n"
	  "host = pacs\n"
	  "port = 70000\n"
	  "ae_title = PACS\n",
	  "t.conf:3: [server] port: must be an integer between 1 and 65535, not '0'\n"
	  "t.conf:4: [server] ae_title: AE title '" AE17 "' is longer than 16 characters\n"
	  "t.conf:5: [bogus] unknown section*\n"
	  "t.conf:11: [route r] priority: must be an integer between 0 and 9, not '11'\n"
	  "t.conf:13: [backend b] command: missing; required for type exec\n"
	  "t.conf:18: [destination d] port: must be an integer between 1 and 65535, not '70000'\n"
	  "t.conf:9: [study] force_seconds: 50 is below stable_seconds (100)\n"
	  "t.conf:12: [route r] backend: no [backend missing] is defined\n" },
	{ "test_config_reports_errors_with_crlf_line_numbers",
	  "[server]\r\n\r\nport = 0\r\n[storage]\r\nmin_free_mb = -5\r\n",
	  "t.conf:3: [server] port: must be an integer between 1 and 65535, not '0'\n"
	  "t.conf:5: [storage] min_free_mb: must be an integer between 0 and 8796093022207, not '-5'\n" },
};

static void test_reject(void **state)
{
	const struct reject_case *tc = *state;
	struct config *c = (struct config *)0x1;
	char *errs = NULL;
	int r;

	r = load(tc->text, &c, &errs);
	assert_int_equal(r, -EINVAL);
	assert_null(c);
	assert_errors(errs, tc->errors);
	free(errs);
}

/* ------------------------------------------------------------------------ */
/* Accepted configurations                                                  */

struct accept_case {
	const char *name;
	const char *text;
	void (*check)(const struct config *c);
};

static void check_port_1(const struct config *c) { assert_int_equal(c->server.port, 1); }
static void check_port_65535(const struct config *c) { assert_int_equal(c->server.port, 65535); }

static void check_server_bounds(const struct config *c)
{
	assert_int_equal(c->server.max_associations, 1024);
	assert_int_equal(c->server.max_pdu, 4096);
	assert_int_equal(c->server.acse_timeout_s, 600);
	assert_int_equal(c->server.dimse_timeout_s, 1);
}

static void check_ae_16(const struct config *c)
{
	assert_string_equal(c->server.ae_title, "ABCDEFGHIJKLMNOP");
}

static void check_ae_spaces(const struct config *c)
{
	assert_string_equal(c->server.ae_title, "MY AE");
}

static void check_bind_ipv6(const struct config *c) { assert_string_equal(c->server.bind, "::1"); }
static void check_host_name(const struct config *c) { assert_string_equal(c->destinations[0].host, "pacs.example.org"); }
static void check_host_fqdn(const struct config *c) { assert_string_equal(c->destinations[0].host, "pacs-1.example.org."); }
static void check_host_label_63(const struct config *c)
{
	assert_string_equal(c->destinations[0].host,
	                    "a12345678901234567890123456789012345678901234567890123456789012.org");
}

static void check_aes_trimmed(const struct config *c)
{
	const struct config_list *l = &c->server.allowed_calling_aes;

	assert_int_equal(l->n, 3);
	assert_string_equal(l->items[0], "CR1");
	assert_string_equal(l->items[1], "DX 2");
	assert_string_equal(l->items[2], "MG3");
}

static void check_aes_64(const struct config *c)
{
	assert_int_equal(c->server.allowed_calling_aes.n, 64);
	assert_string_equal(c->server.allowed_calling_aes.items[63], "A64");
}

static void check_aes_empty(const struct config *c)
{
	assert_int_equal(c->server.allowed_calling_aes.n, 0);
	assert_null(c->server.allowed_calling_aes.items);
}

static void check_storage(const struct config *c)
{
	assert_string_equal(c->storage.spool_dir, "/srv/spool");
	assert_string_equal(c->storage.database, "/srv/q.db");
	assert_int_equal(c->storage.min_free_mb, 0);
	assert_int_equal(c->storage.retention_hours, 0);
}

static void check_min_free_large(const struct config *c)
{
	assert_true(c->storage.min_free_mb == INT64_C(8796093022207));
}

static void check_study_equal(const struct config *c)
{
	assert_int_equal(c->study.stable_seconds, 30);
	assert_int_equal(c->study.force_seconds, 30);
}

static void check_analysis(const struct config *c)
{
	assert_int_equal(c->analysis.workers, 64);
	assert_int_equal(c->analysis.max_attempts, 100);
	assert_string_equal(c->analysis.uid_root, "1.2.826.0.1.3680043.10");
}

static void check_uid_root_zero(const struct config *c)
{
	assert_string_equal(c->analysis.uid_root, "1.0.2");
}

static void check_uid_root_24(const struct config *c)
{
	assert_string_equal(c->analysis.uid_root, "1.2.3.4.5.6.7.8.9.10.111");
}

static void check_inline_comments(const struct config *c)
{
	assert_int_equal(c->server.port, 4242);
	assert_string_equal(c->server.ae_title, "PACS;X");
	assert_int_equal(c->server.allowed_calling_aes.n, 0);
	assert_int_equal(c->study.stable_seconds, 5);
	assert_string_equal(c->routes[0].name, "fracture");
	assert_int_equal(c->nroutes, 1);
}

static void check_indented(const struct config *c)
{
	assert_string_equal(c->server.ae_title, "X");
	assert_int_equal(c->server.port, 1234);
}

static void check_route_full(const struct config *c)
{
	const struct config_route *r = config_route_find(c, "hands");

	assert_non_null(r);
	assert_int_equal(r->line, 4);
	assert_int_equal(r->modality.n, 2);
	assert_string_equal(r->modality.items[1], "DX");
	assert_string_equal(r->body_part.items[0], "!CHEST");
	assert_string_equal(r->sop_class.items[0], "1.2.840.10008.5.1.4.1.1.1*");
	assert_string_equal(r->calling_ae.items[0], "CR?");
	assert_string_equal(r->study_description.items[0], "*hand*");
	assert_string_equal(r->series_description.items[0], "PA");
	assert_string_equal(r->laterality.items[0], "L");
	assert_string_equal(r->view_position.items[0], "PA");
	assert_string_equal(r->presentation_intent.items[0], "FOR PRESENTATION");
	assert_int_equal(r->patient_age_min, 0);
	assert_int_equal(r->patient_age_max, 150);
	assert_string_equal(r->backend, "ai");
	assert_int_equal(r->priority, 0);
	assert_int_equal(r->destinations.n, 1);
	assert_string_equal(r->destinations.items[0], "archive");
	assert_int_equal(r->min_images, 10000);
	assert_int_equal(r->expected_views.n, 2);
	assert_string_equal(r->sr_template, "mammo-cad");
	assert_string_equal(r->webhook, "https://hooks.example.org/triage?x=1");
}

static void check_route_defaults(const struct config *c)
{
	const struct config_route *r = config_route_find(c, "only");

	assert_int_equal(c->nroutes, 1);
	assert_non_null(r);
	assert_int_equal(r->modality.n, 0);
	assert_int_equal(r->patient_age_min, -1);
	assert_int_equal(r->patient_age_max, -1);
	assert_string_equal(r->backend, "reference");
	assert_int_equal(r->priority, 5);
	assert_int_equal(r->destinations.n, 0);
	assert_int_equal(r->min_images, 1);
	assert_int_equal(r->expected_views.n, 0);
	assert_string_equal(r->sr_template, "tid1500");
	assert_null(r->webhook);
	assert_non_null(config_backend_find(c, "reference"));
}

static void check_age_equal(const struct config *c)
{
	assert_int_equal(c->routes[0].patient_age_min, 18);
	assert_int_equal(c->routes[0].patient_age_max, 18);
}

static void check_exec_backend(const struct config *c)
{
	const struct config_backend *b = config_backend_find(c, "fx");

	assert_non_null(b);
	assert_string_equal(b->type, "exec");
	assert_int_equal(b->timeout_s, 86400);
	assert_string_equal(b->algorithm_name, "FractureFinder");
	assert_string_equal(b->algorithm_version, "2.1");
	assert_string_equal(config_kv_get(b->kv, b->nkv, "command"),
	                    "/usr/lib/triaged/backends/example --model 'frac ture' \"a b\" c\\ d");
	assert_string_equal(config_kv_get(b->kv, b->nkv, "max_output_kb"), "1048576");
	assert_int_equal(b->kv[0].line, 2);
}

static void check_http_backend(const struct config *c)
{
	const struct config_backend *b = config_backend_find(c, "cloud");

	assert_non_null(b);
	assert_string_equal(b->type, "http");
	assert_int_equal(b->timeout_s, 300);
	assert_null(b->algorithm_name);
	assert_string_equal(config_kv_get(b->kv, b->nkv, "url"), "https://ai.example.org/v1/jobs");
	assert_string_equal(config_kv_get(b->kv, b->nkv, "send"), "png");
	assert_string_equal(config_kv_get(b->kv, b->nkv, "poll_interval_s"), "2");
	assert_string_equal(config_kv_get(b->kv, b->nkv, "token_file"), "/etc/triaged/t");
	assert_string_equal(config_kv_get(b->kv, b->nkv, "max_response_kb"), "1024");
	assert_string_equal(config_kv_get(b->kv, b->nkv, "connect_timeout_s"), "10");
	assert_string_equal(config_kv_get(b->kv, b->nkv, "health_url"), "https://ai.example.org/health");
	assert_string_equal(config_kv_get(b->kv, b->nkv, "ca_file"), "/etc/triaged/ca.pem");
}

static void check_kserve_backend(const struct config *c)
{
	const struct config_backend *b = config_backend_find(c, "gpu");
	size_t i;

	assert_non_null(b);
	assert_string_equal(b->type, "kserve");
	assert_string_equal(config_kv_get(b->kv, b->nkv, "model"), "mammo_detector");
	assert_string_equal(config_kv_get(b->kv, b->nkv, "model_version"), "");
	assert_string_equal(config_kv_get(b->kv, b->nkv, "input_size"), "1024x832");
	assert_string_equal(config_kv_get(b->kv, b->nkv, "input_datatype"), "FP32");
	assert_string_equal(config_kv_get(b->kv, b->nkv, "score_threshold"), "0");
	assert_string_equal(config_kv_get(b->kv, b->nkv, "binary"), "no");
	/* defaults of absent keys are appended with line 0 */
	assert_string_equal(config_kv_get(b->kv, b->nkv, "normalize"), "0..1");
	assert_string_equal(config_kv_get(b->kv, b->nkv, "box_format"), "xyxy_normalized");
	assert_string_equal(config_kv_get(b->kv, b->nkv, "placement"), "center");
	assert_string_equal(config_kv_get(b->kv, b->nkv, "max_response_kb"), "65536");
	for (i = 0; i < b->nkv; i++)
		if (strcmp(b->kv[i].key, "normalize") == 0)
			assert_int_equal(b->kv[i].line, 0);
		else if (strcmp(b->kv[i].key, "model") == 0)
			assert_int_equal(b->kv[i].line, 4);
	assert_null(config_kv_get(b->kv, b->nkv, "labels"));
}

static void check_reference_backend_explicit(const struct config *c)
{
	const struct config_backend *b = config_backend_find(c, "reference");

	assert_int_equal(c->nbackends, 1);
	assert_non_null(b);
	assert_int_equal(b->line, 1);
	assert_int_equal(b->timeout_s, 10);
}

static void check_dicom_destination(const struct config *c)
{
	const struct config_destination *d = config_destination_find(c, "pacs");

	assert_non_null(d);
	assert_int_equal(d->line, 4);
	assert_string_equal(d->type, "dicom");
	assert_string_equal(d->host, "127.0.0.1");
	assert_int_equal(d->port, 4242);
	assert_string_equal(d->ae_title, "PACS");
	assert_string_equal(d->calling_ae, "NODE1");        /* server ae_title */
	assert_int_equal(d->send, CONFIG_SEND_ORIGINALS | CONFIG_SEND_RESULTS);
	assert_int_equal(d->max_associations, 2);
	assert_true(d->max_age_s == 7 * 86400);
	assert_int_equal(d->timeout_s, 60);
	assert_null(d->path);
	assert_null(d->url);
	assert_string_equal(config_kv_get(d->kv, d->nkv, "calling_ae"), "NODE1");
	assert_string_equal(config_kv_get(d->kv, d->nkv, "max_pdu"), "65536");
}

static void check_other_destinations(const struct config *c)
{
	const struct config_destination *f = config_destination_find(c, "archive");
	const struct config_destination *w = config_destination_find(c, "web");
	const struct config_destination *p = config_destination_find(c, "pacs2");

	assert_non_null(f);
	assert_string_equal(f->path, "/srv/out");
	assert_int_equal(f->send, CONFIG_SEND_RESULTS);
	assert_true(f->max_age_s == 12 * 3600);
	assert_int_equal(f->max_associations, 64);
	assert_non_null(w);
	assert_string_equal(w->url, "https://pacs.example.org/dicom-web");
	assert_string_equal(w->token_file, "/etc/triaged/pacs.token");
	assert_int_equal(w->send, CONFIG_SEND_ORIGINALS);
	assert_true(w->max_age_s == 90);
	assert_int_equal(w->timeout_s, 5);
	assert_string_equal(config_kv_get(w->kv, w->nkv, "max_response_kb"), "1024");
	assert_null(config_kv_get(w->kv, w->nkv, "ca_file"));
	assert_non_null(p);
	assert_string_equal(p->calling_ae, "OURS");
	assert_string_equal(p->host, "pacs.local");
	assert_true(p->max_age_s == 30 * 60);
	assert_int_equal(c->routes[0].destinations.n, 3);
}

static void check_long_value(const struct config *c)
{
	const struct config_list *l = &c->server.allowed_calling_aes;

	assert_int_equal(l->n, 40);
	assert_string_equal(l->items[0], "MODALITY_01");
	assert_string_equal(l->items[39], "MODALITY_40");
	assert_int_equal(c->server.port, 2000);
}

static void check_bom(const struct config *c) { assert_int_equal(c->server.port, 7); }

static void check_colon_separator(const struct config *c)
{
	assert_int_equal(c->server.port, 3000);
}

static void check_empty_sections(const struct config *c)
{
	assert_int_equal(c->server.port, 11112);
	assert_int_equal(c->nroutes, 1);
	assert_non_null(config_route_find(c, "empty"));
}

static const struct accept_case accept_cases[] = {
	{ "test_config_accepts_port_1", "[server]\nport = 1\n", check_port_1 },
	{ "test_config_accepts_port_65535", "[server]\nport = 65535\n", check_port_65535 },
	{ "test_config_accepts_server_bounds",
	  "[server]\nmax_associations = 1024\nmax_pdu = 4096\nacse_timeout_s = 600\n"
	  "dimse_timeout_s = 1\n", check_server_bounds },
	{ "test_config_accepts_ae_title_16_chars", "[server]\nae_title = ABCDEFGHIJKLMNOP\n",
	  check_ae_16 },
	{ "test_config_accepts_ae_title_inner_space", "[server]\nae_title =   MY AE  \n",
	  check_ae_spaces },
	{ "test_config_accepts_bind_ipv6", "[server]\nbind = ::1\n", check_bind_ipv6 },
	{ "test_config_accepts_host_name", "[destination d]\ntype = dicom\nport = 104\nae_title = PACS\nhost = pacs.example.org\n", check_host_name },
	{ "test_config_accepts_host_fqdn", "[destination d]\ntype = dicom\nport = 104\nae_title = PACS\nhost = pacs-1.example.org.\n", check_host_fqdn },
	{ "test_config_accepts_host_label_63_chars",
	  "[destination d]\ntype = dicom\nport = 104\nae_title = PACS\nhost = a12345678901234567890123456789012345678901234567890123456789012.org\n",
	  check_host_label_63 },
	{ "test_config_trims_list_items",
	  "[server]\nallowed_calling_aes =  CR1 ,, DX 2,\tMG3 ,\n", check_aes_trimmed },
	{ "test_config_accepts_64_list_items",
	  "[server]\nallowed_calling_aes = "
	  "A1,A2,A3,A4,A5,A6,A7,A8,A9,A10,A11,A12,A13,A14,A15,A16,A17,A18,A19,A20,"
	  "A21,A22,A23,A24,A25,A26,A27,A28,A29,A30,A31,A32,A33,A34,A35,A36,A37,A38,"
	  "A39,A40,A41,A42,A43,A44,A45,A46,A47,A48,A49,A50,A51,A52,A53,A54,A55,A56,"
	  "A57,A58,A59,A60,A61,A62,A63,A64\n", check_aes_64 },
	{ "test_config_accepts_empty_list", "[server]\nallowed_calling_aes =   ; any\n",
	  check_aes_empty },
	{ "test_config_accepts_storage_zero_bounds",
	  "[storage]\nspool_dir = /srv/spool\ndatabase = /srv/q.db\nmin_free_mb = 0\n"
	  "retention_hours = 0\n", check_storage },
	{ "test_config_accepts_min_free_mb_max", "[storage]\nmin_free_mb = 8796093022207\n",
	  check_min_free_large },
	{ "test_config_accepts_force_equal_stable",
	  "[study]\nstable_seconds = 30\nforce_seconds = 30\n", check_study_equal },
	{ "test_config_accepts_analysis_bounds",
	  "[analysis]\nworkers = 64\nmax_attempts = 100\nuid_root = 1.2.826.0.1.3680043.10\n",
	  check_analysis },
	{ "test_config_accepts_uid_root_zero_component", "[analysis]\nuid_root = 1.0.2\n",
	  check_uid_root_zero },
	{ "test_config_accepts_uid_root_24_chars", "[analysis]\nuid_root = 1.2.3.4.5.6.7.8.9.10.111\n",
	  check_uid_root_24 },
	{ "test_config_strips_inline_comments",
	  "[server]                ; the listener\n"
	  "port = 4242             ; comment\n"
	  "ae_title = PACS;X\t; ';' not after whitespace is kept\n"
	  "allowed_calling_aes =   ; empty\n"
	  "# full-line comment\n"
	  "; another one\n"
	  "   ; indented comment\n"
	  "[study]\n"
	  "stable_seconds = 5\t;tab before\n"
	  "[route fracture]        ; every route is one rule\n"
	  "modality = CR\n",
	  check_inline_comments },
	{ "test_config_indented_key_is_not_a_continuation",
	  "[server]\nae_title = X\n    port = 1234\n", check_indented },
	{ "test_config_accepts_every_route_key",
	  "[backend ai]\ntype = reference\n"
	  "\n"
	  "[route hands]\n"
	  "modality = CR, DX\n"
	  "body_part = !CHEST\n"
	  "sop_class = 1.2.840.10008.5.1.4.1.1.1*\n"
	  "calling_ae = CR?\n"
	  "study_description = *hand*\n"
	  "series_description = PA\n"
	  "laterality = L\n"
	  "view_position = PA\n"
	  "presentation_intent = FOR PRESENTATION\n"
	  "patient_age_min = 0\n"
	  "patient_age_max = 150\n"
	  "backend = ai\n"
	  "priority = 0\n"
	  "destinations = archive\n"
	  "min_images = 10000\n"
	  "expected_views = RCC, LCC\n"
	  "sr_template = mammo-cad\n"
	  "webhook = https://hooks.example.org/triage?x=1\n"
	  "[destination archive]\ntype = folder\npath = /srv/out\n",
	  check_route_full },
	{ "test_config_route_defaults_when_keys_absent", "[route only]\n", check_route_defaults },
	{ "test_config_accepts_age_min_equal_max",
	  "[route r]\npatient_age_min = 18\npatient_age_max = 18\n", check_age_equal },
	{ "test_config_accepts_exec_backend",
	  "[backend fx]\n"
	  "type = exec\n"
	  "command = /usr/lib/triaged/backends/example --model 'frac ture' \"a b\" c\\ d\n"
	  "max_output_kb = 1048576\n"
	  "timeout_s = 86400\n"
	  "algorithm_name = FractureFinder\n"
	  "algorithm_version = 2.1\n",
	  check_exec_backend },
	{ "test_config_accepts_http_backend",
	  "[backend cloud]\ntype = http\nurl = https://ai.example.org/v1/jobs\n"
	  "token_file = /etc/triaged/t\nsend = png\nalgorithm_name =\n"
	  "health_url = https://ai.example.org/health\nca_file = /etc/triaged/ca.pem\n",
	  check_http_backend },
	{ "test_config_accepts_kserve_backend",
	  "[backend gpu]\n"
	  "type = kserve\n"
	  "url = http://inference.local:8000\n"
	  "model = mammo_detector\n"
	  "model_version =\n"
	  "input = serving_default_input:0\n"
	  "input_size = 1024x832\n"
	  "input_datatype = FP32\n"
	  "outputs = boxes, scores, labels\n"
	  "score_threshold = 0\n"
	  "binary = no\n",
	  check_kserve_backend },
	{ "test_config_accepts_explicit_reference_backend",
	  "[backend reference]\ntype = reference\ntimeout_s = 10\n",
	  check_reference_backend_explicit },
	{ "test_config_accepts_dicom_destination",
	  "[server]\nae_title = NODE1\n"
	  "\n"
	  "[destination pacs]\ntype = dicom\nhost = 127.0.0.1\nport = 4242\nae_title = PACS\n",
	  check_dicom_destination },
	{ "test_config_accepts_other_destinations",
	  "[route r]\ndestinations = archive, web, pacs2\n"
	  "[destination archive]\ntype = folder\npath = /srv/out\nsend = results\n"
	  "max_age = 12h\nmax_associations = 64\n"
	  "[destination web]\ntype = dicomweb\nurl = https://pacs.example.org/dicom-web\n"
	  "token_file = /etc/triaged/pacs.token\nsend = ORIGINALS\nmax_age = 90\ntimeout_s = 5\n"
	  "[destination pacs2]\ntype = dicom\nhost = pacs.local\nport = 104\n"
	  "ae_title = PACS\ncalling_ae = OURS\nmax_age = 30m\n",
	  check_other_destinations },
	{ "test_config_accepts_value_longer_than_inih_line",
	  "[server]\nallowed_calling_aes = "
	  "MODALITY_01, MODALITY_02, MODALITY_03, MODALITY_04, MODALITY_05, "
	  "MODALITY_06, MODALITY_07, MODALITY_08, MODALITY_09, MODALITY_10, "
	  "MODALITY_11, MODALITY_12, MODALITY_13, MODALITY_14, MODALITY_15, "
	  "MODALITY_16, MODALITY_17, MODALITY_18, MODALITY_19, MODALITY_20, "
	  "MODALITY_21, MODALITY_22, MODALITY_23, MODALITY_24, MODALITY_25, "
	  "MODALITY_26, MODALITY_27, MODALITY_28, MODALITY_29, MODALITY_30, "
	  "MODALITY_31, MODALITY_32, MODALITY_33, MODALITY_34, MODALITY_35, "
	  "MODALITY_36, MODALITY_37, MODALITY_38, MODALITY_39, MODALITY_40   ; long\n"
	  "port = 2000\n",
	  check_long_value },
	{ "test_config_accepts_utf8_bom", "\xEF\xBB\xBF[server]\nport = 7\n", check_bom },
	{ "test_config_accepts_colon_separator", "[server]\nport: 3000\n", check_colon_separator },
	{ "test_config_accepts_empty_sections",
	  "[server]\n[storage]\n[study]\n[analysis]\n[route empty]\n", check_empty_sections },
};

static void test_accept(void **state)
{
	const struct accept_case *tc = *state;
	struct config *c = load_ok(tc->text);

	tc->check(c);
	assert_null(config_unref(c));
}

/* ------------------------------------------------------------------------ */
/* Durations                                                                */

static void test_config_parses_durations(void **state)
{
	static const struct { const char *s; int64_t v; } good[] = {
		{ "7d", 604800 }, { "12h", 43200 }, { "30m", 1800 }, { "45s", 45 },
		{ "90", 90 }, { "0", 0 }, { "0d", 0 }, { "007s", 7 }, { "2w", 1209600 },
		{ "106751991167300d", INT64_C(106751991167300) * 86400 },
		{ "9223372036854775807", INT64_MAX },
	};
	static const char *const bad[] = {
		"", "d", "7x", "-1", "+7", "7 d", " 7d", "7d ", "1.5h", "7dd", "7D",
		"7W", "1w1d", "9223372036854775808", "106751991167301d", "99999999999999999999s",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int64_t v = -1;

		assert_int_equal(config_parse_duration(good[i].s, &v), 0);
		assert_true(v == good[i].v);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t v = -1;

		if (config_parse_duration(bad[i], &v) != -EINVAL) {
			print_error("accepted bad duration '%s'\n", bad[i]);
			fail();
		}
		assert_true(v == -1);
	}
	assert_int_equal(config_parse_duration(NULL, NULL), -EINVAL);
}

/* ------------------------------------------------------------------------ */
/* Defaults                                                                 */

static void assert_default_routes(const struct config *c)
{
	const struct config_route *r;
	const struct config_backend *b;

	assert_int_equal(c->nroutes, 3);
	r = config_route_find(c, "fracture");
	assert_non_null(r);
	assert_int_equal(r->modality.n, 2);
	assert_string_equal(r->modality.items[0], "CR");
	assert_string_equal(r->modality.items[1], "DX");
	assert_string_equal(r->backend, "reference");
	assert_int_equal(r->priority, 5);
	assert_int_equal(r->body_part.n, 0);
	assert_int_equal(r->patient_age_max, -1);

	r = config_route_find(c, "bone-age");
	assert_non_null(r);
	assert_int_equal(r->modality.n, 2);
	assert_string_equal(r->body_part.items[0], "HAND");
	assert_int_equal(r->patient_age_min, -1);
	assert_int_equal(r->patient_age_max, 18);
	assert_string_equal(r->backend, "reference");

	r = config_route_find(c, "mammo");
	assert_non_null(r);
	assert_int_equal(r->modality.n, 1);
	assert_string_equal(r->modality.items[0], "MG");
	assert_string_equal(r->presentation_intent.items[0], "FOR PRESENTATION");
	assert_int_equal(r->expected_views.n, 4);
	assert_string_equal(r->expected_views.items[0], "RCC");
	assert_string_equal(r->expected_views.items[3], "LMLO");
	assert_string_equal(r->sr_template, "tid1500");
	assert_string_equal(r->backend, "reference");

	b = config_backend_find(c, "reference");
	assert_non_null(b);
	assert_string_equal(b->type, "reference");
	assert_int_equal(b->timeout_s, 300);
}

static void assert_default_values(const struct config *c)
{
	assert_string_equal(c->server.ae_title, "TRIAGED");
	assert_int_equal(c->server.port, 11112);
	assert_string_equal(c->server.bind, "0.0.0.0");
	assert_int_equal(c->server.max_associations, 16);
	assert_int_equal(c->server.allowed_calling_aes.n, 0);
	assert_int_equal(c->server.max_pdu, 131072);
	assert_int_equal(c->server.acse_timeout_s, 10);
	assert_int_equal(c->server.dimse_timeout_s, 60);
	assert_string_equal(c->storage.spool_dir, "/var/lib/triaged/spool");
	assert_string_equal(c->storage.database, "/var/lib/triaged/triaged.db");
	assert_true(c->storage.min_free_mb == 1024);
	assert_int_equal(c->storage.retention_hours, 72);
	assert_int_equal(c->study.stable_seconds, 20);
	assert_int_equal(c->study.force_seconds, 3600);
	assert_int_equal(c->analysis.workers, 2);
	assert_int_equal(c->analysis.max_attempts, 5);
	assert_string_equal(c->analysis.uid_root, "");
	assert_int_equal(c->ndestinations, 0);
	assert_int_equal(c->refs, 1);
}

static void test_config_load_null_gives_embedded_defaults(void **state)
{
	struct config *c = NULL;
	char *errs = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&errs, &n);

	(void)state;
	assert_int_equal(config_load(NULL, &c, f), 0);
	fclose(f);
	assert_string_equal(errs, "");
	free(errs);
	assert_non_null(c);
	assert_null(c->path);
	assert_default_values(c);
	assert_default_routes(c);
	assert_int_equal(c->nbackends, 1);
	config_unref(c);
}

static void test_config_defaults_when_keys_absent(void **state)
{
	struct config *c = load_ok("");

	(void)state;
	assert_default_values(c);
	assert_default_routes(c);
	config_unref(c);
}

static void test_config_injects_default_routes_without_route(void **state)
{
	struct config *c = load_ok("[server]\nport = 5000\n"
	                           "[destination pacs]\ntype = folder\npath = /x\n");

	(void)state;
	assert_int_equal(c->server.port, 5000);
	assert_default_routes(c);
	assert_int_equal(c->ndestinations, 1);
	config_unref(c);
}

static void test_config_no_default_routes_with_a_route(void **state)
{
	struct config *c = load_ok("[route mine]\nmodality = CT\n");

	(void)state;
	assert_int_equal(c->nroutes, 1);
	assert_null(config_route_find(c, "fracture"));
	assert_non_null(config_backend_find(c, "reference"));
	assert_int_equal(c->nbackends, 1);
	config_unref(c);
}

static void test_config_no_default_routes_after_bad_route(void **state)
{
	struct config *c = NULL;
	char *errs = NULL;

	(void)state;
	assert_int_equal(load("[route]\n", &c, &errs), -EINVAL);
	/* only the user's error: the built-in routes were not parsed */
	assert_errors(errs, "t.conf:1: [route] a name is required: [route NAME]\n");
	free(errs);
}

static void test_config_route_can_use_injected_reference(void **state)
{
	struct config *c = load_ok("[backend other]\ntype = exec\ncommand = /bin/true\n"
	                           "[route a]\nbackend = reference\n"
	                           "[route b]\nbackend = other\n");

	(void)state;
	assert_int_equal(c->nbackends, 2);
	assert_string_equal(c->backends[1].name, "reference");
	assert_string_equal(config_route_find(c, "b")->backend, "other");
	config_unref(c);
}

/* ------------------------------------------------------------------------ */
/* The shipped conf/triaged.conf                                            */

static char *source_path(const char *rel)
{
	const char *dir = getenv("TRIAGED_SOURCE_DIR");
	char *path = NULL;

	if (!dir || !*dir)
		return NULL;
	assert_true(asprintf(&path, "%s/%s", dir, rel) > 0);
	return path;
}

static void test_config_loads_shipped_conf(void **state)
{
	char *path = source_path("conf/triaged.conf");
	struct config *c = NULL;
	char *errs = NULL;
	size_t n = 0;
	FILE *f;

	(void)state;
	if (!path) {
		print_message("TRIAGED_SOURCE_DIR is not set\n");
		skip();
	}
	f = open_memstream(&errs, &n);
	assert_int_equal(config_load(path, &c, f), 0);
	fclose(f);
	assert_string_equal(errs, "");
	assert_non_null(c);
	assert_string_equal(c->path, path);
	/* the shipped file states every default */
	assert_default_values(c);
	assert_default_routes(c);
	assert_int_equal(c->nbackends, 1);
	assert_int_equal(c->backends[0].nkv, 3);      /* type, task and timeout_s, from the file */
	free(errs);
	free(path);
	config_unref(c);
}

/* Uncomment the example sections of the shipped file ("# [section]" and
 * "# key = value" lines): they must be valid too. */
static void test_config_shipped_conf_examples_are_valid(void **state)
{
	char *path = source_path("conf/triaged.conf");
	char *text = NULL, *line = NULL;
	size_t tn = 0, ln = 0;
	struct config *c;
	FILE *in, *out;

	(void)state;
	if (!path)
		skip();
	in = fopen(path, "r");
	assert_non_null(in);
	out = open_memstream(&text, &tn);
	while (getline(&line, &ln, in) > 0) {
		const char *s = line + 2;
		bool example = false;

		if (strncmp(line, "# [", 3) == 0) {
			example = true;
		} else if (strncmp(line, "# ", 2) == 0 && *s >= 'a' && *s <= 'z') {
			while ((*s >= 'a' && *s <= 'z') || *s == '_')
				s++;
			example = strncmp(s, " =", 2) == 0;
		}
		fputs(example ? line + 2 : line, out);
	}
	fclose(out);
	fclose(in);
	free(line);
	c = load_ok(text);
	assert_int_equal(c->nbackends, 4);
	assert_int_equal(c->ndestinations, 3);
	assert_non_null(config_backend_find(c, "mammo-gpu"));
	assert_string_equal(config_destination_find(c, "pacs")->calling_ae, "TRIAGED");
	assert_int_equal(config_destination_find(c, "archive")->send, CONFIG_SEND_RESULTS);
	free(text);
	free(path);
	config_unref(c);
}

/* ------------------------------------------------------------------------ */
/* Files                                                                    */

static void test_config_load_missing_file(void **state)
{
	struct config *c = (struct config *)0x1;
	char *errs = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&errs, &n);

	(void)state;
	assert_int_equal(config_load("/nonexistent/triaged.conf", &c, f), -ENOENT);
	fclose(f);
	assert_null(c);
	assert_string_equal(errs, "/nonexistent/triaged.conf: cannot open: No such file or directory\n");
	free(errs);
}

static char *write_temp(const char *data, size_t len)
{
	char *path = strdup("/tmp/test_config.XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

static void test_config_load_file_reports_its_name(void **state)
{
	static const char text[] = "[server]\n\n\nport = 0\n";
	char *path = write_temp(text, sizeof(text) - 1);
	char *errs = NULL, *expect = NULL;
	struct config *c = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&errs, &n);

	(void)state;
	assert_int_equal(config_load(path, &c, f), -EINVAL);
	fclose(f);
	assert_null(c);
	assert_true(asprintf(&expect, "%s:4: [server] port: must be an integer "
	                     "between 1 and 65535, not '0'\n", path) > 0);
	assert_string_equal(errs, expect);
	unlink(path);
	free(path);
	free(errs);
	free(expect);
}

static void test_config_load_file_rejects_nul_byte(void **state)
{
	static const char text[] = "[server]\nport = 1\0\n";
	char *path = write_temp(text, sizeof(text) - 1);
	struct config *c = NULL;

	(void)state;
	assert_int_equal(config_load(path, &c, NULL), -EINVAL);
	assert_null(c);
	unlink(path);
	free(path);
}

static void test_config_rejects_too_long_line(void **state)
{
	struct config *c = NULL;
	char *text = NULL, *errs = NULL;

	(void)state;
	assert_true(asprintf(&text, "[server]\nbind = %05000d\nport = 0\n", 1) > 0);
	assert_int_equal(load(text, &c, &errs), -EINVAL);
	assert_null(c);
	assert_errors(errs,
	              "t.conf:2: [server] line longer than 4096 characters\n"
	              "t.conf:3: [server] port: must be an integer between 1 and 65535, not '0'\n");
	free(errs);
	free(text);
}

static void test_config_rejects_65_routes(void **state)
{
	struct config *c = NULL;
	char *text = NULL, *errs = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&text, &n);
	int i;

	(void)state;
	for (i = 1; i <= 65; i++)
		fprintf(f, "[route r%d]\nmodality = CT\n", i);
	fclose(f);
	assert_int_equal(load(text, &c, &errs), -EINVAL);
	assert_null(c);
	/* the 65th header is on line 129; its key is skipped, not reported */
	assert_errors(errs, "t.conf:129: [route r65] more than 64 route sections\n");
	free(errs);
	free(text);
}

static void test_config_list_split(void **state)
{
	static const struct {
		const char *value;
		size_t n;
		const char *items[4];
	} cases[] = {
		{ "", 0, { NULL } },
		{ " , ,", 0, { NULL } },
		{ "mass", 1, { "mass" } },
		{ " mass , calcification,, architectural distortion ,", 3,
		  { "mass", "calcification", "architectural distortion" } },
	};
	struct config_list l;
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(config_list_split(cases[i].value, &l), 0);
		assert_int_equal(l.n, cases[i].n);
		for (j = 0; j < l.n; j++)
			assert_string_equal(l.items[j], cases[i].items[j]);
		config_list_done(&l);
		assert_int_equal(l.n, 0);
		assert_null(l.items);
	}
	assert_int_equal(config_list_split(NULL, &l), -EINVAL);
	assert_int_equal(config_list_split("a", NULL), -EINVAL);
	config_list_done(NULL);
}

static void test_config_errors_without_stream(void **state)
{
	struct config *c = NULL;

	(void)state;
	assert_int_equal(config_load_string("[server]\nport = 0\n", "x", &c, NULL), -EINVAL);
	assert_null(c);
	assert_int_equal(config_load_string(NULL, "x", &c, NULL), -EINVAL);
	assert_int_equal(config_load_string("", "x", NULL, NULL), -EINVAL);
}

/* ------------------------------------------------------------------------ */
/* Reference counting and lookups                                           */

static void test_config_ref_unref(void **state)
{
	struct config *c = load_ok("");

	(void)state;
	assert_null(config_ref(NULL));
	assert_null(config_unref(NULL));
	assert_ptr_equal(config_ref(c), c);
	assert_int_equal(c->refs, 2);
	assert_null(config_unref(c));
	assert_int_equal(c->refs, 1);
	assert_null(config_unref(c));       /* freed: ASan checks */
}

static void *ref_thread(void *arg)
{
	struct config *c = arg;
	int i;

	for (i = 0; i < 100000; i++) {
		config_ref(c);
		config_unref(c);
	}
	return NULL;
}

static void test_config_ref_unref_is_thread_safe(void **state)
{
	struct config *c = load_ok("");
	pthread_t t[4];
	int i;

	(void)state;
	for (i = 0; i < 4; i++) {
		config_ref(c);
		assert_int_equal(pthread_create(&t[i], NULL, ref_thread, c), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		config_unref(c);
	}
	assert_int_equal(c->refs, 1);
	config_unref(c);
}

static void test_config_lookups(void **state)
{
	struct config *c = load_ok("[server]\nallowed_calling_aes = CR1, dx2\n"
	                           "[destination d]\ntype = folder\npath = /x\n");
	const struct config_destination *d;

	(void)state;
	assert_non_null(config_route_find(c, "mammo"));
	assert_null(config_route_find(c, "Mammo"));
	assert_null(config_route_find(c, NULL));
	assert_null(config_route_find(NULL, "mammo"));
	assert_non_null(config_backend_find(c, "reference"));
	assert_null(config_backend_find(c, "nope"));
	d = config_destination_find(c, "d");
	assert_non_null(d);
	assert_null(config_destination_find(c, "e"));
	assert_string_equal(config_kv_get(d->kv, d->nkv, "path"), "/x");
	assert_string_equal(config_kv_get(d->kv, d->nkv, "max_age"), "7d");
	assert_null(config_kv_get(d->kv, d->nkv, "host"));
	assert_null(config_kv_get(NULL, 0, "x"));
	assert_int_equal(d->timeout_s, 0);      /* not a key of folders */

	assert_true(config_list_contains(&c->server.allowed_calling_aes, "CR1"));
	assert_true(config_list_contains(&c->server.allowed_calling_aes, "cr1"));
	assert_true(config_list_contains(&c->server.allowed_calling_aes, "DX2             "));
	assert_true(config_list_contains(&c->server.allowed_calling_aes, " DX2"));
	assert_false(config_list_contains(&c->server.allowed_calling_aes, "DX"));
	assert_false(config_list_contains(&c->server.allowed_calling_aes, "CR12"));
	assert_false(config_list_contains(&c->server.allowed_calling_aes, ""));
	assert_false(config_list_contains(&c->server.allowed_calling_aes, NULL));
	assert_false(config_list_contains(NULL, "CR1"));
	config_unref(c);
}

/* ------------------------------------------------------------------------ */

static const struct CMUnitTest plain_tests[] = {
	cmocka_unit_test(test_config_parses_durations),
	cmocka_unit_test(test_config_load_null_gives_embedded_defaults),
	cmocka_unit_test(test_config_defaults_when_keys_absent),
	cmocka_unit_test(test_config_injects_default_routes_without_route),
	cmocka_unit_test(test_config_no_default_routes_with_a_route),
	cmocka_unit_test(test_config_no_default_routes_after_bad_route),
	cmocka_unit_test(test_config_route_can_use_injected_reference),
	cmocka_unit_test(test_config_loads_shipped_conf),
	cmocka_unit_test(test_config_shipped_conf_examples_are_valid),
	cmocka_unit_test(test_config_load_missing_file),
	cmocka_unit_test(test_config_load_file_reports_its_name),
	cmocka_unit_test(test_config_load_file_rejects_nul_byte),
	cmocka_unit_test(test_config_rejects_too_long_line),
	cmocka_unit_test(test_config_rejects_65_routes),
	cmocka_unit_test(test_config_list_split),
	cmocka_unit_test(test_config_errors_without_stream),
	cmocka_unit_test(test_config_ref_unref),
	cmocka_unit_test(test_config_ref_unref_is_thread_safe),
	cmocka_unit_test(test_config_lookups),
};

int main(void)
{
	size_t nreject = sizeof(reject_cases) / sizeof(reject_cases[0]);
	size_t naccept = sizeof(accept_cases) / sizeof(accept_cases[0]);
	size_t nplain = sizeof(plain_tests) / sizeof(plain_tests[0]);
	size_t i, n = 0;
	struct CMUnitTest *tests;
	int r;

	tests = calloc(nreject + naccept + nplain, sizeof(*tests));
	if (!tests)
		return 1;
	for (i = 0; i < nreject; i++)
		tests[n++] = (struct CMUnitTest){ .name = reject_cases[i].name,
			.test_func = test_reject,
			.initial_state = (void *)(uintptr_t)&reject_cases[i] };
	for (i = 0; i < naccept; i++)
		tests[n++] = (struct CMUnitTest){ .name = accept_cases[i].name,
			.test_func = test_accept,
			.initial_state = (void *)(uintptr_t)&accept_cases[i] };
	for (i = 0; i < nplain; i++)
		tests[n++] = plain_tests[i];
	r = _cmocka_run_group_tests("config", tests, n, NULL, NULL);
	free(tests);
	return r;
}
