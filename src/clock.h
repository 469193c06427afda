/*
 * clock.h - the monotonic clock in milliseconds: deadlines and durations
 * (never wall time). Inline, so that the C core and the C++ DICOM code
 * share it without a link dependency between their libraries.
 */
#ifndef TRIAGED_CLOCK_H
#define TRIAGED_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
