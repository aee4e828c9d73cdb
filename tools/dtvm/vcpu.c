/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vCPU threads: each fills its command page with a batch of pages, runs
 * the guest until it exits with port I/O (batch written), and records the
 * batch as ground truth with its completion time. Batches are paced to
 * the requested rate. A dirty-ring-full exit is reported to the daemon and
 * the thread waits (condition variable) for the reset that follows, or
 * harvests and resets itself when there is no daemon.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "dtvm.h"

static uint32_t batch_max(const struct dtvm *vm)
{
	uint32_t max = vm->ring ? DTVM_RING_BATCH_MAX : DTVM_CMD_MAX;
	uint64_t per_vcpu = vm->o.rate / vm->o.vcpus;

	if (vm->o.batch)
		return DT_MIN(vm->o.batch, max);
	if (!vm->o.rate)
		return max;
	/* about one batch per millisecond */
	return (uint32_t)DT_MAX(DT_MIN(per_vcpu / 1000, (uint64_t)max), 1);
}

static void sleep_until(uint64_t us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static bool stopping(struct dtvm *vm)
{
	return __atomic_load_n(&vm->stop, __ATOMIC_ACQUIRE);
}

/*
 * KVM_EXIT_DIRTY_RING_FULL: the vCPU may not run until entries are reset.
 * Attached: tell the daemon, wait for the reset it triggers (re-notify
 * every second); wake and harvest ourselves if the daemon goes away.
 */
static void ring_full(struct dtvm *vm, struct dtvm_vcpu *v)
{
	bool notified = false, self = false;
	uint64_t gen;

	v->ring_full_events++;
	pthread_mutex_lock(&vm->lock);
	vm->ring_full_total++;
	gen = vm->reset_gen;
	while (vm->reset_gen == gen && !vm->stop) {
		struct timespec ts;

		if (!vm->client || !v->ring_added) {
			self = true;
			break;
		}
		if (!notified) {
			(void)dt_client_ring_full(vm->client, v->id);
			notified = true;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		if (pthread_cond_timedwait(&vm->cond, &vm->lock, &ts) == ETIMEDOUT)
			notified = false;
	}
	pthread_mutex_unlock(&vm->lock);
	if (self)
		dtvm_dirty_self_harvest(vm, vm->o.self_harvest_us != 0);
}

static void dma_write(struct dtvm *vm, struct dtvm_vcpu *v, uint64_t page, uint64_t stamp)
{
	const struct dtvm_slot *s = &vm->slots[0];

	__atomic_store_n((uint64_t *)(dtvm_page_hva(vm, page) + v->id * 8), stamp,
			 __ATOMIC_RELAXED);
	if (vm->nslots > 1 && page >= vm->slots[1].first)
		s = &vm->slots[1];
	if (s->shared)
		dt_shared_bitmap_mark(s->shared, page - s->first);
}

static void check_stamps(struct dtvm *vm, struct dtvm_vcpu *v, const uint64_t *pages, uint32_t n,
			 uint64_t stamp)
{
	for (uint32_t i = 0; i < n; i++) {
		uint64_t got = *(volatile uint64_t *)(dtvm_page_hva(vm, pages[i]) + v->id * 8);

		if (got != stamp)
			dtvm_die("vCPU %u: gfn 0x%llx holds 0x%llx, expected stamp 0x%llx", v->id,
				 (unsigned long long)dtvm_page_gfn(vm, pages[i]),
				 (unsigned long long)got, (unsigned long long)stamp);
	}
}

static void unexpected_exit(struct dtvm_vcpu *v)
{
	struct kvm_regs regs;
	struct kvm_run *run = v->run;

	if (__kvm_ioctl(v->fd, KVM_GET_REGS, &regs) < 0)
		memset(&regs, 0, sizeof(regs));
	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
		dtvm_die("vCPU %u: KVM_EXIT_INTERNAL_ERROR suberror %u at rip 0x%llx", v->id,
			 run->internal.suberror, (unsigned long long)regs.rip);
	if (run->exit_reason == KVM_EXIT_IO)
		dtvm_die("vCPU %u: unexpected port I/O 0x%x dir %u at rip 0x%llx", v->id,
			 run->io.port, run->io.direction, (unsigned long long)regs.rip);
	dtvm_die("vCPU %u: unexpected exit %s (%u) at rip 0x%llx", v->id,
		 kvm_exit_reason_str(run->exit_reason), run->exit_reason,
		 (unsigned long long)regs.rip);
}

static void *vcpu_thread(void *arg)
{
	struct dtvm_vcpu *v = arg;
	struct dtvm *vm = v->vm;
	uint32_t bmax = batch_max(vm);
	double per_vcpu = (double)vm->o.rate / vm->o.vcpus;
	uint64_t pages[DTVM_CMD_MAX], dma[DTVM_CMD_MAX], issued = 0, stamp = 0, batch_t0 = 0;
	uint32_t ng = 0;
	bool pending = false;

	for (;;) {
		uint64_t t0, t1, now;
		int r;

		if (stopping(vm))
			break;
		if (!pending) {
			uint32_t nd = 0;

			now = dt_now_us();
			if (per_vcpu > 0) {
				uint64_t due = vm->start_us + (uint64_t)(issued * 1e6 / per_vcpu);

				if (due > now) {
					sleep_until(DT_MIN(due, vm->end_us));
					now = dt_now_us();
				}
			}
			if (now >= vm->end_us || stopping(vm))
				break;
			ng = 0;
			stamp = ((uint64_t)(v->id + 1) << 48) | (v->batches + 1);
			for (uint32_t i = 0; i < bmax; i++) {
				uint64_t p = dtvm_workload_next(vm, v);

				if (vm->o.dma_fraction > 0 &&
				    (dtvm_rand(v->rng) >> 11) * 0x1.0p-53 < vm->o.dma_fraction)
					dma[nd++] = p;
				else
					pages[ng++] = p;
			}
			issued += bmax;
			if (nd) {
				uint64_t td0 = dt_now_us();

				for (uint32_t i = 0; i < nd; i++)
					dma_write(vm, v, dma[i], stamp);
				dtvm_truth_record(vm, v, td0, dt_now_us(), dma, nd, true);
			}
			v->cmd->count = ng;
			v->cmd->stamp = stamp;
			for (uint32_t i = 0; i < ng; i++)
				v->cmd->pages[i] = dtvm_page_gfn(vm, pages[i]);
			__atomic_thread_fence(__ATOMIC_RELEASE);
			pending = true;
			/* The guest cannot write any of them before this. */
			batch_t0 = dt_now_us();
		}

		t0 = dt_now_us();
		r = __kvm_ioctl(v->fd, KVM_RUN, NULL);
		t1 = dt_now_us();
		v->run_us += t1 - t0;
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r < 0)
			dtvm_die("vCPU %u: KVM_RUN: %s", v->id, strerror(-r));

		switch (v->run->exit_reason) {
		case KVM_EXIT_IO:
			if (v->run->io.port != DTVM_IO_PORT ||
			    v->run->io.direction != KVM_EXIT_IO_OUT)
				unexpected_exit(v);
			pending = false;
			v->batches++;
			if (vm->o.verify)
				check_stamps(vm, v, pages, ng, stamp);
			dtvm_truth_record(vm, v, batch_t0, t1, pages, ng, false);
			break;
		case KVM_EXIT_DIRTY_RING_FULL:
			ring_full(vm, v);
			break;
		case KVM_EXIT_INTR:
			break;
		default:
			unexpected_exit(v);
		}
	}
	__atomic_fetch_sub(&vm->running, 1, __ATOMIC_RELEASE);
	return NULL;
}

int dtvm_vcpus_create(struct dtvm *vm)
{
	_cleanup_free_ struct kvm_cpuid2 *cpuid = kvm_get_supported_cpuid(vm->kvm_fd);
	uint64_t words = dtvm_bitmap_words(vm->data_pages);

	vm->vcpus = calloc(vm->o.vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	for (uint32_t i = 0; i < vm->o.vcpus; i++) {
		struct dtvm_vcpu *v = &vm->vcpus[i];
		int r;

		v->vm = vm;
		v->id = i;
		v->fd = __vm_create_vcpu(vm->vm_fd, i);
		if (v->fd < 0)
			return v->fd;
		r = __vcpu_mmap_run(vm->kvm_fd, v->fd, &v->run, &v->run_size);
		if (r < 0)
			return r;
		dtvm_guest_setup_vcpu(vm, v, cpuid);
		r = dtvm_dirty_setup_vcpu(vm, v);
		if (r < 0)
			return r;
		v->written = calloc(words, 8);
		v->harvested = calloc(words, 8);
		if (!v->written || !v->harvested)
			return -ENOMEM;
	}
	return 0;
}

int dtvm_vcpus_start(struct dtvm *vm)
{
	sigset_t all, old;
	int r = 0;

	/* Signals go to the main thread, never into KVM_RUN. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	vm->running = vm->o.vcpus;
	for (uint32_t i = 0; i < vm->o.vcpus && !r; i++) {
		r = -pthread_create(&vm->vcpus[i].thread, NULL, vcpu_thread, &vm->vcpus[i]);
		vm->vcpus[i].started = r == 0;
		if (r)
			__atomic_fetch_sub(&vm->running, vm->o.vcpus - i, __ATOMIC_RELEASE);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

void dtvm_vcpus_stop(struct dtvm *vm)
{
	pthread_mutex_lock(&vm->lock);
	__atomic_store_n(&vm->stop, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

void dtvm_vcpus_join(struct dtvm *vm)
{
	for (uint32_t i = 0; i < vm->o.vcpus; i++)
		if (vm->vcpus[i].started) {
			pthread_join(vm->vcpus[i].thread, NULL);
			vm->vcpus[i].started = false;
		}
}
