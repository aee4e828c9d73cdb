/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A VM in the registry: its identity, collectors, statistics and the epoch
 * scheduler. Each epoch tick harvests the rings (no help from the VMM
 * needed), asks for a ring reset if anything was taken, and in bitmap
 * modes asks the VMM to sync its dirty log; the epoch closes when the
 * sync completes, or at 9/10 of an epoch if it does not (a late sync).
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "dt_util.h"
#include "log.h"
#include "manager.h"

/* Drop a VMM that ignores requests for this many epochs and this long. */
#define DT_UNANSWERED_EPOCHS 10
#define DT_UNANSWERED_MIN_US (10ull * 1000000)

static const uint32_t window_seconds[] = { 1, 2, 5, 10, 30, 60, 300, 900, 3600 };

const char *dt_vm_state_name(enum dt_vm_state s)
{
	static const char *const names[_DT_VM_STATE_MAX] = {
		[DT_VM_ATTACHED] = "attached",
		[DT_VM_DETACHED] = "detached",
		[DT_VM_OBSERVED] = "observed",
	};
	return s < _DT_VM_STATE_MAX ? names[s] : "unknown";
}

uint64_t dt_vm_memory_pages(const struct dt_vm *vm)
{
	return vm->state == DT_VM_ATTACHED ? dt_slots_active_pages(&vm->collector.slots)
					   : vm->detached_pages;
}

