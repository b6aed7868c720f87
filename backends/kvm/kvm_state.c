/* kvm_state.c: full vCPU state <-> KVM (regs, sregs, MSRs, XSAVE, events), and the boot-time vCPU resets */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm_int.h"

#define MSR_IA32_TSC 0x10
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_IA32_CR_PAT 0x277
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SFMASK 0xc0000084
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MSR_TSC_AUX 0xc0000103

/* The MSRs we carry, in a fixed order, each with its field. */
#define NR_MSRS 14
static void msr_map(struct vm_vcpu_state *st, uint32_t idx[NR_MSRS], uint64_t *val[NR_MSRS])
{
	static const uint32_t ids[NR_MSRS] = {
		MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP,
		MSR_IA32_MISC_ENABLE, MSR_IA32_CR_PAT, MSR_STAR, MSR_LSTAR, MSR_CSTAR,
		MSR_SFMASK, MSR_FS_BASE, MSR_GS_BASE, MSR_KERNEL_GS_BASE, MSR_TSC_AUX,
		MSR_IA32_TSC, /* last: set after everything else, as KVM expects */
	};
	uint64_t *fields[NR_MSRS] = {
		&st->sysenter_cs, &st->sysenter_esp, &st->sysenter_eip, &st->misc_enable,
		&st->pat, &st->star, &st->lstar, &st->cstar, &st->sfmask, &st->fs_base,
		&st->gs_base, &st->kernel_gs_base, &st->tsc_aux, &st->tsc,
	};

	memcpy(idx, ids, sizeof ids);
	memcpy(val, fields, sizeof fields);
}

struct msr_buf {
	struct kvm_msrs hdr;
	struct kvm_msr_entry e[NR_MSRS];
};

static void seg_from_kvm(struct vm_segment *d, const struct kvm_segment *s)
{
	*d = (struct vm_segment){ s->base, s->limit, s->selector, s->type, s->present,
				  s->dpl, s->db, s->s, s->l, s->g, s->avl, s->unusable };
}

static void seg_to_kvm(struct kvm_segment *d, const struct vm_segment *s)
{
	memset(d, 0, sizeof *d);
	d->base = s->base;
	d->limit = s->limit;
	d->selector = s->selector;
	d->type = s->type;
	d->present = s->present;
	d->dpl = s->dpl;
	d->db = s->db;
	d->s = s->s;
	d->l = s->l;
	d->g = s->g;
	d->avl = s->avl;
	d->unusable = s->unusable;
}

/* kvm_regs lists the GPRs in its own order; map through offsets. */
static __u64 *gpr_slot(struct kvm_regs *r, unsigned i)
{
	__u64 *slots[VM_NR_GPRS] = {
		&r->rax, &r->rcx, &r->rdx, &r->rbx, &r->rsp, &r->rbp, &r->rsi, &r->rdi,
		&r->r8, &r->r9, &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15,
	};
	return slots[i];
}

