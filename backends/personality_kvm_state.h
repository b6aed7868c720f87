/* personality_kvm_state.h: the kvm runtime's state (CPU model + device models) read from and written into a paused guest, as protobuf RuntimeState */
#ifndef PERSONALITY_KVM_STATE_H
#define PERSONALITY_KVM_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/*
 * Both need the VM paused (vm__pause) and leave it paused.  A save takes
 * what the pause itself had the runtime save (the pause asks for it with
 * its park request and waits until a parked CPU served it): then nothing
 * runs.  Otherwise, and for a load, they let the vCPUs run meanwhile, but
 * only into the runtime's park loop (park_req stays up), where the first
 * vCPU to arrive saves or restores the device models; a vCPU that enters
 * the runtime while a park is asked parks before it touches anything, so
 * no model changes between the device state and the pause that ends the
 * call.  A vCPU may end the call
 * outside the runtime (its state block says RT_CPU_PARKED_NO): its
 * registers are then the vCPU's own.  Only when no vCPU reaches the park
 * loop at all (every one spinning with interrupts off in a loop without
 * sites) does the call fail after VM_STATE_TIMEOUT_NS, with a report per
 * vCPU on stderr.
 * So the guest may advance a little inside the call: read everything else
 * (RAM, the vCPUs' registers) after save returns, and write it after load.
 *
 * save: *buf is a malloc'd RuntimeState (proto/stream.proto), the caller
 * frees it.  load: the bytes are checked completely (versions, ranges,
 * every model's own checks) before the runtime sees them; the runtime then
 * restores all its models or none, and only then are the CPU blocks
 * written.  A refusal changes nothing and says why in vm->err; the guest
 * can be resumed as it was.  0 or -1.
 */
#define VM_STATE_TIMEOUT_NS 20000000000ull

int vm__kvm_state_save(struct vm *vm, uint8_t **buf, size_t *len);
/* save's first half: the raw CPU blocks and device-state area, unchecked. */
struct runtime_state;
int vm__kvm_state_freeze(struct vm *vm, struct runtime_state *rs);
int vm__kvm_state_load(struct vm *vm, const uint8_t *buf, size_t len);
/* How many saves the pause served, and how many needed a resume (tests). */
void vm__kvm_state_counts(struct vm *vm, uint64_t *at_pause, uint64_t *resumed);

#endif
