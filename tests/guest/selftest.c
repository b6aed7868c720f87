/* selftest.c: selftest=1: one check per site kind with values that do not depend on the personality; flags, control transfer, segments, cpuid, tsc */
#include "arch.h"
#include "guest.h"
#include "selftest.h"

/*
 * Why: the same image runs under every personality (native, kvm, QEMU), and
 * a site rewritten for one of them must have the same observable effect as
 * the original instruction.  Each check runs the kind's instruction in the
 * ordinary way (so the annotator makes it a site like any other), compares
 * what it observes with what it computed beforehand, and prints the
 * observation.  Comparing the lines of two runs then compares the
 * personalities; README.md ("Self-test") lists the lines.
 *
 * Everything runs on the boot CPU before the AP starts, with interrupts off
 * except where a check turns them on itself (sti, hlt, popf, iret).
 */

/* RFLAGS bits the checks look at. */
#define FL_CF 0x001u
#define FL_ZF 0x040u
#define FL_IF 0x200u
#define FL_DF 0x400u
#define FL_OF 0x800u
#define FL_ARITH_DF_IF 0xed5u /* CF PF AF ZF SF IF DF OF */
#define FL_FIXED 0x002u	      /* bit 1 always reads as one */

volatile struct st_fault st_fault;
static unsigned n_ok, n_fail, n_skip;

static size_t append(char *buf, size_t n, size_t cap, const char *s)
{
	while (*s && n < cap - 1)
		buf[n++] = *s++;
	buf[n] = 0;
	return n;
}

void st_check(const char *kinds, int ok, const char *fmt, ...)
{
	/* one format, so the line goes out in one console write */
	char f[256];
	size_t n = append(f, 0, sizeof f, "selftest: ");
	n = append(f, n, sizeof f, kinds);
	if (*fmt) {
		n = append(f, n, sizeof f, " ");
		n = append(f, n, sizeof f, fmt);
	}
	append(f, n, sizeof f, ok ? " ok\n" : " FAIL\n");
	va_list ap;
	va_start(ap, fmt);
	kvprintf(f, ap);
	va_end(ap);
	if (ok)
		n_ok++;
	else
		n_fail++;
}

void st_skip(const char *kinds, const char *reason)
{
	kprintf("selftest: %s skipped (%s)\n", kinds, reason);
	n_skip++;
}

/* A fault a check armed st_fault for: resume at its fixup (see selftest.h). */
int selftest_trap(struct trapframe *tf)
{
	if (!st_fault.fixup || (tf->cs & 3) || tf->vector != st_fault.vector)
		return 0;
	st_fault.error = tf->error;
	st_fault.cr2 = tf->vector == 14 ? read_cr2() : 0;
	st_fault.taken++;
	tf->rip = st_fault.fixup;
	st_fault.fixup = 0;
	return 1;
}

static void check_cli_sti(void)
{
	sti();
	cli();
	uint64_t off = read_rflags() & FL_IF;
	st_check("cli", off == 0, "rflags.if=0x%lx", off);
	sti();
	uint64_t on = read_rflags() & FL_IF;
	cli();
	st_check("sti", on == FL_IF, "rflags.if=0x%lx", on);
}

/* pushf sees CF and DF as stc/std left them, and IF as cli/sti left it. */
static void check_pushf(void)
{
	uint64_t a, b;
	__asm__ volatile("stc\n\tstd\n\tpushfq\n\tpopq %0\n\tcld" : "=r"(a)::"cc", "memory");
	__asm__ volatile("clc\n\tsti\n\tpushfq\n\tpopq %0\n\tcli" : "=r"(b)::"cc", "memory");
	a &= FL_CF | FL_DF | FL_IF;
	b &= FL_CF | FL_DF | FL_IF;
	st_check("pushf", a == (FL_CF | FL_DF) && b == FL_IF, "stc.std.cli=0x%lx clc.cld.sti=0x%lx",
		 a, b);
}

/*
 * popf of `v`, then pushf, then popf of what was there before, all in one
 * asm statement: DF=1 must not leak into compiled code, and v's IF=1 lets an
 * interrupt in only until the restore.
 */
static uint64_t popf_probe(uint64_t v)
{
	uint64_t got, saved;
	__asm__ volatile("pushfq\n\t"
			 "popq %1\n\t"
			 "pushq %2\n\t"
			 "popfq\n\t"
			 "pushfq\n\t"
			 "popq %0\n\t"
			 "pushq %1\n\t"
			 "popfq"
			 : "=&r"(got), "=&r"(saved)
			 : "r"(v)
			 : "cc", "memory");
	return got & FL_ARITH_DF_IF;
}

