/* test_dp83820.c: the DP83820 driven the way Linux's ns83820 drives it: probe, TX/RX rings, ISR/IMR/IER, reset, save/restore */
#include "../lib/tap.h"
#include "fake_env.h"
#include "dp83820.h"

#include "dp83820_regs.h"

/* Short names for the descriptor bits the ring tests spell out */
#define OWN CMDSTS_OWN
#define MORE CMDSTS_MORE
#define INTR CMDSTS_INTR
#define OK CMDSTS_OK
#define DEST_SELF CMDSTS_DEST_SELF
#define DEST_BCAST CMDSTS_DEST_BCAST
#define CFG_PINT_LNKSTS_BITS 0x001c0000u	/* PINT_DUPSTS|PINT_LNKSTS|PINT_SPDSTS */

#define IRQ 11
#define SLOT 5
#define TXR 0x1000u	/* TX ring: 8 descriptors, 32-byte stride as the driver uses */
#define RXR 0x2000u	/* RX ring */
#define BUF 0x10000u
#define NTX 8
#define NRX 4

static struct fake fk, fk2;
static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

static uint32_t rd(struct dp83820 *d, uint32_t off)
{
	return dp83820_io_read(d, off, 4);
}

static void wr(struct dp83820 *d, uint32_t off, uint32_t v)
{
	dp83820_io_write(d, off, 4, v);
}

