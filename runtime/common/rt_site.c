/* rt_site.c: the site dispatcher: virtual IF, delivery at site boundaries, port and mmio sites, lidt/sidt, iret/sysret, idle and parking */
#include "rt_cpu.h"

/*
 * Everything here touches only memory (the frame, the guest's stacks and
 * tables, the state blocks) or calls the hardware helpers of rt_cpu.c and
 * the device side, so the unit test runs it on the host with fakes.  The
 * guest's virtual addresses are dereferenced directly: the runtime runs on
 * the guest's page tables, and guest RAM is identity mapped there (the
 * reference guest maps its first 1 GiB so; page walks rely on it).
 *
 * The guest's IF: the runtime itself always runs with the real IF = 0,
 * but it leaves guest kernel code with the real IF equal to the guest's
 * (rt_cpu_state.vif mirrors it; RT_EXIT_RESUME_STI).  So the host's upcall
 * can reach guest kernel code that runs with interrupts on: it takes the
 * news there (time, frames, a park request: an IP in the NOP pad of an
 * inline site first moves to the site's end, for the park point) but
 * delivers the guest's interrupt only at the next site boundary.  Into
 * user mode it delivers at once (no site runs there).
 *
 * Every instruction here is emulated by this host at ~1 us (guest CPL 0),
 * so the common kinds take the short way: no table lookups, no copies.
 */

uint64_t rt_ram_size;
struct rt_shared *rt_sh = RT_SHARED;

typedef uint64_t __attribute__((aligned(1), may_alias)) u64_una;
typedef uint32_t __attribute__((aligned(1), may_alias)) u32_una;
typedef uint16_t __attribute__((aligned(1), may_alias)) u16_una;

#define GATE_INTR 0xe
#define GATE_TRAP 0xf

/* ---- leaving, parking */

/*
 * Back to guest kernel code: rt_entry.S pops RFLAGS (IF = 0) and RIP from
 * below the target RSP, with `sti` before the `ret` when the guest's IF is
 * 1 (its one-instruction shadow covers the ret, so an upcall arrives at
 * the guest's instruction, never inside the window).
 */
static int resume(struct rt_frame *f, const struct rt_cpu_state *st)
{
	uint64_t *sp = (uint64_t *)(uintptr_t)f->rsp;
	sp[-1] = f->rip;
	sp[-2] = (f->rflags & ~RF_IF) | RF_FIXED;
	f->rsp -= 16;
	return st->vif ? RT_EXIT_RESUME_STI : RT_EXIT_RESUME;
}

static void publish(const struct rt_frame *f, struct rt_cpu_state *st)
{
	memcpy(&st->rax, f, RT_FRAME_WORDS * 8);
	rt_hw_snapshot(st);
}

/*
 * Bit n: CPU n runs the runtime's C code outside its park loop, where it
 * may touch a device model.  A device-state request (rt_abi.h, state_req)
 * is served only while no bit is set: the host asks with park_req, while
 * the vCPUs still run (from the first pause, docs/RUNTIME.md "State"),
 * so a CPU may be half way through a model when another one parks.  A
 * Dekker handshake with the server: a CPU sets its bit, then looks at
 * park_req (rt_site_call's first look, the upcall's, the way out of a
 * park); the server saw park_req, then looks at the bits.  So either the
 * entering CPU sees the request and parks before it touches anything, or
 * the server sees it busy and leaves the request to it: the last CPU to
 * park serves.  One locked instruction at each C entry and exit (~1 us
 * each here).
 */
static volatile uint32_t busy_cpus;

static void busy_enter(unsigned cpu)
{
	__atomic_fetch_or(&busy_cpus, 1u << cpu, __ATOMIC_SEQ_CST);
}

static void busy_leave(unsigned cpu)
{
	__atomic_fetch_and(&busy_cpus, ~(1u << cpu), __ATOMIC_SEQ_CST);
}

