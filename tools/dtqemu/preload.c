/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The interposers: ioctl() and close() as QEMU calls them. Everything that
 * is not a KVM call on the VM fd (or KVM_CREATE_VM, or the first KVM_RUN)
 * goes straight to libc, at the cost of a few compares.
 *
 * QEMU passes the request number through an int (kvm_vm_ioctl(s, int
 * type, ...)), so a request with bit 31 set, such as KVM_CLEAR_DIRTY_LOG,
 * arrives sign-extended (0xffffffffc018aec0). The kernel looks at the low
 * 32 bits only; so do we.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "dtqemu.h"

#define DTQ_EXPORT __attribute__((visibility("default")))

static int (*real_ioctl)(int, unsigned long, ...);
static int (*real_close)(int);
int dtq_seen_run;

static void resolve(void)
{
	if (!real_ioctl)
		real_ioctl = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
	if (!real_close)
		real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
}

__attribute__((constructor)) static void dtq_init(void)
{
	resolve();
}

int dtq_real_ioctl(int fd, unsigned long req, void *arg)
{
	if (!real_ioctl)
		resolve();
	return real_ioctl(fd, req, arg);
}

static inline uint32_t low32(unsigned long req)
{
	return (uint32_t)req;
}

DTQ_EXPORT int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);

	if (fd >= 0 && fd == __atomic_load_n(&dtq_state.vmfd, __ATOMIC_RELAXED)) {
		switch (low32(req)) {
		case (uint32_t)KVM_SET_USER_MEMORY_REGION:
			return dtq_vm_set_region(fd, req, arg);
		case (uint32_t)KVM_GET_DIRTY_LOG:
			return dtq_vm_get_log(fd, req, arg);
		case (uint32_t)KVM_CLEAR_DIRTY_LOG:
			return dtq_vm_clear_log(fd, req, arg);
		case (uint32_t)KVM_ENABLE_CAP:
			return dtq_vm_enable_cap(fd, req, arg);
		case (uint32_t)KVM_CREATE_VCPU: {
			int r = dtq_real_ioctl(fd, req, arg);

			if (r >= 0)
				__atomic_fetch_add(&dtq_state.vcpus_created, 1, __ATOMIC_RELAXED);
			return r;
		}
		default:
			break;
		}
	} else if (low32(req) == (uint32_t)KVM_RUN) {
		if (!__atomic_load_n(&dtq_seen_run, __ATOMIC_RELAXED) &&
		    !__atomic_exchange_n(&dtq_seen_run, 1, __ATOMIC_ACQ_REL))
			dtq_agent_wake(&dtq_state);
	} else if (low32(req) == (uint32_t)KVM_CREATE_VM) {
		return dtq_vm_create(fd, req, arg);
	}
	return dtq_real_ioctl(fd, req, arg);
}

DTQ_EXPORT int close(int fd)
{
	if (!real_close)
		resolve();
	/* Before the fd number can be reused by anyone else. */
	if (fd >= 0 && fd == __atomic_load_n(&dtq_state.vmfd, __ATOMIC_RELAXED))
		dtq_vm_closed(fd);
	return real_close(fd);
}
