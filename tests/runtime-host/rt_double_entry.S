/* rt_double_entry.S: entry table of the TEST DOUBLE runtime (not the runtime): boot, site (refused), upcall, and a 32-bit AP entry */
/*
 * A stand-in for runtime/ that lets the host half of the kvm personality
 * (backends/personality_kvm_*.c) be tested on its own: it checks the boot
 * block and talks the channel protocol, and never runs the guest.
 */
	.section .rt_entry, "ax"
	.code64
	.globl double_boot64, double_upcall, double_ap32
double_boot64:			/* RT_ENTRY_BOOT64: long mode, host page tables, RSP = CPU 0's stack */
	cld
	call double_main	/* noreturn */
1:	cli
	hlt
	jmp 1b

	.balign 64
double_site:			/* RT_ENTRY_SITE: the double rewrites nothing */
	ud2

	.balign 64
double_upcall:			/* RT_ENTRY_UPCALL: gate 0xff, interrupt gate (IF = 0 inside) */
	push %rax
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %r8
	push %r9
	push %r10
	push %r11
	call double_on_upcall
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rax
	iretq

	/* An AP started through the mailbox: 32-bit flat, paging off, EBX = CPU. */
	.code32
double_ap32:
	sidt double_ap_idtr
	movl %ebx, double_ap_cpu
	lock incl double_ap_seen
2:	cli
	hlt			/* HLT with IF = 0, not parked: the AP goes offline */
	jmp 2b
	.code64
	.section .note.GNU-stack,"",@progbits
