/* rt_entry.S: the runtime's entry points at fixed window offsets (boot, site call, upcall), the frame save/restore and the drop to the guest's 32-bit entry */

/*
 * The assembler cannot read rt_abi.h (C structs), so the numbers below
 * are hardcoded; rt_cpu.c and rt_site.c assert that they match it.
 *
 * The runtime runs with the real IF = 0.  Guest kernel code runs with the
 * real IF = the guest's (rt_site.c says why), so a site's call may arrive
 * with IF = 1: the stub clears it at once, and an upcall taken in between
 * (RIP in the window) is left for the dispatcher, which polls anyway.  On
 * the way out `sti` right before `ret` keeps the window uninterrupted.
 *
 * Every guest ring-0 instruction is emulated by this host (~1 us each), so
 * the paths are straight lines: find the CPU with sidt, save the guest's
 * registers into struct rt_frame at the top of the CPU's runtime stack,
 * call C, restore, leave.  The guest's stack is used only for what the
 * call already wrote and 16 bytes below it (kernel stacks have no red
 * zone; the guest is built with -mno-red-zone).
 */

#define PERCPU0		0x3fed0000	/* RT_PERCPU_ADDR(0); blocks of 0x8000 */
#define FRAME		0x7f60		/* RT_PERCPU_STACK_TOP - sizeof(struct rt_frame) */
#define SHARED_UPCALLS	0x3fec1040	/* &rt_shared.upcalls */
#define SHARED_PARK_REQ	0x3fec100c	/* &rt_shared.park_req */
#define SHARED_CALLS	0x3fec1038	/* &rt_shared.site_calls */
#define SHARED_KINDS	0x3fec1078	/* &rt_shared.kind_calls[0] */
#define ST_VIF		0x1008		/* per-CPU block: &rt_cpu_state.vif */
#define ST_CALLS	0x10e0		/* per-CPU block: &rt_cpu_state.site_calls */
#define WINDOW_BASE	0x3fe00000	/* RT_WINDOW_BASE */
#define WINDOW_END	0x40000000	/* RT_WINDOW_BASE + RT_WINDOW_SIZE */
#define BOOT_ENTRY32	0x3fec0010	/* &rt_boot.guest_entry32 */
#define BOOT_MBI	0x3fec0018	/* &rt_boot.mbi */

/* struct rt_frame */
#define F_RAX	0
#define F_RBX	8
#define F_RCX	16
#define F_RDX	24
#define F_RSI	32
#define F_RDI	40
#define F_RBP	48
#define F_RSP	56
#define F_R8	64
#define F_R9	72
#define F_R10	80
#define F_R11	88
#define F_R12	96
#define F_R13	104
#define F_R14	112
#define F_R15	120
#define F_RIP	128
#define F_RFLAGS 136

/* the runtime's GDT */
#define SEL_CODE64	0x08
#define SEL_DATA	0x10
#define SEL_CODE32	0x18

#define RFLAGS_IF	0x200
#define POPF_MASK	0x247fd5	/* RF_POPF_MASK: what popf changes at CPL 0 */

#define CR0_PG		0x80000000
#define CR4_PAE		0x00000020
#define MSR_EFER	0xc0000080
#define EFER_LME	0x00000100
#define MB_LOADER_MAGIC	0x2badb002

	/* Every register but rax and rsp into the frame at FRAME(%rax). */
	/* KIND_CLI = 0 ... from the kinds' one list (the numbers are the ABI) */
	.set	kind_n, 0
