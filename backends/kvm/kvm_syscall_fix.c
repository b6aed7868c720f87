/* kvm_syscall_fix.c: finish ring-3 `syscall`s whose privilege switch kvm-pvm skips, from a hook on the guest's #PF entry */
#include <string.h>
#include <sys/ioctl.h>

#include "kvm_int.h"

/*
 * Why: on this kvm-pvm host a `syscall` executed at guest CPL 3 does all
 * of its work (RIP = LSTAR, RCX, R11, RFLAGS masked by SFMASK) except
 * loading CS/SS from STAR, so the entry stub's first fetch from its
 * supervisor page raises #PF (err P|U, CR2 = RIP = LSTAR) at CPL 3
 * (docs/KVM-HOST.md, "System calls on this host").  A stock kernel
 * cannot recover from that; the VMM has to finish the instruction.
 *
 * KVM gives userspace no exit on a guest #PF, but guest ring 0 runs in
 * KVM's instruction emulator here, and that emulator refuses `int3` with
 * KVM_EXIT_INTERNAL_ERROR.  So we put a one-byte int3 over the first
 * instruction of the guest's #PF handler (found from vector 14's IDT gate)
 * and see every #PF delivery before the guest does.  At the hook:
 *   - a frame from CPL 3 with RIP == LSTAR and CR2 == LSTAR is the broken
 *     syscall: drop the frame and enter LSTAR at CPL 0 with STAR's
 *     selectors and the user's RSP, i.e. what `syscall` should have done;
 *   - anything else is a real fault: perform the hooked instruction
 *     (only ones we can do without executing them: endbr64, NOPs, push
 *     imm) and let the guest's handler go on.
 * A handler whose first instruction is something else is not hooked.
 *
 * Under the kvm personality the IDT the CPU uses is the runtime's per-CPU
 * copy in the window (rt_abi.h), not guest RAM, so every guest-physical
 * access here goes through vm__guest_ptr (RAM or window).
 *
 * The int3 is guest-visible memory, so it must never leave this process:
 * vm__pause (every pause, including a migration's stop) takes all hooks
 * out before anyone reads RAM, and the vCPUs put them back on their next
 * entry.  Every host write is marked dirty.
 */

#define EFER_SCE (1ull << 0)
#define EFER_LMA (1ull << 10)
#define CR0_PG (1ull << 31)
#define RFLAGS_RF (1ull << 16)
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define PF_VECTOR 14
#define INT3 0xcc
#define CHECK_NS 20000000ull /* how often a running vCPU looks at its IDT */
#define SYNC_BOTH (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS)

/* The hooked instruction, and how we stand in for it. */
enum insn_kind { INSN_SKIP, INSN_PUSH };

struct insn_form {
	uint8_t len;
	uint8_t bytes[9];
};

/* Instructions a handler may start with that do nothing we must repeat:
 * endbr64 (IBT kernels) and the NOP forms assemblers and Linux's
 * alternatives (ASM_CLAC without SMAP) leave. */
static const struct insn_form skip_forms[] = {
	{ 4, { 0xf3, 0x0f, 0x1e, 0xfa } },
	{ 1, { 0x90 } },
	{ 2, { 0x66, 0x90 } },
	{ 3, { 0x0f, 0x1f, 0x00 } },
	{ 4, { 0x0f, 0x1f, 0x40, 0x00 } },
	{ 5, { 0x0f, 0x1f, 0x44, 0x00, 0x00 } },
	{ 6, { 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 } },
	{ 7, { 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00 } },
	{ 8, { 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00 } },
	{ 9, { 0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00 } },
};

static uint64_t le(const uint8_t *p, unsigned n)
{
	uint64_t x = 0;

	while (n--)
		x = x << 8 | p[n];
	return x;
}

static int get_msrs(struct kvm_vcpu *v, uint64_t *star, uint64_t *lstar)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[2];
	} mb;

	memset(&mb, 0, sizeof mb);
	mb.hdr.nmsrs = 2;
	mb.e[0].index = MSR_STAR;
	mb.e[1].index = MSR_LSTAR;
	if (ioctl(v->fd, KVM_GET_MSRS, &mb) != 2)
		return -1;
	*star = mb.e[0].data;
	*lstar = mb.e[1].data;
	return 0;
}