int kvm_vcpu__get_state(struct vm *vm, unsigned cpu, struct vm_vcpu_state *st)
{
	struct kvm_vcpu *v = &kvm_of(vm)->vcpu[cpu];
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_debugregs dbg;
	struct kvm_xcrs xcrs;
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	struct kvm_xsave *xs;
	struct msr_buf mb;
	uint32_t idx[NR_MSRS];
	uint64_t *val[NR_MSRS];
	unsigned i;

	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0)
		return kvm__ioctl_fail(vm, "GET_REGS");
	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return kvm__ioctl_fail(vm, "GET_SREGS");
	for (i = 0; i < VM_NR_GPRS; i++)
		st->gpr[i] = *gpr_slot(&regs, i);
	st->rip = regs.rip;
	st->rflags = regs.rflags;
	seg_from_kvm(&st->cs, &sregs.cs);
	seg_from_kvm(&st->ds, &sregs.ds);
	seg_from_kvm(&st->es, &sregs.es);
	seg_from_kvm(&st->fs, &sregs.fs);
	seg_from_kvm(&st->gs, &sregs.gs);
	seg_from_kvm(&st->ss, &sregs.ss);
	seg_from_kvm(&st->tr, &sregs.tr);
	seg_from_kvm(&st->ldt, &sregs.ldt);
	st->gdt = (struct vm_dtable){ sregs.gdt.base, sregs.gdt.limit };
	st->idt = (struct vm_dtable){ sregs.idt.base, sregs.idt.limit };
	st->cr0 = sregs.cr0;
	st->cr2 = sregs.cr2;
	st->cr3 = sregs.cr3;
	st->cr4 = sregs.cr4;
	st->cr8 = sregs.cr8;
	st->efer = sregs.efer;
	st->apic_base = sregs.apic_base;
	memcpy(st->pending_irq_bitmap, sregs.interrupt_bitmap, sizeof st->pending_irq_bitmap);

	if (ioctl(v->fd, KVM_GET_DEBUGREGS, &dbg) < 0)
		return kvm__ioctl_fail(vm, "GET_DEBUGREGS");
	memcpy(st->dr, dbg.db, sizeof st->dr);
	st->dr6 = dbg.dr6;
	st->dr7 = dbg.dr7;

	msr_map(st, idx, val);
	memset(&mb, 0, sizeof mb);
	mb.hdr.nmsrs = NR_MSRS;
	for (i = 0; i < NR_MSRS; i++)
		mb.e[i].index = idx[i];
	if (ioctl(v->fd, KVM_GET_MSRS, &mb) != NR_MSRS)
		return vm__fail(vm, "KVM: GET_MSRS: an MSR is not supported");
	for (i = 0; i < NR_MSRS; i++)
		*val[i] = mb.e[i].data;

	xs = calloc(1, sizeof *xs);
	if (!xs)
		return vm__fail(vm, "out of memory");
	if (ioctl(v->fd, KVM_GET_XSAVE, xs) < 0) {
		free(xs);
		return kvm__ioctl_fail(vm, "GET_XSAVE");
	}
	memcpy(st->xsave, xs->region, VM_XSAVE_SIZE);
	free(xs);
	memset(&xcrs, 0, sizeof xcrs);
	if (ioctl(v->fd, KVM_GET_XCRS, &xcrs) < 0)
		return kvm__ioctl_fail(vm, "GET_XCRS");
	for (i = 0; i < xcrs.nr_xcrs; i++)
		if (xcrs.xcrs[i].xcr == 0)
			st->xcr0 = xcrs.xcrs[i].value;

	if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return kvm__ioctl_fail(vm, "GET_VCPU_EVENTS");
	st->events = (struct vm_events){
		.exc_injected = ev.exception.injected, .exc_pending = ev.exception.pending,
		.exc_nr = ev.exception.nr, .exc_has_error_code = ev.exception.has_error_code,
		.exc_error_code = ev.exception.error_code,
		.irq_injected = ev.interrupt.injected, .irq_nr = ev.interrupt.nr,
		.irq_soft = ev.interrupt.soft, .irq_shadow = ev.interrupt.shadow,
		.nmi_injected = ev.nmi.injected, .nmi_pending = ev.nmi.pending,
		.nmi_masked = ev.nmi.masked, .sipi_vector = ev.sipi_vector,
	};
	if (ioctl(v->fd, KVM_GET_MP_STATE, &mp) < 0)
		return kvm__ioctl_fail(vm, "GET_MP_STATE");
	/* Our HLT lives in userspace (no in-kernel irqchip): report it. */
	st->mp_state = v->halted ? KVM_MP_STATE_HALTED : mp.mp_state;
	return 0;
}