#define PVSITE_KIND(id, name, len) .set KIND_##id, kind_n; .set kind_n, kind_n + 1;
#include "site_kinds.def"
#undef PVSITE_KIND

	.macro	save_regs
	movq	%rbx, FRAME+F_RBX(%rax)
	movq	%rcx, FRAME+F_RCX(%rax)
	movq	%rdx, FRAME+F_RDX(%rax)
	movq	%rsi, FRAME+F_RSI(%rax)
	movq	%rdi, FRAME+F_RDI(%rax)
	movq	%rbp, FRAME+F_RBP(%rax)
	movq	%r8, FRAME+F_R8(%rax)
	movq	%r9, FRAME+F_R9(%rax)
	movq	%r10, FRAME+F_R10(%rax)
	movq	%r11, FRAME+F_R11(%rax)
	movq	%r12, FRAME+F_R12(%rax)
	movq	%r13, FRAME+F_R13(%rax)
	movq	%r14, FRAME+F_R14(%rax)
	movq	%r15, FRAME+F_R15(%rax)
	.endm

	/* Every register but rsp from the frame at (%rsp). */
	.macro	restore_regs
	movq	F_RAX(%rsp), %rax
	movq	F_RBX(%rsp), %rbx
	movq	F_RCX(%rsp), %rcx
	movq	F_RDX(%rsp), %rdx
	movq	F_RSI(%rsp), %rsi
	movq	F_RDI(%rsp), %rdi
	movq	F_RBP(%rsp), %rbp
	movq	F_R8(%rsp), %r8
	movq	F_R9(%rsp), %r9
	movq	F_R10(%rsp), %r10
	movq	F_R11(%rsp), %r11
	movq	F_R12(%rsp), %r12
	movq	F_R13(%rsp), %r13
	movq	F_R14(%rsp), %r14
	movq	F_R15(%rsp), %r15
	.endm

	.section .rt_entry, "ax"
	.code64

	/* +0x000: the host starts the BSP here (long mode, host page tables, RSP = CPU 0's stack). */
	.globl	rt_entry_boot64
rt_entry_boot64:
	jmp	rt_boot64

	/*
	 * +0x040: `call RT_ENTRY_SITE` from a kvm site, CPL 0, on the guest's
	 * stack: (%rsp) = return address = site + 5, where the six operand
	 * bytes are.  Stack below it: RFLAGS, RAX, RCX (site_dispatch).
	 */
	.org	0x40, 0xcc
	.globl	rt_entry_site
rt_entry_site:
	pushfq				/* before anything changes the flags */
	cli
	pushq	%rax
	pushq	%rcx
	leaq	-16(%rsp), %rsp
	sidt	6(%rsp)			/* base at 8(%rsp): RT_PERCPU_ADDR(cpu) */
	movq	8(%rsp), %rax
	jmp	site_dispatch

	/*
	 * +0x080: the gate of the upcall vector.  It interrupted guest user
	 * mode (the frame is on the guest's TSS stack), guest kernel code
	 * with IF = 1, or the runtime itself: its `sti; hlt` or the first
	 * instructions of the site stub.  The runtime looks at the news
	 * itself after those, so it only counts and returns.
	 */
	.org	0x80, 0xcc
	.globl	rt_entry_upcall
rt_entry_upcall:
	testb	$3, 8(%rsp)
	jnz	upcall_guest
	cmpq	$WINDOW_BASE, (%rsp)
	jb	upcall_guest
	cmpq	$WINDOW_END, (%rsp)
	jae	upcall_guest
	lock incq SHARED_UPCALLS
	iretq

	/*
	 * +0x0c0: the host installs the runtime beneath a running guest
	 * (RT_BOOTF_ADOPT): CPL 0, IF = 0, RSP = this CPU's frame, the real
	 * IDTR = its per-CPU block.  C fills the frame from the CPU's state
	 * block and points its RSP at an iretq frame back into the guest.
	 */
	.org	0xc0, 0xcc
	.globl	rt_entry_adopt
rt_entry_adopt:
	cli
	cld
	movq	%rsp, %rdi
	call	rt_adopt_main
	jmp	rt_leave

	.text
	/*
	 * Count, then the fast paths: kinds whose whole effect is a few
	 * stores and a way out run here without the C dispatcher (each
	 * instruction is ~1 us here).  Everything else, and anything unusual
	 * (a 16-bit form, a pending park request, a delivery to check),
	 * takes site_slow.  Fast paths see: 0(%rsp) RCX, 8 RAX, 16 RFLAGS,
	 * 24 return address, 32 the guest's RSP before the call; %rax = the
	 * per-CPU block, %rcx = the kind.
	 */
site_dispatch:
	leaq	16(%rsp), %rsp
	incq	ST_CALLS(%rax)
	lock incq SHARED_CALLS
	movq	24(%rsp), %rcx
	movzbl	(%rcx), %ecx
	andl	$63, %ecx		/* C refuses a kind out of range */
	lock incq SHARED_KINDS(,%rcx,8)
	cmpl	$0, SHARED_PARK_REQ
	jne	site_slow
	jmp	*fast_table(,%rcx,8)

	/* cli: the guest's IF off */
