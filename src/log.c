/*
 * log.c - the only place that formats log lines.
 *
 * DESIGN: one line per message, written with a single write(2) so lines from
 * association threads never interleave; "<N>" prefix for journald; the level
 * check comes before any formatting (Redis).
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static int log_level = LOG_INFO;
static const char *log_ident = "triaged";

void
log_set_level(int level)
{
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

int
log_get_level(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

void
log_set_ident(const char *ident)
{
	log_ident = ident;
}

int
log_level_from_name(const char *name)
{
	static const struct { const char *name; int level; } names[] = {
		{ "err", LOG_ERR }, { "error", LOG_ERR },
		{ "warning", LOG_WARNING }, { "warn", LOG_WARNING },
		{ "notice", LOG_NOTICE }, { "info", LOG_INFO },
		{ "debug", LOG_DEBUG },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i].name) == 0)
			return names[i].level;
	return -1;
}

static void
log_write(int level, const char *suffix, const char *fmt, va_list ap)
{
	char line[4096];
	int n, m;

	n = snprintf(line, sizeof(line), "<%d>%s: ", level, log_ident);
	if (n < 0)
		return;
	m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	n = (size_t)(n + m) >= sizeof(line) - 1 ? (int)sizeof(line) - 2 : n + m;
	if (suffix) {
		m = snprintf(line + n, sizeof(line) - (size_t)n, ": %s", suffix);
		n = (size_t)(n + (m > 0 ? m : 0)) >= sizeof(line) - 1 ?
		    (int)sizeof(line) - 2 : n + (m > 0 ? m : 0);
	}
	/* one line: control characters from peers never split it */
	for (int i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20)
			line[i] = ' ';
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

void
log_vmsg(int level, const char *fmt, va_list ap)
{
	if (level > log_get_level())
		return;
	log_write(level, NULL, fmt, ap);
}

void
log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > log_get_level())
		return;
	va_start(ap, fmt);
	log_write(level, NULL, fmt, ap);
	va_end(ap);
}

void
log_errno(int level, int err, const char *fmt, ...)
{
	va_list ap;
	char buf[128];

	if (level > log_get_level())
		return;
	va_start(ap, fmt);
	log_write(level, strerror_r(err < 0 ? -err : err, buf, sizeof(buf)), fmt, ap);
	va_end(ap);
}
