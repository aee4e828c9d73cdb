/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "log.h"

static int max_level = LOG_INFO;

void dt_log_set_level(int level)
{
	max_level = level;
}

void dt_log(int prio, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (prio > max_level)
		return;
	/* "<N>" prefixes let journald keep the priority of stderr lines. */
	fprintf(stderr, "<%d>", prio);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	errno = saved;
}
