/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * KVM dirty logging: rings (KVM_CAP_DIRTY_LOG_RING_ACQ_REL, else
 * KVM_CAP_DIRTY_LOG_RING), the bitmap (KVM_GET_DIRTY_LOG with manual
 * protect and KVM_CLEAR_DIRTY_LOG in 64-page-aligned chunks), and the
 * shared bitmaps the daemon consumes.
 *
 * Ring indexes: the daemon harvests our rings from its own process, so we
 * do not see its fetch position. We keep ours (v->fetch, the index KVM's
 * reset index is at) by counting the entries each KVM_RESET_DIRTY_RINGS
 * resets. When that count is ambiguous the index is marked unknown and
 * found again from the ring itself: entries in [reset, dirty) are nonzero,
 * all others zero, so the first nonzero entry after a zero one is KVM's
 * reset index. We need it to harvest ourselves when the daemon is gone and
 * to tell a new daemon connection where to start (ADD_RING fetch_index).
 *
 * Every function here takes vm->lock itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dtvm.h"

#define DEFAULT_RING_ENTRIES 4096

uint64_t dtvm_bitmap_count(const uint64_t *map, uint64_t bits)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < dtvm_bitmap_words(bits); w++)
		n += __builtin_popcountll(map[w]);
	return n;
}