/* Classify the handler's first instruction; 0 if we cannot stand in for it. */
static int classify(const uint8_t *code, struct sysfix_hook *h)
{
	size_t i;

	for (i = 0; i < sizeof skip_forms / sizeof skip_forms[0]; i++) {
		if (memcmp(code, skip_forms[i].bytes, skip_forms[i].len) == 0) {
			h->kind = INSN_SKIP;
			h->len = skip_forms[i].len;
			return 1;
		}
	}
	/* push imm8 / push imm32 (sign-extended to 64 bits): a stub that
	 * pushes its vector number, as many small kernels' do. */
	if (code[0] == 0x6a) {
		h->kind = INSN_PUSH;
		h->len = 2;
		h->imm = (uint64_t)(int64_t)(int8_t)code[1];
		return 1;
	}
	if (code[0] == 0x68) {
		h->kind = INSN_PUSH;
		h->len = 5;
		h->imm = (uint64_t)(int64_t)(int32_t)(uint32_t)le(code + 1, 4);
		return 1;
	}
	return 0;
}

/* Put the original byte back if it is still our int3 (lock held). */
static void unhook(struct vm *vm, struct sysfix_hook *h)
{
	uint8_t *p = vm__guest_ptr(vm, h->gpa, 1);

	if (h->live && p && *p == INT3) {
		__atomic_store_n(p, h->orig, __ATOMIC_RELEASE);
		vm__mark_dirty(vm, h->gpa, 1);
	}
	h->live = 0;
}

void kvm_sysfix__unhook_all(struct vm *vm)
{
	struct vm_kvm *k = kvm_of(vm);
	unsigned i;

	pthread_mutex_lock(&k->sysfix_lock);
	for (i = 0; i < KVM_SYSFIX_HOOKS; i++)
		unhook(vm, &k->hooks[i]);
	/* Every vCPU looks again on its next entry. */
	for (i = 0; i < vm->nr_vcpus; i++) {
		k->vcpu[i].sysfix_slot = -1;
		k->vcpu[i].sysfix_next_ns = 0;
	}
	pthread_mutex_unlock(&k->sysfix_lock);
}

/*
 * The #PF handler (gva) of this vCPU's IDT, if the guest is a 64-bit
 * kernel that has enabled `syscall`: before that there is nothing to fix,
 * and early boot IDTs come and go.
 */
static int pf_handler(struct kvm_vcpu *v, const struct kvm_sregs *s, uint64_t *gva)
{
	uint8_t gate[16];
	uint64_t star, lstar;

	if (!(s->efer & EFER_LMA) || !(s->efer & EFER_SCE) || !(s->cr0 & CR0_PG) ||
	    s->idt.limit < PF_VECTOR * 16 + 15)
		return -1;
	if (get_msrs(v, &star, &lstar) < 0 || lstar == 0 || (star >> 32 & 0xfffc) == 0)
		return -1;
	if (kvm__read_gva(v->vm, s, s->idt.base + PF_VECTOR * 16, gate, sizeof gate) < 0)
		return -1;
	/* present 64-bit interrupt or trap gate */
	if (!(gate[5] & 0x80) || ((gate[5] & 0x1f) != 0xe && (gate[5] & 0x1f) != 0xf))
		return -1;
	*gva = le(gate, 2) | le(gate + 6, 2) << 16 | le(gate + 8, 4) << 32;
	return 0;
}

/* Read up to (len) bytes of code at (gva), stopping at an unmapped page; 0-filled. */
static void read_code(struct vm *vm, const struct kvm_sregs *s, uint64_t gva, uint8_t *code,
		      unsigned len)
{
	unsigned first = 0x1000 - (unsigned)(gva & 0xfff);

	memset(code, 0, len);
	if (first >= len) {
		kvm__read_gva(vm, s, gva, code, len);
	} else if (kvm__read_gva(vm, s, gva, code, first) == 0) {
		kvm__read_gva(vm, s, gva + first, code + first, len - first);
	}
}

/* Is slot (i) still the handler of some vCPU? (lock held) */
static int slot_used(struct vm *vm, int i)
{
	unsigned c;

	for (c = 0; c < vm->nr_vcpus; c++)
		if (kvm_of(vm)->vcpu[c].sysfix_slot == i)
			return 1;
	return 0;
}

