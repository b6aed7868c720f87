/* test_i8259.c: PIC initialisation, priority, masking, EOI flavours, cascade, ELCR, save/restore */
#include "../lib/tap.h"
#include "fake_env.h"
#include "i8259.h"

static struct fake fk, fk2;

/* The sequence Linux's init_8259A() uses (vectors 0x30/0x38 there; 0x20/0x28 here). */
static void pic_setup(struct i8259 *p, uint8_t icw4)
{
	i8259_io_write(p, 0x21, 1, 0xff);
	i8259_io_write(p, 0xa1, 1, 0xff);
	i8259_io_write(p, 0x20, 1, 0x11);
	i8259_io_write(p, 0x21, 1, 0x20);
	i8259_io_write(p, 0x21, 1, 0x04);
	i8259_io_write(p, 0x21, 1, icw4);
	i8259_io_write(p, 0xa0, 1, 0x11);
	i8259_io_write(p, 0xa1, 1, 0x28);
	i8259_io_write(p, 0xa1, 1, 0x02);
	i8259_io_write(p, 0xa1, 1, icw4);
	i8259_io_write(p, 0x21, 1, 0x00);
	i8259_io_write(p, 0xa1, 1, 0x00);
}

static void test_priority_and_eoi(void)
{
	struct i8259 p;

	fake_init(&fk);
	i8259_init(&p, &fk.env);
	pic_setup(&p, 0x01);
	CHECK(!i8259_has_interrupt(&p), "nothing pending after init");
	CHECK(i8259_io_read(&p, 0x21, 1) == 0, "IMR reads back 0");

	i8259_set_irq(&p, 5, 1);
	i8259_set_irq(&p, 3, 1);
	CHECK(i8259_io_read(&p, 0x20, 1) == 0x28, "IRR holds 3 and 5: %#x", i8259_io_read(&p, 0x20, 1));
	CHECK(i8259_has_interrupt(&p), "pending");
	CHECK(i8259_ack(&p) == 0x23, "IRQ3 outranks IRQ5");
	i8259_io_write(&p, 0x20, 1, 0x0b);	/* OCW3: read ISR */
	CHECK(i8259_io_read(&p, 0x20, 1) == 0x08, "ISR has IRQ3");
	i8259_io_write(&p, 0x20, 1, 0x0a);	/* back to IRR */
	CHECK(!i8259_has_interrupt(&p), "IRQ5 waits behind IRQ3 in service");
	i8259_set_irq(&p, 1, 1);
	CHECK(i8259_has_interrupt(&p), "IRQ1 preempts IRQ3");
	CHECK(i8259_ack(&p) == 0x21, "vector of IRQ1");
	i8259_io_write(&p, 0x20, 1, 0x20);	/* non-specific EOI: the highest, IRQ1 */
	i8259_io_write(&p, 0x20, 1, 0x0b);
	CHECK(i8259_io_read(&p, 0x20, 1) == 0x08, "non-specific EOI retired IRQ1 only");
	i8259_io_write(&p, 0x20, 1, 0x63);	/* specific EOI 3 */
	CHECK(i8259_io_read(&p, 0x20, 1) == 0x00, "specific EOI retired IRQ3");
	CHECK(i8259_ack(&p) == 0x25, "then IRQ5");
	i8259_io_write(&p, 0x20, 1, 0x20);

	/* masking */
	i8259_set_irq(&p, 5, 0);
	i8259_io_write(&p, 0x21, 1, 0x10);
	i8259_set_irq(&p, 4, 1);
	CHECK(!i8259_has_interrupt(&p), "masked IRQ4 does not interrupt");
	i8259_io_write(&p, 0x21, 1, 0x00);
	CHECK(i8259_has_interrupt(&p) && i8259_ack(&p) == 0x24, "unmasked IRQ4 does");
	i8259_io_write(&p, 0x20, 1, 0x20);

	/* edge: a line held high does not request twice */
	CHECK(!i8259_has_interrupt(&p), "held line: no second request");
	i8259_set_irq(&p, 4, 1);
	CHECK(!i8259_has_interrupt(&p), "still no edge");
	i8259_set_irq(&p, 4, 0);
	i8259_set_irq(&p, 4, 1);
	CHECK(i8259_has_interrupt(&p), "new edge requests");
	CHECK(i8259_ack(&p) == 0x24, "IRQ4 again");
	i8259_io_write(&p, 0x20, 1, 0x20);

	/* spurious */
	CHECK(i8259_ack(&p) == 0x27, "nothing pending: spurious IRQ7");

	/* rotation: make IRQ3 lowest, so IRQ4 beats IRQ0 */
	i8259_io_write(&p, 0x20, 1, 0xc3);
	i8259_set_irq(&p, 0, 1);
	i8259_set_irq(&p, 4, 0);
	i8259_set_irq(&p, 4, 1);
	CHECK(i8259_ack(&p) == 0x24, "rotated priority: IRQ4 first");
	i8259_io_write(&p, 0x20, 1, 0x20);
	CHECK(i8259_ack(&p) == 0x20, "then IRQ0");
	i8259_io_write(&p, 0x20, 1, 0x20);
}