int dtvm_dirty_setup_vm(struct dtvm *vm)
{
	uint32_t mode = vm->o.mode;
	int r;

	if (vm->o.no_tracking)
		return 0;

	if (mode == DT_MODE_RING || mode == DT_MODE_RING_BITMAP) {
		int acq = kvm_check_cap(vm->vm_fd, KVM_CAP_DIRTY_LOG_RING_ACQ_REL);
		int plain = kvm_check_cap(vm->vm_fd, KVM_CAP_DIRTY_LOG_RING);
		int max = acq > 0 ? acq : plain;
		uint64_t entries = vm->o.ring_entries ? vm->o.ring_entries : DEFAULT_RING_ENTRIES;
		uint64_t bytes = entries * sizeof(struct kvm_dirty_gfn);

		if (max <= 0) {
			fprintf(stderr, "dtvm: this KVM has no dirty ring (KVM_CAP_DIRTY_LOG_RING)\n");
			exit(DTVM_EXIT_SKIP);
		}
		/* KVM's own floor: a page, and more than its reserved entries. */
		if (bytes > (uint64_t)max || bytes < DTVM_PAGE_SIZE || (entries & (entries - 1)))
			dtvm_die("--ring-entries %llu: KVM takes a power of two from %u to %d entries",
				 (unsigned long long)entries,
				 (unsigned)(DTVM_PAGE_SIZE / sizeof(struct kvm_dirty_gfn)),
				 max / (int)sizeof(struct kvm_dirty_gfn));
		r = __vm_enable_cap(vm->vm_fd,
				    acq > 0 ? KVM_CAP_DIRTY_LOG_RING_ACQ_REL : KVM_CAP_DIRTY_LOG_RING,
				    bytes);
		if (r < 0)
			dtvm_die("KVM_ENABLE_CAP(DIRTY_LOG_RING%s, %llu): %s", acq > 0 ? "_ACQ_REL" : "",
				 (unsigned long long)bytes, strerror(-r));
		vm->ring = true;
		vm->acq_rel = acq > 0;
		vm->ring_entries = entries;

		if (mode == DT_MODE_RING_BITMAP &&
		    kvm_check_cap(vm->vm_fd, KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP) > 0) {
			r = __vm_enable_cap(vm->vm_fd, KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP, 0);
			if (r < 0)
				dtvm_die("KVM_ENABLE_CAP(DIRTY_LOG_RING_WITH_BITMAP): %s",
					 strerror(-r));
			vm->ring_with_bitmap = true;
			vm->bitmap = true;
		}
	}
	if (mode == DT_MODE_BITMAP)
		vm->bitmap = true;

	if (vm->bitmap) {
		/*
		 * Manual protect without INITIALLY_SET: a new slot starts
		 * clean and write-protected, so the first sync reports only
		 * what the guest wrote.
		 */
		if (kvm_check_cap(vm->vm_fd, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) > 0) {
			r = __vm_enable_cap(vm->vm_fd, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
					    KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
			if (r < 0)
				dtvm_die("KVM_ENABLE_CAP(MANUAL_DIRTY_LOG_PROTECT2): %s", strerror(-r));
			vm->manual_protect = 1;
		}
	}
	return 0;
}

int dtvm_dirty_setup_vcpu(struct dtvm *vm, struct dtvm_vcpu *v)
{
	void *p;

	if (!vm->ring)
		return 0;
	p = mmap(NULL, vm->ring_entries * sizeof(struct kvm_dirty_gfn), PROT_READ | PROT_WRITE,
		 MAP_SHARED, v->fd, (off_t)KVM_DIRTY_LOG_PAGE_OFFSET * DTVM_PAGE_SIZE);
	if (p == MAP_FAILED)
		return -errno;
	v->ring = p;
	v->fetch = 0;
	v->fetch_known = true;
	return 0;
}

static inline uint32_t gfn_flags(const struct dtvm *vm, const struct dtvm_vcpu *v, uint32_t i)
{
	return __atomic_load_n(&v->ring[i & (vm->ring_entries - 1)].flags, __ATOMIC_ACQUIRE);
}

/* Caller holds vm->lock. */
bool dtvm_dirty_locate(struct dtvm *vm, struct dtvm_vcpu *v)
{
	uint32_t mask = vm->ring_entries - 1;

	if (!v->ring || v->fetch_known)
		return v->fetch_known;
	for (uint32_t i = 0; i <= mask; i++) {
		if (gfn_flags(vm, v, i) && !gfn_flags(vm, v, (i - 1) & mask)) {
			/* keep the free-running index, move it to position i */
			v->fetch += (i - v->fetch) & mask;
			v->fetch_known = true;
			return true;
		}
	}
	return false;
}

/*
 * After KVM_RESET_DIRTY_RINGS reset `reset` entries while we expected
 * `expected`: fetch indexes stay valid where the entry there is still
 * pending; elsewhere they become unknown until located again.
 */
static void rings_after_reset(struct dtvm *vm, int reset, uint64_t expected)
{
	for (uint32_t i = 0; i < vm->o.vcpus; i++) {
		struct dtvm_vcpu *v = &vm->vcpus[i];

		if ((uint64_t)reset != expected && v->fetch_known && !gfn_flags(vm, v, v->fetch))
			v->fetch_known = false;
	}
	vm->resets++;
	vm->reset_gen++;
	pthread_cond_broadcast(&vm->cond);
}

int dtvm_dirty_reset_rings(struct dtvm *vm)
{
	uint64_t expected = 0;
	int r;

	pthread_mutex_lock(&vm->lock);
	for (uint32_t i = 0; i < vm->o.vcpus; i++) {
		struct dtvm_vcpu *v = &vm->vcpus[i];

		if (!dtvm_dirty_locate(vm, v))
			continue;
		/* KVM resets consecutive RESET entries from its reset index. */
		while (gfn_flags(vm, v, v->fetch) & KVM_DIRTY_GFN_F_RESET) {
			v->fetch++;
			expected++;
		}
	}
	r = __vm_reset_dirty_rings(vm->vm_fd);
	if (r >= 0)
		rings_after_reset(vm, r, expected);
	pthread_mutex_unlock(&vm->lock);
	return r;
}

/*
 * Fetch one slot's KVM log into s->kvm_log and re-protect what it reports,
 * in runs of nonzero 64-page words (KVM_CLEAR_DIRTY_LOG wants first_page
 * 64-aligned and a multiple of 64 pages unless the run ends the slot).
 * Returns nonzero words or -errno.
 */
static int64_t slot_fetch(struct dtvm *vm, struct dtvm_slot *s)
{
	uint64_t words = dtvm_bitmap_words(s->pages), nz = 0;
	int r;

	memset(s->kvm_log, 0, words * 8);
	r = __vm_get_dirty_log(vm->vm_fd, s->id, s->kvm_log);
	if (r < 0)
		return r;
	for (uint64_t w = 0; w < words;) {
		uint64_t end, first, num;

		if (!s->kvm_log[w]) {
			w++;
			continue;
		}
		for (end = w; end < words && s->kvm_log[end]; end++)
			nz++;
		if (vm->manual_protect) {
			first = w * 64;
			num = DT_MIN(end * 64, s->pages) - first;
			r = __vm_clear_dirty_log(vm->vm_fd, s->id, first, num, s->kvm_log + w);
			if (r < 0)
				return r;
		}
		w = end;
	}
	return nz;
}

int dtvm_dirty_sync_bitmaps(struct dtvm *vm)
{
	uint64_t words = 0;

	if (!vm->bitmap || !vm->logging)
		return 0;
	pthread_mutex_lock(&vm->lock);
	for (unsigned i = 0; i < vm->nslots; i++) {
		struct dtvm_slot *s = &vm->slots[i];
		int64_t r = slot_fetch(vm, s);

		if (r < 0) {
			pthread_mutex_unlock(&vm->lock);
			return (int)r;
		}
		for (uint64_t w = 0; w < dtvm_bitmap_words(s->pages); w++)
			dt_shared_bitmap_or_word(s->shared, w, s->kvm_log[w]);
		words += r;
	}
	pthread_mutex_unlock(&vm->lock);
	return (int)DT_MIN(words, (uint64_t)INT32_MAX);
}

static void record_word(struct dtvm *vm, const struct dtvm_slot *s, uint64_t w, uint64_t bits)
{
	while (bits) {
		int b = __builtin_ctzll(bits);

		bits &= bits - 1;
		dtvm_bit_set_atomic(vm->bm_harvested, s->first + w * 64 + b);
	}
}

/* Harvest one ring from our fetch index; caller holds vm->lock. */
static uint64_t ring_collect(struct dtvm *vm, struct dtvm_vcpu *v, bool record,
			     uint64_t *expected)
{
	uint64_t n = 0;

	/* the daemon's ring: never steal its entries */
	if ((vm->client && v->ring_added) || !dtvm_dirty_locate(vm, v))
		return 0;
	for (;;) {
		struct kvm_dirty_gfn *e = &v->ring[v->fetch & (vm->ring_entries - 1)];
		uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);

		if (flags & KVM_DIRTY_GFN_F_DIRTY) {
			int64_t page = dtvm_slot_page(vm, e->slot, e->offset);

			if (page < 0)
				vm->harvest_invalid++;
			else if (record)
				dtvm_bit_set_atomic(v->harvested, page);
			__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
			n++;
		} else if (!(flags & KVM_DIRTY_GFN_F_RESET)) {
			break; /* else: harvested by a daemon that is gone, not reset yet */
		}
		v->fetch++;
		(*expected)++;
	}
	return n;
}

