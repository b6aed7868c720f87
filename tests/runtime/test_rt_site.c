/* test_rt_site.c: host unit tests of the runtime's site dispatcher and upcall (rt_site.c) against fakes of the hardware and the device side */
#include <setjmp.h>
#include <string.h>
#include <sys/mman.h>

#include "../lib/tap.h"
#include "rt_cpu.h"

/*
 * rt_site.c only touches memory and calls the hardware helpers of
 * rt_cpu.c and the device side, so it runs here against fakes of both.
 * "Guest memory" is one mapping at a fixed low address (GUEST), so that a
 * site's `call rel32` reaches RT_ENTRY_SITE as in a real guest and page
 * tables can sit at their "physical" address (the runtime reads guest RAM
 * identity mapped).
 */
#define GUEST	   0x20000000ull
#define GUEST_SIZE 0x400000ull
#define CODE	   (GUEST + 0x1000)
#define HANDLER	   (GUEST + 0x8000)
#define STACK_TOP  (GUEST + 0x20000)
#define IDT	   (GUEST + 0x30000)
#define PT	   (GUEST + 0x40000) /* PML4, PDPT, PD, PT: 4 pages */
#define DESC	   (GUEST + 0x50000)
#define MMIO_VA	   0x80000000ull
#define MMIO_GPA   0xfebf0000ull
#define KCS	   0x08
#define KSS	   0x10

static uint8_t *gmem(uint64_t a) { return (uint8_t *)(uintptr_t)a; }
static uint64_t *gq(uint64_t a) { return (uint64_t *)(uintptr_t)a; }

/* ---- fakes of rt_cpu.c */

static struct rt_cpu_state states[RT_MAX_CPUS];
static struct rt_shared shared;
static unsigned fake_cpu;
static jmp_buf jb;
static char fatal_msg[256];
static uint64_t fake_cr3;
static unsigned idle_waits, idle_parked_seen;
static void (*idle_action)(void);
static uint64_t idt_loaded_base;
static uint16_t idt_loaded_limit;
static unsigned hw_out_port, hw_out_size, hw_outs_count;
static uint32_t hw_out_val;
static uint64_t hw_load_va, hw_store_va, hw_store_val;
int rt_dev_ready;

unsigned rt_frame_cpu(const struct rt_frame *f) { return fake_cpu; }
struct rt_cpu_state *rt_cpu_state(unsigned cpu) { return &states[cpu]; }
unsigned rt_cpu_id(void) { return fake_cpu; }
void rt_idt_init(unsigned cpu) {}
void rt_idt_load(unsigned cpu, uint64_t base, uint16_t limit)
{
	idt_loaded_base = base;
	idt_loaded_limit = limit;
}
uint32_t rt_hw_in(unsigned port, unsigned size) { return 0xdeadbeef; }
void rt_hw_out(unsigned port, unsigned size, uint32_t val)
{
	hw_out_port = port;
	hw_out_size = size;
	hw_out_val = val;
}
void rt_hw_ins(unsigned port, unsigned size, uint64_t *addr, uint64_t count, int df)
{
	hw_outs_count = (unsigned)count;
	*addr += df ? -(count * size) : count * size;
}
void rt_hw_outs(unsigned port, unsigned size, uint64_t *addr, uint64_t count, int df)
{
	hw_out_port = port;
	hw_outs_count = (unsigned)count;
	*addr += df ? -(count * size) : count * size;
}
uint64_t rt_hw_load(uint64_t va, unsigned size)
{
	hw_load_va = va;
	return 0x5555555555555555ull;
}
void rt_hw_store(uint64_t va, unsigned size, uint64_t val)
{
	hw_store_va = va;
	hw_store_val = val;
}
uint64_t rt_hw_cr3(void) { return fake_cr3; }
uint16_t rt_hw_cs(void) { return KCS; }
uint16_t rt_hw_ss(void) { return KSS; }
void rt_hw_snapshot(struct rt_cpu_state *st) { st->cr3 = fake_cr3; }
void rt_hw_idle_wait(unsigned cpu)
{
	idle_waits++;
	idle_parked_seen = states[cpu].parked;
	if (idle_action)
		idle_action();
}
void rt_hw_halt_down(void) { longjmp(jb, 2); }
void rt_fatal(const char *msg, uint64_t value)
{
	snprintf(fatal_msg, sizeof fatal_msg, "%s0x%llx", msg, (unsigned long long)value);
	longjmp(jb, 1);
}

/* ---- fakes of the device side: ports 0x20/0x21 and one MMIO page are the runtime's */

