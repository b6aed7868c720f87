/* devstate_isa.c: the i8259 pair, i8254 and 16550 UART between their snapshot structs and protobuf messages */
#include <string.h>

#include "devstate_int.h"

/* ---- i8259 ---- */

static void pic_chip_to_wire(Pvmigrate__I8259ChipState *m, const struct i8259_chip_snap *s)
{
	static const Pvmigrate__I8259ChipState init = PVMIGRATE__I8259_CHIP_STATE__INIT;

	*m = init;
	DS_SET(m, irr, s->irr);
	DS_SET(m, isr, s->isr);
	DS_SET(m, imr, s->imr);
	DS_SET(m, lines, s->lines);
	DS_SET(m, elcr, s->elcr);
	DS_SET(m, vector_base, s->vector_base);
	DS_SET(m, icw3, s->icw3);
	DS_SET(m, init_step, s->init_step);
	DS_SET(m, priority_add, s->priority_add);
	DS_SET(m, icw4_needed, s->icw4_needed != 0);
	DS_SET(m, single, s->single != 0);
	DS_SET(m, auto_eoi, s->auto_eoi != 0);
	DS_SET(m, rotate_on_aeoi, s->rotate_on_aeoi != 0);
	DS_SET(m, read_isr, s->read_isr != 0);
	DS_SET(m, special_mask, s->special_mask != 0);
}

void ds_i8259_to_wire(struct ds_wire *w)
{
	static const Pvmigrate__I8259State init = PVMIGRATE__I8259_STATE__INIT;

	w->pic = init;
	pic_chip_to_wire(&w->pic_chip[0], &w->pic_snap.pic[0]);
	pic_chip_to_wire(&w->pic_chip[1], &w->pic_snap.pic[1]);
	w->pic.master = &w->pic_chip[0];
	w->pic.slave = &w->pic_chip[1];
	w->set.i8259 = &w->pic;
}

static void pic_chip_from_wire(struct ds_ctx *c, const Pvmigrate__I8259ChipState *m,
			       struct i8259_chip_snap *s)
{
	s->irr = ds_u8(c, DS_F(m, irr));
	s->isr = ds_u8(c, DS_F(m, isr));
	s->imr = ds_u8(c, DS_F(m, imr));
	s->lines = ds_u8(c, DS_F(m, lines));
	s->elcr = ds_u8(c, DS_F(m, elcr));
	s->vector_base = ds_u8(c, DS_F(m, vector_base));
	s->icw3 = ds_u8(c, DS_F(m, icw3));
	s->init_step = (uint8_t)ds_uint(c, DS_F(m, init_step), 0, 4);
	if (!c->failed && s->init_step == 1)
		ds_fail(c, "%s.init_step: out of range (1, want 0 or 2..4)", c->path);
	s->priority_add = (uint8_t)ds_uint(c, DS_F(m, priority_add), 0, 7);
	s->icw4_needed = ds_flag(c, DS_F(m, icw4_needed));
	s->single = ds_flag(c, DS_F(m, single));
	s->auto_eoi = ds_flag(c, DS_F(m, auto_eoi));
	s->rotate_on_aeoi = ds_flag(c, DS_F(m, rotate_on_aeoi));
	s->read_isr = ds_flag(c, DS_F(m, read_isr));
	s->special_mask = ds_flag(c, DS_F(m, special_mask));
}

int ds_i8259_from_wire(struct ds_ctx *c, const Pvmigrate__I8259State *m, struct i8259_snap *s)
{
	memset(s, 0, sizeof(*s));
	ds_path(c, "i8259");
	if (ds_present(c, "master", m->master) || ds_present(c, "slave", m->slave))
		return -1;
	ds_path(c, "i8259.master");
	pic_chip_from_wire(c, m->master, &s->pic[0]);
	ds_path(c, "i8259.slave");
	pic_chip_from_wire(c, m->slave, &s->pic[1]);
	return c->failed ? -1 : 0;
}

/* ---- i8254 ---- */

static void pit_ctr_to_wire(Pvmigrate__I8254CounterState *m, const struct i8254_counter_snap *s)
{
	static const Pvmigrate__I8254CounterState init = PVMIGRATE__I8254_COUNTER_STATE__INIT;

	*m = init;
	DS_SET(m, load_age_ns, s->load_age_ns);
	DS_SET(m, edges, s->edges);
	DS_SET(m, count, s->count);
	DS_SET(m, paused_ticks, s->paused_ticks);
	DS_SET(m, latch, s->latch);
	DS_SET(m, mode, s->mode);
	DS_SET(m, rw, s->rw);
	DS_SET(m, bcd, s->bcd != 0);
	DS_SET(m, lsb, s->lsb);
	DS_SET(m, status, s->status);
	DS_SET(m, latched, s->latched);
	DS_SET(m, status_latched, s->status_latched != 0);
	DS_SET(m, counting, s->counting != 0);
	DS_SET(m, paused, s->paused != 0);
	DS_SET(m, gate, s->gate != 0);
	DS_SET(m, write_msb, s->write_msb != 0);
	DS_SET(m, read_msb, s->read_msb != 0);
	DS_SET(m, null_count, s->null_count != 0);
}

