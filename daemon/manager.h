/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's state: event loop, configuration, VM registry, listeners. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "dt_collector.h"
#include "dt_libvirt.h"
#include "dt_proto.h"
#include "dt_stats.h"

struct dt_conn;
struct dt_libvirt;
struct dt_state;

enum dt_vm_state {
	DT_VM_ATTACHED,
	DT_VM_DETACHED,
	DT_VM_OBSERVED, /* seen through libvirt only: a rate, no exact figures */
	_DT_VM_STATE_MAX,
};

struct dt_vm_counters {
	uint64_t harvests; /* epochs closed */
	uint64_t ring_full; /* RING_FULL notices */
	uint64_t ring_full_harvests; /* ring harvests they caused (coalesced: at most one per vCPU per reset) */
	uint64_t resets; /* RESET_RINGS completed */
	uint64_t late_syncs; /* epochs closed without SYNC_DONE in time */
	uint64_t attaches; /* HELLOs accepted for this VM (1 + reattaches) */
	uint64_t harvest_us; /* time spent harvesting and closing epochs */
	uint64_t harvest_errors; /* epochs closed incompletely (late sync, no memory) */
};

/* Harvest time per epoch (ring harvests + closing), for /metrics. */
#define DT_HARVEST_BUCKETS 12
extern const uint64_t dt_harvest_bucket_us[DT_HARVEST_BUCKETS];
struct dt_histogram {
	uint64_t bucket[DT_HARVEST_BUCKETS]; /* observations <= bound, not cumulative */
	uint64_t count;
	uint64_t sum_us;
};
void dt_histogram_observe(struct dt_histogram *h, uint64_t us);

/* Where a VM stands in the state directory (state.c). */
struct dt_vm_persist {
	bool need_snapshot; /* the next close writes a snapshot (start, attach, failure, full queue) */
	uint64_t journal_bytes; /* queued since the last snapshot */
	uint64_t snap_epochs; /* epochs held by the last snapshot */
	uint32_t snap_slots; /* slot table as of the last snapshot */
	uint64_t snap_next_base;
	bool failed; /* the last write failed (logged once until one succeeds) */
	/*
	 * Reported in the VM's JSON, D-Bus and /metrics: what the last failed
	 * write said ("" when the last snapshot was written), the bytes of its
	 * files (<uuid>.state and .journal, as written), and how often its
	 * journal was compacted into a snapshot at [daemon] state_max_bytes_per_vm.
	 */
	char error[256];
	uint64_t disk_bytes;
	uint64_t snap_bytes; /* of the last snapshot queued: the journal comes on top */
	uint64_t quota_compactions;
	bool quota_hit; /* the writer refused a frame at the quota: compact at the next close */
	bool quota_logged;
	uint64_t retry_at_us, retry_delay_us; /* failed: the snapshot is tried again then */
};

#define DT_MEMORY_SAMPLE_MAX (1u << 20) /* pages in one MEMORY_SAMPLE */

