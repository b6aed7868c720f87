/* test_rt_decode.c: host unit tests of the runtime's pure helpers (rt_decode.c): operand decoder, site checks at boot, page walk, interrupt frames, gates */
#include <string.h>

#include "../lib/tap.h"
#include "rt_cpu.h"

struct dcase {
	const char *name;
	uint8_t n, b[15];
	uint64_t ea;
	uint8_t size, reg, hi8, opcode;
	uint64_t imm;
};

static void test_decoder(void)
{
	struct rt_frame f = {0};
	uint64_t next = 0x100000;
	f.rax = 0x1000;
	f.rdx = 3;
	f.rsp = 0x7000;
	f.r12 = 0x40;
	f.r13 = 0x9000;
	f.r15 = 0xa000;
	const struct dcase cases[] = {
		{"mov 0x10(%rax),%eax", 3, {0x8b, 0x40, 0x10}, 0x1010, 4, 0, 0, 0x8b, 0},
		{"mov %edx,(%rax)", 2, {0x89, 0x10}, 0x1000, 4, 2, 0, 0x89, 0},
		{"mov %rbx,(%rax,%rdx,8)", 4, {0x48, 0x89, 0x1c, 0xd0}, 0x1018, 8, 3, 0, 0x89, 0},
		{"mov (%r15),%rdx", 3, {0x49, 0x8b, 0x17}, 0xa000, 8, 2, 0, 0x8b, 0},
		{"mov %ah,4(%rax)", 3, {0x88, 0x60, 0x04}, 0x1004, 1, 4, 1, 0x88, 0},
		{"mov %sil,4(%rax)", 4, {0x40, 0x88, 0x70, 0x04}, 0x1004, 1, 6, 0, 0x88, 0},
		{"movw %dx,8(%rax)", 4, {0x66, 0x89, 0x50, 0x08}, 0x1008, 2, 2, 0, 0x89, 0},
		{"mov %r8d,8(%rsp)", 5, {0x44, 0x89, 0x44, 0x24, 0x08}, 0x7008, 4, 8, 0, 0x89, 0},
		{"mov 0x10(%rip),%eax", 6, {0x8b, 0x05, 0x10, 0, 0, 0}, 0x100010, 4, 0, 0, 0x8b, 0},
		{"movl $0x12345678,4(%rax)", 7, {0xc7, 0x40, 0x04, 0x78, 0x56, 0x34, 0x12}, 0x1004, 4,
		 0, 0, 0xc7, 0x12345678},
		{"movq $-1,(%rax)", 7, {0x48, 0xc7, 0x00, 0xff, 0xff, 0xff, 0xff}, 0x1000, 8, 0, 0,
		 0xc7, ~0ull},
		{"movb $7,-1(%rax)", 4, {0xc6, 0x40, 0xff, 0x07}, 0xfff, 1, 0, 0, 0xc6, 7},
		{"mov 0x1000,%eax", 7, {0x8b, 0x04, 0x25, 0x00, 0x10, 0, 0}, 0x1000, 4, 0, 0, 0x8b, 0},
		{"mov 0(%r13),%eax", 4, {0x41, 0x8b, 0x45, 0x00}, 0x9000, 4, 0, 0, 0x8b, 0},
		{"mov (%rax,%r12,4),%eax", 4, {0x42, 0x8b, 0x04, 0xa0}, 0x1100, 4, 0, 0, 0x8b, 0},
		{"mov -0x100(%rax),%r9", 7, {0x4c, 0x8b, 0x88, 0x00, 0xff, 0xff, 0xff}, 0xf00, 8, 9, 0,
		 0x8b, 0},
		{"lidt 0x16(%rsp)", 5, {0x0f, 0x01, 0x5c, 0x24, 0x16}, 0x7016, 10, 3, 0, 0x01, 0},
		{"sidt (%rax)", 3, {0x0f, 0x01, 0x08}, 0x1000, 10, 1, 0, 0x01, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct dcase *c = &cases[i];
		struct rt_memop m;
		const char *why = NULL;
		int rc = rt_decode_memop(c->b, c->n, &m, &why);
		CHECK(rc == 0, "%s: refused (%s)", c->name, why ? why : "?");
		if (rc)
			continue;
		uint64_t ea = rt_memop_ea(&m, &f, next);
		CHECK(ea == c->ea, "%s: ea 0x%llx", c->name, (unsigned long long)ea);
		CHECK(m.size == c->size && m.reg == c->reg && m.hi8 == c->hi8 &&
			      m.opcode == c->opcode && m.len == c->n,
		      "%s: size %u reg %u hi8 %u opcode %02x len %u", c->name, m.size, m.reg, m.hi8,
		      m.opcode, m.len);
		CHECK(m.imm == c->imm, "%s: imm 0x%llx", c->name, (unsigned long long)m.imm);
	}
	const struct {
		const char *name;
		uint8_t n, b[15];
	} refused[] = {
		{"gs-relative", 3, {0x65, 0x8b, 0x00}},
		{"addr32", 3, {0x67, 0x8b, 0x00}},
		{"register operand", 2, {0x8b, 0xc0}},
		{"movzx", 3, {0x0f, 0xb6, 0x00}},
		{"truncated disp32", 4, {0x8b, 0x80, 0x00, 0x00}},
		{"trailing byte", 3, {0x89, 0x10, 0x90}},
		{"lgdt is not lidt", 3, {0x0f, 0x01, 0x10}},
		{"lock", 3, {0xf0, 0x89, 0x10}},
		{"empty", 0, {0}},
	};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		struct rt_memop m;
		const char *why = NULL;
		CHECK(rt_decode_memop(refused[i].b, refused[i].n, &m, &why) == -1 && why,
		      "%s: accepted", refused[i].name);
	}
}

