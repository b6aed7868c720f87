/* cpu.c: per-CPU GDT, TSS and GS block, the shared IDT, syscall MSRs, the unswitched-syscall workaround, exception reporting and power-off */
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

/*
 * Each CPU has its own GDT (so the busy TSS descriptor that ltr leaves is
 * its own and every CPU uses the same TSS_SEL), TSS, stacks and percpu
 * block; the IDT is one for all.
 */
static uint64_t gdt[MAX_CPUS][GDT_N] __attribute__((aligned(16)));

struct __attribute__((packed)) tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
};

static struct tss64 tss[MAX_CPUS] __attribute__((aligned(16)));

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
static uint8_t kstack[MAX_CPUS][16384] __attribute__((aligned(16)));
static uint8_t ist_stack[MAX_CPUS][8192] __attribute__((aligned(16)));

static struct percpu pcpu[MAX_CPUS];

volatile uint64_t ticks;
volatile uint64_t user_irqs;

#define SEG_CODE64  0x00af9a000000ffffull /* P, DPL0, code, L */
#define SEG_DATA    0x00cf92000000ffffull /* P, DPL0, data, writable */
#define SEG_CODE32  0x00cffa000000ffffull /* P, DPL3, code, D */
#define SEG_DPL3    0x0000600000000000ull
#define GATE_INTR   0x8e /* P, DPL0, 64-bit interrupt gate (clears IF) */
#define SFMASK_BITS 0x47700u /* TF, DF, IF, IOPL, NT, AC cleared on syscall */
/* what ring 3 can set itself with popf: CF PF AF ZF SF TF DF OF AC ID (not IOPL, IF, NT) */
#define RFLAGS_USER 0x240dd5u

/* The syscall entry point as programmed into LSTAR, for syscall_unswitched(). */
static uint64_t syscall_lstar;

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

/*
 * GS base: syscall_entry finds its stack through it and C code its per-CPU
 * block (this_cpu()).  The user's GS base is 0 and waits in KERNEL_GS_BASE
 * for the first swapgs to ring 3.
 */
static void cpu_set_percpu(unsigned cpu)
{
	struct percpu *p = &pcpu[cpu];
	p->self = p;
	p->cpu = cpu;
	p->kernel_rsp = (uint64_t)(kstack[cpu] + sizeof kstack[cpu]);
	wrmsr(MSR_GS_BASE, (uint64_t)p);
	wrmsr(MSR_KERNEL_GS_BASE, 0);
}

struct percpu *cpu_percpu(unsigned cpu) { return &pcpu[cpu]; }

