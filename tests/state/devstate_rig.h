/* devstate_rig.h: the devstate tests' host: every model on a fake env, a busy guest to migrate, whole-host snapshots */
#ifndef DEVSTATE_RIG_H
#define DEVSTATE_RIG_H

#include "../dev/fake_env.h"
#include "devstate.h"

#include "dp83820_regs.h"

#define COM1 UART16550_COM1_BASE
#define NIC_IRQ 11
#define NIC_SLOT 5
#define VGA_SLOT 2
#define TXR 0x1000u
#define RXR 0x2000u
#define BUF 0x10000u
#define NTX 8
#define NRX 4

struct maplog {
	unsigned n;
	uint32_t base[PCI_NUM_BARS];
	bool on[PCI_NUM_BARS];
};

/* One guest's devices on one host. */
struct host {
	struct fake f;
	struct i8259 pic;
	struct i8254 pit;
	struct uart16550 uart;
	struct pci_bus bus;
	struct pci_func vga;
	struct dp83820 nic;
	struct maplog nicmap, vgamap;
	struct devset set;
};

static const uint8_t rig_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

static inline void log_map(void *ctx, unsigned bar, uint32_t base, uint32_t size, bool io, bool on)
{
	struct maplog *m = ctx;

	m->n++;
	m->base[bar] = base;
	m->on[bar] = on;
}

static inline uint64_t ticks_ns(uint64_t t)
{
	return (t * 1000000000ull + I8254_HZ - 1) / I8254_HZ;
}

/* Power-on: models initialised and attached as firmware leaves them. */
static inline void host_init(struct host *h, uint64_t now, const uint8_t *nic_mac)
{
	struct pci_func_info vi;

	fake_init(&h->f);
	h->f.now = now;
	memset(&h->nicmap, 0, sizeof(h->nicmap));
	memset(&h->vgamap, 0, sizeof(h->vgamap));
	i8259_init(&h->pic, &h->f.env);
	i8254_init(&h->pit, &h->f.env);
	uart16550_init(&h->uart, &h->f.env, COM1, UART16550_COM1_IRQ, fake_input, &h->f);
	pci_init(&h->bus, &h->f.env);
	memset(&vi, 0, sizeof(vi));
	vi.vendor_id = vi.subsys_vendor_id = 0x1234;
	vi.device_id = 0x1111;	/* a "std VGA" with a prefetchable framebuffer */
	vi.class_code = 0x03;
	vi.bar[0].type = PCI_BAR_MEM32;
	vi.bar[0].size = 16u << 20;
	vi.bar[0].prefetch = true;
	vi.bar[2].type = PCI_BAR_MEM32;
	vi.bar[2].size = 4096;
	pci_func_init(&h->vga, &vi);
	pci_func_set_map(&h->vga, log_map, &h->vgamap);
	pci_attach(&h->bus, VGA_SLOT, &h->vga);
	dp83820_init(&h->nic, &h->f.env, nic_mac);
	pci_func_set_map(&h->nic.pci, log_map, &h->nicmap);
	pci_attach(&h->bus, NIC_SLOT, &h->nic.pci);
	h->set.pic = &h->pic;
	h->set.pit = &h->pit;
	h->set.uart = &h->uart;
	h->set.pci = &h->bus;
	h->set.nic = &h->nic;
}

static inline void cfgw(struct host *h, unsigned slot, unsigned off, unsigned size, uint32_t v)
{
	pci_io_write(&h->bus, 0xcf8, 4, 0x80000000u | slot << 11 | (off & 0xfc));
	pci_io_write(&h->bus, 0xcfc + (off & 3), size, v);
}

static inline uint32_t cfgr(struct host *h, unsigned slot, unsigned off)
{
	pci_io_write(&h->bus, 0xcf8, 4, 0x80000000u | slot << 11 | (off & 0xfc));
	return pci_io_read(&h->bus, 0xcfc, 4);
}

static inline uint32_t rd(struct host *h, uint32_t off)
{
	return dp83820_io_read(&h->nic, off, 4);
}

