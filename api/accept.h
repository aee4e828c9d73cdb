/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/*
 * Whether an Accept header prefers OpenMetrics 1.0.0 (application/openmetrics-text,
 * no version or version=1.0.0) to the text format: its q is > 0 and at
 * least that of text/plain (or of any type). NULL: no.
 */
bool dt_metrics_wants_openmetrics(const char *accept);