uint32_t dt_vm_window_epochs(const struct dt_vm *vm, uint64_t window_us)
{
	uint64_t n = (window_us + vm->epoch_us / 2) / vm->epoch_us;

	return n < 1 ? 1 : n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

static void stats_config(const struct dt_vm *vm, struct dt_stats_config *sc)
{
	const struct dt_config *c = &vm->m->config;
	uint32_t last = 0;

	*sc = (struct dt_stats_config){
		.horizon_epochs = dt_vm_window_epochs(vm, c->history_us),
		.recent_epochs = c->recent_epochs,
		.coarse_epochs = c->coarse_epochs,
		.region_pages = (2u << 20) / vm->page_size,
	};
	if (sc->region_pages == 0)
		sc->region_pages = 1;
	/* One epoch, then 1 s ... 1 h, as far as the history reaches. */
	sc->windows[sc->nwindows++] = last = 1;
	for (size_t i = 0; i < ARRAY_SIZE(window_seconds); i++) {
		uint32_t w = dt_vm_window_epochs(vm, window_seconds[i] * 1000000ull);
		if (w <= last || w > sc->horizon_epochs)
			continue;
		sc->windows[sc->nwindows++] = last = w;
	}
}

/*
 * A split close runs DT_STATS_CLOSE_BUDGET blocks per step, one step per
 * loop turn: a 1 TiB guest at 50 % closes in a few hundred steps of a few
 * ms each, and other VMs' ticks and API requests are served in between.
 */
#define DT_CLOSE_STEP_BLOCKS DT_STATS_CLOSE_BUDGET
/*
 * Before it, the bitmaps are consumed in steps of this many words (64-page
 * blocks, 512 KiB of bitmap, ~1 ms): a 1 TiB guest's 32 MiB in 64 turns.
 */
#define DT_CONSUME_STEP_WORDS DT_COLLECTOR_CONSUME_STEP_WORDS

/* The epoch's close is complete: account for it and hand it to observers. */
static void vm_close_done(struct dt_vm *vm)
{
	/* Once per epoch, not per API request: it walks every retained set. */
	vm->history_bytes = dt_stats_memory(vm->stats);
	vm->counters.harvests++;
	vm->counters.harvest_us += vm->close_us;
	dt_histogram_observe(&vm->m->harvest_hist, vm->epoch_harvest_us + vm->close_us);
	vm->epoch_harvest_us = 0;
	vm->close_us = 0;
	/* The state writer takes vm->closed here (the journal); nobody else needs it. */
	dt_manager_notify(vm->m, vm, DT_CHANGE_EPOCH);
	vm->closed = dt_closed_epoch_free(vm->closed);
}

static void vm_close_run(struct dt_vm *vm, uint64_t budget)
{
	uint64_t start = dt_now_us();
	int r;

	r = dt_stats_close_step(vm->stats, budget, &vm->closed);
	vm->close_us += dt_now_us() - start;
	if (r > 0) {
		sd_event_source_set_enabled(vm->close_defer, SD_EVENT_ONESHOT);
		return;
	}
	sd_event_source_set_enabled(vm->close_defer, SD_EVENT_OFF);
	if (r < 0) {
		/* Still pending, nothing lost: the next epoch's close finishes it first. */
		dt_log(LOG_WARNING, "vm %u (%s): cannot close epoch: %s", vm->id, vm->name,
		       strerror(-r));
		vm->counters.harvest_errors++;
		return;
	}
	vm_close_done(vm);
}

/* The epoch ends (its pages all taken): its close begins, the first step now. */
static void vm_close_begin(struct dt_vm *vm, uint64_t end_us)
{
	uint64_t start = dt_now_us();
	int r;

	r = dt_stats_close_begin(vm->stats, end_us, dt_state_wants_epochs(vm));
	vm->close_us += dt_now_us() - start;
	if (r < 0) {
		/* The pages stay in the open epoch and are closed with the next. */
		dt_log(LOG_WARNING, "vm %u (%s): cannot close epoch: %s", vm->id, vm->name,
		       strerror(-r));
		vm->counters.harvest_errors++;
		return;
	}
	vm_close_run(vm, DT_CLOSE_STEP_BLOCKS);
}

/*
 * The bitmaps' pass of an epoch whose sync point has come (SYNC_DONE or
 * its deadline, at vm->sync_point_us), in steps: its words are still
 * taken into the open epoch, which is the one ending; the close begins
 * when the last is taken. A bit set before its word is taken counts in
 * this epoch, one set after in the next (docs/protocol.md, section 6).
 */
static void vm_consume_run(struct dt_vm *vm, uint64_t words)
{
	uint64_t start = dt_now_us();
	int r;

	r = dt_collector_consume_step(&vm->collector, words);
	vm->close_us += dt_now_us() - start;
	if (r > 0) {
		sd_event_source_set_enabled(vm->close_defer, SD_EVENT_ONESHOT);
		return;
	}
	vm->consuming = false;
	vm_close_begin(vm, vm->sync_point_us);
}

static int on_close_step(sd_event_source *s, void *userdata)
{
	struct dt_vm *vm = userdata;

	if (vm->consuming)
		vm_consume_run(vm, DT_CONSUME_STEP_WORDS);
	else if (dt_stats_closing(vm->stats))
		vm_close_run(vm, DT_CLOSE_STEP_BLOCKS);
	return 0;
}

void dt_vm_consume_finish(struct dt_vm *vm)
{
	if (vm->consuming)
		vm_consume_run(vm, UINT64_MAX);
}

/* A close still in progress completes now (its pages are older than the open epoch's). */
static void vm_close_finish(struct dt_vm *vm)
{
	dt_vm_consume_finish(vm);
	if (dt_stats_closing(vm->stats))
		vm_close_run(vm, UINT64_MAX);
}

static void vm_close_epoch(struct dt_vm *vm)
{
	uint64_t start = dt_now_us();

	vm_close_finish(vm);
	vm->sync_pending = false;
	if (vm->sync_deadline)
		sd_event_source_set_enabled(vm->sync_deadline, SD_EVENT_OFF);
	if (!vm->collector.ops->consume) {
		vm_close_begin(vm, start);
		return;
	}
	dt_collector_consume_begin(&vm->collector);
	vm->consuming = true;
	vm->sync_point_us = start;
	vm_consume_run(vm, DT_CONSUME_STEP_WORDS);
}

static void vm_request_reset(struct dt_vm *vm)
{
	struct dt_msg_request req = { .epoch = dt_stats_epochs(vm->stats) };
	int r;

	if (vm->reset_pending) {
		/* One outstanding at a time; another follows its completion. */
		vm->reset_wanted = true;
		return;
	}
	r = dt_conn_send(vm->conn, DT_MSG_RESET_RINGS, &req, &vm->reset_seq);
	if (r < 0)
		return; /* the connection is dead: its drop detaches the VM */
	vm->reset_pending = true;
	vm->reset_wanted = false;
	vm->reset_sent_us = dt_now_us();
}

static void vm_harvest_rings(struct dt_vm *vm)
{
	uint64_t start = dt_now_us();

	if (!vm->collector.ops->harvest)
		return;
	if (vm->collector.ops->harvest(&vm->collector) > 0)
		vm_request_reset(vm);
	vm->counters.harvest_us += dt_now_us() - start;
	vm->epoch_harvest_us += dt_now_us() - start;
}

static int on_sync_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct dt_vm *vm = userdata;

	if (!vm->sync_pending || !dt_conn_alive(vm->conn))
		return 0;
	vm->counters.late_syncs++;
	vm->counters.harvest_errors++;
	vm->late_in_a_row++;
	vm_close_epoch(vm);
	return 0;
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct dt_vm *vm = userdata;
	uint64_t now = dt_now_us(), late = now > vm->next_tick ? now - vm->next_tick : 0;
	int r;

	/* How late the loop came to it: the harvest delay other work caused. */
	dt_histogram_observe(&vm->m->tick_lateness, late);
	if (late > vm->m->tick_lateness_max_us)
		vm->m->tick_lateness_max_us = late;
	/* Keep the phase; skip ticks missed while the loop was busy. */
	vm->next_tick += vm->epoch_us;
	if (vm->next_tick <= now) {
		uint64_t missed = (now - vm->next_tick) / vm->epoch_us + 1;

		vm->m->ticks_skipped += missed;
		vm->next_tick += missed * vm->epoch_us;
	}
	sd_event_source_set_time(s, vm->next_tick);
	sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);

	/*
	 * A dead connection's drop is pending and closes the last epoch with
	 * the final harvest (dt_vm_detach): the tick leaves the epoch to it,
	 * here and wherever a send below fails.
	 */
	if (!dt_conn_alive(vm->conn))
		return 0;
	/* A busy host can starve a VMM for a while: that is not death. */
	uint64_t patience = DT_MAX(DT_UNANSWERED_EPOCHS * vm->epoch_us, DT_UNANSWERED_MIN_US);
	if (vm->reset_pending && now - vm->reset_sent_us > patience) {
		dt_conn_fail(vm->conn, "VMM did not answer RESET_RINGS for 10 epochs and 10 s");
		return 0;
	}
	if (vm->late_in_a_row >= DT_UNANSWERED_EPOCHS &&
	    (uint64_t)vm->late_in_a_row * vm->epoch_us >= DT_UNANSWERED_MIN_US) {
		dt_conn_fail(vm->conn, "VMM did not answer SYNC_BITMAP for 10 epochs and 10 s");
		return 0;
	}

	/* Requests name the epoch: a close still in progress completes first. */
	vm_close_finish(vm);
	vm_harvest_rings(vm); /* may send RESET_RINGS */
	if (!dt_conn_alive(vm->conn))
		return 0;
	if (!vm->collector.ops->consume) {
		vm_close_epoch(vm);
		return 0;
	}
	if (vm->sync_pending) /* still waiting from last tick: should not happen */
		vm_close_epoch(vm);
	struct dt_msg_request req = { .epoch = dt_stats_epochs(vm->stats) };
	r = dt_conn_send(vm->conn, DT_MSG_SYNC_BITMAP, &req, &vm->sync_seq);
	if (r < 0)
		return 0;
	vm->sync_pending = true;
	/* Most of an epoch: a busy VMM's sync still lands in its own epoch. */
	sd_event_source_set_time(vm->sync_deadline, now + vm->epoch_us * 9 / 10);
	sd_event_source_set_enabled(vm->sync_deadline, SD_EVENT_ONESHOT);
	return 0;
}

