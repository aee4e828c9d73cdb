/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Prometheus text exposition (format 0.0.4). Names carry the
 * dirtytrackd_ prefix and base units (bytes, seconds); counters end in
 * _total. Labels are bounded: a VM is labelled by its id only (the
 * registry holds at most max_vms plus the retained detached ones), and
 * dirtytrackd_vm_info carries name, uuid, vmm and mode for joins.
 */
#include <inttypes.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_proto.h"
#include "dt_util.h"
#include "curve.h"
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

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP dirtytrackd_%s %s\n# TYPE dirtytrackd_%s %s\n", name, help, name, type);
}

typedef uint64_t (*vm_value_fn)(const struct dt_vm *vm);

static void per_vm(FILE *f, const struct dt_manager *m, const char *name, const char *type,
		   const char *help, vm_value_fn fn)
{
	head(f, name, type, help);
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
static uint64_t v_epochs(const struct dt_vm *vm)
{
	return dt_stats_epochs(vm->stats);
}

static void seconds(FILE *f, uint64_t us)
{
	fprintf(f, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
}

int dt_metrics_render(struct dt_manager *m, char **ret, size_t *ret_len)
{
	const struct dt_config *c = &m->config;
	const struct dt_histogram *h = &m->harvest_hist;
	char *buf = NULL;
	size_t len = 0;
	uint64_t cum = 0;
	unsigned attached = dt_manager_attached(m), observed = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return -ENOMEM;
	for (const struct dt_vm *vm = m->vms; vm; vm = vm->next)
		observed += vm->state == DT_VM_OBSERVED;

	head(f, "build_info", "gauge", "Build of the daemon; the value is 1.");
	fprintf(f,
		"dirtytrackd_build_info{version=\"%s\",protocol=\"%u\",microhttpd=\"%s\"} 1\n",
		DT_VERSION, (unsigned)DT_PROTO_VERSION, MHD_get_version());
	head(f, "vms", "gauge", "VMs in the registry by state.");
	fprintf(f, "dirtytrackd_vms{state=\"attached\"} %u\n", attached);
	fprintf(f, "dirtytrackd_vms{state=\"detached\"} %u\n", m->nvms - attached - observed);
	fprintf(f, "dirtytrackd_vms{state=\"observed\"} %u\n", observed);

	head(f, "vm_info", "gauge", "Identity of a VM; the value is 1.");
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
	head(f, "vm_source_info", "gauge",
	     "Where a VM's figures come from: protocol (exact), or libvirt-<calc mode> (a rate "
	     "only); the value is 1.");
	for (const struct dt_vm *vm = m->vms; vm; vm = vm->next)
		fprintf(f, "dirtytrackd_vm_source_info{vm=\"%u\",source=\"%s\"} 1\n", vm->id,
			dt_vm_source_name(vm));
	head(f, "vm_fidelity_info", "gauge",
	     "Which writers a VM's figures cover: exact (every write), exact-vcpu-writes (not the "
	     "VMM's own device-emulation or vhost writes), sampled (libvirt's calc); the value is 1.");
	for (const struct dt_vm *vm = m->vms; vm; vm = vm->next)
		fprintf(f, "dirtytrackd_vm_fidelity_info{vm=\"%u\",fidelity=\"%s\"} 1\n", vm->id,
			dt_vm_fidelity_name(vm));
	head(f, "vm_libvirt_dirty_rate_bytes_per_second", "gauge",
	     "libvirt's dirty rate of a VM observed through libvirt (QEMU's calc, whole MiB/s).");
	for (const struct dt_vm *vm = m->vms; vm; vm = vm->next)
		if (vm->state == DT_VM_OBSERVED && vm->libvirt.has_rate)
			fprintf(f,
				"dirtytrackd_vm_libvirt_dirty_rate_bytes_per_second{vm=\"%u\"} %" PRIu64
				"\n",
				vm->id, vm->libvirt.rate_bytes);
	per_vm(f, m, "vm_attached", "gauge", "1 while the VMM is attached.", v_attached);
	per_vm(f, m, "vm_memory_bytes", "gauge", "Guest memory tracked.", v_memory);
	per_vm(f, m, "vm_epochs", "gauge", "Epochs harvested.", v_epochs);
	per_vm(f, m, "vm_dirtied_pages_total", "counter",
	       "Pages dirtied, counted once per epoch they were dirtied in.", v_pages);
	per_vm(f, m, "vm_dirtied_bytes_total", "counter",
	       "Bytes dirtied, counted once per epoch they were dirtied in.", v_bytes);
	per_vm(f, m, "vm_dirty_entries_total", "counter",
	       "Page dirtyings reported (ring entries and bitmap bits).", v_entries);
	per_vm(f, m, "vm_harvests_total", "counter", "Epochs closed.", v_harvests);
	per_vm(f, m, "vm_harvest_errors_total", "counter",
	       "Epochs closed incompletely (bitmap sync late, or statistics out of memory).",
	       v_errors);
	per_vm(f, m, "vm_ring_full_total", "counter", "Dirty ring full notices from the VMM.",
	       v_ring_full);
	per_vm(f, m, "vm_ring_full_harvests_total", "counter",
	       "Ring harvests run for RING_FULL notices (at most one per vCPU per ring reset).",
	       v_ring_full_harvests);
	per_vm(f, m, "vm_late_syncs_total", "counter",
	       "Epochs closed without the VMM's bitmap sync in time.", v_late);
	per_vm(f, m, "vm_history_bytes", "gauge", "Heap held by the VM's history.", v_history);

	/*
	 * A window the history does not cover yet (after an attach or a
	 * restart) has no D(T) to export: its series is absent rather than a
	 * figure that reads too low, and observed_seconds says how far it got.
	 */
	head(f, "vm_working_set_bytes", "gauge",
	     "Distinct bytes dirtied in the last window_seconds (exact D(T)); absent until the "
	     "history covers the whole window.");
	for (const struct dt_vm *vm = m->vms; vm; vm = vm->next) {
		for (unsigned i = 0; i < c->n_metrics_windows; i++) {
			uint32_t w = dt_vm_window_epochs(vm, c->metrics_windows[i] * 1000000ull);

			if (dt_vm_window_observed(vm, w) < w)
				continue;
			fprintf(f,
				"dirtytrackd_vm_working_set_bytes{vm=\"%u\",window_seconds=\"%u\"} "
				"%" PRIu64 "\n",
				vm->id, c->metrics_windows[i],
				dt_stats_wss(vm->stats, w) << vm->page_shift);
		}
	}
	head(f, "vm_window_observed_seconds", "gauge",
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

	head(f, "harvest_duration_seconds", "histogram",
	     "Time spent harvesting and closing one epoch of one VM.");
	for (unsigned i = 0; i < DT_HARVEST_BUCKETS; i++) {
		cum += h->bucket[i];
		fprintf(f, "dirtytrackd_harvest_duration_seconds_bucket{le=\"");
		seconds(f, dt_harvest_bucket_us[i]);
		fprintf(f, "\"} %" PRIu64 "\n", cum);
	}
	fprintf(f, "dirtytrackd_harvest_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n",
		h->count);
	fprintf(f, "dirtytrackd_harvest_duration_seconds_sum ");
	seconds(f, h->sum_us);
	fprintf(f, "\ndirtytrackd_harvest_duration_seconds_count %" PRIu64 "\n", h->count);

	if (fclose(f) != 0 || !buf) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}
