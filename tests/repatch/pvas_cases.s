# pvas_cases.s: hand-written AT&T covering every site kind and form the pvas wrapper must annotate
#
# Every instruction that must become a site carries "# expect: KIND [FLAG...] reg=R aux=A w=W"
# (R is a GPR number or "none").  pvas_check.py matches the records of the
# assembled table, in order, against these lines; everything without one must
# stay unannotated.  Flags: code32 riprel mem imm rep manual.

	.text
	.globl	pvas_cases
pvas_cases:
	cli				# expect: cli reg=none aux=0 w=0
	sti				# expect: sti reg=none aux=0 w=0
	hlt				# expect: hlt reg=none aux=0 w=0
	pushf				# expect: pushf reg=none aux=0 w=8
	pushfq				# expect: pushf reg=none aux=0 w=8
	pushfw				# expect: pushf reg=none aux=0 w=2
	popf				# expect: popf reg=none aux=0 w=8
	popfq				# expect: popf reg=none aux=0 w=8
	popfw				# expect: popf reg=none aux=0 w=2

# port I/O, immediate and %dx forms
	in	$0x60, %al		# expect: in imm reg=0 aux=96 w=1
	inb	$0x61, %al		# expect: in imm reg=0 aux=97 w=1
	inw	$0x70, %ax		# expect: in imm reg=0 aux=112 w=2
	inl	$0x80, %eax		# expect: in imm reg=0 aux=128 w=4
	in	%dx, %al		# expect: in reg=0 aux=0 w=1
	inw	%dx, %ax		# expect: in reg=0 aux=0 w=2
	inl	(%dx), %eax		# expect: in reg=0 aux=0 w=4
	out	%al, $0x80		# expect: out imm reg=0 aux=128 w=1
	outb	%al, $0xed		# expect: out imm reg=0 aux=237 w=1
	outw	%ax, %dx		# expect: out reg=0 aux=0 w=2
	outl	%eax, %dx		# expect: out reg=0 aux=0 w=4
	insb				# expect: ins reg=none aux=0 w=1
	insw				# expect: ins reg=none aux=0 w=2
	insl				# expect: ins reg=none aux=0 w=4
	rep insb			# expect: ins rep reg=none aux=0 w=1
	rep; insw			# expect: ins rep reg=none aux=0 w=2
	rep
	insl				# expect: ins rep reg=none aux=0 w=4
	insb	(%dx), %es:(%rdi)	# expect: ins mem reg=none aux=0 w=1
	outsb				# expect: outs reg=none aux=0 w=1
	outsw				# expect: outs reg=none aux=0 w=2
	outsl				# expect: outs reg=none aux=0 w=4
	rep outsb			# expect: outs rep reg=none aux=0 w=1
	rep;outsw			# expect: outs rep reg=none aux=0 w=2

# control and debug registers
	mov	%cr0, %rax		# expect: mov-from-cr reg=0 aux=0 w=8
	mov	%rax, %cr0		# expect: mov-to-cr reg=0 aux=0 w=8
	mov	%cr2, %rdx		# expect: mov-from-cr reg=2 aux=2 w=8
	movq	%cr3, %r12		# expect: mov-from-cr reg=12 aux=3 w=8
	mov	%r15, %cr3		# expect: mov-to-cr reg=15 aux=3 w=8
	mov	%rcx, %cr4		# expect: mov-to-cr reg=1 aux=4 w=8
	mov	%cr8, %rsi		# expect: mov-from-cr reg=6 aux=8 w=8
	mov	%rdi, %cr8		# expect: mov-to-cr reg=7 aux=8 w=8
	mov	%db7, %rax		# expect: mov-from-dr reg=0 aux=7 w=8
	mov	%rbx, %dr7		# expect: mov-to-dr reg=3 aux=7 w=8
	mov	%dr6, %r9		# expect: mov-from-dr reg=9 aux=6 w=8
	mov	%r10, %db0		# expect: mov-to-dr reg=10 aux=0 w=8

