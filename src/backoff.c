/*
 * backoff.c - exponential backoff with a deterministic spread.
 */
#include "backoff.h"

int64_t
backoff_delay_s(int attempt, int base_s, int max_s, uint64_t salt)
{
	int64_t d, spread;

	if (base_s < 1)
		base_s = 1;
	if (max_s < base_s)
		max_s = base_s;
	if (attempt < 1)
		attempt = 1;
	d = base_s;
	for (int i = 1; i < attempt && d < max_s; i++)
		d *= 2;
	if (d > max_s)
		d = max_s;
	/* 0..10 % more, from a mix of the salt */
	salt ^= salt >> 33;
	salt *= 0xff51afd7ed558ccdULL;
	salt ^= salt >> 33;
	spread = (int64_t)(salt % 11) * d / 100;
	d += spread;
	return d > max_s ? max_s : d;
}
