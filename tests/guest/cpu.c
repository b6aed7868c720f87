/* cpu.c: GDT with TSS, IDT, syscall MSRs, exception reporting and power-off */
#include "arch.h"
#include "guest.h"

/*
 * GDT order is dictated by syscall/sysret: SYSCALL loads CS from
 * STAR[47:32] and SS from it + 8; SYSRETQ loads CS from STAR[63:48] + 16
 * and SS from STAR[63:48] + 8.  With STAR[63:48] = 0x18 the user selectors
 * are 0x2b (code) and 0x23 (data); slot 0x18 is a 32-bit user code segment
 * that only exists to make that arithmetic work.
 */
enum { GDT_NULL, GDT_KCODE, GDT_KDATA, GDT_UCODE32, GDT_UDATA, GDT_UCODE, GDT_TSS, GDT_TSS_HI,
       GDT_N };

static uint64_t gdt[GDT_N] __attribute__((aligned(16)));

struct __attribute__((packed)) tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
};

static struct tss64 tss __attribute__((aligned(16)));

struct __attribute__((packed)) idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t reserved;
};

static struct idt_gate idt[256] __attribute__((aligned(16)));

/* Kernel stacks: syscalls and traps from user mode, and IST1 for #DF/NMI/#MC. */
static uint8_t kstack[16384] __attribute__((aligned(16)));
static uint8_t ist_stack[8192] __attribute__((aligned(16)));

static struct percpu pcpu;

volatile uint64_t ticks;
volatile uint64_t user_irqs;

#define SEG_CODE64  0x00af9a000000ffffull /* P, DPL0, code, L */
#define SEG_DATA    0x00cf92000000ffffull /* P, DPL0, data, writable */
#define SEG_CODE32  0x00cffa000000ffffull /* P, DPL3, code, D */
#define SEG_DPL3    0x0000600000000000ull
#define GATE_INTR   0x8e /* P, DPL0, 64-bit interrupt gate (clears IF) */
#define SFMASK_BITS 0x47700u /* TF, DF, IF, IOPL, NT, AC cleared on syscall */

static void set_gate(unsigned vec, uint64_t handler, unsigned ist)
{
	idt[vec] = (struct idt_gate){
		.off_lo = (uint16_t)handler,
		.sel = KERNEL_CS,
		.ist = (uint8_t)ist,
		.type_attr = GATE_INTR,
		.off_mid = (uint16_t)(handler >> 16),
		.off_hi = (uint32_t)(handler >> 32),
	};
}

void cpu_init(void)
{
	gdt[GDT_KCODE] = SEG_CODE64;
	gdt[GDT_KDATA] = SEG_DATA;
	gdt[GDT_UCODE32] = SEG_CODE32;
	gdt[GDT_UDATA] = SEG_DATA | SEG_DPL3;
	gdt[GDT_UCODE] = SEG_CODE64 | SEG_DPL3;

	uint64_t base = (uint64_t)&tss, limit = sizeof tss - 1;
	tss.rsp[0] = (uint64_t)(kstack + sizeof kstack);
	tss.ist[0] = (uint64_t)(ist_stack + sizeof ist_stack);
	tss.iomap_base = sizeof tss; /* no I/O bitmap: user mode gets no ports */
	gdt[GDT_TSS] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0x89ull << 40 |
		       ((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
	gdt[GDT_TSS_HI] = base >> 32;

	struct desc_ptr gp = {.limit = sizeof gdt - 1, .base = (uint64_t)gdt};
	lgdt(&gp);
	reload_segments(KERNEL_CS, KERNEL_DS);
	ltr(TSS_SEL);

	for (unsigned v = 0; v < 48; v++)
		set_gate(v, trap_stubs[v], v == 2 || v == 8 || v == 18 ? 1 : 0);
	struct desc_ptr ip = {.limit = sizeof idt - 1, .base = (uint64_t)idt};
	lidt(&ip);

	/* GS base is the kernel's while in the kernel; the user's is 0. */
	pcpu.kernel_rsp = tss.rsp[0];
	wrmsr(MSR_GS_BASE, (uint64_t)&pcpu);
	wrmsr(MSR_KERNEL_GS_BASE, 0);

	wrmsr(MSR_STAR, (uint64_t)0x18 << 48 | (uint64_t)KERNEL_CS << 32);
	wrmsr(MSR_LSTAR, (uint64_t)syscall_entry);
	wrmsr(MSR_SFMASK, SFMASK_BITS);
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
}

/* One line about the CPU we run on; the values differ by host, so it is informational. */
void cpu_report(void)
{
	uint32_t a, b, c, d;
	char vendor[13];
	cpuid(0, &a, &b, &c, &d);
	kmemcpy(vendor, &b, 4);
	kmemcpy(vendor + 4, &d, 4);
	kmemcpy(vendor + 8, &c, 4);
	vendor[12] = 0;
	struct desc_ptr gp;
	sgdt(&gp);
	kprintf("cpu: vendor %s max leaf %u cr0=0x%lx cr4=0x%lx efer=0x%lx gdt=0x%lx tr=0x%x\n",
		vendor, a, read_cr0(), read_cr4(), rdmsr(MSR_EFER), gp.base, str());
}

void poweroff(int code)
{
	cli();
	/* isa-debug-exit: QEMU exits with (code << 1) | 1. */
	outb(0x501, (uint8_t)code);
	kprintf("poweroff: no exit device answered; halting\n");
	for (;;)
		hlt();
}

void panic(const char *what)
{
	kprintf("panic: %s\n", what);
	poweroff(EXIT_FAIL);
}

static const char *const exc_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS",
	"#NP", "#SS", "#GP", "#PF", "?15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

void trap(struct trapframe *tf)
{
	if (tf->vector >= IRQ_BASE && tf->vector < IRQ_BASE + 16) {
		if (tf->cs & 3)
			user_irqs++;
		irq_dispatch((unsigned)(tf->vector - IRQ_BASE), tf);
		return;
	}
	const char *name = tf->vector < 32 && exc_names[tf->vector] ? exc_names[tf->vector] : "?";
	kprintf("exception: vector=%lu (%s) rip=0x%lx err=0x%lx cs=0x%lx rsp=0x%lx cr2=0x%lx\n",
		tf->vector, name, tf->rip, tf->error, tf->cs, tf->rsp, read_cr2());
	kprintf("exception: rax=0x%lx rbx=0x%lx rcx=0x%lx rdx=0x%lx rsi=0x%lx rdi=0x%lx\n", tf->rax,
		tf->rbx, tf->rcx, tf->rdx, tf->rsi, tf->rdi);
	poweroff(EXIT_FAIL);
}

/* First entry to ring 3: a frame at the top of the kernel stack, left by iretq. */
void enter_user(uint64_t rip, uint64_t rsp)
{
	struct trapframe *tf = (struct trapframe *)(kstack + sizeof kstack) - 1;
	kmemset(tf, 0, sizeof *tf);
	tf->rip = rip;
	tf->cs = USER_CS;
	tf->rflags = RFLAGS_IF | 0x2; /* bit 1 always reads as one */
	tf->rsp = rsp;
	tf->ss = USER_DS;
	trap_return_to(tf);
}
