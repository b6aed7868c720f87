/* rt_cpu.c: the CPU side's hardware: CPU number, per-CPU IDTs, real port and memory access, control registers, halting, the fatal path */
#include "rt_cpu.h"

/* rt_entry.S and rt.ld hardcode these numbers (an assembler cannot read rt_abi.h). */
_Static_assert(RT_WINDOW_BASE == 0x3fe00000ull && RT_IMAGE_MAX == 0xc0000u,
	       "rt.ld hardcodes the window base and the image limit");
_Static_assert(RT_ENTRY_BOOT64 == RT_WINDOW_BASE && RT_ENTRY_SITE == RT_WINDOW_BASE + 0x40 &&
		       RT_ENTRY_UPCALL == RT_WINDOW_BASE + 0x80 && RT_ENTRY_ADOPT == RT_WINDOW_BASE + 0xc0,
	       "rt_entry.S places the entry points at +0x000, +0x040, +0x080");
_Static_assert(RT_PERCPU_ADDR(0) == 0x3fed0000ull && RT_PERCPU_SIZE == 0x8000u &&
		       RT_PERCPU_STACK_TOP == 0x8000u && RT_PERCPU_IDT == 0,
	       "rt_entry.S hardcodes the per-CPU layout");
_Static_assert(RT_WINDOW_BASE + RT_OFF_SHARED == 0x3fec1000ull, "rt_entry.S counts upcalls there");
_Static_assert(RT_WINDOW_BASE + RT_OFF_BOOT == 0x3fec0000ull, "rt_entry.S reads the boot block");
_Static_assert(RT_UPCALL_VECTOR == 0xff, "the upcall gate is the last one");
/* rt_entry.S's frame, counters and fast paths. */
_Static_assert(offsetof(struct rt_frame, rax) == 0, "frame layout");
_Static_assert(offsetof(struct rt_frame, rsp) == 56, "frame layout");
_Static_assert(offsetof(struct rt_frame, r15) == 120, "frame layout");
_Static_assert(offsetof(struct rt_frame, rip) == 128, "frame layout");
_Static_assert(offsetof(struct rt_frame, rflags) == 136, "frame layout");
_Static_assert(sizeof(struct rt_frame) == 160, "frame layout");
_Static_assert(RT_PERCPU_FRAME == RT_PERCPU_STACK_TOP - sizeof(struct rt_frame) &&
		       RT_PERCPU_IRETF >= RT_PERCPU_STATE + sizeof(struct rt_cpu_state),
	       "the host enters RT_ENTRY_ADOPT with RSP at the frame; the iretq frame is free");
_Static_assert(offsetof(struct rt_cpu_state, rflags) - offsetof(struct rt_cpu_state, rax) ==
		       (RT_FRAME_WORDS - 1) * 8,
	       "the state block's registers are in frame order");
_Static_assert(offsetof(struct rt_shared, upcalls) == 64, "rt_entry.S counts upcalls there");
_Static_assert(offsetof(struct rt_shared, park_req) == 12 && offsetof(struct rt_shared, site_calls) == 56 &&
		       offsetof(struct rt_shared, kind_calls) == 120,
	       "rt_entry.S counts site calls and reads park_req there");
_Static_assert(RT_PERCPU_STATE == 0x1000 && offsetof(struct rt_cpu_state, vif) == 8 &&
		       offsetof(struct rt_cpu_state, site_calls) == 0xe0,
	       "rt_entry.S's fast paths write vif and count there");
_Static_assert(PVSITE_KIND_COUNT <= 64, "kind_calls[] has 64 slots");

#define GATE_P	   0x8000ull
#define GATE_INTR  0x0e00ull
#define IDT_GATES  256u
#define PORT_EXIT  0x501 /* the platform's power-off port: pvhost exits with the byte */

struct __attribute__((packed)) desc_ptr {
	uint16_t limit;
	uint64_t base;
};

unsigned rt_cpu_id(void)
{
	struct desc_ptr d;
	__asm__ volatile("sidt %0" : "=m"(d));
	return (unsigned)((d.base - RT_PERCPU_ADDR(0)) / RT_PERCPU_SIZE);
}