void dt_vm_sync_done(struct dt_vm *vm, uint32_t ref_seq)
{
	/* A late SYNC_DONE (epoch already closed) is harmless: its bits wait. */
	if (!vm->sync_pending || ref_seq != vm->sync_seq)
		return;
	vm->late_in_a_row = 0;
	vm_close_epoch(vm);
}

static void ring_full_clear(struct dt_vm *vm)
{
	size_t words = (vm->vcpus + 63) / 64;

	if (vm->ring_full_taken)
		memset(vm->ring_full_taken, 0, words * sizeof(uint64_t));
}

void dt_vm_reset_done(struct dt_vm *vm, uint32_t ref_seq)
{
	if (!vm->reset_pending || ref_seq != vm->reset_seq)
		return;
	vm->reset_pending = false;
	vm->counters.resets++;
	/* The VMM may run its vCPUs again: their next RING_FULL is harvested. */
	ring_full_clear(vm);
	if (vm->reset_wanted)
		vm_request_reset(vm);
}

/* The coalesced RING_FULL work: each marked vCPU once, then one reset. */
static int on_ring_full(sd_event_source *s, void *userdata)
{
	struct dt_vm *vm = userdata;
	uint64_t start = dt_now_us();

	if (!dt_conn_alive(vm->conn))
		return 0; /* the drop's final harvest takes everything */
	for (uint32_t w = 0; w < (vm->vcpus + 63) / 64; w++) {
		uint64_t bits = vm->ring_full_pending[w];

		vm->ring_full_pending[w] = 0;
		while (bits) {
			uint32_t vcpu = w * 64 + (uint32_t)__builtin_ctzll(bits);

			bits &= bits - 1;
			dt_collector_harvest_vcpu(&vm->collector, vcpu);
			vm->ring_full_taken[w] |= 1ull << (vcpu % 64);
			vm->counters.ring_full_harvests++;
		}
	}
	vm->counters.harvest_us += dt_now_us() - start;
	vm->epoch_harvest_us += dt_now_us() - start;
	/*
	 * Reset even when nothing was harvested (no ring for that vCPU yet,
	 * e.g. while reattaching): the VMM waits for a reset after every
	 * RING_FULL it sends.
	 */
	if (vm->ring_full_reset) {
		vm->ring_full_reset = false;
		vm_request_reset(vm);
	}
	return 0;
}

