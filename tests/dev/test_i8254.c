/* test_i8254.c: PIT modes 0/2/3, access modes, latch and read-back, periodic IRQ0 on a fake clock, save/restore */
#include "../lib/tap.h"
#include "fake_env.h"
#include "i8254.h"

static struct fake fk, fk2;

static uint64_t ticks_ns(uint64_t t)
{
	return (t * 1000000000ull + I8254_HZ - 1) / I8254_HZ;
}

static uint16_t read_latched(struct i8254 *p, unsigned ch)
{
	uint16_t lo, hi;

	i8254_io_write(p, 0x43, 1, ch << 6);	/* counter latch command */
	lo = (uint16_t)i8254_io_read(p, 0x40 + ch, 1);
	hi = (uint16_t)i8254_io_read(p, 0x40 + ch, 1);
	return (uint16_t)(lo | hi << 8);
}

static void test_mode2_periodic(void)
{
	struct i8254 p;
	uint64_t t0, d;
	uint16_t v;

	fake_init(&fk);
	fk.now = 1000;
	i8254_init(&p, &fk.env);
	CHECK(i8254_next_deadline_ns(&p) == I8254_NO_DEADLINE, "unprogrammed: no deadline");
	i8254_io_write(&p, 0x43, 1, 0x34);	/* ch0, lo/hi, mode 2: Linux's HZ timer */
	i8254_io_write(&p, 0x40, 1, 1193 & 0xff);
	i8254_io_write(&p, 0x40, 1, 1193 >> 8);
	t0 = fk.now;
	d = i8254_next_deadline_ns(&p);
	CHECK(d == t0 + ticks_ns(1193), "first deadline one period out: %llu", (unsigned long long)(d - t0));
	fk.now = d - 1;
	i8254_tick(&p);
	CHECK(fk.raises[0] == 0, "no IRQ0 before the deadline");
	fk.now = d;
	i8254_tick(&p);
	CHECK(fk.raises[0] == 1 && fk.irq[0] == 0, "one IRQ0 pulse at the deadline");
	CHECK(i8254_next_deadline_ns(&p) == t0 + ticks_ns(2 * 1193), "next period");
	fk.now = t0 + ticks_ns(10 * 1193) + 5;
	i8254_tick(&p);
	CHECK(fk.raises[0] == 2, "missed periods coalesce into one edge");
	CHECK(i8254_next_deadline_ns(&p) == t0 + ticks_ns(11 * 1193), "deadline moves past now");

	/* reading the count */
	fk.now = t0 + ticks_ns(10 * 1193 + 300);
	v = read_latched(&p, 0);
	CHECK(v == 1193 - 300, "latched count %u", v);
	fk.now += ticks_ns(100);
	CHECK(read_latched(&p, 0) == 1193 - 400, "count keeps going");
	/* latch holds while time moves */
	i8254_io_write(&p, 0x43, 1, 0x00);
	fk.now += ticks_ns(50);
	v = (uint16_t)(i8254_io_read(&p, 0x40, 1) | i8254_io_read(&p, 0x40, 1) << 8);
	CHECK(v == 1193 - 400, "latched value is frozen: %u", v);

	/* read-back: status of counter 0 */
	i8254_io_write(&p, 0x43, 1, 0xe2);
	v = (uint16_t)i8254_io_read(&p, 0x40, 1);
	CHECK((v & 0x3f) == 0x34, "status: lo/hi, mode 2, binary: %#x", v);
	CHECK(v & 0x80, "status: OUT high mid-period");
}

