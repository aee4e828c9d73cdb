/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VM histories in the state directory, so that a restart does not lose them.
 *
 * Each VM with a uuid has <uuid>.state, a snapshot: its identity (name,
 * VMM, uuid, page size, vCPUs, mode, epoch, counters, its owner's uid, slots
 * with their dense bases, so a reattached slot maps to the same page
 * indexes) and its statistics (dt_stats_save). Version 1 files, written
 * before owners were kept, load as owned by root. Snapshots are written whole to a temporary
 * file, fsync'd and renamed over the old one, then the directory is
 * fsync'd: a crash leaves the old snapshot or the new one.
 *
 * Between snapshots each closed epoch is appended to <uuid>.journal as one
 * self-checking frame (dt_persist_frame of the epoch dt_stats_close_epoch
 * handed back: its dirty set, its record, each vCPU's pages) and
 * fdatasync'd. A snapshot is written instead at the first close after a
 * start or an attach, whenever the slot table changed, and every [daemon]
 * snapshot_epochs epochs; the journal is then emptied. At start the
 * snapshot is loaded, the journal replayed after it (frames of older
 * epochs skipped, a torn tail dropped), and a fresh snapshot written so
 * the journal starts empty again.
 *
 * The writer. No file is written on the event loop: this file is an
 * observer of closed epochs that queues each write as a job for one writer
 * thread (worker.c), which encodes the frame, writes, fsyncs and renames,
 * in order. The loop only encodes snapshots into memory (it owns the
 * statistics; a frame is encoded on the thread from the epoch handed
 * back). The queue is bounded ([daemon] state_queue, state_queue_size): when
 * it is full a frame is not queued and a snapshot is deferred; the VM then
 * takes a snapshot at the first close that finds room, which holds every
 * epoch whose frame was not written. Nothing recorded is lost; a crash
 * meanwhile loses the epochs since the last write that completed (normally
 * the one or two in flight). Counted in /metrics (dirtytrackd_state_*).
 * At a clean stop every VM's snapshot is queued and the queue drained (for
 * at most [daemon] state_drain_timeout: a hung state directory cannot hold the exit for
 * ever); write failures come back to the loop (see Failures below).
 *
 * Cost, measured with a VM of 4 vCPUs dirtying 1M random pages of 4M per
 * epoch (DT_PERSIST_BENCH=1 tests/unit/test_persist): handing the epoch
 * back adds ~1 ms to the ~75 ms close, a frame is ~1.5 MB, encoded on
 * the writer thread in ~2 ms, its write and fdatasync 3-7 ms on ext4 over
 * virtio; a snapshot of 10 such epochs is ~55 MB (see bench/README.md for
 * its encoding on the loop) and ~0.35 s to load.
 *
 * Quota ([daemon] state_max_bytes_per_vm): a VM's <uuid>.state and
 * <uuid>.journal together stay within it, so one VM cannot fill the
 * directory every VM writes to. The loop compacts the journal into a
 * snapshot when the next frame would not fit (by its estimate); the
 * writer enforces it exactly (it stats the files it appends to) and
 * refuses a frame beyond it, which the loop then compacts the same way.
 * Compactions are logged once per VM and counted; nothing leaves memory.
 *
 * Failures (ENOSPC, EIO, a snapshot over the quota) are reported, never
 * silent: the VM's persist.error (REST state_error, D-Bus StateError,
 * dirtytrackd_vm_state_error) names the file and the errno, a log line
 * says the same. No frame is written after a failure (it would not replay
 * after the gap); a timer retries the VM's snapshot after 1 s, then up to
 * every 10 s, also for a detached VM; once written the error clears.
 *
 * Reading: a snapshot and a journal are read whole through dt_file_read
 * (regular files only, at most STATE_FILE_MAX_BYTES) and decoded from
 * memory (the stats core does no I/O). A file that does not load (corrupt,
 * truncated, another [stats] configuration) is logged with the reason and
 * renamed *.bad; the daemon starts regardless. Counters other than the figures (harvests, attaches)
 * are as of the snapshot, plus the epochs replayed.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "dt_buf.h"
#include "dt_file.h"
#include "dt_util.h"
#include "log.h"
#include "manager.h"
#include "worker.h"

#define STATE_MAGIC	  "DTVMST01"
#define STATE_VERSION	  2u /* 2: the owner block after the head */
#define JOURNAL_MAX_BYTES (256ull << 20) /* a snapshot comes first beyond this */
/*
 * A state file or journal is read whole into memory at start: larger is
 * not one the daemon wrote (a snapshot is ~4 bytes per page dirtied within
 * the horizon per index); it is left where it is, and logged.
 */
#define STATE_FILE_MAX_BYTES (16ull << 30)

/* The identity block, byte for byte as written (little-endian host assumed below). */
struct state_head {
	char magic[8];
	uint32_t version;
	uint32_t nslots;
	char name[DT_NAME_MAX];
	char vmm[DT_VMM_MAX];
	uint8_t uuid[16];
	uint32_t page_size, vcpus, mode, caps;
	uint64_t epoch_us;
	uint64_t harvests, ring_full, resets, late_syncs, attaches, harvest_us, harvest_errors;
	uint64_t detached_pages;
	uint64_t saved_realtime_us; /* CLOCK_REALTIME of the save, for the log */
	uint64_t next_base;
};

/* Version 2: who may reattach the VM (see dt_vm.owner_uid). */
struct state_owner {
	uint32_t owner_uid;
	uint32_t reserved; /* 0 */
};