struct dt_vm {
	struct dt_vm *next;
	struct dt_manager *m;
	uint32_t id;
	char name[DT_NAME_MAX];
	char vmm[DT_VMM_MAX];
	uint8_t uuid[16];
	uint32_t page_size;
	unsigned page_shift;
	uint32_t vcpus;
	uint32_t mode;
	uint32_t caps;
	enum dt_vm_state state;
	char detach_reason[DT_REASON_MAX];
	uint64_t attached_us; /* CLOCK_MONOTONIC */
	uint64_t detached_us;
	uint64_t detached_pages; /* memory declared when it detached */
	pid_t pid; /* VMM's pid from SO_PEERCRED */
	uid_t uid;
	/*
	 * The uid whose VMM attached it first (kept in its state file): only
	 * that uid, or one of [attach] takeover_users, may reattach it.
	 */
	uid_t owner_uid;
	struct dt_conn *conn; /* NULL when detached */
	struct dt_collector collector;
	struct dt_stats *stats;
	uint64_t epoch_us;
	uint64_t next_tick;
	sd_event_source *tick; /* epoch timer */
	sd_event_source *sync_deadline;
	sd_event_source *retention; /* removal of a detached VM */
	/*
	 * RING_FULL notices are coalesced: a notice marks its vCPU in
	 * ring_full_pending and arms ring_full_defer, which harvests each
	 * marked vCPU once and asks for one reset. A vCPU harvested that way is
	 * in ring_full_taken until the VMM's next RESET_DONE (it cannot publish
	 * more before that): further notices for it are only counted.
	 */
	uint64_t *ring_full_pending, *ring_full_taken; /* vcpus bits each */
	bool ring_full_reset; /* a notice came in: the defer asks for a reset */
	sd_event_source *ring_full_defer;
	uint32_t sync_seq, reset_seq;
	bool sync_pending, reset_pending, reset_wanted;
	uint64_t reset_sent_us;
	unsigned late_in_a_row;
	struct dt_vm_counters counters;
	uint64_t epoch_harvest_us; /* harvest time of the open epoch so far */
	/* A close split into steps (dt_stats_close_step): one step per loop turn. */
	sd_event_source *close_defer;
	bool consuming;		/* the bitmaps' pass before the close, in steps too */
	uint64_t sync_point_us; /* when the epoch being consumed ended */
	uint64_t close_us; /* time its steps took so far */
	uint64_t generation; /* bumped whenever its figures change */
	uint64_t history_bytes; /* heap held by its statistics, as of the last epoch */
	struct dt_vm_persist persist;
	/* The epoch just closed, for the state writer during DT_CHANGE_EPOCH (it takes it). */
	struct dt_closed_epoch *closed;
	/*
	 * The VMM's last MEMORY_SAMPLE: of sampled pages of guest RAM, zero were
	 * all zero (a migration sends those as a header). at_us 0: none yet.
	 */
	struct dt_vm_memory_sample {
		uint64_t sampled, zero, pages;
		uint64_t at_us; /* CLOCK_MONOTONIC */
		uint64_t epoch; /* epochs harvested when it came */
		uint64_t dirtied; /* distinct pages dirtied in the history then */
	} memory_sample;
	char libvirt_domain[DT_NAME_MAX]; /* its libvirt domain's name, "": none known */
	struct dt_lv_sample libvirt; /* DT_VM_OBSERVED: libvirt's last figures */
	uint64_t libvirt_round; /* the collector's round that last saw it */
};

/* What changed, for the API front ends (long-poll, D-Bus signals, ...). */
enum dt_change {
	DT_CHANGE_ADDED, /* a new VM is in the registry */
	DT_CHANGE_REMOVED, /* unlinked from the registry (m->vms, m->nvms), about to be freed */
	DT_CHANGE_STATE, /* attached, detached, slots or identity changed */
	DT_CHANGE_EPOCH, /* an epoch closed: new figures */
	_DT_CHANGE_MAX,
};

struct dt_observer {
	void (*vm_changed)(void *userdata, struct dt_vm *vm, enum dt_change what);
	void *userdata;
};

#define DT_MAX_OBSERVERS 8

struct dt_manager {
	struct dt_observer observers[DT_MAX_OBSERVERS];
	unsigned nobservers;
	sd_event *event;
	struct dt_config config;
	struct dt_vm *vms; /* registry, newest first */
	unsigned nvms;
	uint32_t next_vm_id;
	struct dt_conn *conns;
	unsigned nconns;
	int attach_fd;
	sd_event_source *attach_source;
	unsigned nhandshakes; /* connections without WELCOME (counted against max_handshakes) */
	bool accept_starved; /* accept failed for want of fds: paused until one is freed */
	bool accept_warned; /* that was logged (once until an accept succeeds) */
	sd_event_source *accept_retry; /* re-tries a starved accept */
	uint64_t generation; /* bumped when a VM is added, removed or changes */
	struct dt_histogram harvest_hist;
	struct dt_histogram tick_lateness; /* how late each epoch tick ran */
	uint64_t tick_lateness_max_us;
	uint64_t ticks_skipped; /* ticks missed whole while the loop was busy */
	struct dt_state *state; /* the state writer; NULL: no state directory */
	struct dt_libvirt *libvirt; /* NULL: [libvirt] uri off */
};