static void test_mode0_and_access(void)
{
	struct i8254 p;
	uint64_t t0;

	fake_init(&fk);
	i8254_init(&p, &fk.env);
	i8254_io_write(&p, 0x43, 1, 0x30);	/* ch0 lo/hi mode 0 */
	i8254_io_write(&p, 0x40, 1, 100);
	CHECK(i8254_next_deadline_ns(&p) == I8254_NO_DEADLINE, "half-written count does not run");
	i8254_io_write(&p, 0x40, 1, 0);
	t0 = fk.now;
	CHECK(!i8254_get_out(&p, 0), "mode 0: OUT low while counting");
	CHECK(i8254_next_deadline_ns(&p) == t0 + ticks_ns(100), "terminal count deadline");
	fk.now = t0 + ticks_ns(100);
	i8254_tick(&p);
	CHECK(fk.irq[0] == 1 && fk.raises[0] == 1, "IRQ0 rises at terminal count and stays");
	CHECK(i8254_get_out(&p, 0), "OUT high");
	CHECK(i8254_next_deadline_ns(&p) == I8254_NO_DEADLINE, "one-shot: no further deadline");
	fk.now += ticks_ns(5);
	CHECK(read_latched(&p, 0) == (uint16_t)(0 - 5), "count wraps past zero");
	i8254_io_write(&p, 0x43, 1, 0x30);
	CHECK(fk.irq[0] == 0, "new control word drops OUT");

	/* lobyte-only and hibyte-only access on counter 1 */
	i8254_io_write(&p, 0x43, 1, 0x54);	/* ch1, lobyte, mode 2 */
	i8254_io_write(&p, 0x41, 1, 18);
	CHECK(i8254_io_read(&p, 0x41, 1) == 18, "lobyte read");
	i8254_io_write(&p, 0x43, 1, 0x64);	/* ch1, hibyte, mode 2 */
	i8254_io_write(&p, 0x41, 1, 0x12);
	CHECK(i8254_io_read(&p, 0x41, 1) == 0x12, "hibyte read");

	/* mode 3 square wave: periodic IRQ0 too */
	i8254_io_write(&p, 0x43, 1, 0x36);
	i8254_io_write(&p, 0x40, 1, 0);
	i8254_io_write(&p, 0x40, 1, 0);	/* 0 means 65536 */
	t0 = fk.now;
	CHECK(i8254_next_deadline_ns(&p) == t0 + ticks_ns(65536), "mode 3 with count 0 = 65536");
	CHECK(i8254_get_out(&p, 0), "mode 3 first half high");
	fk.now = t0 + ticks_ns(40000);
	CHECK(!i8254_get_out(&p, 0), "mode 3 second half low");
	fk.now = t0 + ticks_ns(65536);
	i8254_tick(&p);
	CHECK(fk.raises[0] == 2, "mode 3 edge per period");

	/* counter 2 gate: mode 0 holds while GATE is low (TSC calibration path) */
	i8254_set_gate(&p, 2, false);
	i8254_io_write(&p, 0x43, 1, 0xb0);
	i8254_io_write(&p, 0x42, 1, 0xff);
	i8254_io_write(&p, 0x42, 1, 0xff);
	fk.now += ticks_ns(1000);
	CHECK(read_latched(&p, 2) == 0xffff, "gate low: count held");
	i8254_set_gate(&p, 2, true);
	fk.now += ticks_ns(1000);
	CHECK(read_latched(&p, 2) == 0xffff - 1000, "gate high: counting");
}

static void test_save_restore(void)
{
	struct i8254 a, b;
	struct i8254_snap s, bad;
	uint64_t da, db;
	unsigned i;

	fake_init(&fk);
	fake_init(&fk2);
	fk.now = 123456789;
	fk2.now = 5000000000ull;	/* the target host's clock is elsewhere */
	i8254_init(&a, &fk.env);
	i8254_io_write(&a, 0x43, 1, 0x34);
	i8254_io_write(&a, 0x40, 1, 0x9b);
	i8254_io_write(&a, 0x40, 1, 0x2e);	/* 11931: 10 ms */
	fk.now += ticks_ns(4000);
	i8254_io_write(&a, 0x43, 1, 0x00);	/* a latch in flight survives too */
	(void)i8254_io_read(&a, 0x40, 1);
	i8254_save(&a, &s);
	i8254_init(&b, &fk2.env);
	CHECK(i8254_restore(&b, &s) == DEV_RESTORE_OK, "restore ok");
	CHECK(i8254_io_read(&a, 0x40, 1) == i8254_io_read(&b, 0x40, 1), "latched MSB equal");
	da = i8254_next_deadline_ns(&a) - fk.now;
	db = i8254_next_deadline_ns(&b) - fk2.now;
	CHECK(da == db, "deadline same distance from now: %llu vs %llu",
	      (unsigned long long)da, (unsigned long long)db);
	for (i = 0; i < 3; i++) {
		fk.now += 10000000;
		fk2.now += 10000000;
		i8254_tick(&a);
		i8254_tick(&b);
		CHECK(fk.raises[0] == fk2.raises[0], "same IRQ0 count (%u)", i);
		CHECK(read_latched(&a, 0) == read_latched(&b, 0), "same count");
	}
	bad = s;
	bad.ctr[0].mode = 6;
	CHECK(i8254_restore(&b, &bad) == DEV_RESTORE_EINVAL, "mode 6 refused");
	bad = s;
	bad.ctr[1].count = 0;
	CHECK(i8254_restore(&b, &bad) == DEV_RESTORE_EINVAL, "count 0 refused");
	bad = s;
	bad.ctr[2].latched = 2;
	bad.ctr[2].rw = 1;
	CHECK(i8254_restore(&b, &bad) == DEV_RESTORE_EINVAL, "two latched bytes in lobyte mode refused");
}

int main(void)
{
	test_mode2_periodic();
	test_mode0_and_access();
	test_save_restore();
	return tap_done("i8254");
}
