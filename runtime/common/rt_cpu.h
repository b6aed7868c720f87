/* rt_cpu.h: the CPU side's private seams: the entry frame, the site table, hardware helpers (rt_cpu.c) and pure helpers (rt_site.c) */
#ifndef RT_CPU_H
#define RT_CPU_H

/*
 * Split so that the pure parts can be tested on the host:
 *
 *   rt_entry.S  entry stubs: save the guest's registers into struct
 *               rt_frame on the CPU's runtime stack, call C, leave by
 *               popfq+ret, iretq or sysretq (enum rt_exit)
 *   rt_site.c   the dispatcher and everything that only reads and writes
 *               memory: operand decoding, page walk, interrupt frames,
 *               virtual IF, delivery, parking (host-testable with fakes
 *               of the functions below)
 *   rt_cpu.c    the hardware: CPU number, IDTs, real I/O, control
 *               registers, halting, the fatal path
 *   rt_boot.c   boot: check the boot block, decode and rewrite the
 *               table, then rt_entry.S drops to the guest's 32-bit entry
 */
#include <stddef.h>
#include <stdint.h>

#include "repatch.h"
#include "rt_internal.h"

/* The decoded site table; more sites than this fail the boot. */
#define RT_SITES_MAX 4096u

/*
 * The guest's registers at a runtime entry.  rt_entry.S hardcodes the
 * offsets (asserted in rt_site.c); the first 18 words are in the order of
 * struct rt_cpu_state's rax..rflags so publishing is one copy.  rsp is
 * the guest's RSP as it was before the site's call (or, for an upcall,
 * the address of the hardware interrupt frame); rip is the resume point.
 */
struct rt_frame {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
	uint64_t reserved[2]; /* keeps the frame a multiple of 16 bytes */
};
#define RT_FRAME_WORDS 18u /* rax..rflags, as in struct rt_cpu_state */

/* How rt_entry.S leaves: the C entry points return one of these. */
enum rt_exit {
	RT_EXIT_RESUME = 0,	/* popfq; ret with RSP = frame rsp (rflags, rip stored below it) */
	RT_EXIT_IRET = 1,	/* iretq with RSP = frame rsp (a 64-bit iret frame there) */
	RT_EXIT_SYSRET = 2,	/* sysretq: RCX, R11 and RSP are the guest's */
	RT_EXIT_RESUME_STI = 3, /* as RESUME, then sti before the ret: the guest's IF is 1 */
};

#define RF_CF 0x1ull
#define RF_FIXED 0x2ull
#define RF_TF 0x100ull
#define RF_IF 0x200ull
#define RF_DF 0x400ull
#define RF_NT 0x4000ull
#define RF_RF 0x10000ull
#define RF_VM 0x20000ull
/* What popf at CPL 0 in 64-bit mode changes: CF PF AF ZF SF TF IF DF OF IOPL NT AC ID. */
#define RF_POPF_MASK 0x247fd5ull

/* ---- rt_site.c */

extern struct pvsite rt_sites[RT_SITES_MAX];
extern size_t rt_nsites;
extern uint64_t rt_ram_size;	      /* guest RAM is gpa 0 .. rt_ram_size-1 */
extern struct rt_shared *rt_sh;       /* RT_SHARED in the runtime; tests point it elsewhere */

/* Entry points called by rt_entry.S with the frame on the runtime stack. */
int rt_site_call(struct rt_frame *f);
/* The upcall interrupted the guest (user mode, or kernel code outside the window). */
int rt_upcall(struct rt_frame *f);
/* The host entered this CPU at RT_ENTRY_ADOPT (rt_boot.c): ready the runtime, resume the guest. */
int rt_adopt_main(struct rt_frame *f);

/*
 * A decoded memory instruction: a mov between a register (or an
 * immediate) and memory (mmio sites), or lidt/sidt.  Decoded once at
 * boot; the address is computed per call from the registers.
 */
#define RT_MEMOP_NONE 0xff /* no base / no index register */
#define RT_MEMOP_RIP  0xfe /* RIP-relative: base = the next instruction */
struct rt_memop {
	uint64_t imm;	 /* immediate of c6/c7 stores */
	int32_t disp;
	uint8_t base;	 /* hardware register number, RT_MEMOP_NONE or RT_MEMOP_RIP */
	uint8_t index;	 /* hardware register number or RT_MEMOP_NONE */
	uint8_t scale;	 /* index << scale */
	uint8_t opcode;	 /* 0x88 0x89 0x8a 0x8b 0xc6 0xc7, or 0x01 for 0f 01 */
	uint8_t size;	 /* operand size in bytes */
	uint8_t reg;	 /* ModRM.reg with REX.R: hardware register number */
	uint8_t hi8;	 /* reg is AH/CH/DH/BH (byte operand without REX) */
	uint8_t has_imm;
	uint8_t len;	 /* instruction length */
};

