/*
 * backoff.h - retry arithmetic, pure (no clock), shared by analysis and
 * delivery.
 */
#ifndef TRIAGED_BACKOFF_H
#define TRIAGED_BACKOFF_H

#include <stdint.h>

/*
 * Seconds to wait before attempt ATTEMPT+1 after ATTEMPT (>= 1) failed:
 * BASE * 2^(ATTEMPT-1), capped at MAX, plus up to 10 % spread derived from
 * SALT (e.g. a job id) so that many jobs failing together do not retry
 * together. Never below 1, never above MAX.
 */
int64_t backoff_delay_s(int attempt, int base_s, int max_s, uint64_t salt);

#endif