void dt_vm_ring_full(struct dt_vm *vm, uint32_t vcpu)
{
	vm->counters.ring_full++;
	vm->ring_full_reset = true;
	if (vcpu < vm->vcpus && !(vm->ring_full_taken[vcpu / 64] & (1ull << (vcpu % 64))))
		vm->ring_full_pending[vcpu / 64] |= 1ull << (vcpu % 64);
	/* O(1) per notice: a flood costs one harvest per vCPU, after the wakeup. */
	sd_event_source_set_enabled(vm->ring_full_defer, SD_EVENT_ONESHOT);
}

static int on_retention(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct dt_vm *vm = userdata;

	dt_log(LOG_INFO, "vm %u (%s): retention over, removed", vm->id, vm->name);
	dt_state_forget(vm);
	dt_vm_free(vm);
	return 0;
}

static unsigned page_shift_of(uint32_t page_size)
{
	return (unsigned)__builtin_ctz(page_size);
}

/* observed: a VM seen through libvirt (no collector, no history saved). */
static int vm_create(struct dt_manager *m, const struct dt_msg_hello *h, uint64_t epoch_us,
		     uid_t owner_uid, struct dt_vm_saved *saved, const struct dt_lv_sample *observed,
		     struct dt_vm **ret)
{
	struct dt_stats_config sc;
	struct dt_vm *vm;
	int r;

	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->m = m;
	vm->id = ++m->next_vm_id;
	memcpy(vm->name, h->name, sizeof(vm->name));
	memcpy(vm->vmm, h->vmm, sizeof(vm->vmm));
	memcpy(vm->uuid, h->uuid, sizeof(vm->uuid));
	vm->page_size = h->page_size;
	vm->page_shift = page_shift_of(h->page_size);
	vm->vcpus = h->vcpus;
	vm->owner_uid = owner_uid;
	vm->mode = h->mode;
	vm->caps = h->caps;
	vm->epoch_us = epoch_us;
	vm->state = DT_VM_DETACHED;
	vm->persist.need_snapshot = true;

