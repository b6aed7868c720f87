/* test_rt_dev_state.c: rt_dev_save/rt_dev_restore: every model round-trips, the PIT keeps its phase on a new clock, bad snapshots change nothing */
#include "test_rt_dev_fake.h"

static uint64_t state_buf[(sizeof(struct rt_dev_state) + 7) / 8];

/* Everything a guest can read back, as one fingerprint. */
static void guest_view(uint32_t *v, unsigned n)
{
	unsigned i = 0, reg;

	v[i++] = g_in(0x21, 1);
	v[i++] = g_in(0xa1, 1);
	v[i++] = g_in(0x4d1, 1);
	v[i++] = g_in(0x3fb, 1); /* UART LCR */
	v[i++] = g_in(0x3fc, 1); /* MCR */
	v[i++] = g_in(0x3ff, 1); /* scratch */
	v[i++] = g_in(0x61, 1) & 0x0f;
	for (reg = 0; reg < 64 && i < n; reg += 4) {
		g_out(0xcf8, 4, 0x80000000u | FAKE_NIC_SLOT << 11 | reg);
		v[i++] = g_in(0xcfc, 4);
	}
	v[i++] = g_rd(CFG);
	v[i++] = g_rd(IMR);
	v[i++] = g_rd(IER);
	v[i++] = g_rd(RXDP);
	v[i++] = g_rd(TXDP);
	v[i++] = g_rd(RFCR);
	v[i++] = g_rd(CR);
	while (i < n)
		v[i++] = 0;
}

static void test_round_trip(void)
{
	struct rt_shared *sh;
	uint32_t before[48], after[48];
	uint64_t t_save, left;
	int n;

	fake_boot(1);
	sh = fake_shared();
	fake_set_now(FAKE_T0_NS + 777);
	g_pic_init(1u << 0 | 1u << 2 | 1u << FAKE_NIC_IRQ);
	g_out(0x3fb, 1, 0x03);
	g_out(0x3fc, 1, 0x0b);
	g_out(0x3ff, 1, 0x5a);
	g_out(0x61, 1, 0x01);
	g_out(0x43, 1, 0x34);
	g_out(0x40, 1, 11932 & 0xff);
	g_out(0x40, 1, 11932 >> 8);
	nic_setup(8);
	g_wr(IMR, ISR_RXOK);
	g_wr(IER, 1);
	g_wr(CR, CR_RXE);
	guest_view(before, 48);

	t_save = FAKE_T0_NS + 4000000; /* 4 ms into the first 10 ms period */
	fake_set_now(t_save);
	left = sh->timer_deadline_ns - t_save;
	n = rt_dev_save(state_buf, sizeof state_buf);
	CHECK(n == (int)sizeof(struct rt_dev_state), "save writes the whole layout (%d)", n);
	CHECK(rt_dev_save(state_buf, 16) == -1, "a short buffer is refused");

	/* The target: a fresh runtime on a host whose clock is a second on. */
	fake_set_now(t_save + 1000000000ull);
	rt_dev_init();
	CHECK(g_rd(RXDP) == 0 && g_in(0x3ff, 1) == 0, "fresh models before the restore");
	host.bells_timer = 0;
	CHECK(rt_dev_restore(state_buf, sizeof(struct rt_dev_state)) == 0, "restore");
	guest_view(after, 48);
	CHECK(!memcmp(before, after, sizeof before), "the guest reads back the same machine");
	CHECK(sh->timer_deadline_ns == t_save + 1000000000ull + left,
	      "PIT keeps its phase: next edge %llu ns after the restore (want %llu)",
	      (unsigned long long)(sh->timer_deadline_ns - t_save - 1000000000ull),
	      (unsigned long long)left);
	CHECK(host.bells_timer == 1, "the new host hears of the deadline");
	CHECK(sh->want_rx_news == 1, "the restored NIC can receive: RX news wanted");
	CHECK(rt_dev_mmio(FAKE_NIC_MEM + CR, 4, 0, &(uint64_t){ 0 }) == 1, "BAR1 decodes after restore");
}

