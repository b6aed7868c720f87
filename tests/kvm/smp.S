# smp.S: start AP 1 through the doorbell in 32-bit mode, then again in real mode; each writes a mailbox the BSP checks
	.include "boot.inc"
	.set PORT_AP, 0x510
	.text
	.globl test_main
test_main:
	lea ap_req32(%rip), %eax
	call ap_start
	test %eax, %eax
	jnz 9f
	mov $0xC0FFEE01, %ebx
	lea mailbox(%rip), %rdi
	call wait_mailbox
	test %eax, %eax
	jnz 8f
	lea ok32(%rip), %rsi
	call puts
	# the real-mode trampoline must live below 1 MiB: copy it to 0x10000
	lea tramp(%rip), %rsi
	mov $0x10000, %edi
	mov $(tramp_end - tramp), %ecx
	rep movsb
	lea ap_req16(%rip), %eax
	call ap_start
	test %eax, %eax
	jnz 9f
	mov $0xBEEF, %ebx
	mov $0x10100, %edi
	call wait_mailbox
	test %eax, %eax
	jnz 8f
	lea ok16(%rip), %rsi
	call puts
	xor %eax, %eax
	ret
8:	mov $4, %eax			# the AP never wrote its mailbox
	ret
9:	mov $3, %eax			# the doorbell refused
	ret

# ap_start(eax = request gpa): retry while the AP is still going offline
ap_start:
	mov $1000000, %ecx
	mov %eax, %esi
1:	mov %esi, %eax
	mov $PORT_AP, %dx
	outl %eax, %dx
	inl %dx, %eax
	test %eax, %eax
	jz 2f
	pause
	dec %ecx
	jnz 1b
2:	ret

# wait_mailbox(rdi = address, ebx = value): eax 0 when seen, 1 on timeout
wait_mailbox:
	mov $2000000000, %rcx
1:	cmp %ebx, (%rdi)
	je 2f
	pause
	dec %rcx
	jnz 1b
	mov $1, %eax
	ret
2:	xor %eax, %eax
	ret

	.code32
ap32:	# EBX = our vCPU index, ESP = the stack from the request
	push %ebx
	pop %eax
	add $0xC0FFEE00, %eax
	mov %eax, mailbox
	cli
	hlt
	.code16
tramp:	movw $0xBEEF, %cs:0x100
	cli
	hlt
tramp_end:
	.code64

	.section .rodata
ok32:	.asciz "ap32 ok\n"
ok16:	.asciz "ap16 ok\n"
	.data
	.align 16
ap_req32:	.long 1, ap32, ap_stack_top, 0
ap_req16:	.long 1, 0x10000, 0x1000, 1
mailbox:	.long 0
	.bss
	.align 16
ap_stack:	.skip 4096
ap_stack_top:
