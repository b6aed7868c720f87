# pioloop.S: 100000 PIO exits between two markers, to time one exit
	.include "boot.inc"
	.set PORT_TEST, 0x520
	.text
	.globl test_main
test_main:
	mov $1, %al
	mov $PORT_TEST, %dx
	outb %al, %dx
	mov $100000, %ecx
1:	outb %al, $0x80
	dec %ecx
	jnz 1b
	mov $2, %al
	mov $PORT_TEST, %dx
	outb %al, %dx
	xor %eax, %eax
	ret
