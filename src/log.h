/*
 * log.h - the one logger. Lines go to stderr with journald's "<N>" priority
 * prefix (systemd reads them from the captured stderr). Context is written
 * as key=value; no patient names or IDs above LOG_DEBUG.
 */
#ifndef TRIAGED_LOG_H
#define TRIAGED_LOG_H

#include <stdarg.h>
#include <syslog.h>   /* LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG */

#define LOG_FMT(a, b) __attribute__((format(printf, a, b)))

#ifdef __cplusplus
extern "C" {
#endif

/* Messages above LEVEL (numerically greater) are dropped before formatting. */
void log_set_level(int level);
int  log_get_level(void);
/* "err", "warning", "notice", "info", "debug" -> level, or -1. */
int  log_level_from_name(const char *name);
/* Prefix every line with the program name (default "triaged"). */
void log_set_ident(const char *ident);

void log_msg(int level, const char *fmt, ...) LOG_FMT(2, 3);
void log_vmsg(int level, const char *fmt, va_list ap) LOG_FMT(2, 0);
/* As log_msg at LOG_WARNING, appending ": strerror(-err)". */
void log_errno(int level, int err, const char *fmt, ...) LOG_FMT(3, 4);

#ifdef __cplusplus
}
#endif

#define log_err(...)     log_msg(LOG_ERR, __VA_ARGS__)
#define log_warnx(...)   log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)   log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