int64_t dtvm_dirty_self_harvest(struct dtvm *vm, bool record)
{
	uint64_t n = 0, expected = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->ring) {
		for (uint32_t i = 0; i < vm->o.vcpus; i++)
			n += ring_collect(vm, &vm->vcpus[i], record, &expected);
		if (expected) {
			int r = __vm_reset_dirty_rings(vm->vm_fd);

			if (r < 0)
				dtvm_die("KVM_RESET_DIRTY_RINGS: %s", strerror(-r));
			rings_after_reset(vm, r, expected);
		}
	}
	for (unsigned i = 0; i < vm->nslots && !vm->client; i++) {
		struct dtvm_slot *s = &vm->slots[i];
		uint64_t words = dtvm_bitmap_words(s->pages);

		if (vm->bitmap && vm->logging) {
			int64_t r = slot_fetch(vm, s);

			if (r < 0)
				dtvm_die("KVM_GET/CLEAR_DIRTY_LOG slot %u: %s", s->id,
					 strerror((int)-r));
			for (uint64_t w = 0; w < words; w++) {
				n += __builtin_popcountll(s->kvm_log[w]);
				if (record)
					record_word(vm, s, w, s->kvm_log[w]);
			}
		}
		if (s->shared) {
			for (uint64_t w = 0; w < words; w++) {
				uint64_t bits;

				if (!__atomic_load_n(&s->shared->words[w], __ATOMIC_RELAXED))
					continue;
				bits = __atomic_exchange_n(&s->shared->words[w], 0,
							   __ATOMIC_ACQ_REL);
				n += __builtin_popcountll(bits);
				if (record)
					record_word(vm, s, w, bits);
			}
		}
	}
	vm->harvest_entries += n;
	vm->harvest_count++;
	pthread_mutex_unlock(&vm->lock);
	return (int64_t)n;
}

static uint64_t compare(const struct dtvm *vm, const char *what, const uint64_t *truth,
			const uint64_t *got)
{
	uint64_t bad = 0, shown = 0;

	for (uint64_t w = 0; w < dtvm_bitmap_words(vm->data_pages); w++) {
		uint64_t diff = truth[w] ^ got[w];

		while (diff) {
			uint64_t page = w * 64 + __builtin_ctzll(diff);

			diff &= diff - 1;
			if (shown++ < 8)
				fprintf(stderr, "dtvm: verify %s: gfn 0x%llx %s\n", what,
					(unsigned long long)dtvm_page_gfn(vm, page),
					dtvm_bit_test(truth, page) ? "written but never reported"
								   : "reported but never written");
			bad++;
		}
	}
	return bad;
}

uint64_t dtvm_dirty_verify(struct dtvm *vm)
{
	uint64_t words = dtvm_bitmap_words(vm->data_pages), bad = 0;
	_cleanup_free_ uint64_t *all = calloc(words, 8);
	char what[32];

	if (!all)
		dtvm_die("out of memory");
	for (uint32_t i = 0; i < vm->o.vcpus; i++) {
		struct dtvm_vcpu *v = &vm->vcpus[i];

		for (uint64_t w = 0; w < words; w++)
			all[w] |= v->written[w];
		if (vm->ring) {
			snprintf(what, sizeof(what), "ring of vCPU %u", i);
			bad += compare(vm, what, v->written, v->harvested);
		}
	}
	if (vm->o.mode == DT_MODE_BITMAP)
		bad += compare(vm, "bitmap", all, vm->bm_harvested);
	else if (vm->o.mode == DT_MODE_RING_BITMAP)
		bad += compare(vm, "shared bitmap (DMA)", vm->dma_written, vm->bm_harvested);
	return bad;
}