static int fake_pending;
static uint8_t fake_vector = 0x20;
static unsigned polls, flushes, dev_writes, park_on_write;
static uint32_t dev_last_port, dev_last_val;
static uint64_t dev_last_gpa;

void rt_dev_init(void) {}
int rt_dev_pio(unsigned port, unsigned size, int is_write, uint32_t *val)
{
	if (port != 0x20 && port != 0x21)
		return 0;
	dev_last_port = port;
	if (is_write) {
		if (park_on_write) {
			shared.park_req = 1;
			park_on_write = 0;
		}
		dev_writes++;
		dev_last_val = *val;
	} else {
		*val = 0xa5;
	}
	return 1;
}
int rt_dev_mmio(uint64_t gpa, unsigned size, int is_write, uint64_t *val)
{
	if (gpa < MMIO_GPA || gpa >= MMIO_GPA + 0x1000)
		return 0;
	dev_last_gpa = gpa;
	if (is_write)
		dev_last_val = (uint32_t)*val;
	else
		*val = 0x11223344;
	return 1;
}
void rt_dev_poll(void) { polls++; }
int rt_dev_irq_pending(void) { return fake_pending; }
uint8_t rt_dev_irq_ack(void)
{
	fake_pending = 0;
	return fake_vector;
}
void rt_dev_flush(void) { flushes++; }
static unsigned serves;
void rt_dev_state_serve(void)
{
	serves++;
	shared.state_req = RT_STATE_REQ_NONE;
}
uint64_t rt_now_ns(void) { return 0; }

/* ---- helpers */

/* A kvm site at `at`: call RT_ENTRY_SITE, the six operand bytes, int3 fill. */
static void put_site(uint64_t at, unsigned kind, unsigned len, unsigned reg, unsigned aux,
		     unsigned width, unsigned flags)
{
	uint8_t *p = gmem(at);
	int32_t rel = (int32_t)(RT_ENTRY_SITE - (at + 5));
	memset(p, 0xcc, len);
	p[0] = 0xe8;
	memcpy(p + 1, &rel, 4);
	p[5] = (uint8_t)kind;
	p[6] = (uint8_t)len;
	p[7] = (uint8_t)reg;
	p[8] = (uint8_t)aux;
	p[9] = (uint8_t)width;
	p[10] = (uint8_t)flags;
}

/* The frame rt_entry.S builds for a call from the site at `at` with RSP `rsp`. */
static struct rt_frame frame_at(uint64_t at, uint64_t rsp)
{
	struct rt_frame f = {0};
	f.rip = at + 5;
	f.rsp = rsp;
	f.rflags = 0x46; /* ZF PF, real IF = 0 */
	return f;
}

static void set_gate(unsigned vec, uint64_t handler, unsigned type, unsigned ist)
{
	uint64_t *g = gq(IDT + vec * 16);
	g[0] = (handler & 0xffff) | (uint64_t)KCS << 16 | (uint64_t)ist << 32 |
	       (uint64_t)(0x80 | type) << 40 | (handler & 0xffff0000ull) << 32;
	g[1] = handler >> 32;
}

static void reset(void)
{
	memset(states, 0, sizeof states);
	memset(&shared, 0, sizeof shared);
	rt_sh = &shared;
	fake_cpu = 0;
	fake_pending = 0;
	polls = flushes = dev_writes = idle_waits = 0;
	idle_action = NULL;
	fatal_msg[0] = 0;
	for (unsigned c = 0; c < RT_MAX_CPUS; c++) {
		states[c].idt_base = IDT;
		states[c].idt_limit = 0xfff;
	}
}

/* Where the resume path will go: RIP and RFLAGS stored below the new RSP. */
static uint64_t resumed_rip(const struct rt_frame *f) { return gq(f->rsp)[1]; }
static uint64_t resumed_flags(const struct rt_frame *f) { return gq(f->rsp)[0]; }

/* ---- tests */

static int call(struct rt_frame *f, int *how)
{
	int r = setjmp(jb);
	if (r) {
		*how = r;
		return -1;
	}
	*how = 0;
	return rt_site_call(f);
}

