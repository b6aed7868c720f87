/* live_sites.c: user-mode code with sensitive instructions, built with pvcc for test_live */
#include <stdint.h>

uint32_t live_cpuid_ebx(uint32_t leaf);
unsigned long live_flags(void);
unsigned long live_flags_roundtrip(unsigned long set);
uint64_t live_rdtsc(void);

uint32_t live_cpuid_ebx(uint32_t leaf)
{
	uint32_t a = leaf, b, c = 0, d;
	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
	return b;
}

unsigned long live_flags(void)
{
	unsigned long f;
	__asm__ volatile("pushfq; popq %0" : "=r"(f));
	return f;
}

/* popf the given bits in, pushf them back out: the CPU (or emulation) filters them. */
unsigned long live_flags_roundtrip(unsigned long set)
{
	unsigned long f;
	__asm__ volatile("pushq %1; popfq; pushfq; popq %0; pushq $0x202; popfq"
			 : "=r"(f) : "r"(set) : "cc");
	return f;
}

uint64_t live_rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}
