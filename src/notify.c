/*
 * notify.c - the systemd notification protocol through libsystemd.
 */
#include "notify.h"

#include <stdio.h>
#include <systemd/sd-daemon.h>

void
notify_ready(const char *status)
{
	(void)sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void
notify_status(const char *status)
{
	(void)sd_notifyf(0, "STATUS=%s", status);
}

void
notify_reloading(void)
{
	(void)sd_notify(0, "RELOADING=1");
}

void
notify_stopping(void)
{
	(void)sd_notify(0, "STOPPING=1");
}

uint64_t
notify_watchdog_interval_us(void)
{
	uint64_t us = 0;

	if (sd_watchdog_enabled(0, &us) <= 0)
		return 0;
	return us / 2;
}

void
notify_watchdog(void)
{
	(void)sd_notify(0, "WATCHDOG=1");
}
