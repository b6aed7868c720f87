/* kvm_dirty.c: dirty-page tracking for the kvm backend: the memslot dirty log (KVM_GET_DIRTY_LOG) */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm_int.h"

/*
 * Why the plain dirty log: on this kvm-pvm host it is exact (see
 * docs/KVM-HOST.md, "Dirty tracking": a guest writing a known page set
 * shows exactly that set, with 4 KiB and 2 MiB guest mappings, logging
 * switched on before or after the pages were first mapped writable, THP on
 * or off).  The one earlier probe that saw empty bitmaps ran a guest without
 * KVM_SET_CPUID2, which triple-faults on its first EFER write and so never
 * wrote a page.  The dirty ring works too, but it is per vCPU, needs a
 * harvest loop per ring and cannot be switched off without recreating the
 * VM; the bitmap costs one ioctl per round.
 *
 * KVM_GET_DIRTY_LOG returns the bitmap and write-protects the pages it
 * reports in one step, so a write that races with the fetch lands in the
 * next round, never nowhere.  The bitmap is one unsigned long per 64 pages,
 * least significant bit first: the same layout as ours on x86-64.
 */

int kvm_dirty__start(struct vm *vm)
{
	struct vm_kvm *k = kvm_of(vm);

	if (!k->dirty_scratch) {
		k->dirty_scratch = malloc(vm__dirty_bitmap_bytes(vm));
		if (!k->dirty_scratch)
			return vm__fail(vm, "out of memory");
	}
	if (kvm__set_memslot(vm, KVM_MEM_LOG_DIRTY_PAGES) < 0)
		return -1;
	return 0;
}

int kvm_dirty__fetch(struct vm *vm, uint64_t *bitmap)
{
	size_t i, words = vm__dirty_bitmap_bytes(vm) / 8;
	struct kvm_dirty_log log;

	memset(&log, 0, sizeof log);
	log.slot = 0;
	log.dirty_bitmap = kvm_of(vm)->dirty_scratch;
	if (ioctl(kvm_of(vm)->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		return kvm__ioctl_fail(vm, "GET_DIRTY_LOG");
	for (i = 0; i < words; i++)
		bitmap[i] |= kvm_of(vm)->dirty_scratch[i];
	return 0;
}

int kvm_dirty__stop(struct vm *vm)
{
	return kvm__set_memslot(vm, 0);
}