	stats_config(vm, &sc);
	r = saved ? dt_stats_load(saved->p, saved->len, &saved->used, &sc, vm->vcpus, &vm->stats)
		  : dt_stats_new(&sc, vm->vcpus, &vm->stats);
	if (r < 0)
		goto fail;
	r = dt_collector_init(&vm->collector, vm->mode, vm->vcpus, vm->stats);
	if (r < 0)
		goto fail;
	if (observed) {
		vm->collector.ops = &dt_collector_libvirt_ops;
		vm->state = DT_VM_OBSERVED;
		vm->libvirt = *observed;
		vm->detached_pages = observed->memory_bytes >> vm->page_shift;
		snprintf(vm->libvirt_domain, sizeof(vm->libvirt_domain), "%s", observed->name);
		snprintf(vm->vmm, sizeof(vm->vmm), "libvirt");
	}
	r = sd_event_add_time(m->event, &vm->tick, CLOCK_MONOTONIC, UINT64_MAX, 1000, on_tick, vm);
	if (r < 0)
		goto fail;
	r = sd_event_add_time(m->event, &vm->sync_deadline, CLOCK_MONOTONIC, UINT64_MAX, 1000,
			      on_sync_deadline, vm);
	if (r < 0)
		goto fail;
	r = sd_event_add_time(m->event, &vm->retention, CLOCK_MONOTONIC, UINT64_MAX, 1000000,
			      on_retention, vm);
	if (r < 0)
		goto fail;
	vm->ring_full_pending = calloc((vm->vcpus + 63) / 64, sizeof(uint64_t));
	vm->ring_full_taken = calloc((vm->vcpus + 63) / 64, sizeof(uint64_t));
	r = -ENOMEM;
	if (!vm->ring_full_pending || !vm->ring_full_taken)
		goto fail;
	r = sd_event_add_defer(m->event, &vm->ring_full_defer, on_ring_full, vm);
	if (r < 0)
		goto fail;
	sd_event_source_set_priority(vm->ring_full_defer, SD_EVENT_PRIORITY_IMPORTANT);
	sd_event_source_set_enabled(vm->ring_full_defer, SD_EVENT_OFF);
	/* Normal priority: ticks go first, API work takes turns with the steps. */
	r = sd_event_add_defer(m->event, &vm->close_defer, on_close_step, vm);
	if (r < 0)
		goto fail;
	sd_event_source_set_enabled(vm->close_defer, SD_EVENT_OFF);
	/* The harvest goes before API work that is ready at the same time. */
	sd_event_source_set_priority(vm->tick, SD_EVENT_PRIORITY_IMPORTANT);
	sd_event_source_set_priority(vm->sync_deadline, SD_EVENT_PRIORITY_IMPORTANT);
	sd_event_source_set_enabled(vm->tick, SD_EVENT_OFF);
	sd_event_source_set_enabled(vm->sync_deadline, SD_EVENT_OFF);
	sd_event_source_set_enabled(vm->retention, SD_EVENT_OFF);
	vm->next = m->vms;
	m->vms = vm;
	m->nvms++;
	dt_manager_notify(m, vm, DT_CHANGE_ADDED);
	*ret = vm;
	return 0;
fail:
	dt_vm_free(vm);
	return r;
}

int dt_vm_new(struct dt_manager *m, const struct dt_msg_hello *h, const struct ucred *cred,
	      struct dt_vm **ret)
{
	return vm_create(m, h, m->config.epoch_us, cred->uid, NULL, NULL, ret);
}

int dt_vm_new_observed(struct dt_manager *m, const struct dt_lv_sample *s, struct dt_vm **ret)
{
	struct dt_msg_hello h = {
		.page_size = 4096, /* libvirt gives bytes; only memory_bytes uses it */
		.vcpus = s->vcpus ? s->vcpus : 1,
		.mode = DT_MODE_BITMAP, /* any valid mode: the ops are replaced */
	};

	memcpy(h.uuid, s->uuid, sizeof(h.uuid));
	snprintf(h.name, sizeof(h.name), "%s", s->name);
	return vm_create(m, &h, m->config.epoch_us, 0, NULL, s, ret);
}

void dt_vm_observe(struct dt_vm *vm, const struct dt_lv_sample *s)
{
	bool renamed = strcmp(vm->libvirt_domain, s->name) != 0;

	vm->libvirt = *s;
	vm->detached_pages = s->memory_bytes >> vm->page_shift;
	if (renamed) {
		snprintf(vm->libvirt_domain, sizeof(vm->libvirt_domain), "%s", s->name);
		snprintf(vm->name, sizeof(vm->name), "%s", s->name);
	}
	dt_manager_notify(vm->m, vm, renamed ? DT_CHANGE_STATE : DT_CHANGE_EPOCH);
}

const char *dt_vm_fidelity_name(const struct dt_vm *vm)
{
	if (vm->state == DT_VM_OBSERVED)
		return "sampled";
	return (vm->caps & DT_CAP_VCPU_WRITES_ONLY) ? "exact-vcpu-writes" : "exact";
}

const char *dt_vm_source_name(const struct dt_vm *vm)
{
	static const char *const names[_DT_LV_CALC_MODE_MAX] = {
		[DT_LV_PAGE_SAMPLING] = "libvirt-page-sampling",
		[DT_LV_DIRTY_BITMAP] = "libvirt-dirty-bitmap",
		[DT_LV_DIRTY_RING] = "libvirt-dirty-ring",
	};

	if (vm->state != DT_VM_OBSERVED)
		return "protocol";
	return vm->libvirt.calc_mode < _DT_LV_CALC_MODE_MAX ? names[vm->libvirt.calc_mode]
							    : "libvirt";
}

