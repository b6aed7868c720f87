/* test_pci.c: config mechanism #1, read-only identity, BAR sizing, BAR window reports, save/restore */
#include "../lib/tap.h"
#include "fake_env.h"
#include "pci.h"

static struct fake fk;

struct maplog {
	unsigned n, bar;
	uint32_t base, size;
	bool io, on;
};

static void log_map(void *ctx, unsigned bar, uint32_t base, uint32_t size, bool io, bool on)
{
	struct maplog *m = ctx;

	m->n++;
	m->bar = bar;
	m->base = base;
	m->size = size;
	m->io = io;
	m->on = on;
}

static uint32_t cfg_read(struct pci_bus *b, unsigned slot, unsigned off, unsigned size)
{
	pci_io_write(b, 0xcf8, 4, 0x80000000u | slot << 11 | (off & 0xfc));
	return pci_io_read(b, 0xcfc + (off & 3), size);
}

static void cfg_write(struct pci_bus *b, unsigned slot, unsigned off, unsigned size, uint32_t v)
{
	pci_io_write(b, 0xcf8, 4, 0x80000000u | slot << 11 | (off & 0xfc));
	pci_io_write(b, 0xcfc + (off & 3), size, v);
}

static void dev_info(struct pci_func_info *i)
{
	__builtin_memset(i, 0, sizeof(*i));
	i->vendor_id = 0x100b;
	i->device_id = 0x0022;
	i->class_code = 0x02;
	i->irq_pin = 1;
	i->bar[0].type = PCI_BAR_IO;
	i->bar[0].size = 256;
	i->bar[1].type = PCI_BAR_MEM32;
	i->bar[1].size = 4096;
}

static void test_config(void)
{
	struct pci_bus bus;
	struct pci_func fn;
	struct pci_func_info info;
	struct maplog m = { 0 };

	fake_init(&fk);
	pci_init(&bus, &fk.env);
	dev_info(&info);
	pci_func_init(&fn, &info);
	pci_func_set_map(&fn, log_map, &m);
	CHECK(pci_attach(&bus, 3, &fn) == 0, "attach");
	CHECK(pci_attach(&bus, 3, &fn) == -1, "slot taken");
	pci_io_write(&bus, 0xcf8, 4, 0x80001808u);
	CHECK(pci_io_read(&bus, 0xcf8, 4) == 0x80001808u, "CONFIG_ADDRESS reads back");
	CHECK(cfg_read(&bus, 3, 0, 4) == 0x0022100bu, "vendor/device dword");
	CHECK(cfg_read(&bus, 3, 2, 2) == 0x0022, "device id word at 0xcfe");
	CHECK(cfg_read(&bus, 3, 0x0b, 1) == 0x02, "class byte");
	CHECK(cfg_read(&bus, 4, 0, 4) == 0xffffffffu, "empty slot reads all ones");
	CHECK(cfg_read(&bus, 4, 0, 2) == 0xffff, "empty slot word");
	cfg_write(&bus, 3, 0, 4, 0x12345678);
	CHECK(cfg_read(&bus, 3, 0, 4) == 0x0022100bu, "identity is read-only");
	CHECK(cfg_read(&bus, 3, 0x3d, 1) == 1, "INTA#");
	cfg_write(&bus, 3, 0x3c, 1, 11);
	CHECK(pci_func_irq_line(&fn) == 11, "interrupt line written");

	/* BAR sizing, as every OS probes */
	cfg_write(&bus, 3, 0x14, 4, 0xffffffffu);
	CHECK(cfg_read(&bus, 3, 0x14, 4) == 0xfffff000u, "memory BAR size mask 4 KiB");
	cfg_write(&bus, 3, 0x10, 4, 0xffffffffu);
	CHECK(cfg_read(&bus, 3, 0x10, 4) == 0xffffff01u, "I/O BAR size mask 256, IO bit");
	CHECK(cfg_read(&bus, 3, 0x18, 4) == 0, "unused BAR reads 0");
	cfg_write(&bus, 3, 0x18, 4, 0xffffffffu);
	CHECK(cfg_read(&bus, 3, 0x18, 4) == 0, "unused BAR stays 0");
	CHECK(m.n == 0, "no window while decoding is off");

	cfg_write(&bus, 3, 0x14, 4, 0xfebf0000u);
	cfg_write(&bus, 3, 0x10, 4, 0xc000);
	cfg_write(&bus, 3, 0x04, 2, PCI_COMMAND_MEMORY);
	CHECK(m.n == 1 && m.bar == 1 && m.base == 0xfebf0000u && m.size == 4096 && !m.io && m.on,
	      "memory window reported");
	cfg_write(&bus, 3, 0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_IO | PCI_COMMAND_MASTER);
	CHECK(m.n == 2 && m.bar == 0 && m.base == 0xc000 && m.io && m.on, "I/O window reported");
	CHECK(cfg_read(&bus, 3, 0x04, 2) == 7, "command reads back");
	cfg_write(&bus, 3, 0x14, 4, 0xfebf1000u);
	CHECK(m.n == 3 && m.bar == 1 && m.base == 0xfebf1000u, "moved BAR re-reported");
	cfg_write(&bus, 3, 0x14, 4, 0xffffffffu);
	CHECK(m.n == 4 && !m.on, "sizing pattern unmaps");
	cfg_write(&bus, 3, 0x14, 4, 0xfebf1000u);
	cfg_write(&bus, 3, 0x04, 2, PCI_COMMAND_IO);
	CHECK(m.bar == 1 && !m.on, "memory decode off unmaps BAR1");
	cfg_write(&bus, 3, 0x04, 2, 0xffff);
	CHECK(cfg_read(&bus, 3, 0x04, 2) == 0x0547, "only implemented command bits stick");
}

