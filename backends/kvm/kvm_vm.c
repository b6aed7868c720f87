/* kvm_vm.c: the kvm backend's VM: /dev/kvm, the RAM memslot, vCPU creation, CPUID, the ops table */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_int.h"
#include "rt_abi.h"

#define CPUID_MAX_ENTRIES 256

int kvm__ioctl_fail(struct vm *vm, const char *what)
{
	return vm__fail(vm, "KVM: %s: %s", what, strerror(errno));
}

int kvm__set_memslot(struct vm *vm, uint32_t flags)
{
	struct kvm_userspace_memory_region r = {
		.slot = 0,
		.flags = flags,
		.guest_phys_addr = 0,
		.memory_size = vm->mem_size,
		.userspace_addr = (uint64_t)(uintptr_t)vm->mem,
	};

	if (ioctl(kvm_of(vm)->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return kvm__ioctl_fail(vm, "SET_USER_MEMORY_REGION");
	return 0;
}

/* Slot 1: the runtime window.  Never logged: it is not RAM, and a
 * migration carries the runtime's state instead of its pages. */
int kvm__map_window(struct vm *vm)
{
	struct kvm_userspace_memory_region r = {
		.slot = 1,
		.flags = 0,
		.guest_phys_addr = RT_WINDOW_BASE,
		.memory_size = RT_WINDOW_SIZE,
		.userspace_addr = (uint64_t)(uintptr_t)vm->window,
	};

	if (ioctl(kvm_of(vm)->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return kvm__ioctl_fail(vm, "SET_USER_MEMORY_REGION (runtime window)");
	return 0;
}

#define MSR_IA32_TSC 0x10

/*
 * vCPU 0's TSC next to CLOCK_MONOTONIC: the host time is the middle of
 * two readings around the ioctl, which costs a few microseconds here.
 */
int kvm__clock(struct vm *vm, struct vm_clock *c)
{
	struct kvm_vcpu *v = &kvm_of(vm)->vcpu[0];
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} mb;
	uint64_t t0, t1;
	int khz;

	khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	if (khz <= 0)
		return kvm__ioctl_fail(vm, "GET_TSC_KHZ");
	memset(&mb, 0, sizeof mb);
	mb.hdr.nmsrs = 1;
	mb.e.index = MSR_IA32_TSC;
	t0 = vm__now_ns();
	if (ioctl(v->fd, KVM_GET_MSRS, &mb) != 1)
		return vm__fail(vm, "KVM: GET_MSRS: IA32_TSC refused");
	t1 = vm__now_ns();
	c->tsc_khz = (uint64_t)khz;
	c->guest_tsc = mb.e.data;
	c->host_ns = t0 + (t1 - t0) / 2;
	return 0;
}

/*
 * What KVM offers, minus what we cannot back: no in-kernel irqchip means
 * no local APIC, and a guest that believes in one programs a LAPIC timer
 * nobody runs (Linux then hangs in calibration).  Without the APIC bit the
 * guest uses the PIC, which lives in our process.
 */
static void cpuid_adjust(struct kvm_cpuid2 *c, unsigned cpu)
{
	uint32_t i;

	for (i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			e->edx &= ~(1u << 9);  /* APIC */
			e->ecx &= ~(1u << 21); /* x2APIC */
			e->ecx &= ~(1u << 24); /* TSC deadline (a LAPIC mode) */
			e->ebx = (e->ebx & 0x00ffffffu) | (cpu << 24);
			break;
		case 0xb:
		case 0x1f:
			e->edx = cpu;
			break;
		case 0x40000001:
			/* Keep kvmclock (bits 0, 3) and its stable bit (24);
			 * the PV features that assume a LAPIC go. */
			e->eax &= (1u << 0) | (1u << 3) | (1u << 24);
			break;
		default:
			break;
		}
	}
}

static int vcpu_create(struct vm *vm, unsigned cpu)
{
	struct vm_kvm *k = kvm_of(vm);
	struct kvm_vcpu *v = &k->vcpu[cpu];
	size_t sz = sizeof *k->cpuid + CPUID_MAX_ENTRIES * sizeof k->cpuid->entries[0];
	struct kvm_cpuid2 *c;

	v->vm = vm;
	v->id = cpu;
	v->sysfix_slot = -1;
	v->fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, (unsigned long)cpu);
	if (v->fd < 0)
		return kvm__ioctl_fail(vm, "CREATE_VCPU");
	v->run = mmap(NULL, (size_t)k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return kvm__ioctl_fail(vm, "mmap kvm_run");
	}
	c = malloc(sz);
	if (!c)
		return vm__fail(vm, "out of memory");
	memcpy(c, k->cpuid, sz);
	cpuid_adjust(c, cpu);
	/* Without this the guest sees no long mode and #GPs on EFER.LME. */
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0) {
		free(c);
		return kvm__ioctl_fail(vm, "SET_CPUID2");
	}
	free(c);
	return 0;
}