int dt_manager_new(struct dt_manager **ret);
struct dt_manager *dt_manager_free(struct dt_manager *m);
/*
 * Bind (or take from socket activation) the attach socket and listen on
 * it; bind (or take) the API socket and hand it to the caller in
 * *ret_api_fd (the front ends are not the manager's: main wires them).
 */
int dt_manager_listen(struct dt_manager *m, int *ret_api_fd);
/*
 * After the front ends observe the registry: the state writer, the
 * restore (observers are told of every restored VM), libvirt.
 */
int dt_manager_start(struct dt_manager *m);
void dt_manager_stop(struct dt_manager *m); /* detach every VMM, close listeners */

/* Registry */
struct dt_vm *dt_manager_find_vm(struct dt_manager *m, const char *key); /* id, uuid or name */
struct dt_vm *dt_manager_find_uuid(struct dt_manager *m, const uint8_t uuid[16]);
unsigned dt_manager_attached(const struct dt_manager *m);
/*
 * Make room for one more VM of owner under [attach] max_vms_per_owner:
 * while it is at its cap, its longest-detached VM is removed (history
 * files too, as at the end of its retention). -EUSERS when every one of
 * its VMs is attached, or (evict false) when it is at its cap at all.
 */
int dt_manager_owner_room(struct dt_manager *m, uid_t owner, bool evict);
/* Register a front end to be told of changes; -ENOSPC when full. */
int dt_manager_observe(struct dt_manager *m, const struct dt_observer *o);
void dt_manager_unobserve(struct dt_manager *m, void *userdata);
/* Bump generations and tell every observer. */
void dt_manager_notify(struct dt_manager *m, struct dt_vm *vm, enum dt_change what);

/* VM lifecycle (vm.c) */
int dt_vm_new(struct dt_manager *m, const struct dt_msg_hello *h, const struct ucred *cred,
	      struct dt_vm **ret);
void dt_vm_free(struct dt_vm *vm); /* unlinks from the registry */
/* A domain seen through libvirt only: state DT_VM_OBSERVED, empty statistics. */
int dt_vm_new_observed(struct dt_manager *m, const struct dt_lv_sample *s, struct dt_vm **ret);
/* Update an observed VM from libvirt's figures (DT_CHANGE_STATE or _EPOCH). */
void dt_vm_observe(struct dt_vm *vm, const struct dt_lv_sample *s);
/* "protocol" or "libvirt-<calc mode>" */
const char *dt_vm_source_name(const struct dt_vm *vm);
/*
 * Which writers the figures cover: "exact" (every write, the VMM's own
 * included), "exact-vcpu-writes" (HELLO cap VCPU_WRITES_ONLY: the VMM's
 * device emulation and vhost writes are not in them), "sampled" (observed
 * through libvirt's calc).
 */
const char *dt_vm_fidelity_name(const struct dt_vm *vm);
/*
 * A VM saved in the state directory: identity from h and epoch_us, its
 * statistics decoded from saved's bytes (dt_stats_load's errors; saved->used
 * is set to the bytes they took). Listed detached.
 */
struct dt_vm_saved {
	const void *p;
	size_t len;
	size_t used;
};
int dt_vm_restore(struct dt_manager *m, const struct dt_msg_hello *h, uint64_t epoch_us,
		  uid_t owner_uid, struct dt_vm_saved *saved, struct dt_vm **ret);
int dt_vm_attach(struct dt_vm *vm, struct dt_conn *c, const struct ucred *cred);
/*
 * The VMM went away (or was dropped): final harvest, last epoch, keep the
 * figures. Called only by the connection's drop (attach.c); to drop a VMM,
 * dt_conn_fail() its connection.
 */