static void test_cascade_aeoi_level(void)
{
	struct i8259 p;

	fake_init(&fk);
	i8259_init(&p, &fk.env);
	pic_setup(&p, 0x01);
	i8259_set_irq(&p, 10, 1);
	CHECK(i8259_has_interrupt(&p), "slave request reaches master");
	CHECK(i8259_ack(&p) == 0x2a, "IRQ10 vector from the slave");
	i8259_io_write(&p, 0x20, 1, 0x0b);
	i8259_io_write(&p, 0xa0, 1, 0x0b);
	CHECK(i8259_io_read(&p, 0x20, 1) == 0x04 && i8259_io_read(&p, 0xa0, 1) == 0x04,
	      "cascade in service on master IR2 and slave IR2");
	i8259_set_irq(&p, 9, 1);
	CHECK(!i8259_has_interrupt(&p), "slave IRQ9 blocked: master IR2 in service");
	i8259_io_write(&p, 0xa0, 1, 0x20);
	i8259_io_write(&p, 0x20, 1, 0x20);
	CHECK(i8259_has_interrupt(&p) && i8259_ack(&p) == 0x29, "IRQ9 after both EOIs");
	i8259_io_write(&p, 0xa0, 1, 0x20);
	i8259_io_write(&p, 0x20, 1, 0x20);
	i8259_set_irq(&p, 9, 0);
	i8259_set_irq(&p, 10, 0);

	/* ELCR makes IRQ11 level-triggered: it re-requests while high */
	i8259_io_write(&p, 0x4d1, 1, 0x08);
	CHECK(i8259_io_read(&p, 0x4d1, 1) == 0x08, "ELCR reads back");
	i8259_set_irq(&p, 11, 1);
	CHECK(i8259_ack(&p) == 0x2b, "IRQ11");
	i8259_io_write(&p, 0xa0, 1, 0x20);
	i8259_io_write(&p, 0x20, 1, 0x20);
	CHECK(i8259_has_interrupt(&p), "level line still high: requests again");
	i8259_set_irq(&p, 11, 0);
	/* The master's IR2 is edge-latched: the withdrawn request ends as the
	 * spurious IRQ15 a real pair delivers, and nothing after it. */
	CHECK(i8259_ack(&p) == 0x2f, "withdrawn slave request: spurious IRQ15");
	i8259_io_write(&p, 0x20, 1, 0x20);
	CHECK(!i8259_has_interrupt(&p), "level line low: request gone");

	/* auto-EOI */
	pic_setup(&p, 0x03);
	i8259_set_irq(&p, 6, 1);
	CHECK(i8259_ack(&p) == 0x26, "AEOI vector");
	i8259_io_write(&p, 0x20, 1, 0x0b);
	CHECK(i8259_io_read(&p, 0x20, 1) == 0, "AEOI leaves ISR clear");
}

static void test_save_restore(void)
{
	struct i8259 a, b;
	struct i8259_snap s, bad;
	unsigned i;

	fake_init(&fk);
	fake_init(&fk2);
	i8259_init(&a, &fk.env);
	pic_setup(&a, 0x01);
	i8259_io_write(&a, 0x21, 1, 0x40);
	i8259_set_irq(&a, 3, 1);
	i8259_set_irq(&a, 12, 1);
	i8259_set_irq(&a, 6, 1);
	(void)i8259_ack(&a);	/* IRQ3 in service; IRQ12 and IRQ6 (masked) wait */
	i8259_save(&a, &s);
	i8259_init(&b, &fk2.env);
	CHECK(i8259_restore(&b, &s) == DEV_RESTORE_OK, "restore ok");
	for (i = 0; i < 2; i++) {
		uint32_t base = i ? 0xa0 : 0x20;

		CHECK(i8259_io_read(&a, base, 1) == i8259_io_read(&b, base, 1), "IRR equal");
		CHECK(i8259_io_read(&a, base + 1, 1) == i8259_io_read(&b, base + 1, 1), "IMR equal");
	}
	for (i = 0; i < 3; i++) {
		uint8_t va, vb;

		CHECK(i8259_has_interrupt(&a) == i8259_has_interrupt(&b), "pending equal (%u)", i);
		i8259_io_write(&a, 0x20, 1, 0x20);
		i8259_io_write(&b, 0x20, 1, 0x20);
		va = i8259_ack(&a);
		vb = i8259_ack(&b);
		CHECK(va == vb, "same vector after restore: %#x vs %#x", va, vb);
		i8259_io_write(&a, 0xa0, 1, 0x20);
		i8259_io_write(&b, 0xa0, 1, 0x20);
	}
	bad = s;
	bad.pic[0].vector_base = 0x21;
	CHECK(i8259_restore(&b, &bad) == DEV_RESTORE_EINVAL, "unaligned vector base refused");
	bad = s;
	bad.pic[1].init_step = 1;
	CHECK(i8259_restore(&b, &bad) == DEV_RESTORE_EINVAL, "impossible init step refused");
	bad = s;
	bad.pic[0].elcr = 0x01;
	CHECK(i8259_restore(&b, &bad) == DEV_RESTORE_EINVAL, "IRQ0 level-triggered refused");
}

int main(void)
{
	test_priority_and_eoi();
	test_cascade_aeoi_level();
	test_save_restore();
	return tap_done("i8259");
}
