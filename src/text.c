/*
 * text.c - sanitizing peer text, parsing key values.
 */
#include "text.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

size_t
text_sanitize(char *dst, size_t n, const char *s, size_t len, bool lines)
{
	size_t i = 0, o = 0;

	if (n == 0)
		return 0;
	while (i < len && o + 1 < n) {
		unsigned char c = (unsigned char)s[i];
		size_t k, need = 0;

		if (lines && (c == '\n' || c == '\r')) {
			i++;
			if (o >= 3 && memcmp(dst + o - 3, " | ", 3) == 0)
				continue;
			while (o > 0 && dst[o - 1] == ' ')
				o--;
			if (o > 0 && o + 4 < n) {
				memcpy(dst + o, " | ", 3);
				o += 3;
			}
			continue;
		}
		if (c < 0x20 || c == 0x7f) {
			if (o > 0 && dst[o - 1] != ' ')
				dst[o++] = ' ';
			i++;
			continue;
		}
		if (c < 0x80) {
			dst[o++] = (char)c;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			need = 1;
		else if (c >= 0xe0 && c <= 0xef)
			need = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			need = 3;
		for (k = 1; need && k <= need; k++)
			if (i + k >= len || ((unsigned char)s[i + k] & 0xc0) != 0x80)
				need = 0;
		/* overlongs and surrogates */
		if (need == 2 && ((c == 0xe0 && (unsigned char)s[i + 1] < 0xa0) ||
		                  (c == 0xed && (unsigned char)s[i + 1] > 0x9f)))
			need = 0;
		if (need == 3 && ((c == 0xf0 && (unsigned char)s[i + 1] < 0x90) ||
		                  (c == 0xf4 && (unsigned char)s[i + 1] > 0x8f)))
			need = 0;
		if (!need) {
			dst[o++] = '?';
			i++;
			continue;
		}
		if (o + need + 1 >= n)
			break;
		memcpy(dst + o, s + i, need + 1);
		o += need + 1;
		i += need + 1;
	}
	while (o > 0 && (dst[o - 1] == ' ' || (dst[o - 1] == '|' && o >= 2 &&
	                                        dst[o - 2] == ' ')))
		o--;
	dst[o] = '\0';
	return o;
}

int
text_parse_long(const char *v, long def, long min, long max, long *out)
{
	char *end;
	long n;

	if (!v || !*v) {
		*out = def;
		return 0;
	}
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end || n < min || n > max)
		return -EINVAL;
	*out = n;
	return 0;
}
