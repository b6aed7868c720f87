/* devstate_int.h: what devstate*.c share: checked field readers, the save-side wire storage, per-model converters */
#ifndef DEVSTATE_INT_H
#define DEVSTATE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "devices.pb-c.h"
#include "devstate.h"

/*
 * Restore-side checking context.  The first failure wins: it formats
 * "devstate: <path>.<field>: <problem>" into why, and every later check
 * becomes a no-op returning 0, so a converter can read all its fields
 * straight through and look at `failed` once at the end.
 */
struct ds_ctx {
	char *why;
	size_t whylen;
	int failed;
	char path[48];		/* "i8254.counter[2]", set by ds_path */
};

/* Expands to the (name, has, value) triple the readers take. */
#define DS_F(m, f) #f, (m)->has_##f, (m)->f
/* Save side: write an optional scalar with its presence flag. */
#define DS_SET(m, f, v) ((m)->has_##f = 1, (m)->f = (v))

/* Fixed counts of the models' arrays of sub-messages. */
#define DS_PIC_CHIPS 2
#define DS_PIT_COUNTERS 3

/*
 * Save-side storage for one whole DeviceSet: the snapshots and every
 * protobuf-c struct that points into them, so packing needs no allocation
 * beyond the output buffer.  Heap-allocated (the PCI snapshot is 8 KiB).
 */
struct ds_wire {
	struct i8259_snap pic_snap;
	struct i8254_snap pit_snap;
	struct uart16550_snap uart_snap;
	struct pci_snap pci_snap;
	struct dp83820_snap nic_snap;

	Pvmigrate__DeviceSet set;
	Pvmigrate__I8259State pic;
	Pvmigrate__I8259ChipState pic_chip[DS_PIC_CHIPS];
	Pvmigrate__I8254State pit;
	Pvmigrate__I8254CounterState pit_ctr[DS_PIT_COUNTERS];
	Pvmigrate__I8254CounterState *pit_ctrp[DS_PIT_COUNTERS];
	Pvmigrate__Uart16550State uart;
	Pvmigrate__PciBusState pci;
	Pvmigrate__PciFunctionState pci_fn[PCI_MAX_SLOTS];
	Pvmigrate__PciFunctionState *pci_fnp[PCI_MAX_SLOTS];
	Pvmigrate__Dp83820State nic;
	Pvmigrate__Dp83820Stats nic_stats;
};

/* Snapshots checked off the wire, before any model sees them. */
struct ds_snaps {
	struct i8259_snap pic;
	struct i8254_snap pit;
	struct uart16550_snap uart;
	struct pci_snap pci;
	struct dp83820_snap nic;
};

/* devstate.c */
void ds_fail(struct ds_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ds_path(struct ds_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t ds_uint(struct ds_ctx *c, const char *field, protobuf_c_boolean has, uint64_t v,
		 uint64_t lo, uint64_t hi);
uint8_t ds_u8(struct ds_ctx *c, const char *field, protobuf_c_boolean has, uint32_t v);
uint16_t ds_u16(struct ds_ctx *c, const char *field, protobuf_c_boolean has, uint32_t v);
uint32_t ds_u32(struct ds_ctx *c, const char *field, protobuf_c_boolean has, uint32_t v);
uint64_t ds_u64(struct ds_ctx *c, const char *field, protobuf_c_boolean has, uint64_t v);
uint8_t ds_flag(struct ds_ctx *c, const char *field, protobuf_c_boolean has,
		protobuf_c_boolean v);
void ds_bytes(struct ds_ctx *c, const char *field, protobuf_c_boolean has,
	      ProtobufCBinaryData v, uint8_t *dst, size_t want);
int ds_count(struct ds_ctx *c, const char *field, size_t n, size_t want);
int ds_present(struct ds_ctx *c, const char *field, const void *part);

/* devstate_isa.c */
void ds_i8259_to_wire(struct ds_wire *w);
void ds_i8254_to_wire(struct ds_wire *w);
void ds_uart_to_wire(struct ds_wire *w);
int ds_i8259_from_wire(struct ds_ctx *c, const Pvmigrate__I8259State *m, struct i8259_snap *s);
int ds_i8254_from_wire(struct ds_ctx *c, const Pvmigrate__I8254State *m, struct i8254_snap *s);
int ds_uart_from_wire(struct ds_ctx *c, const Pvmigrate__Uart16550State *m,
		      struct uart16550_snap *s);

/* devstate_pci.c */
void ds_pci_to_wire(struct ds_wire *w);
void ds_dp83820_to_wire(struct ds_wire *w);
int ds_pci_from_wire(struct ds_ctx *c, const Pvmigrate__PciBusState *m, struct pci_snap *s);
int ds_dp83820_from_wire(struct ds_ctx *c, const Pvmigrate__Dp83820State *m,
			 struct dp83820_snap *s);

#endif