/* cli, sti, pushf, popf on vIF; sti + pending delivers at the site's end; sti's shadow over hlt */
static void test_vif(void)
{
	struct rt_frame f;
	int how, rc;
	uint64_t sp = STACK_TOP - 0x100;

	reset();
	states[0].vif = 1;
	put_site(CODE, PVSITE_CLI, 16, PVSITES_NONE, 0, 0, 0);
	f = frame_at(CODE, sp);
	rc = call(&f, &how);
	CHECK(rc == RT_EXIT_RESUME && states[0].vif == 0, "cli: rc %d vif %u", rc, states[0].vif);
	CHECK(f.rsp == sp - 16 && resumed_rip(&f) == CODE + 16 && resumed_flags(&f) == 0x46,
	      "cli resumes at the site's end with the flags it had");

	/* pushf: real flags, IF = vIF */
	put_site(CODE, PVSITE_PUSHF, 16, PVSITES_NONE, 0, 8, 0);
	f = frame_at(CODE, sp);
	f.rflags = 0x87 | RF_IF; /* CF PF SF, called with the guest's IF on */
	rc = call(&f, &how);
	CHECK(rc == RT_EXIT_RESUME_STI && gq(sp)[-1] == (0x87 | RF_IF), "pushf pushed 0x%llx",
	      (unsigned long long)gq(sp)[-1]);
	CHECK(f.rsp == sp - 8 - 16 && resumed_rip(&f) == CODE + 16, "pushf moved RSP by 8");

	/* popf with IF clear: vIF off, other flags real, IF stays 0 */
	put_site(CODE, PVSITE_POPF, 32, PVSITES_NONE, 0, 8, 0);
	gq(sp)[0] = 0x8c5 | 0x400; /* CF PF ZF SF OF DF */
	f = frame_at(CODE, sp);
	rc = call(&f, &how);
	CHECK(states[0].vif == 0 && resumed_flags(&f) == (0x8c5 | 0x400 | 2) && f.rsp == sp + 8 - 16,
	      "popf: vif %u flags 0x%llx", states[0].vif, (unsigned long long)resumed_flags(&f));
	/* popf with IF set and an interrupt pending on CPU 0: delivered at the site's end */
	set_gate(0x20, HANDLER, 0xe, 0);
	gq(sp)[0] = 0x202;
	fake_pending = 1;
	f = frame_at(CODE, sp);
	rc = call(&f, &how);
	uint64_t ifr = ((sp + 8) & ~15ull) - 40; /* aligned down as the CPU does */
	CHECK(rc == RT_EXIT_RESUME && resumed_rip(&f) == HANDLER && f.rsp == ifr - 16,
	      "popf: delivered to the handler (rsp 0x%llx)", (unsigned long long)f.rsp);
	CHECK(gq(ifr)[0] == CODE + 32 && gq(ifr)[1] == KCS && (gq(ifr)[2] & RF_IF) &&
		      gq(ifr)[3] == sp + 8 && gq(ifr)[4] == KSS,
	      "interrupt frame: rip 0x%llx", (unsigned long long)gq(ifr)[0]);
	CHECK(states[0].vif == 0 && !(resumed_flags(&f) & RF_IF) && shared.deliveries == 1,
	      "interrupt gate clears vIF");

	/* the same on CPU 1: no delivery (the PIC signals CPU 0 only) */
	reset();
	fake_cpu = 1;
	fake_pending = 1;
	put_site(CODE, PVSITE_STI, 32, PVSITES_NONE, 0, 0, 0);
	f = frame_at(CODE, sp);
	rc = call(&f, &how);
	CHECK(rc == RT_EXIT_RESUME_STI && states[1].vif == 1 && resumed_rip(&f) == CODE + 32 &&
		      !(resumed_flags(&f) & RF_IF) && polls == 0,
	      "sti on CPU 1: leaves by sti; ret");

	/* sti; hlt with an interrupt pending: sti's shadow covers the hlt, so
	 * both run in one call and the interrupt ends the hlt */
	reset();
	set_gate(0x20, HANDLER, 0xe, 0);
	fake_pending = 1;
	put_site(CODE, PVSITE_STI, 32, PVSITES_NONE, 0, 0, 0);
	put_site(CODE + 32, PVSITE_HLT, 16, PVSITES_NONE, 0, 0, 0);
	f = frame_at(CODE, sp);
	rc = call(&f, &how);
	CHECK(rc == RT_EXIT_RESUME && resumed_rip(&f) == HANDLER && gq(f.rsp + 16)[0] == CODE + 48 &&
		      idle_waits == 0 && shared.kind_calls[PVSITE_HLT] == 1,
	      "sti; hlt delivers with RIP = the hlt site's end");
	/* sti followed by something else: no shadow games */
	reset();
	put_site(CODE + 32, PVSITE_CLI, 16, PVSITES_NONE, 0, 0, 0);
	f = frame_at(CODE, sp);
	rc = call(&f, &how);
	CHECK(rc == RT_EXIT_RESUME_STI && resumed_rip(&f) == CODE + 32, "sti alone");
}

/* An interrupt arrives while the CPU idles: the host's upcall wakes the hlt. */
static void raise_irq(void) { fake_pending = 1; }
static void set_down_guard(void) {}

