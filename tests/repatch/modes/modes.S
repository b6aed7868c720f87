/* modes.S: 32-bit and 16-bit regions and a deliberately unannotated region */
#include <pvsites.h>

	.text
	.globl	trampoline32
	.code32
trampoline32:
	cli
	movl	%cr0, %eax
	orl	$1, %eax
	movl	%eax, %cr0
	lidt	idt32
	.code64
	.globl	after32
after32:
	sti
	.code16
	.globl	realmode
realmode:
	cli
	inb	$0x92, %al
	.code64
	.globl	quiet
quiet:
	PVSITES_OFF
	cli
	wrmsr
	PVSITES_ON
	rdmsr
	ret
	.data
idt32:	.quad 0