/*
 * Any CPU in its park loop: the host's device-state request.  No model
 * can change meanwhile or after: every other CPU is parked, out of the
 * runtime (guest code cannot reach a model), or busy (then it serves
 * when it parks), and one that enters the runtime while a park is asked
 * parks before it touches anything (rt_site_call, rt_upcall).  So the
 * first parked CPU to look serves it and waits for no other: one may spin
 * with interrupts off, outside the runtime, on a guest lock that a parked
 * CPU holds (the reference guest's console lock did that).
 */
static void park_serve_state(void)
{
	if (!__atomic_load_n(&rt_sh->park_req, __ATOMIC_SEQ_CST) ||
	    !__atomic_load_n(&rt_sh->state_req, __ATOMIC_SEQ_CST) ||
	    __atomic_load_n(&busy_cpus, __ATOMIC_SEQ_CST))
		return;
	rt_dev_state_serve(); /* takes the request by a swap: one CPU serves it */
}

/*
 * Publish the guest's state at the resume point in `f` and wait.  IDLE:
 * one sleep (the guest's hlt with IF = 1), then on unless the host asks
 * to park; REQ: until the host clears park_req.  Clearing `parked` is a
 * Dekker handshake with the host, which stores park_req and then loads
 * parked: we store parked and then load park_req, so either the host sees
 * us running or we see its request; the busy bit is the same with a
 * serving CPU.  The host may rewrite the state block while we wait; the
 * guest continues from what it holds (vif wins over rflags.IF).
 */
static void park_at(struct rt_frame *f, struct rt_cpu_state *st, unsigned cpu, uint32_t why,
		    uint64_t cs, uint64_t ss)
{
	rt_dev_flush();
	f->rflags = (f->rflags & ~RF_IF) | (st->vif ? RF_IF : 0);
	st->cs = (uint16_t)cs;
	st->ss = (uint16_t)ss;
	publish(f, st);
	__atomic_store_n(&st->parked, why, __ATOMIC_SEQ_CST);
	busy_leave(cpu);
	if (why == RT_CPU_PARKED_IDLE)
		rt_hw_idle_wait(cpu);
	for (;;) {
		park_serve_state();
		if (!__atomic_load_n(&rt_sh->park_req, __ATOMIC_SEQ_CST)) {
			__atomic_store_n(&st->parked, RT_CPU_PARKED_NO, __ATOMIC_SEQ_CST);
			if (!__atomic_load_n(&rt_sh->park_req, __ATOMIC_SEQ_CST)) {
				busy_enter(cpu);
				if (!__atomic_load_n(&rt_sh->park_req, __ATOMIC_SEQ_CST))
					break;
				/* asked again: a server may have left the request
				 * to us while we were busy */
				busy_leave(cpu);
				park_serve_state();
			}
		}
		__atomic_store_n(&st->parked, RT_CPU_PARKED_REQ, __ATOMIC_SEQ_CST);
		rt_hw_idle_wait(cpu);
	}
	memcpy(f, &st->rax, RT_FRAME_WORDS * 8);
	f->rflags = (f->rflags & ~RF_IF) | (st->vif ? RF_IF : 0);
	if (st->reload_idt) { /* the host restored the virtual IDTR */
		rt_idt_load(cpu, st->idt_base, st->idt_limit);
		st->reload_idt = 0;
	}
}

/* A park in guest kernel code: the CPU runs on the guest's kernel CS and SS. */
static void park(struct rt_frame *f, struct rt_cpu_state *st, unsigned cpu, uint32_t why)
{
	park_at(f, st, cpu, why, rt_hw_cs(), rt_hw_ss());
}

static int park_requested(void)
{
	return __atomic_load_n(&rt_sh->park_req, __ATOMIC_SEQ_CST) != 0; /* after busy_enter */
}

/* ---- interrupts */