/* Everything a CPU must set up for itself; the boot CPU also builds the IDT. */
void cpu_init(unsigned cpu)
{
	uint64_t *g = gdt[cpu];
	struct tss64 *t = &tss[cpu];

	cpu_set_percpu(cpu);
	g[GDT_KCODE] = SEG_CODE64;
	g[GDT_KDATA] = SEG_DATA;
	g[GDT_UCODE32] = SEG_CODE32;
	g[GDT_UDATA] = SEG_DATA | SEG_DPL3;
	g[GDT_UCODE] = SEG_CODE64 | SEG_DPL3;

	uint64_t base = (uint64_t)t, limit = sizeof *t - 1;
	t->rsp[0] = pcpu[cpu].kernel_rsp;
	t->ist[0] = (uint64_t)(ist_stack[cpu] + sizeof ist_stack[cpu]);
	t->iomap_base = sizeof *t; /* no I/O bitmap: user mode gets no ports */
	g[GDT_TSS] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0x89ull << 40 |
		     ((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
	g[GDT_TSS_HI] = base >> 32;

	struct desc_ptr gp = {.limit = sizeof gdt[cpu] - 1, .base = (uint64_t)g};
	lgdt(&gp);
	reload_segments(KERNEL_CS, KERNEL_DS);
	ltr(TSS_SEL);

	/* the APs start after the boot CPU has filled it in */
	if (cpu == 0)
		for (unsigned v = 0; v < 48; v++)
			set_gate(v, trap_stubs[v], v == 2 || v == 8 || v == 18 ? 1 : 0);
	struct desc_ptr ip = {.limit = sizeof idt - 1, .base = (uint64_t)idt};
	lidt(&ip);

	wrmsr(MSR_STAR, (uint64_t)0x18 << 48 | (uint64_t)KERNEL_CS << 32);
	syscall_lstar = (uint64_t)syscall_entry;
	wrmsr(MSR_LSTAR, syscall_lstar);
	wrmsr(MSR_SFMASK, SFMASK_BITS);
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
}

/*
 * selftest=1 (ltr/str): load TR again.  ltr refuses a busy TSS, and the
 * first ltr left ours busy, so mark it available first; ltr marks it busy
 * again, which is what the caller checks (the type it returns).
 */
unsigned cpu_reload_tr(void)
{
	uint64_t *d = &gdt[this_cpu()->cpu][GDT_TSS];
	*d &= ~(0x2ull << 40); /* type 0xb (busy) -> 0x9 (available) */
	ltr(TSS_SEL);
	return (unsigned)(*(volatile uint64_t *)d >> 40) & 0xf;
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

/*
 * Erratum workaround: a `syscall` in ring 3 whose privilege switch did not
 * happen.  Some CPUs (virtual ones included) execute the rest of it (RCX =
 * the return RIP, R11 = RFLAGS, RFLAGS masked by SFMASK, RIP = LSTAR) but
 * leave CS and SS at the user's selectors, so the entry stub's first fetch
 * from its supervisor page faults at CPL 3 (#PF; #GP or #UD if the fetch
 * were allowed and swapgs ran).  No swapgs has run and RSP is still the
 * user's, so the fault frame holds the user's registers exactly as the stub
 * would have found them: finish the call here instead.  Any other fault at
 * that address from ring 3 (a jump there) is completed the same way, which
 * grants nothing a real syscall would not: the flags are sanitised and the
 * return goes to ring 3 by iretq.  Returns 1 if it handled the frame.
 */
static int syscall_unswitched(struct trapframe *tf)
{
	if (!(tf->cs & 3) || tf->rip != syscall_lstar ||
	    (tf->vector != 14 && tf->vector != 13 && tf->vector != 6))
		return 0;
	/* RCX is where syscall returns to; one that is not canonical did not come from it */
	if ((uint64_t)((int64_t)(tf->rcx << 16) >> 16) != tf->rcx)
		return 0;
	struct percpu *p = this_cpu();
	uint64_t n = p->syscall_fixups + 1;
	/* atomic only so that the boot CPU's end-of-run total reads a whole value */
	__atomic_store_n(&p->syscall_fixups, n, __ATOMIC_RELAXED);
	if (n == 1)
		kprintf("cpu: syscall without privilege switch at 0x%lx: completing it in the fault "
			"handler\n",
			tf->rcx - 2);
	/* the frame syscall_entry would have built: return to RCX with the flags saved in R11 */
	tf->rip = tf->rcx;
	tf->rflags = (tf->r11 & RFLAGS_USER) | RFLAGS_IF | 0x2;
	tf->vector = VEC_SYSCALL;
	tf->error = 0;
	/* leave by iretq (trap_return) either way: CS and SS in the frame are already the user's */
	(void)syscall_handler(tf);
	/* what sysretq would have left in RCX and R11 */
	tf->rcx = tf->rip;
	tf->r11 = tf->rflags;
	return 1;
}

void trap(struct trapframe *tf)
{
	if (tf->vector >= IRQ_BASE && tf->vector < IRQ_BASE + 16) {
		if (tf->cs & 3)
			user_irqs++;
		irq_dispatch((unsigned)(tf->vector - IRQ_BASE), tf);
		return;
	}
	if (selftest_trap(tf) || syscall_unswitched(tf))
		return;
	const char *name = tf->vector < 32 && exc_names[tf->vector] ? exc_names[tf->vector] : "?";
	kprintf("exception: vector=%lu (%s) rip=0x%lx err=0x%lx cs=0x%lx rflags=0x%lx rsp=0x%lx "
		"ss=0x%lx cr2=0x%lx\n",
		tf->vector, name, tf->rip, tf->error, tf->cs, tf->rflags, tf->rsp, tf->ss, read_cr2());
	kprintf("exception: rax=0x%lx rbx=0x%lx rcx=0x%lx rdx=0x%lx rsi=0x%lx rdi=0x%lx r11=0x%lx\n",
		tf->rax, tf->rbx, tf->rcx, tf->rdx, tf->rsi, tf->rdi, tf->r11);
	poweroff(EXIT_FAIL);
}

/* First entry to ring 3: a frame at the top of this CPU's kernel stack, left by iretq. */
void enter_user(uint64_t rip, uint64_t rsp)
{
	struct trapframe *tf = (struct trapframe *)this_cpu()->kernel_rsp - 1;
	kmemset(tf, 0, sizeof *tf);
	tf->rip = rip;
	tf->cs = USER_CS;
	tf->rflags = RFLAGS_IF | 0x2; /* bit 1 always reads as one */
	tf->rsp = rsp;
	tf->ss = USER_DS;
	trap_return_to(tf);
}
