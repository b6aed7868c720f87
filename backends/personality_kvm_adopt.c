/* personality_kvm_adopt.c: moves between personalities: the kvm runtime installed beneath a guest that already runs (adopt), and a kvm guest seen as the bare machine would run it (guest view) */
#include <stdlib.h>
#include <string.h>

#include "personality_kvm_adopt.h"
#include "personality_kvm_host.h"
#include "personality_kvm_state.h"
#include "runtime_state.h"

/*
 * The personality-independent form of a guest is what it would be on bare
 * hardware: its registers with the real IF and IDTR it believes it has,
 * and its devices as the native host's models hold them (DeviceSet).
 * Under `native` that is simply the vCPU and device state.  Under `kvm` a
 * parked vCPU stands inside the runtime (RIP in the window, IF = 0, the
 * per-CPU IDT), and the guest's own view is in its state block: the guest
 * view below takes it from there (a vCPU the freeze left outside the
 * runtime is taken as KVM holds it, with the virtual IDTR).  Adopting
 * goes the other way: the runtime is loaded into a fresh window, the sites
 * rewritten to kvm by the host, and each vCPU entered at RT_ENTRY_ADOPT,
 * from where the runtime resumes the guest exactly where the state says
 * (docs/RUNTIME.md).
 */

#define RFLAGS_IF 0x200ull

/* ---- adopt */

/* The 64-bit kernel code and stack segments the CPU would have after a
 * syscall (STAR[47:32]): what a vCPU stopped in user mode enters the
 * runtime with.  The runtime leaves with iretq, which reloads the user's. */
static void kernel_segments(const struct vm_vcpu_state *g, struct vm_segment *cs,
			    struct vm_segment *ss)
{
	uint16_t sel = (uint16_t)((g->star >> 32) & 0xfffc);

	*cs = (struct vm_segment){ .base = 0, .limit = 0xffffffff, .selector = sel, .type = 0xb,
				   .present = 1, .dpl = 0, .s = 1, .l = 1, .g = 1 };
	*ss = (struct vm_segment){ .base = 0, .limit = 0xffffffff, .selector = (uint16_t)(sel + 8),
				   .type = 0x3, .present = 1, .dpl = 0, .db = 1, .s = 1, .g = 1 };
}

static void block_from_guest(struct rt_cpu_state *b, const struct vm_vcpu_state *g)
{
	memset(b, 0, sizeof *b);
	b->version = RT_ABI_VERSION;
	b->parked = RT_CPU_PARKED_NO;
	b->vif = (g->rflags & RFLAGS_IF) != 0;
	b->online = 1;
	b->idt_base = g->idt.base;
	b->idt_limit = g->idt.limit;
	b->rax = g->gpr[VM_RAX], b->rbx = g->gpr[VM_RBX], b->rcx = g->gpr[VM_RCX];
	b->rdx = g->gpr[VM_RDX], b->rsi = g->gpr[VM_RSI], b->rdi = g->gpr[VM_RDI];
	b->rbp = g->gpr[VM_RBP], b->rsp = g->gpr[VM_RSP];
	b->r8 = g->gpr[VM_R8], b->r9 = g->gpr[VM_R9], b->r10 = g->gpr[VM_R10];
	b->r11 = g->gpr[VM_R11], b->r12 = g->gpr[VM_R12], b->r13 = g->gpr[VM_R13];
	b->r14 = g->gpr[VM_R14], b->r15 = g->gpr[VM_R15];
	b->rip = g->rip;
	b->rflags = g->rflags;
	b->cr0 = g->cr0, b->cr2 = g->cr2, b->cr3 = g->cr3, b->cr4 = g->cr4;
	b->gdt_base = g->gdt.base;
	b->gdt_limit = g->gdt.limit;
	b->cs = g->cs.selector;
	b->ss = g->ss.selector;
}

/* In 64-bit mode (EFER.LMA and a 64-bit CS): only there can a CPU enter the runtime. */
static int in_long_mode(const struct vm_vcpu_state *g)
{
	return (g->efer & (1u << 10)) && g->cs.l;
}

static int in_flight(const struct vm_vcpu_state *g)
{
	const struct vm_events *e = &g->events;

	return e->exc_injected || e->exc_pending || e->irq_injected || e->nmi_injected ||
	       e->nmi_pending;
}