/* The guest's gate for an external interrupt `vec`, through its virtual IDTR. */
static void guest_gate(const struct rt_cpu_state *st, unsigned vec, struct rt_gate *g)
{
	if ((uint64_t)vec * 16 + 15 > st->idt_limit)
		rt_fatal("deliver: vector beyond the guest's IDT limit: ", vec);
	rt_gate_decode((const void *)(uintptr_t)(st->idt_base + (uint64_t)vec * 16), g);
	if (!g->present)
		rt_fatal("deliver: the guest's gate is not present for vector ", vec);
	if (g->type != GATE_INTR && g->type != GATE_TRAP)
		rt_fatal("deliver: the guest's gate is not an interrupt or trap gate for vector ", vec);
	if (g->ist)
		rt_fatal("deliver: the guest's gate uses an IST stack (not supported for external "
			 "interrupts) for vector ",
			 vec);
	if (g->sel != rt_hw_cs())
		rt_fatal("deliver: the gate's selector is not the kernel's current CS: ", g->sel);
}

/* Enter the guest's handler for the PIC's vector: IF as the gate says, the frame at f->rsp. */
static void enter_handler(struct rt_frame *f, struct rt_cpu_state *st)
{
	struct rt_gate g;

	guest_gate(st, rt_dev_irq_ack(), &g);
	f->rip = g.offset;
	if (g.type == GATE_INTR)
		st->vif = 0;
	__atomic_fetch_add(&rt_sh->deliveries, 1, __ATOMIC_RELAXED);
}

/*
 * Deliver at the guest context (rip, cs, rflags, rsp, ss) as the CPU
 * would: the frame on the current stack (no stack switch at CPL 0), its
 * RFLAGS.IF = 1 (the guest's IF was on), TF NT RF VM cleared.
 */
static void deliver(struct rt_frame *f, struct rt_cpu_state *st, uint64_t rip, uint64_t cs,
		    uint64_t rflags, uint64_t rsp, uint64_t ss)
{
	f->rsp = rt_push_intr_frame(rsp, rip, cs, rflags | RF_IF, ss);
	f->rflags = rflags & ~(RF_TF | RF_NT | RF_RF | RF_VM | RF_IF);
	enter_handler(f, st);
}

/* A site boundary on CPU 0 with IF = 1: take the world's news, deliver if the PIC asks. */
static void site_boundary(struct rt_frame *f, struct rt_cpu_state *st)
{
	rt_dev_poll();
	if (rt_dev_irq_pending())
		deliver(f, st, f->rip, rt_hw_cs(), f->rflags, f->rsp, rt_hw_ss());
}

/* Is the instruction at `rip` a kvm hlt site?  Returns its length, or 0. */
static unsigned hlt_site_at(uint64_t rip)
{
	const uint8_t *p = (const uint8_t *)(uintptr_t)rip;
	if (p[0] != 0xe8 || p[5] != PVSITE_HLT ||
	    rip + RT_SITE_CALL_LEN + (uint64_t)(int64_t)(int32_t)*(const u32_una *)(p + 1) !=
		    RT_ENTRY_SITE)
		return 0;
	return p[6];
}

/*
 * An instruction boundary in guest kernel code made a site boundary: an
 * IP in the NOP pad of a site that keeps its instruction moves to the
 * site's end (skipping NOPs changes nothing).  An IP anywhere else inside
 * a site cannot happen: the instruction is one, and call sites leave for
 * the window.
 */
static uint64_t boundary_ip(uint64_t ip)
{
	long i = pvsites_lookup(rt_sites, rt_nsites, ip);
	if (i < 0 || ip == rt_sites[i].addr)
		return ip;
	if (ip < rt_sites[i].addr + rt_sites[i].orig_len)
		rt_fatal("upcall: guest interrupted inside a site's instruction at ", ip);
	return rt_sites[i].addr + rt_sites[i].len;
}

/* ---- kinds */

static void do_pushf(struct rt_frame *f, const struct rt_cpu_state *st, unsigned width)
{
	uint64_t v = (f->rflags & ~(RF_IF | RF_RF | RF_VM)) | (st->vif ? RF_IF : 0);
	if (width == 2) {
		f->rsp -= 2;
		*(u16_una *)(uintptr_t)f->rsp = (uint16_t)v;
	} else {
		f->rsp -= 8;
		*(u64_una *)(uintptr_t)f->rsp = v;
	}
}

