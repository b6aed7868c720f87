/* i8259.c: the 8259A PIC pair: ICW/OCW programming, priority, EOI, cascade on IRQ2 */
#include "i8259.h"

#define ICW1_INIT  0x10	/* A0=0 write with D4 set starts initialisation */
#define ICW1_IC4   0x01	/* an ICW4 follows */
#define ICW1_SNGL  0x02	/* single chip, no ICW3 */
#define OCW3_SEL   0x08	/* A0=0 write with D3 set (and D4 clear) is OCW3 */
#define OCW3_RR    0x02	/* read-register command valid */
#define OCW3_RIS   0x01	/* read ISR instead of IRR */
#define OCW3_ESMM  0x40	/* special-mask command valid */
#define OCW3_SMM   0x20
#define ICW4_AEOI  0x02

/* The PIIX ELCR cannot make IRQ0-2 (timer, keyboard, cascade) or 8/13 level. */
#define ELCR_MASK_MASTER 0xf8
#define ELCR_MASK_SLAVE  0xde

/* Priority rank (0 = highest) of the best request in mask, 8 if none. */
static unsigned i8259_priority(const struct i8259_chip *c, uint8_t mask)
{
	unsigned p;

	if (!mask)
		return 8;
	for (p = 0; !(mask & (1u << ((p + c->priority_add) & 7))); p++)
		;
	return p;
}

/* Input that this chip would signal now, or -1: a request only interrupts
 * if it outranks everything in service (fully nested mode).  In special
 * mask mode masked in-service levels do not block lower ones. */
static int i8259_chip_pending(const struct i8259_chip *c)
{
	unsigned req = i8259_priority(c, (uint8_t)(c->irr & ~c->imr));
	uint8_t in_service = c->isr;

	if (req == 8)
		return -1;
	if (c->special_mask)
		in_service &= (uint8_t)~c->imr;
	if (req < i8259_priority(c, in_service))
		return (int)((req + c->priority_add) & 7);
	return -1;
}

/* Edge inputs latch IRR on a rising edge and keep it until INTA; level
 * inputs make IRR follow the line. */
static void i8259_chip_input(struct i8259_chip *c, unsigned n, int level)
{
	uint8_t bit = (uint8_t)(1u << n);

	if (c->elcr & bit) {
		if (level)
			c->irr |= bit;
		else
			c->irr &= (uint8_t)~bit;
	} else if (level && !(c->lines & bit)) {
		c->irr |= bit;
	}
	if (level)
		c->lines |= bit;
	else
		c->lines &= (uint8_t)~bit;
}

/* The slave's INTR output is the master's input 2. */
static void i8259_update(struct i8259 *dev)
{
	if (!dev->pic[0].single)
		i8259_chip_input(&dev->pic[0], I8259_CASCADE_IRQ,
				 i8259_chip_pending(&dev->pic[1]) >= 0);
}

static void i8259_chip_reset(struct i8259_chip *c)
{
	uint8_t elcr = c->elcr, lines = c->lines;

	__builtin_memset(c, 0, sizeof(*c));
	c->elcr = elcr;
	c->lines = lines;
	c->irr = lines & elcr;	/* level lines still high are still requests */
}

void i8259_init(struct i8259 *dev, const struct dev_env *env)
{
	__builtin_memset(dev, 0, sizeof(*dev));
	dev->env = env;
	i8259_chip_reset(&dev->pic[0]);
	i8259_chip_reset(&dev->pic[1]);
}

static void i8259_eoi(struct i8259_chip *c, unsigned irq, bool rotate)
{
	c->isr &= (uint8_t)~(1u << irq);
	if (rotate)
		c->priority_add = (uint8_t)((irq + 1) & 7);
}

