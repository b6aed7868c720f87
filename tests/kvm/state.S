# state.S: a long integer-register computation that must come out the same however often the host pauses, saves, restores or moves it
	.include "boot.inc"
	.set PORT_TEST, 0x520
	.text
	.globl test_main
test_main:
	mov $1, %al
	mov $PORT_TEST, %dx		# host: start interfering
	outb %al, %dx
	mov $0x9E3779B97F4A7C15, %r8
	mov $0x0123456789ABCDEF, %r9
	xor %r10, %r10
	mov $0x2545F4914F6CDD1D, %r11
	# integer only: x87 and SSE instructions that touch registers end in
	# a KVM emulation failure on this kvm-pvm host (docs/KVM-HOST.md)
	xor %r14, %r14
	mov $250000, %rcx
1:	imul %r11, %r8
	add %r9, %r8
	rol $13, %r9
	xor %r8, %r9
	add %r8, %r10
	add %rcx, %r14
	dec %rcx
	jnz 1b
	mov $2, %al
	mov $PORT_TEST, %dx
	outb %al, %dx
	lea msg(%rip), %rsi
	call puts
	mov %r10, %rax
	call puthex
	lea sp(%rip), %rsi
	call puts
	mov %r14, %rax
	xor %r9, %rax
	call puthex
	lea nl(%rip), %rsi
	call puts
	xor %eax, %eax
	ret
	.section .rodata
msg:	.asciz "result "
sp:	.asciz " "
nl:	.asciz "\n"