void ds_i8254_to_wire(struct ds_wire *w)
{
	static const Pvmigrate__I8254State init = PVMIGRATE__I8254_STATE__INIT;
	unsigned i;

	w->pit = init;
	for (i = 0; i < DS_PIT_COUNTERS; i++) {
		pit_ctr_to_wire(&w->pit_ctr[i], &w->pit_snap.ctr[i]);
		w->pit_ctrp[i] = &w->pit_ctr[i];
	}
	w->pit.n_counter = DS_PIT_COUNTERS;
	w->pit.counter = w->pit_ctrp;
	DS_SET(&w->pit, irq_level, w->pit_snap.irq_level != 0);
	w->set.i8254 = &w->pit;
}

static void pit_ctr_from_wire(struct ds_ctx *c, const Pvmigrate__I8254CounterState *m,
			      struct i8254_counter_snap *s)
{
	s->load_age_ns = ds_u64(c, DS_F(m, load_age_ns));
	s->edges = ds_u64(c, DS_F(m, edges));
	s->count = (uint32_t)ds_uint(c, DS_F(m, count), 1, 65536);
	s->paused_ticks = ds_u32(c, DS_F(m, paused_ticks));
	s->latch = ds_u16(c, DS_F(m, latch));
	s->mode = (uint8_t)ds_uint(c, DS_F(m, mode), 0, 5);
	s->rw = (uint8_t)ds_uint(c, DS_F(m, rw), 1, 3);
	s->bcd = ds_flag(c, DS_F(m, bcd));
	s->lsb = ds_u8(c, DS_F(m, lsb));
	s->status = ds_u8(c, DS_F(m, status));
	s->latched = (uint8_t)ds_uint(c, DS_F(m, latched), 0, 2);
	s->status_latched = ds_flag(c, DS_F(m, status_latched));
	s->counting = ds_flag(c, DS_F(m, counting));
	s->paused = ds_flag(c, DS_F(m, paused));
	s->gate = ds_flag(c, DS_F(m, gate));
	s->write_msb = ds_flag(c, DS_F(m, write_msb));
	s->read_msb = ds_flag(c, DS_F(m, read_msb));
	s->null_count = ds_flag(c, DS_F(m, null_count));
}

int ds_i8254_from_wire(struct ds_ctx *c, const Pvmigrate__I8254State *m, struct i8254_snap *s)
{
	unsigned i;

	memset(s, 0, sizeof(*s));
	ds_path(c, "i8254");
	if (ds_count(c, "counter", m->n_counter, DS_PIT_COUNTERS))
		return -1;
	s->irq_level = ds_flag(c, DS_F(m, irq_level));
	for (i = 0; i < DS_PIT_COUNTERS && !c->failed; i++) {
		ds_path(c, "i8254");
		if (ds_present(c, "counter", m->counter[i]))
			break;
		ds_path(c, "i8254.counter[%u]", i);
		pit_ctr_from_wire(c, m->counter[i], &s->ctr[i]);
	}
	return c->failed ? -1 : 0;
}

/* ---- uart16550 ---- */

void ds_uart_to_wire(struct ds_wire *w)
{
	static const Pvmigrate__Uart16550State init = PVMIGRATE__UART16550_STATE__INIT;
	Pvmigrate__Uart16550State *m = &w->uart;
	struct uart16550_snap *s = &w->uart_snap;

	*m = init;
	DS_SET(m, dll, s->dll);
	DS_SET(m, dlm, s->dlm);
	DS_SET(m, ier, s->ier);
	DS_SET(m, lcr, s->lcr);
	DS_SET(m, mcr, s->mcr);
	DS_SET(m, lsr, s->lsr);
	DS_SET(m, msr, s->msr);
	DS_SET(m, scr, s->scr);
	DS_SET(m, fcr, s->fcr);
	m->has_rx_fifo = 1;
	m->rx_fifo.len = sizeof(s->rx_fifo);
	m->rx_fifo.data = s->rx_fifo;
	DS_SET(m, rx_head, s->rx_head);
	DS_SET(m, rx_count, s->rx_count);
	DS_SET(m, thri_pending, s->thri_pending != 0);
	DS_SET(m, irq_level, s->irq_level != 0);
	w->set.uart16550 = m;
}

int ds_uart_from_wire(struct ds_ctx *c, const Pvmigrate__Uart16550State *m,
		      struct uart16550_snap *s)
{
	memset(s, 0, sizeof(*s));
	ds_path(c, "uart16550");
	s->dll = ds_u8(c, DS_F(m, dll));
	s->dlm = ds_u8(c, DS_F(m, dlm));
	s->ier = ds_u8(c, DS_F(m, ier));
	s->lcr = ds_u8(c, DS_F(m, lcr));
	s->mcr = ds_u8(c, DS_F(m, mcr));
	s->lsr = ds_u8(c, DS_F(m, lsr));
	s->msr = ds_u8(c, DS_F(m, msr));
	s->scr = ds_u8(c, DS_F(m, scr));
	s->fcr = ds_u8(c, DS_F(m, fcr));
	ds_bytes(c, DS_F(m, rx_fifo), s->rx_fifo, sizeof(s->rx_fifo));
	s->rx_head = (uint8_t)ds_uint(c, DS_F(m, rx_head), 0, UART16550_FIFO_SIZE - 1);
	s->rx_count = (uint8_t)ds_uint(c, DS_F(m, rx_count), 0, UART16550_FIFO_SIZE);
	s->thri_pending = ds_flag(c, DS_F(m, thri_pending));
	s->irq_level = ds_flag(c, DS_F(m, irq_level));
	return c->failed ? -1 : 0;
}
