/* cpu.c: corpus: control and debug registers, MSRs, TLB and cache control, cpuid and timestamps */
#include "corpus.h"

unsigned long read_cr0(void) { unsigned long v; __asm__ volatile("mov %%cr0,%0" : "=r"(v)); return v; }
unsigned long read_cr2(void) { unsigned long v; __asm__ volatile("mov %%cr2,%0" : "=r"(v)); return v; }
unsigned long read_cr3(void) { unsigned long v; __asm__ volatile("movq %%cr3,%0" : "=r"(v)); return v; }
unsigned long read_cr4(void) { unsigned long v; __asm__ volatile("mov %%cr4,%0" : "=r"(v)); return v; }
unsigned long read_cr8(void) { unsigned long v; __asm__ volatile("mov %%cr8,%0" : "=r"(v)); return v; }
void write_cr0(unsigned long v) { __asm__ volatile("mov %0,%%cr0" : : "r"(v) : "memory"); }
void write_cr3(unsigned long v) { __asm__ volatile("movq %0,%%cr3" : : "r"(v) : "memory"); }
void write_cr4(unsigned long v) { __asm__ volatile("mov %0,%%cr4" : : "r"(v) : "memory"); }
/* A high register forces a REX prefix into the site. */
void write_cr3_r12(unsigned long v)
{
	register unsigned long r12 __asm__("r12") = v;
	__asm__ volatile("mov %0,%%cr3" : : "r"(r12) : "memory");
}

unsigned long read_dr7(void) { unsigned long v; __asm__ volatile("mov %%db7,%0" : "=r"(v)); return v; }
void write_dr7(unsigned long v) { __asm__ volatile("mov %0,%%db7" : : "r"(v)); }
void write_dr0(unsigned long v) { __asm__ volatile("mov %0,%%dr0" : : "r"(v)); }

uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

uint64_t rdtscp(uint32_t *aux)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(*aux));
	return ((uint64_t)hi << 32) | lo;
}

uint64_t rdpmc(uint32_t counter)
{
	uint32_t lo, hi;
	__asm__ volatile("rdpmc" : "=a"(lo), "=d"(hi) : "c"(counter));
	return ((uint64_t)hi << 32) | lo;
}

void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "0"(leaf), "2"(0));
}

void xsetbv(uint32_t idx, uint64_t v)
{
	__asm__ volatile("xsetbv" : : "c"(idx), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

void invlpg(unsigned long addr) { __asm__ volatile("invlpg (%0)" : : "r"(addr) : "memory"); }

void invpcid(unsigned long type, unsigned long pcid, unsigned long addr)
{
	struct { uint64_t d[2]; } desc = {{pcid, addr}};
	__asm__ volatile("invpcid %0, %1" : : "m"(desc), "r"(type) : "memory");
}

void wbinvd(void) { __asm__ volatile("wbinvd" : : : "memory"); }
void invd(void) { __asm__ volatile("invd" : : : "memory"); }
void clts(void) { __asm__ volatile("clts"); }
unsigned long smsw(void) { unsigned long v; __asm__ volatile("smsw %0" : "=r"(v)); return v; }
void lmsw(unsigned short v) { __asm__ volatile("lmsw %0" : : "r"(v)); }

void mwait_idle(const void *addr)
{
	__asm__ volatile("monitor" : : "a"(addr), "c"(0), "d"(0));
	__asm__ volatile("mwait" : : "a"(0), "c"(0));
}