int vm__kvm_host_adopt(struct vm *vm, const struct vm_kvm_adopt *a)
{
	static _Thread_local struct vm_vcpu_state st; /* 4 KiB of XSAVE: not on the stack */
	struct kvm_host *h = kvm_host_of(vm);
	struct rt_dev_state *area;
	char why[256];
	unsigned i;

	if (!h)
		return vm__fail(vm, "kvm adopt: no runtime attached");
	if (h->booted)
		return vm__fail(vm, "kvm adopt: the runtime already runs a guest");
	if (!a->table_size)
		return vm__fail(vm, "kvm adopt: the guest has no site table: the runtime could not "
				"find its sites");
	for (i = 0; i < vm->nr_vcpus; i++)
		if (a->vcpus[i].started && in_flight(&a->vcpus[i]))
			return vm__fail(vm, "kvm adopt: vCPU %u has an event in delivery (an "
					"interrupt or exception half taken); the source must stop "
					"it after the delivery", i);
	if (!in_long_mode(&a->vcpus[0]))
		return vm__fail(vm, "kvm adopt: vCPU 0 is not in 64-bit mode yet (the guest is "
				"in its early boot); move it once it runs");
	area = vm__window(vm, RT_WINDOW_BASE + RT_OFF_DEVSTATE, sizeof *area);
	if (runtime_devs_from_devset(a->devices, a->devices_len, area, why, sizeof why) < 0)
		return vm__fail(vm, "kvm adopt: the devices: %s", why);
	if (!!(area->flags & RT_DEV_STATE_NIC) != !!h->nic)
		return vm__fail(vm, "kvm adopt: the guest %s a DP83820, this runtime %s",
				area->flags & RT_DEV_STATE_NIC ? "has" : "has no",
				h->nic ? "has one" : "has none");
	h->table_addr = a->table_addr;
	h->table_size = a->table_size;
	if (kvm_host__fill_boot(vm, h, RT_BOOTF_ADOPT) < 0)
		return -1;
	h->adopting = 1;
	for (i = 0; i < vm->nr_vcpus; i++) {
		const struct vm_vcpu_state *g = &a->vcpus[i];
		struct rt_cpu_state *b = vm__window(vm, RT_PERCPU_ADDR(i) + RT_PERCPU_STATE, sizeof *b);

		if (!g->started || !in_long_mode(g)) {
			/* Not started, or an AP still on its way up (real or 32-bit
			 * mode): it stays outside the runtime, as an AP that kvm
			 * starts does, until its own lidt site makes it a runtime
			 * CPU; meanwhile its real IDT is its block's (upcall only). */
			memset(b, 0, sizeof *b);
			b->version = RT_ABI_VERSION;
			st = *g;
			if (g->started) {
				st.idt.base = RT_PERCPU_ADDR(i);
				st.idt.limit = 0xfff;
			}
			if (vm__set_vcpu_state(vm, i, &st) < 0)
				return -1;
			continue;
		}
		block_from_guest(b, g);
		st = *g;
		st.rip = RT_ENTRY_ADOPT;
		st.gpr[VM_RSP] = RT_PERCPU_ADDR(i) + RT_PERCPU_FRAME;
		st.rflags = 0x2;
		st.idt.base = RT_PERCPU_ADDR(i);
		st.idt.limit = 0xfff;
		st.mp_state = 0;
		if (g->cs.dpl == 3)
			kernel_segments(g, &st.cs, &st.ss);
		if (vm__set_vcpu_state(vm, i, &st) < 0)
			return -1;
	}
	return 0;
}

uint64_t vm__kvm_adopt_done_ns(struct vm *vm)
{
	struct kvm_host *h = kvm_host_of(vm);

	return h && h->adopting ? __atomic_load_n(&h->adopt_done_ns, __ATOMIC_ACQUIRE) : 0;
}

/* ---- the guest view of a paused kvm guest */

/* A user-mode park: the user's segment from the guest's GDT (identity
 * mapped, as the runtime's own page walks assume). */
static int segment_from_gdt(struct vm *vm, const struct vm_vcpu_state *g, uint16_t sel,
			    struct vm_segment *s)
{
	const uint8_t *d;
	uint64_t lo;

	if (!(sel & ~7u) || (sel & 4) || (uint64_t)(sel & ~7u) + 7 > g->gdt.limit ||
	    !(d = vm__gpa(vm, g->gdt.base + (sel & ~7u), 8)))
		return vm__fail(vm, "kvm guest view: selector %#x is not in the GDT at %#llx",
				sel, (unsigned long long)g->gdt.base);
	memcpy(&lo, d, 8);
	*s = (struct vm_segment){
		.base = ((lo >> 16) & 0xffffff) | ((lo >> 32) & 0xff000000),
		.limit = (uint32_t)((lo & 0xffff) | ((lo >> 32) & 0xf0000)),
		.selector = sel, .type = (lo >> 40) & 0xf, .s = (lo >> 44) & 1,
		.dpl = (lo >> 45) & 3, .present = (lo >> 47) & 1, .avl = (lo >> 52) & 1,
		.l = (lo >> 53) & 1, .db = (lo >> 54) & 1, .g = (lo >> 55) & 1 };
	if (s->g)
		s->limit = (s->limit << 12) | 0xfff;
	if (!s->present)
		return vm__fail(vm, "kvm guest view: selector %#x is not present", sel);
	return 0;
}

