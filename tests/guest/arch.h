/* arch.h: the guest's inline assembly helpers: every sensitive x86-64 instruction it uses, one helper each */
#ifndef GUEST_ARCH_H
#define GUEST_ARCH_H

#include <stdint.h>

/*
 * Every helper is a plain instruction in inline asm, so the annotating
 * assembler sees each inlined copy and makes it a site.  (The self-test's
 * probes that need several instructions in one asm statement, such as an
 * iretq frame or a popf of DF, live in selftest*.c.)  Nothing here is
 * clever on purpose: the point of the guest is that these instructions
 * appear in ordinary compiler output, many times, in many functions.
 */

#define RFLAGS_IF 0x200u

static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" ::: "memory"); }

/* Spin-wait hint; not sensitive, but it tells a hypervisor or an SMT sibling we wait. */
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }

static inline uint64_t read_rflags(void)
{
	uint64_t f;
	__asm__ volatile("pushfq\n\tpopq %0" : "=r"(f)::"memory");
	return f;
}

/* Disable interrupts and return the previous RFLAGS for irq_restore(). */
static inline uint64_t irq_save(void)
{
	uint64_t f;
	__asm__ volatile("pushfq\n\tpopq %0\n\tcli" : "=r"(f)::"memory");
	return f;
}

/* Restore RFLAGS (and so IF) as irq_save() found it. */
static inline void irq_restore(uint64_t f)
{
	__asm__ volatile("pushq %0\n\tpopfq" ::"r"(f) : "memory", "cc");
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port));
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port));
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (uint64_t)hi << 32 | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
			 : "memory");
}

static inline uint64_t read_cr0(void)
{
	uint64_t v;
	__asm__ volatile("movq %%cr0, %0" : "=r"(v));
	return v;
}

static inline void write_cr0(uint64_t v) { __asm__ volatile("movq %0, %%cr0" ::"r"(v) : "memory"); }

static inline uint64_t read_cr2(void)
{
	uint64_t v;
	__asm__ volatile("movq %%cr2, %0" : "=r"(v));
	return v;
}

static inline uint64_t read_cr3(void)
{
	uint64_t v;
	__asm__ volatile("movq %%cr3, %0" : "=r"(v));
	return v;
}

static inline void write_cr3(uint64_t v) { __asm__ volatile("movq %0, %%cr3" ::"r"(v) : "memory"); }

static inline uint64_t read_cr4(void)
{
	uint64_t v;
	__asm__ volatile("movq %%cr4, %0" : "=r"(v));
	return v;
}

static inline void write_cr4(uint64_t v) { __asm__ volatile("movq %0, %%cr4" ::"r"(v) : "memory"); }

/* The operand of lgdt/lidt: a 16-bit limit and a 64-bit base, packed. */
struct __attribute__((packed)) desc_ptr {
	uint16_t limit;
	uint64_t base;
};

static inline void lgdt(const struct desc_ptr *p) { __asm__ volatile("lgdt %0" ::"m"(*p) : "memory"); }
static inline void lidt(const struct desc_ptr *p) { __asm__ volatile("lidt %0" ::"m"(*p) : "memory"); }
static inline void ltr(uint16_t sel) { __asm__ volatile("ltr %0" ::"r"(sel) : "memory"); }

static inline void sgdt(struct desc_ptr *p) { __asm__ volatile("sgdt %0" : "=m"(*p)); }
static inline void sidt(struct desc_ptr *p) { __asm__ volatile("sidt %0" : "=m"(*p)); }
static inline void lldt(uint16_t sel) { __asm__ volatile("lldt %0" ::"r"(sel) : "memory"); }

static inline uint16_t sldt(void)
{
	uint16_t sel;
	__asm__ volatile("sldt %0" : "=r"(sel));
	return sel;
}

static inline uint16_t str(void)
{
	uint16_t sel;
	__asm__ volatile("str %0" : "=r"(sel));
	return sel;
}