static void test_hlt(void)
{
	struct rt_frame f;
	int how, rc;
	uint64_t sp = STACK_TOP - 0x200;

	reset();
	set_gate(0x20, HANDLER, 0xe, 0);
	idle_action = raise_irq;
	put_site(CODE, PVSITE_HLT, 16, PVSITES_NONE, 0, 0, 0);
	f = frame_at(CODE, sp);
	f.rflags |= RF_IF;
	f.rbx = 0xb0b;
	rc = call(&f, &how);
	CHECK(rc == RT_EXIT_RESUME && idle_waits == 1 && idle_parked_seen == RT_CPU_PARKED_IDLE,
	      "hlt idles parked (waits %u, parked %u)", idle_waits, idle_parked_seen);
	CHECK(states[0].rip == CODE + 16 && states[0].rbx == 0xb0b && states[0].rsp == sp &&
		      states[0].parked == RT_CPU_PARKED_NO && flushes == 1,
	      "idle park point published, then cleared");
	CHECK(resumed_rip(&f) == HANDLER, "woken hlt delivers");

	/* vIF = 0: the CPU goes offline */
	reset();
	(void)set_down_guard;
	f = frame_at(CODE, sp);
	rc = call(&f, &how);
	CHECK(rc == -1 && how == 2 && states[0].parked == RT_CPU_PARKED_DOWN &&
		      states[0].rip == CODE + 16,
	      "hlt with vIF 0 halts for good (how %d parked %u)", how, states[0].parked);
}

static void clear_park(void)
{
	shared.park_req = 0;
	states[0].rax = 0x77; /* the host rewrote a register while parked */
}

static void test_park(void)
{
	struct rt_frame f;
	int how, rc;
	uint64_t sp = STACK_TOP - 0x200;

	reset();
	states[0].online = 1;
	shared.park_req = 1;
	idle_action = clear_park;
	put_site(CODE, PVSITE_CLI, 16, PVSITES_NONE, 0, 0, 0);
	f = frame_at(CODE, sp);
	f.rax = 1;
	f.r15 = 0xf15;
	f.rflags |= RF_IF;
	rc = call(&f, &how);
	CHECK(rc == RT_EXIT_RESUME_STI && idle_parked_seen == RT_CPU_PARKED_REQ && idle_waits == 1,
	      "parked on request");
	/* asked before the site ran: the park point is the site, which runs
	 * afresh once let go (nothing of it happened: vif still 1) */
	CHECK(states[0].rip == CODE && states[0].r15 == 0xf15 && states[0].cr3 == fake_cr3 &&
		      states[0].parked == RT_CPU_PARKED_NO && states[0].vif == 1,
	      "park point: rip 0x%llx vif %u", (unsigned long long)states[0].rip, states[0].vif);
	CHECK(f.rax == 0x77 && resumed_rip(&f) == CODE, "registers reloaded from the state block");

	/* a CPU before its first lidt (not online): its block is no CPU model
	 * yet, so the site runs and it parks after it */
	reset();
	shared.park_req = 1;
	idle_action = clear_park;
	put_site(CODE, PVSITE_CLI, 16, PVSITES_NONE, 0, 0, 0);
	f = frame_at(CODE, sp);
	f.rflags |= RF_IF;
	rc = call(&f, &how);
	CHECK(rc == RT_EXIT_RESUME && states[0].rip == CODE + 16 && states[0].vif == 0 &&
		      resumed_rip(&f) == CODE + 16,
	      "not online: parked after the site (rip 0x%llx)", (unsigned long long)states[0].rip);

	/* asked while the site runs (the host sets it during the work): the
	 * park point is the site's end, after its effect */
	reset();
	states[0].online = 1;
	idle_action = clear_park;
	park_on_write = 1; /* the fake device asks the park during the out */
	put_site(CODE, PVSITE_OUT, 24, 0, 0x21, 1, PVSITE_F_IMM);
	f = frame_at(CODE, sp);
	rc = call(&f, &how);
	CHECK(rc == RT_EXIT_RESUME && idle_parked_seen == RT_CPU_PARKED_REQ &&
		      dev_writes == 1 && states[0].rip == CODE + 24 && resumed_rip(&f) == CODE + 24,
	      "a park asked during the site: park point rip 0x%llx", (unsigned long long)states[0].rip);

	/* iret parks at the site itself, before the frame is used */
	reset();
	states[0].online = 1;
	shared.park_req = 1;
	idle_action = clear_park;
	put_site(CODE, PVSITE_IRET, 16, PVSITES_NONE, 0, 8, 0);
	uint64_t *fr = gq(sp);
	fr[0] = 0x40001000; fr[1] = 0x2b; fr[2] = 0x202; fr[3] = 0x401ff000; fr[4] = 0x23;
	f = frame_at(CODE, sp);
	rc = call(&f, &how);
	CHECK(states[0].rip == CODE && states[0].rsp == sp && rc == RT_EXIT_RESUME &&
		      resumed_rip(&f) == CODE,
	      "iret park point is the site, run afresh (rip 0x%llx rc %d)",
	      (unsigned long long)states[0].rip, rc);
}

