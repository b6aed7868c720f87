/* entry.S: corpus: hand-written entry and exit paths (swapgs, iretq, sysretq, sysexit), preprocessed */
#define SYM(x) .globl x; .type x,@function; x:

	.text
SYM(syscall_entry)
	swapgs
	movq	%rsp, %gs:8
	movq	%gs:16, %rsp
	pushq	%rcx
	pushq	%r11
	popq	%r11
	popq	%rcx
	movq	%gs:8, %rsp
	swapgs
	sysretq

SYM(interrupt_return)
	testb	$3, 8(%rsp)
	jz	1f
	swapgs
1:	iretq

SYM(compat_sysexit)
	swapgs
	sysexitl

SYM(sysret32)
	sysretl

SYM(legacy_iret)
	iretl

	.section .init.text,"ax",@progbits
SYM(early_idle)
	hlt
	jmp	early_idle
.section .note.GNU-stack,"",@progbits
