/* i8254.c: the 8254 PIT: control word, count/latch/read-back access, modes 0-5, IRQ0 from counter 0 */
#include "i8254.h"

#define NS_PER_S 1000000000ull

#define CW_SC(v)   (((v) >> 6) & 3)	/* select counter; 3 = read-back */
#define CW_RW(v)   (((v) >> 4) & 3)	/* 0 = counter latch command */
#define CW_MODE(v) (((v) >> 1) & 7)
#define CW_BCD     0x01
#define RB_NCOUNT  0x20	/* read-back: do NOT latch count */
#define RB_NSTATUS 0x10	/* read-back: do NOT latch status */
#define ST_OUT     0x80
#define ST_NULL    0x40

/* Split so neither product overflows 64 bits for any uint64_t input. */
static uint64_t i8254_ns_to_ticks(uint64_t ns)
{
	return ns / NS_PER_S * I8254_HZ + ns % NS_PER_S * I8254_HZ / NS_PER_S;
}

/* Earliest ns at which ticks have elapsed (rounded up). */
static uint64_t i8254_ticks_to_ns(uint64_t ticks)
{
	return ticks / I8254_HZ * NS_PER_S +
	       (ticks % I8254_HZ * NS_PER_S + I8254_HZ - 1) / I8254_HZ;
}

static uint64_t i8254_now(const struct i8254 *dev)
{
	return dev->env->now_ns(dev->env->ctx);
}

static uint64_t i8254_elapsed(const struct i8254 *dev, const struct i8254_counter *c)
{
	if (c->paused)
		return c->paused_ticks;
	return i8254_ns_to_ticks(i8254_now(dev) - c->load_ns);
}

/* Counter value after t ticks.  Modes 2 and 3 reload; the one-shot modes
 * keep decrementing through zero as the chip does. */
static uint16_t i8254_value(const struct i8254_counter *c, uint64_t t)
{
	uint64_t n = c->count, half;

	switch (c->mode) {
	case 2:
		return (uint16_t)(n - t % n);
	case 3:
		/* Decrements by two, reloading at each half period. */
		half = (n + 1) / 2;
		t %= n;
		return (uint16_t)((n & ~1ull) - 2 * (t < half ? t : t - half));
	default:
		return (uint16_t)(n - t);
	}
}

static bool i8254_out_at(const struct i8254_counter *c, uint64_t t)
{
	if (!c->counting)
		return c->mode != 0 && c->mode != 1;
	switch (c->mode) {
	case 0:
	case 1:
		return t >= c->count;
	case 2:
		return t % c->count != c->count - 1;
	case 3:
		return t % c->count < (c->count + 1) / 2;
	default: /* 4, 5: one-tick low strobe at terminal count */
		return t != c->count;
	}
}

/* Rising OUT edges in (0, t]: what IRQ0 sees. */
static uint64_t i8254_edges_at(const struct i8254_counter *c, uint64_t t)
{
	switch (c->mode) {
	case 2:
	case 3:
		return t / c->count;
	case 0:
	case 1:
		return t >= c->count;
	default:
		return t >= (uint64_t)c->count + 1;
	}
}

/* Tick of rising edge number e (1-based), or UINT64_MAX if it never comes. */
static uint64_t i8254_edge_tick(const struct i8254_counter *c, uint64_t e)
{
	switch (c->mode) {
	case 2:
	case 3:
		return e * c->count;
	case 0:
	case 1:
		return e == 1 ? c->count : UINT64_MAX;
	default:
		return e == 1 ? (uint64_t)c->count + 1 : UINT64_MAX;
	}
}

static void i8254_set_irq0(struct i8254 *dev, bool level)
{
	if (dev->irq_level != level) {
		dev->irq_level = level;
		dev->env->set_irq(dev->env->ctx, I8254_IRQ, level);
	}
}

static void i8254_start(struct i8254 *dev, unsigned ch, uint32_t count)
{
	struct i8254_counter *c = &dev->ctr[ch];

	c->count = count ? count : 65536;
	c->load_ns = i8254_now(dev);
	c->counting = true;
	c->null_count = false;
	c->edges = 0;
	/* Gate low holds modes 0/4 at the loaded count; 1/5 wait for a trigger. */
	c->paused = !c->gate;
	c->paused_ticks = 0;
	if (ch == 0)
		i8254_set_irq0(dev, false);
}

void i8254_init(struct i8254 *dev, const struct dev_env *env)
{
	unsigned i;

	__builtin_memset(dev, 0, sizeof(*dev));
	dev->env = env;
	for (i = 0; i < 3; i++) {
		dev->ctr[i].rw = 3;
		dev->ctr[i].count = 65536;
		dev->ctr[i].gate = i != 2;	/* counters 0/1 have GATE tied high */
	}
}

