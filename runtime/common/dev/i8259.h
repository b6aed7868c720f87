/* i8259.h: the 8259A programmable interrupt controller pair of a PC (master 0x20, slave 0xa0) */
#ifndef I8259_H
#define I8259_H

#include <stdbool.h>
#include <stdint.h>

#include "devmodel.h"

#define I8259_MASTER_BASE 0x20
#define I8259_SLAVE_BASE  0xa0
#define I8259_ELCR_BASE   0x4d0	/* edge/level control, one byte per chip */
#define I8259_CASCADE_IRQ 2

/* One 8259A.  Field names follow the datasheet. */
struct i8259_chip {
	uint8_t irr;		/* interrupt request register */
	uint8_t isr;		/* in-service register */
	uint8_t imr;		/* interrupt mask register (OCW1) */
	uint8_t lines;		/* current level of the eight input lines */
	uint8_t elcr;		/* 1 = level-triggered input (PIIX ELCR) */
	uint8_t vector_base;	/* ICW2 & 0xf8 */
	uint8_t icw3;		/* cascade wiring, kept for read-back */
	uint8_t init_step;	/* 0 = operational, 2..4 = expecting ICWn */
	uint8_t priority_add;	/* input with the highest priority (rotation) */
	bool icw4_needed;
	bool single;		/* ICW1.SNGL: no cascade */
	bool auto_eoi;		/* ICW4.AEOI */
	bool rotate_on_aeoi;	/* OCW2 R+SL=0, EOI=0 sets it */
	bool read_isr;		/* OCW3 RIS: port reads return ISR, not IRR */
	bool special_mask;	/* OCW3 SMM */
};

struct i8259 {
	const struct dev_env *env;
	struct i8259_chip pic[2];	/* [0] master, [1] slave */
};

/* Plain snapshot: the same fields, no pointers. */
struct i8259_chip_snap {
	uint8_t irr, isr, imr, lines, elcr, vector_base, icw3, init_step, priority_add;
	uint8_t icw4_needed, single, auto_eoi, rotate_on_aeoi, read_isr, special_mask;
};

struct i8259_snap {
	struct i8259_chip_snap pic[2];
};

void i8259_init(struct i8259 *dev, const struct dev_env *env);
/* Ports 0x20/0x21, 0xa0/0xa1, 0x4d0/0x4d1; byte accesses. */
uint32_t i8259_io_read(struct i8259 *dev, uint32_t port, unsigned size);
void i8259_io_write(struct i8259 *dev, uint32_t port, unsigned size, uint32_t value);
/* Drive ISA input line irq (0-15) to level. */
void i8259_set_irq(struct i8259 *dev, unsigned irq, int level);
/* Is the master's INTR output asserted (an unmasked request outranks service)? */
bool i8259_has_interrupt(const struct i8259 *dev);
/* The INTA cycle: returns the vector to inject (spurious IRQ7/15 if nothing). */
uint8_t i8259_ack(struct i8259 *dev);
void i8259_save(const struct i8259 *dev, struct i8259_snap *snap);
int i8259_restore(struct i8259 *dev, const struct i8259_snap *snap);

#endif
