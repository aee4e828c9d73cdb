/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The slot table, the harvest, and KVM as QEMU would have seen it.
 *
 * KVM's dirty log is on for every writable slot of address space 0 from
 * the moment the slot exists; the library owns it. QEMU's own logging
 * (migration, VGA) is emulated on top: per slot a "view" bitmap holds what
 * KVM's log would hold for QEMU. Every page the library takes from KVM is
 * ORed into that view, so nothing QEMU needs is lost; QEMU's
 * KVM_GET_DIRTY_LOG harvests and copies the view, its KVM_CLEAR_DIRTY_LOG
 * harvests and then clears only the pages it names, with KVM's checks and
 * errors. Slots QEMU creates read-only, or in the SMM address space, are
 * left to QEMU and KVM alone.
 *
 * One lock covers the table, the harvest and QEMU's slot updates: a slot
 * deleted and re-created larger while a harvest walks it would otherwise
 * overrun its buffers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kvm.h>

#include "dtqemu.h"

struct dtq dtq_state = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.vmfd = -1,
	.wake_fd = -1,
};

static int fail(int err)
{
	errno = err;
	return -1;
}

static uint64_t words_of(uint64_t pages)
{
	return (pages + 63) / 64;
}

static uint64_t last_mask(uint64_t pages)
{
	return (pages % 64) ? (1ull << (pages % 64)) - 1 : ~0ull;
}

static struct dtq_slot *slot_find(struct dtq *q, uint32_t id)
{
	for (unsigned i = 0; i < DTQ_SLOTS_MAX; i++)
		if (q->slots[i].used && q->slots[i].id == id)
			return &q->slots[i];
	return NULL;
}

static struct dtq_slot *slot_free_entry(struct dtq *q)
{
	for (unsigned i = 0; i < DTQ_SLOTS_MAX; i++)
		if (!q->slots[i].used)
			return &q->slots[i];
	return NULL;
}

/* A view as KVM starts one when logging is turned on. */
static uint64_t *view_new(const struct dtq *q, uint64_t pages)
{
	uint64_t n = words_of(pages), *v = calloc(n, 8);

	if (v && q->initially_set) {
		memset(v, 0xff, n * 8);
		v[n - 1] = last_mask(pages);
	}
	return v;
}

/*
 * Take what KVM logged for the slot (GET, then CLEAR of exactly what GET
 * returned, which re-protects those pages), into the daemon's shared
 * bitmap and QEMU's view. Returns pages taken or -errno.
 */
static int64_t slot_harvest(struct dtq *q, struct dtq_slot *s, bool for_daemon)
{
	uint64_t n = words_of(s->pages), any = 0;
	struct kvm_dirty_log get = { .slot = s->id, .dirty_bitmap = s->scratch };
	int64_t pages = 0;

	if (!s->managed)
		return 0;
	if (dtq_real_ioctl(q->vmfd, KVM_GET_DIRTY_LOG, &get) < 0)
		return -errno;
	for (uint64_t i = 0; i < n; i++)
		any |= s->scratch[i];
	if (!any)
		return 0;
	if (q->manual_protect) {
		struct kvm_clear_dirty_log clr = {
			.slot = s->id,
			.num_pages = (uint32_t)s->pages,
			.first_page = 0,
			.dirty_bitmap = s->scratch,
		};

		if (dtq_real_ioctl(q->vmfd, KVM_CLEAR_DIRTY_LOG, &clr) < 0)
			return -errno;
	}
	struct dt_shared_bitmap *shared = s->decl ? s->decl->shared : NULL;
	bool to_view = s->qemu_log && !(for_daemon && q->cfg.hide_from_qemu);

	for (uint64_t i = 0; i < n; i++) {
		uint64_t w = s->scratch[i];

		if (!w)
			continue;
		pages += __builtin_popcountll(w);
		if (shared)
			dt_shared_bitmap_or_word(shared, i, w);
		if (to_view)
			s->view[i] |= w;
	}
	q->harvested_pages += (uint64_t)pages;
	return pages;
}

/*
 * A new slot under "initially set" starts with every bit set and no page
 * write-protected: those bits are not writes. Clear them (which protects
 * every page) before the guest can run on it, so the first harvest holds
 * only real writes.
 */
static void slot_start_log(struct dtq *q, struct dtq_slot *s)
{
	uint64_t n = words_of(s->pages);

	if (q->manual_protect) {
		struct kvm_clear_dirty_log clr = {
			.slot = s->id,
			.num_pages = (uint32_t)s->pages,
			.dirty_bitmap = s->scratch,
		};

		memset(s->scratch, 0xff, n * 8);
		s->scratch[n - 1] = last_mask(s->pages);
		(void)dtq_real_ioctl(q->vmfd, KVM_CLEAR_DIRTY_LOG, &clr);
	} else {
		struct kvm_dirty_log get = { .slot = s->id, .dirty_bitmap = s->scratch };

		(void)dtq_real_ioctl(q->vmfd, KVM_GET_DIRTY_LOG, &get);
	}
}

