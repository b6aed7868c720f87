/* runtime_state.h: the kvm runtime's state (CPU model + device models) as one packed protobuf RuntimeState and back, all-or-nothing checked */
#ifndef RUNTIME_STATE_H
#define RUNTIME_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "rt_abi.h"
#include "rt_devstate_abi.h"

/*
 * The fixed layouts the host reads from and writes into a parked guest's
 * window (runtime/include/rt_abi.h: struct rt_cpu_state per vCPU;
 * rt_devstate_abi.h: struct rt_dev_state), next to the versioned,
 * personality-independent form (proto/stream.proto, RuntimeState: the
 * devices as devices.proto's DeviceSet, the same messages the native
 * host's trapped models produce).
 */
struct runtime_state {
	unsigned ncpus;				/* 1..RT_MAX_CPUS */
	struct rt_cpu_state cpu[RT_MAX_CPUS];	/* CPU model: vif, virtual IDTR, park, regs, CRs, GDTR */
	struct rt_dev_state dev;		/* the runtime's device models */
};

#define RUNTIME_STATE_MAX_LEN 131072u

/* Pack `rs` into a malloc'd RuntimeState (*buf, *len; the caller frees).
 * 0, or -1 with why ("runtime_state: ..."). */
int runtime_state_pack(const struct runtime_state *rs, uint8_t **buf, size_t *len, char *why,
		       size_t whylen);

/*
 * Unpack the untrusted bytes buf[0..len) into *rs: the versions must be
 * this build's, every field present and in range, the regs exactly 18
 * words, and every device snapshot must pass its converter (state/devstate)
 * and its model's own restore checks on a scratch model.  Nothing is
 * written to *rs unless all of it passed.  0, or -1 with why naming the
 * field, e.g. "runtime_state: devstate: i8259.master.vector_base: out of
 * range (300, want 0..255)".
 */
int runtime_state_unpack(const uint8_t *buf, size_t len, struct runtime_state *rs, char *why,
			 size_t whylen);

/*
 * The runtime's models (struct rt_dev_state) as the DeviceSet the native
 * host's models save and restore (devstate.h), and back: how the devices
 * cross between personalities.  from_devset checks the untrusted bytes as
 * runtime_state_unpack does (every field, every model's dry run) and
 * writes *d only if all passed (port 0x61 rides in DeviceSet.port61).
 * 0, or -1 with why.
 */
int runtime_devs_to_devset(const struct rt_dev_state *d, uint8_t **buf, size_t *len, char *why,
			   size_t whylen);
int runtime_devs_from_devset(const uint8_t *buf, size_t len, struct rt_dev_state *d, char *why,
			     size_t whylen);

#endif