# descriptor tables and system registers
	lgdt	(%rax)			# expect: lgdt mem reg=none aux=0 w=0
	lgdt	gdt_ptr(%rip)		# expect: lgdt mem riprel reg=none aux=0 w=0
	lidt	idt_ptr(%rip)		# expect: lidt mem riprel reg=none aux=0 w=0
	lidtq	(%rdi)			# expect: lidt mem reg=none aux=0 w=8
	data16 lgdt (%rbx)		# expect: lgdt mem reg=none aux=0 w=0
	lldt	%ax			# expect: lldt reg=0 aux=0 w=2
	lldt	(%rsi)			# expect: lldt mem reg=none aux=0 w=2
	ltr	%di			# expect: ltr reg=7 aux=0 w=2
	ltrw	4(%rsp)			# expect: ltr mem reg=none aux=0 w=2
	sgdt	(%rax)			# expect: sgdt mem reg=none aux=0 w=0
	sidt	8(%rsp)			# expect: sidt mem reg=none aux=0 w=0
	sldt	%eax			# expect: sldt reg=0 aux=0 w=4
	sldt	(%rax)			# expect: sldt mem reg=none aux=0 w=2
	str	%ax			# expect: str reg=0 aux=0 w=2
	str	%r11			# expect: str reg=11 aux=0 w=8
	smsw	%eax			# expect: smsw reg=0 aux=0 w=4
	smsw	(%rax)			# expect: smsw mem reg=none aux=0 w=2
	lmsw	%dx			# expect: lmsw reg=2 aux=0 w=2
	lmsw	(%rbx)			# expect: lmsw mem reg=none aux=0 w=2
	clts				# expect: clts reg=none aux=0 w=0
	invlpg	(%rax)			# expect: invlpg mem reg=none aux=0 w=0
	invlpg	4096(%rdi,%rsi,8)	# expect: invlpg mem reg=none aux=0 w=0
	invlpga				# expect: invlpg reg=none aux=0 w=0
	invlpga	%rax, %ecx		# expect: invlpg reg=none aux=0 w=0
	invpcid	(%rax), %rbx		# expect: invpcid mem reg=3 aux=0 w=8
	wbinvd				# expect: wbinvd reg=none aux=0 w=0
	invd				# expect: invd reg=none aux=0 w=0
	rdmsr				# expect: rdmsr reg=none aux=0 w=0
	wrmsr				# expect: wrmsr reg=none aux=0 w=0
	rdtsc				# expect: rdtsc reg=none aux=0 w=0
	rdtscp				# expect: rdtscp reg=none aux=0 w=0
	cpuid				# expect: cpuid reg=none aux=0 w=0
	iretq				# expect: iret reg=none aux=0 w=8
	iret				# expect: iret reg=none aux=0 w=4
	iretl				# expect: iret reg=none aux=0 w=4
	iretw				# expect: iret reg=none aux=0 w=2
	sysretq				# expect: sysret reg=none aux=0 w=8
	sysretl				# expect: sysret reg=none aux=0 w=4
	sysret				# expect: sysret reg=none aux=0 w=4
	sysexit				# expect: sysexit reg=none aux=0 w=4
	sysexitq			# expect: sysexit reg=none aux=0 w=8
	swapgs				# expect: swapgs reg=none aux=0 w=0
	xsetbv				# expect: xsetbv reg=none aux=0 w=0
	rdpmc				# expect: rdpmc reg=none aux=0 w=0
	monitor				# expect: monitor reg=none aux=0 w=0
	mwait				# expect: mwait reg=none aux=0 w=0
	monitor	%rax, %ecx, %edx	# expect: monitor reg=none aux=0 w=0
	mwait	%eax, %ecx		# expect: mwait reg=none aux=0 w=0

