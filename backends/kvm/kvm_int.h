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
	/* ... and that HLT was a runtime's park (vm__vcpu_hlt_parked): looked
	 * at again after every wake (vm__vcpu_park_waits), since the host's
	 * release, not an interrupt, ends it. */
	int halted_parked;
	/* Per-thread POSIX timer that kicks this vCPU out of KVM_RUN at the
	 * next device deadline (the BSP only). */
	timer_t timer;
	int timer_ok;
	uint64_t armed_ns;
	/* kvm_syscall_fix.c: when to look at the IDT next, and which hook
	 * is this vCPU's #PF handler (-1: none); guarded by sysfix_lock. */
	uint64_t sysfix_next_ns;
	int sysfix_slot;
	/* A pause waited this often for an event in delivery (kvm_vcpu.c). */
	unsigned flush_tries;
};

/* kvm_syscall_fix.c: an int3 we placed over a guest #PF handler's first instruction. */
#define KVM_SYSFIX_HOOKS 4
struct sysfix_hook {
	uint64_t gva, gpa; /* the handler */
	uint64_t imm;      /* INSN_PUSH: the value pushed */
	uint8_t orig;      /* the byte under the int3 */
	uint8_t len;       /* of the hooked instruction */
	uint8_t kind;      /* enum insn_kind */
	uint8_t live;
};

struct vm_kvm {
	int kvm_fd, vm_fd;
	int run_size;
	struct kvm_cpuid2 *cpuid;
	uint64_t *dirty_scratch; /* KVM_GET_DIRTY_LOG target, mem_size/4096 bits */
	struct kvm_vcpu vcpu[VM_MAX_VCPUS];
	pthread_mutex_t sysfix_lock;
	struct sysfix_hook hooks[KVM_SYSFIX_HOOKS];
	/* the last handler we declined to hook, so we do not count it again */
	uint64_t refused_gva, refused_gpa;
	uint8_t refused_byte;
};

static inline struct vm_kvm *kvm_of(struct vm *vm)
{
	return vm->b;
}

/* kvm_vm.c */
int kvm__ioctl_fail(struct vm *vm, const char *what);
int kvm__set_memslot(struct vm *vm, uint32_t flags);
int kvm__map_window(struct vm *vm);
int kvm__clock(struct vm *vm, struct vm_clock *c);

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

/* kvm_gva.c: guest-virtual memory through the guest's page tables (no ioctl). */
int kvm__gva_to_gpa(struct vm *vm, const struct kvm_sregs *s, uint64_t gva, uint64_t *gpa);
/* Host pointer for (len) bytes at (gva), not crossing a page; its gpa in *gpa_out if asked. */
uint8_t *kvm__gva_ptr(struct vm *vm, const struct kvm_sregs *s, uint64_t gva, uint64_t len,
		      uint64_t *gpa_out);
int kvm__read_gva(struct vm *vm, const struct kvm_sregs *s, uint64_t gva, void *dst, uint64_t len);

/* kvm_syscall_fix.c: complete ring-3 syscalls that were not switched to ring 0 */
void kvm_sysfix__poll(struct kvm_vcpu *v);       /* before KVM_RUN: (re)install the hook */
int kvm_sysfix__trap(struct kvm_vcpu *v);        /* 1 if the internal error was our hook */
void kvm_sysfix__unhook_all(struct vm *vm);      /* every vCPU outside KVM_RUN */

/* kvm_dirty.c */
int kvm_dirty__start(struct vm *vm);
int kvm_dirty__fetch(struct vm *vm, uint64_t *bitmap);
int kvm_dirty__stop(struct vm *vm);

#endif