/* Forget a slot; its daemon side goes to the agent for REMOVE_SLOT. */
static void slot_drop(struct dtq *q, struct dtq_slot *s)
{
	if (s->decl) {
		if (q->ndying < DTQ_DYING_MAX) {
			q->dying[q->ndying++] = s->decl;
		} else {
			/* The agent starts the daemon side over (reattach). */
			q->lost_removals++;
			dt_shared_bitmap_free(s->decl->shared);
			free(s->decl);
		}
	}
	free(s->view);
	free(s->scratch);
	memset(s, 0, sizeof(*s));
	q->changed = true;
}

int dtq_vm_create(int kvmfd, unsigned long req, void *arg)
{
	struct dtq *q = &dtq_state;
	int fd = dtq_real_ioctl(kvmfd, req, arg);

	if (fd < 0)
		return fd;
	pthread_mutex_lock(&q->lock);
	/* One VM per QEMU; a second one (never seen in 7.2) is left alone. */
	if (q->vmfd < 0 && !q->agent_started && !q->stood_down) {
		dtq_config_load(&q->cfg);
		if (q->cfg.disabled) {
			q->stood_down = true;
		} else {
			__atomic_store_n(&q->vmfd, fd, __ATOMIC_RELEASE);
			dtq_agent_start(q);
		}
	}
	pthread_mutex_unlock(&q->lock);
	return fd;
}

int dtq_vm_enable_cap(int fd, unsigned long req, void *arg)
{
	struct dtq *q = &dtq_state;
	const struct kvm_enable_cap *cap = arg;
	int r = dtq_real_ioctl(fd, req, arg);

	if (r < 0 || !cap)
		return r;
	pthread_mutex_lock(&q->lock);
	switch (cap->cap) {
	case KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2:
		q->manual_protect = cap->args[0] & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
		q->initially_set = cap->args[0] & KVM_DIRTY_LOG_INITIALLY_SET;
		break;
	case KVM_CAP_DIRTY_LOG_RING:
	case KVM_CAP_DIRTY_LOG_RING_ACQ_REL:
		/* KVM allows no dirty bitmap beside a ring: nothing to harvest. */
		if (!q->stood_down)
			dtq_log("QEMU uses a dirty ring (-accel kvm,dirty-ring-size=): "
				"not tracking this VM");
		q->stood_down = true;
		dtq_agent_wake(q);
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&q->lock);
	return r;
}

static int set_region_locked(struct dtq *q, int fd, unsigned long req,
			     const struct kvm_userspace_memory_region *m)
{
	struct kvm_userspace_memory_region mine = *m;
	struct dtq_slot *s = slot_find(q, m->slot);
	bool qemu_log = m->flags & KVM_MEM_LOG_DIRTY_PAGES;
	int r;

	if (m->memory_size == 0) { /* delete */
		if (s)
			(void)slot_harvest(q, s, false);
		r = dtq_real_ioctl(fd, req, &mine);
		if (r == 0 && s)
			slot_drop(q, s);
		return r;
	}
	if (s && s->gpa == m->guest_phys_addr && s->size == m->memory_size &&
	    s->hva == m->userspace_addr) { /* flags only: QEMU's logging on or off */
		if (s->managed)
			mine.flags |= KVM_MEM_LOG_DIRTY_PAGES;
		uint64_t *view = NULL;

		if (s->managed && qemu_log && !s->qemu_log) {
			view = view_new(q, s->pages);
			if (!view)
				return fail(ENOMEM);
		}
		r = dtq_real_ioctl(fd, req, &mine);
		if (r < 0) {
			free(view);
			return r;
		}
		if (s->managed && qemu_log && !s->qemu_log) {
			s->view = view;
		} else if (s->managed && !qemu_log && s->qemu_log) {
			free(s->view);
			s->view = NULL;
		}
		s->qemu_log = s->managed && qemu_log;
		return r;
	}

	/* A new slot, or an existing one moved: harvest the old place first. */
	if (s)
		(void)slot_harvest(q, s, false);
	struct dtq_slot *e = s ? s : slot_free_entry(q);
	uint64_t pages = m->memory_size / 4096;
	bool manage = e && (m->slot >> 16) == 0 && !(m->flags & KVM_MEM_READONLY) && pages &&
		      pages <= UINT32_MAX && !q->stood_down;
	uint64_t *scratch = NULL, *view = NULL;

	if (manage) {
		scratch = calloc(words_of(pages), 8);
		view = qemu_log ? view_new(q, pages) : NULL;
		if (!scratch || (qemu_log && !view)) {
			free(scratch);
			free(view);
			scratch = view = NULL;
			manage = false; /* out of memory: QEMU goes on untracked */
		}
	}
	if (manage)
		mine.flags |= KVM_MEM_LOG_DIRTY_PAGES;
	r = dtq_real_ioctl(fd, req, &mine);
	if (r < 0 && manage && !qemu_log) {
		/* KVM refused the log (it should not): let QEMU's own call through. */
		manage = false;
		r = dtq_real_ioctl(fd, req, (void *)m);
	}
	if (r < 0) {
		free(scratch);
		free(view);
		return r;
	}
	if (s)
		slot_drop(q, s);
	if (!e)
		return r; /* table full: the slot exists in KVM, untracked */
	e->used = true;
	e->id = m->slot;
	e->gpa = m->guest_phys_addr;
	e->size = m->memory_size;
	e->hva = m->userspace_addr;
	e->pages = pages;
	e->managed = manage;
	e->scratch = manage ? scratch : NULL;
	e->qemu_log = manage && qemu_log;
	e->view = manage ? view : NULL;
	if (!manage) {
		free(scratch);
		free(view);
	}
	if (manage)
		slot_start_log(q, e);
	q->changed = true;
	return r;
}

