/* guest.h: the reference guest kernel's shared layout, selectors and functions */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* GDT selectors.  The order is fixed by syscall/sysret (see cpu.c). */
#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define USER_DS	  0x23 /* 0x20 | RPL 3 */
#define USER_CS	  0x2b /* 0x28 | RPL 3 */
#define TSS_SEL	  0x30

/* Virtual layout.  The low 1 GiB is identity mapped, supervisor only. */
#define IDENTITY_LIMIT	 0x40000000ull
#define USER_BASE	 0x40000000ull /* the .user section (code and data) */
#define USER_STACK_TOP	 0x40200000ull
#define USER_STACK_PAGES 16
#define USER_STACK_STRIDE 0x20000ull /* cpu c's stack tops at USER_STACK_TOP - c * this */
#define USER_MEM	 0x40400000ull /* the workload's buffer */
#define USER_LIMIT	 0x80000000ull
#define MMIO_WINDOW	 0x80000000ull /* device registers, mapped uncached */

#define PAGE_SIZE 4096ull
#define LARGE_PAGE_SIZE 0x200000ull /* the fill region is mapped with 2 MiB pages */
#define PTE_P	  0x001ull
#define PTE_W	  0x002ull
#define PTE_U	  0x004ull
#define PTE_PWT	  0x008ull
#define PTE_PCD	  0x010ull
#define PTE_PS	  0x080ull
#define PTE_ADDR  0x000ffffffffff000ull

/* Interrupt vectors: exceptions 0-31, the remapped 8259 pair after them. */
#define IRQ_BASE      0x20
#define VEC_SYSCALL   0x100 /* pseudo vector in the frame of a syscall */

/* The register frame entry.S builds for traps, interrupts and syscalls. */
struct trapframe {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss; /* what iretq pops */
};

/* At most this many CPUs run: one per workload stream is all there is to do. */
#define MAX_CPUS 2

/*
 * Per-CPU block at GS base while in the kernel; entry.S knows the first
 * two offsets, this_cpu() the third.  Everything a CPU changes on its own
 * (counters, the last progress report) lives here, so the CPUs share
 * nothing but what they publish on purpose.
 */
struct percpu {
	uint64_t kernel_rsp;  /* 0: stack for syscalls */
	uint64_t user_rsp;    /* 8: scratch for the user's rsp during a syscall */
	struct percpu *self;  /* 16: what %gs:16 gives this_cpu() */
	uint64_t cpu;	      /* 0 = the boot CPU */
	uint64_t syscalls;
	uint64_t last_report; /* tick of the last progress line */
	uint64_t cur_steps, cur_sum; /* the last SYS_STEP's global step and checksum */
	uint64_t syscall_fixups; /* system calls completed by syscall_unswitched() (cpu.c) */
};

static inline struct percpu *this_cpu(void)
{
	struct percpu *p;
	__asm__ volatile("movq %%gs:16, %0" : "=r"(p));
	return p;
}

/* Exit codes written to the debug-exit port. */
#define EXIT_OK	  0
#define EXIT_FAIL 1

/* console.c */
void console_init(void);
void console_putc(char c);
void console_write(const char *s, size_t n);
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kvprintf(const char *fmt, va_list ap);
void *kmemset(void *d, int c, size_t n);
void *kmemcpy(void *d, const void *s, size_t n);
int kmemcmp(const void *a, const void *b, size_t n);

/* cpu.c */
extern volatile uint64_t ticks;
extern volatile uint64_t user_irqs;
void cpu_init(unsigned cpu);
struct percpu *cpu_percpu(unsigned cpu);
void cpu_report(void);
void poweroff(int code) __attribute__((noreturn));
void panic(const char *what) __attribute__((noreturn));
void enter_user(uint64_t rip, uint64_t rsp) __attribute__((noreturn));
void trap(struct trapframe *tf);
unsigned cpu_reload_tr(void); /* selftest: ltr again; returns the TSS type it left (0xb: busy) */

/* irq.c */
void pic_init(void);
void pic_unmask(unsigned irq);
void pit_init(unsigned hz);
void irq_dispatch(unsigned irq, struct trapframe *tf);
typedef void (*irq_handler)(void);
void irq_register(unsigned irq, irq_handler h);
void irqlog_report(void); /* irqlog=1: where kernel-mode interrupts landed */
#define TIMER_HZ 100

/* mm.c */
void mm_init(uint64_t ram_top);
uint64_t mm_free_bytes(void);
uint64_t alloc_page(void);
void map_page(uint64_t va, uint64_t pa, uint64_t flags);
uint64_t alloc_large_unzeroed(uint64_t bytes); /* 2 MiB-aligned, contents as found */
void map_large_page(uint64_t va, uint64_t pa, uint64_t flags);
void *map_mmio(uint64_t pa, uint64_t len);
int user_range_ok(uint64_t va, uint64_t len); /* kernel.c */
int syscall_handler(struct trapframe *tf);    /* kernel.c: 0 = leave by sysretq */

/* pci.c */
uint32_t pci_read32(unsigned bus, unsigned dev, unsigned fn, unsigned off);
void pci_write32(unsigned bus, unsigned dev, unsigned fn, unsigned off, uint32_t v);
void pci_scan(void);

/* dp83820.c */
void dp83820_attach(unsigned bus, unsigned dev, unsigned fn);
void dp83820_poll(void);
void dp83820_report(void);
void dp83820_selftest(void); /* selftest=1: the mmio-read/mmio-write check */

/* selftest.c (selftest=1) */
unsigned selftest_run(void);             /* one line per site kind; returns how many failed */
int selftest_trap(struct trapframe *tf); /* a fault a check provoked: 1 if it was handled */

/* smp.c */
extern unsigned ncpus;
void smp_init(void);
void ap_main(uint32_t cpu) __attribute__((noreturn));

/* boot.S */
void ap_start32(void);

/* user.c (ring 3) */
void user_main(void);

/* entry.S */
extern const uint64_t trap_stubs[48];
void syscall_entry(void);
void trap_return_to(struct trapframe *tf) __attribute__((noreturn));

/* System calls: number in %rax, arguments in %rdi, %rsi; result in %rax. */
enum {
	SYS_ARGS,  /* (struct user_args *) fill in the workload's parameters */
	SYS_TICKS, /* () timer ticks since boot */
	SYS_STEP,  /* (steps done, running checksum) progress; returns ticks */
	SYS_WRITE, /* (const char *, length) to the console */
	SYS_DONE,  /* (steps, final checksum) print the result and power off (boot CPU) */
	SYS_STREAM, /* (stream, h) publish a finished stream's checksum */
	SYS_JOIN,  /* (stream) wait until it is published; returns its checksum (boot CPU) */
	SYS_EXIT,  /* () this CPU has nothing more to do: it halts */
};

struct user_args {
	uint64_t seed;
	uint64_t steps; /* ignored when forever is set */
	uint64_t forever;
	uint64_t mem_va;
	uint64_t mem_bytes; /* a multiple of 8, a word per stream at least */
	uint64_t cpu;	    /* which CPU this task runs on */
	uint64_t ncpus;	    /* CPU c runs the streams c, c + ncpus, ... */
	uint64_t fill_va;    /* fill=SIZE: the region the boot CPU's task writes first */
	uint64_t fill_bytes; /* a multiple of 8; 0: no fill (workload.h) */
};

#endif