static void i8259_write_cmd(struct i8259_chip *c, uint8_t v)
{
	unsigned prio;

	if (v & ICW1_INIT) {
		i8259_chip_reset(c);
		c->init_step = 2;
		c->icw4_needed = v & ICW1_IC4;
		c->single = (v & ICW1_SNGL) != 0;
		return;
	}
	if (v & OCW3_SEL) {
		if (v & OCW3_RR)
			c->read_isr = v & OCW3_RIS;
		if (v & OCW3_ESMM)
			c->special_mask = (v & OCW3_SMM) != 0;
		return;	/* poll mode (0x04) is not modelled */
	}
	switch (v >> 5) {	/* OCW2: R, SL, EOI */
	case 0: /* rotate in AEOI: clear */
	case 4: /* rotate in AEOI: set */
		c->rotate_on_aeoi = (v >> 7) & 1;
		break;
	case 1: /* non-specific EOI */
	case 5: /* rotate on non-specific EOI */
		prio = i8259_priority(c, c->isr);
		if (prio != 8)
			i8259_eoi(c, (prio + c->priority_add) & 7, (v >> 5) == 5);
		break;
	case 3: /* specific EOI */
		i8259_eoi(c, v & 7, false);
		break;
	case 7: /* rotate on specific EOI */
		i8259_eoi(c, v & 7, true);
		break;
	case 6: /* set priority: v&7 becomes the lowest */
		c->priority_add = (uint8_t)(((v & 7) + 1) & 7);
		break;
	default: /* 2: no operation */
		break;
	}
}

static void i8259_write_data(struct i8259_chip *c, uint8_t v)
{
	switch (c->init_step) {
	case 2:
		c->vector_base = v & 0xf8;
		c->init_step = c->single ? (c->icw4_needed ? 4 : 0) : 3;
		break;
	case 3:
		c->icw3 = v;
		c->init_step = c->icw4_needed ? 4 : 0;
		break;
	case 4:
		c->auto_eoi = (v & ICW4_AEOI) != 0;
		c->init_step = 0;
		break;
	default:
		c->imr = v;	/* OCW1 */
		break;
	}
}

uint32_t i8259_io_read(struct i8259 *dev, uint32_t port, unsigned size)
{
	struct i8259_chip *c;

	(void)size;
	if (port == I8259_ELCR_BASE || port == I8259_ELCR_BASE + 1)
		return dev->pic[port - I8259_ELCR_BASE].elcr;
	if ((port & ~1u) == I8259_MASTER_BASE)
		c = &dev->pic[0];
	else if ((port & ~1u) == I8259_SLAVE_BASE)
		c = &dev->pic[1];
	else
		return 0xff;
	if (port & 1)
		return c->imr;
	return c->read_isr ? c->isr : c->irr;
}

void i8259_io_write(struct i8259 *dev, uint32_t port, unsigned size, uint32_t value)
{
	uint8_t v = (uint8_t)value;
	struct i8259_chip *c;

	(void)size;
	if (port == I8259_ELCR_BASE || port == I8259_ELCR_BASE + 1) {
		c = &dev->pic[port - I8259_ELCR_BASE];
		c->elcr = v & (port == I8259_ELCR_BASE ? ELCR_MASK_MASTER : ELCR_MASK_SLAVE);
		c->irr = (uint8_t)((c->irr & ~c->elcr) | (c->lines & c->elcr));
		i8259_update(dev);
		return;
	}
	if ((port & ~1u) == I8259_MASTER_BASE)
		c = &dev->pic[0];
	else if ((port & ~1u) == I8259_SLAVE_BASE)
		c = &dev->pic[1];
	else
		return;
	if (port & 1)
		i8259_write_data(c, v);
	else
		i8259_write_cmd(c, v);
	i8259_update(dev);
}

void i8259_set_irq(struct i8259 *dev, unsigned irq, int level)
{
	if (irq >= 16)
		return;
	i8259_chip_input(&dev->pic[irq >> 3], irq & 7, level != 0);
	i8259_update(dev);
}

bool i8259_has_interrupt(const struct i8259 *dev)
{
	return i8259_chip_pending(&dev->pic[0]) >= 0;
}