/* Make sure this vCPU's #PF handler is hooked (the vCPU is outside KVM_RUN). */
static void check(struct kvm_vcpu *v)
{
	struct vm *vm = v->vm;
	struct vm_kvm *k = kvm_of(vm);
	struct kvm_sregs s;
	struct sysfix_hook cand;
	uint8_t code[16], *p;
	uint64_t gva, gpa;
	int i, old;

	if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0 || pf_handler(v, &s, &gva) < 0)
		return;
	if (kvm__gva_to_gpa(vm, &s, gva, &gpa) < 0 || !(p = vm__guest_ptr(vm, gpa, 1)))
		return;
	pthread_mutex_lock(&k->sysfix_lock);
	old = v->sysfix_slot;
	/* Already hooked, by us or by another vCPU sharing the IDT? */
	for (i = 0; i < KVM_SYSFIX_HOOKS; i++) {
		struct sysfix_hook *h = &k->hooks[i];

		if (h->live && h->gpa == gpa && h->gva == gva) {
			if (*p == INT3)
				goto found;
			/* the guest rewrote its handler: decide again */
			h->live = 0;
			break;
		}
	}
	v->sysfix_slot = -1;
	/* The handler this vCPU used before may now be unused memory (an
	 * init-time IDT the guest freed): give it its byte back first. */
	if (old >= 0 && !slot_used(vm, old))
		unhook(vm, &k->hooks[old]);
	if (k->refused_gva == gva && k->refused_gpa == gpa && *p == k->refused_byte)
		goto out; /* looked at before, nothing changed */
	read_code(vm, &s, gva, code, sizeof code);
	memset(&cand, 0, sizeof cand);
	if (code[0] == INT3 || !classify(code, &cand)) {
		/* the guest's own int3 (a debugger), or an instruction we
		 * cannot perform for it: leave this handler alone */
		k->refused_gva = gva;
		k->refused_gpa = gpa;
		k->refused_byte = *p;
		__atomic_fetch_add(&vm->nr_sysfix_refused, 1, __ATOMIC_RELAXED);
		goto out;
	}
	for (i = 0; i < KVM_SYSFIX_HOOKS && (k->hooks[i].live || slot_used(vm, i)); i++)
		;
	if (i == KVM_SYSFIX_HOOKS)
		goto out; /* more distinct live IDTs than we track */
	cand.gva = gva;
	cand.gpa = gpa;
	cand.orig = code[0];
	cand.live = 1;
	k->hooks[i] = cand;
	__atomic_store_n(p, (uint8_t)INT3, __ATOMIC_RELEASE);
	vm__mark_dirty(vm, gpa, 1);
	__atomic_fetch_add(&vm->nr_sysfix_hooks, 1, __ATOMIC_RELAXED);
found:
	v->sysfix_slot = i;
	if (old >= 0 && old != i && !slot_used(vm, old))
		unhook(vm, &k->hooks[old]);
out:
	/* Exits copy registers to kvm_run only while this vCPU can hit a
	 * hook; other guests pay nothing. */
	if (v->sysfix_slot >= 0)
		v->run->kvm_valid_regs |= SYNC_BOTH;
	else
		v->run->kvm_valid_regs &= ~(uint64_t)SYNC_BOTH;
	pthread_mutex_unlock(&k->sysfix_lock);
}

void kvm_sysfix__poll(struct kvm_vcpu *v)
{
	uint64_t now = vm__now_ns();

	if (now < v->sysfix_next_ns || v->vm->sysfix_off)
		return;
	v->sysfix_next_ns = now + CHECK_NS;
	check(v);
}

/*
 * The hook's exit reads and writes registers through kvm_run's sync area
 * (KVM_CAP_SYNC_REGS, requested by check() while a hook is this vCPU's):
 * KVM fills it on every exit and loads what we mark dirty on the next
 * KVM_RUN, with no ioctl.  On this host GET/SET_REGS and GET/SET_SREGS
 * cost ~7 us each.
 */

