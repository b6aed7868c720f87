/* rt_decode.c: the runtime's pure helpers: the site tables, the memory-operand decoder, the page walk, interrupt frames and gates */
#include "rt_cpu.h"

/*
 * Pure functions of memory: no hardware, no device side, so the host unit
 * test (tests/runtime/test_rt_decode.c) runs them as they are.  The
 * decoder handles exactly the instructions the runtime emulates (mmio
 * sites' movs, lidt, sidt) and refuses anything else by name; it runs once
 * per site at boot, so a site the runtime cannot emulate fails the boot.
 */

typedef uint32_t __attribute__((aligned(1), may_alias)) u32_una;
typedef uint16_t __attribute__((aligned(1), may_alias)) u16_una;

#define PTE_P	 0x1ull
#define PTE_PS	 0x80ull
#define PTE_ADDR 0x000ffffffffff000ull

struct pvsite rt_sites[RT_SITES_MAX];
size_t rt_nsites;

/* Frame slot of hardware register n: rax rcx rdx rbx rsp rbp rsi rdi r8..r15. */
static const uint8_t hw_slot[16] = {0, 2, 3, 1, 7, 6, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15};

uint64_t *rt_frame_reg(struct rt_frame *f, unsigned hw)
{
	return (uint64_t *)f + hw_slot[hw & 15];
}

static int bad(const char **why, const char *what)
{
	*why = what;
	return -1;
}

int rt_decode_memop(const uint8_t *p, unsigned n, struct rt_memop *m, const char **why)
{
	unsigned i = 0, rex = 0, opsize16 = 0;

	*m = (struct rt_memop){0};
	for (;; i++) {
		if (i >= n)
			return bad(why, "instruction truncated");
		uint8_t b = p[i];
		if (b == 0x66)
			opsize16 = 1;
		else if (b == 0x2e || b == 0x3e || b == 0x26 || b == 0x36)
			; /* no effect in 64-bit mode */
		else if (b == 0x64 || b == 0x65)
			return bad(why, "fs/gs-relative operand (not supported)");
		else if (b == 0x67)
			return bad(why, "32-bit address size (not supported)");
		else if (b == 0xf0 || b == 0xf2 || b == 0xf3)
			return bad(why, "lock/rep prefix on a memory site");
		else
			break;
	}
	if ((p[i] & 0xf0) == 0x40)
		rex = p[i++];
	if (i + 1 >= n)
		return bad(why, "instruction truncated");
	uint8_t op = p[i++];
	if (op == 0x0f) {
		if (p[i++] != 0x01)
			return bad(why, "not a mov, lidt or sidt");
		m->opcode = 0x01;
		m->size = 10;
	} else if (op == 0x88 || op == 0x89 || op == 0x8a || op == 0x8b || op == 0xc6 ||
		   op == 0xc7) {
		m->opcode = op;
		m->size = (op == 0x88 || op == 0x8a || op == 0xc6) ? 1 : (rex & 8) ? 8 : opsize16 ? 2 : 4;
	} else {
		return bad(why, "not a mov to or from memory (opcode not supported)");
	}
	if (i >= n)
		return bad(why, "instruction truncated");
	uint8_t modrm = p[i++];
	unsigned mod = modrm >> 6, reg = (modrm >> 3) & 7, rm = modrm & 7;
	if (mod == 3)
		return bad(why, "register operand where memory was expected");
	if (m->opcode == 0x01 && reg != 1 && reg != 3)
		return bad(why, "0f 01 form other than sidt/lidt");
	if ((op == 0xc6 || op == 0xc7) && reg != 0)
		return bad(why, "c6/c7 form other than mov immediate");
	m->reg = (uint8_t)(reg | (rex & 4 ? 8 : 0));
	m->hi8 = m->size == 1 && !rex && reg >= 4;

	unsigned disp = mod == 1 ? 1 : mod == 2 ? 4 : 0;
	m->base = m->index = RT_MEMOP_NONE;
	if (rm == 4) {
		if (i >= n)
			return bad(why, "instruction truncated");
		uint8_t sib = p[i++];
		unsigned idx = ((sib >> 3) & 7) | (rex & 2 ? 8 : 0);
		if (idx != 4) {
			m->index = (uint8_t)idx;
			m->scale = sib >> 6;
		}
		if ((sib & 7) == 5 && mod == 0)
			disp = 4; /* no base */
		else
			m->base = (uint8_t)((sib & 7) | (rex & 1 ? 8 : 0));
	} else if (rm == 5 && mod == 0) {
		m->base = RT_MEMOP_RIP;
		disp = 4;
	} else {
		m->base = (uint8_t)(rm | (rex & 1 ? 8 : 0));
	}
	if (i + disp > n)
		return bad(why, "instruction truncated");
	if (disp == 1)
		m->disp = (int8_t)p[i];
	else if (disp == 4)
		m->disp = (int32_t)*(const u32_una *)(p + i);
	i += disp;
	if (op == 0xc6 || op == 0xc7) {
		unsigned isz = op == 0xc6 ? 1 : opsize16 && !(rex & 8) ? 2 : 4;
		if (i + isz > n)
			return bad(why, "instruction truncated");
		m->imm = isz == 1 ? p[i] : isz == 2 ? *(const u16_una *)(p + i)
				  : (uint64_t)(int64_t)(int32_t)*(const u32_una *)(p + i);
		m->has_imm = 1;
		i += isz;
	}
	if (i != n)
		return bad(why, "bytes after the instruction");
	m->len = (uint8_t)i;
	return 0;
}