static void check_popf(void)
{
	/* every arithmetic flag and DF with IF off; some with IF on (DF off: a handler may run); none */
	static const uint64_t v[3] = {FL_FIXED | 0xcd5u, FL_FIXED | FL_IF | FL_OF | FL_ZF | FL_CF,
				      FL_FIXED};
	uint64_t got[3];
	int ok = 1;
	for (unsigned i = 0; i < 3; i++) {
		got[i] = popf_probe(v[i]);
		ok &= got[i] == (v[i] & FL_ARITH_DF_IF);
	}
	st_check("popf", ok, "all-if-off=0x%lx some-if-on=0x%lx none=0x%lx", got[0], got[1], got[2]);
}

/* hlt with interrupts on returns after an interrupt; the timer's moves the clock. */
static void check_hlt(void)
{
	uint64_t t0 = ticks;
	/* another interrupt (a NIC) may end a hlt first: a few tries */
	for (unsigned i = 0; i < 4 && ticks == t0; i++) {
		sti();
		hlt();
		cli();
	}
	uint64_t woke = ticks != t0;
	st_check("hlt", woke, "woke-by-tick=0x%lx", woke);
}

/* iretq to ring 0 through a frame built here; returns RFLAGS seen at the target. */
static uint64_t iret_probe(uint64_t rflags, int64_t *rsp_moved)
{
	uint64_t got, before, after;
	__asm__ volatile("movq %%rsp, %[before]\n\t"
			 "movq %%rsp, %%rax\n\t"
			 "pushq %[ss]\n\t"
			 "pushq %%rax\n\t"
			 "pushq %[fl]\n\t"
			 "pushq %[cs]\n\t"
			 "leaq 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "iretq\n"
			 "1:\n\t"
			 "pushfq\n\t"
			 "popq %[got]\n\t"
			 "cli\n\t"
			 "movq %%rsp, %[after]"
			 : [got] "=&r"(got), [before] "=&r"(before), [after] "=&r"(after)
			 : [fl] "r"(rflags), [ss] "i"(KERNEL_DS), [cs] "i"(KERNEL_CS)
			 : "rax", "cc", "memory");
	*rsp_moved = (int64_t)(after - before);
	return got;
}

static void check_iret(void)
{
	int64_t m1, m2;
	uint64_t on = iret_probe(FL_FIXED | FL_IF | FL_CF, &m1) & (FL_IF | FL_CF | FL_ZF);
	uint64_t off = iret_probe(FL_FIXED | FL_ZF, &m2) & (FL_IF | FL_CF | FL_ZF);
	st_check("iret", on == (FL_IF | FL_CF) && off == FL_ZF && !m1 && !m2,
		 "frame-if-on=0x%lx frame-if-off=0x%lx", on, off);
}

/* lretq and ljmp through a m16:32 pointer (code is below 4 GiB), each to a local label. */
static void check_far_xfer(void)
{
	uint16_t cs1, cs2;
	struct __attribute__((packed)) {
		uint32_t off;
		uint16_t sel;
	} target;
	__asm__ volatile("pushq %[cs]\n\t"
			 "leaq 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "lretq\n"
			 "1:\n\t"
			 "movw %%cs, %[out]"
			 : [out] "=r"(cs1)
			 : [cs] "i"(KERNEL_CS)
			 : "rax", "memory");
	__asm__ volatile("leaq 2f(%%rip), %%rax\n\t"
			 "movl %%eax, %[off]\n\t"
			 "movw %[cs], %[sel]\n\t"
			 "ljmpl *%[off]\n"
			 "2:\n\t"
			 "movw %%cs, %[out]"
			 : [out] "=r"(cs2), [off] "=m"(target.off), [sel] "=m"(target.sel)
			 : [cs] "i"(KERNEL_CS)
			 : "rax", "memory");
	st_check("far-xfer", cs1 == KERNEL_CS && cs2 == KERNEL_CS, "lretq-cs=0x%x ljmp-cs=0x%x", cs1,
		 cs2);
}

/* mov to ds/es/fs, push/pop fs, a null fs, and reads of every selector. */
static void check_segments(void)
{
	uint16_t ds, es, fs_null, fs, ss, cs;
	__asm__ volatile("movw %w[k], %%ds\n\t"
			 "movw %w[k], %%es\n\t"
			 "movw %w[k], %%fs\n\t"
			 "pushq %%fs\n\t"
			 "movw %w[z], %%fs\n\t"
			 "movw %%fs, %w[fsn]\n\t"
			 "popq %%fs\n\t"
			 "movw %%fs, %w[fs]\n\t"
			 "movw %%ds, %w[ds]\n\t"
			 "movw %%es, %w[es]\n\t"
			 "movw %%ss, %w[ss]\n\t"
			 "movw %%cs, %w[cs]"
			 : [ds] "=&r"(ds), [es] "=&r"(es), [fsn] "=&r"(fs_null), [fs] "=&r"(fs),
			   [ss] "=&r"(ss), [cs] "=&r"(cs)
			 : [k] "r"((uint32_t)KERNEL_DS), [z] "r"(0u)
			 : "memory");
	int ok = ds == KERNEL_DS && es == KERNEL_DS && fs_null == 0 && fs == KERNEL_DS &&
		 ss == KERNEL_DS && cs == KERNEL_CS;
	st_check("seg-load/seg-read", ok, "ds=0x%x es=0x%x fs-null=0x%x fs-popped=0x%x ss=0x%x cs=0x%x",
		 ds, es, fs_null, fs, ss, cs);
}

