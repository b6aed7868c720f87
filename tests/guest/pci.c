/* pci.c: PCI configuration mechanism #1 (0xcf8/0xcfc): list bus 0 and attach the drivers we have */
#include "arch.h"
#include "guest.h"

#define PCI_ADDR 0xcf8
#define PCI_DATA 0xcfc

#define VENDOR_NATSEMI	0x100b
#define DEVICE_DP83820	0x0022

static uint32_t cfg_addr(unsigned bus, unsigned dev, unsigned fn, unsigned off)
{
	return 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (off & 0xfc);
}

uint32_t pci_read32(unsigned bus, unsigned dev, unsigned fn, unsigned off)
{
	/* address then data must not be split by another config access */
	uint64_t f = irq_save();
	outl(PCI_ADDR, cfg_addr(bus, dev, fn, off));
	uint32_t v = inl(PCI_DATA);
	irq_restore(f);
	return v;
}

void pci_write32(unsigned bus, unsigned dev, unsigned fn, unsigned off, uint32_t v)
{
	uint64_t f = irq_save();
	outl(PCI_ADDR, cfg_addr(bus, dev, fn, off));
	outl(PCI_DATA, v);
	irq_restore(f);
}

static const char *class_name(uint32_t class)
{
	switch (class >> 8) { /* class and subclass, not the interface */
	case 0x0100: return "scsi";
	case 0x0101: return "ide";
	case 0x0106: return "sata";
	case 0x0200: return "ethernet";
	case 0x0300: return "vga";
	case 0x0600: return "host bridge";
	case 0x0601: return "isa bridge";
	case 0x0680: return "bridge";
	default: return "other";
	}
}

void pci_scan(void)
{
	unsigned found = 0;
	for (unsigned dev = 0; dev < 32; dev++) {
		for (unsigned fn = 0; fn < 8; fn++) {
			uint32_t id = pci_read32(0, dev, fn, 0x00);
			if ((id & 0xffff) == 0xffff) {
				if (fn == 0)
					break; /* no device: skip its functions */
				continue;
			}
			uint32_t class = pci_read32(0, dev, fn, 0x08) >> 8;
			uint32_t hdr = pci_read32(0, dev, fn, 0x0c) >> 16 & 0xff;
			kprintf("pci: 00:%02x.%u %04x:%04x class %06x (%s)\n", dev, fn, id & 0xffff,
				id >> 16, class, class_name(class));
			found++;
			if ((id & 0xffff) == VENDOR_NATSEMI && id >> 16 == DEVICE_DP83820)
				dp83820_attach(0, dev, fn);
			if (fn == 0 && !(hdr & 0x80))
				break; /* single-function device */
		}
	}
	kprintf("pci: %u functions on bus 0\n", found);
}
