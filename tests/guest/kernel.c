/* kernel.c: boot flow, multiboot command line, the user tasks' address space and their system calls */
#include "arch.h"
#include "guest.h"
#include "workload.h"

/*
 * Boot: console, memory, CPU tables, PIC and PIT, PCI, a second CPU if the
 * platform has one (smp.c), then one user task per CPU, which do all of the
 * workload in ring 3 and talk to the kernel only through syscall.  The
 * workload's streams (workload.h) are split between the CPUs; the boot
 * CPU's task joins the others' results and finishes.  Command line (multiboot): seed=S steps=N mem=SIZE
 * fill=SIZE selftest=1 irqlog=1.  No steps= runs forever (with selftest=1: only the
 * self-test runs); numbers are decimal or 0x hex, SIZE takes K, M or G
 * (powers of two).
 */

#define MBI_MEM	    0x001u
#define MBI_CMDLINE 0x004u
#define MBI_MMAP    0x040u
#define REPORT_TICKS TIMER_HZ /* a progress line a second */

struct __attribute__((packed)) mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
	uint32_t mods_count, mods_addr, syms[4], mmap_length, mmap_addr;
};

struct __attribute__((packed)) mb_mmap {
	uint32_t size; /* of the rest of this entry */
	uint64_t base, len;
	uint32_t type; /* 1: usable RAM */
};

static char cmdline[512];
static struct user_args uargs;
static uint64_t opt_selftest, opt_irqlog; /* selftest=1, irqlog=1 (README.md, "Self-test") */
static uint64_t user_end, mem_end;
/*
 * A finished stream's checksum, published by the CPU that ran it: the value
 * first, then the flag with release; SYS_JOIN reads the flag with acquire,
 * which also makes that CPU's stores into its part of the buffer visible.
 */
static uint64_t stream_h[WL_STREAMS];
static uint32_t stream_done[WL_STREAMS];

extern char __user_start[], __user_end[], __user_lma[];
void kmain(uint32_t mbi_pa);

/* Copy what we need out of the multiboot info before the allocator can reuse it. */
static uint64_t read_multiboot(const struct mb_info *mbi)
{
	uint64_t top = 0;
	if (mbi->flags & MBI_CMDLINE) {
		const char *s = (const char *)(uint64_t)mbi->cmdline;
		size_t n = 0;
		while (s[n] && n < sizeof cmdline - 1)
			n++;
		kmemcpy(cmdline, s, n);
		cmdline[n] = 0;
	}
	if (mbi->flags & MBI_MMAP) {
		uint64_t p = mbi->mmap_addr, end = p + mbi->mmap_length;
		while (p + sizeof(struct mb_mmap) <= end) {
			const struct mb_mmap *m = (const struct mb_mmap *)p;
			kprintf("mem: 0x%010lx-0x%010lx %s\n", m->base, m->base + m->len - 1,
				m->type == 1 ? "ram" : "reserved");
			/* the region the kernel was loaded into is the one we use */
			if (m->type == 1 && m->base <= 0x100000 && m->base + m->len > 0x100000)
				top = m->base + m->len;
			p += m->size + 4;
		}
	}
	if (!top && (mbi->flags & MBI_MEM))
		top = 0x100000 + (uint64_t)mbi->mem_upper * 1024;
	return top;
}

/* Parse a number at *sp (decimal or 0x hex, optional K/M/G when `size`). */
static int parse_num(const char **sp, uint64_t *out, int size)
{
	const char *s = *sp;
	uint64_t v = 0, base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		base = 16, s += 2;
	const char *digits = s;
	for (;; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && (*s | 0x20) >= 'a' && (*s | 0x20) <= 'f')
			d = (unsigned)((*s | 0x20) - 'a' + 10);
		else
			break;
		if (v > (~0ull - d) / base)
			return -1;
		v = v * base + d;
	}
	if (s == digits)
		return -1;
	if (size && *s) {
		unsigned shift = (*s | 0x20) == 'k' ? 10 : (*s | 0x20) == 'm' ? 20 : (*s | 0x20) == 'g' ? 30 : 0;
		if (shift) {
			if (v > ~0ull >> shift)
				return -1;
			v <<= shift, s++;
		}
	}
	if (*s && *s != ' ')
		return -1;
	*sp = s;
	*out = v;
	return 0;
}

