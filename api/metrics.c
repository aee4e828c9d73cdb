/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Prometheus text exposition (format 0.0.4), or OpenMetrics 1.0.0 when the
 * scraper asks for it (Accept). Names carry the dirtytrackd_ prefix and
 * base units (bytes, seconds); counters end in _total. Labels are bounded:
 * a VM is labelled by its id only (the registry holds at most max_vms plus
 * the retained detached ones), and dirtytrackd_vm_info carries name, uuid,
 * vmm and mode for joins; a reference link by its configured name.
 *
 * The two formats differ only in the metadata: OpenMetrics names a
 * counter's family without _total, gives a UNIT for families named after
 * one, and ends with "# EOF". The samples are the same.
 */
#include <inttypes.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_proto.h"
#include "dt_util.h"
#include "vm_query.h"
#include "http.h"
#include "manager.h"

#ifndef DT_VERSION
#define DT_VERSION "0.1"
#endif

/* A label value: backslash, double quote and newline escaped. */
static void label(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f), fputc(*s, f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/*
 * A family's metadata. name is the sample name (counters: with _total);
 * an OpenMetrics counter's family drops _total, and a family has a UNIT
 * when its name ends with one. Info metrics stay gauges (valued 1) in
 * both formats, so that promtool's text parser reads both.
 */
static void head(FILE *f, bool om, const char *name, const char *type, const char *help)
{
	size_t n = strlen(name);

	if (!om) {
		fprintf(f, "# HELP dirtytrackd_%s %s\n# TYPE dirtytrackd_%s %s\n", name, help, name,
			type);
		return;
	}
	if (strcmp(type, "counter") == 0 && ends_with(name, n, "_total"))
		n -= strlen("_total");
	fprintf(f, "# TYPE dirtytrackd_%.*s %s\n", (int)n, name, type);
	if (ends_with(name, n, "_bytes"))
		fprintf(f, "# UNIT dirtytrackd_%.*s bytes\n", (int)n, name);
	else if (ends_with(name, n, "_seconds"))
		fprintf(f, "# UNIT dirtytrackd_%.*s seconds\n", (int)n, name);
	fprintf(f, "# HELP dirtytrackd_%.*s %s\n", (int)n, name, help);
}

typedef uint64_t (*vm_value_fn)(const struct dt_vm *vm);

static void per_vm(FILE *f, bool om, const struct dt_manager *m, const char *name, const char *type,
		   const char *help, vm_value_fn fn)
{
	head(f, om, name, type, help);
	for (const struct dt_vm *vm = m->vms; vm; vm = vm->next)
		fprintf(f, "dirtytrackd_%s{vm=\"%u\"} %" PRIu64 "\n", name, vm->id, fn(vm));
}

static uint64_t v_pages(const struct dt_vm *vm)
{
	return dt_stats_total_pages(vm->stats);
}
static uint64_t v_bytes(const struct dt_vm *vm)
{
	return dt_stats_total_pages(vm->stats) << vm->page_shift;
}
static uint64_t v_entries(const struct dt_vm *vm)
{
	return dt_stats_total_entries(vm->stats);
}
static uint64_t v_harvests(const struct dt_vm *vm)
{
	return vm->counters.harvests;
}
static uint64_t v_errors(const struct dt_vm *vm)
{
	return vm->counters.harvest_errors;
}
static uint64_t v_ring_full(const struct dt_vm *vm)
{
	return vm->counters.ring_full;
}

static uint64_t v_ring_full_harvests(const struct dt_vm *vm)
{
	return vm->counters.ring_full_harvests;
}
static uint64_t v_late(const struct dt_vm *vm)
{
	return vm->counters.late_syncs;
}
static uint64_t v_attached(const struct dt_vm *vm)
{
	return vm->state == DT_VM_ATTACHED;
}
static uint64_t v_memory(const struct dt_vm *vm)
{
	return dt_vm_memory_pages(vm) << vm->page_shift;
}
static uint64_t v_history(const struct dt_vm *vm)
{
	return vm->history_bytes;
}
static uint64_t v_state_error(const struct dt_vm *vm)
{
	return vm->persist.error[0] != 0;
}
static uint64_t v_state_bytes(const struct dt_vm *vm)
{
	return vm->persist.disk_bytes;
}
static uint64_t v_state_compactions(const struct dt_vm *vm)
{
	return vm->persist.quota_compactions;
}
static uint64_t v_epochs(const struct dt_vm *vm)
{
	return dt_stats_epochs(vm->stats);
}

enum ref_field { REF_CONVERGES, REF_TOTAL, REF_DOWNTIME, REF_ROUNDS };

static void ref_series(FILE *f, bool om, const struct dt_api *a, const char *name,
		       const char *help, enum ref_field which)
{
	const struct dt_config *c = &a->m->config;

	head(f, om, name, "gauge", help);
	for (const struct dt_vm *vm = a->m->vms; vm; vm = vm->next) {
		const struct dt_api_vm *e = dt_api_vm_find(a, vm->id);

		for (unsigned i = 0; e && i < c->n_ref_links; i++) {
			const struct dt_ref_plan *rp = dt_ref_plan_get(e, i, &c->ref_links[i]);

			if (!rp)
				continue;
			fprintf(f, "dirtytrackd_%s{vm=\"%u\",link=", name, vm->id);
			label(f, c->ref_links[i].name);
			switch (which) {
			case REF_CONVERGES:
				fprintf(f, "} %d\n", rp->converges);
				break;
			case REF_TOTAL:
				fprintf(f, "} %.6f\n", rp->total_seconds);
				break;
			case REF_DOWNTIME:
				fprintf(f, "} %.6f\n", rp->downtime_seconds);
				break;
			case REF_ROUNDS:
				fprintf(f, "} %u\n", rp->rounds);
				break;
			}
		}
	}
}

/*
 * Every VM's pre-copy plan at each configured link, from the planner the
 * REST and D-Bus plans use. A plan costs milliseconds (a bursty guest's up
 * to hundreds): the scrape never plans, it prints what ref_plans.c made on
 * its thread after the VM's last change (at most one plan behind).
 */
static void reference_links(FILE *f, bool om, const struct dt_api *a)
{
	const struct dt_config *c = &a->m->config;

	head(f, om, "reference_link_bandwidth_bytes_per_second", "gauge",
	     "Bandwidth of a link named in [metrics] reference_links.");
	for (unsigned i = 0; i < c->n_ref_links; i++) {
		fprintf(f, "dirtytrackd_reference_link_bandwidth_bytes_per_second{link=");
		label(f, c->ref_links[i].name);
		fprintf(f, "} %" PRIu64 "\n", c->ref_links[i].bandwidth);
	}
	head(f, om, "reference_link_max_downtime_seconds", "gauge",
	     "Downtime accepted at a link named in [metrics] reference_links.");
	for (unsigned i = 0; i < c->n_ref_links; i++) {
		fprintf(f, "dirtytrackd_reference_link_max_downtime_seconds{link=");
		label(f, c->ref_links[i].name);
		fprintf(f, "} %" PRIu64 ".%06" PRIu64 "\n", c->ref_links[i].downtime_us / 1000000,
			c->ref_links[i].downtime_us % 1000000);
	}
	ref_series(f, om, a, "vm_precopy_converges", "1 when pre-copy at the link is predicted to "
		   "converge within its downtime (the planner's verdict on the current epoch).",
		   REF_CONVERGES);
	ref_series(f, om, a, "vm_precopy_total_time_seconds",
		   "Predicted duration of a pre-copy migration at the link, downtime included.",
		   REF_TOTAL);
	ref_series(f, om, a, "vm_precopy_downtime_seconds",
		   "Predicted downtime of a pre-copy migration at the link (above the link's "
		   "maximum when it does not converge).",
		   REF_DOWNTIME);
	ref_series(f, om, a, "vm_precopy_rounds",
		   "Predicted pre-copy rounds at the link (the stop-and-copy not counted).",
		   REF_ROUNDS);
}

/* D(T) (bytes) or D(T)/T (bytes per second) at each [metrics] wss_windows, where covered. */
static void window_series(FILE *f, bool om, const struct dt_manager *m, const char *name,
			  const char *help, bool rate)
{
	const struct dt_config *c = &m->config;

	head(f, om, name, "gauge", help);
	for (const struct dt_vm *vm = m->vms; vm; vm = vm->next) {
		for (unsigned i = 0; i < c->n_metrics_windows; i++) {
			uint32_t w = dt_vm_window_epochs(vm, c->metrics_windows[i] * 1000000ull);
			uint64_t bytes;

			if (dt_vm_window_observed(vm, w) < w)
				continue;
			bytes = dt_stats_wss(vm->stats, w) << vm->page_shift;
			fprintf(f, "dirtytrackd_%s{vm=\"%u\",window_seconds=\"%u\"} ", name, vm->id,
				c->metrics_windows[i]);
			if (rate)
				fprintf(f, "%.3f\n",
					(double)bytes * 1e6 / ((double)w * (double)vm->epoch_us));
			else
				fprintf(f, "%" PRIu64 "\n", bytes);
		}
	}
}

static void seconds(FILE *f, uint64_t us)
{
	fprintf(f, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
}

static void histogram(FILE *f, bool om, const char *name, const char *help, const struct dt_histogram *h)
{
	uint64_t cum = 0;

	head(f, om, name, "histogram", help);
	for (unsigned i = 0; i < DT_HARVEST_BUCKETS; i++) {
		cum += h->bucket[i];
		fprintf(f, "dirtytrackd_%s_bucket{le=\"", name);
		seconds(f, dt_harvest_bucket_us[i]);
		fprintf(f, "\"} %" PRIu64 "\n", cum);
	}
	fprintf(f, "dirtytrackd_%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, h->count);
	fprintf(f, "dirtytrackd_%s_sum ", name);
	seconds(f, h->sum_us);
	fprintf(f, "\ndirtytrackd_%s_count %" PRIu64 "\n", name, h->count);
}

/* The state writer's queue: what waits, what was written, what a full queue did. */
static void state_metrics(FILE *f, bool om, const struct dt_manager *m)
{
	struct dt_state_stats st;

	dt_state_get_stats(m, &st);
	if (!st.enabled)
		return;
	head(f, om, "state_queue_jobs", "gauge", "Writes waiting for the state writer thread.");
	fprintf(f, "dirtytrackd_state_queue_jobs %zu\n", st.queued_jobs);
	head(f, om, "state_queue_bytes", "gauge",
	     "Bytes of frames and snapshots waiting for the state writer thread.");
	fprintf(f, "dirtytrackd_state_queue_bytes %zu\n", st.queued_bytes);
	head(f, om, "state_queue_limit_bytes", "gauge",
	     "The queue's bound: beyond it frames are coalesced into the next snapshot.");
	fprintf(f, "dirtytrackd_state_queue_limit_bytes %zu\n", st.max_bytes);
	head(f, om, "state_queue_wait_max_seconds", "gauge",
	     "The longest a write waited in the queue since the start.");
	fprintf(f, "dirtytrackd_state_queue_wait_max_seconds ");
	seconds(f, st.max_wait_us);
	fputc('\n', f);
	head(f, om, "state_frames_written_total", "counter", "Journal frames written and fdatasync'd.");
	fprintf(f, "dirtytrackd_state_frames_written_total %" PRIu64 "\n", st.frames_written);
	head(f, om, "state_snapshots_written_total", "counter", "Snapshots written, fsync'd and renamed.");
	fprintf(f, "dirtytrackd_state_snapshots_written_total %" PRIu64 "\n", st.snapshots_written);
	head(f, om, "state_written_bytes_total", "counter", "Bytes written to the state directory.");
	fprintf(f, "dirtytrackd_state_written_bytes_total %" PRIu64 "\n", st.bytes_written);
	head(f, om, "state_write_errors_total", "counter", "Writes to the state directory that failed.");
	fprintf(f, "dirtytrackd_state_write_errors_total %" PRIu64 "\n", st.write_errors);
	head(f, om, "state_frames_coalesced_total", "counter",
	     "Journal frames not queued because the queue was full: the VM's next snapshot holds "
	     "their epochs.");
	fprintf(f, "dirtytrackd_state_frames_coalesced_total %" PRIu64 "\n", st.frames_coalesced);
	head(f, om, "state_snapshots_deferred_total", "counter",
	     "Snapshots put off to a later epoch because the queue was full.");
	fprintf(f, "dirtytrackd_state_snapshots_deferred_total %" PRIu64 "\n",
		st.snapshots_deferred);
	head(f, om, "state_quota_compactions_total", "counter",
	     "Journals compacted into a snapshot because a VM's files reached [daemon] "
	     "state_max_bytes_per_vm.");
	fprintf(f, "dirtytrackd_state_quota_compactions_total %" PRIu64 "\n",
		st.quota_compactions);
	head(f, om, "state_quota_refusals_total", "counter",
	     "Writes not made because they would take a VM's files beyond its quota.");
	fprintf(f, "dirtytrackd_state_quota_refusals_total %" PRIu64 "\n", st.quota_refusals);
	head(f, om, "state_vms_failing", "gauge",
	     "VMs whose last write to the state directory failed (see their state_error).");
	fprintf(f, "dirtytrackd_state_vms_failing %" PRIu32 "\n", st.vms_failing);
}

int dt_metrics_render(struct dt_api *a, bool om, char **ret, size_t *ret_len)
{
	struct dt_manager *m = a->m;
	const struct dt_config *c = &m->config;
	char *buf = NULL;
	size_t len = 0;
	unsigned attached = dt_manager_attached(m), observed = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return -ENOMEM;
	for (const struct dt_vm *vm = m->vms; vm; vm = vm->next)
		observed += vm->state == DT_VM_OBSERVED;

	head(f, om, "build_info", "gauge", "Build of the daemon; the value is 1.");
	fprintf(f,
		"dirtytrackd_build_info{version=\"%s\",protocol=\"%u\",microhttpd=\"%s\"} 1\n",
		DT_VERSION, (unsigned)DT_PROTO_VERSION, MHD_get_version());
	head(f, om, "vms", "gauge", "VMs in the registry by state.");
	fprintf(f, "dirtytrackd_vms{state=\"attached\"} %u\n", attached);
	fprintf(f, "dirtytrackd_vms{state=\"detached\"} %u\n", m->nvms - attached - observed);
	fprintf(f, "dirtytrackd_vms{state=\"observed\"} %u\n", observed);

	head(f, om, "vm_info", "gauge", "Identity of a VM; the value is 1.");
	for (const struct dt_vm *vm = m->vms; vm; vm = vm->next) {
		char uuid[37] = "";

		if (!dt_uuid_is_null(vm->uuid))
			dt_uuid_format(vm->uuid, uuid);
		fprintf(f, "dirtytrackd_vm_info{vm=\"%u\",name=", vm->id);
		label(f, vm->name);
		fprintf(f, ",uuid=\"%s\",vmm=", uuid);
		label(f, vm->vmm);
		fprintf(f, ",mode=");
		label(f, vm->collector.ops->name);
		fprintf(f, "} 1\n");
	}
	head(f, om, "vm_source_info", "gauge",
	     "Where a VM's figures come from: protocol (exact), or libvirt-<calc mode> (a rate "
	     "only); the value is 1.");
	for (const struct dt_vm *vm = m->vms; vm; vm = vm->next)
		fprintf(f, "dirtytrackd_vm_source_info{vm=\"%u\",source=\"%s\"} 1\n", vm->id,
			dt_vm_source_name(vm));
	head(f, om, "vm_fidelity_info", "gauge",
	     "Which writers a VM's figures cover: exact (every write), exact-vcpu-writes (not the "
	     "VMM's own device-emulation or vhost writes), sampled (libvirt's calc); the value is 1.");
	for (const struct dt_vm *vm = m->vms; vm; vm = vm->next)
		fprintf(f, "dirtytrackd_vm_fidelity_info{vm=\"%u\",fidelity=\"%s\"} 1\n", vm->id,
			dt_vm_fidelity_name(vm));
	head(f, om, "vm_libvirt_dirty_rate_bytes_per_second", "gauge",
	     "libvirt's dirty rate of a VM observed through libvirt (QEMU's calc, whole MiB/s).");
	for (const struct dt_vm *vm = m->vms; vm; vm = vm->next)
		if (vm->state == DT_VM_OBSERVED && vm->libvirt.has_rate)
			fprintf(f,
				"dirtytrackd_vm_libvirt_dirty_rate_bytes_per_second{vm=\"%u\"} %" PRIu64
				"\n",
				vm->id, vm->libvirt.rate_bytes);
	per_vm(f, om, m, "vm_attached", "gauge", "1 while the VMM is attached.", v_attached);
	per_vm(f, om, m, "vm_memory_bytes", "gauge", "Guest memory tracked.", v_memory);
	per_vm(f, om, m, "vm_epochs", "gauge", "Epochs harvested.", v_epochs);
	per_vm(f, om, m, "vm_dirtied_pages_total", "counter",
	       "Pages dirtied, counted once per epoch they were dirtied in.", v_pages);
	per_vm(f, om, m, "vm_dirtied_bytes_total", "counter",
	       "Bytes dirtied, counted once per epoch they were dirtied in.", v_bytes);
	per_vm(f, om, m, "vm_dirty_entries_total", "counter",
	       "Page dirtyings reported (ring entries and bitmap bits).", v_entries);
	per_vm(f, om, m, "vm_harvests_total", "counter", "Epochs closed.", v_harvests);
	per_vm(f, om, m, "vm_harvest_errors_total", "counter",
	       "Epochs closed incompletely (bitmap sync late, or statistics out of memory).",
	       v_errors);
	per_vm(f, om, m, "vm_ring_full_total", "counter", "Dirty ring full notices from the VMM.",
	       v_ring_full);
	per_vm(f, om, m, "vm_ring_full_harvests_total", "counter",
	       "Ring harvests run for RING_FULL notices (at most one per vCPU per ring reset).",
	       v_ring_full_harvests);
	per_vm(f, om, m, "vm_late_syncs_total", "counter",
	       "Epochs closed without the VMM's bitmap sync in time.", v_late);
	per_vm(f, om, m, "vm_history_bytes", "gauge", "Heap held by the VM's history.", v_history);
	head(f, om, "vm_zero_page_ratio", "gauge",
	     "Share of guest RAM that is zero pages (a migration sends them as a header), from "
	     "the VMM's last sample (MEMORY_SAMPLE); no series without one.");
	for (const struct dt_vm *vm = m->vms; vm; vm = vm->next)
		if (vm->memory_sample.at_us)
			fprintf(f, "dirtytrackd_vm_zero_page_ratio{vm=\"%u\"} %.6f\n", vm->id,
				(double)vm->memory_sample.zero / (double)vm->memory_sample.sampled);
	if (m->state) {
		per_vm(f, om, m, "vm_state_error", "gauge",
		       "1 while the VM's history cannot be written to the state directory (its "
		       "state_error says why); it stays whole in memory.",
		       v_state_error);
		per_vm(f, om, m, "vm_state_bytes", "gauge",
		       "Bytes of the VM's files in the state directory (snapshot and journal).",
		       v_state_bytes);
		per_vm(f, om, m, "vm_state_compactions_total", "counter",
		       "Journals compacted into a snapshot at [daemon] state_max_bytes_per_vm.",
		       v_state_compactions);
	}

	/*
	 * A window the history does not cover yet (after an attach or a
	 * restart) has no D(T) to export: its series is absent rather than a
	 * figure that reads too low, and observed_seconds says how far it got.
	 */
	window_series(f, om, m, "vm_working_set_bytes",
		      "Distinct bytes dirtied in the last window_seconds (exact D(T)); absent until the "
		      "history covers the whole window.",
		      false);
	window_series(f, om, m, "vm_dirty_rate_bytes_per_second",
		      "Dirty rate at window_seconds: D(T) times the page size over T (the rate curve); "
		      "absent until the history covers the whole window.",
		      true);
	head(f, om, "vm_window_observed_seconds", "gauge",
	     "Seconds of the last window_seconds the VM's history covers (whole epochs); the "
	     "window's working set is exported once all of it is covered.");
	for (const struct dt_vm *vm = m->vms; vm; vm = vm->next) {
		for (unsigned i = 0; i < c->n_metrics_windows; i++) {
			uint32_t w = dt_vm_window_epochs(vm, c->metrics_windows[i] * 1000000ull);

			fprintf(f,
				"dirtytrackd_vm_window_observed_seconds{vm=\"%u\",window_seconds=\"%u\"} ",
				vm->id, c->metrics_windows[i]);
			seconds(f, dt_vm_window_observed(vm, w) * vm->epoch_us);
			fputc('\n', f);
		}
	}

	reference_links(f, om, a);

	histogram(f, om, "harvest_duration_seconds",
		  "Time spent harvesting and closing one epoch of one VM.", &m->harvest_hist);
	histogram(f, om, "tick_lateness_seconds",
		  "How late each VM's epoch tick ran after its due time (the harvest delay that "
		  "other work on the event loop caused).",
		  &m->tick_lateness);
	head(f, om, "tick_lateness_max_seconds", "gauge", "The latest an epoch tick ran since the start.");
	fprintf(f, "dirtytrackd_tick_lateness_max_seconds ");
	seconds(f, m->tick_lateness_max_us);
	fputc('\n', f);
	head(f, om, "ticks_skipped_total", "counter",
	     "Epoch ticks missed whole because the loop came too late (the epoch was longer).");
	fprintf(f, "dirtytrackd_ticks_skipped_total %" PRIu64 "\n", m->ticks_skipped);
	state_metrics(f, om, m);
	if (om)
		fputs("# EOF\n", f);

	if (fclose(f) != 0 || !buf) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}
