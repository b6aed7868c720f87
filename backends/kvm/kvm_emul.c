/* kvm_emul.c: finish ring-0 instructions kvm-pvm's emulator refuses: software interrupts (int3, int n), fwait */
#include <string.h>
#include <sys/ioctl.h>

#include "kvm_int.h"

/*
 * Why: on kvm-pvm, guest ring-0 code runs through KVM's instruction
 * emulator (docs/KVM-HOST.md), and that emulator does not deliver
 * software interrupts in protected or long mode: `int3` at CPL 0 ends in
 * KVM_EXIT_INTERNAL_ERROR (emulation failure).  Linux executes exactly
 * that once at boot (int3_selftest() in alternative_instructions()), and
 * its text patching relies on #BP.  We do what the CPU would: a 64-bit
 * interrupt-gate delivery from CPL 0 to CPL 0 (optionally on an IST
 * stack), then let KVM go on.  `fwait` (x87, refused like every x87
 * instruction at CPL 0) is skipped when no x87 exception is pending.  Anything else (other modes, a privilege
 * change, a gate we do not understand) stays a crash, as before.
 */

#define RFLAGS_TF (1ull << 8)
#define RFLAGS_IF (1ull << 9)
#define RFLAGS_NT (1ull << 14)
#define RFLAGS_RF (1ull << 16)
#define EFER_LMA (1ull << 10)

static uint64_t le64(const uint8_t *p)
{
	uint64_t x = 0;
	int i;

	for (i = 7; i >= 0; i--)
		x = x << 8 | p[i];
	return x;
}

int kvm_emul__soft_int(struct kvm_vcpu *v)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	uint8_t insn[2], gate[16], ist_rsp[8];
	uint64_t frame[5], handler, rsp, next;
	unsigned vec, type, ist, i;

	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return 0;
	if (!(s.efer & EFER_LMA) || !s.cs.l || (s.cs.selector & 3) || s.cs.dpl)
		return 0;
	if (kvm__read_gva(v->vm, &s, r.rip, insn, 1) < 0)
		return 0;
	if (insn[0] == 0x9b) {
		/* fwait (Linux's fpu__drop): a no-op unless an x87 exception
		 * is pending, which would be #MF; that case stays a crash. */
		struct kvm_fpu f;

		if (ioctl(v->fd, KVM_GET_FPU, &f) < 0 || (f.fsw & 0x80))
			return 0;
		r.rip += 1;
		return ioctl(v->fd, KVM_SET_REGS, &r) == 0;
	}
	if (insn[0] == 0xcc) {
		vec = 3;
		next = r.rip + 1;
	} else if (insn[0] == 0xcd && kvm__read_gva(v->vm, &s, r.rip, insn, 2) == 0) {
		vec = insn[1];
		next = r.rip + 2;
	} else {
		return 0;
	}
	if ((uint64_t)vec * 16 + 15 > s.idt.limit ||
	    kvm__read_gva(v->vm, &s, s.idt.base + vec * 16, gate, 16) < 0)
		return 0;
	type = gate[5] & 0x1f;
	ist = gate[4] & 7;
	/* Present 64-bit interrupt (0xe) or trap (0xf) gate into our own CS. */
	if (!(gate[5] & 0x80) || (type != 0xe && type != 0xf) ||
	    (uint16_t)(gate[2] | gate[3] << 8) != s.cs.selector)
		return 0;
	handler = (uint64_t)(gate[0] | gate[1] << 8) | (uint64_t)(gate[6] | gate[7] << 8) << 16 |
		  (uint64_t)(gate[8] | gate[9] << 8 | gate[10] << 16 | (uint32_t)gate[11] << 24) << 32;
	rsp = r.rsp;
	if (ist) {
		if (kvm__read_gva(v->vm, &s, s.tr.base + 0x24 + (ist - 1) * 8, ist_rsp, 8) < 0)
			return 0;
		rsp = le64(ist_rsp);
	}
	rsp &= ~0xfull; /* the CPU aligns the 64-bit frame */
	frame[0] = next;
	frame[1] = s.cs.selector;
	frame[2] = r.rflags;
	frame[3] = r.rsp;
	frame[4] = s.ss.selector;
	rsp -= sizeof frame;
	for (i = 0; i < 5; i++) {
		uint64_t gpa;
		uint8_t *slot = kvm__gva_ptr(v->vm, &s, rsp + i * 8, 8, &gpa);

		if (!slot)
			return 0;
		memcpy(slot, &frame[i], 8);
		/* our writes bypass KVM's dirty log; the stack page must migrate */
		vm__mark_dirty(v->vm, gpa, 8);
	}
	r.rsp = rsp;
	r.rip = handler;
	r.rflags &= ~(RFLAGS_TF | RFLAGS_NT | RFLAGS_RF);
	if (type == 0xe)
		r.rflags &= ~RFLAGS_IF;
	return ioctl(v->fd, KVM_SET_REGS, &r) == 0;
}
