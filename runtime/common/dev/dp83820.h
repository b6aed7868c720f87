/* dp83820.h: the National Semiconductor DP83820 gigabit NIC as Linux's ns83820 driver programs it */
#ifndef DP83820_H
#define DP83820_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devmodel.h"
#include "pci.h"

#define DP83820_VENDOR_ID 0x100b
#define DP83820_DEVICE_ID 0x0022
#define DP83820_BAR_IO    0	/* 256 bytes of I/O space */
#define DP83820_BAR_MEM   1	/* 4 KiB of memory space: what ns83820 maps */
#define DP83820_IO_SIZE   0x100
#define DP83820_MEM_SIZE  0x1000
#define DP83820_NREGS     (DP83820_IO_SIZE / 4)
#define DP83820_MAX_FRAME 9216	/* the TX FIFO bounds frames at 8 KiB anyway */

struct dp83820_stats {
	uint32_t tx_frames, tx_errors, rx_frames, rx_filtered, rx_dropped;
};

struct dp83820 {
	const struct dev_env *env;
	struct pci_func pci;	/* config space; the PCI bus saves it */
	uint32_t regs[DP83820_NREGS];	/* register file, indexed by offset / 4 */
	uint64_t txdp, rxdp;	/* current descriptor pointers (TXDP_HI:TXDP) */
	uint8_t mac[6];		/* perfect-match address, "loaded from EEPROM" */
	bool tx_on, rx_on;	/* state machines enabled (CR TXE/RXE read back) */
	bool tx_at_null, rx_at_null;	/* pointer rests on a descriptor whose link was NULL */
	bool link_up;
	bool irq_level;
	uint8_t irq_line;	/* ISA line currently driven, 0xff = none */
	struct dp83820_stats stats;
	uint8_t frame[DP83820_MAX_FRAME];	/* TX gather buffer, transient */
};

struct dp83820_snap {
	uint32_t regs[DP83820_NREGS];
	uint64_t txdp, rxdp;
	uint8_t mac[6];
	uint8_t tx_on, rx_on, tx_at_null, rx_at_null, link_up, irq_level, irq_line;
	struct dp83820_stats stats;
};

/* Starts with the link up; attach &dev->pci to a pci_bus separately. */
void dp83820_init(struct dp83820 *dev, const struct dev_env *env, const uint8_t mac[6]);
/* offset within either BAR; dword accesses as the driver does (smaller work). */
uint32_t dp83820_io_read(struct dp83820 *dev, uint32_t offset, unsigned size);
void dp83820_io_write(struct dp83820 *dev, uint32_t offset, unsigned size, uint32_t value);
/* Deliver a received frame (no FCS) into the guest RX ring.  0 if taken
 * (delivered, or rejected by the receive filter as the chip would), -1 if
 * dropped.  Hold frames while dp83820_rx_ready() is false to lose none. */
int dp83820_rx(struct dp83820 *dev, const uint8_t *frame, size_t len);
bool dp83820_rx_ready(struct dp83820 *dev);
/* Backend link state; a change raises ISR_PHY when the driver asked for it. */
void dp83820_set_link(struct dp83820 *dev, bool up);
void dp83820_save(const struct dp83820 *dev, struct dp83820_snap *snap);
int dp83820_restore(struct dp83820 *dev, const struct dp83820_snap *snap);

#endif