fast_cli:
	movl	$0, ST_VIF(%rax)
	andq	$~RFLAGS_IF, 16(%rsp)
	/* fall through */

	/* Resume at site + len with the saved RFLAGS (IF = 0). */
fast_resume:
	movq	24(%rsp), %rcx
	movzbl	1(%rcx), %eax		/* len */
	leaq	-5(%rcx,%rax), %rcx
	movq	%rcx, 24(%rsp)
	popq	%rcx
	popq	%rax
	popfq
	ret

	/* pushfq: the real flags are the guest's (IF included) */
fast_pushf:
	movq	24(%rsp), %rcx
	cmpb	$8, 4(%rcx)		/* width: pushfw goes the slow way */
	jne	site_slow
	movzbl	1(%rcx), %eax
	leaq	-5(%rcx,%rax), %rcx	/* the resume point */
	movq	16(%rsp), %rax		/* the value pushed: the flags at the call */
	movq	%rax, 24(%rsp)		/* at the guest's RSP - 8 */
	movq	%rcx, 16(%rsp)		/* then the resume point, then the flags to pop */
	movq	8(%rsp), %rcx
	andq	$~RFLAGS_IF, %rax
	movq	%rax, 8(%rsp)
	movq	%rcx, %rax
	popq	%rcx
	testl	$RFLAGS_IF, 16(%rsp)	/* the value pushed (now at RSP + 16) */
	jnz	1f
	popfq
	ret
1:	popfq
	sti				/* its shadow covers the ret */
	ret

	/*
	 * popfq of a value with IF = 0 (IF = 1 may have an interrupt to
	 * deliver: slow).  The new flags go where the return address was, the
	 * resume point where the value was: popfq; ret then leaves RSP + 8.
	 */
fast_popf:
	movq	24(%rsp), %rcx
	cmpb	$8, 4(%rcx)
	jne	site_slow
	testl	$RFLAGS_IF, 32(%rsp)
	jnz	site_slow
	movl	$0, ST_VIF(%rax)
	movzbl	1(%rcx), %eax
	leaq	-5(%rcx,%rax), %rcx	/* the resume point */
	movq	32(%rsp), %rax		/* the value */
	movq	%rcx, 32(%rsp)
	andq	$POPF_MASK, %rax
	movq	16(%rsp), %rcx		/* the flags at the call */
	andq	$~POPF_MASK, %rcx
	orq	%rcx, %rax
	orq	$2, %rax
	movq	%rax, 24(%rsp)
	popq	%rcx
	popq	%rax
	leaq	8(%rsp), %rsp
	popfq
	ret

	/* sysretq: the guest's IF is user mode's, from R11 */
fast_sysret:
	movq	24(%rsp), %rcx
	cmpb	$8, 4(%rcx)
	jne	site_slow
	movl	%r11d, %ecx
	shrl	$9, %ecx
	andl	$1, %ecx
	movl	%ecx, ST_VIF(%rax)
	popq	%rcx
	popq	%rax
	leaq	16(%rsp), %rsp		/* the flags and the return address */
	sysretq

	/*
	 * iretq: to user mode, or to the kernel with IF = 0 or on a CPU the
	 * PIC does not signal.  A return to CPU 0's kernel with IF = 1 may
	 * have an interrupt to deliver right at its target: slow.
	 */
fast_iret:
	movq	24(%rsp), %rcx
	cmpb	$8, 4(%rcx)
	jne	site_slow
	movl	48(%rsp), %ecx		/* the frame's RFLAGS */
	testb	$3, 40(%rsp)		/* the frame's CS */
	jnz	1f
	testl	$RFLAGS_IF, %ecx
	jz	1f
	cmpq	$PERCPU0, %rax
	je	site_slow
1:	shrl	$9, %ecx
	andl	$1, %ecx
	movl	%ecx, ST_VIF(%rax)
	popq	%rcx
	popq	%rax
	leaq	16(%rsp), %rsp
	iretq

site_slow:
	popq	%rcx
	save_regs
	popq	FRAME+F_RAX(%rax)
	popq	FRAME+F_RFLAGS(%rax)
	popq	FRAME+F_RIP(%rax)	/* the return address; C reads the operand bytes there */
	movq	%rsp, FRAME+F_RSP(%rax)	/* the guest's RSP before the call */
	leaq	FRAME(%rax), %rsp	/* the CPU's runtime stack, the frame at its top */
	movq	%rsp, %rdi
	call	rt_site_call
	jmp	rt_leave

