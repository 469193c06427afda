/*
 * text.h - what peers send, made fit for a log line or a job's reason, and
 * the one integer parser of backend/destination keys.
 */
#ifndef TRIAGED_TEXT_H
#define TRIAGED_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Copy S (LEN bytes, not necessarily NUL-terminated) into DST (N bytes) as
 * one line of valid, printable UTF-8: with LINES, line breaks become " | ";
 * other control characters become spaces (runs collapsed); invalid,
 * overlong or surrogate sequences become '?'. Returns the length.
 */
size_t text_sanitize(char *dst, size_t n, const char *s, size_t len, bool lines);

/* V as a decimal long in [MIN, MAX]; DEF when V is NULL or empty.
 * 0 or -EINVAL. */
int text_parse_long(const char *v, long def, long min, long max, long *out);

#endif
