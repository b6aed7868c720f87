/* pci.h: PCI configuration mechanism #1 (0xcf8/0xcfc) and the config space of the functions on bus 0 */
#ifndef PCI_H
#define PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "devmodel.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA    0xcfc
#define PCI_MAX_SLOTS      32
#define PCI_CFG_SIZE       256
#define PCI_NUM_BARS       6

/* Config header offsets and bits used by the models */
#define PCI_VENDOR_ID      0x00
#define PCI_DEVICE_ID      0x02
#define PCI_COMMAND        0x04
#define PCI_STATUS         0x06
#define PCI_REVISION_ID    0x08
#define PCI_CLASS_PROG     0x09
#define PCI_CACHE_LINE     0x0c
#define PCI_LATENCY_TIMER  0x0d
#define PCI_HEADER_TYPE    0x0e
#define PCI_BASE_ADDRESS_0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID   0x2e
#define PCI_ROM_ADDRESS    0x30
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN  0x3d
#define PCI_MIN_GNT        0x3e
#define PCI_MAX_LAT        0x3f

#define PCI_COMMAND_IO     0x0001
#define PCI_COMMAND_MEMORY 0x0002
#define PCI_COMMAND_MASTER 0x0004
#define PCI_COMMAND_PARITY 0x0040
#define PCI_COMMAND_SERR   0x0100
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS_INTERRUPT 0x0008

#define PCI_BASE_ADDRESS_SPACE_IO 0x01
#define PCI_BASE_ADDRESS_MEM_PREFETCH 0x08

enum pci_bar_type { PCI_BAR_NONE = 0, PCI_BAR_IO, PCI_BAR_MEM32 };

struct pci_bar_info {
	uint32_t size;		/* power of two: >= 4 for I/O, >= 16 for memory */
	uint8_t type;		/* enum pci_bar_type */
	bool prefetch;
};

/* What a device registers: its fixed header fields and its BARs. */
struct pci_func_info {
	uint16_t vendor_id, device_id, subsys_vendor_id, subsys_id;
	uint8_t revision, prog_if, subclass, class_code;
	uint8_t irq_pin;	/* 1 = INTA#, 0 = none */
	uint8_t min_gnt, max_lat;
	struct pci_bar_info bar[PCI_NUM_BARS];
};

/* Called when a BAR's decoded window changes: each call replaces that BAR's
 * previous window; enabled=false means it decodes nothing now. */
typedef void (*pci_bar_map_fn)(void *ctx, unsigned bar, uint32_t base, uint32_t size,
			       bool io, bool enabled);

struct pci_func {
	uint8_t cfg[PCI_CFG_SIZE];
	struct pci_bar_info bar[PCI_NUM_BARS];
	pci_bar_map_fn map;
	void *map_ctx;
	uint32_t mapped_base[PCI_NUM_BARS];	/* last window reported to map */
	bool mapped[PCI_NUM_BARS];
};

struct pci_bus {
	const struct dev_env *env;
	uint32_t config_address;
	struct pci_func *slot[PCI_MAX_SLOTS];
};

/* The bus snapshot carries the config space of every attached function. */
struct pci_snap {
	uint32_t config_address;
	uint32_t present;	/* bit n: slot n is populated */
	uint8_t cfg[PCI_MAX_SLOTS][PCI_CFG_SIZE];
};

void pci_func_init(struct pci_func *fn, const struct pci_func_info *info);
void pci_func_set_map(struct pci_func *fn, pci_bar_map_fn map, void *ctx);
uint32_t pci_func_cfg_read(const struct pci_func *fn, unsigned off, unsigned size);
void pci_func_cfg_write(struct pci_func *fn, unsigned off, unsigned size, uint32_t value);
uint16_t pci_func_command(const struct pci_func *fn);
/* Interrupt line as programmed by firmware; 0xff or >15 means not routed. */
uint8_t pci_func_irq_line(const struct pci_func *fn);
/* Reflect the device's INTx# level in the status register. */
void pci_func_set_intx_status(struct pci_func *fn, bool level);

void pci_init(struct pci_bus *bus, const struct dev_env *env);
/* Put fn at slot (device number) on bus 0; function 0 only.  -1 if taken. */
int pci_attach(struct pci_bus *bus, unsigned slot, struct pci_func *fn);
/* Ports 0xcf8 (dword) and 0xcfc-0xcff (byte, word, dword). */
uint32_t pci_io_read(struct pci_bus *bus, uint32_t port, unsigned size);
void pci_io_write(struct pci_bus *bus, uint32_t port, unsigned size, uint32_t value);
void pci_save(const struct pci_bus *bus, struct pci_snap *snap);
/* pci_save without its clear: only config_address, present and the
 * attached slots' bytes are written, so the other slots must already be
 * zero (the kvm host clears the device-state area before it asks for a
 * save: clearing 31 empty slots in emulated ring 0 cost ~1.2 ms). */
void pci_save_over(const struct pci_bus *bus, struct pci_snap *snap);
/* The same slots must be attached with the same devices; re-reports BARs. */
int pci_restore(struct pci_bus *bus, const struct pci_snap *snap);

#endif