upcall_guest:
	pushq	%rax
	subq	$16, %rsp
	sidt	6(%rsp)
	movq	8(%rsp), %rax
	addq	$16, %rsp
	save_regs
	popq	FRAME+F_RAX(%rax)
	movq	%rsp, FRAME+F_RSP(%rax)	/* the hardware frame: RIP CS RFLAGS RSP SS */
	leaq	FRAME(%rax), %rsp
	movq	%rsp, %rdi
	call	rt_upcall
	/* fall through */

	/* eax = enum rt_exit, rsp = the frame. */
rt_leave:
	cmpl	$1, %eax
	je	leave_iret
	cmpl	$2, %eax
	je	leave_sysret
	ja	leave_sti
	/* resume: C stored RFLAGS (IF = 0) and RIP at the target RSP (frame rsp) */
	restore_regs
	movq	F_RSP(%rsp), %rsp
	popfq
	ret

leave_sti:
	restore_regs
	movq	F_RSP(%rsp), %rsp
	popfq
	sti				/* its shadow covers the ret */
	ret

leave_iret:
	restore_regs
	movq	F_RSP(%rsp), %rsp
	iretq

leave_sysret:
	restore_regs
	movq	F_RSP(%rsp), %rsp
	sysretq

	/* Boot: zero bss, our own GDT, C, then the guest. */
rt_boot64:
	cli
	cld
	leaq	__bss_start(%rip), %rdi
	leaq	__bss_end(%rip), %rcx
	subq	%rdi, %rcx
	shrq	$3, %rcx
	xorl	%eax, %eax
	rep stosq
	lgdt	rt_gdt_ptr(%rip)
	pushq	$SEL_CODE64
	leaq	1f(%rip), %rax
	pushq	%rax
	lretq
1:	movl	$SEL_DATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	call	rt_boot_main

	/*
	 * Leave long mode the way the guest's Multiboot entry expects to be
	 * entered: flat 32-bit protected mode, paging off, EAX = the loader
	 * magic, EBX = the info block.  The real IDTR stays CPU 0's block
	 * (the guest's own lidt goes through the runtime).
	 */
	movl	BOOT_ENTRY32, %edi
	movl	BOOT_MBI, %esi
	pushq	$SEL_CODE32
	leaq	2f(%rip), %rax
	pushq	%rax
	lretq
	.code32
2:	movl	$SEL_DATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	movl	%cr0, %eax
	andl	$~CR0_PG, %eax
	movl	%eax, %cr0		/* paging off: long mode is inactive */
	movl	$MSR_EFER, %ecx
	rdmsr
	andl	$~EFER_LME, %eax
	wrmsr
	movl	%cr4, %eax
	andl	$~CR4_PAE, %eax
	movl	%eax, %cr4
	lidt	rt_idtr32
	movl	%esi, %ebx
	movl	$MB_LOADER_MAGIC, %eax
	jmp	*%edi
	.code64

	.section .rodata
	.balign	8
fast_table:			/* per kind: its fast path, or site_slow */
	.set	k, 0
	.rept	64
	.if	k == KIND_CLI
	.quad	fast_cli
	.elseif	k == KIND_PUSHF
	.quad	fast_pushf
	.elseif	k == KIND_POPF
	.quad	fast_popf
	.elseif	k == KIND_IRET
	.quad	fast_iret
	.elseif	k == KIND_SYSRET
	.quad	fast_sysret
	.else
	.quad	site_slow
	.endif
	.set	k, k + 1
	.endr

	.data
	.balign	16
rt_gdt:
	.quad	0
	.quad	0x00af9a000000ffff	/* 0x08: 64-bit code */
	.quad	0x00cf92000000ffff	/* 0x10: flat data */
	.quad	0x00cf9a000000ffff	/* 0x18: flat 32-bit code */
rt_gdt_end:
	.balign	8
	.word	0, 0, 0
rt_gdt_ptr:
	.word	rt_gdt_end - rt_gdt - 1
	.quad	rt_gdt
	.balign	8
	.word	0
rt_idtr32:
	.word	0xfff
	.long	PERCPU0

	.section .note.GNU-stack, "", @progbits