/* lfs: offset and selector from memory at once. */
static void check_far_load(void)
{
	struct __attribute__((packed)) {
		uint32_t off;
		uint16_t sel;
	} ptr = {0x12345678u, KERNEL_DS};
	uint32_t off;
	uint16_t fs;
	__asm__ volatile("movw %w[z], %%fs\n\t"
			 "lfsl %[p], %[off]\n\t"
			 "movw %%fs, %w[fs]"
			 : [off] "=&r"(off), [fs] "=&r"(fs)
			 : [p] "m"(ptr), [z] "r"(0u)
			 : "memory");
	st_check("far-load", off == ptr.off && fs == KERNEL_DS, "lfs-offset=0x%x fs=0x%x", off, fs);
}

static void check_cpuid(void)
{
	uint32_t a, b, c, d, a2, b2, c2, d2;
	char v[13];
	cpuid(0, &a, &b, &c, &d);
	cpuid(0, &a2, &b2, &c2, &d2);
	kmemcpy(v, &b, 4);
	kmemcpy(v + 4, &d, 4);
	kmemcpy(v + 8, &c, 4);
	v[12] = 0;
	int ok = a == a2 && b == b2 && c == c2 && d == d2 && a >= 1;
	for (unsigned i = 0; i < 12; i++)
		ok &= v[i] > ' ' && v[i] < 0x7f;
	st_check("cpuid", ok, "vendor=%s", ok ? v : "?");
}

static int cpuid_has(uint32_t leaf, int reg, unsigned bit)
{
	uint32_t r[4];
	cpuid(leaf & 0x80000000u, &r[0], &r[1], &r[2], &r[3]);
	if (r[0] < leaf)
		return 0;
	cpuid_sub(leaf, 0, &r[0], &r[1], &r[2], &r[3]);
	return r[reg] >> bit & 1;
}
#define R_EBX 1
#define R_ECX 2
#define R_EDX 3

static void check_tsc(void)
{
	uint64_t t0 = rdtsc(), t1 = rdtsc();
	for (volatile unsigned i = 0; i < 100; i++)
		;
	uint64_t t2 = rdtsc();
	uint64_t mono = t0 <= t1 && t1 <= t2 && t0 < t2;
	st_check("rdtsc", mono, "monotonic=0x%lx", mono);

	if (!cpuid_has(0x80000001u, R_EDX, 27)) {
		st_skip("rdtscp", "no RDTSCP in CPUID 0x80000001:EDX");
		return;
	}
	uint64_t saved = rdmsr(MSR_TSC_AUX);
	uint32_t aux;
	wrmsr(MSR_TSC_AUX, 0x5a);
	uint64_t a = rdtsc(), b = rdtscp(&aux), c = rdtsc();
	wrmsr(MSR_TSC_AUX, saved);
	mono = a <= b && b <= c;
	st_check("rdtscp", mono && aux == 0x5a, "aux=0x%x monotonic=0x%lx", aux, mono);
}

/* Kinds this kernel does not execute: no safe or deterministic form at CPL 0 here. */
static void check_unexecuted(void)
{
	st_skip("invd", "drops modified cache lines without writing them back");
	st_skip("sysexit", "returns to ring 3 through the SYSENTER MSRs; this 64-bit kernel leaves by sysret");
	st_skip("sysret", "returns to ring 3 only; every system call of the workload leaves by it");
	st_skip("monitor/mwait", "mwait can sleep with nothing armed to wake it");
	st_skip("rdpmc", "counter presence and values are host state, not deterministic");
}

void selftest_flags(void)
{
	check_cli_sti();
	check_pushf();
	check_popf();
	check_hlt();
	check_iret();
	check_far_xfer();
	check_segments();
	check_far_load();
	check_cpuid();
	check_tsc();
}

unsigned selftest_run(void)
{
	uint64_t f = irq_save();
	selftest_flags();
	selftest_system();
	selftest_io();
	dp83820_selftest();
	check_unexecuted();
	irq_restore(f);
	kprintf("selftest: %u ok, %u failed, %u skipped\n", n_ok, n_fail, n_skip);
	return n_fail;
}
