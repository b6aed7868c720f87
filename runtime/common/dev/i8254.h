/* i8254.h: the 8254 programmable interval timer (three counters at 0x40-0x43, clock from env->now_ns) */
#ifndef I8254_H
#define I8254_H

#include <stdbool.h>
#include <stdint.h>

#include "devmodel.h"

#define I8254_BASE     0x40
#define I8254_HZ       1193182u
#define I8254_IRQ      0
#define I8254_NO_DEADLINE UINT64_MAX

/* A counter does not tick: its value is derived from the time since it was
 * loaded, so the model needs no host timer except for IRQ0 deadlines. */
struct i8254_counter {
	uint64_t load_ns;	/* env time at which counting (re)started */
	uint64_t edges;		/* rising OUT edges already signalled (counter 0) */
	uint32_t count;		/* initial count, 1..65536 */
	uint32_t paused_ticks;	/* elapsed ticks frozen while GATE is low */
	uint16_t latch;		/* latched count (latch command / read-back) */
	uint8_t mode;		/* 0..5 */
	uint8_t rw;		/* 1 lobyte, 2 hibyte, 3 lobyte then hibyte */
	uint8_t bcd;		/* stored for status; counting is binary */
	uint8_t lsb;		/* first byte of a lo/hi count write */
	uint8_t status;		/* latched status byte */
	uint8_t latched;	/* latched count bytes left to read: 0, 1 or 2 */
	bool status_latched;
	bool counting;		/* a full count has been written */
	bool paused;		/* GATE low in a mode where it holds the count */
	bool gate;
	bool write_msb;		/* next count byte written is the MSB */
	bool read_msb;		/* next live byte read is the MSB */
	bool null_count;	/* count written, not yet loaded */
};

struct i8254 {
	const struct dev_env *env;
	struct i8254_counter ctr[3];
	bool irq_level;		/* level driven on IRQ0 */
};

/* Times are ages relative to saved_ns so the restore side rebases them
 * onto its own clock: counters keep their phase across hosts. */
struct i8254_counter_snap {
	uint64_t load_age_ns;
	uint64_t edges;
	uint32_t count, paused_ticks;
	uint16_t latch;
	uint8_t mode, rw, bcd, lsb, status, latched;
	uint8_t status_latched, counting, paused, gate, write_msb, read_msb, null_count;
};

struct i8254_snap {
	struct i8254_counter_snap ctr[3];
	uint8_t irq_level;
};

void i8254_init(struct i8254 *dev, const struct dev_env *env);
/* Ports 0x40-0x43, byte accesses. */
uint32_t i8254_io_read(struct i8254 *dev, uint32_t port, unsigned size);
void i8254_io_write(struct i8254 *dev, uint32_t port, unsigned size, uint32_t value);
/* Absolute env time of the next IRQ0 edge, or I8254_NO_DEADLINE. */
uint64_t i8254_next_deadline_ns(const struct i8254 *dev);
/* Call at (or after) the deadline: raises IRQ0 through env->set_irq. */
void i8254_tick(struct i8254 *dev);
/* GATE input (only counter 2's is wired, to port 0x61 bit 0) and OUT level. */
void i8254_set_gate(struct i8254 *dev, unsigned ch, bool level);
bool i8254_get_out(const struct i8254 *dev, unsigned ch);
void i8254_save(const struct i8254 *dev, struct i8254_snap *snap);
int i8254_restore(struct i8254 *dev, const struct i8254_snap *snap);

#endif
