/* test_devstate.c: every device model saved into one DeviceSet, restored on another host, and continuing identically */
#include "../lib/tap.h"
#include "devstate_rig.h"

#include "devices.pb-c.h"

static struct host ha, hb;
static uint8_t *good;
static size_t good_len;

/* As CRIU's crit-recode: decoding and re-encoding gives the same bytes, and
 * so does saving the restored target before it has run. */
static void check_recode(struct host *h)
{
	Pvmigrate__DeviceSet *m = pvmigrate__device_set__unpack(NULL, good_len, good);
	static uint8_t again[DEVSTATE_MAX_LEN];
	uint8_t *resaved = NULL;
	size_t n = 0;
	char *cause = NULL;

	CHECK(m && pvmigrate__device_set__get_packed_size(m) == good_len &&
	      pvmigrate__device_set__pack(m, again) == good_len && !memcmp(again, good, good_len),
	      "unpack + pack gives identical bytes");
	if (m)
		pvmigrate__device_set__free_unpacked(m, NULL);
	CHECK(devstate_save(&h->set, &resaved, &n, &cause) == 0 && n == good_len &&
	      !memcmp(resaved, good, n), "the restored target saves the same bytes");
	free(resaved);
	free(cause);
}

static void test_round_trip(void)
{
	static struct all_snaps sa, sb;
	static uint8_t held[90];
	char why[160], *cause = NULL;
	unsigned i, off;
	uint8_t va, vb;
	const char *seed = getenv("DEVSTATE_WRITE_SEED");

	host_init(&ha, 123456789, rig_mac);
	busy_guest(&ha, held, sizeof(held));
	CHECK(!dp83820_rx_ready(&ha.nic) && ha.nic.stats.rx_frames == NRX, "RX ring full, frame held");
	CHECK(ha.f.ntx == 1 && ha.f.irq[NIC_IRQ] && ha.f.irq[4], "NIC and UART lines up before save");
	CHECK(devstate_save(&ha.set, &good, &good_len, &cause) == 0, "save: %s", cause ? cause : "");
	CHECK(good_len > 2 * PCI_CFG_SIZE && good_len < DEVSTATE_MAX_LEN, "size %zu", good_len);
	if (seed && good) {
		FILE *fp = fopen(seed, "wb");

		CHECK(fp && fwrite(good, 1, good_len, fp) == good_len && fclose(fp) == 0,
		      "seed written to %s", seed);
	}

	/* the target: another clock, a blank MAC, the guest's RAM moved across */
	host_init(&hb, 5000000000ull, (const uint8_t *)"\0\0\0\0\0\0");
	memcpy(hb.f.ram, ha.f.ram, FAKE_RAM);
	CHECK(devstate_restore(&hb.set, good, good_len, why, sizeof(why)) == 0, "restore: %s", why);
	check_recode(&hb);
	snap_all(&ha, &sa);
	snap_all(&hb, &sb);
	CHECK(!memcmp(&sa.pic, &sb.pic, sizeof(sa.pic)), "PIC snapshots equal");
	CHECK(!memcmp(&sa.pit, &sb.pit, sizeof(sa.pit)), "PIT snapshots equal (ages rebased)");
	CHECK(!memcmp(&sa.uart, &sb.uart, sizeof(sa.uart)), "UART snapshots equal");
	CHECK(!memcmp(&sa.pci, &sb.pci, sizeof(sa.pci)), "config spaces equal");
	CHECK(!memcmp(&sa.nic, &sb.nic, sizeof(sa.nic)), "NIC snapshots equal");
	for (i = 0; i < 16; i++)
		CHECK(ha.f.irq[i] == hb.f.irq[i], "line %u re-driven on the target", i);
	CHECK(hb.nicmap.on[DP83820_BAR_IO] && hb.nicmap.base[DP83820_BAR_IO] == 0xc000 &&
	      hb.nicmap.on[DP83820_BAR_MEM] && hb.nicmap.base[DP83820_BAR_MEM] == 0xfebf0000u,
	      "NIC BAR windows reported to the target host");
	CHECK(hb.vgamap.on[0] && hb.vgamap.base[0] == 0xfd000000u && hb.vgamap.base[2] == 0xfebf1000u,
	      "VGA BAR windows reported");

	/* PCI: the config address latch and every byte of both functions */
	CHECK(pci_io_read(&ha.bus, 0xcfc, 1) == pci_io_read(&hb.bus, 0xcfc, 1) &&
	      pci_io_read(&hb.bus, 0xcfc, 1) == NIC_IRQ, "0xcf8 latch survived");
	for (off = 0; off < PCI_CFG_SIZE; off += 4) {
		CHECK(cfgr(&ha, NIC_SLOT, off) == cfgr(&hb, NIC_SLOT, off), "NIC cfg %#x", off);
		CHECK(cfgr(&ha, VGA_SLOT, off) == cfgr(&hb, VGA_SLOT, off), "VGA cfg %#x", off);
	}

	/* PIC: the same vectors in the same order as both continue */
	for (i = 0; i < 3; i++) {
		CHECK(i8259_has_interrupt(&ha.pic) == i8259_has_interrupt(&hb.pic), "INTR equal %u", i);
		i8259_io_write(&ha.pic, 0x20, 1, 0x20);
		i8259_io_write(&hb.pic, 0x20, 1, 0x20);
		va = i8259_ack(&ha.pic);
		vb = i8259_ack(&hb.pic);
		CHECK(va == vb, "vector %u: %#x vs %#x", i, va, vb);
		i8259_io_write(&ha.pic, 0xa0, 1, 0x20);
		i8259_io_write(&hb.pic, 0xa0, 1, 0x20);
	}

	/* PIT: the rest of the latch, then the same IRQ0 edges and counts */
	CHECK(i8254_io_read(&ha.pit, 0x40, 1) == i8254_io_read(&hb.pit, 0x40, 1), "latched MSB");
	CHECK(i8254_next_deadline_ns(&ha.pit) - ha.f.now == i8254_next_deadline_ns(&hb.pit) - hb.f.now,
	      "next IRQ0 the same distance away");
	for (i = 0; i < 5; i++) {
		ha.f.now += 7000000;
		hb.f.now += 7000000;
		i8254_tick(&ha.pit);
		i8254_tick(&hb.pit);
		CHECK(ha.f.raises[0] == hb.f.raises[0], "IRQ0 edges (%u)", i);
		i8254_io_write(&ha.pit, 0x43, 1, 0x80);
		i8254_io_write(&hb.pit, 0x43, 1, 0x80);
		CHECK(i8254_io_read(&ha.pit, 0x42, 1) == i8254_io_read(&hb.pit, 0x42, 1) &&
		      i8254_io_read(&ha.pit, 0x42, 1) == i8254_io_read(&hb.pit, 0x42, 1),
		      "counter 2 count (%u)", i);
		CHECK(i8254_get_out(&ha.pit, 2) == i8254_get_out(&hb.pit, 2), "OUT2 (%u)", i);
	}

	/* UART: DLAB still set (divisor reads back), then the FIFO drains alike */
	CHECK(uart16550_io_read(&hb.uart, COM1, 1) == 0x01 &&
	      uart16550_io_read(&hb.uart, COM1 + 3, 1) == 0x83, "DLAB and divisor survived");
	uart16550_io_write(&ha.uart, COM1 + 3, 1, 0x03);
	uart16550_io_write(&hb.uart, COM1 + 3, 1, 0x03);
	CHECK(uart16550_io_read(&hb.uart, COM1 + 7, 1) == 0x5a, "scratch register");
	for (i = 0; i < 5; i++) {
		CHECK(uart16550_io_read(&ha.uart, COM1 + 2, 1) == uart16550_io_read(&hb.uart, COM1 + 2, 1),
		      "IIR %u", i);
		CHECK(uart16550_io_read(&ha.uart, COM1 + 5, 1) == uart16550_io_read(&hb.uart, COM1 + 5, 1),
		      "LSR %u", i);
		CHECK(uart16550_io_read(&ha.uart, COM1, 1) == uart16550_io_read(&hb.uart, COM1, 1),
		      "RBR %u", i);
		CHECK(ha.f.irq[4] == hb.f.irq[4], "IRQ4 %u", i);
	}
	uart16550_io_write(&ha.uart, COM1, 1, '!');
	uart16550_io_write(&hb.uart, COM1, 1, '!');
	CHECK(hb.f.ncon == 1 && hb.f.console[0] == '!', "TX after restore");

	/* NIC: registers, then the driver finishes the half-handed TX chain,
	 * acks, refills the RX ring and the host delivers the held frame */
	for (off = 0; off < DP83820_IO_SIZE; off += 4)
		if (off != ISR)
			CHECK(rd(&ha, off) == rd(&hb, off), "NIC register %#x", off);
	CHECK(rd(&ha, ISR) == rd(&hb, ISR) && !ha.f.irq[NIC_IRQ] && !hb.f.irq[NIC_IRQ],
	      "ISR equal; reading it drops both lines");
	txdesc(&ha.f, 1, CMDSTS_OWN | CMDSTS_MORE | 100, BUF + 0x1000);
	txdesc(&hb.f, 1, CMDSTS_OWN | CMDSTS_MORE | 100, BUF + 0x1000);
	wr(&ha, CR, CR_TXE);
	wr(&hb, CR, CR_TXE);
	CHECK(ha.f.ntx == 2 && hb.f.ntx == 1 && hb.f.txlen[0] == 120 &&
	      !memcmp(ha.f.tx[1], hb.f.tx[0], 120), "the same next frame leaves");
	CHECK(ha.f.irq[NIC_IRQ] == hb.f.irq[NIC_IRQ] && rd(&ha, ISR) == rd(&hb, ISR), "TX interrupt");
	CHECK(!dp83820_rx_ready(&hb.nic), "target receiver still parked");
	rx_ring(&ha.f);
	rx_ring(&hb.f);
	wr(&ha, RXDP, RXR);
	wr(&hb, RXDP, RXR);
	wr(&ha, CR, CR_RXE);
	wr(&hb, CR, CR_RXE);
	CHECK(dp83820_rx(&ha.nic, held, sizeof(held)) == 0 &&
	      dp83820_rx(&hb.nic, held, sizeof(held)) == 0, "held frame delivered on both");
	CHECK(!memcmp(ha.f.ram, hb.f.ram, 0x20000), "same descriptors and buffers in guest RAM");
	CHECK(ha.f.irq[NIC_IRQ] == hb.f.irq[NIC_IRQ] && rd(&ha, ISR) == rd(&hb, ISR), "RX interrupt");
	snap_all(&ha, &sa);
	snap_all(&hb, &sb);
	CHECK(!memcmp(&sa.nic, &sb.nic, sizeof(sa.nic)), "NIC snapshots still equal");
	free(cause);
}

int main(void)
{
	test_round_trip();
	free(good);
	return tap_done("devstate");
}