static void i8254_latch_count(struct i8254 *dev, struct i8254_counter *c)
{
	if (c->latched)
		return;	/* a second latch before the read is ignored */
	c->latch = c->counting ? i8254_value(c, i8254_elapsed(dev, c)) : (uint16_t)c->count;
	c->latched = c->rw == 3 ? 2 : 1;
}

static void i8254_latch_status(struct i8254 *dev, struct i8254_counter *c)
{
	if (c->status_latched)
		return;
	c->status = (uint8_t)((i8254_out_at(c, i8254_elapsed(dev, c)) ? ST_OUT : 0) |
			      (c->null_count ? ST_NULL : 0) | c->rw << 4 | c->mode << 1 | c->bcd);
	c->status_latched = true;
}

static void i8254_control(struct i8254 *dev, uint8_t v)
{
	struct i8254_counter *c;
	unsigned i, mode;

	if (CW_SC(v) == 3) {
		for (i = 0; i < 3; i++) {
			if (!(v & (2u << i)))
				continue;
			if (!(v & RB_NCOUNT))
				i8254_latch_count(dev, &dev->ctr[i]);
			if (!(v & RB_NSTATUS))
				i8254_latch_status(dev, &dev->ctr[i]);
		}
		return;
	}
	c = &dev->ctr[CW_SC(v)];
	if (CW_RW(v) == 0) {
		i8254_latch_count(dev, c);
		return;
	}
	mode = CW_MODE(v);
	c->mode = (uint8_t)(mode > 5 ? mode - 4 : mode);	/* 6, 7 alias 2, 3 */
	c->rw = (uint8_t)CW_RW(v);
	c->bcd = v & CW_BCD;
	c->counting = false;
	c->paused = false;
	c->null_count = true;
	c->write_msb = c->read_msb = false;
	c->latched = 0;
	c->status_latched = false;
	if (CW_SC(v) == 0)	/* OUT goes low in mode 0, high otherwise */
		i8254_set_irq0(dev, false);
}

static void i8254_write_count(struct i8254 *dev, unsigned ch, uint8_t v)
{
	struct i8254_counter *c = &dev->ctr[ch];

	switch (c->rw) {
	case 1:
		i8254_start(dev, ch, v);
		break;
	case 2:
		i8254_start(dev, ch, (uint32_t)v << 8);
		break;
	default:
		if (!c->write_msb) {
			c->lsb = v;
			c->write_msb = true;
			if (c->mode == 0)	/* the first byte stops a mode-0 count */
				c->counting = false;
		} else {
			c->write_msb = false;
			i8254_start(dev, ch, c->lsb | (uint32_t)v << 8);
		}
		break;
	}
}

static uint8_t i8254_read_count(struct i8254 *dev, struct i8254_counter *c)
{
	uint16_t val;
	uint8_t b;

	if (c->status_latched) {
		c->status_latched = false;
		return c->status;
	}
	if (c->latched) {
		/* lo/hi latches read LSB first; single-byte modes pick their byte */
		if (c->rw == 3)
			b = c->latched == 2 ? (uint8_t)c->latch : (uint8_t)(c->latch >> 8);
		else
			b = c->rw == 1 ? (uint8_t)c->latch : (uint8_t)(c->latch >> 8);
		c->latched--;
		return b;
	}
	val = c->counting ? i8254_value(c, i8254_elapsed(dev, c)) : (uint16_t)c->count;
	switch (c->rw) {
	case 1:
		return (uint8_t)val;
	case 2:
		return (uint8_t)(val >> 8);
	default:
		b = c->read_msb ? (uint8_t)(val >> 8) : (uint8_t)val;
		c->read_msb = !c->read_msb;
		return b;
	}
}

uint32_t i8254_io_read(struct i8254 *dev, uint32_t port, unsigned size)
{
	(void)size;
	if (port < I8254_BASE || port > I8254_BASE + 2)
		return 0xff;	/* the control port is write-only */
	return i8254_read_count(dev, &dev->ctr[port - I8254_BASE]);
}

void i8254_io_write(struct i8254 *dev, uint32_t port, unsigned size, uint32_t value)
{
	(void)size;
	if (port == I8254_BASE + 3)
		i8254_control(dev, (uint8_t)value);
	else if (port >= I8254_BASE && port < I8254_BASE + 3)
		i8254_write_count(dev, port - I8254_BASE, (uint8_t)value);
}

uint64_t i8254_next_deadline_ns(const struct i8254 *dev)
{
	const struct i8254_counter *c = &dev->ctr[0];
	uint64_t t;

	if (!c->counting || c->paused)
		return I8254_NO_DEADLINE;
	t = i8254_edge_tick(c, c->edges + 1);
	if (t == UINT64_MAX)
		return I8254_NO_DEADLINE;
	return c->load_ns + i8254_ticks_to_ns(t);
}

