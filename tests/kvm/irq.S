# irq.S: take five timer interrupts (PIT/PIC or the test's stand-in) while halted with IF=1
	.include "boot.inc"
	.text
	.globl test_main
test_main:
	sti
1:	hlt
	cmpq $5, irq_count(%rip)
	jb 1b
	cli
	lea msg(%rip), %rsi
	call puts
	xor %eax, %eax
	ret
	.section .rodata
msg:	.asciz "ticks: 5\n"
