# hello.S: console output, guest command line, exit status taken from the last word of the command line
	.include "boot.inc"
	.text
	.globl test_main
test_main:
	push %rbx
	mov %edi, %ebx			# multiboot info
	lea hello_msg(%rip), %rsi
	call puts
	mov 16(%rbx), %esi		# cmdline
	call puts
	lea nl(%rip), %rsi
	call puts
	# status: the last character of the command line if it is a digit
	mov 16(%rbx), %esi
	xor %eax, %eax
1:	mov (%rsi), %cl
	test %cl, %cl
	jz 2f
	mov %cl, %al
	inc %rsi
	jmp 1b
2:	sub $'0', %al
	cmp $9, %al
	jbe 3f
	xor %eax, %eax
3:	movzbl %al, %eax
	pop %rbx
	ret
	.section .rodata
hello_msg:	.asciz "hello from the guest\ncmdline: "
nl:		.asciz "\n"
