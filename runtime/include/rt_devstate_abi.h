/* rt_devstate_abi.h: the runtime's device-state area in the window: one fixed, versioned layout of every model's snapshot, shared by runtime and host */
#ifndef RT_DEVSTATE_ABI_H
#define RT_DEVSTATE_ABI_H

/*
 * Built from the freestanding <chip>_snap structs of runtime/common/dev
 * (the host compiles the same headers), so runtime and host agree on the
 * bytes.  The runtime writes it at RT_OFF_DEVSTATE when the host asks
 * (rt_shared.state_req = RT_STATE_REQ_SAVE) and reads it back on
 * RT_STATE_REQ_RESTORE; the host converts it to and from the
 * personality-independent protobuf (state/runtime_state.c).  Bump
 * RT_DEV_STATE_VERSION when any model's snapshot struct changes.
 */
#include <stdint.h>

#include "dp83820.h"
#include "i8254.h"
#include "i8259.h"
#include "pci.h"
#include "rt_abi.h"
#include "uart16550.h"

#define RT_DEV_STATE_MAGIC   0x53564544u /* "DEVS" */
#define RT_DEV_STATE_VERSION 1u
#define RT_DEV_STATE_NIC     0x1u /* flags: the DP83820 exists (nic is valid) */

struct rt_dev_state {
	uint32_t magic, version;
	uint32_t size;  /* sizeof(struct rt_dev_state) */
	uint32_t flags; /* RT_DEV_STATE_* */
	uint8_t sysctl, pad[7]; /* port 0x61 as last written */
	struct i8259_snap pic;
	struct i8254_snap pit;
	struct uart16550_snap uart;
	struct pci_snap pci;    /* config space of every slot, the NIC's included */
	struct dp83820_snap nic;
};

_Static_assert(sizeof(struct rt_dev_state) <= RT_DEVSTATE_MAX,
	       "struct rt_dev_state must fit the window's device-state area");

#endif
