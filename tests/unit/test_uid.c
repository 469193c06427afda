/* test_uid.c - UID validation (before a UID names a file) and generation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "uid.h"

static void
test_uid_valid_accepts_conformant_uids(void **state)
{
	static const char *const good[] = {
		"1.2.840.10008.5.1.4.1.1.1", "0", "1.0.1", "2.25.329800735698586629295641978511506172918",
		/* 64 characters exactly */
		"1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.2411",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(strlen(good[i]) <= 64, 1);
		assert_true(uid_valid(good[i]));
	}
}

static void
test_uid_valid_refuses_path_tricks_and_junk(void **state)
{
	static const char *const bad[] = {
		"", ".", "..", "../../x", "1.2/../../etc", "/etc/passwd", "1.2.", ".1.2", "1..2",
		"1.2.abc", "1.2.3 ", " 1.2", "1.2\n3", "1.2.3\\4", "1.02", "01.2",
		/* 65 characters */
		"1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24111",
		/* 70 digits */
		"1234567890123456789012345678901234567890123456789012345678901234567890",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(uid_valid(bad[i]));
	assert_false(uid_valid(NULL));
}

static void
test_uid_normalize_trims_one_pad_and_tolerates_leading_zeros(void **state)
{
	char out[UID_MAX + 1];
	(void)state;
	assert_int_equal(uid_normalize("1.2.3 ", out), 0);
	assert_string_equal(out, "1.2.3");
	assert_int_equal(uid_normalize("1.02.3", out), 0);    /* legacy data */
	assert_string_equal(out, "1.02.3");
	assert_int_equal(uid_normalize("1.2.3  ", out), -EINVAL);
	assert_int_equal(uid_normalize("../../x", out), -EINVAL);
	assert_int_equal(uid_normalize("1.2/3", out), -EINVAL);
	assert_int_equal(uid_normalize("", out), -EINVAL);
	assert_int_equal(uid_normalize(
	    "1234567890123456789012345678901234567890123456789012345678901234567890", out),
	    -EINVAL);
}

static void
test_uid_generate_2_25_is_valid_and_unique(void **state)
{
	char a[UID_MAX + 1], b[UID_MAX + 1];
	(void)state;
	for (int i = 0; i < 200; i++) {
		assert_int_equal(uid_generate(NULL, a), 0);
		assert_int_equal(uid_generate("", b), 0);
		assert_true(uid_valid(a));
		assert_true(uid_valid(b));
		assert_memory_equal(a, "2.25.", 5);
		assert_string_not_equal(a, b);
	}
}

static void
test_uid_generate_with_root(void **state)
{
	char a[UID_MAX + 1], b[UID_MAX + 1];
	(void)state;
	assert_int_equal(uid_generate("1.2.826.0.1.3680043.10", a), 0);
	assert_int_equal(uid_generate("1.2.826.0.1.3680043.10", b), 0);
	assert_true(uid_valid(a));
	assert_memory_equal(a, "1.2.826.0.1.3680043.10.", 23);
	assert_string_not_equal(a, b);
	/* a 24-character root still leaves room */
	assert_int_equal(uid_generate("1.2.3.4.5.6.7.8.9.10.111", a), 0);
	assert_true(uid_valid(a));
	assert_int_equal(uid_generate("1.2.3.4.5.6.7.8.9.10.1111", a), -EINVAL);
	assert_int_equal(uid_generate("1.2..3", a), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uid_valid_accepts_conformant_uids),
		cmocka_unit_test(test_uid_valid_refuses_path_tricks_and_junk),
		cmocka_unit_test(test_uid_normalize_trims_one_pad_and_tolerates_leading_zeros),
		cmocka_unit_test(test_uid_generate_2_25_is_valid_and_unique),
		cmocka_unit_test(test_uid_generate_with_root),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