void i8254_tick(struct i8254 *dev)
{
	struct i8254_counter *c = &dev->ctr[0];
	uint64_t e;

	if (!c->counting || c->paused)
		return;
	e = i8254_edges_at(c, i8254_elapsed(dev, c));
	if (e <= c->edges)
		return;
	c->edges = e;	/* missed periods coalesce, as they would in the PIC */
	i8254_set_irq0(dev, true);
	if (c->mode != 0 && c->mode != 1)	/* periodic: a pulse is an edge */
		i8254_set_irq0(dev, false);
}

void i8254_set_gate(struct i8254 *dev, unsigned ch, bool level)
{
	struct i8254_counter *c;

	if (ch > 2)
		return;
	c = &dev->ctr[ch];
	if (c->gate == level)
		return;
	c->gate = level;
	if (!c->counting)
		return;
	if (!level) {
		c->paused_ticks = (uint32_t)(i8254_elapsed(dev, c) > UINT32_MAX ?
					     UINT32_MAX : i8254_elapsed(dev, c));
		c->paused = true;
		return;
	}
	/* Rising gate: modes 0/4 resume, the others (re)trigger from the count. */
	if (c->mode == 0 || c->mode == 4)
		c->load_ns = i8254_now(dev) - i8254_ticks_to_ns(c->paused_ticks);
	else
		c->load_ns = i8254_now(dev);
	c->paused = false;
}

bool i8254_get_out(const struct i8254 *dev, unsigned ch)
{
	if (ch > 2)
		return false;
	return i8254_out_at(&dev->ctr[ch], i8254_elapsed(dev, &dev->ctr[ch]));
}

void i8254_save(const struct i8254 *dev, struct i8254_snap *snap)
{
	uint64_t now = i8254_now(dev);
	unsigned i;

	__builtin_memset(snap, 0, sizeof(*snap));
	for (i = 0; i < 3; i++) {
		const struct i8254_counter *c = &dev->ctr[i];
		struct i8254_counter_snap *s = &snap->ctr[i];

		s->load_age_ns = now - c->load_ns;
		s->edges = c->edges;
		s->count = c->count;
		s->paused_ticks = c->paused_ticks;
		s->latch = c->latch;
		s->mode = c->mode;
		s->rw = c->rw;
		s->bcd = c->bcd;
		s->lsb = c->lsb;
		s->status = c->status;
		s->latched = c->latched;
		s->status_latched = c->status_latched;
		s->counting = c->counting;
		s->paused = c->paused;
		s->gate = c->gate;
		s->write_msb = c->write_msb;
		s->read_msb = c->read_msb;
		s->null_count = c->null_count;
	}
	snap->irq_level = dev->irq_level;
}

int i8254_restore(struct i8254 *dev, const struct i8254_snap *snap)
{
	uint64_t now = i8254_now(dev);
	unsigned i;

	for (i = 0; i < 3; i++) {
		const struct i8254_counter_snap *s = &snap->ctr[i];

		if (s->mode > 5 || s->rw < 1 || s->rw > 3 || s->bcd > 1 ||
		    s->count < 1 || s->count > 65536 || s->latched > 2 ||
		    (s->latched == 2 && s->rw != 3) || s->status_latched > 1 ||
		    s->counting > 1 || s->paused > 1 || s->gate > 1 || s->write_msb > 1 ||
		    s->read_msb > 1 || s->null_count > 1)
			return DEV_RESTORE_EINVAL;
	}
	if (snap->irq_level > 1)
		return DEV_RESTORE_EINVAL;
	for (i = 0; i < 3; i++) {
		const struct i8254_counter_snap *s = &snap->ctr[i];
		struct i8254_counter *c = &dev->ctr[i];

		c->load_ns = now - s->load_age_ns;
		c->edges = s->edges;
		c->count = s->count;
		c->paused_ticks = s->paused_ticks;
		c->latch = s->latch;
		c->mode = s->mode;
		c->rw = s->rw;
		c->bcd = s->bcd;
		c->lsb = s->lsb;
		c->status = s->status;
		c->latched = s->latched;
		c->status_latched = s->status_latched;
		c->counting = s->counting;
		c->paused = s->paused;
		c->gate = s->gate;
		c->write_msb = s->write_msb;
		c->read_msb = s->read_msb;
		c->null_count = s->null_count;
	}
	/* The line level is part of the wire state; re-drive it on the new host. */
	dev->irq_level = snap->irq_level;
	if (dev->irq_level)
		dev->env->set_irq(dev->env->ctx, I8254_IRQ, 1);
	return DEV_RESTORE_OK;
}
