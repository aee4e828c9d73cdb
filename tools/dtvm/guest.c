/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The guest: a 64-bit ring-0 loop entered directly in long mode (no
 * firmware), with 2 MiB identity page tables. Everything here lives in the
 * sys slot, which is not dirty-logged; the page tables carry preset
 * Accessed/Dirty bits so the guest never writes them either.
 */
#include <string.h>

#include "dtvm.h"

/*
 * Assembled with GNU as (--64) from:
 *
 *	top:	mov	(%rdi), %ecx		# count
 *		mov	8(%rdi), %rax		# stamp
 *		lea	64(%rdi), %rsi		# page frame numbers
 *		test	%ecx, %ecx
 *		jz	done
 *	1:	mov	(%rsi), %rdx
 *		shl	$12, %rdx
 *		mov	%rax, (%rdx,%rbx)	# rbx = vcpu * 8: own word per vCPU
 *		add	$8, %rsi
 *		dec	%ecx
 *		jnz	1b
 *	done:	out	%al, $0x10		# batch done: exit to the VMM
 *		jmp	top
 *
 * rdi = the vCPU's command page, rbx = its stamp offset (set by the VMM).
 */
static const uint8_t guest_code[] = {
	0x8b, 0x0f, /* mov (%rdi),%ecx */
	0x48, 0x8b, 0x47, 0x08, /* mov 0x8(%rdi),%rax */
	0x48, 0x8d, 0x77, 0x40, /* lea 0x40(%rdi),%rsi */
	0x85, 0xc9, /* test %ecx,%ecx */
	0x74, 0x13, /* je done */
	0x48, 0x8b, 0x16, /* mov (%rsi),%rdx */
	0x48, 0xc1, 0xe2, 0x0c, /* shl $0xc,%rdx */
	0x48, 0x89, 0x04, 0x1a, /* mov %rax,(%rdx,%rbx,1) */
	0x48, 0x83, 0xc6, 0x08, /* add $0x8,%rsi */
	0xff, 0xc9, /* dec %ecx */
	0x75, 0xed, /* jne 1b */
	0xe6, DTVM_IO_PORT, /* out %al,$0x10 */
	0xeb, 0xdb, /* jmp top */
};
static_assert(offsetof(struct dtvm_cmd, stamp) == 8, "guest reads the stamp at 8");
static_assert(offsetof(struct dtvm_cmd, pages) == 64, "guest reads pages at 64");
static_assert(sizeof(struct dtvm_cmd) == DTVM_PAGE_SIZE, "command page");

#define PTE_P (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define PTE_PS (1ull << 7)

#define GDT_CODE_SEL 0x08
#define GDT_DATA_SEL 0x10
#define GDT_TSS_SEL 0x18
#define TSS_LIMIT 0x67

uint64_t dtvm_cmd_gpa(uint32_t vcpu)
{
	return DTVM_CMD_GPA + (uint64_t)vcpu * 2 * DTVM_PAGE_SIZE;
}

void dtvm_guest_setup_sys(struct dtvm *vm)
{
	uint8_t *sys = vm->sys_hva;
	uint64_t *gdt = (uint64_t *)(sys + DTVM_GDT_GPA);
	uint64_t *pml4 = (uint64_t *)(sys + DTVM_PML4_GPA);
	uint64_t *pdpt = (uint64_t *)(sys + DTVM_PDPT_GPA);
	uint64_t top = 0, npd;

	/* Identity-map everything up to the end of the highest slot. */
	for (unsigned i = 0; i < vm->nslots; i++)
		top = DT_MAX(top, vm->slots[i].gpa + vm->slots[i].pages * DTVM_PAGE_SIZE);
	top = DT_MAX(top, vm->sys_size);
	npd = (top + (1ull << 30) - 1) >> 30;
	if (npd > DTVM_MAX_PDS)
		dtvm_die("guest-physical space too large for the page tables");

	pml4[0] = DTVM_PDPT_GPA | PTE_P | PTE_RW | PTE_A;
	for (uint64_t i = 0; i < npd; i++) {
		uint64_t *pd = (uint64_t *)(sys + DTVM_PD_GPA + i * DTVM_PAGE_SIZE);

		pdpt[i] = (DTVM_PD_GPA + i * DTVM_PAGE_SIZE) | PTE_P | PTE_RW | PTE_A;
		for (uint64_t j = 0; j < 512; j++)
			pd[j] = ((i << 30) + (j << 21)) | PTE_P | PTE_RW | PTE_A | PTE_D | PTE_PS;
	}

	/* Flat GDT: null, 64-bit code, data, 16-byte 64-bit TSS descriptor. */
	gdt[0] = 0;
	gdt[1] = 0x00af9b000000ffffull;
	gdt[2] = 0x00cf93000000ffffull;
	gdt[3] = TSS_LIMIT | ((DTVM_TSS_GPA & 0xffffff) << 16) | (0x89ull << 40) |
		 ((DTVM_TSS_GPA >> 24) & 0xff) << 56;
	gdt[4] = DTVM_TSS_GPA >> 32;

	memcpy(sys + DTVM_CODE_GPA, guest_code, sizeof(guest_code));
}

static void seg_set(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64)
{
	*s = (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = sel,
		.type = type,
		.present = 1,
		.dpl = 0,
		.db = code64 ? 0 : 1,
		.s = 1,
		.l = code64 ? 1 : 0,
		.g = 1,
	};
}

void dtvm_guest_setup_vcpu(struct dtvm *vm, struct dtvm_vcpu *v, const struct kvm_cpuid2 *cpuid)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { 0 };

	kvm_ioctl(v->fd, KVM_SET_CPUID2, (void *)cpuid);
	kvm_ioctl(v->fd, KVM_GET_SREGS, &sregs);

	sregs.cr0 = 0x80050033; /* PG AM WP NE ET MP PE */
	sregs.cr4 = 0x620; /* OSXMMEXCPT OSFXSR PAE */
	sregs.efer = 0x500; /* LMA LME */
	sregs.cr3 = DTVM_PML4_GPA;
	seg_set(&sregs.cs, GDT_CODE_SEL, 11, true);
	seg_set(&sregs.ds, GDT_DATA_SEL, 3, false);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.tr = (struct kvm_segment){
		.base = DTVM_TSS_GPA,
		.limit = TSS_LIMIT,
		.selector = GDT_TSS_SEL,
		.type = 11, /* busy 64-bit TSS */
		.present = 1,
	};
	sregs.ldt = (struct kvm_segment){ .unusable = 1, .type = 2, .present = 1 };
	sregs.gdt.base = DTVM_GDT_GPA;
	sregs.gdt.limit = 5 * 8 - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	kvm_ioctl(v->fd, KVM_SET_SREGS, &sregs);

	regs.rip = DTVM_CODE_GPA;
	regs.rdi = dtvm_cmd_gpa(v->id);
	regs.rbx = (uint64_t)v->id * 8;
	regs.rsp = dtvm_cmd_gpa(v->id) + 2 * DTVM_PAGE_SIZE;
	regs.rflags = 0x2;
	kvm_ioctl(v->fd, KVM_SET_REGS, &regs);

	v->cmd = (struct dtvm_cmd *)(vm->sys_hva + dtvm_cmd_gpa(v->id));
}
