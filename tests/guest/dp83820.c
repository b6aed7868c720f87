/* dp83820.c: driver for the NatSemi DP83820 gigabit NIC: echo every received frame back */
#include <pvsites.h>

#include "arch.h"
#include "guest.h"
#include "selftest.h"

/*
 * What it does: reset the chip, read the station address from the receive
 * filter's perfect-match RAM, set up one receive and one transmit ring of
 * descriptors in guest memory, accept every frame, and send each received
 * frame back to its sender.  Only the Ethernet addresses change (the
 * sender's becomes the destination, ours the source): the payload, and so
 * any sequence number a test puts in it, goes back byte for byte.
 *
 * Descriptors use the chip's 64-bit layout (CFG.M64ADDR), the one Linux's
 * ns83820 uses on x86-64, so a device model only needs to be right about
 * one format for both guests.  Register accesses are manual MMIO sites.
 */

/* Registers (offsets into the BAR1 memory window). */
#define CR	0x00
#define CFG	0x04
#define ISR	0x10 /* read clears */
#define IMR	0x14
#define IER	0x18
#define TXDP	0x20
#define TXDP_HI 0x24
#define TXCFG	0x28
#define RXDP	0x30
#define RXDP_HI 0x34
#define RXCFG	0x38
#define RFCR	0x48
#define RFDR	0x4c

#define CR_TXE 0x001u
#define CR_RXE 0x004u
#define CR_TXR 0x010u
#define CR_RXR 0x020u
#define CR_RST 0x100u

#define CFG_M64ADDR 0x00000800u

#define ISR_RXOK   0x0001u
#define ISR_RXDESC 0x0002u
#define ISR_RXERR  0x0004u
#define ISR_RXIDLE 0x0010u
#define ISR_RXORN  0x0020u
#define ISR_TXOK   0x0040u

#define TXCFG_CSI      0x80000000u
#define TXCFG_HBI      0x40000000u
#define TXCFG_ATP      0x10000000u /* pad short frames */
#define TXCFG_MXDMA512 0x00700000u
#define TXCFG_FLTH(x)  ((uint32_t)(x) << 8) /* fill threshold, 32-byte units */
#define TXCFG_DRTH(x)  ((uint32_t)(x))	    /* drain threshold, 32-byte units */

#define RXCFG_STRIPCRC 0x20000000u
#define RXCFG_RX_FD    0x10000000u
#define RXCFG_ALP      0x08000000u /* accept long frames */
#define RXCFG_AIRL     0x04000000u /* accept in-range length errors */
#define RXCFG_MXDMA512 0x00700000u
#define RXCFG_DRTH(x)  ((uint32_t)(x) << 1)

#define RFCR_RFEN 0x80000000u
#define RFCR_AAB  0x40000000u /* all broadcast */
#define RFCR_AAM  0x20000000u /* all multicast */
#define RFCR_AAU  0x10000000u /* all unicast */

#define CMDSTS_OWN  0x80000000u
#define CMDSTS_MORE 0x40000000u
#define CMDSTS_INTR 0x20000000u
#define CMDSTS_OK   0x08000000u
#define CMDSTS_LEN  0x0000ffffu

#define NRX	    16
#define NTX	    16
#define BUF_SIZE    2048u /* one frame per buffer, two buffers a page */
#define RX_BUF_SIZE 1536u /* what the chip may write: a full frame, 8-byte multiple */
#define ETH_HLEN    14u

struct desc {
	uint64_t link;	 /* physical address of the next descriptor */
	uint64_t bufptr; /* physical address of the buffer */
	uint32_t cmdsts; /* OWN, MORE, INTR, OK, status, size */
	uint32_t extsts;
};

static struct nic {
	volatile uint8_t *regs;
	volatile struct desc *rx, *tx;
	uint8_t *rxbuf[NRX], *txbuf[NTX];
	unsigned rx_next, tx_next;
	uint8_t mac[6];
	uint64_t rx_frames, rx_errors, echoed, tx_full;
} nic;

static uint32_t rd(unsigned reg) { return pv_mmio_read32(nic.regs + reg); }
static void wr(unsigned reg, uint32_t v) { pv_mmio_write32(nic.regs + reg, v); }

static int reset(void)
{
	wr(CR, CR_RST);
	for (unsigned i = 0; i < 100000; i++)
		if (!(rd(CR) & CR_RST))
			return 0;
	return -1;
}

static void read_mac(void)
{
	/* The perfect-match RAM holds the address as three 16-bit words. */
	for (unsigned i = 0; i < 3; i++) {
		wr(RFCR, i * 2);
		uint32_t w = rd(RFDR);
		nic.mac[2 * i] = (uint8_t)w;
		nic.mac[2 * i + 1] = (uint8_t)(w >> 8);
	}
}