/* Firmware's part: route INTA to IRQ 11, place BAR1, enable memory + master. */
static void attach(struct dp83820 *d, struct pci_bus *bus, struct fake *f)
{
	pci_init(bus, &f->env);
	pci_attach(bus, SLOT, &d->pci);
	pci_func_cfg_write(&d->pci, PCI_INTERRUPT_LINE, 1, IRQ);
	pci_func_cfg_write(&d->pci, PCI_BASE_ADDRESS_0 + 4, 4, 0xfebf0000u);
	pci_func_cfg_write(&d->pci, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

static void txdesc(struct fake *f, unsigned i, uint32_t cmdsts, uint32_t buf)
{
	uint64_t a = TXR + 32 * i;

	fake_put32(f, a, TXR + 32 * ((i + 1) % NTX));	/* link: low word only, as ns83820 */
	fake_put32(f, a + 4, 0);
	fake_put32(f, a + 8, buf);
	fake_put32(f, a + 12, 0);
	fake_put32(f, a + 20, 0);
	fake_put32(f, a + 16, cmdsts);
}

static uint32_t txsts(struct fake *f, unsigned i)
{
	return fake_get32(f, TXR + 32 * i + 16);
}

/* ns83820_add_rx_skb(): OWN clear = the chip may fill it; the link of the
 * newest descriptor stays NULL until the next one is added. */
static void rxdesc(struct fake *f, unsigned i, uint64_t link)
{
	uint64_t a = RXR + 32 * i;

	fake_put32(f, a, (uint32_t)link);
	fake_put32(f, a + 4, 0);
	fake_put32(f, a + 8, BUF + 0x8000 + 0x800 * i);
	fake_put32(f, a + 12, 0);
	fake_put32(f, a + 20, 0);
	fake_put32(f, a + 16, 1514 | INTR);
}

static uint32_t rxsts(struct fake *f, unsigned i)
{
	return fake_get32(f, RXR + 32 * i + 16);
}

static void frame(uint8_t *p, size_t len, const uint8_t *dst, uint8_t fill)
{
	memset(p, fill, len);
	memcpy(p, dst, 6);
	memcpy(p + 6, "\x02\x00\x00\x00\x00\x01", 6);
}

/* ns83820_init_one() up to getmac(), then the pieces of ns83820_open(). */
static void probe(struct dp83820 *d, struct fake *f)
{
	uint32_t cfg;

	wr(d, IMR, 0);
	wr(d, IER, 0);
	wr(d, CR, CR_RST);
	wr(d, PTSCR, PTSCR_RBIST_RST);
	wr(d, PTSCR, PTSCR_RBIST_EN);
	wr(d, PTSCR, PTSCR_EEBIST_EN);
	wr(d, PTSCR, PTSCR_EELOAD_EN);
	cfg = rd(d, CFG) & (CFG_TBI_EN | CFG_M64ADDR);
	cfg |= CFG_PINT_LNKSTS_BITS | 0x100 | 0x10 | 0x8 | 0x80 | 0x20 | 0x20000 | CFG_M64ADDR;
	wr(d, CFG, cfg);
	wr(d, TXDP_HI, 0);
	wr(d, TXDP, TXR);
	wr(d, RXDP_HI, 0);
	wr(d, RXDP, RXR);
	wr(d, RFCR, 0);
	wr(d, RFCR, 0x7fc00000u);
	wr(d, RFCR, 0xffc00000u);
	wr(d, RFCR, 0xffc00000u & ~0x30000000u & ~0x80000000u);	/* set_multicast(): drop AAU|AAM */
	wr(d, RFCR, 0xffc00000u & ~0x30000000u);
	(void)f;
}

static void test_probe_registers(void)
{
	static struct dp83820 d;
	struct pci_bus bus;
	uint32_t cfg, v, i;
	uint8_t got[6];

	fake_init(&fk);
	dp83820_init(&d, &fk.env, mac);
	attach(&d, &bus, &fk);
	CHECK(pci_func_cfg_read(&d.pci, 0, 4) == 0x0022100bu, "PCI id 100b:0022");
	CHECK(pci_func_cfg_read(&d.pci, 0x14, 4) == 0xfebf0000u, "BAR1 is the 4 KiB memory BAR");
	wr(&d, CR, CR_RST);
	CHECK(!(rd(&d, CR) & CR_RST), "RST self-clears (ns83820_do_reset polls it)");
	wr(&d, PTSCR, PTSCR_RBIST_RST);
	wr(&d, PTSCR, PTSCR_RBIST_EN);
	v = rd(&d, PTSCR);
	CHECK(!(v & PTSCR_RBIST_EN) && (v & PTSCR_RBIST_DONE) && !(v & 0x1b8), "SRAM BIST done, passed");
	wr(&d, PTSCR, PTSCR_EEBIST_EN);
	CHECK(!(rd(&d, PTSCR) & PTSCR_EEBIST_EN), "EEPROM BIST done");
	wr(&d, PTSCR, PTSCR_EELOAD_EN);
	CHECK(!(rd(&d, PTSCR) & PTSCR_EELOAD_EN), "EEPROM load done");
	cfg = rd(&d, CFG);
	CHECK(!(cfg & (CFG_TBI_EN | CFG_PCI64_DET)), "copper PHY, 32-bit slot");
	cfg ^= 0x70000000u;	/* the driver's SPDSTS_POLARITY */
	CHECK((cfg & CFG_LNKSTS) && ((cfg & CFG_SPDSTS) / CFG_SPDSTS0) == 2 && (cfg & CFG_DUPSTS),
	      "driver sees link up, 1000 Mb/s, full duplex");
	wr(&d, CFG, CFG_M64ADDR | CFG_PINT_LNKSTS);
	CHECK((rd(&d, CFG) & 0x00ffffffu) == (CFG_M64ADDR | CFG_PINT_LNKSTS), "CFG writable bits stick");
	CHECK(rd(&d, SRR) == 0x0103, "SRR revision");
	for (i = 0; i < 3; i++) {	/* ns83820_getmac() */
		wr(&d, RFCR, i * 2);
		v = rd(&d, RFDR);
		got[2 * i] = (uint8_t)v;
		got[2 * i + 1] = (uint8_t)(v >> 8);
	}
	CHECK(!memcmp(got, mac, 6), "MAC through RFCR/RFDR");
	wr(&d, TXDP_HI, 0x1);
	wr(&d, TXDP, 0x12345678);
	CHECK(rd(&d, TXDP) == 0x12345678 && rd(&d, TXDP_HI) == 1, "TXDP/TXDP_HI");
	CHECK(rd(&d, 0x22c) == 0, "the odd 0x22c probe read is harmless");

	/* ISR read-to-clear, IMR/IER masking of INTA */
	wr(&d, CR, CR_SWI);
	CHECK(fk.irq[IRQ] == 0, "SWI with IMR=0: no interrupt");
	wr(&d, IMR, ISR_SWI);
	CHECK(fk.irq[IRQ] == 0, "IER=0: no interrupt");
	wr(&d, IER, 1);
	CHECK(fk.irq[IRQ] == 1, "IMR and IER: line 11 raised");
	CHECK(pci_func_cfg_read(&d.pci, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, "PCI status INTx");
	CHECK(rd(&d, ISR) == ISR_SWI, "ISR shows SWI");
	CHECK(fk.irq[IRQ] == 0 && rd(&d, ISR) == 0, "ISR read cleared it and the line");

	/* link change */
	wr(&d, IMR, ISR_PHY);
	dp83820_set_link(&d, false);
	CHECK(fk.irq[IRQ] == 1 && (rd(&d, ISR) & ISR_PHY), "link loss raises ISR_PHY");
	CHECK(!(rd(&d, CFG) & CFG_LNKSTS), "CFG.LNKSTS down");
	dp83820_set_link(&d, true);
	(void)rd(&d, ISR);

	/* reset */
	wr(&d, CR, CR_RST);
	CHECK(rd(&d, IMR) == 0 && rd(&d, IER) == 0 && rd(&d, TXDP) == 0 && rd(&d, CFG) == (CFG_LNKSTS | CFG_SPDSTS0),
	      "reset clears the register file");
	wr(&d, RFCR, 2);
	CHECK(rd(&d, RFDR) == (uint32_t)(mac[2] | mac[3] << 8), "MAC survives reset");
}

static void test_tx(void)
{
	static struct dp83820 d;
	struct pci_bus bus;
	unsigned i;

	fake_init(&fk);
	dp83820_init(&d, &fk.env, mac);
	attach(&d, &bus, &fk);
	probe(&d, &fk);
	wr(&d, IMR, ISR_TXDESC | ISR_TXIDLE);
	wr(&d, IER, 1);
	for (i = 0; i < NTX; i++)
		txdesc(&fk, i, 0, 0);
	memset(fk.ram + BUF, 0xaa, 60);
	memset(fk.ram + BUF + 0x1000, 0xbb, 100);
	memset(fk.ram + BUF + 0x2000, 0xcc, 20);
	txdesc(&fk, 0, OWN | 60, BUF);
	txdesc(&fk, 1, OWN | MORE | 100, BUF + 0x1000);	/* one frame in two fragments */
	txdesc(&fk, 2, OWN | INTR | 20, BUF + 0x2000);
	wr(&d, CR, CR_TXE);
	CHECK(fk.ntx == 2, "two frames left: %u", fk.ntx);
	CHECK(fk.txlen[0] == 60 && fk.tx[0][0] == 0xaa, "first frame");
	CHECK(fk.txlen[1] == 120 && fk.tx[1][99] == 0xbb && fk.tx[1][100] == 0xcc, "MORE chain gathered");
	CHECK(txsts(&fk, 0) == (OK | 60), "desc 0 handed back: OWN clear, OK, length kept");
	CHECK(txsts(&fk, 1) == (OK | MORE | 100) && txsts(&fk, 2) == (OK | INTR | 20), "chain handed back");
	CHECK(rd(&d, TXDP) == TXR + 3 * 32, "TXDP rests on the first free descriptor");
	CHECK(!(rd(&d, CR) & CR_TXE), "transmitter idle");
	CHECK(fk.irq[IRQ] == 1, "TXDESC/TXIDLE interrupt");
	CHECK(rd(&d, ISR) == (ISR_TXOK | ISR_TXDESC | ISR_TXIDLE), "ISR bits for the TX pass");

	/* OWN handoff: the driver sets OWN on a frame's first descriptor last */
	txdesc(&fk, 3, MORE | 10, BUF);
	txdesc(&fk, 4, OWN | 10, BUF);
	wr(&d, CR, CR_TXE);
	CHECK(fk.ntx == 2 && rd(&d, TXDP) == TXR + 3 * 32, "not owned yet: nothing sent");
	txdesc(&fk, 3, OWN | MORE | 10, BUF);
	wr(&d, CR, CR_TXE);
	CHECK(fk.ntx == 3 && fk.txlen[2] == 20, "owned: the whole chain goes");

	/* ring wrap: 5..7 then 0 */
	for (i = 5; i < NTX + 1; i++)
		txdesc(&fk, i % NTX, OWN | (40 + i), BUF);
	wr(&d, CR, CR_TXE);
	CHECK(fk.ntx == 7 && fk.txlen[6] == 48, "wrapped through the link of the last descriptor");
	CHECK(rd(&d, TXDP) == TXR + 32, "TXDP after the wrap");
	CHECK(d.stats.tx_frames == 7, "stats");

	/* 32-bit descriptor layout when CFG.M64ADDR is clear */
	wr(&d, CFG, rd(&d, CFG) & ~CFG_M64ADDR & 0x00ffffffu);
	fake_put32(&fk, 0x3000, 0);
	fake_put32(&fk, 0x3004, BUF);
	fake_put32(&fk, 0x300c, 0);
	fake_put32(&fk, 0x3008, OWN | 33);
	wr(&d, TXDP, 0x3000);
	wr(&d, CR, CR_TXE);
	CHECK(fk.ntx == 8 && fk.txlen[7] == 33 && fake_get32(&fk, 0x3008) == (OK | 33), "16-byte descriptors");
}

static void rx_ring(struct fake *f)
{
	unsigned i;

	for (i = 0; i < NRX; i++)
		rxdesc(f, i, i + 1 < NRX ? RXR + 32 * (i + 1) : 0);
}

static void test_rx(void)
{
	static struct dp83820 d;
	struct pci_bus bus;
	uint8_t f[128], bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t other[6] = { 0x52, 0x54, 0, 0, 0, 9 };

	fake_init(&fk);
	dp83820_init(&d, &fk.env, mac);
	attach(&d, &bus, &fk);
	probe(&d, &fk);
	rx_ring(&fk);
	wr(&d, IMR, ISR_RXDESC | ISR_RXIDLE | ISR_RXORN);
	wr(&d, IER, 1);
	CHECK(!dp83820_rx_ready(&d), "receiver off: not ready");
	wr(&d, RXDP, RXR);
	wr(&d, CR, CR_RXE);
	CHECK(rd(&d, CR) & CR_RXE, "receiver on");
	CHECK(dp83820_rx_ready(&d), "ready");
	frame(f, 64, mac, 0x11);
	CHECK(dp83820_rx(&d, f, 64) == 0, "frame to our MAC taken");
	CHECK(rxsts(&fk, 0) == (OWN | OK | DEST_SELF | 64), "desc 0: OWN (driver's now), OK, dest, length");
	CHECK(!memcmp(fk.ram + BUF + 0x8000, f, 64), "data in the buffer");
	CHECK(rd(&d, RXDP) == RXR + 32, "RXDP advanced");
	CHECK(fk.irq[IRQ] == 1, "RXDESC interrupt");
	CHECK(rd(&d, ISR) == (ISR_RXOK | ISR_RXDESC), "ISR bits");
	CHECK(fk.irq[IRQ] == 0, "cleared");

	frame(f, 64, other, 0x22);
	CHECK(dp83820_rx(&d, f, 64) == 0 && rxsts(&fk, 1) == (1514 | INTR), "other unicast filtered out");
	frame(f, 60, bcast, 0x33);
	CHECK(dp83820_rx(&d, f, 60) == 0 && (rxsts(&fk, 1) & CMDSTS_DEST_MASK) == DEST_BCAST, "broadcast taken");

	/* IMR masks the line but ISR still records */
	wr(&d, IMR, 0);
	frame(f, 70, mac, 0x44);
	CHECK(dp83820_rx(&d, f, 70) == 0 && fk.irq[IRQ] == 0, "masked: no line");
	CHECK(rd(&d, ISR) & ISR_RXOK, "but ISR latched RXOK");
	wr(&d, IMR, ISR_RXDESC | ISR_RXIDLE | ISR_RXORN);

	/* the last descriptor has a NULL link: the receiver goes idle */
	CHECK(dp83820_rx(&d, f, 70) == 0 && rxsts(&fk, 3) == (OWN | OK | DEST_SELF | 70), "last descriptor");
	CHECK(rd(&d, ISR) & ISR_RXIDLE, "RXIDLE");
	CHECK(!dp83820_rx_ready(&d), "no free descriptor: host must hold");
	CHECK(dp83820_rx(&d, f, 70) == -1 && d.stats.rx_dropped == 1, "delivery now fails, counted");
	wr(&d, CR, CR_RXE);
	CHECK(!(rd(&d, CR) & CR_RXE), "RXE with the link still NULL: stays idle");
	(void)rd(&d, ISR);

	/* driver: rx_irq() consumes 0, refill re-adds it after 3, kick_rx() */
	rxdesc(&fk, 0, 0);
	fake_put32(&fk, RXR + 3 * 32, RXR);
	wr(&d, RXDP, RXR);
	wr(&d, CR, CR_RXE);
	CHECK(dp83820_rx_ready(&d), "refilled: ready again");
	frame(f, 90, mac, 0x55);
	CHECK(dp83820_rx(&d, f, 90) == 0 && rxsts(&fk, 0) == (OWN | OK | DEST_SELF | 90), "held frame lands after wrap");

	/* a ring linked in a circle: full when the chip meets its own work */
	rx_ring(&fk);
	fake_put32(&fk, RXR + 3 * 32, RXR);
	wr(&d, RXDP, RXR);
	wr(&d, CR, CR_RXE);
	CHECK(dp83820_rx(&d, f, 90) == 0 && dp83820_rx(&d, f, 90) == 0 && dp83820_rx(&d, f, 90) == 0 &&
	      dp83820_rx(&d, f, 90) == 0, "four frames fill the ring");
	CHECK(!dp83820_rx_ready(&d) && !(rd(&d, CR) & CR_RXE), "met its own work: idle");
	CHECK(rd(&d, ISR) & ISR_RXIDLE, "RXIDLE tells the driver");
	CHECK(dp83820_rx(&d, f, 90) == -1, "nothing lands while idle");
	wr(&d, RXDP, RXR);	/* kick_rx() before rx_irq() ran: still the driver's */
	wr(&d, CR, CR_RXE);
	CHECK(!(rd(&d, CR) & CR_RXE) && (rd(&d, ISR) & ISR_RXIDLE), "RXE on a host-owned descriptor: idle again");
	rxdesc(&fk, 0, RXR + 32);	/* rx_irq() consumed desc 0, refill gave it back */
	wr(&d, RXDP, RXR);
	wr(&d, CR, CR_RXE);
	CHECK(dp83820_rx_ready(&d), "ready after the driver's kick");
	CHECK(dp83820_rx(&d, f, 90) == 0 && rxsts(&fk, 0) == (OWN | OK | DEST_SELF | 90), "delivered");

	/* no bus mastering: no DMA at all */
	pci_func_cfg_write(&d.pci, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	rxdesc(&fk, 1, RXR + 64);
	CHECK(!dp83820_rx_ready(&d), "bus master off: not ready");
}

static void test_save_restore(void)
{
	static struct dp83820 a, b;
	static struct dp83820_snap s, bad;
	static struct pci_snap ps;
	struct pci_bus ba, bb;
	uint8_t f[100];
	unsigned i;

	fake_init(&fk);
	dp83820_init(&a, &fk.env, mac);
	attach(&a, &ba, &fk);
	probe(&a, &fk);
	rx_ring(&fk);
	for (i = 0; i < NTX; i++)
		txdesc(&fk, i, 0, 0);
	wr(&a, IMR, ISR_RXDESC | ISR_TXDESC | ISR_TXIDLE);
	wr(&a, IER, 1);
	wr(&a, CR, CR_RXE);
	frame(f, 100, mac, 0x66);
	dp83820_rx(&a, f, 100);	/* ISR pending, line up, RXDP at desc 1 */
	pci_save(&ba, &ps);
	dp83820_save(&a, &s);

	memcpy(&fk2, &fk, sizeof(fk));	/* the guest's RAM moved with it */
	fk2.env.ctx = &fk2;
	memset(fk2.irq, 0, sizeof(fk2.irq));
	memset(fk2.raises, 0, sizeof(fk2.raises));
	fk2.ntx = 0;
	fk.ntx = 0;
	dp83820_init(&b, &fk2.env, (const uint8_t *)"\0\0\0\0\0\0");
	pci_init(&bb, &fk2.env);
	pci_attach(&bb, SLOT, &b.pci);
	CHECK(pci_restore(&bb, &ps) == DEV_RESTORE_OK, "config space restored");
	CHECK(dp83820_restore(&b, &s) == DEV_RESTORE_OK, "NIC restored");
	CHECK(fk2.irq[IRQ] == 1, "pending interrupt re-driven on the target");
	for (i = 0; i < 0x100; i += 4)
		if (i != ISR)
			CHECK(rd(&a, i) == rd(&b, i), "register %#x equal", i);
	CHECK(rd(&a, ISR) == rd(&b, ISR) && fk.irq[IRQ] == fk2.irq[IRQ], "ISR equal, both lines drop");
	frame(f, 80, mac, 0x77);
	CHECK(dp83820_rx(&a, f, 80) == 0 && dp83820_rx(&b, f, 80) == 0, "both receive");
	CHECK(!memcmp(fk.ram, fk2.ram, 0x20000), "same descriptors and buffers written");
	txdesc(&fk, 0, OWN | 77, BUF);
	txdesc(&fk2, 0, OWN | 77, BUF);
	wr(&a, CR, CR_TXE);
	wr(&b, CR, CR_TXE);
	CHECK(fk.ntx == 1 && fk2.ntx == 1 && fk.txlen[0] == fk2.txlen[0] &&
	      !memcmp(fk.tx[0], fk2.tx[0], fk.txlen[0]), "same next frame");
	CHECK(rd(&a, ISR) == rd(&b, ISR) && fk.raises[IRQ] - 1 == fk2.raises[IRQ] - 1, "same interrupts");

	bad = s;
	bad.rxdp |= 2;
	CHECK(dp83820_restore(&b, &bad) == DEV_RESTORE_EINVAL, "misaligned ring pointer refused");
	bad = s;
	bad.irq_line = 20;
	CHECK(dp83820_restore(&b, &bad) == DEV_RESTORE_EINVAL, "IRQ line 20 refused");
	bad = s;
	bad.rx_on = 1;
	bad.rx_at_null = 1;
	CHECK(dp83820_restore(&b, &bad) == DEV_RESTORE_EINVAL, "running receiver parked on NULL refused");
	bad = s;
	bad.regs[SRR / 4] = 0x0203;
	CHECK(dp83820_restore(&b, &bad) == DEV_RESTORE_EINVAL, "another chip revision refused");
}

int main(void)
{
	test_probe_registers();
	test_tx();
	test_rx();
	test_save_restore();
	return tap_done("dp83820");
}