static void test_refusals(void)
{
	struct rt_dev_state *s = (struct rt_dev_state *)state_buf;
	uint32_t before[48], after[48];

	fake_boot(1);
	g_pic_init(1u << 2);
	g_out(0x3ff, 1, 0x11);
	nic_setup(8);
	CHECK(rt_dev_save(state_buf, sizeof state_buf) > 0, "save");
	/* Now change the machine, so a rollback is visible. */
	g_out(0x3ff, 1, 0x22);
	g_out(0x21, 1, 0x00);
	guest_view(before, 48);

	s->magic ^= 1;
	CHECK(rt_dev_restore(s, sizeof *s) == -1, "bad magic refused");
	s->magic ^= 1;
	CHECK(rt_dev_restore(s, sizeof *s - 8) == -1, "wrong length refused");
	s->flags = 0;
	CHECK(rt_dev_restore(s, sizeof *s) == -1, "a snapshot without the NIC refused here");
	s->flags = RT_DEV_STATE_NIC;
	/* Valid PIC, PIT, UART and PCI, then an impossible NIC: nothing sticks. */
	s->nic.tx_on = 7;
	CHECK(rt_dev_restore(s, sizeof *s) == -1, "bad NIC snapshot refused");
	guest_view(after, 48);
	CHECK(!memcmp(before, after, sizeof before) && g_in(0x3ff, 1) == 0x22,
	      "all or nothing: the models restored before the NIC were rolled back");
	s->nic.tx_on = 0;
	CHECK(rt_dev_restore(s, sizeof *s) == 0 && g_in(0x3ff, 1) == 0x11, "the good one restores");
}

/*
 * The kvm host's SAVE request: the host clears the area, the runtime
 * writes its models' fields only (a clear in emulated ring 0 costs ~1 us
 * per 8 bytes), takes the request by a swap, answers and rings
 * RT_BELL_STATE.  Over an earlier save of the same runtime the bytes are
 * the same as over zeros.
 */
static void test_serve(void)
{
	struct rt_dev_state *area = (struct rt_dev_state *)(rt_test_window + RT_OFF_DEVSTATE);
	static uint64_t fresh[(sizeof(struct rt_dev_state) + 7) / 8];
	struct rt_shared *sh;

	fake_boot(1);
	sh = fake_shared();
	g_pic_init(1u << 2);
	g_out(0x3ff, 1, 0x33);
	nic_setup(8);
	memset(fresh, 0, sizeof fresh);
	CHECK(rt_dev_save(fresh, sizeof fresh) > 0, "save into a zeroed buffer");

	memset(area, 0, sizeof *area); /* the host, before it asks */
	sh->state_status = RT_STATE_PENDING;
	sh->state_req = RT_STATE_REQ_SAVE;
	host.bell_or = 0;
	rt_dev_state_serve();
	CHECK(sh->state_req == RT_STATE_REQ_NONE && sh->state_status == RT_STATE_OK,
	      "served: state_req %u, status %d", sh->state_req, sh->state_status);
	CHECK(host.bell_or & RT_BELL_STATE, "the host hears of it (RT_BELL_STATE)");
	CHECK(!memcmp(area, fresh, sizeof *area), "the area holds the save, every byte defined");

	/* another machine state saved over that one: the same bytes as over zeros */
	g_out(0x3ff, 1, 0x44);
	g_out(0x21, 1, 0x0f);
	memset(fresh, 0, sizeof fresh);
	rt_dev_save(fresh, sizeof fresh);
	CHECK(memcmp(area, fresh, sizeof *area) != 0, "the machine changed");
	sh->state_req = RT_STATE_REQ_SAVE;
	rt_dev_state_serve();
	CHECK(!memcmp(area, fresh, sizeof *area), "a save over an earlier one: no stale byte");

	/* a request another CPU took is left to it */
	host.bell_or = 0;
	sh->state_req = RT_STATE_REQ_TAKEN;
	sh->state_status = RT_STATE_PENDING;
	rt_dev_state_serve();
	CHECK(sh->state_req == RT_STATE_REQ_TAKEN && sh->state_status == RT_STATE_PENDING &&
	      !(host.bell_or & RT_BELL_STATE), "a taken request is not served twice");
	sh->state_req = RT_STATE_REQ_NONE;
}

int main(void)
{
	test_round_trip();
	test_refusals();
	test_serve();
	return tap_done("test_rt_dev_state");
}
