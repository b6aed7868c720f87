/* kvm_int.h: private state of the kvm backend (the opaque vm->b) and its internal functions */
#ifndef KVM_INT_H
#define KVM_INT_H

#include <linux/kvm.h>
#include <pthread.h>
#include <time.h>

#include "../backend.h"

struct kvm_vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	int thread_ok;
	/* The guest executed HLT with IF=1 and no interrupt has come yet:
	 * KVM without an in-kernel irqchip does not track this for us. */
	int halted;
	/* Per-thread POSIX timer that kicks this vCPU out of KVM_RUN at the
	 * next device deadline (the BSP only). */
	timer_t timer;
	int timer_ok;
	uint64_t armed_ns;
};

struct vm_kvm {
	int kvm_fd, vm_fd;
	int run_size;
	struct kvm_cpuid2 *cpuid;
	uint64_t *dirty_scratch; /* KVM_GET_DIRTY_LOG target, mem_size/4096 bits */
	struct kvm_vcpu vcpu[VM_MAX_VCPUS];
};

static inline struct vm_kvm *kvm_of(struct vm *vm)
{
	return vm->b;
}

/* kvm_vm.c */
int kvm__ioctl_fail(struct vm *vm, const char *what);
int kvm__set_memslot(struct vm *vm, uint32_t flags);

/* kvm_vcpu.c */
int kvm_vcpu__run_all(struct vm *vm);
void kvm_vcpu__kick_all(struct vm *vm);
void kvm_vcpu__wake(struct vm *vm);

/* kvm_state.c */
int kvm_vcpu__get_state(struct vm *vm, unsigned cpu, struct vm_vcpu_state *st);
int kvm_vcpu__set_state(struct vm *vm, unsigned cpu, const struct vm_vcpu_state *st);
int kvm_vcpu__reset32(struct vm *vm, unsigned cpu, uint32_t entry, uint32_t esp);
int kvm_vcpu__reset16(struct vm *vm, unsigned cpu, uint32_t entry, uint32_t sp);
int kvm_vcpu__reset64(struct vm *vm, unsigned cpu, uint64_t entry, uint64_t cr3, uint64_t gdt);

/* kvm_emul.c: 1 if the failed instruction was a software interrupt we delivered */
int kvm_emul__soft_int(struct kvm_vcpu *v);

/* kvm_dirty.c */
int kvm_dirty__start(struct vm *vm);
int kvm_dirty__fetch(struct vm *vm, uint64_t *bitmap);
int kvm_dirty__stop(struct vm *vm);

#endif
