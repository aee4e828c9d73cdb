/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The libvirt collector: for QEMU domains that do not attach through the
 * protocol, libvirt's own dirty-rate calculation (QEMU's calc-dirty-rate:
 * a rate in whole MiB/s over a calc period, sampled or from the dirty
 * ring), started on a schedule and read back through the domain stats.
 *
 * libvirt calls block (a hung libvirtd blocks them for as long as it
 * hangs), so they all run on a worker thread. The worker posts a report
 * per round (every domain it saw, or why it could not) and makes its
 * eventfd readable; the loop thread takes the report and owns everything
 * that follows. Library code: no logging, errors are in the report.
 */
#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdbool.h>
#include <stdint.h>

#include "dt_collector.h"
#include "dt_proto.h"

enum dt_lv_calc_mode {
	DT_LV_PAGE_SAMPLING,
	DT_LV_DIRTY_BITMAP,
	DT_LV_DIRTY_RING,
	_DT_LV_CALC_MODE_MAX,
};

enum dt_lv_calc_status {
	DT_LV_UNSTARTED, /* libvirt's 0..2 */
	DT_LV_MEASURING,
	DT_LV_MEASURED,
	_DT_LV_CALC_STATUS_MAX,
};

/* One running domain as the worker last saw it. */
struct dt_lv_sample {
	uint8_t uuid[16];
	char name[DT_NAME_MAX]; /* truncated when longer */
	uint32_t vcpus; /* vcpu.current, 0: unknown */
	uint64_t memory_bytes; /* balloon.maximum, 0: unknown */
	enum dt_lv_calc_status calc_status;
	enum dt_lv_calc_mode calc_mode; /* of the last calc */
	bool has_rate; /* a measured rate is present */
	uint64_t rate_bytes; /* bytes/s (libvirt gives whole MiB/s) */
	int64_t calc_start_time; /* as libvirt gives it (QEMU's clock, seconds) */
	uint32_t calc_period_s; /* seconds */
	uint64_t sample_us; /* CLOCK_MONOTONIC, when the stats were read */
	bool skipped; /* attached through the protocol: no calc started */
};

/*
 * Fill the fields of ret that the domain stats carry (dirtyrate.*,
 * vcpu.current, balloon.maximum), leaving the others alone. Unknown
 * fields are ignored; a known one of the wrong type or value is -EBADMSG.
 */
int dt_lv_parse_stats(const virTypedParameter *params, int n, struct dt_lv_sample *ret);
const char *dt_lv_calc_mode_name(enum dt_lv_calc_mode m);

/* The collector of a VM seen through libvirt: "libvirt", nothing to harvest. */
extern const struct dt_collector_ops dt_collector_libvirt_ops;

struct dt_lv_options {
	const char *uri;
	uint64_t interval_us; /* between rounds */
	uint32_t calc_seconds; /* calc period asked of QEMU */
};

/* What one round found. */
struct dt_lv_report {
	bool connected; /* false: error says why (then samples is empty) */
	char error[256];
	struct dt_lv_sample *samples;
	size_t n;
	uint64_t round;
};

struct dt_lv_worker;

int dt_lv_worker_start(const struct dt_lv_options *o, struct dt_lv_worker **ret);
/* Readable when a report is waiting. */
int dt_lv_worker_fd(const struct dt_lv_worker *w);
/* Take the newest report (older ones are dropped); -EAGAIN: none. */
int dt_lv_worker_take(struct dt_lv_worker *w, struct dt_lv_report *ret);
void dt_lv_report_done(struct dt_lv_report *r);
/* Domains attached through the protocol: listed, but not measured. */
int dt_lv_worker_set_skip(struct dt_lv_worker *w, const uint8_t (*uuids)[16], size_t n);
/*
 * Stop and join the worker, waiting at most timeout_us for a libvirt call
 * in progress (a libvirtd that accepts and never answers blocks it for
 * ever): -ETIMEDOUT then, the thread is detached and its state kept
 * (reachable, never freed) for it to finish alone. NULL-safe.
 */
int dt_lv_worker_stop(struct dt_lv_worker *w, uint64_t timeout_us);