/* A device-state request is served by whichever CPU is in its park loop,
 * without waiting for the others: here CPU 1, while CPU 0 runs on
 * outside the runtime (it may spin on a guest lock CPU 1 holds). */
static void test_park_serves_state(void)
{
	struct rt_frame f;
	int how, rc;

	reset();
	serves = 0;
	fake_cpu = 1;
	states[0].online = states[1].online = 1;
	states[0].parked = RT_CPU_PARKED_NO;
	shared.park_req = 1;
	shared.state_req = RT_STATE_REQ_SAVE;
	idle_action = clear_park;
	put_site(CODE, PVSITE_OUT, 24, 0, 0x21, 1, PVSITE_F_IMM);
	f = frame_at(CODE, STACK_TOP - 0x200);
	rc = call(&f, &how);
	CHECK(rc == RT_EXIT_RESUME && serves == 1 && shared.state_req == RT_STATE_REQ_NONE &&
		      dev_writes == 0 && states[1].rip == CODE,
	      "CPU 1 serves the request at once, parked before its out (serves %u, writes %u)",
	      serves, dev_writes);
	fake_cpu = 0;
}

static void test_pio(void)
{
	struct rt_frame f;
	int how, rc;
	uint64_t sp = STACK_TOP - 0x200;

	reset();
	put_site(CODE, PVSITE_OUT, 24, 0, 0x21, 1, PVSITE_F_IMM);
	f = frame_at(CODE, sp);
	f.rax = 0x1234;
	rc = call(&f, &how);
	CHECK(rc == RT_EXIT_RESUME && dev_last_port == 0x21 && dev_last_val == 0x34 &&
		      shared.passthrough_io == 0,
	      "out imm8 to a runtime port");
	put_site(CODE, PVSITE_OUT, 24, 0, 0, 1, 0);
	f = frame_at(CODE, sp);
	f.rax = 0x1;
	f.rdx = 0x10501;
	rc = call(&f, &how);
	CHECK(hw_out_port == 0x501 && hw_out_size == 1 && hw_out_val == 1 && shared.passthrough_io == 1,
	      "out dx to the host's port is forwarded");
	put_site(CODE, PVSITE_IN, 24, 0, 0x20, 1, PVSITE_F_IMM);
	f = frame_at(CODE, sp);
	f.rax = 0xffffffffffffff00ull;
	rc = call(&f, &how);
	CHECK(f.rax == 0xffffffffffffffa5ull, "in al keeps the rest of rax: 0x%llx",
	      (unsigned long long)f.rax);
	put_site(CODE, PVSITE_IN, 24, 0, 0, 4, 0);
	f = frame_at(CODE, sp);
	f.rax = 0xffffffffffffffffull;
	f.rdx = 0xcfc;
	rc = call(&f, &how);
	CHECK(f.rax == 0xdeadbeef && shared.passthrough_io == 2, "in eax zero-extends: 0x%llx",
	      (unsigned long long)f.rax);

	/* rep outsb to a host port: one real rep outs */
	put_site(CODE, PVSITE_OUTS, 24, 0, 0, 1, PVSITE_F_REP);
	f = frame_at(CODE, sp);
	f.rdx = 0x3f8 + 0x100;
	f.rsi = DESC;
	f.rcx = 5;
	rc = call(&f, &how);
	CHECK(hw_outs_count == 5 && f.rcx == 0 && f.rsi == DESC + 5, "rep outsb forwarded");
	/* rep insb from a runtime port, backwards (DF = 1) */
	put_site(CODE, PVSITE_INS, 24, 0, 0, 1, PVSITE_F_REP);
	f = frame_at(CODE, sp);
	f.rflags |= RF_DF;
	f.rdx = 0x20;
	f.rdi = DESC + 10;
	f.rcx = 3;
	memset(gmem(DESC), 0, 16);
	rc = call(&f, &how);
	CHECK(f.rcx == 0 && f.rdi == DESC + 7 && gmem(DESC)[10] == 0xa5 && gmem(DESC)[8] == 0xa5 &&
		      gmem(DESC)[7] == 0,
	      "rep insb from the model, backwards");
	CHECK(resumed_flags(&f) & RF_DF, "DF kept");
}

