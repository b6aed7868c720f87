/* kvm_caps.c: report what this host's KVM offers (KVM_CHECK_EXTENSION), the evidence in docs/KVM-HOST.md */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm_int.h"

#define CAP(c) { #c, c }

static const struct {
	const char *name;
	int cap;
} caps[] = {
	CAP(KVM_CAP_USER_MEMORY), CAP(KVM_CAP_SET_TSS_ADDR), CAP(KVM_CAP_EXT_CPUID),
	CAP(KVM_CAP_IRQCHIP), CAP(KVM_CAP_SPLIT_IRQCHIP), CAP(KVM_CAP_PIT2),
	CAP(KVM_CAP_IRQFD), CAP(KVM_CAP_IOEVENTFD), CAP(KVM_CAP_COALESCED_MMIO),
	CAP(KVM_CAP_DIRTY_LOG_RING), CAP(KVM_CAP_DIRTY_LOG_RING_ACQ_REL),
	CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2), CAP(KVM_CAP_READONLY_MEM),
	CAP(KVM_CAP_SYNC_MMU), CAP(KVM_CAP_NR_VCPUS), CAP(KVM_CAP_MAX_VCPUS),
	CAP(KVM_CAP_NR_MEMSLOTS), CAP(KVM_CAP_VCPU_EVENTS), CAP(KVM_CAP_XSAVE),
	CAP(KVM_CAP_XSAVE2), CAP(KVM_CAP_XCRS), CAP(KVM_CAP_DEBUGREGS),
	CAP(KVM_CAP_MP_STATE), CAP(KVM_CAP_IMMEDIATE_EXIT), CAP(KVM_CAP_GET_TSC_KHZ),
	CAP(KVM_CAP_TSC_CONTROL), CAP(KVM_CAP_ADJUST_CLOCK), CAP(KVM_CAP_SYNC_REGS),
	CAP(KVM_CAP_X86_USER_SPACE_MSR), CAP(KVM_CAP_EXCEPTION_PAYLOAD),
	CAP(KVM_CAP_X86_DISABLE_EXITS), CAP(KVM_CAP_HLT), CAP(KVM_CAP_USER_NMI),
};

int kvm__report_caps(FILE *out)
{
	int kvm, vm, saved;
	unsigned i;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return -1;
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		saved = errno;
		close(kvm);
		errno = saved;
		return -1;
	}
	fprintf(out, "KVM_GET_API_VERSION %d\n", ioctl(kvm, KVM_GET_API_VERSION, 0));
	fprintf(out, "KVM_GET_VCPU_MMAP_SIZE %d\n", ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0));
	/* VM-level answers can differ from system-level ones; show both. */
	for (i = 0; i < sizeof caps / sizeof caps[0]; i++)
		fprintf(out, "%-36s system %d vm %d\n", caps[i].name,
			ioctl(kvm, KVM_CHECK_EXTENSION, caps[i].cap),
			ioctl(vm, KVM_CHECK_EXTENSION, caps[i].cap));
	close(vm);
	close(kvm);
	return 0;
}