int dt_vm_restore(struct dt_manager *m, const struct dt_msg_hello *h, uint64_t epoch_us,
		  uid_t owner_uid, struct dt_vm_saved *saved, struct dt_vm **ret)
{
	return vm_create(m, h, epoch_us, owner_uid, saved, NULL, ret);
}

void dt_vm_free(struct dt_vm *vm)
{
	struct dt_manager *m;

	if (!vm)
		return;
	m = vm->m;
	if (vm->conn)
		dt_conn_close(vm->conn, "VM removed"); /* detaches it */
	for (struct dt_vm **p = &m->vms; *p; p = &(*p)->next)
		if (*p == vm) {
			*p = vm->next;
			m->nvms--;
			/* After the unlink: observers see the registry without it. */
			dt_manager_notify(m, vm, DT_CHANGE_REMOVED);
			break;
		}
	sd_event_source_disable_unref(vm->tick);
	sd_event_source_disable_unref(vm->sync_deadline);
	sd_event_source_disable_unref(vm->retention);
	sd_event_source_disable_unref(vm->ring_full_defer);
	sd_event_source_disable_unref(vm->close_defer);
	free(vm->ring_full_pending);
	free(vm->ring_full_taken);
	if (vm->collector.ops)
		dt_collector_done(&vm->collector);
	dt_closed_epoch_free(vm->closed);
	dt_stats_free(vm->stats);
	free(vm);
	/* A VM's history is many small blocks: give the freed pages back, so a
	 * host's RSS after attach churn is what its VMs hold (bench-churn). */
	malloc_trim(0);
}

int dt_vm_attach(struct dt_vm *vm, struct dt_conn *c, const struct ucred *cred)
{
	uint64_t now = dt_now_us();

	vm->conn = c;
	vm->state = DT_VM_ATTACHED;
	vm->detach_reason[0] = 0;
	vm->attached_us = now;
	vm->pid = cred->pid;
	vm->uid = cred->uid;
	vm->counters.attaches++;
	vm->sync_pending = vm->reset_pending = vm->reset_wanted = false;
	vm->late_in_a_row = 0;
	vm->ring_full_reset = false;
	ring_full_clear(vm);
	memset(vm->ring_full_pending, 0, (vm->vcpus + 63) / 64 * sizeof(uint64_t));
	vm->next_tick = now + vm->epoch_us;
	sd_event_source_set_enabled(vm->retention, SD_EVENT_OFF);
	sd_event_source_set_time(vm->tick, vm->next_tick);
	sd_event_source_set_enabled(vm->tick, SD_EVENT_ONESHOT);
	dt_manager_notify(vm->m, vm, DT_CHANGE_STATE);
	return 0;
}

void dt_vm_detach(struct dt_vm *vm, const char *reason)
{
	if (vm->state == DT_VM_DETACHED)
		return;
	vm->detached_pages = dt_slots_active_pages(&vm->collector.slots);
	/* Everything the VMM published is counted, in a last epoch. */
	dt_vm_consume_finish(vm);
	dt_collector_release(&vm->collector);
	vm_close_epoch(vm);
	vm_close_finish(vm); /* the last epoch is whole before anyone sees the VM detached */
	vm->state = DT_VM_DETACHED;
	vm->detached_us = dt_now_us();
	snprintf(vm->detach_reason, sizeof(vm->detach_reason), "%s", reason);
	sd_event_source_set_enabled(vm->tick, SD_EVENT_OFF);
	sd_event_source_set_enabled(vm->sync_deadline, SD_EVENT_OFF);
	sd_event_source_set_enabled(vm->ring_full_defer, SD_EVENT_OFF);
	sd_event_source_set_time(vm->retention, vm->detached_us + vm->m->config.retention_us);
	sd_event_source_set_enabled(vm->retention, SD_EVENT_ONESHOT);
	vm->conn = NULL;
	dt_log(LOG_INFO, "vm %u (%s): detached: %s", vm->id, vm->name, reason);
	dt_manager_notify(vm->m, vm, DT_CHANGE_STATE);
}
