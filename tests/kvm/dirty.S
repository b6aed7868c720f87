# dirty.S: write known page sets between host checkpoints (port 0x520) so the host can check its dirty bitmap
	.include "boot.inc"
	.set PORT_TEST, 0x520
	.set SET1_BASE, 0x400000	# 16 pages, 0x201000 apart (each in its own 2 MiB page)
	.set SET2_BASE, 0x5000000	# 8 pages, 0x3000 apart
	.text
	.globl test_main
test_main:
	# RAM end from mem_upper (KiB above 1 MiB)
	mov 8(%rdi), %r12d
	shl $10, %r12
	add $0x100000, %r12
	# round 0: touch every 2 MiB page once so the CPU has set the
	# page-table A/D bits before tracking starts (they are writes too)
	mov $0x200000, %rdi
1:	incb (%rdi)
	add $0x200000, %rdi
	cmp %r12, %rdi
	jb 1b
	mov $0, %al
	mov $PORT_TEST, %dx		# host: start tracking
	outb %al, %dx
	# round 1: set 1
	mov $SET1_BASE, %rdi
	mov $16, %ecx
2:	incl 8(%rdi)
	add $0x201000, %rdi
	dec %ecx
	jnz 2b
	mov $1, %al
	mov $PORT_TEST, %dx
	outb %al, %dx
	# round 2: set 2 (the host writes one page itself after checking)
	mov $SET2_BASE, %rdi
	mov $8, %ecx
3:	incl 0x800(%rdi)
	add $0x3000, %rdi
	dec %ecx
	jnz 3b
	mov $2, %al
	mov $PORT_TEST, %dx
	outb %al, %dx
	# round 3: nothing
	mov $3, %al
	mov $PORT_TEST, %dx
	outb %al, %dx
	# rounds 4, 5, 6: sweep every page from 2 MiB to the end
	mov $4, %r13d
4:	mov $0x200000, %rdi
5:	incl (%rdi)
	add $0x1000, %rdi
	cmp %r12, %rdi
	jb 5b
	mov %r13d, %eax
	mov $PORT_TEST, %dx
	outb %al, %dx
	inc %r13d
	cmp $7, %r13d
	jb 4b
	xor %eax, %eax
	ret