static void kvm_destroy(struct vm *vm)
{
	struct vm_kvm *k = kvm_of(vm);
	unsigned i;

	if (!k)
		return;
	for (i = 0; i < VM_MAX_VCPUS; i++) {
		if (k->vcpu[i].run)
			munmap(k->vcpu[i].run, (size_t)k->run_size);
		if (k->vcpu[i].fd > 0)
			close(k->vcpu[i].fd);
	}
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->kvm_fd >= 0)
		close(k->kvm_fd);
	free(k->cpuid);
	free(k->dirty_scratch);
	pthread_mutex_destroy(&k->sysfix_lock);
	free(k);
	vm->b = NULL;
}

static int kvm_create(struct vm *vm)
{
	struct vm_kvm *k = calloc(1, sizeof *k);
	unsigned i;
	int api;

	if (!k)
		return vm__fail(vm, "out of memory");
	vm->b = k;
	pthread_mutex_init(&k->sysfix_lock, NULL);
	k->vm_fd = -1;
	k->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->kvm_fd < 0) {
		vm__fail(vm, "/dev/kvm: %s", strerror(errno));
		goto fail;
	}
	api = ioctl(k->kvm_fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION) {
		vm__fail(vm, "KVM API version %d, want %d", api, KVM_API_VERSION);
		goto fail;
	}
	k->vm_fd = ioctl(k->kvm_fd, KVM_CREATE_VM, 0);
	if (k->vm_fd < 0) {
		kvm__ioctl_fail(vm, "CREATE_VM");
		goto fail;
	}
	/* Intel needs a TSS page for real mode; harmless elsewhere.  It sits
	 * above the 3 GiB RAM limit, in what the guest sees as a hole. */
	if (ioctl(k->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0 && errno != EINVAL) {
		kvm__ioctl_fail(vm, "SET_TSS_ADDR");
		goto fail;
	}
	if (kvm__set_memslot(vm, 0) < 0)
		goto fail;
	k->run_size = ioctl(k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (k->run_size < (int)sizeof(struct kvm_run)) {
		kvm__ioctl_fail(vm, "GET_VCPU_MMAP_SIZE");
		goto fail;
	}
	k->cpuid = calloc(1, sizeof *k->cpuid + CPUID_MAX_ENTRIES * sizeof k->cpuid->entries[0]);
	if (!k->cpuid) {
		vm__fail(vm, "out of memory");
		goto fail;
	}
	k->cpuid->nent = CPUID_MAX_ENTRIES;
	if (ioctl(k->kvm_fd, KVM_GET_SUPPORTED_CPUID, k->cpuid) < 0) {
		kvm__ioctl_fail(vm, "GET_SUPPORTED_CPUID");
		goto fail;
	}
	for (i = 0; i < vm->nr_vcpus; i++)
		if (vcpu_create(vm, i) < 0)
			goto fail;
	return 0;
fail:
	kvm_destroy(vm);
	return -1;
}

const struct vm_ops vm_kvm_ops = {
	.name = "kvm",
	.create = kvm_create,
	.destroy = kvm_destroy,
	.reset_vcpu32 = kvm_vcpu__reset32,
	.reset_vcpu16 = kvm_vcpu__reset16,
	.reset_vcpu64 = kvm_vcpu__reset64,
	.run = kvm_vcpu__run_all,
	.kick_all = kvm_vcpu__kick_all,
	.wake = kvm_vcpu__wake,
	.get_state = kvm_vcpu__get_state,
	.set_state = kvm_vcpu__set_state,
	.dirty_start = kvm_dirty__start,
	.dirty_fetch = kvm_dirty__fetch,
	.dirty_stop = kvm_dirty__stop,
	.map_window = kvm__map_window,
	.clock = kvm__clock,
	.paused = kvm_sysfix__unhook_all,
};
