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
 * self-checking frame (dt_stats_journal_last: the epoch's dirty set, its
 * record, each vCPU's pages) and fdatasync'd at once, so a crash loses at
 * most the epoch whose frame was being written. A snapshot is written
 * instead at the first close after a start or an attach, whenever the slot
 * table changed, and every [daemon] snapshot_epochs epochs; the journal is
 * then emptied. At start the snapshot is loaded, the journal replayed after
 * it (frames of older epochs skipped, a torn tail dropped), and a fresh
 * snapshot written so the journal starts empty again.
 *
 * Cost, measured with a VM of 4 vCPUs dirtying 1M random pages of 4M per
 * epoch (DT_PERSIST_BENCH=1 tests/unit/test_persist): encoding a frame
 * adds ~2 ms to the ~75 ms close, a frame is ~1.5 MB, its write and
 * fdatasync 3-7 ms on ext4 over virtio; a snapshot of 10 such epochs is ~55 MB and
 * ~0.35 s to write (every snapshot_epochs epochs) and to load. Both run in
 * the event loop: the harvest of other VMs waits that long.
 *
 * A file that does not load (corrupt, truncated, another [stats]
 * configuration) is logged with the reason and renamed *.bad; the daemon
 * starts regardless. Counters other than the figures (harvests, attaches)
 * are as of the snapshot, plus the epochs replayed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "dt_file.h"
#include "dt_util.h"
#include "log.h"
#include "manager.h"

#define STATE_MAGIC	  "DTVMST01"
#define STATE_VERSION	  2u /* 2: the owner block after the head */
#define JOURNAL_MAX_BYTES (256ull << 20) /* a snapshot comes first beyond this */

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

static int write_state(const struct dt_vm *vm, FILE *f)
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
	if (fwrite(&h, sizeof(h), 1, f) != 1 || fwrite(&o, sizeof(o), 1, f) != 1)
		return -EIO;
	crc = crc32_bits(0, &h, sizeof(h));
	crc = crc32_bits(crc, &o, sizeof(o));
	for (uint32_t i = 0; i < t->n; i++) {
		struct state_slot s = {
		    .slot = t->slots[i].slot,
		    .base = t->slots[i].base,
		    .gpa = t->slots[i].gpa,
		    .pages = t->slots[i].pages,
		};

		if (fwrite(&s, sizeof(s), 1, f) != 1)
			return -EIO;
		crc = crc32_bits(crc, &s, sizeof(s));
	}
	if (fwrite(&crc, sizeof(crc), 1, f) != 1)
		return -EIO;
	return dt_stats_save(vm->stats, f);
}

static void fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* The VM's snapshot, atomically: temporary file, fsync, rename. */
static int snapshot(struct dt_vm *vm)
{
	_cleanup_free_ char *path = NULL, *tmp = NULL;
	FILE *f;
	int fd, r;

	if (vm_path(vm, ".state", &path) < 0 || vm_path(vm, ".state.tmp", &tmp) < 0)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		r = -errno;
		close(fd);
		unlink(tmp);
		return r;
	}
	r = write_state(vm, f);
	if (r >= 0 && fflush(f) != 0)
		r = -errno;
	if (r >= 0 && fsync(fd) < 0)
		r = -errno;
	if (fclose(f) != 0 && r >= 0)
		r = -errno;
	if (r >= 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	fsync_dir(vm->m->config.state_dir);
	vm->persist.snap_epochs = dt_stats_epochs(vm->stats);
	vm->persist.snap_slots = vm->collector.slots.n;
	vm->persist.snap_next_base = vm->collector.slots.next_base;
	return 0;
}

