/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Daemon logging: stderr with syslog priority prefixes (journald reads them). */
#pragma once

#include <syslog.h>

void dt_log_set_level(int level);
void dt_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