/* The runtime's upcall in flight means nothing to the guest. */
static void drop_upcall(struct vm_vcpu_state *g)
{
	if (g->events.irq_injected && g->events.irq_nr == RT_UPCALL_VECTOR)
		g->events.irq_injected = 0;
	memset(g->pending_irq_bitmap, 0, sizeof g->pending_irq_bitmap);
}

/*
 * An online vCPU that stayed outside the runtime (guest code between
 * sites, or user mode: the pause found it at a safe point, and the state
 * request did not need it, docs/RUNTIME.md): its registers are its own,
 * the real IF is the guest's there; only the IDTR is the runtime's.
 */
static int guest_from_kvm(struct vm *vm, unsigned cpu, struct vm_vcpu_state *g,
			  const struct rt_cpu_state *b)
{
	if (g->rip >= RT_WINDOW_BASE && g->rip - RT_WINDOW_BASE < RT_WINDOW_SIZE)
		return vm__fail(vm, "kvm guest view: vCPU %u stands in the runtime (rip %#llx) "
				"but is not parked there", cpu, (unsigned long long)g->rip);
	g->idt.base = b->idt_base;
	g->idt.limit = b->idt_limit;
	drop_upcall(g);
	return 0;
}

static int guest_from_block(struct vm *vm, unsigned cpu, struct vm_vcpu_state *g,
			    const struct rt_cpu_state *b)
{
	if (b->parked == RT_CPU_PARKED_DOWN)
		return vm__fail(vm, "kvm guest view: vCPU %u halted with interrupts off (offline): "
				"a move cannot carry that yet", cpu);
	if (b->parked == RT_CPU_PARKED_NO)
		return guest_from_kvm(vm, cpu, g, b);
	g->gpr[VM_RAX] = b->rax, g->gpr[VM_RBX] = b->rbx, g->gpr[VM_RCX] = b->rcx;
	g->gpr[VM_RDX] = b->rdx, g->gpr[VM_RSI] = b->rsi, g->gpr[VM_RDI] = b->rdi;
	g->gpr[VM_RBP] = b->rbp, g->gpr[VM_RSP] = b->rsp;
	g->gpr[VM_R8] = b->r8, g->gpr[VM_R9] = b->r9, g->gpr[VM_R10] = b->r10;
	g->gpr[VM_R11] = b->r11, g->gpr[VM_R12] = b->r12, g->gpr[VM_R13] = b->r13;
	g->gpr[VM_R14] = b->r14, g->gpr[VM_R15] = b->r15;
	g->rip = b->rip;
	g->rflags = (b->rflags & ~RFLAGS_IF) | (b->vif ? RFLAGS_IF : 0) | 0x2;
	g->idt.base = b->idt_base;
	g->idt.limit = b->idt_limit;
	if (b->cs != g->cs.selector &&
	    (segment_from_gdt(vm, g, b->cs, &g->cs) < 0 || segment_from_gdt(vm, g, b->ss, &g->ss) < 0))
		return -1;
	drop_upcall(g);
	g->mp_state = 0;
	return 0;
}

int vm__kvm_guest_view(struct vm *vm, struct vm_vcpu_state *vcpus, uint8_t **devices,
		       size_t *devices_len)
{
	struct runtime_state *rs;
	char why[256];
	unsigned i;
	int rc = -1;

	*devices = NULL;
	if (!(rs = calloc(1, sizeof *rs)))
		return vm__fail(vm, "kvm guest view: out of memory");
	if (vm__kvm_state_freeze(vm, rs) < 0)
		goto out;
	for (i = 0; i < vm->nr_vcpus; i++) {
		if (vm__get_vcpu_state(vm, i, &vcpus[i]) < 0)
			goto out;
		if (!rs->cpu[i].online) {
			/* not started, or an AP on its way up outside the runtime:
			 * its state is the guest's own, but for the real IDTR the
			 * host gave it (its startup code loads its own) */
			if (vcpus[i].idt.base >= RT_WINDOW_BASE &&
			    vcpus[i].idt.base < RT_WINDOW_BASE + RT_WINDOW_SIZE) {
				vcpus[i].idt.base = 0;
				vcpus[i].idt.limit = 0xffff;
			}
			continue;
		}
		if (guest_from_block(vm, i, &vcpus[i], &rs->cpu[i]) < 0)
			goto out;
	}
	if (runtime_devs_to_devset(&rs->dev, devices, devices_len, why, sizeof why) < 0) {
		vm__fail(vm, "kvm guest view: the devices: %s", why);
		goto out;
	}
	rc = 0;
out:
	free(rs);
	return rc;
}
