/* boot.S: Multiboot v1 entry in 32-bit protected mode; builds page tables and enters long mode */

/*
 * The loader leaves us in flat 32-bit protected mode, paging off, with
 * EAX = 0x2BADB002 and EBX = the multiboot information.  The kernel is
 * linked at 1 MiB and runs identity mapped: the first 1 GiB is mapped with
 * 2 MiB supervisor pages (no higher half).  The switch to long mode uses the
 * ordinary instructions (mov to %cr0/%cr3/%cr4, rdmsr/wrmsr, lgdt, ljmp) so
 * that each becomes a 32-bit site.
 */

#define MB_MAGIC	0x1BADB002
#define MB_MEMINFO	(1 << 1)
#define MB_AOUT_KLUDGE	(1 << 16)	/* load by the addresses below, not the ELF headers */
#define MB_FLAGS	(MB_MEMINFO | MB_AOUT_KLUDGE)
#define MB_LOADER_MAGIC	0x2BADB002

#define CR0_PE		0x00000001
#define CR0_PG		0x80000000
#define CR4_PAE		0x00000020
#define MSR_EFER	0xc0000080
#define EFER_LME	0x00000100

	/*
	 * The header must sit in the first 8 KiB of the file; the linker
	 * script puts this section first in the image.  QEMU only loads an
	 * ELF64 image by the a.out kludge fields, never by its ELF headers.
	 */
	.section .multiboot, "a"
	.balign	4
mb_header:
	.long	MB_MAGIC
	.long	MB_FLAGS
	.long	-(MB_MAGIC + MB_FLAGS)
	.long	mb_header		/* header_addr */
	.long	__load_start		/* load_addr */
	.long	__load_end		/* load_end_addr: file data ends here */
	.long	__bss_end		/* bss_end_addr: the loader zeroes up to here */
	.long	_start32		/* entry_addr */

	.section .boot, "ax"
	.code32
	.globl	_start32
_start32:
	cli
	cld
	movl	$boot_stack_top, %esp
	cmpl	$MB_LOADER_MAGIC, %eax
	jne	bad_magic
	movl	%ebx, %edi		/* survives to kmain's first argument */

	/* Zero the three tables: the loader's bss zeroing is not trusted. */
	movl	$boot_pml4, %ebx
	movl	%edi, %ebp
	movl	%ebx, %edi
	xorl	%eax, %eax
	movl	$(3 * 4096 / 4), %ecx
	rep stosl
	movl	%ebp, %edi

	/* PML4[0] -> PDPT, PDPT[0] -> PD, PD[i] -> i * 2 MiB (P|W|PS). */
	movl	$boot_pdpt, %eax
	orl	$3, %eax
	movl	%eax, boot_pml4
	movl	$boot_pd, %eax
	orl	$3, %eax
	movl	%eax, boot_pdpt
	xorl	%ecx, %ecx
1:	movl	%ecx, %eax
	shll	$21, %eax
	orl	$0x83, %eax
	movl	%eax, boot_pd(, %ecx, 8)
	incl	%ecx
	cmpl	$512, %ecx
	jne	1b

	call	long_mode_on
	ljmp	$0x08, $start64

	/*
	 * Shared by the boot CPU and the APs: PAE, the boot page tables,
	 * EFER.LME, paging, then the boot GDT.  It returns in compatibility
	 * mode; the caller's far jump enters 64-bit code.
	 */
long_mode_on:
	movl	%cr4, %eax
	orl	$CR4_PAE, %eax
	movl	%eax, %cr4

	movl	$boot_pml4, %eax
	movl	%eax, %cr3

	movl	$MSR_EFER, %ecx
	rdmsr
	orl	$EFER_LME, %eax
	wrmsr

	movl	%cr0, %eax
	orl	$(CR0_PG | CR0_PE), %eax
	movl	%eax, %cr0

	lgdt	boot_gdt_ptr
	ret

	/*
	 * An AP, started through the AP start mailbox (smp.c): the same flat
	 * 32-bit state as the boot CPU, with EBX = its CPU index and ESP = the
	 * stack smp.c asked for.  The page tables are the boot CPU's, already
	 * built (and since extended by map_page, which only adds entries).
	 */
	.globl	ap_start32
ap_start32:
	cli
	cld
	call	long_mode_on
	ljmp	$0x08, $ap_start64

	/* Not loaded by a multiboot loader: say so on COM1 and fail. */
bad_magic:
	movl	$bad_magic_msg, %esi
2:	lodsb
	testb	%al, %al
	jz	3f
	movw	$0x3f8, %dx
	outb	%al, %dx
	jmp	2b
3:	movb	$1, %al
	movw	$0x501, %dx
	outb	%al, %dx
4:	hlt
	jmp	4b

	.code64
start64:
	movw	$0x10, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	%ax, %fs
	movw	%ax, %gs
	movl	$boot_stack_top, %esp
	movl	%edi, %edi		/* multiboot info pointer, zero extended */
	xorl	%ebp, %ebp
	call	kmain
5:	cli
	hlt
	jmp	5b

ap_start64:
	movw	$0x10, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	%ax, %fs
	movw	%ax, %gs
	movl	%esp, %esp		/* zero extended: the stack is below 4 GiB */
	movl	%ebx, %edi		/* CPU index: ap_main's argument */
	xorl	%ebp, %ebp
	call	ap_main
	jmp	5b

	.section .rodata
bad_magic_msg:
	.asciz	"boot: not started by a multiboot loader (bad magic)\n"

	/* Boot GDT: null, 64-bit kernel code (0x08), kernel data (0x10). */
	.balign	8
boot_gdt:
	.quad	0
	.quad	0x00af9a000000ffff
	.quad	0x00cf92000000ffff
boot_gdt_end:
boot_gdt_ptr:
	.word	boot_gdt_end - boot_gdt - 1
	.long	boot_gdt

	.section .bss
	.balign	4096
	.globl	boot_pml4
boot_pml4:	.skip	4096
boot_pdpt:	.skip	4096
boot_pd:	.skip	4096
	.balign	16
boot_stack:	.skip	16384
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
