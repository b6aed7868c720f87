/* devmodel.h: the contract between a freestanding device model and whatever hosts it (VMM or runtime) */
#ifndef DEVMODEL_H
#define DEVMODEL_H

/*
 * Device models are written once and compiled twice: into the KVM host
 * (trapped PIO/MMIO of a `native` guest) and into the in-guest runtime (the
 * pre-virtualized personalities, no traps).  So they are freestanding: no
 * libc, no allocation, no clock of their own.  Everything they need from
 * outside comes through a struct dev_env.  Every model has the same
 * lifecycle: init, io (read/write), save, restore.  save/restore fill a
 * plain snapshot struct (<chip>_snap); state/ turns snapshots into protobuf
 * messages for the wire, so no raw struct ever crosses it.
 */
#include <stddef.h>
#include <stdint.h>

struct dev_env {
	void *ctx;
	/* Drive interrupt line `irq` (ISA numbering, 0-15) to `level`. */
	void (*set_irq)(void *ctx, unsigned irq, int level);
	/* Guest-physical memory for DMA, NULL if [gpa, gpa+len) is not RAM. */
	uint8_t *(*dma)(void *ctx, uint64_t gpa, size_t len);
	/* Monotonic time in nanoseconds (the PIT counts from it). */
	uint64_t (*now_ns)(void *ctx);
	/* A frame leaves the NIC; returns 0, or -1 if the backend dropped it. */
	int (*net_tx)(void *ctx, const uint8_t *frame, size_t len);
	/* A byte leaves the UART. */
	void (*console_tx)(void *ctx, uint8_t byte);
};

/* Result of restore(): snapshots come off the wire and are validated. */
enum dev_restore_result { DEV_RESTORE_OK = 0, DEV_RESTORE_EINVAL = -1 };

#endif