int dtq_vm_set_region(int fd, unsigned long req, void *arg)
{
	struct dtq *q = &dtq_state;
	int r;

	if (!arg)
		return dtq_real_ioctl(fd, req, arg);
	/* Standing down only stops new slots being tracked (see manage). */
	pthread_mutex_lock(&q->lock);
	r = set_region_locked(q, fd, req, arg);
	bool changed = q->changed;
	pthread_mutex_unlock(&q->lock);
	if (changed)
		dtq_agent_wake(q);
	return r;
}

int dtq_vm_get_log(int fd, unsigned long req, void *arg)
{
	struct dtq *q = &dtq_state;
	struct kvm_dirty_log *l = arg;
	struct dtq_slot *s;

	if (!l)
		return dtq_real_ioctl(fd, req, arg);
	pthread_mutex_lock(&q->lock);
	s = slot_find(q, l->slot);
	if (!s || !s->managed) {
		pthread_mutex_unlock(&q->lock);
		return dtq_real_ioctl(fd, req, arg);
	}
	if (!s->qemu_log) {
		pthread_mutex_unlock(&q->lock);
		return fail(ENOENT); /* as KVM: the slot has no dirty bitmap */
	}
	(void)slot_harvest(q, s, false);
	memcpy(l->dirty_bitmap, s->view, words_of(s->pages) * 8);
	if (!q->manual_protect) /* without manual protect, GET also clears */
		memset(s->view, 0, words_of(s->pages) * 8);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

int dtq_vm_clear_log(int fd, unsigned long req, void *arg)
{
	struct dtq *q = &dtq_state;
	struct kvm_clear_dirty_log *l = arg;
	struct dtq_slot *s;
	int err = 0;

	if (!l)
		return dtq_real_ioctl(fd, req, arg);
	pthread_mutex_lock(&q->lock);
	s = slot_find(q, l->slot);
	if (!s || !s->managed || !q->manual_protect) {
		/* Not ours, or KVM would refuse it anyway: let KVM answer. */
		pthread_mutex_unlock(&q->lock);
		return dtq_real_ioctl(fd, req, arg);
	}
	/* KVM's checks, in KVM's order (virt/kvm/kvm_main.c). */
	if (l->first_page & 63)
		err = EINVAL;
	else if (!s->qemu_log)
		err = ENOENT;
	else if (l->first_page > s->pages || l->num_pages > s->pages - l->first_page ||
		 (l->num_pages < s->pages - l->first_page && (l->num_pages & 63)))
		err = EINVAL;
	if (err) {
		pthread_mutex_unlock(&q->lock);
		return fail(err);
	}
	(void)slot_harvest(q, s, false);
	const uint64_t *mask = l->dirty_bitmap;
	uint64_t w0 = l->first_page / 64, n = words_of(l->num_pages);

	for (uint64_t i = 0; i < n; i++)
		s->view[w0 + i] &= ~mask[i];
	pthread_mutex_unlock(&q->lock);
	return 0;
}

void dtq_vm_closed(int fd)
{
	struct dtq *q = &dtq_state;

	pthread_mutex_lock(&q->lock);
	if (fd == q->vmfd) {
		for (unsigned i = 0; i < DTQ_SLOTS_MAX; i++)
			if (q->slots[i].used) {
				(void)slot_harvest(q, &q->slots[i], false);
				slot_drop(q, &q->slots[i]);
			}
		q->vm_closed = true;
		__atomic_store_n(&q->vmfd, -1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&q->lock);
	dtq_agent_wake(q);
}

int dtq_harvest_all_locked(struct dtq *q)
{
	int64_t pages = 0;

	if (q->vmfd < 0)
		return 0;
	for (unsigned i = 0; i < DTQ_SLOTS_MAX; i++) {
		struct dtq_slot *s = &q->slots[i];

		/* A slot the daemon has no bitmap for keeps its bits in KVM. */
		if (!s->used || !s->managed || !s->decl)
			continue;
		int64_t r = slot_harvest(q, s, true);

		if (r < 0)
			return (int)r;
		pages += r;
	}
	return pages > INT32_MAX ? INT32_MAX : (int)pages;
}
