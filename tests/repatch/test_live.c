/* test_live.c: re-patch a running process native -> trap -> native and check the code still computes the same */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#include <cpuid.h>
#include <x86intrin.h>

#include "elfimage.h"
#include "repatch.h"
#include "../lib/tap.h"

/*
 * The table is read from this process's own memory (.pvsites is allocated),
 * as the in-guest runtime will read it; the ELF file only says where it is.
 * Under `trap` every site is a tagged ud2, and the SIGILL handler below plays
 * the part of a runtime: it emulates the site kind and resumes after it.
 */
uint32_t live_cpuid_ebx(uint32_t leaf);
unsigned long live_flags(void);
unsigned long live_flags_roundtrip(unsigned long set);
uint64_t live_rdtsc(void);

static volatile unsigned traps;

static void on_sigill(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	greg_t *g = uc->uc_mcontext.gregs;
	const uint8_t *ip = (const uint8_t *)g[REG_RIP];
	(void)sig, (void)si;
	if (ip[0] != 0x0f || ip[1] != 0x0b)
		_exit(99); /* a real ud2: not ours */
	switch (ip[2]) {
	case PVSITE_CPUID: {
		unsigned a, b, c, d;
		__cpuid_count((unsigned)g[REG_RAX], (unsigned)g[REG_RCX], a, b, c, d);
		g[REG_RAX] = a, g[REG_RBX] = b, g[REG_RCX] = c, g[REG_RDX] = d;
		break;
	}
	case PVSITE_RDTSC: {
		uint64_t t = __rdtsc();
		g[REG_RAX] = (uint32_t)t, g[REG_RDX] = t >> 32;
		break;
	}
	case PVSITE_PUSHF:
		g[REG_RSP] -= 8;
		/* pushf stores the flags without RF and VM; the signal frame has RF set. */
		*(uint64_t *)g[REG_RSP] = (uint64_t)g[REG_EFL] & ~0x30000ull;
		break;
	case PVSITE_POPF: {
		/* What popf in ring 3 may change: CF PF AF ZF SF TF DF OF AC ID. */
		const uint64_t user = 0x254dd5;
		uint64_t f = *(uint64_t *)g[REG_RSP];
		g[REG_RSP] += 8;
		g[REG_EFL] = (greg_t)(((uint64_t)g[REG_EFL] & ~user) | (f & user));
		break;
	}
	default:
		_exit(98);
	}
	g[REG_RIP] += ip[5]; /* the tag carries the site length */
	traps++;
}

static uint8_t *map_self(void *ctx, uint64_t addr, size_t len, int write)
{
	(void)ctx, (void)len, (void)write;
	return (uint8_t *)(uintptr_t)addr;
}

static int text_writable(const struct elf_section *text, int on)
{
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t lo = text->addr & ~(uintptr_t)(pg - 1), hi = text->addr + text->size;
	return mprotect((void *)lo, hi - lo, PROT_READ | PROT_EXEC | (on ? PROT_WRITE : 0));
}

int main(void)
{
	struct elfimage img;
	char why[200];
	struct repatch_err err;
	const struct elf_section *text = NULL;

	CHECK(elfimage_load(&img, "/proc/self/exe", why, sizeof(why)) == 0, "load: %s", why);
	CHECK(img.pvsites != NULL, "this test is built with pvcc: it has a table");
	for (size_t i = 0; i < img.nsections; i++)
		if (!strcmp(img.sections[i].name, ".text"))
			text = &img.sections[i];
	if (!img.pvsites || !text)
		return tap_done("test_live");

	const void *table = (const void *)(uintptr_t)img.pvsites->addr; /* live memory */
	long n = pvsites_count(table, img.pvsites->size, &err);
	struct pvsite sites[64];
	CHECK(n == 6, "six sites in live_sites.c, found %ld: %s", n, err.msg);
	n = pvsites_decode(table, img.pvsites->size, img.pvsites->addr, sites, 64, &err);
	CHECK(n >= 6, "decode: %s", err.msg);

	uint32_t ebx0 = live_cpuid_ebx(0);
	unsigned long fl = live_flags(), rt_ac = live_flags_roundtrip(0x40202 | 0x400);
	uint64_t t0 = live_rdtsc();
	uint8_t before[4096];
	size_t snap = text->size < sizeof(before) ? text->size : sizeof(before);
	memcpy(before, (void *)(uintptr_t)text->addr, snap);

	struct sigaction sa = {.sa_sigaction = on_sigill, .sa_flags = SA_SIGINFO};
	sigaction(SIGILL, &sa, NULL);
	const struct personality *nat = personality_find("native"), *trap = personality_find("trap");
	struct repatch_mem mem = {NULL, map_self};
	for (int round = 0; round < 3; round++) {
		CHECK(text_writable(text, 1) == 0, "mprotect");
		CHECK(repatch_rewrite(sites, (size_t)n, &mem, nat, trap, &err) == 0, "to trap: %s", err.msg);
		CHECK(text_writable(text, 0) == 0, "mprotect");
		for (long i = 0; i < n; i++)
			CHECK(repatch_classify(&sites[i], (const uint8_t *)(uintptr_t)sites[i].addr) == 1,
			      "site %ld is trap", i);
		unsigned t = traps;
		CHECK(live_cpuid_ebx(0) == ebx0, "cpuid under trap");
		/* Arithmetic flags depend on the caller; IF, DF, AC and bit 1 do not. */
		unsigned long f2 = live_flags();
		CHECK((f2 & 0x40602) == (fl & 0x40602), "pushf under trap: %#lx vs %#lx", f2, fl);
		CHECK(live_flags_roundtrip(0x40202 | 0x400) == rt_ac, "popf/pushf under trap");
		CHECK(live_rdtsc() > t0, "rdtsc under trap moves on");
		/* cpuid 1, live_flags 1 (pushf), roundtrip 3 (popf pushf popf), rdtsc 1 */
		CHECK(traps - t == 1 + 1 + 3 + 1, "every site trapped once: %u", traps - t);

		CHECK(text_writable(text, 1) == 0, "mprotect");
		CHECK(repatch_rewrite(sites, (size_t)n, &mem, trap, nat, &err) == 0, "to native: %s", err.msg);
		CHECK(text_writable(text, 0) == 0, "mprotect");
		CHECK(memcmp(before, (void *)(uintptr_t)text->addr, snap) == 0, "text restored bit-for-bit");
		t = traps;
		CHECK(live_cpuid_ebx(0) == ebx0 && live_flags_roundtrip(0x40202 | 0x400) == rt_ac,
		      "native again");
		CHECK(traps == t, "no traps under native");
	}
	elfimage_free(&img);
	return tap_done("test_live");
}