static void parse_args(void)
{
	uargs.seed = 1;
	uargs.forever = 1;
	uargs.mem_bytes = 1 << 20;
	for (const char *p = cmdline; *p;) {
		while (*p == ' ')
			p++;
		const char *key = p;
		uint64_t *dst = 0;
		int size = 0;
		if (!kmemcmp(key, "seed=", 5))
			dst = &uargs.seed, p += 5;
		else if (!kmemcmp(key, "steps=", 6))
			dst = &uargs.steps, p += 6, uargs.forever = 0;
		else if (!kmemcmp(key, "mem=", 4))
			dst = &uargs.mem_bytes, p += 4, size = 1;
		else if (!kmemcmp(key, "fill=", 5))
			dst = &uargs.fill_bytes, p += 5, size = 1;
		else if (!kmemcmp(key, "selftest=", 9))
			dst = &opt_selftest, p += 9;
		else if (!kmemcmp(key, "irqlog=", 7))
			dst = &opt_irqlog, p += 7;
		if (dst && parse_num(&p, dst, size) < 0) {
			kprintf("args: bad number in \"%s\"\n", key);
			poweroff(EXIT_FAIL);
		}
		while (*p && *p != ' ') /* other words (the loader's image name) are ignored */
			p++;
	}
	uargs.mem_bytes &= ~7ull;
	uargs.fill_bytes &= ~7ull;
	if (uargs.mem_bytes < 8 * WL_STREAMS)
		panic("args: mem= must be at least 16 bytes (a word per workload stream)");
}

int kmemcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *p = a, *q = b;
	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p - *q;
	return 0;
}

/* Measure the timer against the TSC while we wait for its first ticks. */
static void timer_check(void)
{
	uint64_t t0 = ticks, start = rdtsc();
	sti();
	/*
	 * Spin (not hlt) for the first tick, so a missing timer is reported,
	 * not slept on.  The counter is sampled between irq_save() and
	 * irq_restore(), the usual way to read what a handler changes; that
	 * also gives a pre-virtualized kernel a site boundary per iteration,
	 * where its runtime delivers pending interrupts (docs/RUNTIME.md).
	 */
	for (;;) {
		uint64_t f = irq_save(), now = ticks;
		irq_restore(f);
		if (now != t0)
			break;
		if (rdtsc() - start > 20000000000ull)
			panic("timer: no interrupt from the PIT on irq 0");
	}
	uint64_t c0 = rdtsc(), t1 = ticks;
	while (ticks < t1 + 2)
		hlt();
	uint64_t c1 = rdtsc();
	cli();
	kprintf("timer: pit at %u Hz on irq 0, about %lu tsc cycles a tick\n", TIMER_HZ,
		(c1 - c0) / 2);
}