/* popf: the guest's IF from the popped value, the other flags as popf sets them. */
static void do_popf(struct rt_frame *f, struct rt_cpu_state *st, unsigned width)
{
	uint64_t v;
	if (width == 2) {
		v = (f->rflags & ~0xffffull) | *(const u16_una *)(uintptr_t)f->rsp;
		f->rsp += 2;
	} else {
		v = *(const u64_una *)(uintptr_t)f->rsp;
		f->rsp += 8;
	}
	st->vif = (v & RF_IF) != 0;
	f->rflags = (f->rflags & ~RF_POPF_MASK) | (v & RF_POPF_MASK) | RF_FIXED;
}

static uint32_t width_mask(unsigned width)
{
	return width >= 4 ? 0xffffffffu : (1u << (8 * width)) - 1;
}

static void do_pio(struct rt_frame *f, unsigned kind, unsigned aux, unsigned width, unsigned flags)
{
	unsigned port = (flags & PVSITE_F_IMM) ? aux : (uint16_t)f->rdx;
	uint32_t mask = width_mask(width), v;

	if (width != 1 && width != 2 && width != 4)
		rt_fatal("in/out site: bad width ", width);
	if (kind == PVSITE_OUT) {
		v = (uint32_t)f->rax & mask;
		if (!rt_dev_pio(port, width, 1, &v)) {
			rt_hw_out(port, width, v);
			__atomic_fetch_add(&rt_sh->passthrough_io, 1, __ATOMIC_RELAXED);
		}
		return;
	}
	v = 0;
	if (!rt_dev_pio(port, width, 0, &v)) {
		v = rt_hw_in(port, width);
		__atomic_fetch_add(&rt_sh->passthrough_io, 1, __ATOMIC_RELAXED);
	}
	v &= mask;
	f->rax = width == 4 ? v : (f->rax & ~(uint64_t)mask) | v; /* 32-bit results zero-extend */
}

static uint32_t mem_load(uint64_t va, unsigned width)
{
	const void *p = (const void *)(uintptr_t)va;
	return width == 1 ? *(const uint8_t *)p : width == 2 ? *(const u16_una *)p : *(const u32_una *)p;
}

static void mem_store(uint64_t va, unsigned width, uint32_t v)
{
	void *p = (void *)(uintptr_t)va;
	if (width == 1)
		*(uint8_t *)p = (uint8_t)v;
	else if (width == 2)
		*(u16_una *)p = (uint16_t)v;
	else
		*(u32_una *)p = v;
}

/*
 * ins/outs (rep or not), port DX, 64-bit addressing.  The first element
 * decides whose port it is; a port that is not the runtime's goes to the
 * host as one real rep string instruction.
 */
static void do_string_pio(struct rt_frame *f, unsigned kind, unsigned width, unsigned flags)
{
	unsigned port = (uint16_t)f->rdx;
	int rep = (flags & PVSITE_F_REP) != 0, df = (f->rflags & RF_DF) != 0, is_out = kind == PVSITE_OUTS;
	uint64_t count = rep ? f->rcx : 1, *addr = is_out ? &f->rsi : &f->rdi;
	uint64_t step = df ? (uint64_t)-(int64_t)width : width;
	uint32_t v = 0;

	if (width != 1 && width != 2 && width != 4)
		rt_fatal("ins/outs site: bad width ", width);
	if (count == 0)
		return;
	if (is_out)
		v = mem_load(*addr, width);
	if (!rt_dev_pio(port, width, is_out, &v)) {
		if (is_out)
			rt_hw_outs(port, width, addr, count, df);
		else
			rt_hw_ins(port, width, addr, count, df);
		__atomic_fetch_add(&rt_sh->passthrough_io, 1, __ATOMIC_RELAXED);
		count = 0;
	} else {
		for (;;) {
			if (!is_out)
				mem_store(*addr, width, v & width_mask(width));
			*addr += step;
			if (--count == 0)
				break;
			v = is_out ? mem_load(*addr, width) : 0;
			if (!rt_dev_pio(port, width, is_out, &v))
				rt_fatal("ins/outs: the port stopped being the runtime's: ", port);
		}
	}
	if (rep)
		f->rcx = count;
}

