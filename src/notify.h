/*
 * notify.h - sd_notify: READY, STATUS, RELOADING, STOPPING, WATCHDOG.
 * All are no-ops when not started by systemd.
 */
#ifndef TRIAGED_NOTIFY_H
#define TRIAGED_NOTIFY_H

#include <stdint.h>

void notify_ready(const char *status);
void notify_status(const char *status);
void notify_reloading(void);
void notify_stopping(void);
/* Half the watchdog interval in microseconds, or 0 if none is set. */
uint64_t notify_watchdog_interval_us(void);
void notify_watchdog(void);

#endif
