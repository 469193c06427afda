/*
 * uid.h - DICOM UID validation (before a UID names a file) and generation.
 */
#ifndef TRIAGED_UID_H
#define TRIAGED_UID_H

#include <stdbool.h>
#include <stddef.h>

#define UID_MAX 64

/*
 * true when S is a valid DICOM UID (PS3.5 9.1): 1..64 characters of
 * 0-9 and '.', components separated by single dots, no empty component,
 * no leading zero in a multi-digit component. Such a string can never
 * contain '/', "..", or a NUL before its end, so it is safe as a file name.
 */
bool uid_valid(const char *s);

/*
 * As uid_valid(), but tolerant of what real modalities send and DCMTK
 * keeps: one trailing space or NUL pad, and leading zeros in a component
 * (common in legacy data). Still only digits and single dots, 1..64
 * characters, so still safe as a file name. Writes the trimmed UID to OUT
 * (UID_MAX + 1 bytes). Returns 0, or -EINVAL.
 */
int uid_normalize(const char *s, char *out);

/*
 * Make a new UID into OUT (UID_MAX + 1 bytes): ROOT.<time>.<random> when
 * ROOT is a non-empty root (<= 24 characters), else 2.25.<128-bit random
 * as decimal>. Returns 0, or a negative errno.
 */
int uid_generate(const char *root, char *out);

#endif