/* Snapshot, then an empty journal open for the epochs to come. */
static int snapshot_and_reset(struct dt_vm *vm)
{
	_cleanup_free_ char *jpath = NULL;
	int r;

	r = snapshot(vm);
	if (r < 0)
		return r;
	if (vm_path(vm, ".journal", &jpath) < 0)
		return -ENOMEM;
	if (vm->persist.journal_fd < 0) {
		vm->persist.journal_fd =
		    open(jpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (vm->persist.journal_fd < 0)
			return -errno;
	}
	/* Frames up to the snapshot's epoch are in it; a crash before this is harmless. */
	if (ftruncate(vm->persist.journal_fd, 0) < 0)
		return -errno;
	vm->persist.journal_bytes = 0;
	return 0;
}

static int journal_append(struct dt_vm *vm)
{
	size_t len = 0;
	const uint8_t *p = dt_stats_journal_last(vm->stats, &len);

	if (!p)
		return -ENODATA;
	for (size_t done = 0; done < len;) {
		ssize_t n = write(vm->persist.journal_fd, p + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	if (fdatasync(vm->persist.journal_fd) < 0)
		return -errno;
	vm->persist.journal_bytes += len;
	return 0;
}

static void persist_failed(struct dt_vm *vm, const char *what, int r)
{
	if (!vm->persist.failed)
		dt_log(LOG_WARNING, "vm %u (%s): cannot write its %s in %s: %s (logged once)",
		       vm->id, vm->name, what, vm->m->config.state_dir, strerror(-r));
	vm->persist.failed = true;
	/* Start over with a snapshot at the next close. */
	if (vm->persist.journal_fd >= 0)
		close(vm->persist.journal_fd);
	vm->persist.journal_fd = -1;
}

void dt_state_epoch_closed(struct dt_vm *vm)
{
	const struct dt_vm_persist *p = &vm->persist;
	bool snap;
	int r;

	if (!enabled(vm))
		return;
	snap = p->journal_fd < 0 || p->snap_slots != vm->collector.slots.n ||
	       p->snap_next_base != vm->collector.slots.next_base ||
	       dt_stats_epochs(vm->stats) - p->snap_epochs >= vm->m->config.snapshot_epochs ||
	       p->journal_bytes >= JOURNAL_MAX_BYTES;
	r = snap ? snapshot_and_reset(vm) : journal_append(vm);
	if (r < 0) {
		persist_failed(vm, snap ? "snapshot" : "journal", r);
		return;
	}
	vm->persist.failed = false;
}

void dt_state_forget(struct dt_vm *vm)
{
	_cleanup_free_ char *path = NULL, *jpath = NULL;

	if (!enabled(vm))
		return;
	if (vm->persist.journal_fd >= 0)
		close(vm->persist.journal_fd);
	vm->persist.journal_fd = -1;
	if (vm_path(vm, ".state", &path) >= 0)
		unlink(path);
	if (vm_path(vm, ".journal", &jpath) >= 0)
		unlink(jpath);
}

int dt_state_set_aside(struct dt_vm *vm, char **ret_path)
{
	_cleanup_free_ char *path = NULL, *aside = NULL, *jpath = NULL;
	int r;

	if (!enabled(vm)) {
		*ret_path = NULL;
		return 0;
	}
	if (vm_path(vm, ".state", &path) < 0 || vm_path(vm, ".state.replaced", &aside) < 0 ||
	    vm_path(vm, ".journal", &jpath) < 0)
		return -ENOMEM;
	/* The whole history (snapshot + journal) in one file, then out of the way. */
	r = snapshot(vm);
	if (r < 0)
		return r;
	if (rename(path, aside) < 0)
		return -errno;
	if (vm->persist.journal_fd >= 0)
		close(vm->persist.journal_fd);
	vm->persist.journal_fd = -1;
	(void)unlink(jpath);
	fsync_dir(vm->m->config.state_dir);
	*ret_path = TAKE_PTR(aside);
	return 0;
}

void dt_state_save_all(struct dt_manager *m)
{
	uint64_t start = dt_now_us();
	unsigned saved = 0, failed = 0;

	if (!m->config.state_dir)
		return;
	for (struct dt_vm *vm = m->vms; vm; vm = vm->next) {
		_cleanup_free_ char *jpath = NULL;
		int r;

		if (!enabled(vm))
			continue;
		r = snapshot(vm);
		if (r < 0) {
			/* The journal stays: with the last snapshot it still has the history. */
			dt_log(LOG_ERR, "vm %u (%s): cannot save its history in %s: %s", vm->id,
			       vm->name, m->config.state_dir, strerror(-r));
			failed++;
			continue;
		}
		if (vm->persist.journal_fd >= 0)
			close(vm->persist.journal_fd);
		vm->persist.journal_fd = -1;
		if (vm_path(vm, ".journal", &jpath) >= 0)
			unlink(jpath);
		dt_log(LOG_INFO, "vm %u (%s): saved: %llu epochs, %llu pages in the history",
		       vm->id, vm->name, (unsigned long long)dt_stats_epochs(vm->stats),
		       (unsigned long long)dt_stats_wss(
			   vm->stats, dt_stats_config(vm->stats)->horizon_epochs));
		saved++;
	}
	dt_log(LOG_INFO, "state: %u VM%s saved in %s in %llu ms%s", saved, saved == 1 ? "" : "s",
	       m->config.state_dir, (unsigned long long)(dt_now_us() - start) / 1000,
	       failed ? " (some could not be, see above)" : "");
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

/* Read and check the identity; reason says what is wrong. */
static int read_head(struct dt_manager *m, FILE *f, const uint8_t uuid[16], struct state_head *h,
		     uid_t *ret_owner, struct state_slot **ret_slots, const char **reason)
{
	_cleanup_free_ struct state_slot *slots = NULL;
	struct state_owner o = { .owner_uid = 0 }; /* version 1: root's */
	uint32_t crc, stored;

	*reason = "truncated or corrupt identity";
	if (fread(h, sizeof(*h), 1, f) != 1 || memcmp(h->magic, STATE_MAGIC, 8) != 0 ||
	    (h->version != 1 && h->version != STATE_VERSION))
		return -EBADMSG;
	crc = crc32_bits(0, h, sizeof(*h));
	if (h->version >= 2) {
		if (fread(&o, sizeof(o), 1, f) != 1 || o.reserved != 0)
			return -EBADMSG;
		crc = crc32_bits(crc, &o, sizeof(o));
	}
	if (h->nslots > 4 * m->config.max_slots + 4) {
		*reason = "more slots than [attach] max_slots allows";
		return -EBADMSG;
	}
	slots = calloc(h->nslots ? h->nslots : 1, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	if (h->nslots && fread(slots, sizeof(*slots), h->nslots, f) != h->nslots)
		return -EBADMSG;
	crc = crc32_bits(crc, slots, (size_t)h->nslots * sizeof(*slots));
	if (fread(&stored, sizeof(stored), 1, f) != 1 || stored != crc)
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
	uint64_t applied = 0;
	struct stat st;
	FILE *f;
	int r;

	if (vm_path(vm, ".journal", &jpath) < 0)
		return;
	r = dt_file_fopen(jpath, DT_FILE_NOFOLLOW, UINT64_MAX, &f);
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
	if (fstat(fileno(f), &st) < 0 || st.st_size == 0) {
		fclose(f);
		return;
	}
	r = dt_stats_journal_replay(f, vm->stats, &applied);
	fclose(f);
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
	r = snapshot_and_reset(vm);
	if (r < 0)
		persist_failed(vm, "snapshot", r);
}

static int restore_one(struct dt_manager *m, const char *path, const uint8_t uuid[16])
{
	_cleanup_free_ struct state_slot *slots = NULL;
	const char *reason = NULL;
	struct dt_msg_hello hello = {0};
	struct state_head h;
	struct dt_slot_table *t;
	struct dt_vm *vm = NULL;
	uid_t owner = 0;
	FILE *f;
	int r;

	r = dt_file_fopen(path, DT_FILE_NOFOLLOW, UINT64_MAX, &f);
	if (r < 0) {
		dt_log(LOG_WARNING, "state: %s not restored: %s", path, dt_file_strerror(r));
		return r;
	}
	r = read_head(m, f, uuid, &h, &owner, &slots, &reason);
	if (r >= 0 && dt_manager_owner_room(m, owner, false) < 0) {
		/* Left on disk: a higher cap, or a removal of another, restores it. */
		dt_log(LOG_WARNING, "state: %s not restored: uid %u is at max_vms_per_owner", path,
		       (unsigned)owner);
		fclose(f);
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
		r = dt_vm_restore(m, &hello, h.epoch_us, owner, f, &vm);
		reason = r == -ESTALE	 ? "saved under another [stats] configuration"
			 : r == -EBADMSG ? "truncated or corrupt statistics"
					 : NULL;
	}
	if (r >= 0 && fgetc(f) != EOF) {
		reason = "data after the statistics";
		dt_vm_free(vm);
		r = -EBADMSG;
	}
	fclose(f);
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
