/* test_uart16550.c: UART registers, DLAB, THR/LSR, IIR priorities, RX FIFO, loopback, IRQ4, save/restore */
#include "../lib/tap.h"
#include "fake_env.h"
#include "uart16550.h"

#define B 0x3f8
static struct fake fk, fk2;

static void test_registers_and_tx(void)
{
	struct uart16550 u;

	fake_init(&fk);
	uart16550_init(&u, &fk.env, B, 4, fake_input, &fk);
	CHECK(uart16550_io_read(&u, B + 5, 1) == 0x60, "LSR: THRE|TEMT at reset");
	CHECK(uart16550_io_read(&u, B + 2, 1) == 0x01, "IIR: no interrupt");
	uart16550_io_write(&u, B + 3, 1, 0x80);
	uart16550_io_write(&u, B + 0, 1, 0x01);
	uart16550_io_write(&u, B + 1, 1, 0x00);
	CHECK(uart16550_io_read(&u, B + 0, 1) == 1 && uart16550_io_read(&u, B + 1, 1) == 0,
	      "DLAB: divisor latch reads back");
	uart16550_io_write(&u, B + 3, 1, 0x03);
	CHECK(uart16550_io_read(&u, B + 3, 1) == 0x03, "LCR 8N1");
	CHECK(uart16550_io_read(&u, B + 1, 1) == 0, "IER visible again");
	uart16550_io_write(&u, B + 7, 1, 0x5a);
	CHECK(uart16550_io_read(&u, B + 7, 1) == 0x5a, "scratch");
	uart16550_io_write(&u, B + 0, 1, 'o');
	uart16550_io_write(&u, B + 0, 1, 'k');
	CHECK(fk.ncon == 2 && fk.console[0] == 'o' && fk.console[1] == 'k', "THR bytes reach console_tx");
	CHECK(uart16550_io_read(&u, B + 5, 1) & 0x20, "THR empty again at once");
	uart16550_io_write(&u, B + 2, 1, 0x07);
	CHECK(uart16550_io_read(&u, B + 2, 1) == 0xc1, "FIFO on: IIR 0xc1 (16550A signature)");

	/* THRE interrupt, gated by OUT2 as on a PC */
	uart16550_io_write(&u, B + 1, 1, 0x02);
	CHECK(fk.irq[4] == 0, "no IRQ4 without OUT2");
	uart16550_io_write(&u, B + 4, 1, 0x0b);
	CHECK(fk.irq[4] == 1, "IRQ4 with THRI enabled and OUT2 set");
	CHECK(uart16550_io_read(&u, B + 2, 1) == 0xc2, "IIR names THRE");
	CHECK(fk.irq[4] == 0, "reading IIR cleared THRE");
	CHECK(uart16550_io_read(&u, B + 2, 1) == 0xc1, "nothing left");
	uart16550_io_write(&u, B + 0, 1, '!');
	CHECK(fk.irq[4] == 1, "transmitting re-arms THRE");
	uart16550_io_write(&u, B + 1, 1, 0x00);
	CHECK(fk.irq[4] == 0, "IER=0 drops the line");
}

static void test_rx(void)
{
	struct uart16550 u;

	fake_init(&fk);
	uart16550_init(&u, &fk.env, B, 4, fake_input, &fk);
	uart16550_io_write(&u, B + 2, 1, 0x87);	/* FIFO, trigger 8 */
	uart16550_io_write(&u, B + 4, 1, 0x08);
	uart16550_io_write(&u, B + 1, 1, 0x01);
	fk.input = "hi";
	uart16550_poll(&u);
	CHECK(fk.irq[4] == 1, "RX data raises IRQ4");
	CHECK(uart16550_io_read(&u, B + 5, 1) & 0x01, "LSR.DR");
	CHECK(uart16550_io_read(&u, B + 2, 1) == 0xcc, "below trigger: character timeout");
	CHECK(uart16550_io_read(&u, B, 1) == 'h' && uart16550_io_read(&u, B, 1) == 'i', "bytes in order");
	CHECK(!(uart16550_io_read(&u, B + 5, 1) & 0x01), "FIFO empty");
	CHECK(fk.irq[4] == 0, "IRQ4 drops when drained");
	fk.input = "0123456789abcdefXYZ";
	uart16550_poll(&u);
	CHECK(uart16550_io_read(&u, B + 2, 1) == 0xc4, "at trigger: RDA");
	CHECK(uart16550_io_read(&u, B, 1) == '0', "first byte");
	CHECK(*fk.input == 'Y', "input pulled only as room frees: host keeps the rest");

	/* loopback: THR feeds RBR; MSR mirrors MCR as Linux's probe checks */
	fake_init(&fk);
	uart16550_init(&u, &fk.env, B, 4, fake_input, &fk);
	uart16550_io_write(&u, B + 4, 1, 0x1a);
	CHECK((uart16550_io_read(&u, B + 6, 1) & 0xf0) == 0x90, "loopback MSR 0x90");
	uart16550_io_write(&u, B, 1, 'a');
	uart16550_io_write(&u, B, 1, 'b');	/* no FIFO: one-byte holding register */
	CHECK(fk.ncon == 0, "loopback bytes do not leave");
	CHECK(uart16550_io_read(&u, B + 5, 1) & 0x02, "overrun flagged");
	CHECK(!(uart16550_io_read(&u, B + 5, 1) & 0x02), "OE clears on LSR read");
	CHECK(uart16550_io_read(&u, B, 1) == 'a', "first byte kept");
}

static void test_save_restore(void)
{
	struct uart16550 a, b;
	struct uart16550_snap s, bad;
	unsigned i;

	fake_init(&fk);
	fake_init(&fk2);
	uart16550_init(&a, &fk.env, B, 4, fake_input, &fk);
	uart16550_io_write(&a, B + 2, 1, 0x07);
	uart16550_io_write(&a, B + 4, 1, 0x08);
	uart16550_io_write(&a, B + 1, 1, 0x03);
	fk.input = "xyz";
	uart16550_poll(&a);
	(void)uart16550_io_read(&a, B, 1);
	uart16550_save(&a, &s);
	uart16550_init(&b, &fk2.env, B, 4, fake_input, &fk2);
	CHECK(uart16550_restore(&b, &s) == DEV_RESTORE_OK, "restore ok");
	CHECK(fk2.irq[4] == fk.irq[4], "line re-driven on the new host");
	for (i = 0; i < 4; i++) {
		CHECK(uart16550_io_read(&a, B + 2, 1) == uart16550_io_read(&b, B + 2, 1), "IIR equal");
		CHECK(uart16550_io_read(&a, B + 5, 1) == uart16550_io_read(&b, B + 5, 1), "LSR equal");
		CHECK(uart16550_io_read(&a, B, 1) == uart16550_io_read(&b, B, 1), "RBR equal");
	}
	bad = s;
	bad.rx_count = 17;
	CHECK(uart16550_restore(&b, &bad) == DEV_RESTORE_EINVAL, "FIFO overfull refused");
	bad = s;
	bad.rx_head = 16;
	CHECK(uart16550_restore(&b, &bad) == DEV_RESTORE_EINVAL, "FIFO head out of range refused");
}

int main(void)
{
	test_registers_and_tx();
	test_rx();
	test_save_restore();
	return tap_done("uart16550");
}