/* First INTA pulse: ISR takes the request, IRR drops it (edge mode). */
static void i8259_chip_ack(struct i8259_chip *c, unsigned irq)
{
	uint8_t bit = (uint8_t)(1u << irq);

	if (c->auto_eoi) {
		if (c->rotate_on_aeoi)
			c->priority_add = (uint8_t)((irq + 1) & 7);
	} else {
		c->isr |= bit;
	}
	if (!(c->elcr & bit))
		c->irr &= (uint8_t)~bit;
}

uint8_t i8259_ack(struct i8259 *dev)
{
	struct i8259_chip *m = &dev->pic[0], *s = &dev->pic[1];
	int irq = i8259_chip_pending(m), irq2;
	uint8_t vector;

	if (irq < 0) {
		/* The request vanished before INTA: the chip answers IRQ7. */
		vector = (uint8_t)(m->vector_base + 7);
	} else {
		i8259_chip_ack(m, (unsigned)irq);
		if (irq == I8259_CASCADE_IRQ && !m->single) {
			irq2 = i8259_chip_pending(s);
			if (irq2 >= 0)
				i8259_chip_ack(s, (unsigned)irq2);
			else
				irq2 = 7;	/* spurious IRQ15 */
			vector = (uint8_t)(s->vector_base + irq2);
		} else {
			vector = (uint8_t)(m->vector_base + irq);
		}
	}
	i8259_update(dev);
	return vector;
}

void i8259_save(const struct i8259 *dev, struct i8259_snap *snap)
{
	unsigned i;

	__builtin_memset(snap, 0, sizeof(*snap));
	for (i = 0; i < 2; i++) {
		const struct i8259_chip *c = &dev->pic[i];
		struct i8259_chip_snap *s = &snap->pic[i];

		s->irr = c->irr;
		s->isr = c->isr;
		s->imr = c->imr;
		s->lines = c->lines;
		s->elcr = c->elcr;
		s->vector_base = c->vector_base;
		s->icw3 = c->icw3;
		s->init_step = c->init_step;
		s->priority_add = c->priority_add;
		s->icw4_needed = c->icw4_needed;
		s->single = c->single;
		s->auto_eoi = c->auto_eoi;
		s->rotate_on_aeoi = c->rotate_on_aeoi;
		s->read_isr = c->read_isr;
		s->special_mask = c->special_mask;
	}
}

int i8259_restore(struct i8259 *dev, const struct i8259_snap *snap)
{
	unsigned i;

	for (i = 0; i < 2; i++) {
		const struct i8259_chip_snap *s = &snap->pic[i];
		uint8_t elcr_mask = i ? ELCR_MASK_SLAVE : ELCR_MASK_MASTER;

		if ((s->init_step != 0 && (s->init_step < 2 || s->init_step > 4)) ||
		    (s->vector_base & 7) || s->priority_add > 7 || (s->elcr & ~elcr_mask) ||
		    s->icw4_needed > 1 || s->single > 1 || s->auto_eoi > 1 ||
		    s->rotate_on_aeoi > 1 || s->read_isr > 1 || s->special_mask > 1)
			return DEV_RESTORE_EINVAL;
	}
	for (i = 0; i < 2; i++) {
		const struct i8259_chip_snap *s = &snap->pic[i];
		struct i8259_chip *c = &dev->pic[i];

		c->irr = s->irr;
		c->isr = s->isr;
		c->imr = s->imr;
		c->lines = s->lines;
		c->elcr = s->elcr;
		c->vector_base = s->vector_base;
		c->icw3 = s->icw3;
		c->init_step = s->init_step;
		c->priority_add = s->priority_add;
		c->icw4_needed = s->icw4_needed;
		c->single = s->single;
		c->auto_eoi = s->auto_eoi;
		c->rotate_on_aeoi = s->rotate_on_aeoi;
		c->read_isr = s->read_isr;
		c->special_mask = s->special_mask;
	}
	return DEV_RESTORE_OK;
}