uint64_t rt_memop_ea(const struct rt_memop *m, const struct rt_frame *f, uint64_t next_rip)
{
	struct rt_frame *fr = (struct rt_frame *)f; /* rt_frame_reg only reads through it here */
	uint64_t ea = (uint64_t)(int64_t)m->disp;
	if (m->base == RT_MEMOP_RIP)
		ea += next_rip;
	else if (m->base != RT_MEMOP_NONE)
		ea += *rt_frame_reg(fr, m->base);
	if (m->index != RT_MEMOP_NONE)
		ea += *rt_frame_reg(fr, m->index) << m->scale;
	return ea;
}

struct rt_memsite rt_memsites[RT_MEMSITES_MAX];
size_t rt_nmemsites;

int rt_memsites_build(const char **why, uint64_t *where)
{
	rt_nmemsites = 0;
	for (size_t i = 0; i < rt_nsites; i++) {
		const struct pvsite *s = &rt_sites[i];
		struct rt_memsite *ms = &rt_memsites[rt_nmemsites];
		unsigned k = s->kind;
		if ((k != PVSITE_MMIO_READ && k != PVSITE_MMIO_WRITE && k != PVSITE_LIDT &&
		     k != PVSITE_SIDT) ||
		    (s->flags & PVSITE_F_CODE32))
			continue; /* .code32 sites keep their instruction */
		*where = s->addr;
		if (rt_nmemsites == RT_MEMSITES_MAX)
			return bad(why, "more memory-operand sites than the runtime's limit (1024)");
		if (rt_decode_memop(s->orig, s->orig_len, &ms->m, why) < 0)
			return -1;
		int is_store = ms->m.opcode == 0x88 || ms->m.opcode == 0x89 || ms->m.opcode >= 0xc6;
		if ((k == PVSITE_MMIO_READ && (ms->m.opcode == 0x01 || is_store)) ||
		    (k == PVSITE_MMIO_WRITE && (ms->m.opcode == 0x01 || !is_store)) ||
		    (k == PVSITE_LIDT && (ms->m.opcode != 0x01 || ms->m.reg != 3)) ||
		    (k == PVSITE_SIDT && (ms->m.opcode != 0x01 || ms->m.reg != 1)))
			return bad(why, "the instruction does not match the site's kind");
		ms->addr = s->addr;
		ms->end = s->addr + s->orig_len;
		ms->kind = (uint8_t)k;
		rt_nmemsites++;
	}
	return 0;
}

int rt_walk(uint64_t cr3, uint64_t va, uintptr_t phys_base, uint64_t ram_size, uint64_t *gpa)
{
	uint64_t e = cr3;
	unsigned shift = 39;

	if ((uint64_t)((int64_t)(va << 16) >> 16) != va || ram_size < 8)
		return -1;
	for (;;) {
		uint64_t at = (e & PTE_ADDR) + ((va >> shift) & 511) * 8;
		if (at > ram_size - 8)
			return -1;
		e = *(const volatile uint64_t *)(phys_base + (uintptr_t)at);
		if (!(e & PTE_P))
			return -1;
		/* a leaf: the PTE, or PS in a PDPTE (1 GiB) or PDE (2 MiB) */
		if (shift == 12 || (shift != 39 && (e & PTE_PS))) {
			uint64_t in_page = (1ull << shift) - 1;
			*gpa = (e & PTE_ADDR & ~in_page) | (va & in_page);
			return 0;
		}
		shift -= 9;
	}
}

uint64_t rt_push_intr_frame(uint64_t rsp, uint64_t rip, uint64_t cs, uint64_t rflags, uint64_t ss)
{
	uint64_t *p = (uint64_t *)(uintptr_t)((rsp & ~15ull) - 40);
	p[0] = rip;
	p[1] = cs;
	p[2] = rflags;
	p[3] = rsp;
	p[4] = ss;
	return (uint64_t)(uintptr_t)p;
}

void rt_gate_decode(const void *gate16, struct rt_gate *g)
{
	const uint64_t *q = gate16;
	uint64_t lo = q[0], hi = q[1];
	g->offset = (lo & 0xffff) | ((lo >> 32) & 0xffff0000ull) | (hi << 32);
	g->sel = (uint16_t)(lo >> 16);
	g->ist = (uint8_t)((lo >> 32) & 7);
	g->type = (uint8_t)((lo >> 40) & 0xf);
	g->dpl = (uint8_t)((lo >> 45) & 3);
	g->present = (uint8_t)((lo >> 47) & 1);
}

