/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Thin KVM helpers in the style of the kernel's KVM selftests: __foo()
 * returns >= 0 or -errno, foo() dies with the ioctl's name.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "dtvm.h"

int __kvm_ioctl(int fd, unsigned long cmd, void *arg)
{
	int r;

	do
		r = ioctl(fd, cmd, arg);
	while (r < 0 && errno == EINTR && cmd != KVM_RUN);
	return r < 0 ? -errno : r;
}

/*
 * Open /dev/kvm and create a VM. Errors say why KVM is unusable (the
 * caller turns them into the "skip" exit code).
 */
int __kvm_open(int *ret_kvm_fd, int *ret_vm_fd)
{
	_cleanup_close_ int kvm = -1;
	int vm, r;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return -errno;
	r = __kvm_ioctl(kvm, KVM_GET_API_VERSION, NULL);
	if (r < 0)
		return r;
	if (r != KVM_API_VERSION)
		return -EPROTONOSUPPORT;
	/* KVM creates VM and vCPU fds O_CLOEXEC. */
	do
		vm = ioctl(kvm, KVM_CREATE_VM, 0);
	while (vm < 0 && errno == EINTR);
	if (vm < 0)
		return -errno;
	*ret_kvm_fd = TAKE_FD(kvm);
	*ret_vm_fd = vm;
	return 0;
}

/* KVM_CHECK_EXTENSION on the VM fd (or /dev/kvm); errors read as "absent". */
int kvm_check_cap(int fd, long cap)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

int __vm_enable_cap(int vm_fd, uint32_t cap, uint64_t arg0)
{
	struct kvm_enable_cap c = { .cap = cap, .args = { arg0 } };

	return __kvm_ioctl(vm_fd, KVM_ENABLE_CAP, &c);
}

int __vm_set_user_memory_region(int vm_fd, uint32_t slot, uint32_t flags, uint64_t gpa,
				uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)hva,
	};

	return __kvm_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
}

void vm_set_user_memory_region(int vm_fd, uint32_t slot, uint32_t flags, uint64_t gpa,
			       uint64_t size, void *hva)
{
	int r = __vm_set_user_memory_region(vm_fd, slot, flags, gpa, size, hva);

	if (r < 0)
		dtvm_die("KVM_SET_USER_MEMORY_REGION slot %u gpa 0x%llx size 0x%llx: %s", slot,
			 (unsigned long long)gpa, (unsigned long long)size, strerror(-r));
}

int __vm_create_vcpu(int vm_fd, uint32_t id)
{
	return __kvm_ioctl(vm_fd, KVM_CREATE_VCPU, (void *)(uintptr_t)id);
}

int __vcpu_mmap_run(int kvm_fd, int vcpu_fd, struct kvm_run **ret, size_t *ret_size)
{
	int size = __kvm_ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
	void *p;

	if (size < 0)
		return size;
	if ((size_t)size < sizeof(struct kvm_run))
		return -EINVAL;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	*ret = p;
	*ret_size = size;
	return 0;
}

struct kvm_cpuid2 *kvm_get_supported_cpuid(int kvm_fd)
{
	for (unsigned nent = 64; nent <= 4096; nent *= 2) {
		struct kvm_cpuid2 *c;
		int r;

		c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
		if (!c)
			dtvm_die("out of memory");
		c->nent = nent;
		r = __kvm_ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c);
		if (r >= 0)
			return c;
		free(c);
		if (r != -E2BIG)
			dtvm_die("KVM_GET_SUPPORTED_CPUID failed: %s", strerror(-r));
	}
	dtvm_die("KVM_GET_SUPPORTED_CPUID: too many entries");
}

int __vm_get_dirty_log(int vm_fd, uint32_t slot, void *bitmap)
{
	struct kvm_dirty_log l = { .slot = slot, .dirty_bitmap = bitmap };

	return __kvm_ioctl(vm_fd, KVM_GET_DIRTY_LOG, &l);
}

/* first must be 64-page aligned; num a multiple of 64 unless it ends the slot. */
int __vm_clear_dirty_log(int vm_fd, uint32_t slot, uint64_t first, uint32_t num, void *bitmap)
{
	struct kvm_clear_dirty_log l = {
		.slot = slot,
		.num_pages = num,
		.first_page = first,
		.dirty_bitmap = bitmap,
	};

	return __kvm_ioctl(vm_fd, KVM_CLEAR_DIRTY_LOG, &l);
}

int __vm_reset_dirty_rings(int vm_fd)
{
	return __kvm_ioctl(vm_fd, KVM_RESET_DIRTY_RINGS, NULL);
}

const char *kvm_exit_reason_str(uint32_t reason)
{
	static const char *const names[] = {
		[KVM_EXIT_UNKNOWN] = "UNKNOWN",
		[KVM_EXIT_EXCEPTION] = "EXCEPTION",
		[KVM_EXIT_IO] = "IO",
		[KVM_EXIT_HYPERCALL] = "HYPERCALL",
		[KVM_EXIT_DEBUG] = "DEBUG",
		[KVM_EXIT_HLT] = "HLT",
		[KVM_EXIT_MMIO] = "MMIO",
		[KVM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN",
		[KVM_EXIT_SHUTDOWN] = "SHUTDOWN",
		[KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY",
		[KVM_EXIT_INTR] = "INTR",
		[KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
		[KVM_EXIT_SYSTEM_EVENT] = "SYSTEM_EVENT",
		[KVM_EXIT_DIRTY_RING_FULL] = "DIRTY_RING_FULL",
	};

	if (reason < ARRAY_SIZE(names) && names[reason])
		return names[reason];
	return "?";
}