static void test_walk(void)
{
	static uint64_t ram[8 * 512] __attribute__((aligned(4096)));
	uintptr_t base = (uintptr_t)ram;
	uint64_t *pml4 = ram, *pdpt = ram + 512, *pd = ram + 1024, *pt = ram + 1536, gpa;
	uint64_t ram_size = sizeof ram;

	memset(ram, 0, sizeof ram);
	pml4[0] = 0x1000 | 3;
	pdpt[0] = 0x2000 | 3;
	pdpt[1] = 0x40000000ull | 0x83; /* 1 GiB page at 1 GiB */
	pdpt[2] = 0x2000 | 3;
	pd[0] = 0x200000 | 0x83;	/* 2 MiB page */
	pd[1] = 0x3000 | 3;		/* -> PT */
	pt[5] = 0xfebf0000ull | 0x1b;	/* 4 KiB, PCD|PWT */
	pml4[511] = 0x7000 | 3;		/* outside RAM? no: 0x7000 < 32 KiB, but empty */

	CHECK(rt_walk(0x0, 0x123456, base, ram_size, &gpa) == 0 && gpa == 0x323456,
	      "2M page: 0x%llx", (unsigned long long)gpa);
	CHECK(rt_walk(0x0, 0x205abc, base, ram_size, &gpa) == 0 && gpa == 0xfebf0abc,
	      "4K page: 0x%llx", (unsigned long long)gpa);
	CHECK(rt_walk(0x0, 0x40000000ull + 0x12345678, base, ram_size, &gpa) == 0 &&
		      gpa == 0x52345678,
	      "1G page: 0x%llx", (unsigned long long)gpa);
	CHECK(rt_walk(0x0, 0x80000000ull + 0x205abc, base, ram_size, &gpa) == 0 &&
		      gpa == 0xfebf0abc,
	      "second PDPT entry to the same PD: 0x%llx", (unsigned long long)gpa);
	CHECK(rt_walk(0x0, 0x204000, base, ram_size, &gpa) == -1, "PTE not present");
	CHECK(rt_walk(0x0, 0xc0000000ull, base, ram_size, &gpa) == -1, "PDPTE not present");
	CHECK(rt_walk(0x0, 0xffffff8000000000ull, base, ram_size, &gpa) == -1,
	      "an empty table at the top");
	CHECK(rt_walk(0x0, 0x0000800000000000ull, base, ram_size, &gpa) == -1, "non-canonical");
	pd[2] = 0x100000 | 3; /* a table outside RAM */
	CHECK(rt_walk(0x0, 0x400000, base, ram_size, &gpa) == -1, "table outside RAM refused");
	CHECK(rt_walk(0x100000, 0x400000, base, ram_size, &gpa) == -1, "CR3 outside RAM refused");
}