# segments: aux is enum pvsite_seg (es=0 cs=1 ss=2 ds=3 fs=4 gs=5)
	mov	%ax, %ds		# expect: seg-load reg=0 aux=3 w=2
	mov	%eax, %es		# expect: seg-load reg=0 aux=0 w=4
	movw	%bx, %fs		# expect: seg-load reg=3 aux=4 w=2
	movl	%ecx, %gs		# expect: seg-load reg=1 aux=5 w=4
	mov	%dx, %ss		# expect: seg-load reg=2 aux=2 w=2
	mov	(%rax), %ds		# expect: seg-load mem reg=none aux=3 w=2
	mov	%ds, %ax		# expect: seg-read reg=0 aux=3 w=2
	mov	%cs, %ax		# expect: seg-read reg=0 aux=1 w=2
	mov	%ss, %r8d		# expect: seg-read reg=8 aux=2 w=4
	mov	%fs, (%rbx)		# expect: seg-read mem reg=none aux=4 w=2
	pop	%fs			# expect: seg-load reg=none aux=4 w=8
	popq	%gs			# expect: seg-load reg=none aux=5 w=8
	popw	%fs			# expect: seg-load reg=none aux=4 w=2
	push	%fs			# expect: seg-read reg=none aux=4 w=8
	pushq	%gs			# expect: seg-read reg=none aux=5 w=8
	pushw	%fs			# expect: seg-read reg=none aux=4 w=2
	lss	(%rax), %esp		# expect: far-load mem reg=4 aux=2 w=4
	lfs	(%rbx), %eax		# expect: far-load mem reg=0 aux=4 w=4
	lgs	8(%rcx), %dx		# expect: far-load mem reg=2 aux=5 w=2
	lssl	(%rsi), %esp		# expect: far-load mem reg=4 aux=2 w=4
	ljmp	*(%rax)			# expect: far-xfer mem reg=none aux=0 w=0
	lcall	*(%rbx)			# expect: far-xfer mem reg=none aux=0 w=0
	ljmpl	*8(%rcx)		# expect: far-xfer mem reg=none aux=0 w=4
	lret				# expect: far-xfer reg=none aux=0 w=0
	lretq				# expect: far-xfer reg=none aux=0 w=8
	lret	$8			# expect: far-xfer reg=none aux=0 w=0
	lretl				# expect: far-xfer reg=none aux=0 w=4
	lretw				# expect: far-xfer reg=none aux=0 w=2

# look-alikes that are NOT sensitive
	cltq
	stc
	inc	%eax
	int	$0x80
	insertps $0, %xmm1, %xmm2
	movsb
	movl	%eax, %ds:(%rbx)
	movl	%fs:0x28, %eax
	popq	%rax
	pushq	%rax
	popcnt	%rax, %rbx
	mov	%rax, %rbx
	strlen_like: nop
stiff:	nop
outstanding:
	incl	(%rax)
	cmpxchg16b (%rdi)
	.byte	0xfa			/* a raw cli byte is the author's business */
	/* cli inside a block comment
	   sti over two lines */ nop
	nop # cli in a line comment

# labels, separators and positional operands
1:	cli				# expect: cli reg=none aux=0 w=0
foo: bar: sti				# expect: sti reg=none aux=0 w=0
	nop; hlt; nop			# expect: hlt reg=none aux=0 w=0
	jmp	1b
	LOCK incl (%rax)
	lock
	incl	(%rax)
	CLI				# expect: cli reg=none aux=0 w=0

# manual annotations (what <pvsites.h> emits)
# pvsite: pte-write
	movq	%rsi, (%rdi)		# expect: pte-write manual mem reg=6 aux=8 w=8
	# pvsite: pte-read
	movq	(%rdi), %rax		# expect: pte-read manual mem reg=0 aux=8 w=8
# pvsite: mmio-read
	movl	16(%rdi), %ecx		# expect: mmio-read manual mem reg=1 aux=4 w=4
