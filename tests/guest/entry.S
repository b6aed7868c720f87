/* entry.S: 64-bit trap, interrupt and syscall entry stubs: swapgs, iretq and sysretq live here */

/*
 * Every entry builds the same struct trapframe (guest.h): the hardware
 * iretq frame, an error code (0 when the CPU pushes none), the vector, then
 * the 15 general registers with %r15 lowest.  176 bytes in all, so the C
 * handler is called with a 16-byte aligned stack.
 *
 * GS: in the kernel GS base points at struct percpu; in user mode it is
 * the user's (zero).  swapgs exchanges them on every crossing, and only
 * then: traps taken in kernel mode leave GS alone (the CS RPL test).
 */

#define USER_CS		0x2b
#define USER_DS		0x23
#define VEC_SYSCALL	0x100
#define PCPU_KERNEL_RSP	0
#define PCPU_USER_RSP	8
#define TF_CS		24	/* offset of cs above vector/error, before the GPRs */

	.text

	/* The 15 general registers of struct trapframe, %r15 lowest. */
	.macro	save_gprs
	pushq	%rax
	pushq	%rbx
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%rbp
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	.endm

	.macro	restore_gprs
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rbp
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rbx
	popq	%rax
	.endm

	/* Vectors where the CPU pushes no error code get a zero first. */
	.macro	stub_noerr vec
	.balign	16
trap_stub_\vec:
	pushq	$0
	pushq	$\vec
	jmp	trap_common
	.endm

	.macro	stub_err vec
	.balign	16
trap_stub_\vec:
	pushq	$\vec
	jmp	trap_common
	.endm

	/* Exceptions 0-31: 8, 10-14, 17, 21, 29, 30 push an error code. */
	.irp	v, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31
	stub_noerr \v
	.endr
	.irp	v, 8,10,11,12,13,14,17,21,29,30
	stub_err \v
	.endr
	/* The 16 lines of the remapped 8259 pair. */
	.irp	v, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
	stub_noerr \v
	.endr

trap_common:
	testb	$3, TF_CS(%rsp)
	jz	1f
	swapgs
1:	save_gprs
	movq	%rsp, %rdi
	call	trap
	/* fall through: the same way out as every other frame */

	.globl	trap_return
trap_return:
	restore_gprs
	addq	$16, %rsp		/* vector, error */
	testb	$3, 8(%rsp)		/* cs of the frame we return to */
	jz	2f
	swapgs
2:	iretq

	/* Enter a frame built in C (the first entry to user mode). */
	.globl	trap_return_to
trap_return_to:
	movq	%rdi, %rsp
	jmp	trap_return

	/*
	 * syscall: RCX = user RIP, R11 = user RFLAGS, IF already cleared by
	 * SFMASK, RSP still the user's.  Build a trapframe on the kernel
	 * stack so the C handler sees the same struct as for a trap.  The
	 * handler returns 0 to leave by sysretq, or non-zero to leave by
	 * iretq through trap_return (which also restores RCX and R11).
	 */
	.globl	syscall_entry
syscall_entry:
	swapgs
	movq	%rsp, %gs:PCPU_USER_RSP
	movq	%gs:PCPU_KERNEL_RSP, %rsp
	pushq	$USER_DS
	pushq	%gs:PCPU_USER_RSP
	pushq	%r11
	pushq	$USER_CS
	pushq	%rcx
	pushq	$0
	pushq	$VEC_SYSCALL
	save_gprs
	movq	%rsp, %rdi
	call	syscall_handler
	testl	%eax, %eax
	jnz	trap_return
	restore_gprs
	addq	$16, %rsp		/* vector, error */
	popq	%rcx			/* rip: the handler may have changed it */
	addq	$8, %rsp		/* cs */
	popq	%r11			/* rflags */
	popq	%rsp			/* user stack; interrupts are still off */
	swapgs
	sysretq

	.section .rodata
	.balign	8
	.globl	trap_stubs
trap_stubs:
	.irp	v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad	trap_stub_\v
	.endr
	.irp	v, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
	.quad	trap_stub_\v
	.endr

	.section .note.GNU-stack, "", @progbits