int kvm_vcpu__set_state(struct vm *vm, unsigned cpu, const struct vm_vcpu_state *st)
{
	struct kvm_vcpu *v = &kvm_of(vm)->vcpu[cpu];
	struct vm_vcpu_state tmp = *st;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_debugregs dbg;
	struct kvm_xcrs xcrs;
	struct kvm_vcpu_events ev;
	struct kvm_xsave *xs;
	struct msr_buf mb;
	uint32_t idx[NR_MSRS];
	uint64_t *val[NR_MSRS];
	unsigned i;

	/* Special registers first: the mode decides how the rest reads. */
	memset(&sregs, 0, sizeof sregs);
	seg_to_kvm(&sregs.cs, &st->cs);
	seg_to_kvm(&sregs.ds, &st->ds);
	seg_to_kvm(&sregs.es, &st->es);
	seg_to_kvm(&sregs.fs, &st->fs);
	seg_to_kvm(&sregs.gs, &st->gs);
	seg_to_kvm(&sregs.ss, &st->ss);
	seg_to_kvm(&sregs.tr, &st->tr);
	seg_to_kvm(&sregs.ldt, &st->ldt);
	sregs.gdt.base = st->gdt.base;
	sregs.gdt.limit = st->gdt.limit;
	sregs.idt.base = st->idt.base;
	sregs.idt.limit = st->idt.limit;
	sregs.cr0 = st->cr0;
	sregs.cr2 = st->cr2;
	sregs.cr3 = st->cr3;
	sregs.cr4 = st->cr4;
	sregs.cr8 = st->cr8;
	sregs.efer = st->efer;
	sregs.apic_base = st->apic_base;
	memcpy(sregs.interrupt_bitmap, st->pending_irq_bitmap, sizeof sregs.interrupt_bitmap);
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		return kvm__ioctl_fail(vm, "SET_SREGS");

	memset(&regs, 0, sizeof regs);
	for (i = 0; i < VM_NR_GPRS; i++)
		*gpr_slot(&regs, i) = st->gpr[i];
	regs.rip = st->rip;
	regs.rflags = st->rflags;
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return kvm__ioctl_fail(vm, "SET_REGS");

	memset(&xcrs, 0, sizeof xcrs);
	xcrs.nr_xcrs = 1;
	xcrs.xcrs[0].xcr = 0;
	xcrs.xcrs[0].value = st->xcr0 ? st->xcr0 : 1; /* x87 is always on */
	if (ioctl(v->fd, KVM_SET_XCRS, &xcrs) < 0)
		return kvm__ioctl_fail(vm, "SET_XCRS");
	xs = calloc(1, sizeof *xs);
	if (!xs)
		return vm__fail(vm, "out of memory");
	memcpy(xs->region, st->xsave, VM_XSAVE_SIZE);
	if (ioctl(v->fd, KVM_SET_XSAVE, xs) < 0) {
		free(xs);
		return kvm__ioctl_fail(vm, "SET_XSAVE");
	}
	free(xs);

	msr_map(&tmp, idx, val);
	memset(&mb, 0, sizeof mb);
	mb.hdr.nmsrs = NR_MSRS;
	for (i = 0; i < NR_MSRS; i++) {
		mb.e[i].index = idx[i];
		mb.e[i].data = *val[i];
	}
	if (ioctl(v->fd, KVM_SET_MSRS, &mb) != NR_MSRS)
		return vm__fail(vm, "KVM: SET_MSRS: an MSR was refused");

	memset(&dbg, 0, sizeof dbg);
	memcpy(dbg.db, st->dr, sizeof dbg.db);
	dbg.dr6 = st->dr6;
	dbg.dr7 = st->dr7;
	if (ioctl(v->fd, KVM_SET_DEBUGREGS, &dbg) < 0)
		return kvm__ioctl_fail(vm, "SET_DEBUGREGS");

	memset(&ev, 0, sizeof ev);
	ev.exception.injected = st->events.exc_injected;
	ev.exception.pending = st->events.exc_pending;
	ev.exception.nr = st->events.exc_nr;
	ev.exception.has_error_code = st->events.exc_has_error_code;
	ev.exception.error_code = st->events.exc_error_code;
	ev.interrupt.injected = st->events.irq_injected;
	ev.interrupt.nr = st->events.irq_nr;
	ev.interrupt.soft = st->events.irq_soft;
	ev.interrupt.shadow = st->events.irq_shadow;
	ev.nmi.injected = st->events.nmi_injected;
	ev.nmi.pending = st->events.nmi_pending;
	ev.nmi.masked = st->events.nmi_masked;
	ev.sipi_vector = st->events.sipi_vector;
	ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW;
	if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		return kvm__ioctl_fail(vm, "SET_VCPU_EVENTS");
	v->halted = st->mp_state == KVM_MP_STATE_HALTED;
	v->halted_parked = 0;
	return 0;
}

static struct kvm_segment flat_seg(uint16_t sel, uint8_t type, int code64)
{
	struct kvm_segment s = {
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .dpl = 0, .db = code64 ? 0 : 1, .s = 1, .l = code64 ? 1 : 0,
		.g = 1,
	};
	return s;
}

