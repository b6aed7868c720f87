/* corpus.h: shared declarations of the kernel-like test corpus */
#ifndef CORPUS_H
#define CORPUS_H
#include <stdint.h>

struct desc_ptr {
	uint16_t size;
	uint64_t address;
} __attribute__((packed));

unsigned long arch_local_irq_save(void);
void arch_local_irq_restore(unsigned long flags);
#endif
