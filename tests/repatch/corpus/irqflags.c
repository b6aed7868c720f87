/* irqflags.c: corpus: interrupt-flag helpers as a kernel writes them (pushf/popf, cli/sti, hlt) */
#include "corpus.h"

static inline unsigned long native_save_fl(void)
{
	unsigned long flags;
	__asm__ volatile("pushfq ; popq %0" : "=rm"(flags) : : "memory");
	return flags;
}

static inline void native_restore_fl(unsigned long flags)
{
	__asm__ volatile("pushq %0 ; popfq" : : "g"(flags) : "memory", "cc");
}

void arch_local_irq_disable(void) { __asm__ volatile("cli" : : : "memory"); }
void arch_local_irq_enable(void) { __asm__ volatile("sti" : : : "memory"); }
void safe_halt(void) { __asm__ volatile("sti; hlt" : : : "memory"); }
void halt(void) { __asm__ volatile("hlt" : : : "memory"); }

unsigned long arch_local_irq_save(void)
{
	unsigned long flags = native_save_fl();
	arch_local_irq_disable();
	return flags;
}

void arch_local_irq_restore(unsigned long flags)
{
	native_restore_fl(flags);
}

/* 16-bit pushf/popf forms, as real-mode helpers spell them in 64-bit code. */
void flags16(void)
{
	__asm__ volatile("pushfw\n\tpopfw" ::: "memory", "cc");
}