/* A real-mode segment as reset leaves it, whatever the vCPU ran before. */
static struct kvm_segment real_seg(uint16_t sel, uint8_t type)
{
	struct kvm_segment s = {
		.base = (uint64_t)sel << 4, .limit = 0xffff, .selector = sel, .type = type,
		.present = 1, .s = 1,
	};
	return s;
}

/* Common to every boot state: no paging unless asked, caches on. */
static int reset_common(struct kvm_vcpu *v, struct kvm_sregs *s)
{
	if (ioctl(v->fd, KVM_GET_SREGS, s) < 0)
		return kvm__ioctl_fail(v->vm, "GET_SREGS");
	s->cr0 = 0x10; /* ET; CD/NW clear so the guest runs cached */
	s->cr4 = 0;
	s->efer = 0;
	s->cr3 = 0;
	v->halted = 0;
	v->halted_parked = 0;
	return 0;
}

static int set_rip(struct kvm_vcpu *v, uint64_t rip, uint64_t rsp, uint64_t rflags)
{
	struct kvm_regs r;

	memset(&r, 0, sizeof r);
	r.rip = rip;
	r.rsp = rsp;
	r.rflags = rflags;
	r.rbx = v->id; /* APs learn who they are without a LAPIC */
	if (ioctl(v->fd, KVM_SET_REGS, &r) < 0)
		return kvm__ioctl_fail(v->vm, "SET_REGS");
	return 0;
}

int kvm_vcpu__reset32(struct vm *vm, unsigned cpu, uint32_t entry, uint32_t esp)
{
	struct kvm_vcpu *v = &kvm_of(vm)->vcpu[cpu];
	struct kvm_sregs s;

	if (reset_common(v, &s) < 0)
		return -1;
	s.cr0 |= 1; /* PE, paging off: what Multiboot promises */
	s.cs = flat_seg(0x08, 0xb, 0);
	s.ds = s.es = s.fs = s.gs = s.ss = flat_seg(0x10, 0x3, 0);
	if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0)
		return kvm__ioctl_fail(vm, "SET_SREGS");
	return set_rip(v, entry, esp, 0x2);
}

int kvm_vcpu__reset16(struct vm *vm, unsigned cpu, uint32_t entry, uint32_t sp)
{
	struct kvm_vcpu *v = &kvm_of(vm)->vcpu[cpu];
	struct kvm_sregs s;

	if (entry >= 0x100000 || (entry & 0xf))
		return vm__fail(vm, "real-mode entry %#x must be below 1 MiB and 16-byte aligned",
				entry);
	if (reset_common(v, &s) < 0)
		return -1;
	/* As after a SIPI: CS = entry >> 4, IP = 0; SS = 0, SP as given. */
	s.cs = real_seg((uint16_t)(entry >> 4), 0xb);
	s.ds = s.es = s.fs = s.gs = s.ss = real_seg(0, 0x3);
	if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0)
		return kvm__ioctl_fail(vm, "SET_SREGS");
	return set_rip(v, 0, sp, 0x2);
}

int kvm_vcpu__reset64(struct vm *vm, unsigned cpu, uint64_t entry, uint64_t cr3, uint64_t gdt)
{
	struct kvm_vcpu *v = &kvm_of(vm)->vcpu[cpu];
	struct kvm_sregs s;

	if (reset_common(v, &s) < 0)
		return -1;
	s.cr0 = 0x80050033;        /* PG WP NE ET MP PE */
	s.cr4 = 0x20;              /* PAE */
	s.efer = 0x500;            /* LME LMA */
	s.cr3 = cr3;
	s.gdt.base = gdt;
	s.gdt.limit = 4 * 8 - 1;
	/* Linux's boot protocol wants __BOOT_CS 0x10, __BOOT_DS 0x18. */
	s.cs = flat_seg(0x10, 0xb, 1);
	s.ds = s.es = s.fs = s.gs = s.ss = flat_seg(0x18, 0x3, 0);
	if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0)
		return kvm__ioctl_fail(vm, "SET_SREGS");
	return set_rip(v, entry, 0, 0x2);
}
