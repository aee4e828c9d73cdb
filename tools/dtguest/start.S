/* dtguest entry: multiboot header, own GDT, interrupt stubs. */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* page-align modules, want the memory map */

	.section .text.boot, "ax"
	.code32
	.align 4
mb_header:
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.globl _start
_start:
	cli
	cld
	lgdt gdt_desc
	ljmp $0x08, $1f
1:	mov $0x10, %ecx
	mov %ecx, %ds
	mov %ecx, %es
	mov %ecx, %ss
	mov %ecx, %fs
	mov %ecx, %gs
	mov $stack_top, %esp
	push %ebx /* multiboot info */
	push %eax /* multiboot magic */
	call dtg_main
2:	cli
	hlt
	jmp 2b

	.align 8
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff /* 0x08: code, flat 4 GiB, ring 0 */
	.quad 0x00cf92000000ffff /* 0x10: data, flat 4 GiB, ring 0 */
gdt_desc:
	.word gdt_desc - gdt - 1
	.long gdt

/* Interrupts are taken only inside idle_wait's "sti; hlt; cli", with the
 * PIC in auto-EOI mode (no EOI, no exit). This KVM emulates ring-0 code with
 * an instruction emulator that cannot do a protected-mode IRET (it fails
 * with "emulation failure"), so the handlers return with a near RET to the
 * interrupted EIP instead, leaving IF clear: which is what the "cli" after
 * the "hlt" does anyway. Flags are clobbered (the asm is treated as such). */
	.globl dtg_isr_timer
dtg_isr_timer:
	incl dtg_ticks
	/* fall through */
	.globl dtg_isr_ignore
dtg_isr_ignore:
	push %eax		/* eax, eip, cs, eflags */
	mov 4(%esp), %eax
	mov %eax, 12(%esp)	/* eax, eip, cs, eip */
	pop %eax
	add $8, %esp		/* eip */
	ret

/* Exceptions 0..31: normalise to (vector, error code, eip...) and report. */
.macro exc_noerr n
	.globl dtg_exc\n
dtg_exc\n:
	push $0
	push $\n
	jmp exc_common
.endm
.macro exc_err n
	.globl dtg_exc\n
dtg_exc\n:
	push $\n
	jmp exc_common
.endm
exc_common:
	push %esp /* -> vector, error, eip, cs, eflags */
	call dtg_fault
3:	cli
	hlt
	jmp 3b

	exc_noerr 0
	exc_noerr 1
	exc_noerr 2
	exc_noerr 3
	exc_noerr 4
	exc_noerr 5
	exc_noerr 6
	exc_noerr 7
	exc_err 8
	exc_noerr 9
	exc_err 10
	exc_err 11
	exc_err 12
	exc_err 13
	exc_err 14
	exc_noerr 15
	exc_noerr 16
	exc_err 17
	exc_noerr 18
	exc_noerr 19
	exc_noerr 20
	exc_err 21
	exc_noerr 22
	exc_noerr 23
	exc_noerr 24
	exc_noerr 25
	exc_noerr 26
	exc_noerr 27
	exc_noerr 28
	exc_err 29
	exc_err 30
	exc_noerr 31

	.section .rodata
	.align 4
	.globl dtg_exc_table
dtg_exc_table:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.long dtg_exc\n
	.endr

	.bss
	.align 16
	.space 16384
stack_top:
	.section .note.GNU-stack, "", @progbits