static inline void wr(struct host *h, uint32_t off, uint32_t v)
{
	dp83820_io_write(&h->nic, off, 4, v);
}

static inline void txdesc(struct fake *f, unsigned i, uint32_t cmdsts, uint32_t buf)
{
	uint64_t a = TXR + 32 * i;

	fake_put32(f, a, TXR + 32 * ((i + 1) % NTX));
	fake_put32(f, a + 4, 0);
	fake_put32(f, a + 8, buf);
	fake_put32(f, a + 12, 0);
	fake_put32(f, a + 20, 0);
	fake_put32(f, a + 16, cmdsts);
}

/* ns83820_add_rx_skb(): OWN clear = the chip's; the newest link stays NULL. */
static inline void rx_ring(struct fake *f)
{
	unsigned i;

	for (i = 0; i < NRX; i++) {
		uint64_t a = RXR + 32 * i;

		fake_put32(f, a, i + 1 < NRX ? RXR + 32 * (i + 1) : 0);
		fake_put32(f, a + 4, 0);
		fake_put32(f, a + 8, BUF + 0x8000 + 0x800 * i);
		fake_put32(f, a + 12, 0);
		fake_put32(f, a + 20, 0);
		fake_put32(f, a + 16, 1514 | CMDSTS_INTR);
	}
}

static inline void frame(uint8_t *p, size_t len, const uint8_t *dst, uint8_t fill)
{
	memset(p, fill, len);
	memcpy(p, dst, 6);
	memcpy(p + 6, "\x02\x00\x00\x00\x00\x01", 6);
}