/*
 * Reload the data segment registers and CS after a new GDT: mov to %ds..%ss
 * and a far return (lretq), which a 64-bit kernel can use where it has no
 * far jump with an immediate selector.
 */
static inline void reload_segments(uint16_t cs, uint16_t ds)
{
	__asm__ volatile("movw %1, %%ds\n\t"
			 "movw %1, %%es\n\t"
			 "movw %1, %%ss\n\t"
			 "pushq %q0\n\t"
			 "leaq 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "lretq\n"
			 "1:"
			 :
			 : "r"((uint64_t)cs), "r"(ds)
			 : "rax", "memory");
}

static inline uint16_t read_cs(void)
{
	uint16_t v;
	__asm__ volatile("movw %%cs, %0" : "=r"(v));
	return v;
}

static inline void invlpg(const void *va) { __asm__ volatile("invlpg (%0)" ::"r"(va) : "memory"); }

/* INVPCID type 2: every PCID, global pages included (no PCID needed in CR4). */
static inline void invpcid_all(void)
{
	struct { uint64_t pcid, addr; } desc = {0, 0};
	__asm__ volatile("invpcid %0, %1" ::"m"(desc), "r"(2ull) : "memory");
}

static inline void wbinvd(void) { __asm__ volatile("wbinvd" ::: "memory"); }

/* The machine status word: CR0's low 16 bits (smsw reads, lmsw sets PE MP EM TS, clts clears TS). */
static inline uint16_t smsw(void)
{
	uint16_t v;
	__asm__ volatile("smsw %0" : "=r"(v));
	return v;
}

static inline void lmsw(uint16_t v) { __asm__ volatile("lmsw %0" ::"r"(v) : "memory"); }
static inline void clts(void) { __asm__ volatile("clts" ::: "memory"); }

static inline uint64_t read_dr0(void)
{
	uint64_t v;
	__asm__ volatile("movq %%dr0, %0" : "=r"(v));
	return v;
}

static inline void write_dr0(uint64_t v) { __asm__ volatile("movq %0, %%dr0" ::"r"(v)); }

static inline uint64_t read_dr7(void)
{
	uint64_t v;
	__asm__ volatile("movq %%dr7, %0" : "=r"(v));
	return v;
}

static inline void write_dr7(uint64_t v) { __asm__ volatile("movq %0, %%dr7" ::"r"(v)); }

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/* rdtscp: the TSC and IA32_TSC_AUX (in *aux). */
static inline uint64_t rdtscp(uint32_t *aux)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(*aux));
	return (uint64_t)hi << 32 | lo;
}

static inline void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

static inline void cpuid_sub(uint32_t leaf, uint32_t sub, uint32_t *a, uint32_t *b, uint32_t *c,
			     uint32_t *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}

static inline void swapgs(void) { __asm__ volatile("swapgs" ::: "memory"); }

/* XCR0 and friends (needs CR4.OSXSAVE). */
static inline void xsetbv(uint32_t xcr, uint64_t v)
{
	__asm__ volatile("xsetbv" ::"c"(xcr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

/* MSRs the guest programs. */
#define MSR_EFER	   0xc0000080u
#define MSR_STAR	   0xc0000081u
#define MSR_LSTAR	   0xc0000082u
#define MSR_SFMASK	   0xc0000084u
#define MSR_GS_BASE	   0xc0000101u
#define MSR_KERNEL_GS_BASE 0xc0000102u
#define EFER_SCE	   0x001u
#define EFER_LME	   0x100u
#define EFER_LMA	   0x400u
#define MSR_TSC_AUX	   0xc0000103u

#define CR0_PE	   0x00000001u
#define CR0_TS	   0x00000008u
#define CR0_PG	   0x80000000u
#define CR4_TSD	   0x00000004u
#define CR4_PAE	   0x00000020u
#define CR4_OSXSAVE 0x00040000u

#endif