/* Two frame buffers per page; every page is identity mapped, so va == pa. */
static uint8_t *buffer(unsigned i)
{
	static uint64_t page;
	if (!(i & 1))
		page = alloc_page();
	return (uint8_t *)(page + (i & 1) * BUF_SIZE);
}

static void rings_init(void)
{
	nic.rx = (volatile struct desc *)alloc_page();
	nic.tx = (volatile struct desc *)alloc_page();
	for (unsigned i = 0; i < NRX; i++) {
		nic.rxbuf[i] = buffer(i);
		nic.rx[i].link = (uint64_t)&nic.rx[(i + 1) % NRX];
		nic.rx[i].bufptr = (uint64_t)nic.rxbuf[i];
		nic.rx[i].extsts = 0;
		nic.rx[i].cmdsts = RX_BUF_SIZE; /* OWN clear: the chip may fill it */
	}
	for (unsigned i = 0; i < NTX; i++) {
		nic.txbuf[i] = buffer(i);
		nic.tx[i].link = (uint64_t)&nic.tx[(i + 1) % NTX];
		nic.tx[i].bufptr = (uint64_t)nic.txbuf[i];
		nic.tx[i].extsts = 0;
		nic.tx[i].cmdsts = 0; /* OWN clear: ours, nothing to send */
	}
	nic.rx_next = nic.tx_next = 0;
}

static void echo(const uint8_t *f, unsigned len)
{
	volatile struct desc *d = &nic.tx[nic.tx_next];
	if (d->cmdsts & CMDSTS_OWN) { /* the chip has not sent the oldest one yet */
		nic.tx_full++;
		return;
	}
	uint8_t *b = nic.txbuf[nic.tx_next];
	kmemcpy(b, f + 6, 6);	      /* back to the sender */
	kmemcpy(b + 6, nic.mac, 6);   /* from us */
	kmemcpy(b + 12, f + 12, len - 12); /* type and payload unchanged */
	d->bufptr = (uint64_t)b;
	d->extsts = 0;
	__asm__ volatile("" ::: "memory"); /* the buffer before OWN (x86 keeps store order) */
	d->cmdsts = CMDSTS_OWN | CMDSTS_INTR | len;
	nic.tx_next = (nic.tx_next + 1) % NTX;
	wr(CR, CR_TXE); /* wakes an idle transmitter; harmless when it runs */
	nic.echoed++;
}

/* Service the receive ring; from the timer and from the NIC's own interrupt. */
void dp83820_poll(void)
{
	if (!nic.regs)
		return;
	uint32_t isr = rd(ISR);
	unsigned done = 0;
	for (;;) {
		volatile struct desc *d = &nic.rx[nic.rx_next];
		uint32_t cs = d->cmdsts;
		if (!(cs & CMDSTS_OWN))
			break; /* the chip still owns it: nothing more received */
		unsigned len = cs & CMDSTS_LEN;
		if ((cs & CMDSTS_OK) && len >= ETH_HLEN && len <= RX_BUF_SIZE) {
			nic.rx_frames++;
			echo(nic.rxbuf[nic.rx_next], len);
		} else {
			nic.rx_errors++;
		}
		d->cmdsts = RX_BUF_SIZE; /* give the buffer back */
		nic.rx_next = (nic.rx_next + 1) % NRX;
		done++;
	}
	/* A receiver that ran out of descriptors stops; restart it. */
	if (done || (isr & (ISR_RXIDLE | ISR_RXORN)))
		wr(CR, CR_RXE);
}

void dp83820_report(void)
{
	if (nic.regs)
		kprintf("dp83820: rx %lu frames, %lu errors, echoed %lu, tx ring full %lu\n",
			nic.rx_frames, nic.rx_errors, nic.echoed, nic.tx_full);
}

/*
 * selftest=1: the mmio-read/mmio-write sites against registers whose
 * read-back the write defines: the station address through RFCR/RFDR (the
 * same bytes attach read), IMR written and read back, ISR cleared by a read.
 * RFCR and IMR are restored; a receiver the cleared ISR said was idle is
 * restarted, as dp83820_poll would have.  Called with interrupts off.
 */
