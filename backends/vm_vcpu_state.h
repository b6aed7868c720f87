/* vm_vcpu_state.h: struct vm_vcpu_state, the x86-64 vCPU state a host backend gets and sets (shared with state/) */
#ifndef VM_VCPU_STATE_H
#define VM_VCPU_STATE_H

/*
 * Split out of backend.h (which includes it) so that state/, which carries
 * this struct across hosts in a migration stream (state/vcpustate.c,
 * X86VcpuState in proto/stream.proto), needs none of the backend contract.
 * Any field added here needs a field in X86VcpuState and both conversions.
 */
#include <stdint.h>

struct vm_segment {
	uint64_t base;
	uint32_t limit;
	uint16_t selector;
	uint8_t type, present, dpl, db, s, l, g, avl, unusable;
};

struct vm_dtable {
	uint64_t base;
	uint16_t limit;
};

/* Event delivery in flight, as KVM_GET_VCPU_EVENTS reports it. */
struct vm_events {
	uint8_t exc_injected, exc_pending, exc_nr, exc_has_error_code;
	uint32_t exc_error_code;
	uint8_t irq_injected, irq_nr, irq_soft, irq_shadow;
	uint8_t nmi_injected, nmi_pending, nmi_masked;
	uint32_t sipi_vector;
};

enum vm_gpr {
	VM_RAX, VM_RCX, VM_RDX, VM_RBX, VM_RSP, VM_RBP, VM_RSI, VM_RDI,
	VM_R8, VM_R9, VM_R10, VM_R11, VM_R12, VM_R13, VM_R14, VM_R15,
	VM_NR_GPRS
};

#define VM_XSAVE_SIZE 4096

struct vm_vcpu_state {
	uint64_t gpr[VM_NR_GPRS]; /* indexed by enum vm_gpr (hardware order) */
	uint64_t rip, rflags;
	struct vm_segment cs, ds, es, fs, gs, ss, tr, ldt;
	struct vm_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
	uint64_t dr[4], dr6, dr7;
	/* MSRs; fs/gs base duplicate the segment bases on purpose: loaders
	 * of a stream need not know that the two are the same register. */
	uint64_t fs_base, gs_base, kernel_gs_base;
	uint64_t star, lstar, cstar, sfmask;
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
	uint64_t tsc, tsc_aux, pat, misc_enable;
	uint64_t xcr0;
	uint8_t xsave[VM_XSAVE_SIZE]; /* XSAVE image (legacy FXSAVE area first) */
	struct vm_events events;
	uint64_t pending_irq_bitmap[4]; /* interrupt queued but not injected */
	uint32_t mp_state;              /* 0 runnable, 3 halted (KVM numbering) */
	uint8_t started;                /* an AP that was never started is 0 */
};

#endif