struct rt_cpu_state *rt_cpu_state(unsigned cpu)
{
	return (struct rt_cpu_state *)(uintptr_t)(RT_PERCPU_ADDR(cpu) + RT_PERCPU_STATE);
}

unsigned rt_frame_cpu(const struct rt_frame *f)
{
	return (unsigned)(((uint64_t)(uintptr_t)f - RT_PERCPU_ADDR(0)) / RT_PERCPU_SIZE);
}

static uint64_t *cpu_idt(unsigned cpu)
{
	return (uint64_t *)(uintptr_t)(RT_PERCPU_ADDR(cpu) + RT_PERCPU_IDT);
}

/* Vector 0xff: 64-bit interrupt gate to RT_ENTRY_UPCALL, DPL 0, no IST, selector `cs`. */
static void set_upcall_gate(uint64_t *idt, uint16_t cs)
{
	uint64_t off = RT_ENTRY_UPCALL;
	idt[2 * RT_UPCALL_VECTOR] = (off & 0xffff) | (uint64_t)cs << 16 | (GATE_P | GATE_INTR) << 32 |
				    (off & 0xffff0000ull) << 32;
	idt[2 * RT_UPCALL_VECTOR + 1] = off >> 32;
}

void rt_idt_init(unsigned cpu)
{
	uint64_t *idt = cpu_idt(cpu);
	memset(idt, 0, IDT_GATES * 16);
	set_upcall_gate(idt, rt_hw_cs());
}

/*
 * The guest's gates become the real ones, as they are (the real IF is the
 * guest's outside the runtime, so trap and interrupt gates mean what they
 * say); gates past its limit are not present.  The upcall gate takes the
 * guest's kernel CS, the one we run on now.
 */
void rt_idt_load(unsigned cpu, uint64_t base, uint16_t limit)
{
	uint64_t *idt = cpu_idt(cpu);
	const uint64_t *g = (const uint64_t *)(uintptr_t)base;
	unsigned n = (limit + 1u) / 16;

	for (unsigned v = 0; v < RT_UPCALL_VECTOR; v++) {
		uint64_t lo = 0, hi = 0;
		if (v < n) {
			lo = g[2 * v];
			hi = g[2 * v + 1];
		}
		idt[2 * v] = lo;
		idt[2 * v + 1] = hi;
	}
	set_upcall_gate(idt, rt_hw_cs());
}

uint32_t rt_hw_in(unsigned port, unsigned size)
{
	uint16_t p = (uint16_t)port;
	if (size == 1) {
		uint8_t v;
		__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p));
		return v;
	}
	if (size == 2) {
		uint16_t v;
		__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(p));
		return v;
	}
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(p));
	return v;
}

void rt_hw_out(unsigned port, unsigned size, uint32_t val)
{
	uint16_t p = (uint16_t)port;
	if (size == 1)
		__asm__ volatile("outb %b0, %1" : : "a"(val), "Nd"(p));
	else if (size == 2)
		__asm__ volatile("outw %w0, %1" : : "a"(val), "Nd"(p));
	else
		__asm__ volatile("outl %0, %1" : : "a"(val), "Nd"(p));
}

/* One asm statement each, so that DF is never set while compiled code runs. */
#define STRING_IO(insn, areg)                                                            \
	do {                                                                             \
		if (df)                                                                  \
			__asm__ volatile("std\n\trep " insn "\n\tcld"                    \
					 : "+" areg(a), "+c"(count)                      \
					 : "d"(p)                                        \
					 : "memory");                                    \
		else                                                                     \
			__asm__ volatile("rep " insn                                     \
					 : "+" areg(a), "+c"(count)                      \
					 : "d"(p)                                        \
					 : "memory");                                    \
	} while (0)

void rt_hw_ins(unsigned port, unsigned size, uint64_t *addr, uint64_t count, int df)
{
	uint16_t p = (uint16_t)port;
	uint64_t a = *addr;
	if (size == 1)
		STRING_IO("insb", "D");
	else if (size == 2)
		STRING_IO("insw", "D");
	else
		STRING_IO("insl", "D");
	*addr = a;
}