static void test_save_restore(void)
{
	struct pci_bus a, b;
	struct pci_func fa, fb, other;
	struct pci_func_info info;
	struct maplog ma = { 0 }, mb = { 0 };
	static struct pci_snap s, bad;
	unsigned off;
	int same = 1;

	fake_init(&fk);
	dev_info(&info);
	pci_init(&a, &fk.env);
	pci_func_init(&fa, &info);
	pci_func_set_map(&fa, log_map, &ma);
	pci_attach(&a, 5, &fa);
	cfg_write(&a, 5, 0x14, 4, 0xfeb00000u);
	cfg_write(&a, 5, 0x3c, 1, 10);
	cfg_write(&a, 5, 0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	pci_io_write(&a, 0xcf8, 4, 0x80002800u);
	pci_save(&a, &s);

	pci_init(&b, &fk.env);
	pci_func_init(&fb, &info);
	pci_func_set_map(&fb, log_map, &mb);
	pci_attach(&b, 5, &fb);
	CHECK(pci_restore(&b, &s) == DEV_RESTORE_OK, "restore ok");
	CHECK(mb.n == 1 && mb.bar == 1 && mb.base == 0xfeb00000u && mb.on, "restore re-reports the window");
	CHECK(pci_io_read(&b, 0xcf8, 4) == 0x80002800u, "CONFIG_ADDRESS restored");
	for (off = 0; off < 256; off += 4)
		same &= cfg_read(&a, 5, off, 4) == cfg_read(&b, 5, off, 4);
	CHECK(same, "config space identical after restore");

	bad = s;
	bad.cfg[5][0] = 0x86;
	CHECK(pci_restore(&b, &bad) == DEV_RESTORE_EINVAL, "foreign vendor id refused");
	bad = s;
	bad.cfg[5][0x14] = 0x01;
	CHECK(pci_restore(&b, &bad) == DEV_RESTORE_EINVAL, "memory BAR with IO bit refused");
	/* past the header every byte is read-only, compared 8 at a time:
	 * one changed bit anywhere in a word is refused */
	for (off = 0x40; off < 256; off += 0x3d) {
		bad = s;
		bad.cfg[5][off] ^= 0x10;
		CHECK(pci_restore(&b, &bad) == DEV_RESTORE_EINVAL, "a changed read-only byte refused");
	}
	bad = s;
	bad.cfg[5][255] ^= 0x80;
	CHECK(pci_restore(&b, &bad) == DEV_RESTORE_EINVAL, "the last config byte refused");
	bad = s;
	bad.present |= 1u << 6;
	CHECK(pci_restore(&b, &bad) == DEV_RESTORE_EINVAL, "slot not attached here refused");
	info.device_id = 0x1234;
	pci_init(&b, &fk.env);
	pci_func_init(&other, &info);
	pci_attach(&b, 5, &other);
	CHECK(pci_restore(&b, &s) == DEV_RESTORE_EINVAL, "different device in the slot refused");
}

int main(void)
{
	test_config();
	test_save_restore();
	return tap_done("pci");
}