/* The decoded memory instruction of the site at `site` (binary search by address). */
static const struct rt_memsite *memsite(uint64_t site, unsigned kind)
{
	size_t lo = 0, hi = rt_nmemsites;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (rt_memsites[mid].addr < site)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == rt_nmemsites || rt_memsites[lo].addr != site || rt_memsites[lo].kind != kind)
		rt_fatal("site: not in the decoded table: ", site);
	return &rt_memsites[lo];
}

static void do_mmio(struct rt_frame *f, uint64_t site, unsigned kind)
{
	const struct rt_memsite *ms = memsite(site, kind);
	const struct rt_memop *m = &ms->m;
	uint64_t ea = rt_memop_ea(m, f, ms->end), gpa, v;
	uint64_t mask = m->size == 8 ? ~0ull : (1ull << (8 * m->size)) - 1;
	uint64_t *r = rt_frame_reg(f, m->hi8 ? m->reg - 4u : m->reg);

	if (rt_walk(rt_hw_cr3(), ea, 0, rt_ram_size, &gpa) < 0)
		rt_fatal("mmio site: the address is not mapped: ", ea);
	if (kind == PVSITE_MMIO_WRITE) {
		v = (m->has_imm ? m->imm : m->hi8 ? *r >> 8 : *r) & mask;
		if (!rt_dev_mmio(gpa, m->size, 1, &v))
			rt_hw_store(ea, m->size, v);
		return;
	}
	if (!rt_dev_mmio(gpa, m->size, 0, &v))
		v = rt_hw_load(ea, m->size);
	v &= mask;
	if (m->hi8)
		*r = (*r & ~0xff00ull) | v << 8;
	else if (m->size >= 4)
		*r = v; /* 32-bit results zero-extend */
	else
		*r = (*r & ~mask) | v;
}

static void do_idtr(struct rt_frame *f, struct rt_cpu_state *st, uint64_t site, unsigned kind,
		    unsigned cpu)
{
	const struct rt_memsite *ms = memsite(site, kind);
	uint8_t *p = (uint8_t *)(uintptr_t)rt_memop_ea(&ms->m, f, ms->end);

	if (kind == PVSITE_SIDT) {
		*(u16_una *)p = st->idt_limit;
		*(u64_una *)(p + 2) = st->idt_base;
		return;
	}
	st->idt_limit = *(const u16_una *)p;
	st->idt_base = *(const u64_una *)(p + 2);
	rt_idt_load(cpu, st->idt_base, st->idt_limit);
	/* every start of a CPU (APs may be started again) loads its IDT early */
	st->online = 1;
	st->parked = RT_CPU_PARKED_NO;
}

/*
 * iretq: the frame at RSP is the guest's, and the real iretq restores its
 * IF.  To CPL 0 with IF = 1 and the PIC asking, the interrupt is taken at
 * the iret's target, as on hardware.  A request to park is honoured before
 * the iret, at the site (a safe point).
 */
static int do_iret(struct rt_frame *f, struct rt_cpu_state *st, uint64_t site, unsigned cpu,
		   unsigned width)
{
	if (width != 8)
		rt_fatal("iret site: only iretq is supported, width ", width);
	if (park_requested()) {
		f->rip = site;
		park(f, st, cpu, RT_CPU_PARKED_REQ);
		if (f->rip != site)
			return resume(f, st);
	}
	uint64_t *fr = (uint64_t *)(uintptr_t)f->rsp; /* RIP CS RFLAGS RSP SS */
	st->vif = (fr[2] & RF_IF) != 0;
	if (cpu == 0 && st->vif && !(fr[1] & 3)) {
		rt_dev_poll();
		if (rt_dev_irq_pending()) {
			uint64_t rip = fr[0], cs = fr[1], rflags = fr[2], rsp = fr[3], ss = fr[4];
			deliver(f, st, rip, cs, rflags, rsp, ss);
			return resume(f, st);
		}
	}
	return RT_EXIT_IRET;
}