struct state_slot {
	uint32_t slot, base;
	uint64_t gpa, pages;
};

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "state files are little-endian");
_Static_assert(sizeof(struct state_head) == 8 + 8 + DT_NAME_MAX + DT_VMM_MAX + 16 + 16 + 8 + 80,
	       "no padding in the state head");
_Static_assert(sizeof(struct state_slot) == 24, "no padding in a state slot");
_Static_assert(sizeof(struct state_owner) == 8, "no padding in the owner block");

/* CRC-32 (IEEE) of the head and slots; the statistics carry their own. */
static uint32_t crc32_bits(uint32_t crc, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? 0xedb88320u ^ (crc >> 1) : crc >> 1;
	}
	return ~crc;
}

static bool enabled(const struct dt_vm *vm)
{
	/* Observed VMs (libvirt) have no exact history to keep. */
	return vm->m->config.state_dir && !dt_uuid_is_null(vm->uuid) &&
	       vm->state != DT_VM_OBSERVED;
}

static int vm_path(const struct dt_vm *vm, const char *suffix, char **ret)
{
	char u[37];

	dt_uuid_format(vm->uuid, u);
	if (asprintf(ret, "%s/%s%s", vm->m->config.state_dir, u, suffix) < 0)
		return -ENOMEM;
	return 0;
}

static uint64_t realtime_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- encoding (loop thread) ------------------------------------------------ */

/* The whole snapshot file in memory: identity block, slots, statistics. */
static int encode_state(const struct dt_vm *vm, struct dt_buf *out, size_t *ret_stats_at)
{
	const struct dt_slot_table *t = &vm->collector.slots;
	struct state_head h = {
	    .version = STATE_VERSION,
	    .nslots = t->n,
	    .page_size = vm->page_size,
	    .vcpus = vm->vcpus,
	    .mode = vm->mode,
	    .caps = vm->caps,
	    .epoch_us = vm->epoch_us,
	    .harvests = vm->counters.harvests,
	    .ring_full = vm->counters.ring_full,
	    .resets = vm->counters.resets,
	    .late_syncs = vm->counters.late_syncs,
	    .attaches = vm->counters.attaches,
	    .harvest_us = vm->counters.harvest_us,
	    .harvest_errors = vm->counters.harvest_errors,
	    .detached_pages = dt_vm_memory_pages(vm),
	    .saved_realtime_us = realtime_us(),
	    .next_base = t->next_base,
	};
	struct state_owner o = { .owner_uid = vm->owner_uid };
	uint32_t crc;

	memcpy(h.magic, STATE_MAGIC, 8);
	memcpy(h.name, vm->name, sizeof(h.name));
	memcpy(h.vmm, vm->vmm, sizeof(h.vmm));
	memcpy(h.uuid, vm->uuid, sizeof(h.uuid));
	dt_buf_put(out, &h, sizeof(h));
	dt_buf_put(out, &o, sizeof(o));
	crc = crc32_bits(0, &h, sizeof(h));
	crc = crc32_bits(crc, &o, sizeof(o));
	for (uint32_t i = 0; i < t->n; i++) {
		struct state_slot s = {
		    .slot = t->slots[i].slot,
		    .base = t->slots[i].base,
		    .gpa = t->slots[i].gpa,
		    .pages = t->slots[i].pages,
		};

		dt_buf_put(out, &s, sizeof(s));
		crc = crc32_bits(crc, &s, sizeof(s));
	}
	dt_buf_put(out, &crc, sizeof(crc));
	if (out->err)
		return out->err;
	/* The statistics' CRCs are computed on the writer thread (dt_persist_seal). */
	*ret_stats_at = out->len;
	return dt_stats_save_unsealed(vm->stats, out);
}

/* ---- the writer: every write to the state directory, on its thread --------- */

/*
 * Bounds of the writer's queue. A frame that does not fit is not queued:
 * the VM's next snapshot (taken when the queue has room again) covers its
 * epoch and every one after it, so nothing recorded is lost, only the
 * journal's crash protection is coarser meanwhile; both are counted
 * (dirtytrackd_state_frames_coalesced_total, _snapshots_deferred_total).
 */

enum job_kind {
	JOB_FRAME,    /* append a closed epoch's frame to path, fdatasync */
	JOB_SNAPSHOT, /* data to path (temporary, fsync, rename, fsync dir), then empty or
		       * remove the files in `then` */
	JOB_UNLINK,   /* remove path and then[0], fsync dir */
};

struct state_job {
	struct dt_job job;
	struct dt_state *st;
	enum job_kind kind;
	bool saving; /* the stop's final save: logged with its figures */
	bool superseded; /* taken back unwritten: a later snapshot of the VM holds it */
	uint32_t vm_id;
	char *path, *then[2];
	bool remove_then; /* JOB_SNAPSHOT: remove them (else truncate) once it is written */
	struct dt_closed_epoch *closed; /* JOB_FRAME */
	struct dt_buf data;		/* JOB_SNAPSHOT; JOB_FRAME: its encoding */
	size_t stats_at;		/* JOB_SNAPSHOT: where the statistics (to seal) start */
	uint64_t epochs, pages;		/* for the log of a final save */
	uint64_t max_bytes;		/* the VM's quota (0: none): see append_frame, replace_file */
	bool aside;			/* JOB_SNAPSHOT to <uuid>.state.replaced */
	int r;				/* run's result */
};

struct dt_state {
	struct dt_manager *m;
	struct dt_worker *w;
	sd_event_source *retry; /* the next snapshot retry of a VM whose write failed */
	struct dt_state_stats stats;
	unsigned saving, saved, save_failed; /* the stop's final save */
};