void rt_hw_outs(unsigned port, unsigned size, uint64_t *addr, uint64_t count, int df)
{
	uint16_t p = (uint16_t)port;
	uint64_t a = *addr;
	if (size == 1)
		STRING_IO("outsb", "S");
	else if (size == 2)
		STRING_IO("outsw", "S");
	else
		STRING_IO("outsl", "S");
	*addr = a;
}

uint64_t rt_hw_load(uint64_t va, unsigned size)
{
	const volatile void *p = (const volatile void *)(uintptr_t)va;
	switch (size) {
	case 1:
		return *(const volatile uint8_t *)p;
	case 2:
		return *(const volatile uint16_t *)p;
	case 4:
		return *(const volatile uint32_t *)p;
	default:
		return *(const volatile uint64_t *)p;
	}
}

void rt_hw_store(uint64_t va, unsigned size, uint64_t val)
{
	volatile void *p = (volatile void *)(uintptr_t)va;
	switch (size) {
	case 1:
		*(volatile uint8_t *)p = (uint8_t)val;
		break;
	case 2:
		*(volatile uint16_t *)p = (uint16_t)val;
		break;
	case 4:
		*(volatile uint32_t *)p = (uint32_t)val;
		break;
	default:
		*(volatile uint64_t *)p = val;
	}
}

uint64_t rt_hw_cr3(void)
{
	uint64_t v;
	__asm__ volatile("movq %%cr3, %0" : "=r"(v));
	return v;
}

uint16_t rt_hw_cs(void)
{
	uint16_t v;
	__asm__ volatile("movw %%cs, %0" : "=r"(v));
	return v;
}

uint16_t rt_hw_ss(void)
{
	uint16_t v;
	__asm__ volatile("movw %%ss, %0" : "=r"(v));
	return v;
}

void rt_hw_snapshot(struct rt_cpu_state *st)
{
	struct desc_ptr g;
	__asm__ volatile("movq %%cr0, %0" : "=r"(st->cr0));
	__asm__ volatile("movq %%cr2, %0" : "=r"(st->cr2));
	__asm__ volatile("movq %%cr3, %0" : "=r"(st->cr3));
	__asm__ volatile("movq %%cr4, %0" : "=r"(st->cr4));
	__asm__ volatile("sgdt %0" : "=m"(g));
	st->gdt_base = g.base;
	st->gdt_limit = g.limit;
}

void rt_hw_idle_wait(unsigned cpu)
{
	uint64_t *idt = cpu_idt(cpu);
	uint16_t cs = rt_hw_cs();
	/* the gate must name the CS we run on (boot GDT or the guest's) */
	if ((uint16_t)(idt[2 * RT_UPCALL_VECTOR] >> 16) != cs)
		set_upcall_gate(idt, cs);
	__asm__ volatile("sti\n\thlt\n\tcli" ::: "memory");
}

void rt_hw_halt_down(void)
{
	for (;;)
		__asm__ volatile("cli\n\thlt" ::: "memory");
}

/* Set once the device side can print; rt_fatal then also says why on the console. */
int rt_dev_ready;

void rt_fatal(const char *msg, uint64_t value)
{
	static int dying;
	struct rt_boot *b = RT_BOOT;

	rt_strlcpy(b->error, "runtime: ", sizeof b->error);
	rt_strlcat(b->error, msg, sizeof b->error);
	rt_strlcat_hex(b->error, value, sizeof b->error);
	b->status = -1;
	if (rt_dev_ready && !dying) {
		dying = 1;
		for (const char *c = b->error; *c; c++) {
			uint32_t v = (uint8_t)*c;
			rt_dev_pio(0x3f8, 1, 1, &v);
		}
		uint32_t nl = '\n';
		rt_dev_pio(0x3f8, 1, 1, &nl);
		rt_dev_flush();
	}
	rt_hw_out(PORT_EXIT, 1, 1);
	rt_hw_halt_down();
}
