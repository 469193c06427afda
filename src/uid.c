/*
 * uid.c - UID validation and generation.
 *
 * DESIGN: every UID a peer sends is checked here before it becomes part of a
 * path in the spool. The character set (digits and '.') and the length
 * limit are what make a UID safe as a file name; the other PS3.5 rules
 * (leading zeros, empty components) are enforced only for UIDs we generate
 * ourselves and reported, not refused, for received ones (uid_normalize).
 */
#include "uid.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static int
uid_check(const char *s, size_t len, bool strict)
{
	size_t comp = 0;      /* length of the current component */
	char first = 0;

	if (len == 0 || len > UID_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (comp == 0)
				return -EINVAL;  /* leading dot or ".." */
			comp = 0;
			continue;
		}
		if (c < '0' || c > '9')
			return -EINVAL;
		if (comp == 0)
			first = c;
		else if (strict && first == '0')
			return -EINVAL;          /* leading zero */
		comp++;
	}
	if (comp == 0)
		return -EINVAL;                  /* trailing dot */
	return 0;
}

bool
uid_valid(const char *s)
{
	return s && uid_check(s, strlen(s), true) == 0;
}

int
uid_normalize(const char *s, char *out)
{
	size_t len;

	if (!s)
		return -EINVAL;
	len = strnlen(s, UID_MAX + 2);
	if (len > UID_MAX + 1)
		return -EINVAL;
	/* one trailing pad character is allowed by PS3.5 for even length */
	if (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\0'))
		len--;
	if (uid_check(s, len, false) < 0)
		return -EINVAL;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

__extension__ typedef unsigned __int128 u128;

/* 128-bit unsigned as decimal, without leading zeros. */
static void
u128_to_dec(uint64_t hi, uint64_t lo, char *out, size_t outlen)
{
	char tmp[48];
	size_t n = 0;

	do {
		/* divide (hi,lo) by 10 */
		u128 v = ((u128)hi << 64) | lo;
		unsigned digit = (unsigned)(v % 10);
		v /= 10;
		hi = (uint64_t)(v >> 64);
		lo = (uint64_t)v;
		tmp[n++] = (char)('0' + digit);
	} while ((hi || lo) && n < sizeof(tmp));
	for (size_t i = 0; i < n && i + 1 < outlen; i++)
		out[i] = tmp[n - 1 - i];
	out[n < outlen ? n : outlen - 1] = '\0';
}

int
uid_generate(const char *root, char *out)
{
	uint64_t r[2];
	char num[48];
	struct timespec ts;
	int n;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -errno ? -errno : -EIO;
	if (!root || !*root) {
		/* 2.25 + UUID as integer (PS3.5 B.2): 122 random bits, version 4 */
		r[0] = (r[0] & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
		r[1] = (r[1] & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
		u128_to_dec(r[0], r[1], num, sizeof(num));
		n = snprintf(out, UID_MAX + 1, "2.25.%s", num);
	} else {
		if (strlen(root) > 24 || !uid_valid(root))
			return -EINVAL;
		clock_gettime(CLOCK_REALTIME, &ts);
		/* root (<=24) + '.' + seconds (10) + '.' + random (<= 20) <= 57 */
		n = snprintf(out, UID_MAX + 1, "%s.%lld.%llu", root,
		    (long long)ts.tv_sec,
		    (unsigned long long)(r[0] % 10000000000000000000ULL) + 1);
	}
	if (n < 0 || n > UID_MAX)
		return -EOVERFLOW;
	return 0;
}