/*
 * Decode `insn`, n bytes that must be exactly one instruction: mov r/m<->r
 * (88 89 8a 8b), mov imm -> m (c6 c7) and 0f 01 /1 /3 (sidt, lidt), with
 * 64-bit addressing, prefixes 66, REX and the ignored segment overrides.
 * Returns 0, or -1 with *why set.
 */
int rt_decode_memop(const uint8_t *insn, unsigned n, struct rt_memop *m, const char **why);
/* The effective address with the registers in f; next_rip: where the instruction ends. */
uint64_t rt_memop_ea(const struct rt_memop *m, const struct rt_frame *f, uint64_t next_rip);

/* Every 64-bit mmio-read, mmio-write, lidt and sidt site, decoded, sorted by address. */
#define RT_MEMSITES_MAX 1024u
struct rt_memsite {
	uint64_t addr, end; /* the site; where its instruction ends (RIP-relative base) */
	uint8_t kind;
	struct rt_memop m;
};
extern struct rt_memsite rt_memsites[RT_MEMSITES_MAX];
extern size_t rt_nmemsites;
/* Fill rt_memsites from rt_sites; 0, or -1 with *why and *where (the site) set. */
int rt_memsites_build(const char **why, uint64_t *where);

/*
 * Translate a guest-virtual address through 4-level page tables rooted at
 * `cr3` to a guest-physical one.  Tables are read at `phys_base + gpa` and
 * must lie in guest RAM (below `ram_size`).  Returns 0, or -1 if a table
 * is outside RAM, an entry is not present, or `va` is not canonical.
 */
int rt_walk(uint64_t cr3, uint64_t va, uintptr_t phys_base, uint64_t ram_size, uint64_t *gpa);

/* The guest register `hw` (0 = rax ... 15 = r15, hardware numbering) in a frame. */
uint64_t *rt_frame_reg(struct rt_frame *f, unsigned hw);

/*
 * Push a 64-bit interrupt frame as the CPU does for an interrupt without
 * a stack switch: RSP aligned down to 16, then SS, RSP, RFLAGS, CS, RIP.
 * Returns the new RSP (the address of the pushed RIP).
 */
uint64_t rt_push_intr_frame(uint64_t rsp, uint64_t rip, uint64_t cs, uint64_t rflags,
			    uint64_t ss);

/* A 64-bit IDT gate, decoded. */
struct rt_gate {
	uint64_t offset;
	uint16_t sel;
	uint8_t ist, type, dpl, present;
};
void rt_gate_decode(const void *gate16, struct rt_gate *g);

/* ---- rt_cpu.c: hardware */

unsigned rt_frame_cpu(const struct rt_frame *f); /* which CPU's runtime stack holds f */
void rt_idt_init(unsigned cpu);			 /* only the upcall gate present */
/* The guest's lidt: copy its gates into the CPU's real IDT, keep the upcall gate. */
void rt_idt_load(unsigned cpu, uint64_t base, uint16_t limit);
uint32_t rt_hw_in(unsigned port, unsigned size);
void rt_hw_out(unsigned port, unsigned size, uint32_t val);
/* Real rep ins/outs of `count` elements: DF from `df`; advances *addr. */
void rt_hw_ins(unsigned port, unsigned size, uint64_t *addr, uint64_t count, int df);
void rt_hw_outs(unsigned port, unsigned size, uint64_t *addr, uint64_t count, int df);
uint64_t rt_hw_load(uint64_t va, unsigned size);
void rt_hw_store(uint64_t va, unsigned size, uint64_t val);
uint64_t rt_hw_cr3(void);
uint16_t rt_hw_cs(void);
uint16_t rt_hw_ss(void);
/* CR0/2/3/4 and GDTR into the state block (at a park point). */
void rt_hw_snapshot(struct rt_cpu_state *st);
/* sti; hlt; cli: sleep until the host's upcall (or any interrupt). */
void rt_hw_idle_wait(unsigned cpu);
/* hlt with IF = 0, for good: the CPU is offline. */
__attribute__((noreturn)) void rt_hw_halt_down(void);
/* Set once rt_dev_init() ran: rt_fatal then also prints through the UART model. */
extern int rt_dev_ready;
/* A broken guest or runtime invariant: rt_boot.error = msg + value, power off with 1. */
__attribute__((noreturn)) void rt_fatal(const char *msg, uint64_t value);

/* ---- rt_boot.c */

/* On the BSP at RT_ENTRY_BOOT64; returns only if the guest may start. */
void rt_boot_main(void);

/* ---- rt_lib.c */

/* Append `v` in hex ("0x...") to the string in d (size n). */
void rt_strlcat_hex(char *d, uint64_t v, size_t n);
size_t rt_strlcat(char *d, const char *s, size_t n);

#endif