void dt_vm_detach(struct dt_vm *vm, const char *reason);
/* Messages that drive the harvest */
void dt_vm_ring_full(struct dt_vm *vm, uint32_t vcpu);
void dt_vm_reset_done(struct dt_vm *vm, uint32_t ref_seq);
void dt_vm_sync_done(struct dt_vm *vm, uint32_t ref_seq);
/* A bitmap pass in progress completes and its epoch's close begins (before REMOVE_SLOT, DETACH). */
void dt_vm_consume_finish(struct dt_vm *vm);
const char *dt_vm_state_name(enum dt_vm_state s);
/* Pages of memory the VM declares (or declared when it detached). */
uint64_t dt_vm_memory_pages(const struct dt_vm *vm);
/* Window (in epochs) for a duration, at least 1. */
uint32_t dt_vm_window_epochs(const struct dt_vm *vm, uint64_t window_us);

/*
 * State directory (state.c): VM histories across restarts. Restore at
 * start, save every VM at a clean stop (after the detach), and between the
 * two, after each closed epoch, a journal frame or a snapshot. Forget
 * removes a VM's files (retention over, replaced by another machine).
 */
void dt_state_restore(struct dt_manager *m);
void dt_state_save_all(struct dt_manager *m);
void dt_state_forget(struct dt_vm *vm);
/*
 * The state writer: an observer of closed epochs that hands their frames
 * and the snapshots to its thread (every write to the state directory is
 * made there). Start before the restore; stop after the final save: it
 * drains the queue (bounded) and joins the thread.
 */
int dt_state_start(struct dt_manager *m);
void dt_state_stop(struct dt_manager *m);
/* Whether vm's closed epochs are journaled (vm_close_epoch then hands them over). */
bool dt_state_wants_epochs(const struct dt_vm *vm);
struct dt_state_stats {
	bool enabled;
	uint64_t frames_written, snapshots_written, bytes_written, write_errors;
	uint64_t frames_coalesced; /* frames not queued (queue full): the next snapshot has them */
	uint64_t snapshots_deferred; /* snapshots put off to a later epoch (queue full) */
	size_t queued_jobs, queued_bytes, max_bytes;
	uint64_t max_wait_us; /* longest a write waited in the queue */
	uint64_t quota_compactions; /* journals compacted at state_max_bytes_per_vm */
	uint64_t quota_refusals; /* writes not made: over the quota */
	uint32_t vms_failing; /* VMs whose last write failed (state_error set) */
};
void dt_state_get_stats(const struct dt_manager *m, struct dt_state_stats *ret);
/*
 * A VM about to be replaced by another machine with its uuid: write its
 * whole history to <uuid>.state.replaced (one is kept; never restored) and
 * clear its live files. *ret_path: that file, or NULL when nothing is saved
 * (no state directory, no uuid). Nothing is removed on failure.
 */
int dt_state_set_aside(struct dt_vm *vm, char **ret_path);

/* libvirt collector glue (libvirt.c): start with [libvirt] uri set, stop before freeing VMs. */
int dt_libvirt_start(struct dt_manager *m);
void dt_libvirt_stop(struct dt_manager *m);

/* Attach connections (attach.c) */
int dt_attach_listen(struct dt_manager *m, int fd);
/*
 * Send a message to the VMM: -ENOTCONN on a dead (or NULL) connection. A
 * failed send marks the connection dead (dt_conn_fail); it never frees or
 * detaches anything, so the caller's VM and connection stay valid.
 */
int dt_conn_send(struct dt_conn *c, uint16_t type, const void *payload, uint32_t *ret_seq);
/* false once the connection is marked dead (or c is NULL). */
bool dt_conn_alive(const struct dt_conn *c);
/*
 * Mark a connection dead with a reason (the first one is kept): nothing
 * more is read from it or sent on it, and a deferred event detaches its VM
 * (dt_vm_detach, with that reason) and frees it after the work at hand.
 */
void dt_conn_fail(struct dt_conn *c, const char *reason);
/* Drop a connection now (daemon stop, VM removal): never from its own callbacks. */
void dt_conn_close(struct dt_conn *c, const char *reason);