static void map_user(void)
{
	uint64_t lma = (uint64_t)__user_lma;
	user_end = (uint64_t)__user_end;
	for (uint64_t va = USER_BASE; va < user_end; va += PAGE_SIZE)
		map_page(va, lma + (va - USER_BASE), PTE_U | PTE_W);
	/* one stack per CPU that may run, with an unmapped gap below each */
	if (user_end > USER_STACK_TOP - (MAX_CPUS - 1) * USER_STACK_STRIDE -
			       USER_STACK_PAGES * PAGE_SIZE)
		panic("mm: the user task's image runs into its stacks");
	for (unsigned c = 0; c < MAX_CPUS; c++)
		for (unsigned i = 1; i <= USER_STACK_PAGES; i++)
			map_page(USER_STACK_TOP - c * USER_STACK_STRIDE - i * PAGE_SIZE, alloc_page(),
				 PTE_U | PTE_W);
	uint64_t bytes = (uargs.mem_bytes + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	for (uint64_t off = 0; off < bytes; off += PAGE_SIZE)
		map_page(USER_MEM + off, alloc_page(), PTE_U | PTE_W);
	uargs.mem_va = USER_MEM;
	mem_end = USER_MEM + bytes;
	/* fill=SIZE: 2 MiB pages of its own after the buffer (mm.c says why) */
	if (uargs.fill_bytes) {
		uint64_t va = (mem_end + LARGE_PAGE_SIZE - 1) & ~(LARGE_PAGE_SIZE - 1);
		uint64_t len = (uargs.fill_bytes + LARGE_PAGE_SIZE - 1) & ~(LARGE_PAGE_SIZE - 1);
		uint64_t pa = alloc_large_unzeroed(len);
		for (uint64_t off = 0; off < len; off += LARGE_PAGE_SIZE)
			map_large_page(va + off, pa + off, PTE_U | PTE_W);
		uargs.fill_va = va;
	}
}

/* Only what map_user() mapped counts as user memory. */
int user_range_ok(uint64_t va, uint64_t len)
{
	uint64_t end = va + len;
	if (end < va)
		return 0;
	for (unsigned c = 0; c < MAX_CPUS; c++) {
		uint64_t top = USER_STACK_TOP - c * USER_STACK_STRIDE;
		if (va >= top - USER_STACK_PAGES * PAGE_SIZE && end <= top)
			return 1;
	}
	return (va >= USER_BASE && end <= user_end) || (va >= USER_MEM && end <= mem_end);
}

/* Each CPU reports its own streams' progress, once a second of ticks. */
static void progress(struct percpu *p)
{
	kprintf("tick=%lu steps=%lu checksum=0x%016lx\n", ticks, p->cur_steps, p->cur_sum);
	p->last_report = ticks;
}

/*
 * The last progress line is the same on any number of CPUs: global step N
 * belongs to stream (N - 1) % WL_STREAMS, whose final h it reports.
 */
static void finish(uint64_t steps, uint64_t sum)
{
	uint64_t total = 0, fixups = 0;
	for (unsigned c = 0; c < ncpus; c++) {
		total += __atomic_load_n(&cpu_percpu(c)->syscalls, __ATOMIC_RELAXED);
		fixups += __atomic_load_n(&cpu_percpu(c)->syscall_fixups, __ATOMIC_RELAXED);
	}
	kprintf("tick=%lu steps=%lu checksum=0x%016lx\n", ticks, steps,
		steps ? stream_h[(steps - 1) % WL_STREAMS] : (uint64_t)WL_FNV_OFFSET);
	kprintf("workload: steps=%lu checksum=0x%016lx\n", steps, sum);
	kprintf("guest: %lu system calls (%lu completed in the fault handler), %lu interrupts taken in "
		"user mode, %lu ticks\n",
		total, fixups, user_irqs, ticks);
	dp83820_report();
	if (opt_irqlog)
		irqlog_report();
	if (!user_irqs)
		panic("no interrupt arrived while in user mode");
	poweroff(EXIT_OK);
}

/*
 * Returns 0 to go back by sysretq, non-zero by iretq.  SYS_ARGS and every
 * 1024th call take the iretq way so that both exits run in every boot.
 */
int syscall_handler(struct trapframe *tf)
{
	struct percpu *p = this_cpu();
	uint64_t n = p->syscalls + 1;
	/* atomic only so that finish() on the boot CPU reads a whole value */
	__atomic_store_n(&p->syscalls, n, __ATOMIC_RELAXED);
	int by_iret = (n & 1023) == 0;
	switch (tf->rax) {
	case SYS_ARGS:
		if (!user_range_ok(tf->rdi, sizeof uargs))
			panic("syscall: SYS_ARGS: bad pointer");
		uargs.cpu = p->cpu;
		uargs.ncpus = ncpus;
		kmemcpy((void *)tf->rdi, &uargs, sizeof uargs);
		tf->rax = 0;
		by_iret = 1;
		break;
	case SYS_TICKS:
		tf->rax = ticks;
		break;
	case SYS_STEP:
		p->cur_steps = tf->rdi;
		p->cur_sum = tf->rsi;
		if (ticks - p->last_report >= REPORT_TICKS)
			progress(p);
		tf->rax = ticks;
		break;
	case SYS_WRITE:
		if (!user_range_ok(tf->rdi, tf->rsi))
			panic("syscall: SYS_WRITE: bad buffer");
		console_write((const char *)tf->rdi, tf->rsi);
		tf->rax = tf->rsi;
		break;
	case SYS_DONE:
		if (p->cpu != 0)
			panic("syscall: SYS_DONE on a CPU other than the boot CPU");
		finish(tf->rdi, tf->rsi);
		break;
	case SYS_STREAM:
		if (tf->rdi >= WL_STREAMS || __atomic_load_n(&stream_done[tf->rdi], __ATOMIC_RELAXED))
			panic("syscall: SYS_STREAM: bad or repeated stream");
		stream_h[tf->rdi] = tf->rsi;
		__atomic_store_n(&stream_done[tf->rdi], 1, __ATOMIC_RELEASE);
		tf->rax = 0;
		break;
	case SYS_JOIN:
		/* only the boot CPU has a timer to wake it from hlt */
		if (p->cpu != 0 || tf->rdi >= WL_STREAMS)
			panic("syscall: SYS_JOIN: bad stream or not the boot CPU");
		while (!__atomic_load_n(&stream_done[tf->rdi], __ATOMIC_ACQUIRE)) {
			sti();
			hlt();
			cli();
		}
		tf->rax = stream_h[tf->rdi];
		break;
	case SYS_EXIT:
		if (p->cpu == 0)
			panic("syscall: SYS_EXIT on the boot CPU");
		kprintf("smp: cpu %lu done, halting\n", p->cpu);
		for (;;) {
			cli();
			hlt();
		}
	default:
		tf->rax = (uint64_t)-1;
	}
	/* sysretq to a non-canonical RIP would fault in ring 0: use iretq */
	if ((uint64_t)((int64_t)(tf->rip << 16) >> 16) != tf->rip)
		by_iret = 1;
	return by_iret;
}

void kmain(uint32_t mbi_pa)
{
	console_init();
	kprintf("\nguest: reference kernel up in long mode, multiboot info at 0x%x\n", mbi_pa);
	uint64_t top = read_multiboot((const struct mb_info *)(uint64_t)mbi_pa);
	kprintf("guest: command line \"%s\"\n", cmdline);
	if (!top)
		panic("mem: the loader gave no memory information");
	mm_init(top);
	cpu_init(0);
	cpu_report();
	pic_init();
	pit_init(TIMER_HZ);
	timer_check();
	parse_args();

	/* the buffer, its page tables, the stack and some slack for the NIC */
	uint64_t pages = (uargs.mem_bytes + PAGE_SIZE - 1) / PAGE_SIZE;
	uint64_t need = (pages + pages / 512 + MAX_CPUS * USER_STACK_PAGES + 64) * PAGE_SIZE;
	/* the fill: rounded up to 2 MiB pages, and up to one more lost to alignment */
	uint64_t fill = (uargs.fill_bytes + LARGE_PAGE_SIZE - 1) & ~(LARGE_PAGE_SIZE - 1);
	if (fill)
		need += fill + LARGE_PAGE_SIZE;
	if (uargs.fill_bytes && (uargs.fill_bytes > USER_LIMIT ||
				 USER_MEM + pages * PAGE_SIZE + LARGE_PAGE_SIZE + fill > USER_LIMIT)) {
		kprintf("args: mem= and fill= together exceed the user range (%lu bytes)\n",
			(uint64_t)(USER_LIMIT - USER_MEM));
		poweroff(EXIT_FAIL);
	}
	if (need > mm_free_bytes()) {
		if (uargs.fill_bytes)
			kprintf("args: mem=%lu fill=%lu need %lu bytes, %lu are free\n",
				uargs.mem_bytes, uargs.fill_bytes, need, mm_free_bytes());
		else
			kprintf("args: mem=%lu needs %lu bytes, %lu are free\n", uargs.mem_bytes, need,
				mm_free_bytes());
		poweroff(EXIT_FAIL);
	}
	pci_scan();
	map_user();
	if (uargs.forever)
		kprintf("args: seed=%lu steps=forever mem=%lu\n", uargs.seed, uargs.mem_bytes);
	else
		kprintf("args: seed=%lu steps=%lu mem=%lu\n", uargs.seed, uargs.steps,
			uargs.mem_bytes);
	if (uargs.fill_bytes)
		kprintf("args: fill=%lu at 0x%lx (2 MiB pages)\n", uargs.fill_bytes, uargs.fill_va);
	/* selftest=1: before the workload, or instead of it when there is no steps= */
	if (opt_selftest) {
		unsigned failed = selftest_run();
		if (failed || uargs.forever) {
			if (opt_irqlog)
				irqlog_report();
			poweroff(failed ? EXIT_FAIL : EXIT_OK);
		}
	}
	smp_init();
	enter_user((uint64_t)user_main, USER_STACK_TOP - 8);
}
