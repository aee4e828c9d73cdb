/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Guest memory: the sys slot (code, page tables, command pages; never
 * dirty-logged) and the data slots the workload writes, backed by 4 KiB
 * anonymous pages, THP (madvise) or hugetlbfs (memfd MFD_HUGETLB). One
 * data slot sits above 4 GiB; with 4 MiB or more a second one sits below.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dtvm.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif

#define LOW_SLOT_GPA (1ull << 30)
#define HIGH_SLOT_GPA (4ull << 30)
#define LOW_SLOT_MAX (2ull << 30)

static uint64_t round_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

static void prefault(uint8_t *p, uint64_t size)
{
	if (madvise(p, size, MADV_POPULATE_WRITE) == 0)
		return;
	for (uint64_t off = 0; off < size; off += DTVM_PAGE_SIZE)
		__atomic_store_n((volatile uint8_t *)p + off, 0, __ATOMIC_RELAXED);
}

static int ram_alloc(struct dtvm *vm)
{
	uint64_t size = vm->ram_size;
	uint8_t *p;

	if (vm->o.hugepages == DTVM_HP_HUGETLB) {
		_cleanup_close_ int fd = memfd_create("dtvm-ram", MFD_CLOEXEC | MFD_HUGETLB);

		if (fd < 0)
			return -errno;
		if (ftruncate(fd, size) < 0)
			return -errno;
		/* MAP_POPULATE: fail now, not with SIGBUS in the guest. */
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
		if (p == MAP_FAILED)
			return -errno;
		vm->ram = p;
		vm->ram_fd = TAKE_FD(fd);
		return 0;
	}

	/* Over-allocate by 2 MiB so slots start 2 MiB aligned (THP needs it). */
	p = mmap(NULL, size + DTVM_HUGE_SIZE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	{
		uint8_t *aligned = (uint8_t *)round_up((uintptr_t)p, DTVM_HUGE_SIZE);

		if (aligned > p)
			munmap(p, aligned - p);
		munmap(aligned + size, (p + size + DTVM_HUGE_SIZE) - (aligned + size));
		p = aligned;
	}
	if (madvise(p, size, vm->o.hugepages == DTVM_HP_THP ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) <
	    0) {
		int r = -errno;

		munmap(p, size);
		return r;
	}
	prefault(p, size);
	vm->ram = p;
	return 0;
}

int dtvm_memory_setup(struct dtvm *vm)
{
	uint64_t low = 0, high;
	void *sys;
	int r;

	vm->sys_size = round_up(dtvm_cmd_gpa(vm->o.vcpus), DTVM_HUGE_SIZE);
	sys = mmap(NULL, vm->sys_size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (sys == MAP_FAILED)
		return -errno;
	vm->sys_hva = sys;

	vm->ram_size = round_up(vm->o.memory, DTVM_HUGE_SIZE);
	vm->data_pages = vm->ram_size / DTVM_PAGE_SIZE;
	vm->ram_fd = -1;
	r = ram_alloc(vm);
	if (r < 0)
		return r;

	/* Half (at most 2 GiB) below 4 GiB, the rest above; 2 MiB granular. */
	if (vm->ram_size >= 2 * DTVM_HUGE_SIZE)
		low = DT_MIN(vm->ram_size / 2 / DTVM_HUGE_SIZE * DTVM_HUGE_SIZE, LOW_SLOT_MAX);
	high = vm->ram_size - low;

	vm->nslots = 0;
	if (low) {
		vm->slots[vm->nslots++] = (struct dtvm_slot){
			.id = 1,
			.gpa = LOW_SLOT_GPA,
			.pages = low / DTVM_PAGE_SIZE,
			.hva = vm->ram,
			.first = 0,
		};
	}
	vm->slots[vm->nslots++] = (struct dtvm_slot){
		.id = 2,
		.gpa = HIGH_SLOT_GPA,
		.pages = high / DTVM_PAGE_SIZE,
		.hva = vm->ram + low,
		.first = low / DTVM_PAGE_SIZE,
	};

	for (unsigned i = 0; i < vm->nslots; i++) {
		struct dtvm_slot *s = &vm->slots[i];

		s->kvm_log = calloc(dtvm_bitmap_words(s->pages), sizeof(uint64_t));
		if (!s->kvm_log)
			return -ENOMEM;
	}

	dtvm_guest_setup_sys(vm);
	vm_set_user_memory_region(vm->vm_fd, 0, 0, 0, vm->sys_size, vm->sys_hva);
	vm->logging = !vm->o.no_tracking;
	for (unsigned i = 0; i < vm->nslots; i++) {
		struct dtvm_slot *s = &vm->slots[i];

		vm_set_user_memory_region(vm->vm_fd, s->id,
					  vm->logging ? KVM_MEM_LOG_DIRTY_PAGES : 0, s->gpa,
					  s->pages * DTVM_PAGE_SIZE, s->hva);
	}
	return 0;
}

/*
 * Turn dirty logging on or off for every data slot (detach turns it off so
 * an unattended VM costs nothing; attach turns it back on, which makes KVM
 * write-protect the slot again).
 */
int dtvm_memory_set_logging(struct dtvm *vm, bool on)
{
	if (vm->o.no_tracking || vm->logging == on)
		return 0;
	for (unsigned i = 0; i < vm->nslots; i++) {
		struct dtvm_slot *s = &vm->slots[i];
		int r = __vm_set_user_memory_region(vm->vm_fd, s->id,
						    on ? KVM_MEM_LOG_DIRTY_PAGES : 0, s->gpa,
						    s->pages * DTVM_PAGE_SIZE, s->hva);

		if (r < 0)
			return r;
	}
	vm->logging = on;
	return 0;
}

void dtvm_memory_teardown(struct dtvm *vm)
{
	for (unsigned i = 0; i < vm->nslots; i++) {
		free(vm->slots[i].kvm_log);
		vm->slots[i].shared = dt_shared_bitmap_free(vm->slots[i].shared);
	}
	if (vm->ram)
		munmap(vm->ram, vm->ram_size);
	if (vm->sys_hva)
		munmap(vm->sys_hva, vm->sys_size);
	if (vm->ram_fd >= 0)
		close(vm->ram_fd);
	vm->ram = vm->sys_hva = NULL;
	vm->ram_fd = -1;
}

static const struct dtvm_slot *page_slot(const struct dtvm *vm, uint64_t page)
{
	const struct dtvm_slot *s = &vm->slots[0];

	if (vm->nslots > 1 && page >= vm->slots[1].first)
		s = &vm->slots[1];
	return s;
}

uint64_t dtvm_page_gfn(const struct dtvm *vm, uint64_t page)
{
	const struct dtvm_slot *s = page_slot(vm, page);

	return s->gpa / DTVM_PAGE_SIZE + (page - s->first);
}

uint8_t *dtvm_page_hva(const struct dtvm *vm, uint64_t page)
{
	return vm->ram + page * DTVM_PAGE_SIZE;
}

int64_t dtvm_slot_page(const struct dtvm *vm, uint32_t slot, uint64_t offset)
{
	for (unsigned i = 0; i < vm->nslots; i++)
		if (vm->slots[i].id == slot)
			return offset < vm->slots[i].pages ? (int64_t)(vm->slots[i].first + offset)
							   : -EINVAL;
	return -EINVAL;
}

/* How the data is really backed (AnonHugePages / hugetlb) for -v. */
void dtvm_memory_describe(const struct dtvm *vm)
{
	char line[256], want[64];
	unsigned long long thp = 0;
	bool in = false;
	FILE *f;

	if (!vm->o.verbose)
		return;
	f = fopen("/proc/self/smaps", "re");
	if (!f)
		return;
	snprintf(want, sizeof(want), "%llx-", (unsigned long long)(uintptr_t)vm->ram);
	while (fgets(line, sizeof(line), f)) {
		if (strchr(line, '-') && strchr(line, ' ') && strchr(line, '-') < strchr(line, ' '))
			in = strncmp(line, want, strlen(want)) == 0;
		else if (in && sscanf(line, "AnonHugePages: %llu kB", &thp) == 1)
			break;
	}
	fclose(f);
	dtvm_log(vm, "data: %llu MiB in %u slot(s), backing %s, AnonHugePages %llu kB",
		 (unsigned long long)(vm->ram_size >> 20), vm->nslots,
		 vm->o.hugepages == DTVM_HP_HUGETLB ? "hugetlbfs"
		 : vm->o.hugepages == DTVM_HP_THP   ? "THP"
						    : "4K",
		 thp);
}