/*
 * The quota counts <uuid>.state and <uuid>.journal as they are on disk
 * (stat'd here, on the thread that writes them, so the count is exact):
 * a frame that would take them beyond it is not written (-EDQUOT), and the
 * loop compacts the journal into a snapshot instead.
 */
static int append_frame(struct state_job *j)
{
	uint64_t room = UINT64_MAX;
	int r = dt_persist_frame(j->closed, &j->data);

	if (r < 0)
		return r;
	if (j->max_bytes) {
		int64_t snap = dt_file_size(j->then[0]);

		if (snap < 0)
			return (int)snap;
		room = j->max_bytes > (uint64_t)snap ? j->max_bytes - (uint64_t)snap : 0;
	}
	return dt_file_append(j->path, j->data.p, j->data.len, room);
}

/* Atomically: a crash leaves the old file or the new one. */
static int replace_file(struct state_job *j)
{
	int r;

	/* A snapshot empties the journal: alone, it must fit (the old one goes at the rename). */
	if (j->max_bytes && j->data.len > j->max_bytes)
		return -EDQUOT;
	r = dt_persist_seal(j->data.p + j->stats_at, j->data.len - j->stats_at);
	if (r < 0)
		return r;
	r = dt_file_replace(j->path, j->data.p, j->data.len);
	if (r < 0)
		return r;
	/* Frames up to the snapshot's epoch are in it; a crash before this is harmless. */
	for (unsigned i = 0; i < ARRAY_SIZE(j->then) && j->then[i]; i++) {
		if (j->remove_then)
			(void)unlink(j->then[i]);
		else if ((r = dt_file_truncate(j->then[i])) < 0)
			return r;
	}
	if (j->remove_then)
		(void)dt_file_fsync_dir(j->path);
	return 0;
}

static void job_run(struct dt_job *dj)
{
	struct state_job *j = (struct state_job *)dj;

	switch (j->kind) {
	case JOB_FRAME:
		j->r = append_frame(j);
		break;
	case JOB_SNAPSHOT:
		j->r = replace_file(j);
		break;
	case JOB_UNLINK:
		(void)unlink(j->path);
		if (j->then[0])
			(void)unlink(j->then[0]);
		(void)dt_file_fsync_dir(j->path);
		j->r = 0;
		break;
	}
}

static struct dt_vm *vm_by_id(struct dt_manager *m, uint32_t id)
{
	for (struct dt_vm *vm = m->vms; vm; vm = vm->next)
		if (vm->id == id)
			return vm;
	return NULL;
}

#define RETRY_FIRST_US (1ull * 1000000)
#define RETRY_MAX_US   (10ull * 1000000)

