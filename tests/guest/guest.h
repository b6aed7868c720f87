/* guest.h: the reference guest kernel's shared layout, selectors and functions */
#ifndef GUEST_H
#define GUEST_H

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
#define USER_MEM	 0x40400000ull /* the workload's buffer */
#define USER_LIMIT	 0x80000000ull
#define MMIO_WINDOW	 0x80000000ull /* device registers, mapped uncached */

#define PAGE_SIZE 4096ull
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

/* Per-CPU block at GS base while in the kernel; entry.S knows the offsets. */
struct percpu {
	uint64_t kernel_rsp; /* 0: stack for syscalls */
	uint64_t user_rsp;   /* 8: scratch for the user's rsp during a syscall */
};

/* Exit codes written to the debug-exit port. */
#define EXIT_OK	  0
#define EXIT_FAIL 1

/* console.c */
void console_init(void);
void console_putc(char c);
void console_write(const char *s, size_t n);
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void *kmemset(void *d, int c, size_t n);
void *kmemcpy(void *d, const void *s, size_t n);
int kmemcmp(const void *a, const void *b, size_t n);

/* cpu.c */
extern volatile uint64_t ticks;
extern volatile uint64_t user_irqs;
void cpu_init(void);
void cpu_report(void);
void poweroff(int code) __attribute__((noreturn));
void panic(const char *what) __attribute__((noreturn));
void enter_user(uint64_t rip, uint64_t rsp) __attribute__((noreturn));
void trap(struct trapframe *tf);

/* irq.c */
void pic_init(void);
void pic_unmask(unsigned irq);
void pit_init(unsigned hz);
void irq_dispatch(unsigned irq, struct trapframe *tf);
typedef void (*irq_handler)(void);
void irq_register(unsigned irq, irq_handler h);
#define TIMER_HZ 100

/* mm.c */
void mm_init(uint64_t ram_top);
uint64_t mm_free_bytes(void);
uint64_t alloc_page(void);
void map_page(uint64_t va, uint64_t pa, uint64_t flags);
void *map_mmio(uint64_t pa, uint64_t len);
int user_range_ok(uint64_t va, uint64_t len); /* kernel.c */

/* pci.c */
uint32_t pci_read32(unsigned bus, unsigned dev, unsigned fn, unsigned off);
void pci_write32(unsigned bus, unsigned dev, unsigned fn, unsigned off, uint32_t v);
void pci_scan(void);

/* dp83820.c */
void dp83820_attach(unsigned bus, unsigned dev, unsigned fn);
void dp83820_poll(void);
void dp83820_report(void);

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
	SYS_DONE,  /* (steps, final checksum) print the result and power off */
};

struct user_args {
	uint64_t seed;
	uint64_t steps; /* ignored when forever is set */
	uint64_t forever;
	uint64_t mem_va;
	uint64_t mem_bytes; /* a multiple of 8, at least 8 */
};

#endif