static int do_sysret(struct rt_frame *f, struct rt_cpu_state *st, uint64_t site, unsigned cpu,
		     unsigned width)
{
	if (width != 8)
		rt_fatal("sysret site: only sysretq is supported, width ", width);
	if (park_requested()) {
		f->rip = site;
		park(f, st, cpu, RT_CPU_PARKED_REQ);
		if (f->rip != site)
			return resume(f, st);
	}
	st->vif = (f->r11 & RF_IF) != 0; /* user mode's IF, from R11 */
	return RT_EXIT_SYSRET;
}

/*
 * hlt: deliver if something is pending and IF = 1; otherwise sleep until
 * the host's upcall and look again.  With IF = 0 nothing can ever wake
 * the CPU: it goes offline, as on hardware.
 */
static void do_hlt(struct rt_frame *f, struct rt_cpu_state *st, unsigned cpu)
{
	for (;;) {
		if (cpu == 0 && st->vif) {
			rt_dev_poll();
			if (rt_dev_irq_pending()) {
				deliver(f, st, f->rip, rt_hw_cs(), f->rflags, f->rsp, rt_hw_ss());
				return;
			}
		}
		if (!st->vif) {
			rt_dev_flush();
			st->cs = (uint16_t)rt_hw_cs();
			st->ss = (uint16_t)rt_hw_ss();
			publish(f, st);
			__atomic_store_n(&st->parked, RT_CPU_PARKED_DOWN, __ATOMIC_SEQ_CST);
			busy_leave(cpu);
			rt_hw_halt_down();
		}
		park(f, st, cpu, RT_CPU_PARKED_IDLE);
	}
}

static int site_call(struct rt_frame *f, unsigned cpu)
{
	const uint8_t *a = (const uint8_t *)(uintptr_t)f->rip; /* kind len reg aux width flags */
	unsigned kind = a[0], len = a[1], aux = a[3], width = a[4], flags = a[5];
	uint64_t site = f->rip - RT_SITE_CALL_LEN;
	struct rt_cpu_state *st = rt_cpu_state(cpu);
	unsigned hlt_len;

	/* rt_entry.S counted the call (rt_shared.site_calls, kind_calls, the
	 * CPU's site_calls) and took the simple cases of cli, pushf, popf,
	 * iret and sysret itself.  The guest's IF is the real one at the call (a hardware interrupt or
	 * exception entry may have cleared it since the last site) */
	st->vif = (f->rflags & RF_IF) != 0;
	if (len < RT_SITE_CALL_LEN + RT_SITE_ARGS_LEN || len > PVSITES_LEN_MAX)
		rt_fatal("site: bad length in the operand bytes at ", site);
	/* A park asked before the site ran: park at the site itself, before
	 * anything changes (a device model above all: the host may be taking
	 * their state, park_serve_state), and run the site afresh once let go.
	 * Not before the CPU's first lidt made it a runtime CPU (online): its
	 * block is no CPU model yet, so it parks after the site as before. */
	if (st->online && park_requested()) {
		f->rip = site;
		park(f, st, cpu, RT_CPU_PARKED_REQ);
		return resume(f, st);
	}
	f->rip = site + len;
	switch (kind) {
	case PVSITE_CLI:
		st->vif = 0;
		break;
	case PVSITE_STI:
		st->vif = 1;
		/* sti's one-instruction shadow covers a following hlt: do both
		 * here, so an interrupt ends the hlt instead of preceding it */
		if ((hlt_len = hlt_site_at(f->rip)) != 0) {
			__atomic_fetch_add(&rt_sh->kind_calls[PVSITE_HLT], 1, __ATOMIC_RELAXED);
			f->rip += hlt_len;
			do_hlt(f, st, cpu);
			goto out;
		}
		break;
	case PVSITE_PUSHF:
		do_pushf(f, st, width);
		break;
	case PVSITE_POPF:
		do_popf(f, st, width);
		break;
	case PVSITE_HLT:
		do_hlt(f, st, cpu); /* it delivered if it could */
		goto out;
	case PVSITE_IN:
	case PVSITE_OUT:
		do_pio(f, kind, aux, width, flags);
		break;
	case PVSITE_INS:
	case PVSITE_OUTS:
		do_string_pio(f, kind, width, flags);
		break;
	case PVSITE_MMIO_READ:
	case PVSITE_MMIO_WRITE:
		do_mmio(f, site, kind);
		break;
	case PVSITE_LIDT:
	case PVSITE_SIDT:
		do_idtr(f, st, site, kind, cpu);
		break;
	case PVSITE_IRET:
		return do_iret(f, st, site, cpu, width);
	case PVSITE_SYSRET:
		return do_sysret(f, st, site, cpu, width);
	default:
		rt_fatal("site: kind does not call the runtime: ", kind);
	}
	if (cpu == 0 && st->vif)
		site_boundary(f, st);
out:
	if (park_requested())
		park(f, st, cpu, RT_CPU_PARKED_REQ);
	return resume(f, st);
}