void dp83820_selftest(void)
{
	if (!nic.regs) {
		st_skip("mmio-read/mmio-write", "no DP83820 attached");
		return;
	}
	uint32_t rfcr = rd(RFCR);
	uint8_t mac[6];
	for (unsigned i = 0; i < 3; i++) {
		wr(RFCR, i * 2);
		uint32_t w = rd(RFDR);
		mac[2 * i] = (uint8_t)w;
		mac[2 * i + 1] = (uint8_t)(w >> 8);
	}
	wr(RFCR, rfcr);
	uint32_t rfcr_back = rd(RFCR);
	uint32_t imr = rd(IMR);
	wr(IMR, imr | ISR_TXOK);
	uint32_t imr_set = rd(IMR);
	wr(IMR, imr);
	uint32_t imr_back = rd(IMR);
	uint32_t isr = rd(ISR), isr_again = rd(ISR);
	if (isr & (ISR_RXIDLE | ISR_RXORN))
		wr(CR, CR_RXE);
	int zero = 1, ones = 1;
	for (unsigned i = 0; i < 6; i++)
		zero &= mac[i] == 0, ones &= mac[i] == 0xff;
	int ok = !kmemcmp(mac, nic.mac, 6) && !zero && !ones && rfcr_back == rfcr &&
		 imr_set == (imr | ISR_TXOK) && imr_back == imr && isr_again == 0;
	st_check("mmio-read/mmio-write", ok,
		 "mac=0x%02x%02x%02x%02x%02x%02x rfcr=0x%x imr=0x%x,0x%x isr-after-read=0x%x", mac[0],
		 mac[1], mac[2], mac[3], mac[4], mac[5], rfcr_back, imr_set, imr_back, isr_again);
}

void dp83820_attach(unsigned bus, unsigned dev, unsigned fn)
{
	uint32_t bar[6];
	for (unsigned i = 0; i < 6; i++)
		bar[i] = pci_read32(bus, dev, fn, 0x10 + 4 * i);
	kprintf("dp83820: %02x:%02x.%u BAR0=0x%08x BAR1=0x%08x BAR2=0x%08x BAR3=0x%08x "
		"BAR4=0x%08x BAR5=0x%08x\n",
		bus, dev, fn, bar[0], bar[1], bar[2], bar[3], bar[4], bar[5]);
	if (nic.regs) {
		kprintf("dp83820: only one is driven; skipping this one\n");
		return;
	}
	/* BAR1 is the register window in memory space (BAR0 is the same in I/O space). */
	if (bar[1] & 1) {
		kprintf("dp83820: BAR1 is not a memory BAR; not attaching\n");
		return;
	}
	uint64_t base = bar[1] & ~0xfu;
	if ((bar[1] & 0x6) == 0x4) /* 64-bit BAR: BAR2 holds the high half */
		base |= (uint64_t)bar[2] << 32;
	if (!base) {
		kprintf("dp83820: BAR1 unassigned; not attaching\n");
		return;
	}
	uint32_t cmd = pci_read32(bus, dev, fn, 0x04);
	pci_write32(bus, dev, fn, 0x04, (cmd & 0xffff) | 0x6); /* memory space, bus master */
	nic.regs = map_mmio(base, 4096);

	if (reset() < 0) {
		kprintf("dp83820: reset did not complete; not attaching\n");
		nic.regs = 0;
		return;
	}
	read_mac();
	kprintf("dp83820: mac %02x:%02x:%02x:%02x:%02x:%02x\n", nic.mac[0], nic.mac[1],
		nic.mac[2], nic.mac[3], nic.mac[4], nic.mac[5]);

	rings_init();
	wr(CFG, rd(CFG) | CFG_M64ADDR);
	wr(TXCFG, TXCFG_CSI | TXCFG_HBI | TXCFG_ATP | TXCFG_MXDMA512 | TXCFG_FLTH(16) |
			  TXCFG_DRTH(48));
	wr(RXCFG, RXCFG_STRIPCRC | RXCFG_RX_FD | RXCFG_ALP | RXCFG_AIRL | RXCFG_MXDMA512 |
			  RXCFG_DRTH(8));
	wr(TXDP, (uint32_t)(uint64_t)nic.tx);
	wr(TXDP_HI, 0);
	wr(RXDP, (uint32_t)(uint64_t)nic.rx);
	wr(RXDP_HI, 0);
	wr(RFCR, RFCR_RFEN | RFCR_AAB | RFCR_AAM | RFCR_AAU);

	/* The interrupt line only if the firmware (or VMM) routed one; polling covers the rest. */
	unsigned line = pci_read32(bus, dev, fn, 0x3c) & 0xff;
	wr(IMR, ISR_RXOK | ISR_RXDESC | ISR_RXERR | ISR_RXIDLE | ISR_RXORN);
	if (line > 0 && line < 16 && line != 2) {
		irq_register(line, dp83820_poll);
		wr(IER, 1);
	}
	rd(ISR); /* drop whatever the reset left pending */
	wr(CR, CR_RXE);
	kprintf("dp83820: up: %u rx and %u tx descriptors, irq %u%s\n", NRX, NTX, line,
		line > 0 && line < 16 && line != 2 ? "" : " (not routed: polled at the timer rate)");
}