static void test_frames(void)
{
	static uint64_t stack[64] __attribute__((aligned(16)));
	uint64_t rsp = (uint64_t)(uintptr_t)&stack[40] + 8; /* 8 mod 16 */
	uint64_t n = rt_push_intr_frame(rsp, 0x1234, 0x08, 0x246, 0x10);
	const uint64_t *q = (const uint64_t *)(uintptr_t)n;
	CHECK(n == ((rsp & ~15ull) - 40), "frame at 0x%llx", (unsigned long long)n);
	CHECK(q[0] == 0x1234 && q[1] == 0x08 && q[2] == 0x246 && q[3] == rsp && q[4] == 0x10,
	      "frame contents");
	struct rt_gate g;
	uint64_t gate[2], h = 0xffffffff81234567ull;
	gate[0] = (h & 0xffff) | 0x08ull << 16 | 2ull << 32 | 0x8full << 40 | (h & 0xffff0000ull) << 32;
	gate[1] = h >> 32;
	rt_gate_decode(gate, &g);
	CHECK(g.offset == 0xffffffff81234567ull && g.sel == 0x08 && g.ist == 2 && g.type == 0xf &&
		      g.present && g.dpl == 0,
	      "gate decode: offset 0x%llx sel %u ist %u type %u", (unsigned long long)g.offset,
	      g.sel, g.ist, g.type);
}

/* Boot-time checks of the memory sites: kinds must match their instructions. */
static void test_memsites(void)
{
	const char *why = NULL;
	uint64_t where = 0;
	struct pvsite *s = rt_sites;

	memset(rt_sites, 0, 3 * sizeof *rt_sites);
	s[0] = (struct pvsite){.addr = 0x1000, .kind = PVSITE_MMIO_READ, .len = 32, .orig_len = 3,
			       .orig = {0x8b, 0x40, 0x10}};
	s[1] = (struct pvsite){.addr = 0x1020, .kind = PVSITE_CLI, .len = 16, .orig_len = 1,
			       .orig = {0xfa}};
	s[2] = (struct pvsite){.addr = 0x1040, .kind = PVSITE_LIDT, .len = 24, .orig_len = 7,
			       .flags = PVSITE_F_CODE32, .orig = {0x0f, 0x01, 0x1d, 0, 0x10, 0, 0}};
	rt_nsites = 3;
	CHECK(rt_memsites_build(&why, &where) == 0 && rt_nmemsites == 1 && rt_memsites[0].end == 0x1003,
	      "only 64-bit memory kinds are decoded");
	s[0].kind = PVSITE_MMIO_WRITE; /* a load in a store's site */
	CHECK(rt_memsites_build(&why, &where) == -1 && where == 0x1000 && strstr(why, "kind"),
	      "a kind that does not match its instruction fails the boot");
	s[0].orig[0] = 0x0f, s[0].orig[1] = 0xb6; /* movzx */
	CHECK(rt_memsites_build(&why, &where) == -1 && strstr(why, "not a mov"), "movzx refused: %s", why);
	rt_nsites = 0;
	rt_nmemsites = 0;
}

int main(void)
{
	test_decoder();
	test_memsites();
	test_walk();
	test_frames();
	return tap_done("test_rt_decode");
}