/* Page tables at PT: va MMIO_VA -> MMIO_GPA (4 KiB), low 1 GiB identity (2 MiB pages). */
static void build_tables(void)
{
	uint64_t *pml4 = gq(PT), *pdpt = gq(PT + 0x1000), *pd = gq(PT + 0x2000), *pd2 = gq(PT + 0x3000),
		 *pt = gq(PT + 0x4000);
	memset(gmem(PT), 0, 0x5000);
	pml4[0] = (PT + 0x1000) | 3;
	pdpt[0] = (PT + 0x2000) | 3;
	for (unsigned i = 0; i < 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83;
	pdpt[2] = (PT + 0x3000) | 3;
	pd2[0] = (PT + 0x4000) | 3;
	pt[0] = MMIO_GPA | 0x1b;
	fake_cr3 = PT;
	rt_ram_size = GUEST + GUEST_SIZE;
}

static void add_record(unsigned kind, unsigned n, const uint8_t *orig)
{
	struct pvsite *s = &rt_sites[0];
	memset(s, 0, sizeof *s);
	s->addr = CODE;
	s->kind = (uint8_t)kind;
	s->len = 32;
	s->orig_len = (uint8_t)n;
	memcpy(s->orig, orig, n);
	rt_nsites = 1;
	put_site(CODE, kind, 32, 0, 4, 4, PVSITE_F_MEM | PVSITE_F_MANUAL);
	const char *why = NULL;
	uint64_t where = 0;
	CHECK(rt_memsites_build(&why, &where) == 0 && rt_nmemsites == 1, "memsites: %s",
	      why ? why : "?");
}

static void test_mmio(void)
{
	struct rt_frame f;
	int how, rc;
	uint64_t sp = STACK_TOP - 0x200;

	reset();
	build_tables();
	add_record(PVSITE_MMIO_READ, 3, (const uint8_t[]){0x8b, 0x40, 0x10}); /* mov 0x10(%rax),%eax */
	f = frame_at(CODE, sp);
	f.rax = MMIO_VA;
	rc = call(&f, &how);
	CHECK(rc == RT_EXIT_RESUME && dev_last_gpa == MMIO_GPA + 0x10 && f.rax == 0x11223344,
	      "mmio read by the model: gpa 0x%llx rax 0x%llx (%s)", (unsigned long long)dev_last_gpa,
	      (unsigned long long)f.rax, fatal_msg);
	CHECK(resumed_rip(&f) == CODE + 32, "mmio resumes at the site's end");

	add_record(PVSITE_MMIO_WRITE, 3, (const uint8_t[]){0x89, 0x50, 0x28}); /* mov %edx,0x28(%rax) */
	f = frame_at(CODE, sp);
	f.rax = MMIO_VA;
	f.rdx = 0xaaaaaaaa00c0ffeeull;
	rc = call(&f, &how);
	CHECK(dev_last_gpa == MMIO_GPA + 0x28 && dev_last_val == 0x00c0ffee, "mmio write by the model");

	/* an address that is RAM, not the model's: the real load at the virtual address */
	add_record(PVSITE_MMIO_READ, 3, (const uint8_t[]){0x8b, 0x40, 0x10});
	f = frame_at(CODE, sp);
	f.rax = 0x100000;
	rc = call(&f, &how);
	CHECK(hw_load_va == 0x100010 && f.rax == 0x55555555, "not ours: real load (rax 0x%llx)",
	      (unsigned long long)f.rax);

	/* unmapped: a clear failure */
	f = frame_at(CODE, sp);
	f.rax = 0xc0000000ull;
	rc = call(&f, &how);
	CHECK(rc == -1 && how == 1 && strstr(fatal_msg, "not mapped"), "unmapped mmio: %s", fatal_msg);

	/* a site the table does not know */
	rt_nmemsites = 0;
	f = frame_at(CODE, sp);
	rc = call(&f, &how);
	CHECK(rc == -1 && strstr(fatal_msg, "not in the decoded table"), "unknown site: %s", fatal_msg);
}

static void test_idtr(void)
{
	struct rt_frame f;
	int how, rc;
	uint64_t sp = STACK_TOP - 0x200;

	reset();
	rt_ram_size = GUEST + GUEST_SIZE;
	add_record(PVSITE_LIDT, 5, (const uint8_t[]){0x0f, 0x01, 0x5c, 0x24, 0x16});
	uint8_t *d = gmem(sp + 0x16);
	uint16_t lim = 0x2ff;
	uint64_t base = 0x123456789aull;
	memcpy(d, &lim, 2);
	memcpy(d + 2, &base, 8);
	states[0].parked = RT_CPU_PARKED_DOWN;
	f = frame_at(CODE, sp);
	rc = call(&f, &how);
	CHECK(rc == RT_EXIT_RESUME && states[0].idt_base == base && states[0].idt_limit == 0x2ff &&
		      idt_loaded_base == base && idt_loaded_limit == 0x2ff,
	      "lidt recorded and loaded (%s)", fatal_msg);
	CHECK(states[0].online == 1 && states[0].parked == RT_CPU_PARKED_NO, "lidt marks the CPU online");
	add_record(PVSITE_SIDT, 3, (const uint8_t[]){0x0f, 0x01, 0x08});
	f = frame_at(CODE, sp);
	f.rax = DESC;
	memset(gmem(DESC), 0, 16);
	rc = call(&f, &how);
	CHECK(*(uint16_t *)gmem(DESC) == 0x2ff && memcmp(gmem(DESC) + 2, &base, 8) == 0,
	      "sidt stores the virtual IDTR");
}

static void test_iret_sysret(void)
{
	struct rt_frame f;
	int how, rc;
	uint64_t sp = STACK_TOP - 0x300;
	uint64_t *fr = gq(sp);

	reset();
	set_gate(0x20, HANDLER, 0xe, 0);
	put_site(CODE, PVSITE_IRET, 16, PVSITES_NONE, 0, 8, 0);
	/* to user mode: vIF 0, the frame as the guest built it */
	states[0].vif = 1;
	fr[0] = 0x40001000; fr[1] = 0x2b; fr[2] = 0x202; fr[3] = 0x401ff000; fr[4] = 0x23;
	f = frame_at(CODE, sp);
	rc = call(&f, &how);
	CHECK(rc == RT_EXIT_IRET && states[0].vif == 1 && fr[2] == 0x202 && f.rsp == sp && polls == 0,
	      "iret to CPL 3: the frame as the guest built it");
	/* to kernel mode with IF: vIF 1, real IF cleared */
	fr[0] = 0x100200; fr[1] = KCS; fr[2] = 0x246; fr[3] = STACK_TOP - 0x100; fr[4] = KSS;
	f = frame_at(CODE, sp);
	rc = call(&f, &how);
	CHECK(rc == RT_EXIT_IRET && states[0].vif == 1 && fr[2] == 0x246,
	      "iret to CPL 0 with IF: the real iretq restores it");
	/* ... and with an interrupt pending: delivered right at the iret's target */
	fr[0] = 0x100200; fr[1] = KCS; fr[2] = 0x246; fr[3] = STACK_TOP - 0x100; fr[4] = KSS;
	fake_pending = 1;
	f = frame_at(CODE, sp);
	rc = call(&f, &how);
	uint64_t ifr = STACK_TOP - 0x100 - 40;
	CHECK(rc == RT_EXIT_RESUME && resumed_rip(&f) == HANDLER && f.rsp == ifr - 16 &&
		      gq(ifr)[0] == 0x100200 && gq(ifr)[2] == 0x246 && states[0].vif == 0,
	      "iret + pending: delivered at the target");

	put_site(CODE, PVSITE_SYSRET, 16, PVSITES_NONE, 0, 8, 0);
	states[0].vif = 1;
	f = frame_at(CODE, 0x401ff000);
	f.rcx = 0x40001234;
	rc = call(&f, &how);
	CHECK(rc == RT_EXIT_SYSRET && states[0].vif == 0 && f.rsp == 0x401ff000 && f.rcx == 0x40001234,
	      "sysret");

	/* a gate the runtime cannot deliver through: a clear failure */
	set_gate(0x20, HANDLER, 0xe, 1);
	fr[0] = 0x100200; fr[1] = KCS; fr[2] = 0x246; fr[3] = STACK_TOP - 0x100; fr[4] = KSS;
	put_site(CODE, PVSITE_IRET, 16, PVSITES_NONE, 0, 8, 0);
	fake_pending = 1;
	f = frame_at(CODE, sp);
	rc = call(&f, &how);
	CHECK(rc == -1 && strstr(fatal_msg, "IST"), "IST gate refused: %s", fatal_msg);
}

static int upcall(struct rt_frame *f, int *how)
{
	int r = setjmp(jb);
	if (r) {
		*how = r;
		return -1;
	}
	*how = 0;
	return rt_upcall(f);
}

static void test_upcall(void)
{
	struct rt_frame f = {0};
	int how, rc;
	uint64_t hwf = STACK_TOP - 0x400; /* the guest's TSS stack */
	uint64_t *hw = gq(hwf);

	reset();
	set_gate(0x20, HANDLER, 0xe, 0);
	hw[0] = 0x40001000; hw[1] = 0x2b; hw[2] = 0x202; hw[3] = 0x401ff000; hw[4] = 0x23;
	f.rsp = hwf;
	rc = upcall(&f, &how);
	CHECK(rc == RT_EXIT_IRET && f.rsp == hwf && shared.upcalls == 1 && polls == 1,
	      "upcall without news: back to user mode");
	fake_pending = 1;
	f.rsp = hwf;
	rc = upcall(&f, &how);
	CHECK(rc == RT_EXIT_RESUME && resumed_rip(&f) == HANDLER && f.rsp == hwf - 16 &&
		      hw[0] == 0x40001000 && states[0].vif == 0 && shared.deliveries == 1,
	      "upcall delivers with the hardware frame as it is");

	/* park from user mode: the park point is the user's, IF = 1 */
	reset();
	shared.park_req = 1;
	idle_action = clear_park;
	hw[0] = 0x40001000; hw[1] = 0x2b; hw[2] = 0x202; hw[3] = 0x401ff000; hw[4] = 0x23;
	f.rsp = hwf;
	f.rax = 5;
	rc = upcall(&f, &how);
	CHECK(rc == RT_EXIT_IRET && states[0].rip == 0x40001000 && states[0].rsp == 0x401ff000 &&
		      (states[0].rflags & RF_IF) && f.rax == 0x77 && f.rsp == hwf,
	      "user-mode park point");
}

/* An upcall in guest kernel code: an IP in an inline site's NOP pad moves to the site's end;
 * no interrupt is delivered there (only at site boundaries). */
static void test_upcall_kernel(void)
{
	struct rt_frame f = {0};
	int how, rc;
	uint64_t hwf = STACK_TOP - 0x500;
	uint64_t *hw = gq(hwf);
	struct pvsite *s = &rt_sites[0];

	reset();
	set_gate(0x20, HANDLER, 0xe, 0);
	memset(s, 0, sizeof *s);
	s->addr = CODE + 0x100; /* wrmsr + a 14-byte NOP pad, kept under kvm */
	s->kind = PVSITE_WRMSR;
	s->len = 16;
	s->orig_len = 2;
	rt_nsites = 1;
	hw[0] = CODE + 0x100 + 2 + 9; hw[1] = KCS; hw[2] = 0x246; hw[3] = STACK_TOP - 0x100; hw[4] = KSS;
	f.rsp = hwf;
	rc = upcall(&f, &how);
	CHECK(rc == RT_EXIT_IRET && hw[0] == CODE + 0x110 && states[0].vif == 1,
	      "kernel upcall in a pad: resumes at the site's end (0x%llx)", (unsigned long long)hw[0]);
	hw[0] = CODE + 0x100;
	fake_pending = 1;
	f.rsp = hwf;
	rc = upcall(&f, &how);
	CHECK(rc == RT_EXIT_IRET && hw[0] == CODE + 0x100 && states[0].vif == 1 && fake_pending,
	      "kernel upcall with an interrupt pending: nothing delivered between sites, "
	      "it waits for the next site boundary");
	hw[0] = CODE + 0x101; /* inside the instruction: impossible, refused */
	f.rsp = hwf;
	rc = upcall(&f, &how);
	CHECK(rc == -1 && strstr(fatal_msg, "inside a site's instruction"), "inside an instruction: %s",
	      fatal_msg);
}

/* The guest's IF is the real one at the call: an interrupt gate may have cleared it since. */
static void test_if_mirror(void)
{
	struct rt_frame f;
	int how, rc;
	uint64_t sp = STACK_TOP - 0x200;

	reset();
	states[0].vif = 1; /* stale: a hardware exception entered the kernel since */
	put_site(CODE, PVSITE_PUSHF, 16, PVSITES_NONE, 0, 8, 0);
	f = frame_at(CODE, sp);
	fake_pending = 1;
	rc = call(&f, &how);
	CHECK(rc == RT_EXIT_RESUME && gq(sp)[-1] == 0x46 && states[0].vif == 0 && fake_pending,
	      "pushf after an exception entry: IF 0, nothing delivered");
}

int main(void)
{
	void *g = mmap((void *)(uintptr_t)GUEST, GUEST_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (g != (void *)(uintptr_t)GUEST) {
		fprintf(stderr, "test_rt_site: cannot map the fake guest at 0x%llx\n",
			(unsigned long long)GUEST);
		return 1;
	}
	test_vif();
	test_hlt();
	test_park();
	test_park_serves_state();
	test_pio();
	test_mmio();
	test_idtr();
	test_iret_sysret();
	test_upcall();
	test_upcall_kernel();
	test_if_mirror();
	return tap_done("test_rt_site");
}
