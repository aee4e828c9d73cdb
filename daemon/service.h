/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Running as a system service: where the configuration comes from and how it
 * is reloaded, and the sd_notify protocol (READY, STATUS, RELOADING,
 * STOPPING, watchdog).
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "config.h"

struct dt_manager;

#define DT_MAX_OVERRIDES 8

struct dt_service {
	struct dt_manager *m;
	const char *config_file; /* --config, or NULL: the system search path */
	struct {
		const char *section, *key, *value;
	} overrides[DT_MAX_OVERRIDES]; /* the command line, applied after the files */
	unsigned n_overrides;
	int status_attached, status_listed; /* last STATUS= sent; -1: none yet */
	bool stopping; /* STOPPING=1 sent: no more STATUS= */
};

/* Queue a command-line setting; -E2BIG when there are too many. */
int dt_service_override(struct dt_service *s, const char *section, const char *key,
			const char *value);
/*
 * A complete configuration into *ret (initialised here): defaults, files,
 * command line, cross-key checks. On error err says FILE:LINE: [section] key.
 */
int dt_service_load_config(const struct dt_service *s, struct dt_config *ret, char *err,
			   size_t errlen);
/* --cat-config: every file read, in order, each under a "# PATH" line. */
int dt_service_cat_config(const struct dt_service *s, FILE *out);
/*
 * Run as a service: signals (TERM/INT stop, HUP reloads), the watchdog,
 * VM count in STATUS=. Before the manager starts (main wires the rest).
 */
int dt_service_start(struct dt_service *s);
/* Everything is up (the manager's sockets and the front ends): READY=1. */
void dt_service_ready(struct dt_service *s);
/* SIGHUP: RELOADING=1, re-read, apply what can change now, READY=1. */
void dt_service_reload(struct dt_service *s);
