/* personality_kvm_adopt.h: installing the kvm runtime beneath a running guest, and a kvm guest's personality-independent view */
#ifndef PERSONALITY_KVM_ADOPT_H
#define PERSONALITY_KVM_ADOPT_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/*
 * What a guest is without any runtime (the bare machine's view): vCPU
 * states with the IF and IDTR the guest set, devices as a DeviceSet
 * (state/devstate.h), and where its site table is.
 */
struct vm_kvm_adopt {
	uint64_t table_addr, table_size;  /* the retained .pvsites table in RAM */
	const struct vm_vcpu_state *vcpus; /* vm->nr_vcpus of them, RIPs at safe points */
	const uint8_t *devices;		   /* DeviceSet */
	size_t devices_len;
};

/*
 * A fresh VM with the kvm host attached (vm__kvm_host_attach), its RAM
 * loaded and its sites already rewritten to kvm (vm__sites_repatch), never
 * run: give the runtime the devices and every started vCPU's state, and
 * point the vCPUs at RT_ENTRY_ADOPT.  vm__run then starts the guest where
 * it stood.  0, or -1 with vm->err (the VM must then be destroyed).
 */
int vm__kvm_host_adopt(struct vm *vm, const struct vm_kvm_adopt *a);

/*
 * After vm__kvm_host_adopt and vm__run: when the runtime rang
 * RT_BELL_BOOTED, i.e. had restored the guest and let its first
 * instruction run (vm__now_ns).  0 while it has not, or when the VM was
 * not adopted (a native guest, or a kvm guest booted by its runtime).
 */
uint64_t vm__kvm_adopt_done_ns(struct vm *vm);

/*
 * A paused kvm guest's view (vm__pause first; the vCPUs run into the
 * runtime's park loop meanwhile, see vm__kvm_state_save): vcpus[] gets
 * nr_vcpus states, *devices a malloc'd DeviceSet.  Nothing changes in the
 * guest: vm__resume goes on as before.  0, or -1 with vm->err.
 */
int vm__kvm_guest_view(struct vm *vm, struct vm_vcpu_state *vcpus, uint8_t **devices,
		       size_t *devices_len);

#endif