/* Drive every model of host h into a state worth migrating. */
static inline void busy_guest(struct host *h, uint8_t *held, size_t held_len)
{
	static const uint8_t pic_init[][2] = {
		{ 0x21, 0xff }, { 0xa1, 0xff }, { 0x20, 0x11 }, { 0x21, 0x20 }, { 0x21, 0x04 },
		{ 0x21, 0x01 }, { 0xa0, 0x11 }, { 0xa1, 0x28 }, { 0xa1, 0x02 }, { 0xa1, 0x01 },
		{ 0x21, 0x40 }, { 0xa1, 0x00 },	/* IRQ6 masked */
	};
	uint8_t f[128];
	unsigned i;

	/* PIC: Linux's init_8259A(), IRQ3 in service, IRQ12 and (masked) IRQ6 waiting */
	for (i = 0; i < sizeof(pic_init) / sizeof(pic_init[0]); i++)
		i8259_io_write(&h->pic, pic_init[i][0], 1, pic_init[i][1]);
	i8259_set_irq(&h->pic, 3, 1);
	i8259_set_irq(&h->pic, 12, 1);
	i8259_set_irq(&h->pic, 6, 1);
	(void)i8259_ack(&h->pic);

	/* PIT: counter 0 in mode 2 at 100 Hz, 4000 ticks in, a latch half read;
	 * counter 2 in mode 0 mid-count */
	i8254_io_write(&h->pit, 0x43, 1, 0x34);
	i8254_io_write(&h->pit, 0x40, 1, 0x9b);
	i8254_io_write(&h->pit, 0x40, 1, 0x2e);
	i8254_io_write(&h->pit, 0x43, 1, 0xb0);
	i8254_io_write(&h->pit, 0x42, 1, 0x00);
	i8254_io_write(&h->pit, 0x42, 1, 0x80);
	h->f.now += ticks_ns(4000);
	i8254_tick(&h->pit);
	i8254_io_write(&h->pit, 0x43, 1, 0x00);
	(void)i8254_io_read(&h->pit, 0x40, 1);

	/* UART: FIFO on, OUT2, RX and THRE interrupts, five bytes in, one read,
	 * then the driver is mid-way through setting the divisor: DLAB set */
	uart16550_io_write(&h->uart, COM1 + 2, 1, 0x07);
	uart16550_io_write(&h->uart, COM1 + 4, 1, 0x08);
	uart16550_io_write(&h->uart, COM1 + 1, 1, 0x03);
	h->f.input = "hello";
	uart16550_poll(&h->uart);
	(void)uart16550_io_read(&h->uart, COM1, 1);
	uart16550_io_write(&h->uart, COM1 + 7, 1, 0x5a);
	uart16550_io_write(&h->uart, COM1 + 3, 1, 0x83);
	uart16550_io_write(&h->uart, COM1 + 0, 1, 0x01);

	/* PCI: firmware places both devices' BARs and routes INTA */
	cfgw(h, VGA_SLOT, PCI_BASE_ADDRESS_0, 4, 0xfd000000u);
	cfgw(h, VGA_SLOT, PCI_BASE_ADDRESS_0 + 8, 4, 0xfebf1000u);
	cfgw(h, VGA_SLOT, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	cfgw(h, NIC_SLOT, PCI_INTERRUPT_LINE, 1, NIC_IRQ);
	cfgw(h, NIC_SLOT, PCI_BASE_ADDRESS_0, 4, 0xc000);
	cfgw(h, NIC_SLOT, PCI_BASE_ADDRESS_0 + 4, 4, 0xfebf0000u);
	cfgw(h, NIC_SLOT, PCI_LATENCY_TIMER, 1, 0x40);
	cfgw(h, NIC_SLOT, PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	pci_io_write(&h->bus, 0xcf8, 4, 0x80000000u | NIC_SLOT << 11 | 0x3c);

	/* DP83820: ns83820_open(), one frame sent, a second half handed over
	 * (OWN not yet set on its first descriptor); four frames fill the RX
	 * ring and a fifth waits in the host: the receiver rests at NULL. */
	wr(h, CR, CR_RST);
	wr(h, CFG, CFG_M64ADDR | CFG_PINT_LNKSTS);
	wr(h, TXDP, TXR);
	wr(h, RXDP, RXR);
	wr(h, RFCR, RFCR_RFEN | RFCR_AAB | RFCR_APM);
	wr(h, IMR, ISR_RXDESC | ISR_TXDESC | ISR_RXIDLE | ISR_PHY);
	wr(h, IER, 1);
	for (i = 0; i < NTX; i++)
		txdesc(&h->f, i, 0, 0);
	rx_ring(&h->f);
	memset(h->f.ram + BUF, 0xaa, 60);
	txdesc(&h->f, 0, CMDSTS_OWN | CMDSTS_INTR | 60, BUF);
	wr(h, CR, CR_TXE | CR_RXE);
	memset(h->f.ram + BUF + 0x1000, 0xbb, 100);
	memset(h->f.ram + BUF + 0x2000, 0xcc, 20);
	txdesc(&h->f, 1, CMDSTS_MORE | 100, BUF + 0x1000);
	txdesc(&h->f, 2, CMDSTS_OWN | CMDSTS_INTR | 20, BUF + 0x2000);
	wr(h, CR, CR_TXE);
	for (i = 0; i < NRX; i++) {
		frame(f, 64 + i, rig_mac, (uint8_t)(0x10 + i));
		(void)dp83820_rx(&h->nic, f, 64 + i);
	}
	frame(held, held_len, rig_mac, 0x99);
}

/* Everything a model would put on the wire, for before/after comparisons. */
struct all_snaps {
	struct i8259_snap pic;
	struct i8254_snap pit;
	struct uart16550_snap uart;
	struct pci_snap pci;
	struct dp83820_snap nic;
	int irq[16];
	unsigned raises[16], maps;
};

static inline void snap_all(struct host *h, struct all_snaps *s)
{
	memset(s, 0, sizeof(*s));
	i8259_save(&h->pic, &s->pic);
	i8254_save(&h->pit, &s->pit);
	uart16550_save(&h->uart, &s->uart);
	pci_save(&h->bus, &s->pci);
	dp83820_save(&h->nic, &s->nic);
	memcpy(s->irq, h->f.irq, sizeof(s->irq));
	memcpy(s->raises, h->f.raises, sizeof(s->raises));
	s->maps = h->nicmap.n + h->vgamap.n;
}


#endif