# pvsite: mmio-write
	movb	%sil, (%rdi)		# expect: mmio-write manual mem reg=6 aux=1 w=1
# pvsite: mmio-write
	movw	%r9w, mmio_reg(%rip)	# expect: mmio-write manual mem riprel reg=9 aux=2 w=2
# pvsite: mmio-read
	movq	mmio_reg(%rip), %r13	# expect: mmio-read manual mem riprel reg=13 aux=8 w=8

# sections: only executable ones are annotated
	.section .init.text,"ax",@progbits
	cli				# expect: cli reg=none aux=0 w=0
	.data
	cli
	.previous
	sti				# expect: sti reg=none aux=0 w=0
	.section .rodata.str,"aMS",@progbits,1
	.string "cli; sti # not code"
	hlt
	.previous
	.previous			/* two swaps: back in .rodata.str */
	hlt
	.text
	.pushsection .text.unlikely,"ax",@progbits
	hlt				# expect: hlt reg=none aux=0 w=0
	.pushsection .data.foo,"aw",@progbits
	hlt
	.popsection
	wbinvd				# expect: wbinvd reg=none aux=0 w=0
	.popsection
	.section .fixup,"ax"
	cli				# expect: cli reg=none aux=0 w=0
	.section .note.pvas,"",@note
	cli
	.section .init.text
	invd				# expect: invd reg=none aux=0 w=0
	.text

# regions the wrapper must leave alone
	.pvsites_noannotate
	cli
	mov	%cr3, %rax
	.pvsites_annotate
	sti				# expect: sti reg=none aux=0 w=0
	.macro	pvas_twice
	cli
	sti
	.endm
	pvas_twice
	pvas_twice
	.rept	2
	hlt
	.endr
	.irp	r, %ds, %es
	mov	%ax, \r
	.endr

# 32-bit code
	.code32
pvas_cases32:
	cli				# expect: cli code32 reg=none aux=0 w=0
	pushf				# expect: pushf code32 reg=none aux=0 w=4
	popfl				# expect: popf code32 reg=none aux=0 w=4
	mov	%eax, %cr0		# expect: mov-to-cr code32 reg=0 aux=0 w=4
	mov	%cr3, %ebx		# expect: mov-from-cr code32 reg=3 aux=3 w=4
	ljmp	$0x10, $1f		# expect: far-xfer code32 reg=none aux=0 w=0
1:	lgdt	gdt32			# expect: lgdt code32 mem reg=none aux=0 w=0
	lcall	$0x8, $0		# expect: far-xfer code32 reg=none aux=0 w=0
	ljmp	$0x18, $.+7		# expect: far-xfer code32 reg=none aux=0 w=0
	mov	%ax, %ds		# expect: seg-load code32 reg=0 aux=3 w=2
	pop	%es			# expect: seg-load code32 reg=none aux=0 w=4
	push	%cs			# expect: seg-read code32 reg=none aux=1 w=4
	lds	(%eax), %ebx		# expect: far-load code32 mem reg=3 aux=3 w=4
	lesw	(%ecx), %dx		# expect: far-load code32 mem reg=2 aux=0 w=2
	inb	$0x64, %al		# expect: in code32 imm reg=0 aux=100 w=1
	outl	%eax, %dx		# expect: out code32 reg=0 aux=0 w=4
	rep insb			# expect: ins code32 rep reg=none aux=0 w=1
	iret				# expect: iret code32 reg=none aux=0 w=4
	sysexit				# expect: sysexit code32 reg=none aux=0 w=4
	jmp	1b

# 16-bit code: reported, not annotated
	.code16
	cli
	lgdt	0x500
	.code16gcc
	sti
	.code64
	rdtsc				# expect: rdtsc reg=none aux=0 w=0

	.data
gdt_ptr: .word 0
	.quad 0
idt_ptr: .word 0
	.quad 0
gdt32:	.word 0
	.long 0
mmio_reg: .quad 0
