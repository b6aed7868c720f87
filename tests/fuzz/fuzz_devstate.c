/* fuzz_devstate.c: libFuzzer target: DeviceSet bytes into devstate_restore on fresh models, then drive what was accepted */
#include <stdlib.h>
#include <string.h>

#include "devstate.h"

/* The seed (corpus/devstate/) comes from tests/state/test_devstate.c, so the
 * devices sit where that test puts them: a VGA at slot 2, the NIC at slot 5. */
#define VGA_SLOT 2
#define NIC_SLOT 5
#define RAM_SIZE (256u << 10)

static uint8_t ram[RAM_SIZE];
static uint64_t now_ns = 5000000000ull;
static int input_left;

static void env_set_irq(void *ctx, unsigned irq, int level)
{
	if (irq >= 16)
		abort();	/* models must never drive a line that does not exist */
}

static uint8_t *env_dma(void *ctx, uint64_t gpa, size_t len)
{
	if (gpa >= RAM_SIZE || len > RAM_SIZE - gpa)
		return NULL;
	return ram + gpa;
}

static uint64_t env_now(void *ctx)
{
	return now_ns;
}

static int env_net_tx(void *ctx, const uint8_t *frame, size_t len)
{
	if (len > DP83820_MAX_FRAME)
		abort();
	return 0;
}

static void env_console_tx(void *ctx, uint8_t byte)
{
}

static int env_input(void *ctx)
{
	return input_left-- > 0 ? 'x' : -1;
}

static const struct dev_env env = {
	.set_irq = env_set_irq,
	.dma = env_dma,
	.now_ns = env_now,
	.net_tx = env_net_tx,
	.console_tx = env_console_tx,
};

struct models {
	struct i8259 pic;
	struct i8254 pit;
	struct uart16550 uart;
	struct pci_bus bus;
	struct pci_func vga;
	struct dp83820 nic;
	struct devset set;
};

struct snaps {
	struct i8259_snap pic;
	struct i8254_snap pit;
	struct uart16550_snap uart;
	struct pci_snap pci;
	struct dp83820_snap nic;
};

static struct models mo;
static struct snaps before, after;

static void models_init(struct models *m)
{
	static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 1 };
	struct pci_func_info vi;

	memset(m, 0, sizeof(*m));
	i8259_init(&m->pic, &env);
	i8254_init(&m->pit, &env);
	uart16550_init(&m->uart, &env, UART16550_COM1_BASE, UART16550_COM1_IRQ, env_input, NULL);
	pci_init(&m->bus, &env);
	memset(&vi, 0, sizeof(vi));
	vi.vendor_id = vi.subsys_vendor_id = 0x1234;
	vi.device_id = 0x1111;
	vi.class_code = 0x03;
	vi.bar[0].type = PCI_BAR_MEM32;
	vi.bar[0].size = 16u << 20;
	vi.bar[0].prefetch = true;
	vi.bar[2].type = PCI_BAR_MEM32;
	vi.bar[2].size = 4096;
	pci_func_init(&m->vga, &vi);
	pci_attach(&m->bus, VGA_SLOT, &m->vga);
	dp83820_init(&m->nic, &env, mac);
	pci_attach(&m->bus, NIC_SLOT, &m->nic.pci);
	m->set.pic = &m->pic;
	m->set.pit = &m->pit;
	m->set.uart = &m->uart;
	m->set.pci = &m->bus;
	m->set.nic = &m->nic;
}

static void snap(const struct models *m, struct snaps *s)
{
	memset(s, 0, sizeof(*s));
	i8259_save(&m->pic, &s->pic);
	i8254_save(&m->pit, &s->pit);
	uart16550_save(&m->uart, &s->uart);
	pci_save(&m->bus, &s->pci);
	dp83820_save(&m->nic, &s->nic);
}

/* Whatever restore accepted, the guest may now poke at: none of it may crash. */
static void drive(struct models *m, const uint8_t *data, size_t size)
{
	static uint8_t frame[1514];
	uint32_t port, off;
	unsigned i;

	for (port = 0x20; port < 0x22; port++)
		(void)i8259_io_read(&m->pic, port, 1);
	for (port = 0xa0; port < 0xa2; port++)
		(void)i8259_io_read(&m->pic, port, 1);
	for (i = 0; i < 4 && i8259_has_interrupt(&m->pic); i++) {
		(void)i8259_ack(&m->pic);
		i8259_io_write(&m->pic, 0x20, 1, 0x20);
	}
	for (port = 0x40; port < 0x43; port++)
		(void)i8254_io_read(&m->pit, port, 1);
	for (i = 0; i < 3; i++) {
		uint64_t d = i8254_next_deadline_ns(&m->pit);

		now_ns = d != I8254_NO_DEADLINE && d - now_ns < 1000000000ull ? d : now_ns + 1000003;
		i8254_tick(&m->pit);
		(void)i8254_get_out(&m->pit, i);
	}
	input_left = 20;
	uart16550_poll(&m->uart);
	for (port = 0; port < 8; port++)
		(void)uart16550_io_read(&m->uart, UART16550_COM1_BASE + port, 1);
	uart16550_io_write(&m->uart, UART16550_COM1_BASE, 1, 'y');
	for (off = 0; off < PCI_CFG_SIZE; off += 4) {
		pci_io_write(&m->bus, PCI_CONFIG_ADDRESS, 4, 0x80000000u | NIC_SLOT << 11 | off);
		(void)pci_io_read(&m->bus, PCI_CONFIG_DATA, 4);
	}
	for (off = 0; off < DP83820_IO_SIZE; off += 4)
		(void)dp83820_io_read(&m->nic, off, 4);
	/* Guest RAM holds fuzz bytes, so ring walks follow hostile descriptors. */
	memset(ram, 0, sizeof(ram));
	memcpy(ram, data, size < sizeof(ram) ? size : sizeof(ram));
	dp83820_io_write(&m->nic, 0x00, 4, 0x05);	/* CR: TXE | RXE */
	memset(frame, 0xff, 6);
	memset(frame + 6, 0x5a, sizeof(frame) - 6);
	(void)dp83820_rx(&m->nic, frame, sizeof(frame));
	(void)dp83820_rx_ready(&m->nic);
	dp83820_set_link(&m->nic, false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[160];

	now_ns = 5000000000ull;
	models_init(&mo);
	snap(&mo, &before);
	if (devstate_restore(&mo.set, data, size, why, sizeof(why)) != 0) {
		/* refused: nothing may have changed, and the message says so */
		snap(&mo, &after);
		if (memcmp(&before, &after, sizeof(before)) || strncmp(why, "devstate: ", 10))
			abort();
		return 0;
	}
	drive(&mo, data, size);
	return 0;
}
