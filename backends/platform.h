/* platform.h: what platform_pc.c, platform_devices.c and platform_nic.c share: the PC's device models and their host glue */
#ifndef PLATFORM_H
#define PLATFORM_H

#include <pthread.h>
#include <stdint.h>

#include "backend.h"
#include "devmodel.h"
#include "dp83820.h"
#include "i8254.h"
#include "i8259.h"
#include "pci.h"
#include "uart16550.h"

/* Fixed PC wiring, as a BIOS would leave it (see docs/KVM-HOST.md). */
#define PLATFORM_PORT_SYSCTL 0x61       /* port B: PIT gate 2, OUT2 read-back */
#define PLATFORM_HOSTBRIDGE_SLOT 0
#define PLATFORM_NIC_SLOT 3
#define PLATFORM_NIC_IRQ 11
#define PLATFORM_NIC_IO_BASE 0xc000u    /* BAR0, 256 bytes of I/O space */
#define PLATFORM_NIC_MMIO_BASE 0xfebf0000u /* BAR1: PCI hole, below the IOAPIC */
#define PLATFORM_NIC_MAC { 0x52, 0x54, 0x00, 0x83, 0x82, 0x01 }
#define PLATFORM_UART_POLL_NS 10000000u /* console input looked at every 10 ms */

struct platform_nic; /* platform_nic.c */

struct platform {
	struct vm *vm;
	struct dev_env env;
	int console_fd, input_fd;
	uint32_t ap_result;
	uint8_t sysctl; /* port 0x61: what the guest last wrote */

	struct i8259 pic;
	struct i8254 pit;
	struct uart16550 uart;
	struct pci_bus pci;
	struct pci_func hostbridge;
	/* One per ISA port range: which model answers, at which base. */
	struct platform_port {
		struct platform *p;
		uint16_t base;
		uint8_t kind;
	} ports[8];
	unsigned nr_ports;
	struct platform_nic *nic;
};

static inline struct platform *platform_of(struct vm *vm)
{
	return vm->platform;
}

/* platform_devices.c: the ISA models and the PCI bus, wired into (vm). */
int platform_devices__init(struct platform *p);

/* platform_nic.c */
int platform_nic__net_tx(struct platform *p, const uint8_t *frame, size_t len);
void platform_nic__destroy(struct platform *p);
struct dp83820 *platform_nic__model(struct platform *p); /* NULL: no NIC */

#endif