/* The broken syscall, as the #PF frame at the hook shows it: enter LSTAR in ring 0. */
static void complete_syscall(struct kvm_vcpu *v, const uint64_t frame[6], uint64_t star,
			     uint64_t lstar)
{
	struct kvm_regs *r = &v->run->s.regs.regs;
	struct kvm_sregs *s = &v->run->s.regs.sregs;
	uint16_t cs = (uint16_t)(star >> 32 & 0xfffc);

	r->rip = lstar;
	r->rsp = frame[4];
	r->rflags = frame[3] & ~RFLAGS_RF;
	/* What `syscall` loads: flat 64-bit code at DPL 0, flat data above it,
	 * whatever the GDT says (the SDM's fixed descriptor values). */
	s->cs = (struct kvm_segment){ .base = 0, .limit = 0xffffffff, .selector = cs, .type = 0xb,
				      .present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1 };
	s->ss = (struct kvm_segment){ .base = 0, .limit = 0xffffffff, .selector = (uint16_t)(cs + 8),
				      .type = 0x3, .present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0,
				      .g = 1 };
	/* Loading sregs also queues whatever interrupt_bitmap names; the
	 * copy from the exit must not inject anything a second time. */
	memset(s->interrupt_bitmap, 0, sizeof s->interrupt_bitmap);
	v->run->kvm_dirty_regs |= SYNC_BOTH;
	__atomic_fetch_add(&v->vm->nr_sysfix_completed, 1, __ATOMIC_RELAXED);
}

/* Do the hooked instruction and continue after it. */
static int step_over(struct kvm_vcpu *v, const struct sysfix_hook *h)
{
	struct kvm_regs *r = &v->run->s.regs.regs;

	if (h->kind == INSN_PUSH) {
		uint64_t gpa;
		uint8_t *slot = kvm__gva_ptr(v->vm, &v->run->s.regs.sregs, r->rsp - 8, 8, &gpa);

		if (!slot)
			return 0; /* not mapped: a real CPU would fault; let it crash visibly */
		memcpy(slot, &h->imm, 8);
		vm__mark_dirty(v->vm, gpa, 8);
		r->rsp -= 8;
	}
	r->rip += h->len;
	v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	__atomic_fetch_add(&v->vm->nr_sysfix_passed, 1, __ATOMIC_RELAXED);
	return 1;
}

int kvm_sysfix__trap(struct kvm_vcpu *v)
{
	struct vm_kvm *k = kvm_of(v->vm);
	const struct kvm_regs *r = &v->run->s.regs.regs;
	const struct kvm_sregs *s = &v->run->s.regs.sregs;
	struct sysfix_hook h;
	uint64_t gpa, frame[6], star, lstar;
	unsigned i;
	int found = 0;

	/* Only this thread changes kvm_valid_regs, before KVM_RUN: if it is
	 * not set now, it was not for the exit either (a hook another vCPU
	 * placed), so fill the area by hand this once. */
	if ((v->run->kvm_valid_regs & SYNC_BOTH) != SYNC_BOTH &&
	    (ioctl(v->fd, KVM_GET_REGS, &v->run->s.regs.regs) < 0 ||
	     ioctl(v->fd, KVM_GET_SREGS, &v->run->s.regs.sregs) < 0))
		return 0;
	if (kvm__gva_to_gpa(v->vm, s, r->rip, &gpa) < 0)
		return 0;
	pthread_mutex_lock(&k->sysfix_lock);
	for (i = 0; i < KVM_SYSFIX_HOOKS && !found; i++) {
		if (k->hooks[i].live && k->hooks[i].gva == r->rip && k->hooks[i].gpa == gpa) {
			h = k->hooks[i];
			found = 1;
		}
	}
	pthread_mutex_unlock(&k->sysfix_lock);
	if (!found)
		return 0;
	/* The CPU pushed error code, RIP, CS, RFLAGS, RSP, SS (with or
	 * without IST, RSP points at them now).  Error code bit 2: from CPL 3. */
	if (kvm__read_gva(v->vm, s, r->rsp, frame, sizeof frame) == 0 && (frame[2] & 3) == 3 &&
	    (frame[0] & 4) && frame[1] == s->cr2 && (s->efer & EFER_SCE) &&
	    get_msrs(v, &star, &lstar) == 0 && frame[1] == lstar) {
		complete_syscall(v, frame, star, lstar);
		return 1;
	}
	return step_over(v, &h);
}