static void arm_retry(struct dt_state *st)
{
	uint64_t next = UINT64_MAX;

	for (struct dt_vm *vm = st->m->vms; vm; vm = vm->next)
		if (vm->persist.failed && vm->persist.need_snapshot && vm->persist.retry_at_us < next)
			next = vm->persist.retry_at_us;
	if (!st->retry)
		return;
	if (next == UINT64_MAX) {
		sd_event_source_set_enabled(st->retry, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time(st->retry, next);
	sd_event_source_set_enabled(st->retry, SD_EVENT_ONESHOT);
}

/*
 * A write failed (a full or failing disk, the quota): reported in the VM's
 * state_error, logged naming the file and the errno (once per errno until
 * a snapshot is written again), and counted. The history stays whole in
 * memory; no frame is written until a snapshot, tried again after 1 s,
 * then up to every RETRY_MAX_US, holds it all on disk again.
 */
static void persist_failed(struct dt_vm *vm, const char *path, size_t bytes, int r)
{
	struct dt_vm_persist *p = &vm->persist;
	_cleanup_free_ char *own = NULL;
	char msg[sizeof(p->error)];

	if (!path && vm_path(vm, ".state", &own) >= 0)
		path = own;
	if (r == -EDQUOT)
		snprintf(msg, sizeof(msg),
			 "cannot write %s: its snapshot (%zu bytes) is over [daemon] "
			 "state_max_bytes_per_vm (%llu bytes) (EDQUOT)",
			 path ? path : "?", bytes,
			 (unsigned long long)vm->m->config.state_max_bytes_per_vm);
	else
		snprintf(msg, sizeof(msg), "cannot write %s: %s (%s)", path ? path : "?",
			 strerror(-r), strerrorname_np(-r) ? strerrorname_np(-r) : "?");
	if (!p->failed || strcmp(msg, p->error) != 0)
		dt_log(LOG_WARNING,
		       "vm %u (%s): %s; its history stays whole in memory, a snapshot is tried "
		       "again (logged once)",
		       vm->id, vm->name, msg);
	memcpy(p->error, msg, sizeof(p->error));
	p->retry_delay_us = p->failed ? DT_MIN(2 * DT_MAX(p->retry_delay_us, RETRY_FIRST_US),
					       RETRY_MAX_US)
				      : RETRY_FIRST_US;
	p->retry_at_us = dt_now_us() + p->retry_delay_us;
	p->failed = true;
	/* Start over with a snapshot, at the retry. */
	p->need_snapshot = true;
	if (vm->m->state)
		arm_retry(vm->m->state);
}

static void job_free(struct state_job *j)
{
	dt_closed_epoch_free(j->closed);
	dt_buf_done(&j->data);
	free(j->path);
	free(j->then[0]);
	free(j->then[1]);
	free(j);
}

enum snap_kind {
	SNAP_CHECKPOINT, /* <uuid>.state, the journal emptied */
	SNAP_FINAL,	 /* <uuid>.state, the journal removed (a clean stop) */
	SNAP_ASIDE,	 /* <uuid>.state.replaced, the live files removed */
};
static int queue_snapshot(struct dt_vm *vm, enum snap_kind kind, bool force);
static void note_compaction(struct dt_state *st, struct dt_vm *vm);

/* On the loop thread: the VM (if still listed) learns how its write went. */
static void job_done(struct dt_job *dj)
{
	struct state_job *j = (struct state_job *)dj;
	struct dt_state *st = j->st;
	struct dt_vm *vm = vm_by_id(st->m, j->vm_id);
	int r = dj->ran ? j->r : -ETIMEDOUT;
	char was[sizeof(vm->persist.error)];

	if (vm)
		memcpy(was, vm->persist.error, sizeof(was));
	if (j->superseded) {
		if (j->kind == JOB_FRAME)
			st->stats.frames_coalesced++;
	} else if (r == -EDQUOT && j->kind == JOB_FRAME) {
		/* Not an error: the journal is compacted into a snapshot at the next close. */
		st->stats.quota_refusals++;
		if (vm) {
			vm->persist.quota_hit = true;
			vm->persist.need_snapshot = true;
			/* No close may follow (a detached VM): compact now. */
			if (vm->state != DT_VM_ATTACHED && queue_snapshot(vm, SNAP_CHECKPOINT, false) >= 0)
				note_compaction(st, vm);
		}
	} else if (r < 0) {
		st->stats.write_errors++;
		if (r == -EDQUOT)
			st->stats.quota_refusals++;
		if (vm && j->kind != JOB_UNLINK)
			persist_failed(vm, j->path, j->data.len, r);
		if (j->saving) {
			dt_log(LOG_ERR, "vm %u: cannot save its history to %s: %s", j->vm_id,
			       j->path, strerror(-r));
			st->save_failed++;
		}
	} else {
		if (j->kind == JOB_FRAME)
			st->stats.frames_written++;
		else if (j->kind == JOB_SNAPSHOT)
			st->stats.snapshots_written++;
		st->stats.bytes_written += j->data.len;
		if (vm && j->kind == JOB_FRAME)
			vm->persist.disk_bytes += j->data.len;
		if (vm && j->kind == JOB_SNAPSHOT && !j->aside)
			vm->persist.disk_bytes = j->data.len; /* the journal was emptied */
		/* A snapshot succeeded: its journal starts over, the failure is behind. */
		if (vm && j->kind == JOB_SNAPSHOT && !j->aside && vm->persist.failed) {
			dt_log(LOG_INFO, "vm %u (%s): its history is written again (%s, %zu bytes)",
			       vm->id, vm->name, j->path, j->data.len);
			vm->persist.failed = false;
			vm->persist.error[0] = 0;
			vm->persist.retry_delay_us = 0;
		}
		if (j->saving) {
			dt_log(LOG_INFO, "vm %u (%s): saved: %llu epochs, %llu pages in the history",
			       j->vm_id, vm ? vm->name : "?", (unsigned long long)j->epochs,
			       (unsigned long long)j->pages);
			st->saved++;
		}
	}
	/* Its state_error changed: the API's views and D-Bus learn it (no epoch may follow). */
	if (vm && strcmp(was, vm->persist.error) != 0)
		dt_manager_notify(st->m, vm, DT_CHANGE_STATE);
	job_free(j);
}

static struct state_job *job_new(struct dt_vm *vm, enum job_kind kind, const char *suffix,
				 const char *then0, const char *then1)
{
	struct state_job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->job.run = job_run;
	j->job.done = job_done;
	j->st = vm->m->state;
	j->kind = kind;
	j->vm_id = vm->id;
	if (vm_path(vm, suffix, &j->path) < 0 || (then0 && vm_path(vm, then0, &j->then[0]) < 0) ||
	    (then1 && vm_path(vm, then1, &j->then[1]) < 0)) {
		job_free(j);
		return NULL;
	}
	return j;
}

static int submit(struct state_job *j, bool force)
{
	int r = dt_worker_submit(j->st->w, &j->job, force);

	if (r < 0)
		job_free(j);
	return r;
}

/*
 * A snapshot holds every epoch: the VM's frames and checkpoints still
 * waiting before it need not be written (a slow disk's backlog shrinks to
 * one file per VM; at stop, the final saves do not wait behind frames).
 */
static bool supersedes(struct dt_job *dj, void *ud)
{
	struct state_job *j = (struct state_job *)dj, *snap = ud;

	if (j->job.done != job_done || j->vm_id != snap->vm_id)
		return false;
	if (j->kind == JOB_FRAME || (j->kind == JOB_SNAPSHOT && !j->remove_then)) {
		j->superseded = true;
		return true;
	}
	return false;
}


/*
 * Encode the VM's snapshot here (the loop owns its statistics) and queue
 * its write; force for the saves that must happen (start, stop, set
 * aside), else -EAGAIN when the queue is full. What follows the write
 * (emptying or removing files) happens only once it succeeded.
 */
static int queue_snapshot(struct dt_vm *vm, enum snap_kind kind, bool force)
{
	struct dt_state *st = vm->m->state;
	struct state_job *j;
	int r;

	if (!st)
		return -ESHUTDOWN;
	if (!force && !dt_worker_has_room(st->w, vm->history_bytes)) {
		st->stats.snapshots_deferred++;
		return -EAGAIN;
	}
	j = kind == SNAP_ASIDE ? job_new(vm, JOB_SNAPSHOT, ".state.replaced", ".state", ".journal")
			       : job_new(vm, JOB_SNAPSHOT, ".state", ".journal", NULL);
	if (!j)
		return -ENOMEM;
	j->remove_then = kind != SNAP_CHECKPOINT;
	j->saving = kind == SNAP_FINAL;
	j->aside = kind == SNAP_ASIDE;
	if (kind != SNAP_ASIDE)
		j->max_bytes = vm->m->config.state_max_bytes_per_vm;
	r = encode_state(vm, &j->data, &j->stats_at);
	if (r < 0) {
		job_free(j);
		return r;
	}
	j->job.bytes = j->data.len;
	if (kind != SNAP_ASIDE)
		dt_worker_cancel_if(st->w, supersedes, j);
	j->epochs = dt_stats_epochs(vm->stats);
	j->pages = dt_stats_wss(vm->stats, dt_stats_config(vm->stats)->horizon_epochs);
	r = submit(j, force);
	if (r == -EAGAIN)
		st->stats.snapshots_deferred++;
	if (r < 0)
		return r;
	vm->persist.need_snapshot = false;
	vm->persist.snap_epochs = dt_stats_epochs(vm->stats);
	vm->persist.snap_slots = vm->collector.slots.n;
	vm->persist.snap_next_base = vm->collector.slots.next_base;
	vm->persist.journal_bytes = 0;
	if (kind != SNAP_ASIDE)
		vm->persist.snap_bytes = j->job.bytes;
	return 0;
}

static int queue_unlink(struct dt_vm *vm)
{
	struct state_job *j;

	if (!vm->m->state)
		return -ESHUTDOWN;
	j = job_new(vm, JOB_UNLINK, ".state", ".journal", NULL);
	if (!j)
		return -ENOMEM;
	return submit(j, true);
}

/* Over its quota: its journal compacted into a snapshot (counted, logged once per VM). */
static void note_compaction(struct dt_state *st, struct dt_vm *vm)
{
	struct dt_vm_persist *p = &vm->persist;

	p->quota_hit = false;
	p->quota_compactions++;
	st->stats.quota_compactions++;
	if (p->quota_logged)
		return;
	p->quota_logged = true;
	dt_log(LOG_NOTICE,
	       "vm %u (%s): its files in %s reached [daemon] state_max_bytes_per_vm (%llu bytes): "
	       "its journal is compacted into a snapshot (logged once; counted in "
	       "dirtytrackd_vm_state_compactions_total)",
	       vm->id, vm->name, vm->m->config.state_dir,
	       (unsigned long long)vm->m->config.state_max_bytes_per_vm);
}

/* The observer: after each closed epoch, a journal frame or a snapshot. */
static void epoch_closed(struct dt_state *st, struct dt_vm *vm)
{
	const struct dt_vm_persist *p = &vm->persist;
	struct dt_closed_epoch *closed = TAKE_PTR(vm->closed);
	uint64_t quota = vm->m->config.state_max_bytes_per_vm;
	struct state_job *j;
	bool snap, compact;
	int r;

	if (!enabled(vm) || !closed) {
		dt_closed_epoch_free(closed);
		return;
	}
	if (p->failed && p->need_snapshot) {
		/* The retry's snapshot will hold it (arm_retry); a frame now would not replay. */
		dt_closed_epoch_free(closed);
		st->stats.frames_coalesced++;
		return;
	}
	compact = quota && (p->quota_hit || p->snap_bytes + p->journal_bytes +
						    dt_closed_epoch_bytes(closed) > quota);
	snap = p->need_snapshot || p->snap_slots != vm->collector.slots.n ||
	       p->snap_next_base != vm->collector.slots.next_base ||
	       dt_stats_epochs(vm->stats) - p->snap_epochs >= vm->m->config.snapshot_epochs ||
	       p->journal_bytes >= JOURNAL_MAX_BYTES;
	if (snap || compact) {
		dt_closed_epoch_free(closed);
		r = queue_snapshot(vm, SNAP_CHECKPOINT, false);
		if (r == -EAGAIN) {
			/* Its frames wait in the snapshot that follows when there is room. */
			st->stats.frames_coalesced++;
			vm->persist.need_snapshot = true;
		} else if (r < 0)
			persist_failed(vm, NULL, 0, r);
		else if (compact && !snap)
			note_compaction(st, vm);
		return;
	}
	j = job_new(vm, JOB_FRAME, ".journal", ".state", NULL);
	if (!j) {
		dt_closed_epoch_free(closed);
		persist_failed(vm, NULL, 0, -ENOMEM);
		return;
	}
	j->closed = closed;
	j->max_bytes = quota;
	j->job.bytes = dt_closed_epoch_bytes(closed);
	vm->persist.journal_bytes += j->job.bytes;
	r = submit(j, false);
	if (r == -EAGAIN) {
		st->stats.frames_coalesced++;
		vm->persist.need_snapshot = true;
	} else if (r < 0)
		persist_failed(vm, NULL, 0, r);
}

/* A failed VM's snapshot, tried again (also for a detached VM: no epoch closes then). */
static int on_retry(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct dt_state *st = userdata;
	uint64_t now = dt_now_us();

	for (struct dt_vm *vm = st->m->vms; vm; vm = vm->next) {
		struct dt_vm_persist *p = &vm->persist;
		int r;

		if (!enabled(vm) || !p->failed || !p->need_snapshot || p->retry_at_us > now)
			continue;
		r = queue_snapshot(vm, SNAP_CHECKPOINT, false);
		if (r == -EAGAIN)
			p->retry_at_us = now + RETRY_FIRST_US; /* the queue is full: soon */
		else if (r < 0) {
			char was[sizeof(p->error)];

			memcpy(was, p->error, sizeof(was));
			persist_failed(vm, NULL, 0, r);
			if (strcmp(was, p->error) != 0)
				dt_manager_notify(st->m, vm, DT_CHANGE_STATE);
		}
	}
	arm_retry(st);
	return 0;
}

static void on_vm_changed(void *userdata, struct dt_vm *vm, enum dt_change what)
{
	if (what == DT_CHANGE_EPOCH)
		epoch_closed(userdata, vm);
}

bool dt_state_wants_epochs(const struct dt_vm *vm)
{
	return vm->m->state && enabled(vm);
}

int dt_state_start(struct dt_manager *m)
{
	const struct dt_observer o = { .vm_changed = on_vm_changed };
	struct dt_state *st;
	int r;

	if (!m->config.state_dir || m->state)
		return 0;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->m = m;
	r = dt_worker_new(m->event, "dt-state", 5, m->config.state_queue, m->config.state_queue_size,
			  &st->w);
	if (r < 0) {
		free(st);
		return r;
	}
	r = sd_event_add_time(m->event, &st->retry, CLOCK_MONOTONIC, UINT64_MAX, 100000, on_retry,
			      st);
	if (r < 0) {
		dt_worker_free(st->w, 0);
		free(st);
		return r;
	}
	sd_event_source_set_enabled(st->retry, SD_EVENT_OFF);
	struct dt_observer so = o;
	so.userdata = st;
	r = dt_manager_observe(m, &so);
	if (r < 0) {
		sd_event_source_disable_unref(st->retry);
		dt_worker_free(st->w, 0);
		free(st);
		return r;
	}
	m->state = st;
	return 0;
}

void dt_state_stop(struct dt_manager *m)
{
	struct dt_state *st = m->state;
	uint64_t start = dt_now_us();
	int r;

	if (!st)
		return;
	r = dt_worker_drain(st->w, m->config.state_drain_us);
	if (r < 0)
		dt_log(LOG_ERR, "state: %s did not take the last writes in %llu s: exiting without "
				"them (the files hold what was written before)",
		       m->config.state_dir, (unsigned long long)m->config.state_drain_us / 1000000);
	if (st->saving)
		dt_log(LOG_INFO, "state: %u VM%s saved in %s in %llu ms%s", st->saved,
		       st->saved == 1 ? "" : "s", m->config.state_dir,
		       (unsigned long long)(dt_now_us() - start) / 1000,
		       st->save_failed || st->saved < st->saving ? " (some could not be, see above)"
								 : "");
	dt_manager_unobserve(m, st);
	st->retry = sd_event_source_disable_unref(st->retry);
	m->state = NULL;
	dt_worker_free(st->w, r < 0 ? 0 : m->config.state_drain_us);
	free(st);
}

void dt_state_get_stats(const struct dt_manager *m, struct dt_state_stats *ret)
{
	struct dt_worker_stats ws;

	*ret = (struct dt_state_stats){ 0 };
	if (!m->state)
		return;
	*ret = m->state->stats;
	for (const struct dt_vm *vm = m->vms; vm; vm = vm->next)
		ret->vms_failing += vm->persist.failed;
	dt_worker_get_stats(m->state->w, &ws);
	ret->enabled = true;
	ret->queued_jobs = ws.queued_jobs;
	ret->queued_bytes = ws.queued_bytes;
	ret->max_bytes = ws.max_bytes;
	ret->max_wait_us = ws.max_wait_us;
}

void dt_state_forget(struct dt_vm *vm)
{
	if (!enabled(vm))
		return;
	(void)queue_unlink(vm);
}

int dt_state_set_aside(struct dt_vm *vm, char **ret_path)
{
	_cleanup_free_ char *aside = NULL;
	int r;

	if (!enabled(vm) || !vm->m->state) {
		*ret_path = NULL;
		return 0;
	}
	if (vm_path(vm, ".state.replaced", &aside) < 0)
		return -ENOMEM;
	/*
	 * The whole history (snapshot + journal) in one file, then the live
	 * files go: only once it is written (a failure is logged; the files
	 * stay, to be replaced by the new VM's first snapshot).
	 */
	r = queue_snapshot(vm, SNAP_ASIDE, true);
	if (r < 0)
		return r;
	*ret_path = TAKE_PTR(aside);
	return 0;
}

void dt_state_save_all(struct dt_manager *m)
{
	struct dt_state *st = m->state;

	if (!st)
		return;
	for (struct dt_vm *vm = m->vms; vm; vm = vm->next) {
		int r;

		if (!enabled(vm))
			continue;
		st->saving++;
		/* The journal goes once the snapshot holds it all; a failed one keeps it. */
		r = queue_snapshot(vm, SNAP_FINAL, true);
		if (r < 0) {
			dt_log(LOG_ERR, "vm %u (%s): cannot save its history in %s: %s", vm->id,
			       vm->name, m->config.state_dir, strerror(-r));
			st->save_failed++;
		}
	}
}

/* ---- restore --------------------------------------------------------------- */

static bool string_ok(const char *s, size_t size, bool nonempty)
{
	size_t n = strnlen(s, size);

	if (n == size || (nonempty && n == 0))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

/* Decode and check the identity from the file's first bytes; reason says what is wrong. */
static int read_head(struct dt_manager *m, struct dt_reader *in, const uint8_t uuid[16],
		     struct state_head *h, uid_t *ret_owner, struct state_slot **ret_slots,
		     const char **reason)
{
	_cleanup_free_ struct state_slot *slots = NULL;
	struct state_owner o = { .owner_uid = 0 }; /* version 1: root's */
	const uint8_t *sp;
	uint32_t crc, stored;

	*reason = "truncated or corrupt identity";
	if (!dt_reader_get(in, h, sizeof(*h)) || memcmp(h->magic, STATE_MAGIC, 8) != 0 ||
	    (h->version != 1 && h->version != STATE_VERSION))
		return -EBADMSG;
	crc = crc32_bits(0, h, sizeof(*h));
	if (h->version >= 2) {
		if (!dt_reader_get(in, &o, sizeof(o)) || o.reserved != 0)
			return -EBADMSG;
		crc = crc32_bits(crc, &o, sizeof(o));
	}
	if (h->nslots > 4 * m->config.max_slots + 4) {
		*reason = "more slots than [attach] max_slots allows";
		return -EBADMSG;
	}
	sp = dt_reader_take(in, (size_t)h->nslots * sizeof(*slots));
	stored = dt_reader_u32le(in);
	if (in->bad)
		return -EBADMSG;
	slots = calloc(h->nslots ? h->nslots : 1, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	memcpy(slots, sp, (size_t)h->nslots * sizeof(*slots));
	crc = crc32_bits(crc, slots, (size_t)h->nslots * sizeof(*slots));
	if (stored != crc)
		return -EBADMSG;
	*reason = "identity out of range";
	if (memcmp(h->uuid, uuid, 16) != 0 || !string_ok(h->name, sizeof(h->name), true) ||
	    !string_ok(h->vmm, sizeof(h->vmm), false) || h->page_size < 4096 ||
	    h->page_size > 65536 || (h->page_size & (h->page_size - 1)) || h->vcpus < 1 ||
	    h->vcpus > m->config.max_vcpus || h->mode == 0 || h->mode >= _DT_MODE_MAX ||
	    (h->caps & ~DT_CAP_ALL) || h->epoch_us < DT_EPOCH_MIN_US ||
	    h->epoch_us > DT_EPOCH_MAX_US || h->next_base > DT_PAGE_INDEX_MAX)
		return -EBADMSG;
	for (uint32_t i = 0; i < h->nslots; i++)
		if (slots[i].pages == 0 || slots[i].base + slots[i].pages > h->next_base)
			return -EBADMSG;
	*ret_owner = o.owner_uid;
	*ret_slots = TAKE_PTR(slots);
	return 0;
}

static void move_aside(const char *path)
{
	_cleanup_free_ char *bad = NULL;

	if (asprintf(&bad, "%s.bad", path) >= 0 && rename(path, bad) < 0)
		unlink(path);
}

/* Replay <uuid>.journal after the snapshot; a fresh snapshot empties it. */
static void replay_journal(struct dt_vm *vm)
{
	_cleanup_free_ char *jpath = NULL;
	_cleanup_free_ char *data = NULL;
	uint64_t applied = 0;
	size_t len = 0;
	int r;

	if (vm_path(vm, ".journal", &jpath) < 0)
		return;
	r = dt_file_read(jpath, DT_FILE_NOFOLLOW, STATE_FILE_MAX_BYTES, &data, &len);
	if (r == -ENOENT)
		return;
	if (r < 0) {
		/*
		 * Not a journal we wrote (a FIFO would block the loop): the
		 * snapshot stands alone, and the name is freed for a new one.
		 */
		dt_log(LOG_WARNING, "vm %u (%s): journal %s not replayed: %s; moved aside to %s.bad",
		       vm->id, vm->name, jpath, dt_file_strerror(r), jpath);
		move_aside(jpath);
		return;
	}
	if (len == 0)
		return;
	r = dt_stats_journal_replay(data, len, vm->stats, &applied);
	free(TAKE_PTR(data));
	vm->counters.harvests += applied;
	if (r < 0)
		dt_log(LOG_NOTICE,
		       "vm %u (%s): journal: %llu epoch%s replayed, then %s (the epoch "
		       "being written at a crash is lost)",
		       vm->id, vm->name, (unsigned long long)applied, applied == 1 ? "" : "s",
		       r == -EBADMSG ? "a torn or corrupt frame" : strerror(-r));
	else
		dt_log(LOG_INFO, "vm %u (%s): journal: %llu epoch%s replayed", vm->id, vm->name,
		       (unsigned long long)applied, applied == 1 ? "" : "s");
	vm->persist.disk_bytes += len;
	r = queue_snapshot(vm, SNAP_CHECKPOINT, true);
	if (r < 0)
		persist_failed(vm, NULL, 0, r);
}

static int restore_one(struct dt_manager *m, const char *path, const uint8_t uuid[16])
{
	_cleanup_free_ struct state_slot *slots = NULL;
	const char *reason = NULL;
	struct dt_msg_hello hello = {0};
	struct state_head h;
	struct dt_slot_table *t;
	struct dt_vm *vm = NULL;
	_cleanup_free_ char *data = NULL;
	struct dt_reader in;
	struct dt_vm_saved saved;
	uid_t owner = 0;
	size_t len = 0;
	int r;

	r = dt_file_read(path, DT_FILE_NOFOLLOW, STATE_FILE_MAX_BYTES, &data, &len);
	if (r < 0) {
		dt_log(LOG_WARNING, "state: %s not restored: %s", path, dt_file_strerror(r));
		return r;
	}
	in = (struct dt_reader){ .p = (const uint8_t *)data, .n = len };
	r = read_head(m, &in, uuid, &h, &owner, &slots, &reason);
	if (r >= 0 && dt_manager_owner_room(m, owner, false) < 0) {
		/* Left on disk: a higher cap, or a removal of another, restores it. */
		dt_log(LOG_WARNING, "state: %s not restored: uid %u is at max_vms_per_owner", path,
		       (unsigned)owner);
		return -EUSERS;
	}
	if (r >= 0) {
		memcpy(hello.name, h.name, sizeof(hello.name));
		memcpy(hello.vmm, h.vmm, sizeof(hello.vmm));
		memcpy(hello.uuid, h.uuid, sizeof(hello.uuid));
		hello.page_size = h.page_size;
		hello.vcpus = h.vcpus;
		hello.mode = h.mode;
		hello.caps = h.caps;
		saved = (struct dt_vm_saved){ .p = in.p, .len = in.n };
		r = dt_vm_restore(m, &hello, h.epoch_us, owner, &saved, &vm);
		reason = r == -ESTALE	 ? "saved under another [stats] configuration"
			 : r == -EBADMSG ? "truncated or corrupt statistics"
					 : NULL;
	}
	if (r >= 0 && saved.used != saved.len) {
		reason = "data after the statistics";
		dt_vm_free(vm);
		r = -EBADMSG;
	}
	free(TAKE_PTR(data));
	if (r < 0) {
		dt_log(LOG_WARNING, "state: %s does not load (%s), moved aside to %s.bad", path,
		       reason ? reason : strerror(-r), path);
		move_aside(path);
		return r;
	}

	t = &vm->collector.slots;
	if (h.nslots) {
		t->slots = calloc(h.nslots, sizeof(*t->slots));
		if (!t->slots) {
			dt_vm_free(vm);
			return -ENOMEM;
		}
		for (uint32_t i = 0; i < h.nslots; i++)
			t->slots[i] = (struct dt_slot){
			    .slot = slots[i].slot,
			    .active = false,
			    .gpa = slots[i].gpa,
			    .pages = slots[i].pages,
			    .base = slots[i].base,
			};
	}
	t->n = t->cap = h.nslots;
	t->next_base = h.next_base;
	vm->counters = (struct dt_vm_counters){
	    .harvests = h.harvests,
	    .ring_full = h.ring_full,
	    .resets = h.resets,
	    .late_syncs = h.late_syncs,
	    .attaches = h.attaches,
	    .harvest_us = h.harvest_us,
	    .harvest_errors = h.harvest_errors,
	};
	vm->detached_pages = h.detached_pages;
	vm->detached_us = dt_now_us();
	snprintf(vm->detach_reason, sizeof(vm->detach_reason), "restored from state after restart");
	vm->persist.snap_epochs = dt_stats_epochs(vm->stats);
	vm->persist.snap_slots = t->n;
	vm->persist.snap_next_base = t->next_base;
	vm->persist.snap_bytes = vm->persist.disk_bytes = len;
	replay_journal(vm);
	vm->history_bytes = dt_stats_memory(vm->stats);
	sd_event_source_set_time(vm->retention, vm->detached_us + m->config.retention_us);
	sd_event_source_set_enabled(vm->retention, SD_EVENT_ONESHOT);
	dt_log(LOG_INFO, "vm %u (%s): restored from %s: %llu epochs, detached", vm->id, vm->name,
	       path, (unsigned long long)dt_stats_epochs(vm->stats));
	dt_manager_notify(m, vm, DT_CHANGE_STATE);
	return 0;
}

void dt_state_restore(struct dt_manager *m)
{
	const char *dir = m->config.state_dir;
	uint64_t start = dt_now_us();
	unsigned restored = 0;
	struct dirent *de;
	DIR *d;

	if (!dir)
		return;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		dt_log(LOG_WARNING, "state: cannot create %s: %m; histories will not be saved",
		       dir);
		return;
	}
	d = opendir(dir);
	if (!d) {
		dt_log(LOG_WARNING, "state: cannot read %s: %m", dir);
		return;
	}
	while ((de = readdir(d))) {
		_cleanup_free_ char *path = NULL, *name = NULL;
		size_t len = strlen(de->d_name);
		uint8_t uuid[16];

		/* <36-character uuid>.state */
		if (len != 36 + 6 || strcmp(de->d_name + 36, ".state") != 0)
			continue;
		name = strndup(de->d_name, 36);
		if (!name || dt_uuid_parse(name, uuid) < 0 || dt_uuid_is_null(uuid))
			continue;
		if (asprintf(&path, "%s/%s", dir, de->d_name) < 0)
			break;
		if (dt_manager_find_uuid(m, uuid))
			continue;
		if (m->nvms >= 2 * m->config.max_vms) {
			dt_log(LOG_WARNING, "state: %s not restored: too many VMs (max_vms = %u)",
			       path, m->config.max_vms);
			continue;
		}
		if (restore_one(m, path, uuid) >= 0)
			restored++;
	}
	closedir(d);
	if (restored)
		dt_log(LOG_INFO, "state: %u VM%s restored from %s in %llu ms", restored,
		       restored == 1 ? "" : "s", dir,
		       (unsigned long long)(dt_now_us() - start) / 1000);
}
