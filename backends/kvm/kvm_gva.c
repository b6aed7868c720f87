/* kvm_gva.c: guest-virtual memory for the host's fixups: a walk of the guest's page tables in RAM */
#include <string.h>

#include "kvm_int.h"

/*
 * The ring-0 fixups (kvm_emul.c, kvm_syscall_fix.c) read IDT gates, TSS
 * slots and instructions and write interrupt frames at guest-virtual
 * addresses.  Not KVM_TRANSLATE: every vCPU ioctl costs ~7 us on this
 * host, and the tables are in guest RAM anyway.  Permissions are not
 * checked: the CPU already did when it got there.
 */
#define PTE_P (1ull << 0)
#define PTE_PS (1ull << 7)
#define PTE_ADDR 0x000ffffffffff000ull
#define CR4_LA57 (1ull << 12)

int kvm__gva_to_gpa(struct vm *vm, const struct kvm_sregs *s, uint64_t gva, uint64_t *gpa)
{
	unsigned level = (s->cr4 & CR4_LA57) ? 5 : 4;
	uint64_t table = s->cr3 & PTE_ADDR, e = 0;

	while (level) {
		unsigned shift = 12 + 9 * (level - 1);
		const uint8_t *p = vm__guest_ptr(vm, table + ((gva >> shift) & 0x1ff) * 8, 8);

		if (!p)
			return -1;
		memcpy(&e, p, 8);
		if (!(e & PTE_P))
			return -1;
		if (level <= 3 && level >= 2 && (e & PTE_PS)) {
			uint64_t mask = (1ull << shift) - 1;

			*gpa = ((e & PTE_ADDR) & ~mask) | (gva & mask);
			return 0;
		}
		table = e & PTE_ADDR;
		level--;
	}
	*gpa = table | (gva & 0xfff);
	return 0;
}

uint8_t *kvm__gva_ptr(struct vm *vm, const struct kvm_sregs *s, uint64_t gva, uint64_t len,
		      uint64_t *gpa_out)
{
	uint64_t gpa;

	if ((gva & 0xfff) + len > 0x1000 || kvm__gva_to_gpa(vm, s, gva, &gpa) < 0)
		return NULL;
	if (gpa_out)
		*gpa_out = gpa;
	return vm__guest_ptr(vm, gpa, len);
}

int kvm__read_gva(struct vm *vm, const struct kvm_sregs *s, uint64_t gva, void *dst, uint64_t len)
{
	uint8_t *d = dst;

	while (len) {
		uint64_t n = 0x1000 - (gva & 0xfff);
		uint8_t *p;

		if (n > len)
			n = len;
		p = kvm__gva_ptr(vm, s, gva, n, NULL);
		if (!p)
			return -1;
		memcpy(d, p, n);
		d += n;
		gva += n;
		len -= n;
	}
	return 0;
}
