/* vcpustate.h: struct vm_vcpu_state <-> protobuf X86VcpuState, every field range-checked on the way in */
#ifndef VCPUSTATE_H
#define VCPUSTATE_H

#include <stddef.h>

#include "stream.pb-c.h"
#include "vm_vcpu_state.h"

/* The eight segment registers, in X86VcpuState's field order. */
#define VCPUSTATE_NR_SEGS 8

/*
 * Save-side storage for one X86VcpuState.  vcpustate_to_wire fills it so
 * that `msg` points into `st` (GPRs, DRs, XSAVE image, IRQ bitmap) and into
 * the sub-messages below: no allocation, and `msg` stays valid as long as
 * both the struct vcpu_wire and the state it was made from do.
 */
struct vcpu_wire {
	Pvmigrate__X86VcpuState msg;
	Pvmigrate__Segment seg[VCPUSTATE_NR_SEGS];
	Pvmigrate__DescriptorTable gdt, idt;
	Pvmigrate__VcpuEvents events;
};

void vcpustate_to_wire(const struct vm_vcpu_state *st, struct vcpu_wire *w);

/*
 * Check every field of `m` against struct vm_vcpu_state's width and the
 * architectural range documented in stream.proto, and convert.  `st` is
 * zeroed first (padding included, so converted states compare with memcmp).
 * Returns 0, or -1 with "stream: vcpu[<index>].<field>: <problem>" in why
 * (when whylen > 0); *st is then all zero.
 */
int vcpustate_from_wire(const Pvmigrate__X86VcpuState *m, unsigned index,
			struct vm_vcpu_state *st, char *why, size_t whylen);

#endif