int rt_site_call(struct rt_frame *f)
{
	unsigned cpu = rt_frame_cpu(f);
	int rc;

	busy_enter(cpu); /* before site_call's first look at park_req */
	rc = site_call(f, cpu);
	busy_leave(cpu);
	return rc;
}

/*
 * The upcall interrupted the guest with its IF = 1: in user mode (the
 * frame is on the guest's TSS stack) or in kernel code outside the window
 * (the frame is on the kernel's stack).  From user mode the hardware frame
 * is exactly the one the CPU would have pushed for the guest's own vector
 * (its gates use no IST for external interrupts), so a delivery is a jump
 * to the guest's handler with that frame as it is.
 */
static int upcall(struct rt_frame *f, unsigned cpu)
{
	struct rt_cpu_state *st = rt_cpu_state(cpu);
	uint64_t *hw = (uint64_t *)(uintptr_t)f->rsp; /* RIP CS RFLAGS RSP SS */

	__atomic_fetch_add(&rt_sh->upcalls, 1, __ATOMIC_RELAXED);
	if (!(hw[1] & 3))
		hw[0] = boundary_ip(hw[0]);
	st->vif = (hw[2] & RF_IF) != 0;
	if (park_requested()) {
		/* the park point is where the upcall struck, user mode included:
		 * rt_cpu_state has no CS/SS to say which (the frame has them) */
		uint64_t frame = f->rsp;
		f->rip = hw[0];
		f->rflags = hw[2];
		f->rsp = hw[3];
		park_at(f, st, cpu, RT_CPU_PARKED_REQ, hw[1], hw[4]);
		hw[0] = f->rip;
		hw[2] = f->rflags | RF_FIXED;
		hw[3] = f->rsp;
		f->rsp = frame;
	}
	if (cpu == 0 && st->vif) {
		rt_dev_poll();
		/*
		 * Deliver only into user mode: no site runs there, so the
		 * interrupted point is a safe one by construction.  Guest kernel
		 * code interrupted between sites keeps the interrupt pending in
		 * the PIC until its next site boundary (the site contract's rule
		 * 6, docs/RUNTIME.md): the upcall only took the news.
		 */
		if ((hw[1] & 3) == 3 && rt_dev_irq_pending()) {
			f->rflags = RF_FIXED;
			enter_handler(f, st);
			return resume(f, st);
		}
	}
	return RT_EXIT_IRET;
}

int rt_upcall(struct rt_frame *f)
{
	unsigned cpu = rt_frame_cpu(f);
	int rc;

	busy_enter(cpu); /* before upcall's look at park_req */
	rc = upcall(f, cpu);
	busy_leave(cpu);
	return rc;
}
